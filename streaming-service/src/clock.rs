//! The streaming service's clock. Every count belongs to the day of its
//! event time at the service (SPEC §2), so play, pause, the ads active
//! "today" and the watermark all read the time here.
//!
//! In production this is the system clock and nothing else. For development
//! a [`DevClock`] compresses time, so that a simulated day passes in a
//! minute (`stack demo`, `stack dev-streaming`). It is deliberately not a
//! setting: no environment variable or configuration file can turn it on;
//! only those development commands set it in code.

use std::str::FromStr;

use chrono::{DateTime, Utc};

/// A compressed clock: at the wall-clock instant `anchor` it reads `start`,
/// and it runs `speed` times faster than the wall clock (development only).
///
/// Written as `START@ANCHORxSPEED`, both instants in RFC 3339, e.g.
/// `2026-11-21T00:00:00+09:00@2026-11-22T21:00:00Zx1440`: whoever knows this
/// text (a traffic simulator on the same machine) can compute the reading of
/// any wall-clock instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevClock {
    /// The reading at `anchor`.
    pub start: DateTime<Utc>,
    /// The wall-clock instant at which the clock reads `start`.
    pub anchor: DateTime<Utc>,
    /// Simulated seconds per wall-clock second (1 to 100,000).
    pub speed: u32,
}

impl DevClock {
    /// The reading at the wall-clock instant `wall`.
    pub fn at(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        let elapsed_us = (wall - self.anchor).num_microseconds().unwrap_or(i64::MAX);
        self.start
            + chrono::Duration::microseconds(elapsed_us.saturating_mul(i64::from(self.speed)))
    }
}

impl FromStr for DevClock {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (start, rest) = text.split_once('@').ok_or("expected START@ANCHORxSPEED")?;
        let (anchor, speed) = rest.rsplit_once('x').ok_or("expected START@ANCHORxSPEED")?;
        let instant = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("{s:?} is not an RFC 3339 instant: {e}"))
        };
        let speed: u32 = speed
            .parse()
            .map_err(|_| format!("{speed:?} is not a whole speed"))?;
        if !(1..=100_000).contains(&speed) {
            return Err(format!("speed {speed} is outside 1 to 100,000"));
        }
        Ok(Self {
            start: instant(start)?,
            anchor: instant(anchor)?,
            speed,
        })
    }
}

impl std::fmt::Display for DevClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}x{}",
            self.start.to_rfc3339(),
            self.anchor.to_rfc3339(),
            self.speed
        )
    }
}

/// The time source of play, pause, ad status and the watermark: the system
/// clock unless a development command set a [`DevClock`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    dev: Option<DevClock>,
}

impl Clock {
    /// The system clock, or `dev` when given.
    pub fn new(dev: Option<DevClock>) -> Self {
        Self { dev }
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        let wall = Utc::now();
        self.dev.map_or(wall, |d| d.at(wall))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dev_clock_runs_from_its_anchor_at_its_speed() {
        let clock: DevClock = "2026-11-21T00:00:00+09:00@2026-11-22T21:00:00Zx1440"
            .parse()
            .expect("parses");
        let anchor = clock.anchor;
        assert_eq!(clock.at(anchor), clock.start);
        // One wall-clock minute is one simulated day.
        assert_eq!(
            clock.at(anchor + chrono::Duration::minutes(1)),
            clock.start + chrono::Duration::days(1)
        );
        assert_eq!(clock.to_string().parse::<DevClock>(), Ok(clock));
    }

    #[test]
    fn bad_dev_clocks_are_refused() {
        for text in [
            "2026-11-21T00:00:00Z",
            "2026-11-21T00:00:00Z@2026-11-22T21:00:00Z",
            "2026-11-21T00:00:00Z@2026-11-22T21:00:00Zx0",
            "2026-11-21T00:00:00Z@2026-11-22T21:00:00Zxfast",
            "yesterday@2026-11-22T21:00:00Zx10",
        ] {
            assert!(text.parse::<DevClock>().is_err(), "{text}");
        }
    }
}
