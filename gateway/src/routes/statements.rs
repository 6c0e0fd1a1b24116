//! Paying creators (SPEC §11.4): the monthly close, statements (JSON or
//! CSV), the bank transfer that paid one, holds, and the withholding
//! report. Money is whole won (`currency: "KRW"`).

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use common::auth::Role;
use proto::revenue::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    admin_write,
    auth::Authenticated,
    error::ApiError,
    extract::JsonBody,
    routes::{
        csv_bytes, csv_error, csv_response, optional_id, time_of, users::PageQuery, wants_csv,
    },
    startup::AppState,
};

/// The largest withholding report read from the revenue service: about
/// 40 bytes a paid creator, so 1,000,000 creators.
const WITHHOLDING_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// `POST /api/v1/admin/closes` body.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CloseBody {
    /// The month, `YYYY-MM`, over and with every day settled and final.
    #[schema(example = "2026-10")]
    pub month: String,
}

/// A closed month (SPEC §11.4).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CloseResponse {
    /// Id.
    pub close_id: i64,
    /// `YYYY-MM`.
    pub month: String,
    /// Statements issued (one per creator with a balance or a transfer not
    /// yet on a statement).
    pub statements: i64,
    /// The tax policy used.
    pub tax_policy_version: i32,
    /// When.
    pub closed_at: DateTime<Utc>,
    /// `schedule`, or the admin's user id.
    pub actor: String,
    /// The highest ledger transfer id the close covered.
    pub transfer_cursor: i64,
}

impl From<pb::Close> for CloseResponse {
    fn from(c: pb::Close) -> Self {
        Self {
            close_id: c.close_id,
            month: c.month,
            statements: c.statements,
            tax_policy_version: c.tax_policy_version,
            closed_at: time_of(c.closed_at),
            actor: c.actor,
            transfer_cursor: c.transfer_cursor,
        }
    }
}

/// A creator's statement of a month (SPEC §11.4), whole won. `gross =
/// opening_balance + earnings + restatements + adjustments`; when paid,
/// `net = payout − income_tax − local_tax` and `closing_balance = 0`;
/// otherwise nothing is paid and `closing_balance = gross`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementResponse {
    /// Id.
    pub statement_id: i64,
    /// The creator.
    pub creator_id: i64,
    /// `YYYY-MM`.
    pub month: String,
    /// The previous statement's closing balance (0 for the first).
    pub opening_balance: i64,
    /// `earning` transfers on this statement.
    pub earnings: i64,
    /// `restatement` transfers on this statement (corrections of earlier
    /// days, including of months closed before).
    pub restatements: i64,
    /// `adjustment` transfers (invalid-traffic clawbacks), usually ≤ 0.
    pub adjustments: i64,
    /// The sum of the four above.
    pub gross: i64,
    /// Paid out: `gross`, or 0 when carried over.
    pub payout: i64,
    /// 3 % of `payout` truncated to 10 won; 0 under 1,000 won.
    pub income_tax: i64,
    /// 10 % of `income_tax`, truncated to 10 won.
    pub local_tax: i64,
    /// What reaches the creator's bank account.
    pub net: i64,
    /// Carried to the next statement.
    pub closing_balance: i64,
    /// `below_minimum`, `negative_balance` or `hold`; `null` when paid.
    pub carried_reason: Option<String>,
    /// The hold's reason, when the creator was on hold at the close.
    pub hold_reason: Option<String>,
    /// The tax policy used.
    pub tax_policy_version: i32,
    /// `issued` or `paid`.
    pub status: String,
    /// When the close issued it.
    pub issued_at: DateTime<Utc>,
    /// When an admin recorded the bank transfer.
    pub paid_at: Option<DateTime<Utc>>,
    /// The bank transfer's reference.
    pub payout_reference: Option<String>,
    /// `KRW`.
    pub currency: String,
}

impl From<pb::Statement> for StatementResponse {
    fn from(s: pb::Statement) -> Self {
        Self {
            statement_id: s.statement_id,
            creator_id: s.creator_id,
            month: s.month,
            opening_balance: s.opening_balance,
            earnings: s.earnings,
            restatements: s.restatements,
            adjustments: s.adjustments,
            gross: s.gross,
            payout: s.payout,
            income_tax: s.income_tax,
            local_tax: s.local_tax,
            net: s.net,
            closing_balance: s.closing_balance,
            carried_reason: Some(s.carried_reason).filter(|r| !r.is_empty()),
            hold_reason: Some(s.hold_reason).filter(|r| !r.is_empty()),
            tax_policy_version: s.tax_policy_version,
            status: s.status,
            issued_at: time_of(s.issued_at),
            paid_at: s.paid_at.map(|t| time_of(Some(t))),
            payout_reference: Some(s.payout_reference).filter(|r| !r.is_empty()),
            currency: "KRW".to_owned(),
        }
    }
}

