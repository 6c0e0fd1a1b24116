//! The seeded plan of a simulated day: who exists, which videos, and who
//! visits what when, with realistic behaviour. The same seed and scale give
//! the same plan.

use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, LogNormal, Zipf};

/// How big the day is.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Creators (they upload, and also watch).
    pub creators: usize,
    /// Signed-in viewers.
    pub viewers: usize,
    /// Anonymous viewers (each from its own address).
    pub anonymous: usize,
    /// Videos uploaded, spread over the creators.
    pub videos: usize,
    /// Plays to aim for over the day (replays and resumes included).
    pub plays: usize,
}

/// Who is watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Creator number `n` (0-based), signed in.
    Creator(usize),
    /// Viewer number `n`, signed in.
    Viewer(usize),
    /// An anonymous viewer.
    Anonymous,
}

/// A watching person for the day: who, from which addresses, and the visits.
#[derive(Debug, Clone)]
pub struct Audience {
    /// Who.
    pub who: Who,
    /// The usual client address, and a second one (a phone on another
    /// network) some visits come from.
    pub addresses: [std::net::Ipv4Addr; 2],
    /// Visits in time order.
    pub visits: Vec<Visit>,
}

/// What a viewer does with the player after pressing play.
#[derive(Debug, Clone)]
pub enum Step {
    /// Watch this many seconds of content, then pause (a report).
    Watch(i64),
    /// Watch this many seconds, jump ahead this far, then pause: the report
    /// moves further than the time spent (the wall-clock cap applies).
    SeekAhead(i64, i64),
    /// Jump back this far, watch this many seconds, then pause.
    SeekBack(i64, i64),
    /// Press play again after a break of this many seconds (resume).
    Resume(i64),
    /// Close the tab: no report for the current session.
    Leave,
}

/// One visit to a video.
#[derive(Debug, Clone)]
pub struct Visit {
    /// Planned start, simulated Unix milliseconds.
    pub at_ms: i64,
    /// Index into the plan's videos.
    pub video: usize,
    /// Which of the audience's addresses.
    pub address: usize,
    /// A double click on play: a second play right after the first.
    pub double_play: bool,
    /// The player steps after the first play.
    pub steps: Vec<Step>,
}

/// A video to upload.
#[derive(Debug, Clone)]
pub struct PlannedVideo {
    /// Its creator (index into creators).
    pub creator: usize,
    /// Title.
    pub title: String,
    /// Duration, seconds.
    pub duration_seconds: i64,
}

/// The whole day.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Videos in upload order; index 0 is the most popular.
    pub videos: Vec<PlannedVideo>,
    /// Everyone who watches.
    pub audience: Vec<Audience>,
}

const TOPICS: [&str; 16] = [
    "Making kimchi",
    "Seoul at night",
    "Learning Rust",
    "Jeju hiking",
    "Street food tour",
    "Piano cover",
    "Home workout",
    "Budget travel",
    "Coffee brewing",
    "Drone footage",
    "Baduk lesson",
    "K-drama recap",
    "Bike repair",
    "Bibimbap at home",
    "Live coding",
    "Cat compilation",
];

/// Relative traffic per hour of the day (platform time): quiet before dawn,
/// a lunchtime bump, the evening peak.
const HOURLY: [u32; 24] = [
    6, 4, 3, 2, 2, 2, 3, 5, 7, 7, 7, 8, 10, 9, 8, 8, 9, 10, 12, 14, 16, 16, 13, 9,
];

impl Plan {
    /// The plan for `scale`, seeded; visits start in
    /// [`from_ms`, `until_ms`), and `day_start_ms` is the midnight that
    /// starts the day (for the hour-of-day weights).
    ///
    /// # Errors
    /// A scale the distributions cannot take.
    pub fn new(
        seed: u64,
        scale: Scale,
        day_start_ms: i64,
        from_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let videos = (0..scale.videos)
            .map(|i| PlannedVideo {
                creator: i % scale.creators.max(1),
                title: format!("{} #{}", TOPICS[i % TOPICS.len()], i + 1),
                duration_seconds: duration(&mut rng),
            })
            .collect::<Vec<_>>();
        let people = scale.creators + scale.viewers + scale.anonymous;
        // Heavy-tailed activity: most people visit once or twice, a few
        // many times, but nobody more than 40 times, since nobody watches
        // around the clock. About 1.6 plays per visit.
        let activity = LogNormal::new(0.0, 1.0)?;
        let weights: Vec<f64> = (0..people).map(|_| activity.sample(&mut rng)).collect();
        let counts = visit_counts(&weights, scale.plays as f64 / 1.6);
        let popularity = Zipf::new(scale.videos.max(1) as f64, 1.1)?;
        let mut audience = Vec::with_capacity(people);
        for (n, count) in counts.into_iter().enumerate() {
            let who = if n < scale.creators {
                Who::Creator(n)
            } else if n < scale.creators + scale.viewers {
                Who::Viewer(n - scale.creators)
            } else {
                Who::Anonymous
            };
            let mut seen: Vec<usize> = Vec::new();
            let mut visits = Vec::with_capacity(count);
            for _ in 0..count {
                let video = match who {
                    // Creators look at their own videos now and then.
                    Who::Creator(c) if rng.random_bool(0.2) => {
                        let own: Vec<usize> = (0..videos.len())
                            .filter(|&v| videos[v].creator == c)
                            .collect();
                        if own.is_empty() {
                            pick(&mut rng, &popularity)
                        } else {
                            own[rng.random_range(0..own.len())]
                        }
                    }
                    // Returning viewers come back to something they saw.
                    _ if !seen.is_empty() && rng.random_bool(0.25) => {
                        seen[rng.random_range(0..seen.len())]
                    }
                    _ => pick(&mut rng, &popularity),
                };
                seen.push(video);
                let at_ms = instant(&mut rng, day_start_ms, from_ms, until_ms);
                let address = usize::from(who != Who::Anonymous && rng.random_bool(0.1));
                visits.push(Visit {
                    at_ms,
                    video,
                    address,
                    double_play: rng.random_bool(0.05),
                    steps: steps(&mut rng, videos[video].duration_seconds),
                });
            }
            visits.sort_by_key(|v| v.at_ms);
            let base = u32::try_from(n).unwrap_or(0);
            audience.push(Audience {
                who,
                addresses: [
                    std::net::Ipv4Addr::from(0x0a00_0000 + base),
                    std::net::Ipv4Addr::from(0x6400_0000 + base),
                ],
                visits,
            });
        }
        Ok(Self { videos, audience })
    }

