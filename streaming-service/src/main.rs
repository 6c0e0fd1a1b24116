//! `streaming-service`: runs the streaming service on its own, configured by environment
//! variables (see docs/configuration.md); registers itself in Consul when
//! `CONSUL_HTTP_ADDR` is set and deregisters on Ctrl-C or SIGTERM.
//!
//! `streaming-service archive export --month 2026-10 --file counts-2026-10.parquet`
//! moves a past month of `daily_counts` to a Parquet file and drops its
//! partition, keeping each video's sums over it for the cumulative counts;
//! `streaming-service archive restore --file counts-2026-10.parquet` brings
//! it back (issue 19; `docs/operations.md`, "Retention").

use anyhow::Context;
use clap::{Parser, Subcommand};
use common::{
    archive::Command as ArchiveCommand,
    discovery::{
        consul::{CheckKind, Registration, deregister_on_signal},
        names,
    },
};
use streaming_service::{Application, Settings, daily_counts::archive};

/// The streaming service, or one of its maintenance commands.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Retention of `daily_counts` months (PostgreSQL): oldest first out,
    /// newest first back.
    Archive {
        #[command(subcommand)]
        action: ArchiveCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = common::telemetry::init();
    let settings: Settings = common::config::load()?;
    if let Some(Command::Archive { action }) = cli.command {
        let db = common::database::connect(
            settings.streaming_database_url.as_ref(),
            &settings.data_dir,
            "streaming.db",
            1,
        )
        .await?;
        let moved = match action {
            ArchiveCommand::Export { month, file } => {
                let time = &settings.platform_time;
                archive::export_month(&db, month, (time.today(), time), &file)
                    .await
                    .with_context(|| format!("archiving {month} to {}", file.display()))?
            }
            ArchiveCommand::Restore { file } => archive::restore_month(&db, &file)
                .await
                .with_context(|| format!("restoring {}", file.display()))?,
        };
        println!(
            "{}: {} rows, {} views",
            moved.month.format("%Y-%m"),
            moved.rows,
            moved.checksum
        );
        return Ok(());
    }
    let discovery = settings.discovery.clone();
    let app = Application::build(settings).await?;
    tracing::info!(addr = %app.local_addr(), "streaming-service listening");
    let registration = Registration::start(
        &discovery,
        names::STREAMING,
        app.local_addr(),
        CheckKind::Grpc,
    )
    .await?;
    app.run_until(deregister_on_signal(registration)).await
}
