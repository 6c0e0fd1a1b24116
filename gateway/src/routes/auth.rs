//! `/api/v1/auth/*`: sign-up, login, refresh, logout, and social login
//! through OAuth 2.0 / OpenID Connect providers (SPEC §3, §7).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use proto::user::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    auth::{Authenticated, call_context},
    error::ApiError,
    extract::JsonBody,
    startup::AppState,
};

/// `POST /api/v1/auth/signup` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct SignUpBody {
    /// Normalised to lower case; unique in any letter case.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// At least 8 characters.
    #[schema(example = "correct horse battery")]
    pub password: String,
    /// 1 to 100 characters.
    #[schema(example = "Ada")]
    pub display_name: String,
    /// `viewer` or `creator`.
    #[schema(example = "creator")]
    pub role: String,
}

/// `POST /api/v1/auth/login` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct LoginBody {
    /// The account's email, any letter case.
    pub email: String,
    /// The password.
    pub password: String,
}

/// `POST /api/v1/auth/refresh` and `/logout` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct RefreshBody {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// A user (SPEC §7).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    /// Id.
    pub user_id: i64,
    /// Normalised email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// `viewer`, `creator` or `admin`.
    pub role: String,
    /// RFC 3339.
    pub created_at: DateTime<Utc>,
}

impl From<pb::User> for UserResponse {
    fn from(u: pb::User) -> Self {
        let created_at = crate::routes::time_of(u.created_at);
        Self {
            user_id: u.user_id,
            email: u.email,
            display_name: u.display_name,
            role: u.role,
            created_at,
        }
    }
}

/// Tokens (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokensResponse {
    /// EdDSA JWT.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Access-token lifetime, seconds.
    pub expires_in: i64,
    /// Opaque; rotated on every use.
    pub refresh_token: String,
}

impl From<pb::TokenPair> for TokensResponse {
    fn from(t: pb::TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            token_type: t.token_type,
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
        }
    }
}

/// Creates a viewer or creator account.
#[utoipa::path(
    tag = "auth",
    request_body = SignUpBody,
    responses(
        (status = 201, body = UserResponse),
        (status = 400, description = "bad email, password, display_name or role", body = common::error::ErrorEnvelope),
        (status = 409, description = "email already registered", body = common::error::ErrorEnvelope),
        (status = 429, description = "rate limited", body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/auth/signup")]
pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<SignUpBody>,
) -> Result<HttpResponse, ApiError> {
    let ctx = call_context(&req, None);
    state.limits.signup.check(ctx.client_ip)?;
    let b = body.0;
    let message = pb::SignUpRequest {
        email: b.email,
        password: b.password,
        display_name: b.display_name,
        role: b.role,
    };
    let user = state
        .downstreams
        .users()
        .sign_up(state.downstreams.request(message, &ctx))
        .await?;
    Ok(HttpResponse::Created().json(UserResponse::from(user.into_inner())))
}

/// Exchanges email and password for tokens.
#[utoipa::path(
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, body = TokensResponse),
        (status = 401, description = "unknown email or wrong password (one answer for both)", body = common::error::ErrorEnvelope),
        (status = 429, description = "rate limited", body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/auth/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<LoginBody>,
) -> Result<web::Json<TokensResponse>, ApiError> {
    let ctx = call_context(&req, None);
    Ok(web::Json(
        password_login(&state, &ctx, body.0).await?.into(),
    ))
}

/// A password login for `ctx`'s client, within the login rate limit: the
/// platform's tokens (also how the Studio signs a browser in).
///
/// # Errors
/// 429 past the limit; 401 for an unknown email or a wrong password.
pub async fn password_login(
    state: &AppState,
    ctx: &crate::downstream::CallContext,
    body: LoginBody,
) -> Result<pb::TokenPair, ApiError> {
    state.limits.login.check(ctx.client_ip)?;
    let message = pb::LoginRequest {
        email: body.email,
        password: body.password,
    };
    Ok(state
        .downstreams
        .users()
        .login(state.downstreams.request(message, ctx))
        .await?
        .into_inner())
}

/// Rotates a refresh token; replaying a rotated one revokes its family.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, body = TokensResponse),
        (status = 401, description = "unknown, expired, rotated or revoked refresh token", body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/auth/refresh")]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<RefreshBody>,
) -> Result<web::Json<TokensResponse>, ApiError> {
    let ctx = call_context(&req, None);
    let message = pb::RefreshRequest {
        refresh_token: body.0.refresh_token,
    };
    let tokens = state
        .downstreams
        .users()
        .refresh(state.downstreams.request(message, &ctx))
        .await?;
    Ok(web::Json(tokens.into_inner().into()))
}

