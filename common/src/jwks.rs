//! A cached JWK Set from the user service, for everything that verifies
//! access tokens (the gateway and each service, SPEC §9): fetched on first
//! use, refetched when a token names an unknown `kid`, at most once per
//! refetch interval.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use proto::user::v1::{GetJwksRequest, user_service_client::UserServiceClient};
use secrecy::SecretString;
use tokio::sync::{Mutex, RwLock};
use tonic::transport::Endpoint;

use crate::auth::{AccessClaims, JwkSet, TokenError, TokenVerifier};

/// What fetching the JWK Set returns: the set, or why it could not be had.
pub type FetchFuture = Pin<Box<dyn Future<Output = Result<JwkSet, String>> + Send>>;

/// Why a token could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token is bad (401).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// No keys: the user service could not be reached (503).
    #[error("the JWK Set is unavailable: {0}")]
    KeysUnavailable(String),
}

/// Public keys fetched with a caller-given function, and their verifier.
pub struct KeyCache {
    fetch: Box<dyn Fn() -> FetchFuture + Send + Sync>,
    issuer: String,
    audience: String,
    refetch_every: Duration,
    keys: RwLock<Option<Arc<Keys>>>,
    last_fetch: Mutex<Option<Instant>>,
}

/// A fetched JWK Set and its verifier.
struct Keys {
    set: JwkSet,
    verifier: TokenVerifier,
}

impl KeyCache {
    /// An empty cache over `fetch`, for tokens from `issuer` to `audience`.
    pub fn new(
        fetch: impl Fn() -> FetchFuture + Send + Sync + 'static,
        issuer: String,
        audience: String,
        refetch_every: Duration,
    ) -> Self {
        Self {
            fetch: Box::new(fetch),
            issuer,
            audience,
            refetch_every,
            keys: RwLock::new(None),
            last_fetch: Mutex::new(None),
        }
    }

    /// Verifies `token`, refetching the keys once if it names an unknown
    /// `kid`.
    ///
    /// # Errors
    /// [`VerifyError::Token`] for any bad token;
    /// [`VerifyError::KeysUnavailable`] when no keys can be had.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let keys = self.keys().await?;
        match keys.verifier.verify(token) {
            Err(TokenError::UnknownKey(_)) => Ok(self.refetch().await?.verifier.verify(token)?),
            other => Ok(other?),
        }
    }

    /// The JWK Set, as cached (fetched when absent).
    ///
    /// # Errors
    /// [`VerifyError::KeysUnavailable`].
    pub async fn jwk_set(&self) -> Result<JwkSet, VerifyError> {
        Ok(self.keys().await?.set.clone())
    }

    async fn keys(&self) -> Result<Arc<Keys>, VerifyError> {
        let cached = self.keys.read().await.clone();
        match cached {
            Some(keys) => Ok(keys),
            None => self.refetch().await,
        }
    }

    /// Fetches the set, unless it was fetched within the refetch interval:
    /// then the cached keys stand.
    async fn refetch(&self) -> Result<Arc<Keys>, VerifyError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.refetch_every) {
            let cached = self.keys.read().await.clone();
            if let Some(current) = cached {
                return Ok(current);
            }
        }
        let set = (self.fetch)().await.map_err(VerifyError::KeysUnavailable)?;
        let keys = Arc::new(Keys {
            verifier: TokenVerifier::new(&set, &self.issuer, &self.audience),
            set,
        });
        *self.keys.write().await = Some(keys.clone());
        *last = Some(Instant::now());
        tracing::info!(keys = keys.set.keys.len(), "JWK Set fetched");
        Ok(keys)
    }
}

impl KeyCache {
    /// A cache that fetches the JWK Set from the user service's gRPC
    /// `GetJwks` (one URL, a comma-separated list, or Consul's instances of
    /// `user-service` per `discovery`), presenting the service credential;
    /// refetched at most once per 5 s.
    ///
    /// # Errors
    /// A malformed URL or Consul address.
    pub fn from_user_service(
        urls: &str,
        discovery: &crate::discovery::DiscoverySettings,
        credential: SecretString,
        issuer: String,
        audience: String,
    ) -> anyhow::Result<Self> {
        let channel = crate::discovery::Downstream::new(
            crate::discovery::names::USER,
            urls,
            discovery,
            std::sync::Arc::new(|e: Endpoint| {
                e.connect_timeout(Duration::from_secs(1))
                    .timeout(Duration::from_secs(5))
            }),
        )?
        .channel();
        let channel = crate::grpc::client(channel, &credential)?;
        let fetch = move || -> FetchFuture {
            let mut client = UserServiceClient::new(channel.clone());
            Box::pin(async move {
                let response = client
                    .get_jwks(GetJwksRequest {})
                    .await
                    .map_err(|s| s.code().to_string())?;
                serde_json::from_str(&response.into_inner().jwks_json)
                    .map_err(|e| format!("bad JWK Set: {e}"))
            })
        };
        Ok(KeyCache::new(
            fetch,
            issuer,
            audience,
            Duration::from_secs(5),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn unknown_kid_refetches_at_most_once_per_interval() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let cache = KeyCache::new(
            move || {
                counter.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Ok(JwkSet::default()) })
            },
            "iss".into(),
            "aud".into(),
            Duration::from_secs(60),
        );
        // A syntactically valid EdDSA token naming an unknown key.
        let token = "eyJhbGciOiJFZERTQSIsImtpZCI6Im5vcGUifQ.e30.c2ln";
        for _ in 0..3 {
            assert!(matches!(
                cache.verify(token).await,
                Err(VerifyError::Token(TokenError::UnknownKey(_)))
            ));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn unreachable_user_service_is_unavailable_not_unauthenticated() {
        let cache = KeyCache::new(
            || Box::pin(async { Err("connection refused".to_owned()) }),
            "iss".into(),
            "aud".into(),
            Duration::from_secs(5),
        );
        assert!(matches!(
            cache.verify("a.b.c").await,
            Err(VerifyError::KeysUnavailable(_))
        ));
    }
}
