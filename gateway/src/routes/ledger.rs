//! Money after settlement (SPEC §11.1, §11.3, §11.6): invalid-traffic
//! adjustments, a creator's ledger, and the audit log of admin writes.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use common::{auth::Role, domain::TransferKind};
use proto::revenue::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    admin_write,
    auth::Authenticated,
    error::ApiError,
    extract::JsonBody,
    routes::{
        csv_bytes, csv_error, csv_response, optional_id, time_of, unspecified, users::PageQuery,
    },
    startup::AppState,
};

/// `POST /api/v1/admin/adjustments` body: counts of a video's day found
/// invalid (SPEC §11.3).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AdjustmentBody {
    /// The video.
    pub video_id: i64,
    /// The day, `YYYY-MM-DD`, before today.
    #[schema(example = "2026-11-20")]
    pub day: String,
    /// Invalid views: at least 0, at most what earlier adjustments left of
    /// the day's views.
    pub views: i64,
    /// Invalid ad views, bounded the same way.
    pub ad_views: i64,
    /// Invalid watch seconds, bounded the same way.
    pub watch_seconds: i64,
    /// Why (1 to 500 characters); shown to the creator and on the ledger.
    pub reason: String,
}

/// An adjustment (SPEC §11.3).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdjustmentResponse {
    /// Id.
    pub adjustment_id: i64,
    /// The video.
    pub video_id: i64,
    /// Its creator.
    pub creator_id: i64,
    /// The day.
    pub day: String,
    /// Invalid views removed.
    pub views: i64,
    /// Invalid ad views removed.
    pub ad_views: i64,
    /// Invalid watch seconds removed.
    pub watch_seconds: i64,
    /// Why.
    pub reason: String,
    /// Won taken back from the creator: the day's and every later settled
    /// day's re-priced difference (0 when the day was not settled yet).
    pub amount_clawed_back: i64,
    /// `KRW`.
    pub currency: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The admin's user id.
    pub actor: i64,
}

impl From<pb::Adjustment> for AdjustmentResponse {
    fn from(a: pb::Adjustment) -> Self {
        Self {
            adjustment_id: a.adjustment_id,
            video_id: a.video_id,
            creator_id: a.creator_id,
            day: a.day,
            views: a.views,
            ad_views: a.ad_views,
            watch_seconds: a.watch_seconds,
            reason: a.reason,
            amount_clawed_back: a.amount_clawed_back,
            currency: "KRW".to_owned(),
            created_at: time_of(a.created_at),
            actor: a.actor,
        }
    }
}

/// A page of adjustments, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdjustmentPage {
    /// Adjustments.
    pub items: Vec<AdjustmentResponse>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Removes invalid traffic from a video's day: the day and every later
