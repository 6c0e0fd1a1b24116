//! `/api/v1/ads`: the ad inventory (SPEC §4, §7), and
//! `/api/v1/admin/imports/daily-counts`: historical counts (SPEC §6).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use common::auth::Role;
use proto::streaming::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    admin_write,
    auth::{Authenticated, MaybeAuthenticated},
    error::ApiError,
    extract::JsonBody,
    routes::users::PageQuery,
    startup::AppState,
};

/// `POST /api/v1/ads` body.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AdBody {
    /// 1 to 200 characters.
    pub title: String,
    /// The ad's length, 1 to 600 seconds.
    pub duration_seconds: i32,
    /// First contract day, `YYYY-MM-DD`.
    #[schema(example = "2026-11-01")]
    pub start_date: String,
    /// Last contract day (inclusive), not before `start_date`.
    #[schema(example = "2026-12-31")]
    pub end_date: String,
}

/// An ad (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdResponse {
    /// Id.
    pub ad_id: i64,
    /// Title.
    pub title: String,
    /// Seconds.
    pub duration_seconds: i32,
    /// `YYYY-MM-DD`.
    pub start_date: String,
    /// `YYYY-MM-DD`, inclusive.
    pub end_date: String,
    /// `scheduled`, `active` or `expired`, today in the platform time zone.
    pub status: String,
}

impl From<pb::Ad> for AdResponse {
    fn from(a: pb::Ad) -> Self {
        Self {
            ad_id: a.ad_id,
            title: a.title,
            duration_seconds: a.duration_seconds,
            start_date: a.start_date,
            end_date: a.end_date,
            status: a.status,
        }
    }
}

/// A page of ads.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdPage {
    /// Ads by ascending id.
    pub items: Vec<AdResponse>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Adds an ad to the inventory. Admins only.
#[utoipa::path(
    tag = "ads",
    request_body = AdBody,
    security(("bearer" = [])),
    responses(
        (status = 201, body = AdResponse),
        (status = 400, body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/ads")]
pub async fn create_ad(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    body: JsonBody<AdBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let raw = admin_write::json_bytes(&body.0);
    admin_write::guarded(&req, &caller, &state, &raw, async {
        let b = body.0;
        let message = pb::CreateAdRequest {
            title: b.title,
            duration_seconds: b.duration_seconds,
            start_date: b.start_date,
            end_date: b.end_date,
        };
        let ad = state
            .downstreams
            .streaming()
            .create_ad(state.downstreams.request(message, &caller.ctx))
            .await?;
        Ok(HttpResponse::Created().json(AdResponse::from(ad.into_inner())))
    })
    .await
}

/// The ad inventory by ascending id, paged.
#[utoipa::path(
    tag = "ads",
    params(PageQuery),
    responses((status = 200, body = AdPage), (status = 400, body = common::error::ErrorEnvelope))
)]
#[get("/api/v1/ads")]
pub async fn list_ads(
    caller: MaybeAuthenticated,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<AdPage>, ApiError> {
    let message = pb::ListAdsRequest {
        limit: page.limit(20, 100)?,
        cursor: page.cursor.clone().unwrap_or_default(),
    };
    let page = state
        .downstreams
        .streaming()
        .list_ads(state.downstreams.request(message, caller.ctx()))
        .await?
        .into_inner();
    Ok(web::Json(AdPage {
        items: page.ads.into_iter().map(AdResponse::from).collect(),
        next_cursor: Some(page.next_cursor).filter(|c| !c.is_empty()),
    }))
}

/// One refused CSV line.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportRejection {
    /// 1-based line number; the header is line 1.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// The largest import report the gateway reads, bytes.
const IMPORT_REPORT_LIMIT_BYTES: usize = 32 * 1024 * 1024;

/// What an import did (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// Rows written.
    pub accepted: u64,
    /// Rows refused, by line.
    pub rejected: Vec<ImportRejection>,
}

/// Imports historical daily counts from CSV (header
/// `video_id,day,views,watch_seconds,ad_views`). Each good row sets that
/// (video, day); bad rows are reported by line. Admins only.
#[utoipa::path(
    post,
    path = "/api/v1/admin/imports/daily-counts",
    tag = "admin",
    request_body(content = String, content_type = "text/csv"),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ImportReport),
        (status = 400, description = "not CSV with the expected header", body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
        (status = 413, body = common::error::ErrorEnvelope),
    )
)]
pub async fn import_daily_counts(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    admin_write::guarded(&req, &caller, &state, &body, import(&caller, &state, &body)).await
}

/// The import itself, under [`import_daily_counts`]'s guard.
async fn import(
    caller: &Authenticated,
    state: &AppState,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let csv = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_field("body", "must be UTF-8 CSV text"))?;
    let report = state
        .downstreams
        .streaming()
        // A report of 100,000 refused lines (each reason at most ~160
        // bytes) is past gRPC's 4 MiB default.
        .max_decoding_message_size(IMPORT_REPORT_LIMIT_BYTES)
        .import_daily_counts(state.downstreams.request_within(
            pb::ImportDailyCountsRequest { csv },
            &caller.ctx,
            std::time::Duration::from_millis(state.settings.gateway_import_timeout_ms),
        ))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(ImportReport {
        accepted: report.accepted,
        rejected: report
            .rejected
            .into_iter()
            .map(|r| ImportRejection {
                line: r.line,
                reason: r.reason,
            })
            .collect(),
    }))
}
