//! Webhooks through the gateway (SPEC §11.5): a receiver on 127.0.0.1
//! verifies every signature with its own implementation of the Standard
//! Webhooks algorithm (HMAC-SHA256 written out here from SHA-256, not the
//! service's code); retries until the receiver answers; a receiver down
//! for longer than the retry window leaves a `failed` delivery that a
//! redelivery completes; the outbox carries settlement and statement
//! events; two delivery workers deliver each event once.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::helpers::{ADMIN, Options, TestApp, assert_error, detail_fields, spawn_app_with};

/// One request the receiver got: its headers (lower-case names) and body.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on 127.0.0.1: answers 500 to its first `failures`
/// requests, then 204; records every request.
#[derive(Clone)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    failures: Arc<AtomicU32>,
    /// The status line and headers of an answer that is not a failure.
    success: Arc<String>,
}

impl Receiver {
    async fn serve(listener: TcpListener, failures: u32) -> Self {
        Self::answering(listener, failures, "204 No Content".to_owned()).await
    }

    async fn answering(listener: TcpListener, failures: u32, success: String) -> Self {
        let receiver = Self {
            received: Arc::default(),
            failures: Arc::new(AtomicU32::new(failures)),
            success: Arc::new(success),
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else {
                        return;
                    };
                    r.received.lock().unwrap().push(request);
                    let failed = r
                        .failures
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let status = if failed {
                        "500 Internal Server Error"
                    } else {
                        r.success.as_str()
                    };
                    let _ = socket
                        .write_all(
                            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .as_bytes(),
                        )
                        .await;
                });
            }
        });
        receiver
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..300 {
            if self.received().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received()
    }
}

/// Reads one HTTP/1.1 request (headers and a `content-length` body).
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        headers,
        body: buffer[head_end..].to_vec(),
    })
}

/// HMAC-SHA256 as RFC 2104 defines it, from SHA-256.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0_u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// Verifies a request as Standard Webhooks documents: the secret's key is
/// the base64 after `whsec_`; the signature is `v1,` and the base64
/// HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`; the timestamp
/// is within 5 minutes of now.
fn verify(secret: &str, request: &Received) {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    let id = request.header("webhook-id");
    let timestamp = request.header("webhook-timestamp");
    assert!(!id.is_empty(), "{request:?}");
    let sent: i64 = timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - sent).abs() < 300);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &signed)));
    let signatures: Vec<&str> = request.header("webhook-signature").split(' ').collect();
    assert!(
        signatures.contains(&expected.as_str()),
        "signature {signatures:?} is not {expected}"
    );
}