/// A page of statements, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatementPage {
    /// Statements.
    pub items: Vec<StatementResponse>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Closes a month (SPEC §11.4): one statement per creator who has a
/// payable balance or a transfer not yet on a statement; payouts and
/// withholding post to the ledger. Months close in order. Closing a closed
/// month issues nothing and answers its close (200). The schedule does the
/// same on the 5th at 03:00 for the previous month. Admins only; accepts
/// `Idempotency-Key`.
#[utoipa::path(
    tag = "admin",
    request_body = CloseBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Closed now", body = CloseResponse),
        (status = 200, description = "Closed before: nothing new was issued", body = CloseResponse),
        (status = 400, description = "`month` is not `YYYY-MM` or is not over", body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
        (status = 409, description = "`month_not_final` (the message names the first day not settled and final) or `month_out_of_order`", body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/admin/closes")]
pub async fn close_month(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    body: JsonBody<CloseBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let raw = admin_write::json_bytes(&body.0);
    admin_write::guarded(&req, &caller, &state, &raw, async {
        let message = pb::CloseMonthRequest {
            month: body.0.month,
        };
        let closed = state
            .downstreams
            .revenue()
            .close_month(state.downstreams.request_within(
                message,
                &caller.ctx,
                std::time::Duration::from_millis(state.settings.gateway_close_timeout_ms),
            ))
            .await?
            .into_inner();
        let mut response = if closed.issued {
            HttpResponse::Created()
        } else {
            HttpResponse::Ok()
        };
        Ok(response.json(CloseResponse::from(closed)))
    })
    .await
}

/// `GET /api/v1/statements` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct StatementQuery {
    /// Only this month's, `YYYY-MM`.
    pub month: Option<String>,
    /// The creator (an admin; without it, every creator's). A creator sees
    /// their own.
    pub creator_id: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Statements, newest first: a creator their own, an admin one creator's
/// (`creator_id`) or everyone's. `Accept: text/csv` answers the page as CSV
/// (the next cursor in `x-next-cursor`).
#[utoipa::path(
    tag = "stats",
    params(StatementQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page; `Accept: text/csv`: the page as CSV", content(
            (StatementPage = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, description = "another creator's statements, or a viewer", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/statements")]
pub async fn list_statements(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<StatementQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageQuery {
        limit: query.limit.clone(),
        cursor: query.cursor.clone(),
    };
    let message = pb::ListStatementsRequest {
        creator_id: optional_id("creator_id", query.creator_id.as_deref())?,
        month: query.month.clone().unwrap_or_default(),
        limit: page.limit(20, 100)?,
        cursor: page.cursor.unwrap_or_default(),
    };
    let r = state
        .downstreams
        .revenue()
        .list_statements(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    let body = StatementPage {
        items: r.items.into_iter().map(StatementResponse::from).collect(),
        next_cursor: Some(r.next_cursor).filter(|c| !c.is_empty()),
    };
    if !wants_csv(&req) {
        return Ok(HttpResponse::Ok().json(body));
    }
    Ok(csv_response(
        "statements.csv",
        statements_csv(&body.items)?,
        body.next_cursor.as_deref(),
    ))
}

/// One statement: its creator's, or an admin's. `Accept: text/csv`
/// answers it as one CSV row.
#[utoipa::path(
    tag = "stats",
    params(("statement_id" = i64, Path, description = "statement id")),
    security(("bearer" = [])),
    responses(
        (status = 200, content(
            (StatementResponse = "application/json"),
            (String = "text/csv"),
        )),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, description = "another creator's statement, or a viewer", body = common::error::ErrorEnvelope),
        (status = 404, description = "`statement_not_found`", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/statements/{statement_id}")]
pub async fn get_statement(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    statement_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let message = pb::GetStatementRequest {
        statement_id: statement_id.into_inner(),
    };
    let s = StatementResponse::from(
        state
            .downstreams
            .revenue()
            .get_statement(state.downstreams.request(message, &caller.ctx))
            .await?
            .into_inner(),
    );
    if !wants_csv(&req) {
        return Ok(HttpResponse::Ok().json(s));
    }
    let name = format!("statement-{}.csv", s.statement_id);
    Ok(csv_response(
        &name,
        statements_csv(std::slice::from_ref(&s))?,
        None,
    ))
}

/// `POST /api/v1/admin/statements/{id}/paid` body.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct PaidBody {
    /// The bank transfer's reference, 1 to 200 characters.
    #[schema(example = "KB-20261110-000123")]
    pub reference: String,
}

/// Records the bank transfer that paid a statement: `issued` → `paid`.
/// The same reference again answers the statement unchanged. Admins only;
/// accepts `Idempotency-Key`.
#[utoipa::path(
    tag = "admin",
    params(("statement_id" = i64, Path, description = "statement id")),
    request_body = PaidBody,
    security(("bearer" = [])),
    responses(
        (status = 200, body = StatementResponse),
        (status = 400, description = "a bad `reference`", body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
        (status = 404, description = "`statement_not_found`", body = common::error::ErrorEnvelope),
        (status = 409, description = "`nothing_to_pay` (the statement carried its balance over) or `statement_already_paid` (with another reference)", body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/admin/statements/{statement_id}/paid")]
pub async fn mark_paid(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    statement_id: web::Path<i64>,
    body: JsonBody<PaidBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let raw = admin_write::json_bytes(&body.0);
    admin_write::guarded(&req, &caller, &state, &raw, async {
        let message = pb::MarkStatementPaidRequest {
            statement_id: statement_id.into_inner(),
            reference: body.0.reference,
        };
        let paid = state
            .downstreams
            .revenue()
            .mark_statement_paid(state.downstreams.request(message, &caller.ctx))
            .await?
            .into_inner();
        Ok(HttpResponse::Ok().json(StatementResponse::from(paid)))
    })
    .await
}

/// `PUT /api/v1/admin/creators/{id}/hold` body.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct HoldBody {
    /// Why, 1 to 500 characters; shown to the creator on their statements.
    pub reason: String,
}

/// A hold on a creator's payouts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HoldResponse {
    /// The creator.
    pub creator_id: i64,
    /// Why.
    pub reason: String,
    /// Since when.
    pub held_since: DateTime<Utc>,
    /// The admin's user id.
    pub actor: i64,
}

/// Holds a creator's payouts (or changes the hold's reason): statements
/// issued while on hold pay nothing and carry the balance over
/// (`carried_reason: hold`, with the reason). Admins only; accepts
/// `Idempotency-Key`.
#[utoipa::path(
    tag = "admin",
    params(("creator_id" = i64, Path, description = "the creator's user id")),
    request_body = HoldBody,
    security(("bearer" = [])),
    responses(
        (status = 200, body = HoldResponse),
        (status = 400, description = "a bad `reason` or id", body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
    )
)]
#[put("/api/v1/admin/creators/{creator_id}/hold")]
pub async fn set_hold(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    creator_id: web::Path<i64>,
    body: JsonBody<HoldBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let raw = admin_write::json_bytes(&body.0);
    admin_write::guarded(&req, &caller, &state, &raw, async {
        let message = pb::SetHoldRequest {
            creator_id: creator_id.into_inner(),
            reason: body.0.reason,
        };
        let h = state
            .downstreams
            .revenue()
            .set_hold(state.downstreams.request(message, &caller.ctx))
            .await?
            .into_inner();
        Ok(HttpResponse::Ok().json(HoldResponse {
            creator_id: h.creator_id,
            reason: h.reason,
            held_since: time_of(h.held_since),
            actor: h.actor,
        }))
    })
    .await
}

/// Releases a creator's hold: the next close pays the carried balance if
/// it reaches the minimum. Admins only; accepts `Idempotency-Key`.
#[utoipa::path(
    tag = "admin",
    params(("creator_id" = i64, Path, description = "the creator's user id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Released"),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
        (status = 404, description = "the creator is not on hold", body = common::error::ErrorEnvelope),
    )
)]
#[delete("/api/v1/admin/creators/{creator_id}/hold")]
pub async fn release_hold(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    creator_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    admin_write::guarded(&req, &caller, &state, &[], async {
        let creator_id = creator_id.into_inner();
        let r = state
            .downstreams
            .revenue()
            .release_hold(
                state
                    .downstreams
                    .request(pb::ReleaseHoldRequest { creator_id }, &caller.ctx),
            )
            .await?
            .into_inner();
        if r.released {
            Ok(HttpResponse::NoContent().finish())
        } else {
            Err(ApiError::new(
                actix_web::http::StatusCode::NOT_FOUND,
                common::error::ErrorCode::NotFound,
                format!("creator {creator_id} is not on hold"),
            ))
        }
    })
    .await
}

/// `GET /api/v1/admin/withholding` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct WithholdingQuery {
    /// A closed month, `YYYY-MM`.
    pub month: Option<String>,
}

/// One paid creator's withholding.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithholdingLine {
    /// The creator.
    pub creator_id: i64,
    /// Their statement.
    pub statement_id: i64,
    /// Paid out, won.
    pub payout: i64,
    /// Income tax withheld, won.
    pub income_tax: i64,
    /// Local income tax withheld, won.
    pub local_tax: i64,
    /// What reached the creator, won.
    pub net: i64,
}

/// The withholding totals of a month.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithholdingTotals {
    /// Won.
    pub payout: i64,
    /// Won: what the platform files and pays to the tax office by the 10th
    /// of the next month.
    pub income_tax: i64,
    /// Won: what it pays to the local government.
    pub local_tax: i64,
    /// Won.
    pub net: i64,
}

