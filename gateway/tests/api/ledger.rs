//! Money that can be corrected, through the gateway (SPEC §11.1–11.3,
//! §11.6): the ledger posts only differences, late counts restate later
//! days, adjustments claw back exactly the re-priced difference, admin
//! writes are idempotent and audited, and two revenue replicas re-settling
//! the same days post one set of transfers.

use std::time::Duration;

use common::domain::TransferKind;
use reqwest::StatusCode;
use revenue_service::ledger::Account;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, Options, TestApp, assert_error, detail_fields, scalar, spawn_admin_app, spawn_app_with,
};

/// SPEC §11.1's invariant, and the roll-ups equal to the sums of their
/// days (issue 19), checked in the revenue database.
async fn assert_invariant(db: &DatabaseConnection) {
    let violations = revenue_service::ledger::invariant_violations(db)
        .await
        .unwrap();
    assert!(violations.is_empty(), "ledger ≠ amounts: {violations:?}");
    let mismatches = revenue_service::rollups::mismatches(db).await.unwrap();
    assert!(
        mismatches.is_empty(),
        "roll-ups ≠ their days: {mismatches:?}"
    );
}

async fn ledger(app: &TestApp, token: &str, query: &str) -> Value {
    app.get_json(&format!("/api/v1/ledger{query}"), Some(token))
        .await
}

