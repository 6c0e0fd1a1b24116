//! HTTP routes, grouped as the API is (SPEC §7).

pub mod ads;
pub mod auth;
pub mod ledger;
pub mod ops;
pub mod settlements;
pub mod statements;
pub mod stats;
pub mod users;
pub mod videos;
pub mod webhooks;

use actix_web::web::{self, ServiceConfig};
use chrono::{DateTime, Utc};

/// A protobuf timestamp as UTC (the epoch when absent).
pub fn time_of(t: Option<proto::prost_types::Timestamp>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .unwrap_or_default()
}

/// Registers every route; `import_limit` is the largest import body, bytes.
pub fn configure(cfg: &mut ServiceConfig, import_limit: usize) {
    cfg.service(
        web::resource("/api/v1/admin/imports/daily-counts")
            .app_data(web::PayloadConfig::new(import_limit))
            .route(web::post().to(ads::import_daily_counts)),
    );
    cfg.service(auth::signup)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(auth::providers)
        .service(auth::oauth_authorize)
        .service(auth::oauth_callback)
        .service(users::me)
        .service(users::list_users)
        .service(videos::upload)
        .service(videos::list_videos)
        .service(videos::get_video)
        .service(videos::play)
        .service(videos::pause)
        .service(settlements::settle)
        .service(settlements::list_runs)
        .service(settlements::get_run)
        .service(stats::top)
        .service(stats::video_stats)
        .service(stats::revenues)
        .service(stats::revenue_series)
        .service(ledger::create_adjustment)
        .service(ledger::list_adjustments)
        .service(ledger::ledger)
        .service(ledger::audit)
        .service(statements::close_month)
        .service(statements::list_statements)
        .service(statements::get_statement)
        .service(statements::mark_paid)
        .service(statements::set_hold)
        .service(statements::release_hold)
        .service(statements::withholding)
        .service(webhooks::create_webhook)
        .service(webhooks::list_webhooks)
        .service(webhooks::delete_webhook)
        .service(webhooks::list_deliveries)
        .service(webhooks::redeliver)
        .service(ads::create_ad)
        .service(ads::list_ads)
        .service(ops::jwks)
        .service(ops::healthz)
        .service(ops::readyz)
        .service(ops::openapi_json);
}

/// A protobuf enum our own service left unspecified: a bug, answered 500.
pub(crate) fn unspecified(e: common::domain::Unspecified) -> crate::error::ApiError {
    crate::error::ApiError::from(tonic::Status::internal(e.to_string()))
}

/// A CSV writer's failure (into memory: only a bug), as a 500.
pub(crate) fn csv_error(e: csv::Error) -> crate::error::ApiError {
    crate::error::ApiError::from(tonic::Status::internal(e.to_string()))
}

/// The bytes of a finished in-memory CSV writer.
pub(crate) fn csv_bytes(out: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, crate::error::ApiError> {
    out.into_inner()
        .map_err(|e| csv_error(e.into_error().into()))
}

/// A `200 text/csv` attachment named `name`, with the next page's cursor
/// in `x-next-cursor` when there is one.
pub(crate) fn csv_response(
    name: &str,
    body: Vec<u8>,
    next_cursor: Option<&str>,
) -> actix_web::HttpResponse {
    let mut response = csv_attachment(name);
    if let Some(next) = next_cursor {
        response.insert_header(("x-next-cursor", next.to_owned()));
    }
    response.body(body)
}

/// The head of a `200 text/csv` attachment named `name`.
pub(crate) fn csv_attachment(name: &str) -> actix_web::HttpResponseBuilder {
    let mut response = actix_web::HttpResponse::Ok();
    response
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        ));
    response
}

/// Whether the client asked for CSV (`Accept: text/csv`).
pub(crate) fn wants_csv(req: &actix_web::HttpRequest) -> bool {
    req.headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

/// An optional positive id from the query string: 0 when absent, 400
/// naming `field` when not a positive integer.
pub(crate) fn optional_id(field: &str, raw: Option<&str>) -> Result<i64, crate::error::ApiError> {
    match raw {
        None => Ok(0),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| crate::error::ApiError::bad_field(field, "must be a positive id")),
    }
}
