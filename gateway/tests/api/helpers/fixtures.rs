//! What tests need in place: videos, plays and pauses, ads, imports,
//! settled days, and the counts the streaming service holds.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use super::TestApp;

/// An import CSV of `days` consecutive days of `video_id` from `first`,
/// each with 1 view, 1 watch second and no ad view.
pub fn history_csv(video_id: i64, first: chrono::NaiveDate, days: usize) -> String {
    let mut csv = String::from("video_id,day,views,watch_seconds,ad_views\n");
    for day in first.iter_days().take(days) {
        csv.push_str(&format!("{video_id},{day},1,1,0\n"));
    }
    csv
}

/// Calls on the streaming API, as a frontend makes them.
impl TestApp {
    /// `POST /api/v1/videos` as `token`.
    pub async fn upload(&self, token: &str, title: &str, duration_seconds: i64) -> Response {
        self.post_auth(
            "/api/v1/videos",
            token,
            &json!({"title": title, "description": "", "duration_seconds": duration_seconds}),
        )
        .await
    }

    /// Uploads and returns the video id.
    pub async fn video(&self, token: &str, duration_seconds: i64) -> i64 {
        let r = self.upload(token, "A video", duration_seconds).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.expect("json");
        body["video_id"].as_i64().expect("video_id")
    }

    /// `POST /api/v1/videos/{id}/play`, signed in or anonymous, with an
    /// optional `X-Forwarded-For`.
    pub async fn play(
        &self,
        token: Option<&str>,
        video_id: i64,
        forwarded_for: Option<&str>,
    ) -> Value {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/videos/{video_id}/play")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(xff) = forwarded_for {
            request = request.header("x-forwarded-for", xff);
        }
        let r = request.send().await.expect("request");
        let status = r.status();
        let body: Value = r.json().await.expect("json");
        assert_eq!(status, StatusCode::OK, "play: {body}");
        body
    }

    /// `POST /api/v1/videos/{id}/play` as a client under load plays: a 503
    /// (SPEC §8: a downstream overloaded or unavailable, with
    /// `retry-after`) is retried after the wait it asks for, up to 20
    /// times. A retried play counts at most once: the counting script either
    /// did not run, or the retry is a duplicate within the dedupe window.
    pub async fn play_retrying(&self, token: &str, video_id: i64) -> Value {
        for _ in 0..20 {
            let r = self
                .client
                .post(self.url(&format!("/api/v1/videos/{video_id}/play")))
                .bearer_auth(token)
                .send()
                .await
                .expect("request");
            let status = r.status();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                let wait = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let body: Value = r.json().await.expect("json");
            assert_eq!(status, StatusCode::OK, "play: {body}");
            return body;
        }
        panic!("play: 503 twenty times");
    }

    /// `POST /api/v1/videos/{id}/pause`.
    pub async fn pause(
        &self,
        token: Option<&str>,
        video_id: i64,
        session_id: &str,
        position: i64,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/videos/{video_id}/pause")))
            .json(&json!({"session_id": session_id, "position_seconds": position}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    /// Pauses and returns the body, asserting 200.
    pub async fn pause_ok(
        &self,
        token: Option<&str>,
        video_id: i64,
        session_id: &str,
        position: i64,
    ) -> Value {
        let r = self.pause(token, video_id, session_id, position).await;
        assert_eq!(r.status(), StatusCode::OK, "pause");
        r.json().await.expect("json")
    }

    /// Creates an ad as `admin`, returning its id.
    pub async fn ad(&self, admin: &str, start: chrono::NaiveDate, end: chrono::NaiveDate) -> i64 {
        let r = self
            .post_auth(
                "/api/v1/ads",
                admin,
                &json!({"title": "Ad", "duration_seconds": 15,
                        "start_date": start.to_string(), "end_date": end.to_string()}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "create ad");
        let body: Value = r.json().await.expect("json");
        body["ad_id"].as_i64().expect("ad_id")
    }

    /// `POST /api/v1/admin/imports/daily-counts` as `admin`.
    pub async fn import_csv(&self, admin: &str, csv: String) -> Response {
        self.client
            .post(self.url("/api/v1/admin/imports/daily-counts"))
            .bearer_auth(admin)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("request")
    }

    /// Writes the counters back, queues `from..=to` as `admin` and waits
    /// (up to 20 s a run) until every run has succeeded or failed; the runs.
    pub async fn settle_days(
        &self,
        admin: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Vec<Value> {
        self.write_back().await;
        let r = self
            .post_auth(
                "/api/v1/admin/settlements",
                admin,
                &json!({"from": from.to_string(), "to": to.to_string()}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = r.json().await.expect("json");
        let ids: Vec<i64> = body["run_ids"]
            .as_array()
            .expect("run_ids")
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        let mut runs = Vec::new();
        for id in ids {
            let mut run = Value::Null;
            for _ in 0..200 {
                run = self
                    .get_json(&format!("/api/v1/admin/settlements/{id}"), Some(admin))
                    .await;
                if run["status"] == "succeeded" || run["status"] == "failed" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            runs.push(run);
        }
        runs
    }

    /// Writes the counters back now.
    pub async fn write_back(&self) {
        self.writeback.run_once().await.expect("write-back");
    }

    /// Every row of `day` from the streaming service's daily-counts call,
    /// after `after` (SPEC §9).
    pub async fn daily_counts(
        &self,
        day: chrono::NaiveDate,
        after: i64,
    ) -> Vec<proto::streaming::v1::DailyCount> {
        use proto::streaming::v1::{
            StreamDailyCountsRequest, streaming_service_client::StreamingServiceClient,
        };
        use secrecy::ExposeSecret;
        let mut client = StreamingServiceClient::connect(self.streaming_url.clone())
            .await
            .expect("connect");
        let mut request = tonic::Request::new(StreamDailyCountsRequest {
            day: day.to_string(),
            after_video_id: after,
        });
        request.metadata_mut().insert(
            common::grpc::SERVICE_CREDENTIAL,
            self.credential.expose_secret().parse().expect("metadata"),
        );
        let mut stream = client
            .stream_daily_counts(request)
            .await
            .expect("stream")
            .into_inner();
        let mut rows = Vec::new();
        while let Some(page) = stream.message().await.expect("page") {
            assert!(!page.rows.is_empty(), "a page holds at least one row");
            rows.extend(page.rows);
        }
        rows
    }

    /// The day's row of `video_id`: (views, watch seconds, ad views).
    pub async fn counts_of(&self, video_id: i64) -> (i64, i64, i64) {
        let today = common::time::PlatformTime::default().today();
        self.daily_counts(today, 0)
            .await
            .into_iter()
            .find(|r| r.video_id == video_id)
            .map_or((0, 0, 0), |r| (r.views, r.watch_seconds, r.ad_views))
    }
}
