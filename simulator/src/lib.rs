//! A day on the platform, end to end: the simulator signs up creators and
//! viewers, uploads videos, creates ads and plays and pauses through the
//! gateway exactly as frontends do, then settles the day and checks every
//! video's settled counts and amounts against its own reading of SPEC §4–§6
//! ([`rules`]). Seeded and reproducible; [`run`] returns the differences
//! (none, when the platform is right).
//!
//! The streaming service must run on a development clock
//! (`START@ANCHORxSPEED`, the same text the simulator is given) so that a
//! day passes in minutes; the simulator computes the clock's reading itself.

mod admin;
mod check;
pub mod client;
pub mod close;
pub mod plan;
pub mod report;
pub mod rules;
mod session;
mod setup;
mod tiers;
mod viewer;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use chrono::{NaiveDate, TimeZone};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use tokio::sync::Semaphore;

use crate::{
    client::Gateway,
    plan::{Plan, Scale, Who},
    report::{Checked, Latency, Summary},
    rules::{Rules, SimClock, Tallies},
    setup::{Accounts, Catalog},
};

/// How to run a simulation.
#[derive(Debug, Clone)]
pub struct Options {
    /// The gateway, e.g. `http://127.0.0.1:8080`.
    pub gateway: String,
    /// The streaming service's development clock.
    pub clock: SimClock,
    /// The day to simulate and settle; default: the clock's day when the
    /// simulation starts.
    pub day: Option<NaiveDate>,
    /// Seed of the plan.
    pub seed: u64,
    /// Scale of the day.
    pub scale: Scale,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// An admin account (settles, imports, reads every creator's revenue).
    pub admin_email: String,
    /// Its password.
    pub admin_password: String,
    /// The services' dedupe window, seconds (`DEDUPE_WINDOW_SECONDS`).
    pub dedupe_window_seconds: i64,
    /// The platform time zone.
    pub zone: chrono_tz::Tz,
    /// Import history for the three most popular videos so that the day
    /// crosses tier boundaries (SPEC §6).
    pub history: bool,
    /// How long to wait for the settlement (the watermark, then the run).
    pub settle_timeout: Duration,
    /// Show a progress bar on the terminal.
    pub progress: bool,
    /// After the day: settle the rest of its month, close the month and
    /// check every statement and the withholding (SPEC §11.4). The month
    /// must be over and all of it final (`deploy/simulate.sh` picks such a
    /// day).
    pub close_month: bool,
    /// Retry a request that failed in transport or with a 5xx for up to
    /// this long, as a player would, and read the effect of the lost
    /// attempt from the retry's answer (`deploy/chaos.sh`); `None`: a
    /// failed request is a difference.
    pub retry_failures: Option<Duration>,
}

/// What the simulation found.
pub struct Outcome {
    /// The day simulated.
    pub day: NaiveDate,
    /// Counts and timings.
    pub summary: Summary,
    /// The checked settlement: tables and differences.
    pub checked: Checked,
    /// The month's close, when asked for.
    pub closed: Option<close::ClosedMonth>,
}

/// A video as uploaded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Uploaded {
    pub id: i64,
    pub creator_user: i64,
    pub duration: i64,
}

/// A signed-in account.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub user_id: i64,
    pub tokens: client::Tokens,
    pub obtained: std::time::Instant,
}

/// What every viewer task shares.
pub(crate) struct Shared {
    pub gateway: Gateway,
    pub clock: SimClock,
    pub rules: Rules,
    pub permits: Semaphore,
    /// Simulated intervals no request may start in (around midnights).
    pub guards: Vec<(i64, i64)>,
    pub play_latency: Mutex<Histogram<u64>>,
    pub pause_latency: Mutex<Histogram<u64>>,
    pub progress: ProgressBar,
    pub videos: Vec<Uploaded>,
    /// [`Options::retry_failures`].
    pub retry_failures: Option<Duration>,
    /// Failed attempts, when and how.
    pub failures: report::FailureLog,
}

