//! `/metrics` for the gRPC services (SPEC §10, issue 20): a registry in
//! Prometheus's text format on a listener apart from gRPC, as the gateway
//! has its own.

use std::net::SocketAddr;

use anyhow::Context;
use axum::{http::header::CONTENT_TYPE, response::IntoResponse, routing::get};
use prometheus::{Registry, TextEncoder};

/// A bound `/metrics` listener, not serving yet.
pub struct MetricsListener {
    listener: std::net::TcpListener,
    addr: SocketAddr,
}

impl MetricsListener {
    /// Binds `addr` (port 0: any free port).
    ///
    /// # Errors
    /// The port is in use.
    pub fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("binding metrics {addr}"))?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr })
    }

    /// Where `/metrics` is served.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `registry` at `GET /metrics` on the current Tokio runtime,
    /// until the returned handle is dropped (also when the task holding it
    /// is aborted, as a killed service's is: the port is freed for the
    /// next one).
    ///
    /// # Errors
    /// The listener cannot be handed to Tokio.
    pub fn spawn(self, registry: Registry) -> anyhow::Result<MetricsTask> {
        self.listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let app = axum::Router::new().route(
            "/metrics",
            get(move || {
                let text = TextEncoder::new().encode_to_string(&registry.gather());
                async move {
                    match text {
                        Ok(text) => {
                            ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response()
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "encoding the metrics");
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                        }
                    }
                }
            }),
        );
        Ok(MetricsTask(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        })))
    }
}

/// The task serving `/metrics`; dropping it stops the task and closes the
/// port.
pub struct MetricsTask(tokio::task::JoinHandle<()>);

impl Drop for MetricsTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Integer gauges whose values are read when `/metrics` is scraped (the
/// use of a connection pool, the age of a watermark): a collector that
/// calls `read` and reports what it returns.
pub struct ScrapedGauges {
    gauges: prometheus::IntGaugeVec,
    read: Box<ReadGauges>,
}

/// Each series' label values and value, read at a scrape.
type ReadGauges = dyn Fn() -> Vec<(Vec<&'static str>, i64)> + Send + Sync;

impl ScrapedGauges {
    /// Gauges `name{labels…}`; `read` returns each series' label values (in
    /// the order of `labels`) and value.
    ///
    /// # Errors
    /// An invalid name or label.
    pub fn new(
        name: &str,
        help: &str,
        labels: &[&str],
        read: impl Fn() -> Vec<(Vec<&'static str>, i64)> + Send + Sync + 'static,
    ) -> prometheus::Result<Self> {
        Ok(Self {
            gauges: prometheus::IntGaugeVec::new(prometheus::Opts::new(name, help), labels)?,
            read: Box::new(read),
        })
    }

    /// A gauge without labels.
    ///
    /// # Errors
    /// An invalid name.
    pub fn single(
        name: &str,
        help: &str,
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) -> prometheus::Result<Self> {
        Self::new(name, help, &[], move || vec![(Vec::new(), read())])
    }
}

impl prometheus::core::Collector for ScrapedGauges {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauges.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        for (labels, value) in (self.read)() {
            if let Ok(gauge) = self.gauges.get_metric_with_label_values(&labels) {
                gauge.set(value);
            }
        }
        self.gauges.collect()
    }
}

/// How a connection pool is used at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections lent out.
    pub in_use: i64,
    /// Connections open and idle.
    pub idle: i64,
    /// The most the pool opens.
    pub max: i64,
    /// Callers waiting for a connection (0 where the pool does not say).
    pub waiting: i64,
}

impl PoolUse {
    /// A deadpool pool's status (the Redis pools).
    pub fn of_deadpool(status: deadpool_redis::Status) -> Self {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Self {
            in_use: count(status.size.saturating_sub(status.available)),
            idle: count(status.available),
            max: count(status.max_size),
            waiting: count(status.waiting),
        }
    }

    /// A sea-orm connection's pool (PostgreSQL or SQLite).
    pub fn of_database(db: &sea_orm::DatabaseConnection) -> Self {
        fn of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> PoolUse {
            let size = i64::from(pool.size());
            let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
            PoolUse {
                in_use: size.saturating_sub(idle).max(0),
                idle,
                max: i64::from(pool.options().get_max_connections()),
                waiting: 0,
            }
        }
        match db {
            sea_orm::DatabaseConnection::SqlxPostgresPoolConnection(_) => {
                of(db.get_postgres_connection_pool())
            }
            sea_orm::DatabaseConnection::SqlxSqlitePoolConnection(_) => {
                of(db.get_sqlite_connection_pool())
            }
            _ => Self::default(),
        }
    }

    /// Registers `<prefix>_pool_connections{state="in_use"|"idle"}`,
    /// `<prefix>_pool_max_connections` and `<prefix>_pool_waiting` in
    /// `registry`, read from `read` at each scrape. `prefix` is `db` or
    /// `redis` (SPEC §10: pool use).
    ///
    /// # Errors
    /// The names are taken in `registry`.
    pub fn register(
        registry: &Registry,
        prefix: &str,
        read: impl Fn() -> PoolUse + Send + Sync + 'static,
    ) -> prometheus::Result<()> {
        let read = std::sync::Arc::new(read);
        let connections = {
            let read = read.clone();
            ScrapedGauges::new(
                &format!("{prefix}_pool_connections"),
                "Connections of the pool, by state",
                &["state"],
                move || {
                    let used = read();
                    vec![(vec!["in_use"], used.in_use), (vec!["idle"], used.idle)]
                },
            )?
        };
        let max = {
            let read = read.clone();
            ScrapedGauges::single(
                &format!("{prefix}_pool_max_connections"),
                "The most connections the pool opens",
                move || read().max,
            )?
        };
        let waiting = ScrapedGauges::single(
            &format!("{prefix}_pool_waiting"),
            "Callers waiting for a connection",
            move || read().waiting,
        )?;
        registry.register(Box::new(connections))?;
        registry.register(Box::new(max))?;
        registry.register(Box::new(waiting))
    }
}
