//! The gateway's one error type and the single place where gRPC codes become
//! HTTP statuses (SPEC §8).

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use common::error::{ErrorBody, ErrorCode, ErrorEnvelope, FieldViolation};
use tonic::Code;

/// An error answered to the client as the JSON envelope.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code.
    pub code: ErrorCode,
    /// Safe to show.
    pub message: String,
    /// Bad fields, for 400.
    pub details: Vec<FieldViolation>,
    /// Seconds for `retry-after` (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 naming one field.
    pub fn bad_field(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidField,
            format!("{field}: {description}"),
        );
        e.details.push(FieldViolation::new(field, description));
        e
    }

    /// 401 for a missing, malformed, expired or forged access token.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidToken,
            "missing, malformed, expired or forged access token",
        )
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    /// 503 with `retry-after`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            message,
        );
        e.retry_after = Some(1);
        e
    }

    /// Adds `retry-after`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// The HTTP status for a gRPC code (SPEC §8).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        // A downstream shedding load (its concurrency limit reached): like
        // a downstream down, try again shortly. The gateway's own rate
        // limits answer 429 themselves.
        Code::Unavailable | Code::ResourceExhausted => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded | Code::Cancelled => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let http = http_status(status.code());
        let (code, details) = common::error::from_status(&status);
        let message = match status.code() {
            Code::Unavailable => {
                "a downstream service is unavailable; try again shortly".to_owned()
            }
            Code::ResourceExhausted => {
                "a downstream service is overloaded; try again shortly".to_owned()
            }
            Code::DeadlineExceeded | Code::Cancelled => "a downstream service timed out".to_owned(),
            Code::Internal | Code::Unknown | Code::DataLoss | Code::Unimplemented => {
                tracing::error!(grpc_code = ?status.code(), message = status.message(), "downstream failure");
                "internal error".to_owned()
            }
            _ => status.message().to_owned(),
        };
        let code = match status.code() {
            // Transport failures carry no ErrorInfo; keep the codes stable.
            Code::Unavailable => ErrorCode::ServiceUnavailable,
            Code::ResourceExhausted => ErrorCode::ServiceOverloaded,
            Code::DeadlineExceeded | Code::Cancelled => ErrorCode::UpstreamTimeout,
            _ => code,
        };
        let retry_after =
            matches!(status.code(), Code::Unavailable | Code::ResourceExhausted).then_some(1);
        if http.is_server_error() {
            tracing::warn!(grpc_code = ?status.code(), message = status.message(), "downstream call failed");
        }
        Self {
            status: http,
            code,
            message,
            details,
            retry_after,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            builder.insert_header(("retry-after", seconds.to_string()));
        }
        builder.json(ErrorEnvelope {
            error: ErrorBody {
                code: self.code,
                message: self.message.clone(),
                request_id: crate::request_id::current(),
                details: self.details.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_status_is_mapped() {
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(http_status(Code::PermissionDenied), StatusCode::FORBIDDEN);
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(http_status(Code::AlreadyExists), StatusCode::CONFLICT);
        assert_eq!(
            http_status(Code::ResourceExhausted),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            http_status(Code::DeadlineExceeded),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            http_status(Code::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn internal_messages_are_not_echoed() {
        let e = ApiError::from(tonic::Status::internal("password column xyz broke"));
        assert_eq!(e.message, "internal error");
        let e = ApiError::from(tonic::Status::unavailable("tcp connect error 10.0.0.5"));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after, Some(1));
        assert!(!e.message.contains("10.0.0.5"));
    }
}
