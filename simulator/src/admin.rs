//! What the simulator does as the admin: signs in, creates the day's ads,
//! imports history and settles the day (SPEC §6).

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use chrono::NaiveDate;

use crate::{
    Options, Uploaded,
    client::{self, Gateway},
};

/// Signs in as the admin of `options` and returns its access token; `what`
/// says what for, should it fail.
pub(crate) async fn login(
    gateway: &Gateway,
    options: &Options,
    what: &'static str,
) -> anyhow::Result<String> {
    let admin_ip = std::net::Ipv4Addr::new(192, 0, 2, 1);
    Ok(gateway
        .login(&options.admin_email, &options.admin_password, admin_ip)
        .await
        .context(what)?
        .access_token)
}

/// Creates ads around `day`: three running over it, one that expired and
/// one that has not started yet (those two must never be served).
pub(crate) async fn create_ads(
    gateway: &Gateway,
    admin: &str,
    day: NaiveDate,
) -> anyhow::Result<()> {
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

/// Imports the day before for the three most popular videos, so that the
/// day's views and ad views cross the 100,000, 500,000 and 1,000,000 tier
/// boundaries. Returns (views, ad views) before the day per video id.
pub(crate) async fn import_history(
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

/// How [`settle`] waits for a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settling {
    /// How long to wait for the run to succeed.
    pub timeout: Duration,
    /// Queue a run that failed for any reason again (faults injected on
    /// purpose: a breaker left open by a cut network fails the next runs
    /// at once).
    pub requeue_failed: bool,
}

/// Queues the day's settlement and waits for it: a run that fails because
/// the day is not all written back yet (`error_code` `not_written_back`) is
/// queued again, and with `requeue_failed` (faults injected on purpose) a
/// run that failed for any reason, until `timeout`.
pub(crate) async fn settle(
    gateway: &Gateway,
    admin: &str,
    day: NaiveDate,
    settling: Settling,
) -> anyhow::Result<client::Run> {
    let Settling {
        timeout,
        requeue_failed,
    } = settling;
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
                    let waits = run.error_code == Some(client::RunErrorCode::NotWrittenBack);
                    anyhow::ensure!(
                        (waits || requeue_failed) && std::time::Instant::now() < deadline,
                        "settlement run {run_id} of {day} failed: {error}"
                    );
                    if waits {
                        tracing::info!(%day, "waiting for the write-back to pass the day's end");
                    } else {
                        // As an operator would after a fault: queue it again.
                        eprintln!(
                            "settlement run {run_id} of {day} failed ({error}); queueing it again"
                        );
                    }
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
