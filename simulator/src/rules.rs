//! The simulator's own reading of SPEC §4–§6: which plays count, how many
//! watched seconds and ad views a report adds, and what a day earns. It
//! shares no code with the services, so a bug there is not repeated here.
//!
//! The services stamp each event with their own clock; the simulator only
//! knows that the stamp lies between the moment it sent the request and the
//! moment the answer came back (a [`Bracket`]). Where a rule's outcome does
//! not depend on where in the bracket the stamp fell, the expectation is
//! exact; where it does (a report that hits the wall-clock cap, a replay at
//! the very edge of the dedupe window), every outcome the bracket allows is
//! listed, and the service's answer must be one of them.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

pub use crate::tiers::{ad_amount, video_amount};

/// The development clock the streaming service runs on, in the text form
/// `START@ANCHORxSPEED` (RFC 3339 instants): at wall-clock `anchor` it reads
/// `start` and it runs `speed` times faster than the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    start_us: i64,
    anchor_us: i64,
    speed: i64,
}

impl SimClock {
    /// Parses `START@ANCHORxSPEED`.
    ///
    /// # Errors
    /// Malformed text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (start, rest) = text
            .split_once('@')
            .ok_or_else(|| anyhow::anyhow!("clock {text:?}: expected START@ANCHORxSPEED"))?;
        let (anchor, speed) = rest
            .rsplit_once('x')
            .ok_or_else(|| anyhow::anyhow!("clock {text:?}: expected START@ANCHORxSPEED"))?;
        let us = |s: &str| -> anyhow::Result<i64> {
            Ok(DateTime::parse_from_rfc3339(s)?.timestamp_micros())
        };
        let speed: i64 = speed.parse()?;
        anyhow::ensure!(speed >= 1, "clock speed must be at least 1");
        Ok(Self {
            start_us: us(start)?,
            anchor_us: us(anchor)?,
            speed,
        })
    }

    /// Simulated seconds per wall-clock second.
    pub fn speed(&self) -> i64 {
        self.speed
    }

    /// The simulated instant (Unix milliseconds) at the wall-clock instant
    /// `wall_us` (Unix microseconds).
    pub fn at(&self, wall_us: i64) -> i64 {
        (self.start_us + (wall_us - self.anchor_us) * self.speed).div_euclid(1_000)
    }

    /// The simulated instant now (Unix milliseconds).
    pub fn now_ms(&self) -> i64 {
        self.at(Utc::now().timestamp_micros())
    }

    /// How long to sleep, in wall-clock time, until the clock reads `ms`.
    pub fn until(&self, ms: i64) -> std::time::Duration {
        let ahead_ms = ms - self.now_ms();
        if ahead_ms <= 0 {
            return std::time::Duration::ZERO;
        }
        let wall_us = (ahead_ms * 1_000 + self.speed - 1) / self.speed;
        std::time::Duration::from_micros(u64::try_from(wall_us).unwrap_or(0))
    }
}

/// Where the service's timestamp of one request must lie: between the
/// simulated instants it was sent and answered (Unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bracket {
    /// Sent.
    pub lo: i64,
    /// Answered.
    pub hi: i64,
}

/// An outcome the rules fix, or one the service's clock decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect<T> {
    /// Whatever the exact timestamp, this.
    Exactly(T),
    /// One of these, depending on where in the bracket the stamps fell.
    OneOf(Vec<T>),
}

impl<T: PartialEq + Clone> Expect<T> {
    /// Whether the service's answer is allowed.
    pub fn allows(&self, got: &T) -> bool {
        match self {
            Self::Exactly(v) => v == got,
            Self::OneOf(vs) => vs.contains(got),
        }
    }

    /// Whether the clock decided.
    pub fn is_exact(&self) -> bool {
        matches!(self, Self::Exactly(_))
    }
}

impl Expect<i64> {
    /// The largest value allowed.
    pub fn most(&self) -> Option<i64> {
        match self {
            Self::Exactly(v) => Some(*v),
            Self::OneOf(vs) => vs.iter().max().copied(),
        }
    }
}

/// SPEC §4 constants the simulator needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The dedupe window of views and ad views, milliseconds (SPEC §4:
    /// 30 s by default; the services' `DEDUPE_WINDOW_SECONDS`).
    pub window_ms: i64,
    /// Ad slots are every this many seconds of content (SPEC §4: 300).
    pub slot_seconds: i64,
    /// A session's watched seconds are at most the wall-clock time since
    /// its play plus this (SPEC §4: 5 s).
    pub slack_seconds: i64,
    /// The platform time zone (SPEC §2).
    pub zone: Tz,
}

