//! The check of a settled day against the simulator's tallies: every
//! creator's revenue and every video's settled row read through the gateway,
//! compared with what the rules counted (SPEC §4) and priced (SPEC §6), the
//! day's top 5s, and every creator's ledger (SPEC §11.1).

use std::collections::HashMap;

use anyhow::Context;
use chrono::NaiveDate;
use comfy_table::{Cell, Table};
use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;

use crate::{
    Uploaded,
    client::Gateway,
    report::{Checked, right, table, thousands},
    rules::{DayTally, Tallies, ad_amount, video_amount},
};

/// A creator's revenue of the day, as the gateway answers it.
#[derive(Deserialize)]
struct Revenue {
    total_amount: i64,
    videos: Vec<RevenueRow>,
}

/// One video's settled row (counts; amounts in won).
#[derive(Deserialize)]
struct RevenueRow {
    video_id: i64,
    views: i64,
    watch_seconds: i64,
    ad_views: i64,
    video_amount: i64,
    ad_amount: i64,
    total_amount: i64,
}

/// A top 5, as the gateway answers it.
#[derive(Deserialize)]
struct Top {
    items: Vec<TopItem>,
}

/// One video of a top 5.
#[derive(Deserialize)]
struct TopItem {
    rank: i64,
    video_id: i64,
    title: String,
    creator_id: i64,
    value: i64,
}

/// A creator's day: (total earned in won, user id, name, views, ad views).
type Earning = (i64, i64, String, i64, i64);

/// Reads the settled day through the gateway and compares every video with
/// the tallies: counts within what the rules allow (exact unless an event's
/// stamp may fall on either side of a midnight), amounts exactly the SPEC
/// §6 tiers over the settled counts, each creator's total the sum of its
/// videos, and the day's top 5 by views and by watch time.
///
/// # Errors
/// Requests that fail.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn check(
    gateway: &Gateway,
    admin: &str,
    day: NaiveDate,
    videos: &[Uploaded],
    creators: &[(i64, String)],
    tallies: &Tallies,
    before: &HashMap<i64, (i64, i64)>,
    concurrency: usize,
) -> anyhow::Result<Checked> {
    let mut checked = Checked::default();
    let revenues = fetch_revenues(gateway, admin, day, creators, concurrency).await?;
    let (settled, earnings) = index_revenues(&revenues, &mut checked.differences);
    checked.rows = settled.len();
    checked.videos = videos.len();
    let mut expected_rank = Vec::new();
    let mut expected_ledger: HashMap<i64, HashMap<i64, i64>> = HashMap::new();
    for video in videos {
        let want = tallies.get(&(video.id, day)).copied().unwrap_or_default();
        let before = before.get(&video.id).copied().unwrap_or((0, 0));
        let row = settled.get(&video.id).copied();
        expected_ledger
            .entry(video.creator_user)
            .or_default()
            .insert(video.id, row.map_or(0, |r| expected_total(before, r)));
        let wrong = compare_video(want, before, row);
        if !wrong.is_empty() {
            checked
                .differences
                .push(format!("video {} on {day}: {}", video.id, wrong.join("; ")));
        }
        expected_rank.push((video.id, want));
    }
    check_rankings(gateway, day, &expected_rank, &mut checked).await?;
    check_ledgers(
        gateway,
        admin,
        day,
        &expected_ledger,
        concurrency,
        &mut checked,
    )
    .await?;
    checked.top_creators = top_creators(earnings);
    Ok(checked)
}

/// Every creator's revenue of `day`, in the order of `creators`.
async fn fetch_revenues(
    gateway: &Gateway,
    admin: &str,
    day: NaiveDate,
    creators: &[(i64, String)],
    concurrency: usize,
) -> anyhow::Result<Vec<(i64, String, Revenue)>> {
    stream::iter(creators.iter().cloned())
        .map(|(creator, name)| async move {
            let r = gateway
                .get(
                    &format!("/api/v1/revenues?period=day&date={day}&creator_id={creator}"),
                    Some(admin),
                )
                .await?;
            anyhow::Ok((
                creator,
                name,
                serde_json::from_value(r).context("the revenues answer")?,
            ))
        })
        .buffered(concurrency.clamp(1, 16))
        .try_collect()
        .await
}

