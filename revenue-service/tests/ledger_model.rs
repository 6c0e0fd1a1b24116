//! SPEC §11.1–11.3 as a property: over random histories of settlements,
//! late counts and invalid-traffic adjustments, the revenue service (its
//! real settlement, restatement and adjustment code, on an embedded SQLite
//! database, with counts from an in-memory table instead of the streaming
//! service) keeps exactly the rows an independent model of the rules
//! expects, and its ledger holds, for every (video, day), exactly the
//! day's current amount. Re-running a settlement with nothing changed
//! posts nothing. The roll-ups of issue 19 (per video per week and
//! month, per creator per day, week and month) stay exactly the sums of
//! the rows of their periods; the days cross a month's and a week's end.
//!
//! The model prices with its own tier arithmetic (integer tenths of a won
//! over cumulative counts), not with the service's `money` module.
//!
//! 10,000 histories by default; `LEDGER_PROPTEST_CASES=100000` for more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{NaiveDate, Utc};
use common::{
    domain::{CreatorId, Period, VideoId},
    time::PlatformTime,
};
use futures::future::BoxFuture;
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use proto::streaming::v1::DailyCount;
use revenue_service::{
    cache::ReportCache,
    ledger,
    migration::Migrator,
    rollups,
    settlement::{
        AdjustError, CountSource, NewAdjustment, PullError, RunLimits, Settler, Watermark,
    },
};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use tokio::sync::mpsc;

const VIDEOS: u8 = 3;
const DAYS: u8 = 5;

fn day(d: u8) -> NaiveDate {
    // Friday 30 October: the month ends after day 1, the ISO week after
    // day 2.
    NaiveDate::from_ymd_opt(2026, 10, 30)
        .and_then(|first| first.checked_add_days(chrono::Days::new(u64::from(d))))
        .unwrap_or_default()
}

fn day_index(date: NaiveDate) -> u8 {
    u8::try_from((date - day(0)).num_days()).unwrap_or(u8::MAX)
}

/// The streaming service's counts, as a table: (video, day) → (views, ad
/// views). Cumulative counts are summed on read.
#[derive(Default)]
struct Counts(Mutex<BTreeMap<(u8, u8), (i64, i64)>>);

impl Counts {
    fn row(table: &BTreeMap<(u8, u8), (i64, i64)>, video: u8, d: u8) -> Option<DailyCount> {
        let &(views, ad_views) = table.get(&(video, d))?;
        let (before_views, before_ads) = table
            .range((video, 0)..(video, d))
            .fold((0, 0), |(v, a), (_, c)| (v + c.0, a + c.1));
        Some(DailyCount {
            video_id: i64::from(video),
            creator_id: 100 + i64::from(video),
            views,
            watch_seconds: views * 10,
            ad_views,
            cumulative_views_before: before_views,
            cumulative_ad_views_before: before_ads,
            title: format!("Video {video}"),
        })
    }

    fn table(&self) -> BTreeMap<(u8, u8), (i64, i64)> {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl CountSource for Counts {
    fn watermark(&self) -> BoxFuture<'_, Result<Watermark, PullError>> {
        Box::pin(async {
            Ok(Watermark {
                until: Utc::now(),
                changes_version: 0,
            })
        })
    }

    fn changed_days(&self, _after: i64) -> BoxFuture<'_, Result<Vec<(NaiveDate, i64)>, PullError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn day_counts(
        &self,
        date: NaiveDate,
        after: VideoId,
        batch_rows: usize,
        sink: mpsc::Sender<Vec<DailyCount>>,
    ) -> BoxFuture<'_, Result<(), PullError>> {
        let table = self.table();
        Box::pin(async move {
            let d = day_index(date);
            let rows: Vec<DailyCount> = (1..=VIDEOS)
                .filter(|v| i64::from(*v) > after.0)
                .filter_map(|v| Self::row(&table, v, d))
                .collect();
            for batch in rows.chunks(batch_rows.max(1)) {
                if sink.send(batch.to_vec()).await.is_err() {
                    return Ok(());
                }
            }
            Ok(())
        })
    }

    fn video_days<'a>(
        &'a self,
        videos: &'a [VideoId],
        (from, to): (NaiveDate, NaiveDate),
    ) -> BoxFuture<'a, Result<Vec<(NaiveDate, DailyCount)>, PullError>> {
        let table = self.table();
        Box::pin(async move {
            let mut rows = Vec::new();
            for v in videos {
                let Ok(video) = u8::try_from(v.0) else {
                    continue;
                };
                for d in day_index(from)..=day_index(to).min(DAYS) {
                    if let Some(row) = Self::row(&table, video, d) {
                        rows.push((day(d), row));
                    }
                }
            }
            Ok(rows)
        })
    }

    fn creator_of(&self, video: VideoId) -> BoxFuture<'_, Result<Option<CreatorId>, PullError>> {
        Box::pin(async move {
            Ok((1..=i64::from(VIDEOS))
                .contains(&video.0)
                .then_some(CreatorId(100 + video.0)))
        })
    }
}

