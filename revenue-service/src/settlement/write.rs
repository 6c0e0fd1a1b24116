//! Settling a day: its rows priced with the rate card in effect on it, on
//! the counts minus their adjustments (SPEC §11.3), written in one
//! transaction that replaces the day's earlier rows batch by batch, posts
//! the ledger differences (SPEC §11.1) and restates the later settled days
//! of every video whose counts moved (SPEC §11.2).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use common::domain::{RunErrorCode, TransferKind, VideoId, Won};
use proto::streaming::v1::DailyCount;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, EntityTrait, QueryOrder, TransactionTrait,
    sea_query::Query,
};

use super::{
    SettleError, Settler,
    lease::Leases,
    pull::{PullError, retrying},
};
use crate::{
    entity::{daily_stat, rate_card},
    ledger::{self, Posting},
    money::{DayAmounts, RateCard, Tier, day_amounts},
    sql::stmt,
};

/// How long a run waits for the leases of the later days it must restate.
const RESTATE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(300);

impl Settler {
    /// Settles `day` for run `run_id` holding `leases` (the day's); the
    /// run's outcome or a message for its record.
    pub(super) async fn settle(
        &self,
        day: NaiveDate,
        run_id: i64,
        leases: &Leases,
    ) -> Result<Settled, SettleError> {
        let retries = self.limits.retries;
        let watermark = retrying(retries, "watermark", || self.source.watermark())
            .await
            .map_err(SettleError::from)?;
        let end = self.time.end_of(day);
        let counts_version = watermark.changes_version;
        let watermark = watermark.until;
        if watermark < end {
            return Err(SettleError::new(
                RunErrorCode::NotWrittenBack,
                format!(
                    "waiting: the counts of {day} are not all written back yet (watermark {watermark}, day ends {end})"
                ),
            ));
        }
        let cards = RateCards::load(&self.db)
            .await
            .map_err(|e| SettleError::new(RunErrorCode::RateCard, format!("rate card: {e}")))?;
        let card = cards
            .on(day)
            .map_err(|e| SettleError::new(RunErrorCode::RateCard, format!("rate card: {e}")))?;
        // The later settled days this run may have to restate: their
        // leases are taken now, in ascending order after the day's own.
        let later = self
            .settled_days_after(day)
            .await
            .map_err(SettleError::database)?;
        if !leases
            .take_waiting(&later, RESTATE_PATIENCE)
            .await
            .map_err(SettleError::database)?
        {
            return Err(SettleError::new(
                RunErrorCode::DayBusy,
                "a later day this run may restate stayed held by another run",
            ));
        }
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(SettleError::database)?;
        let previous = previous_total(&txn, day)
            .await
            .map_err(SettleError::database)?;
        let adjustments = adjustments_of_day(&txn, day)
            .await
            .map_err(SettleError::database)?;
        let posting = Posting {
            kind: TransferKind::Restatement,
            source_kind: "run",
            source_id: run_id,
            reason: None,
            actor: "settlement".to_owned(),
            posted_at: now,
            recorded: Default::default(),
        };
        let context = DayContext {
            day,
            card,
            adjustments: &adjustments,
            is_final: self.is_final(day),
            posting: &posting,
            first_settlement: previous.is_none(),
            collect_moved: !later.is_empty(),
        };
        // Each attempt resumes after the last video written by the ones
        // before it.
        let progress = tokio::sync::Mutex::new(Progress::default());
        retrying(retries, "daily counts", || {
            self.pull(&txn, &context, &progress)
        })
        .await
        .map_err(SettleError::from)?;
        let mut progress = progress.into_inner();
        // Videos after the last one pulled have no counts any more.
        let tail = replace_rows(
            &txn,
            day,
            Scope::After(progress.last_video_id),
            &[],
            context.is_final,
            Some(&posting),
        )
        .await
        .map_err(SettleError::database)?;
        progress.absorb(tail, context.collect_moved);
        if context.first_settlement {
            progress.transfers += ledger::post_earnings_of_day(&txn, day, &posting)
                .await
                .map_err(SettleError::database)?;
        }
        mark_settled(
            &txn,
            day,
            now,
            context.is_final && progress.amounts_changed > 0,
            Some(counts_version),
        )
        .await
        .map_err(SettleError::database)?;
        let restated = if progress.moved.is_empty() {
            Restated::default()
        } else {
            self.restate(&txn, &progress.moved, &later, &cards, &posting)
                .await
                .map_err(SettleError::from)?
        };
        txn.commit().await.map_err(SettleError::database)?;
        self.cache.invalidate().await;
        Ok(Settled {
            rows: progress.rows,
            total_amount: progress.total_amount,
            previous_total_amount: previous,
            rate_card_version: card.version,
            transfers: progress.transfers + restated.transfers,
            restated_rows: restated.rows,
        })
    }

