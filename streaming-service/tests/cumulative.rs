//! The cumulative counts (`views_before`, `ad_views_before`: a video's
//! sums over every earlier day, its tier position) stay exact under writes
//! in any day order, on SQLite and on PostgreSQL (monthly partitions):
//! imports of single days and of several days, late days before the
//! latest, days past a gap of months, rows replaced with smaller counts.
//! After every write, every row is checked against the sums of its
//! video's earlier rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeDelta};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use streaming_service::{daily_counts::import, migration::Migrator};

/// A small deterministic generator (the test's histories are fixed by
/// their seed, so a failure reproduces).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Writes random days of videos 1..=4 over 14 months by import, and
/// checks every row's sums before it after each write against `model`.
async fn random_writes_keep_the_sums_exact(db: &DatabaseConnection, seed: u64) {
    db.execute_unprepared(
        "INSERT INTO videos (id, creator_id, title, description, duration_seconds, created_at) \
         VALUES (1, 10, 'a', '', 600, CURRENT_TIMESTAMP), (2, 10, 'b', '', 600, CURRENT_TIMESTAMP), \
                (3, 11, 'c', '', 600, CURRENT_TIMESTAMP), (4, 11, 'd', '', 600, CURRENT_TIMESTAMP)",
    )
    .await
    .unwrap();
    let first = NaiveDate::from_ymd_opt(2025, 10, 1).unwrap();
    let mut rng = Lcg(seed);
    // (video, day) → (views, ad views): what the table should hold.
    let mut model: BTreeMap<(i64, NaiveDate), (i64, i64)> = BTreeMap::new();
    for write in 0..40 {
        // One to three rows, distinct (video, day) pairs; days often near
        // each other (runs of days), sometimes far (gaps of months).
        let mut rows = BTreeMap::new();
        for _ in 0..=rng.below(3) {
            let video = 1 + i64::try_from(rng.below(4)).unwrap();
            let offset = if rng.below(3) == 0 {
                rng.below(425)
            } else {
                200 + rng.below(20)
            };
            let day = first + TimeDelta::days(i64::try_from(offset).unwrap());
            let counts = (
                i64::try_from(rng.below(1_000)).unwrap(),
                i64::try_from(rng.below(50)).unwrap(),
            );
            rows.insert((video, day), counts);
        }
        let csv: String =
            std::iter::once("video_id,day,views,watch_seconds,ad_views\n".to_owned())
                .chain(rows.iter().map(|((v, d), (views, ads))| {
                    format!("{v},{d},{views},{},{ads}\n", views * 30)
                }))
                .collect();
        let report = import(db, &csv).await.unwrap();
        assert_eq!(report.accepted, rows.len() as u64, "{:?}", report.rejected);
        model.extend(rows);
        let held = db
            .query_all(Statement::from_string(
                db.get_database_backend(),
                "SELECT video_id, CAST(day AS TEXT) AS day, views, ad_views, views_before, \
                   ad_views_before FROM daily_counts ORDER BY video_id, day",
            ))
            .await
            .unwrap();
        assert_eq!(held.len(), model.len(), "seed {seed}, write {write}");
        for row in held {
            let video: i64 = row.try_get("", "video_id").unwrap();
            let day: NaiveDate = row.try_get::<String>("", "day").unwrap().parse().unwrap();
            let (views_before, ads_before) = model
                .range((video, NaiveDate::MIN)..(video, day))
                .fold((0, 0), |(v, a), (_, c)| (v + c.0, a + c.1));
            assert_eq!(
                (
                    row.try_get::<i64>("", "views").unwrap(),
                    row.try_get::<i64>("", "ad_views").unwrap(),
                    row.try_get::<i64>("", "views_before").unwrap(),
                    row.try_get::<i64>("", "ad_views_before").unwrap(),
                ),
                (
                    model[&(video, day)].0,
                    model[&(video, day)].1,
                    views_before,
                    ads_before
                ),
                "seed {seed}, write {write}: video {video} on {day}"
            );
        }
    }
}

#[tokio::test]
async fn cumulative_counts_stay_exact_on_sqlite() {
    for seed in 1..=3 {
        let dir =
            std::env::temp_dir().join(format!("cumulative-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/streaming.db?mode=rwc", dir.display());
        let db = Database::connect(url).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        random_writes_keep_the_sums_exact(&db, seed).await;
        db.close().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test]
async fn cumulative_counts_stay_exact_on_postgres_across_partitions() {
    let server_url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = server_url
        .rsplit_once('/')
        .map_or(server_url.as_str(), |(b, _)| b)
        .to_owned();
    let server = Database::connect(&server_url).await.unwrap();
    for seed in 4..=6 {
        let name = format!("cumulative_{}", uuid::Uuid::new_v4().simple());
        server
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let db = Database::connect(format!("{base}/{name}")).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        random_writes_keep_the_sums_exact(&db, seed).await;
        db.close().await.unwrap();
        server
            .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
}