/// (kind, amount, day) of each ledger entry, oldest first.
fn entries(page: &Value) -> Vec<(String, i64, String)> {
    let mut items: Vec<(String, i64, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["amount"].as_i64().unwrap(),
                e["day"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    items.reverse();
    items
}

fn entry(kind: &str, amount: i64, d: &str) -> (String, i64, String) {
    (kind.to_owned(), amount, d.to_owned())
}

async fn video_days(app: &TestApp, token: &str, video: i64, date: &str) -> Vec<Value> {
    let stats: Value = app
        .get_json(
            &format!("/api/v1/videos/{video}/stats?period=month&date={date}"),
            Some(token),
        )
        .await;
    stats["days"].as_array().unwrap().clone()
}

#[tokio::test]
async fn late_counts_restate_a_later_day_and_the_ledger_holds_only_the_differences() {
    let (app, admin) = spawn_admin_app(Options::default()).await;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let v = app.video(&ada, 600).await;
    // 99,990 views, then 20 (10 at 1 won, 10 at 1.1 won: 21 won), then 5
    // (all at 1.1 won: 5.5 → 5).
    app.import_counts(
        &admin,
        &[
            (v, "2026-10-01", 99_990, 0),
            (v, "2026-10-02", 20, 0),
            (v, "2026-10-03", 5, 0),
        ],
    )
    .await;
    app.settle_ok(&admin, "2026-10-01", "2026-10-03").await;
    let page = ledger(&app, &ada, "").await;
    assert_eq!(
        entries(&page),
        [
            entry("earning", 99_990, "2026-10-01"),
            entry("earning", 21, "2026-10-02"),
            entry("earning", 5, "2026-10-03"),
        ]
    );
    assert_eq!(page["balance"], 100_016);
    assert_eq!(page["currency"], "KRW");

    // Ten late views of 10-01: the day reaches 100,000, which moves 10-02
    // into the 1.1-won tier (22 won); 10-03 stays at 5 won.
    app.import_counts(&admin, &[(v, "2026-10-01", 100_000, 0)])
        .await;
    let run = &app.settle_ok(&admin, "2026-10-01", "2026-10-01").await[0];
    assert_eq!(run["total_amount"], 100_000);
    assert_eq!(run["previous_total_amount"], 99_990);
    assert_eq!(run["restated_rows"], 1, "{run}");
    assert_eq!(run["day_state"], "restated", "a final day changed");
    let days = video_days(&app, &ada, v, "2026-10-01").await;
    let totals: Vec<(i64, &str)> = days
        .iter()
        .map(|d| {
            (
                d["total_amount"].as_i64().unwrap(),
                d["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        totals,
        [(100_000, "restated"), (22, "restated"), (5, "final")]
    );
    let page = ledger(&app, &ada, "").await;
    assert_eq!(
        entries(&page)[3..],
        [
            entry("restatement", 10, "2026-10-01"),
            entry("restatement", 1, "2026-10-02"),
        ],
        "only the differences are posted"
    );
    assert_eq!(page["balance"], 100_000 + 22 + 5);
    let db = app.revenue_db().await;
    assert_invariant(&db).await;

    // Nothing changed: a re-run posts nothing.
    let run = &app.settle_ok(&admin, "2026-10-01", "2026-10-03").await[0];
    assert_eq!(run["previous_total_amount"], run["total_amount"]);
    assert_eq!(run["restated_rows"], 0);
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM ledger_transfers").await,
        5
    );
    assert_invariant(&db).await;

    // A day less than SETTLEMENT_FINAL_AFTER_DAYS old is an estimate.
    let yesterday = common::time::PlatformTime::default()
        .today()
        .pred_opt()
        .unwrap();
    app.import_counts(&admin, &[(v, &yesterday.to_string(), 3, 0)])
        .await;
    let run = &app.settle_days(&admin, yesterday, yesterday).await[0];
    assert_eq!(run["day_state"], "estimated", "{run}");

    // The same entries as CSV, paged, and only to their owner or an admin.
    let csv = app
        .client
        .get(app.url("/api/v1/ledger?limit=2"))
        .bearer_auth(&ada)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers().contains_key("x-next-cursor"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("entry_id,kind,amount,video_id,day,posted_at"));
    let first_page = ledger(
        &app,
        &admin,
        &format!("?creator_id={}&limit=4", page["creator_id"]),
    )
    .await;
    let cursor = first_page["next_cursor"].as_str().unwrap().to_owned();
    let second_page = ledger(
        &app,
        &admin,
        &format!("?creator_id={}&limit=4&cursor={cursor}", page["creator_id"]),
    )
    .await;
    assert_eq!(
        first_page["items"].as_array().unwrap().len()
            + second_page["items"].as_array().unwrap().len(),
        6
    );
    assert!(second_page["next_cursor"].is_null());
    let bob = app.signed_in("bob@example.com", "creator").await.access;
    let viewer = app.signed_in("val@example.com", "viewer").await.access;
    let others = format!("/api/v1/ledger?creator_id={}", page["creator_id"]);
    assert_error(
        app.get_auth(&others, &bob).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.get_auth("/api/v1/ledger", &viewer).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let body = assert_error(
        app.get_auth("/api/v1/ledger", &admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    assert_eq!(detail_fields(&body), ["creator_id"]);
    let body = assert_error(
        app.get_auth("/api/v1/ledger?from=2026-10-05&to=2026-10-01", &ada)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    assert_eq!(detail_fields(&body), ["to"]);
}

#[tokio::test]
async fn an_adjustment_claws_back_exactly_the_repriced_difference() {
    let (app, admin) = spawn_admin_app(Options::default()).await;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let bob = app.signed_in("bob@example.com", "creator").await.access;
    let viewer = app.signed_in("val@example.com", "viewer").await.access;
    let v = app.video(&ada, 600).await;
    // 10-01: 100,000 views (100,000 won) and 100,000 ad views (1,000,000
    // won); 10-02: 10 views at 1.1 (11 won) and 10 ad views at 12 (120).
    app.import_counts(
        &admin,
        &[
            (v, "2026-10-01", 100_000, 100_000),
            (v, "2026-10-02", 10, 10),
        ],
    )
    .await;
    app.settle_ok(&admin, "2026-10-01", "2026-10-02").await;
    assert_eq!(ledger(&app, &ada, "").await["balance"], 1_100_000 + 131);

    // 10 views and 10 ad views of 10-01 were bots: 10-01 loses 10 + 100
    // won, and 10-02 drops to the first tiers: 10 + 100 = 110 (−21).
    let r = app
        .post_auth(
            "/api/v1/admin/adjustments",
            &admin,
            &json!({"video_id": v, "day": "2026-10-01", "views": 10, "ad_views": 10,
                    "watch_seconds": 100, "reason": "bot farm"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let adjustment: Value = r.json().await.unwrap();
    assert_eq!(adjustment["amount_clawed_back"], 131, "{adjustment}");
    assert_eq!(adjustment["currency"], "KRW");
    let page = ledger(&app, &ada, "").await;
    assert_eq!(
        entries(&page)[2..],
        [
            entry("adjustment", -110, "2026-10-01"),
            entry("adjustment", -21, "2026-10-02"),
        ]
    );
    assert_eq!(page["items"][0]["reason"], "bot farm");
    assert_eq!(page["items"][0]["source"]["kind"], "adjustment");
    assert_eq!(
        page["items"][0]["source"]["id"],
        adjustment["adjustment_id"]
    );
    assert_eq!(page["balance"], 1_100_000);
    let days = video_days(&app, &ada, v, "2026-10-01").await;
    assert_eq!(
        (
            &days[0]["views"],
            &days[0]["original_views"],
            &days[0]["ad_views"],
            &days[0]["original_ad_views"],
            &days[0]["watch_seconds"],
        ),
        (
            &json!(99_990),
            &json!(100_000),
            &json!(99_990),
            &json!(100_000),
            &json!(999_900)
        )
    );
    assert_eq!(days[1]["total_amount"], 110);
    assert_eq!(days[1]["original_views"], days[1]["views"]);
    let db = app.revenue_db().await;
    assert_invariant(&db).await;
    // Only the adjusted row stores its original counts; every other row's
    // are NULL, read as its counts.
    assert_eq!(
        scalar(
            &db,
            &format!(
                "SELECT COUNT(*) FROM daily_stats WHERE original_views IS NOT NULL \
                 AND NOT (video_id = {v} AND day = '2026-10-01')"
            )
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &db,
            &format!(
                "SELECT COUNT(*) FROM daily_stats WHERE original_views = 100000 \
                 AND original_ad_views = 100000 AND video_id = {v} AND day = '2026-10-01'"
            )
        )
        .await,
        1
    );

    // The creator sees their adjustments, another creator none, a viewer
    // is refused.
    let mine: Value = app.get_json("/api/v1/adjustments", Some(&ada)).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["reason"], "bot farm");
    let theirs: Value = app.get_json("/api/v1/adjustments", Some(&bob)).await;
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let filtered: Value = app
        .get_json(
            &format!("/api/v1/adjustments?video_id={}", v + 1),
            Some(&admin),
        )
        .await;
    assert!(filtered["items"].as_array().unwrap().is_empty());
    assert_error(
        app.get_auth("/api/v1/adjustments", &viewer).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // More than what is left of the day's count, another field out of
    // range, the wrong role, an unknown video: refused, nothing changes.
    let transfers = scalar(&db, "SELECT COUNT(*) FROM ledger_transfers").await;
    let bad = |views: i64, ad_views: i64| {
        json!({"video_id": v, "day": "2026-10-01", "views": views, "ad_views": ad_views,
               "watch_seconds": 0, "reason": "bots"})
    };
    for (body, field) in [
        (bad(99_991, 0), "views"),
        (bad(0, 99_991), "ad_views"),
        (bad(-1, 0), "views"),
        (
            json!({"video_id": v, "day": "2026-10-01", "views": 1, "reason": ""}),
            "reason",
        ),
        (
            json!({"video_id": v, "day": "2999-01-01", "views": 1, "reason": "x"}),
            "day",
        ),
        (
            json!({"video_id": v, "day": "0001-01-01", "views": 1, "reason": "x"}),
            "day",
        ),
    ] {
        let r = app
            .post_auth("/api/v1/admin/adjustments", &admin, &body)
            .await;
        let e = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
        assert_eq!(detail_fields(&e), [field], "{body}");
    }
    for token in [&ada, &viewer] {
        let r = app
            .post_auth("/api/v1/admin/adjustments", token, &bad(1, 0))
            .await;
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let r = app
        .post_auth(
            "/api/v1/admin/adjustments",
            &admin,
            &json!({"video_id": 999_999, "day": "2026-10-01", "views": 1, "reason": "x"}),
        )
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "video_not_found").await;
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM ledger_transfers").await,
        transfers
    );

    // Once paid out (a payout transfer, as a monthly close posts it), a
    // further clawback leaves the creator owing: the balance goes negative
    // and is shown.
    let creator_id = page["creator_id"].as_i64().unwrap();
    let payout = revenue_service::ledger::Posting {
        kind: TransferKind::Payout,
        source_kind: "payout",
        source_id: 1,
        reason: None,
        actor: "settlement".to_owned(),
        posted_at: chrono::Utc::now(),
        recorded: Default::default(),
    };
    let line = revenue_service::ledger::Line {
        kind: TransferKind::Payout,
        debit: Account::Payable,
        credit: Account::Cash,
        amount: 1_100_000,
        creator_id,
        video_id: None,
        day: None,
    };
    revenue_service::ledger::post_lines(&db, vec![line], &payout)
        .await
        .unwrap();
    let r = app
        .post_auth("/api/v1/admin/adjustments", &admin, &bad(1_000, 0))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let clawed: Value = r.json().await.unwrap();
    assert_eq!(clawed["amount_clawed_back"], 1_000);
    let page = ledger(&app, &ada, "").await;
    assert_eq!(page["balance"], -1_000);
    assert_eq!(entries(&page)[4], entry("payout", -1_100_000, ""));
    assert_invariant(&db).await;
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_answer_and_admin_writes_are_audited() {
    let (app, admin) = spawn_admin_app(Options::default()).await;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let v = app.video(&ada, 600).await;
    app.import_counts(&admin, &[(v, "2026-10-01", 1_000, 0)])
        .await;
    app.settle_ok(&admin, "2026-10-01", "2026-10-01").await;

    let send = |key: &'static str, body: Value, request_id: &'static str| {
        app.client
            .post(app.url("/api/v1/admin/adjustments"))
            .bearer_auth(&admin)
            .header("idempotency-key", key)
            .header("x-request-id", request_id)
            .json(&body)
            .send()
    };
    let body = json!({"video_id": v, "day": "2026-10-01", "views": 100, "reason": "bots"});
    let first = send("adjust-1", body.clone(), "req-first").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotency-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = send("adjust-1", body.clone(), "req-again").await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        first,
        "the first answer"
    );
    let listed: Value = app.get_json("/api/v1/adjustments", Some(&admin)).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "acted once");
    assert_eq!(ledger(&app, &ada, "").await["balance"], 900);
    let other = send(
        "adjust-1",
        json!({"video_id": v, "day": "2026-10-01", "views": 5, "reason": "bots"}),
        "req-other",
    )
    .await
    .unwrap();
    assert_error(other, StatusCode::CONFLICT, "idempotency_key_reused").await;
    // The key is the admin's own: a refused request under another key acts.
    let bad = send(
        "adjust-2",
        json!({"video_id": v, "day": "2026-10-01", "views": 10_000, "reason": "bots"}),
        "req-bad",
    )
    .await
    .unwrap();
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_field").await;
    let bad_again = send(
        "adjust-2",
        json!({"video_id": v, "day": "2026-10-01", "views": 10_000, "reason": "bots"}),
        "req-bad-2",
    )
    .await
    .unwrap();
    assert_eq!(
        bad_again.status(),
        StatusCode::BAD_REQUEST,
        "a 4xx answer is replayed too"
    );
    assert_eq!(bad_again.headers()["idempotency-replayed"], "true");

    // A settlement request replayed queues nothing new.
    let queue = || {
        app.client
            .post(app.url("/api/v1/admin/settlements"))
            .bearer_auth(&admin)
            .header("idempotency-key", "settle-october-1")
            .json(&json!({"from": "2026-10-01", "to": "2026-10-01"}))
            .send()
    };
    let runs_before: Value = app
        .get_json("/api/v1/admin/settlements", Some(&admin))
        .await;
    let a: Value = queue().await.unwrap().json().await.unwrap();
    let b: Value = queue().await.unwrap().json().await.unwrap();
    assert_eq!(a, b);
    let runs_after: Value = app
        .get_json("/api/v1/admin/settlements", Some(&admin))
        .await;
    assert_eq!(
        runs_after["items"].as_array().unwrap().len(),
        runs_before["items"].as_array().unwrap().len() + 1
    );
    let r = app
        .client
        .post(app.url("/api/v1/admin/settlements"))
        .bearer_auth(&admin)
        .header("idempotency-key", "bad key with spaces")
        .json(&json!({"from": "2026-10-01", "to": "2026-10-01"}))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
    assert_eq!(detail_fields(&e), ["Idempotency-Key"]);

    // The audit log: who did what, to what, under which request id.
    let audit: Value = app
        .get_json("/api/v1/admin/audit?limit=100", Some(&admin))
        .await;
    let items = audit["items"].as_array().unwrap();
    let by_request = |id: &str| {
        items
            .iter()
            .find(|e| e["request_id"] == id)
            .unwrap_or_else(|| panic!("no audit entry for {id}: {audit}"))
    };
    let first_entry = by_request("req-first");
    assert_eq!(first_entry["action"], "POST /api/v1/admin/adjustments");
    assert_eq!(first_entry["target"], "/api/v1/admin/adjustments");
    assert_eq!(first_entry["status"], 201);
    assert_eq!(first_entry["replayed"], false);
    assert_eq!(first_entry["idempotency_key"], "adjust-1");
    assert_eq!(first_entry["actor"], by_request("req-again")["actor"]);
    assert_eq!(by_request("req-again")["replayed"], true);
    assert_eq!(by_request("req-bad")["status"], 400);
    assert!(
        items
            .iter()
            .any(|e| e["action"] == "POST /api/v1/admin/imports/daily-counts"),
        "imports are audited"
    );
    assert!(
        items.iter().all(|e| e["request_id"] != "req-other"),
        "a refused key did not act"
    );
    assert_error(
        app.get_auth("/api/v1/admin/audit", &ada).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn two_revenue_replicas_resettling_overlapping_days_post_one_set_of_transfers() {
    let (app, admin) = spawn_admin_app(Options::default()).await;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let videos = [app.video(&ada, 600).await, app.video(&ada, 600).await];
    let history = |first: i64| {
        videos
            .iter()
            .flat_map(|&v| {
                [
                    (v, "2026-10-01", first, 0),
                    (v, "2026-10-02", 10, 0),
                    (v, "2026-10-03", 10, 0),
                    (v, "2026-10-04", 10, 0),
                ]
            })
            .collect::<Vec<_>>()
    };
    app.import_counts(&admin, &history(99_995)).await;
    app.settle_ok(&admin, "2026-10-01", "2026-10-04").await;
    // A second replica on the same database.
    let mut settings = app.revenue_settings();
    settings.revenue_grpc_addr = "127.0.0.1:0".parse().unwrap();
    let second = revenue_service::Application::build(settings).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let replica = tokio::spawn(second.run_until(async {
        let _ = stopped.await;
    }));

    // Ten late views a video on 10-01: it gains 10 won and 10-02 moves
    // into the 1.1-won tier (10 → 11); 10-03 and 10-04 stay at 11.
    app.import_counts(&admin, &history(100_005)).await;
    let mut ids = Vec::new();
    for (from, to) in [
        ("2026-10-01", "2026-10-04"),
        ("2026-10-01", "2026-10-02"),
        ("2026-10-01", "2026-10-03"),
    ] {
        let r = app
            .post_auth(
                "/api/v1/admin/settlements",
                &admin,
                &json!({"from": from, "to": to}),
            )
            .await;
        let body: Value = r.json().await.unwrap();
        ids.extend(
            body["run_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_i64().unwrap()),
        );
    }
    for id in ids {
        let mut run = Value::Null;
        for _ in 0..300 {
            run = app
                .get_json(&format!("/api/v1/admin/settlements/{id}"), Some(&admin))
                .await;
            if run["status"] == "succeeded" || run["status"] == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    let _ = stop.send(());
    let _ = replica.await;
    let db = app.revenue_db().await;
    assert_invariant(&db).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM ledger_transfers_named WHERE kind = 'earning'"
        )
        .await,
        8
    );
    // Per video: +10 on 10-01 and +1 on 10-02, once each.
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM ledger_transfers_named WHERE kind = 'restatement'"
        )
        .await,
        4
    );
    assert_eq!(
        scalar(&db,
            "SELECT COUNT(*) FROM (SELECT video_id, day FROM ledger_transfers_named WHERE kind = 'restatement' \
             GROUP BY video_id, day HAVING COUNT(*) > 1) d"
        )
        .await,
        0,
        "no (video, day) got the same difference twice"
    );
    assert_eq!(
        ledger(&app, &ada, "").await["balance"],
        2 * (100_005 + 11 + 11 + 11)
    );
}

#[tokio::test]
async fn late_counts_settle_their_settled_day_again_by_themselves() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        late_poll_seconds: 1,
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let v = app.video(&ada, 600).await;
    app.import_counts(
        &admin,
        &[(v, "2026-10-01", 99_990, 0), (v, "2026-10-02", 20, 0)],
    )
    .await;
    app.settle_ok(&admin, "2026-10-01", "2026-10-02").await;
    // Late counts arrive by import; nobody queues a run.
    app.import_counts(&admin, &[(v, "2026-10-01", 100_000, 0)])
        .await;
    let mut days = Vec::new();
    for _ in 0..100 {
        days = video_days(&app, &ada, v, "2026-10-01").await;
        if days[1]["total_amount"] == 22 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(days[0]["total_amount"], 100_000, "{days:?}");
    assert_eq!(days[1]["total_amount"], 22, "10-02 restated: {days:?}");
    let runs: Value = app
        .get_json("/api/v1/admin/settlements", Some(&admin))
        .await;
    let newest = &runs["items"][0];
    assert_eq!(
        (&newest["day"], &newest["status"], &newest["restated_rows"]),
        (&json!("2026-10-01"), &json!("succeeded"), &json!(1)),
        "{runs}"
    );
    assert_eq!(runs["items"].as_array().unwrap().len(), 3, "one run, once");
    let db = app.revenue_db().await;
    assert_invariant(&db).await;

    // The write-back records the days it changes the same way (today here,
    // which no run settles before it is over).
    let token = app.sign(&app.claims(10_001, common::auth::Role::Viewer));
    let p = app.play(Some(&token), v, None).await;
    app.pause_ok(Some(&token), v, p["session_id"].as_str().unwrap(), 4)
        .await;
    app.write_back().await;
    let today = common::time::PlatformTime::default().today().to_string();
    let streaming = sea_orm::Database::connect(app.streaming_db_url.clone().unwrap())
        .await
        .unwrap();
    let changed = scalar(
        &streaming,
        &format!("SELECT COUNT(*) FROM changed_days WHERE day = '{today}'"),
    )
    .await;
    assert_eq!(changed, 1);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let runs: Value = app
        .get_json("/api/v1/admin/settlements", Some(&admin))
        .await;
    assert_eq!(
        runs["items"].as_array().unwrap().len(),
        3,
        "today is not settled"
    );
}
