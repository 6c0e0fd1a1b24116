//! The check of a settled day against the simulator's tallies, and the
//! tables and summary it prints.

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use chrono::NaiveDate;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;

use crate::{
    Uploaded,
    client::Gateway,
    rules::{DayTally, Tallies, ad_amount, video_amount},
};

/// Counts of what the simulator sent and what the answers said.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Plays sent.
    pub plays: u64,
    /// Plays by anonymous viewers.
    pub anonymous_plays: u64,
    /// Plays of a creator's own video.
    pub owner_plays: u64,
    /// Plays sent twice in a row (a double click).
    pub double_plays: u64,
    /// Views that counted (each one checked against the rules).
    pub views: u64,
    /// Pause reports sent.
    pub pauses: u64,
    /// Reports that jumped ahead or back.
    pub seeks: u64,
    /// Visits that ended without a report.
    pub abandoned: u64,
    /// Watched seconds added.
    pub watch_seconds: u64,
    /// Ad slots crossed by reports of viewers who are not the owner.
    pub slots_crossed: u64,
    /// Ad views that counted.
    pub ad_views: u64,
    /// Outcomes the service's clock decided within the measured bracket.
    pub clock_decided: u64,
    /// Requests that failed.
    pub failed_requests: u64,
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of a histogram of microseconds.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1_000.0;
        Self {
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// The run's figures.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Counts.
    pub stats: Stats,
    /// Sign-ups, uploads, ads and the history import.
    pub setup: Duration,
    /// The day's traffic.
    pub traffic: Duration,
    /// Queue to success of the settlement, waiting for the write-back
    /// included.
    pub settlement: Duration,
    /// The settlement run.
    pub run_id: i64,
    /// Play latency.
    pub play_latency: Latency,
    /// Pause latency.
    pub pause_latency: Latency,
}

impl Summary {
    /// Adds one person's counts.
    pub fn add(&mut self, s: &Stats) {
        let t = &mut self.stats;
        t.plays += s.plays;
        t.anonymous_plays += s.anonymous_plays;
        t.owner_plays += s.owner_plays;
        t.double_plays += s.double_plays;
        t.views += s.views;
        t.pauses += s.pauses;
        t.seeks += s.seeks;
        t.abandoned += s.abandoned;
        t.watch_seconds += s.watch_seconds;
        t.slots_crossed += s.slots_crossed;
        t.ad_views += s.ad_views;
        t.clock_decided += s.clock_decided;
        t.failed_requests += s.failed_requests;
    }

    /// Plays per second of traffic.
    pub fn plays_per_second(&self) -> f64 {
        self.stats.plays as f64 / self.traffic.as_secs_f64().max(0.001)
    }

    /// The summary as a table.
    pub fn table(&self) -> Table {
        let s = &self.stats;
        let mut t = table(&["", "count"]);
        let rows: [(&str, String); 16] = [
            ("plays sent", s.plays.to_string()),
            ("  by anonymous viewers", s.anonymous_plays.to_string()),
            ("  by owners (must not count)", s.owner_plays.to_string()),
            (
                "  double clicks (must not count)",
                s.double_plays.to_string(),
            ),
            ("views the rules count", s.views.to_string()),
            ("pause reports", s.pauses.to_string()),
            ("  with a seek", s.seeks.to_string()),
            ("visits left without a report", s.abandoned.to_string()),
            ("watched seconds", s.watch_seconds.to_string()),
            ("ad slots crossed", s.slots_crossed.to_string()),
            ("ad views the rules count", s.ad_views.to_string()),
            ("outcomes the clock decided", s.clock_decided.to_string()),
            ("failed requests", s.failed_requests.to_string()),
            (
                "plays/s sustained",
                format!("{:.0}", self.plays_per_second()),
            ),
            (
                "play p50 / p99 ms",
                format!(
                    "{:.2} / {:.2}",
                    self.play_latency.p50_ms, self.play_latency.p99_ms
                ),
            ),
            (
                "pause p50 / p99 ms",
                format!(
                    "{:.2} / {:.2}",
                    self.pause_latency.p50_ms, self.pause_latency.p99_ms
                ),
            ),
        ];
        for (name, value) in rows {
            t.add_row(vec![Cell::new(name), right(value)]);
        }
        t.add_row(vec![
            Cell::new("setup / traffic / settlement s"),
            right(format!(
                "{:.1} / {:.1} / {:.1}",
                self.setup.as_secs_f64(),
                self.traffic.as_secs_f64(),
                self.settlement.as_secs_f64()
            )),
        ]);
        t
    }
}

