//! The one error type of the streaming service's boundary, and its gRPC
//! form (SPEC §8).

use common::error::{ErrorCode, FieldViolation, to_status};
use tonic::{Code, Status};

/// Everything a `streaming.v1` call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StreamingError {
    /// One or more request fields are bad (400, `invalid_field`).
    #[error("invalid request")]
    InvalidFields(Vec<FieldViolation>),
    /// A bad access token (401).
    #[error("invalid access token")]
    InvalidAccessToken,
    /// The call needs a signed-in user (401).
    #[error("sign in first")]
    SignInRequired,
    /// The caller's role does not allow this (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such video (404).
    #[error("video not found")]
    VideoNotFound,
    /// No such watch session for this viewer and video (404).
    #[error("watch session not found; start one with play")]
    SessionNotFound,
    /// The day's month of counts is archived (issue 19,
    /// [`crate::daily_counts::archive`]): gRPC `FAILED_PRECONDITION`.
    #[error("the month of {0} is archived: restore it first (streaming-service archive restore)")]
    MonthArchived(chrono::NaiveDate),
    /// The JWK Set or the counter store cannot be reached (503).
    #[error("{0} is unavailable; try again shortly")]
    Unavailable(&'static str),
    /// Anything else; logged with its chain, never sent to the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl StreamingError {
    /// One bad field.
    pub fn field(field: &str, description: impl Into<String>) -> Self {
        StreamingError::InvalidFields(vec![FieldViolation::new(field, description)])
    }
}

impl From<sea_orm::DbErr> for StreamingError {
    fn from(e: sea_orm::DbErr) -> Self {
        StreamingError::Internal(e.into())
    }
}

impl From<StreamingError> for Status {
    fn from(e: StreamingError) -> Self {
        let message = e.to_string();
        match e {
            StreamingError::InvalidFields(fields) => to_status(
                Code::InvalidArgument,
                ErrorCode::InvalidField,
                message,
                &fields,
            ),
            StreamingError::InvalidAccessToken | StreamingError::SignInRequired => {
                to_status(Code::Unauthenticated, ErrorCode::InvalidToken, message, &[])
            }
            StreamingError::Forbidden(_) => {
                to_status(Code::PermissionDenied, ErrorCode::Forbidden, message, &[])
            }
            StreamingError::VideoNotFound => {
                to_status(Code::NotFound, ErrorCode::VideoNotFound, message, &[])
            }
            StreamingError::SessionNotFound => {
                to_status(Code::NotFound, ErrorCode::SessionNotFound, message, &[])
            }
            StreamingError::MonthArchived(_) => to_status(
                Code::FailedPrecondition,
                ErrorCode::FailedPrecondition,
                message,
                &[],
            ),
            StreamingError::Unavailable(_) => to_status(
                Code::Unavailable,
                ErrorCode::ServiceUnavailable,
                message,
                &[],
            ),
            StreamingError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                to_status(
                    Code::Internal,
                    ErrorCode::InternalError,
                    "internal error",
                    &[],
                )
            }
        }
    }
}
