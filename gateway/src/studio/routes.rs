//! `/studio/…`: the page, its assets, and the session endpoints (issue 21).

use std::time::Duration;

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite, time},
    http::{StatusCode, header},
    middleware::{Compress, DefaultHeaders},
    web,
};
use chrono::Utc;
use common::error::ErrorCode;
use proto::user::v1 as pb;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{
    CONTENT_SECURITY_POLICY, Language, asset,
    session::{COOKIE, Session},
};
use crate::{
    auth::call_context,
    downstream::CallContext,
    error::ApiError,
    extract::JsonBody,
    routes::auth::{AuthorizeQuery, LoginBody, UserResponse},
    startup::AppState,
};

/// The cookie that marks a social login started from the Studio, so that
/// its callback opens a session instead of answering tokens.
pub const OAUTH_COOKIE: &str = "studio_oauth";

/// Registers `/studio` and everything under it.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/studio",
        web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, "/studio/"))
                .finish()
        }),
    );
    cfg.service(
        web::scope("/studio")
            .wrap(Compress::default())
            .wrap(
                DefaultHeaders::new()
                    .add(("content-security-policy", CONTENT_SECURITY_POLICY))
                    .add(("x-content-type-options", "nosniff"))
                    .add(("x-frame-options", "DENY"))
                    .add(("referrer-policy", "same-origin")),
            )
            .route("/", web::get().to(page))
            .route("/assets/{path:.*}", web::get().to(asset_file))
            .service(
                web::resource("/session")
                    .route(web::get().to(current))
                    .route(web::post().to(sign_in))
                    .route(web::delete().to(sign_out)),
            )
            .route("/oauth/{provider}", web::get().to(oauth_start)),
    );
}

/// The signed-in browser's session, as page script sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StudioSessionResponse {
    /// Who is signed in.
    pub user: UserResponse,
    /// The value to send in `x-csrf-token` on every state-changing request.
    pub csrf_token: String,
}

impl From<&Session> for StudioSessionResponse {
    fn from(s: &Session) -> Self {
        Self {
            user: s.user.clone(),
            csrf_token: s.csrf_token.clone(),
        }
    }
}

async fn page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let cookie = super::cookie_value(&req, "studio_lang");
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let lang = Language::negotiate(cookie.as_deref(), accept);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::VARY, "accept-language, cookie"))
        .body(super::shell(
            lang,
            state.settings.platform_time.zone().name(),
        ))
}

async fn asset_file(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let Some(file) = asset(&path) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no studio asset {path}"),
        ));
    };
    let digest = Sha256::digest(file.body.as_bytes());
    let etag = format!("\"{}\"", hex_prefix(&digest));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut answer = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    Ok(if fresh {
        answer.finish()
    } else {
        answer.content_type(file.content_type).body(file.body)
    })
}

fn hex_prefix(digest: &[u8]) -> String {
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The browser's session.
#[utoipa::path(
    get,
    path = "/studio/session",
    tag = "studio",
    responses(
        (status = 200, body = StudioSessionResponse),
        (status = 401, description = "no session cookie, or it names no live session", body = common::error::ErrorEnvelope),
    )
)]
pub async fn current(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(id) = super::cookie_value(&req, COOKIE) else {
        return Err(ApiError::unauthenticated());
    };
    let session = state
        .sessions
        .get(&id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(StudioSessionResponse::from(&session)))
}

/// Signs a browser in with a password: the gateway keeps the tokens and
/// sets the `studio_session` cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
/// over https). Rate-limited like `POST /api/v1/auth/login`.
#[utoipa::path(
    post,
    path = "/studio/session",
    tag = "studio",
    request_body = LoginBody,
    responses(
        (status = 200, description = "signed in; `set-cookie` carries the session", body = StudioSessionResponse),
        (status = 401, description = "unknown email or wrong password (one answer for both)", body = common::error::ErrorEnvelope),
        (status = 429, description = "rate limited", body = common::error::ErrorEnvelope),
    )
)]
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = call_context(&req, None);
    let tokens = crate::routes::auth::password_login(&state, &ctx, body.0).await?;
    let (session, cookie) = open_session(&req, &state, ctx, tokens).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .json(StudioSessionResponse::from(&session)))
}

