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
    redis::RedisStore, session_ttl_ms,
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
    // Wall clock: 0 s since play, so at most 5 s are counted; a seek past
    // slots 300 and 600 plays one ad, the last one crossed.
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
        (5, 1, 600)
    );
    // Backward seek adds nothing.
    let r = store
        .pause(&pause(2, v, false, "r1", 100, T0 + 1_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.watched_seconds_added, r.ad_views_counted), (0, 0));
    // A second session of the same viewer key crossing slot 600 within the
    // window counts watch time but no second ad view (and no second view).
    let rb = store
        .play(&play(2, v, false, "rb", T0 + 2_000))
        .await
        .unwrap();
    assert_eq!(rb.not_counted, Some(NotCounted::Duplicate));
    assert_eq!(rb.resume_position_seconds, 100);
    let r = store
        .pause(&pause(2, v, false, "rb", 700, T0 + 3_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.watched_seconds_added, r.ad_views_counted), (6, 0));
    // Forward 50 s after 61 s of wall clock (55 of its budget of 66 left):
    // all 50 count; slot 300 not crossed.
    let r = store
        .pause(&pause(2, v, false, "r1", 150, T0 + 61_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.watched_seconds_added, 50);
    // Crossing 300 after the window and 400 s after play (room for a
    // second ad view in the session): counted.
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
    assert_eq!(r.ad_views_counted, 1, "slot 900 only, the last one crossed");
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
    assert_eq!(total.ad_views, 1 + 1 + 1);
}