/// settled day of the video are re-priced at once, and the differences
/// post to the ledger as `adjustment` transfers carrying the reason. A day
/// not settled yet takes the adjustment when it is settled. Admins only;
/// accepts `Idempotency-Key`.
#[utoipa::path(
    tag = "admin",
    request_body = AdjustmentBody,
    security(("bearer" = [])),
    responses(
        (status = 201, body = AdjustmentResponse),
        (status = 400, description = "a count below 0 or above the day's count, a bad day or reason", body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, description = "not an admin", body = common::error::ErrorEnvelope),
        (status = 404, description = "unknown video", body = common::error::ErrorEnvelope),
        (status = 409, description = "a run holds a day it restates (`settlement_busy`), or the `Idempotency-Key` was reused or is in progress", body = common::error::ErrorEnvelope),
        (status = 503, description = "the streaming or revenue service is unavailable", body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/admin/adjustments")]
pub async fn create_adjustment(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    body: JsonBody<AdjustmentBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let raw = admin_write::json_bytes(&body.0);
    admin_write::guarded(&req, &caller, &state, &raw, async {
        let b = body.0;
        let message = pb::CreateAdjustmentRequest {
            video_id: b.video_id,
            day: b.day,
            views: b.views,
            ad_views: b.ad_views,
            watch_seconds: b.watch_seconds,
            reason: b.reason,
        };
        let created = state
            .downstreams
            .revenue()
            .create_adjustment(state.downstreams.request(message, &caller.ctx))
            .await?
            .into_inner();
        Ok(HttpResponse::Created().json(AdjustmentResponse::from(created)))
    })
    .await
}

/// `GET /api/v1/adjustments` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct AdjustmentQuery {
    /// Only this video's.
    pub video_id: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Adjustments, newest first: a creator's are those of their videos, an
/// admin sees all.
#[utoipa::path(
    tag = "stats",
    params(AdjustmentQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AdjustmentPage),
        (status = 400, body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, description = "a viewer", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/adjustments")]
pub async fn list_adjustments(
    caller: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<AdjustmentQuery>,
) -> Result<web::Json<AdjustmentPage>, ApiError> {
    let page = PageQuery {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    };
    let message = pb::ListAdjustmentsRequest {
        video_id: optional_id("video_id", query.video_id.as_deref())?,
        limit: page.limit(20, 100)?,
        cursor: page.cursor.unwrap_or_default(),
    };
    let r = state
        .downstreams
        .revenue()
        .list_adjustments(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    Ok(web::Json(AdjustmentPage {
        items: r.items.into_iter().map(AdjustmentResponse::from).collect(),
        next_cursor: Some(r.next_cursor).filter(|c| !c.is_empty()),
    }))
}

/// `GET /api/v1/ledger` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct LedgerQuery {
    /// The creator (admins must name one; a creator sees their own).
    pub creator_id: Option<String>,
    /// First day (`YYYY-MM-DD`, platform time) of `posted_at`.
    pub from: Option<String>,
    /// Last day (inclusive) of `posted_at`.
    pub to: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// What a ledger entry came from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntrySource {
    /// `run`, `adjustment`, `statement`, `payout` or `migration` (the
    /// opening balance of days settled before the ledger existed).
    pub kind: String,
    /// The run's, adjustment's, … id.
    pub id: i64,
}

/// One entry of a creator's payable account (SPEC §11.1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntry {
    /// The transfer's id.
    pub entry_id: i64,
    /// `earning`, `restatement`, `adjustment`, `payout`, `income_tax` or
    /// `local_tax`.
    pub kind: TransferKind,
    /// Won; positive is owed to the creator, negative taken back.
    pub amount: i64,
    /// The video, where one applies.
    pub video_id: Option<i64>,
    /// The day, where one applies.
    pub day: Option<String>,
    /// When it was posted.
    pub posted_at: DateTime<Utc>,
    /// Why (an adjustment's reason); `null` for settlement postings.
    pub reason: Option<String>,
    /// What it came from.
    pub source: EntrySource,
}

/// `GET /api/v1/ledger` response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LedgerPage {
    /// The creator.
    pub creator_id: i64,
    /// `KRW`.
    pub currency: String,
    /// The payable account's balance now, in won (of every entry, not only
    /// this page's); may be negative after clawbacks.
    pub balance: i64,
    /// Entries, newest first.
    pub items: Vec<LedgerEntry>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// A creator's payable account as signed entries, newest first, with its
/// balance: a creator their own, an admin any (`creator_id`).
/// `Accept: text/csv` answers the page's entries as CSV.
#[utoipa::path(
    tag = "stats",
    params(LedgerQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The entries and the balance; `Accept: text/csv`: the page as CSV", content(
            (LedgerPage = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, description = "another creator's ledger, or a viewer", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/ledger")]
pub async fn ledger(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<LedgerQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageQuery {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    };
    let message = pb::ListLedgerRequest {
        creator_id: optional_id("creator_id", query.creator_id.as_deref())?,
        from: query.from.clone().unwrap_or_default(),
        to: query.to.clone().unwrap_or_default(),
        limit: page.limit(20, 100)?,
        cursor: page.cursor.unwrap_or_default(),
    };
    let r = state
        .downstreams
        .revenue()
        .list_ledger(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    let body = LedgerPage {
        creator_id: r.creator_id,
        currency: "KRW".to_owned(),
        balance: r.balance,
        items: r
            .items
            .into_iter()
            .map(|e| {
                Ok(LedgerEntry {
                    kind: TransferKind::try_from(e.kind()).map_err(unspecified)?,
                    entry_id: e.entry_id,
                    amount: e.amount,
                    video_id: e.video_id,
                    day: Some(e.day).filter(|d| !d.is_empty()),
                    posted_at: time_of(e.posted_at),
                    reason: Some(e.reason).filter(|r| !r.is_empty()),
                    source: e
                        .source
                        .map(|s| EntrySource {
                            kind: s.kind,
                            id: s.id,
                        })
                        .unwrap_or(EntrySource {
                            kind: String::new(),
                            id: 0,
                        }),
                })
            })
            .collect::<Result<_, ApiError>>()?,
        next_cursor: Some(r.next_cursor).filter(|c| !c.is_empty()),
    };
    if !crate::routes::wants_csv(&req) {
        return Ok(HttpResponse::Ok().json(body));
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "entry_id",
        "kind",
        "amount",
        "video_id",
        "day",
        "posted_at",
        "reason",
        "source_kind",
        "source_id",
    ])
    .map_err(csv_error)?;
    for e in &body.items {
        out.write_record([
            e.entry_id.to_string(),
            e.kind.to_string(),
            e.amount.to_string(),
            e.video_id.map(|v| v.to_string()).unwrap_or_default(),
            e.day.clone().unwrap_or_default(),
            e.posted_at.to_rfc3339(),
            crate::csv_cell::neutralize(e.reason.as_deref().unwrap_or_default()).into_owned(),
            e.source.kind.clone(),
            e.source.id.to_string(),
        ])
        .map_err(csv_error)?;
    }
    Ok(csv_response(
        &format!("ledger-{}.csv", body.creator_id),
        csv_bytes(out)?,
        body.next_cursor.as_deref(),
    ))
}

/// One admin write in the audit log (SPEC §11.6).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Id.
    pub audit_id: i64,
    /// The admin's user id.
    pub actor: i64,
    /// Method and route, e.g. `POST /api/v1/admin/adjustments`.
    pub action: String,
    /// The path written to.
    pub target: String,
    /// The request's `x-request-id`.
    pub request_id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The HTTP status answered; `null` when the gateway stopped before it
    /// could record it.
    pub status: Option<u16>,
    /// A replay of an earlier answer for the same `Idempotency-Key` (the
    /// write did not act again).
    pub replayed: bool,
    /// The `Idempotency-Key`, if one was sent.
    pub idempotency_key: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Entries.
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Every admin write, newest first. Admins only.
#[utoipa::path(
    tag = "admin",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/admin/audit")]
pub async fn audit(
    caller: Authenticated,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<AuditPage>, ApiError> {
    caller.require(Role::Admin)?;
    let message = pb::ListAuditRequest {
        limit: page.limit(20, 100)?,
        cursor: page.cursor.clone().unwrap_or_default(),
    };
    let r = state
        .downstreams
        .revenue()
        .list_audit(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    Ok(web::Json(AuditPage {
        items: r
            .items
            .into_iter()
            .map(|a| AuditEntry {
                audit_id: a.audit_id,
                actor: a.actor,
                action: a.action,
                target: a.target,
                request_id: a.request_id,
                at: time_of(a.at),
                status: u16::try_from(a.status).ok().filter(|s| *s != 0),
                replayed: a.replayed,
                idempotency_key: Some(a.idempotency_key).filter(|k| !k.is_empty()),
            })
            .collect(),
        next_cursor: Some(r.next_cursor).filter(|c| !c.is_empty()),
    }))
}
