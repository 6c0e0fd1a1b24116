//! Where a settlement's counts come from ([`CountSource`]): the streaming
//! service over gRPC ([`GrpcCounts`]: through the circuit breaker, each
//! call with a deadline), or an in-memory table in tests. Failed pulls are
//! retried by one policy ([`retrying`]).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use common::{
    domain::{CreatorId, RunErrorCode, VideoId},
    grpc::PlatformChannel,
};
use failsafe::{Config, StateMachine, backoff, failure_policy, futures::CircuitBreaker as _};
use futures::future::BoxFuture;
use proto::streaming::v1::{
    DailyCount, GetVideoRequest, GetWatermarkRequest, ListChangedDaysRequest,
    StreamDailyCountsRequest, StreamVideoDaysRequest,
    streaming_service_client::StreamingServiceClient,
};
use tokio::sync::mpsc;

use super::SettleError;

/// The circuit breaker type around calls to the streaming service.
pub type Breaker = StateMachine<
    failure_policy::ConsecutiveFailures<backoff::Exponential>,
    crate::metrics::BreakerInstrument,
>;

/// A breaker that opens after 3 consecutive failures and lets a call
/// through again after `open_for` (doubling up to 60 s while failures go
/// on); its state changes go to `instrument` (`/metrics`).
pub fn breaker(open_for: Duration, instrument: crate::metrics::BreakerInstrument) -> Breaker {
    let backoff = backoff::exponential(open_for, open_for.max(Duration::from_secs(60)));
    Config::new()
        .failure_policy(failure_policy::consecutive_failures(3, backoff))
        .instrument(instrument)
        .build()
}

/// How a pull from the streaming service failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The breaker is open: do not retry.
    #[error("circuit open: the streaming service has been failing; not called")]
    Open,
    /// A call failed or timed out.
    #[error("{0}")]
    Failed(String),
    /// The streaming service refused the pull (`FAILED_PRECONDITION`: the
    /// day's counts are archived, issue 19): an answer, not a failure of
    /// the service, so neither retried nor counted by the breaker.
    #[error("{0}")]
    Refused(String),
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
            PullError::Open | PullError::Failed(_) | PullError::Refused(_) => {
                RunErrorCode::StreamingUnavailable
            }
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

/// How far the count source's write-back has reached, and the version of
/// its last change of any counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    /// Every event before this instant is counted.
    pub until: DateTime<Utc>,
    /// A pull that starts after this answer sees every change up to this
    /// version (SPEC §11.2: a day changed after it is settled again).
    pub changes_version: i64,
}

/// The most videos one [`CountSource::video_days`] call may name (the
/// streaming service's limit).
pub const MAX_HISTORY_VIDEOS: usize = 1_000;

/// Where counts come from (SPEC §5, §9): the write-back watermark, a day's
/// counts of every video, and a few videos' counts over a range of days.
/// Each count comes with the video's cumulative counts before its day.
pub trait CountSource: Send + Sync {
    /// How far the write-back has reached, and the last change's version.
    fn watermark(&self) -> BoxFuture<'_, Result<Watermark, PullError>>;

    /// Days whose counts changed after version `after`, with the version of
    /// their last change, by ascending version (at most 10,000 a call).
    fn changed_days(&self, after: i64) -> BoxFuture<'_, Result<Vec<(NaiveDate, i64)>, PullError>>;

    /// Sends the counts of `day` of every video after `after`, in ascending
    /// video order, to `sink` in batches of at most `batch_rows`. Stops
    /// early without an error when `sink` is closed.
    fn day_counts(
        &self,
        day: NaiveDate,
        after: VideoId,
        batch_rows: usize,
        sink: mpsc::Sender<Vec<DailyCount>>,
    ) -> BoxFuture<'_, Result<(), PullError>>;

    /// Every day from `days.0` to `days.1` inclusive with counts of one of
    /// `videos` (at most [`MAX_HISTORY_VIDEOS`]), in (video, day) order.
    fn video_days<'a>(
        &'a self,
        videos: &'a [VideoId],
        days: (NaiveDate, NaiveDate),
    ) -> BoxFuture<'a, Result<Vec<(NaiveDate, DailyCount)>, PullError>>;

    /// The creator of `video`, or `None` when there is no such video.
    fn creator_of(&self, video: VideoId) -> BoxFuture<'_, Result<Option<CreatorId>, PullError>>;
}

