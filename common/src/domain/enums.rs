//! The closed sets of settlement and reporting (SPEC §6, §7), each with
//! one snake_case text form and a `revenue.v1` protobuf twin.

use std::str::FromStr;

use chrono::{Datelike, Days, NaiveDate};
use proto::revenue::v1 as pb;
use sea_orm::{DeriveActiveEnum, EnumIter};
use strum::VariantNames;

/// A protobuf enum field held its `*_UNSPECIFIED` value (or a number this
/// build does not know): the named field was not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not set")]
pub struct Unspecified(pub &'static str);

/// `text` as one of `T`'s names, or a message listing them (for a field
/// violation).
pub(crate) fn parse_name<T: FromStr + VariantNames>(text: &str) -> Result<T, String> {
    T::from_str(text).map_err(|_| {
        format!(
            "{} is not one of {}",
            crate::error::excerpt(text),
            T::VARIANTS.join(", ")
        )
    })
}

/// Declares a closed set with one snake_case text form: the enum with the
/// derives every such set has (JSON, OpenAPI, `FromStr`, the list of
/// names), `parse` (a field violation's message on failure), `as_str` and
/// `Display`. Extra derives and attributes (sea-orm's, for a database
/// column) go before `pub enum`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$variant_meta:meta])* $variant:ident,)+ }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema,
            ::strum::EnumString, ::strum::IntoStaticStr, ::strum::VariantNames,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Parses the snake_case name.
            ///
            /// # Errors
            /// A message for a field violation naming the accepted values.
            pub fn parse(text: &str) -> Result<Self, String> {
                $crate::domain::parse_name(text)
            }

            /// The snake_case name.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

/// Declares the two conversions between a domain enum and its protobuf
/// enum, variant for variant.
macro_rules! protobuf {
    ($name:ident, $field:literal, $($variant:ident),+) => {
        impl From<$name> for pb::$name {
            fn from(v: $name) -> Self {
                match v {
                    $($name::$variant => pb::$name::$variant,)+
                }
            }
        }

        impl TryFrom<pb::$name> for $name {
            type Error = Unspecified;

            fn try_from(v: pb::$name) -> Result<Self, Unspecified> {
                match v {
                    $(pb::$name::$variant => Ok($name::$variant),)+
                    pb::$name::Unspecified => Err(Unspecified($field)),
                }
            }
        }
    };
}

text_enum! {
    /// A report's period (SPEC §7): one day, the ISO week (Monday to Sunday)
    /// or the calendar month around a date.
    pub enum Period {
        /// The day itself.
        Day,
        /// Monday to Sunday.
        Week,
        /// The calendar month.
        Month,
    }
}
protobuf!(Period, "period", Day, Week, Month);

impl Period {
    /// The first and last day (inclusive) of the period around `date`.
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

text_enum! {
    /// What the top videos are ranked by (SPEC §7).
    pub enum Metric {
        /// Views.
        Views,
        /// Watch seconds.
        WatchTime,
    }
}
protobuf!(Metric, "metric", Views, WatchTime);

text_enum! {
    /// A settlement run's state (SPEC §7): `queued` → `running` → `succeeded`
    /// or `failed`; a run that finds its day not written back goes back to
    /// `queued`.
    #[derive(EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "Text")]
    pub enum RunStatus {
        /// Waiting for a worker (or for the day's write-back).
        #[sea_orm(string_value = "queued")]
        Queued,
        /// Being settled.
        #[sea_orm(string_value = "running")]
        Running,
        /// Done; the day's rows are in place.
        #[sea_orm(string_value = "succeeded")]
        Succeeded,
        /// Stopped with an error; the day's earlier rows are untouched.
        #[sea_orm(string_value = "failed")]
        Failed,
    }
}
protobuf!(RunStatus, "status", Queued, Running, Succeeded, Failed);

text_enum! {
    /// Why a run is not done, for programs (its `error` says it for people):
    /// recorded on a failed run, and on a queued run that waits.
    #[derive(EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "Text")]
    pub enum RunErrorCode {
        /// The day's counts are not all written back yet; the run stays queued
        /// and is tried again.
        #[sea_orm(string_value = "not_written_back")]
        NotWrittenBack,
        /// The streaming service failed or timed out after every retry, or its
        /// circuit breaker is open, or it refused the pull (the day's counts
        /// are archived, issue 19: its `error` says so; restore the month).
        #[sea_orm(string_value = "streaming_unavailable")]
        StreamingUnavailable,
        /// No rate card is in effect on the day, or it is malformed.
        #[sea_orm(string_value = "rate_card")]
        RateCard,
        /// An amount does not fit in 64 bits of won (SPEC §8).
        #[sea_orm(string_value = "amount_overflow")]
        AmountOverflow,
        /// The revenue database failed.
        #[sea_orm(string_value = "database")]
        Database,
        /// A later day the run must restate stayed held by another run
        /// (SPEC §11.2).
        #[sea_orm(string_value = "day_busy")]
        DayBusy,
    }
}
protobuf!(
    RunErrorCode,
    "error_code",
    NotWrittenBack,
    StreamingUnavailable,
    RateCard,
    AmountOverflow,
    Database,
    DayBusy
);

text_enum! {
    /// A settled day's state (SPEC §11.2): `estimated` until
    /// `SETTLEMENT_FINAL_AFTER_DAYS` days have passed after it, then
    /// `final`; a final day whose amounts later changed is `restated`.
    pub enum DayState {
        /// Its counts may still change without the day being called restated.
        Estimated,
        /// Closed: a change from now on is a restatement.
        Final,
        /// Final, and its amounts changed since.
        Restated,
    }
}
protobuf!(DayState, "day_state", Estimated, Final, Restated);

text_enum! {
    /// A ledger transfer's kind (SPEC §11.1).
    #[derive(EnumIter, DeriveActiveEnum)]
    #[sea_orm(rs_type = "String", db_type = "Text")]
    pub enum TransferKind {
        /// The first settlement of a video's day.
        #[sea_orm(string_value = "earning")]
        Earning,
        /// A later change to a video's day, either direction.
        #[sea_orm(string_value = "restatement")]
        Restatement,
        /// A change that an invalid-traffic adjustment caused (SPEC §11.3).
        #[sea_orm(string_value = "adjustment")]
        Adjustment,
        /// Money paid out to the creator.
        #[sea_orm(string_value = "payout")]
        Payout,
        /// Income tax withheld from a payout.
        #[sea_orm(string_value = "income_tax")]
        IncomeTax,
        /// Local income tax withheld from a payout.
        #[sea_orm(string_value = "local_tax")]
        LocalTax,
    }
}
protobuf!(
    TransferKind,
    "kind",
    Earning,
    Restatement,
    Adjustment,
    Payout,
    IncomeTax,
    LocalTax
);

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
    }

    #[test]
    fn names_parse_and_print_one_way() {
        assert_eq!(Period::parse("week"), Ok(Period::Week));
        assert_eq!(
            Period::parse("year"),
            Err("\"year\" is not one of day, week, month".to_owned())
        );
        assert_eq!(Metric::parse("watch_time"), Ok(Metric::WatchTime));
        assert_eq!(Metric::WatchTime.as_str(), "watch_time");
        assert_eq!(RunStatus::Succeeded.to_string(), "succeeded");
        assert_eq!(
            serde_json::to_string(&RunErrorCode::NotWrittenBack).ok(),
            Some("\"not_written_back\"".to_owned())
        );
    }

    #[test]
    fn protobuf_enums_round_trip_and_unspecified_is_refused() {
        for status in [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
        ] {
            assert_eq!(RunStatus::try_from(pb::RunStatus::from(status)), Ok(status));
        }
        assert_eq!(
            Period::try_from(pb::Period::Unspecified),
            Err(Unspecified("period"))
        );
    }

    proptest::proptest! {
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