/// The settled rows by video id and each creator's earnings; a creator's
/// total that is not the sum of its videos is a difference.
fn index_revenues<'a>(
    revenues: &'a [(i64, String, Revenue)],
    differences: &mut Vec<String>,
) -> (HashMap<i64, &'a RevenueRow>, Vec<Earning>) {
    let mut settled = HashMap::new();
    let mut earnings = Vec::new();
    for (creator, name, revenue) in revenues {
        let sum: i64 = revenue.videos.iter().map(|v| v.total_amount).sum();
        if sum != revenue.total_amount {
            differences.push(format!(
                "{name}: total_amount {} is not the sum of the videos' {sum}",
                revenue.total_amount
            ));
        }
        for row in &revenue.videos {
            settled.insert(row.video_id, row);
        }
        let views: i64 = revenue.videos.iter().map(|v| v.views).sum();
        let ads: i64 = revenue.videos.iter().map(|v| v.ad_views).sum();
        earnings.push((revenue.total_amount, *creator, name.clone(), views, ads));
    }
    (settled, earnings)
}

/// What is wrong with a video's settled row (`None`: no row, all counts
/// zero): counts outside what the tally allows, or amounts that are not the
/// SPEC §6 tiers over the settled counts after `(views, ad views)` before
/// the day.
fn compare_video(want: DayTally, before: (i64, i64), got: Option<&RevenueRow>) -> Vec<String> {
    let (views, watch, ads) = got.map_or((0, 0, 0), |r| (r.views, r.watch_seconds, r.ad_views));
    let mut wrong = Vec::new();
    for (what, got, exact, spanning) in [
        ("views", views, want.views, want.views_spanning),
        (
            "watch seconds",
            watch,
            want.watch_seconds,
            want.watch_spanning,
        ),
        ("ad views", ads, want.ad_views, want.ads_spanning),
    ] {
        if !(exact..=exact + spanning).contains(&got) {
            wrong.push(format!("{what} {got}, expected {}", show(exact, spanning)));
        }
    }
    if let Some(r) = got {
        let (views_before, ads_before) = before;
        let (va, aa) = (
            video_amount(views_before, views),
            ad_amount(ads_before, ads),
        );
        if (r.video_amount, r.ad_amount, r.total_amount) != (va, aa, va + aa) {
            wrong.push(format!(
                "amounts {} + {} = {} won, expected {va} + {aa} = {} won",
                r.video_amount,
                r.ad_amount,
                r.total_amount,
                va + aa
            ));
        }
    }
    wrong
}

/// What a video's settled row should total (won): the SPEC §6 tiers over
/// its settled counts after `(views, ad views)` before the day.
fn expected_total((views_before, ads_before): (i64, i64), row: &RevenueRow) -> i64 {
    video_amount(views_before, row.views) + ad_amount(ads_before, row.ad_views)
}

/// A creator's ledger, as the gateway answers it.
#[derive(Deserialize)]
struct LedgerPage {
    balance: i64,
    items: Vec<LedgerEntry>,
    next_cursor: Option<String>,
}

/// One ledger entry (won; positive is owed to the creator).
#[derive(Deserialize)]
struct LedgerEntry {
    kind: String,
    amount: i64,
    video_id: Option<i64>,
    day: Option<String>,
}

/// Reads every creator's whole ledger and compares it with the expectation
/// (`expected`: creator → video → won): for the day, each video's
/// `earning`, `restatement` and `adjustment` entries sum to what the video
/// should total, and the balance is the sum of every entry (SPEC §11.1).
async fn check_ledgers(
    gateway: &Gateway,
    admin: &str,
    day: NaiveDate,
    expected: &HashMap<i64, HashMap<i64, i64>>,
    concurrency: usize,
    checked: &mut Checked,
) -> anyhow::Result<()> {
    let day_text = day.to_string();
    let ledgers: Vec<(i64, i64, Vec<LedgerEntry>)> = stream::iter(expected.keys().copied())
        .map(|creator| async move {
            let mut entries = Vec::new();
            let mut cursor = String::new();
            loop {
                let page: LedgerPage = serde_json::from_value(
                    gateway
                        .get(
                            &format!(
                                "/api/v1/ledger?creator_id={creator}&limit=100&cursor={cursor}"
                            ),
                            Some(admin),
                        )
                        .await?,
                )
                .context("the ledger answer")?;
                entries.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = next,
                    None => return anyhow::Ok((creator, page.balance, entries)),
                }
            }
        })
        .buffered(concurrency.clamp(1, 16))
        .try_collect()
        .await?;
    for (creator, balance, entries) in ledgers {
        let sum: i64 = entries.iter().map(|e| e.amount).sum();
        if sum != balance {
            checked.differences.push(format!(
                "creator {creator}: ledger balance {balance} won is not the sum of its entries, {sum}"
            ));
        }
        let mut held: HashMap<i64, i64> = HashMap::new();
        for e in &entries {
            let on_day = e.day.as_deref() == Some(day_text.as_str());
            let priced = matches!(e.kind.as_str(), "earning" | "restatement" | "adjustment");
            if let (true, true, Some(video)) = (on_day, priced, e.video_id) {
                *held.entry(video).or_default() += e.amount;
            }
        }
        let want = expected.get(&creator).cloned().unwrap_or_default();
        for (video, amount) in &want {
            let got = held.get(video).copied().unwrap_or(0);
            if got != *amount {
                checked.differences.push(format!(
                    "video {video} on {day}: the ledger holds {got} won, expected {amount}"
                ));
            }
        }
        for (video, got) in held {
            if !want.contains_key(&video) && got != 0 {
                checked.differences.push(format!(
                    "creator {creator}: the ledger holds {got} won for video {video} on {day}, not one of theirs"
                ));
            }
        }
    }
    Ok(())
}

