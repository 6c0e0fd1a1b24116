//! One person's day: their visits in order, each a play and the player's
//! steps, every answer checked against [`crate::rules`] and tallied.

use std::{collections::HashMap, future::Future, sync::Arc, time::Instant};

use crate::{
    Account, Shared, Uploaded,
    client::Paused,
    plan::{Audience, Step, Who},
    report::Stats,
    rules::{Bracket, Expect, Tallies, tally, tally_maybe},
    session::{KeyState, PauseExpectation, Session},
};

/// What one person's day produced.
pub(crate) struct Done {
    pub tallies: Tallies,
    pub stats: Stats,
    pub differences: Vec<String>,
}

struct Person {
    shared: Arc<Shared>,
    audience: Audience,
    account: Option<Account>,
    keys: HashMap<(usize, i64), KeyState>,
    done: Done,
}

/// Runs `audience`'s visits; `account` is `None` for an anonymous viewer.
pub(crate) async fn watch(
    shared: Arc<Shared>,
    audience: Audience,
    account: Option<Account>,
) -> Done {
    let mut person = Person {
        shared,
        audience,
        account,
        keys: HashMap::new(),
        done: Done {
            tallies: Tallies::new(),
            stats: Stats::default(),
            differences: Vec::new(),
        },
    };
    for n in 0..person.audience.visits.len() {
        let at = person.audience.visits[n].at_ms;
        tokio::time::sleep(person.shared.clock.until(at)).await;
        if let Err(e) = person.visit(n).await {
            person.done.stats.failed_requests += 1;
            person
                .done
                .differences
                .push(format!("a request failed: {e:#}"));
        }
    }
    person.done
}

impl Person {
    fn who(&self) -> String {
        match self.audience.who {
            Who::Creator(n) => format!("creator {}", n + 1),
            Who::Viewer(n) => format!("viewer {}", n + 1),
            Who::Anonymous => format!("anonymous {}", self.audience.addresses[0]),
        }
    }

    async fn token(&mut self) -> anyhow::Result<Option<String>> {
        let Some(account) = self.account.as_mut() else {
            return Ok(None);
        };
        // Access tokens live 15 minutes (SPEC §3); refresh before that.
        if account.obtained.elapsed() > std::time::Duration::from_secs(600) {
            account.tokens = self
                .shared
                .gateway
                .refresh(&account.tokens.refresh_token, self.audience.addresses[0])
                .await?;
            account.obtained = Instant::now();
        }
        Ok(Some(account.tokens.access_token.clone()))
    }

