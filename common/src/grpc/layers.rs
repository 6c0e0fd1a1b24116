//! The tower layers every platform gRPC call goes through, composed in one
//! place each way:
//!
//! - clients ([`client`]): [`OutboundLayer`] puts the service credential
//!   and the W3C trace context (`traceparent`, when tracing export is on)
//!   on every call, so no call site handles either;
//! - servers ([`super::serve`]): load shedding past a process-wide
//!   concurrency limit (`LoadShedLayer` over `GlobalConcurrencyLimitLayer`),
//!   a bound on every call (tonic's `Server::timeout`, itself a tower
//!   timeout layer), the service-credential check
//!   ([`super::RequireServiceCredential`], a tonic interceptor layer on the
//!   platform service only: health and reflection stay open to probes), and
//!   the trace context read back into each call's span
//!   ([`crate::telemetry::grpc_span`]).

use std::task::{Context, Poll};

use secrecy::{ExposeSecret, SecretString};
use tonic::{
    codegen::http::{self, HeaderValue},
    transport::Channel,
};
use tower::{Layer, Service};

/// A channel to a platform service with the outbound layers on: what every
/// generated client is built over (`FooServiceClient<PlatformChannel>`).
pub type PlatformChannel = Outbound<Channel>;

/// `channel` with the outbound layers: every call carries `credential` in
/// `x-service-credential` and the caller's trace context.
///
/// # Errors
/// A credential that is not a valid header value (a control character).
pub fn client(channel: Channel, credential: &SecretString) -> anyhow::Result<PlatformChannel> {
    Ok(OutboundLayer::new(credential)?.channel(channel))
}

/// Adds the service credential and the trace context to each request.
#[derive(Clone)]
pub struct OutboundLayer {
    credential: HeaderValue,
}

impl OutboundLayer {
    /// A layer presenting `credential`.
    ///
    /// # Errors
    /// A credential that is not a valid header value.
    pub fn new(credential: &SecretString) -> anyhow::Result<Self> {
        let mut credential = HeaderValue::from_str(credential.expose_secret())
            .map_err(|_| anyhow::anyhow!("SERVICE_CREDENTIAL is not a valid header value"))?;
        credential.set_sensitive(true);
        Ok(Self { credential })
    }

    /// `channel` with this layer on.
    pub fn channel(&self, channel: Channel) -> PlatformChannel {
        self.layer(channel)
    }
}

impl<S> Layer<S> for OutboundLayer {
    type Service = Outbound<S>;

    fn layer(&self, inner: S) -> Outbound<S> {
        Outbound {
            inner,
            credential: self.credential.clone(),
        }
    }
}

/// The service [`OutboundLayer`] makes.
#[derive(Clone)]
pub struct Outbound<S> {
    inner: S,
    credential: HeaderValue,
}

impl<S, B> Service<http::Request<B>> for Outbound<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let headers = request.headers_mut();
        headers.insert(super::SERVICE_CREDENTIAL, self.credential.clone());
        crate::telemetry::inject_trace_context(headers);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    #[tokio::test]
    async fn every_request_carries_the_credential() {
        let seen = tower::service_fn(|request: http::Request<()>| async move {
            Ok::<_, Infallible>(
                request
                    .headers()
                    .get(super::super::SERVICE_CREDENTIAL)
                    .cloned(),
            )
        });
        let credential = SecretString::from("s3cret");
        let mut service = OutboundLayer::new(&credential)
            .map(|layer| layer.layer(seen))
            .ok();
        let header = match service.as_mut() {
            Some(service) => service.call(http::Request::new(())).await.ok().flatten(),
            None => None,
        };
        assert_eq!(
            header.as_ref().map(HeaderValue::as_bytes),
            Some(&b"s3cret"[..])
        );
        assert!(header.is_some_and(|h| h.is_sensitive()));
        assert!(OutboundLayer::new(&SecretString::from("bad\nvalue")).is_err());
    }
}
