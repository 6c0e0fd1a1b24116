//! Platform time (SPEC §2): days in the platform time zone (`Asia/Seoul`
//! unless `PLATFORM_TIME_ZONE` says otherwise).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

/// The default platform time zone (SPEC §2).
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Asia::Seoul;

/// The platform's calendar: which day an instant belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformTime {
    tz: Tz,
}

impl Default for PlatformTime {
    fn default() -> Self {
        Self::new(DEFAULT_TIME_ZONE)
    }
}

impl PlatformTime {
    /// A calendar in `tz`.
    pub fn new(tz: Tz) -> Self {
        Self { tz }
    }

    /// The zone.
    pub fn zone(&self) -> Tz {
        self.tz
    }

    /// Day D that `instant` falls in: [D 00:00, D+1 00:00) in the zone.
    pub fn day_of(&self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.tz).date_naive()
    }

    /// Today in the zone.
    pub fn today(&self) -> NaiveDate {
        self.day_of(Utc::now())
    }

    /// The first instant of `day` (its midnight in the zone; if a DST gap
    /// swallows midnight, the first instant after it).
    pub fn start_of(&self, day: NaiveDate) -> DateTime<Utc> {
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        match self.tz.from_local_datetime(&midnight) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.with_timezone(&Utc)
            }
            chrono::LocalResult::None => self
                .tz
                .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
                .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc)),
        }
    }

    /// The first instant after `day`.
    pub fn end_of(&self, day: NaiveDate) -> DateTime<Utc> {
        self.start_of(day.succ_opt().unwrap_or(day))
    }
}

/// Deserializes an IANA zone name such as `"Asia/Seoul"`.
///
/// # Errors
/// An unknown zone name.
pub fn deserialize_zone<'de, D: Deserializer<'de>>(d: D) -> Result<PlatformTime, D::Error> {
    let name = String::deserialize(d)?;
    name.parse::<Tz>()
        .map(PlatformTime::new)
        .map_err(|_| serde::de::Error::custom(format!("unknown time zone {name:?}")))
}

/// Parses a `YYYY-MM-DD` day: exactly four digits of year (0001 to 9999),
/// two of month and two of day (SPEC §7). chrono's `%Y` alone also takes
/// signed and longer years (`+262142-12-31`), days so near the end of its
/// calendar that a week's arithmetic on them overflowed (SPEC §8: no panic
/// on dates out of range).
///
/// # Errors
/// Anything else, with a message fit for a 400.
pub fn parse_day(text: &str) -> Result<NaiveDate, String> {
    let bad = || {
        format!(
            "{} is not a date (YYYY-MM-DD, years 0001 to 9999)",
            crate::error::excerpt(text)
        )
    };
    let trimmed = text.trim();
    let shape_ok = trimmed.len() == 10
        && trimmed.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok || trimmed.starts_with("0000") {
        return Err(bad());
    }
    NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seoul_midnight_splits_days() {
        let t = PlatformTime::default();
        let d = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default();
        let start = t.start_of(d);
        assert_eq!(start.to_rfc3339(), "2026-11-21T15:00:00+00:00");
        assert_eq!(t.day_of(start), d);
        assert_eq!(
            t.day_of(start - chrono::Duration::milliseconds(1)),
            d.pred_opt().unwrap_or_default()
        );
        assert_eq!(t.end_of(d) - start, chrono::Duration::hours(24));
    }

    #[test]
    fn days_parse_strictly() {
        assert!(parse_day("2026-02-30").is_err());
        assert!(parse_day("20260101").is_err());
        assert!(parse_day("2026-01-01").is_ok());
        assert!(parse_day("9999-12-31").is_ok());
        for bad in [
            "+262142-12-31",
            "-0001-01-01",
            "10000-01-01",
            "0000-01-01",
            "2026-1-01",
        ] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever the text, parsing answers (and a parsed day is one of
        /// the years the platform takes, so period arithmetic has room).
        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC{0,16}|[+-]?[0-9]{1,7}-[0-9]{1,2}-[0-9]{1,2}") {
            if let Ok(day) = parse_day(&text) {
                proptest::prop_assert!((1..=9999).contains(&chrono::Datelike::year(&day)));
            }
        }
    }
}