/// What happens next in a history.
#[derive(Debug, Clone)]
enum Op {
    /// Settle (or re-settle) a day, as an admin's run does.
    Settle(u8),
    /// Counts of a video's day arrive late.
    Late {
        video: u8,
        day: u8,
        views: i64,
        ad_views: i64,
    },
    /// An admin removes a share (per cent of what is left; over 100 asks
    /// for more than there is) of a video's day as invalid.
    Adjust {
        video: u8,
        day: u8,
        views_pct: i64,
        ads_pct: i64,
    },
}

fn counts() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), 1..=2_000i64, 20_000..=450_000i64,]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..DAYS).prop_map(Op::Settle),
        2 => (1..=VIDEOS, 0..DAYS, counts(), counts())
            .prop_map(|(video, day, views, ad_views)| Op::Late { video, day, views, ad_views }),
        2 => (1..=VIDEOS, 0..DAYS, 0..=110i64, 0..=110i64)
            .prop_map(|(video, day, views_pct, ads_pct)| Op::Adjust { video, day, views_pct, ads_pct }),
    ]
}

/// A roll-up row's key: which table, period, first day, creator, video
/// (0 in the creator's).
type RollUpKey = (&'static str, &'static str, NaiveDate, i64, i64);
/// Roll-up rows: their days and six sums.
type RollUps = BTreeMap<RollUpKey, (i64, [i64; 6])>;

/// A video's day and its (views, ad views).
type DayCounts = ((u8, u8), (i64, i64));

fn history() -> impl Strategy<Value = (Vec<DayCounts>, Vec<Op>)> {
    (
        prop::collection::vec(((1..=VIDEOS, 0..DAYS), (counts(), counts())), 0..10),
        prop::collection::vec(op(), 1..10),
    )
}

/// The model's exact price of counts `before + 1 ..= before + count`, in
/// tenths of a won: each count at the tier of the cumulative count before
/// it (SPEC §6), summed tier by tier.
fn tenths(prices: [i64; 4], before: i64, count: i64) -> i64 {
    let bounds = [0, 100_000, 500_000, 1_000_000, i64::MAX];
    let total = |n: i64| {
        (0..4)
            .map(|i| (n.min(bounds[i + 1]) - bounds[i]).max(0) * prices[i])
            .sum::<i64>()
    };
    total(before + count) - total(before)
}

/// A settled row as the model sees it: counts after adjustments, total won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    views: i64,
    ad_views: i64,
    total: i64,
}

#[derive(Default)]
struct Model {
    raw: BTreeMap<(u8, u8), (i64, i64)>,
    adjusted: BTreeMap<(u8, u8), (i64, i64)>,
    settled: BTreeSet<u8>,
    rows: BTreeMap<(u8, u8), Row>,
}

