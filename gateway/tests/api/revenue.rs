//! Settlement and reports through the gateway: the revenue service on
//! PostgreSQL pulling from the streaming service (SPEC §6, §7).

use std::time::Duration;

use chrono::NaiveDate;
use common::time::PlatformTime;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, assert_error, spawn_app_with};

const ADMIN: (&str, &str) = ("admin@example.com", "admin-password");

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Queues `from..=to` and waits until every run has finished.
async fn settle(app: &TestApp, admin: &str, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    app.settle_days(admin, from, to).await
}

async fn import(app: &TestApp, admin: &str, csv: String) {
    let report: Value = app.import_csv(admin, csv).await.json().await.unwrap();
    assert!(
        report["rejected"].as_array().unwrap().is_empty(),
        "{report}"
    );
}

#[tokio::test]
async fn a_day_is_settled_reported_and_resettled() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let bob = app.signed_in("bob@example.com", "creator").await.access;
    let viewer = app.signed_in("viewer@example.com", "viewer").await.access;
    let v1 = app.video(&ada, 600).await;
    let v2 = app.video(&ada, 600).await;
    let v3 = app.video(&bob, 600).await;

    // Viewers play and pause today; the counters are written back.
    let token_for = |n: i64| app.sign(&app.claims(10_000 + n, common::auth::Role::Viewer));
    for (video, viewers) in [(v1, 3), (v2, 5), (v3, 1)] {
        for n in 0..viewers {
            let token = token_for(n);
            let p = app.play(Some(&token), video, None).await;
            app.pause_ok(Some(&token), video, p["session_id"].as_str().unwrap(), 4)
                .await;
        }
    }
    app.write_back().await;
    // The day ends: today's written-back rows become yesterday's (the
    // watermark, a write-back ago, is already past yesterday's end).
    let yesterday = PlatformTime::default().today().pred_opt().unwrap();
    let db = sea_orm::Database::connect(app.streaming_db_url.clone().unwrap())
        .await
        .unwrap();
    // Yesterday's month may have no partition yet (on the 1st of a month
    // the service made this month and the next ones only).
    common::partitions::ensure_months(&db, "daily_counts", yesterday, yesterday)
        .await
        .unwrap();
    db.execute_unprepared(&format!("UPDATE daily_counts SET day = '{yesterday}'"))
        .await
        .unwrap();

    let runs = settle(&app, &admin, yesterday, yesterday).await;
    assert_eq!(runs[0]["status"], "succeeded", "{}", runs[0]);
    assert_eq!(
        (runs[0]["rows"].clone(), runs[0]["total_amount"].clone()),
        (json!(3), json!(9))
    );
    assert_eq!(runs[0]["rate_card_version"], 1);
    assert_eq!(runs[0]["previous_total_amount"], Value::Null);

    let top: Value = app
        .get_json(
            &format!("/api/v1/stats/top?metric=views&period=day&date={yesterday}"),
            None,
        )
        .await;
    let ranked: Vec<(i64, i64)> = top["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["video_id"].as_i64().unwrap(),
                i["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranked, [(v2, 5), (v1, 3), (v3, 1)]);
    assert_eq!(top["items"][0]["title"], "A video");
    let by_time: Value = app
        .get_json(
            &format!("/api/v1/stats/top?metric=watch_time&period=day&date={yesterday}&limit=1"),
            None,
        )
        .await;
    assert_eq!(
        (
            by_time["items"][0]["video_id"].as_i64(),
            by_time["items"][0]["value"].as_i64()
        ),
        (Some(v2), Some(20))
    );

    let rev: Value = app
        .get_json(
            &format!("/api/v1/revenues?period=day&date={yesterday}"),
            Some(&ada),
        )
        .await;
    assert_eq!(
        (
            rev["total_amount"].clone(),
            rev["video_amount"].clone(),
            rev["currency"].clone()
        ),
        (json!(8), json!(8), json!("KRW"))
    );
    assert_eq!(rev["videos"].as_array().unwrap().len(), 2);
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/revenues?period=day&date={yesterday}")))
        .bearer_auth(&ada)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    assert_eq!(
        text.lines().next(),
        Some("video_id,title,views,watch_seconds,ad_views,video_amount,ad_amount,total_amount")
    );
    assert!(
        text.contains(&format!("{v2},A video,5,20,0,5,0,5")),
        "{text}"
    );

    // A creator asking for another's revenue: 403; an admin sees any.
    let r = app
        .get_auth(
            &format!(
                "/api/v1/revenues?period=day&date={yesterday}&creator_id={}",
                rev["creator_id"].as_i64().unwrap() + 1
            ),
            &ada,
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let bobs: Value = app
        .get_json(
            &format!(
                "/api/v1/revenues?period=day&date={yesterday}&creator_id={}",
                rev["creator_id"].as_i64().unwrap() + 1
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(bobs["total_amount"], 1);
    assert_error(
        app.get_auth(
            &format!("/api/v1/revenues?period=day&date={yesterday}"),
            &viewer,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A video's stats: its owner yes, another creator no.
    let stats: Value = app
        .get_json(
            &format!("/api/v1/videos/{v1}/stats?period=day&date={yesterday}"),
            Some(&ada),
        )
        .await;
    assert_eq!(stats["days"][0]["views"], 3);
    assert_error(
        app.get_auth(
            &format!("/api/v1/videos/{v1}/stats?period=day&date={yesterday}"),
            &bob,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // Re-running the day gives identical rows.
    let again = settle(&app, &admin, yesterday, yesterday).await;
    assert_eq!(
        (again[0]["rows"].clone(), again[0]["total_amount"].clone()),
        (json!(3), json!(9))
    );
    assert_eq!(again[0]["previous_total_amount"], 9);
    let top_again: Value = app
        .get_json(
            &format!("/api/v1/stats/top?metric=views&period=day&date={yesterday}"),
            None,
        )
        .await;
    assert_eq!(top_again["items"], top["items"]);

    // Late counts arrive; the re-run replaces the day and keeps the earlier
    // total in the run history. 150,000 views after none: 100,000 × 1 +
    // 50,000 × 1.1 = 155,000 won; 3 ad views × 10 won.
    import(
        &app,
        &admin,
        format!("video_id,day,views,watch_seconds,ad_views\n{v1},{yesterday},150000,600000,3\n"),
    )
    .await;
    let late = settle(&app, &admin, yesterday, yesterday).await;
    assert_eq!(late[0]["previous_total_amount"], 9);
    assert_eq!(late[0]["total_amount"], 155_030 + 5 + 1);
    let history: Value = app
        .get_json("/api/v1/admin/settlements", Some(&admin))
        .await;
    let totals: Vec<i64> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["total_amount"].as_i64().unwrap())
        .collect();
    assert_eq!(totals, [155_036, 9, 9], "newest first");
    // The reports read before (and cached) show the new rows, not the old.
    let rev: Value = app
        .get_json(
            &format!("/api/v1/revenues?period=day&date={yesterday}"),
            Some(&ada),
        )
        .await;
    assert_eq!(rev["total_amount"], 155_030 + 5);
    let top: Value = app
        .get_json(
            &format!("/api/v1/stats/top?metric=views&period=day&date={yesterday}"),
            None,
        )
        .await;
    assert_eq!(
        (
            top["items"][0]["video_id"].as_i64(),
            top["items"][0]["value"].as_i64()
        ),
        (Some(v1), Some(150_000))
    );
    assert_error(
        app.get_auth("/api/v1/admin/settlements", &ada).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn weeks_and_months_are_the_sums_of_their_days() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let v = app.video(&ada, 600).await;
    // Sunday 2026-10-04 ends one ISO week; Monday 10-05 to Wednesday 10-07
    // are in the next. 99,999 then 2 views crosses the first tier.
    import(&app, &admin, format!(
        "video_id,day,views,watch_seconds,ad_views\n{v},2026-10-04,10,100,1\n{v},2026-10-05,99989,5,2\n{v},2026-10-06,2,7,0\n{v},2026-10-07,4,9,1\n"
    )).await;
    let runs = settle(&app, &admin, day("2026-10-04"), day("2026-10-07")).await;
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    let mut days = Vec::new();
    for d in ["2026-10-04", "2026-10-05", "2026-10-06", "2026-10-07"] {
        let r: Value = app
            .get_json(&format!("/api/v1/revenues?period=day&date={d}"), Some(&ada))
            .await;
        days.push(r["total_amount"].as_i64().unwrap());
    }
    // Day 10-06: views 99,999 → 100,001 before/after: 1 × 1 + 1 × 1.1 = 2.1 → 2.
    assert_eq!(days, [10 + 10, 99_989 + 20, 2, 4 + 10]);
    let week: Value = app
        .get_json("/api/v1/revenues?period=week&date=2026-10-07", Some(&ada))
        .await;
    assert_eq!(
        (week["start"].clone(), week["end"].clone()),
        (json!("2026-10-05"), json!("2026-10-11"))
    );
    assert_eq!(
        week["total_amount"].as_i64().unwrap(),
        days[1] + days[2] + days[3]
    );
    let month: Value = app
        .get_json("/api/v1/revenues?period=month&date=2026-10-31", Some(&ada))
        .await;
    assert_eq!(
        month["total_amount"].as_i64().unwrap(),
        days.iter().sum::<i64>()
    );
    let top: Value = app
        .get_json(
            "/api/v1/stats/top?metric=views&period=month&date=2026-10-01",
            None,
        )
        .await;
    assert_eq!(top["items"][0]["value"], 10 + 99_989 + 2 + 4);
    // Bad parameters name the field.
    let r = app
        .client
        .get(app.url("/api/v1/stats/top?metric=likes&period=day&date=2026-10-01"))
        .send()
        .await
        .unwrap();
    let e = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
    assert_eq!(crate::helpers::detail_fields(&e), ["metric"]);
    let r = app
        .post_auth(
            "/api/v1/admin/settlements",
            &admin,
            &json!({"from": "2026-10-07", "to": "2026-10-01"}),
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
    let today = PlatformTime::default().today();
    let r = app
        .post_auth(
            "/api/v1/admin/settlements",
            &admin,
            &json!({"from": today.to_string(), "to": today.to_string()}),
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
}

#[tokio::test]
async fn a_creators_daily_series_has_every_day_once_and_sums_like_the_reports() {
    let (app, admin) = crate::helpers::spawn_admin_app(Options::default()).await;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let bob = app.signed_in("bob@example.com", "creator").await.access;
    let viewer = app.signed_in("vic@example.com", "viewer").await.access;
    let (a1, a2) = (app.video(&ada, 600).await, app.video(&ada, 300).await);
    let b1 = app.video(&bob, 600).await;
    import(&app, &admin, format!(
        "video_id,day,views,watch_seconds,ad_views\n{a1},2026-10-04,10,100,1\n{a1},2026-10-05,7,70,0\n{a2},2026-10-05,5,50,2\n{b1},2026-10-05,1000,10000,9\n"
    )).await;
    app.settle_ok(&admin, "2026-10-04", "2026-10-05").await;

    let series: Value = app
        .get_json(
            "/api/v1/revenues/daily?from=2026-10-03&to=2026-10-06",
            Some(&ada),
        )
        .await;
    let days = series["days"].as_array().unwrap();
    let listed: Vec<&str> = days.iter().map(|d| d["day"].as_str().unwrap()).collect();
    assert_eq!(
        listed,
        ["2026-10-03", "2026-10-04", "2026-10-05", "2026-10-06"]
    );
    // Days not settled are zeros with no state; settled ones match the
    // day's report of the creator.
    for d in [&days[0], &days[3]] {
        assert_eq!(d["state"], Value::Null, "{d}");
        assert_eq!(
            (d["views"].as_i64(), d["total_amount"].as_i64()),
            (Some(0), Some(0))
        );
    }
    let mut total = 0;
    for d in &days[1..3] {
        let date = d["day"].as_str().unwrap();
        let report: Value = app
            .get_json(
                &format!("/api/v1/revenues?period=day&date={date}"),
                Some(&ada),
            )
            .await;
        let views: i64 = report["videos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["views"].as_i64().unwrap())
            .sum();
        assert_eq!(d["views"].as_i64().unwrap(), views, "{date}");
        for field in ["total_amount", "video_amount", "ad_amount"] {
            assert_eq!(d[field], report[field], "{date} {field}");
        }
        assert_eq!(d["state"], "final", "{d}");
        total += d["total_amount"].as_i64().unwrap();
    }
    assert_eq!(days[2]["views"], 7 + 5);
    assert_eq!(days[2]["watch_seconds"], 70 + 50);
    assert_eq!(days[2]["ad_views"], 2);
    assert!(total > 0);
    assert_eq!(series["totals"]["total_amount"], total);
    assert_eq!(series["totals"]["views"], 10 + 7 + 5);
    assert_eq!(series["currency"], "KRW");

    // An admin names the creator and sees the same; the CSV has the same days.
    let creator = series["creator_id"].as_i64().unwrap();
    let path = format!("/api/v1/revenues/daily?from=2026-10-03&to=2026-10-06&creator_id={creator}");
    assert_eq!(app.get_json(&path, Some(&admin)).await, series);
    let csv = app
        .client
        .get(app.url(&path))
        .bearer_auth(&admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "day,state,views,watch_seconds,ad_views,video_amount,ad_amount,total_amount"
    );
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[1], "2026-10-03,,0,0,0,0,0,0");
    assert_eq!(
        lines[3],
        format!(
            "2026-10-05,final,12,120,2,{},{},{}",
            days[2]["video_amount"], days[2]["ad_amount"], days[2]["total_amount"]
        )
    );

    // Who may ask.
    assert_error(
        app.get_auth(&path, &bob).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.get_auth(&path, &viewer).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let r = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let e = assert_error(
        app.get_auth(
            "/api/v1/revenues/daily?from=2026-10-03&to=2026-10-06",
            &admin,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    assert_eq!(crate::helpers::detail_fields(&e), ["creator_id"]);

    // The range: a leap year at most, `to` not before `from`, real days.
    let full: Value = app
        .get_json(
            "/api/v1/revenues/daily?from=2024-01-01&to=2024-12-31",
            Some(&ada),
        )
        .await;
    assert_eq!(full["days"].as_array().unwrap().len(), 366);
    for (query, field) in [
        ("from=2024-01-01&to=2025-01-01", "to"),
        ("from=2026-10-06&to=2026-10-05", "to"),
        ("from=2026-13-01&to=2026-10-05", "from"),
        ("from=2026-10-01", "to"),
    ] {
        let e = assert_error(
            app.get_auth(&format!("/api/v1/revenues/daily?{query}"), &ada)
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_field",
        )
        .await;
        assert_eq!(crate::helpers::detail_fields(&e), [field], "{query}");
    }
}

#[tokio::test]
async fn a_run_fails_fast_while_the_streaming_service_is_down_and_reports_keep_answering() {
    let mut app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let v = app.video(&ada, 600).await;
    import(
        &app,
        &admin,
        format!("video_id,day,views,watch_seconds,ad_views\n{v},2026-10-04,10,100,1\n"),
    )
    .await;
    assert_eq!(
        settle(&app, &admin, day("2026-10-04"), day("2026-10-04")).await[0]["status"],
        "succeeded"
    );

    app.stop_streaming_service().await;
    let started = std::time::Instant::now();
    let runs = settle(&app, &admin, day("2026-10-05"), day("2026-10-05")).await;
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["error_code"], "streaming_unavailable");
    let error = runs[0]["error"].as_str().unwrap();
    assert!(
        error.contains("circuit open") || error.contains("Unavailable"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed fast: {:?}",
        started.elapsed()
    );
    // The reports come from the revenue database and keep answering.
    let r: Value = app
        .get_json("/api/v1/revenues?period=day&date=2026-10-04", Some(&ada))
        .await;
    assert_eq!(r["total_amount"], 20);
    let top = app
        .client
        .get(app.url("/api/v1/stats/top?metric=views&period=day&date=2026-10-04"))
        .send()
        .await
        .unwrap();
    assert_eq!(top.status(), StatusCode::OK);

    // The streaming service returns; once the breaker lets a call through
    // again, the run succeeds.
    app.restart_streaming_service().await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let runs = settle(&app, &admin, day("2026-10-05"), day("2026-10-05")).await;
    assert_eq!(runs[0]["status"], "succeeded", "{}", runs[0]);
}

#[tokio::test]
async fn a_run_whose_holder_died_is_taken_over_and_a_live_lease_is_respected() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let v = app.video(&ada, 600).await;
    import(&app, &admin, format!("video_id,day,views,watch_seconds,ad_views\n{v},2026-10-04,10,100,1\n{v},2026-10-05,7,70,0\n")).await;
    assert_eq!(
        settle(&app, &admin, day("2026-10-04"), day("2026-10-04")).await[0]["status"],
        "succeeded"
    );
    let db = sea_orm::Database::connect(app.revenue_db_url.clone().unwrap())
        .await
        .unwrap();
    // Another replica claimed 10-04 again and was killed mid-run: its run
    // is `running` with a stale heartbeat, its lease expired.
    db.execute_unprepared(
        "INSERT INTO settlement_runs (day, status, created_at, started_at, heartbeat_at, rows) \
         VALUES ('2026-10-04', 'running', now(), now() - interval '1 minute', now() - interval '1 minute', 0); \
         INSERT INTO settlement_leases (day, holder, expires_at) VALUES ('2026-10-04', 'dead', now() - interval '1 second'); \
         INSERT INTO settlement_leases (day, holder, expires_at) VALUES ('2026-10-05', 'alive', now() + interval '4 seconds')",
    )
    .await
    .unwrap();
    // 10-05 is queued while another holder's lease on it is live.
    let r = app
        .post_auth(
            "/api/v1/admin/settlements",
            &admin,
            &json!({"from": "2026-10-05", "to": "2026-10-05"}),
        )
        .await;
    let queued_id = r.json::<Value>().await.unwrap()["run_ids"][0]
        .as_i64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let run: Value = app
        .get_json(
            &format!("/api/v1/admin/settlements/{queued_id}"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        run["status"], "queued",
        "no run while another holder's lease is live"
    );
    // Both finish: the dead run is restarted, the queued one runs once the
    // lease lapses; each day has exactly one set of rows.
    let mut statuses = Vec::new();
    for _ in 0..150 {
        let runs: Value = app
            .get_json("/api/v1/admin/settlements", Some(&admin))
            .await;
        statuses = runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_owned())
            .collect();
        if statuses.iter().all(|s| s == "succeeded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(statuses, ["succeeded", "succeeded", "succeeded"]);
    for (d, views) in [("2026-10-04", 10), ("2026-10-05", 7)] {
        let stats: Value = app
            .get_json(
                &format!("/api/v1/videos/{v}/stats?period=day&date={d}"),
                Some(&ada),
            )
            .await;
        assert_eq!(stats["days"].as_array().unwrap().len(), 1, "{stats}");
        assert_eq!(stats["days"][0]["views"], views);
    }
}

#[tokio::test]
async fn killing_the_revenue_service_mid_run_still_settles_the_day_once() {
    let mut app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let first = app.video(&ada, 600).await;
    // A day big enough to take a while: 150,001 videos with counts on it.
    let db = sea_orm::Database::connect(app.streaming_db_url.clone().unwrap())
        .await
        .unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 4).unwrap();
    common::partitions::ensure_months(&db, "daily_counts", day, day)
        .await
        .unwrap();
    db.execute_unprepared(&format!(
        "INSERT INTO videos (id, creator_id, title, description, duration_seconds, created_at) \
           SELECT g, {creator}, 'v' || g, '', 600, now() FROM generate_series({from}, {from} + 149999) g; \
         INSERT INTO daily_counts (video_id, day, views, watch_seconds, ad_views) \
           SELECT id, '2026-10-04', 2, 20, 1 FROM videos",
        creator = 2,
        from = first + 1,
    ))
    .await
    .unwrap();
    app.write_back().await;
    let r = app
        .post_auth(
            "/api/v1/admin/settlements",
            &admin,
            &json!({"from": "2026-10-04", "to": "2026-10-04"}),
        )
        .await;
    let run_id = r.json::<Value>().await.unwrap()["run_ids"][0]
        .as_i64()
        .unwrap();
    let mut running = false;
    for _ in 0..100 {
        let run: Value = app
            .get_json(&format!("/api/v1/admin/settlements/{run_id}"), Some(&admin))
            .await;
        if run["status"] == "running" {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running, "the run started");
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.kill_and_restart_revenue_service().await;
    let killed: Value = app
        .get_json(&format!("/api/v1/admin/settlements/{run_id}"), Some(&admin))
        .await;
    assert_eq!(killed["status"], "running", "killed mid-run, not after it");
    let mut run = Value::Null;
    for _ in 0..600 {
        run = app
            .get_json(&format!("/api/v1/admin/settlements/{run_id}"), Some(&admin))
            .await;
        if run["status"] == "succeeded" || run["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["rows"], 150_001);
    // Exactly one set of rows: every video once, 2 views (2 won) and one ad
    // view (10 won) each.
    let revenue: Value = app
        .get_json("/api/v1/revenues?period=day&date=2026-10-04", Some(&ada))
        .await;
    assert_eq!(revenue["videos"].as_array().unwrap().len(), 150_001);
    assert_eq!(revenue["total_amount"], 150_001 * (2 + 10));
}

#[tokio::test]
async fn the_schedule_settles_yesterday_once_it_is_written_back() {
    // Every 2 seconds instead of 00:10, so that the test sees it fire.
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        settlement_schedule: Some("*/2 * * * * *"),
        // Two days of event lag: the write-back at start leaves the
        // watermark before the end of yesterday.
        counter_event_lag_seconds: Some(2 * 86_400),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let v = app.video(&ada, 600).await;
    let yesterday = PlatformTime::default().today().pred_opt().unwrap();
    import(
        &app,
        &admin,
        format!("video_id,day,views,watch_seconds,ad_views\n{v},{yesterday},42,420,0\n"),
    )
    .await;
    // Yesterday is not all written back yet, and the schedule waits
    // instead of queueing a run.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let runs: Value = app
        .get_json("/api/v1/admin/settlements", Some(&admin))
        .await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 0, "{runs}");
    // Once the watermark has passed the end of yesterday, the next check of
    // it (every second here, every minute by default) queues it.
    app.writeback
        .advance_watermark(chrono::Utc::now())
        .await
        .unwrap();
    let mut settled = None;
    for _ in 0..100 {
        let runs: Value = app
            .get_json("/api/v1/admin/settlements", Some(&admin))
            .await;
        if let Some(run) = runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["status"] == "succeeded")
        {
            settled = Some(run.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let run = settled.expect("the schedule queued and settled yesterday");
    assert_eq!(run["day"], yesterday.to_string());
    assert!(run["error_code"].is_null(), "{run}");
    assert_eq!(run["total_amount"], 42);
}

/// Issue 19: the gateway keeps rendered `/revenues` answers and the
/// revenue service says when one is still current (`if_version`,
/// `unchanged`): never to another creator's request, never past the report
/// cache's entry, never across a settlement.
#[tokio::test]
async fn a_kept_revenues_answer_is_current_only_while_its_cache_entry_is() {
    use proto::revenue::v1::{
        Period, RevenuesRequest, revenue_service_client::RevenueServiceClient,
    };
    use secrecy::ExposeSecret;

    let (app, admin) = crate::helpers::spawn_admin_app(Options::default()).await;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let bob = app.signed_in("bob@example.com", "creator").await.access;
    let ada_id = app.get_json("/api/v1/users/me", Some(&ada)).await["user_id"]
        .as_i64()
        .unwrap();
    let (a1, a2, b1) = (
        app.video(&ada, 600).await,
        app.video(&ada, 600).await,
        app.video(&bob, 600).await,
    );
    let d = "2026-10-04";
    app.import_counts(&admin, &[(a1, d, 100, 1), (a2, d, 50, 0), (b1, d, 70, 2)])
        .await;
    app.settle_ok(&admin, d, d).await;

    // The revenue service, called directly: a second replica on the same
    // database and report cache.
    let mut settings = app.revenue_settings();
    settings.revenue_grpc_addr = "127.0.0.1:0".parse().unwrap();
    let replica = revenue_service::Application::build(settings).await.unwrap();
    let url = format!("http://{}", replica.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(replica.run_until(async {
        let _ = stopped.await;
    }));
    let mut client = RevenueServiceClient::connect(url).await.unwrap();
    let credential = app.credential.expose_secret().to_owned();
    let mut ask = async |token: &str, creator_id: i64, if_version: &str| {
        let mut request = tonic::Request::new(RevenuesRequest {
            creator_id,
            period: Period::Day.into(),
            date: d.to_owned(),
            if_version: if_version.to_owned(),
        });
        let metadata = request.metadata_mut();
        metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
        metadata.insert("x-service-credential", credential.parse().unwrap());
        client.revenues(request).await.unwrap().into_inner()
    };

    let first = ask(&ada, 0, "").await;
    assert!(!first.unchanged);
    assert_eq!(first.videos.len(), 2);
    let version = first.version.clone();
    assert!(!version.is_empty(), "a cached report has a version");
    // Asked again with its version: only the version comes back.
    let again = ask(&ada, 0, &version).await;
    assert!(again.unchanged);
    assert_eq!(again.version, version);
    assert!(again.videos.is_empty() && again.totals.is_none());
    // An admin naming ada reads the same report, so the same version.
    assert!(ask(&admin, ada_id, &version).await.unchanged);
    // Bob sending ada's version gets his own report, in full.
    let bobs = ask(&bob, 0, &version).await;
    assert!(!bobs.unchanged);
    assert_ne!(bobs.version, version);
    assert_eq!(bobs.videos.len(), 1);
    assert_eq!(bobs.videos[0].video_id, b1);
    // The cache entry gone (expired), the report is read and sent again.
    let redis = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let deleted: i64 = redis::cmd("DEL")
        .arg(&version)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(deleted, 1, "the version names the cache entry");
    let reread = ask(&ada, 0, &version).await;
    assert!(!reread.unchanged);
    assert_eq!(reread.videos, first.videos);

    // Through the gateway: a change under the cache is not seen while the
    // entry lives, is seen once it is gone.
    let path = format!("/api/v1/revenues?period=day&date={d}");
    let before = app.get_auth(&path, &ada).await.text().await.unwrap();
    let db = app.revenue_db().await;
    db.execute_unprepared(&format!(
        "UPDATE daily_stats SET title = 'Renamed' WHERE video_id = {a1}"
    ))
    .await
    .unwrap();
    let kept = app.get_auth(&path, &ada).await;
    assert_eq!(
        kept.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert_eq!(kept.text().await.unwrap(), before);
    let _: i64 = redis::cmd("DEL")
        .arg(&version)
        .query_async(&mut conn)
        .await
        .unwrap();
    let fresh: Value = app.get_json(&path, Some(&ada)).await;
    assert_eq!(fresh["videos"][0]["title"], "Renamed");

    // A settlement bumps the generation: the late counts are seen at once.
    app.import_counts(&admin, &[(a1, d, 300, 1)]).await;
    app.settle_ok(&admin, d, d).await;
    let settled: Value = app.get_json(&path, Some(&ada)).await;
    assert_eq!(settled["videos"][0]["views"], 300);
    assert_eq!(
        settled["total_amount"].as_i64(),
        Some(
            settled["videos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["total_amount"].as_i64().unwrap())
                .sum()
        )
    );
    assert_ne!(settled, fresh);

    let _ = stop.send(());
    let _ = running.await;
}
