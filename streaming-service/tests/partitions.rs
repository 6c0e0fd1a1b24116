//! Issue 19 on PostgreSQL: `daily_counts` is partitioned by month; the
//! months ahead exist once the schema is migrated and made ahead, and an
//! import makes exactly the months of its days, whose rows then read back
//! like any other (the settlement's pull crosses a partition boundary).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use common::partitions;
use sea_orm::{ConnectionTrait, Database, Statement};
use sea_orm_migration::MigratorTrait;
use streaming_service::{daily_counts::import, migration::Migrator};

fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[tokio::test]
async fn months_are_made_ahead_and_for_every_imported_day() {
    let name = format!("partitions_{}", uuid::Uuid::new_v4().simple());
    let server = Database::connect(server_url()).await.unwrap();
    server
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = server_url();
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    let db = Database::connect(format!("{base}/{name}")).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    assert!(
        partitions::is_partitioned(&db, "daily_counts")
            .await
            .unwrap()
    );
    let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    partitions::ensure_ahead(&db, "daily_counts", today)
        .await
        .unwrap();
    let months = partitions::months(&db, "daily_counts").await.unwrap();
    for month in ["2026-11-01", "2026-12-01", "2027-01-01"] {
        let month: NaiveDate = month.parse().unwrap();
        assert!(months.contains(&month), "{month} missing: {months:?}");
    }
    db.execute_unprepared(
        "INSERT INTO videos (id, creator_id, title, description, duration_seconds, created_at) \
         VALUES (7, 70, 'Seven', '', 600, now())",
    )
    .await
    .unwrap();
    let report = import(
        &db,
        "video_id,day,views,watch_seconds,ad_views\n\
         7,2019-02-14,5,50,1\n\
         7,2026-10-31,10,100,2\n\
         7,2026-11-01,20,200,3\n",
    )
    .await
    .unwrap();
    assert_eq!(report.accepted, 3, "{:?}", report.rejected);
    let months = partitions::months(&db, "daily_counts").await.unwrap();
    assert!(
        months.contains(&"2019-02-01".parse().unwrap()),
        "{months:?}"
    );
    assert!(
        months.contains(&"2026-10-01".parse().unwrap()),
        "{months:?}"
    );
    assert!(
        !months.contains(&"2019-03-01".parse().unwrap()),
        "no month between the imported ones is made: {months:?}"
    );
    // Across the October/November boundary, in one read, with the
    // cumulative counts the import refreshed.
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(day AS TEXT) AS day, views, views_before FROM daily_counts \
             WHERE video_id = 7 AND day BETWEEN '2026-10-26' AND '2026-11-01' ORDER BY day",
        ))
        .await
        .unwrap();
    let rows: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "day").unwrap(),
                r.try_get("", "views").unwrap(),
                r.try_get("", "views_before").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("2026-10-31".to_owned(), 10, 5),
            ("2026-11-01".to_owned(), 20, 15)
        ]
    );
    db.close().await.unwrap();
    server
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}
