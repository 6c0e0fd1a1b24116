//! The in-process counter store of the all-in-one mode: the same rules as
//! the Redis scripts, under one mutex. Nothing survives a restart except
//! what the write-back (run on graceful shutdown) saved.
//!
//! Unlike Redis, this store has no memory limit of its own, so it bounds its
//! sessions and its resume positions: at most
//! [`MemoryStore::with_max_sessions`] of each (default
//! [`DEFAULT_MAX_SESSIONS`]), the least recently written evicted first;
//! expired ones are purged at every write-back.

use std::collections::{BTreeSet, HashMap};

use tokio::sync::Mutex;

use super::{
    AD_SLOT_INTERVAL_SECONDS, Bucket, CounterError, CounterStore, Counts, NotCounted, PauseEvent,
    PauseOutcome, PlayEvent, PlayOutcome, RESUME_TTL_MS, Taken, WATCH_SLACK_SECONDS,
};

/// Sessions kept at most, by default (about 300 bytes each with their
/// index: some 60 MB).
pub const DEFAULT_MAX_SESSIONS: usize = 200_000;

/// A watch session.
#[derive(Debug, Clone)]
struct Session {
    video_id: i64,
    viewer: String,
    position: i32,
    /// When it was played, Unix ms.
    started_ms: i64,
    /// Watched seconds counted in it so far.
    watched: i64,
    /// Ad views counted in it so far.
    ad_views: i64,
    expires_ms: i64,
}

/// Entries by key with their order of last write: at most a given number,
/// the least recently written evicted first.
struct Recent<K, V> {
    by_key: HashMap<K, (V, i64)>,
    /// (last write, key): the first is the one to evict.
    by_age: BTreeSet<(i64, K)>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            by_age: BTreeSet::new(),
        }
    }
}

impl<K: Clone + Eq + std::hash::Hash + Ord, V> Recent<K, V> {
    fn get(&self, key: &K) -> Option<&V> {
        self.by_key.get(key).map(|(value, _)| value)
    }

    fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Inserts or replaces `key`, written at `at_ms`, then evicts the least
    /// recently written entries beyond `max`.
    fn put(&mut self, key: K, value: V, at_ms: i64, max: usize) {
        if let Some((_, old)) = self.by_key.insert(key.clone(), (value, at_ms)) {
            self.by_age.remove(&(old, key.clone()));
        }
        self.by_age.insert((at_ms, key));
        while self.by_key.len() > max {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.by_key.remove(&oldest);
        }
    }

    /// Keeps the entries for which `keep` holds.
    fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        let by_age = &mut self.by_age;
        self.by_key.retain(|key, (value, at)| {
            let kept = keep(value);
            if !kept {
                by_age.remove(&(*at, key.clone()));
            }
            kept
        });
    }
}

#[derive(Default)]
struct State {
    /// (video, viewer) → until when a further view is a duplicate.
    view_dedupe: HashMap<(i64, String), i64>,
    /// (video, viewer, slot) → until when a further ad view is a duplicate.
    ad_dedupe: HashMap<(i64, String, i32), i64>,
    sessions: Recent<String, Session>,
    /// (video, viewer) → (position, expires).
    resume: Recent<(i64, String), (i32, i64)>,
    counters: HashMap<Bucket, Counts>,
    /// bucket → (token, sequence, counts) of its taken batch.
    pending: HashMap<Bucket, (String, i64, Counts)>,
    /// The last batch sequence given out (one sequence for every bucket).
    last_seq: i64,
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
        self.sessions.retain(|s| s.expires_ms > now);
        self.resume.retain(|(_, expires)| *expires > now);
    }
}

/// Counters in this process's memory.
pub struct MemoryStore {
    state: Mutex<State>,
    max_sessions: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_max_sessions(DEFAULT_MAX_SESSIONS)
    }
}

impl MemoryStore {
    /// An empty store keeping at most [`DEFAULT_MAX_SESSIONS`] sessions.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping at most `max_sessions` sessions (at least 1).
    pub fn with_max_sessions(max_sessions: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            max_sessions: max_sessions.max(1),
        }
    }

    /// How many sessions the store holds now.
    pub async fn session_count(&self) -> usize {
        self.state.lock().await.sessions.len()
    }
}

