//! Pricing a video's day (SPEC §6, §11.3): the rate card in effect, the
//! adjustments that remove invalid traffic, and the priced row.

use std::collections::HashMap;

use chrono::NaiveDate;
use common::domain::{VideoId, Won};
use proto::streaming::v1::DailyCount;
use sea_orm::{ConnectionTrait, DatabaseTransaction, EntityTrait, QueryOrder};

use super::pull::PullError;
use crate::{
    entity::rate_card,
    money::{DayAmounts, RateCard, Tier, day_amounts},
    sql::stmt,
};

/// The rate cards, oldest first.
pub(super) struct RateCards(Vec<RateCard>);

impl RateCards {
    /// Every card in the database.
    ///
    /// # Errors
    /// Database failures, a malformed card.
    pub(super) async fn load(db: &impl ConnectionTrait) -> anyhow::Result<Self> {
        let rows = rate_card::Entity::find()
            .order_by_asc(rate_card::Column::EffectiveFrom)
            .all(db)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(RateCard {
                    version: row.version,
                    effective_from: row.effective_from,
                    video_tiers: serde_json::from_str::<Vec<Tier>>(&row.video_tiers)?,
                    ad_tiers: serde_json::from_str::<Vec<Tier>>(&row.ad_tiers)?,
                })
            })
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    /// The card in effect on `day`: the newest effective on or before it.
    ///
    /// # Errors
    /// No card is in effect yet.
    pub(super) fn on(&self, day: NaiveDate) -> anyhow::Result<&RateCard> {
        self.0
            .iter()
            .rev()
            .find(|c| c.effective_from <= day)
            .ok_or_else(|| anyhow::anyhow!("no rate card in effect on {day}"))
    }
}

/// The adjustments of a video that pricing one of its days needs (SPEC
/// §11.3): the sums of that day's, and of every earlier day's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Adjusted {
    /// Invalid views of the day.
    pub views: i64,
    /// Invalid ad views of the day.
    pub ad_views: i64,
    /// Invalid watch seconds of the day.
    pub watch_seconds: i64,
    /// Invalid views of every earlier day.
    pub views_before: i64,
    /// Invalid ad views of every earlier day.
    pub ad_views_before: i64,
}

/// One video's day priced: the counts after adjustments and their amounts.
#[derive(Debug, Clone)]
pub(super) struct Priced {
    pub(super) video_id: VideoId,
    pub(super) creator_id: i64,
    pub(super) title: String,
    pub(super) views: i64,
    pub(super) watch_seconds: i64,
    pub(super) ad_views: i64,
    pub(super) original_views: i64,
    pub(super) original_ad_views: i64,
    pub(super) amounts: DayAmounts,
    pub(super) total: Won,
    pub(super) rate_card_version: i32,
}

/// Prices `count` with `card` after removing `adjusted` (never below 0:
/// an import may lower a day under its adjustments).
pub(super) fn price(
    card: &RateCard,
    count: &DailyCount,
    adjusted: Adjusted,
) -> Result<Priced, PullError> {
    let video_id = VideoId(count.video_id);
    let less = |a: i64, b: i64| a.saturating_sub(b).max(0);
    let views = less(count.views, adjusted.views);
    let ad_views = less(count.ad_views, adjusted.ad_views);
    let (amounts, total) = day_amounts(
        card,
        less(count.cumulative_views_before, adjusted.views_before),
        views,
        less(count.cumulative_ad_views_before, adjusted.ad_views_before),
        ad_views,
    )
    .and_then(|a| Some((a, a.total()?)))
    .ok_or(PullError::AmountOverflow(video_id))?;
    Ok(Priced {
        video_id,
        creator_id: count.creator_id,
        title: count.title.clone(),
        views,
        watch_seconds: less(count.watch_seconds, adjusted.watch_seconds),
        ad_views,
        original_views: count.views,
        original_ad_views: count.ad_views,
        amounts,
        total,
        rate_card_version: card.version,
    })
}

/// The adjustments every video with one on or before `day` needs to price
/// `day`.
pub(super) async fn adjustments_of_day(
    txn: &DatabaseTransaction,
    day: NaiveDate,
) -> Result<HashMap<VideoId, Adjusted>, sea_orm::DbErr> {
    let rows = txn
        .query_all(stmt(
            txn.get_database_backend(),
            "SELECT video_id, \
               CAST(SUM(CASE WHEN day = $1 THEN views ELSE 0 END) AS BIGINT) AS views, \
               CAST(SUM(CASE WHEN day = $1 THEN ad_views ELSE 0 END) AS BIGINT) AS ad_views, \
               CAST(SUM(CASE WHEN day = $1 THEN watch_seconds ELSE 0 END) AS BIGINT) AS watch_seconds, \
               CAST(SUM(CASE WHEN day < $1 THEN views ELSE 0 END) AS BIGINT) AS views_before, \
               CAST(SUM(CASE WHEN day < $1 THEN ad_views ELSE 0 END) AS BIGINT) AS ad_views_before \
             FROM adjustments WHERE day <= $1 GROUP BY video_id",
            vec![day.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                VideoId(r.try_get("", "video_id")?),
                Adjusted {
                    views: r.try_get("", "views")?,
                    ad_views: r.try_get("", "ad_views")?,
                    watch_seconds: r.try_get("", "watch_seconds")?,
                    views_before: r.try_get("", "views_before")?,
                    ad_views_before: r.try_get("", "ad_views_before")?,
                },
            ))
        })
        .collect()
}