    /// Moves the visits planned in [`start`, `until`) into [`from`,
    /// `until`), keeping their order, when the setup ran past `start`.
    pub fn squeeze(&mut self, start: i64, from: i64, until: i64) {
        if from <= start || from >= until {
            return;
        }
        let (span, room) = (i128::from(until - start), i128::from(until - from));
        for visit in self.audience.iter_mut().flat_map(|a| a.visits.iter_mut()) {
            let offset = i128::from(visit.at_ms - start) * room / span;
            visit.at_ms = from + i64::try_from(offset).unwrap_or(0);
        }
    }

    /// Plays the plan will send, if everything goes as planned.
    pub fn planned_plays(&self) -> usize {
        self.audience
            .iter()
            .flat_map(|a| &a.visits)
            .map(|v| {
                1 + usize::from(v.double_play)
                    + v.steps
                        .iter()
                        .filter(|s| matches!(s, Step::Resume(_)))
                        .count()
            })
            .sum()
    }
}

/// Visits per person: proportional to the weights, at least 1, at most 40
/// (a visit takes a quarter of an hour on average, and one person watches
/// one video at a time), summing to about `wanted` (water-filling: the share
/// the capped ones cannot take goes to the others; with too few people for
/// `wanted`, everyone gets 40).
fn visit_counts(weights: &[f64], wanted: f64) -> Vec<usize> {
    let cap = 40.0;
    let total = |scale: f64| -> f64 { weights.iter().map(|w| (w * scale).min(cap)).sum() };
    let (mut lo, mut hi) = (0.0, 1.0);
    while total(hi) < wanted && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if total(mid) < wanted {
            lo = mid
        } else {
            hi = mid
        }
    }
    weights
        .iter()
        .map(|w| ((w * hi).min(cap).round() as usize).max(1))
        .collect()
}

fn pick(rng: &mut StdRng, popularity: &Zipf<f64>) -> usize {
    (popularity.sample(rng) as usize).saturating_sub(1)
}

/// Video lengths: a third shorter than one ad slot, most 5–20 minutes, some
/// up to an hour and a half.
fn duration(rng: &mut StdRng) -> i64 {
    match rng.random_range(0..10) {
        0..=2 => rng.random_range(30..300),
        3..=7 => rng.random_range(300..1_200),
        _ => rng.random_range(1_200..5_400),
    }
}

/// A start instant weighted by the hour of day, within [from, until): the
/// day's 24 hours and the first hour of the next (sessions around midnight).
fn instant(rng: &mut StdRng, day_start_ms: i64, from_ms: i64, until_ms: i64) -> i64 {
    let total: u32 = HOURLY.iter().sum::<u32>() + HOURLY[0];
    for _ in 0..32 {
        let mut draw = rng.random_range(0..total);
        let mut hour = 0;
        while draw >= HOURLY[hour % 24] {
            draw -= HOURLY[hour % 24];
            hour += 1;
        }
        let at = day_start_ms
            + i64::try_from(hour).unwrap_or(0) * 3_600_000
            + rng.random_range(0..3_600_000);
        if (from_ms..until_ms).contains(&at) {
            return at;
        }
    }
    rng.random_range(from_ms..until_ms.max(from_ms + 1))
}

/// What a viewer does after pressing play on a video of `duration` s.
fn steps(rng: &mut StdRng, duration: i64) -> Vec<Step> {
    // How much of the video this visit watches: a quick look, a good part,
    // or to the end.
    let target = match rng.random_range(0..10) {
        0..=3 => (duration * rng.random_range(5..25) / 100).max(5),
        4..=6 => duration * rng.random_range(25..80) / 100,
        _ => duration,
    };
    let pieces = rng.random_range(1..=3);
    let mut steps = Vec::new();
    for piece in 0..pieces {
        if piece > 0 {
            steps.push(Step::Resume(rng.random_range(10..1_800)));
        }
        let watch = (target / pieces).max(1);
        match rng.random_range(0..100) {
            0..=9 => steps.push(Step::SeekAhead(watch / 2 + 1, rng.random_range(30..900))),
            10..=14 => steps.push(Step::SeekBack(rng.random_range(10..300), watch)),
            15..=17 => {
                steps.push(Step::Leave);
                break;
            }
            _ => steps.push(Step::Watch(watch)),
        }
    }
    steps
}
