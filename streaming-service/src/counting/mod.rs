//! Counting (SPEC §4, §5): the dedupe check and the increments of a play or
//! a pause as one atomic step on a [`CounterStore`], in per-video, per-day
//! buckets; and the exactly-once write-back of those buckets to the
//! database ([`writeback`]).
//!
//! Two stores keep the same rules: [`redis::RedisStore`] (one Lua script
//! per step, keys sharing a per-video hash tag so it also runs on Redis
//! Cluster) and [`memory::MemoryStore`] (in-process, the all-in-one
//! default). Both are driven by the event times they are given, never by
//! their own clocks, and pass the same conformance tests.
//!
//! Write-back protocol, per bucket: `take` atomically moves the bucket's
//! counts into a pending record stamped with a fresh batch token and a
//! batch sequence number greater than every earlier one of the bucket (or
//! returns the pending record an interrupted write-back left behind); the
//! database applies the counts only if the batch's sequence is greater than
//! the row's `last_batch_seq`, in one transaction with it; `release` then
//! deletes the pending record. A crash between any two steps repeats the
//! remaining ones and neither loses nor doubles a count.
//!
//! Why a sequence and not only the token: several replicas write back the
//! same buckets, and one may take a batch that another is committing. If
//! the first commits it, releases it and commits the bucket's next batch
//! before the slow one commits the first batch again, the row's last token
//! is the next batch's and a token comparison would apply the first batch
//! twice. A new batch is only ever taken after the previous one was
//! committed and released, so a batch whose sequence is not above the
//! row's has been applied already.

pub mod memory;
pub mod redis;
mod rules;
pub mod writeback;

pub use rules::PlayRules;

use chrono::NaiveDate;

/// Seconds of content between ad slots (SPEC §4).
pub use crate::catalog::AD_SLOT_INTERVAL_SECONDS;

/// Slack on watched seconds: a session's total is at most the wall-clock
/// time since its play plus this many seconds (SPEC §4; per session, not per
/// report).
pub const WATCH_SLACK_SECONDS: i64 = 5;

/// An idle session is kept for its video's duration plus this margin,
/// seconds (capped by `SESSION_TTL_SECONDS`): a player reports at least once
/// while the video plays through, so an older session has no use.
pub const SESSION_IDLE_MARGIN_SECONDS: i64 = 1_800;

/// How long a session of a video of `duration_seconds` is kept idle,
/// milliseconds of event time: the duration plus `margin_ms`, at most
/// `max_ttl_ms`.
pub fn session_ttl_ms(duration_seconds: i32, margin_ms: i64, max_ttl_ms: i64) -> i64 {
    (i64::from(duration_seconds) * 1_000)
        .saturating_add(margin_ms)
        .min(max_ttl_ms)
}

/// A play, as the store needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayEvent {
    /// The video.
    pub video_id: i64,
    /// The viewer key (SPEC §4): `u<user id>@<ip>` or `a@<ip>`.
    pub viewer: String,
    /// The viewer is the video's owner.
    pub owner: bool,
    /// The new session's id.
    pub session_id: String,
    /// The video's length in seconds.
    pub duration_seconds: i32,
    /// Event time, Unix milliseconds.
    pub now_ms: i64,
    /// The platform day of `now_ms`.
    pub day: NaiveDate,
    /// The dedupe window, milliseconds.
    pub window_ms: i64,
    /// How long an idle session is kept, milliseconds.
    pub session_ttl_ms: i64,
}

/// Why a play did not count a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCounted {
    /// The viewer owns the video.
    Owner,
    /// The viewer key counted a view of it within the dedupe window.
    Duplicate,
}

impl NotCounted {
    /// `owner` or `duplicate` (SPEC §7).
    pub fn as_str(self) -> &'static str {
        match self {
            NotCounted::Owner => "owner",
            NotCounted::Duplicate => "duplicate",
        }
    }
}

/// What a play did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayOutcome {
    /// `None` when the view was counted.
    pub not_counted: Option<NotCounted>,
    /// Where to resume, seconds: the last saved position, or 0 when there is
    /// none or it is at or past the end.
    pub resume_position_seconds: i32,
}

/// A pause (a position report), as the store needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseEvent {
    /// The video.
    pub video_id: i64,
    /// The viewer key; must be the session's.
    pub viewer: String,
    /// The viewer is the video's owner.
    pub owner: bool,
    /// The session from play.
    pub session_id: String,
    /// The reported position, seconds (≥ 0; beyond the end means the end).
    pub position_seconds: i32,
    /// The video's length in seconds.
    pub duration_seconds: i32,
    /// Whether the video's slots are served ads now (any ad is active).
    pub ads_served: bool,
    /// Event time, Unix milliseconds.
    pub now_ms: i64,
    /// The platform day of `now_ms`.
    pub day: NaiveDate,
    /// The dedupe window for ad slots, milliseconds.
    pub window_ms: i64,
    /// How long an idle session is kept, milliseconds.
    pub session_ttl_ms: i64,
}

