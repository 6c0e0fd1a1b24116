//! Channels to the gRPC services and the metadata every call carries: the
//! caller's token, the request id, the client IP and the service credential
//! (SPEC §9).

use std::{net::IpAddr, time::Duration};

use common::discovery::{ConfigureEndpoint, Downstream, names};
use proto::{
    revenue::v1::revenue_service_client::RevenueServiceClient,
    streaming::v1::streaming_service_client::StreamingServiceClient,
    user::v1::user_service_client::UserServiceClient,
};
use secrecy::{ExposeSecret, SecretString};
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
    credential: SecretString,
    request_timeout: Duration,
}

impl DownstreamConfig {
    /// # Errors
    /// A malformed service URL or Consul address; no service credential.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let configure = endpoint_settings(settings);
        let downstream = |name: &str, urls: &str| {
            Downstream::new(name, urls, &settings.discovery, configure.clone())
        };
        Ok(Self {
            user: downstream(names::USER, &settings.gateway_user_service_url)?,
            streaming: downstream(names::STREAMING, &settings.gateway_streaming_service_url)?,
            revenue: downstream(names::REVENUE, &settings.gateway_revenue_service_url)?,
            credential: settings
                .service_credential
                .clone()
                .ok_or_else(|| anyhow::anyhow!("SERVICE_CREDENTIAL is required"))?,
            request_timeout: Duration::from_millis(settings.gateway_request_timeout_ms),
        })
    }

    /// Lazily connecting channels: nothing is dialled before the first call,
    /// so the gateway starts whether or not its downstreams are up. The
    /// channels' connection tasks run on the runtime this is called on, so
    /// each HTTP worker connects for itself and a call never leaves its
    /// worker thread.
    pub fn connect_lazy(&self) -> Downstreams {
        Downstreams {
            user_channel: self.user.channel(),
            streaming_channel: self.streaming.channel(),
            revenue_channel: self.revenue.channel(),
            credential: self.credential.clone(),
            request_timeout: self.request_timeout,
        }
    }
}

/// The gateway's downstream clients.
#[derive(Clone)]
pub struct Downstreams {
    user_channel: Channel,
    streaming_channel: Channel,
    revenue_channel: Channel,
    credential: SecretString,
    request_timeout: Duration,
}

impl Downstreams {
    /// A client of `user.v1.UserService`.
    pub fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.user_channel.clone())
    }

    /// A client of `streaming.v1.StreamingService`.
    pub fn streaming(&self) -> StreamingServiceClient<Channel> {
        StreamingServiceClient::new(self.streaming_channel.clone())
    }

    /// A client of `revenue.v1.RevenueService`.
    pub fn revenue(&self) -> RevenueServiceClient<Channel> {
        RevenueServiceClient::new(self.revenue_channel.clone())
    }

    /// Each downstream's name and raw channel (for health checks).
    pub fn channels(&self) -> [(&'static str, Channel); 3] {
        [
            ("user_service", self.user_channel.clone()),
            ("streaming_service", self.streaming_channel.clone()),
            ("revenue_service", self.revenue_channel.clone()),
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
        if let Ok(v) = MetadataValue::try_from(self.credential.expose_secret()) {
            md.insert(common::grpc::SERVICE_CREDENTIAL, v);
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
