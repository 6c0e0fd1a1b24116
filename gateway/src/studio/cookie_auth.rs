//! Authenticating a browser by its Studio session cookie (issue 21, item 6):
//! the session's access token stands in for a bearer token, a
//! state-changing request must echo the session's CSRF token, and the
//! tokens are renewed shortly before the access token expires.

use std::time::Duration;

use actix_web::HttpRequest;
use chrono::Utc;
use proto::user::v1 as pb;
use subtle::ConstantTimeEq;

use super::session::{CSRF_HEADER, Session};
use crate::{auth::call_context, error::ApiError, startup::AppState};

/// Tokens are renewed when the access token has fewer seconds left than
/// this.
pub const RENEW_BEFORE_SECONDS: i64 = 60;

/// How long one renewal may hold the session's renewal lock.
const RENEW_LOCK: Duration = Duration::from_secs(10);

/// The access token of the request's session: `None` without a session
/// cookie.
///
/// # Errors
/// 401 for a cookie naming no live session (signed out, expired, forged);
/// 403 for a state-changing request (any method but GET, HEAD, OPTIONS)
/// without the session's CSRF token in `x-csrf-token`; 503 when the session
/// store is unreachable.
pub async fn session_token(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<String>, ApiError> {
    let Some(id) = super::cookie_value(req, super::session::COOKIE) else {
        return Ok(None);
    };
    let id = id.as_str();
    let Some(session) = state.sessions.get(id).await? else {
        return Err(ApiError::unauthenticated());
    };
    if !req.method().is_safe() {
        check_csrf(req, &session)?;
    }
    let left = session.access_expires_at - Utc::now().timestamp();
    if left < RENEW_BEFORE_SECONDS && state.sessions.try_lock_refresh(id, RENEW_LOCK).await? {
        return renew(req, state, id, session, left).await.map(Some);
    }
    Ok(Some(session.access_token))
}

/// 403 unless the request's `x-csrf-token` equals the session's.
///
/// # Errors
/// 403 `forbidden`.
pub fn check_csrf(req: &HttpRequest, session: &Session) -> Result<(), ApiError> {
    let sent = req
        .headers()
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if bool::from(sent.ct_eq(session.csrf_token.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "a signed-in browser's state-changing request must carry its session's x-csrf-token",
        ))
    }
}

/// Rotates the session's tokens; a refused refresh (family revoked) ends
/// the session, any other failure keeps the current access token while it
/// is valid.
async fn renew(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    mut session: Session,
    left: i64,
) -> Result<String, ApiError> {
    let ctx = call_context(req, None);
    let message = pb::RefreshRequest {
        refresh_token: session.refresh_token.clone(),
    };
    match state
        .downstreams
        .users()
        .refresh(state.downstreams.request(message, &ctx))
        .await
    {
        Ok(tokens) => {
            let tokens = tokens.into_inner();
            session.access_expires_at = Utc::now().timestamp() + tokens.expires_in;
            session.access_token = tokens.access_token;
            session.refresh_token = tokens.refresh_token;
            state.sessions.update(id, &session).await?;
            Ok(session.access_token)
        }
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            state.sessions.delete(id).await?;
            Err(ApiError::unauthenticated())
        }
        Err(status) if left > 0 => {
            tracing::warn!(error = %status, "renewing a studio session failed; its token is still valid");
            Ok(session.access_token)
        }
        Err(status) => Err(status.into()),
    }
}
