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
    pub code: String,
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
    reason: &str,
    message: impl Into<String>,
    violations: &[FieldViolation],
) -> Status {
    let mut details = ErrorDetails::with_error_info(
        reason,
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
pub fn from_status(status: &Status) -> (String, Vec<FieldViolation>) {
    let details = status.get_error_details();
    let code = details
        .error_info()
        .map(|info| info.reason.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| default_code(status.code()).to_owned());
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

/// The envelope code for a gRPC code without `ErrorInfo`.
pub fn default_code(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument | Code::OutOfRange => "invalid_request",
        Code::Unauthenticated => "unauthenticated",
        Code::PermissionDenied => "forbidden",
        Code::NotFound => "not_found",
        Code::AlreadyExists | Code::Aborted => "conflict",
        Code::FailedPrecondition => "failed_precondition",
        Code::ResourceExhausted => "overloaded",
        Code::Unavailable => "service_unavailable",
        Code::DeadlineExceeded => "upstream_timeout",
        _ => "internal_error",
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
            "invalid_field",
            "bad email",
            &[FieldViolation::new("email", "not an email address")],
        );
        let (code, fields) = from_status(&status);
        assert_eq!(code, "invalid_field");
        assert_eq!(
            fields,
            vec![FieldViolation::new("email", "not an email address")]
        );
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    #[test]
    fn plain_status_gets_a_code_from_the_grpc_code() {
        let (code, fields) = from_status(&Status::unavailable("down"));
        assert_eq!(code, "service_unavailable");
        assert!(fields.is_empty());
    }
}
