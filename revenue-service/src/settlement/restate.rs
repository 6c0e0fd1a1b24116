//! Restating later days (SPEC §11.2) and invalid-traffic adjustments
//! (SPEC §11.3).
//!
//! Prices depend on a video's cumulative counts before each day, so when a
//! day's counts of a video move, every later settled day of that video may
//! sit in another tier. Restating re-prices those days from the streaming
//! service's current counts (which carry the current cumulative counts)
//! minus the adjustments, in day order, inside the caller's transaction,
//! and posts the differences to the ledger.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, Utc};
use common::domain::{CreatorId, TransferKind, VideoId};
use proto::streaming::v1::DailyCount;
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};

use super::{
    Settler,
    lease::Leases,
    pricing::{Adjusted, RateCards, price},
    pull::{MAX_HISTORY_VIDEOS, PullError, retrying},
    rows::{Scope, id_list, replace_rows},
    write::{Restated, mark_settled},
};
use crate::{entity::adjustment, ledger::Posting, sql::stmt};

/// How long an adjustment waits for the days it restates while runs hold
/// them.
const ADJUST_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
/// The oldest day an adjustment may name, in days before today.
pub const MAX_ADJUSTMENT_AGE_DAYS: i64 = 3_650;
/// The longest reason an adjustment may give, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// An adjustment as asked for (SPEC §11.3).
#[derive(Debug, Clone)]
pub struct NewAdjustment {
    /// The video.
    pub video_id: VideoId,
    /// The platform day whose counts were invalid.
    pub day: NaiveDate,
    /// Invalid views (≥ 0).
    pub views: i64,
    /// Invalid ad views (≥ 0).
    pub ad_views: i64,
    /// Invalid watch seconds (≥ 0).
    pub watch_seconds: i64,
    /// Why, for the creator and for finance (1 to 500 characters).
    pub reason: String,
    /// The admin's user id.
    pub actor: i64,
}

