//! The one error type of the user service's boundary, and its gRPC form.

use common::error::{ErrorCode, FieldViolation, to_status};
use tonic::{Code, Status};

/// Everything a `user.v1` call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// One or more request fields are bad (400, `invalid_field`).
    #[error("invalid request")]
    InvalidFields(Vec<FieldViolation>),
    /// The email is registered already, in any letter case (409).
    #[error("email already registered")]
    EmailTaken,
    /// Unknown email or wrong password: one answer for both (401).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Unknown, expired, rotated or revoked refresh token (401).
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// No, or a bad, access token (401).
    #[error("invalid access token")]
    InvalidAccessToken,
    /// The caller's role or ownership does not allow this (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The signed-in user no longer exists (404).
    #[error("user not found")]
    UserNotFound,
    /// No social-login provider of that name is configured (404).
    #[error("no sign-in provider named {0:?}")]
    OAuthProviderNotFound(String),
    /// The provider could not be reached or misbehaved (503); the detail
    /// is logged, not sent.
    #[error("the sign-in provider is unavailable")]
    OAuthProvider(String),
    /// The provider redirected back with an error (400), e.g. the person
    /// declined.
    #[error("the sign-in provider answered {0}")]
    OAuthDenied(String),
    /// The provider refused the code or the PKCE verifier (400).
    #[error("the sign-in could not be completed: {0}")]
    OAuthExchange(String),
    /// The ID token failed validation (401).
    #[error("invalid ID token: {0}")]
    InvalidIdToken(String),
    /// The email belongs to an account and the provider does not assert it
    /// is verified (409): nothing is linked.
    #[error(
        "this email belongs to an account; sign in with its password, or use a provider that verifies the email"
    )]
    EmailUnverified,
    /// Too many password hashes are waiting already (503 with
    /// `retry-after`): a burst is turned away at once instead of timing out.
    #[error("too many sign-ins at once; try again shortly")]
    Busy,
    /// Anything else; logged with its chain, never sent to the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl UserError {
    /// One bad field.
    pub fn field(field: &str, description: impl Into<String>) -> Self {
        UserError::InvalidFields(vec![FieldViolation::new(field, description)])
    }
}

impl From<sea_orm::DbErr> for UserError {
    fn from(e: sea_orm::DbErr) -> Self {
        UserError::Internal(e.into())
    }
}

impl From<UserError> for Status {
    fn from(e: UserError) -> Self {
        let message = e.to_string();
        match e {
            UserError::InvalidFields(fields) => to_status(
                Code::InvalidArgument,
                ErrorCode::InvalidField,
                message,
                &fields,
            ),
            UserError::EmailTaken => {
                to_status(Code::AlreadyExists, ErrorCode::EmailTaken, message, &[])
            }
            UserError::InvalidCredentials => to_status(
                Code::Unauthenticated,
                ErrorCode::InvalidCredentials,
                message,
                &[],
            ),
            UserError::InvalidRefreshToken => to_status(
                Code::Unauthenticated,
                ErrorCode::InvalidRefreshToken,
                message,
                &[],
            ),
            UserError::InvalidAccessToken => {
                to_status(Code::Unauthenticated, ErrorCode::InvalidToken, message, &[])
            }
            UserError::Forbidden(_) => {
                to_status(Code::PermissionDenied, ErrorCode::Forbidden, message, &[])
            }
            UserError::UserNotFound => {
                to_status(Code::NotFound, ErrorCode::UserNotFound, message, &[])
            }
            UserError::OAuthProviderNotFound(_) => to_status(
                Code::NotFound,
                ErrorCode::OauthProviderNotFound,
                message,
                &[],
            ),
            UserError::OAuthProvider(detail) => {
                tracing::warn!(%detail, "sign-in provider failed");
                to_status(
                    Code::Unavailable,
                    ErrorCode::OauthProviderUnavailable,
                    message,
                    &[],
                )
            }
            UserError::OAuthDenied(_) => {
                to_status(Code::InvalidArgument, ErrorCode::OauthDenied, message, &[])
            }
            UserError::OAuthExchange(_) => to_status(
                Code::InvalidArgument,
                ErrorCode::OauthExchangeFailed,
                message,
                &[],
            ),
            UserError::InvalidIdToken(_) => to_status(
                Code::Unauthenticated,
                ErrorCode::InvalidIdToken,
                message,
                &[],
            ),
            UserError::EmailUnverified => to_status(
                Code::AlreadyExists,
                ErrorCode::EmailUnverified,
                message,
                &[],
            ),
            UserError::Busy => to_status(Code::Unavailable, ErrorCode::Busy, message, &[]),
            UserError::Internal(err) => {
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
