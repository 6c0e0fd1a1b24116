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
    /// until the returned task is aborted.
    ///
    /// # Errors
    /// The listener cannot be handed to Tokio.
    pub fn spawn(self, registry: Registry) -> anyhow::Result<tokio::task::JoinHandle<()>> {
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
        Ok(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        }))
    }
}