    /// Pulls the day's counts after `progress`'s last video and writes
    /// their rows inside `txn`. Reading and writing overlap: received rows
    /// go through a small queue to the writer, so the stream keeps flowing
    /// while a batch is inserted; every row received is written before
    /// this returns, so a retry resumes exactly after the last one.
    async fn pull(
        &self,
        txn: &DatabaseTransaction,
        context: &DayContext<'_>,
        progress: &tokio::sync::Mutex<Progress>,
    ) -> Result<(), PullError> {
        let batch_rows = match txn.get_database_backend() {
            // 14 bound values a row: PostgreSQL allows 65,535 per statement,
            // SQLite 32,766.
            sea_orm::DatabaseBackend::Postgres => 4_000,
            _ => 2_000,
        };
        let (queue, mut batches) = tokio::sync::mpsc::channel::<Vec<DailyCount>>(4);
        let after = progress.lock().await.last_video_id;
        let read = self
            .source
            .day_counts(context.day, after, batch_rows, queue);
        let write = async move {
            while let Some(batch) = batches.recv().await {
                write_rows(txn, context, &batch, &mut *progress.lock().await).await?;
            }
            Ok::<(), PullError>(())
        };
        let (read, write) = tokio::join!(read, write);
        write?;
        read
    }

    /// Settled days after `day`, ascending.
    pub(super) async fn settled_days_after(
        &self,
        day: NaiveDate,
    ) -> Result<Vec<NaiveDate>, sea_orm::DbErr> {
        let rows = self
            .db
            .query_all(stmt(
                self.db.get_database_backend(),
                "SELECT day FROM settled_days WHERE day > $1 ORDER BY day",
                vec![day.into()],
            ))
            .await?;
        rows.iter().map(|r| r.try_get("", "day")).collect()
    }

    /// Whether `day` is final today (SPEC §11.2): more than
    /// `SETTLEMENT_FINAL_AFTER_DAYS` days have passed after it.
    pub fn is_final(&self, day: NaiveDate) -> bool {
        day_is_final(day, self.time.today(), self.limits.final_after_days)
    }
}

/// Whether `day` is final on `today`: at least `final_after_days` whole
/// days have passed after it ended (with 3, the 1st is final on the 5th).
pub fn day_is_final(day: NaiveDate, today: NaiveDate, final_after_days: u32) -> bool {
    day.checked_add_days(chrono::Days::new(u64::from(final_after_days) + 1))
        .is_some_and(|from| today >= from)
}

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

/// A finished settlement.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settled {
    pub(super) rows: i64,
    pub(super) total_amount: Won,
    pub(super) previous_total_amount: Option<Won>,
    pub(super) rate_card_version: i32,
    /// Ledger transfers posted, the day's and the restated days'.
    pub(super) transfers: u64,
    /// Later (video, day) rows re-priced.
    pub(super) restated_rows: i64,
}

/// What restating later days did.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Restated {
    /// (video, day) rows re-priced.
    pub(super) rows: i64,
    /// Transfers posted.
    pub(super) transfers: u64,
    /// Their signed sum (positive: owed to creators).
    pub(super) sum: Won,
}

/// What the rows of a day are priced and written with.
pub(super) struct DayContext<'a> {
    pub(super) day: NaiveDate,
    pub(super) card: &'a RateCard,
    pub(super) adjustments: &'a HashMap<VideoId, Adjusted>,
    pub(super) is_final: bool,
    /// What the ledger differences post as.
    pub(super) posting: &'a Posting,
    /// The day had no rows before: its `earning`s are posted at the end,
    /// all at once ([`ledger::post_earnings_of_day`]), not batch by batch.
    pub(super) first_settlement: bool,
    /// Whether to keep the videos whose counts moved (only when later
    /// settled days exist to restate).
    pub(super) collect_moved: bool,
}

