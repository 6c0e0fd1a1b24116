//! The Studio (issue 21): its page and assets under a strict
//! Content-Security-Policy, and the browser session (item 6): an `HttpOnly`,
//! `SameSite=Strict` cookie naming tokens the gateway keeps, a CSRF token on
//! every state-changing request, renewal before the access token expires,
//! and a sign-out after which the old cookie works nowhere.

use base64::Engine;
use reqwest::{Client, Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, assert_error, lone_gateway, redis_url, spawn_app};

const PASSWORD: &str = "password-123";

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A browser's sign-in at `base`: the `studio_session` cookie's value, the
/// whole `set-cookie` header, and the JSON answered.
async fn sign_in(base: &str, email: &str) -> (String, String, Value) {
    let r = Client::new()
        .post(format!("{base}/studio/session"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "studio sign-in of {email}");
    let set_cookie = header(&r, "set-cookie");
    let value = set_cookie
        .strip_prefix("studio_session=")
        .and_then(|rest| rest.split(';').next())
        .expect("a studio_session cookie")
        .to_owned();
    (value, set_cookie, r.json().await.unwrap())
}

/// A request to `base` + `path` carrying the session cookie.
fn with_cookie(
    method: reqwest::Method,
    base: &str,
    path: &str,
    cookie: &str,
) -> reqwest::RequestBuilder {
    Client::new()
        .request(method, format!("{base}{path}"))
        .header("cookie", format!("studio_session={cookie}"))
}

async fn me(base: &str, cookie: &str) -> Response {
    with_cookie(reqwest::Method::GET, base, "/api/v1/users/me", cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_under_a_policy_that_allows_no_inline_script() {
    let (base, _stop, _task) = lone_gateway(|_| {}).await;
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(format!("{base}/studio")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&r, "location"), "/studio/");

    let r = client.get(format!("{base}/studio/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = header(&r, "content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<html lang="ko">"#), "Korean by default");
    assert!(html.contains(r#"content="Asia/Seoul""#));
    assert!(!html.contains("<script>"), "no inline script");

    let english = |accept: &'static str, cookie: Option<&'static str>| {
        let mut request = client
            .get(format!("{base}/studio/"))
            .header("accept-language", accept);
        if let Some(c) = cookie {
            request = request.header("cookie", c);
        }
        async move {
            request
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .contains(r#"<html lang="en">"#)
        }
    };
    assert!(english("en-US,en;q=0.9", None).await);
    assert!(!english("ko-KR,en;q=0.5", None).await);
    assert!(
        english("ko-KR", Some("studio_lang=en")).await,
        "the switch wins"
    );

    let r = client
        .get(format!("{base}/studio/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header(&r, "content-type").starts_with("text/javascript"));
    let etag = header(&r, "etag");
    let r = client
        .get(format!("{base}/studio/assets/app.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = client
        .get(format!("{base}/studio/assets/vendor/uPlot.min.css"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(header(&r, "content-type").starts_with("text/css"));
    assert_eq!(header(&r, "content-encoding"), "gzip");
    let r = client
        .get(format!("{base}/studio/assets/../Cargo.toml"))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_browser_session_is_an_http_only_cookie_that_needs_its_csrf_token_and_ends_at_sign_out() {
    let app = spawn_app().await;
    let email = "studio-creator@example.com";
    assert_eq!(
        app.signup(email, PASSWORD, "creator").await.status(),
        StatusCode::CREATED
    );
    let base = app.address.as_str();
    let (cookie, set_cookie, body) = sign_in(base, email).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain http here: not Secure"
    );
    assert_eq!(body["user"]["email"], email);
    assert_eq!(body["user"]["role"], "creator");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(csrf.len(), 43);
    assert!(
        !set_cookie.contains(&csrf),
        "the CSRF token is not the cookie"
    );

    // The cookie authenticates the JSON API.
    let r = me(base, &cookie).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["email"], email);
    let r = with_cookie(reqwest::Method::GET, base, "/studio/session", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["csrf_token"], csrf);

    // A state-changing request needs the session's CSRF token.
    let upload = json!({"title": "From the Studio", "description": "", "duration_seconds": 300});
    for sent in [None, Some("not-the-token")] {
        let mut request =
            with_cookie(reqwest::Method::POST, base, "/api/v1/videos", &cookie).json(&upload);
        if let Some(token) = sent {
            request = request.header("x-csrf-token", token);
        }
        assert_error(
            request.send().await.unwrap(),
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    let listed = app.get_json("/api/v1/videos", None).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        0,
        "refused writes changed nothing"
    );
    let r = with_cookie(reqwest::Method::POST, base, "/api/v1/videos", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&upload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Other clients keep bearer tokens.
    let tokens = app.login_tokens(email, PASSWORD).await;
    assert_eq!(
        app.get_auth("/api/v1/users/me", &tokens.access)
            .await
            .status(),
        StatusCode::OK
    );

    // Signing out needs the token too, then ends the session everywhere.
    let r = with_cookie(reqwest::Method::DELETE, base, "/studio/session", &cookie)
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(me(base, &cookie).await.status(), StatusCode::OK);
    let r = with_cookie(reqwest::Method::DELETE, base, "/studio/session", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(header(&r, "set-cookie").contains("studio_session=;"));
    assert_error(
        me(base, &cookie).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let r = with_cookie(reqwest::Method::GET, base, "/studio/session", &cookie)
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

/// A second gateway in front of `app`'s services, keeping Studio sessions
/// in the test Redis.
async fn replica(app: &TestApp) -> (String, tokio::sync::oneshot::Sender<()>) {
    let user_url = app.user_url.clone();
    let credential: SecretString = app.credential.clone();
    let (base, stop, _task) = lone_gateway(move |settings| {
        settings.gateway_user_service_url = user_url;
        settings.service_credential = Some(credential);
        settings.gateway_redis_url = Some(SecretString::from(redis_url()));
        settings.studio_session_seconds = 120;
    })
    .await;
    (base, stop)
}

fn redis_key(cookie: &str) -> String {
    let digest = Sha256::digest(cookie.as_bytes());
    format!(
        "studio:session:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

#[tokio::test]
async fn sessions_in_redis_serve_every_replica_renew_their_tokens_and_end_on_all_of_them() {
    let app = spawn_app().await;
    let email = "studio-replicas@example.com";
    assert_eq!(
        app.signup(email, PASSWORD, "viewer").await.status(),
        StatusCode::CREATED
    );
    let (first, _stop_first) = replica(&app).await;
    let (second, _stop_second) = replica(&app).await;
    let (cookie, set_cookie, body) = sign_in(&first, email).await;
    assert!(set_cookie.contains("Max-Age=120"));
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&second, &cookie).await.status(), StatusCode::OK);

    // The store holds the tokens under the hash of the cookie, not the
    // cookie itself; an access token about to expire is renewed.
    let mut redis = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = redis_key(&cookie);
    let stored: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!stored.contains(&cookie));
    let mut session: Value = serde_json::from_str(&stored).unwrap();
    let old_access = session["access_token"].as_str().unwrap().to_owned();
    let old_refresh = session["refresh_token"].as_str().unwrap().to_owned();
    session["access_expires_at"] = json!(chrono::Utc::now().timestamp() + 5);
    let () = redis::cmd("SET")
        .arg(&key)
        .arg(session.to_string())
        .arg("KEEPTTL")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(me(&second, &cookie).await.status(), StatusCode::OK);
    let renewed: Value = serde_json::from_str(
        &redis::cmd("GET")
            .arg(&key)
            .query_async::<String>(&mut redis)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_ne!(renewed["access_token"], old_access.as_str());
    assert_ne!(renewed["refresh_token"], old_refresh.as_str());
    assert!(renewed["access_expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp() + 600);
    assert_eq!(
        app.refresh(&old_refresh).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old refresh token was rotated"
    );

    // Signing out on one replica ends the session on the other.
    let r = with_cookie(reqwest::Method::DELETE, &second, "/studio/session", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        me(&first, &cookie).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let gone: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(gone.is_none());
    let renewed_refresh = renewed["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.refresh(renewed_refresh).await.status(),
        StatusCode::UNAUTHORIZED,
        "signing out revoked the refresh family"
    );
}
