//! The `revenue.v1.RevenueService` gRPC handlers: identify the caller,
//! validate, call the core, map errors. Runs and reports are here; money
//! corrections (adjustments, the ledger) in [`corrections`]; the audit and
//! idempotency of admin writes in [`admin`].

mod admin;
mod corrections;
mod statements;
mod webhooks;

use std::{collections::HashMap, sync::Arc};

use chrono::NaiveDate;
use common::{
    auth::{AccessClaims, Role},
    domain::{CreatorId, DayState, Metric, Period, Tally, Unspecified, VideoId},
    error::ErrorCode,
    jwks::{KeyCache, VerifyError},
    paging::{decode_cursor, encode_cursor, fetch_page, page_size},
};
use proto::revenue::v1 as pb;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use settled_day::Entity as SettledDays;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::{
    cache::{ReportCache, Versioned},
    entity::{settled_day, settlement_run},
    error::RevenueError,
    reports,
    settlement::Settler,
};

/// The most days one backfill may queue.
pub const MAX_BACKFILL_DAYS: i64 = 366;

/// The gRPC face of the revenue service.
#[derive(Clone)]
pub struct RevenueApi {
    db: DatabaseConnection,
    settler: Settler,
    keys: Arc<KeyCache>,
    cache: ReportCache,
    /// `WEBHOOK_ALLOW_INSECURE_URLS`.
    insecure_webhooks: bool,
}

fn day_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// `day`'s state in `states`, unspecified when it is not settled.
fn state_in(states: &HashMap<NaiveDate, DayState>, day: NaiveDate) -> i32 {
    states
        .get(&day)
        .map_or(pb::DayState::Unspecified, |s| pb::DayState::from(*s))
        .into()
}

fn run_to_proto(r: settlement_run::Model, states: &HashMap<NaiveDate, DayState>) -> pb::Run {
    pb::Run {
        day_state: state_in(states, r.day),
        restated_rows: r.restated_rows,
        run_id: r.id,
        day: day_text(r.day),
        status: pb::RunStatus::from(r.status).into(),
        started_at: r.started_at.map(common::grpc::timestamp),
        finished_at: r.finished_at.map(common::grpc::timestamp),
        rows: r.rows,
        rate_card_version: r.rate_card_version.unwrap_or(0),
        total_amount: r.total_amount.unwrap_or_default().0,
        previous_total_amount: r.previous_total_amount.map(|w| w.0),
        error: r.error.unwrap_or_default(),
        error_code: r
            .error_code
            .map_or(pb::RunErrorCode::Unspecified, pb::RunErrorCode::from)
            .into(),
    }
}

/// A required protobuf enum field, or a field violation naming it.
fn required<T, P>(value: P) -> Result<T, RevenueError>
where
    T: TryFrom<P, Error = Unspecified>,
{
    T::try_from(value).map_err(|Unspecified(field)| RevenueError::field(field, "must be set"))
}

/// What a caller is told when a creator's money is not theirs to see.
struct Refusals {
    /// To a creator asking about another creator.
    not_yours: &'static str,
    /// To a viewer.
    not_a_creator: &'static str,
}

const REVENUE: Refusals = Refusals {
    not_yours: "creators see only their own revenue",
    not_a_creator: "only creators and admins have revenue",
};

const LEDGER: Refusals = Refusals {
    not_yours: "creators see only their own ledger",
    not_a_creator: "only creators and admins have a ledger",
};

/// The creator whose money a caller asks about (`requested`, 0 for
/// themselves): a creator only their own, an admin anyone they name, a
/// viewer no one.
fn creator_in_scope(
    claims: &AccessClaims,
    requested: i64,
    refusals: &Refusals,
) -> Result<CreatorId, RevenueError> {
    let me = claims
        .user_id()
        .map_err(|_| RevenueError::InvalidAccessToken)?;
    match (claims.role, requested) {
        (Role::Admin, 0) => Err(RevenueError::field(
            "creator_id",
            "an admin must name the creator",
        )),
        (Role::Admin, id) => Ok(CreatorId(id)),
        (Role::Creator, 0) => Ok(CreatorId(me)),
        (Role::Creator, id) if id == me => Ok(CreatorId(me)),
        (Role::Creator, _) => Err(RevenueError::Forbidden(refusals.not_yours)),
        (Role::Viewer, _) => Err(RevenueError::Forbidden(refusals.not_a_creator)),
    }
}

