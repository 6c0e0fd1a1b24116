//! Calls to the streaming service: through the circuit breaker, each with
//! a deadline, retried by one policy ([`retrying`]).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use failsafe::{Config, StateMachine, backoff, failure_policy, futures::CircuitBreaker as _};
use proto::streaming::v1::{
    DailyCount, GetWatermarkRequest, StreamDailyCountsRequest,
    streaming_service_client::StreamingServiceClient,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction};

use common::domain::{RunErrorCode, VideoId};

use super::{
    SettleError, Settler,
    write::{Progress, write_rows},
};
use crate::money::RateCard;

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
pub(super) enum PullError {
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
    AmountOverflow(VideoId),
}

impl From<PullError> for SettleError {
    fn from(e: PullError) -> Self {
        let code = match &e {
            PullError::Open | PullError::Failed(_) => RunErrorCode::StreamingUnavailable,
            PullError::Database(_) => RunErrorCode::Database,
            PullError::AmountOverflow(_) => RunErrorCode::AmountOverflow,
        };
        SettleError::new(code, e)
    }
}

/// Retries `call` while it fails with [`PullError::Failed`], at most
/// `retries` times, after delays growing from 200 ms (doubling, with
/// jitter). An open circuit, a database error or a money overflow is not
/// retried.
pub(super) async fn retrying<T, F, Fut>(retries: u32, what: &str, call: F) -> Result<T, PullError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PullError>>,
{
    use backon::{ExponentialBuilder, Retryable};
    let policy = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_times(usize::try_from(retries).unwrap_or(usize::MAX))
        .with_jitter();
    call.retry(policy)
        .when(|e| matches!(e, PullError::Failed(_)))
        .notify(|e, delay| tracing::warn!(what, error = %e, ?delay, "call failed; retrying"))
        .await
}

impl Settler {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.limits.call_timeout);
        request
    }

    /// How far the streaming service's write-back has reached.
    pub(super) async fn watermark(&self) -> Result<DateTime<Utc>, PullError> {
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

    /// Streams the day's counts after `progress`'s last video and writes
    /// their rows inside `txn`. Reading and writing overlap: received rows go
    /// through a small queue to the writer, so the stream keeps flowing
    /// while a batch is inserted; every row received is written before this
    /// returns, so a retry resumes exactly after the last one.
    pub(super) async fn pull(
        &self,
        txn: &DatabaseTransaction,
        day: NaiveDate,
        card: &RateCard,
        progress: &tokio::sync::Mutex<Progress>,
    ) -> Result<(), PullError> {
        let batch_rows = match txn.get_database_backend() {
            // 11 bound values a row: PostgreSQL allows 65,535 per statement,
            // SQLite 32,766.
            sea_orm::DatabaseBackend::Postgres => 5_000,
            _ => 2_000,
        };
        let (queue, mut batches) = tokio::sync::mpsc::channel::<Vec<DailyCount>>(4);
        let after = progress.lock().await.last_video_id.0;
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
                write_rows(txn, day, card, &batch, &mut *progress.lock().await).await?;
            }
            Ok::<(), PullError>(())
        };
        let (read, write) = tokio::join!(read, write);
        write?;
        read
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