/// `GET /api/v1/admin/withholding` response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithholdingReport {
    /// `YYYY-MM`.
    pub month: String,
    /// The tax policy the close used.
    pub tax_policy_version: i32,
    /// `KRW`.
    pub currency: String,
    /// Every creator paid this month, by creator id (the whole month: a
    /// filing is one document).
    pub items: Vec<WithholdingLine>,
    /// The sums of the items.
    pub totals: WithholdingTotals,
}

/// A closed month's withholding (SPEC §11.4): every paid creator's payout,
/// income tax and local tax, with totals. `Accept: text/csv` answers one
/// row per creator and a last `total` row. Admins only.
#[utoipa::path(
    tag = "admin",
    params(WithholdingQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, content(
            (WithholdingReport = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "`month` missing or not `YYYY-MM`", body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
        (status = 409, description = "the month is not closed yet", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/admin/withholding")]
pub async fn withholding(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<WithholdingQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let month = query
        .month
        .clone()
        .ok_or_else(|| ApiError::bad_field("month", "is required, YYYY-MM"))?;
    let r = state
        .downstreams
        .revenue()
        // A month of 100,000 paid creators is past gRPC's 4 MiB default.
        .max_decoding_message_size(WITHHOLDING_LIMIT_BYTES)
        .withholding(
            state
                .downstreams
                .request(pb::WithholdingRequest { month }, &caller.ctx),
        )
        .await?
        .into_inner();
    let report = WithholdingReport {
        month: r.month,
        tax_policy_version: r.tax_policy_version,
        currency: "KRW".to_owned(),
        items: r
            .items
            .into_iter()
            .map(|l| WithholdingLine {
                creator_id: l.creator_id,
                statement_id: l.statement_id,
                payout: l.payout,
                income_tax: l.income_tax,
                local_tax: l.local_tax,
                net: l.net,
            })
            .collect(),
        totals: WithholdingTotals {
            payout: r.payout,
            income_tax: r.income_tax,
            local_tax: r.local_tax,
            net: r.net,
        },
    };
    if !wants_csv(&req) {
        return Ok(HttpResponse::Ok().json(report));
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "creator_id",
        "statement_id",
        "payout",
        "income_tax",
        "local_tax",
        "net",
    ])
    .map_err(csv_error)?;
    for l in &report.items {
        out.write_record([
            l.creator_id.to_string(),
            l.statement_id.to_string(),
            l.payout.to_string(),
            l.income_tax.to_string(),
            l.local_tax.to_string(),
            l.net.to_string(),
        ])
        .map_err(csv_error)?;
    }
    let t = &report.totals;
    out.write_record([
        "total".to_owned(),
        String::new(),
        t.payout.to_string(),
        t.income_tax.to_string(),
        t.local_tax.to_string(),
        t.net.to_string(),
    ])
    .map_err(csv_error)?;
    let bytes = csv_bytes(out)?;
    Ok(csv_response(
        &format!("withholding-{}.csv", report.month),
        bytes,
        None,
    ))
}

/// Statements as CSV, one row each, in the JSON's field order.
fn statements_csv(items: &[StatementResponse]) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "statement_id",
        "creator_id",
        "month",
        "opening_balance",
        "earnings",
        "restatements",
        "adjustments",
        "gross",
        "payout",
        "income_tax",
        "local_tax",
        "net",
        "closing_balance",
        "carried_reason",
        "hold_reason",
        "tax_policy_version",
        "status",
        "issued_at",
        "paid_at",
        "payout_reference",
        "currency",
    ])
    .map_err(csv_error)?;
    for s in items {
        out.write_record([
            s.statement_id.to_string(),
            s.creator_id.to_string(),
            s.month.clone(),
            s.opening_balance.to_string(),
            s.earnings.to_string(),
            s.restatements.to_string(),
            s.adjustments.to_string(),
            s.gross.to_string(),
            s.payout.to_string(),
            s.income_tax.to_string(),
            s.local_tax.to_string(),
            s.net.to_string(),
            s.closing_balance.to_string(),
            s.carried_reason.clone().unwrap_or_default(),
            crate::csv_cell::neutralize(s.hold_reason.as_deref().unwrap_or_default()).into_owned(),
            s.tax_policy_version.to_string(),
            s.status.clone(),
            s.issued_at.to_rfc3339(),
            s.paid_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            crate::csv_cell::neutralize(s.payout_reference.as_deref().unwrap_or_default())
                .into_owned(),
            s.currency.clone(),
        ])
        .map_err(csv_error)?;
    }
    csv_bytes(out)
}
