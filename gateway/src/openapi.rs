//! The OpenAPI document, generated from the handlers and types (served at
//! `/openapi.json`, browsable at `/docs`).

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

/// The gateway's API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Streaming Settlement Platform API", description = "The HTTP API of SPEC §7."),
    paths(
        crate::routes::auth::signup,
        crate::routes::auth::login,
        crate::routes::auth::refresh,
        crate::routes::auth::logout,
        crate::routes::users::me,
        crate::routes::users::list_users,
        crate::routes::videos::upload,
        crate::routes::videos::list_videos,
        crate::routes::videos::get_video,
        crate::routes::videos::play,
        crate::routes::videos::pause,
        crate::routes::ads::create_ad,
        crate::routes::ads::list_ads,
        crate::routes::ads::import_daily_counts,
        crate::routes::revenue::settle,
        crate::routes::revenue::list_runs,
        crate::routes::revenue::get_run,
        crate::routes::revenue::top,
        crate::routes::revenue::video_stats,
        crate::routes::revenue::revenues,
        crate::routes::ops::jwks,
        crate::routes::ops::healthz,
        crate::routes::ops::readyz,
    ),
    components(schemas(common::error::ErrorEnvelope, common::error::ErrorBody, common::error::FieldViolation)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-up, login, tokens (SPEC §3)"),
        (name = "users", description = "The signed-in user"),
        (name = "videos", description = "Videos, play and pause (SPEC §4)"),
        (name = "ads", description = "The ad inventory (SPEC §4)"),
        (name = "stats", description = "Statistics, rankings and earnings (SPEC §6, §7)"),
        (name = "admin", description = "Operators only"),
        (name = "ops", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme (an EdDSA JWT access token).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
