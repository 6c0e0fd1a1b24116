//! Settling a day: its rows priced with the rate card in effect on it, on
//! the counts minus their adjustments (SPEC §11.3), written in one
//! transaction that replaces the day's earlier rows batch by batch, posts
//! the ledger differences (SPEC §11.1) and restates the later settled days
//! of every video whose counts moved (SPEC §11.2).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use common::domain::{RunErrorCode, TransferKind, VideoId, Won};
use proto::streaming::v1::DailyCount;
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};

use super::{
    SettleError, Settler,
    lease::Leases,
    pricing::{Adjusted, RateCards, adjustments_of_day, price},
    pull::{PullError, retrying},
    rows::{Replaced, Scope, replace_rows},
};
use crate::{
    ledger::{self, Posting},
    money::RateCard,
    rollups,
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
        // The day's month, and the months ahead of today (issue 19's
        // partitions; a service running for months creates them here). A
        // month archived to Parquet is not made again: its settled rows
        // (in the ledger and the roll-ups) are in the file, and settling
        // one of its days on an empty partition would pay them twice.
        if archived(&self.db, day)
            .await
            .map_err(SettleError::database)?
        {
            return Err(SettleError::new(
                RunErrorCode::Database,
                format!(
                    "the month of {day} is archived: restore it first (revenue-service archive restore)"
                ),
            ));
        }
        for table in crate::MONTHLY_TABLES {
            common::partitions::ensure_months(&self.db, table, day, day)
                .await
                .map_err(SettleError::database)?;
            if let Err(e) =
                common::partitions::ensure_ahead(&self.db, table, self.time.today()).await
            {
                // Not needed yet: the next run tries again.
                tracing::warn!(error = %e, table, "making the months ahead failed");
            }
        }
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(SettleError::database)?;
        let previous = previous_total(&txn, day)
            .await
            .map_err(SettleError::database)?;
        let was_settled = is_settled(&txn, day).await.map_err(SettleError::database)?;
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
        // SPEC §11.2: a final day whose amounts *later* change is restated;
        // a final day's first settlement (a backfill) only makes it final.
        let restated = context.is_final && was_settled && progress.amounts_changed > 0;
        mark_settled(&txn, day, now, restated, Some(counts_version))
            .await
            .map_err(SettleError::database)?;
        let later_restated = if progress.moved.is_empty() {
            Restated::default()
        } else {
            self.restate(&txn, &progress.moved, &later, &cards, &posting)
                .await
                .map_err(SettleError::from)?
        };
        // The roll-ups last: their lock is held only from here to the
        // commit.
        if context.first_settlement {
            rollups::add_settled_day(&txn, day)
                .await
                .map_err(SettleError::database)?;
        }
        progress.deltas.extend(later_restated.deltas);
        rollups::apply(&txn, &progress.deltas)
            .await
            .map_err(SettleError::database)?;
        if restated {
            crate::webhooks::enqueue(
                &txn,
                crate::webhooks::EventType::DayRestated,
                serde_json::json!({
                    "day": day,
                    "run_id": run_id,
                    "rows_changed": progress.amounts_changed,
                    "total_amount": progress.total_amount.0,
                    "previous_total_amount": previous.map(|w| w.0),
                    "currency": "KRW",
                }),
            )
            .await
            .map_err(SettleError::database)?;
        }
        txn.commit().await.map_err(SettleError::database)?;
        self.cache.invalidate().await;
        Ok(Settled {
            rows: progress.rows,
            total_amount: progress.total_amount,
            previous_total_amount: previous,
            rate_card_version: card.version,
            transfers: progress.transfers + later_restated.transfers,
            restated_rows: later_restated.rows,
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
            // A batch is one statement of arrays on PostgreSQL
            // (rows::insert_plain_arrays) and a multi-row INSERT of 14 values
            // a row on SQLite, which allows 32,766 per statement.
            sea_orm::DatabaseBackend::Postgres => 5_000,
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
#[derive(Debug, Clone, Default)]
pub(super) struct Restated {
    /// The roll-up differences of the rows re-priced, to apply before the
    /// commit.
    pub(super) deltas: Vec<crate::rollups::RowDelta>,
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
    /// Roll-up differences of the rows changed (a re-settlement's).
    deltas: Vec<crate::rollups::RowDelta>,
    /// Videos whose priced counts changed (when collected).
    moved: Vec<VideoId>,
    /// Ledger transfers posted.
    transfers: u64,
}

impl Progress {
    fn absorb(&mut self, replaced: Replaced, collect_moved: bool) {
        self.deltas.extend(replaced.deltas);
        self.amounts_changed += replaced.amounts_changed;
        self.transfers += replaced.transfers;
        if collect_moved {
            self.moved.extend(replaced.moved);
        }
    }
}

/// Whether `day`'s month is archived: `daily_stats` is partitioned, the
/// month has no partition, and some day of it was settled.
pub(crate) async fn archived(
    db: &sea_orm::DatabaseConnection,
    day: NaiveDate,
) -> Result<bool, sea_orm::DbErr> {
    if !common::partitions::is_partitioned(db, "daily_stats").await? {
        return Ok(false);
    }
    let month = common::partitions::month_of(day);
    if common::partitions::months(db, "daily_stats")
        .await?
        .contains(&month)
    {
        return Ok(false);
    }
    let end = common::domain::Period::Month.range(month).1;
    Ok(db
        .query_one(stmt(
            db.get_database_backend(),
            "SELECT 1 AS one FROM settled_days WHERE day >= $1 AND day <= $2 LIMIT 1",
            vec![month.into(), end.into()],
        ))
        .await?
        .is_some())
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

/// Whether `day` has been settled before (with rows or without).
async fn is_settled(txn: &DatabaseTransaction, day: NaiveDate) -> Result<bool, sea_orm::DbErr> {
    Ok(txn
        .query_one(stmt(
            txn.get_database_backend(),
            "SELECT 1 AS one FROM settled_days WHERE day = $1",
            vec![day.into()],
        ))
        .await?
        .is_some())
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