fn parse_day(field: &str, text: &str) -> Result<NaiveDate, RevenueError> {
    common::time::parse_day(text).map_err(|e| RevenueError::field(field, e))
}

fn period_of(
    period: pb::Period,
    date: &str,
) -> Result<(Period, (NaiveDate, NaiveDate)), RevenueError> {
    let p: Period = required(period)?;
    let d = parse_day("date", date)?;
    Ok((p, p.range(d)))
}

/// The most days one [`RevenueApi::revenue_series_call`] answers: a leap
/// year.
pub const MAX_SERIES_DAYS: i64 = 366;

impl RevenueApi {
    /// `RevenueSeries`: a creator's tally on every day of `[from, to]`
    /// (at most [`MAX_SERIES_DAYS`]), zeros where nothing was settled,
    /// with each day's state; cached like the other reports.
    async fn revenue_series_call(
        &self,
        request: Request<pb::RevenueSeriesRequest>,
    ) -> Result<Response<pb::RevenueSeriesResponse>, RevenueError> {
        let claims = self.caller(&request).await?;
        let r = request.into_inner();
        let creator_id = creator_in_scope(&claims, r.creator_id, &REVENUE)?;
        let from = parse_day("from", &r.from)?;
        let to = parse_day("to", &r.to)?;
        if to < from {
            return Err(RevenueError::field("to", "must not be before `from`"));
        }
        if (to - from).num_days() + 1 > MAX_SERIES_DAYS {
            return Err(RevenueError::field(
                "to",
                format!("at most {MAX_SERIES_DAYS} days from `from`, both included"),
            ));
        }
        let key = format!("revenue-series:{creator_id}:{from}:{to}");
        let report = self
            .cache
            .get_or_compute(&key, || async {
                let earned: HashMap<NaiveDate, Tally> =
                    reports::earnings_by_day(&self.db, creator_id, (from, to))
                        .await?
                        .into_iter()
                        .map(|d| (d.day, d.tally))
                        .collect();
                let range: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
                let states = self.day_states(range.iter().copied()).await?;
                let mut totals = Tally::default();
                let mut days = Vec::new();
                for day in range {
                    let tally = earned.get(&day).copied().unwrap_or_default();
                    // SPEC §8: every money sum is checked.
                    totals = totals.checked_add(&tally).ok_or_else(|| {
                        RevenueError::Internal(anyhow::anyhow!(
                            "creator {creator_id}'s earnings do not fit in 64 bits"
                        ))
                    })?;
                    days.push(pb::DayTally {
                        day: day_text(day),
                        tally: Some(tally.into()),
                        state: state_in(&states, day),
                    });
                }
                Ok(pb::RevenueSeriesResponse {
                    creator_id: creator_id.0,
                    from: day_text(from),
                    to: day_text(to),
                    totals: Some(totals.into()),
                    days,
                })
            })
            .await?;
        Ok(Response::new(report))
    }

