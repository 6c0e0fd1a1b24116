//! HTTP routes, grouped as the API is (SPEC §7).

pub mod ads;
pub mod auth;
pub mod ops;
pub mod revenue;
pub mod users;
pub mod videos;

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
        .service(auth::oauth_authorize)
        .service(auth::oauth_callback)
        .service(users::me)
        .service(users::list_users)
        .service(videos::upload)
        .service(videos::list_videos)
        .service(videos::get_video)
        .service(videos::play)
        .service(videos::pause)
        .service(revenue::settle)
        .service(revenue::list_runs)
        .service(revenue::get_run)
        .service(revenue::top)
        .service(revenue::video_stats)
        .service(revenue::revenues)
        .service(ads::create_ad)
        .service(ads::list_ads)
        .service(ops::jwks)
        .service(ops::healthz)
        .service(ops::readyz)
        .service(ops::openapi_json);
}
