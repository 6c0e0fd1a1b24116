//! Before the day's traffic: the ads, the plan, its creators and viewers
//! signed up and signed in, the creators' videos uploaded and, if asked,
//! the history that makes the day cross tier boundaries (SPEC §6).

use std::collections::HashMap;

use anyhow::Context;
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt, stream};

use crate::{
    Account, Options, Uploaded, admin,
    client::Gateway,
    plan::{Plan, Who},
};

/// The password of every account the simulator makes.
const PASSWORD: &str = "simulated-password";

/// Accounts made for the day.
pub(crate) struct Accounts {
    /// Creator `n` of the plan at index `n`.
    pub creators: Vec<Account>,
    /// Viewer `n` of the plan at index `n`.
    pub viewers: Vec<Account>,
}

impl Accounts {
    /// (user id, name) of every creator, as the tables show them.
    pub(crate) fn creator_names(&self) -> Vec<(i64, String)> {
        self.creators
            .iter()
            .enumerate()
            .map(|(n, a)| (a.user_id, format!("creator {}", n + 1)))
            .collect()
    }
}

/// What the day is played on.
pub(crate) struct Catalog {
    /// Who watches what, and when.
    pub plan: Plan,
    /// The plan's signed-in people.
    pub accounts: Accounts,
    /// The plan's videos, as uploaded.
    pub videos: Vec<Uploaded>,
    /// (views, ad views) before the day per video id, where history was
    /// imported.
    pub before: HashMap<i64, (i64, i64)>,
}

/// Sets up `day`: ads running over the day (and one expired, one not yet
/// started, which must never be served), the plan of visits from
/// `day_start` to `until` (Unix milliseconds, simulated), its creators and
/// their videos, its viewers, and the history import if `options.history`.
///
/// # Errors
/// Requests that fail, or a scale the plan cannot take.
pub(crate) async fn catalog(
    gateway: &Gateway,
    admin: &str,
    options: &Options,
    day: NaiveDate,
    day_start: i64,
    until: i64,
) -> anyhow::Result<Catalog> {
    let run_tag = chrono::Utc::now().timestamp_millis();
    admin::create_ads(gateway, admin, day).await?;
    let plan = Plan::new(options.seed, options.scale, day_start, day_start, until)?;
    let accounts = sign_up_all(gateway, &plan, run_tag, options.concurrency).await?;
    let videos = upload_all(gateway, &plan, &accounts, options.concurrency).await?;
    let before = if options.history {
        admin::import_history(gateway, admin, &videos, day).await?
    } else {
        HashMap::new()
    };
    Ok(Catalog {
        plan,
        accounts,
        videos,
        before,
    })
}

/// Signs up and signs in the plan's creators, then its viewers; `run_tag`
/// keeps their emails apart from earlier runs'.
async fn sign_up_all(
    gateway: &Gateway,
    plan: &Plan,
    run_tag: i64,
    concurrency: usize,
) -> anyhow::Result<Accounts> {
    let creators = sign_up_kind(gateway, plan, run_tag, concurrency, "creator", Who::Creator)
        .await
        .context("signing up creators")?;
    let viewers = sign_up_kind(gateway, plan, run_tag, concurrency, "viewer", Who::Viewer)
        .await
        .context("signing up viewers")?;
    Ok(Accounts { creators, viewers })
}

/// Signs up and signs in, in order and at most 8 at a time, every person of
/// the plan of one kind (`who(0)`, `who(1)`, …, with the `role` `creator`
/// or `viewer`), each from its usual address.
async fn sign_up_kind(
    gateway: &Gateway,
    plan: &Plan,
    run_tag: i64,
    concurrency: usize,
    role: &'static str,
    who: fn(usize) -> Who,
) -> anyhow::Result<Vec<Account>> {
    let kind = std::mem::discriminant(&who(0));
    let count = plan
        .audience
        .iter()
        .filter(|a| std::mem::discriminant(&a.who) == kind)
        .count();
    let ip_of = |n: usize| {
        plan.audience
            .iter()
            .find(|a| a.who == who(n))
            .map_or(std::net::Ipv4Addr::LOCALHOST, |a| a.addresses[0])
    };
    stream::iter((0..count).map(|n| {
        let ip = ip_of(n);
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
    }))
    .buffered(concurrency.clamp(1, 8))
    .try_collect()
    .await
}

/// Uploads the plan's videos, each by its creator, in order and at most 16
/// at a time.
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