    /// The state now of each of `days` that has been settled (SPEC §11.2).
    async fn day_states(
        &self,
        days: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<HashMap<NaiveDate, DayState>, RevenueError> {
        let days: Vec<NaiveDate> = days.into_iter().collect();
        let settled = SettledDays::find()
            .filter(settled_day::Column::Day.is_in(days))
            .all(&self.db)
            .await?;
        Ok(settled
            .into_iter()
            .map(|d| (d.day, self.state_of(d.day, d.restated_at.is_some())))
            .collect())
    }

    /// A settled day's state: `restated` when its amounts changed after it
    /// was final, else `final` or `estimated` by its age.
    fn state_of(&self, day: NaiveDate, restated: bool) -> DayState {
        if restated {
            DayState::Restated
        } else if self.settler.is_final(day) {
            DayState::Final
        } else {
            DayState::Estimated
        }
    }

    /// Handlers over these parts.
    pub fn new(
        db: DatabaseConnection,
        settler: Settler,
        keys: Arc<KeyCache>,
        cache: ReportCache,
    ) -> Self {
        Self {
            db,
            settler,
            keys,
            cache,
            insecure_webhooks: false,
        }
    }

    /// Accepts `http` webhook URLs and internal addresses
    /// (`WEBHOOK_ALLOW_INSECURE_URLS`).
    pub fn allowing_insecure_webhooks(mut self, allow: bool) -> Self {
        self.insecure_webhooks = allow;
        self
    }

    /// The signed-in caller (SPEC §9: the forwarded token is verified here).
    /// The creator and period a `RevenuesRequest` asks for: the caller's
    /// own earnings, or any creator's for an admin (SPEC §7). `Revenues`
    /// and `StreamRevenues` answer the same scope.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` without a valid token, `PERMISSION_DENIED` for
    /// another creator or a viewer, `INVALID_ARGUMENT` naming `period` or
    /// `date`.
    async fn revenues_scope(
        &self,
        request: &Request<pb::RevenuesRequest>,
    ) -> Result<(CreatorId, Period, (NaiveDate, NaiveDate)), RevenueError> {
        let claims = self.caller(request).await?;
        let r = request.get_ref();
        let creator_id = creator_in_scope(&claims, r.creator_id, &REVENUE)?;
        let (period, range) = period_of(r.period(), &r.date)?;
        Ok((creator_id, period, range))
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<AccessClaims, RevenueError> {
        let token = common::grpc::bearer_token(request.metadata())
            .ok_or(RevenueError::InvalidAccessToken)?;
        self.keys.verify(token).await.map_err(|e| match e {
            VerifyError::Token(_) => RevenueError::InvalidAccessToken,
            VerifyError::KeysUnavailable(_) => RevenueError::Unavailable("the user service"),
        })
    }

    async fn admin<T>(&self, request: &Request<T>) -> Result<AccessClaims, RevenueError> {
        let claims = self.caller(request).await?;
        if claims.role == Role::Admin {
            Ok(claims)
        } else {
            Err(RevenueError::Forbidden("only admins may do this"))
        }
    }
}

/// Videos a page of `StreamRevenues` carries (a page of 5,000 is about
/// 300 KB of protobuf).
const REVENUE_PAGE_VIDEOS: u64 = 5_000;

/// A video's earnings as the API sends them.
fn video_revenue(v: reports::VideoEarnings) -> pb::VideoRevenue {
    pb::VideoRevenue {
        video_id: v.video_id.0,
        title: v.title,
        tally: Some(v.tally.into()),
    }
}

#[tonic::async_trait]
impl pb::revenue_service_server::RevenueService for RevenueApi {
    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn settle_days(
        &self,
        request: Request<pb::SettleDaysRequest>,
    ) -> Result<Response<pb::SettleDaysResponse>, Status> {
        self.admin(&request).await?;
        let r = request.into_inner();
        let from = parse_day("from", &r.from)?;
        let to = parse_day("to", &r.to)?;
        if to < from {
            return Err(RevenueError::field("to", "must not be before from").into());
        }
        let today = self.settler.time().today();
        if to >= today {
            return Err(
                RevenueError::field("to", "must be a day before today (platform time)").into(),
            );
        }
        if (to - from).num_days() >= MAX_BACKFILL_DAYS {
            return Err(RevenueError::field("to", "at most 366 days per request").into());
        }
        let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
        let run_ids = self.settler.enqueue(&days).await?;
        Ok(Response::new(pb::SettleDaysResponse {
            run_ids: run_ids.into_iter().map(|id| id.0).collect(),
        }))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        self.admin(&request).await?;
        let r = request.into_inner();
        let limit = page_size(r.limit).map_err(|e| RevenueError::field("limit", e))?;
        let before =
            decode_cursor("run", &r.cursor).map_err(|e| RevenueError::field("cursor", e))?;
        let mut query = settlement_run::Entity::find();
        if before > 0 {
            query = query.filter(settlement_run::Column::Id.lt(before));
        }
        let (runs, more) = fetch_page(
            query.order_by_desc(settlement_run::Column::Id),
            limit,
            &self.db,
        )
        .await
        .map_err(RevenueError::from)?;
        let next_cursor = match (more, runs.last()) {
            (true, Some(last)) => encode_cursor("run", last.id),
            _ => String::new(),
        };
        let states = self.day_states(runs.iter().map(|r| r.day)).await?;
        Ok(Response::new(pb::ListRunsResponse {
            runs: runs.into_iter().map(|r| run_to_proto(r, &states)).collect(),
            next_cursor,
        }))
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::Run>, Status> {
        self.admin(&request).await?;
        let run = settlement_run::Entity::find_by_id(request.into_inner().run_id)
            .one(&self.db)
            .await
            .map_err(RevenueError::from)?
            .ok_or(RevenueError::NotFound("run", ErrorCode::RunNotFound))?;
        let states = self.day_states([run.day]).await?;
        Ok(Response::new(run_to_proto(run, &states)))
    }

    async fn top_videos(
        &self,
        request: Request<pb::TopVideosRequest>,
    ) -> Result<Response<pb::TopVideosResponse>, Status> {
        let r = request.into_inner();
        let metric: Metric = required(r.metric())?;
        let (period, range) = period_of(r.period(), &r.date)?;
        let limit = match r.limit {
            0 => 5,
            n if n <= 100 => n,
            _ => return Err(RevenueError::field("limit", "must be between 1 and 100").into()),
        };
        let creator = (r.creator_id != 0).then_some(CreatorId(r.creator_id));
        let key = format!(
            "top:{metric}:{}:{}:{limit}:{}",
            range.0, range.1, r.creator_id
        );
        let report = self
            .cache
            .get_or_compute(&key, || async {
                let rows =
                    reports::top(&self.db, metric, (period, range.0), limit, creator).await?;
                Ok(pb::TopVideosResponse {
                    metric: pb::Metric::from(metric).into(),
                    period: pb::Period::from(period).into(),
                    start: day_text(range.0),
                    end: day_text(range.1),
                    items: rows
                        .into_iter()
                        .zip(1..)
                        .map(|(row, rank)| pb::TopVideo {
                            rank,
                            video_id: row.video_id.0,
                            title: row.title,
                            creator_id: row.creator_id.0,
                            value: row.value,
                        })
                        .collect(),
                })
            })
            .await?;
        Ok(Response::new(report))
    }

    async fn video_stats(
        &self,
        request: Request<pb::VideoStatsRequest>,
    ) -> Result<Response<pb::VideoStatsResponse>, Status> {
        let claims = self.caller(&request).await?;
        let r = request.into_inner();
        let (period, range) = period_of(r.period(), &r.date)?;
        let video_id = VideoId(r.video_id);
        if claims.role != Role::Admin {
            let owner = reports::creator_of(&self.db, video_id).await?;
            match owner {
                Some(owner) if claims.user_id().ok() == Some(owner.0) => {}
                Some(_) => {
                    return Err(RevenueError::Forbidden(
                        "only the owner or an admin may see a video's stats",
                    )
                    .into());
                }
                None => {
                    return Err(RevenueError::NotFound("video", ErrorCode::VideoNotFound).into());
                }
            }
        }
        let days = reports::video_days(&self.db, video_id, range).await?;
        Ok(Response::new(pb::VideoStatsResponse {
            video_id: video_id.0,
            period: pb::Period::from(period).into(),
            start: day_text(range.0),
            end: day_text(range.1),
            days: days
                .into_iter()
                .map(|d| pb::VideoDay {
                    day: day_text(d.day),
                    tally: Some(d.tally.into()),
                    original_views: d.original_views,
                    original_ad_views: d.original_ad_views,
                    state: pb::DayState::from(self.state_of(d.day, d.restated_at.is_some())).into(),
                })
                .collect(),
        }))
    }

    async fn revenues(
        &self,
        request: Request<pb::RevenuesRequest>,
    ) -> Result<Response<pb::RevenuesResponse>, Status> {
        let (creator_id, period, range) = self.revenues_scope(&request).await?;
        let key = format!("revenues:{creator_id}:{}:{}", range.0, range.1);
        let known = &request.get_ref().if_version;
        let answer = self
            .cache
            .get_or_compute_unless(&key, known, || async {
                let videos = reports::earnings(&self.db, creator_id, (period, range.0)).await?;
                // SPEC §8: every money sum is checked.
                let totals = videos
                    .iter()
                    .try_fold(Tally::default(), |sum, v| sum.checked_add(&v.tally))
                    .ok_or_else(|| {
                        RevenueError::Internal(anyhow::anyhow!(
                            "creator {creator_id}'s earnings do not fit in 64 bits"
                        ))
                    })?;
                Ok(pb::RevenuesResponse {
                    creator_id: creator_id.0,
                    period: pb::Period::from(period).into(),
                    start: day_text(range.0),
                    end: day_text(range.1),
                    totals: Some(totals.into()),
                    videos: videos.into_iter().map(video_revenue).collect(),
                    ..Default::default()
                })
            })
            .await?;
        Ok(Response::new(match answer {
            Versioned::Unchanged { version } => pb::RevenuesResponse {
                version,
                unchanged: true,
                ..Default::default()
            },
            Versioned::Report { report, version } => pb::RevenuesResponse {
                version: version.unwrap_or_default(),
                ..report
            },
        }))
    }

    type StreamRevenuesStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::RevenuePage, Status>>;

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn stream_revenues(
        &self,
        request: Request<pb::RevenuesRequest>,
    ) -> Result<Response<Self::StreamRevenuesStream>, Status> {
        let (creator_id, period, range) = self.revenues_scope(&request).await?;
        // One page waiting while the next is read.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut pages = Box::pin(reports::earnings_pages(
            self.db.clone(),
            creator_id,
            (period, range.0),
            REVENUE_PAGE_VIDEOS,
        ));
        tokio::spawn(async move {
            use futures::StreamExt;
            while let Some(page) = pages.next().await {
                let message = page.map_err(Status::from).map(|videos| pb::RevenuePage {
                    creator_id: creator_id.0,
                    period: pb::Period::from(period).into(),
                    start: day_text(range.0),
                    end: day_text(range.1),
                    videos: videos.into_iter().map(video_revenue).collect(),
                });
                if tx.send(message).await.is_err() {
                    return; // the client went away
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn revenue_series(
        &self,
        request: Request<pb::RevenueSeriesRequest>,
    ) -> Result<Response<pb::RevenueSeriesResponse>, Status> {
        Ok(self.revenue_series_call(request).await?)
    }

    async fn create_adjustment(
        &self,
        request: Request<pb::CreateAdjustmentRequest>,
    ) -> Result<Response<pb::Adjustment>, Status> {
        Ok(self.create_adjustment_call(request).await?)
    }

    async fn list_adjustments(
        &self,
        request: Request<pb::ListAdjustmentsRequest>,
    ) -> Result<Response<pb::ListAdjustmentsResponse>, Status> {
        Ok(self.list_adjustments_call(request).await?)
    }

    async fn list_ledger(
        &self,
        request: Request<pb::ListLedgerRequest>,
    ) -> Result<Response<pb::ListLedgerResponse>, Status> {
        Ok(self.list_ledger_call(request).await?)
    }

    async fn begin_admin_write(
        &self,
        request: Request<pb::BeginAdminWriteRequest>,
    ) -> Result<Response<pb::BeginAdminWriteResponse>, Status> {
        Ok(self.begin_admin_write_call(request).await?)
    }

    async fn finish_admin_write(
        &self,
        request: Request<pb::FinishAdminWriteRequest>,
    ) -> Result<Response<pb::FinishAdminWriteResponse>, Status> {
        Ok(self.finish_admin_write_call(request).await?)
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        Ok(self.list_audit_call(request).await?)
    }

    async fn close_month(
        &self,
        request: Request<pb::CloseMonthRequest>,
    ) -> Result<Response<pb::Close>, Status> {
        Ok(self.close_month_call(request).await?)
    }

    async fn list_statements(
        &self,
        request: Request<pb::ListStatementsRequest>,
    ) -> Result<Response<pb::ListStatementsResponse>, Status> {
        Ok(self.list_statements_call(request).await?)
    }

    async fn get_statement(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Result<Response<pb::Statement>, Status> {
        Ok(self.get_statement_call(request).await?)
    }

    async fn mark_statement_paid(
        &self,
        request: Request<pb::MarkStatementPaidRequest>,
    ) -> Result<Response<pb::Statement>, Status> {
        Ok(self.mark_statement_paid_call(request).await?)
    }

    async fn set_hold(
        &self,
        request: Request<pb::SetHoldRequest>,
    ) -> Result<Response<pb::Hold>, Status> {
        Ok(self.set_hold_call(request).await?)
    }

    async fn release_hold(
        &self,
        request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::ReleaseHoldResponse>, Status> {
        Ok(self.release_hold_call(request).await?)
    }

    async fn withholding(
        &self,
        request: Request<pb::WithholdingRequest>,
    ) -> Result<Response<pb::WithholdingResponse>, Status> {
        Ok(self.withholding_call(request).await?)
    }

    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreatedWebhook>, Status> {
        Ok(self.create_webhook_call(request).await?)
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        Ok(self.list_webhooks_call(request).await?)
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        Ok(self.delete_webhook_call(request).await?)
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        Ok(self.list_deliveries_call(request).await?)
    }

    async fn redeliver(
        &self,
        request: Request<pb::RedeliverRequest>,
    ) -> Result<Response<pb::RedeliverResponse>, Status> {
        Ok(self.redeliver_call(request).await?)
    }
}
