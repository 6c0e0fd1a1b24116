//! Building and running the gateway's HTTP server.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use actix_web::{
    App, HttpRequest, HttpServer,
    dev::Server,
    http::StatusCode,
    middleware::{Condition, from_fn},
    web,
};
use actix_web_prom::PrometheusMetricsBuilder;
use anyhow::Context;
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_scalar::{Scalar, Servable};

use crate::{
    auth::JwksCache,
    config::Settings,
    downstream::{DownstreamConfig, Downstreams},
    error::ApiError,
    rate_limit::AuthRateLimits,
    request_id,
};

/// What the handlers of one HTTP worker share.
pub struct AppState {
    /// The settings the gateway started with.
    pub settings: Arc<Settings>,
    /// gRPC clients, this worker's own connections.
    pub downstreams: Downstreams,
    /// The user service's public keys (one cache for all workers).
    pub jwks: Arc<JwksCache>,
    /// Sign-up and login limits (shared by all workers).
    pub limits: AuthRateLimits,
    /// Studio sessions (one store for all workers).
    pub sessions: crate::studio::session::SessionStore,
    /// Rendered `/api/v1/revenues` answers (one store for all workers).
    pub report_bodies: crate::report_bodies::ReportBodies,
    /// Set once the gateway is stopping: `/readyz` answers 503 while the
    /// last requests drain.
    pub draining: Arc<AtomicBool>,
}

/// A built gateway, bound to its ports.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    metrics_server: Server,
    metrics_addr: SocketAddr,
    draining: Arc<AtomicBool>,
    drain: Duration,
}

