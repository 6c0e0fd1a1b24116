//! The platform's vocabulary, shared by every crate: amounts in [`Won`],
//! ids ([`VideoId`], [`CreatorId`], [`RunId`]), a [`Tally`] of counts and
//! amounts, and the closed sets of settlement and reporting: [`Period`],
//! [`Metric`], [`RunStatus`] and [`RunErrorCode`] (SPEC §6, §7).
//!
//! The enums live in [`enums`]: each has one text form (snake_case, the
//! HTTP API's and the database's) and converts to and from its
//! `revenue.v1` protobuf enum; the protobuf `*_UNSPECIFIED` value converts
//! to [`Unspecified`].

mod enums;

use std::fmt;

use proto::revenue::v1 as pb;
use sea_orm::{DeriveValueType, FromQueryResult};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use enums::{DayState, Metric, Period, RunErrorCode, RunStatus, TransferKind, Unspecified};
pub(crate) use enums::{parse_name, text_enum};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
