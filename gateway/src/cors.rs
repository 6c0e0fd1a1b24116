//! Cross-origin requests from web frontends served from other origins
//! (CORS, the Fetch Standard), through `actix-cors`.
//!
//! Only the origins listed in `GATEWAY_CORS_ORIGINS` are allowed (none by
//! default): their preflights are answered, their responses name them in
//! `Access-Control-Allow-Origin` with `Access-Control-Allow-Credentials:
//! true`, and the headers a client reads (`x-request-id`, `retry-after`,
//! `x-next-cursor`, `idempotency-replayed`, `location`,
//! `content-disposition`) are exposed. Any other origin gets no CORS
//! header ([`only_for_allowed_origins`]), so a browser keeps the answer
//! from its script; a refused preflight is a 400. Requests are still served whatever their `Origin`:
//! browsers send one on same-origin `POST`s too, and clients other than
//! browsers are not subject to CORS at all (their bearer token is what
//! authorises them).

use actix_cors::Cors;
use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{Method, header},
    middleware::Next,
};

use crate::{admin_write, request_id::X_REQUEST_ID};

/// How long a browser may cache a preflight's answer, seconds.
const PREFLIGHT_MAX_AGE_SECONDS: usize = 600;

/// The CORS middleware for `origins` (each `scheme://host[:port]`, checked
/// by [`parse_origin`]). No origins: every cross-origin request is refused.
pub fn middleware(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        // Serve the request whatever its origin; only the CORS headers
        // depend on it (see the module's documentation).
        .block_on_origin_mismatch(false)
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::ACCEPT_LANGUAGE,
            header::HeaderName::from_static(admin_write::IDEMPOTENCY_KEY),
            X_REQUEST_ID,
        ])
        .expose_headers([
            X_REQUEST_ID,
            header::RETRY_AFTER,
            header::LOCATION,
            header::CONTENT_DISPOSITION,
            header::HeaderName::from_static("x-next-cursor"),
            header::HeaderName::from_static(admin_write::REPLAYED),
        ])
        .supports_credentials()
        .max_age(PREFLIGHT_MAX_AGE_SECONDS);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Takes the CORS headers off a response that names no allowed origin:
/// `actix-cors` adds `Access-Control-Allow-Credentials` and the exposed
/// headers to every answer to a request with an `Origin`, allowed or not,
/// and credentials are for listed origins only. Runs just outside
/// [`middleware`].
///
/// # Errors
/// None of its own; an inner service's error passes through.
pub async fn only_for_allowed_origins(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
        headers.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
    }
    Ok(res)
}

/// `text` as an origin a browser sends (`https://studio.example.com`,
/// `http://localhost:5173`): an `http` or `https` URL with a host and
/// nothing after it but an optional `/`. Returns it as browsers serialise
/// it (lower-case host, no default port, no trailing `/`).
///
/// # Errors
/// A message naming `text` when it is not such an origin (`*` included:
/// with credentials, every allowed origin must be named).
pub fn parse_origin(text: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        format!("GATEWAY_CORS_ORIGINS: {text:?} is not an origin (scheme://host[:port]): {why}")
    };
    let url = url::Url::parse(text).map_err(|e| refuse(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("the scheme must be http or https"));
    }
    if url.host().is_none() {
        return Err(refuse("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("an origin has no user name or password"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("an origin has no path, query or fragment"));
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::parse_origin;

    #[test]
    fn origins_are_serialised_as_browsers_send_them() {
        assert_eq!(
            parse_origin("https://Studio.Example.com/").as_deref(),
            Ok("https://studio.example.com")
        );
        assert_eq!(
            parse_origin("https://studio.example.com:443").as_deref(),
            Ok("https://studio.example.com")
        );
        assert_eq!(
            parse_origin("http://localhost:5173").as_deref(),
            Ok("http://localhost:5173")
        );
    }

    #[test]
    fn what_is_not_an_origin_is_refused_by_name() {
        for text in [
            "*",
            "studio.example.com",
            "ftp://studio.example.com",
            "https://studio.example.com/app",
            "https://studio.example.com/?x=1",
            "https://user:pw@studio.example.com",
            "file:///tmp/x",
        ] {
            let error = parse_origin(text).expect_err(text);
            assert!(error.contains("GATEWAY_CORS_ORIGINS"), "{error}");
            assert!(error.contains(&format!("{text:?}")), "{error}");
        }
    }
}
