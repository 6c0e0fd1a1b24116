//! The one error type of the revenue service's boundary, and its gRPC form
//! (SPEC §8).

use common::error::{ErrorCode, FieldViolation, to_status};
use tonic::{Code, Status};

/// Everything a `revenue.v1` call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RevenueError {
    /// One or more request fields are bad (400, `invalid_field`).
    #[error("invalid request")]
    InvalidFields(Vec<FieldViolation>),
    /// No, or a bad, access token (401).
    #[error("invalid access token")]
    InvalidAccessToken,
    /// The caller's role or ownership does not allow this (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such run or video (404): what was looked for, and its code.
    #[error("{0} not found")]
    NotFound(&'static str, ErrorCode),
    /// The request conflicts with the state of things (409): its code and
    /// message. `retry` marks a conflict that passes (ABORTED) rather than
    /// one that stays (ALREADY_EXISTS).
    #[error("{1}")]
    Conflict(ErrorCode, String, bool),
    /// A dependency cannot be reached (503).
    #[error("{0} is unavailable; try again shortly")]
    Unavailable(&'static str),
    /// Anything else; logged, never sent to the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl RevenueError {
    /// One bad field.
    pub fn field(field: &str, description: impl Into<String>) -> Self {
        RevenueError::InvalidFields(vec![FieldViolation::new(field, description)])
    }
}

impl From<sea_orm::DbErr> for RevenueError {
    fn from(e: sea_orm::DbErr) -> Self {
        RevenueError::Internal(e.into())
    }
}

impl From<RevenueError> for Status {
    fn from(e: RevenueError) -> Self {
        let message = e.to_string();
        match e {
            RevenueError::InvalidFields(fields) => to_status(
                Code::InvalidArgument,
                ErrorCode::InvalidField,
                message,
                &fields,
            ),
            RevenueError::InvalidAccessToken => {
                to_status(Code::Unauthenticated, ErrorCode::InvalidToken, message, &[])
            }
            RevenueError::Forbidden(_) => {
                to_status(Code::PermissionDenied, ErrorCode::Forbidden, message, &[])
            }
            RevenueError::NotFound(_, code) => to_status(Code::NotFound, code, message, &[]),
            RevenueError::Conflict(code, _, retry) => to_status(
                if retry {
                    Code::Aborted
                } else {
                    Code::AlreadyExists
                },
                code,
                message,
                &[],
            ),
            RevenueError::Unavailable(_) => to_status(
                Code::Unavailable,
                ErrorCode::ServiceUnavailable,
                message,
                &[],
            ),
            RevenueError::Internal(err) => {
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