/// Revokes the refresh token's family.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshBody,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "revoked"),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, description = "the refresh token is another user's", body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/auth/logout")]
pub async fn logout(
    caller: Authenticated,
    state: web::Data<AppState>,
    body: JsonBody<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let message = pb::LogoutRequest {
        refresh_token: body.0.refresh_token,
    };
    state
        .downstreams
        .users()
        .logout(state.downstreams.request(message, &caller.ctx))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/auth/providers` response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProvidersResponse {
    /// The configured social-login providers' names, sorted; each is the
    /// `{provider}` of `/api/v1/auth/oauth/{provider}/authorize`.
    pub providers: Vec<String>,
}

/// The social-login providers a sign-in page may offer.
#[utoipa::path(
    tag = "auth",
    responses((status = 200, body = ProvidersResponse))
)]
#[get("/api/v1/auth/providers")]
pub async fn providers(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<web::Json<ProvidersResponse>, ApiError> {
    let ctx = call_context(&req, None);
    let listed = state
        .downstreams
        .users()
        .list_o_auth_providers(
            state
                .downstreams
                .request(pb::ListOAuthProvidersRequest {}, &ctx),
        )
        .await?
        .into_inner();
    Ok(web::Json(ProvidersResponse {
        providers: listed.providers,
    }))
}

/// `GET /api/v1/auth/oauth/{provider}/authorize` query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct AuthorizeQuery {
    /// The role of an account this sign-in creates: `viewer` (default) or
    /// `creator`. An existing account keeps its role.
    pub role: String,
}

/// Starts a social login: 302 to the provider's login page, with a
/// single-use `state`, an OpenID Connect nonce and a PKCE (S256)
/// challenge. The provider then redirects the browser to the callback.
#[utoipa::path(
    tag = "auth",
    params(("provider" = String, Path, description = "`google`, `kakao`, or the operator's OpenID Connect provider"), AuthorizeQuery),
    responses(
        (status = 302, description = "to the provider; `location` is its authorization URL"),
        (status = 400, description = "a role other than viewer or creator", body = common::error::ErrorEnvelope),
        (status = 404, description = "no such provider configured", body = common::error::ErrorEnvelope),
        (status = 429, description = "rate limited", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/auth/oauth/{provider}/authorize")]
pub async fn oauth_authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    provider: web::Path<String>,
    query: web::Query<AuthorizeQuery>,
) -> Result<HttpResponse, ApiError> {
    start_oauth(&req, &state, provider.into_inner(), query.into_inner()).await
}

/// The 302 to `provider`'s authorization URL, for a sign-in that creates
/// `query.role` accounts.
///
/// # Errors
/// 429 past the login limit; the user service's (404 unknown provider, 400
/// bad role).
pub async fn start_oauth(
    req: &HttpRequest,
    state: &AppState,
    provider: String,
    query: AuthorizeQuery,
) -> Result<HttpResponse, ApiError> {
    let ctx = call_context(req, None);
    state.limits.login.check(ctx.client_ip)?;
    let message = pb::StartOAuthRequest {
        provider,
        role: query.role,
    };
    let started = state
        .downstreams
        .users()
        .start_o_auth(state.downstreams.request(message, &ctx))
        .await?
        .into_inner();
    Ok(HttpResponse::Found()
        .insert_header(("location", started.authorization_url))
        .insert_header(("cache-control", "no-store"))
        .finish())
}

/// `GET /api/v1/auth/oauth/{provider}/callback` query: what the provider
/// appends to the redirect URI.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: String,
    /// The state from the authorize step.
    pub state: String,
    /// The provider's error instead of a code (e.g. `access_denied`).
    pub error: String,
    /// RFC 9207 issuer identification; the ID token's `iss` is what is
    /// checked.
    pub iss: String,
}

/// Completes a social login and answers the platform's tokens as JSON (the
/// same shape as login); a login started at `/studio/oauth/{provider}`
/// instead opens a Studio session and answers 303 to `/studio/`. The state is single-use and expires; the code is
/// exchanged with the PKCE verifier; the ID token is validated (issuer,
/// audience, expiry, nonce, signature against the provider's JWK Set).
#[utoipa::path(
    tag = "auth",
    params(("provider" = String, Path, description = "the provider of the authorize step"), CallbackQuery),
    responses(
        (status = 200, body = TokensResponse),
        (status = 303, description = "started from the Studio: signed in, `set-cookie` carries the session, `location` is `/studio/`"),
        (status = 400, description = "unknown, expired or replayed state (`invalid_field` on `state`); the provider refused the code or the PKCE verifier (`oauth_exchange_failed`); the person declined (`oauth_denied`)", body = common::error::ErrorEnvelope),
        (status = 401, description = "the ID token is invalid (`invalid_id_token`)", body = common::error::ErrorEnvelope),
        (status = 404, description = "no such provider configured", body = common::error::ErrorEnvelope),
        (status = 409, description = "the email belongs to an account and the provider does not assert it is verified (`email_unverified`)", body = common::error::ErrorEnvelope),
        (status = 429, description = "rate limited", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/auth/oauth/{provider}/callback")]
pub async fn oauth_callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    provider: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let ctx = call_context(&req, None);
    state.limits.login.check(ctx.client_ip)?;
    let q = query.into_inner();
    let message = pb::CompleteOAuthRequest {
        provider: provider.into_inner(),
        code: q.code,
        state: q.state,
        error: q.error,
    };
    let tokens = state
        .downstreams
        .users()
        .complete_o_auth(state.downstreams.request(message, &ctx))
        .await?
        .into_inner();
    if crate::studio::cookie_value(&req, crate::studio::routes::OAUTH_COOKIE).is_some() {
        let (_, cookie) = crate::studio::routes::open_session(&req, &state, ctx, tokens).await?;
        return Ok(HttpResponse::SeeOther()
            .insert_header(("location", "/studio/"))
            .insert_header(("cache-control", "no-store"))
            .cookie(cookie)
            .cookie(crate::studio::routes::removal(
                crate::studio::routes::OAUTH_COOKIE,
                "/api/v1/auth/oauth",
            ))
            .finish());
    }
    Ok(HttpResponse::Ok().json(TokensResponse::from(tokens)))
}
