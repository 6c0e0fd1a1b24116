//! Social login (SPEC §3) against a real OpenID Connect provider: the npm
//! package `oidc-provider`, started by the test (`gateway/tests/oidc/`),
//! driven through its login and consent pages like a browser would.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::{StatusCode, redirect::Policy};
use serde_json::Value;

use crate::helpers::{Options, TestApp, assert_error, free_port, spawn_app_with};

const CLIENT_ID: &str = "ssp-test";
const CLIENT_SECRET: &str = "a-secret-only-this-test-knows";
const ADMIN: (&str, &str) = ("admin@example.com", "admin-password");

/// A running `oidc-provider`, killed when dropped.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Installs the provider's npm packages once for every test process:
/// `npm ci` from the lock file, under a lock directory.
fn install_provider() {
    let dir = oidc_dir();
    let done = dir.join("node_modules/.ssp-installed");
    let lock = dir.join(".installing");
    for _ in 0..600 {
        if done.exists() {
            return;
        }
        if std::fs::create_dir(&lock).is_ok() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .expect("npm runs");
            let _ = std::fs::remove_dir(&lock);
            assert!(status.success(), "npm ci in {}", dir.display());
            std::fs::write(&done, b"").expect("marker");
            return;
        }
        // Another test process is installing; a lock left by a crash
        // expires after five minutes.
        if lock
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(300))
        {
            let _ = std::fs::remove_dir(&lock);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("npm ci did not finish in five minutes");
}

/// Starts the provider for a gateway on `gateway_port`.
fn start_provider(gateway_port: u16) -> Provider {
    install_provider();
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{gateway_port}/api/v1/auth/oauth/test/callback");
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .arg(port.to_string())
        .args([CLIENT_ID, CLIENT_SECRET, &redirect])
        .current_dir(oidc_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("provider output");
    assert_eq!(line.trim(), "listening", "oidc-provider did not start");
    // Keep reading what it prints: a closed pipe would kill it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    Provider {
        child,
        issuer: format!("http://127.0.0.1:{port}"),
    }
}

/// The services with the test provider configured as `test`.
async fn app_with_provider(state_ttl_seconds: u64) -> (TestApp, Provider) {
    let gateway_port = free_port();
    let provider = start_provider(gateway_port);
    let app = spawn_app_with(Options {
        admin: Some(ADMIN),
        gateway_port: Some(gateway_port),
        oidc: Some(crate::helpers::OidcOptions {
            name: "test".into(),
            issuer: provider.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            state_ttl_seconds,
        }),
        ..Options::default()
    })
    .await;
    (app, provider)
}

