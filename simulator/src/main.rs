//! `simulator`: a day of traffic against a running gateway, settled and
//! checked against SPEC §4–§6. Exits 1 on any difference.
//!
//! ```sh
//! simulator --gateway http://127.0.0.1:8080 --clock "$DEV_CLOCK" \
//!   --admin-email admin@example.com --admin-password admin-password \
//!   --viewers 200 --videos 50 --plays 4000
//! ```

use clap::Parser;
use simulator::{Options, plan::Scale, rules::SimClock};

#[derive(Parser)]
#[command(
    name = "simulator",
    version,
    about = "A day on the platform, checked against the rules"
)]
struct Cli {
    /// The gateway's base URL.
    #[arg(long, env = "SIM_GATEWAY", default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// The streaming service's development clock, START@ANCHORxSPEED (what
    /// `stack dev-streaming --dev-clock` was given).
    #[arg(long, env = "SIM_CLOCK")]
    clock: String,
    /// The day to simulate and settle (YYYY-MM-DD); default: the clock's
    /// day when the simulation starts.
    #[arg(long)]
    day: Option<chrono::NaiveDate>,
    /// Seed of the plan: the same seed and scale give the same day.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Creators (default: one per four videos).
    #[arg(long)]
    creators: Option<usize>,
    /// Signed-in viewers.
    #[arg(long, default_value_t = 200)]
    viewers: usize,
    /// Anonymous viewers (default: a quarter of the signed-in ones).
    #[arg(long)]
    anonymous: Option<usize>,
    /// Videos.
    #[arg(long, default_value_t = 50)]
    videos: usize,
    /// Plays to aim for (replays and resumes included).
    #[arg(long, default_value_t = 4_000)]
    plays: usize,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// An admin's email.
    #[arg(long, env = "ADMIN_EMAIL")]
    admin_email: String,
    /// The admin's password.
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: String,
    /// The services' DEDUPE_WINDOW_SECONDS.
    #[arg(long, env = "DEDUPE_WINDOW_SECONDS", default_value_t = 30)]
    dedupe_window_seconds: i64,
    /// The platform time zone.
    #[arg(long, env = "PLATFORM_TIME_ZONE", default_value = "Asia/Seoul")]
    platform_time_zone: chrono_tz::Tz,
    /// Skip the history import that makes the day cross tier boundaries.
    #[arg(long)]
    no_history: bool,
    /// After the day, settle the rest of its month, close it and check the
    /// statements and the withholding (SPEC §11.4); the month must be over
    /// and final.
    #[arg(long)]
    close_month: bool,
    /// Seconds to wait for the settlement.
    #[arg(long, default_value_t = 600)]
    settle_timeout: u64,
    /// Retry a play or pause that failed in transport or with a 5xx for up
    /// to this many seconds (faults injected on purpose: deploy/chaos.sh);
    /// 0: a failed request is a difference.
    #[arg(long, default_value_t = 0)]
    retry_failures: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let options = Options {
        gateway: cli.gateway,
        clock: SimClock::parse(&cli.clock)?,
        day: cli.day,
        seed: cli.seed,
        scale: Scale {
            creators: cli.creators.unwrap_or(cli.videos.div_ceil(4)).max(1),
            viewers: cli.viewers,
            anonymous: cli.anonymous.unwrap_or(cli.viewers / 4),
            videos: cli.videos.max(1),
            plays: cli.plays,
        },
        concurrency: cli.concurrency,
        admin_email: cli.admin_email,
        admin_password: cli.admin_password,
        dedupe_window_seconds: cli.dedupe_window_seconds,
        zone: cli.platform_time_zone,
        history: !cli.no_history,
        settle_timeout: std::time::Duration::from_secs(cli.settle_timeout),
        progress: true,
        close_month: cli.close_month,
        retry_failures: (cli.retry_failures > 0)
            .then(|| std::time::Duration::from_secs(cli.retry_failures)),
    };
    let outcome = simulator::run(options).await?;
    simulator::report::print(&outcome);
    if !outcome.checked.differences.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
