//! One conformance suite for every counter store (SPEC §4, §5): the
//! in-process store, Redis, and a Redis Cluster of 3 masters started here
//! with `redis-server --cluster-enabled yes`. Event times are given to the
//! stores, so the suite controls the clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, NaiveDate, Utc};
use common::time::PlatformTime;
use streaming_service::counting::{
    Bucket, CounterStore, Counts, NotCounted, PauseEvent, PlayEvent, memory::MemoryStore,
    redis::RedisStore,
};

const WINDOW_MS: i64 = 30_000;
const T0: i64 = 1_790_000_000_000;

fn day_of(ms: i64) -> NaiveDate {
    PlatformTime::default().day_of(DateTime::<Utc>::from_timestamp_millis(ms).unwrap())
}

fn play(video_id: i64, viewer: &str, owner: bool, session: &str, now_ms: i64) -> PlayEvent {
    PlayEvent {
        video_id,
        viewer: viewer.to_owned(),
        owner,
        session_id: session.to_owned(),
        duration_seconds: 900,
        now_ms,
        day: day_of(now_ms),
        window_ms: WINDOW_MS,
        session_ttl_ms: 86_400_000,
    }
}

fn pause(
    video_id: i64,
    viewer: &str,
    owner: bool,
    session: &str,
    pos: i32,
    now_ms: i64,
) -> PauseEvent {
    PauseEvent {
        video_id,
        viewer: viewer.to_owned(),
        owner,
        session_id: session.to_owned(),
        position_seconds: pos,
        duration_seconds: 900,
        ads_served: true,
        now_ms,
        day: day_of(now_ms),
        window_ms: WINDOW_MS,
        session_ttl_ms: 86_400_000,
    }
}

/// Takes and releases a bucket; its counts.
async fn drain(store: &dyn CounterStore, video_id: i64, day: NaiveDate) -> Counts {
    let bucket = Bucket { video_id, day };
    match store
        .take(bucket, &uuid::Uuid::new_v4().to_string())
        .await
        .unwrap()
    {
        Some(taken) => {
            store.release(&taken).await.unwrap();
            taken.counts
        }
        None => Counts::default(),
    }
}

async fn owner_and_dedupe_window(store: &dyn CounterStore) {
    let owner = store
        .play(&play(1, "u7@1.1.1.1", true, "s1", T0))
        .await
        .unwrap();
    assert_eq!(owner.not_counted, Some(NotCounted::Owner));
    let first = store
        .play(&play(1, "u8@1.1.1.1", false, "s2", T0))
        .await
        .unwrap();
    assert_eq!(first.not_counted, None);
    let again = store
        .play(&play(1, "u8@1.1.1.1", false, "s3", T0 + WINDOW_MS - 1))
        .await
        .unwrap();
    assert_eq!(again.not_counted, Some(NotCounted::Duplicate));
    let other_ip = store
        .play(&play(1, "u8@2.2.2.2", false, "s4", T0 + 1))
        .await
        .unwrap();
    assert_eq!(other_ip.not_counted, None, "the viewer key includes the IP");
    let later = store
        .play(&play(1, "u8@1.1.1.1", false, "s5", T0 + WINDOW_MS))
        .await
        .unwrap();
    assert_eq!(
        later.not_counted, None,
        "counted again once the window has passed"
    );
    assert_eq!(drain(store, 1, day_of(T0)).await.views, 3);
}

