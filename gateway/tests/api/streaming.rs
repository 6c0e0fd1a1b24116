//! Videos, ads, play and pause through the gateway, with the streaming
//! service on PostgreSQL and counting on the real Redis (SPEC §4, §5).

use common::{auth::Role, time::PlatformTime};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Options, assert_error, detail_fields, spawn_admin_app, spawn_app, spawn_app_with,
};

const ADMIN: (&str, &str) = ("admin@example.com", "admin-password");

fn today() -> chrono::NaiveDate {
    PlatformTime::default().today()
}

#[tokio::test]
async fn only_creators_upload_and_bad_uploads_name_the_field() {
    let app = spawn_app().await;
    let viewer = app.signed_in("viewer@example.com", "viewer").await;
    let creator = app.signed_in("creator@example.com", "creator").await;

    let r = app.upload(&viewer.access, "Mine", 600).await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app.upload(&creator.access, "", 600).await;
    let body = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
    assert_eq!(detail_fields(&body), ["title"]);
    for bad in [0, -5, 86_401] {
        let r = app.upload(&creator.access, "Ok", bad).await;
        let body = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
        assert_eq!(detail_fields(&body), ["duration_seconds"], "{bad}");
    }
    let r = app
        .post_auth(
            "/api/v1/videos",
            &creator.access,
            &json!({"title": "x", "duration_seconds": "long"}),
        )
        .await;
    let body = assert_error(r, StatusCode::BAD_REQUEST, "malformed_json").await;
    assert_eq!(detail_fields(&body), ["duration_seconds"]);
    let r = app
        .client
        .post(app.url("/api/v1/videos"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn ad_slots_every_300_seconds_spread_over_active_ads() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await;
    let creator = app.signed_in("creator@example.com", "creator").await;
    let day = chrono::Duration::days(1);
    let a1 = app.ad(&admin.access, today() - day, today() + day).await;
    let a2 = app.ad(&admin.access, today(), today()).await;
    let _expired = app
        .ad(&admin.access, today() - day * 10, today() - day)
        .await;
    let _scheduled = app
        .ad(&admin.access, today() + day, today() + day * 10)
        .await;

    for (duration, slots) in [
        (299, vec![]),
        (300, vec![300]),
        (600, vec![300, 600]),
        (601, vec![300, 600]),
    ] {
        let r = app.upload(&creator.access, "Video", duration).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        let got: Vec<i64> = v["ad_slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["position_seconds"].as_i64().unwrap())
            .collect();
        assert_eq!(got, slots, "duration {duration}");
    }
    let r = app.upload(&creator.access, "Hour", 3_600).await;
    let v: Value = r.json().await.unwrap();
    let slots = v["ad_slots"].as_array().unwrap();
    assert_eq!(slots.len(), 12);
    assert_eq!(slots[11]["position_seconds"], 3_600);
    let served: Vec<i64> = slots.iter().map(|s| s["ad_id"].as_i64().unwrap()).collect();
    assert_eq!(served.iter().filter(|&&a| a == a1).count(), 6, "{served:?}");
    assert_eq!(served.iter().filter(|&&a| a == a2).count(), 6, "{served:?}");

    // The listing shows statuses, and anyone may read it.
    let ads: Value = app.get_json("/api/v1/ads", None).await;
    let statuses: Vec<&str> = ads["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "active", "expired", "scheduled"]);
    // Viewers cannot create ads; bad dates are named.
    let viewer = app.signed_in("viewer@example.com", "viewer").await;
    let body = json!({"title": "A", "duration_seconds": 10, "start_date": "2026-01-01", "end_date": "2026-01-02"});
    assert_error(
        app.post_auth("/api/v1/ads", &viewer.access, &body).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let body = json!({"title": "A", "duration_seconds": 10, "start_date": "2026-02-30", "end_date": "2026-01-02"});
    let e = assert_error(
        app.post_auth("/api/v1/ads", &admin.access, &body).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    assert_eq!(detail_fields(&e), ["start_date"]);
}

#[tokio::test]
async fn an_expired_ad_is_not_served() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await;
    let creator = app.signed_in("creator@example.com", "creator").await;
    let first = app.ad(&admin.access, today(), today()).await;
    let video = app.video(&creator.access, 300).await;
    // The contract of the first ad ends (moved into the past in its table);
    // a second ad is signed.
    let db = sea_orm::Database::connect(app.streaming_db_url.clone().unwrap())
        .await
        .unwrap();
    use sea_orm::ConnectionTrait;
    db.execute_unprepared(&format!(
        "UPDATE ads SET start_date = '2020-01-01', end_date = '2020-01-02' WHERE id = {first}"
    ))
    .await
    .unwrap();
    let second = app.ad(&admin.access, today(), today()).await;
    let v: Value = app.get_json(&format!("/api/v1/videos/{video}"), None).await;
    assert_eq!(v["ad_slots"][0]["ad_id"], second);
}

#[tokio::test]
async fn owner_plays_and_quick_replays_are_not_counted() {
    let app = spawn_app_with(Options {
        dedupe_window_seconds: 2,
        ..Options::default()
    })
    .await;
    let creator = app.signed_in("creator@example.com", "creator").await;
    let viewer = app.signed_in("viewer@example.com", "viewer").await;
    let video = app.video(&creator.access, 600).await;

    let own = app.play(Some(&creator.access), video, None).await;
    assert_eq!(own["view_counted"], false);
    assert_eq!(own["reason"], "owner");
    let first = app.play(Some(&viewer.access), video, None).await;
    assert_eq!(first["view_counted"], true);
    assert_eq!(first["reason"], Value::Null);
    assert!(first["session_id"].as_str().is_some_and(|s| !s.is_empty()));
    let again = app.play(Some(&viewer.access), video, None).await;
    assert_eq!(
        (again["view_counted"].clone(), again["reason"].clone()),
        (json!(false), json!("duplicate"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let later = app.play(Some(&viewer.access), video, None).await;
    assert_eq!(later["view_counted"], true);
    // Anonymous viewers are keyed by IP: the second is a duplicate.
    assert_eq!(app.play(None, video, None).await["view_counted"], true);
    assert_eq!(app.play(None, video, None).await["reason"], "duplicate");
    // A forged X-Forwarded-For from a peer that is not a trusted proxy is
    // ignored: still the same IP, still a duplicate.
    assert_eq!(
        app.play(None, video, Some("198.51.100.1")).await["reason"],
        "duplicate"
    );
    assert_eq!(
        app.play(None, video, Some("198.51.100.2")).await["reason"],
        "duplicate"
    );
    // Unknown video: 404.
    let r = app
        .client
        .post(app.url("/api/v1/videos/999999/play"))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::NOT_FOUND, "video_not_found").await;

    app.write_back().await;
    assert_eq!(app.counts_of(video).await.0, 3);
}

#[tokio::test]
async fn trusted_proxies_forward_the_client_ip() {
    let app = spawn_app_with(Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Options::default()
    })
    .await;
    let creator = app.signed_in("creator@example.com", "creator").await;
    let video = app.video(&creator.access, 600).await;
    assert_eq!(
        app.play(None, video, Some("198.51.100.1")).await["view_counted"],
        true
    );
    assert_eq!(
        app.play(None, video, Some("198.51.100.2")).await["view_counted"],
        true
    );
    assert_eq!(
        app.play(None, video, Some("198.51.100.2")).await["reason"],
        "duplicate"
    );
}

#[tokio::test]
async fn pause_counts_bounded_watch_time_resumes_and_ad_views() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await;
    let creator = app.signed_in("creator@example.com", "creator").await;
    let viewer = app.signed_in("viewer@example.com", "viewer").await;
    app.ad(&admin.access, today(), today()).await;
    let video = app.video(&creator.access, 900).await;
    let v = Some(viewer.access.as_str());

    let p = app.play(v, video, None).await;
    let s = p["session_id"].as_str().unwrap().to_owned();
    assert_eq!(p["resume_position_seconds"], 0);
    // Jumping to 310 s right away: watched seconds are capped by the wall
    // clock (≈0 s + 5 s); slot 300 is crossed: one ad view.
    let r = app.pause_ok(v, video, &s, 310).await;
    let added = r["watched_seconds_added"].as_i64().unwrap();
    assert!((5..=7).contains(&added), "{r}");
    assert_eq!(r["ad_views_counted"], 1);
    assert_eq!(r["position_seconds"], 310);
    // A backward seek adds nothing.
    let r = app.pause_ok(v, video, &s, 100).await;
    assert_eq!(
        (
            r["watched_seconds_added"].clone(),
            r["ad_views_counted"].clone()
        ),
        (json!(0), json!(0))
    );
    // Crossing slot 300 again within the window: no second ad view.
    let r = app.pause_ok(v, video, &s, 301).await;
    assert_eq!(r["ad_views_counted"], 0);
    let watched = added + r["watched_seconds_added"].as_i64().unwrap();
    // Resume where the last report left off.
    let p = app.play(v, video, None).await;
    assert_eq!(p["resume_position_seconds"], 301);
    let s2 = p["session_id"].as_str().unwrap().to_owned();
    // Past the end is the end, and the next play starts over.
    let r = app.pause_ok(v, video, &s2, 5_000).await;
    assert_eq!(r["position_seconds"], 900);
    let watched = watched + r["watched_seconds_added"].as_i64().unwrap();
    assert_eq!(app.play(v, video, None).await["resume_position_seconds"], 0);
    // The owner crossing slots counts nothing.
    let o = app.play(Some(&creator.access), video, None).await;
    let r = app
        .pause_ok(
            Some(&creator.access),
            video,
            o["session_id"].as_str().unwrap(),
            900,
        )
        .await;
    assert_eq!(
        (
            r["watched_seconds_added"].clone(),
            r["ad_views_counted"].clone()
        ),
        (json!(0), json!(0))
    );
    // Bad reports: unknown session, another viewer's session, negative position.
    assert_error(
        app.pause(v, video, "0123abcd", 10).await,
        StatusCode::NOT_FOUND,
        "session_not_found",
    )
    .await;
    assert_error(
        app.pause(None, video, &s, 10).await,
        StatusCode::NOT_FOUND,
        "session_not_found",
    )
    .await;
    let e = assert_error(
        app.pause(v, video, &s, -1).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    assert_eq!(detail_fields(&e), ["position_seconds"]);
    let e = assert_error(
        app.pause(v, video, "../x", 1).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    assert_eq!(detail_fields(&e), ["session_id"]);

    app.write_back().await;
    let (views, watch, ads) = app.counts_of(video).await;
    assert_eq!(
        views, 1,
        "one view; the replays were duplicates, the owner's not counted"
    );
    assert_eq!(watch, watched);
    assert_eq!(
        ads,
        1 + 1,
        "slot 300 once, then 900 (the last slot crossed) in the second session"
    );
}

#[tokio::test]
async fn concurrent_plays_count_exactly() {
    let app = spawn_app().await;
    let creator = app.signed_in("creator@example.com", "creator").await;
    let video = app.video(&creator.access, 600).await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for user_id in 1_000..2_000 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let token = app.sign(&app.claims(user_id, Role::Viewer));
            app.play_retrying(&token, video).await["view_counted"] == true
        }));
    }
    let one = app.sign(&app.claims(5_000, Role::Viewer));
    for _ in 0..100 {
        let app = app.clone();
        let token = one.clone();
        tasks.push(tokio::spawn(async move {
            app.play_retrying(&token, video).await["view_counted"] == true
        }));
    }
    let mut counted = 0;
    for t in tasks {
        counted += usize::from(t.await.unwrap());
    }
    assert_eq!(counted, 1_001);
    app.write_back().await;
    assert_eq!(app.counts_of(video).await.0, 1_001);
}

#[tokio::test]
async fn an_interrupted_write_back_loses_nothing_and_counts_nothing_twice() {
    let mut app = spawn_app().await;
    let creator = app.signed_in("creator@example.com", "creator").await;
    let video = app.video(&creator.access, 600).await;
    let other = app.video(&creator.access, 600).await;
    let mut expected = 0;
    let mut plays = |n: i64, from: i64| {
        expected += n;
        (from..from + n).collect::<Vec<i64>>()
    };
    // Viewer ids from 1,000 on: user 1 is the creator, whose plays never count.
    for user in plays(10, 1_000) {
        let token = app.sign(&app.claims(user, Role::Viewer));
        app.play(Some(&token), video, None).await;
        app.play(Some(&token), other, None).await;
    }
    // Killed after taking the counters, before the database commit.
    let wb = app.writeback.clone();
    let taken = wb.take(&wb.dirty().await.unwrap()).await.unwrap();
    assert_eq!(taken.len(), 2);
    drop(taken);
    for user in plays(5, 2_000) {
        let token = app.sign(&app.claims(user, Role::Viewer));
        app.play(Some(&token), video, None).await;
        app.play(Some(&token), other, None).await;
    }
    // Killed after the commit, before the counters were cleared.
    let taken = wb.take(&wb.dirty().await.unwrap()).await.unwrap();
    wb.commit(&taken).await.unwrap();
    for user in plays(3, 3_000) {
        let token = app.sign(&app.claims(user, Role::Viewer));
        app.play(Some(&token), video, None).await;
        app.play(Some(&token), other, None).await;
    }
    // Then it runs to the end; and the last counts go at graceful shutdown.
    app.write_back().await;
    assert_eq!(app.counts_of(video).await.0, 10 + 5 + 3);
    assert_eq!(app.counts_of(other).await.0, 10 + 5 + 3);
    for user in plays(2, 4_000) {
        let token = app.sign(&app.claims(user, Role::Viewer));
        app.play(Some(&token), video, None).await;
        app.play(Some(&token), other, None).await;
    }
    let wm_before = wb.watermark().await.unwrap();
    let rows_url = app.streaming_db_url.clone().unwrap();
    app.stop_streaming_service().await;
    let db = sea_orm::Database::connect(rows_url).await.unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT CAST(SUM(views) AS BIGINT) AS v FROM daily_counts WHERE video_id IN ({video}, {other})"),
        ))
        .await
        .unwrap()
        .unwrap();
    let total: i64 = row.try_get("", "v").unwrap();
    assert_eq!(total, 2 * expected);
    assert_eq!(expected, 20);
    let wm_after = streaming_service::counting::writeback::Writeback::watermark(&wb)
        .await
        .unwrap();
    assert!(
        wm_after > wm_before,
        "the watermark advances with each write-back"
    );
}

#[tokio::test]
async fn daily_counts_stream_in_id_order_and_resume_after_an_id() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await;
    let creator = app.signed_in("creator@example.com", "creator").await;
    let mut videos = Vec::new();
    for _ in 0..5 {
        videos.push(app.video(&creator.access, 60).await);
    }
    let mut csv = String::from("video_id,day,views,watch_seconds,ad_views\n");
    for (i, v) in videos.iter().enumerate().rev() {
        csv += &format!("{v},2026-10-01,{},{},{}\n", i + 1, 10 * (i + 1), i);
        csv += &format!("{v},2026-10-02,{},0,1\n", 100 + i);
    }
    let r = app
        .client
        .post(app.url("/api/v1/admin/imports/daily-counts"))
        .bearer_auth(&admin.access)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 2).unwrap();
    let rows = app.daily_counts(day, 0).await;
    let ids: Vec<i64> = rows.iter().map(|r| r.video_id).collect();
    assert_eq!(ids, videos);
    let third = &rows[2];
    assert_eq!(
        (
            third.views,
            third.cumulative_views_before,
            third.cumulative_ad_views_before
        ),
        (102, 3, 2)
    );
    assert_eq!(third.creator_id, rows[0].creator_id);
    let rest: Vec<i64> = app
        .daily_counts(day, videos[2])
        .await
        .iter()
        .map(|r| r.video_id)
        .collect();
    assert_eq!(rest, videos[3..]);
}

