//! Cross-origin requests (issue 21, item 7): the origins of
//! `GATEWAY_CORS_ORIGINS` get their preflights answered and their
//! responses readable, credentials included; any other origin gets no CORS
//! header. The gateway runs alone: `/healthz` and the router's own 404
//! need no downstream service.

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

const STUDIO: &str = "https://studio.example.com";
const OTHER: &str = "https://evil.example.net";

/// A gateway allowing `origins`, on a free port: its base URL, and the
/// switch that keeps it running while held.
async fn gateway(origins: &[&str]) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (base, stop, _task) = crate::helpers::lone_gateway(|settings| {
        settings.gateway_cors_origins = origins.iter().map(|o| (*o).to_owned()).collect();
    })
    .await;
    (base, stop)
}

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// A browser's preflight of a `POST` with a bearer token, a JSON body and
/// an idempotency key, from `origin`.
async fn preflight(base: &str, origin: &str) -> Response {
    Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/api/v1/admin/settlements"),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap()
}

/// `r` names `origin` as allowed, with credentials.
fn assert_allowed(r: &Response, origin: &str) {
    assert_eq!(
        header(r, "access-control-allow-origin").as_deref(),
        Some(origin)
    );
    assert_eq!(
        header(r, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
}

async fn get_from(base: &str, path: &str, origin: &str) -> Response {
    Client::new()
        .get(format!("{base}{path}"))
        .header("origin", origin)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_allowed_origin_gets_its_preflight_answered_and_its_responses_readable() {
    let (base, _running) = gateway(&[STUDIO, "http://localhost:5173"]).await;

    let r = preflight(&base, STUDIO).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_allowed(&r, STUDIO);
    let methods = header(&r, "access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let headers = header(&r, "access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(h), "{headers} lacks {h}");
    }
    assert!(header(&r, "access-control-max-age").is_some());

    // The answer itself names the origin, allows credentials and exposes
    // the request id, which the response carries.
    let r = get_from(&base, "/healthz", STUDIO).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_allowed(&r, STUDIO);
    let exposed = header(&r, "access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    for h in [
        "x-request-id",
        "retry-after",
        "x-next-cursor",
        "idempotency-replayed",
    ] {
        assert!(exposed.contains(h), "{exposed} lacks {h}");
    }
    assert!(header(&r, "x-request-id").is_some());
    assert!(header(&r, "vary").unwrap().contains("Origin"));

    // An error rewritten into the envelope keeps them: the page can read
    // why it failed.
    let r = get_from(&base, "/api/v1/no-such-thing", STUDIO).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some(STUDIO)
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    // The second listed origin too, and only it is named.
    let r = get_from(&base, "/healthz", "http://localhost:5173").await;
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("http://localhost:5173")
    );
}

#[tokio::test]
async fn a_refused_origin_gets_no_cors_header() {
    let (base, _running) = gateway(&[STUDIO]).await;

    let r = preflight(&base, OTHER).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    assert_eq!(header(&r, "access-control-allow-credentials"), None);
    assert!(header(&r, "x-request-id").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GATEWAY_CORS_ORIGINS"),
        "{body}"
    );

    // A simple request is still served (a browser hides the answer from
    // the page: no CORS header names the origin).
    let r = get_from(&base, "/healthz", OTHER).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    assert_eq!(header(&r, "access-control-allow-credentials"), None);

    // An origin differing only by scheme or port is another origin.
    for near in [
        "http://studio.example.com",
        "https://studio.example.com:8443",
    ] {
        let r = get_from(&base, "/healthz", near).await;
        assert_eq!(header(&r, "access-control-allow-origin"), None, "{near}");
    }
}

#[tokio::test]
async fn with_no_origins_configured_there_is_no_cors() {
    let (base, _running) = gateway(&[]).await;
    let r = preflight(&base, STUDIO).await;
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    assert!(r.status().is_client_error());
    let r = get_from(&base, "/healthz", STUDIO).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
}

#[test]
fn a_malformed_origin_stops_the_gateway_at_start_by_name() {
    let parsed: Result<gateway::Settings, _> = serde_json::from_value(serde_json::json!({
        "gateway_cors_origins": "https://studio.example.com, *"
    }));
    let error = parsed.err().unwrap().to_string();
    assert!(
        error.contains("GATEWAY_CORS_ORIGINS") && error.contains("\"*\""),
        "{error}"
    );

    let parsed: gateway::Settings = serde_json::from_value(serde_json::json!({
        "gateway_cors_origins": "https://Studio.Example.com/, http://localhost:5173"
    }))
    .unwrap();
    assert_eq!(
        parsed.gateway_cors_origins,
        vec![STUDIO.to_owned(), "http://localhost:5173".to_owned()]
    );
}
