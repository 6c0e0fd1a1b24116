//! The platform attacked as a hostile client would (issue 15): each test is
//! one finding of that attack, through the gateway, and fails on the code
//! that had it.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::time::PlatformTime;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Options, Store, TestApp, assert_error, history_csv, spawn_app, spawn_app_with,
};

const ADMIN: (&str, &str) = ("admin@example.com", "admin-password-1");

fn yesterday() -> NaiveDate {
    PlatformTime::default()
        .today()
        .pred_opt()
        .expect("a day before today")
}

async fn admin_app(store: Store) -> (TestApp, String) {
    let app = spawn_app_with(Options {
        store,
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    (app, admin)
}

async fn import(app: &TestApp, admin: &str, csv: String) -> reqwest::Response {
    app.import_csv(admin, csv).await
}

/// Queues `day` and waits for its run to end.
async fn settle(app: &TestApp, admin: &str, day: NaiveDate) -> Value {
    app.settle_days(admin, day, day).await.remove(0)
}

/// Findings 1 and 2: one pause far past the end of an 86,400 s video, then
/// seeks back and forth every 31 s, count one ad view; 100 reports of +5 s
/// in a moment add 5 s in all (SPEC §4).
#[tokio::test]
async fn ad_views_and_watch_time_cannot_be_farmed() {
    let (app, admin) = admin_app(Store::Postgres).await;
    let today = PlatformTime::default().today();
    app.ad(&admin, today, today).await;
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&creator, 86_400).await;

    let played = app.play(None, video, None).await;
    let session = played["session_id"].as_str().unwrap().to_owned();
    let mut ads = 0;
    for position in [2_147_483_647_i64, 0, 86_399, 0, 86_000, 0] {
        let r = app.pause_ok(None, video, &session, position).await;
        ads += r["ad_views_counted"].as_i64().unwrap();
    }
    assert_eq!(ads, 1, "one ad view in a session's first 300 s");

    let started = Instant::now();
    let played = app.play(None, video, None).await;
    let session = played["session_id"].as_str().unwrap().to_owned();
    let mut watched = 0;
    for i in 1..=100 {
        let r = app.pause_ok(None, video, &session, 86_000 + 5 * i).await;
        watched += r["watched_seconds_added"].as_i64().unwrap();
    }
    let age = i64::try_from(started.elapsed().as_secs()).unwrap();
    assert!(
        watched <= age + 5,
        "{watched} s watched in a session {age} s old"
    );
    app.write_back().await;
    let (_, stored_watch, stored_ads) = app.counts_of(video).await;
    assert_eq!(
        stored_ads, 2,
        "one ad view per session: 86,400 in the first, 86,100 in the second"
    );
    assert!(stored_watch <= 2 * (age + 5) + 62);
}

/// Finding 3: a date at the end of chrono's calendar is a 400, not a panic
/// of the revenue service (anonymous and signed in).
#[tokio::test]
async fn extreme_dates_are_refused_not_a_panic() {
    let app = spawn_app().await;
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&creator, 600).await;
    for path in [
        "/api/v1/stats/top?metric=views&period=week&date=%2B262142-12-31".to_owned(),
        "/api/v1/stats/top?metric=views&period=month&date=-262143-01-01".to_owned(),
        "/api/v1/revenues?period=week&date=%2B262142-12-31".to_owned(),
        format!("/api/v1/videos/{video}/stats?period=week&date=%2B262142-12-31"),
    ] {
        let r = app
            .client
            .get(app.url(&path))
            .bearer_auth(&creator)
            .send()
            .await
            .unwrap();
        let body = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
        assert_eq!(body["error"]["details"][0]["field"], "date", "{path}");
    }
    // The revenue service still answers.
    let r = app
        .client
        .get(app.url("/api/v1/stats/top?metric=views&period=week&date=9999-12-31"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Finding 4: a title that a spreadsheet would run as a formula is exported
/// with a leading `'` (SPEC §8).
#[tokio::test]
async fn revenue_csv_neutralises_formulas() {
    let (app, admin) = admin_app(Store::Postgres).await;
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let r = app.upload(&creator, "=cmd|' /C calc'!A0", 600).await;
    let video = r.json::<Value>().await.unwrap()["video_id"]
        .as_i64()
        .unwrap();
    let day = yesterday();
    let r = import(
        &app,
        &admin,
        format!("video_id,day,views,watch_seconds,ad_views\n{video},{day},10,100,0\n"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(settle(&app, &admin, day).await["status"], "succeeded");
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/revenues?period=day&date={day}")))
        .bearer_auth(&creator)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&format!("{video},'=cmd|' /C calc'!A0,")),
        "{csv}"
    );
}

/// Finding 5: a count near `i64::MAX` is refused by line; nothing reaches
/// the settlement and every report keeps answering (SPEC §8).
#[tokio::test]
async fn import_counts_are_bounded_and_money_never_wraps() {
    let (app, admin) = admin_app(Store::Postgres).await;
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&creator, 600).await;
    let day = yesterday();
    let r = import(
        &app,
        &admin,
        format!(
            "video_id,day,views,watch_seconds,ad_views\n\
             {video},{day},9223372036854775807,0,0\n\
             {video},{day},1000000000001,0,0\n"
        ),
    )
    .await;
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["accepted"], 0, "{report}");
    let reasons: Vec<&str> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{report}");
    assert!(
        reasons.iter().all(|r| r.contains("1000000000000")),
        "{report}"
    );
    // The largest allowed count settles to its exact amount.
    let r = import(
        &app,
        &admin,
        format!("video_id,day,views,watch_seconds,ad_views\n{video},{day},1000000000000,0,0\n"),
    )
    .await;
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 1);
    let run = settle(&app, &admin, day).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["total_amount"], 1_499_999_690_000_i64);
    let top = app
        .get_json(
            &format!("/api/v1/stats/top?metric=views&period=month&date={day}"),
            None,
        )
        .await;
    assert_eq!(top["items"][0]["value"], 1_000_000_000_000_i64, "{top}");
}

