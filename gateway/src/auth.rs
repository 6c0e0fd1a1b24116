//! Access-token validation at the edge (SPEC §3, §7): a cached JWK Set from
//! the user service, refetched when a token names an unknown `kid` (at most
//! once per `GATEWAY_JWKS_REFETCH_SECONDS`), and the [`Authenticated`]
//! extractor for handlers that need a signed-in caller.

use std::{future::Future, pin::Pin, time::Duration};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use common::{
    auth::{AccessClaims, JwkSet, Role},
    jwks::{FetchFuture, KeyCache, VerifyError},
};
use proto::user::v1::GetJwksRequest;

use crate::{
    downstream::{CallContext, Downstreams},
    error::ApiError,
};

/// The gateway's view of the user service's public keys.
pub struct JwksCache {
    keys: KeyCache,
}

impl JwksCache {
    /// An empty cache; keys are fetched from the user service on first use.
    pub fn new(
        downstreams: Downstreams,
        issuer: String,
        audience: String,
        refetch_every: Duration,
    ) -> Self {
        let fetch = move || -> FetchFuture {
            let downstreams = downstreams.clone();
            Box::pin(async move {
                let ctx = CallContext {
                    request_id: crate::request_id::current(),
                    client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
                    bearer: None,
                };
                let response = downstreams
                    .users()
                    .get_jwks(downstreams.request(GetJwksRequest {}, &ctx))
                    .await
                    .map_err(|s| s.code().to_string())?;
                serde_json::from_str(&response.into_inner().jwks_json)
                    .map_err(|e| format!("bad JWK Set: {e}"))
            })
        };
        Self {
            keys: KeyCache::new(fetch, issuer, audience, refetch_every),
        }
    }

    /// Verifies `token`.
    ///
    /// # Errors
    /// 401 for any bad token; 503 when the keys cannot be had at all.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        self.keys.verify(token).await.map_err(key_error)
    }

    /// The JWK Set, as cached (fetched when absent).
    ///
    /// # Errors
    /// 503 when the user service cannot be reached and nothing is cached.
    pub async fn jwk_set(&self) -> Result<JwkSet, ApiError> {
        self.keys.jwk_set().await.map_err(key_error)
    }
}

fn key_error(e: VerifyError) -> ApiError {
    match e {
        VerifyError::Token(_) => ApiError::unauthenticated(),
        VerifyError::KeysUnavailable(why) => {
            tracing::warn!(%why, "JWK Set unavailable");
            ApiError::unavailable("the user service is unavailable; try again shortly")
        }
    }
}

/// A request context for the current HTTP request.
pub fn call_context(req: &HttpRequest, bearer: Option<String>) -> CallContext {
    let trusted = req
        .app_data::<web::Data<crate::startup::AppState>>()
        .map(|s| s.settings.gateway_trusted_proxies.clone())
        .unwrap_or_default();
    CallContext {
        request_id: crate::request_id::current(),
        client_ip: crate::client_ip::of_request(req, &trusted),
        bearer,
    }
}

/// A signed-in caller: verified claims plus the context to call services
/// with (the token is forwarded, SPEC §9).
pub struct Authenticated {
    /// The verified claims.
    pub claims: AccessClaims,
    /// Request id, client IP and token for downstream calls.
    pub ctx: CallContext,
}

impl Authenticated {
    /// # Errors
    /// 403 unless the caller has `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.claims.role == role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "requires the {} role",
                role.as_str()
            )))
        }
    }
}

/// The bearer token of a request: `None` without an `Authorization`
/// header, 401 for a header that is not `Bearer <token>`.
fn bearer(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(header) = req.headers().get("authorization") else {
        return Ok(None);
    };
    header
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .map(Some)
        .ok_or_else(ApiError::unauthenticated)
}

/// Verifies the request's token, if it has one.
///
/// A request without an `Authorization` header is authenticated by its
/// Studio session cookie, if it has one ([`crate::studio::cookie_auth`]).
async fn authenticate(req: &HttpRequest) -> Result<Option<Authenticated>, ApiError> {
    let state = req
        .app_data::<web::Data<crate::startup::AppState>>()
        .ok_or_else(|| ApiError::unavailable("gateway state missing"))?
        .clone();
    let token = match bearer(req)? {
        Some(token) => token,
        None => match crate::studio::cookie_auth::session_token(req, &state).await? {
            Some(token) => token,
            None => return Ok(None),
        },
    };
    let ctx = call_context(req, Some(token.clone()));
    let claims = state.jwks.verify(&token).await?;
    Ok(Some(Authenticated { claims, ctx }))
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            authenticate(&req)
                .await?
                .ok_or_else(ApiError::unauthenticated)
        })
    }
}

/// A caller who may be anonymous (play and pause, SPEC §4). A token, when
/// sent, must be valid: a bad one is 401, not anonymous.
pub enum MaybeAuthenticated {
    /// Signed in.
    User(Authenticated),
    /// No `Authorization` header; the context carries the client IP.
    Anonymous(CallContext),
}

impl MaybeAuthenticated {
    /// The context to call services with.
    pub fn ctx(&self) -> &CallContext {
        match self {
            MaybeAuthenticated::User(a) => &a.ctx,
            MaybeAuthenticated::Anonymous(ctx) => ctx,
        }
    }
}

impl FromRequest for MaybeAuthenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            Ok(match authenticate(&req).await? {
                Some(user) => MaybeAuthenticated::User(user),
                None => MaybeAuthenticated::Anonymous(call_context(&req, None)),
            })
        })
    }
}
