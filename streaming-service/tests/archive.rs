//! Issue 19 on PostgreSQL: months of `daily_counts` archived to Parquet
//! files (oldest first, once over and written back) and restored (newest
//! first). While a month is archived its days are refused (import, the
//! settlement's pull) and the cumulative counts of later days still count
//! it, from each video's carry; after the round trip every row is as it
//! was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use common::{
    archive::{ArchiveError, Cell, Groups},
    partitions,
    time::PlatformTime,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use streaming_service::{
    daily_counts::{archive, import},
    error::StreamingError,
    migration::Migrator,
};

fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Every column of every row of `daily_counts`, as text, in key order.
async fn rows(db: &DatabaseConnection, filter: &str) -> Vec<String> {
    db.query_all(Statement::from_string(
        db.get_database_backend(),
        format!(
            "SELECT CONCAT_WS('|', video_id, day, views, watch_seconds, ad_views, views_before, \
               ad_views_before, COALESCE(last_batch, '-'), COALESCE(last_batch_seq, -1)) AS r \
             FROM daily_counts {filter} ORDER BY video_id, day"
        ),
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| r.try_get::<String>("", "r").unwrap())
    .collect()
}

/// `(video_id, views, ad_views)` of every carry row.
async fn carry(db: &DatabaseConnection) -> Vec<(i64, i64, i64)> {
    db.query_all(Statement::from_string(
        db.get_database_backend(),
        "SELECT video_id, views, ad_views FROM daily_counts_carry ORDER BY video_id",
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.try_get("", "video_id").unwrap(),
            r.try_get("", "views").unwrap(),
            r.try_get("", "ad_views").unwrap(),
        )
    })
    .collect()
}

