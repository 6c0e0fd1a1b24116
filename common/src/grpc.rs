//! Metadata that crosses service boundaries, and the service credential
//! (SPEC §9).

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tonic::{Request, Status, metadata::MetadataMap};

/// The caller's access token, as `Bearer <jwt>`.
pub const AUTHORIZATION: &str = "authorization";
/// The request id, the same as the HTTP `x-request-id` (SPEC §8).
pub const REQUEST_ID: &str = "x-request-id";
/// The end user's IP address as the gateway determined it (SPEC §4).
pub const CLIENT_IP: &str = "x-client-ip";
/// The shared secret that proves a call comes from a platform service.
pub const SERVICE_CREDENTIAL: &str = "x-service-credential";

/// The request id carried in `metadata`, or `"-"` when there is none.
pub fn request_id(metadata: &MetadataMap) -> String {
    metadata
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

/// The bearer token in `metadata`, if any.
pub fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// A tonic interceptor that admits only calls carrying the service
/// credential, compared in constant time.
#[derive(Clone)]
pub struct RequireServiceCredential {
    expected: SecretString,
}

impl RequireServiceCredential {
    /// Admits calls whose `x-service-credential` equals `expected`.
    pub fn new(expected: SecretString) -> Self {
        Self { expected }
    }

    /// # Errors
    /// `UNAUTHENTICATED` when the credential is missing or wrong.
    #[allow(clippy::result_large_err)]
    pub fn check<T>(&self, request: Request<T>) -> Result<Request<T>, Status> {
        let given = request
            .metadata()
            .get(SERVICE_CREDENTIAL)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if bool::from(given.ct_eq(self.expected.expose_secret().as_bytes())) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "missing or wrong service credential",
            ))
        }
    }
}

impl tonic::service::Interceptor for RequireServiceCredential {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(request)
    }
}
