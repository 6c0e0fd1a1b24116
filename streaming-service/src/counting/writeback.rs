//! The write-back (SPEC §5): counters from the store into `daily_counts`,
//! every interval and on graceful shutdown, exactly once however it is
//! interrupted (see the protocol in the module above), and the watermark.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, TransactionTrait,
    sea_query::{Expr, OnConflict, Query},
};

use super::{Bucket, CounterError, CounterStore, Taken};
use crate::{
    clock::Clock,
    entity::{daily_count, watermark},
};

/// Buckets applied per database transaction.
pub const BATCH_SIZE: usize = 500;
/// How long the write-back at shutdown is retried after failures.
pub const FINAL_RETRY_FOR: Duration = Duration::from_secs(30);
/// Passes of one write-back over the dirty buckets (the second and third
/// only after finding batches an interrupted write-back left pending).
const MAX_PASSES: usize = 3;

/// Why a write-back stopped early. Whatever it had taken stays pending in
/// the store and is applied by the next one.
#[derive(Debug, thiserror::Error)]
pub enum WritebackError {
    /// The counter store failed.
    #[error(transparent)]
    Store(#[from] CounterError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

/// What one write-back did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WritebackReport {
    /// Buckets written.
    pub buckets: usize,
    /// Views, watch seconds and ad views written.
    pub views: i64,
    /// Watch seconds written.
    pub watch_seconds: i64,
    /// Ad views written.
    pub ad_views: i64,
}

/// Moves counters from a store into the streaming database.
#[derive(Clone)]
pub struct Writeback {
    store: Arc<dyn CounterStore>,
    db: DatabaseConnection,
    event_lag: Duration,
    clock: Clock,
    observer: Option<WritebackObserver>,
    /// When the last complete write-back started, Unix ms of the clock;
    /// `i64::MIN` before the first.
    last_complete_ms: Arc<AtomicI64>,
}

/// Where a write-back records itself (`/metrics`, SPEC §10).
#[derive(Clone)]
pub struct WritebackObserver {
    /// Each run's duration, seconds.
    pub duration: prometheus::Histogram,
    /// Buckets written.
    pub buckets: prometheus::IntCounter,
    /// Runs that stopped early on a store or database failure.
    pub failures: prometheus::IntCounter,
}

impl Writeback {
    /// A write-back from `store` into `db`; the watermark trails the start of
    /// each complete write-back by `event_lag`.
    pub fn new(
        store: Arc<dyn CounterStore>,
        db: DatabaseConnection,
        event_lag: Duration,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            db,
            event_lag,
            clock,
            observer: None,
            last_complete_ms: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// The same write-back, recording each run of [`Self::run_every`] in
    /// `observer`.
    pub fn observed_by(mut self, observer: WritebackObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// When the last complete write-back of this process started, by its
    /// clock: every count taken before it is in the database. `None`
    /// before the first.
    pub fn last_complete(&self) -> Option<DateTime<Utc>> {
        match self.last_complete_ms.load(Ordering::Relaxed) {
            i64::MIN => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }

    /// How far the watermark trails the start of a write-back.
    pub fn event_lag(&self) -> Duration {
        self.event_lag
    }

    /// The clock the write-back reads.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Runs one complete write-back and then advances the watermark.
    ///
    /// # Errors
    /// The store or the database failed; nothing is lost (see
    /// [`WritebackError`]) and the watermark stays where it was.
    pub async fn run_once(&self) -> Result<WritebackReport, WritebackError> {
        let started = self.clock.now();
        let mut report = WritebackReport::default();
        // A bucket whose take returned a batch an interrupted write-back
        // left pending may hold newer counts too: one more pass takes them.
        for _ in 0..MAX_PASSES {
            let buckets = self.store.dirty().await?;
            let mut leftovers = false;
            for chunk in buckets.chunks(BATCH_SIZE) {
                let (taken, left) = self.take_marked(chunk).await?;
                leftovers |= left;
                self.commit(&taken).await?;
                self.release(&taken).await?;
                for t in &taken {
                    report.buckets += 1;
                    report.views += t.counts.views;
                    report.watch_seconds += t.counts.watch_seconds;
                    report.ad_views += t.counts.ad_views;
                }
            }
            if !leftovers {
                break;
            }
        }
        let lag = chrono::Duration::from_std(self.event_lag).unwrap_or(chrono::Duration::zero());
        self.advance_watermark(started - lag).await?;
        self.last_complete_ms
            .fetch_max(started.timestamp_millis(), Ordering::Relaxed);
        if let Some(o) = &self.observer {
            o.buckets
                .inc_by(u64::try_from(report.buckets).unwrap_or(u64::MAX));
        }
        Ok(report)
    }

    /// Buckets that may hold counts not yet written back.
    ///
    /// # Errors
    /// The store failed.
    pub async fn dirty(&self) -> Result<Vec<Bucket>, WritebackError> {
        Ok(self.store.dirty().await?)
    }

    /// Step 1: takes the counts of `buckets` under fresh batch tokens (or
    /// the batches an interrupted write-back left pending).
    ///
    /// # Errors
    /// The store failed.
    pub async fn take(&self, buckets: &[Bucket]) -> Result<Vec<Taken>, WritebackError> {
        Ok(self.take_marked(buckets).await?.0)
    }

    /// [`take`](Self::take), and whether any batch was left pending by an
    /// earlier, interrupted write-back.
    async fn take_marked(&self, buckets: &[Bucket]) -> Result<(Vec<Taken>, bool), WritebackError> {
        let mut taken = Vec::with_capacity(buckets.len());
        let mut leftovers = false;
        for &bucket in buckets {
            let token = uuid::Uuid::new_v4().to_string();
            match self.store.take(bucket, &token).await? {
                Some(t) => {
                    leftovers |= t.token != token;
                    taken.push(t);
                }
                None => self.store.forget(bucket).await?,
            }
        }
        Ok((taken, leftovers))
    }

    /// Step 2: adds the taken counts to `daily_counts` in one transaction;
    /// a row whose `last_batch_seq` is already at or above the batch's
    /// sequence is left alone, so committing a batch twice counts it once,
    /// even after the bucket's next batch was committed in between (another
    /// replica's write-back).
    ///
    /// # Errors
    /// The database failed; nothing was written.
    pub async fn commit(&self, taken: &[Taken]) -> Result<(), WritebackError> {
        let (Some(first), Some(last)) = (
            taken.iter().map(|t| t.bucket.day).min(),
            taken.iter().map(|t| t.bucket.day).max(),
        ) else {
            return Ok(());
        };
        // Their months' partitions (issue 19); made ahead, so this only
        // reads the catalog, unless a service ran for months.
        common::partitions::ensure_months(&self.db, "daily_counts", first, last).await?;
        let mut insert = Query::insert();
        insert.into_table(daily_count::Entity).columns([
            daily_count::Column::VideoId,
            daily_count::Column::Day,
            daily_count::Column::Views,
            daily_count::Column::WatchSeconds,
            daily_count::Column::AdViews,
            daily_count::Column::LastBatch,
            daily_count::Column::LastBatchSeq,
        ]);
        for t in taken {
            insert.values_panic([
                t.bucket.video_id.into(),
                t.bucket.day.into(),
                t.counts.views.into(),
                t.counts.watch_seconds.into(),
                t.counts.ad_views.into(),
                t.token.clone().into(),
                t.seq.into(),
            ]);
        }
        insert.on_conflict(
            OnConflict::columns([daily_count::Column::VideoId, daily_count::Column::Day])
                .value(
                    daily_count::Column::Views,
                    Expr::cust("daily_counts.views + excluded.views"),
                )
                .value(
                    daily_count::Column::WatchSeconds,
                    Expr::cust("daily_counts.watch_seconds + excluded.watch_seconds"),
                )
                .value(
                    daily_count::Column::AdViews,
                    Expr::cust("daily_counts.ad_views + excluded.ad_views"),
                )
                .value(
                    daily_count::Column::LastBatch,
                    Expr::cust("excluded.last_batch"),
                )
                .value(
                    daily_count::Column::LastBatchSeq,
                    Expr::cust("COALESCE(excluded.last_batch_seq, daily_counts.last_batch_seq)"),
                )
                // A batch with a sequence applies only above the row's last;
                // one left pending by a release without sequences, only
                // when its token is not the row's last.
                .action_and_where(Expr::cust(
                    "CASE WHEN excluded.last_batch_seq IS NULL \
                     THEN COALESCE(daily_counts.last_batch, '') <> excluded.last_batch \
                     ELSE excluded.last_batch_seq > COALESCE(daily_counts.last_batch_seq, 0) END",
                ))
                .to_owned(),
        );
        let txn = self.db.begin().await?;
        let backend = txn.get_database_backend();
        txn.execute(backend.build(&insert)).await?;
        // Later days of these videos now have more before them.
        let first_day = taken.iter().map(|t| t.bucket.day).min();
        if let Some(first_day) = first_day {
            let mut videos: Vec<i64> = taken.iter().map(|t| t.bucket.video_id).collect();
            videos.sort_unstable();
            videos.dedup();
            crate::daily_counts::refresh_cumulative(&txn, &videos, first_day).await?;
        }
        let mut days: Vec<chrono::NaiveDate> = taken.iter().map(|t| t.bucket.day).collect();
        days.sort_unstable();
        days.dedup();
        crate::daily_counts::record_changed_days(&txn, &days).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Step 3: forgets the committed batches in the store.
    ///
    /// # Errors
    /// The store failed; the batches stay pending and are applied again,
    /// idempotently, next time.
    pub async fn release(&self, taken: &[Taken]) -> Result<(), WritebackError> {
        for t in taken {
            self.store.release(t).await?;
        }
        Ok(())
    }

    /// Moves the watermark forward to `until` (never back).
    ///
    /// # Errors
    /// The database failed.
    pub async fn advance_watermark(&self, until: DateTime<Utc>) -> Result<(), WritebackError> {
        let mut insert = Query::insert();
        insert
            .into_table(watermark::Entity)
            .columns([watermark::Column::Id, watermark::Column::WrittenBackUntil])
            .values_panic([1.into(), until.into()])
            .on_conflict(
                OnConflict::column(watermark::Column::Id)
                    .update_column(watermark::Column::WrittenBackUntil)
                    .action_and_where(Expr::cust(
                        "watermarks.written_back_until < excluded.written_back_until",
                    ))
                    .to_owned(),
            );
        let backend = self.db.get_database_backend();
        self.db.execute(backend.build(&insert)).await?;
        Ok(())
    }

    /// Every event before this instant is in the database (the Unix epoch
    /// before the first write-back).
    ///
    /// # Errors
    /// The database failed.
    pub async fn watermark(&self) -> Result<DateTime<Utc>, WritebackError> {
        Ok(watermark::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .map_or(DateTime::<Utc>::UNIX_EPOCH, |w| w.written_back_until))
    }

    /// Writes back at once, then every `interval` until `stop` resolves, then
    /// once more.
    pub async fn run_every(
        self,
        interval: Duration,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        // At start: write back what an earlier process left in the store (an
        // in-process store starts empty) and so establish the watermark, so
        // that past days settle at once instead of after the first interval.
        self.log_run().await;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = ticker.tick() => { self.log_run().await; }
            }
        }
        // The last write-back: an in-process store loses whatever it still
        // holds when the process exits, so a failure (another writer holding
        // the embedded database's lock, the database restarting) is retried
        // for up to FINAL_RETRY_FOR; the taken batches stay pending meanwhile.
        let deadline = tokio::time::Instant::now() + FINAL_RETRY_FOR;
        let mut pause = Duration::from_millis(100);
        while !self.log_run().await && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Runs one write-back and logs it; whether it succeeded.
    async fn log_run(&self) -> bool {
        let _timer = self.observer.as_ref().map(|o| o.duration.start_timer());
        match self.run_once().await {
            Ok(r) => {
                tracing::info!(
                    buckets = r.buckets,
                    views = r.views,
                    watch_seconds = r.watch_seconds,
                    ad_views = r.ad_views,
                    "counters written back"
                );
                true
            }
            Err(e) => {
                if let Some(o) = &self.observer {
                    o.failures.inc();
                }
                tracing::warn!(error = %e, "write-back failed; its batches stay pending and are retried");
                false
            }
        }
    }
}
