//! `stack`: the all-in-one mode (SPEC §1). Every service built so far runs in
//! this one process on the embedded default: SQLite files under `DATA_DIR`
//! (default `./data`), a signing key generated there on first start, and a
//! service credential generated per run unless `SERVICE_CREDENTIAL` is set.
//! The gateway listens on `GATEWAY_ADDR` (default 127.0.0.1:8080). Every
//! other setting is read from the environment as the separate binaries read
//! it.

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "stack",
    version,
    about = "Streaming Settlement Platform, all services in one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every service in this process until Ctrl-C.
    Up,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::telemetry::init();
    match Cli::parse().command {
        Command::Up => up().await,
    }
}

async fn up() -> anyhow::Result<()> {
    let mut users: user_service::Settings =
        common::config::load().context("user-service settings")?;
    let mut streaming: streaming_service::Settings =
        common::config::load().context("streaming-service settings")?;
    let mut revenue: revenue_service::Settings =
        common::config::load().context("revenue-service settings")?;
    let mut gateway: gateway::Settings = common::config::load().context("gateway settings")?;
    let credential = users.service_credential.clone().unwrap_or_else(|| {
        SecretString::from(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ))
    });
    users.service_credential = Some(credential.clone());
    users.user_generate_signing_key = true;
    if std::env::var_os("USER_GRPC_ADDR").is_none() {
        users.user_grpc_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    }
    let user_app = user_service::Application::build(users).await?;
    let user_url = format!("http://{}", user_app.local_addr());
    streaming.service_credential = Some(credential.clone());
    streaming.streaming_user_service_url = user_url.clone();
    if std::env::var_os("STREAMING_GRPC_ADDR").is_none() {
        streaming.streaming_grpc_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    }
    let streaming_app = streaming_service::Application::build(streaming).await?;
    let streaming_url = format!("http://{}", streaming_app.local_addr());
    revenue.service_credential = Some(credential.clone());
    revenue.revenue_user_service_url = user_url.clone();
    revenue.revenue_streaming_service_url = streaming_url.clone();
    if std::env::var_os("REVENUE_GRPC_ADDR").is_none() {
        revenue.revenue_grpc_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    }
    let revenue_app = revenue_service::Application::build(revenue).await?;
    gateway.service_credential = Some(credential);
    gateway.gateway_user_service_url = user_url;
    gateway.gateway_streaming_service_url = streaming_url;
    gateway.gateway_revenue_service_url = format!("http://{}", revenue_app.local_addr());
    let gateway_app = gateway::Application::build(gateway).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    tracing::info!(user_service = %user_app.local_addr(), "user-service listening (gRPC)");
    println!("gateway listening on http://{}", gateway_app.local_addr());
    tracing::info!(streaming_service = %streaming_app.local_addr(), "streaming-service listening (gRPC)");
    let user_task = tokio::spawn(user_app.run_until(stopped(stop_rx.clone())));
    let streaming_task = tokio::spawn(streaming_app.run_until(stopped(stop_rx.clone())));
    let revenue_task = tokio::spawn(revenue_app.run_until(stopped(stop_rx.clone())));
    let gateway_task = tokio::spawn(gateway_app.run_until(stopped(stop_rx)));
    common::shutdown::signal().await;
    let _ = stop_tx.send(true);
    gateway_task.await??;
    revenue_task.await??;
    streaming_task.await??;
    user_task.await??;
    Ok(())
}
