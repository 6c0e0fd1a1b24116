//! The error envelope of SPEC §8 and how a service error crosses gRPC.
//!
//! A service turns its error into a [`tonic::Status`] with [`to_status`]: the
//! standard code, a message safe to show, a stable snake_case code in
//! `google.rpc.ErrorInfo.reason`, and bad fields as `google.rpc.BadRequest`
//! violations. The gateway reads them back with [`from_status`] and renders
//! an [`ErrorEnvelope`].

use serde::{Deserialize, Serialize};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use utoipa::ToSchema;

/// `ErrorInfo.domain` of every platform error.
pub const ERROR_DOMAIN: &str = "streaming-settlement-platform";

crate::domain::text_enum! {
    /// Every error code of the platform: the envelope's `code` and the
    /// `google.rpc.ErrorInfo.reason` a service puts on its gRPC status (SPEC
    /// §8). Stable; serialized snake_case (`InvalidField` is `invalid_field`).
    pub enum ErrorCode {
        /// A field is missing or invalid; `details` names it (400).
        InvalidField,
        /// The request is invalid as a whole (400).
        InvalidRequest,
        /// The request could not be read (400).
        BadRequest,
        /// The body could not be read (400).
        BadBody,
        /// The JSON body is malformed, not an object, or has trailing data;
        /// `details` names the field (400).
        MalformedJson,
        /// Missing, malformed, expired or forged access token (401).
        InvalidToken,
        /// Authentication failed without a more precise reason (401).
        Unauthenticated,
        /// Wrong e-mail or password (401).
        InvalidCredentials,
        /// The refresh token is unknown, expired or already used (401).
        InvalidRefreshToken,
        /// The provider's ID token did not verify (401).
        InvalidIdToken,
        /// The caller's role or ownership does not allow this (403).
        Forbidden,
        /// No such resource (404).
        NotFound,
        /// No such user (404).
        UserNotFound,
        /// No such video (404).
        VideoNotFound,
        /// No such play session, or it expired (404).
        SessionNotFound,
        /// No such settlement run (404).
        RunNotFound,
        /// No such social-login provider (404).
        OauthProviderNotFound,
        /// The e-mail address has an account already (409).
        EmailTaken,
        /// The provider did not verify the e-mail address of an existing
        /// account (409).
        EmailUnverified,
        /// The request conflicts with the resource's state (409).
        Conflict,
        /// The resource is not in a state that allows this (409).
        FailedPrecondition,
        /// The `Idempotency-Key` came before with another request (409,
        /// SPEC §11.6).
        IdempotencyKeyReused,
        /// The first request with this `Idempotency-Key` is still being
        /// answered (409); retry shortly.
        IdempotencyKeyInProgress,
        /// Another settlement holds a day this change needs (409); retry
        /// shortly.
        SettlementBusy,
        /// A day of the month is not settled and final yet (409); the message
        /// names the first (SPEC §11.4).
        MonthNotFinal,
        /// Months close in order (409); the message says which to close.
        MonthOutOfOrder,
        /// No such statement (404).
        StatementNotFound,
        /// The statement was recorded paid already, with another reference
        /// (409).
        StatementAlreadyPaid,
        /// The statement carried its balance over: nothing was paid (409).
        NothingToPay,
        /// The user denied the social login (400).
        OauthDenied,
        /// The authorization code could not be exchanged (400).
        OauthExchangeFailed,
        /// The social-login provider cannot be reached (503).
        OauthProviderUnavailable,
        /// The method is not allowed on this path (405).
        MethodNotAllowed,
        /// The body is over the size limit (413).
        PayloadTooLarge,
        /// The content type is not accepted (415).
        UnsupportedMediaType,
        /// Too many or too large request headers (431).
        RequestHeaderFieldsTooLarge,
        /// Too many requests from this client; see `retry-after` (429).
        RateLimited,
        /// The service is at capacity for this kind of work (503).
        Busy,
        /// A downstream is not ready yet (503).
        NotReady,
        /// A downstream service is unavailable (503).
        ServiceUnavailable,
        /// A downstream service shed the call under load (503).
        ServiceOverloaded,
        /// A downstream service timed out (504).
        UpstreamTimeout,
        /// Anything else; never details (500).
        InternalError,
    }
}

