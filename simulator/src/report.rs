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
    /// Requests that failed (for good: not answered within the retries).
    pub failed_requests: u64,
    /// Requests answered only after failed attempts (with
    /// `--retry-failures`).
    pub retried_requests: u64,
    /// Failed attempts of those requests.
    pub failed_attempts: u64,
    /// Effects of attempts whose answers were lost, read from the retry's
    /// answer (a view the retry found a duplicate of; a report the retry
    /// found already applied).
    pub inferred: u64,
    /// Lost attempts whose effect the retry could not tell: the check
    /// allows the day with and without it.
    pub uncertain: u64,
}

impl Stats {
    /// Counts a request answered after `failures` failed attempts;
    /// `inferred` and `uncertain` as in the fields of those names.
    pub fn count_retries(&mut self, failures: u32, inferred: bool, uncertain: bool) {
        if failures > 0 {
            self.retried_requests += 1;
            self.failed_attempts += u64::from(failures);
        }
        self.inferred += u64::from(inferred);
        self.uncertain += u64::from(uncertain);
    }
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
    /// Failed attempts of plays and pauses (with `--retry-failures`).
    pub failures: Failures,
}

/// When and how the attempts of plays and pauses failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    /// Attempts whose connection was refused: the request never left.
    pub refused: u64,
    /// Attempts answered with a 5xx or a 429.
    pub answered: u64,
    /// Attempts cut after they were sent: a reset, a connection closed
    /// before the answer, a timeout (the request may have been acted on).
    pub broken: u64,
    /// Wall-clock Unix milliseconds of the first and the last failure.
    pub window_ms: Option<(i64, i64)>,
}

/// Whether a failed attempt never left: its connection was refused.
pub(crate) fn refused(e: &anyhow::Error) -> bool {
    e.downcast_ref::<reqwest::Error>()
        .is_some_and(reqwest::Error::is_connect)
}

/// [`Failures`], recorded by every viewer task at once.
#[derive(Debug)]
pub(crate) struct FailureLog {
    refused: std::sync::atomic::AtomicU64,
    answered: std::sync::atomic::AtomicU64,
    broken: std::sync::atomic::AtomicU64,
    first_ms: std::sync::atomic::AtomicI64,
    last_ms: std::sync::atomic::AtomicI64,
}

impl Default for FailureLog {
    fn default() -> Self {
        Self {
            refused: 0.into(),
            answered: 0.into(),
            broken: 0.into(),
            first_ms: i64::MAX.into(),
            last_ms: i64::MIN.into(),
        }
    }
}

impl FailureLog {
    /// Records a failed attempt, now.
    pub(crate) fn record(&self, e: &anyhow::Error) {
        use std::sync::atomic::Ordering::Relaxed;
        let counter = if e.downcast_ref::<crate::client::ApiError>().is_some() {
            &self.answered
        } else if refused(e) {
            &self.refused
        } else {
            &self.broken
        };
        counter.fetch_add(1, Relaxed);
        let now = chrono::Utc::now().timestamp_millis();
        self.first_ms.fetch_min(now, Relaxed);
        self.last_ms.fetch_max(now, Relaxed);
    }

    /// What was recorded.
    pub(crate) fn read(&self) -> Failures {
        use std::sync::atomic::Ordering::Relaxed;
        let (first, last) = (self.first_ms.load(Relaxed), self.last_ms.load(Relaxed));
        Failures {
            refused: self.refused.load(Relaxed),
            answered: self.answered.load(Relaxed),
            broken: self.broken.load(Relaxed),
            window_ms: (first <= last).then_some((first, last)),
        }
    }
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
        t.retried_requests += s.retried_requests;
        t.failed_attempts += s.failed_attempts;
        t.inferred += s.inferred;
        t.uncertain += s.uncertain;
    }

    /// Plays per second of traffic.
    pub fn plays_per_second(&self) -> f64 {
        self.stats.plays as f64 / self.traffic.as_secs_f64().max(0.001)
    }

    /// The summary as a table.
    pub fn table(&self) -> Table {
        let s = &self.stats;
        let mut t = table(&["", "count"]);
        let rows: [(&str, String); 20] = [
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
                "requests answered after a retry",
                s.retried_requests.to_string(),
            ),
            ("  failed attempts", s.failed_attempts.to_string()),
            ("  lost answers read from the retry", s.inferred.to_string()),
            ("  lost answers left uncertain", s.uncertain.to_string()),
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
    // One line for scripts (deploy/chaos.sh): failed requests and
    // attempts, and the wall-clock window of the failures (Unix ms, 0 when
    // none failed).
    let (f, s) = (&outcome.summary.failures, &outcome.summary.stats);
    let (first, last) = f.window_ms.unwrap_or((0, 0));
    println!(
        "FAILURES failed={} retried={} refused={} answered={} broken={} inferred={} uncertain={} first_ms={first} last_ms={last}",
        s.failed_requests,
        s.retried_requests,
        f.refused,
        f.answered,
        f.broken,
        s.inferred,
        s.uncertain
    );
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
