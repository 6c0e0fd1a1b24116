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

pub mod client;
pub mod plan;
pub mod report;
pub mod rules;
mod viewer;

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context;
use chrono::{NaiveDate, TimeZone};
use futures::{StreamExt, TryStreamExt, stream};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use tokio::sync::Semaphore;

use crate::{
    client::Gateway,
    plan::{Plan, Scale, Who},
    report::{Checked, Summary},
    rules::{Rules, SimClock, Tallies},
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
}

/// What the simulation found.
pub struct Outcome {
    /// The day simulated.
    pub day: NaiveDate,
    /// Counts and timings.
    pub summary: Summary,
    /// The checked settlement: tables and differences.
    pub checked: Checked,
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
}

const PASSWORD: &str = "simulated-password";

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
    let next = day.succ_opt().context("day out of range")?;
    let midnight = |d: NaiveDate| -> i64 {
        options
            .zone
            .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map_or(0, |t| t.timestamp_millis())
    };
    let (day_start, day_end) = (midnight(day), midnight(next));
    let setup_started = std::time::Instant::now();
    let admin_ip = std::net::Ipv4Addr::new(192, 0, 2, 1);
    let admin = gateway
        .login(&options.admin_email, &options.admin_password, admin_ip)
        .await
        .context("logging in as the admin")?
        .access_token;

    // The catalog: ads running over the day (and one expired, one not yet
    // started, which must never be served), creators and their videos.
    let run_tag = chrono::Utc::now().timestamp_millis();
    create_ads(&gateway, &admin, day).await?;
    let scale = options.scale;
    let until = day_end + 30 * 60_000;
    let mut plan = Plan::new(options.seed, scale, day_start, day_start, until)?;
    let accounts = sign_up_all(&gateway, &plan, run_tag, options.concurrency).await?;
    let videos = upload_all(&gateway, &plan, &accounts, options.concurrency).await?;
    let before = if options.history {
        import_history(&gateway, &admin, &videos, day).await?
    } else {
        HashMap::new()
    };
    let setup = setup_started.elapsed();

    // The day's traffic, from now (or the day's start) to just past its end.
    plan.squeeze(day_start, clock.now_ms(), until);
    let guard = (2_000 * clock.speed()).max(60_000);
    let progress = if options.progress {
        ProgressBar::new(plan.planned_plays() as u64)
    } else {
        ProgressBar::with_draw_target(
            Some(plan.planned_plays() as u64),
            ProgressDrawTarget::hidden(),
        )
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {pos}/{len} plays ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
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
    });
    let traffic_started = std::time::Instant::now();
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
    summary.setup = setup;
    summary.traffic = traffic_started.elapsed();
    summary.play_latency = shared
        .play_latency
        .lock()
        .map(|h| report::Latency::of(&h))
        .unwrap_or_default();
    summary.pause_latency = shared
        .pause_latency
        .lock()
        .map(|h| report::Latency::of(&h))
        .unwrap_or_default();

    // The admin's access token has likely expired during a long day (SPEC
    // §3: 15 minutes): sign in again.
    let admin = gateway
        .login(&options.admin_email, &options.admin_password, admin_ip)
        .await
        .context("logging in as the admin again")?
        .access_token;
    let settle_started = std::time::Instant::now();
    let run = settle(&gateway, &admin, day, options.settle_timeout).await?;
    summary.settlement = settle_started.elapsed();
    summary.run_id = run.run_id;
    let mut checked = report::check(
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
    if run.rows.unwrap_or(0) < i64::try_from(checked.rows).unwrap_or(i64::MAX) {
        checked.differences.push(format!(
            "the run reports {} rows, but {} videos have settled rows",
            run.rows.unwrap_or(0),
            checked.rows
        ));
    }
    Ok(Outcome {
        day,
        summary,
        checked,
    })
}

/// Accounts made for the day.
pub(crate) struct Accounts {
    pub creators: Vec<Account>,
    pub viewers: Vec<Account>,
}

impl Accounts {
    fn creator_names(&self) -> Vec<(i64, String)> {
        self.creators
            .iter()
            .enumerate()
            .map(|(n, a)| (a.user_id, format!("creator {}", n + 1)))
            .collect()
    }
}

async fn create_ads(gateway: &Gateway, admin: &str, day: NaiveDate) -> anyhow::Result<()> {
    let d = |days: i64| (day + chrono::Duration::days(days)).to_string();
    let ads = [
        ("Noodle brand, autumn", d(-1), d(2)),
        ("Phone launch", d(-7), d(7)),
        ("Bank app", d(-1), d(30)),
        ("Last summer's sale (expired)", d(-60), d(-2)),
        ("Next year's fair (not started)", d(30), d(60)),
    ];
    for (title, start, end) in ads {
        let _: serde_json::Value = gateway
            .call(
                reqwest::Method::POST,
                "/api/v1/ads",
                Some(admin),
                None,
                Some(&serde_json::json!({
                    "title": title, "duration_seconds": 15, "start_date": start, "end_date": end
                })),
            )
            .await
            .context("creating an ad")?;
    }
    Ok(())
}

