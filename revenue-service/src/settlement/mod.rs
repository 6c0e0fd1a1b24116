//! Settlement runs (SPEC §6, §11): queue a day, claim it under a per-day
//! lease (so two runs of a day never interleave, across replicas), pull its
//! counts from the streaming service through a circuit breaker with
//! timeouts and bounded retries that resume after the last video received,
//! price them with the rate card in effect on the day minus the day's
//! adjustments, and, in one transaction, replace the day's rows, post the
//! ledger differences and restate the later days whose prices moved.
//!
//! By job: this module queues and executes runs; [`lease`] keeps the
//! per-day leases; [`pull`] is where counts come from (the streaming
//! service: breaker, deadlines, the one retry policy); [`write`] prices
//! and writes a day; [`restate`] re-prices later days and records
//! adjustments.

mod lease;
mod pricing;
mod pull;
mod restate;
mod rows;
mod write;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use common::{
    domain::{RunErrorCode, RunId, RunStatus},
    time::PlatformTime,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use tokio::sync::Notify;

pub use pricing::Adjusted;
pub use pull::{
    Breaker, CountSource, GrpcCounts, MAX_HISTORY_VIDEOS, PullError, Watermark, breaker,
};
pub use restate::{AdjustError, MAX_REASON_CHARS, NewAdjustment};
pub use write::day_is_final;

use crate::{cache::ReportCache, entity::settlement_run, error::RevenueError, sql::stmt};
use lease::Leases;

/// Why a run did not succeed: its code (recorded as the run's
/// `error_code`) and a message for people (its `error`). A run whose code
/// is [`RunErrorCode::NotWrittenBack`] stays queued and is tried again
/// after [`WAIT_RETRY`]; any other code fails it.
#[derive(Debug)]
struct SettleError {
    code: RunErrorCode,
    message: String,
}

impl SettleError {
    fn new(code: RunErrorCode, message: impl std::fmt::Display) -> Self {
        Self {
            code,
            message: message.to_string(),
        }
    }

    /// A database failure.
    fn database(e: impl std::fmt::Display) -> Self {
        Self::new(RunErrorCode::Database, format!("database: {e}"))
    }
}

/// When the worker last looked for late counts, and the change version it
/// has looked at.
#[derive(Debug, Default)]
struct LatePoll {
    last: Option<tokio::time::Instant>,
    seen: Option<i64>,
}

impl LatePoll {
    /// Whether `every` has passed since the last look (or there was none);
    /// if so, the look starts now.
    fn due(&mut self, every: Duration) -> bool {
        let now = tokio::time::Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < every)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// How long a run that found its day not written back waits before it looks
/// at the watermark again.
pub const WAIT_RETRY: Duration = Duration::from_secs(1);

/// Limits of a run.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Longest wait for one call or one row.
    pub call_timeout: Duration,
    /// Attempts after a failed pull.
    pub retries: u32,
    /// A lease lasts this long unless renewed.
    pub lease: Duration,
    /// A settled day is `estimated` until this many days have passed after
    /// it, then `final` (SPEC §11.2).
    pub final_after_days: u32,
    /// How often the worker asks the count source which days changed, to
    /// settle again the settled ones that changed after they were read;
    /// zero: never.
    pub late_poll: Duration,
}

/// Queues and executes settlement runs.
#[derive(Clone)]
pub struct Settler {
    db: DatabaseConnection,
    source: Arc<dyn CountSource>,
    time: PlatformTime,
    limits: RunLimits,
    holder: String,
    wake: Arc<Notify>,
    cache: ReportCache,
    metrics: Option<crate::metrics::RevenueMetrics>,
}

impl Settler {
    /// A settler writing to `db` and pulling counts from `source` (in
    /// production, [`GrpcCounts`]: the streaming service).
    pub fn new(
        db: DatabaseConnection,
        source: Arc<dyn CountSource>,
        time: PlatformTime,
        limits: RunLimits,
        cache: ReportCache,
    ) -> Self {
        Self {
            cache,
            db,
            source,
            time,
            limits,
            holder: uuid::Uuid::new_v4().simple().to_string(),
            wake: Arc::new(Notify::new()),
            metrics: None,
        }
    }

