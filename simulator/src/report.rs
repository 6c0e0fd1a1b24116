//! What a simulated day reports: the counts and timings, the settled day
//! as checked against the tallies, and the tables and summary it prints.

use std::time::Duration;

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

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

/// An empty table with `header`, in the style of every table printed.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    t
}

/// A right-aligned cell (numbers).
pub(crate) fn right(text: String) -> Cell {
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
    if let Some(m) = &outcome.closed {
        println!(
            "\nThe close of {}: {} statements ({} paid), income tax {} won, local tax {} won, checked against SPEC §11.4",
            m.month,
            m.statements,
            m.paid,
            thousands(m.income_tax),
            thousands(m.local_tax)
        );
    }
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
