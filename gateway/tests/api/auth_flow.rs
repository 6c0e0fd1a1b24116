//! Sign-up, login, refresh rotation and reuse detection, logout, `me`, and
//! the admin list (SPEC §3, §7).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, Store, assert_error, detail_fields, spawn_app, spawn_app_with};

#[tokio::test]
async fn sign_up_validation_names_the_bad_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": "password-123", "display_name": "A", "role": "viewer"}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short7!", "display_name": "A", "role": "viewer"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "password-123", "display_name": "A", "role": "superuser"}),
            "role",
        ),
        (
            json!({"email": "a@example.com", "password": "password-123", "display_name": "A", "role": "admin"}),
            "role",
        ),
        (
            json!({"email": "a@example.com", "password": "password-123", "display_name": "", "role": "viewer"}),
            "display_name",
        ),
        (
            json!({"password": "password-123", "display_name": "A", "role": "viewer"}),
            "email",
        ),
    ];
    for (body, field) in cases {
        let r = app.post_json("/api/v1/auth/signup", &body).await;
        let err = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
        assert_eq!(detail_fields(&err), vec![field.to_owned()], "{body}");
    }
    // Nothing was created by the bad sign-ups: the address is still free.
    assert_eq!(
        app.signup("a@example.com", "password-123", "viewer")
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn duplicate_email_in_any_letter_case_is_409() {
    let app = spawn_app().await;
    let r = app
        .signup("Grace.Hopper@Example.com", "password-123", "creator")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["email"], "grace.hopper@example.com");
    assert_eq!(user["role"], "creator");
    assert!(user["user_id"].as_i64().is_some_and(|id| id > 0));
    assert!(chrono_parse(&user["created_at"]));
    let r = app
        .signup("GRACE.HOPPER@example.COM", "password-456", "viewer")
        .await;
    assert_error(r, StatusCode::CONFLICT, "email_taken").await;
}

fn chrono_parse(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    app.signup("ada@example.com", "password-123", "viewer")
        .await;
    let wrong = app.login("ada@example.com", "password-999").await;
    let unknown = app.login("nobody@example.com", "password-123").await;
    let a = assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let b = assert_error(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(a["error"]["message"], b["error"]["message"]);
    assert_eq!(a["error"]["details"], b["error"]["details"]);
    // Login accepts the email in any letter case.
    assert_eq!(
        app.login("ADA@example.com", "password-123").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn me_returns_the_signed_in_user() {
    let app = spawn_app().await;
    let tokens = app.signed_in("me@example.com", "creator").await;
    let r = app.get_auth("/api/v1/users/me", &tokens.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], "me@example.com");
    assert_eq!(me["role"], "creator");
    assert_eq!(me["display_name"], "Test User");
}

#[tokio::test]
async fn refresh_rotates_and_replay_revokes_the_family() {
    let app = spawn_app().await;
    let first = app.signed_in("rot@example.com", "viewer").await;

    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second: Value = r.json().await.unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first.refresh);
    let second_access = second["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_auth("/api/v1/users/me", second_access)
            .await
            .status(),
        StatusCode::OK
    );

    // The old token stopped working: replaying it is reuse...
    assert_error(
        app.refresh(&first.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    // ...which revoked the whole family, so the newest one is dead too.
    assert_error(
        app.refresh(&second_refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;

    // Another login starts a fresh family that works.
    let other = app.login_tokens("rot@example.com", "password-123").await;
    assert_eq!(app.refresh(&other.refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_revokes_the_family() {
    let app = spawn_app().await;
    let tokens = app.signed_in("out@example.com", "viewer").await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&tokens.access)
        .json(&json!({"refresh_token": tokens.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.refresh(&tokens.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;

    // Logout needs a signed-in caller.
    let r = app
        .post_json("/api/v1/auth/logout", &json!({"refresh_token": "whatever"}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn only_admins_list_users_paged() {
    let app = spawn_app_with(Options {
        admin: Some(("root@example.com", "admin-password-1")),
        ..Options::default()
    })
    .await;
    let viewer = app.signed_in("v@example.com", "viewer").await;
    app.signup("c@example.com", "password-123", "creator").await;
    let r = app.get_auth("/api/v1/admin/users", &viewer.access).await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;

    let admin = app
        .login_tokens("root@example.com", "admin-password-1")
        .await;
    let me: Value = app
        .get_auth("/api/v1/users/me", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");

    let r = app
        .get_auth("/api/v1/admin/users?limit=2", &admin.access)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.unwrap();
    let emails: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["root@example.com", "v@example.com"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let r = app
        .get_auth(
            &format!("/api/v1/admin/users?limit=2&cursor={cursor}"),
            &admin.access,
        )
        .await;
    let page: Value = r.json().await.unwrap();
    let emails: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["c@example.com"]);
    assert!(page["next_cursor"].is_null());

    let r = app
        .get_auth("/api/v1/admin/users?limit=101", &admin.access)
        .await;
    let err = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
    assert_eq!(detail_fields(&err), vec!["limit"]);
    let r = app
        .get_auth("/api/v1/admin/users?cursor=bogus", &admin.access)
        .await;
    let err = assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
    assert_eq!(detail_fields(&err), vec!["cursor"]);
}

#[tokio::test]
async fn core_flow_on_sqlite() {
    let app = spawn_app_with(Options {
        store: Store::Sqlite,
        ..Options::default()
    })
    .await;
    let tokens = app.signed_in("lite@example.com", "creator").await;
    let me: Value = app
        .get_auth("/api/v1/users/me", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "lite@example.com");
    assert_error(
        app.signup("LITE@example.com", "password-123", "viewer")
            .await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
    let r = app.refresh(&tokens.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let next: Value = r.json().await.unwrap();
    assert_error(
        app.refresh(&tokens.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_error(
        app.refresh(next["refresh_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    let again = app.login_tokens("lite@example.com", "password-123").await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&again.access)
        .json(&json!({"refresh_token": again.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.refresh(&again.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}
