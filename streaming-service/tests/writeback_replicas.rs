//! Write-backs of several replicas over one counter store and one database
//! (SPEC §5, issue 20): a replica that took a batch another replica is
//! committing must not apply it a second time, even when the other replica
//! commits the bucket's next batch in between. A compose simulation with 3
//! streaming replicas once ended with one video's watch time 2,619 s high:
//! that interleaving, when the row kept only the last batch's token.
//!
//! A late release must not hide the bucket's next pending batch either.
//!
//! Against the real Redis and PostgreSQL (`TEST_REDIS_URL`,
//! `TEST_DATABASE_URL`), and the in-process store on SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use common::time::PlatformTime;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use secrecy::SecretString;
use streaming_service::{
    clock::Clock,
    counting::{
        Bucket, CounterStore, Counts, PauseEvent, PlayEvent, Taken, memory::MemoryStore,
        redis::RedisStore, writeback::Writeback,
    },
    migration::Migrator,
};

/// Event time of the plays, Unix ms.
const T0: i64 = 1_790_000_000_000;
const VIDEO: i64 = 41;

fn day() -> NaiveDate {
    PlatformTime::default().day_of(DateTime::<Utc>::from_timestamp_millis(T0).unwrap())
}

fn bucket() -> Bucket {
    Bucket {
        video_id: VIDEO,
        day: day(),
    }
}

fn play(viewer: &str, session: &str) -> PlayEvent {
    PlayEvent {
        video_id: VIDEO,
        viewer: viewer.to_owned(),
        owner: false,
        session_id: session.to_owned(),
        duration_seconds: 3_600,
        now_ms: T0,
        day: day(),
        window_ms: 30_000,
        session_ttl_ms: 86_400_000,
    }
}

/// A report at `position` seconds, that many seconds after the play: it
/// adds the seconds since the session's last report.
fn pause(viewer: &str, session: &str, position: i32) -> PauseEvent {
    PauseEvent {
        video_id: VIDEO,
        viewer: viewer.to_owned(),
        owner: false,
        session_id: session.to_owned(),
        position_seconds: position,
        duration_seconds: 3_600,
        ads_served: false,
        now_ms: T0 + i64::from(position) * 1_000,
        day: day(),
        window_ms: 30_000,
        session_ttl_ms: 86_400_000,
    }
}

/// The video's counts in `daily_counts`.
async fn counted(db: &DatabaseConnection) -> Counts {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT CAST(COALESCE(SUM(views), 0) AS BIGINT) AS v, \
                 CAST(COALESCE(SUM(watch_seconds), 0) AS BIGINT) AS w, \
                 CAST(COALESCE(SUM(ad_views), 0) AS BIGINT) AS a \
                 FROM daily_counts WHERE video_id = {VIDEO}"
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    Counts {
        views: row.try_get("", "v").unwrap(),
        watch_seconds: row.try_get("", "w").unwrap(),
        ad_views: row.try_get("", "a").unwrap(),
    }
}

/// Replica A commits a batch that replica B also took, then the bucket's
/// next batch; B's late commit of the first batch must change nothing.
async fn a_late_commit_of_an_applied_batch_changes_nothing(
    store: Arc<dyn CounterStore>,
    db: DatabaseConnection,
) {
    Migrator::up(&db, None).await.unwrap();
    let replica = |store: &Arc<dyn CounterStore>| {
        Writeback::new(store.clone(), db.clone(), Duration::ZERO, Clock::new(None))
    };
    let (a, b) = (replica(&store), replica(&store));
    store.play(&play("a@10.0.0.1", "s1")).await.unwrap();
    store.pause(&pause("a@10.0.0.1", "s1", 600)).await.unwrap();

    let first = a.take(&[bucket()]).await.unwrap();
    let also_first = b.take(&[bucket()]).await.unwrap();
    assert_eq!(first, also_first, "B took the batch A is committing");
    a.commit(&first).await.unwrap();
    a.release(&first).await.unwrap();

    store.pause(&pause("a@10.0.0.1", "s1", 900)).await.unwrap();
    let next = a.take(&[bucket()]).await.unwrap();
    assert_eq!(next[0].counts.watch_seconds, 300);
    assert!(next[0].seq > first[0].seq, "{next:?} after {first:?}");
    a.commit(&next).await.unwrap();
    a.release(&next).await.unwrap();

    // B, slow, commits what it took long ago, and commits it once more as a
    // write-back interrupted before its release would.
    b.commit(&also_first).await.unwrap();
    b.commit(&also_first).await.unwrap();
    b.release(&also_first).await.unwrap();
    assert_eq!(
        counted(&db).await,
        Counts {
            views: 1,
            watch_seconds: 900,
            ad_views: 0
        },
        "each batch applied once"
    );
    assert!(store.take(bucket(), "empty").await.unwrap().is_none());

    // A batch without a sequence (left pending by a release before
    // sequences) applies once, by its token.
    let legacy = Taken {
        bucket: bucket(),
        token: uuid::Uuid::new_v4().to_string(),
        seq: None,
        counts: Counts {
            views: 2,
            watch_seconds: 50,
            ad_views: 1,
        },
    };
    a.commit(std::slice::from_ref(&legacy)).await.unwrap();
    b.commit(std::slice::from_ref(&legacy)).await.unwrap();
    assert_eq!(
        counted(&db).await,
        Counts {
            views: 3,
            watch_seconds: 950,
            ad_views: 1
        }
    );
    // And a batch with a sequence still applies after it.
    store
        .pause(&pause("a@10.0.0.1", "s1", 1_000))
        .await
        .unwrap();
    a.run_once().await.unwrap();
    assert_eq!(counted(&db).await.watch_seconds, 1_050);
}

