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
use stack::{Settings, Stack};

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
    /// Start every service on a fresh embedded store and a compressed
    /// clock, run the traffic simulator for a day (yesterday, platform
    /// time), settle it, print the day's top videos and creators, check
    /// every video against the rules, and stop. Exits 1 on a difference.
    Demo(DemoArgs),
    /// Development only: serve the streaming service alone, configured from
    /// the environment like the `streaming-service` binary, on a compressed
    /// clock (for simulations against separate processes; see
    /// `deploy/stack.sh`).
    DevStreaming {
        /// The clock, `START@ANCHORxSPEED` (RFC 3339 instants).
        #[arg(long)]
        dev_clock: streaming_service::clock::DevClock,
    },
}

/// The scale of the demo's day.
#[derive(clap::Args)]
struct DemoArgs {
    /// Wall-clock seconds a simulated day takes.
    #[arg(long, default_value_t = 60)]
    day_seconds: u32,
    /// Signed-in viewers.
    #[arg(long, default_value_t = 200)]
    viewers: usize,
    /// Videos.
    #[arg(long, default_value_t = 50)]
    videos: usize,
    /// Plays to aim for.
    #[arg(long, default_value_t = 3_000)]
    plays: usize,
    /// Seed of the day's plan.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = if matches!(cli.command, Command::Demo(_)) {
        common::telemetry::init_with_default("warn")
    } else {
        common::telemetry::init()
    };
    match cli.command {
        Command::Up => {
            let stack = Stack::build(all_in_one_settings()?).await?;
            println!("gateway listening on http://{}", stack.gateway_addr);
            println!("Studio: http://{}/studio/", stack.gateway_addr);
            common::shutdown::signal().await;
            stack.stop().await
        }
        Command::Demo(args) => demo(args).await,
        Command::DevStreaming { dev_clock } => {
            let mut settings: streaming_service::Settings =
                common::config::load().context("streaming-service settings")?;
            settings.dev_clock = Some(dev_clock);
            let app = streaming_service::Application::build(settings).await?;
            tracing::info!(addr = %app.local_addr(), %dev_clock, "streaming-service listening (gRPC, development clock)");
            app.run_until_stopped().await
        }
    }
}

/// The environment's settings with the all-in-one defaults: the signing
/// key generated under `DATA_DIR` on first start, and each gRPC service on
/// any free port unless its address is set.
fn all_in_one_settings() -> anyhow::Result<Settings> {
    let mut all = Settings::load()?;
    all.users.user_generate_signing_key = true;
    let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    if std::env::var_os("USER_GRPC_ADDR").is_none() {
        all.users.user_grpc_addr = any_port;
    }
    if std::env::var_os("STREAMING_GRPC_ADDR").is_none() {
        all.streaming.streaming_grpc_addr = any_port;
    }
    if std::env::var_os("REVENUE_GRPC_ADDR").is_none() {
        all.revenue.revenue_grpc_addr = any_port;
    }
    Ok(all)
}

/// The demo (see [`Command::Demo`]). Its data lives in `DATA_DIR/demo`,
/// emptied first.
async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (10..=86_400).contains(&args.day_seconds),
        "--day-seconds must be 10 to 86,400"
    );
    let speed = 86_400 / args.day_seconds;
    let mut all = all_in_one_settings()?;
    let zone = all.streaming.platform_time.zone();
    let data_dir = all.users.data_dir.join("demo");
    let _ = std::fs::remove_dir_all(&data_dir);
    let admin_email = "demo-admin@example.com".to_owned();
    let admin_password = format!("{}", uuid::Uuid::new_v4().simple());
    // A 5-minute dedupe window: at this speed the default 30 s would be a
    // few milliseconds of wall-clock time, less than a request takes.
    let dedupe_window_seconds = 300;
    let now = chrono::Utc::now();
    let day = all.streaming.platform_time.day_of(now) - chrono::Duration::days(1);
    // The clock reaches yesterday's midnight ten seconds from now: time
    // enough for the sign-ups and uploads.
    let clock = streaming_service::clock::DevClock {
        start: all.streaming.platform_time.start_of(day)
            - chrono::Duration::seconds(10 * i64::from(speed)),
        anchor: now,
        speed,
    };
    demo_overrides(
        &mut all,
        &data_dir,
        (&admin_email, &admin_password),
        clock,
        dedupe_window_seconds,
    );
    let stack = Stack::build(all).await?;
    println!(
        "Demo: all services on the embedded default under {}; gateway on http://{}",
        data_dir.display(),
        stack.gateway_addr
    );
    println!(
        "Studio, while the demo runs: http://{}/studio/ (admin: {admin_email}, password {admin_password})",
        stack.gateway_addr
    );
    println!(
        "Simulating {day} (platform time) at {speed}x: a day passes in {} s of wall-clock time.",
        args.day_seconds
    );
    let options = simulator::Options {
        gateway: format!("http://{}", stack.gateway_addr),
        clock: simulator::rules::SimClock::parse(&clock.to_string())?,
        day: Some(day),
        seed: args.seed,
        scale: simulator::plan::Scale {
            creators: args.videos.div_ceil(4).max(1),
            viewers: args.viewers,
            anonymous: args.viewers / 4,
            videos: args.videos.max(1),
            plays: args.plays,
        },
        concurrency: 32,
        admin_email,
        admin_password,
        dedupe_window_seconds: i64::from(dedupe_window_seconds),
        zone,
        history: args.videos >= 3,
        settle_timeout: std::time::Duration::from_secs(120),
        progress: true,
        // The demo's day is yesterday: its month is not over yet.
        close_month: false,
        retry_failures: None,
    };
    let outcome = simulator::run(options).await;
    stack.stop().await?;
    let outcome = outcome?;
    simulator::report::print(&outcome);
    if !outcome.checked.differences.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// The demo's settings over the all-in-one ones: everything embedded under
/// `data_dir` (SQLite, in-process counters, no Redis), the `admin`
/// account (e-mail, password), the accelerated `clock`, a `dedupe` window
/// (seconds) that holds at that speed, and a write-back and schedule that
/// keep up with it.
fn demo_overrides(
    all: &mut Settings,
    data_dir: &std::path::Path,
    admin: (&str, &str),
    clock: streaming_service::clock::DevClock,
    dedupe: u32,
) {
    for dir in [
        &mut all.users.data_dir,
        &mut all.streaming.data_dir,
        &mut all.revenue.data_dir,
    ] {
        *dir = data_dir.to_path_buf();
    }
    all.users.user_database_url = None;
    all.streaming.streaming_database_url = None;
    all.revenue.revenue_database_url = None;
    all.streaming.streaming_redis_url = None;
    all.revenue.revenue_redis_url = None;
    all.users.admin_email = Some(admin.0.to_owned());
    all.users.admin_password = Some(SecretString::from(admin.1.to_owned()));
    all.streaming.dev_clock = Some(clock);
    all.streaming.dedupe_window_seconds = dedupe;
    all.streaming.writeback_interval_seconds = 1;
    all.streaming.counter_event_lag_seconds = 2 * u64::from(clock.speed);
    all.revenue.settlement_watermark_poll_seconds = 1;
    all.gateway.gateway_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    all.gateway.gateway_metrics_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    all.gateway.gateway_trusted_proxies = vec![std::net::IpAddr::from([127, 0, 0, 1])];
    all.gateway.auth_rate_limit_per_minute = 0;
}
