//! The platform's vocabulary, shared by every crate: amounts in [`Won`],
//! ids ([`VideoId`], [`CreatorId`], [`RunId`]), a [`Tally`] of counts and
//! amounts, and the closed sets of settlement and reporting: [`Period`],
//! [`Metric`], [`RunStatus`] and [`RunErrorCode`] (SPEC §6, §7).
//!
//! Each enum has one text form (snake_case, the HTTP API's and the
//! database's) and converts to and from its `revenue.v1` protobuf enum;
//! the protobuf `*_UNSPECIFIED` value converts to [`Unspecified`].

use std::{fmt, str::FromStr};

use chrono::{Datelike, Days, NaiveDate};
use proto::revenue::v1 as pb;
use sea_orm::{DeriveActiveEnum, DeriveValueType, EnumIter, FromQueryResult};
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantNames};
use utoipa::ToSchema;

/// An amount of Korean won: a whole number, never a float (SPEC §6, §8).
/// Sums go through [`Won::checked_add`]; an amount that does not fit in
/// `i64` is an error, never a wrapped number.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
    DeriveValueType,
)]
#[serde(transparent)]
pub struct Won(pub i64);

impl Won {
    /// Nothing.
    pub const ZERO: Won = Won(0);

    /// `self + other`, or `None` when it does not fit in `i64`.
    pub fn checked_add(self, other: Won) -> Option<Won> {
        self.0.checked_add(other.0).map(Won)
    }
}

impl fmt::Display for Won {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} won", self.0)
    }
}

/// Declares an id newtype over `i64`: transparent in JSON, in SQL and in
/// its `Display`.
macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
            Serialize, Deserialize, ToSchema, DeriveValueType,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        /// Lets the id be (part of) an entity's primary key.
        impl sea_orm::TryFromU64 for $name {
            fn try_from_u64(n: u64) -> Result<Self, sea_orm::DbErr> {
                i64::try_from_u64(n).map(Self)
            }
        }
    };
}

id!(
    /// A video: the streaming service's `videos.id` (positive).
    VideoId
);
id!(
    /// A creator: the user service's `users.id` of a `creator` (positive).
    CreatorId
);
id!(
    /// A settlement run: the revenue service's `settlement_runs.id`.
    RunId
);

/// A video's counts and amounts over a day or a period, or a sum of such:
/// views, watch seconds and ad views, and what they earn in won (SPEC §6:
/// `total_amount = video_amount + ad_amount`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema, FromQueryResult,
)]
pub struct Tally {
    /// Views.
    pub views: i64,
    /// Watch time, seconds.
    pub watch_seconds: i64,
    /// Ad views.
    pub ad_views: i64,
    /// Earned by views, won.
    pub video_amount: Won,
    /// Earned by ad views, won.
    pub ad_amount: Won,
    /// `video_amount + ad_amount`, won.
    pub total_amount: Won,
}

impl Tally {
    /// The field-by-field sum, or `None` when any sum does not fit in `i64`
    /// (SPEC §8: checked money arithmetic).
    pub fn checked_add(&self, other: &Tally) -> Option<Tally> {
        Some(Tally {
            views: self.views.checked_add(other.views)?,
            watch_seconds: self.watch_seconds.checked_add(other.watch_seconds)?,
            ad_views: self.ad_views.checked_add(other.ad_views)?,
            video_amount: self.video_amount.checked_add(other.video_amount)?,
            ad_amount: self.ad_amount.checked_add(other.ad_amount)?,
            total_amount: self.total_amount.checked_add(other.total_amount)?,
        })
    }
}

impl From<Tally> for pb::Tally {
    fn from(t: Tally) -> Self {
        Self {
            views: t.views,
            watch_seconds: t.watch_seconds,
            ad_views: t.ad_views,
            video_amount: t.video_amount.0,
            ad_amount: t.ad_amount.0,
            total_amount: t.total_amount.0,
        }
    }
}

impl From<pb::Tally> for Tally {
    fn from(t: pb::Tally) -> Self {
        Self {
            views: t.views,
            watch_seconds: t.watch_seconds,
            ad_views: t.ad_views,
            video_amount: Won(t.video_amount),
            ad_amount: Won(t.ad_amount),
            total_amount: Won(t.total_amount),
        }
    }
}

/// A protobuf enum field held its `*_UNSPECIFIED` value (or a number this
/// build does not know): the named field was not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not set")]
pub struct Unspecified(pub &'static str);

/// `text` as one of `T`'s names, or a message listing them (for a field
/// violation).
fn parse_name<T: FromStr + VariantNames>(text: &str) -> Result<T, String> {
    T::from_str(text).map_err(|_| {
        format!(
            "{} is not one of {}",
            crate::error::excerpt(text),
            T::VARIANTS.join(", ")
        )
    })
}

/// Derives the text forms shared by the enums below.
macro_rules! named {
    ($name:ident) => {
        impl $name {
            /// Parses the snake_case name.
            ///
            /// # Errors
            /// A message for a field violation naming the accepted values.
            pub fn parse(text: &str) -> Result<Self, String> {
                parse_name(text)
            }

            /// The snake_case name.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

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

/// A report's period (SPEC §7): one day, the ISO week (Monday to Sunday)
/// or the calendar month around a date.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    EnumString,
    IntoStaticStr,
    VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Period {
    /// The day itself.
    Day,
    /// Monday to Sunday.
    Week,
    /// The calendar month.
    Month,
}
named!(Period);
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

/// What the top videos are ranked by (SPEC §7).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    EnumString,
    IntoStaticStr,
    VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Metric {
    /// Views.
    Views,
    /// Watch seconds.
    WatchTime,
}
named!(Metric);
protobuf!(Metric, "metric", Views, WatchTime);

/// A settlement run's state (SPEC §7): `queued` → `running` → `succeeded`
/// or `failed`; a run that finds its day not written back goes back to
/// `queued`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    EnumString,
    IntoStaticStr,
    VariantNames,
    EnumIter,
    DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
named!(RunStatus);
protobuf!(RunStatus, "status", Queued, Running, Succeeded, Failed);

/// Why a run is not done, for programs (its `error` says it for people):
/// recorded on a failed run, and on a queued run that waits.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    EnumString,
    IntoStaticStr,
    VariantNames,
    EnumIter,
    DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum RunErrorCode {
    /// The day's counts are not all written back yet; the run stays queued
    /// and is tried again.
    #[sea_orm(string_value = "not_written_back")]
    NotWrittenBack,
    /// The streaming service failed or timed out after every retry, or its
    /// circuit breaker is open.
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
}
named!(RunErrorCode);
protobuf!(
    RunErrorCode,
    "error_code",
    NotWrittenBack,
    StreamingUnavailable,
    RateCard,
    AmountOverflow,
    Database
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

    #[test]
    fn tallies_add_checked() {
        let one = Tally {
            views: 1,
            watch_seconds: 2,
            ad_views: 3,
            video_amount: Won(4),
            ad_amount: Won(5),
            total_amount: Won(9),
        };
        assert_eq!(one.checked_add(&one).map(|t| t.total_amount), Some(Won(18)));
        let huge = Tally {
            total_amount: Won(i64::MAX),
            ..one
        };
        assert_eq!(one.checked_add(&huge), None);
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
