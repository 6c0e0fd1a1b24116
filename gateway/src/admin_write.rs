//! Idempotency keys and the audit log around every admin write (SPEC
//! §11.6). The state lives in the revenue service's database, so a retry
//! that lands on another gateway replica gets the same answer.
//!
//! A write is fingerprinted by method, path, query and body (a JSON body as
//! parsed, so whitespace does not matter). With an `Idempotency-Key`
//! header, the first request acts and its answer is kept; the same key and
//! fingerprint within 24 hours gets that answer back (with
//! `idempotency-replayed: true`) without acting; the same key with another
//! fingerprint is a 409 `idempotency_key_reused`; while the first is still
//! being answered, a 409 `idempotency_key_in_progress`. Every admin write,
//! keyed or not, is in the audit log: actor, action, target, request id,
//! time and the status answered.

use std::future::Future;

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    body::{BoxBody, MessageBody},
    http::{StatusCode, header::CONTENT_TYPE},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use proto::revenue::v1 as pb;
use sha2::{Digest, Sha256};

use crate::{auth::Authenticated, error::ApiError, startup::AppState};

/// The request header carrying the key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header marking a replayed answer.
pub const REPLAYED: &str = "idempotency-replayed";

/// The fingerprint of a write: SHA-256 of method, path, query and body,
/// base64url.
fn fingerprint(req: &HttpRequest, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [
        req.method().as_str().as_bytes(),
        req.path().as_bytes(),
        req.query_string().as_bytes(),
    ] {
        hash.update(part);
        hash.update([0]);
    }
    hash.update(body);
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// Runs the admin write `act` (the caller is already known to be an
/// admin) under the idempotency key of `req`, if any, and records it in the
/// audit log. `body` is what the fingerprint covers (the raw body, or a
/// JSON body re-serialised).
///
/// # Errors
/// A malformed key (400), a reused key (409), a key in progress (409), the
/// revenue service unreachable (503); otherwise `act`'s answer, error or
/// not, is the answer.
pub async fn guarded<F>(
    req: &HttpRequest,
    caller: &Authenticated,
    state: &AppState,
    body: &[u8],
    act: F,
) -> Result<HttpResponse, ApiError>
where
    F: Future<Output = Result<HttpResponse, ApiError>>,
{
    let key = match req.headers().get(IDEMPOTENCY_KEY) {
        None => String::new(),
        Some(v) => v
            .to_str()
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::bad_field(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters",
                )
            })?
            .to_owned(),
    };
    let begin = pb::BeginAdminWriteRequest {
        idempotency_key: key.clone(),
        fingerprint: fingerprint(req, body),
        action: format!(
            "{} {}",
            req.method(),
            req.match_pattern().unwrap_or_else(|| req.path().to_owned())
        ),
        target: req.path().to_owned(),
        request_id: caller.ctx.request_id.clone(),
    };
    let begun = state
        .downstreams
        .revenue()
        .begin_admin_write(state.downstreams.request(begin, &caller.ctx))
        .await?
        .into_inner();
    if let Some(replay) = begun.replay {
        let status = u16::try_from(replay.status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        let mut response = HttpResponse::build(status);
        response.insert_header((REPLAYED, "true"));
        if !replay.content_type.is_empty() {
            response.insert_header((CONTENT_TYPE, replay.content_type));
        }
        return Ok(response.body(replay.body));
    }
    let response = match act.await {
        Ok(response) => response,
        Err(e) => e.error_response(),
    };
    let (response, bytes) = split_body(response).await;
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let finish = pb::FinishAdminWriteRequest {
        audit_id: begun.audit_id,
        idempotency_key: key,
        response: Some(pb::StoredResponse {
            status: u32::from(response.status().as_u16()),
            content_type,
            body: bytes.to_vec(),
        }),
    };
    if let Err(e) = state
        .downstreams
        .revenue()
        .finish_admin_write(state.downstreams.request(finish, &caller.ctx))
        .await
    {
        // The write is done; its answer stands. A retry with the key sees
        // it in progress until the key is taken to be abandoned.
        tracing::warn!(error = %e, "recording an admin write's answer failed");
    }
    Ok(response.set_body(BoxBody::new(bytes)))
}

/// A response's body read into memory (admin answers are small).
async fn split_body(response: HttpResponse) -> (HttpResponse<()>, actix_web::web::Bytes) {
    let (response, body) = response.into_parts();
    let bytes = match body.try_into_bytes() {
        Ok(bytes) => bytes,
        Err(body) => actix_web::body::to_bytes(body).await.unwrap_or_default(),
    };
    (response, bytes)
}

/// A parsed JSON body as the bytes its fingerprint covers.
pub fn json_bytes<T: serde::Serialize>(body: &T) -> Vec<u8> {
    // Plain structs of strings and numbers: serialising cannot fail.
    serde_json::to_vec(body).unwrap_or_default()
}
