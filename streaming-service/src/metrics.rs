//! The streaming service's metrics (SPEC §10, issue 20 item 6), served at
//! `/metrics` on `STREAMING_METRICS_ADDR`: what this replica counted, its
//! write-backs (duration, buckets, failures, lag, watermark age), and the
//! use of its database and Redis pools.

use std::sync::Arc;

use common::metrics::{PoolUse, ScrapedGauges};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use crate::counting::{
    CounterStore,
    writeback::{Writeback, WritebackObserver},
};

/// The series, registered in their own registry.
#[derive(Clone)]
pub struct StreamingMetrics {
    /// Every series below.
    pub registry: Registry,
    /// `streaming_plays_total{outcome}`: plays this replica answered;
    /// `outcome` is `counted` (a view), `owner` or `duplicate` (SPEC §4).
    pub plays: IntCounterVec,
    /// `streaming_pauses_total`: pauses this replica answered.
    pub pauses: IntCounter,
    /// `streaming_watch_seconds_total`: watch time its pauses added,
    /// seconds.
    pub watch_seconds: IntCounter,
    /// `streaming_ad_views_total`: ad views its pauses counted.
    pub ad_views: IntCounter,
    /// `streaming_writeback_seconds`: how long each write-back of the
    /// counters to the database took, seconds.
    pub writeback_seconds: Histogram,
    /// `streaming_writeback_buckets_total`: (video, day) buckets written
    /// back.
    pub writeback_buckets: IntCounter,
    /// `streaming_writeback_failures_total`: write-backs that stopped on a
    /// store or database failure (their batches stay pending).
    pub writeback_failures: IntCounter,
}

impl StreamingMetrics {
    /// Fresh series at zero.
    ///
    /// # Panics
    /// Never: the names are valid and distinct.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let registry = Registry::new();
        let plays = IntCounterVec::new(
            Opts::new("streaming_plays_total", "Plays answered, by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let pauses =
            IntCounter::new("streaming_pauses_total", "Pauses answered").expect("valid metric");
        let watch_seconds = IntCounter::new(
            "streaming_watch_seconds_total",
            "Watch time added by pauses, seconds",
        )
        .expect("valid metric");
        let ad_views = IntCounter::new("streaming_ad_views_total", "Ad views counted by pauses")
            .expect("valid metric");
        let writeback_seconds = Histogram::with_opts(HistogramOpts::new(
            "streaming_writeback_seconds",
            "Duration of a write-back of the counters, seconds",
        ))
        .expect("valid metric");
        let writeback_buckets = IntCounter::new(
            "streaming_writeback_buckets_total",
            "(video, day) buckets written back",
        )
        .expect("valid metric");
        let writeback_failures = IntCounter::new(
            "streaming_writeback_failures_total",
            "Write-backs that stopped on a failure",
        )
        .expect("valid metric");
        for c in [
            Box::new(plays.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(pauses.clone()),
            Box::new(watch_seconds.clone()),
            Box::new(ad_views.clone()),
            Box::new(writeback_seconds.clone()),
            Box::new(writeback_buckets.clone()),
            Box::new(writeback_failures.clone()),
        ] {
            registry.register(c).expect("distinct metric");
        }
        for outcome in ["counted", "owner", "duplicate"] {
            plays.with_label_values(&[outcome]);
        }
        Self {
            registry,
            plays,
            pauses,
            watch_seconds,
            ad_views,
            writeback_seconds,
            writeback_buckets,
            writeback_failures,
        }
    }

    /// What a write-back records into these series.
    pub fn writeback_observer(&self) -> WritebackObserver {
        WritebackObserver {
            duration: self.writeback_seconds.clone(),
            buckets: self.writeback_buckets.clone(),
            failures: self.writeback_failures.clone(),
        }
    }

    /// Registers the series read at each scrape:
    /// - `streaming_writeback_lag_seconds`: seconds, by the service's clock,
    ///   since the start of this replica's last complete write-back (every
    ///   count older than that is in the database); absent before the
    ///   first;
    /// - `streaming_watermark_age_seconds`: the lag plus the watermark's
    ///   event lag (`COUNTER_EVENT_LAG_SECONDS`): how far behind now the
    ///   watermark this replica last advanced is;
    /// - `db_pool_*` and, with Redis, `redis_pool_*` (see
    ///   [`PoolUse::register`]).
    ///
    /// # Errors
    /// A name is taken in the registry (registered twice).
    pub fn register_scraped(
        &self,
        writeback: &Writeback,
        db: &sea_orm::DatabaseConnection,
        store: &Arc<dyn CounterStore>,
    ) -> prometheus::Result<()> {
        let age = |writeback: Writeback, extra_ms: i64| {
            move || match writeback.last_complete() {
                Some(last) => {
                    let ms = (writeback.clock().now() - last).num_milliseconds() + extra_ms;
                    vec![(Vec::new(), ms.max(0) / 1_000)]
                }
                None => Vec::new(),
            }
        };
        let event_lag_ms = i64::try_from(writeback.event_lag().as_millis()).unwrap_or(i64::MAX);
        self.registry.register(Box::new(ScrapedGauges::new(
            "streaming_writeback_lag_seconds",
            "Seconds since the start of the last complete write-back",
            &[],
            age(writeback.clone(), 0),
        )?))?;
        self.registry.register(Box::new(ScrapedGauges::new(
            "streaming_watermark_age_seconds",
            "Seconds the watermark last advanced by this replica trails now",
            &[],
            age(writeback.clone(), event_lag_ms),
        )?))?;
        let db = db.clone();
        PoolUse::register(&self.registry, "db", move || PoolUse::of_database(&db))?;
        if store.pool_use().is_some() {
            let store = store.clone();
            PoolUse::register(&self.registry, "redis", move || {
                store.pool_use().unwrap_or_default()
            })?;
        }
        Ok(())
    }
}

impl Default for StreamingMetrics {
    fn default() -> Self {
        Self::new()
    }
}