/// SPEC §4 against a hostile player: one ad view per report, a session's ad
/// views within 1 + ⌊age / 300 s⌋, its watched seconds within its age plus
/// 5 s however many reports it sends.
async fn hostile_reports_are_bounded(store: &dyn CounterStore) {
    const LONG: i32 = 86_400;
    let v = "a@8.8.8.8";
    let long_play = |session: &str, now_ms| PlayEvent {
        duration_seconds: LONG,
        ..play(9, v, false, session, now_ms)
    };
    let long_pause = |session: &str, pos, now_ms| PauseEvent {
        duration_seconds: LONG,
        ..pause(9, v, false, session, pos, now_ms)
    };
    // Ad-view farming: a jump to i32::MAX, then back to 0 and forward again
    // every 31 s, six reports in all; the fix allows one ad view.
    store.play(&long_play("h1", T0)).await.unwrap();
    let mut ads = 0;
    let mut watched = 0;
    for (i, pos) in [i32::MAX, 0, 86_399, 0, 86_000, 0].into_iter().enumerate() {
        let at = T0 + 31_000 * i64::try_from(i / 2).unwrap() + i64::try_from(i % 2).unwrap();
        let r = store
            .pause(&long_pause("h1", pos, at))
            .await
            .unwrap()
            .unwrap();
        ads += r.ad_views_counted;
        watched += r.watched_seconds_added;
    }
    assert_eq!(ads, 1, "one ad view in the session's first 300 s");
    assert_eq!(watched, 5 + 31 + 31, "62 s of age plus 5 s of slack");
    // 301 s after the play the session may count its second ad view.
    let r = store
        .pause(&long_pause("h1", 60_000, T0 + 301_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.watched_seconds_added, r.ad_views_counted), (239, 1));
    let r = store
        .pause(&long_pause("h1", 0, T0 + 302_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.ad_views_counted, 0);
    let r = store
        .pause(&long_pause("h1", 30_000, T0 + 303_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.ad_views_counted, 0, "two ad views is the cap until 600 s");

    // Watch-time inflation: 100 reports of +5 s within 0.1 s add 5 s in all.
    store.play(&long_play("h2", T0)).await.unwrap();
    let mut watched = 0;
    for i in 1..=100 {
        let r = store
            .pause(&long_pause("h2", 5 * i, T0 + i64::from(i)))
            .await
            .unwrap()
            .unwrap();
        watched += r.watched_seconds_added;
    }
    assert_eq!(watched, 5, "the slack is per session, not per report");
    let r = store
        .pause(&long_pause("h2", 1_000, T0 + 10_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.watched_seconds_added, 10,
        "10 s of age plus 5 s, less 5 s counted"
    );

    let counts = drain(store, 9, day_of(T0)).await;
    assert_eq!(counts.ad_views, 2 + 1, "h1 two, h2 one (slot 300)");
    assert_eq!(counts.watch_seconds, (67 + 239 + 2) + (5 + 10));
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
    assert!(
        second.seq.unwrap() > first.seq.unwrap(),
        "a later batch has a greater sequence: {second:?} after {first:?}"
    );
    store.release(&second).await.unwrap();
    assert!(store.take(bucket, "token-4").await.unwrap().is_none());
    store.forget(bucket).await.unwrap();
    assert!(!store.dirty().await.unwrap().contains(&bucket));
}

async fn conformance(store: Arc<dyn CounterStore>) {
    owner_and_dedupe_window(&*store).await;
    resume_watch_time_and_ads(&*store).await;
    hostile_reports_are_bounded(&*store).await;
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
async fn memory_store_bounds_its_sessions() {
    // 60,000 anonymous plays with room for 1,000 sessions: the least
    // recently active are evicted, the newest stay.
    let store = MemoryStore::with_max_sessions(1_000);
    for i in 0..60_000 {
        let viewer = format!("a@10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        store
            .play(&play(
                11,
                &viewer,
                false,
                &format!("b{i}"),
                T0 + i64::from(i),
            ))
            .await
            .unwrap();
    }
    assert_eq!(store.session_count().await, 1_000);
    let report = |i: i32, pos| {
        let viewer = format!("a@10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        pause(11, &viewer, false, &format!("b{i}"), pos, T0 + 60_000)
    };
    assert!(store.pause(&report(0, 10)).await.unwrap().is_none());
    assert!(store.pause(&report(58_999, 10)).await.unwrap().is_none());
    assert!(store.pause(&report(59_999, 10)).await.unwrap().is_some());

    // Resume positions are bounded alike: of 1,001 viewers who paused, the
    // first one's position is gone, the last one's kept.
    let store = MemoryStore::with_max_sessions(1_000);
    for i in 0..=1_000 {
        let viewer = format!("a@10.9.{}.{}", i >> 8, i & 255);
        let session = format!("r{i}");
        let at = T0 + i64::from(i);
        store
            .play(&play(13, &viewer, false, &session, at))
            .await
            .unwrap();
        store
            .pause(&pause(13, &viewer, false, &session, 120, at))
            .await
            .unwrap();
    }
    let resume_of = |i: i32| {
        let viewer = format!("a@10.9.{}.{}", i >> 8, i & 255);
        play(13, &viewer, false, &format!("again{i}"), T0 + 10_000)
    };
    assert_eq!(
        store
            .play(&resume_of(0))
            .await
            .unwrap()
            .resume_position_seconds,
        0
    );
    assert_eq!(
        store
            .play(&resume_of(1_000))
            .await
            .unwrap()
            .resume_position_seconds,
        120
    );

    // A session of a 60 s video is kept idle for 60 s + 30 min, then purged.
    let ttl = session_ttl_ms(60, 1_800_000, 86_400_000);
    assert_eq!(ttl, (60 + 1_800) * 1_000);
    let store = MemoryStore::new();
    let short = |session: &str, now_ms| PlayEvent {
        duration_seconds: 60,
        session_ttl_ms: ttl,
        ..play(12, "a@11.0.0.1", false, session, now_ms)
    };
    store.play(&short("e1", T0)).await.unwrap();
    store.play(&short("e2", T0 + ttl)).await.unwrap();
    store.dirty().await.unwrap();
    assert_eq!(store.session_count().await, 1, "e1 expired and was purged");
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