impl Application {
    /// Binds the port and builds the server; downstreams are dialled lazily.
    ///
    /// # Errors
    /// Port in use; malformed downstream URL.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(settings.gateway_addr)
            .with_context(|| format!("binding {}", settings.gateway_addr))?;
        let addr = listener.local_addr()?;
        let downstream_config = DownstreamConfig::new(&settings)?;
        let jwks = Arc::new(JwksCache::new(
            downstream_config.connect_lazy(),
            settings.jwt_issuer.clone(),
            settings.jwt_audience.clone(),
            Duration::from_secs(settings.gateway_jwks_refetch_seconds),
        ));
        let limits = AuthRateLimits::new(settings.auth_rate_limit_per_minute);
        let sessions = match &settings.gateway_redis_url {
            Some(url) => {
                use secrecy::ExposeSecret;
                crate::studio::session::SessionStore::redis(url.expose_secret())
                    .context("GATEWAY_REDIS_URL")?
            }
            None => crate::studio::session::SessionStore::memory(),
        };
        let report_bodies =
            crate::report_bodies::ReportBodies::new(settings.gateway_report_cache_bytes);
        let draining = Arc::new(AtomicBool::new(false));
        let drain = Duration::from_secs(settings.gateway_drain_seconds);
        let shared_settings = Arc::new(settings.clone());
        // The API listener records the metrics; only the metrics listener
        // serves them.
        let metrics = PrometheusMetricsBuilder::new("gateway")
            .mask_unmatched_patterns("UNKNOWN")
            .build()
            .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
        if sessions.pool_use().is_some() {
            // The Studio's sessions: `redis_pool_*` (SPEC §10: pool use).
            let sessions = sessions.clone();
            common::metrics::PoolUse::register(&metrics.registry, "redis", move || {
                sessions.pool_use().unwrap_or_default()
            })?;
        }
        let (metrics_server, metrics_addr) =
            metrics_server(settings.gateway_metrics_addr, metrics.registry.clone())?;
        let body_limit = settings.gateway_body_limit_bytes;
        let cors_origins = settings.gateway_cors_origins.clone();
        let import_limit = settings.gateway_import_limit_bytes;
        anyhow::ensure!(
            import_limit <= common::grpc::MAX_IMPORT_BYTES,
            "GATEWAY_IMPORT_LIMIT_BYTES may be at most {} (what the streaming service accepts)",
            common::grpc::MAX_IMPORT_BYTES
        );
        let workers_draining = draining.clone();
        let mut server = HttpServer::new(move || {
            // Runs once on each worker thread.
            let state = web::Data::new(AppState {
                settings: shared_settings.clone(),
                downstreams: downstream_config.connect_lazy(),
                jwks: jwks.clone(),
                limits: limits.clone(),
                sessions: sessions.clone(),
                report_bodies: report_bodies.clone(),
                draining: workers_draining.clone(),
            });
            // The last `wrap` is the outermost: the request id is assigned
            // first, so the access log and every error envelope name it.
            App::new()
                // Innermost: a refused preflight is put in the envelope,
                // which keeps an allowed origin's CORS headers. With no
                // origins configured there is no CORS at all (an `OPTIONS`
                // is routed like any other method).
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    crate::cors::middleware(&cors_origins),
                ))
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    from_fn(crate::cors::only_for_allowed_origins),
                ))
                .wrap(from_fn(crate::http_errors::middleware))
                .wrap(from_fn(close_when_draining))
                .wrap(TracingLogger::<request_id::RequestSpan>::new())
                .wrap(metrics.clone())
                .wrap(from_fn(request_id::middleware))
                .app_data(state)
                .app_data(web::PayloadConfig::new(body_limit))
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|e, _| ApiError::bad_field("query", e.to_string()).into()),
                )
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|e, _| ApiError::bad_field("path", e.to_string()).into()),
                )
                .configure(|cfg| crate::routes::configure(cfg, import_limit))
                .configure(crate::studio::routes::configure)
                .service(Scalar::with_url("/docs", crate::openapi::ApiDoc::openapi()))
                .default_service(web::to(not_found))
        })
        // actix keeps the system's default (Nagle on): the last small write
        // of a large answer then waits for the client's delayed ACK, up to
        // 40 ms on Linux.
        .tcp_nodelay(true)
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(10);
        if let Some(workers) = settings.gateway_workers {
            server = server.workers(workers);
        }
        Ok(Self {
            server: server.run(),
            addr,
            metrics_server,
            metrics_addr,
            draining,
            drain,
        })
    }

    /// Where `/metrics` is served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// Where HTTP listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until Ctrl-C or SIGTERM, then drains connections.
    ///
    /// # Errors
    /// Server failures.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(common::shutdown::signal()).await
    }

    /// Serves until `stop` resolves; then `/readyz` answers 503 for
    /// `GATEWAY_DRAIN_SECONDS` while requests are still served (balancers
    /// stop sending), and the server stops, finishing the requests in
    /// flight.
    ///
    /// # Errors
    /// Server failures.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let metrics_handle = self.metrics_server.handle();
        let (draining, drain) = (self.draining.clone(), self.drain);
        tokio::spawn(async move {
            stop.await;
            draining.store(true, Ordering::SeqCst);
            tracing::info!(
                drain_seconds = drain.as_secs_f64(),
                "stopping: /readyz answers 503 while requests drain"
            );
            tokio::time::sleep(drain).await;
            handle.stop(true).await;
            metrics_handle.stop(true).await;
        });
        let (served, _) = tokio::join!(self.server, self.metrics_server);
        served?;
        Ok(())
    }
}

/// While the gateway drains (SIGTERM, `GATEWAY_DRAIN_SECONDS`), every
/// answer closes its connection: a client then opens a new connection for
/// its next request (which a balancer sends to another replica, or which
/// is refused once the listener has closed) instead of sending it on a
/// kept-alive connection that the stop would close under it.
async fn close_when_draining(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let draining = res
        .request()
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.draining.load(Ordering::SeqCst));
    if draining {
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(res)
}

/// The `/metrics` listener (SPEC §10): one worker serving `registry`, which
/// the API listener records into, in Prometheus's text format.
fn metrics_server(
    addr: SocketAddr,
    registry: prometheus::Registry,
) -> anyhow::Result<(Server, SocketAddr)> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("binding metrics {addr}"))?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        let registry = registry.clone();
        App::new().route(
            "/metrics",
            web::get().to(move || {
                let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather());
                async move {
                    match text {
                        Ok(text) => actix_web::HttpResponse::Ok()
                            .content_type(prometheus::TEXT_FORMAT)
                            .body(text),
                        Err(e) => {
                            tracing::error!(error = %e, "encoding the metrics");
                            actix_web::HttpResponse::InternalServerError().finish()
                        }
                    }
                }
            }),
        )
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .run();
    Ok((server, addr))
}

async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        common::error::ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}