#[tokio::test]
async fn daily_counts_stream_many_database_pages_in_order_and_resume_at_a_page_boundary() {
    let app = spawn_app().await;
    // 12,000 videos, every third without counts on the day (gaps in the
    // ids), counts on the day before as well: 8,000 rows of the day, more
    // than one database page (5,000 rows) of the stream.
    let db = sea_orm::Database::connect(app.streaming_db_url.clone().unwrap())
        .await
        .unwrap();
    use sea_orm::ConnectionTrait;
    let october = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    common::partitions::ensure_months(&db, "daily_counts", october, october)
        .await
        .unwrap();
    db.execute_unprepared(
        "INSERT INTO videos (id, creator_id, title, description, duration_seconds, created_at) \
           SELECT g, 1 + g % 7, 'video ' || g, '', 600, now() FROM generate_series(1, 12000) g; \
         INSERT INTO daily_counts (video_id, day, views, watch_seconds, ad_views, views_before, ad_views_before) \
           SELECT g, DATE '2026-10-02', g, 60 * g, g % 5, 2 * g, 1 FROM generate_series(1, 12000) g WHERE g % 3 <> 0 \
           UNION ALL SELECT g, DATE '2026-10-01', 2 * g, 0, 1, 0, 0 FROM generate_series(1, 12000) g",
    )
    .await
    .unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 2).unwrap();
    let expected: Vec<i64> = (1..=12_000).filter(|g| g % 3 != 0).collect();
    let rows = app.daily_counts(day, 0).await;
    let ids: Vec<i64> = rows.iter().map(|r| r.video_id).collect();
    assert_eq!(ids, expected, "every row once, in id order");
    for r in &rows {
        let g = r.video_id;
        assert_eq!(
            (r.creator_id, r.views, r.watch_seconds, r.ad_views),
            (1 + g % 7, g, 60 * g, g % 5)
        );
        assert_eq!(
            (r.cumulative_views_before, r.cumulative_ad_views_before),
            (2 * g, 1)
        );
        assert_eq!(r.title, format!("video {g}"));
    }
    // The 5,000th row ends the first database page; resuming there, and
    // one row before it, gives exactly the rows after.
    for after_index in [4_999, 4_998, 7_999] {
        let after = expected[after_index];
        let rest: Vec<i64> = app
            .daily_counts(day, after)
            .await
            .iter()
            .map(|r| r.video_id)
            .collect();
        assert_eq!(rest, expected[after_index + 1..], "after video {after}");
    }
}