/// `views_before` of `video` on `day`.
async fn views_before(db: &DatabaseConnection, video: i64, day: &str) -> i64 {
    db.query_one(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT views_before FROM daily_counts WHERE video_id = {video} AND day = '{day}'"),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "views_before")
    .unwrap()
}

async fn set_watermark(db: &DatabaseConnection, at: &str) {
    db.execute_unprepared(&format!(
        "INSERT INTO watermarks (id, written_back_until) VALUES (1, '{at}') \
         ON CONFLICT (id) DO UPDATE SET written_back_until = excluded.written_back_until"
    ))
    .await
    .unwrap();
}

/// A new migrated database: (the server, the database, its name).
async fn fresh() -> (DatabaseConnection, DatabaseConnection, String) {
    let name = format!("archive_{}", uuid::Uuid::new_v4().simple());
    let server = Database::connect(server_url()).await.unwrap();
    server
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = server_url();
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    let db = Database::connect(format!("{base}/{name}")).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    (server, db, name)
}

#[tokio::test]
async fn months_of_counts_go_oldest_first_and_come_back_newest_first_and_later_days_keep_counting_them()
 {
    let (server, db, name) = fresh().await;
    db.execute_unprepared(
        "INSERT INTO videos (id, creator_id, title, description, duration_seconds, created_at) \
         VALUES (7, 70, 'Seven', '', 600, now()), (8, 80, 'Eight', '', 600, now()), \
                (9, 90, 'Nine', '', 600, now())",
    )
    .await
    .unwrap();
    let report = import(
        &db,
        "video_id,day,views,watch_seconds,ad_views\n\
         7,2026-09-10,5,50,1\n\
         7,2026-10-02,10,100,2\n\
         7,2026-10-31,20,200,3\n\
         8,2026-10-15,4,40,0\n\
         9,2026-11-03,7,70,1\n",
    )
    .await
    .unwrap();
    assert_eq!(report.accepted, 5, "{:?}", report.rejected);
    // A write-back's batch token and sequence travel with the row.
    db.execute_unprepared(
        "UPDATE daily_counts SET last_batch = 'batch-1', last_batch_seq = 3 \
         WHERE video_id = 7 AND day = '2026-10-31'",
    )
    .await
    .unwrap();
    let all_before = rows(&db, "").await;
    let october_before = rows(&db, "WHERE day BETWEEN '2026-10-01' AND '2026-10-31'").await;
    assert_eq!(october_before.len(), 3);
    assert_eq!(views_before(&db, 7, "2026-10-31").await, 15);

    let dir = std::env::temp_dir().join(format!("counts-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (september_file, october_file) = (dir.join("2026-09.parquet"), dir.join("2026-10.parquet"));
    let time = PlatformTime::default(); // Asia/Seoul
    let today = date(2026, 11, 30);

    // Refused: a month not over, one not written back (21:00 on October
    // 31 in Seoul), one whose earlier month still holds counts.
    set_watermark(&db, "2026-10-31T12:00:00Z").await;
    for (month, today) in [(date(2026, 11, 1), today), (date(2026, 10, 1), today)] {
        assert!(matches!(
            archive::export_month(&db, month, (today, &time), &october_file).await,
            Err(ArchiveError::NotOver(..))
        ));
    }
    set_watermark(&db, "2026-11-01T00:00:00Z").await;
    assert!(matches!(
        archive::export_month(
            &db,
            date(2026, 10, 31),
            (date(2026, 10, 31), &time),
            &october_file
        )
        .await,
        Err(ArchiveError::NotOver(..))
    ));
    match archive::export_month(&db, date(2026, 10, 1), (today, &time), &october_file).await {
        Err(ArchiveError::Refused(why)) => assert!(why.contains("2026-09"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(!october_file.exists());
    assert_eq!(rows(&db, "").await, all_before);

    let september = archive::export_month(&db, date(2026, 9, 1), (today, &time), &september_file)
        .await
        .unwrap();
    assert_eq!((september.rows, september.checksum), (1, 5));
    let october = archive::export_month(&db, date(2026, 10, 20), (today, &time), &october_file)
        .await
        .unwrap();
    assert_eq!(
        (october.month, october.rows, october.checksum),
        (date(2026, 10, 1), 3, 34)
    );
    let months = partitions::months(&db, "daily_counts").await.unwrap();
    assert!(!months.contains(&date(2026, 9, 1)) && !months.contains(&date(2026, 10, 1)));
    assert_eq!(rows(&db, "").await, all_before[all_before.len() - 1..]);
    assert_eq!(carry(&db).await, [(7, 35, 6), (8, 4, 0)]);
    assert_eq!(
        archive::archived_through(&db).await.unwrap(),
        Some(date(2026, 10, 31))
    );

    // Archived days are refused: an import row (the others apply), the
    // settlement's pull.
    let report = import(
        &db,
        "video_id,day,views,watch_seconds,ad_views\n\
         7,2026-10-20,1,10,0\n\
         8,2026-11-05,3,30,1\n\
         7,2026-11-04,1,10,0\n",
    )
    .await
    .unwrap();
    assert_eq!(report.accepted, 2);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].line, 2);
    assert!(
        report.rejected[0].reason.contains("archived"),
        "{:?}",
        report.rejected
    );
    assert!(matches!(
        archive::refuse_archived(&db, date(2026, 10, 31)).await,
        Err(StreamingError::MonthArchived(_))
    ));
    archive::refuse_archived(&db, date(2026, 11, 1))
        .await
        .unwrap();
    // Later days count the archived ones: video 8's only earlier day, and
    // all of video 7's, are in the carry.
    assert_eq!(views_before(&db, 8, "2026-11-05").await, 4);
    assert_eq!(views_before(&db, 7, "2026-11-04").await, 35);
    assert_eq!(views_before(&db, 9, "2026-11-03").await, 0);

    // An archive is never overwritten, even by a refused export.
    let october_bytes = std::fs::read(&october_file).unwrap();
    match archive::export_month(&db, date(2026, 10, 1), (today, &time), &october_file).await {
        Err(ArchiveError::Refused(why)) => assert!(why.contains("exists"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&october_file).unwrap(), october_bytes);

    // A file whose rows differ from what was archived (one view more) is
    // refused, and nothing changes.
    let mut groups = Groups::open(&archive::TABLE, &october_file).unwrap();
    let mut tampered_rows = groups.next_group().unwrap().unwrap();
    assert!(groups.next_group().unwrap().is_none());
    if let Cell::Int(views) = &mut tampered_rows[0][2] {
        *views += 1;
    }
    let tampered = dir.join("2026-10-tampered.parquet");
    common::archive::write_rows(&archive::TABLE, &tampered, &[tampered_rows]).unwrap();
    match archive::restore_month(&db, &tampered).await {
        Err(ArchiveError::Refused(why)) => assert!(why.contains("were archived"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(carry(&db).await, [(7, 35, 6), (8, 4, 0)]);
    assert!(
        !partitions::months(&db, "daily_counts")
            .await
            .unwrap()
            .contains(&date(2026, 10, 1))
    );

    // Months come back newest first, exactly as they went.
    match archive::restore_month(&db, &september_file).await {
        Err(ArchiveError::Refused(why)) => assert!(why.contains("newest"), "{why}"),
        other => panic!("{other:?}"),
    }
    let restored = archive::restore_month(&db, &october_file).await.unwrap();
    assert_eq!(restored, october);
    assert_eq!(
        rows(&db, "WHERE day BETWEEN '2026-10-01' AND '2026-10-31'").await,
        october_before
    );
    assert_eq!(carry(&db).await, [(7, 5, 1)]);
    assert_eq!(
        archive::archived_through(&db).await.unwrap(),
        Some(date(2026, 9, 30))
    );
    // A refresh across the restored month finds the same sums.
    let after_october = rows(&db, "").await;
    streaming_service::daily_counts::refresh_cumulative(&db, &[7, 8, 9], date(2026, 10, 1))
        .await
        .unwrap();
    assert_eq!(rows(&db, "").await, after_october);
    archive::restore_month(&db, &september_file).await.unwrap();
    assert!(carry(&db).await.is_empty());
    assert_eq!(archive::archived_through(&db).await.unwrap(), None);
    // Everything as before, plus November's two imported days.
    let mut expected = all_before.clone();
    expected.extend(rows(&db, "WHERE day IN ('2026-11-04', '2026-11-05')").await);
    expected.sort_by_key(|r| {
        let mut fields = r.split('|');
        (
            fields.next().unwrap().parse::<i64>().unwrap(),
            fields.next().unwrap().to_owned(),
        )
    });
    assert_eq!(rows(&db, "").await, expected);
    // Nothing archived: restoring again is refused.
    assert!(matches!(
        archive::restore_month(&db, &october_file).await,
        Err(ArchiveError::Refused(_))
    ));

    std::fs::remove_dir_all(&dir).unwrap();
    drop(db);
    server
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}

/// An import's batch waits for a running export (the archive lock), then
/// finds the month archived and writes nothing of it: without the lock it
/// would have written into a month whose sums are already in the carry.
#[tokio::test]
async fn an_import_waits_for_a_running_export_and_then_refuses_its_month() {
    let (server, db, name) = fresh().await;
    db.execute_unprepared(
        "INSERT INTO videos (id, creator_id, title, description, duration_seconds, created_at) \
         VALUES (7, 70, 'Seven', '', 600, now())",
    )
    .await
    .unwrap();
    let header = "video_id,day,views,watch_seconds,ad_views\n";
    import(&db, &format!("{header}7,2026-10-02,10,100,2\n"))
        .await
        .unwrap();

    // An export in progress: it holds the lock, and records October as
    // archived when it commits.
    let exporter = db.begin().await.unwrap();
    exporter
        .execute_unprepared(&common::archive::lock(&archive::TABLE, false))
        .await
        .unwrap();
    let importing = {
        let db = db.clone();
        let csv = format!("{header}7,2026-10-05,5,50,1\n");
        tokio::spawn(async move { import(&db, &csv).await })
    };
    // The import's batch is waiting on the lock (an import that did not
    // take it would finish instead, and never be seen waiting).
    for attempt in 0.. {
        assert!(
            attempt < 1_500 && !importing.is_finished(),
            "the import's batch did not wait for the archive lock"
        );
        let waiting: i64 = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "n")
            .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    exporter
        .execute_unprepared(
            "INSERT INTO daily_counts_archives (month, rows, views, ad_views, archived_at) \
             VALUES (DATE '2026-10-01', 1, 10, 2, now())",
        )
        .await
        .unwrap();
    exporter.commit().await.unwrap();
    match importing.await.unwrap() {
        Err(StreamingError::MonthArchived(day)) => assert_eq!(day, date(2026, 10, 5)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rows(&db, "").await,
        ["7|2026-10-02|10|100|2|0|0|-|-1"],
        "the waiting batch wrote nothing"
    );

    drop(db);
    server
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}
