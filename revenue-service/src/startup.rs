//! Building and running the revenue service: database, migrations, the
//! settlement worker and schedule, and the gRPC server with health and
//! reflection.

use std::{future::Future, net::SocketAddr, str::FromStr, sync::Arc, time::Duration};

use anyhow::Context;
use common::{
    discovery::{Downstream, names},
    jwks::KeyCache,
};
use proto::revenue::v1::revenue_service_server::RevenueServiceServer;
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;
use tokio::{net::TcpListener, sync::watch};
use tonic::transport::Endpoint;

use crate::{
    cache::ReportCache,
    config::Settings,
    grpc::RevenueApi,
    migration::Migrator,
    schedule::{DailySchedule, MonthlySchedule},
    settlement::{GrpcCounts, RunLimits, Settler, breaker},
};

/// A built revenue service, bound to its port and ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    api: RevenueApi,
    settler: Settler,
    schedule: DailySchedule,
    close_schedule: MonthlySchedule,
    db: sea_orm::DatabaseConnection,
    settings: Settings,
    /// `/metrics`, when `REVENUE_METRICS_ADDR` is set.
    metrics: Option<(common::metrics::MetricsListener, prometheus::Registry)>,
}

impl Application {
    /// Connects to the database, migrates it, and binds the gRPC port.
    ///
    /// # Errors
    /// Unreachable database, failed migration, bad schedule, port in use,
    /// no service credential.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let credential = settings
            .service_credential
            .clone()
            .context("SERVICE_CREDENTIAL is required")?;
        let schedule = DailySchedule::from_str(&settings.settlement_schedule)
            .map_err(|e| anyhow::anyhow!("SETTLEMENT_SCHEDULE: {e}"))?
            .with_watermark_poll(Duration::from_secs(
                settings.settlement_watermark_poll_seconds.max(1),
            ));
        let close_schedule = MonthlySchedule::from_str(&settings.close_schedule)
            .map_err(|e| anyhow::anyhow!("CLOSE_SCHEDULE: {e}"))?
            .with_retry(Duration::from_secs(settings.close_retry_seconds.max(1)));
        let db = common::database::connect(
            settings.revenue_database_url.as_ref(),
            &settings.data_dir,
            "revenue.db",
            settings.revenue_database_max_connections,
        )
        .await?;
        common::database::migrate_exclusively(&db, || Migrator::up(&db, None))
            .await
            .context("migrating the revenue database")?;
        for table in crate::MONTHLY_TABLES {
            if let Err(e) =
                common::partitions::ensure_ahead(&db, table, settings.platform_time.today()).await
            {
                // Not needed yet (the current month is made when first
                // written): a busy table must not keep the service down.
                tracing::warn!(error = %e, table, "making the months ahead failed");
            }
        }
        let keys = Arc::new(KeyCache::from_user_service(
            &settings.revenue_user_service_url,
            &settings.discovery,
            credential.clone(),
            settings.jwt_issuer.clone(),
            settings.jwt_audience.clone(),
        )?);
        let streaming = Downstream::new(
            names::STREAMING,
            &settings.revenue_streaming_service_url,
            &settings.discovery,
            Arc::new(|e: Endpoint| e.connect_timeout(Duration::from_secs(1)).tcp_nodelay(true)),
        )?
        .channel();
        let streaming = common::grpc::client(streaming, &credential)?;
        let limits = RunLimits {
            call_timeout: Duration::from_secs(settings.settlement_call_timeout_seconds.max(1)),
            retries: settings.settlement_retries,
            lease: Duration::from_secs(settings.settlement_lease_seconds.max(3)),
            final_after_days: settings.settlement_final_after_days,
            late_poll: Duration::from_secs(settings.settlement_late_poll_seconds),
        };
        let cache = match &settings.revenue_redis_url {
            Some(url) => ReportCache::redis(
                url.expose_secret(),
                &settings.revenue_redis_prefix,
                settings.report_cache_ttl_seconds,
            )?,
            None => ReportCache::disabled(),
        };
        let metrics = crate::metrics::RevenueMetrics::new();
        metrics.register_pools(&db, &cache)?;
        let source = GrpcCounts::new(
            streaming,
            breaker(
                Duration::from_secs(settings.settlement_breaker_open_seconds.max(1)),
                metrics.breaker_instrument(),
            ),
            limits.call_timeout,
        );
        let settler = Settler::new(
            db.clone(),
            Arc::new(source),
            settings.platform_time,
            limits,
            cache.clone(),
        )
        .observed_by(metrics.clone());
        let metrics = match settings.revenue_metrics_addr {
            Some(addr) => Some((
                common::metrics::MetricsListener::bind(addr)?,
                metrics.registry,
            )),
            None => None,
        };
        let api = RevenueApi::new(db.clone(), settler.clone(), keys, cache)
            .allowing_insecure_webhooks(settings.webhook_allow_insecure_urls);
        let listener = TcpListener::bind(settings.revenue_grpc_addr)
            .await
            .with_context(|| format!("binding {}", settings.revenue_grpc_addr))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            api,
            settler,
            schedule,
            close_schedule,
            db,
            settings,
            metrics,
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

    /// Serves until Ctrl-C or SIGTERM.
    ///
    /// # Errors
    /// Server failures.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(common::shutdown::signal()).await
    }

    /// Serves, runs the settlement worker and the daily schedule, until
    /// `stop` resolves.
    ///
    /// # Errors
    /// Server failures.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let credential = self
            .settings
            .service_credential
            .clone()
            .context("SERVICE_CREDENTIAL is required")?;
        // The gRPC health status follows the database. Not Redis: it only
        // caches reports, which are computed when it is away
        // (docs/decisions.md), so its loss must not drain every replica.
        let dependencies =
            common::grpc::health::Dependencies::none().with_database(self.db.clone());
        let metrics = match self.metrics {
            Some((listener, registry)) => Some(listener.spawn(registry)?),
            None => None,
        };
        let (stopped_tx, stopped_rx) = watch::channel(false);
        let until_stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let worker = tokio::spawn(
            self.settler
                .clone()
                .run_worker(until_stopped(stopped_rx.clone())),
        );
        let schedule = tokio::spawn(
            self.schedule
                .run(self.settler.clone(), until_stopped(stopped_rx.clone())),
        );
        let deliverer = crate::webhooks::Deliverer::new(
            self.db.clone(),
            crate::webhooks::RetryPolicy {
                first_delay: Duration::from_millis(self.settings.webhook_retry_first_delay_ms),
                window: Duration::from_secs(self.settings.webhook_retry_window_seconds),
            },
            self.settings.webhook_allow_insecure_urls,
            Duration::from_millis(self.settings.webhook_poll_ms.max(10)),
        )?;
        let deliveries = tokio::spawn(deliverer.run(until_stopped(stopped_rx.clone())));
        let close_schedule = tokio::spawn(self.close_schedule.run(
            self.db,
            self.settler.clone(),
            until_stopped(stopped_rx),
        ));
        let served = common::grpc::serve(
            self.listener,
            credential,
            RevenueServiceServer::new(self.api),
            self.settings.grpc,
            dependencies,
            stop,
        )
        .await;
        let _ = stopped_tx.send(true);
        let _ = worker.await;
        let _ = schedule.await;
        let _ = close_schedule.await;
        let _ = deliveries.await;
        drop(metrics);
        served?;
        Ok(())
    }
}
