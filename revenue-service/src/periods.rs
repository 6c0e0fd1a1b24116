//! Report periods (SPEC §2, §7): a day, its ISO week (Monday to Sunday), or
//! its calendar month.

use chrono::{Datelike, Days, NaiveDate};

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
            _ => Err(format!(
                "{} is not one of day, week, month",
                common::error::excerpt(text)
            )),
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
    /// Never panics: at the very ends of chrono's calendar a week is cut at
    /// the end (days from `common::time::parse_day` never come near it).
    pub fn range(self, date: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Period::Day => (date, date),
            Period::Week => {
                let back = Days::new(u64::from(date.weekday().num_days_from_monday()));
                let start = date.checked_sub_days(back).unwrap_or(date);
                (start, start.checked_add_days(Days::new(6)).unwrap_or(date))
            }
            Period::Month => {
                let start = date.with_day(1).unwrap_or(date);
                let next = if start.month() == 12 {
                    NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
                };
                (
                    start,
                    next.and_then(|n| n.pred_opt()).unwrap_or(NaiveDate::MAX),
                )
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

    proptest::proptest! {
        /// Every period of every day chrono can hold is answered, without
        /// a panic, and contains the day.
        #[test]
        fn every_day_has_a_period(days in proptest::num::i32::ANY) {
            let date = NaiveDate::from_num_days_from_ce_opt(days).unwrap_or(NaiveDate::MAX);
            for p in [Period::Day, Period::Week, Period::Month] {
                let (start, end) = p.range(date);
                proptest::prop_assert!(start <= date && date <= end);
            }
        }
    }
}