/// What a pause did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseOutcome {
    /// Watch seconds counted.
    pub watched_seconds_added: i32,
    /// Ad views counted.
    pub ad_views_counted: i32,
    /// The saved position, seconds.
    pub position_seconds: i32,
}

/// How long a resume position is kept: 30 days, in milliseconds.
pub const RESUME_TTL_MS: i64 = 30 * 86_400 * 1_000;

/// One video's counters of one platform day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    /// The video.
    pub video_id: i64,
    /// The day.
    pub day: NaiveDate,
}

impl Bucket {
    /// `"<video_id>:<YYYY-MM-DD>"`, the bucket's name in the dirty set.
    pub fn member(&self) -> String {
        format!("{}:{}", self.video_id, self.day.format("%Y-%m-%d"))
    }

    /// Parses [`member`](Self::member); `None` for anything else.
    pub fn from_member(member: &str) -> Option<Self> {
        let (video, day) = member.split_once(':')?;
        Some(Self {
            video_id: video.parse().ok()?,
            day: NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?,
        })
    }
}

/// Counts of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Views.
    pub views: i64,
    /// Watch seconds.
    pub watch_seconds: i64,
    /// Ad views.
    pub ad_views: i64,
}

/// A bucket's counts taken for write-back, with the batch token that makes
/// applying them idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Which bucket.
    pub bucket: Bucket,
    /// The batch token (a UUID).
    pub token: String,
    /// The batch sequence number: greater than every earlier batch's of the
    /// bucket (microseconds of the store's clock, or one more than the last
    /// when that is not greater). `None` for a batch that a store without
    /// sequences (an earlier release) left pending: the database then
    /// compares tokens, as that release did.
    pub seq: Option<i64>,
    /// The counts.
    pub counts: Counts,
}

/// A counter store failure (the store is unreachable or answered nonsense).
#[derive(Debug, thiserror::Error)]
#[error("counter store: {0}")]
pub struct CounterError(pub String);

/// Where the counters live (SPEC §5).
#[async_trait::async_trait]
pub trait CounterStore: Send + Sync {
    /// Starts a session and counts a view unless the viewer owns the video
    /// or counted one within the window; atomically.
    ///
    /// # Errors
    /// The store failed; nothing was counted.
    async fn play(&self, event: &PlayEvent) -> Result<PlayOutcome, CounterError>;

    /// Applies a position report; atomically. `None` when the session does
    /// not exist (or belongs to another viewer key or video).
    ///
    /// # Errors
    /// The store failed; nothing was counted.
    async fn pause(&self, event: &PauseEvent) -> Result<Option<PauseOutcome>, CounterError>;

    /// Buckets that may hold counts not yet written back.
    ///
    /// # Errors
    /// The store failed.
    async fn dirty(&self) -> Result<Vec<Bucket>, CounterError>;

    /// Takes `bucket`'s counts under `token` and the bucket's next batch
    /// sequence number, or returns the counts an earlier take left pending
    /// (with that take's token and sequence). `None` when the bucket holds
    /// nothing.
    ///
    /// # Errors
    /// The store failed.
    async fn take(&self, bucket: Bucket, token: &str) -> Result<Option<Taken>, CounterError>;

    /// Forgets a taken batch after the database committed it.
    ///
    /// # Errors
    /// The store failed; the batch stays pending and is applied again
    /// (idempotently) by the next write-back.
    async fn release(&self, taken: &Taken) -> Result<(), CounterError>;

    /// Forgets a bucket that `take` found empty.
    ///
    /// # Errors
    /// The store failed.
    async fn forget(&self, bucket: Bucket) -> Result<(), CounterError>;

    /// Whether the store answers (the gRPC health status depends on it);
    /// an in-process store always does.
    ///
    /// # Errors
    /// The store is unreachable.
    async fn ping(&self) -> Result<(), CounterError> {
        Ok(())
    }

    /// The use of the store's connection pool, for `/metrics`; `None` for a
    /// store without one (in-process).
    fn pool_use(&self) -> Option<common::metrics::PoolUse> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_members_round_trip() {
        let b = Bucket {
            video_id: 42,
            day: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default(),
        };
        assert_eq!(b.member(), "42:2026-11-22");
        assert_eq!(Bucket::from_member(&b.member()), Some(b));
        assert_eq!(Bucket::from_member("x:2026-11-22"), None);
    }
}
