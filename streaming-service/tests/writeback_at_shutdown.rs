//! The write-back at shutdown of the in-process store (issue 15, finding 6):
//! another writer holding the embedded database's lock for longer than
//! SQLite's busy timeout (5 s) must not make it lose the counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use common::time::PlatformTime;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use streaming_service::{
    clock::Clock,
    counting::{CounterStore, PlayEvent, memory::MemoryStore, writeback::Writeback},
    migration::Migrator,
};

async fn views_of(db: &DatabaseConnection, video_id: i64) -> i64 {
    db.query_one(Statement::from_string(
        db.get_database_backend(),
        format!(
            "SELECT COALESCE(SUM(views), 0) AS v FROM daily_counts WHERE video_id = {video_id}"
        ),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "v")
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_write_back_outlasts_a_held_lock() {
    let dir = std::env::temp_dir().join(format!("ssp-wb-{}", uuid::Uuid::new_v4().simple()));
    let db = common::database::connect(None, &dir, "streaming.db", 4)
        .await
        .unwrap();
    Migrator::up(&db, None).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let now = Utc::now();
    store
        .play(&PlayEvent {
            video_id: 1,
            viewer: "a@1.2.3.4".to_owned(),
            owner: false,
            session_id: "s1".to_owned(),
            duration_seconds: 600,
            now_ms: now.timestamp_millis(),
            day: PlatformTime::default().day_of(now),
            window_ms: 30_000,
            session_ttl_ms: 3_600_000,
        })
        .await
        .unwrap();

    // Another writer: one connection holding an exclusive transaction for
    // 12 s, past two busy timeouts.
    let locker = common::database::connect(None, &dir, "streaming.db", 1)
        .await
        .unwrap();
    locker.execute_unprepared("BEGIN EXCLUSIVE").await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(12)).await;
        locker.execute_unprepared("COMMIT").await.unwrap();
    });

    // Asked to stop at once: the write-back at start and the last one are
    // all that run, and the last one retries until the lock is gone.
    let writeback = Writeback::new(store.clone(), db.clone(), Duration::ZERO, Clock::new(None));
    writeback
        .run_every(Duration::from_secs(3_600), async {})
        .await;
    release.await.unwrap();
    assert_eq!(views_of(&db, 1).await, 1, "the view was written back");
    assert!(
        store.dirty().await.unwrap().is_empty(),
        "nothing left pending"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