/// Finding 6: a long import on the embedded database lets other writers
/// through between its batches, and its cumulative counts are right.
#[tokio::test]
async fn a_long_import_does_not_hold_the_write_lock() {
    let (app, admin) = admin_app(Store::Sqlite).await;
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&creator, 600).await;
    let first = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap();
    let days = 30_000;
    let csv = history_csv(video, first, days);
    let importing = {
        let client = app.client.clone();
        let url = app.url("/api/v1/admin/imports/daily-counts");
        let admin = admin.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = client
                .post(url)
                .bearer_auth(admin)
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await
                .unwrap();
            (
                r.status(),
                r.json::<Value>().await.unwrap(),
                started.elapsed(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Uploads (writes) answer while the import runs.
    let mut slowest = Duration::ZERO;
    let mut during = 0;
    while !importing.is_finished() {
        let started = Instant::now();
        let r = app.upload(&creator, "During the import", 60).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        slowest = slowest.max(started.elapsed());
        during += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, report, took) = importing.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["accepted"], days);
    assert!(
        slowest < Duration::from_secs(3),
        "an upload waited {slowest:?} during an import of {took:?}"
    );
    eprintln!("{during} uploads during an import of {took:?}; slowest {slowest:?}");
    // The last day has every earlier day before it.
    let last = first + chrono::Duration::days(i64::try_from(days).unwrap() - 1);
    let rows = app.daily_counts(last, 0).await;
    let row = rows.iter().find(|r| r.video_id == video).unwrap();
    assert_eq!(
        row.cumulative_views_before,
        i64::try_from(days).unwrap() - 1
    );
}

/// Finding 7: bodies and heads over the limits, unknown paths and methods
/// all answer the SPEC §8 envelope.
#[tokio::test]
async fn http_layer_errors_use_the_envelope() {
    let (app, admin) = admin_app(Store::Postgres).await;
    let big = "x".repeat(common::grpc::MAX_IMPORT_BYTES + 1);
    let r = import(&app, &admin, big).await;
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Just under the limit reaches the streaming service (no gRPC 4 MiB
    // refusal): a 5 MB file of bad lines is read and reported.
    let mut csv = String::from("video_id,day,views,watch_seconds,ad_views\n");
    while csv.len() < 5_000_000 {
        csv.push_str("999999,2026-01-01,1,1,1\n");
    }
    let r = import(&app, &admin, csv).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["details"][0]["description"]
            .as_str()
            .unwrap()
            .contains("100000 rows"),
        "{body}"
    );
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(format!("{{\"email\":\"{}\"}}", "a".repeat(70_000)))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-padding", "p".repeat(20_000))
        .send()
        .await
        .unwrap();
    let body = assert_error(
        r,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request_header_fields_too_large",
    )
    .await;
    assert_ne!(body["error"]["request_id"], "-");
    let r = app
        .client
        .delete(app.url("/api/v1/admin/imports/daily-counts"))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let r = app
        .client
        .get(app.url("/api/v1/videos/%ZZ"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");
}

/// Finding 8: 200 logins at once (no rate limit) get answers, not 504s: the
/// ones past the hashing line a prompt 503 with `retry-after`.
#[tokio::test]
async fn a_burst_of_logins_is_answered_promptly() {
    let app = spawn_app().await;
    app.signed_in("burst@example.com", "viewer").await;
    let started = Instant::now();
    let logins: Vec<_> = (0..200)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/api/v1/auth/login");
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .json(&json!({"email": "burst@example.com", "password": "password-123"}))
                    .send()
                    .await
                    .unwrap();
                (r.status(), r.headers().contains_key("retry-after"))
            })
        })
        .collect();
    let mut ok = 0;
    let mut busy = 0;
    for login in logins {
        match login.await.unwrap() {
            (StatusCode::OK, _) => ok += 1,
            (StatusCode::SERVICE_UNAVAILABLE, true) => busy += 1,
            other => panic!("a login answered {other:?}"),
        }
    }
    assert_eq!(ok + busy, 200);
    assert!(ok >= 2, "{ok} logins succeeded");
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// Finding 10: JSON bodies are `application/json` and hold one value.
#[tokio::test]
async fn json_bodies_are_strict() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "application/json")
        .body(
            r#"{"email":"x@example.com","password":"password-123","display_name":"X","role":"viewer"} xyz"#,
        )
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::BAD_REQUEST, "malformed_json").await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "text/plain")
        .body(r#"{"email":"x@example.com","password":"password-123","display_name":"X","role":"viewer"}"#)
        .send()
        .await
        .unwrap();
    let body = assert_error(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(body["error"]["details"][0]["field"], "content-type");
    // Neither created the account.
    let r = app.signup("x@example.com", "password-123", "viewer").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // A play's body may be empty, with no content type.
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&creator, 600).await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/videos/{video}/play")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Finding 11: a fresh stack settles a past day at once (the streaming
/// watermark is set at start), and a run of a day whose write-back is
/// really pending waits, queued with its reason, then succeeds.
#[tokio::test]
async fn a_fresh_stack_settles_at_once_and_a_pending_day_waits() {
    let (app, admin) = admin_app(Store::Postgres).await;
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&creator, 600).await;
    let day = yesterday();
    import(
        &app,
        &admin,
        format!("video_id,day,views,watch_seconds,ad_views\n{video},{day},7,70,0\n"),
    )
    .await;
    // No write-back by hand: the one at start set the watermark.
    let run = queue_and_wait(&app, &admin, day, |run| run["status"] == "succeeded").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["total_amount"], 7);

    // Two days of event lag: yesterday is not written back.
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        counter_event_lag_seconds: Some(2 * 86_400),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let run = queue_and_wait(&app, &admin, day, |run| run["error"].is_string()).await;
    assert_eq!(run["status"], "queued", "{run}");
    assert_eq!(run["error_code"], "not_written_back", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("not all written back"),
        "{run}"
    );
    app.writeback
        .advance_watermark(chrono::Utc::now())
        .await
        .unwrap();
    let id = run["run_id"].as_i64().unwrap();
    let path = format!("/api/v1/admin/settlements/{id}");
    let mut run = Value::Null;
    for _ in 0..100 {
        run = app.get_json(&path, Some(&admin)).await;
        if run["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(run["status"], "succeeded", "{run}");
}

/// Queues `day` (without writing back first) and polls its run for up to
/// 10 s until `done` says so; the run.
async fn queue_and_wait(
    app: &TestApp,
    admin: &str,
    day: NaiveDate,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let r = app
        .post_auth(
            "/api/v1/admin/settlements",
            admin,
            &json!({"from": day.to_string(), "to": day.to_string()}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["run_ids"][0]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/admin/settlements/{id}");
    let mut run = Value::Null;
    for _ in 0..100 {
        run = app.get_json(&path, Some(admin)).await;
        if done(&run) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run
}

/// Finding 12: `/metrics` is not on the public listener.
#[tokio::test]
async fn metrics_are_served_apart_from_the_api() {
    let app = spawn_app().await;
    app.client.get(app.url("/healthz")).send().await.unwrap();
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .client
        .get(format!("{}/metrics", app.metrics_address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains("gateway_http_requests_total"), "{text}");
}

/// Finding 6, cancellation: an import whose deadline passes stops after
/// its last whole batch and writes nothing more. On the embedded database,
/// where each batch is followed by a pause as long, 90,000 rows take several
/// times the 2 s deadline.
#[tokio::test]
async fn an_import_past_its_deadline_stops_after_whole_batches() {
    use common::auth::Role;
    use proto::streaming::v1::{
        ImportDailyCountsRequest, streaming_service_client::StreamingServiceClient,
    };
    use sea_orm::{ConnectionTrait, Database, Statement};
    use secrecy::ExposeSecret;

    let app = spawn_app_with(Options {
        store: Store::Sqlite,
        ..Options::default()
    })
    .await;
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&creator, 600).await;
    let first = NaiveDate::from_ymd_opt(1800, 1, 1).unwrap();
    let csv = history_csv(video, first, 90_000);
    let mut client = StreamingServiceClient::connect(app.streaming_url.clone())
        .await
        .unwrap()
        .max_decoding_message_size(32 << 20);
    let mut request = tonic::Request::new(ImportDailyCountsRequest { csv });
    request.set_timeout(Duration::from_millis(2_000));
    let metadata = request.metadata_mut();
    metadata.insert(
        common::grpc::SERVICE_CREDENTIAL,
        app.credential.expose_secret().parse().unwrap(),
    );
    let token = app.sign(&app.claims(1, Role::Admin));
    metadata.insert(
        common::grpc::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let status = client.import_daily_counts(request).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{status:?}"
    );

    let db = Database::connect(format!(
        "sqlite://{}/streaming.db?mode=ro",
        app.data_dir().display()
    ))
    .await
    .unwrap();
    let count = || async {
        let row = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM daily_counts WHERE video_id = {video}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    let written = count().await;
    eprintln!("{written} rows written before the deadline");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count().await, written, "nothing written after the deadline");
    assert!(
        written > 0 && written < 90_000,
        "stopped part-way: {written} rows"
    );
    assert_eq!(written % 1_000, 0, "whole batches only: {written} rows");
}
