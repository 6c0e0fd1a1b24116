//! The user service's metrics (SPEC §10, issue 20 item 6), served at
//! `/metrics` on `USER_METRICS_ADDR`: password logins and token refreshes,
//! and the use of the database pool.

use common::metrics::PoolUse;
use prometheus::{IntCounterVec, Opts, Registry};

/// The series, registered in their own registry.
#[derive(Clone)]
pub struct UserMetrics {
    /// Every series below.
    pub registry: Registry,
    /// `user_logins_total{outcome}`: password logins answered; `outcome`
    /// is `ok` or `refused` (wrong e-mail or password, or any other error).
    pub logins: IntCounterVec,
    /// `user_token_refreshes_total{outcome}`: refresh-token rotations, `ok`
    /// or `refused`.
    pub refreshes: IntCounterVec,
}

impl UserMetrics {
    /// Fresh series at zero.
    ///
    /// # Panics
    /// Never: the names are valid and distinct.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let registry = Registry::new();
        let logins = IntCounterVec::new(
            Opts::new("user_logins_total", "Password logins answered, by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let refreshes = IntCounterVec::new(
            Opts::new(
                "user_token_refreshes_total",
                "Refresh-token rotations answered, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(logins.clone()))
            .expect("distinct metric");
        registry
            .register(Box::new(refreshes.clone()))
            .expect("distinct metric");
        for outcome in ["ok", "refused"] {
            logins.with_label_values(&[outcome]);
            refreshes.with_label_values(&[outcome]);
        }
        Self {
            registry,
            logins,
            refreshes,
        }
    }

    /// Registers `db_pool_*`, read at each scrape (see [`PoolUse::register`]).
    ///
    /// # Errors
    /// A name is taken in the registry (registered twice).
    pub fn register_pool(&self, db: &sea_orm::DatabaseConnection) -> prometheus::Result<()> {
        let db = db.clone();
        PoolUse::register(&self.registry, "db", move || PoolUse::of_database(&db))
    }

    /// Counts an outcome: `ok` when `result` is `Ok`, else `refused`.
    pub fn count<T, E>(series: &IntCounterVec, result: &Result<T, E>) {
        let outcome = if result.is_ok() { "ok" } else { "refused" };
        series.with_label_values(&[outcome]).inc();
    }
}

impl Default for UserMetrics {
    fn default() -> Self {
        Self::new()
    }
}