    /// Sends one request: waits for a permit and for no midnight guard, and
    /// returns the simulated interval the service stamped it in, with the
    /// number of failed attempts before the answer. With
    /// [`crate::Options::retry_failures`], a transport failure or a 5xx
    /// answer is retried (a player would) until that long has passed; the
    /// interval then runs from the first attempt to the answer.
    async fn timed<T, Fut>(
        &self,
        latency: &std::sync::Mutex<hdrhistogram::Histogram<u64>>,
        mut request: impl FnMut() -> Fut,
    ) -> anyhow::Result<(Bracket, T, Retried)>
    where
        Fut: Future<Output = anyhow::Result<T>>,
    {
        use backon::{ExponentialBuilder, Retryable};
        let shared = &self.shared;
        let _permit = shared.permits.acquire().await?;
        loop {
            let now = shared.clock.now_ms();
            match shared
                .guards
                .iter()
                .find(|(from, to)| (*from..*to).contains(&now))
            {
                Some(&(_, to)) => tokio::time::sleep(shared.clock.until(to)).await,
                None => break,
            }
        }
        let lo = shared.clock.now_ms();
        let started = Instant::now();
        let mut failures = 0_u32;
        let mut sent = false;
        let answer = match shared.retry_failures {
            None => request().await?,
            Some(budget) => {
                let policy = ExponentialBuilder::default()
                    .with_min_delay(std::time::Duration::from_millis(100))
                    .with_max_delay(std::time::Duration::from_secs(2))
                    .with_total_delay(Some(budget))
                    .without_max_times();
                request
                    .retry(policy)
                    .when(retryable)
                    .notify(|e, _| {
                        failures += 1;
                        sent |= !crate::report::refused(e);
                        shared.failures.record(e);
                        eprintln!(
                            "attempt failed at {} (Unix ms), retrying: {e:#}",
                            chrono::Utc::now().timestamp_millis()
                        );
                    })
                    .await?
            }
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let hi = shared.clock.now_ms();
        let _ = latency
            .lock()
            .map(|mut h| h.saturating_record(micros.max(1)));
        Ok((Bracket { lo, hi }, answer, Retried { failures, sent }))
    }

    /// Whether `video` is the signed-in person's own.
    fn owns(&self, video: Uploaded) -> bool {
        self.account.as_ref().map(|a| a.user_id) == Some(video.creator_user)
    }

    fn differ(&mut self, what: String) {
        self.done
            .differences
            .push(format!("{}: {what}", self.who()));
    }

    async fn visit(&mut self, n: usize) -> anyhow::Result<()> {
        let visit = self.audience.visits[n].clone();
        let video = self.shared.videos[visit.video];
        let mut session = self.play(visit.address, video).await?;
        if visit.double_play {
            self.done.stats.double_plays += 1;
            session = self.play(visit.address, video).await?;
        }
        for step in &visit.steps {
            let position = match *step {
                Step::Watch(w) => {
                    self.wait_watching(&session, w).await;
                    session.pos + w
                }
                Step::SeekAhead(w, jump) => {
                    self.wait_watching(&session, w).await;
                    self.done.stats.seeks += 1;
                    session.pos + w + jump
                }
                Step::SeekBack(jump, w) => {
                    self.wait_watching(&session, w).await;
                    self.done.stats.seeks += 1;
                    (session.pos - jump).max(0) + w
                }
                Step::Resume(pause_seconds) => {
                    let at = session.reported.hi + pause_seconds * 1_000;
                    tokio::time::sleep(self.shared.clock.until(at)).await;
                    session = self.play(visit.address, video).await?;
                    continue;
                }
                Step::Leave => {
                    self.done.stats.abandoned += 1;
                    break;
                }
            };
            self.pause(visit.address, video, &mut session, position)
                .await?;
        }
        Ok(())
    }

    /// Waits until `seconds` of content have really played since the
    /// session's last report: the service then credits them in full.
    async fn wait_watching(&self, session: &Session, seconds: i64) {
        let at = session.reported.hi + seconds * 1_000 + 1;
        tokio::time::sleep(self.shared.clock.until(at)).await;
    }

    async fn play(&mut self, address: usize, video: Uploaded) -> anyhow::Result<Session> {
        let video_id = video.id;
        let token = self.token().await?;
        let ip = self.audience.addresses[address];
        let owner = self.owns(video);
        let shared = self.shared.clone();
        let (gateway, token) = (&shared.gateway, token.as_deref());
        let (at, played, retried) = self
            .timed(&shared.play_latency, || gateway.play(video_id, token, ip))
            .await?;
        let failures = retried.failures;
        shared.progress.inc(1);
        let state = self.keys.entry((address, video_id)).or_default();
        let expected_resume = if state.resume >= video.duration {
            0
        } else {
            state.resume
        };
        let counts = if owner {
            Expect::Exactly(false)
        } else {
            shared.rules.outside_window(state.last_view, at)
        };
        let reason_ok = match (played.view_counted, played.reason.as_deref()) {
            (true, None) => true,
            (false, Some("owner")) => owner,
            (false, Some("duplicate")) => !owner,
            _ => false,
        };
        // An attempt whose answer was lost may have counted the view: the
        // retry then finds it a duplicate. Where the rules say the view
        // counts, it did; where the clock decides, it may have. A retry
        // that counted proves the lost attempts did not only if it came
        // within the dedupe window of them (else both may have counted).
        let lost_view = retried.sent
            && !played.view_counted
            && played.reason.as_deref() == Some("duplicate")
            && counts.allows(&true);
        let lost_too =
            retried.sent && played.view_counted && at.hi - at.lo >= shared.rules.window_ms;
        let (counted, maybe) = match (lost_view, counts.is_exact()) {
            (false, _) => (played.view_counted, lost_too),
            (true, true) => (true, false),
            (true, false) => (false, true),
        };
        if counted || maybe {
            state.last_view = Some(at);
        }
        let stats = &mut self.done.stats;
        stats.plays += 1;
        stats.anonymous_plays += u64::from(self.account.is_none());
        stats.owner_plays += u64::from(owner);
        stats.views += u64::from(counted);
        stats.clock_decided += u64::from(!counts.is_exact());
        stats.count_retries(failures, counted && !played.view_counted, maybe);
        tally(
            &shared.rules,
            &mut self.done.tallies,
            video_id,
            at,
            i64::from(counted),
            0,
            0,
        );
        if maybe {
            tally_maybe(&shared.rules, &mut self.done.tallies, video_id, at, 1, 0, 0);
        }
        if !(counts.allows(&counted) || maybe) || !reason_ok {
            self.differ(format!(
                "play of video {video_id}: expected counted {counts:?}, got {} ({:?})",
                played.view_counted, played.reason
            ));
        }
        if played.resume_position_seconds != expected_resume {
            self.differ(format!(
                "play of video {video_id}: expected resume at {expected_resume} s, got {}",
                played.resume_position_seconds
            ));
        }
        Ok(Session {
            id: played.session_id,
            pos: expected_resume,
            started: at,
            reported: at,
            watched: 0,
            ad_views: 0,
        })
    }

    /// Reports `reported_position` (seconds) in `session` and checks what
    /// the service added against the rules (SPEC §4).
    async fn pause(
        &mut self,
        address: usize,
        video: Uploaded,
        session: &mut Session,
        reported_position: i64,
    ) -> anyhow::Result<()> {
        let video_id = video.id;
        let token = self.token().await?;
        let ip = self.audience.addresses[address];
        let owner = self.owns(video);
        let shared = self.shared.clone();
        let (gateway, token, id) = (&shared.gateway, token.as_deref(), session.id.as_str());
        let (at, answered, retried) = self
            .timed(&shared.pause_latency, || {
                gateway.pause(video_id, token, ip, id, reported_position)
            })
            .await?;
        let failures = retried.failures;
        let position = reported_position.min(video.duration);
        let state = self.keys.entry((address, video_id)).or_default();
        let expected = PauseExpectation::of(&shared.rules, state, session, owner, position, at);
        let (paused, inferred, maybe) = lost_pause(&expected, answered, retried.sent);
        let maybe_ad = maybe && expected.ads.allows(&true);
        if let (true, Some(slot)) = (paused.ad_views_counted == 1 || maybe_ad, expected.slot) {
            state.last_ad.insert(slot, at);
        }
        state.resume = paused.position_seconds;
        self.done.stats.count_retries(failures, inferred, maybe);
        self.count_pause(&expected, &paused, video_id, at);
        if maybe {
            // What the lost attempt added is somewhere in what the rules
            // allow: the most of it may be in the settled day.
            let watch = expected.watch.most().unwrap_or(0);
            let ads = i64::from(expected.ads.allows(&true));
            tally_maybe(
                &shared.rules,
                &mut self.done.tallies,
                video_id,
                at,
                0,
                watch,
                ads,
            );
            session.watched += watch;
            session.ad_views += ads;
        } else {
            self.check_pause(&expected, &paused, video_id);
        }
        session.pos = position;
        session.reported = at;
        session.watched += paused.watched_seconds_added;
        session.ad_views += paused.ad_views_counted;
        Ok(())
    }

    /// Adds a pause report's answer to the stats and the tallies.
    fn count_pause(
        &mut self,
        expected: &PauseExpectation,
        paused: &Paused,
        video: i64,
        at: Bracket,
    ) {
        let stats = &mut self.done.stats;
        stats.pauses += 1;
        stats.slots_crossed += expected.crossed as u64;
        stats.ad_views += u64::try_from(paused.ad_views_counted).unwrap_or(0);
        stats.watch_seconds += u64::try_from(paused.watched_seconds_added).unwrap_or(0);
        stats.clock_decided +=
            u64::from(!expected.watch.is_exact()) + u64::from(!expected.ads.is_exact());
        tally(
            &self.shared.rules,
            &mut self.done.tallies,
            video,
            at,
            0,
            paused.watched_seconds_added,
            paused.ad_views_counted,
        );
    }

    /// Records where a pause report's answer differs from the expectation.
    fn check_pause(&mut self, expected: &PauseExpectation, paused: &Paused, video: i64) {
        let PauseExpectation {
            last,
            position,
            watch,
            ads,
            ..
        } = expected;
        if !watch.allows(&paused.watched_seconds_added) {
            self.differ(format!(
                "pause of video {video} from {last} to {position} s: expected {watch:?} watched seconds, got {}",
                paused.watched_seconds_added
            ));
        }
        let ad_counted = paused.ad_views_counted == 1;
        if !(0..=1).contains(&paused.ad_views_counted) || !ads.allows(&ad_counted) {
            self.differ(format!(
                "pause of video {video} from {last} to {position} s: expected an ad view {ads:?}, got {}",
                paused.ad_views_counted
            ));
        }
        if paused.position_seconds != *position {
            self.differ(format!(
                "pause of video {video}: expected the position saved at {position} s, got {}",
                paused.position_seconds
            ));
        }
    }
}

/// Whether a transport failure or an answer is worth retrying: no answer,
/// a 5xx or a 429; not a refusal of the request itself.
fn retryable(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<crate::client::ApiError>() {
        Some(api) => {
            api.status.is_server_error() || api.status == reqwest::StatusCode::TOO_MANY_REQUESTS
        }
        None => e.downcast_ref::<reqwest::Error>().is_some(),
    }
}

/// How a request's failed attempts went.
#[derive(Debug, Clone, Copy)]
struct Retried {
    /// Failed attempts before the answer.
    failures: u32,
    /// Whether one of them may have reached the platform (not a refused
    /// connection): only such an attempt may have been acted on.
    sent: bool,
}

/// A pause report answered after failed attempts, one of which was `sent`:
/// an attempt whose answer was lost may have applied the report, and the
/// retry then adds nothing (its position is no longer ahead). Returns the
/// answer the report stands for, whether it was inferred so, and whether
/// the lost attempt may or may not have applied it (the clock decides what
/// it added: the answer is then the retry's, and the check allows both).
fn lost_pause(expected: &PauseExpectation, answered: Paused, sent: bool) -> (Paused, bool, bool) {
    let nothing = answered.watched_seconds_added == 0 && answered.ad_views_counted == 0;
    if !sent || !nothing || answered.position_seconds != expected.position {
        return (answered, false, false);
    }
    if expected.watch.allows(&0) && expected.ads.allows(&false) {
        // Nothing was due, or the clock may have made it nothing.
        let anything_due = expected.watch.most().unwrap_or(0) > 0 || expected.ads.allows(&true);
        return (answered, false, anything_due);
    }
    match (&expected.watch, &expected.ads) {
        (Expect::Exactly(watch), Expect::Exactly(ad)) => (
            Paused {
                watched_seconds_added: *watch,
                ad_views_counted: i64::from(*ad),
                position_seconds: answered.position_seconds,
            },
            true,
            false,
        ),
        _ => (answered, false, true),
    }
}