impl Model {
    fn priced(&self, video: u8, d: u8) -> Option<Row> {
        let &(views, ad_views) = self.raw.get(&(video, d))?;
        let sum = |m: &BTreeMap<(u8, u8), (i64, i64)>| {
            m.range((video, 0)..(video, d))
                .fold((0, 0), |(v, a), (_, c)| (v + c.0, a + c.1))
        };
        let (raw_v, raw_a) = sum(&self.raw);
        let (adj_v, adj_a) = sum(&self.adjusted);
        let (day_adj_v, day_adj_a) = self.adjusted.get(&(video, d)).copied().unwrap_or_default();
        let (before_v, before_a) = ((raw_v - adj_v).max(0), (raw_a - adj_a).max(0));
        let (count_v, count_a) = ((views - day_adj_v).max(0), (ad_views - day_adj_a).max(0));
        let video_amount = tenths([10, 11, 13, 15], before_v, count_v) / 10;
        let ad_amount = tenths([100, 120, 150, 200], before_a, count_a) / 10;
        Some(Row {
            views: count_v,
            ad_views: count_a,
            total: video_amount + ad_amount,
        })
    }

    /// Re-prices a video's day; the change of its total.
    fn reprice(&mut self, video: u8, d: u8) -> i64 {
        let old = self.rows.get(&(video, d)).map_or(0, |r| r.total);
        let new = self.priced(video, d);
        match new {
            Some(row) => self.rows.insert((video, d), row),
            None => self.rows.remove(&(video, d)),
        };
        new.map_or(0, |r| r.total) - old
    }

    fn settle(&mut self, d: u8) {
        let later: Vec<u8> = self.settled.range(d + 1..).copied().collect();
        let mut moved = Vec::new();
        for video in 1..=VIDEOS {
            let old = self.rows.get(&(video, d)).map(|r| (r.views, r.ad_views));
            self.reprice(video, d);
            let new = self.rows.get(&(video, d)).map(|r| (r.views, r.ad_views));
            if old != new {
                moved.push(video);
            }
        }
        self.settled.insert(d);
        let Some(&first) = later.first() else { return };
        for video in moved {
            let has_later_rows = self
                .rows
                .range((video, first)..=(video, u8::MAX))
                .next()
                .is_some();
            if has_later_rows {
                for &l in &later {
                    self.reprice(video, l);
                }
            }
        }
    }

    /// The field an adjustment is refused on, or the won it claws back.
    fn adjust(&mut self, video: u8, d: u8, views: i64, ad_views: i64) -> Result<i64, &'static str> {
        if views == 0 && ad_views == 0 {
            return Err("views");
        }
        let (raw_v, raw_a) = self.raw.get(&(video, d)).copied().unwrap_or_default();
        let (adj_v, adj_a) = self.adjusted.get(&(video, d)).copied().unwrap_or_default();
        if views > raw_v - adj_v {
            return Err("views");
        }
        if ad_views > raw_a - adj_a {
            return Err("ad_views");
        }
        let entry = self.adjusted.entry((video, d)).or_default();
        entry.0 += views;
        entry.1 += ad_views;
        let days: Vec<u8> = self.settled.range(d..).copied().collect();
        Ok(-days
            .into_iter()
            .map(|l| self.reprice(video, l))
            .sum::<i64>())
    }
}

struct Engine {
    db: DatabaseConnection,
    counts: Arc<Counts>,
    settler: Settler,
}

impl Engine {
    async fn new(dir: &std::path::Path) -> Self {
        let url = format!("sqlite://{}/revenue.db?mode=rwc", dir.display());
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        let db = Database::connect(options).await.expect("SQLite opens");
        db.execute_unprepared("PRAGMA synchronous = OFF; PRAGMA journal_mode = MEMORY")
            .await
            .expect("pragmas");
        Migrator::up(&db, None).await.expect("migrations run");
        let counts = Arc::new(Counts::default());
        let settler = Settler::new(
            db.clone(),
            counts.clone(),
            PlatformTime::default(),
            RunLimits {
                call_timeout: Duration::from_secs(5),
                retries: 0,
                lease: Duration::from_secs(600),
                final_after_days: 3,
                late_poll: Duration::ZERO,
            },
            ReportCache::disabled(),
        );
        Self {
            db,
            counts,
            settler,
        }
    }