async fn sign_up_all(
    gateway: &Gateway,
    plan: &Plan,
    run_tag: i64,
    concurrency: usize,
) -> anyhow::Result<Accounts> {
    let make = |role: &'static str, n: usize, ip: std::net::Ipv4Addr| {
        let gateway = gateway.clone();
        async move {
            let email = format!("{role}{n}-{run_tag}@sim.example");
            let name = format!("{role} {}", n + 1);
            let user_id = gateway.sign_up(&email, PASSWORD, &name, role, ip).await?;
            let tokens = gateway.login(&email, PASSWORD, ip).await?;
            anyhow::Ok(Account {
                user_id,
                tokens,
                obtained: std::time::Instant::now(),
            })
        }
    };
    let ip_of = |who: Who| {
        plan.audience
            .iter()
            .find(|a| a.who == who)
            .map_or(std::net::Ipv4Addr::LOCALHOST, |a| a.addresses[0])
    };
    let creators =
        stream::iter((0..plan_creators(plan)).map(|n| make("creator", n, ip_of(Who::Creator(n)))))
            .buffered(concurrency.clamp(1, 8))
            .try_collect()
            .await
            .context("signing up creators")?;
    let viewers =
        stream::iter((0..plan_viewers(plan)).map(|n| make("viewer", n, ip_of(Who::Viewer(n)))))
            .buffered(concurrency.clamp(1, 8))
            .try_collect()
            .await
            .context("signing up viewers")?;
    Ok(Accounts { creators, viewers })
}

fn plan_creators(plan: &Plan) -> usize {
    plan.audience
        .iter()
        .filter(|a| matches!(a.who, Who::Creator(_)))
        .count()
}

fn plan_viewers(plan: &Plan) -> usize {
    plan.audience
        .iter()
        .filter(|a| matches!(a.who, Who::Viewer(_)))
        .count()
}

async fn upload_all(
    gateway: &Gateway,
    plan: &Plan,
    accounts: &Accounts,
    concurrency: usize,
) -> anyhow::Result<Vec<Uploaded>> {
    stream::iter(plan.videos.iter().map(|v| {
        let creator = &accounts.creators[v.creator];
        let gateway = gateway.clone();
        async move {
            let video: serde_json::Value = gateway
                .call(
                    reqwest::Method::POST,
                    "/api/v1/videos",
                    Some(&creator.tokens.access_token),
                    None,
                    Some(&serde_json::json!({
                        "title": v.title, "duration_seconds": v.duration_seconds,
                        "description": "Uploaded by the traffic simulator."
                    })),
                )
                .await?;
            anyhow::Ok(Uploaded {
                id: video["video_id"]
                    .as_i64()
                    .context("upload answered no video_id")?,
                creator_user: creator.user_id,
                duration: v.duration_seconds,
            })
        }
    }))
    .buffered(concurrency.clamp(1, 16))
    .try_collect()
    .await
    .context("uploading videos")
}

/// Imports the day before for the three most popular videos, so that the
/// day's views and ad views cross the 100,000, 500,000 and 1,000,000 tier
/// boundaries. Returns (views, ad views) before the day per video id.
async fn import_history(
    gateway: &Gateway,
    admin: &str,
    videos: &[Uploaded],
    day: NaiveDate,
) -> anyhow::Result<HashMap<i64, (i64, i64)>> {
    let before = day.pred_opt().context("day out of range")?;
    let near = [(99_950, 99_990), (499_980, 499_995), (999_990, 999_999)];
    let mut csv = String::from("video_id,day,views,watch_seconds,ad_views\n");
    let mut history = HashMap::new();
    for (video, (views, ads)) in videos.iter().zip(near) {
        csv.push_str(&format!(
            "{},{before},{views},{},{ads}\n",
            video.id,
            views * 300
        ));
        history.insert(video.id, (views, ads));
    }
    gateway
        .import(admin, csv)
        .await
        .context("importing history")?;
    Ok(history)
}

/// Queues the day's settlement and waits for it: a run that fails because
/// the day is not all written back yet (`error_code` `not_written_back`) is
/// queued again.
async fn settle(
    gateway: &Gateway,
    admin: &str,
    day: NaiveDate,
    timeout: Duration,
) -> anyhow::Result<client::Run> {
    let deadline = std::time::Instant::now() + timeout;
    let day = day.to_string();
    loop {
        let run_id = gateway.settle(admin, &day).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let run = gateway.run(admin, run_id).await?;
            match run.status {
                client::RunStatus::Succeeded => return Ok(run),
                client::RunStatus::Failed => {
                    let error = run.error.clone().unwrap_or_default();
                    anyhow::ensure!(
                        run.error_code == Some(client::RunErrorCode::NotWrittenBack)
                            && std::time::Instant::now() < deadline,
                        "settlement run {run_id} of {day} failed: {error}"
                    );
                    tracing::info!(%day, "waiting for the write-back to pass the day's end");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
                _ => anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "settlement run {run_id} of {day} still {:?} after {timeout:?}",
                    run.status
                ),
            }
        }
    }
}