/// The streaming service as a [`CountSource`]: every call through the
/// circuit breaker, with a deadline.
pub struct GrpcCounts {
    channel: PlatformChannel,
    breaker: Breaker,
    call_timeout: Duration,
}

impl GrpcCounts {
    /// Calls over `channel` (the credential is on every call), through
    /// `breaker`, each waiting at most `call_timeout` (a stream: for each
    /// message).
    pub fn new(channel: PlatformChannel, breaker: Breaker, call_timeout: Duration) -> Self {
        Self {
            channel,
            breaker,
            call_timeout,
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.call_timeout);
        request
    }

    fn client(&self) -> StreamingServiceClient<PlatformChannel> {
        StreamingServiceClient::new(self.channel.clone())
    }

    /// Opens a server stream through the breaker; its deadline covers the
    /// opening, each message has its own. A refusal
    /// ([`PullError::Refused`]) is not a failure of the service.
    async fn open<T>(
        &self,
        open: impl std::future::Future<
            Output = Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
        >,
    ) -> Result<tonic::Streaming<T>, PullError> {
        Ok(self
            .breaker
            .call_with(failure, within(self.call_timeout, open))
            .await
            .map_err(breaker_error)?
            .into_inner())
    }

    async fn next<T>(&self, stream: &mut tonic::Streaming<T>) -> Result<Option<T>, PullError> {
        self.breaker
            .call_with(failure, within(self.call_timeout, stream.message()))
            .await
            .map_err(breaker_error)
    }
}