/// How far a pull has got.
#[derive(Debug, Default)]
pub(super) struct Progress {
    pub(super) last_video_id: VideoId,
    rows: i64,
    total_amount: Won,
    /// Rows whose amount changed.
    amounts_changed: u64,
    /// Videos whose priced counts changed (when collected).
    moved: Vec<VideoId>,
    /// Ledger transfers posted.
    transfers: u64,
}

impl Progress {
    fn absorb(&mut self, replaced: Replaced, collect_moved: bool) {
        self.amounts_changed += replaced.amounts_changed;
        self.transfers += replaced.transfers;
        if collect_moved {
            self.moved.extend(replaced.moved);
        }
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

/// The adjustments every video with one on or before `day` needs to price
/// `day`.
async fn adjustments_of_day(
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

/// Records that `day` is settled; `restated` marks it restated now. A
/// whole day's run gives `counts_version`, the count source's change
/// version read before the pull (a later change settles the day again); a
/// restatement of some of its videos gives `None`.
pub(super) async fn mark_settled(
    txn: &DatabaseTransaction,
    day: NaiveDate,
    now: DateTime<Utc>,
    restated: bool,
    counts_version: Option<i64>,
) -> Result<(), sea_orm::DbErr> {
    let restated_at: Option<DateTime<Utc>> = restated.then_some(now);
    txn.execute(stmt(
        txn.get_database_backend(),
        "INSERT INTO settled_days (day, settled_at, restated_at, counts_version) \
         VALUES ($1, $2, $3, COALESCE($4, 0)) \
         ON CONFLICT (day) DO UPDATE SET \
           restated_at = COALESCE(excluded.restated_at, settled_days.restated_at), \
           counts_version = COALESCE($4, settled_days.counts_version)",
        vec![
            day.into(),
            now.into(),
            restated_at.into(),
            counts_version.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Prices `batch` (a page of the day's counts) and replaces its range of
/// rows.
pub(super) async fn write_rows(
    txn: &DatabaseTransaction,
    context: &DayContext<'_>,
    batch: &[DailyCount],
    progress: &mut Progress,
) -> Result<(), PullError> {
    let Some(last) = batch.last() else {
        return Ok(());
    };
    let priced = batch
        .iter()
        .map(|c| {
            let adjusted = context
                .adjustments
                .get(&VideoId(c.video_id))
                .copied()
                .unwrap_or_default();
            price(context.card, c, adjusted)
        })
        .collect::<Result<Vec<_>, _>>()?;
    for p in &priced {
        progress.rows += 1;
        progress.total_amount = progress
            .total_amount
            .checked_add(p.total)
            .ok_or(PullError::AmountOverflow(p.video_id))?;
    }
    let replaced = replace_rows(
        txn,
        context.day,
        Scope::Range(progress.last_video_id, VideoId(last.video_id)),
        &priced,
        context.is_final,
        (!context.first_settlement).then_some(context.posting),
    )
    .await?;
    progress.absorb(replaced, context.collect_moved);
    progress.last_video_id = VideoId(last.video_id);
    Ok(())
}

/// Which rows of a day a replacement covers.
pub(super) enum Scope<'a> {
    /// Videos in `(after, last]`.
    Range(VideoId, VideoId),
    /// Videos after this one.
    After(VideoId),
    /// These videos.
    Videos(&'a [VideoId]),
}

/// What a replacement changed.
#[derive(Debug, Default)]
pub(super) struct Replaced {
    /// Videos whose priced views or ad views changed (or appeared, or went).
    pub(super) moved: Vec<VideoId>,
    /// Rows whose amount changed (or appeared, or went).
    pub(super) amounts_changed: u64,
    /// Ledger transfers posted.
    pub(super) transfers: u64,
    /// Their signed sum, won (positive: owed to creators).
    pub(super) sum: Won,
}

/// A row as stored, to compare with its new pricing.
struct OldRow {
    creator_id: i64,
    title: String,
    views: i64,
    watch_seconds: i64,
    ad_views: i64,
    video_amount: i64,
    ad_amount: i64,
    total: i64,
    rate_card_version: i32,
    original_views: i64,
    original_ad_views: i64,
    restated_at: Option<DateTime<Utc>>,
}

impl OldRow {
    /// Whether `new` would store exactly this row.
    fn same_as(&self, new: &Priced) -> bool {
        self.creator_id == new.creator_id
            && self.title == new.title
            && self.views == new.views
            && self.watch_seconds == new.watch_seconds
            && self.ad_views == new.ad_views
            && self.video_amount == new.amounts.video_amount.0
            && self.ad_amount == new.amounts.ad_amount.0
            && self.total == new.total.0
            && self.rate_card_version == new.rate_card_version
            && self.original_views == new.original_views
            && self.original_ad_views == new.original_ad_views
    }
}

/// Replaces the rows of `day` in `scope` with `rows` and posts the ledger
/// differences (SPEC §11.1, §11.2). Rows that would not change are left
/// alone (a re-run with unchanged counts writes nothing); a changed or new
/// row replaces the old one, a row with no counts any more goes. Each
/// (video, day) whose amount changed gets one transfer of the difference:
/// an `earning` when it had no row before, else `posting.kind`. By the
/// ledger invariant (what the ledger holds for a (video, day) is its row's
/// amount, kept in this same transaction), the old row's amount is what
/// the ledger holds, so no ledger read is needed. Without a `posting` the
/// caller posts (a day's first settlement, all at once). A row of a final
/// day whose amount changes is stamped restated.
pub(super) async fn replace_rows(
    txn: &DatabaseTransaction,
    day: NaiveDate,
    scope: Scope<'_>,
    rows: &[Priced],
    is_final: bool,
    posting: Option<&Posting>,
) -> Result<Replaced, sea_orm::DbErr> {
    let now = posting.map_or_else(Utc::now, |p| p.posted_at);
    let backend = txn.get_database_backend();
    let (filter, mut values): (String, Vec<sea_orm::Value>) = match scope {
        Scope::Range(after, last) => (
            "video_id > $2 AND video_id <= $3".to_owned(),
            vec![after.into(), last.into()],
        ),
        Scope::After(after) => ("video_id > $2".to_owned(), vec![after.into()]),
        Scope::Videos(ids) => (format!("video_id IN ({})", id_list(ids)), vec![]),
    };
    values.insert(0, day.into());
    let old = txn
        .query_all(stmt(
            backend,
            &format!(
                "SELECT video_id, creator_id, title, views, watch_seconds, ad_views, video_amount, \
                   ad_amount, total_amount, rate_card_version, original_views, original_ad_views, \
                   restated_at \
                 FROM daily_stats WHERE day = $1 AND {filter}"
            ),
            values,
        ))
        .await?;
    let mut old = old
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<i64>("", "video_id")?,
                OldRow {
                    creator_id: r.try_get("", "creator_id")?,
                    title: r.try_get("", "title")?,
                    views: r.try_get("", "views")?,
                    watch_seconds: r.try_get("", "watch_seconds")?,
                    ad_views: r.try_get("", "ad_views")?,
                    video_amount: r.try_get("", "video_amount")?,
                    ad_amount: r.try_get("", "ad_amount")?,
                    total: r.try_get("", "total_amount")?,
                    rate_card_version: r.try_get("", "rate_card_version")?,
                    original_views: r.try_get("", "original_views")?,
                    original_ad_views: r.try_get("", "original_ad_views")?,
                    restated_at: r.try_get("", "restated_at")?,
                },
            ))
        })
        .collect::<Result<HashMap<_, _>, sea_orm::DbErr>>()?;
    let mut replaced = Replaced::default();
    let mut gone: Vec<VideoId> = Vec::new();
    let mut fresh: Vec<(&Priced, Option<DateTime<Utc>>)> = Vec::new();
    let mut differences: Vec<Difference> = Vec::new();
    for p in rows {
        let before = old.remove(&p.video_id.0);
        if before.as_ref().is_some_and(|o| o.same_as(p)) {
            continue;
        }
        let old_total = before.as_ref().map(|o| o.total);
        let amount_changed = old_total != Some(p.total.0);
        let counts_moved = before
            .as_ref()
            .is_none_or(|o| o.views != p.views || o.ad_views != p.ad_views);
        if amount_changed {
            replaced.amounts_changed += 1;
        }
        if counts_moved {
            replaced.moved.push(p.video_id);
        }
        let restated_at = match &before {
            Some(_) if amount_changed && is_final => Some(now),
            Some(o) => o.restated_at,
            None => None,
        };
        if before.is_some() {
            gone.push(p.video_id);
        }
        fresh.push((p, restated_at));
        differences.push(Difference {
            video_id: p.video_id,
            creator_id: p.creator_id,
            amount: p
                .total
                .0
                .checked_sub(old_total.unwrap_or(0))
                .ok_or_else(|| overflow(p.video_id))?,
            first: before.is_none(),
        });
    }
    // Rows with no counts any more.
    for (video_id, o) in old {
        replaced.moved.push(VideoId(video_id));
        gone.push(VideoId(video_id));
        if o.total != 0 {
            replaced.amounts_changed += 1;
        }
        differences.push(Difference {
            video_id: VideoId(video_id),
            creator_id: o.creator_id,
            amount: o
                .total
                .checked_neg()
                .ok_or_else(|| overflow(VideoId(video_id)))?,
            first: false,
        });
    }
    differences.retain(|d| d.amount != 0);
    for d in &differences {
        replaced.sum = replaced
            .sum
            .checked_add(Won(d.amount))
            .ok_or_else(|| overflow(d.video_id))?;
    }
    for ids in gone.chunks(1_000) {
        txn.execute(stmt(
            backend,
            &format!(
                "DELETE FROM daily_stats WHERE day = $1 AND video_id IN ({})",
                id_list(ids)
            ),
            vec![day.into()],
        ))
        .await?;
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
        daily_stat::Column::OriginalViews,
        daily_stat::Column::OriginalAdViews,
        daily_stat::Column::RestatedAt,
    ]);
    for (p, restated_at) in &fresh {
        insert.values_panic([
            day.into(),
            p.video_id.0.into(),
            p.creator_id.into(),
            p.title.clone().into(),
            p.views.into(),
            p.watch_seconds.into(),
            p.ad_views.into(),
            p.amounts.video_amount.into(),
            p.amounts.ad_amount.into(),
            p.total.into(),
            p.rate_card_version.into(),
            p.original_views.into(),
            p.original_ad_views.into(),
            (*restated_at).into(),
        ]);
    }
    if !fresh.is_empty() {
        txn.execute(backend.build(&insert)).await?;
    }
    if let Some(posting) = posting {
        replaced.transfers = post(txn, day, &differences, posting).await?;
    }
    Ok(replaced)
}

/// A money sum that does not fit in 64 bits (SPEC §8: checked arithmetic).
fn overflow(video: VideoId) -> sea_orm::DbErr {
    sea_orm::DbErr::Custom(format!(
        "the ledger difference of video {video} does not fit in 64 bits of won"
    ))
}

/// One (video, day)'s change of amount, won.
struct Difference {
    video_id: VideoId,
    creator_id: i64,
    amount: i64,
    /// It had no row before: the transfer is an `earning`.
    first: bool,
}

/// Posts `differences` as transfers of `day`; how many.
async fn post(
    txn: &DatabaseTransaction,
    day: NaiveDate,
    differences: &[Difference],
    posting: &Posting,
) -> Result<u64, sea_orm::DbErr> {
    let transfers: Vec<ledger::Transfer> = differences
        .iter()
        .map(|d| ledger::Transfer {
            kind: if d.first {
                TransferKind::Earning
            } else {
                posting.kind
            },
            creator_id: d.creator_id,
            video_id: d.video_id.0,
            amount: d.amount,
        })
        .collect();
    ledger::post(txn, day, &transfers, posting).await
}

/// Ids as a SQL list (integers: no injection possible).
pub(super) fn id_list(videos: &[VideoId]) -> String {
    videos
        .iter()
        .map(|v| v.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
