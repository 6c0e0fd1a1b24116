//! Access-token validation at the edge (SPEC §3, §7): a cached JWK Set from
//! the user service, refetched when a token names an unknown `kid` (at most
//! once per `GATEWAY_JWKS_REFETCH_SECONDS`), and the [`Authenticated`]
//! extractor for handlers that need a signed-in caller.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use common::auth::{AccessClaims, JwkSet, Role, TokenError, TokenVerifier};
use proto::user::v1::GetJwksRequest;
use tokio::sync::{Mutex, RwLock};

use crate::{
    downstream::{CallContext, Downstreams},
    error::ApiError,
};

/// The gateway's view of the user service's public keys.
pub struct JwksCache {
    downstreams: Downstreams,
    issuer: String,
    audience: String,
    refetch_every: Duration,
    keys: RwLock<Option<Arc<Keys>>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl JwksCache {
    /// An empty cache; keys are fetched on first use.
    pub fn new(
        downstreams: Downstreams,
        issuer: String,
        audience: String,
        refetch_every: Duration,
    ) -> Self {
        Self {
            downstreams,
            issuer,
            audience,
            refetch_every,
            keys: RwLock::new(None),
            last_fetch: Mutex::new(None),
        }
    }

    /// Verifies `token`.
    ///
    /// # Errors
    /// 401 for any bad token; 503 when the keys cannot be had at all.
    pub async fn verify(&self, token: &str, ctx: &CallContext) -> Result<AccessClaims, ApiError> {
        let keys = self.keys(ctx).await?;
        match keys.verifier.verify(token) {
            Ok(claims) => Ok(claims),
            Err(TokenError::UnknownKey(_)) => {
                let fresh = self.refetch(ctx).await?;
                fresh
                    .verifier
                    .verify(token)
                    .map_err(|_| ApiError::unauthenticated())
            }
            Err(_) => Err(ApiError::unauthenticated()),
        }
    }

    /// The cached keys, fetched when there are none yet.
    async fn keys(&self, ctx: &CallContext) -> Result<Arc<Keys>, ApiError> {
        let cached = self.keys.read().await.clone();
        match cached {
            Some(keys) => Ok(keys),
            None => self.refetch(ctx).await,
        }
    }

    /// Fetches the JWK Set, unless it was fetched within the refetch
    /// interval: then the cached keys stand.
    async fn refetch(&self, ctx: &CallContext) -> Result<Arc<Keys>, ApiError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.refetch_every) {
            let cached = self.keys.read().await.clone();
            if let Some(current) = cached {
                return Ok(current);
            }
        }
        let response = self
            .downstreams
            .users()
            .get_jwks(self.downstreams.request(GetJwksRequest {}, ctx))
            .await
            .map_err(ApiError::from)?;
        let set: JwkSet = serde_json::from_str(&response.into_inner().jwks_json)
            .map_err(|e| ApiError::from(tonic::Status::internal(format!("bad JWK Set: {e}"))))?;
        let keys = Arc::new(Keys {
            verifier: TokenVerifier::new(&set, &self.issuer, &self.audience),
            set,
        });
        *self.keys.write().await = Some(keys.clone());
        *last = Some(Instant::now());
        tracing::info!(keys = keys.set.keys.len(), "JWK Set fetched");
        Ok(keys)
    }

    /// The JWK Set, as cached (fetched when absent).
    ///
    /// # Errors
    /// 503 when the user service cannot be reached and nothing is cached.
    pub async fn jwk_set(&self, ctx: &CallContext) -> Result<JwkSet, ApiError> {
        Ok(self.keys(ctx).await?.set.clone())
    }
}

/// A fetched JWK Set and its verifier.
struct Keys {
    set: JwkSet,
    verifier: TokenVerifier,
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

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let token = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .ok_or_else(ApiError::unauthenticated)?;
            let state = req
                .app_data::<web::Data<crate::startup::AppState>>()
                .ok_or_else(|| ApiError::unavailable("gateway state missing"))?
                .clone();
            let ctx = call_context(&req, Some(token.clone()));
            let claims = state.jwks.verify(&token, &ctx).await?;
            Ok(Authenticated { claims, ctx })
        })
    }
}
