//! Request-body extraction with envelope errors: malformed JSON, or
//! anything after the JSON value → 400 with the field in `details` where one
//! can be named; a body that is not `application/json` → 415; a body over
//! the limit → 413 (SPEC §8).

use std::future::Future;
use std::pin::Pin;

use actix_web::{
    FromRequest, HttpRequest, dev::Payload, error::PayloadError, http::StatusCode, web,
};
use serde::de::DeserializeOwned;

use common::error::ErrorCode;

use crate::error::ApiError;

/// A JSON body of type `T`. An empty body reads as `{}`; any other must be
/// sent as `application/json` and hold one JSON value and nothing after it.
pub struct JsonBody<T>(pub T);

/// Whether the request says its body is JSON: `application/json`, with or
/// without parameters such as `charset`.
fn declares_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        let json = declares_json(req);
        Box::pin(async move {
            let bytes = bytes.await.map_err(body_error)?;
            let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
                b"{}"
            } else if json {
                &bytes
            } else {
                let mut e = ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::UnsupportedMediaType,
                    "the body must be sent as content-type: application/json",
                );
                e.details.push(common::error::FieldViolation::new(
                    "content-type",
                    "must be application/json",
                ));
                return Err(e);
            };
            let de = &mut serde_json::Deserializer::from_slice(text);
            let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let field = if path == "." || path == "?" || path.is_empty() {
                    missing_field(&inner.to_string()).unwrap_or_else(|| "body".to_owned())
                } else {
                    path
                };
                malformed(&field, inner.to_string())
            })?;
            de.end().map_err(|e| {
                malformed("body", format!("nothing may follow the JSON value: {e}"))
            })?;
            Ok(JsonBody(value))
        })
    }
}

/// 400 `malformed_json` naming `field`.
fn malformed(field: &str, description: String) -> ApiError {
    let mut err = ApiError::bad_field(field, description);
    err.code = ErrorCode::MalformedJson;
    err
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn body_error(e: actix_web::Error) -> ApiError {
    let too_large = e
        .as_error::<PayloadError>()
        .is_some_and(|p| matches!(p, PayloadError::Overflow));
    if too_large || e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "request body over the size limit",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadBody,
            "the request body could not be read",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_field_is_named() {
        assert_eq!(
            missing_field("missing field `email` at line 1 column 2").as_deref(),
            Some("email")
        );
        assert_eq!(missing_field("expected value"), None);
    }
}