/// Runs the whole day and checks it.
///
/// # Errors
/// Setup or settlement failures (an unreachable gateway, a refused admin, a
/// run that never succeeds). Differences from the rules are not errors:
/// they are in the outcome.
pub async fn run(options: Options) -> anyhow::Result<Outcome> {
    let gateway = Gateway::new(&options.gateway, options.concurrency)?;
    let rules = Rules {
        window_ms: options.dedupe_window_seconds * 1_000,
        slot_seconds: 300,
        slack_seconds: 5,
        zone: options.zone,
    };
    let clock = options.clock;
    let day = options.day.unwrap_or_else(|| rules.day_of(clock.now_ms()));
    let (day_start, day_end) = day_bounds(options.zone, day)?;
    let setup_started = std::time::Instant::now();
    let admin = admin::login(&gateway, &options, "logging in as the admin").await?;
    let until = day_end + 30 * 60_000;
    let Catalog {
        mut plan,
        accounts,
        videos,
        before,
    } = setup::catalog(&gateway, &admin, &options, day, day_start, until).await?;
    let setup = setup_started.elapsed();

    // The day's traffic, from now (or the day's start) to just past its end.
    // A day already over would put every play on the next day and leave
    // nothing to check: that is an error, not a pass.
    anyhow::ensure!(
        clock.now_ms() < day_end - 60_000 * clock.speed().min(60),
        "{day} is (nearly) over on the clock before its traffic starts: give the clock more lead"
    );
    plan.squeeze(day_start, clock.now_ms(), until);
    let guard = (2_000 * clock.speed()).max(60_000);
    let progress = progress_bar(options.progress, plan.planned_plays());
    let shared = Arc::new(Shared {
        gateway: gateway.clone(),
        clock,
        rules,
        permits: Semaphore::new(options.concurrency.max(1)),
        guards: [day_start, day_end]
            .into_iter()
            .map(|m| (m - guard, m + guard))
            .collect(),
        play_latency: Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3)?),
        pause_latency: Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3)?),
        progress,
        videos: videos.clone(),
        retry_failures: options.retry_failures,
        failures: report::FailureLog::default(),
    });
    let traffic_started = std::time::Instant::now();
    let (tallies, mut summary, differences) = traffic(&shared, &plan, &accounts).await?;
    summary.setup = setup;
    summary.traffic = traffic_started.elapsed();
    summary.play_latency = latency(&shared.play_latency);
    summary.pause_latency = latency(&shared.pause_latency);
    summary.failures = shared.failures.read();

    // The admin's access token has likely expired during a long day (SPEC
    // §3: 15 minutes): sign in again.
    let admin = admin::login(&gateway, &options, "logging in as the admin again").await?;
    let settle_started = std::time::Instant::now();
    let settling = admin::Settling {
        timeout: options.settle_timeout,
        requeue_failed: options.retry_failures.is_some(),
    };
    let run = admin::settle(&gateway, &admin, day, settling).await?;
    summary.settlement = settle_started.elapsed();
    summary.run_id = run.run_id;
    let mut checked = check::check(
        &gateway,
        &admin,
        day,
        &videos,
        &accounts.creator_names(),
        &tallies,
        &before,
        options.concurrency,
    )
    .await?;
    checked.differences.splice(0..0, differences);
    check_run_rows(&run, &mut checked);
    let closed = if options.close_month {
        Some(
            close::close_and_check(
                &gateway,
                &admin,
                day,
                &videos,
                &before,
                settling,
                &mut checked.differences,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(Outcome {
        day,
        summary,
        checked,
        closed,
    })
}

/// The midnights (Unix milliseconds) that start `day` and the day after in
/// the platform time `zone` (SPEC §2).
fn day_bounds(zone: chrono_tz::Tz, day: NaiveDate) -> anyhow::Result<(i64, i64)> {
    let next = day.succ_opt().context("day out of range")?;
    let midnight = |d: NaiveDate| -> i64 {
        zone.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map_or(0, |t| t.timestamp_millis())
    };
    Ok((midnight(day), midnight(next)))
}

/// A bar of the planned plays, drawn on the terminal if `show`.
fn progress_bar(show: bool, planned_plays: usize) -> ProgressBar {
    let progress = if show {
        ProgressBar::new(planned_plays as u64)
    } else {
        ProgressBar::with_draw_target(Some(planned_plays as u64), ProgressDrawTarget::hidden())
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {pos}/{len} plays ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress
}

/// Plays the plan: one task per person, all at once, each waiting for its
/// visits' times. Returns their tallies, their counts (in a summary) and
/// the differences they found.
async fn traffic(
    shared: &Arc<Shared>,
    plan: &Plan,
    accounts: &Accounts,
) -> anyhow::Result<(Tallies, Summary, Vec<String>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for audience in plan.audience.clone() {
        let account = match audience.who {
            Who::Creator(n) => Some(accounts.creators[n].clone()),
            Who::Viewer(n) => Some(accounts.viewers[n].clone()),
            Who::Anonymous => None,
        };
        tasks.spawn(viewer::watch(shared.clone(), audience, account));
    }
    let mut tallies = Tallies::new();
    let mut summary = Summary::default();
    let mut differences = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let done = done.context("a viewer task panicked")?;
        for (key, t) in done.tallies {
            tallies.entry(key).or_default().add(&t);
        }
        summary.add(&done.stats);
        differences.extend(done.differences);
    }
    shared.progress.finish_and_clear();
    Ok((tallies, summary, differences))
}

/// The percentiles of a histogram of latencies (microseconds).
fn latency(histogram: &Mutex<Histogram<u64>>) -> Latency {
    histogram
        .lock()
        .map(|h| Latency::of(&h))
        .unwrap_or_default()
}

/// The run must report at least a row for every video with settled rows.
fn check_run_rows(run: &client::Run, checked: &mut Checked) {
    if run.rows.unwrap_or(0) < i64::try_from(checked.rows).unwrap_or(i64::MAX) {
        checked.differences.push(format!(
            "the run reports {} rows, but {} videos have settled rows",
            run.rows.unwrap_or(0),
            checked.rows
        ));
    }
}