/// What a report counts in a session (SPEC §4), the rules of `pause.lua`.
struct Counted {
    watched: i32,
    ad_slot: Option<i32>,
}

/// Watched seconds: the forward distance, within the session's wall-clock
/// age plus the slack minus what it already counted. Ad view: the last
/// slot crossed, while the session's ad views stay within 1 + ⌊age / 300⌋.
fn count_report(session: &Session, position: i32, e: &PauseEvent) -> Counted {
    let last = session.position;
    if e.owner || position <= last {
        return Counted {
            watched: 0,
            ad_slot: None,
        };
    }
    let elapsed = (e.now_ms - session.started_ms).max(0) / 1_000;
    let budget = elapsed
        .saturating_add(WATCH_SLACK_SECONDS)
        .saturating_sub(session.watched)
        .max(0);
    let watched = i32::try_from(i64::from(position - last).min(budget)).unwrap_or(i32::MAX);
    let step = AD_SLOT_INTERVAL_SECONDS;
    let slot = position / step * step;
    let room = session.ad_views < 1 + elapsed / i64::from(step);
    Counted {
        watched,
        ad_slot: (e.ads_served && slot > last && room).then_some(slot),
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
            s.view_dedupe
                .insert(key, e.now_ms.saturating_add(e.window_ms));
            s.counters(Bucket {
                video_id: e.video_id,
                day: e.day,
            })
            .views += 1;
            None
        };
        s.sessions.put(
            e.session_id.clone(),
            Session {
                video_id: e.video_id,
                viewer: e.viewer.clone(),
                position: resume,
                started_ms: e.now_ms,
                watched: 0,
                ad_views: 0,
                expires_ms: e.now_ms.saturating_add(e.session_ttl_ms),
            },
            e.now_ms,
            self.max_sessions,
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
        let position = e.position_seconds.min(e.duration_seconds);
        let counted = count_report(&session, position, e);
        let mut ads = 0_i32;
        if let Some(slot) = counted.ad_slot {
            let key = (e.video_id, e.viewer.clone(), slot);
            if s.ad_dedupe.get(&key).is_none_or(|&until| until <= e.now_ms) {
                s.ad_dedupe
                    .insert(key, e.now_ms.saturating_add(e.window_ms));
                ads = 1;
            }
        }
        let added = counted.watched;
        if added > 0 || ads > 0 {
            let c = s.counters(Bucket {
                video_id: e.video_id,
                day: e.day,
            });
            c.watch_seconds += i64::from(added);
            c.ad_views += i64::from(ads);
        }
        s.sessions.put(
            e.session_id.clone(),
            Session {
                position,
                watched: session.watched + i64::from(added),
                ad_views: session.ad_views + i64::from(ads),
                expires_ms: e.now_ms.saturating_add(e.session_ttl_ms),
                ..session
            },
            e.now_ms,
            self.max_sessions,
        );
        s.resume.put(
            (e.video_id, e.viewer.clone()),
            (position, e.now_ms.saturating_add(RESUME_TTL_MS)),
            e.now_ms,
            self.max_sessions,
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
        if let Some((token, seq, counts)) = s.pending.get(&bucket) {
            return Ok(Some(Taken {
                bucket,
                token: token.clone(),
                seq: Some(*seq),
                counts: *counts,
            }));
        }
        let Some(counts) = s.counters.remove(&bucket) else {
            return Ok(None);
        };
        // The wall clock in microseconds, strictly increasing: the database
        // may hold sequences of an earlier process (an embedded database).
        let now_us = chrono::Utc::now().timestamp_micros();
        let seq = now_us.max(s.last_seq.saturating_add(1));
        s.last_seq = seq;
        s.pending.insert(bucket, (token.to_owned(), seq, counts));
        Ok(Some(Taken {
            bucket,
            token: token.to_owned(),
            seq: Some(seq),
            counts,
        }))
    }

    async fn release(&self, taken: &Taken) -> Result<(), CounterError> {
        let mut s = self.state.lock().await;
        if s.pending
            .get(&taken.bucket)
            .is_some_and(|(token, _, _)| *token == taken.token)
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