async fn resume_watch_time_and_ads(store: &dyn CounterStore) {
    let v = "a@3.3.3.3";
    let p = store.play(&play(2, v, false, "r1", T0)).await.unwrap();
    assert_eq!(p.resume_position_seconds, 0);
    // Wall clock: 0 s since play, so at most 5 s are counted.
    let r = store
        .pause(&pause(2, v, false, "r1", 600, T0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            r.watched_seconds_added,
            r.ad_views_counted,
            r.position_seconds
        ),
        (5, 2, 600)
    );
    // Backward seek adds nothing.
    let r = store
        .pause(&pause(2, v, false, "r1", 100, T0 + 1_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.watched_seconds_added, r.ad_views_counted), (0, 0));
    // A second session of the same viewer key crossing slot 300 within the
    // window counts watch time but no second ad view (and no second view).
    let rb = store
        .play(&play(2, v, false, "rb", T0 + 2_000))
        .await
        .unwrap();
    assert_eq!(rb.not_counted, Some(NotCounted::Duplicate));
    assert_eq!(rb.resume_position_seconds, 100);
    let r = store
        .pause(&pause(2, v, false, "rb", 400, T0 + 3_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.watched_seconds_added, r.ad_views_counted), (6, 0));
    // Forward 50 s after 60 s of wall clock: all 50 count; slot 300 not crossed.
    let r = store
        .pause(&pause(2, v, false, "r1", 150, T0 + 61_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.watched_seconds_added, 50);
    // Crossing 300 again after the window: counted again.
    let r = store
        .pause(&pause(2, v, false, "r1", 350, T0 + 400_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.watched_seconds_added, r.ad_views_counted), (200, 1));
    let p = store
        .play(&play(2, v, false, "r2", T0 + 401_000))
        .await
        .unwrap();
    assert_eq!(p.resume_position_seconds, 350, "resumes at the last report");
    // Past the end is the end; then resume starts over.
    let r = store
        .pause(&pause(2, v, false, "r2", 5_000, T0 + 2_000_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.position_seconds, 900);
    assert_eq!(r.watched_seconds_added, 550);
    assert_eq!(
        r.ad_views_counted, 2,
        "slots 600 and 900, outside the window now"
    );
    let p = store
        .play(&play(2, v, false, "r3", T0 + 2_001_000))
        .await
        .unwrap();
    assert_eq!(p.resume_position_seconds, 0);
    // The owner's reports count nothing.
    store
        .play(&play(2, "u1@3.3.3.3", true, "o1", T0))
        .await
        .unwrap();
    let r = store
        .pause(&pause(2, "u1@3.3.3.3", true, "o1", 900, T0 + 1_000_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.watched_seconds_added, r.ad_views_counted), (0, 0));
    // No ads served: no ad views.
    store
        .play(&play(2, "a@4.4.4.4", false, "n1", T0))
        .await
        .unwrap();
    let mut e = pause(2, "a@4.4.4.4", false, "n1", 400, T0 + 1_000_000);
    e.ads_served = false;
    assert_eq!(store.pause(&e).await.unwrap().unwrap().ad_views_counted, 0);
    // Unknown session, or another viewer's: nothing.
    assert!(
        store
            .pause(&pause(2, v, false, "nope", 10, T0))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .pause(&pause(2, "a@9.9.9.9", false, "r3", 10, T0))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .pause(&pause(3, v, false, "r3", 10, T0))
            .await
            .unwrap()
            .is_none()
    );

    let day0 = drain(store, 2, day_of(T0)).await;
    let day1 = drain(store, 2, day_of(T0 + 2_000_000)).await;
    let total = Counts {
        views: day0.views + day1.views,
        watch_seconds: day0.watch_seconds + day1.watch_seconds,
        ad_views: day0.ad_views + day1.ad_views,
    };
    assert_eq!(total.views, 4, "r1, r2, r3 and n1; rb was a duplicate");
    assert_eq!(total.watch_seconds, 5 + 6 + 50 + 200 + 550 + 400);
    assert_eq!(total.ad_views, 2 + 1 + 2);
}

async fn midnight_splits_days(store: &dyn CounterStore) {
    let time = PlatformTime::default();
    let day = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    let midnight = time.start_of(day).timestamp_millis();
    store
        .play(&play(4, "a@5.5.5.1", false, "m1", midnight - 1))
        .await
        .unwrap();
    store
        .play(&play(4, "a@5.5.5.2", false, "m2", midnight))
        .await
        .unwrap();
    assert_eq!(drain(store, 4, day.pred_opt().unwrap()).await.views, 1);
    assert_eq!(drain(store, 4, day).await.views, 1);
}

async fn concurrent_plays_count_exactly(store: Arc<dyn CounterStore>) {
    let mut tasks = Vec::new();
    for i in 0..1_000 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .play(&play(
                    5,
                    &format!("u{i}@6.6.6.6"),
                    false,
                    &format!("c{i}"),
                    T0,
                ))
                .await
                .unwrap()
        }));
    }
    for i in 0..100 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .play(&play(6, "u1@6.6.6.6", false, &format!("d{i}"), T0))
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(drain(&*store, 5, day_of(T0)).await.views, 1_000);
    assert_eq!(drain(&*store, 6, day_of(T0)).await.views, 1);
}

