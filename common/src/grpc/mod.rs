//! Metadata that crosses service boundaries, the service credential (SPEC
//! §9), and the one set-up of gRPC servers ([`serve`]) and clients
//! ([`client`]) with their tower layers ([`layers`]).

pub mod health;
pub mod layers;

pub use layers::{PlatformChannel, client};

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

/// The largest daily-counts import, bytes of CSV (8 MiB: 100,000 rows of
/// the longest fields fit). The gateway refuses a larger body with 413 and
/// the streaming service decodes a message of this size plus
/// [`MESSAGE_OVERHEAD_BYTES`], so the two limits cannot disagree.
pub const MAX_IMPORT_BYTES: usize = 8 * 1024 * 1024;

/// Room for a message's fields beyond its largest text field, bytes.
pub const MESSAGE_OVERHEAD_BYTES: usize = 64 * 1024;

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

/// A time as a protobuf `Timestamp`.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> proto::prost_types::Timestamp {
    proto::prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Server reflection (v1 and v1alpha) over every platform proto and
/// `grpc.health.v1`, as each service serves it (SPEC §9).
///
/// # Errors
/// A descriptor set that does not decode (a build problem).
pub fn reflection_services() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
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

/// How much work a gRPC server takes on at once (`GRPC_*` settings, the
/// same names in every service).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct ServeLimits {
    /// `GRPC_MAX_CONCURRENT_CALLS`: calls in progress at once in this
    /// process (default 4,096: a burst of a thousand plays at once still
    /// queues on the database pool rather than being shed). A call beyond them is refused at once with
    /// `RESOURCE_EXHAUSTED` (load shedding; the gateway answers 503 with
    /// `retry-after`) instead of queueing until its deadline.
    #[serde(default = "default_max_concurrent_calls")]
    pub grpc_max_concurrent_calls: usize,
    /// `GRPC_CALL_TIMEOUT_SECONDS`: the longest any call may run, whatever
    /// deadline its caller sent (default 300).
    #[serde(default = "default_call_timeout")]
    pub grpc_call_timeout_seconds: u64,
    /// `GRPC_HEALTH_INTERVAL_MS`: how often the service checks its
    /// database and Redis for its gRPC health status (default 1,000 ms;
    /// [`health`]).
    #[serde(default = "default_health_interval_ms")]
    pub grpc_health_interval_ms: u64,
    /// `GRPC_DRAIN_SECONDS`: after SIGTERM, how long the service keeps
    /// serving while its health says NOT_SERVING, so that balancers move
    /// away before the listener closes (default 5; 0 in tests).
    #[serde(default = "default_drain_seconds")]
    pub grpc_drain_seconds: u64,
}

fn default_health_interval_ms() -> u64 {
    1_000
}

fn default_drain_seconds() -> u64 {
    5
}

fn default_max_concurrent_calls() -> usize {
    4_096
}
fn default_call_timeout() -> u64 {
    300
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            grpc_max_concurrent_calls: default_max_concurrent_calls(),
            grpc_call_timeout_seconds: default_call_timeout(),
            grpc_health_interval_ms: default_health_interval_ms(),
            grpc_drain_seconds: default_drain_seconds(),
        }
    }
}

/// Serves `service` behind the service-credential check
/// ([`RequireServiceCredential`]), beside `grpc.health.v1` and server
/// reflection, on `listener` until `stop` resolves; then reports
/// NOT_SERVING for `limits.grpc_drain_seconds` while still serving, and
/// finishes the calls in flight (SPEC §9). The health status is SERVING
/// only while every one of `dependencies` answers ([`health::report`]). The one gRPC server set-up
/// of the three services: its tower layers shed load past
/// `limits.grpc_max_concurrent_calls` calls at once (health and reflection
/// count too, so a saturated instance also reports itself busy to
/// discovery) and bound every call by `limits.grpc_call_timeout_seconds`.
///
/// # Errors
/// A reflection descriptor that does not decode; the server fails.
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    credential: SecretString,
    service: S,
    limits: ServeLimits,
    dependencies: health::Dependencies,
    stop: impl Future<Output = ()> + Send,
) -> anyhow::Result<()>
where
    S: tonic::codegen::Service<
            tonic::codegen::http::Request<tonic::body::Body>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let (reporter, health) = tonic_health::server::health_reporter();
    let stop = health::report(
        reporter,
        S::NAME,
        dependencies,
        std::time::Duration::from_millis(limits.grpc_health_interval_ms.max(10)),
        std::time::Duration::from_secs(limits.grpc_drain_seconds),
        stop,
    )
    .await;
    let (reflection, reflection_v1alpha) = reflection_services()?;
    let incoming = incoming(listener);
    let shed = tower::ServiceBuilder::new().load_shed().layer(
        tower::limit::GlobalConcurrencyLimitLayer::new(limits.grpc_max_concurrent_calls.max(1)),
    );
    tonic::transport::Server::builder()
        .trace_fn(crate::telemetry::grpc_span)
        .timeout(std::time::Duration::from_secs(
            limits.grpc_call_timeout_seconds.max(1),
        ))
        .layer(shed)
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            service,
            RequireServiceCredential::new(credential),
        ))
        .serve_with_incoming_shutdown(incoming, stop)
        .await?;
    Ok(())
}

/// The connections `listener` accepts, each with `TCP_NODELAY` set.
///
/// A gRPC answer is written as several HTTP/2 frames (headers, data,
/// trailers); without `TCP_NODELAY` Nagle's algorithm holds the last small
/// frame until the client acknowledges the previous one, which Linux delays
/// up to 40 ms: one call in a few then took 40–50 ms instead of 1.
/// (`Server::tcp_nodelay` does not apply to `serve_with_incoming`.)
pub fn incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use futures::StreamExt;

    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = super::incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap());
        // A plain listener's connections do not: the option is what the
        // function adds.
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = tokio::net::TcpStream::connect(plain.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = plain.accept().await.unwrap();
        assert!(!stream.nodelay().unwrap());
    }
}
