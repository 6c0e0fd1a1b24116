//! The revenue service's metrics (SPEC §10, issue 20 item 6), served at
//! `/metrics` on `REVENUE_METRICS_ADDR`: settlement runs (outcome, rows,
//! duration), the circuit breaker around the streaming service, and the
//! use of the database and Redis pools.

use common::metrics::PoolUse;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::cache::ReportCache;

/// The series, registered in their own registry.
#[derive(Clone)]
pub struct RevenueMetrics {
    /// Every series below.
    pub registry: Registry,
    /// `revenue_settlement_runs_total{outcome}`: runs this replica finished;
    /// `outcome` is `succeeded`, `failed` or `waiting` (the day was not
    /// written back yet; the run went back to the queue).
    pub runs: IntCounterVec,
    /// `revenue_settlement_rows_total`: daily rows written by succeeded
    /// runs (one per video with counts on the day).
    pub rows: IntCounter,
    /// `revenue_settlement_restated_rows_total`: rows of later days
    /// re-priced by succeeded runs (SPEC §11.2).
    pub restated_rows: IntCounter,
    /// `revenue_settlement_seconds`: how long each run took, seconds.
    pub run_seconds: Histogram,
    /// `revenue_circuit_breaker_state`: the breaker around the streaming
    /// service: 0 closed, 1 half-open, 2 open.
    pub breaker_state: IntGauge,
    /// `revenue_circuit_breaker_rejected_total`: calls the open breaker
    /// refused.
    pub breaker_rejected: IntCounter,
}

impl RevenueMetrics {
    /// Fresh series at zero.
    ///
    /// # Panics
    /// Never: the names are valid and distinct.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let registry = Registry::new();
        let runs = IntCounterVec::new(
            Opts::new(
                "revenue_settlement_runs_total",
                "Settlement runs finished, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let rows = IntCounter::new(
            "revenue_settlement_rows_total",
            "Daily rows written by succeeded settlement runs",
        )
        .expect("valid metric");
        let restated_rows = IntCounter::new(
            "revenue_settlement_restated_rows_total",
            "Rows of later days re-priced by succeeded settlement runs",
        )
        .expect("valid metric");
        let run_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "revenue_settlement_seconds",
                "Duration of a settlement run, seconds",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ]),
        )
        .expect("valid metric");
        let breaker_state = IntGauge::new(
            "revenue_circuit_breaker_state",
            "Circuit breaker around the streaming service: 0 closed, 1 half-open, 2 open",
        )
        .expect("valid metric");
        let breaker_rejected = IntCounter::new(
            "revenue_circuit_breaker_rejected_total",
            "Calls to the streaming service refused by the open breaker",
        )
        .expect("valid metric");
        for c in [
            Box::new(runs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(rows.clone()),
            Box::new(restated_rows.clone()),
            Box::new(run_seconds.clone()),
            Box::new(breaker_state.clone()),
            Box::new(breaker_rejected.clone()),
        ] {
            registry.register(c).expect("distinct metric");
        }
        for outcome in ["succeeded", "failed", "waiting"] {
            runs.with_label_values(&[outcome]);
        }
        Self {
            registry,
            runs,
            rows,
            restated_rows,
            run_seconds,
            breaker_state,
            breaker_rejected,
        }
    }

    /// The breaker's instrument, feeding `revenue_circuit_breaker_*`.
    pub fn breaker_instrument(&self) -> BreakerInstrument {
        BreakerInstrument {
            state: self.breaker_state.clone(),
            rejected: self.breaker_rejected.clone(),
        }
    }

    /// Registers `db_pool_*` and, with a report cache, `redis_pool_*`, read
    /// at each scrape (see [`PoolUse::register`]).
    ///
    /// # Errors
    /// A name is taken in the registry (registered twice).
    pub fn register_pools(
        &self,
        db: &sea_orm::DatabaseConnection,
        cache: &ReportCache,
    ) -> prometheus::Result<()> {
        let db = db.clone();
        PoolUse::register(&self.registry, "db", move || PoolUse::of_database(&db))?;
        if cache.pool_use().is_some() {
            let cache = cache.clone();
            PoolUse::register(&self.registry, "redis", move || {
                cache.pool_use().unwrap_or_default()
            })?;
        }
        Ok(())
    }
}

impl Default for RevenueMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The circuit breaker's events into `revenue_circuit_breaker_state` and
/// `revenue_circuit_breaker_rejected_total` (failsafe's instrument).
#[derive(Clone)]
pub struct BreakerInstrument {
    state: IntGauge,
    rejected: IntCounter,
}

impl BreakerInstrument {
    /// An instrument whose series are registered nowhere (tests, tools).
    pub fn unregistered() -> Self {
        RevenueMetrics::new().breaker_instrument()
    }
}

impl failsafe::Instrument for BreakerInstrument {
    fn on_call_rejected(&self) {
        self.rejected.inc();
    }

    fn on_open(&self) {
        self.state.set(2);
    }

    fn on_half_open(&self) {
        self.state.set(1);
    }

    fn on_closed(&self) {
        self.state.set(0);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use failsafe::CircuitBreaker as _;

    use super::*;

    #[test]
    fn the_breaker_state_and_rejections_reach_the_series() {
        let metrics = RevenueMetrics::new();
        let breaker =
            crate::settlement::breaker(Duration::from_secs(60), metrics.breaker_instrument());
        assert_eq!(metrics.breaker_state.get(), 0);
        for _ in 0..3 {
            let _ = breaker.call(|| Err::<(), _>("unavailable"));
        }
        assert_eq!(metrics.breaker_state.get(), 2, "open after 3 failures");
        assert!(breaker.call(|| Ok::<_, ()>(())).is_err(), "refused");
        assert_eq!(metrics.breaker_rejected.get(), 1);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&metrics.registry.gather())
            .unwrap_or_default();
        assert!(text.contains("revenue_circuit_breaker_state 2"), "{text}");
    }
}
