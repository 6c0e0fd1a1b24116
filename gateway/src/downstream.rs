//! Channels to the gRPC services and the metadata every call carries: the
//! caller's token, the request id and the client IP per call; the service
//! credential and the trace context by the outbound tower layers every
//! channel is built with ([`common::grpc::client`]) (SPEC §9).

use std::{net::IpAddr, time::Duration};

use common::discovery::{ConfigureEndpoint, Downstream, names};
use common::grpc::{PlatformChannel, layers::OutboundLayer};
use proto::{
    revenue::v1::revenue_service_client::RevenueServiceClient,
    streaming::v1::streaming_service_client::StreamingServiceClient,
    user::v1::user_service_client::UserServiceClient,
};
use tonic::{
    metadata::MetadataValue,
    transport::{Channel, Endpoint},
};

use crate::config::Settings;

/// What a downstream call needs to know about the HTTP request.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The request id.
    pub request_id: String,
    /// The client IP (SPEC §4).
    pub client_ip: IpAddr,
    /// The caller's raw access token, when signed in.
    pub bearer: Option<String>,
}

/// Where the downstreams are and how to reach them: parsed once at start.
/// Each is one static URL, a static list or a Consul service
/// ([`common::discovery`]); the discovery tasks run on the runtime `new` is
/// called on.
#[derive(Clone)]
pub struct DownstreamConfig {
    user: Downstream,
    streaming: Downstream,
    revenue: Downstream,
    /// Puts the service credential and the trace context on every call.
    outbound: OutboundLayer,
    request_timeout: Duration,
}

impl DownstreamConfig {
    /// # Errors
    /// A malformed service URL or Consul address; no service credential,
    /// or one that is not a valid header value.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let configure = endpoint_settings(settings);
        let downstream = |name: &str, urls: &str| {
            Downstream::new(name, urls, &settings.discovery, configure.clone())
        };
        Ok(Self {
            user: downstream(names::USER, &settings.gateway_user_service_url)?,
            streaming: downstream(names::STREAMING, &settings.gateway_streaming_service_url)?,
            revenue: downstream(names::REVENUE, &settings.gateway_revenue_service_url)?,
            outbound: OutboundLayer::new(
                settings
                    .service_credential
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("SERVICE_CREDENTIAL is required"))?,
            )?,
            request_timeout: Duration::from_millis(settings.gateway_request_timeout_ms),
        })
    }

    /// Lazily connecting channels: nothing is dialled before the first call,
    /// so the gateway starts whether or not its downstreams are up. The
    /// channels' connection tasks run on the runtime this is called on, so
    /// each HTTP worker connects for itself and a call never leaves its
    /// worker thread.
    pub fn connect_lazy(&self) -> Downstreams {
        let raw = [&self.user, &self.streaming, &self.revenue].map(Downstream::channel);
        let [user, streaming, revenue] = raw.clone().map(|c| self.outbound.channel(c));
        Downstreams {
            user,
            streaming,
            revenue,
            raw,
            request_timeout: self.request_timeout,
        }
    }
}

/// The largest response the gateway reads from the revenue service: a
/// creator's earnings list every video of the period (64 MiB is about two
/// million videos; tonic's default, 4 MiB, is about 140,000).
pub const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;

/// The gateway's downstream clients.
#[derive(Clone)]
pub struct Downstreams {
    user: PlatformChannel,
    streaming: PlatformChannel,
    revenue: PlatformChannel,
    /// The same channels without the layers, for `grpc.health.v1` checks.
    raw: [Channel; 3],
    request_timeout: Duration,
}

impl Downstreams {
    /// A client of `user.v1.UserService`.
    pub fn users(&self) -> UserServiceClient<PlatformChannel> {
        UserServiceClient::new(self.user.clone())
    }

    /// A client of `streaming.v1.StreamingService`.
    pub fn streaming(&self) -> StreamingServiceClient<PlatformChannel> {
        StreamingServiceClient::new(self.streaming.clone())
    }

    /// A client of `revenue.v1.RevenueService`, reading reports of up to
    /// [`MAX_REPORT_BYTES`].
    pub fn revenue(&self) -> RevenueServiceClient<PlatformChannel> {
        RevenueServiceClient::new(self.revenue.clone()).max_decoding_message_size(MAX_REPORT_BYTES)
    }

    /// Each downstream's name and raw channel (for health checks).
    pub fn channels(&self) -> [(&'static str, Channel); 3] {
        let [user, streaming, revenue] = self.raw.clone();
        [
            ("user_service", user),
            ("streaming_service", streaming),
            ("revenue_service", revenue),
        ]
    }

    /// Wraps `message` with the call metadata and the deadline of
    /// `GATEWAY_REQUEST_TIMEOUT_MS`.
    pub fn request<T>(&self, message: T, ctx: &CallContext) -> tonic::Request<T> {
        self.request_within(message, ctx, self.request_timeout)
    }

    /// Wraps `message` with the call metadata and a deadline of `timeout`
    /// (sent as `grpc-timeout`: the called service stops working on it when
    /// it passes).
    pub fn request_within<T>(
        &self,
        message: T,
        ctx: &CallContext,
        timeout: Duration,
    ) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        let md = request.metadata_mut();
        if let Ok(v) = MetadataValue::try_from(ctx.request_id.as_str()) {
            md.insert(common::grpc::REQUEST_ID, v);
        }
        if let Ok(v) = MetadataValue::try_from(ctx.client_ip.to_string()) {
            md.insert(common::grpc::CLIENT_IP, v);
        }
        if let Some(token) = &ctx.bearer
            && let Ok(v) = MetadataValue::try_from(format!("Bearer {token}"))
        {
            md.insert(common::grpc::AUTHORIZATION, v);
        }
        request
    }
}

/// Connect timeout and keep-alive of every downstream endpoint (each call
/// carries its own deadline: [`Downstreams::request`]).
fn endpoint_settings(settings: &Settings) -> ConfigureEndpoint {
    let connect = Duration::from_millis(settings.gateway_connect_timeout_ms);
    std::sync::Arc::new(move |endpoint: Endpoint| {
        endpoint
            .connect_timeout(connect)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
    })
}
