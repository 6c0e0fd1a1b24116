//! Paying creators through the gateway (SPEC §11.4): the monthly close,
//! statements with Korean withholding, carry-over, holds, corrections of a
//! closed month landing on the next statement, the bank transfer recorded,
//! the withholding report, and two replicas closing the same month once.

use chrono::NaiveDate;
use reqwest::StatusCode;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, Options, TestApp, assert_error, scalar, spawn_admin_app, spawn_app_with,
};

/// Imports `(video, day, views)`: 1 won a view in the first tier.
async fn import(app: &TestApp, admin: &str, rows: &[(i64, &str, i64)]) {
    let rows: Vec<(i64, &str, i64, i64)> = rows.iter().map(|&(v, d, n)| (v, d, n, 0)).collect();
    app.import_counts(admin, &rows).await;
}

async fn close(app: &TestApp, admin: &str, month: &str) -> reqwest::Response {
    app.post_auth("/api/v1/admin/closes", admin, &json!({ "month": month }))
        .await
}

/// Statements and ledger agree (each payable transfer on exactly one
/// statement; balance = last closing balance + what is not on one yet).
async fn assert_statements_agree(db: &DatabaseConnection) {
    let violations = revenue_service::statements::statement_violations(db)
        .await
        .unwrap();
    assert!(violations.is_empty(), "statements ≠ ledger: {violations:?}");
    let ledger = revenue_service::ledger::invariant_violations(db)
        .await
        .unwrap();
    assert!(ledger.is_empty(), "ledger ≠ amounts: {ledger:?}");
}

/// The one statement of `month` in `token`'s view (a creator's own).
async fn statement_of(app: &TestApp, token: &str, month: &str) -> Value {
    let page = app
        .get_json(&format!("/api/v1/statements?month={month}"), Some(token))
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    items[0].clone()
}

/// A statement's amounts: opening, earnings, restatements, adjustments,
/// gross, payout, income tax, local tax, net, closing; and the carried
/// reason.
type Amounts<'a> = ([i64; 10], Option<&'a str>);

fn amounts(s: &Value) -> Amounts<'_> {
    let n = |k: &str| s[k].as_i64().unwrap();
    (
        [
            n("opening_balance"),
            n("earnings"),
            n("restatements"),
            n("adjustments"),
            n("gross"),
            n("payout"),
            n("income_tax"),
            n("local_tax"),
            n("net"),
            n("closing_balance"),
        ],
        s["carried_reason"].as_str(),
    )
}

