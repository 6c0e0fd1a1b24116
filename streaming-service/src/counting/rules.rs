//! The rules and limits of play and pause the handlers apply (SPEC §4).

use common::time::PlatformTime;

use super::session_ttl_ms;
use crate::clock::Clock;

/// Rules and limits of play and pause.
#[derive(Debug, Clone, Copy)]
pub struct PlayRules {
    /// SPEC §4 dedupe window, milliseconds.
    pub window_ms: i64,
    /// The longest an idle session is kept, milliseconds (a session of a
    /// video is kept for [`session_ttl_ms`] of its duration).
    pub session_ttl_ms: i64,
    /// What an idle session is kept beyond its video's duration,
    /// milliseconds of event time.
    pub session_idle_margin_ms: i64,
    /// The platform calendar.
    pub time: PlatformTime,
    /// Event time.
    pub clock: Clock,
}

impl PlayRules {
    /// How long a session of a video of `duration_seconds` is kept idle,
    /// milliseconds.
    pub fn session_ttl(&self, duration_seconds: i32) -> i64 {
        session_ttl_ms(
            duration_seconds,
            self.session_idle_margin_ms,
            self.session_ttl_ms,
        )
    }
}