impl CountSource for GrpcCounts {
    fn watermark(&self) -> BoxFuture<'_, Result<Watermark, PullError>> {
        Box::pin(async move {
            let mut client = self.client();
            let call = within(
                self.call_timeout,
                client.get_watermark(self.request(GetWatermarkRequest {})),
            );
            let response = self.breaker.call(call).await.map_err(|e| match e {
                failsafe::Error::Rejected => PullError::Open,
                failsafe::Error::Inner(s) => PullError::Failed(format!("watermark: {s}")),
            })?;
            let mark = response.into_inner();
            let t = mark.written_back_until.unwrap_or_default();
            Ok(Watermark {
                until: DateTime::from_timestamp(t.seconds, 0).unwrap_or_default(),
                changes_version: mark.changes_version,
            })
        })
    }

    fn changed_days(&self, after: i64) -> BoxFuture<'_, Result<Vec<(NaiveDate, i64)>, PullError>> {
        Box::pin(async move {
            let mut client = self.client();
            let call = within(
                self.call_timeout,
                client.list_changed_days(self.request(ListChangedDaysRequest {
                    after_version: after,
                })),
            );
            let days = self
                .breaker
                .call(call)
                .await
                .map_err(breaker_error)?
                .into_inner()
                .days;
            days.into_iter()
                .map(|d| {
                    let day = common::time::parse_day(&d.day).map_err(|e| {
                        PullError::Failed(format!("changed days: a bad day {:?}: {e}", d.day))
                    })?;
                    Ok((day, d.version))
                })
                .collect()
        })
    }

    fn day_counts(
        &self,
        day: NaiveDate,
        after: VideoId,
        batch_rows: usize,
        sink: mpsc::Sender<Vec<DailyCount>>,
    ) -> BoxFuture<'_, Result<(), PullError>> {
        Box::pin(async move {
            let mut client = self.client();
            let mut request = self.request(StreamDailyCountsRequest {
                day: day.format("%Y-%m-%d").to_string(),
                after_video_id: after.0,
            });
            request.set_timeout(self.call_timeout * 1_000);
            let mut stream = self.open(client.stream_daily_counts(request)).await?;
            let mut batch = Vec::with_capacity(batch_rows);
            loop {
                let page = match self.next(&mut stream).await {
                    Ok(Some(page)) => page,
                    Ok(None) => break,
                    Err(e) => {
                        // Everything received is written before the retry.
                        let _ = sink.send(batch).await;
                        return Err(e);
                    }
                };
                for row in page.rows {
                    batch.push(row);
                    if batch.len() == batch_rows {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_rows));
                        if sink.send(full).await.is_err() {
                            return Ok(()); // the writer failed; it reports why
                        }
                    }
                }
            }
            let _ = sink.send(batch).await;
            Ok(())
        })
    }

    fn video_days<'a>(
        &'a self,
        videos: &'a [VideoId],
        (from, to): (NaiveDate, NaiveDate),
    ) -> BoxFuture<'a, Result<Vec<(NaiveDate, DailyCount)>, PullError>> {
        Box::pin(async move {
            let mut rows = Vec::new();
            if videos.is_empty() || to < from {
                return Ok(rows);
            }
            let mut client = self.client();
            let mut request = self.request(StreamVideoDaysRequest {
                video_ids: videos.iter().map(|v| v.0).collect(),
                from: from.format("%Y-%m-%d").to_string(),
                to: to.format("%Y-%m-%d").to_string(),
            });
            request.set_timeout(self.call_timeout * 100);
            let mut stream = self.open(client.stream_video_days(request)).await?;
            while let Some(page) = self.next(&mut stream).await? {
                for row in page.rows {
                    let day = common::time::parse_day(&row.day).map_err(|e| {
                        PullError::Failed(format!("video days: a bad day {:?}: {e}", row.day))
                    })?;
                    if let Some(count) = row.count {
                        rows.push((day, count));
                    }
                }
            }
            Ok(rows)
        })
    }

    fn creator_of(&self, video: VideoId) -> BoxFuture<'_, Result<Option<CreatorId>, PullError>> {
        Box::pin(async move {
            let mut client = self.client();
            let call = within(
                self.call_timeout,
                client.get_video(self.request(GetVideoRequest { video_id: video.0 })),
            );
            // An unknown video is an answer, not a failure of the service.
            let failure = |e: &String| !e.starts_with("NotFound");
            match self.breaker.call_with(failure, call).await {
                Ok(v) => Ok(Some(CreatorId(v.into_inner().creator_id))),
                Err(failsafe::Error::Inner(e)) if e.starts_with("NotFound") => Ok(None),
                Err(e) => Err(breaker_error(e)),
            }
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

/// The text [`within`] gives a `FAILED_PRECONDITION` status.
const REFUSED: &str = "FailedPrecondition";

/// Whether a stream's error counts as a failure of the streaming service
/// (for the breaker): every error but a refusal.
#[allow(clippy::ptr_arg, reason = "failsafe's predicate takes &E, E = String")]
fn failure(e: &String) -> bool {
    !e.starts_with(REFUSED)
}

fn breaker_error(e: failsafe::Error<String>) -> PullError {
    match e {
        failsafe::Error::Rejected => PullError::Open,
        failsafe::Error::Inner(e) if e.starts_with(REFUSED) => {
            PullError::Refused(format!("streaming service refused: {e}"))
        }
        failsafe::Error::Inner(e) => PullError::Failed(format!("streaming service: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// What [`within`] gives for a status of `code`.
    async fn answer(code: tonic::Code) -> Result<(), String> {
        within(Duration::from_secs(1), async {
            Err::<(), _>(tonic::Status::new(
                code,
                "the month of 2026-10-05 is archived",
            ))
        })
        .await
    }

    #[tokio::test]
    async fn a_refused_pull_is_an_answer_neither_retried_nor_opening_the_breaker() {
        let breaker = breaker(
            Duration::from_secs(60),
            crate::metrics::BreakerInstrument::unregistered(),
        );
        let calls = AtomicU32::new(0);
        for _ in 0..5 {
            let refused = retrying(3, "pull", || async {
                calls.fetch_add(1, Ordering::Relaxed);
                breaker
                    .call_with(failure, answer(tonic::Code::FailedPrecondition))
                    .await
                    .map_err(breaker_error)
            })
            .await;
            match refused {
                Err(PullError::Refused(why)) => assert!(why.contains("archived"), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(calls.load(Ordering::Relaxed), 5, "no refusal was retried");
        // Still closed: a call goes through.
        assert!(
            breaker
                .call_with(failure, async { Ok::<_, String>(()) })
                .await
                .is_ok()
        );

        // Three failures of the service open it.
        for _ in 0..3 {
            let failed = breaker
                .call_with(failure, answer(tonic::Code::Unavailable))
                .await
                .map_err(breaker_error);
            assert!(matches!(failed, Err(PullError::Failed(_))));
        }
        assert!(matches!(
            breaker
                .call_with(failure, async { Ok::<_, String>(()) })
                .await
                .map_err(breaker_error),
            Err(PullError::Open)
        ));
    }
}
