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
        crate::routes::auth::providers,
        crate::routes::auth::oauth_authorize,
        crate::routes::auth::oauth_callback,
        crate::studio::routes::current,
        crate::studio::routes::sign_in,
        crate::studio::routes::sign_out,
        crate::studio::routes::oauth_start,
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
        crate::routes::settlements::settle,
        crate::routes::settlements::list_runs,
        crate::routes::settlements::get_run,
        crate::routes::stats::top,
        crate::routes::stats::video_stats,
        crate::routes::stats::revenues,
        crate::routes::stats::revenue_series,
        crate::routes::ledger::create_adjustment,
        crate::routes::ledger::list_adjustments,
        crate::routes::ledger::ledger,
        crate::routes::ledger::audit,
        crate::routes::statements::close_month,
        crate::routes::statements::list_statements,
        crate::routes::statements::get_statement,
        crate::routes::statements::mark_paid,
        crate::routes::statements::set_hold,
        crate::routes::statements::release_hold,
        crate::routes::statements::withholding,
        crate::routes::webhooks::create_webhook,
        crate::routes::webhooks::list_webhooks,
        crate::routes::webhooks::delete_webhook,
        crate::routes::webhooks::list_deliveries,
        crate::routes::webhooks::redeliver,
        crate::routes::ops::jwks,
        crate::routes::ops::healthz,
        crate::routes::ops::readyz,
    ),
    components(schemas(common::error::ErrorEnvelope, common::error::ErrorBody, common::error::FieldViolation)),
    modifiers(&BearerAuth, &ErrorResponses, &AdminWrites),
    tags(
        (name = "auth", description = "Sign-up, login, tokens (SPEC §3)"),
        (name = "studio", description = "The Studio's browser session: an HttpOnly cookie instead of a bearer token, and a CSRF token for state-changing requests (issue 21)"),
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

/// Documents, on every admin write (SPEC §11.6), the `Idempotency-Key`
/// header and the 409 answers it can bring.
struct AdminWrites;

impl Modify for AdminWrites {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            ContentBuilder, Ref, ResponseBuilder,
            path::{ParameterBuilder, ParameterIn},
            schema::{ObjectBuilder, Type},
        };
        for (path, item) in &mut openapi.paths.paths {
            let admin = path.starts_with("/api/v1/admin/");
            let writes = [
                (admin || path == "/api/v1/ads", item.post.as_mut()),
                (admin, item.put.as_mut()),
                (admin, item.delete.as_mut()),
            ];
            for operation in writes
                .into_iter()
                .filter_map(|(is_admin_write, op)| op.filter(|_| is_admin_write))
            {
                operation.parameters.get_or_insert_with(Vec::new).push(
                    ParameterBuilder::new()
                        .name("Idempotency-Key")
                        .parameter_in(ParameterIn::Header)
                        .description(Some(
                            "Up to 255 visible ASCII characters. The same key and request within \
                             24 h answer the first response again (header \
                             `idempotency-replayed: true`) without acting",
                        ))
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .build(),
                );
                operation
                    .responses
                    .responses
                    .entry("409".to_owned())
                    .or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(
                                "`idempotency_key_reused` (the key came with another request) or \
                                 `idempotency_key_in_progress` (the first is being answered), or a \
                                 conflict of the operation itself",
                            )
                            .content(
                                "application/json",
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                                    .build(),
                            )
                            .build()
                            .into()
                    });
            }
        }
    }
}

/// Documents the SPEC §8 errors any operation can answer, besides the ones
/// its handler lists: 400 (a malformed path, query or body), 401 (a bearer
/// token that is present but bad), 413 and 415 (a body over the limit or
/// not JSON, where there is a body), 431 (headers over the limit), 503 and
/// 504 (a downstream service down or slow). Each is the error envelope.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                        .build(),
                )
                .build()
        };
        for (path, item) in &mut openapi.paths.paths {
            if !path.starts_with("/api/") && !path.starts_with("/studio/") {
                continue;
            }
            for operation in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                let has_body = operation.request_body.is_some();
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error(description).into());
                };
                add("400", "Malformed path, query or body (SPEC §8)");
                add(
                    "401",
                    "A bearer token was sent but is malformed, expired or forged",
                );
                if has_body {
                    add("413", "Body over the limit");
                    add(
                        "415",
                        "A body that is not sent as the documented content type",
                    );
                }
                add("431", "More than 64 request headers or 16 KiB of them");
                add("503", "A downstream service is down or its circuit is open");
                add("504", "A downstream service timed out");
            }
        }
    }
}
