//! Building and running the streaming service: database, migrations, the
//! counter store, the write-back loop, and the gRPC server with health and
//! reflection.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use common::jwks::KeyCache;
use proto::streaming::v1::streaming_service_server::StreamingServiceServer;
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;
use tokio::{net::TcpListener, sync::watch};

use crate::{
    catalog::Catalog,
    clock::Clock,
    config::Settings,
    counting::PlayRules,
    counting::{
        CounterStore, SESSION_IDLE_MARGIN_SECONDS, memory::MemoryStore, redis::RedisStore,
        writeback::Writeback,
    },
    grpc::StreamingApi,
    migration::Migrator,
};

/// A built streaming service, bound to its port and ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    api: StreamingApi,
    writeback: Writeback,
    settings: Settings,
    /// `/metrics`, when `STREAMING_METRICS_ADDR` is set.
    metrics: Option<(common::metrics::MetricsListener, prometheus::Registry)>,
    /// What its gRPC health status depends on: the database, and Redis
    /// when the counters live there.
    dependencies: common::grpc::health::Dependencies,
}

impl Application {
    /// Connects to the database and the counter store, migrates, and binds
    /// the gRPC port.
    ///
    /// # Errors
    /// Unreachable database or Redis, failed migration, port in use, no
    /// service credential.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let credential = settings
            .service_credential
            .clone()
            .context("SERVICE_CREDENTIAL is required")?;
        let db = common::database::connect(
            settings.streaming_database_url.as_ref(),
            &settings.data_dir,
            "streaming.db",
            settings.streaming_database_max_connections,
        )
        .await?;
        common::database::migrate_exclusively(&db, || Migrator::up(&db, None))
            .await
            .context("migrating the streaming database")?;
        if let Err(e) =
            common::partitions::ensure_ahead(&db, "daily_counts", settings.platform_time.today())
                .await
        {
            // Not needed yet (the current month is made when first
            // written): a busy table must not keep the service down.
            tracing::warn!(error = %e, "making the months ahead of daily_counts failed");
        }
        let store = counter_store(&settings).await?;
        let keys = Arc::new(KeyCache::from_user_service(
            &settings.streaming_user_service_url,
            &settings.discovery,
            credential,
            settings.jwt_issuer.clone(),
            settings.jwt_audience.clone(),
        )?);
        let clock = Clock::new(settings.dev_clock);
        if let Some(dev) = settings.dev_clock {
            tracing::warn!(%dev, "development clock: time is compressed");
        }
        let catalog = Catalog::new(db.clone(), settings.platform_time, clock);
        let metrics = crate::metrics::StreamingMetrics::new();
        let writeback = Writeback::new(
            store.clone(),
            db.clone(),
            Duration::from_secs(settings.counter_event_lag_seconds),
            clock,
        );
        let rules = PlayRules {
            window_ms: i64::from(settings.dedupe_window_seconds) * 1_000,
            session_ttl_ms: i64::try_from(settings.session_ttl_seconds).unwrap_or(i64::MAX / 1_000)
                * 1_000,
            // The margin is for a player's real delays: on a development
            // clock, a second of them is `speed` seconds of event time.
            session_idle_margin_ms: SESSION_IDLE_MARGIN_SECONDS
                * 1_000
                * settings.dev_clock.map_or(1, |dev| i64::from(dev.speed)),
            time: settings.platform_time,
            clock,
        };
        let mut dependencies = common::grpc::health::Dependencies::none().with_database(db.clone());
        if settings.streaming_redis_url.is_some() {
            let store = store.clone();
            dependencies = dependencies.with("redis", move || {
                let store = store.clone();
                async move { store.ping().await }
            });
        }
        let writeback = writeback.observed_by(metrics.writeback_observer());
        metrics.register_scraped(&writeback, &db, &store)?;
        let registry = metrics.registry.clone();
        let api = StreamingApi::new(catalog, store, writeback.clone(), db, keys, rules, metrics);
        let metrics = match settings.streaming_metrics_addr {
            Some(addr) => Some((common::metrics::MetricsListener::bind(addr)?, registry)),
            None => None,
        };
        let listener = TcpListener::bind(settings.streaming_grpc_addr)
            .await
            .with_context(|| format!("binding {}", settings.streaming_grpc_addr))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            api,
            writeback,
            settings,
            metrics,
            dependencies,
        })
    }

    /// Where gRPC listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(l, _)| l.local_addr())
    }

    /// The write-back, for running one by hand (tests, operators).
    pub fn writeback(&self) -> Writeback {
        self.writeback.clone()
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes in-flight calls and
    /// writes the counters back.
    ///
    /// # Errors
    /// Server failures.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(common::shutdown::signal()).await
    }

    /// Serves until `stop` resolves, then finishes in-flight calls and
    /// writes the counters back one last time.
    ///
    /// # Errors
    /// Server failures.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let credential = self
            .settings
            .service_credential
            .clone()
            .context("SERVICE_CREDENTIAL is required")?;
        let metrics = match self.metrics {
            Some((listener, registry)) => Some(listener.spawn(registry)?),
            None => None,
        };
        let (stopped_tx, mut stopped_rx) = watch::channel(false);
        let interval = Duration::from_secs(self.settings.writeback_interval_seconds.max(1));
        let writeback = tokio::spawn(self.writeback.run_every(interval, async move {
            let _ = stopped_rx.wait_for(|s| *s).await;
        }));
        let served = common::grpc::serve(
            self.listener,
            credential,
            StreamingServiceServer::new(self.api).max_decoding_message_size(
                common::grpc::MAX_IMPORT_BYTES + common::grpc::MESSAGE_OVERHEAD_BYTES,
            ),
            self.settings.grpc,
            self.dependencies,
            stop,
        )
        .await;
        // Calls have drained: the last write-back sees every count.
        let _ = stopped_tx.send(true);
        writeback.await.context("the write-back task")?;
        drop(metrics);
        served?;
        Ok(())
    }
}

/// Redis (or a Redis Cluster) when configured, else the in-process store.
async fn counter_store(settings: &Settings) -> anyhow::Result<Arc<dyn CounterStore>> {
    let Some(url) = &settings.streaming_redis_url else {
        tracing::info!("counting in process (no STREAMING_REDIS_URL)");
        return Ok(Arc::new(MemoryStore::with_max_sessions(
            settings.streaming_memory_max_sessions,
        )));
    };
    let url = url.expose_secret();
    let store = if settings.streaming_redis_cluster {
        let nodes = url.split(',').map(|u| u.trim().to_owned()).collect();
        RedisStore::cluster(
            nodes,
            settings.streaming_redis_pool_size,
            &settings.streaming_redis_prefix,
        )?
    } else {
        RedisStore::single(
            url,
            settings.streaming_redis_pool_size,
            &settings.streaming_redis_prefix,
        )?
    };
    store.ping().await.context("connecting to Redis")?;
    Ok(Arc::new(store))
}
