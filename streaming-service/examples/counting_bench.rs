//! Benchmark of the counting script alone (SPEC §5): `concurrency` tasks
//! call [`RedisStore::play`] against a Redis for `seconds` seconds, with
//! viewers and videos drawn at random, and the run prints calls/s. Compare
//! with `redis-benchmark` running the same script (see
//! `bench/counting.sh`).
//!
//! `counting_bench <redis url> <concurrency> <seconds>`

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::time::PlatformTime;
use streaming_service::counting::{CounterStore, PlayEvent, redis::RedisStore};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let concurrency: usize = args.next().map_or(Ok(50), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(10), |a| a.parse())?;
    let prefix = format!("bench{}", std::process::id());
    let store = Arc::new(RedisStore::single(&url, concurrency, &prefix)?);
    store.ping().await?;
    let calls = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let time = PlatformTime::default();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let (store, calls) = (store.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            let mut n: u64 = 0;
            while Instant::now() < deadline {
                n += 1;
                let now = chrono::Utc::now();
                let event = PlayEvent {
                    video_id: i64::try_from((n * 7_919 + task as u64) % 10_000).unwrap_or(0),
                    viewer: format!("a@10.0.{}.{}", task % 256, n % 256),
                    owner: false,
                    session_id: format!("{task}x{n}"),
                    duration_seconds: 600,
                    now_ms: now.timestamp_millis(),
                    day: time.day_of(now),
                    window_ms: 30_000,
                    session_ttl_ms: 60_000,
                };
                if store.play(&event).await.is_ok() {
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let total = calls.load(Ordering::Relaxed);
    println!(
        "RedisStore::play (SADD + EVALSHA play.lua + SADD): {total} calls in {seconds} s = {:.0} calls/s with {concurrency} tasks",
        total as f64 / seconds as f64
    );
    println!(
        "keys left under prefix {prefix}: delete with redis-cli --scan --pattern '{prefix}:*' | xargs redis-cli del"
    );
    Ok(())
}