async fn register(app: &TestApp, admin: &str, url: &str, events: &[&str]) -> (i64, String) {
    let r = app
        .post_auth(
            "/api/v1/admin/webhooks",
            admin,
            &json!({"url": url, "events": events}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["url"], url);
    let secret = body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{body}");
    (body["webhook_id"].as_i64().unwrap(), secret)
}

async fn deliveries(app: &TestApp, admin: &str, webhook: i64) -> Vec<Value> {
    app.get_json(
        &format!("/api/v1/admin/webhooks/{webhook}/deliveries"),
        Some(admin),
    )
    .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn hold(app: &TestApp, admin: &str, creator: i64, on: bool) -> StatusCode {
    let path = app.url(&format!("/api/v1/admin/creators/{creator}/hold"));
    let request = if on {
        app.client
            .put(path)
            .json(&json!({"reason": "tax residency check"}))
    } else {
        app.client.delete(path)
    };
    request.bearer_auth(admin).send().await.unwrap().status()
}

#[tokio::test]
async fn webhooks_are_signed_retried_logged_and_redelivered() {
    // Retries after 100 ms, 400 ms, 1.6 s, 6.4 s … within a 3 s window.
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        webhooks: Some((100, 3)),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;

    // A receiver that fails twice, then succeeds.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let flaky_url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let flaky = Receiver::serve(listener, 2).await;
    let (flaky_id, flaky_secret) =
        register(&app, &admin, &flaky_url, &["creator.hold_changed"]).await;
    // A receiver that is down.
    let parked = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down_addr = parked.local_addr().unwrap();
    drop(parked);
    let (down_id, down_secret) = register(
        &app,
        &admin,
        &format!("http://{down_addr}/hooks"),
        &["creator.hold_changed"],
    )
    .await;
    let listed = app.get_json("/api/v1/admin/webhooks", Some(&admin)).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(
        listed["items"][0].get("secret").is_none(),
        "the secret is shown once: {listed}"
    );

    assert_eq!(hold(&app, &admin, 42, true).await, StatusCode::OK);
    let got = flaky.wait_for(3).await;
    assert_eq!(got.len(), 3, "the third attempt succeeds");
    for request in &got {
        verify(&flaky_secret, request);
        assert_eq!(request.header("webhook-id"), got[0].header("webhook-id"));
    }
    let event = got[2].json();
    assert_eq!(event["type"], "creator.hold_changed");
    assert_eq!(
        event["data"],
        json!({"creator_id": 42, "on_hold": true, "reason": "tax residency check"})
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(flaky.received().len(), 3, "nothing after the success");
    let log = deliveries(&app, &admin, flaky_id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(log[0]["message_id"], got[0].header("webhook-id"));
    let codes: Vec<i64> = log[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 204]);

    // The receiver that is down: retried until the window passes, then
    // failed; each attempt logged with its error.
    let mut down_log = Vec::new();
    for _ in 0..200 {
        down_log = deliveries(&app, &admin, down_id).await;
        if down_log[0]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(down_log[0]["status"], "failed", "{down_log:?}");
    let attempts = down_log[0]["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 3, "{attempts:?}");
    assert!(
        attempts
            .iter()
            .all(|a| a["status_code"].is_null() && a["error"].is_string())
    );

    // Up again: a redelivery completes it.
    let listener = TcpListener::bind(down_addr).await.unwrap();
    let back = Receiver::serve(listener, 0).await;
    let delivery = down_log[0]["delivery_id"].as_i64().unwrap();
    let r = app
        .post_auth(
            &format!("/api/v1/admin/webhooks/{down_id}/deliveries/{delivery}/redeliver"),
            &admin,
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let got = back.wait_for(1).await;
    assert_eq!(got.len(), 1);
    verify(&down_secret, &got[0]);
    assert_eq!(got[0].json()["data"]["creator_id"], 42);
    for _ in 0..100 {
        if deliveries(&app, &admin, down_id).await[0]["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        deliveries(&app, &admin, down_id).await[0]["status"],
        "succeeded"
    );

    // A removed endpoint takes nothing new.
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/admin/webhooks/{down_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(hold(&app, &admin, 42, false).await, StatusCode::NO_CONTENT);
    let got = flaky.wait_for(4).await;
    let released = got
        .iter()
        .find(|r| r.json()["data"] == json!({"creator_id": 42, "on_hold": false, "reason": null}))
        .expect("the release of 42 was delivered");
    verify(&flaky_secret, released);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(back.received().len(), 1);

    // A redirect is not followed: it is a failed attempt.
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_url = format!("http://{}/elsewhere", target.local_addr().unwrap());
    let target = Receiver::serve(target, 0).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let redirecting = Receiver::answering(
        listener,
        0,
        format!("307 Temporary Redirect\r\nlocation: {target_url}"),
    )
    .await;
    let (redirect_id, _) = register(&app, &admin, &redirect_url, &["creator.hold_changed"]).await;
    assert_eq!(hold(&app, &admin, 43, true).await, StatusCode::OK);
    assert!(!redirecting.wait_for(1).await.is_empty());
    let mut log = Vec::new();
    for _ in 0..100 {
        log = deliveries(&app, &admin, redirect_id).await;
        if !log[0]["attempts"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log[0]["attempts"][0]["status_code"], 307);
    assert_eq!(log[0]["status"], "pending", "retried, not followed");
    assert!(target.received().is_empty(), "the redirect was followed");
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/admin/webhooks/{redirect_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn settlements_and_closes_announce_themselves_once_across_two_delivery_workers() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        webhooks: Some((100, 30)),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let receiver = Receiver::serve(listener, 0).await;
    let (_, secret) = register(
        &app,
        &admin,
        &url,
        &[
            "settlement.succeeded",
            "statement.issued",
            "creator.hold_changed",
        ],
    )
    .await;

    // A second replica's delivery worker on the same database.
    let db = sea_orm::Database::connect(app.revenue_db_url.clone().unwrap())
        .await
        .unwrap();
    let second = revenue_service::webhooks::Deliverer::new(
        db,
        revenue_service::webhooks::RetryPolicy {
            first_delay: Duration::from_millis(100),
            window: Duration::from_secs(30),
        },
        true,
        Duration::from_millis(10),
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(second.run(async {
        let _ = stopped.await;
    }));

    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&ada, 600).await;
    let csv =
        format!("video_id,day,views,watch_seconds,ad_views\n{video},2026-09-15,40000,400000,0\n");
    assert_eq!(app.import_csv(&admin, csv).await.status(), StatusCode::OK);
    let runs = app
        .settle_days(
            &admin,
            chrono::NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
        )
        .await;
    assert!(runs.iter().all(|r| r["status"] == "succeeded"));
    let r = app
        .post_auth("/api/v1/admin/closes", &admin, &json!({"month": "2026-09"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    for creator in 1..=20 {
        assert_eq!(
            hold(&app, &admin, 1_000 + creator, true).await,
            StatusCode::OK
        );
    }

    let expected = 30 + 1 + 20;
    let got = receiver.wait_for(expected).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = if got.len() < receiver.received().len() {
        receiver.received()
    } else {
        got
    };
    let _ = stop.send(());
    let _ = worker.await;
    assert_eq!(got.len(), expected, "each event once");
    let mut ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), expected, "no event delivered twice");
    for r in &got {
        verify(&secret, r);
    }
    let types = |t: &str| got.iter().filter(|r| r.json()["type"] == t).count();
    assert_eq!(types("settlement.succeeded"), 30);
    assert_eq!(types("creator.hold_changed"), 20);
    let issued: Vec<Value> = got
        .iter()
        .map(Received::json)
        .filter(|e| e["type"] == "statement.issued")
        .collect();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["data"]["payout"], 40_000);
    assert_eq!(issued[0]["data"]["income_tax"], 1_200);
    assert_eq!(issued[0]["data"]["net"], 40_000 - 1_200 - 120);
}

#[tokio::test]
async fn webhook_urls_must_be_public_https_and_events_known() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    for (url, events, field) in [
        (
            "http://127.0.0.1:9/hooks",
            json!(["statement.issued"]),
            "url",
        ),
        (
            "https://127.0.0.1/hooks",
            json!(["statement.issued"]),
            "url",
        ),
        ("https://10.0.0.7/hooks", json!(["statement.issued"]), "url"),
        (
            "https://localhost/hooks",
            json!(["statement.issued"]),
            "url",
        ),
        (
            "http://hooks.example.com/",
            json!(["statement.issued"]),
            "url",
        ),
        ("not a url", json!(["statement.issued"]), "url"),
        ("https://[::1]/hooks", json!(["statement.issued"]), "url"),
        (
            "https://hooks.example.com/",
            json!(["statement.nope"]),
            "events",
        ),
        ("https://hooks.example.com/", json!([]), "events"),
    ] {
        let r = app
            .post_auth(
                "/api/v1/admin/webhooks",
                &admin,
                &json!({"url": url, "events": events}),
            )
            .await;
        let body = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
        assert_eq!(detail_fields(&body), [field], "{url}: {body}");
    }
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let r = app
        .post_auth(
            "/api/v1/admin/webhooks",
            &creator,
            &json!({"url": "https://hooks.example.com/", "events": ["statement.issued"]}),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let listed = app.get_json("/api/v1/admin/webhooks", Some(&admin)).await;
    assert_eq!(listed["items"], json!([]), "nothing was registered");
    let r = app
        .get_auth("/api/v1/admin/webhooks/999/deliveries", &admin)
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
}
