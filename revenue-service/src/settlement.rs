//! Settlement runs (SPEC §6): queue a day, claim it under a per-day lease
//! (so two runs of a day never interleave, across replicas), pull its
//! counts from the streaming service through a circuit breaker with
//! timeouts and bounded retries that resume after the last video received,
//! price them with the rate card in effect on the day, and replace the
//! day's rows in one transaction.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use common::time::PlatformTime;
use failsafe::{Config, StateMachine, backoff, failure_policy, futures::CircuitBreaker as _};
use proto::streaming::v1::{
    DailyCount, GetWatermarkRequest, StreamDailyCountsRequest,
    streaming_service_client::StreamingServiceClient,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, TransactionTrait, sea_query::Query,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tonic::{metadata::MetadataValue, transport::Channel};

use crate::{
    cache::ReportCache,
    entity::{daily_stat, rate_card, settlement_run},
    error::RevenueError,
    money::{RateCard, Tier, day_amounts},
    sql::stmt,
};

/// A run's status (SPEC §7).
pub mod status {
    /// Waiting for a worker.
    pub const QUEUED: &str = "queued";
    /// Being settled.
    pub const RUNNING: &str = "running";
    /// Done; the day's rows are in place.
    pub const SUCCEEDED: &str = "succeeded";
    /// Stopped with an error; the day's earlier rows are untouched.
    pub const FAILED: &str = "failed";
}

/// The circuit breaker type around calls to the streaming service.
pub type Breaker = StateMachine<failure_policy::ConsecutiveFailures<backoff::Exponential>, ()>;

/// A breaker that opens after 3 consecutive failures and lets a call
/// through again after `open_for` (doubling up to 60 s while failures go
/// on).
pub fn breaker(open_for: Duration) -> Breaker {
    let backoff = backoff::exponential(open_for, open_for.max(Duration::from_secs(60)));
    Config::new()
        .failure_policy(failure_policy::consecutive_failures(3, backoff))
        .build()
}

/// How a pull from the streaming service failed.
#[derive(Debug, thiserror::Error)]
enum PullError {
    /// The breaker is open: do not retry.
    #[error("circuit open: the streaming service has been failing; not called")]
    Open,
    /// A call failed or timed out.
    #[error("{0}")]
    Failed(String),
    /// Writing the rows failed.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A video's amount, or the day's total, does not fit in `i64` won
    /// (SPEC §8: checked money arithmetic). Not retried: the counts are wrong.
    #[error(
        "the amount of video {0} does not fit in a 64-bit number of won; its counts need correcting"
    )]
    AmountOverflow(i64),
}

/// Why a run did not succeed.
#[derive(Debug)]
enum SettleError {
    /// The day's counts are not all written back: the run stays queued with
    /// this reason and is tried again after [`WAIT_RETRY`].
    Waiting(String),
    /// The run failed with this message.
    Failed(String),
}