/// One bad input field: which (`field`, e.g. `"email"`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldViolation {
    /// The field's name as the client sent it.
    pub field: String,
    /// Why it was refused.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field` for `description`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Every error response body: `{"error": {...}}` (SPEC §8).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The inside of [`ErrorEnvelope`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable, snake_case (e.g. `invalid_field`).
    pub code: ErrorCode,
    /// For people; never a secret or a stack trace.
    pub message: String,
    /// The request's `x-request-id`.
    pub request_id: String,
    /// Bad fields, for 400; empty otherwise.
    pub details: Vec<FieldViolation>,
}

/// Encodes a service error as a gRPC status.
pub fn to_status(
    code: Code,
    reason: ErrorCode,
    message: impl Into<String>,
    violations: &[FieldViolation],
) -> Status {
    let mut details = ErrorDetails::with_error_info(
        reason.as_str(),
        ERROR_DOMAIN,
        std::collections::HashMap::<String, String>::new(),
    );
    for v in violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(code, message, details)
}

/// What a gRPC status says in envelope terms: the snake_case code (from
/// `ErrorInfo`, else derived from the gRPC code) and the bad fields.
pub fn from_status(status: &Status) -> (ErrorCode, Vec<FieldViolation>) {
    let details = status.get_error_details();
    let code = details
        .error_info()
        .and_then(|info| info.reason.parse::<ErrorCode>().ok())
        .unwrap_or_else(|| default_code(status.code()));
    let violations = details
        .bad_request()
        .map(|br| {
            br.field_violations
                .iter()
                .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                .collect()
        })
        .unwrap_or_default();
    (code, violations)
}

/// The envelope code for a gRPC code without `ErrorInfo` (or with a
/// reason this build does not know).
pub fn default_code(code: Code) -> ErrorCode {
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorCode::InvalidRequest,
        Code::Unauthenticated => ErrorCode::Unauthenticated,
        Code::PermissionDenied => ErrorCode::Forbidden,
        Code::NotFound => ErrorCode::NotFound,
        Code::AlreadyExists | Code::Aborted => ErrorCode::Conflict,
        Code::FailedPrecondition => ErrorCode::FailedPrecondition,
        Code::ResourceExhausted => ErrorCode::ServiceOverloaded,
        Code::Unavailable => ErrorCode::ServiceUnavailable,
        Code::DeadlineExceeded => ErrorCode::UpstreamTimeout,
        _ => ErrorCode::InternalError,
    }
}

/// `text` as a quoted excerpt for an error message: at most 40 characters
/// (then `…`), so that a huge bad value is not echoed back whole.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_long_values() {
        assert_eq!(excerpt("abc"), "\"abc\"");
        let long = "é".repeat(1_000);
        let shown = excerpt(&long);
        assert_eq!(shown.chars().count(), 40 + 3);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn status_round_trips_code_and_fields() {
        let status = to_status(
            Code::InvalidArgument,
            ErrorCode::InvalidField,
            "bad email",
            &[FieldViolation::new("email", "not an email address")],
        );
        let (code, fields) = from_status(&status);
        assert_eq!(code, ErrorCode::InvalidField);
        assert_eq!(
            serde_json::to_string(&code).ok(),
            Some("\"invalid_field\"".to_owned())
        );
        assert_eq!(
            fields,
            vec![FieldViolation::new("email", "not an email address")]
        );
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    #[test]
    fn plain_status_gets_a_code_from_the_grpc_code() {
        let (code, fields) = from_status(&Status::unavailable("down"));
        assert_eq!(code, ErrorCode::ServiceUnavailable);
        assert!(fields.is_empty());
    }
}