    async fn reset(&self, initial: &[DayCounts]) {
        self.db
            .execute_unprepared(
                "DELETE FROM daily_stats; DELETE FROM ledger_transfers; DELETE FROM ledger_postings; DELETE FROM settled_days; \
                 DELETE FROM adjustments; DELETE FROM settlement_runs; DELETE FROM settlement_leases; \
                 DELETE FROM rollup_video_stats; DELETE FROM rollup_creator_stats",
            )
            .await
            .expect("reset");
        if let Ok(mut table) = self.counts.0.lock() {
            table.clear();
            table.extend(initial.iter().copied());
        }
    }

    async fn settle(&self, d: u8) -> Result<(), TestCaseError> {
        self.settler.enqueue(&[day(d)]).await.expect("queued");
        while self.settler.run_next().await.expect("a run") {}
        let failed = self
            .db
            .query_one(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                "SELECT error FROM settlement_runs WHERE status <> 'succeeded' LIMIT 1",
            ))
            .await
            .expect("runs");
        if let Some(row) = failed {
            let error: Option<String> = row.try_get("", "error").unwrap_or_default();
            return Err(TestCaseError::fail(format!(
                "run of {} did not succeed: {error:?}",
                day(d)
            )));
        }
        Ok(())
    }

    async fn rows(&self) -> BTreeMap<(u8, u8), Row> {
        let rows = self
            .db
            .query_all(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                "SELECT video_id, day, views, ad_views, total_amount FROM daily_stats",
            ))
            .await
            .expect("rows");
        rows.iter()
            .map(|r| {
                let video: i64 = r.try_get("", "video_id").unwrap_or_default();
                let date: NaiveDate = r.try_get("", "day").unwrap_or_default();
                (
                    (u8::try_from(video).unwrap_or_default(), day_index(date)),
                    Row {
                        views: r.try_get("", "views").unwrap_or_default(),
                        ad_views: r.try_get("", "ad_views").unwrap_or_default(),
                        total: r.try_get("", "total_amount").unwrap_or_default(),
                    },
                )
            })
            .collect()
    }

    async fn transfers(&self) -> i64 {
        let row = self
            .db
            .query_one(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM ledger_transfers",
            ))
            .await
            .expect("count")
            .expect("a row");
        row.try_get("", "n").unwrap_or_default()
    }

    /// The roll-ups as summed here from `daily_stats`, and as stored:
    /// (table, period, start, creator, video or 0) → (days, six sums).
    async fn rollups(&self) -> (RollUps, RollUps) {
        let sums = "views, watch_seconds, ad_views, video_amount, ad_amount, total_amount";
        let read = |r: &sea_orm::QueryResult| -> [i64; 6] {
            sums.split(", ")
                .map(|c| r.try_get::<i64>("", c).unwrap_or(i64::MIN))
                .collect::<Vec<_>>()
                .try_into()
                .unwrap_or([i64::MIN; 6])
        };
        let backend = self.db.get_database_backend();
        let mut expected = RollUps::new();
        for r in self
            .db
            .query_all(sea_orm::Statement::from_string(
                backend,
                format!("SELECT day, creator_id, video_id, {sums} FROM daily_stats"),
            ))
            .await
            .expect("rows")
        {
            let date: NaiveDate = r.try_get("", "day").expect("day");
            let creator: i64 = r.try_get("", "creator_id").expect("creator");
            let video: i64 = r.try_get("", "video_id").expect("video");
            let row = read(&r);
            let mut add = |key: RollUpKey| {
                let entry = expected.entry(key).or_insert((0, [0; 6]));
                entry.0 += 1;
                for (total, value) in entry.1.iter_mut().zip(row) {
                    *total += value;
                }
            };
            for period in [Period::Week, Period::Month] {
                add((
                    "video",
                    period.as_str(),
                    period.range(date).0,
                    creator,
                    video,
                ));
            }
            for period in [Period::Day, Period::Week, Period::Month] {
                add(("creator", period.as_str(), period.range(date).0, creator, 0));
            }
        }
        let mut stored = RollUps::new();
        for (table, video) in [
            ("rollup_video_stats", "video_id"),
            ("rollup_creator_stats", "0 AS video_id"),
        ] {
            for r in self
                .db
                .query_all(sea_orm::Statement::from_string(
                    backend,
                    format!("SELECT period, period_start, creator_id, {video}, days, {sums} FROM {table}"),
                ))
                .await
                .expect("roll-ups")
            {
                let period: String = r.try_get("", "period").expect("period");
                let period = match period.as_str() {
                    "day" => Period::Day,
                    "week" => Period::Week,
                    _ => Period::Month,
                };
                let key = (
                    if video == "video_id" { "video" } else { "creator" },
                    period.as_str(),
                    r.try_get("", "period_start").expect("start"),
                    r.try_get("", "creator_id").expect("creator"),
                    r.try_get("", "video_id").expect("video"),
                );
                let previous = stored.insert(key, (r.try_get("", "days").expect("days"), read(&r)));
                assert!(previous.is_none(), "two roll-up rows for {key:?}");
            }
        }
        (expected, stored)
    }

    /// Runs one history against the model.
    async fn check(&self, initial: Vec<DayCounts>, ops: Vec<Op>) -> Result<(), TestCaseError> {
        self.reset(&initial).await;
        let mut model = Model::default();
        model.raw.extend(initial);
        for op in ops {
            match op {
                Op::Settle(d) => {
                    self.settle(d).await?;
                    model.settle(d);
                    // Nothing changed since: a second run posts nothing.
                    let before = self.transfers().await;
                    self.settle(d).await?;
                    prop_assert_eq!(
                        self.transfers().await,
                        before,
                        "an unchanged re-run of {} posted",
                        d
                    );
                }
                Op::Late {
                    video,
                    day: d,
                    views,
                    ad_views,
                } => {
                    let entry = model.raw.entry((video, d)).or_default();
                    entry.0 += views;
                    entry.1 += ad_views;
                    if let Ok(mut table) = self.counts.0.lock() {
                        let entry = table.entry((video, d)).or_default();
                        entry.0 += views;
                        entry.1 += ad_views;
                    }
                }
                Op::Adjust {
                    video,
                    day: d,
                    views_pct,
                    ads_pct,
                } => {
                    let (raw_v, raw_a) = model.raw.get(&(video, d)).copied().unwrap_or_default();
                    let (adj_v, adj_a) =
                        model.adjusted.get(&(video, d)).copied().unwrap_or_default();
                    let views = (raw_v - adj_v) * views_pct / 100;
                    let ad_views = (raw_a - adj_a) * ads_pct / 100;
                    let expected = model.adjust(video, d, views, ad_views);
                    let got = self
                        .settler
                        .adjust(NewAdjustment {
                            video_id: VideoId(i64::from(video)),
                            day: day(d),
                            views,
                            ad_views,
                            watch_seconds: 0,
                            reason: "bot traffic".to_owned(),
                            actor: 1,
                        })
                        .await;
                    match (expected, got) {
                        (Ok(clawed), Ok(a)) => prop_assert_eq!(a.amount_clawed_back, clawed),
                        (Err(field), Err(AdjustError::Field(f, _))) => prop_assert_eq!(f, field),
                        (expected, got) => {
                            return Err(TestCaseError::fail(format!(
                                "adjustment of video {video} day {d}: model {expected:?}, service {got:?}"
                            )));
                        }
                    }
                }
            }
            let violations = ledger::invariant_violations(&self.db)
                .await
                .expect("invariant");
            prop_assert!(violations.is_empty(), "ledger ≠ amounts: {:?}", violations);
            prop_assert_eq!(self.rows().await, model.rows.clone());
        }
        // A wrong roll-up difference stays wrong: checking at the end of
        // each history finds it (and keeps 10,000 histories in CI's time).
        let (expected, stored) = self.rollups().await;
        prop_assert_eq!(stored, expected, "roll-ups ≠ the sums of their days");
        let mismatches = rollups::mismatches(&self.db).await.expect("roll-up check");
        prop_assert!(
            mismatches.is_empty(),
            "the service's own check: {:?}",
            mismatches
        );
        Ok(())
    }
}

#[test]
fn the_ledger_matches_an_independent_model_over_random_histories() {
    let cases = std::env::var("LEDGER_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("ledger-model-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let engine = runtime.block_on(Engine::new(&dir));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&history(), |(initial, ops)| {
        runtime.block_on(engine.check(initial, ops))
    });
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        panic!("{e}");
    }
}