impl Rules {
    /// The platform day of a simulated instant.
    pub fn day_of(&self, ms: i64) -> NaiveDate {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&self.zone)
            .date_naive()
    }

    /// The day a request was stamped on, or `None` if its bracket spans a
    /// midnight.
    pub fn day_of_bracket(&self, b: Bracket) -> Option<NaiveDate> {
        let day = self.day_of(b.lo);
        (day == self.day_of(b.hi)).then_some(day)
    }

    /// Whether a view (or an ad view) stamped in `now` counts, given the
    /// last counted one of the same viewer key stamped in `last`: it counts
    /// unless less than the window has passed (SPEC §4 rule 2).
    pub fn outside_window(&self, last: Option<Bracket>, now: Bracket) -> Expect<bool> {
        let Some(last) = last else {
            return Expect::Exactly(true);
        };
        if now.lo - last.hi >= self.window_ms {
            Expect::Exactly(true)
        } else if now.hi - last.lo < self.window_ms {
            Expect::Exactly(false)
        } else {
            Expect::OneOf(vec![false, true])
        }
    }

    /// Whole seconds between a session's play (stamped in `started`) and a
    /// report (stamped in `now`): the least and the most the stamps allow.
    fn age_seconds(started: Bracket, now: Bracket) -> (i64, i64) {
        (
            (now.lo - started.hi).max(0) / 1_000,
            (now.hi - started.lo).max(0) / 1_000,
        )
    }

    /// Watched seconds a report adds (SPEC §4): the forward distance from
    /// `last` to `position` (already capped at the end), such that the
    /// session's total (`watched` before this report) stays within the
    /// whole seconds since its play plus the slack.
    pub fn watched_seconds(
        &self,
        last: i64,
        position: i64,
        started: Bracket,
        now: Bracket,
        watched: i64,
    ) -> Expect<i64> {
        if position <= last {
            return Expect::Exactly(0);
        }
        let distance = position - last;
        let (age_lo, age_hi) = Self::age_seconds(started, now);
        let lo = distance.min((age_lo + self.slack_seconds - watched).max(0));
        let hi = distance.min((age_hi + self.slack_seconds - watched).max(0));
        if lo == hi {
            Expect::Exactly(lo)
        } else {
            Expect::OneOf((lo..=hi).collect())
        }
    }

    /// The ad slots a report from `last` to `position` crosses:
    /// last < slot ≤ position (SPEC §4).
    pub fn slots_crossed(&self, last: i64, position: i64) -> impl Iterator<Item = i64> + use<> {
        let step = self.slot_seconds;
        (last.div_euclid(step) + 1..=position.div_euclid(step)).map(move |k| k * step)
    }

    /// The one slot whose ad a report may count: the last one crossed
    /// (SPEC §4).
    pub fn ad_slot(&self, last: i64, position: i64) -> Option<i64> {
        self.slots_crossed(last, position).last()
    }

    /// Whether a session with `ad_views` counted so far may count another:
    /// its ad views stay within 1 + ⌊seconds since its play / 300⌋ (SPEC §4).
    pub fn ad_room(&self, started: Bracket, now: Bracket, ad_views: i64) -> Expect<bool> {
        let (age_lo, age_hi) = Self::age_seconds(started, now);
        if ad_views < 1 + age_lo / self.slot_seconds {
            Expect::Exactly(true)
        } else if ad_views > age_hi / self.slot_seconds {
            Expect::Exactly(false)
        } else {
            Expect::OneOf(vec![false, true])
        }
    }
}

/// What a video's day must add up to: counts the rules fixed, plus what
/// events whose bracket spanned a midnight may have added (they belong to
/// this day or the next; the guard around midnight keeps them rare).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayTally {
    /// Views.
    pub views: i64,
    /// Watched seconds.
    pub watch_seconds: i64,
    /// Ad views.
    pub ad_views: i64,
    /// Views that may belong to this day or a neighbour.
    pub views_spanning: i64,
    /// Watched seconds that may belong to this day or a neighbour.
    pub watch_spanning: i64,
    /// Ad views that may belong to this day or a neighbour.
    pub ads_spanning: i64,
}

impl DayTally {
    /// Adds another tally.
    pub fn add(&mut self, o: &DayTally) {
        self.views += o.views;
        self.watch_seconds += o.watch_seconds;
        self.ad_views += o.ad_views;
        self.views_spanning += o.views_spanning;
        self.watch_spanning += o.watch_spanning;
        self.ads_spanning += o.ads_spanning;
    }
}

/// Tallies per (video, day).
pub type Tallies = HashMap<(i64, NaiveDate), DayTally>;

