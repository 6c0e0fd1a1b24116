//! Studio sessions: the backend-for-frontend half of issue 21's browser
//! security (OAuth 2.0 for Browser-Based Apps, the BFF pattern). The
//! browser holds only an opaque session id in an `HttpOnly`, `SameSite=Strict`
//! cookie; the platform's access and refresh tokens stay here, in the
//! session store, and never reach page script. Signing out deletes the
//! session and revokes its refresh family, so the old cookie no longer
//! works anywhere.
//!
//! The store is Redis (`GATEWAY_REDIS_URL`) when gateway replicas must share
//! sessions, or this process's memory (one gateway: the demo, the
//! all-in-one stack). Keys are the SHA-256 of the session id, so a copy of
//! the store holds no usable cookie.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine;
use deadpool_redis::Runtime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{error::ApiError, routes::auth::UserResponse};

/// The cookie that carries the session id.
pub const COOKIE: &str = "studio_session";

/// The header a cookie-authenticated state-changing request carries, equal
/// to its session's [`Session::csrf_token`].
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the gateway keeps for one signed-in browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The current access token (EdDSA JWT), sent downstream as the bearer.
    pub access_token: String,
    /// The current refresh token (rotated when the access token is renewed).
    pub refresh_token: String,
    /// When the access token expires, Unix seconds.
    pub access_expires_at: i64,
    /// The anti-CSRF token: page script reads it from `GET /studio/session`
    /// and echoes it in [`CSRF_HEADER`]; another site can do neither.
    pub csrf_token: String,
    /// The signed-in user, as at sign-in.
    pub user: UserResponse,
}

