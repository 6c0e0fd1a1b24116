//! `gateway`: runs the gateway on its own, configured by environment
//! variables (see docs/configuration.md); registers itself in Consul when
//! `CONSUL_HTTP_ADDR` is set and deregisters on Ctrl-C or SIGTERM.

use common::discovery::{
    consul::{CheckKind, Registration, deregister_on_signal},
    names,
};
use gateway::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = common::telemetry::init();
    let settings: Settings = common::config::load()?;
    let discovery = settings.discovery.clone();
    let app = Application::build(settings).await?;
    tracing::info!(addr = %app.local_addr(), "gateway listening");
    let registration = Registration::start(
        &discovery,
        names::GATEWAY,
        app.local_addr(),
        CheckKind::Http("/healthz"),
    )
    .await?;
    app.run_until(deregister_on_signal(registration)).await
}