/// A browser: keeps cookies, follows redirects, but stops at the
/// gateway's callback so the test can see (and replay) that URL, and at the
/// Studio's page.
fn browser(app: &TestApp) -> reqwest::Client {
    let callback = format!("{}/api/v1/auth/oauth/", app.address);
    let studio = format!("{}/studio/", app.address);
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(Policy::custom(move |attempt| {
            let to = attempt.url().as_str();
            if to.starts_with(&callback) || to.starts_with(&studio) || attempt.previous().len() > 10
            {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .build()
        .expect("client")
}

fn between<'a>(text: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let start = text.find(before)? + before.len();
    let end = text[start..].find(after)? + start;
    Some(&text[start..end])
}

/// Goes through authorize → the provider's login and consent pages as
/// `login`, and returns the callback URL the provider sent the browser to.
async fn through_provider(app: &TestApp, login: &str, role: Option<&str>) -> String {
    let mut url = app.url("/api/v1/auth/oauth/test/authorize");
    if let Some(role) = role {
        url.push_str(&format!("?role={role}"));
    }
    through_provider_from(app, &browser(app), url, login).await
}

/// As [`through_provider`], from `start` in `browser`.
async fn through_provider_from(
    app: &TestApp,
    browser: &reqwest::Client,
    start: String,
    login: &str,
) -> String {
    let mut response = browser.get(start).send().await.expect("authorize");
    for _ in 0..4 {
        if response.status().is_redirection() {
            let location = response.headers()["location"].to_str().expect("location");
            assert!(
                location.starts_with(&app.address),
                "redirected to {location}"
            );
            return location.to_owned();
        }
        assert_eq!(response.status(), StatusCode::OK, "a provider page");
        let html = response.text().await.expect("page");
        let action = between(&html, "action=\"", "\"").expect("a form");
        let prompt = between(&html, "name=\"prompt\" value=\"", "\"").expect("a prompt");
        let mut form = vec![("prompt", prompt.to_owned())];
        if prompt == "login" {
            form.push(("login", login.to_owned()));
            form.push(("password", "any password".to_owned()));
        }
        response = browser
            .post(action)
            .form(&form)
            .send()
            .await
            .expect("submit");
    }
    panic!("the provider never redirected back");
}

async fn callback(app: &TestApp, url: &str) -> reqwest::Response {
    app.client.get(url).send().await.expect("callback")
}

async fn user_count(app: &TestApp) -> usize {
    let admin = app.login_tokens(ADMIN.0, ADMIN.1).await.access;
    let page = app
        .get_json("/api/v1/admin/users?limit=100", Some(&admin))
        .await;
    page["items"].as_array().expect("items").len()
}

async fn me(app: &TestApp, tokens: &Value) -> Value {
    let access = tokens["access_token"].as_str().expect("access token");
    app.get_json("/api/v1/users/me", Some(access)).await
}

#[tokio::test]
async fn signs_in_through_a_real_openid_provider_and_again_into_the_same_account() {
    let (app, _provider) = app_with_provider(600).await;

    let first = callback(&app, &through_provider(&app, "alice", None).await).await;
    assert_eq!(first.status(), StatusCode::OK);
    let tokens: Value = first.json().await.expect("tokens");
    assert_eq!(tokens["token_type"], "Bearer");
    let alice = me(&app, &tokens).await;
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["role"], "viewer");

    // The same provider identity signs into the same account.
    let again = callback(&app, &through_provider(&app, "alice", None).await).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again = me(&app, &again.json().await.expect("tokens")).await;
    assert_eq!(again["user_id"], alice["user_id"]);

    // A first login that asked for a creator account makes one.
    let bob = callback(&app, &through_provider(&app, "bob", Some("creator")).await).await;
    assert_eq!(bob.status(), StatusCode::OK);
    let bob = me(&app, &bob.json().await.expect("tokens")).await;
    assert_eq!(bob["role"], "creator");
    assert_ne!(bob["user_id"], alice["user_id"]);
}

#[tokio::test]
async fn a_tampered_or_replayed_state_is_refused() {
    let (app, _provider) = app_with_provider(600).await;
    let before = user_count(&app).await;

    let url = through_provider(&app, "carol", None).await;
    let tampered = url.replacen("state=", "state=x", 1);
    assert_error(
        callback(&app, &tampered).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    let unknown = app.url("/api/v1/auth/oauth/test/callback?code=abc&state=never-issued");
    assert_error(
        callback(&app, &unknown).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    assert_eq!(
        user_count(&app).await,
        before,
        "no account from a bad state"
    );

    // The real one works once; its replay is refused.
    assert_eq!(callback(&app, &url).await.status(), StatusCode::OK);
    let replay = assert_error(
        callback(&app, &url).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    assert_eq!(replay["error"]["details"][0]["field"], "state");
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let (app, _provider) = app_with_provider(1).await;
    let before = user_count(&app).await;
    let url = through_provider(&app, "erin", None).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let body = assert_error(
        callback(&app, &url).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    assert_eq!(body["error"]["details"][0]["field"], "state");
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn a_wrong_code_or_pkce_verifier_is_an_error_and_creates_nothing() {
    let (app, _provider) = app_with_provider(600).await;
    let before = user_count(&app).await;

    // A code the provider never issued, with a good state.
    let url = through_provider(&app, "frank", None).await;
    let (head, query) = url.split_once('?').expect("query");
    let wrong: Vec<String> = query
        .split('&')
        .map(|kv| {
            if kv.starts_with("code=") {
                "code=wrong-code".to_owned()
            } else {
                kv.to_owned()
            }
        })
        .collect();
    let wrong = format!("{head}?{}", wrong.join("&"));
    assert_error(
        callback(&app, &wrong).await,
        StatusCode::BAD_REQUEST,
        "oauth_exchange_failed",
    )
    .await;

    // The right code with another PKCE verifier: the provider refuses it.
    let url = through_provider(&app, "frank", None).await;
    let users_db = sea_orm::Database::connect(app.user_db_url.clone().expect("PostgreSQL"))
        .await
        .expect("user database");
    sea_orm::ConnectionTrait::execute_unprepared(
        &users_db,
        &format!(
            "UPDATE oauth_states SET pkce_verifier = '{}' WHERE used_at IS NULL",
            "v".repeat(64)
        ),
    )
    .await
    .expect("verifier replaced");
    assert_error(
        callback(&app, &url).await,
        StatusCode::BAD_REQUEST,
        "oauth_exchange_failed",
    )
    .await;

    assert_eq!(user_count(&app).await, before, "no account created");
}

#[tokio::test]
async fn an_unverified_email_does_not_take_over_a_password_account() {
    let (app, _provider) = app_with_provider(600).await;
    let dave = app.signed_in("dave@example.com", "viewer").await;
    let dave = app.get_json("/api/v1/users/me", Some(&dave.access)).await;

    // The provider says dave@example.com but does not vouch for it.
    let url = through_provider(&app, "unverified.dave", None).await;
    assert_error(
        callback(&app, &url).await,
        StatusCode::CONFLICT,
        "email_unverified",
    )
    .await;
    // The password account is untouched and still the only Dave.
    assert_eq!(
        app.login("dave@example.com", "password-123").await.status(),
        StatusCode::OK
    );

    // With the email verified, the identity links to Dave's account.
    let url = through_provider(&app, "dave", None).await;
    let linked = callback(&app, &url).await;
    assert_eq!(linked.status(), StatusCode::OK);
    let linked = me(&app, &linked.json().await.expect("tokens")).await;
    assert_eq!(linked["user_id"], dave["user_id"]);
}

#[tokio::test]
async fn an_unknown_provider_is_404() {
    let (app, _provider) = app_with_provider(600).await;
    let r = app
        .client
        .get(app.url("/api/v1/auth/oauth/myspace/authorize"))
        .send()
        .await
        .expect("authorize");
    assert_error(r, StatusCode::NOT_FOUND, "oauth_provider_not_found").await;
    let r = app
        .client
        .get(app.url("/api/v1/auth/oauth/test/authorize?role=admin"))
        .send()
        .await
        .expect("authorize");
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_field").await;
}

#[tokio::test]
async fn a_social_login_started_in_the_studio_opens_a_browser_session() {
    let (app, _provider) = app_with_provider(600).await;
    let listed = app.get_json("/api/v1/auth/providers", None).await;
    assert_eq!(listed["providers"], serde_json::json!(["test"]));

    let browser = browser(&app);
    let start = app.url("/studio/oauth/test?role=creator");
    let back = through_provider_from(&app, &browser, start, "carol").await;
    let r = browser.get(&back).send().await.expect("callback");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/studio/");
    let cookies: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("studio_session=") && c.contains("HttpOnly")),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("studio_oauth=;")),
        "the mark is cleared: {cookies:?}"
    );
    assert!(!r.text().await.expect("body").contains("access_token"));
    let session: Value = browser
        .get(app.url("/studio/session"))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    assert_eq!(session["user"]["email"], "carol@example.com");
    assert_eq!(session["user"]["role"], "creator");
}
