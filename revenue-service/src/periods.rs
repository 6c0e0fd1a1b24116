//! Report periods (SPEC §2, §7): a day, its ISO week (Monday to Sunday), or
//! its calendar month.

use chrono::{Datelike, Duration, NaiveDate};

/// A report period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// One day.
    Day,
    /// The ISO week, Monday to Sunday.
    Week,
    /// The calendar month.
    Month,
}

impl Period {
    /// Parses `day`, `week` or `month`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            _ => Err(format!("{text:?} is not one of day, week, month")),
        }
    }

    /// `day`, `week` or `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The first and last day (inclusive) of the period containing `date`.
    pub fn range(self, date: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Period::Day => (date, date),
            Period::Week => {
                let start = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
                (start, start + Duration::days(6))
            }
            Period::Month => {
                let start = date.with_day(1).unwrap_or(date);
                let next = if start.month() == 12 {
                    NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
                };
                (start, next.and_then(|n| n.pred_opt()).unwrap_or(start))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn weeks_are_iso_and_months_calendar() {
        assert_eq!(
            Period::Week.range(d("2026-11-22")),
            (d("2026-11-16"), d("2026-11-22"))
        );
        assert_eq!(
            Period::Week.range(d("2026-11-16")),
            (d("2026-11-16"), d("2026-11-22"))
        );
        assert_eq!(
            Period::Month.range(d("2026-12-31")),
            (d("2026-12-01"), d("2026-12-31"))
        );
        assert_eq!(
            Period::Month.range(d("2028-02-10")),
            (d("2028-02-01"), d("2028-02-29"))
        );
        assert_eq!(
            Period::Day.range(d("2026-01-01")),
            (d("2026-01-01"), d("2026-01-01"))
        );
        assert!(Period::parse("year").is_err());
    }
}