async fn balance(app: &TestApp, admin: &str, creator: i64) -> i64 {
    app.get_json(&format!("/api/v1/ledger?creator_id={creator}"), Some(admin))
        .await["balance"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn two_months_close_into_statements_with_withholding_carry_over_holds_and_corrections() {
    let (app, admin) = spawn_admin_app(Options::default()).await;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let bob = app.signed_in("bob@example.com", "creator").await.access;
    let cyd = app.signed_in("cyd@example.com", "creator").await.access;
    let dan = app.signed_in("dan@example.com", "creator").await.access;
    let viewer = app.signed_in("vic@example.com", "viewer").await.access;
    let (va, vb, vc, vd) = (
        app.video(&ada, 600).await,
        app.video(&bob, 600).await,
        app.video(&cyd, 600).await,
        app.video(&dan, 600).await,
    );
    import(
        &app,
        &admin,
        &[
            (va, "2026-09-10", 60_000),
            (vb, "2026-09-11", 5_000),
            (vc, "2026-09-12", 50_000),
            (vd, "2026-09-13", 20_000),
        ],
    )
    .await;

    // A month with a day not settled cannot close: the 409 names it.
    app.settle_ok(&admin, "2026-09-01", "2026-09-29").await;
    let r = close(&app, &admin, "2026-09").await;
    let body = assert_error(r, StatusCode::CONFLICT, "month_not_final").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2026-09-30"),
        "{body}"
    );

    // Cyd is held.
    let cyd_id = app.get_json("/api/v1/users/me", Some(&cyd)).await["user_id"]
        .as_i64()
        .unwrap();
    let r = app
        .client
        .put(app.url(&format!("/api/v1/admin/creators/{cyd_id}/hold")))
        .bearer_auth(&admin)
        .json(&json!({"reason": "identity check pending"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let hold: Value = r.json().await.unwrap();
    assert_eq!(hold["reason"], "identity check pending");

    app.settle_ok(&admin, "2026-09-30", "2026-09-30").await;
    let r = close(&app, &admin, "2026-09").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let closed: Value = r.json().await.unwrap();
    assert_eq!(closed["month"], "2026-09");
    assert_eq!(closed["statements"], 4);
    assert_eq!(closed["tax_policy_version"], 1);

    // Closing it again issues nothing.
    let r = close(&app, &admin, "2026-09").await;
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["close_id"], closed["close_id"]);
    let db = app.revenue_db().await;
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM statements").await, 4);
    assert_statements_agree(&db).await;

    // 60,000 won: 3 % = 1,800 income tax, 180 local, 58,020 net.
    let ada_sep = statement_of(&app, &ada, "2026-09").await;
    assert_eq!(
        amounts(&ada_sep),
        (
            [0, 60_000, 0, 0, 60_000, 60_000, 1_800, 180, 58_020, 0],
            None
        )
    );
    assert_eq!(ada_sep["status"], "issued");
    assert_eq!(ada_sep["currency"], "KRW");
    // 5,000 won is under the minimum: carried.
    let bob_sep = statement_of(&app, &bob, "2026-09").await;
    assert_eq!(
        amounts(&bob_sep),
        (
            [0, 5_000, 0, 0, 5_000, 0, 0, 0, 0, 5_000],
            Some("below_minimum")
        )
    );
    // Held: carried, with the reason shown to the creator.
    let cyd_sep = statement_of(&app, &cyd, "2026-09").await;
    assert_eq!(
        amounts(&cyd_sep),
        ([0, 50_000, 0, 0, 50_000, 0, 0, 0, 0, 50_000], Some("hold"))
    );
    assert_eq!(cyd_sep["hold_reason"], "identity check pending");
    // 20,000 won: 3 % is 600, under 1,000: nothing withheld.
    let dan_sep = statement_of(&app, &dan, "2026-09").await;
    assert_eq!(
        amounts(&dan_sep),
        ([0, 20_000, 0, 0, 20_000, 20_000, 0, 0, 20_000, 0], None)
    );

    // Only its creator and admins read a statement.
    let ada_statement = ada_sep["statement_id"].as_i64().unwrap();
    let r = app
        .get_auth(&format!("/api/v1/statements/{ada_statement}"), &bob)
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app.get_auth("/api/v1/statements", &viewer).await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .get_auth(&format!("/api/v1/statements?creator_id={cyd_id}"), &bob)
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app.get_auth("/api/v1/statements/999999", &admin).await;
    assert_error(r, StatusCode::NOT_FOUND, "statement_not_found").await;
    let mine: Value = app
        .get_json(&format!("/api/v1/statements/{ada_statement}"), Some(&admin))
        .await;
    assert_eq!(mine, ada_sep);
    let all = app
        .get_json("/api/v1/statements?month=2026-09&limit=3", Some(&admin))
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let cursor = all["next_cursor"].as_str().unwrap();
    let rest = app
        .get_json(
            &format!("/api/v1/statements?month=2026-09&limit=3&cursor={cursor}"),
            Some(&admin),
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());

    // As CSV.
    let csv = app
        .client
        .get(app.url(&format!("/api/v1/statements/{ada_statement}")))
        .bearer_auth(&ada)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("statement_id,creator_id,month,opening_balance,earnings"));
    assert!(
        lines[1].contains(",2026-09,0,60000,0,0,60000,60000,1800,180,58020,0,"),
        "{text}"
    );

    // The withholding report: the paid creators and the totals.
    let report = app
        .get_json("/api/v1/admin/withholding?month=2026-09", Some(&admin))
        .await;
    let lines: Vec<(i64, i64, i64, i64)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["payout"].as_i64().unwrap(),
                l["income_tax"].as_i64().unwrap(),
                l["local_tax"].as_i64().unwrap(),
                l["net"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [(60_000, 1_800, 180, 58_020), (20_000, 0, 0, 20_000)]
    );
    assert_eq!(
        report["totals"],
        json!({"payout": 80_000, "income_tax": 1_800, "local_tax": 180, "net": 78_020})
    );
    let csv = app
        .client
        .get(app.url("/api/v1/admin/withholding?month=2026-09"))
        .bearer_auth(&admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().last(), Some("total,,80000,1800,180,78020"));
    let r = app
        .get_auth("/api/v1/admin/withholding?month=2026-09", &ada)
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;

    // Payouts and withholding are on the ledger.
    assert_eq!(
        balance(&app, &admin, ada_sep["creator_id"].as_i64().unwrap()).await,
        0
    );
    assert_eq!(balance(&app, &admin, cyd_id).await, 50_000);
    assert_eq!(
        scalar(&db,
            "SELECT COUNT(*) FROM ledger_transfers_named WHERE kind IN ('payout', 'income_tax', 'local_tax')"
        )
        .await,
        4,
        "ada: payout and two taxes; dan: payout"
    );

    // The bank transfer is recorded once.
    let paid_path = format!("/api/v1/admin/statements/{ada_statement}/paid");
    let r = app
        .post_auth(
            &paid_path,
            &admin,
            &json!({"reference": "KB-20261010-0001"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let paid: Value = r.json().await.unwrap();
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["payout_reference"], "KB-20261010-0001");
    assert!(paid["paid_at"].is_string());
    assert_eq!(amounts(&paid), amounts(&ada_sep), "amounts never change");
    let r = app
        .post_auth(
            &paid_path,
            &admin,
            &json!({"reference": "KB-20261010-0001"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post_auth(&paid_path, &admin, &json!({"reference": "KB-other"}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "statement_already_paid").await;
    let r = app
        .post_auth(&paid_path, &admin, &json!({"reference": ""}))
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
    let r = app
        .post_auth(
            &format!("/api/v1/admin/statements/{}/paid", bob_sep["statement_id"]),
            &admin,
            &json!({"reference": "KB-1"}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "nothing_to_pay").await;

    // Months close in order, and only once over.
    let r = close(&app, &admin, "2026-08").await;
    assert_error(r, StatusCode::CONFLICT, "month_out_of_order").await;
    let r = close(&app, &admin, "2099-01").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = close(&app, &admin, "2026-9").await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
    let r = close(&app, &ada, "2026-10").await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .get_auth("/api/v1/admin/withholding?month=2026-10", &admin)
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "not closed yet");

    // October: a late correction of September 10 (+100 views), bob earns
    // 6,000, 1,000 of which prove invalid, a clawback of 15,000 of dan's
    // September views, and cyd's hold is released.
    import(
        &app,
        &admin,
        &[(va, "2026-09-10", 60_100), (vb, "2026-10-05", 6_000)],
    )
    .await;
    app.settle_ok(&admin, "2026-09-10", "2026-09-10").await;
    app.settle_ok(&admin, "2026-10-01", "2026-10-31").await;
    for (video, d, views) in [(vb, "2026-10-05", 1_000), (vd, "2026-09-13", 15_000)] {
        let r = app
            .post_auth(
                "/api/v1/admin/adjustments",
                &admin,
                &json!({"video_id": video, "day": d, "views": views, "ad_views": 0,
                        "watch_seconds": 0, "reason": "bot traffic"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let release = |token: String| {
        app.client
            .delete(app.url(&format!("/api/v1/admin/creators/{cyd_id}/hold")))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        release(admin.clone()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        release(admin.clone()).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let r = close(&app, &admin, "2026-10").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_statements_agree(&db).await;
    // September's correction lands on October's statement.
    assert_eq!(
        amounts(&statement_of(&app, &ada, "2026-10").await),
        ([0, 0, 100, 0, 100, 0, 0, 0, 0, 100], Some("below_minimum"))
    );
    // 5,000 carried + 6,000 − 1,000 = exactly the minimum: paid; 3 % is
    // 300, under 1,000: nothing withheld.
    assert_eq!(
        amounts(&statement_of(&app, &bob, "2026-10").await),
        (
            [5_000, 6_000, 0, -1_000, 10_000, 10_000, 0, 0, 10_000, 0],
            None
        )
    );
    // The hold released: the carried 50,000 is paid.
    let cyd_oct = statement_of(&app, &cyd, "2026-10").await;
    assert_eq!(
        amounts(&cyd_oct),
        (
            [50_000, 0, 0, 0, 50_000, 50_000, 1_500, 150, 48_350, 0],
            None
        )
    );
    assert!(cyd_oct["hold_reason"].is_null());
    // A clawback after payment: the creator owes it.
    let dan_oct = statement_of(&app, &dan, "2026-10").await;
    assert_eq!(
        amounts(&dan_oct),
        (
            [0, 0, 0, -15_000, -15_000, 0, 0, 0, 0, -15_000],
            Some("negative_balance")
        )
    );
    let dan_id = dan_oct["creator_id"].as_i64().unwrap();
    assert_eq!(balance(&app, &admin, dan_id).await, -15_000);
    // September's issued amounts did not change.
    assert_eq!(
        amounts(&statement_of(&app, &ada, "2026-09").await),
        amounts(&ada_sep)
    );

    // Every admin write is audited.
    let audit = app
        .get_json("/api/v1/admin/audit?limit=100", Some(&admin))
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "POST /api/v1/admin/closes",
        "PUT /api/v1/admin/creators/{creator_id}/hold",
        "DELETE /api/v1/admin/creators/{creator_id}/hold",
        "POST /api/v1/admin/statements/{statement_id}/paid",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
}

#[tokio::test]
async fn two_revenue_replicas_closing_the_same_month_issue_it_once() {
    use proto::revenue::v1::{CloseMonthRequest, revenue_service_client::RevenueServiceClient};
    use secrecy::ExposeSecret;

    let (app, admin) = spawn_admin_app(Options::default()).await;
    let mut videos = Vec::new();
    for name in ["ann", "ben", "cat"] {
        let token = app
            .signed_in(&format!("{name}@example.com"), "creator")
            .await
            .access;
        videos.push(app.video(&token, 600).await);
    }
    let rows: Vec<(i64, &str, i64)> = videos.iter().map(|&v| (v, "2026-09-15", 40_000)).collect();
    import(&app, &admin, &rows).await;
    app.settle_ok(&admin, "2026-09-01", "2026-09-30").await;

    let mut settings = app.revenue_settings();
    settings.revenue_grpc_addr = "127.0.0.1:0".parse().unwrap();
    let second = revenue_service::Application::build(settings).await.unwrap();
    let second_url = format!("http://{}", second.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let replica = tokio::spawn(second.run_until(async {
        let _ = stopped.await;
    }));
    let mut client = RevenueServiceClient::connect(second_url).await.unwrap();
    let mut direct = tonic::Request::new(CloseMonthRequest {
        month: "2026-09".to_owned(),
    });
    direct
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    direct.metadata_mut().insert(
        "x-service-credential",
        app.credential.expose_secret().parse().unwrap(),
    );

    let (through_gateway, on_replica) =
        tokio::join!(close(&app, &admin, "2026-09"), client.close_month(direct));
    let on_replica = on_replica.unwrap().into_inner();
    let gateway_issued = through_gateway.status() == StatusCode::CREATED;
    assert!(
        gateway_issued ^ on_replica.issued,
        "exactly one replica issues the month"
    );
    let body: Value = through_gateway.json().await.unwrap();
    assert_eq!(body["close_id"], on_replica.close_id);
    let _ = stop.send(());
    let _ = replica.await;

    let db = app.revenue_db().await;
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM closes").await, 1);
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM statements").await, 3);
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM ledger_transfers_named WHERE kind = 'payout'"
        )
        .await,
        3
    );
    assert_statements_agree(&db).await;
}

#[tokio::test]
async fn the_schedule_closes_the_previous_month_once_it_is_final() {
    use chrono::Datelike;
    // Every second, with days final the day after they end, so that the
    // previous month is closable whatever today is.
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        close_schedule: Some(("* * * * * *", 0)),
        ..Options::default()
    })
    .await;
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&ada, 600).await;
    let today = common::time::PlatformTime::default().today();
    let this_month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap();
    let first = this_month
        .checked_sub_months(chrono::Months::new(1))
        .unwrap();
    let last = this_month.pred_opt().unwrap();
    let month = first.format("%Y-%m").to_string();
    import(&app, &admin, &[(video, &first.to_string(), 25_000)]).await;
    app.settle_ok(&admin, &first.to_string(), &last.to_string())
        .await;

    let mut page = Value::Null;
    for _ in 0..100 {
        page = app
            .get_json(&format!("/api/v1/statements?month={month}"), Some(&ada))
            .await;
        if !page["items"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the schedule closed {month}: {page}");
    assert_eq!(
        amounts(&items[0]),
        ([0, 25_000, 0, 0, 25_000, 25_000, 0, 0, 25_000, 0], None),
        "3 % of 25,000 is 750: under 1,000, nothing withheld"
    );
    let db = app.revenue_db().await;
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM closes WHERE actor = 'schedule'").await,
        1
    );
    // Asked again, the month answers its close: the schedule's.
    let r = close(&app, &admin, &month).await;
    assert_eq!(r.status(), StatusCode::OK);
    let closed: Value = r.json().await.unwrap();
    assert_eq!(closed["actor"], "schedule");
}

#[tokio::test]
async fn two_first_closes_of_different_months_never_take_the_same_transfers() {
    use proto::revenue::v1::{CloseMonthRequest, revenue_service_client::RevenueServiceClient};
    use secrecy::ExposeSecret;

    let (app, admin) = spawn_admin_app(Options::default()).await;
    let ada = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&ada, 600).await;
    import(
        &app,
        &admin,
        &[(video, "2026-09-15", 40_000), (video, "2026-10-15", 30_000)],
    )
    .await;
    app.settle_ok(&admin, "2026-09-01", "2026-10-31").await;

    // Two more replicas on the same database, called directly (the same
    // path, so that the two closes start together).
    let mut replicas = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut settings = app.revenue_settings();
        settings.revenue_grpc_addr = "127.0.0.1:0".parse().unwrap();
        let replica = revenue_service::Application::build(settings).await.unwrap();
        let url = format!("http://{}", replica.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        replicas.push((
            stop,
            tokio::spawn(replica.run_until(async {
                let _ = stopped.await;
            })),
        ));
        clients.push(RevenueServiceClient::connect(url).await.unwrap());
    }
    let request = |month: &str| {
        let mut r = tonic::Request::new(CloseMonthRequest {
            month: month.to_owned(),
        });
        r.metadata_mut()
            .insert("authorization", format!("Bearer {admin}").parse().unwrap());
        r.metadata_mut().insert(
            "x-service-credential",
            app.credential.expose_secret().parse().unwrap(),
        );
        r
    };
    let [mut first, mut second] = [clients.remove(0), clients.remove(0)];
    // No month is closed yet: September on one replica and October on the
    // other, at once. Either September closes first and October follows
    // it, or October closes first (taking September's transfers too) and
    // September is refused as out of order; never both as first closes.
    let (september, october) = tokio::join!(
        first.close_month(request("2026-09")),
        second.close_month(request("2026-10"))
    );
    for (stop, handle) in replicas {
        let _ = stop.send(());
        let _ = handle.await;
    }
    assert!(october.is_ok(), "{october:?}");
    if let Err(e) = &september {
        assert_eq!(e.code(), tonic::Code::AlreadyExists, "{e:?}");
    }
    let db = app.revenue_db().await;
    assert_statements_agree(&db).await;
    assert_eq!(
        scalar(&db, "SELECT CAST(SUM(earnings) AS BIGINT) FROM statements").await,
        70_000,
        "each earning on exactly one statement"
    );
    assert_eq!(
        scalar(&db, "SELECT CAST(SUM(payout) AS BIGINT) FROM statements").await,
        70_000
    );
}
