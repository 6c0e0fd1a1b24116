//! The in-process counter store of the all-in-one mode: the same rules as
//! the Redis scripts, under one mutex. Nothing survives a restart except
//! what the write-back (run on graceful shutdown) saved.

use std::collections::HashMap;

use tokio::sync::Mutex;

use super::{
    AD_SLOT_INTERVAL_SECONDS, Bucket, CounterError, CounterStore, Counts, NotCounted, PauseEvent,
    PauseOutcome, PlayEvent, PlayOutcome, RESUME_TTL_MS, Taken, WATCH_SLACK_SECONDS,
};

/// A watch session.
#[derive(Debug, Clone)]
struct Session {
    video_id: i64,
    viewer: String,
    position: i32,
    reported_ms: i64,
    expires_ms: i64,
}

#[derive(Default)]
struct State {
    /// (video, viewer) → until when a further view is a duplicate.
    view_dedupe: HashMap<(i64, String), i64>,
    /// (video, viewer, slot) → until when a further ad view is a duplicate.
    ad_dedupe: HashMap<(i64, String, i32), i64>,
    sessions: HashMap<String, Session>,
    /// (video, viewer) → (position, expires).
    resume: HashMap<(i64, String), (i32, i64)>,
    counters: HashMap<Bucket, Counts>,
    pending: HashMap<Bucket, (String, Counts)>,
    /// The newest event time seen, for purging expired entries.
    latest_ms: i64,
}

impl State {
    fn counters(&mut self, bucket: Bucket) -> &mut Counts {
        self.counters.entry(bucket).or_default()
    }

    fn purge_expired(&mut self) {
        let now = self.latest_ms;
        self.view_dedupe.retain(|_, until| *until > now);
        self.ad_dedupe.retain(|_, until| *until > now);
        self.sessions.retain(|_, s| s.expires_ms > now);
        self.resume.retain(|_, (_, expires)| *expires > now);
    }
}

/// Counters in this process's memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl CounterStore for MemoryStore {
    async fn play(&self, e: &PlayEvent) -> Result<PlayOutcome, CounterError> {
        let mut s = self.state.lock().await;
        s.latest_ms = s.latest_ms.max(e.now_ms);
        let key = (e.video_id, e.viewer.clone());
        let resume = match s.resume.get(&key) {
            Some(&(pos, expires)) if expires > e.now_ms && pos < e.duration_seconds => pos,
            _ => 0,
        };
        let not_counted = if e.owner {
            Some(NotCounted::Owner)
        } else if s
            .view_dedupe
            .get(&key)
            .is_some_and(|&until| until > e.now_ms)
        {
            Some(NotCounted::Duplicate)
        } else {
            s.view_dedupe.insert(key, e.now_ms + e.window_ms);
            s.counters(Bucket {
                video_id: e.video_id,
                day: e.day,
            })
            .views += 1;
            None
        };
        s.sessions.insert(
            e.session_id.clone(),
            Session {
                video_id: e.video_id,
                viewer: e.viewer.clone(),
                position: resume,
                reported_ms: e.now_ms,
                expires_ms: e.now_ms + e.session_ttl_ms,
            },
        );
        Ok(PlayOutcome {
            not_counted,
            resume_position_seconds: resume,
        })
    }

    async fn pause(&self, e: &PauseEvent) -> Result<Option<PauseOutcome>, CounterError> {
        let mut s = self.state.lock().await;
        s.latest_ms = s.latest_ms.max(e.now_ms);
        let Some(session) = s.sessions.get(&e.session_id).cloned() else {
            return Ok(None);
        };
        if session.video_id != e.video_id
            || session.viewer != e.viewer
            || session.expires_ms <= e.now_ms
        {
            return Ok(None);
        }
        let last = session.position;
        let position = e.position_seconds.min(e.duration_seconds);
        let mut added = 0_i32;
        let mut ads = 0_i32;
        if !e.owner && position > last {
            let elapsed = (e.now_ms - session.reported_ms).max(0) / 1_000;
            let cap = elapsed.saturating_add(WATCH_SLACK_SECONDS);
            added = i32::try_from(i64::from(position - last).min(cap)).unwrap_or(i32::MAX);
            if e.ads_served {
                let first = last / AD_SLOT_INTERVAL_SECONDS + 1;
                for k in first..=position / AD_SLOT_INTERVAL_SECONDS {
                    let key = (e.video_id, e.viewer.clone(), k * AD_SLOT_INTERVAL_SECONDS);
                    if s.ad_dedupe.get(&key).is_none_or(|&until| until <= e.now_ms) {
                        s.ad_dedupe.insert(key, e.now_ms + e.window_ms);
                        ads += 1;
                    }
                }
            }
        }
        if added > 0 || ads > 0 {
            let c = s.counters(Bucket {
                video_id: e.video_id,
                day: e.day,
            });
            c.watch_seconds += i64::from(added);
            c.ad_views += i64::from(ads);
        }
        s.sessions.insert(
            e.session_id.clone(),
            Session {
                position,
                reported_ms: e.now_ms,
                expires_ms: e.now_ms + e.session_ttl_ms,
                ..session
            },
        );
        s.resume.insert(
            (e.video_id, e.viewer.clone()),
            (position, e.now_ms + RESUME_TTL_MS),
        );
        Ok(Some(PauseOutcome {
            watched_seconds_added: added,
            ad_views_counted: ads,
            position_seconds: position,
        }))
    }

    async fn dirty(&self) -> Result<Vec<Bucket>, CounterError> {
        let mut s = self.state.lock().await;
        s.purge_expired();
        // Every bucket with counters or a pending batch: the maps themselves
        // are the dirty set here.
        let mut buckets: Vec<Bucket> = s.counters.keys().chain(s.pending.keys()).copied().collect();
        buckets.sort_unstable();
        buckets.dedup();
        Ok(buckets)
    }

    async fn take(&self, bucket: Bucket, token: &str) -> Result<Option<Taken>, CounterError> {
        let mut s = self.state.lock().await;
        if let Some((token, counts)) = s.pending.get(&bucket) {
            return Ok(Some(Taken {
                bucket,
                token: token.clone(),
                counts: *counts,
            }));
        }
        let Some(counts) = s.counters.remove(&bucket) else {
            return Ok(None);
        };
        s.pending.insert(bucket, (token.to_owned(), counts));
        Ok(Some(Taken {
            bucket,
            token: token.to_owned(),
            counts,
        }))
    }

    async fn release(&self, taken: &Taken) -> Result<(), CounterError> {
        let mut s = self.state.lock().await;
        if s.pending
            .get(&taken.bucket)
            .is_some_and(|(token, _)| *token == taken.token)
        {
            s.pending.remove(&taken.bucket);
        }
        Ok(())
    }

    async fn forget(&self, _bucket: Bucket) -> Result<(), CounterError> {
        // An empty bucket is in neither map: nothing to forget.
        Ok(())
    }
}
