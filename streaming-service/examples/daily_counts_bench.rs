//! Benchmark client of the daily-counts call (SPEC §9): streams every row of
//! a day from a running streaming service and prints rows, seconds and
//! rows/s. Run by `bench/daily-counts.sh`, which prepares the data.
//!
//! `daily_counts_bench <grpc url> <day> <service credential>`

use std::time::Instant;

use proto::streaming::v1::{
    StreamDailyCountsRequest, streaming_service_client::StreamingServiceClient,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(day), Some(credential)) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: daily_counts_bench <grpc url> <day> <service credential>");
    };
    let mut client = StreamingServiceClient::connect(url)
        .await?
        .max_decoding_message_size(16 * 1024 * 1024);
    let started = Instant::now();
    let mut request = tonic::Request::new(StreamDailyCountsRequest {
        day,
        after_video_id: 0,
    });
    request
        .metadata_mut()
        .insert(common::grpc::SERVICE_CREDENTIAL, credential.parse()?);
    let mut stream = client.stream_daily_counts(request).await?.into_inner();
    let (mut rows, mut views, mut last_id) = (0_u64, 0_i64, 0_i64);
    let mut pages = 0_u64;
    while let Some(page) = stream.message().await? {
        pages += 1;
        for row in page.rows {
            anyhow::ensure!(row.video_id > last_id, "rows out of video id order");
            last_id = row.video_id;
            rows += 1;
            views += row.views;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "rows {rows} in {pages} messages, views {views}, {seconds:.2} s, {:.0} rows/s",
        rows as f64 / seconds
    );
    Ok(())
}
