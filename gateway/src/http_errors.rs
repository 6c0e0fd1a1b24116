//! Errors of the HTTP layer itself in the SPEC §8 envelope: a request head
//! over our limits gets 431, and any error response that a handler did not
//! render as the envelope (actix's 413 of a body over the limit, a 405, a
//! 404 of a path its router refused, a refused CORS preflight) is
//! rewritten into it, keeping the CORS headers of an allowed origin.
//!
//! actix-http still answers a head over its own hard limits (128 KiB, 96
//! headers) and an unparseable request line itself, with an empty body,
//! before any of this code runs; ours are lower, so every head that parses
//! is answered here.

use actix_web::{
    Error, HttpResponse, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{StatusCode, header},
    middleware::Next,
};

use common::error::ErrorCode;

use crate::error::ApiError;

/// The most bytes of header names and values a request may carry.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most headers a request may carry.
pub const MAX_HEADERS: usize = 64;

/// The middleware; it must run inside [`crate::request_id::middleware`] so
/// that the envelope names the request id.
///
/// # Errors
/// None of its own; an inner service's error passes through.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        let error = ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::RequestHeaderFieldsTooLarge,
            format!("request headers over {MAX_HEADERS} fields or {MAX_HEADER_BYTES} bytes"),
        );
        return Ok(req.into_response(error.error_response().map_into_right_body()));
    }
    let res = next.call(req).await?;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Ok(res.map_into_left_body());
    }
    let is_preflight = res.request().method() == actix_web::http::Method::OPTIONS
        && res
            .request()
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let error = if is_preflight && status == StatusCode::BAD_REQUEST {
        ApiError::new(
            status,
            ErrorCode::BadRequest,
            "cross-origin request refused: its origin, method or headers are not allowed \
             (GATEWAY_CORS_ORIGINS)",
        )
    } else {
        envelope_for(status)
    };
    let (req, old) = res.into_parts();
    let mut new: HttpResponse = error.error_response();
    // What clients read from an error: its allowed methods, when to retry,
    // and the CORS headers that let a browser page read it at all.
    for (name, value) in old.headers() {
        if *name == header::ALLOW
            || *name == header::RETRY_AFTER
            || *name == header::VARY
            || name.as_str().starts_with("access-control-")
        {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(ServiceResponse::new(req, new).map_into_right_body())
}

/// The envelope of a bare error status.
fn envelope_for(status: StatusCode) -> ApiError {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "method not allowed here"),
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorCode::PayloadTooLarge,
            "request body over the size limit",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (ErrorCode::UnsupportedMediaType, "unsupported content type")
        }
        s if s.is_server_error() => (ErrorCode::InternalError, "internal error"),
        _ => (ErrorCode::BadRequest, "the request could not be read"),
    };
    ApiError::new(status, code, message)
}
