//! The envelope, limits and downstream failures (SPEC §8).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, assert_error, detail_fields, spawn_app, spawn_app_with};

#[tokio::test]
async fn malformed_json_is_400_in_the_envelope() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/signup"))
        .header("content-type", "application/json")
        .body("{this is not json")
        .send()
        .await
        .unwrap();
    let err = assert_error(r, StatusCode::BAD_REQUEST, "malformed_json").await;
    assert_eq!(detail_fields(&err), vec!["body"]);

    let r = app
        .post_json("/api/v1/auth/signup", &json!({"email": 42, "password": "password-123", "display_name": "A", "role": "viewer"}))
        .await;
    let err = assert_error(r, StatusCode::BAD_REQUEST, "malformed_json").await;
    assert_eq!(detail_fields(&err), vec!["email"]);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let huge = "x".repeat(200 * 1024);
    let r = app
        .post_json("/api/v1/auth/signup", &json!({"email": "a@example.com", "password": huge, "display_name": "A", "role": "viewer"}))
        .await;
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Nothing was written.
    assert_eq!(
        app.signup("a@example.com", "password-123", "viewer")
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn login_rate_limit_is_429_with_retry_after() {
    let app = spawn_app_with(Options {
        rate_limit_per_minute: 5,
        ..Options::default()
    })
    .await;
    for i in 0..5 {
        let r = app.login("nobody@example.com", "password-123").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "request {i}");
    }
    let r = app.login("nobody@example.com", "password-123").await;
    let retry_after: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("retry-after in seconds");
    assert!((1..=60).contains(&retry_after), "retry-after {retry_after}");
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Sign-up has its own budget.
    assert_eq!(
        app.signup("fresh@example.com", "password-123", "viewer")
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn every_response_has_a_request_id_and_a_given_one_is_echoed() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], "trace-abc-123");

    let r = app
        .client
        .get(app.url("/no/such/route"))
        .header("x-request-id", "trace-404")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-404");
    let body = assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(body["error"]["request_id"], "trace-404");

    // A header that is not a sane token is replaced, not echoed.
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\"<script>")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");

    for path in [
        "/readyz",
        "/openapi.json",
        "/metrics",
        "/.well-known/jwks.json",
        "/api/v1/users/me",
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert!(r.headers().contains_key("x-request-id"), "{path}");
    }
    let r = app.login("x@example.com", "password-123").await;
    assert!(r.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn user_service_down_gives_503_fast_and_readyz_names_it() {
    let mut app = spawn_app().await;
    let tokens = app.signed_in("down@example.com", "viewer").await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["downstreams"]["user_service"], "up");
    assert_eq!(ready["gateway"]["signing_keys"], "up");

    app.stop_user_service().await;

    let started = Instant::now();
    let r = app.get_auth("/api/v1/users/me", &tokens.access).await;
    let took = started.elapsed();
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    assert!(took < Duration::from_secs(2), "503 took {took:?}");

    let started = Instant::now();
    let r = app.login("down@example.com", "password-123").await;
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    assert!(started.elapsed() < Duration::from_secs(2));

    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    let err = assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
    assert_eq!(detail_fields(&err), vec!["user_service"]);
    // The gateway itself is alive.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn readyz_names_missing_keys_and_answers_503_while_the_gateway_drains() {
    let (base, stop, task) = crate::helpers::lone_gateway(|settings| {
        settings.gateway_drain_seconds = 3;
    })
    .await;
    let client = reqwest::Client::new();
    // No user service: no keys to check tokens with, and every downstream down.
    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    let err = assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
    let fields = detail_fields(&err);
    for name in [
        "signing_keys",
        "user_service",
        "streaming_service",
        "revenue_service",
    ] {
        assert!(fields.iter().any(|f| f == name), "{fields:?} lacks {name}");
    }

    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.headers().get("connection"), None, "kept alive");

    // Asked to stop: not ready at once, while requests are still served,
    // each on a connection closed after its answer (no client sends another
    // request on a connection the stop would cut).
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.headers().get("connection").unwrap(), "close");
    let err = assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
    assert_eq!(detail_fields(&err), vec!["gateway"]);
    assert!(!task.is_finished(), "still draining");
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("connection").unwrap(), "close");

    // Then it stops.
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("stopped after the drain")
        .unwrap()
        .unwrap();
    assert!(client.get(format!("{base}/healthz")).send().await.is_err());
}

#[tokio::test]
async fn openapi_document_covers_the_routes() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/auth/signup",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/users/me",
        "/api/v1/admin/users",
        "/api/v1/auth/providers",
        "/api/v1/revenues/daily",
        "/studio/session",
        "/studio/oauth/{provider}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    // Every reference resolves: the domain types (run status, period,
    // tally, error code) are described where they are used.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
    assert_eq!(
        doc["components"]["schemas"]["RunStatus"]["enum"],
        serde_json::json!(["queued", "running", "succeeded", "failed"])
    );
    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("openapi"));
}

/// A service at its concurrency limit sheds load: a call beyond it is
/// refused at once with `RESOURCE_EXHAUSTED`, which the gateway answers as
/// 503 with `retry-after`, instead of queueing until its deadline.
///
/// The test holds the streaming service's one call itself, whatever the
/// machine's speed: it takes the embedded database's write lock, so an
/// import waits in SQLite's busy handler (5 s) until the lock is let go.
#[tokio::test]
async fn a_saturated_service_sheds_load_with_503_at_once() {
    use sea_orm::{ConnectOptions, ConnectionTrait, Database};

    let app = spawn_app_with(Options {
        store: crate::helpers::Store::Sqlite,
        admin: Some(("admin@example.com", "admin-password-1")),
        streaming_max_concurrent_calls: Some(1),
        ..Options::default()
    })
    .await;
    let admin = app
        .login_tokens("admin@example.com", "admin-password-1")
        .await
        .access;
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&creator, 600).await;

    // One connection, so BEGIN and COMMIT run on the same one.
    let mut options = ConnectOptions::new(format!(
        "sqlite://{}/streaming.db?mode=rw",
        app.data_dir().display()
    ));
    options.max_connections(1).min_connections(1);
    let lock = Database::connect(options).await.unwrap();
    lock.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();

    let first = chrono::NaiveDate::from_ymd_opt(1800, 1, 1).unwrap();
    let csv = crate::helpers::history_csv(video, first, 100);
    let importing = {
        let client = app.client.clone();
        let url = app.url("/api/v1/admin/imports/daily-counts");
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(admin)
                .header("content-type", "text/csv")
                .body(csv)
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // Time for the import to reach the service and wait on the lock, even
    // on a busy machine; it cannot finish while the lock is held, and the
    // lock is let go well within the busy handler's 5 s.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(!importing.is_finished(), "the import waits on the lock");
    let started = Instant::now();
    let r = app
        .client
        .get(app.url(&format!("/api/v1/videos/{video}")))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    lock.execute_unprepared("COMMIT").await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "service_overloaded").await;
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    assert_eq!(importing.await.unwrap(), StatusCode::OK);
    // Free again.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/videos/{video}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