/// Adds counts stamped in `at` to the tallies.
pub fn tally(
    rules: &Rules,
    tallies: &mut Tallies,
    video: i64,
    at: Bracket,
    views: i64,
    watch: i64,
    ads: i64,
) {
    if views == 0 && watch == 0 && ads == 0 {
        return;
    }
    match rules.day_of_bracket(at) {
        Some(day) => {
            let t = tallies.entry((video, day)).or_default();
            t.views += views;
            t.watch_seconds += watch;
            t.ad_views += ads;
        }
        // Either day may hold them.
        None => tally_maybe(rules, tallies, video, at, views, watch, ads),
    }
}

/// Tallies counts that may or may not have happened (a request whose
/// answer was lost, whose effect the retry could not tell): the check
/// allows the day anything from without them to with them.
pub fn tally_maybe(
    rules: &Rules,
    tallies: &mut Tallies,
    video: i64,
    at: Bracket,
    views: i64,
    watch: i64,
    ads: i64,
) {
    let (first, last) = (rules.day_of(at.lo), rules.day_of(at.hi));
    let days = if first == last {
        vec![first]
    } else {
        vec![first, last]
    };
    for day in days {
        let t = tallies.entry((video, day)).or_default();
        t.views_spanning += views;
        t.watch_spanning += watch;
        t.ads_spanning += ads;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            window_ms: 30_000,
            slot_seconds: 300,
            slack_seconds: 5,
            zone: chrono_tz::Asia::Seoul,
        }
    }

    #[test]
    fn the_window_decides_only_where_the_brackets_allow() {
        let r = rules();
        let b = |lo, hi| Bracket { lo, hi };
        assert_eq!(r.outside_window(None, b(0, 5)), Expect::Exactly(true));
        assert_eq!(
            r.outside_window(Some(b(0, 5)), b(10, 20)),
            Expect::Exactly(false)
        );
        assert_eq!(
            r.outside_window(Some(b(0, 5)), b(30_005, 30_010)),
            Expect::Exactly(true)
        );
        assert!(
            !r.outside_window(Some(b(0, 5)), b(29_999, 30_001))
                .is_exact()
        );
    }

    #[test]
    fn watch_time_is_exact_unless_the_cap_applies() {
        let r = rules();
        let b = |lo, hi| Bracket { lo, hi };
        assert_eq!(
            r.watched_seconds(0, 100, b(0, 10), b(100_010, 100_020), 0),
            Expect::Exactly(100)
        );
        assert_eq!(
            r.watched_seconds(100, 50, b(0, 10), b(100_010, 100_020), 0),
            Expect::Exactly(0)
        );
        // A seek far ahead: capped at age + 5, age 10 or 11 s.
        assert_eq!(
            r.watched_seconds(0, 900, b(0, 500), b(10_400, 11_100), 0),
            Expect::OneOf(vec![14, 15, 16])
        );
        // The slack is the session's: 5 s already counted at age 0 leave
        // nothing for the next report.
        assert_eq!(
            r.watched_seconds(5, 10, b(0, 10), b(20, 30), 5),
            Expect::Exactly(0)
        );
        assert_eq!(
            r.slots_crossed(299, 900).collect::<Vec<_>>(),
            [300, 600, 900]
        );
        assert_eq!(r.slots_crossed(300, 599).count(), 0);
        assert_eq!(r.ad_slot(299, 900), Some(900));
        assert_eq!(r.ad_slot(300, 599), None);
    }

    #[test]
    fn a_session_has_room_for_one_ad_view_per_started_300_s() {
        let r = rules();
        let b = |lo, hi| Bracket { lo, hi };
        assert_eq!(r.ad_room(b(0, 10), b(20, 30), 0), Expect::Exactly(true));
        assert_eq!(r.ad_room(b(0, 10), b(20, 30), 1), Expect::Exactly(false));
        assert_eq!(
            r.ad_room(b(0, 10), b(300_020, 300_030), 1),
            Expect::Exactly(true)
        );
        assert!(!r.ad_room(b(0, 10), b(299_995, 300_005), 1).is_exact());
    }

    #[test]
    fn the_clock_maps_wall_time() {
        let c = SimClock::parse("2026-11-21T00:00:00+09:00@2026-11-22T00:00:00Zx1440").unwrap();
        let anchor = DateTime::parse_from_rfc3339("2026-11-22T00:00:00Z")
            .unwrap()
            .timestamp_micros();
        let start = DateTime::parse_from_rfc3339("2026-11-21T00:00:00+09:00")
            .unwrap()
            .timestamp_millis();
        assert_eq!(c.at(anchor), start);
        assert_eq!(c.at(anchor + 60_000_000), start + 86_400_000);
    }
}