async fn take_is_repeatable_until_released(store: &dyn CounterStore) {
    let bucket = Bucket {
        video_id: 7,
        day: day_of(T0),
    };
    store
        .play(&play(7, "a@7.7.7.1", false, "t1", T0))
        .await
        .unwrap();
    assert!(store.dirty().await.unwrap().contains(&bucket));
    let first = store.take(bucket, "token-1").await.unwrap().unwrap();
    assert_eq!(first.counts.views, 1);
    // An event after the take goes to fresh counters.
    store
        .play(&play(7, "a@7.7.7.2", false, "t2", T0))
        .await
        .unwrap();
    // A write-back that died after taking: the next take gets the same batch.
    let again = store.take(bucket, "token-2").await.unwrap().unwrap();
    assert_eq!(again, first);
    assert!(
        store.dirty().await.unwrap().contains(&bucket),
        "still in flight"
    );
    store.release(&again).await.unwrap();
    assert!(
        store.dirty().await.unwrap().contains(&bucket),
        "newer counts keep the bucket marked after the old batch is released"
    );
    let second = store.take(bucket, "token-3").await.unwrap().unwrap();
    assert_eq!((second.token.as_str(), second.counts.views), ("token-3", 1));
    store.release(&second).await.unwrap();
    assert!(store.take(bucket, "token-4").await.unwrap().is_none());
    store.forget(bucket).await.unwrap();
    assert!(!store.dirty().await.unwrap().contains(&bucket));
}

async fn conformance(store: Arc<dyn CounterStore>) {
    owner_and_dedupe_window(&*store).await;
    resume_watch_time_and_ads(&*store).await;
    midnight_splits_days(&*store).await;
    take_is_repeatable_until_released(&*store).await;
    concurrent_plays_count_exactly(store).await;
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn memory_store_keeps_the_rules() {
    conformance(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn redis_store_keeps_the_rules() {
    let prefix = prefix();
    let store = RedisStore::single(&redis_url(), 32, &prefix).unwrap();
    store.ping().await.unwrap();
    conformance(Arc::new(store)).await;
    delete_keys(&redis_url(), &prefix);
}

fn delete_keys(url: &str, prefix: &str) {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut conn)
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(keys).query(&mut conn).unwrap();
    }
}

/// Three cluster masters on free local ports, stopped on drop.
struct Cluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    dir: std::path::PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port_pair() -> u16 {
    loop {
        let port = 20_000 + (rand_u16() % 30_000);
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
}

fn rand_u16() -> u16 {
    (uuid::Uuid::new_v4().as_u128() & 0xffff) as u16
}

fn start_cluster() -> Cluster {
    let dir = std::env::temp_dir().join(format!("ssp-cluster-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = Cluster {
        nodes: Vec::new(),
        ports: Vec::new(),
        dir: dir.clone(),
    };
    for _ in 0..3 {
        let port = free_port_pair();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        cluster.nodes.push(child);
        cluster.ports.push(port);
    }
    for &port in &cluster.ports {
        wait_for(|| {
            Command::new("redis-cli")
                .args(["-p", &port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        });
    }
    let addrs: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stdout)
    );
    for &port in &cluster.ports {
        wait_for(|| {
            Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
        });
    }
    cluster
}

fn wait_for(mut ready: impl FnMut() -> bool) {
    for _ in 0..100 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for the Redis cluster");
}

#[tokio::test]
async fn redis_cluster_store_keeps_the_rules() {
    let cluster = start_cluster();
    let urls: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let store = RedisStore::cluster(urls, 16, &prefix()).unwrap();
    store.ping().await.unwrap();
    conformance(Arc::new(store)).await;
    // The videos' keys really are spread over the masters.
    let holding: usize = cluster
        .ports
        .iter()
        .filter(|p| {
            Command::new("redis-cli")
                .args(["-p", &p.to_string(), "dbsize"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() != "0")
        })
        .count();
    assert!(holding >= 2, "keys on {holding} of 3 masters");
}