/// Reads the day's top 5 by views and by watch time into `checked`'s
/// tables; when no count in `expected` spans a midnight, each must be the
/// top 5 of the tallies (ties by video id).
async fn check_rankings(
    gateway: &Gateway,
    day: NaiveDate,
    expected: &[(i64, DayTally)],
    checked: &mut Checked,
) -> anyhow::Result<()> {
    let exact = expected
        .iter()
        .all(|(_, t)| t.views_spanning == 0 && t.watch_spanning == 0);
    for (metric, value) in [
        ("views", (|t: &DayTally| t.views) as fn(&DayTally) -> i64),
        ("watch_time", |t: &DayTally| t.watch_seconds),
    ] {
        let top: Top = serde_json::from_value(
            gateway
                .get(
                    &format!("/api/v1/stats/top?metric={metric}&period=day&date={day}&limit=5"),
                    None,
                )
                .await?,
        )
        .context("the top answer")?;
        let want = expected_top(expected, value);
        let got: Vec<(i64, i64)> = top
            .items
            .iter()
            .map(|i| (i.video_id, i.value))
            .filter(|(_, v)| *v > 0)
            .collect();
        if exact && got != want {
            checked
                .differences
                .push(format!("top 5 by {metric}: got {got:?}, expected {want:?}"));
        }
        let t = top_table(metric, &top);
        if metric == "views" {
            checked.top_views = t;
        } else {
            checked.top_watch = t;
        }
    }
    Ok(())
}

/// The top 5 (video id, value) of the tallies by `value`, zeros left out,
/// ties by video id.
fn expected_top(expected: &[(i64, DayTally)], value: fn(&DayTally) -> i64) -> Vec<(i64, i64)> {
    let mut want: Vec<(i64, i64)> = expected
        .iter()
        .map(|(id, t)| (*id, value(t)))
        .filter(|(_, v)| *v > 0)
        .collect();
    want.sort_by_key(|&(id, v)| (std::cmp::Reverse(v), id));
    want.truncate(5);
    want
}

/// A top 5 as the platform reported it.
fn top_table(metric: &str, top: &Top) -> Table {
    let mut t = table(&["rank", "video", "title", "creator", metric]);
    for i in &top.items {
        t.add_row(vec![
            right(i.rank.to_string()),
            right(i.video_id.to_string()),
            Cell::new(&i.title),
            right(i.creator_id.to_string()),
            right(thousands(i.value)),
        ]);
    }
    t
}

/// The 5 creators who earned most (ties by user id).
fn top_creators(mut earnings: Vec<Earning>) -> Table {
    earnings.sort_by_key(|e| (std::cmp::Reverse(e.0), e.1));
    let mut t = table(&["rank", "creator", "views", "ad views", "earned (KRW)"]);
    for (rank, (total, creator, name, views, ads)) in earnings.iter().take(5).enumerate() {
        t.add_row(vec![
            right((rank + 1).to_string()),
            Cell::new(format!("{name} (user {creator})")),
            right(thousands(*views)),
            right(thousands(*ads)),
            right(thousands(*total)),
        ]);
    }
    t
}

/// An expected count: `exact`, or `exact..=exact+spanning` when some of it
/// may belong to a neighbouring day.
fn show(exact: i64, spanning: i64) -> String {
    if spanning == 0 {
        exact.to_string()
    } else {
        format!("{exact}..={}", exact + spanning)
    }
}