#[tokio::test]
async fn imports_report_bad_lines_and_are_idempotent() {
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await;
    let creator = app.signed_in("creator@example.com", "creator").await;
    let viewer = app.signed_in("viewer@example.com", "viewer").await;
    let video = app.video(&creator.access, 60).await;
    let csv = format!(
        "video_id,day,views,watch_seconds,ad_views\n\
         {video},2026-10-01,7,70,1\n\
         999999,2026-10-01,1,1,1\n\
         {video},2026-10-02,-1,0,0\n\
         {video},2026-13-01,1,1,1\n\
         {video},2026-10-03,1,1\n\
         {video},2026-10-04,4,40,0\n"
    );
    let import = |token: String, body: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/admin/imports/daily-counts"))
                .bearer_auth(token)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_error(
        import(viewer.access.clone(), csv.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    for _ in 0..2 {
        let r = import(admin.access.clone(), csv.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        let report: Value = r.json().await.unwrap();
        assert_eq!(report["accepted"], 2);
        let lines: Vec<i64> = report["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["line"].as_i64().unwrap())
            .collect();
        assert_eq!(lines, [3, 4, 5, 6], "{report}");
        let reasons = report["rejected"].to_string();
        assert!(
            reasons.contains("does not exist")
                && reasons.contains("columns")
                && reasons.contains("date"),
            "{reasons}"
        );
    }
    let day1 = app
        .daily_counts(chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(), 0)
        .await;
    assert_eq!(
        (day1.len(), day1[0].views, day1[0].watch_seconds),
        (1, 7, 70)
    );
    let day4 = app
        .daily_counts(chrono::NaiveDate::from_ymd_opt(2026, 10, 4).unwrap(), 0)
        .await;
    assert_eq!(
        (day4[0].views, day4[0].cumulative_views_before),
        (4, 7),
        "not doubled by the second import"
    );
    let r = import(admin.access.clone(), "views,day\n1,2\n".into()).await;
    let e = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
    assert_eq!(detail_fields(&e), ["csv"]);
}

#[tokio::test]
async fn the_embedded_default_counts_the_same_way() {
    // SQLite files and the in-process counter store, as `stack up` runs.
    let app = spawn_app_with(Options {
        store: crate::helpers::Store::Sqlite,
        admin: Some(ADMIN),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await;
    let creator = app.signed_in("creator@example.com", "creator").await;
    let viewer = app.signed_in("viewer@example.com", "viewer").await;
    app.ad(&admin.access, today(), today()).await;
    let video = app.video(&creator.access, 600).await;
    let p = app.play(Some(&viewer.access), video, None).await;
    assert_eq!(p["view_counted"], true);
    assert_eq!(
        app.play(Some(&viewer.access), video, None).await["reason"],
        "duplicate"
    );
    let r = app
        .pause_ok(
            Some(&viewer.access),
            video,
            p["session_id"].as_str().unwrap(),
            301,
        )
        .await;
    let watched = r["watched_seconds_added"].as_i64().unwrap();
    assert_eq!(r["ad_views_counted"], 1);
    // A later day already has a row (imported): the write-back of today
    // raises the counts before it.
    let tomorrow = today().succ_opt().unwrap();
    let csv = format!("video_id,day,views,watch_seconds,ad_views\n{video},{tomorrow},0,0,0\n");
    let r = app
        .client
        .post(app.url("/api/v1/admin/imports/daily-counts"))
        .bearer_auth(&admin.access)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.write_back().await;
    assert_eq!(app.counts_of(video).await, (1, watched, 1));
    let later = app.daily_counts(tomorrow, 0).await;
    assert_eq!(
        (
            later[0].cumulative_views_before,
            later[0].cumulative_ad_views_before
        ),
        (1, 1)
    );
    // Import and the daily-counts call on SQLite.
    let csv = format!(
        "video_id,day,views,watch_seconds,ad_views\n{video},2026-10-01,5,50,2\n{video},2026-10-02,1,1,1\n"
    );
    let r = app
        .client
        .post(app.url("/api/v1/admin/imports/daily-counts"))
        .bearer_auth(&admin.access)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rows = app
        .daily_counts(chrono::NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(), 0)
        .await;
    assert_eq!(
        (
            rows[0].views,
            rows[0].cumulative_views_before,
            rows[0].cumulative_ad_views_before
        ),
        (1, 5, 2)
    );
}

/// The value of the series `name` (labels included, as printed) in a
/// Prometheus text page.
fn series(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} missing from\n{page}"))
}

#[tokio::test]
async fn the_streaming_service_counts_plays_pauses_and_write_backs_in_its_metrics() {
    let app = spawn_app().await;
    let creator = app
        .signed_in("metrics-creator@example.com", "creator")
        .await;
    let viewer = app.signed_in("metrics-viewer@example.com", "viewer").await;
    let video = app.video(&creator.access, 600).await;
    let counted = app.play(Some(&viewer.access), video, None).await;
    app.play(Some(&viewer.access), video, None).await; // within the dedupe window
    app.play(Some(&creator.access), video, None).await; // the owner
    let paused = app
        .pause_ok(
            Some(&viewer.access),
            video,
            counted["session_id"].as_str().unwrap(),
            120,
        )
        .await;
    let page = app
        .client
        .get(format!("{}/metrics", app.streaming_metrics_address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        series(&page, "streaming_plays_total{outcome=\"counted\"}"),
        1.0
    );
    assert_eq!(
        series(&page, "streaming_plays_total{outcome=\"duplicate\"}"),
        1.0
    );
    assert_eq!(
        series(&page, "streaming_plays_total{outcome=\"owner\"}"),
        1.0
    );
    assert_eq!(series(&page, "streaming_pauses_total"), 1.0);
    assert_eq!(
        series(&page, "streaming_watch_seconds_total"),
        paused["watched_seconds_added"].as_f64().unwrap()
    );
    assert!(
        series(&page, "streaming_writeback_seconds_count") >= 1.0,
        "the write-back at start is timed"
    );
}

/// The page of `/metrics` at `address`.
async fn scrape(app: &crate::helpers::TestApp, address: &str) -> String {
    app.client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_service_serves_the_series_operators_need() {
    let (app, admin) = spawn_admin_app(Options::default()).await;
    let creator = app.signed_in("ops-creator@example.com", "creator").await;
    let viewer = app.signed_in("ops-viewer@example.com", "viewer").await;
    assert_eq!(
        app.login("ops-viewer@example.com", "not the password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let video = app.video(&creator.access, 600).await;
    let played = app.play(Some(&viewer.access), video, None).await;
    app.pause_ok(
        Some(&viewer.access),
        video,
        played["session_id"].as_str().unwrap(),
        30,
    )
    .await;
    app.write_back().await;
    app.import_counts(
        &admin,
        &[(video, "2026-10-01", 40, 3), (video, "2026-10-02", 10, 1)],
    )
    .await;
    app.settle_ok(&admin, "2026-10-01", "2026-10-02").await;

    // Streaming: counted plays, write-backs (buckets, lag, watermark age),
    // pools.
    let page = scrape(&app, &app.streaming_metrics_address).await;
    assert_eq!(
        series(&page, "streaming_plays_total{outcome=\"counted\"}"),
        1.0
    );
    assert!(series(&page, "streaming_writeback_buckets_total") >= 1.0);
    assert_eq!(series(&page, "streaming_writeback_failures_total"), 0.0);
    let lag = series(&page, "streaming_writeback_lag_seconds");
    assert!((0.0..3_600.0).contains(&lag), "lag {lag}");
    assert!(series(&page, "streaming_watermark_age_seconds") >= lag);
    assert_eq!(series(&page, "db_pool_max_connections"), 10.0);
    assert!(series(&page, "db_pool_connections{state=\"idle\"}") >= 1.0);
    assert!(series(&page, "db_pool_connections{state=\"in_use\"}") >= 0.0);
    assert!(series(&page, "redis_pool_max_connections") >= 1.0);
    assert_eq!(series(&page, "redis_pool_waiting"), 0.0);

    // Revenue: the two runs, their rows and durations, the breaker, pools.
    let page = scrape(&app, &app.revenue_metrics_address).await;
    assert_eq!(
        series(
            &page,
            "revenue_settlement_runs_total{outcome=\"succeeded\"}"
        ),
        2.0
    );
    assert_eq!(
        series(&page, "revenue_settlement_runs_total{outcome=\"failed\"}"),
        0.0
    );
    assert_eq!(series(&page, "revenue_settlement_rows_total"), 2.0);
    assert_eq!(series(&page, "revenue_settlement_seconds_count"), 2.0);
    assert_eq!(series(&page, "revenue_circuit_breaker_state"), 0.0);
    assert_eq!(series(&page, "revenue_circuit_breaker_rejected_total"), 0.0);
    assert_eq!(series(&page, "db_pool_max_connections"), 5.0);
    assert!(series(&page, "redis_pool_max_connections") >= 1.0);

    // Users: logins by outcome (the admin's, the creator's, the viewer's;
    // the wrong password), pool.
    let page = scrape(&app, &app.user_metrics_address).await;
    assert_eq!(series(&page, "user_logins_total{outcome=\"ok\"}"), 3.0);
    assert_eq!(series(&page, "user_logins_total{outcome=\"refused\"}"), 1.0);
    assert_eq!(series(&page, "db_pool_max_connections"), 5.0);

    // The Grafana dashboard asks only for series some service serves.
    let mut pages = page;
    for address in [
        &app.streaming_metrics_address,
        &app.revenue_metrics_address,
        &app.metrics_address,
    ] {
        pages.push_str(&scrape(&app, address).await);
    }
    let dashboard: Value =
        serde_json::from_str(include_str!("../../../deploy/grafana/ssp-dashboard.json")).unwrap();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                let ours = [
                    "streaming_",
                    "revenue_",
                    "user_",
                    "db_pool_",
                    "redis_pool_",
                    "gateway_",
                ]
                .iter()
                .any(|p| word.starts_with(p));
                if ours {
                    asked += 1;
                    assert!(
                        pages.lines().any(|l| l.starts_with(word)
                            && l[word.len()..].starts_with([' ', '{'])),
                        "the dashboard asks for {word}, which no service serves"
                    );
                }
            }
        }
    }
    assert!(asked >= 20, "{asked} series asked for");
}
