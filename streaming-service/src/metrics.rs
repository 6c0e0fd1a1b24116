//! The streaming service's metrics (SPEC §10, issue 20 item 6), served at
//! `/metrics` on `STREAMING_METRICS_ADDR`: what this replica counted, and
//! its write-backs.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

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
        for c in [
            Box::new(plays.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(pauses.clone()),
            Box::new(watch_seconds.clone()),
            Box::new(ad_views.clone()),
            Box::new(writeback_seconds.clone()),
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
        }
    }
}

impl Default for StreamingMetrics {
    fn default() -> Self {
        Self::new()
    }
}