/// A fresh random token: 32 bytes, base64url without padding (43
/// characters).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn store_key(session_id: &str) -> String {
    let digest = Sha256::digest(session_id.as_bytes());
    format!(
        "studio:session:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// Where sessions live.
#[derive(Clone)]
pub enum SessionStore {
    /// This process only (one gateway).
    Memory(Arc<Mutex<MemoryStore>>),
    /// Shared by every gateway replica.
    Redis(deadpool_redis::Pool),
}

/// Sessions in memory, each with the instant it expires; the refresh locks
/// beside them.
#[derive(Default)]
pub struct MemoryStore {
    sessions: HashMap<String, (String, Instant)>,
    refreshing: HashMap<String, Instant>,
}

impl SessionStore {
    /// The in-process store.
    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    /// The use of the Redis pool, for `/metrics`; `None` in memory.
    pub fn pool_use(&self) -> Option<common::metrics::PoolUse> {
        match self {
            Self::Memory(_) => None,
            Self::Redis(pool) => Some(common::metrics::PoolUse::of_deadpool(pool.status())),
        }
    }

    /// A store on the Redis at `url` (connections are made on first use).
    ///
    /// # Errors
    /// A malformed URL.
    pub fn redis(url: &str) -> anyhow::Result<Self> {
        Ok(Self::Redis(
            deadpool_redis::Config::from_url(url).create_pool(Some(Runtime::Tokio1))?,
        ))
    }

    /// Stores `session` under a new id for `ttl`, and returns the id (the
    /// cookie's value).
    ///
    /// # Errors
    /// 503 when Redis cannot be reached.
    pub async fn create(&self, session: &Session, ttl: Duration) -> Result<String, ApiError> {
        let id = random_token();
        let value = serde_json::to_string(session).map_err(internal)?;
        match self {
            Self::Memory(store) => {
                let mut store = lock(store);
                let now = Instant::now();
                store.sessions.retain(|_, (_, expires)| *expires > now);
                store.sessions.insert(store_key(&id), (value, now + ttl));
            }
            Self::Redis(pool) => {
                let mut conn = pool.get().await.map_err(unavailable)?;
                redis::cmd("SET")
                    .arg(store_key(&id))
                    .arg(value)
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(id)
    }

    /// The session `id` names, if it exists and has not expired.
    ///
    /// # Errors
    /// 503 when Redis cannot be reached.
    pub async fn get(&self, id: &str) -> Result<Option<Session>, ApiError> {
        let value = match self {
            Self::Memory(store) => lock(store)
                .sessions
                .get(&store_key(id))
                .filter(|(_, expires)| *expires > Instant::now())
                .map(|(value, _)| value.clone()),
            Self::Redis(pool) => {
                let mut conn = pool.get().await.map_err(unavailable)?;
                redis::cmd("GET")
                    .arg(store_key(id))
                    .query_async::<Option<String>>(&mut conn)
                    .await
                    .map_err(unavailable)?
            }
        };
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Replaces the session `id` names, keeping its expiry; nothing when it
    /// is gone (signed out meanwhile).
    ///
    /// # Errors
    /// 503 when Redis cannot be reached.
    pub async fn update(&self, id: &str, session: &Session) -> Result<(), ApiError> {
        let value = serde_json::to_string(session).map_err(internal)?;
        match self {
            Self::Memory(store) => {
                if let Some(entry) = lock(store).sessions.get_mut(&store_key(id)) {
                    entry.0 = value;
                }
            }
            Self::Redis(pool) => {
                let mut conn = pool.get().await.map_err(unavailable)?;
                redis::cmd("SET")
                    .arg(store_key(id))
                    .arg(value)
                    .arg("XX")
                    .arg("KEEPTTL")
                    .query_async::<Option<String>>(&mut conn)
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(())
    }

    /// Deletes the session `id` names and returns it (`None`: none was
    /// there).
    ///
    /// # Errors
    /// 503 when Redis cannot be reached.
    pub async fn delete(&self, id: &str) -> Result<Option<Session>, ApiError> {
        let value = match self {
            Self::Memory(store) => lock(store)
                .sessions
                .remove(&store_key(id))
                .map(|(value, _)| value),
            Self::Redis(pool) => {
                let mut conn = pool.get().await.map_err(unavailable)?;
                redis::cmd("GETDEL")
                    .arg(store_key(id))
                    .query_async::<Option<String>>(&mut conn)
                    .await
                    .map_err(unavailable)?
            }
        };
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Takes the right to renew the session's tokens for `hold`: true for
    /// one caller; the others go on with the access token they have, which
    /// is still valid (refresh tokens rotate on use, so two concurrent
    /// renewals would revoke the family).
    ///
    /// # Errors
    /// 503 when Redis cannot be reached.
    pub async fn try_lock_refresh(&self, id: &str, hold: Duration) -> Result<bool, ApiError> {
        let key = format!("{}:refresh", store_key(id));
        match self {
            Self::Memory(store) => {
                let mut store = lock(store);
                let now = Instant::now();
                store.refreshing.retain(|_, until| *until > now);
                Ok(store.refreshing.insert(key, now + hold).is_none())
            }
            Self::Redis(pool) => {
                let mut conn = pool.get().await.map_err(unavailable)?;
                let set: Option<String> = redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(u64::try_from(hold.as_millis()).unwrap_or(u64::MAX))
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(set.is_some())
            }
        }
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), String> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(pool) => {
                let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

fn lock(store: &Mutex<MemoryStore>) -> std::sync::MutexGuard<'_, MemoryStore> {
    store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "studio session store unavailable");
    ApiError::unavailable("the session store is unavailable; try again shortly")
}

fn internal(e: serde_json::Error) -> ApiError {
    ApiError::from(tonic::Status::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn session() -> Session {
        Session {
            access_token: "a".into(),
            refresh_token: "r".into(),
            access_expires_at: 0,
            csrf_token: random_token(),
            user: UserResponse {
                user_id: 7,
                email: "c@example.com".into(),
                display_name: "C".into(),
                role: "creator".into(),
                created_at: chrono::DateTime::default(),
            },
        }
    }

    #[tokio::test]
    async fn a_memory_session_lives_until_deleted_or_expired_and_one_caller_renews() {
        let store = SessionStore::memory();
        let id = store
            .create(&session(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(id.len(), 43);
        assert_eq!(store.get(&id).await.unwrap().unwrap().user.user_id, 7);
        assert!(store.get("another").await.unwrap().is_none());
        assert!(
            store
                .try_lock_refresh(&id, Duration::from_secs(5))
                .await
                .unwrap()
        );
        assert!(
            !store
                .try_lock_refresh(&id, Duration::from_secs(5))
                .await
                .unwrap()
        );
        assert!(store.delete(&id).await.unwrap().is_some());
        assert!(store.get(&id).await.unwrap().is_none());
        let brief = store.create(&session(), Duration::ZERO).await.unwrap();
        assert!(store.get(&brief).await.unwrap().is_none());
    }
}