impl From<String> for SettleError {
    fn from(message: String) -> Self {
        Self::Failed(message)
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
}

/// Queues and executes settlement runs.
#[derive(Clone)]
pub struct Settler {
    db: DatabaseConnection,
    streaming: Channel,
    credential: SecretString,
    breaker: Breaker,
    time: PlatformTime,
    limits: RunLimits,
    holder: String,
    wake: Arc<Notify>,
    cache: ReportCache,
}

impl Settler {
    /// A settler writing to `db` and pulling over `streaming`.
    pub fn new(
        db: DatabaseConnection,
        streaming: Channel,
        credential: SecretString,
        breaker: Breaker,
        time: PlatformTime,
        limits: RunLimits,
        cache: ReportCache,
    ) -> Self {
        Self {
            cache,
            db,
            streaming,
            credential,
            breaker,
            time,
            limits,
            holder: uuid::Uuid::new_v4().simple().to_string(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The platform calendar.
    pub fn time(&self) -> PlatformTime {
        self.time
    }

    /// Queues one run per day of `days` and wakes the worker.
    ///
    /// # Errors
    /// Database failures.
    pub async fn enqueue(&self, days: &[NaiveDate]) -> Result<Vec<i64>, RevenueError> {
        let mut ids = Vec::with_capacity(days.len());
        for &day in days {
            let run = settlement_run::Entity::insert(settlement_run::ActiveModel {
                day: Set(day),
                status: Set(status::QUEUED.to_owned()),
                created_at: Set(Utc::now()),
                rows: Set(0),
                ..Default::default()
            })
            .exec_with_returning(&self.db)
            .await?;
            ids.push(run.id);
        }
        self.wake.notify_one();
        Ok(ids)
    }

    /// Claims and executes queued runs (and runs whose holder died) until
    /// `stop` resolves.
    pub async fn run_worker(self, stop: impl std::future::Future<Output = ()> + Send) {
        tokio::pin!(stop);
        loop {
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

    /// Claims one runnable run and executes it; `false` when there was none
    /// (or each was another holder's day).
    ///
    /// # Errors
    /// Database failures while claiming.
    pub async fn run_next(&self) -> Result<bool, RevenueError> {
        let now = Utc::now();
        let stale = now - self.lease_chrono();
        // A queued run that found its day not written back records when it
        // looked (`heartbeat_at`) and is looked at again after WAIT_RETRY.
        let waited = now - chrono::Duration::from_std(WAIT_RETRY).unwrap_or_default();
        let candidates = settlement_run::Entity::find()
            .filter(
                settlement_run::Column::Status
                    .eq(status::QUEUED)
                    .and(
                        settlement_run::Column::HeartbeatAt
                            .is_null()
                            .or(settlement_run::Column::HeartbeatAt.lt(waited)),
                    )
                    .or(settlement_run::Column::Status
                        .eq(status::RUNNING)
                        .and(settlement_run::Column::HeartbeatAt.lt(stale))),
            )
            .order_by_asc(settlement_run::Column::Id)
            .all(&self.db)
            .await?;
        // Runs that waited for the write-back are claimed again only once
        // the watermark (read once per pass) has passed their day.
        let mut watermark: Option<Option<DateTime<Utc>>> = None;
        for run in candidates {
            if run.status == status::QUEUED && run.heartbeat_at.is_some() {
                let mark = match watermark {
                    Some(mark) => mark,
                    None => *watermark.insert(self.watermark().await.ok()),
                };
                if mark.is_some_and(|mark| mark < self.time.end_of(run.day)) {
                    continue;
                }
            }
            if !self.acquire_lease(run.day).await? {
                continue;
            }
            let claimed = self
                .db
                .execute(stmt(
                    self.db.get_database_backend(),
                    "UPDATE settlement_runs SET status = 'running', started_at = $1, heartbeat_at = $1, error = NULL \
                     WHERE id = $2 AND (status = 'queued' OR (status = 'running' AND heartbeat_at < $3))",
                    vec![Utc::now().into(), run.id.into(), stale.into()],
                ))
                .await?
                .rows_affected()
                == 1;
            if claimed {
                let finished = self.execute(run.id, run.day).await;
                self.release_lease(run.day).await?;
                if finished {
                    return Ok(true);
                }
                continue;
            }
            self.release_lease(run.day).await?;
        }
        Ok(false)
    }

    fn lease_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.limits.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    /// Takes (or renews) the lease of `day` unless another holder's is live.
    async fn acquire_lease(&self, day: NaiveDate) -> Result<bool, RevenueError> {
        let now = Utc::now();
        let result = self
            .db
            .execute(stmt(
                self.db.get_database_backend(),
                "INSERT INTO settlement_leases (day, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (day) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE settlement_leases.expires_at < $4 OR settlement_leases.holder = excluded.holder",
                vec![day.into(), self.holder.clone().into(), (now + self.lease_chrono()).into(), now.into()],
            ))
            .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn release_lease(&self, day: NaiveDate) -> Result<(), RevenueError> {
        self.db
            .execute(stmt(
                self.db.get_database_backend(),
                "DELETE FROM settlement_leases WHERE day = $1 AND holder = $2",
                vec![day.into(), self.holder.clone().into()],
            ))
            .await?;
        Ok(())
    }

    /// Executes a claimed run and records its outcome; `false` when the day
    /// is not all written back yet and the run went back to the queue.
    async fn execute(&self, run_id: i64, day: NaiveDate) -> bool {
        tracing::info!(run_id, %day, "settlement run started");
        let heartbeat = {
            let this = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(this.limits.lease / 3).await;
                    let _ = this.acquire_lease(day).await;
                    let _ = this
                        .db
                        .execute(stmt(
                            this.db.get_database_backend(),
                            "UPDATE settlement_runs SET heartbeat_at = $1 WHERE id = $2",
                            vec![Utc::now().into(), run_id.into()],
                        ))
                        .await;
                }
            })
        };
        let outcome = self.settle(day).await;
        heartbeat.abort();
        let update = match &outcome {
            Err(SettleError::Waiting(reason)) => {
                tracing::info!(run_id, %day, reason = %reason, "settlement run waits for the write-back");
                settlement_run::ActiveModel {
                    id: Set(run_id),
                    status: Set(status::QUEUED.to_owned()),
                    heartbeat_at: Set(Some(Utc::now())),
                    error: Set(Some(reason.clone())),
                    ..Default::default()
                }
            }
            Ok(s) => {
                tracing::info!(run_id, %day, rows = s.rows, total = s.total_amount, "settlement run succeeded");
                settlement_run::ActiveModel {
                    id: Set(run_id),
                    status: Set(status::SUCCEEDED.to_owned()),
                    finished_at: Set(Some(Utc::now())),
                    rows: Set(s.rows),
                    rate_card_version: Set(Some(s.rate_card_version)),
                    total_amount: Set(Some(s.total_amount)),
                    previous_total_amount: Set(s.previous_total_amount),
                    error: Set(None),
                    ..Default::default()
                }
            }
            Err(SettleError::Failed(e)) => {
                tracing::warn!(run_id, %day, error = %e, "settlement run failed");
                settlement_run::ActiveModel {
                    id: Set(run_id),
                    status: Set(status::FAILED.to_owned()),
                    finished_at: Set(Some(Utc::now())),
                    error: Set(Some(e.clone())),
                    ..Default::default()
                }
            }
        };
        if let Err(e) = settlement_run::Entity::update(update).exec(&self.db).await {
            tracing::error!(run_id, error = %e, "recording the run failed");
        }
        !matches!(outcome, Err(SettleError::Waiting(_)))
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.limits.call_timeout);
        if let Ok(v) = MetadataValue::try_from(self.credential.expose_secret()) {
            request
                .metadata_mut()
                .insert(common::grpc::SERVICE_CREDENTIAL, v);
        }
        request
    }

    /// How far the streaming service's write-back has reached.
    async fn watermark(&self) -> Result<DateTime<Utc>, PullError> {
        let mut client = StreamingServiceClient::new(self.streaming.clone());
        let call = within(
            self.limits.call_timeout,
            client.get_watermark(self.request(GetWatermarkRequest {})),
        );
        let response = self.breaker.call(call).await.map_err(|e| match e {
            failsafe::Error::Rejected => PullError::Open,
            failsafe::Error::Inner(s) => PullError::Failed(format!("watermark: {s}")),
        })?;
        let t = response.into_inner().written_back_until.unwrap_or_default();
        Ok(DateTime::from_timestamp(t.seconds, 0).unwrap_or_default())
    }

    /// Whether every count of `day` is written back (the streaming
    /// watermark has passed its end).
    ///
    /// # Errors
    /// The streaming service cannot be reached, or the circuit is open.
    pub async fn written_back(&self, day: NaiveDate) -> Result<bool, String> {
        let watermark = self.watermark().await.map_err(|e| e.to_string())?;
        Ok(watermark >= self.time.end_of(day))
    }

    /// Settles `day`; the run's outcome or a message for its record.
    async fn settle(&self, day: NaiveDate) -> Result<Settled, SettleError> {
        let watermark = self.with_retries(|| self.watermark()).await?;
        let end = self.time.end_of(day);
        if watermark < end {
            return Err(SettleError::Waiting(format!(
                "waiting: the counts of {day} are not all written back yet (watermark {watermark}, day ends {end})"
            )));
        }
        let card = self
            .rate_card(day)
            .await
            .map_err(|e| format!("rate card: {e}"))?;
        let txn = self
            .db
            .begin()
            .await
            .map_err(|e| format!("database: {e}"))?;
        let previous = previous_total(&txn, day)
            .await
            .map_err(|e| format!("database: {e}"))?;
        daily_stat::Entity::delete_many()
            .filter(daily_stat::Column::Day.eq(day))
            .exec(&txn)
            .await
            .map_err(|e| format!("database: {e}"))?;
        let mut progress = Progress::default();
        let mut attempt = 0;
        loop {
            match self.pull(&txn, day, &card, &mut progress).await {
                Ok(()) => break,
                Err(PullError::Failed(e)) if attempt < self.limits.retries => {
                    attempt += 1;
                    tracing::warn!(%day, attempt, after = progress.last_video_id, error = %e, "pull failed; resuming");
                    tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
                }
                Err(e) => return Err(SettleError::Failed(e.to_string())),
            }
        }
        txn.commit().await.map_err(|e| format!("database: {e}"))?;
        self.cache.invalidate().await;
        Ok(Settled {
            rows: progress.rows,
            total_amount: progress.total_amount,
            previous_total_amount: previous,
            rate_card_version: card.version,
        })
    }

    async fn with_retries<T, F, Fut>(&self, mut call: F) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, PullError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(PullError::Failed(e)) if attempt < self.limits.retries => {
                    attempt += 1;
                    tracing::warn!(attempt, error = %e, "call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Streams the day's counts after `progress.last_video_id` and writes
    /// their rows inside `txn`. Reading and writing overlap: received rows go
    /// through a small queue to the writer, so the stream keeps flowing
    /// while a batch is inserted; every row received is written before this
    /// returns, so a retry resumes exactly after the last one.
    async fn pull(
        &self,
        txn: &DatabaseTransaction,
        day: NaiveDate,
        card: &RateCard,
        progress: &mut Progress,
    ) -> Result<(), PullError> {
        let batch_rows = match txn.get_database_backend() {
            // 11 bound values a row: PostgreSQL allows 65,535 per statement,
            // SQLite 32,766.
            sea_orm::DatabaseBackend::Postgres => 5_000,
            _ => 2_000,
        };
        let (queue, mut batches) = tokio::sync::mpsc::channel::<Vec<DailyCount>>(4);
        let after = progress.last_video_id;
        let read = async move {
            let mut client = StreamingServiceClient::new(self.streaming.clone());
            let mut request = self.request(StreamDailyCountsRequest {
                day: day.format("%Y-%m-%d").to_string(),
                after_video_id: after,
            });
            // The deadline covers opening the stream; each page has its own.
            request.set_timeout(self.limits.call_timeout * 1_000);
            let open = within(
                self.limits.call_timeout,
                client.stream_daily_counts(request),
            );
            let mut stream = self
                .breaker
                .call(open)
                .await
                .map_err(breaker_error)?
                .into_inner();
            let mut batch = Vec::with_capacity(batch_rows);
            loop {
                let next = self
                    .breaker
                    .call(within(self.limits.call_timeout, stream.message()))
                    .await;
                let page = match next {
                    Ok(Some(page)) => page,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = queue.send(batch).await;
                        return Err(breaker_error(e));
                    }
                };
                for row in page.rows {
                    batch.push(row);
                    if batch.len() == batch_rows {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_rows));
                        if queue.send(full).await.is_err() {
                            return Ok(()); // the writer failed; it reports why
                        }
                    }
                }
            }
            let _ = queue.send(batch).await;
            Ok(())
        };
        let write = async move {
            while let Some(batch) = batches.recv().await {
                write_rows(txn, day, card, &batch, progress).await?;
            }
            Ok::<(), PullError>(())
        };
        let (read, write) = tokio::join!(read, write);
        write?;
        read
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

/// `call` with a deadline, its error as text (a timeout is a failure too).
async fn within<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
    }
}

fn breaker_error<E: std::fmt::Display>(e: failsafe::Error<E>) -> PullError {
    match e {
        failsafe::Error::Rejected => PullError::Open,
        failsafe::Error::Inner(e) => PullError::Failed(format!("daily counts: {e}")),
    }
}

/// A finished settlement.
#[derive(Debug, Clone, Copy)]
struct Settled {
    rows: i64,
    total_amount: i64,
    previous_total_amount: Option<i64>,
    rate_card_version: i32,
}

/// How far a pull has got.
#[derive(Debug, Default)]
struct Progress {
    last_video_id: i64,
    rows: i64,
    total_amount: i64,
}

async fn previous_total(
    txn: &DatabaseTransaction,
    day: NaiveDate,
) -> Result<Option<i64>, sea_orm::DbErr> {
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
    Ok(Some(row.try_get::<Option<i64>>("", "total")?.unwrap_or(0)))
}

/// Prices `batch` and inserts it.
async fn write_rows(
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
        let (amounts, total) = day_amounts(
            card,
            c.cumulative_views_before,
            c.views,
            c.cumulative_ad_views_before,
            c.ad_views,
        )
        .and_then(|a| Some((a, a.total()?)))
        .ok_or(PullError::AmountOverflow(c.video_id))?;
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
            .ok_or(PullError::AmountOverflow(c.video_id))?;
        progress.last_video_id = c.video_id;
    }
    let backend = txn.get_database_backend();
    txn.execute(backend.build(&insert)).await?;
    Ok(())
}
