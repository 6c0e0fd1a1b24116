//! Access tokens the gateway must reject with 401 (SPEC §3).

use common::auth::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use user_service::tokens::keys::SigningKey;

use crate::helpers::{TestApp, assert_error, b64, sign_with, spawn_app};

async fn assert_rejected(app: &TestApp, token: &str, what: &str) {
    let r = app.get_auth("/api/v1/users/me", token).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "{what} was not rejected"
    );
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn forged_and_stale_tokens_are_rejected() {
    let app = spawn_app().await;
    let tokens = app.signed_in("t@example.com", "viewer").await;
    let me: Value = app
        .get_auth("/api/v1/users/me", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    let user_id = me["user_id"].as_i64().unwrap();

    // Control: a token we sign ourselves with the real key is accepted, so
    // each rejection below is due to the one thing changed.
    let good = app.sign(&app.claims(user_id, Role::Viewer));
    assert_eq!(
        app.get_auth("/api/v1/users/me", &good).await.status(),
        StatusCode::OK
    );

    // alg: none, no signature.
    let claims = serde_json::to_vec(&app.claims(user_id, Role::Admin)).unwrap();
    let none_header = json!({"alg": "none", "typ": "JWT", "kid": app.kid});
    let alg_none = format!(
        "{}.{}.",
        b64(&serde_json::to_vec(&none_header).unwrap()),
        b64(&claims)
    );
    assert_rejected(&app, &alg_none, "alg none").await;

    // HS256 keyed with the public key bytes (algorithm confusion).
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    assert_eq!(jwks["keys"][0]["kid"], app.kid.as_str());
    let public_bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, x).unwrap();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(app.kid.clone());
    for secret in [public_bytes.clone(), x.as_bytes().to_vec()] {
        let confused = jsonwebtoken::encode(
            &hs,
            &app.claims(user_id, Role::Admin),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_rejected(&app, &confused, "HS256 with the public key").await;
    }

    let mut wrong_aud = app.claims(user_id, Role::Viewer);
    wrong_aud.aud = "some-other-api".into();
    assert_rejected(&app, &app.sign(&wrong_aud), "wrong aud").await;

    let mut wrong_iss = app.claims(user_id, Role::Viewer);
    wrong_iss.iss = "https://evil.example".into();
    assert_rejected(&app, &app.sign(&wrong_iss), "wrong iss").await;

    let other_pem = SigningKey::generate_pem().unwrap();
    let other_kid = SigningKey::from_pem(&other_pem).unwrap().kid().to_owned();
    assert_rejected(
        &app,
        &sign_with(&other_pem, &other_kid, &app.claims(user_id, Role::Viewer)),
        "unknown kid",
    )
    .await;
    // The real kid on a token signed by another key is a bad signature.
    assert_rejected(
        &app,
        &sign_with(&other_pem, &app.kid, &app.claims(user_id, Role::Viewer)),
        "foreign key",
    )
    .await;

    let mut expired = app.claims(user_id, Role::Viewer);
    expired.iat -= 3_600;
    expired.exp = expired.iat + 900;
    assert_rejected(&app, &app.sign(&expired), "expired").await;

    // Tampered payload: the real signature over other claims.
    let parts: Vec<&str> = tokens.access.split('.').collect();
    let mut payload: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
            .unwrap(),
    )
    .unwrap();
    payload["role"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    assert_rejected(&app, &tampered, "tampered payload").await;

    for junk in ["", "abc", "a.b.c", "Bearer"] {
        assert_rejected(&app, junk, "junk").await;
    }
    let r = app
        .client
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn the_user_service_verifies_forwarded_tokens_itself() {
    // SPEC §9: a service does not trust the gateway's word. Call the user
    // service directly, past the gateway.
    use proto::user::v1::{GetMeRequest, user_service_client::UserServiceClient};
    use secrecy::ExposeSecret;

    let app = spawn_app().await;
    let tokens = app.signed_in("direct@example.com", "viewer").await;
    let mut client = UserServiceClient::connect(app.user_url.clone())
        .await
        .unwrap();
    let call = |token: String, credential: Option<String>| {
        let mut request = tonic::Request::new(GetMeRequest {});
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        if let Some(c) = credential {
            request
                .metadata_mut()
                .insert("x-service-credential", c.parse().unwrap());
        }
        request
    };
    let credential = Some(app.credential.expose_secret().to_owned());

    let me = client
        .get_me(call(tokens.access.clone(), credential.clone()))
        .await
        .unwrap();
    assert_eq!(me.get_ref().email, "direct@example.com");

    let other_pem = SigningKey::generate_pem().unwrap();
    let forged = sign_with(
        &other_pem,
        &app.kid,
        &app.claims(me.get_ref().user_id, Role::Admin),
    );
    let err = client
        .get_me(call(forged, credential.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    // Without the service credential nothing is answered, not even for a
    // good token.
    let err = client
        .get_me(call(tokens.access.clone(), None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let err = client
        .get_me(call(tokens.access, Some("wrong".into())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
}
