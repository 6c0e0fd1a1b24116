//! Settlement runs: queue a backfill, list and read runs (SPEC §6, §7).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use common::{
    auth::Role,
    domain::{DayState, RunErrorCode, RunStatus},
};
use proto::revenue::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    admin_write,
    auth::Authenticated,
    error::ApiError,
    extract::JsonBody,
    routes::{unspecified, users::PageQuery},
    startup::AppState,
};

/// `POST /api/v1/admin/settlements` body: a range of past days.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct SettleBody {
    /// First day, `YYYY-MM-DD`.
    #[schema(example = "2026-11-20")]
    pub from: String,
    /// Last day (inclusive), before today in platform time.
    #[schema(example = "2026-11-21")]
    pub to: String,
}

/// The queued runs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettleResponse {
    /// One run per day, in day order.
    pub run_ids: Vec<i64>,
}

/// A settlement run (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunResponse {
    /// Id.
    pub run_id: i64,
    /// The settled day.
    pub day: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: RunStatus,
    /// When a worker took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Video rows written.
    pub rows: i64,
    /// The rate card used.
    pub rate_card_version: Option<i32>,
    /// The day's total, won.
    pub total_amount: Option<i64>,
    /// The day's total before this run replaced it, won.
    pub previous_total_amount: Option<i64>,
    /// Why it failed (or, on a queued run, why it waits), for people.
    pub error: Option<String>,
    /// The same, for programs: `not_written_back` (queued, tried again),
    /// `streaming_unavailable`, `rate_card`, `amount_overflow`,
    /// `database` or `day_busy`.
    pub error_code: Option<RunErrorCode>,
    /// The day's state now (SPEC §11.2): `estimated`, `final` or
    /// `restated`; `null` until the day is settled.
    pub day_state: Option<DayState>,
    /// Later (video, day) rows this run re-priced because the day's
    /// counts moved (SPEC §11.2).
    pub restated_rows: i64,
}

impl TryFrom<pb::Run> for RunResponse {
    type Error = ApiError;

    fn try_from(r: pb::Run) -> Result<Self, ApiError> {
        let status = RunStatus::try_from(r.status()).map_err(unspecified)?;
        let error_code = RunErrorCode::try_from(r.error_code()).ok();
        let day_state = DayState::try_from(r.day_state()).ok();
        let done = status == RunStatus::Succeeded;
        Ok(Self {
            run_id: r.run_id,
            day: r.day,
            started_at: r.started_at.map(|t| crate::routes::time_of(Some(t))),
            finished_at: r.finished_at.map(|t| crate::routes::time_of(Some(t))),
            rows: r.rows,
            rate_card_version: done.then_some(r.rate_card_version),
            total_amount: done.then_some(r.total_amount),
            previous_total_amount: r.previous_total_amount,
            error: Some(r.error).filter(|e| !e.is_empty()),
            error_code,
            day_state,
            restated_rows: r.restated_rows,
            status,
        })
    }
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunPage {
    /// Runs.
    pub items: Vec<RunResponse>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Queues a settlement of each day in the range (backfill). Admins only.
#[utoipa::path(
    tag = "admin",
    request_body = SettleBody,
    security(("bearer" = [])),
    responses(
        (status = 202, body = SettleResponse),
        (status = 400, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
        (status = 409, description = "`Idempotency-Key` reused with another body, or in progress", body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/admin/settlements")]
pub async fn settle(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    body: JsonBody<SettleBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let raw = admin_write::json_bytes(&body.0);
    admin_write::guarded(&req, &caller, &state, &raw, async {
        let message = pb::SettleDaysRequest {
            from: body.0.from,
            to: body.0.to,
        };
        let r = state
            .downstreams
            .revenue()
            .settle_days(state.downstreams.request(message, &caller.ctx))
            .await?
            .into_inner();
        Ok(HttpResponse::Accepted().json(SettleResponse { run_ids: r.run_ids }))
    })
    .await
}

/// Run history, newest first. Admins only.
#[utoipa::path(
    tag = "admin",
    params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = RunPage), (status = 403, body = common::error::ErrorEnvelope))
)]
#[get("/api/v1/admin/settlements")]
pub async fn list_runs(
    caller: Authenticated,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<RunPage>, ApiError> {
    caller.require(Role::Admin)?;
    let message = pb::ListRunsRequest {
        limit: page.limit(20, 100)?,
        cursor: page.cursor.clone().unwrap_or_default(),
    };
    let r = state
        .downstreams
        .revenue()
        .list_runs(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    Ok(web::Json(RunPage {
        items: r
            .runs
            .into_iter()
            .map(RunResponse::try_from)
            .collect::<Result<_, _>>()?,
        next_cursor: Some(r.next_cursor).filter(|c| !c.is_empty()),
    }))
}

/// One run. Admins only.
#[utoipa::path(
    tag = "admin",
    params(("run_id" = i64, Path, description = "run id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = RunResponse),
        (status = 403, description = "Not an admin", body = common::error::ErrorEnvelope),
        (status = 404, body = common::error::ErrorEnvelope)
    )
)]
#[get("/api/v1/admin/settlements/{run_id}")]
pub async fn get_run(
    caller: Authenticated,
    state: web::Data<AppState>,
    run_id: web::Path<i64>,
) -> Result<web::Json<RunResponse>, ApiError> {
    caller.require(Role::Admin)?;
    let message = pb::GetRunRequest {
        run_id: run_id.into_inner(),
    };
    let r = state
        .downstreams
        .revenue()
        .get_run(state.downstreams.request(message, &caller.ctx))
        .await?;
    Ok(web::Json(r.into_inner().try_into()?))
}