/// Why an adjustment was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdjustError {
    /// A field is out of range (400): the field and why.
    #[error("{0}: {1}")]
    Field(&'static str, String),
    /// No such video (404).
    #[error("no such video")]
    VideoNotFound,
    /// A run held one of the days for longer than the adjustment waits
    /// (409; retry shortly).
    #[error("a settlement run holds a day this adjustment restates; try again shortly")]
    Busy,
    /// The streaming service failed (503).
    #[error(transparent)]
    Unavailable(PullError),
    /// The database failed (500).
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl From<PullError> for AdjustError {
    fn from(e: PullError) -> Self {
        match e {
            PullError::Database(e) => AdjustError::Database(e),
            // Its counts are archived: restore the month first (400).
            PullError::Refused(why) => AdjustError::Field("day", why),
            PullError::AmountOverflow(v) => AdjustError::Database(sea_orm::DbErr::Custom(format!(
                "the amount of video {v} does not fit in 64 bits"
            ))),
            other => AdjustError::Unavailable(other),
        }
    }
}

impl Settler {
    /// Re-prices, for each of `videos` that has a row on or after the
    /// first of `days`, every day of `days` (settled days, ascending) and
    /// posts the differences with `posting`.
    ///
    /// # Errors
    /// The streaming service or the database failed; an amount overflowed.
    pub(super) async fn restate(
        &self,
        txn: &DatabaseTransaction,
        videos: &[VideoId],
        days: &[NaiveDate],
        cards: &RateCards,
        posting: &Posting,
    ) -> Result<Restated, PullError> {
        let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
            return Ok(Restated::default());
        };
        let mut videos = videos.to_vec();
        videos.sort_unstable();
        videos.dedup();
        let mut restated = Restated::default();
        for chunk in videos.chunks(MAX_HISTORY_VIDEOS) {
            let with_rows = videos_with_rows_from(txn, chunk, first).await?;
            if with_rows.is_empty() {
                continue;
            }
            let pulled = retrying(self.limits.retries, "video days", || {
                self.source.video_days(&with_rows, (first, last))
            })
            .await?;
            let done = self
                .restate_chunk(txn, &with_rows, pulled, days, cards, posting)
                .await?;
            restated.deltas.extend(done.deltas);
            restated.rows += done.rows;
            restated.transfers += done.transfers;
            restated.sum = restated
                .sum
                .checked_add(done.sum)
                .ok_or(PullError::AmountOverflow(with_rows[0]))?;
        }
        Ok(restated)
    }

    /// Re-prices `videos` (at most [`MAX_HISTORY_VIDEOS`]) on each of
    /// `days` from `pulled` (their counts over those days) and posts the
    /// differences.
    async fn restate_chunk(
        &self,
        txn: &DatabaseTransaction,
        videos: &[VideoId],
        pulled: Vec<(NaiveDate, DailyCount)>,
        days: &[NaiveDate],
        cards: &RateCards,
        posting: &Posting,
    ) -> Result<Restated, PullError> {
        let adjustments = adjustments_of(txn, videos).await?;
        let mut by_day: HashMap<NaiveDate, Vec<DailyCount>> = HashMap::new();
        for (day, count) in pulled {
            by_day.entry(day).or_default().push(count);
        }
        let mut restated = Restated::default();
        for &day in days {
            let card = cards
                .on(day)
                .map_err(|e| PullError::Database(sea_orm::DbErr::Custom(e.to_string())))?;
            let priced = by_day
                .remove(&day)
                .unwrap_or_default()
                .iter()
                .map(|c| price(card, c, adjustments.on(VideoId(c.video_id), day)))
                .collect::<Result<Vec<_>, _>>()?;
            let is_final = self.is_final(day);
            let replaced = replace_rows(
                txn,
                day,
                Scope::Videos(videos),
                &priced,
                is_final,
                Some(posting),
            )
            .await?;
            restated.deltas.extend(replaced.deltas);
            if replaced.amounts_changed == 0 {
                continue;
            }
            restated.rows += i64::try_from(replaced.amounts_changed).unwrap_or(i64::MAX);
            restated.transfers += replaced.transfers;
            restated.sum = restated
                .sum
                .checked_add(replaced.sum)
                .ok_or(PullError::AmountOverflow(videos[0]))?;
            mark_settled(txn, day, posting.posted_at, is_final, None).await?;
        }
        Ok(restated)
    }

    /// Records an adjustment and restates its day and every later settled
    /// day of the video at once (SPEC §11.3); a day not yet settled takes
    /// it when it is settled.
    ///
    /// # Errors
    /// See [`AdjustError`]: a count above what is left of the day's count
    /// (after earlier adjustments), an unknown video, a day held by a run
    /// for more than 10 s, the streaming service or the database failing.
    pub async fn adjust(&self, new: NewAdjustment) -> Result<adjustment::Model, AdjustError> {
        validate(&new, self.time.today())?;
        let creator = retrying(self.limits.retries, "video", || {
            self.source.creator_of(new.video_id)
        })
        .await?
        .ok_or(AdjustError::VideoNotFound)?;
        let yesterday = self.time.today().pred_opt().unwrap_or(new.day);
        let days: Vec<NaiveDate> = new
            .day
            .iter_days()
            .take_while(|d| *d <= yesterday)
            .collect();
        let leases = Leases::new(
            self.db.clone(),
            // Unique to this adjustment (a lease holder is at most 64 bytes).
            format!("adjustment-{}", uuid::Uuid::new_v4().simple()),
            self.limits.lease,
        );
        let outcome = async {
            if !leases.take_waiting(&days, ADJUST_PATIENCE).await? {
                return Err(AdjustError::Busy);
            }
            leases
                .renewing(self.adjust_holding(&new, creator, yesterday))
                .await
        }
        .await;
        if let Err(e) = leases.release().await {
            tracing::warn!(error = %e, "releasing an adjustment's leases");
        }
        if outcome.is_ok() {
            self.cache.invalidate().await;
        }
        outcome
    }

    /// [`Self::adjust`] once the leases of its days are held.
    async fn adjust_holding(
        &self,
        new: &NewAdjustment,
        creator: CreatorId,
        yesterday: NaiveDate,
    ) -> Result<adjustment::Model, AdjustError> {
        let video = [new.video_id];
        let pulled = retrying(self.limits.retries, "video days", || {
            self.source.video_days(&video, (new.day, yesterday))
        })
        .await?;
        let txn = self.db.begin().await?;
        let counts = pulled
            .iter()
            .find(|(d, _)| *d == new.day)
            .map(|(_, c)| (c.views, c.ad_views, c.watch_seconds))
            .unwrap_or_default();
        let earlier = adjustments_of(&txn, &video)
            .await?
            .0
            .get(&new.video_id)
            .and_then(|days| days.get(&new.day).copied())
            .unwrap_or_default();
        for (field, asked, count, taken) in [
            ("views", new.views, counts.0, earlier.views),
            ("ad_views", new.ad_views, counts.1, earlier.ad_views),
            (
                "watch_seconds",
                new.watch_seconds,
                counts.2,
                earlier.watch_seconds,
            ),
        ] {
            let left = count.saturating_sub(taken).max(0);
            if asked > left {
                return Err(AdjustError::Field(
                    field,
                    format!(
                        "must be at most {left}: the day's count is {count} and earlier adjustments removed {taken}"
                    ),
                ));
            }
        }
        let now = Utc::now();
        let mut model = adjustment::Model {
            adjustment_id: 0,
            video_id: new.video_id.0,
            creator_id: creator.0,
            day: new.day,
            views: new.views,
            ad_views: new.ad_views,
            watch_seconds: new.watch_seconds,
            reason: new.reason.clone(),
            amount_clawed_back: 0,
            created_at: now,
            actor: new.actor,
        };
        let row = txn
            .query_one(stmt(
                txn.get_database_backend(),
                "INSERT INTO adjustments (video_id, creator_id, day, views, ad_views, watch_seconds, \
                   reason, amount_clawed_back, created_at, actor) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9) RETURNING adjustment_id",
                vec![
                    model.video_id.into(),
                    model.creator_id.into(),
                    model.day.into(),
                    model.views.into(),
                    model.ad_views.into(),
                    model.watch_seconds.into(),
                    model.reason.clone().into(),
                    now.into(),
                    model.actor.into(),
                ],
            ))
            .await?
            .ok_or_else(|| sea_orm::DbErr::Custom("no adjustment id returned".to_owned()))?;
        model.adjustment_id = row.try_get("", "adjustment_id")?;
        let settled = settled_days_in(&txn, new.day, yesterday).await?;
        if !settled.is_empty() {
            let cards = RateCards::load(&txn)
                .await
                .map_err(|e| sea_orm::DbErr::Custom(format!("rate cards: {e}")))?;
            let posting = Posting {
                kind: TransferKind::Adjustment,
                source_kind: "adjustment",
                source_id: model.adjustment_id,
                reason: Some(new.reason.clone()),
                actor: new.actor.to_string(),
                posted_at: now,
                recorded: Default::default(),
            };
            let restated = self
                .restate_chunk(&txn, &video, pulled, &settled, &cards, &posting)
                .await?;
            // The roll-ups last: their lock is held from here to the commit.
            crate::rollups::apply(&txn, &restated.deltas).await?;
            model.amount_clawed_back = restated.sum.0.checked_neg().ok_or_else(|| {
                sea_orm::DbErr::Custom("the clawback does not fit in 64 bits of won".to_owned())
            })?;
            txn.execute(stmt(
                txn.get_database_backend(),
                "UPDATE adjustments SET amount_clawed_back = $1 WHERE adjustment_id = $2",
                vec![model.amount_clawed_back.into(), model.adjustment_id.into()],
            ))
            .await?;
        }
        crate::webhooks::enqueue(
            &txn,
            crate::webhooks::EventType::AdjustmentPosted,
            serde_json::json!({
                "adjustment_id": model.adjustment_id,
                "video_id": model.video_id,
                "creator_id": model.creator_id,
                "day": model.day,
                "views": model.views,
                "ad_views": model.ad_views,
                "watch_seconds": model.watch_seconds,
                "reason": model.reason,
                "amount_clawed_back": model.amount_clawed_back,
                "currency": "KRW",
                "actor": model.actor,
            }),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(
            adjustment_id = model.adjustment_id,
            video_id = model.video_id,
            day = %model.day,
            clawed_back = model.amount_clawed_back,
            "adjustment posted"
        );
        Ok(model)
    }
}

/// Checks what can be checked without the day's counts.
fn validate(new: &NewAdjustment, today: NaiveDate) -> Result<(), AdjustError> {
    for (field, value) in [
        ("views", new.views),
        ("ad_views", new.ad_views),
        ("watch_seconds", new.watch_seconds),
    ] {
        if value < 0 {
            return Err(AdjustError::Field(field, "must be at least 0".to_owned()));
        }
    }
    if new.views == 0 && new.ad_views == 0 && new.watch_seconds == 0 {
        return Err(AdjustError::Field(
            "views",
            "at least one of views, ad_views and watch_seconds must be above 0".to_owned(),
        ));
    }
    if new.day >= today {
        return Err(AdjustError::Field(
            "day",
            "must be a day before today (platform time)".to_owned(),
        ));
    }
    // Every day from it to yesterday is leased and re-read: bounded, as the
    // streaming service bounds a history read.
    if (today - new.day).num_days() > MAX_ADJUSTMENT_AGE_DAYS {
        return Err(AdjustError::Field(
            "day",
            format!("must be at most {MAX_ADJUSTMENT_AGE_DAYS} days ago"),
        ));
    }
    let reason = new.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(AdjustError::Field(
            "reason",
            format!("must be 1 to {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(())
}

/// The videos of `videos` with a settled row on or after `from`.
async fn videos_with_rows_from(
    txn: &DatabaseTransaction,
    videos: &[VideoId],
    from: NaiveDate,
) -> Result<Vec<VideoId>, sea_orm::DbErr> {
    let list = id_list(videos);
    let rows = txn
        .query_all(stmt(
            txn.get_database_backend(),
            &format!(
                "SELECT DISTINCT video_id FROM daily_stats WHERE video_id IN ({list}) AND day >= $1 \
                 ORDER BY video_id"
            ),
            vec![from.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get("", "video_id").map(VideoId))
        .collect()
}

/// Settled days from `from` to `to`, ascending.
async fn settled_days_in(
    txn: &DatabaseTransaction,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<NaiveDate>, sea_orm::DbErr> {
    let rows = txn
        .query_all(stmt(
            txn.get_database_backend(),
            "SELECT day FROM settled_days WHERE day >= $1 AND day <= $2 ORDER BY day",
            vec![from.into(), to.into()],
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "day")).collect()
}

/// Every adjustment of some videos, summed per (video, day).
struct VideoAdjustments(HashMap<VideoId, BTreeMap<NaiveDate, Adjusted>>);

impl VideoAdjustments {
    /// What pricing `video`'s `day` needs: that day's sums, and the views
    /// and ad views of every earlier day.
    fn on(&self, video: VideoId, day: NaiveDate) -> Adjusted {
        let Some(days) = self.0.get(&video) else {
            return Adjusted::default();
        };
        let mut adjusted = days.get(&day).copied().unwrap_or_default();
        for a in days.range(..day).map(|(_, a)| a) {
            adjusted.views_before = adjusted.views_before.saturating_add(a.views);
            adjusted.ad_views_before = adjusted.ad_views_before.saturating_add(a.ad_views);
        }
        adjusted
    }
}

async fn adjustments_of(
    txn: &DatabaseTransaction,
    videos: &[VideoId],
) -> Result<VideoAdjustments, sea_orm::DbErr> {
    let list = id_list(videos);
    let rows = txn
        .query_all(stmt(
            txn.get_database_backend(),
            &format!(
                "SELECT video_id, day, CAST(SUM(views) AS BIGINT) AS views, \
                   CAST(SUM(ad_views) AS BIGINT) AS ad_views, \
                   CAST(SUM(watch_seconds) AS BIGINT) AS watch_seconds \
                 FROM adjustments WHERE video_id IN ({list}) GROUP BY video_id, day"
            ),
            vec![],
        ))
        .await?;
    let mut all: HashMap<VideoId, BTreeMap<NaiveDate, Adjusted>> = HashMap::new();
    for r in &rows {
        all.entry(VideoId(r.try_get("", "video_id")?))
            .or_default()
            .insert(
                r.try_get("", "day")?,
                Adjusted {
                    views: r.try_get("", "views")?,
                    ad_views: r.try_get("", "ad_views")?,
                    watch_seconds: r.try_get("", "watch_seconds")?,
                    ..Adjusted::default()
                },
            );
    }
    Ok(VideoAdjustments(all))
}