/// The settled day, checked.
#[derive(Debug, Default)]
pub struct Checked {
    /// Every difference from the expectation, one line each.
    pub differences: Vec<String>,
    /// Videos with a settled row.
    pub rows: usize,
    /// Videos checked.
    pub videos: usize,
    /// Top 5 by views, as the platform reported it.
    pub top_views: Table,
    /// Top 5 by watch time.
    pub top_watch: Table,
    /// Top creators by earnings.
    pub top_creators: Table,
}

#[derive(Deserialize)]
struct Revenue {
    total_amount: i64,
    videos: Vec<RevenueRow>,
}

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

#[derive(Deserialize)]
struct Top {
    items: Vec<TopItem>,
}

#[derive(Deserialize)]
struct TopItem {
    rank: i64,
    video_id: i64,
    title: String,
    creator_id: i64,
    value: i64,
}

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
    let revenues: Vec<(i64, String, Revenue)> = stream::iter(creators.iter().cloned())
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
        .await?;
    let mut settled: HashMap<i64, &RevenueRow> = HashMap::new();
    let mut earnings = Vec::new();
    for (creator, name, revenue) in &revenues {
        let sum: i64 = revenue.videos.iter().map(|v| v.total_amount).sum();
        if sum != revenue.total_amount {
            checked.differences.push(format!(
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
    checked.rows = settled.len();
    checked.videos = videos.len();
    let mut expected_rank = Vec::new();
    for video in videos {
        let want = tallies.get(&(video.id, day)).copied().unwrap_or_default();
        let (views_before, ads_before) = before.get(&video.id).copied().unwrap_or((0, 0));
        let got = settled.get(&video.id);
        let (views, watch, ads) = got.map_or((0, 0, 0), |r| (r.views, r.watch_seconds, r.ad_views));
        let mut wrong = Vec::new();
        let within =
            |got: i64, exact: i64, spanning: i64| (exact..=exact + spanning).contains(&got);
        if !within(views, want.views, want.views_spanning) {
            wrong.push(format!(
                "views {views}, expected {}",
                show(want.views, want.views_spanning)
            ));
        }
        if !within(watch, want.watch_seconds, want.watch_spanning) {
            wrong.push(format!(
                "watch seconds {watch}, expected {}",
                show(want.watch_seconds, want.watch_spanning)
            ));
        }
        if !within(ads, want.ad_views, want.ads_spanning) {
            wrong.push(format!(
                "ad views {ads}, expected {}",
                show(want.ad_views, want.ads_spanning)
            ));
        }
        if let Some(r) = got {
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
        if !wrong.is_empty() {
            checked
                .differences
                .push(format!("video {} on {day}: {}", video.id, wrong.join("; ")));
        }
        expected_rank.push((video.id, want));
    }
    let exact = expected_rank
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
        let mut want: Vec<(i64, i64)> = expected_rank
            .iter()
            .map(|(id, t)| (*id, value(t)))
            .filter(|(_, v)| *v > 0)
            .collect();
        want.sort_by_key(|&(id, v)| (std::cmp::Reverse(v), id));
        want.truncate(5);
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
        if metric == "views" {
            checked.top_views = t;
        } else {
            checked.top_watch = t;
        }
    }
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
    checked.top_creators = t;
    Ok(checked)
}

fn show(exact: i64, spanning: i64) -> String {
    if spanning == 0 {
        exact.to_string()
    } else {
        format!("{exact}..={}", exact + spanning)
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    t
}

fn right(text: String) -> Cell {
    Cell::new(text).set_alignment(CellAlignment::Right)
}

/// 1234567 → "1,234,567".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Prints the tables, the summary and the differences.
pub fn print(outcome: &crate::Outcome) {
    let c = &outcome.checked;
    println!("\nTop 5 videos by views on {}", outcome.day);
    println!("{}", c.top_views);
    println!("\nTop 5 videos by watch time (seconds) on {}", outcome.day);
    println!("{}", c.top_watch);
    println!("\nTop creators by earnings on {}", outcome.day);
    println!("{}", c.top_creators);
    println!("\nThe day (settlement run {})", outcome.summary.run_id);
    println!("{}", outcome.summary.table());
    for d in c.differences.iter().take(50) {
        println!("DIFFERENCE {d}");
    }
    if c.differences.len() > 50 {
        println!("… and {} more", c.differences.len() - 50);
    }
    println!(
        "\n{} videos checked against SPEC §4–§6 ({} with settled rows): {} differences",
        c.videos,
        c.rows,
        c.differences.len()
    );
}