/// A replica that releases a batch late, after another replica took the
/// bucket's next batch, must leave the bucket marked: if the other replica
/// dies before its release, the next write-back still finds that batch.
async fn a_late_release_keeps_another_pending_batch_in_sight(
    store: Arc<dyn CounterStore>,
    db: DatabaseConnection,
) {
    Migrator::up(&db, None).await.unwrap();
    let writeback = Writeback::new(store.clone(), db.clone(), Duration::ZERO, Clock::new(None));
    store.play(&play("a@10.0.2.1", "r1")).await.unwrap();
    let first = writeback.take(&[bucket()]).await.unwrap();
    writeback.commit(&first).await.unwrap();
    writeback.release(&first).await.unwrap();
    store.play(&play("a@10.0.2.2", "r2")).await.unwrap();
    // Another replica takes the next batch and dies before committing it.
    let next = writeback.take(&[bucket()]).await.unwrap();
    assert_eq!(next[0].counts.views, 1);
    // The slow replica releases the first batch again.
    writeback.release(&first).await.unwrap();
    assert!(
        store.dirty().await.unwrap().contains(&bucket()),
        "the pending batch is still in sight"
    );
    writeback.run_once().await.unwrap();
    assert_eq!(counted(&db).await.views, 2, "and is written back");
    assert!(store.dirty().await.unwrap().is_empty());
}

/// Three replicas writing back at once while reports arrive: the database
/// ends with exactly what the store counted.
async fn concurrent_write_backs_count_exactly(
    store: Arc<dyn CounterStore>,
    db: DatabaseConnection,
) {
    Migrator::up(&db, None).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let writeback = Writeback::new(store.clone(), db.clone(), Duration::ZERO, Clock::new(None));
        let mut stopped = stopped.clone();
        replicas.push(tokio::spawn(async move {
            writeback
                .run_every(Duration::from_millis(5), async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        }));
    }
    let mut expected = Counts::default();
    for viewer in 0..40 {
        let (key, session) = (format!("a@10.0.1.{viewer}"), format!("c{viewer}"));
        let played = store.play(&play(&key, &session)).await.unwrap();
        expected.views += i64::from(played.not_counted.is_none());
        for position in (30..=600).step_by(30) {
            let paused = store
                .pause(&pause(&key, &session, position))
                .await
                .unwrap()
                .unwrap();
            expected.watch_seconds += i64::from(paused.watched_seconds_added);
            if position % 90 == 0 {
                tokio::task::yield_now().await;
            }
        }
    }
    stop.send(true).unwrap();
    for replica in replicas {
        tokio::time::timeout(Duration::from_secs(60), replica)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(expected.watch_seconds, 40 * 600);
    assert_eq!(counted(&db).await, expected);
    assert!(store.dirty().await.unwrap().is_empty(), "nothing pending");
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL database, dropped with the value.
struct Postgres {
    name: String,
    db: DatabaseConnection,
}

impl Postgres {
    async fn new() -> Self {
        let name = format!("wb_replicas_{}", uuid::Uuid::new_v4().simple());
        let server = Database::connect(server_url()).await.unwrap();
        server
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = server_url();
        let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
        let db = common::database::connect(
            Some(&SecretString::from(format!("{base}/{name}"))),
            &std::env::temp_dir(),
            "unused.db",
            8,
        )
        .await
        .unwrap();
        Self { name, db }
    }

    async fn drop_database(self) {
        self.db.close().await.unwrap();
        let server = Database::connect(server_url()).await.unwrap();
        server
            .execute_unprepared(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}

/// Redis under a key prefix of its own, keys deleted with the value.
fn redis_store() -> (Arc<dyn CounterStore>, String) {
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let store = RedisStore::single(&redis_url(), 8, &prefix).unwrap();
    (Arc::new(store), prefix)
}

fn delete_keys(prefix: &str) {
    let mut conn = redis::Client::open(redis_url())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut conn)
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(keys).query(&mut conn).unwrap();
    }
}

async fn sqlite() -> (DatabaseConnection, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("ssp-wbr-{}", uuid::Uuid::new_v4().simple()));
    let db = common::database::connect(None, &dir, "streaming.db", 4)
        .await
        .unwrap();
    (db, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_postgres_apply_each_batch_once() {
    let pg = Postgres::new().await;
    let (store, prefix) = redis_store();
    a_late_commit_of_an_applied_batch_changes_nothing(store, pg.db.clone()).await;
    delete_keys(&prefix);
    pg.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_postgres_count_exactly_under_concurrent_write_backs() {
    let pg = Postgres::new().await;
    let (store, prefix) = redis_store();
    concurrent_write_backs_count_exactly(store, pg.db.clone()).await;
    delete_keys(&prefix);
    pg.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_a_pending_batch_marked_after_a_late_release() {
    let pg = Postgres::new().await;
    let (store, prefix) = redis_store();
    a_late_release_keeps_another_pending_batch_in_sight(store, pg.db.clone()).await;
    delete_keys(&prefix);
    pg.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_sqlite_apply_each_batch_once() {
    let (db, dir) = sqlite().await;
    a_late_commit_of_an_applied_batch_changes_nothing(Arc::new(MemoryStore::new()), db).await;
    let _ = std::fs::remove_dir_all(dir);
}
