//! Read-aside caching of reports in Redis (issue 4): a report is cached
//! under the current generation; every successful settlement bumps the
//! generation, so no report computed before it is served after it. Redis is
//! optional (`REVENUE_REDIS_URL`) and best-effort: when it fails, reports
//! are computed from the database and the failure is logged.

use std::future::Future;

use deadpool_redis::Runtime;
use prost::Message;

use crate::error::RevenueError;

/// A report read through [`ReportCache::get_or_compute_unless`].
#[derive(Debug, PartialEq)]
pub enum Versioned<T> {
    /// The caller's known version is still the report's.
    Unchanged {
        /// That version.
        version: String,
    },
    /// The report.
    Report {
        /// The report, cached or computed.
        report: T,
        /// The version it is cached under; `None` when it is not cached
        /// (no cache, or Redis failed).
        version: Option<String>,
    },
}

/// A report cache, or none.
#[derive(Clone)]
pub struct ReportCache {
    pool: Option<deadpool_redis::Pool>,
    prefix: String,
    ttl_seconds: u64,
}

impl ReportCache {
    /// The use of the cache's Redis pool, for `/metrics`; `None` without a
    /// cache.
    pub fn pool_use(&self) -> Option<common::metrics::PoolUse> {
        self.pool
            .as_ref()
            .map(|pool| common::metrics::PoolUse::of_deadpool(pool.status()))
    }

    /// No cache: every report is computed.
    pub fn disabled() -> Self {
        Self {
            pool: None,
            prefix: String::new(),
            ttl_seconds: 0,
        }
    }

    /// A cache on the Redis at `url`, keys under `prefix`, entries kept
    /// `ttl_seconds` at most.
    ///
    /// # Errors
    /// A malformed URL.
    pub fn redis(url: &str, prefix: &str, ttl_seconds: u64) -> anyhow::Result<Self> {
        let pool = deadpool_redis::Config::from_url(url).create_pool(Some(Runtime::Tokio1))?;
        Ok(Self {
            pool: Some(pool),
            prefix: prefix.to_owned(),
            ttl_seconds: ttl_seconds.max(1),
        })
    }

    fn generation_key(&self) -> String {
        format!("{}:generation", self.prefix)
    }

    /// The cached report under `key`, or `compute`'s, cached.
    ///
    /// # Errors
    /// `compute`'s.
    pub async fn get_or_compute<T, F, Fut>(&self, key: &str, compute: F) -> Result<T, RevenueError>
    where
        T: Message + Default,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, RevenueError>>,
    {
        match self.get_or_compute_unless(key, "", compute).await? {
            Versioned::Report { report, .. } => Ok(report),
            Versioned::Unchanged { .. } => Err(RevenueError::Internal(anyhow::anyhow!(
                "the report cache answered 'unchanged' to no version"
            ))),
        }
    }

    /// As [`Self::get_or_compute`], with the version the report is cached
    /// under (its key under the current generation), or
    /// [`Versioned::Unchanged`] without reading the report when `known`
    /// is that version and its entry is still cached (so a caller's copy
    /// lives no longer than the entry: at most the TTL, even when a
    /// settlement could not bump the generation). An empty `known`
    /// matches nothing.
    ///
    /// # Errors
    /// `compute`'s.
    pub async fn get_or_compute_unless<T, F, Fut>(
        &self,
        key: &str,
        known: &str,
        compute: F,
    ) -> Result<Versioned<T>, RevenueError>
    where
        T: Message + Default,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, RevenueError>>,
    {
        let uncached = |report| Versioned::Report {
            report,
            version: None,
        };
        let Some(pool) = &self.pool else {
            return compute().await.map(uncached);
        };
        let mut conn = match pool.get().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "report cache unavailable");
                return compute().await.map(uncached);
            }
        };
        let generation: redis::RedisResult<Option<i64>> = redis::cmd("GET")
            .arg(self.generation_key())
            .query_async(&mut conn)
            .await;
        let full_key = match generation {
            Ok(g) => format!("{}:g{}:{key}", self.prefix, g.unwrap_or(0)),
            Err(e) => {
                tracing::warn!(error = %e, "report cache unavailable");
                return compute().await.map(uncached);
            }
        };
        if !known.is_empty() && known == full_key {
            let held: redis::RedisResult<bool> = redis::cmd("EXISTS")
                .arg(&full_key)
                .query_async(&mut conn)
                .await;
            if let Ok(true) = held {
                return Ok(Versioned::Unchanged { version: full_key });
            }
        }
        let cached: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
            .arg(&full_key)
            .query_async(&mut conn)
            .await;
        if let Ok(Some(bytes)) = cached
            && let Ok(report) = T::decode(bytes.as_slice())
        {
            return Ok(Versioned::Report {
                report,
                version: Some(full_key),
            });
        }
        let report = compute().await?;
        let stored: redis::RedisResult<()> = redis::cmd("SET")
            .arg(&full_key)
            .arg(report.encode_to_vec())
            .arg("EX")
            .arg(self.ttl_seconds)
            .query_async(&mut conn)
            .await;
        let version = match stored {
            Ok(()) => Some(full_key),
            Err(e) => {
                tracing::warn!(error = %e, "report cache write failed");
                None
            }
        };
        Ok(Versioned::Report { report, version })
    }

    /// Makes every cached report stale (after a settlement changed rows).
    pub async fn invalidate(&self) {
        let Some(pool) = &self.pool else { return };
        let bumped = match pool.get().await {
            Ok(mut conn) => redis::cmd("INCR")
                .arg(self.generation_key())
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = bumped {
            tracing::error!(error = %e, "could not invalidate the report cache; entries expire by TTL");
        }
    }
}
