//! Benchmark of the cumulative counts' refresh (issue 19): what the
//! write-back pays, every few seconds, to keep `views_before` exact after
//! adding counts to a day. Run by `bench/writeback-history.sh`, which
//! fills the database.
//!
//! `refresh_bench <database url> <day> <videos> <batch>`: `batches` of
//! `batch` videos spread over ids 1..=`videos`; each batch, in one
//! transaction, adds a view to each video's row of `day` and zeroes its
//! sums before it (as the write-back's first batch of a day inserts the
//! row), then refreshes the videos' cumulative counts from `day`
//! (`streaming_service::daily_counts::refresh_cumulative`), then commits.
//! Prints the p50 and p99 of a batch in milliseconds, and microseconds per
//! video.

use std::time::Instant;

use anyhow::Context;
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, Database, Statement, TransactionTrait};
use streaming_service::daily_counts::refresh_cumulative;

/// Timed batches.
const BATCHES: i64 = 40;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, day, videos, batch] = args.as_slice() else {
        anyhow::bail!("usage: refresh_bench <database url> <day> <videos> <batch>");
    };
    let day: NaiveDate = day.parse().context("day")?;
    let videos: i64 = videos.parse().context("videos")?;
    let batch: i64 = batch.parse().context("batch")?;
    anyhow::ensure!(
        batch > 0 && videos >= batch * BATCHES,
        "need videos >= batch x {BATCHES}"
    );
    let db = Database::connect(url.as_str()).await?;
    let stride = videos / batch;
    let mut millis = Vec::new();
    for b in 0..BATCHES {
        // Every stride-th video from the batch's offset: ids spread over
        // the table, as a write-back's are.
        let ids: Vec<i64> = (0..batch).map(|i| 1 + b + i * stride).collect();
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let started = Instant::now();
        let txn = db.begin().await?;
        let bumped = txn
            .execute(Statement::from_sql_and_values(
                txn.get_database_backend(),
                format!(
                    "UPDATE daily_counts SET views = views + 1, views_before = 0, ad_views_before = 0 \
                     WHERE day = $1 AND video_id IN ({list})"
                ),
                [day.into()],
            ))
            .await?
            .rows_affected();
        anyhow::ensure!(
            bumped == ids.len() as u64,
            "{bumped} rows of {day} for {} videos: fill the day first",
            ids.len()
        );
        refresh_cumulative(&txn, &ids, day).await?;
        txn.commit().await?;
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    millis.sort_by(f64::total_cmp);
    let at = |q: f64| millis[((millis.len() as f64 * q) as usize).min(millis.len() - 1)];
    println!(
        "batches of {batch} videos: p50 {:.1} ms, p99 {:.1} ms ({:.0} µs a video at p50; n={})",
        at(0.5),
        at(0.99),
        at(0.5) * 1000.0 / batch as f64,
        millis.len()
    );
    Ok(())
}
