//! Issue 19 on PostgreSQL: `daily_stats` partitioned by month, partitions
//! made ahead and for any month settled, reports across a partition
//! boundary, and a month's round trip through a Parquet archive with the
//! same rows and the same report answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{NaiveDate, Utc};
use common::{
    domain::{CreatorId, Metric, Period, VideoId},
    partitions,
    time::PlatformTime,
};
use futures::{StreamExt, future::BoxFuture};
use proto::streaming::v1::DailyCount;
use revenue_service::{
    archive::{self, ArchiveError},
    cache::ReportCache,
    migration::Migrator,
    reports, rollups,
    settlement::{CountSource, NewAdjustment, PullError, RunLimits, Settler, Watermark},
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
use tokio::sync::mpsc;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Counts by (day, video): (views, ad views); cumulative counts summed on
/// read. Video v belongs to creator 100 + v % 3.
#[derive(Default)]
struct Counts(Mutex<BTreeMap<(NaiveDate, i64), (i64, i64)>>);

impl Counts {
    fn row(
        table: &BTreeMap<(NaiveDate, i64), (i64, i64)>,
        day: NaiveDate,
        video: i64,
    ) -> Option<DailyCount> {
        let &(views, ad_views) = table.get(&(day, video))?;
        let (before_views, before_ads) = table
            .iter()
            .filter(|((d, v), _)| *v == video && *d < day)
            .fold((0, 0), |(v, a), (_, c)| (v + c.0, a + c.1));
        Some(DailyCount {
            video_id: video,
            creator_id: 100 + video % 3,
            views,
            watch_seconds: views * 37,
            ad_views,
            cumulative_views_before: before_views,
            cumulative_ad_views_before: before_ads,
            title: format!("Video {video}"),
        })
    }

    fn table(&self) -> BTreeMap<(NaiveDate, i64), (i64, i64)> {
        self.0.lock().unwrap().clone()
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
        day: NaiveDate,
        after: VideoId,
        batch_rows: usize,
        sink: mpsc::Sender<Vec<DailyCount>>,
    ) -> BoxFuture<'_, Result<(), PullError>> {
        let table = self.table();
        Box::pin(async move {
            let rows: Vec<DailyCount> = table
                .keys()
                .filter(|(d, v)| *d == day && *v > after.0)
                .filter_map(|(d, v)| Self::row(&table, *d, *v))
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
                for (d, _) in table
                    .keys()
                    .filter(|(d, video)| *video == v.0 && (from..=to).contains(d))
                {
                    rows.extend(Self::row(&table, *d, v.0).map(|r| (*d, r)));
                }
            }
            Ok(rows)
        })
    }

    fn creator_of(&self, video: VideoId) -> BoxFuture<'_, Result<Option<CreatorId>, PullError>> {
        Box::pin(async move { Ok(Some(CreatorId(100 + video.0 % 3))) })
    }
}

/// A fresh revenue database on the machine's PostgreSQL, dropped by
/// [`Fixture::drop_database`].
struct Fixture {
    name: String,
    db: DatabaseConnection,
    counts: Arc<Counts>,
    settler: Settler,
}

