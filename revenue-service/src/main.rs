//! `revenue-service`: runs the revenue service on its own, configured by
//! environment variables (see README.md).

use revenue_service::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::telemetry::init();
    let settings: Settings = common::config::load()?;
    let app = Application::build(settings).await?;
    tracing::info!(addr = %app.local_addr(), "revenue-service listening");
    app.run_until_stopped().await
}
