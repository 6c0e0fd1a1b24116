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

impl UserError {
    /// The gRPC code and the envelope code of this error (SPEC §8).
    fn codes(&self) -> (Code, ErrorCode) {
        match self {
            UserError::InvalidFields(_) => (Code::InvalidArgument, ErrorCode::InvalidField),
            UserError::EmailTaken => (Code::AlreadyExists, ErrorCode::EmailTaken),
            UserError::InvalidCredentials => (Code::Unauthenticated, ErrorCode::InvalidCredentials),
            UserError::InvalidRefreshToken => {
                (Code::Unauthenticated, ErrorCode::InvalidRefreshToken)
            }
            UserError::InvalidAccessToken => (Code::Unauthenticated, ErrorCode::InvalidToken),
            UserError::Forbidden(_) => (Code::PermissionDenied, ErrorCode::Forbidden),
            UserError::UserNotFound => (Code::NotFound, ErrorCode::UserNotFound),
            UserError::OAuthProviderNotFound(_) => {
                (Code::NotFound, ErrorCode::OauthProviderNotFound)
            }
            UserError::OAuthProvider(_) => (Code::Unavailable, ErrorCode::OauthProviderUnavailable),
            UserError::OAuthDenied(_) => (Code::InvalidArgument, ErrorCode::OauthDenied),
            UserError::OAuthExchange(_) => (Code::InvalidArgument, ErrorCode::OauthExchangeFailed),
            UserError::InvalidIdToken(_) => (Code::Unauthenticated, ErrorCode::InvalidIdToken),
            UserError::EmailUnverified => (Code::AlreadyExists, ErrorCode::EmailUnverified),
            UserError::Busy => (Code::Unavailable, ErrorCode::Busy),
            UserError::Internal(_) => (Code::Internal, ErrorCode::InternalError),
        }
    }
}

impl From<UserError> for Status {
    fn from(e: UserError) -> Self {
        let (code, reason) = e.codes();
        let message = e.to_string();
        match e {
            UserError::InvalidFields(fields) => to_status(code, reason, message, &fields),
            UserError::OAuthProvider(detail) => {
                tracing::warn!(%detail, "sign-in provider failed");
                to_status(code, reason, message, &[])
            }
            // Logged, never sent: the message could name internals.
            UserError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                to_status(code, reason, "internal error", &[])
            }
            _ => to_status(code, reason, message, &[]),
        }
    }
}