impl Fixture {
    async fn new() -> Self {
        let name = format!("history_{}", uuid::Uuid::new_v4().simple());
        let server = Database::connect(format!("{POSTGRES}/postgres"))
            .await
            .unwrap();
        server
            .execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#))
            .await
            .unwrap();
        let db = Database::connect(format!("{POSTGRES}/{name}"))
            .await
            .unwrap();
        Migrator::up(&db, None).await.unwrap();
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
            name,
            db,
            counts,
            settler,
        }
    }

    async fn settle(&self, days: &[NaiveDate]) {
        self.settler.enqueue(days).await.unwrap();
        while self.settler.run_next().await.unwrap() {}
        let failed = self
            .db
            .query_one(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                "SELECT day, error FROM settlement_runs WHERE status <> 'succeeded' LIMIT 1",
            ))
            .await
            .unwrap();
        if let Some(row) = failed {
            let error: Option<String> = row.try_get("", "error").unwrap();
            panic!("a run failed: {error:?}");
        }
    }

    async fn drop_database(self) {
        self.db.close().await.unwrap();
        let server = Database::connect(format!("{POSTGRES}/postgres"))
            .await
            .unwrap();
        server
            .execute_unprepared(&format!(r#"DROP DATABASE "{}" WITH (FORCE)"#, self.name))
            .await
            .unwrap();
    }

    /// Every `daily_stats` row of `from..=to` as text, in (day, video)
    /// order.
    async fn rows(&self, from: NaiveDate, to: NaiveDate) -> Vec<String> {
        self.db
            .query_all(sea_orm::Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "SELECT CAST(ROW(day, video_id, creator_id, title, views, watch_seconds, ad_views, \
                   video_amount, ad_amount, total_amount, rate_card_version, original_views, \
                   original_ad_views, restated_at) AS TEXT) AS r \
                 FROM daily_stats WHERE day BETWEEN $1 AND $2 ORDER BY day, video_id",
                [from.into(), to.into()],
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("", "r").unwrap())
            .collect()
    }

    /// The answers of every report over October 2026 and the week across
    /// its end, as text.
    async fn reports(&self) -> Vec<String> {
        let db = &self.db;
        let mut answers = Vec::new();
        for metric in [Metric::Views, Metric::WatchTime] {
            for (period, start) in [
                (Period::Day, date(2026, 10, 30)),
                (Period::Week, date(2026, 10, 26)),
                (Period::Month, date(2026, 10, 1)),
                (Period::Month, date(2026, 11, 1)),
            ] {
                for creator in [None, Some(CreatorId(101))] {
                    let top = reports::top(db, metric, (period, start), 5, creator)
                        .await
                        .unwrap();
                    answers.push(format!(
                        "top {metric} {period} {start} {creator:?}: {top:?}"
                    ));
                }
            }
        }
        for creator in [100, 101, 102] {
            for (period, start) in [
                (Period::Day, date(2026, 10, 31)),
                (Period::Week, date(2026, 10, 26)),
                (Period::Month, date(2026, 10, 1)),
            ] {
                let earnings = reports::earnings(db, CreatorId(creator), (period, start))
                    .await
                    .unwrap();
                answers.push(format!("earnings {creator} {period} {start}: {earnings:?}"));
            }
            let by_day = reports::earnings_by_day(
                db,
                CreatorId(creator),
                (date(2026, 10, 1), date(2026, 11, 30)),
            )
            .await
            .unwrap();
            answers.push(format!("by day {creator}: {by_day:?}"));
        }
        for video in 1..=4 {
            let days =
                reports::video_days(db, VideoId(video), (date(2026, 10, 26), date(2026, 11, 1)))
                    .await
                    .unwrap();
            answers.push(format!("video {video}: {days:?}"));
        }
        answers
    }
}

/// Nine days from Monday 26 October to Tuesday 3 November 2026 (the ISO
/// week of 26 October ends on 1 November), twelve videos with counts that
/// cross tiers, one adjustment (original counts and a restated row).
async fn settled_fixture() -> Fixture {
    let fixture = Fixture::new().await;
    {
        let mut table = fixture.counts.0.lock().unwrap();
        let mut day = date(2026, 10, 26);
        let mut i: i64 = 0;
        while day <= date(2026, 11, 3) {
            for video in 1..=12 {
                i += 1;
                table.insert(
                    (day, video),
                    ((i * 7_919) % 300_000, (i * 104_729) % 90_000),
                );
            }
            day = day.succ_opt().unwrap();
        }
    }
    let days: Vec<NaiveDate> = date(2026, 10, 26)
        .iter_days()
        .take_while(|d| *d <= date(2026, 11, 3))
        .collect();
    fixture.settle(&days).await;
    fixture
        .settler
        .adjust(NewAdjustment {
            video_id: VideoId(2),
            day: date(2026, 10, 28),
            views: 1_000,
            ad_views: 500,
            watch_seconds: 0,
            reason: "bot traffic".to_owned(),
            actor: 1,
        })
        .await
        .unwrap();
    fixture
}

#[tokio::test]
async fn partitions_exist_ahead_and_reports_span_their_boundary() {
    let fixture = settled_fixture().await;
    let db = &fixture.db;
    for table in revenue_service::MONTHLY_TABLES {
        let months = partitions::months(db, table).await.unwrap();
        // Ahead of today (the migration and every run make them).
        let this_month = partitions::month_of(Utc::now().date_naive());
        for ahead in 0..=partitions::MONTHS_AHEAD {
            let month = this_month
                .checked_add_months(chrono::Months::new(ahead))
                .unwrap();
            assert!(
                months.contains(&month),
                "no partition of {table} for {month}: {months:?}"
            );
        }
        assert!(months.contains(&date(2026, 10, 1)) && months.contains(&date(2026, 11, 1)));
    }
    // A day of a month long gone gets its partition when it is settled.
    fixture
        .counts
        .0
        .lock()
        .unwrap()
        .insert((date(2025, 3, 14), 1), (5, 1));
    fixture.settle(&[date(2025, 3, 14)]).await;
    for table in revenue_service::MONTHLY_TABLES {
        let months = partitions::months(db, table).await.unwrap();
        assert!(months.contains(&date(2025, 3, 1)), "{table}: {months:?}");
    }
    // Its earning is in the ledger's month; a transfer of no day (a
    // payout) goes to the undated partition, and a dated one cannot.
    let partition_of = |day: &str| {
        format!("SELECT tableoid::regclass::text AS p FROM ledger_transfers WHERE day {day}")
    };
    let earning = db
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            partition_of("= '2025-03-14'"),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        earning.try_get::<String>("", "p").unwrap(),
        "ledger_transfers_p202503"
    );
    db.execute_unprepared(
        "INSERT INTO ledger_transfers (creator_id, posting_id, amount, kind, debit_account, \
           credit_account) VALUES (7, 1, 100, 4, 0, 2)",
    )
    .await
    .unwrap();
    let payout = db
        .query_one(Statement::from_string(
            DbBackend::Postgres,
            partition_of("IS NULL"),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        payout.try_get::<String>("", "p").unwrap(),
        "ledger_transfers_undated"
    );
    let dated = db
        .execute_unprepared(
            "INSERT INTO ledger_transfers_undated (creator_id, transfer_id, posting_id, amount, \
               day, kind, debit_account, credit_account) \
             VALUES (7, 999999, 1, 100, '2025-03-14', 1, 1, 0)",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(dated.contains("check constraint"), "{dated}");
    assert_eq!(
        fixture
            .rows(date(2025, 3, 1), date(2025, 3, 31))
            .await
            .len(),
        1
    );

    // The week of 26 October reads both months' partitions: 7 days of
    // video 1, 6 in October and 1 in November, and its roll-up equals them.
    let days = reports::video_days(db, VideoId(1), (date(2026, 10, 26), date(2026, 11, 1)))
        .await
        .unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days.last().unwrap().day, date(2026, 11, 1));
    let week_views: i64 = days.iter().map(|d| d.tally.views).sum();
    let week = reports::earnings(db, CreatorId(101), (Period::Week, date(2026, 10, 26)))
        .await
        .unwrap();
    let video_1 = week.iter().find(|v| v.video_id == VideoId(1)).unwrap();
    assert_eq!(video_1.tally.views, week_views);
    // The CSV export's pages (`StreamRevenues`): in pages of 1, 2, 3 or
    // more than the videos, the same videos in the same order; every page
    // full but the last, which is short (empty when the pages divide).
    for (period, start) in [
        (Period::Day, date(2026, 10, 31)),
        (Period::Week, date(2026, 10, 26)),
        (Period::Month, date(2026, 10, 1)),
    ] {
        let all = reports::earnings(db, CreatorId(101), (period, start))
            .await
            .unwrap();
        assert!(all.len() >= 2, "{all:?}");
        for page in [1_u64, 2, 3, 1_000] {
            let pages: Vec<Vec<reports::VideoEarnings>> =
                reports::earnings_pages(db.clone(), CreatorId(101), (period, start), page)
                    .map(Result::unwrap)
                    .collect()
                    .await;
            let size = usize::try_from(page).unwrap();
            assert_eq!(pages.concat(), all, "{period} in pages of {page}");
            assert_eq!(pages.len(), all.len() / size + 1);
            let (last, full) = pages.split_last().unwrap();
            assert!(full.iter().all(|p| p.len() == size) && last.len() < size);
        }
    }
    assert_eq!(
        video_1.tally.total_amount.0,
        days.iter().map(|d| d.tally.total_amount.0).sum::<i64>()
    );
    // The top of the week across the boundary, from the roll-up, is the
    // ranking of the days' sums.
    let mut sums: BTreeMap<i64, i64> = BTreeMap::new();
    for video in 1..=12 {
        let days = reports::video_days(db, VideoId(video), (date(2026, 10, 26), date(2026, 11, 1)))
            .await
            .unwrap();
        sums.insert(video, days.iter().map(|d| d.tally.views).sum());
    }
    let mut ranked: Vec<(i64, i64)> = sums.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top = reports::top(
        db,
        Metric::Views,
        (Period::Week, date(2026, 10, 26)),
        5,
        None,
    )
    .await
    .unwrap();
    let top: Vec<(i64, i64)> = top.iter().map(|t| (t.video_id.0, t.value)).collect();
    assert_eq!(top, ranked[..5].to_vec());
    assert!(rollups::mismatches(db).await.unwrap().is_empty());
    fixture.drop_database().await;
}

#[tokio::test]
async fn a_month_archived_to_parquet_and_restored_answers_the_same_reports() {
    let fixture = settled_fixture().await;
    let db = &fixture.db;
    let today = date(2026, 11, 30);
    let october = (date(2026, 10, 1), date(2026, 10, 31));
    let rows_before = fixture.rows(october.0, october.1).await;
    assert_eq!(rows_before.len(), 6 * 12);
    // The optional columns are exercised: an adjusted, restated row.
    let adjusted = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM daily_stats WHERE day = '2026-10-28' \
               AND original_views IS NOT NULL AND restated_at IS NOT NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(adjusted.try_get::<i64>("", "n").unwrap(), 1);
    let reports_before = fixture.reports().await;
    let dir = std::env::temp_dir().join(format!("archive-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("2026-10.parquet");

    // Refused: the current month, a month with no partition.
    assert!(matches!(
        archive::export_month(db, date(2026, 11, 5), (today, 3), &file).await,
        Err(ArchiveError::NotOver(..))
    ));
    // October 31 is final only from November 4 (3 days after it).
    assert!(matches!(
        archive::export_month(db, date(2026, 10, 1), (date(2026, 11, 3), 3), &file).await,
        Err(ArchiveError::NotOver(..))
    ));
    assert!(matches!(
        archive::export_month(db, date(2024, 1, 1), (today, 3), &file).await,
        Err(ArchiveError::NoPartition(..))
    ));
    assert!(!file.exists());

    let exported = archive::export_month(db, date(2026, 10, 15), (today, 3), &file)
        .await
        .unwrap();
    assert_eq!(exported.month, date(2026, 10, 1));
    assert_eq!(exported.rows, 72);
    assert!(file.exists());
    let months = partitions::months(db, "daily_stats").await.unwrap();
    assert!(!months.contains(&date(2026, 10, 1)), "{months:?}");
    assert!(fixture.rows(october.0, october.1).await.is_empty());
    // The week's and month's reports still answer from the roll-ups.
    let top = reports::top(
        db,
        Metric::Views,
        (Period::Month, date(2026, 10, 1)),
        5,
        None,
    )
    .await
    .unwrap();
    assert_eq!(top.len(), 5);
    // The archive is never overwritten; the month, once archived, has no
    // partition to export.
    let archived = std::fs::read(&file).unwrap();
    assert!(matches!(
        archive::export_month(db, date(2026, 10, 1), (today, 3), &file).await,
        Err(ArchiveError::Refused(why)) if why.contains("exists")
    ));
    assert_eq!(std::fs::read(&file).unwrap(), archived);
    let again = file.with_extension("again.parquet");
    assert!(matches!(
        archive::export_month(db, date(2026, 10, 1), (today, 3), &again).await,
        Err(ArchiveError::NoPartition(..))
    ));
    assert!(!again.exists());
    // Settling a day of the archived month again is refused: its rows are
    // in the file, the ledger and the roll-ups, and would be paid twice.
    let transfers = |db: &DatabaseConnection| {
        let db = db.clone();
        async move {
            db.query_one(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM ledger_transfers",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap()
        }
    };
    let before = transfers(db).await;
    fixture
        .settler
        .enqueue(&[date(2026, 10, 30)])
        .await
        .unwrap();
    while fixture.settler.run_next().await.unwrap() {}
    let error: Option<String> = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT error FROM settlement_runs WHERE day = '2026-10-30' ORDER BY id DESC LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "error")
        .unwrap();
    assert!(
        error.as_deref().is_some_and(|e| e.contains("archived")),
        "{error:?}"
    );
    assert_eq!(transfers(db).await, before);
    assert!(
        !partitions::months(db, "daily_stats")
            .await
            .unwrap()
            .contains(&date(2026, 10, 1))
    );

    // A loading table left by an interrupted restore, and an empty
    // partition of the month made meanwhile, are both replaced.
    db.execute_unprepared("CREATE TABLE daily_stats_p202610_restoring (leftover INT)")
        .await
        .unwrap();
    db.execute_unprepared(
        "CREATE TABLE daily_stats_p202610 PARTITION OF daily_stats \
         FOR VALUES FROM ('2026-10-01') TO ('2026-11-01')",
    )
    .await
    .unwrap();
    let restored = archive::restore_month(db, &file).await.unwrap();
    assert_eq!(restored, exported);
    // Its key and indexes were adopted, not built twice; nothing of the
    // load is left.
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            db.query_one(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap()
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM pg_indexes WHERE tablename = 'daily_stats_p202610'").await,
        count("SELECT COUNT(*) AS n FROM pg_indexes WHERE tablename = 'daily_stats_p202611'").await,
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) AS n FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid \
             WHERE x.indrelid = 'daily_stats_p202610'::regclass"
        )
        .await,
        count("SELECT COUNT(*) AS n FROM pg_indexes WHERE tablename = 'daily_stats'").await,
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM pg_class WHERE relname = 'daily_stats_p202610_restoring'")
            .await,
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM pg_constraint WHERE conname = 'restoring_month'").await,
        0
    );
    assert_eq!(fixture.rows(october.0, october.1).await, rows_before);
    assert_eq!(fixture.reports().await, reports_before);
    assert!(rollups::mismatches(db).await.unwrap().is_empty());
    // Restoring again would mix rows: refused, nothing changes.
    assert!(matches!(
        archive::restore_month(db, &file).await,
        Err(ArchiveError::NotEmpty(_, 72))
    ));
    assert_eq!(fixture.rows(october.0, october.1).await, rows_before);

    // A load that fails leaves nothing: a file whose second row group is
    // of another month, and one whose rows repeat a key.
    let row = |day: NaiveDate, video_id: i64| -> archive::Row {
        use archive::Cell::{Date, Int, Null, Text};
        let mut row = vec![
            Date(day),
            Int(video_id),
            Int(7),
            Text("restored".to_owned()),
        ];
        row.extend([1, 2, 3, 4, 5, 9, 1].map(Int));
        row.extend([Null, Null, Null]);
        row
    };
    let months_before = partitions::months(db, "daily_stats").await.unwrap();
    let september = date(2026, 9, 3);
    for (groups, refused) in [
        (
            vec![vec![row(september, 1)], vec![row(date(2026, 10, 3), 1)]],
            "several months",
        ),
        (
            vec![vec![row(september, 1)], vec![row(september, 1)]],
            "database",
        ),
    ] {
        let bad = dir.join("bad.parquet");
        archive::write_rows(&bad, &groups).unwrap();
        let error = archive::restore_month(db, &bad).await.unwrap_err();
        assert!(error.to_string().contains(refused), "{error}");
        assert_eq!(
            count(
                "SELECT COUNT(*) AS n FROM pg_class WHERE relname = 'daily_stats_p202609_restoring'"
            )
            .await,
            0
        );
        assert_eq!(
            partitions::months(db, "daily_stats").await.unwrap(),
            months_before
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    fixture.drop_database().await;
}
