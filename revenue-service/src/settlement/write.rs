//! Settling a day: its rows priced with the rate card in effect on it and
//! written in one transaction that replaces the day's earlier rows.

use chrono::NaiveDate;
use common::domain::{RunErrorCode, VideoId, Won};
use proto::streaming::v1::DailyCount;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait, sea_query::Query,
};

use super::{
    SettleError, Settler,
    pull::{PullError, retrying},
};
use crate::{
    entity::{daily_stat, rate_card},
    money::{RateCard, Tier, day_amounts},
    sql::stmt,
};

impl Settler {
    /// Settles `day`; the run's outcome or a message for its record.
    pub(super) async fn settle(&self, day: NaiveDate) -> Result<Settled, SettleError> {
        let retries = self.limits.retries;
        let watermark = retrying(retries, "watermark", || self.watermark())
            .await
            .map_err(SettleError::from)?;
        let end = self.time.end_of(day);
        if watermark < end {
            return Err(SettleError::new(
                RunErrorCode::NotWrittenBack,
                format!(
                    "waiting: the counts of {day} are not all written back yet (watermark {watermark}, day ends {end})"
                ),
            ));
        }
        let card = self
            .rate_card(day)
            .await
            .map_err(|e| SettleError::new(RunErrorCode::RateCard, format!("rate card: {e}")))?;
        let txn = self.db.begin().await.map_err(SettleError::database)?;
        let previous = previous_total(&txn, day)
            .await
            .map_err(SettleError::database)?;
        daily_stat::Entity::delete_many()
            .filter(daily_stat::Column::Day.eq(day))
            .exec(&txn)
            .await
            .map_err(SettleError::database)?;
        // Each attempt resumes after the last video written by the ones
        // before it.
        let progress = tokio::sync::Mutex::new(Progress::default());
        retrying(retries, "daily counts", || {
            self.pull(&txn, day, &card, &progress)
        })
        .await
        .map_err(SettleError::from)?;
        let progress = progress.into_inner();
        txn.commit().await.map_err(SettleError::database)?;
        self.cache.invalidate().await;
        Ok(Settled {
            rows: progress.rows,
            total_amount: progress.total_amount,
            previous_total_amount: previous,
            rate_card_version: card.version,
        })
    }

    /// The rate card in effect on `day`: the newest effective on or before.
    ///
    /// # Errors
    /// Database failures, no card, a malformed card.
    pub async fn rate_card(&self, day: NaiveDate) -> anyhow::Result<RateCard> {
        let row = rate_card::Entity::find()
            .filter(rate_card::Column::EffectiveFrom.lte(day))
            .order_by_desc(rate_card::Column::EffectiveFrom)
            .one(&self.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no rate card in effect on {day}"))?;
        Ok(RateCard {
            version: row.version,
            effective_from: row.effective_from,
            video_tiers: serde_json::from_str::<Vec<Tier>>(&row.video_tiers)?,
            ad_tiers: serde_json::from_str::<Vec<Tier>>(&row.ad_tiers)?,
        })
    }
}

/// A finished settlement.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settled {
    pub(super) rows: i64,
    pub(super) total_amount: Won,
    pub(super) previous_total_amount: Option<Won>,
    pub(super) rate_card_version: i32,
}

/// How far a pull has got.
#[derive(Debug, Default)]
pub(super) struct Progress {
    pub(super) last_video_id: VideoId,
    rows: i64,
    total_amount: Won,
}

async fn previous_total(
    txn: &DatabaseTransaction,
    day: NaiveDate,
) -> Result<Option<Won>, sea_orm::DbErr> {
    let row = txn
        .query_one(stmt(
            txn.get_database_backend(),
            "SELECT CAST(SUM(total_amount) AS BIGINT) AS total, COUNT(*) AS n FROM daily_stats WHERE day = $1",
            vec![day.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let n: i64 = row.try_get("", "n")?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(Won(row
        .try_get::<Option<i64>>("", "total")?
        .unwrap_or(0))))
}

/// Prices `batch` and inserts it.
pub(super) async fn write_rows(
    txn: &DatabaseTransaction,
    day: NaiveDate,
    card: &RateCard,
    batch: &[DailyCount],
    progress: &mut Progress,
) -> Result<(), PullError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert.into_table(daily_stat::Entity).columns([
        daily_stat::Column::Day,
        daily_stat::Column::VideoId,
        daily_stat::Column::CreatorId,
        daily_stat::Column::Title,
        daily_stat::Column::Views,
        daily_stat::Column::WatchSeconds,
        daily_stat::Column::AdViews,
        daily_stat::Column::VideoAmount,
        daily_stat::Column::AdAmount,
        daily_stat::Column::TotalAmount,
        daily_stat::Column::RateCardVersion,
    ]);
    for c in batch {
        let video_id = VideoId(c.video_id);
        let (amounts, total) = day_amounts(
            card,
            c.cumulative_views_before,
            c.views,
            c.cumulative_ad_views_before,
            c.ad_views,
        )
        .and_then(|a| Some((a, a.total()?)))
        .ok_or(PullError::AmountOverflow(video_id))?;
        insert.values_panic([
            day.into(),
            c.video_id.into(),
            c.creator_id.into(),
            c.title.clone().into(),
            c.views.into(),
            c.watch_seconds.into(),
            c.ad_views.into(),
            amounts.video_amount.into(),
            amounts.ad_amount.into(),
            total.into(),
            card.version.into(),
        ]);
        progress.rows += 1;
        progress.total_amount = progress
            .total_amount
            .checked_add(total)
            .ok_or(PullError::AmountOverflow(video_id))?;
        progress.last_video_id = video_id;
    }
    let backend = txn.get_database_backend();
    txn.execute(backend.build(&insert)).await?;
    Ok(())
}