/// Signs the browser out: the session is deleted (its cookie no longer
/// works, on any gateway) and its refresh family revoked. Needs the
/// session's `x-csrf-token`; without a session it only clears the cookie.
#[utoipa::path(
    delete,
    path = "/studio/session",
    tag = "studio",
    responses(
        (status = 204, description = "signed out; `set-cookie` clears the cookie"),
        (status = 403, description = "a session without its `x-csrf-token`", body = common::error::ErrorEnvelope),
    )
)]
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(id) = super::cookie_value(&req, COOKIE)
        && let Some(session) = state.sessions.get(&id).await?
    {
        super::cookie_auth::check_csrf(&req, &session)?;
        state.sessions.delete(&id).await?;
        let ctx = call_context(&req, Some(session.access_token.clone()));
        let message = pb::LogoutRequest {
            refresh_token: session.refresh_token,
        };
        if let Err(e) = state
            .downstreams
            .users()
            .logout(state.downstreams.request(message, &ctx))
            .await
        {
            tracing::warn!(error = %e, "revoking a signed-out studio session's refresh family");
        }
    }
    Ok(HttpResponse::NoContent()
        .cookie(removal(COOKIE, "/"))
        .finish())
}

/// Starts a social login from the Studio: as
/// `/api/v1/auth/oauth/{provider}/authorize`, and marks the browser so that
/// the callback opens a Studio session and returns to `/studio/`.
#[utoipa::path(
    get,
    path = "/studio/oauth/{provider}",
    tag = "studio",
    params(("provider" = String, Path, description = "a configured provider"), AuthorizeQuery),
    responses(
        (status = 302, description = "to the provider"),
        (status = 400, description = "a role other than viewer or creator", body = common::error::ErrorEnvelope),
        (status = 404, description = "no such provider configured", body = common::error::ErrorEnvelope),
        (status = 429, description = "rate limited", body = common::error::ErrorEnvelope),
    )
)]
pub async fn oauth_start(
    req: HttpRequest,
    state: web::Data<AppState>,
    provider: web::Path<String>,
    query: web::Query<AuthorizeQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut answer =
        crate::routes::auth::start_oauth(&req, &state, provider.into_inner(), query.into_inner())
            .await?;
    // Lax: the provider's redirect back is a cross-site top-level GET.
    let mark = Cookie::build(OAUTH_COOKIE, "1")
        .path("/api/v1/auth/oauth")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(is_https(&req))
        .max_age(time::Duration::minutes(10))
        .finish();
    answer
        .add_cookie(&mark)
        .map_err(|e| ApiError::from(tonic::Status::internal(e.to_string())))?;
    Ok(answer)
}

/// Whether the browser reached the gateway over https (directly or as a
/// proxy says): the session cookie is then `Secure`.
fn is_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// Opens a session for `tokens`: the user is read with the new access
/// token, the session stored for `STUDIO_SESSION_SECONDS`, and the cookie
/// that names it returned.
///
/// # Errors
/// The user service's, and the session store's 503.
pub async fn open_session(
    req: &HttpRequest,
    state: &AppState,
    ctx: CallContext,
    tokens: pb::TokenPair,
) -> Result<(Session, Cookie<'static>), ApiError> {
    let ctx = CallContext {
        bearer: Some(tokens.access_token.clone()),
        ..ctx
    };
    let user = state
        .downstreams
        .users()
        .get_me(state.downstreams.request(pb::GetMeRequest {}, &ctx))
        .await?
        .into_inner();
    let session = Session {
        access_expires_at: Utc::now().timestamp() + tokens.expires_in,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        csrf_token: super::session::random_token(),
        user: user.into(),
    };
    let ttl = Duration::from_secs(state.settings.studio_session_seconds);
    let id = state.sessions.create(&session, ttl).await?;
    let cookie = Cookie::build(COOKIE, id)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(req))
        .max_age(time::Duration::seconds(
            i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        ))
        .finish();
    Ok((session, cookie))
}

/// A cookie that deletes `name` at `path`.
pub fn removal(name: &'static str, path: &'static str) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, "").path(path).http_only(true).finish();
    cookie.make_removal();
    cookie
}