    /// The same settler, recording each run's outcome, rows and duration
    /// in `metrics` (`revenue_settlement_*`).
    pub fn observed_by(mut self, metrics: crate::metrics::RevenueMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The platform calendar.
    pub fn time(&self) -> PlatformTime {
        self.time
    }

    /// The limits runs work within.
    pub fn limits(&self) -> RunLimits {
        self.limits
    }

    /// Whether every count of `day` is written back (the streaming
    /// watermark has passed its end).
    ///
    /// # Errors
    /// The count source cannot be reached, or the circuit is open.
    pub async fn written_back(&self, day: NaiveDate) -> Result<bool, String> {
        let watermark = self.source.watermark().await.map_err(|e| e.to_string())?;
        Ok(watermark.until >= self.time.end_of(day))
    }

    /// Queues one run per day of `days` and wakes the worker.
    ///
    /// # Errors
    /// Database failures.
    pub async fn enqueue(&self, days: &[NaiveDate]) -> Result<Vec<RunId>, RevenueError> {
        let mut ids = Vec::with_capacity(days.len());
        for &day in days {
            let run = settlement_run::Entity::insert(settlement_run::ActiveModel {
                day: Set(day),
                status: Set(RunStatus::Queued),
                created_at: Set(Utc::now()),
                rows: Set(0),
                ..Default::default()
            })
            .exec_with_returning(&self.db)
            .await?;
            ids.push(RunId(run.id));
        }
        self.wake.notify_one();
        Ok(ids)
    }

    /// Claims and executes queued runs (and runs whose holder died) until
    /// `stop` resolves.
    pub async fn run_worker(self, stop: impl std::future::Future<Output = ()> + Send) {
        tokio::pin!(stop);
        let mut late = LatePoll::default();
        loop {
            if !self.limits.late_poll.is_zero()
                && late.due(self.limits.late_poll)
                && let Err(e) = self.settle_changed_days(&mut late.seen).await
            {
                tracing::warn!(error = %e, "looking for late counts");
            }
            match self.run_next().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "settlement worker"),
            }
            tokio::select! {
                () = &mut stop => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    /// Queues a run of every settled day whose counts changed after its
    /// last run read them (late counts from the write-back or the import,
    /// SPEC §11.2), unless a run of it is already queued; `seen` is the
    /// change version looked at so far (`None`: start from the oldest
    /// settled day's). Returns the days queued.
    ///
    /// # Errors
    /// The count source or the database failed.
    pub async fn settle_changed_days(
        &self,
        seen: &mut Option<i64>,
    ) -> Result<Vec<NaiveDate>, RevenueError> {
        let backend = self.db.get_database_backend();
        let after = match *seen {
            Some(after) => after,
            None => self
                .db
                .query_one(stmt(
                    backend,
                    "SELECT CAST(COALESCE(MIN(counts_version), 0) AS BIGINT) AS v FROM settled_days",
                    vec![],
                ))
                .await?
                .map(|r| r.try_get::<i64>("", "v"))
                .transpose()?
                .unwrap_or(0),
        };
        let changed = self
            .source
            .changed_days(after)
            .await
            .map_err(|e| RevenueError::Internal(anyhow::anyhow!("changed days: {e}")))?;
        let today = self.time.today();
        let mut queued = Vec::new();
        for &(day, version) in &changed {
            if day >= today {
                continue;
            }
            let stale = self
                .db
                .query_one(stmt(
                    backend,
                    "SELECT 1 AS stale FROM settled_days s WHERE s.day = $1 AND s.counts_version < $2 \
                     AND NOT EXISTS (SELECT 1 FROM settlement_runs r WHERE r.day = $1 AND r.status = $3)",
                    vec![day.into(), version.into(), RunStatus::Queued.as_str().into()],
                ))
                .await?
                .is_some();
            if stale {
                queued.push(day);
            }
        }
        if !queued.is_empty() {
            tracing::info!(days = ?queued, "late counts: settling again");
            self.enqueue(&queued).await?;
        }
        *seen = Some(changed.iter().map(|(_, v)| *v).max().unwrap_or(after));
        Ok(queued)
    }

    /// Claims one runnable run and executes it; `false` when there was none
    /// (or each was another holder's day).
    ///
    /// # Errors
    /// Database failures while claiming.
    pub async fn run_next(&self) -> Result<bool, RevenueError> {
        let now = Utc::now();
        let stale = now
            - chrono::Duration::from_std(self.limits.lease)
                .unwrap_or(chrono::Duration::seconds(30));
        // A queued run that found its day not written back records when it
        // looked (`heartbeat_at`) and is looked at again after WAIT_RETRY.
        let waited = now - chrono::Duration::from_std(WAIT_RETRY).unwrap_or_default();
        let candidates = settlement_run::Entity::find()
            .filter(
                settlement_run::Column::Status
                    .eq(RunStatus::Queued)
                    .and(
                        settlement_run::Column::HeartbeatAt
                            .is_null()
                            .or(settlement_run::Column::HeartbeatAt.lt(waited)),
                    )
                    .or(settlement_run::Column::Status
                        .eq(RunStatus::Running)
                        .and(settlement_run::Column::HeartbeatAt.lt(stale))),
            )
            .order_by_asc(settlement_run::Column::Id)
            .all(&self.db)
            .await?;
        // Runs that waited for the write-back are claimed again only once
        // the watermark (read once per pass) has passed their day.
        let mut watermark: Option<Option<DateTime<Utc>>> = None;
        for run in candidates {
            if run.status == RunStatus::Queued && run.heartbeat_at.is_some() {
                let mark = match watermark {
                    Some(mark) => mark,
                    None => *watermark.insert(self.source.watermark().await.ok().map(|w| w.until)),
                };
                if mark.is_some_and(|mark| mark < self.time.end_of(run.day)) {
                    continue;
                }
            }
            let leases = Leases::new(
                self.db.clone(),
                format!("{}-run-{}", self.holder, run.id),
                self.limits.lease,
            );
            if !leases.try_take(run.day).await? {
                continue;
            }
            let claimed = self
                .db
                .execute(stmt(
                    self.db.get_database_backend(),
                    "UPDATE settlement_runs SET status = $4, started_at = $1, heartbeat_at = $1, error = NULL, error_code = NULL \
                     WHERE id = $2 AND (status = $5 OR (status = $4 AND heartbeat_at < $3))",
                    vec![
                        Utc::now().into(),
                        run.id.into(),
                        stale.into(),
                        RunStatus::Running.as_str().into(),
                        RunStatus::Queued.as_str().into(),
                    ],
                ))
                .await?
                .rows_affected()
                == 1;
            if claimed {
                let finished = self.execute(run.id, run.day, &leases).await;
                leases.release().await?;
                if finished {
                    return Ok(true);
                }
                continue;
            }
            leases.release().await?;
        }
        Ok(false)
    }

    /// Executes a claimed run and records its outcome; `false` when the day
    /// is not all written back yet and the run went back to the queue.
    async fn execute(&self, run_id: i64, day: NaiveDate, leases: &Leases) -> bool {
        tracing::info!(run_id, %day, "settlement run started");
        let heartbeat = {
            let db = self.db.clone();
            let every = self.limits.lease / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let _ = db
                        .execute(stmt(
                            db.get_database_backend(),
                            "UPDATE settlement_runs SET heartbeat_at = $1 WHERE id = $2",
                            vec![Utc::now().into(), run_id.into()],
                        ))
                        .await;
                }
            })
        };
        let timer = self.metrics.as_ref().map(|m| m.run_seconds.start_timer());
        let outcome = leases.renewing(self.settle(day, run_id, leases)).await;
        heartbeat.abort();
        if let Some(m) = &self.metrics {
            let counted = |n: i64| u64::try_from(n).unwrap_or(0);
            match &outcome {
                Ok(s) => {
                    m.runs.with_label_values(&["succeeded"]).inc();
                    m.rows.inc_by(counted(s.rows));
                    m.restated_rows.inc_by(counted(s.restated_rows));
                }
                Err(e) if e.code == RunErrorCode::NotWrittenBack => {
                    m.runs.with_label_values(&["waiting"]).inc();
                }
                Err(_) => m.runs.with_label_values(&["failed"]).inc(),
            }
        }
        if let Some(timer) = timer {
            timer.observe_duration();
        }
        let update = match &outcome {
            Err(e) if e.code == RunErrorCode::NotWrittenBack => {
                tracing::info!(run_id, %day, reason = %e.message, "settlement run waits for the write-back");
                settlement_run::ActiveModel {
                    id: Set(run_id),
                    status: Set(RunStatus::Queued),
                    heartbeat_at: Set(Some(Utc::now())),
                    error: Set(Some(e.message.clone())),
                    error_code: Set(Some(e.code)),
                    ..Default::default()
                }
            }
            Ok(s) => {
                tracing::info!(
                    run_id, %day, rows = s.rows, total = s.total_amount.0,
                    transfers = s.transfers, restated_rows = s.restated_rows,
                    "settlement run succeeded"
                );
                settlement_run::ActiveModel {
                    id: Set(run_id),
                    status: Set(RunStatus::Succeeded),
                    finished_at: Set(Some(Utc::now())),
                    rows: Set(s.rows),
                    rate_card_version: Set(Some(s.rate_card_version)),
                    total_amount: Set(Some(s.total_amount)),
                    previous_total_amount: Set(s.previous_total_amount),
                    restated_rows: Set(s.restated_rows),
                    error: Set(None),
                    error_code: Set(None),
                    ..Default::default()
                }
            }
            Err(e) => {
                tracing::warn!(run_id, %day, error = %e.message, code = %e.code, "settlement run failed");
                settlement_run::ActiveModel {
                    id: Set(run_id),
                    status: Set(RunStatus::Failed),
                    finished_at: Set(Some(Utc::now())),
                    error: Set(Some(e.message.clone())),
                    error_code: Set(Some(e.code)),
                    ..Default::default()
                }
            }
        };
        let event = match &outcome {
            Ok(s) => Some((
                crate::webhooks::EventType::SettlementSucceeded,
                serde_json::json!({
                    "run_id": run_id,
                    "day": day,
                    "status": "succeeded",
                    "rows": s.rows,
                    "total_amount": s.total_amount.0,
                    "previous_total_amount": s.previous_total_amount.map(|w| w.0),
                    "restated_rows": s.restated_rows,
                    "rate_card_version": s.rate_card_version,
                    "currency": "KRW",
                }),
            )),
            Err(e) if e.code == RunErrorCode::NotWrittenBack => None,
            Err(e) => Some((
                crate::webhooks::EventType::SettlementFailed,
                serde_json::json!({
                    "run_id": run_id,
                    "day": day,
                    "status": "failed",
                    "error": e.message,
                    "error_code": e.code.to_string(),
                }),
            )),
        };
        if let Err(e) = self.record_run(update, event).await {
            tracing::error!(run_id, error = %e, "recording the run failed");
        }
        !matches!(&outcome, Err(e) if e.code == RunErrorCode::NotWrittenBack)
    }

    /// Records a finished run and, in the same transaction, its webhook
    /// event (SPEC §11.5's outbox).
    async fn record_run(
        &self,
        update: settlement_run::ActiveModel,
        event: Option<(crate::webhooks::EventType, serde_json::Value)>,
    ) -> Result<(), sea_orm::DbErr> {
        use sea_orm::TransactionTrait;
        let txn = self.db.begin().await?;
        settlement_run::Entity::update(update).exec(&txn).await?;
        if let Some((event, data)) = event {
            crate::webhooks::enqueue(&txn, event, data).await?;
        }
        txn.commit().await
    }
}
