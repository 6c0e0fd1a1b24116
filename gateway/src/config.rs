//! Settings of the gateway. Each field is set by the environment variable of
//! the same name in upper case, or by the `CONFIG_FILE` TOML file.

use std::net::{IpAddr, SocketAddr};

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// The gateway's settings, with the all-in-one defaults.
#[derive(Clone, Deserialize)]
pub struct Settings {
    /// `GATEWAY_ADDR`: where HTTP listens (default `127.0.0.1:8080`).
    #[serde(default = "default_addr")]
    pub gateway_addr: SocketAddr,
    /// `GATEWAY_WORKERS`: HTTP worker threads (default: one per core).
    #[serde(default)]
    pub gateway_workers: Option<usize>,
    /// `GATEWAY_USER_SERVICE_URL`: the user service's gRPC endpoint, or a
    /// comma-separated list of instances to balance over (default
    /// `http://127.0.0.1:50051`). Not used when `CONSUL_HTTP_ADDR` is set.
    #[serde(default = "default_user_service_url")]
    pub gateway_user_service_url: String,
    /// `GATEWAY_STREAMING_SERVICE_URL`: the streaming service's gRPC
    /// endpoint or a comma-separated list of instances (default
    /// `http://127.0.0.1:50052`). Not used when `CONSUL_HTTP_ADDR` is set.
    #[serde(default = "default_streaming_service_url")]
    pub gateway_streaming_service_url: String,
    /// `GATEWAY_REVENUE_SERVICE_URL`: the revenue service's gRPC endpoint
    /// or a comma-separated list of instances (default
    /// `http://127.0.0.1:50053`). Not used when `CONSUL_HTTP_ADDR` is set.
    #[serde(default = "default_revenue_service_url")]
    pub gateway_revenue_service_url: String,
    /// `GATEWAY_CONNECT_TIMEOUT_MS`: TCP connect timeout to a downstream
    /// (default 1,000 ms).
    #[serde(default = "default_connect_timeout_ms")]
    pub gateway_connect_timeout_ms: u64,
    /// `GATEWAY_REQUEST_TIMEOUT_MS`: deadline of one downstream call; past it
    /// the client gets 504 (default 5,000 ms).
    #[serde(default = "default_request_timeout_ms")]
    pub gateway_request_timeout_ms: u64,
    /// `GATEWAY_IMPORT_TIMEOUT_MS`: deadline of a daily-counts import, which
    /// writes up to 100,000 rows (default 120,000 ms); the streaming service
    /// stops importing when it passes, after the last whole batch.
    #[serde(default = "default_import_timeout_ms")]
    pub gateway_import_timeout_ms: u64,
    /// `GATEWAY_CLOSE_TIMEOUT_MS`: deadline of a monthly close, which issues
    /// a statement per creator (default 300,000 ms; 100,000 creators take
    /// well under a minute, `docs/benchmarks.md`). A close cut short by it
    /// still finishes in the revenue service; asking again answers it.
    #[serde(default = "default_close_timeout_ms")]
    pub gateway_close_timeout_ms: u64,
    /// `GATEWAY_DRAIN_SECONDS`: after SIGTERM, how long the gateway keeps
    /// serving while `/readyz` answers 503, so that a load balancer stops
    /// sending before the listener closes (default 5; the all-in-one stack
    /// 0).
    #[serde(default = "default_drain_seconds")]
    pub gateway_drain_seconds: u64,
    /// `GATEWAY_METRICS_ADDR`: where `/metrics` (Prometheus) is served, a
    /// listener of its own so that it is not public with the API (default
    /// `127.0.0.1:9464`; port 0 picks a free one). In a container, set it to
    /// `0.0.0.0:9464` and do not publish the port.
    #[serde(default = "default_metrics_addr")]
    pub gateway_metrics_addr: SocketAddr,
    /// `GATEWAY_BODY_LIMIT_BYTES`: largest request body; larger gets 413
    /// (default 65,536).
    #[serde(default = "default_body_limit")]
    pub gateway_body_limit_bytes: usize,
    /// `GATEWAY_IMPORT_LIMIT_BYTES`: largest CSV body of
    /// `/api/v1/admin/imports/daily-counts`; larger gets 413 (default and
    /// most 8 MiB, [`common::grpc::MAX_IMPORT_BYTES`], what the streaming
    /// service accepts).
    #[serde(default = "default_import_limit")]
    pub gateway_import_limit_bytes: usize,
    /// `GATEWAY_TRUSTED_PROXIES`: comma-separated IPs whose
    /// `X-Forwarded-For` is believed (SPEC §4); default none.
    #[serde(default, deserialize_with = "ip_list")]
    pub gateway_trusted_proxies: Vec<IpAddr>,
    /// `GATEWAY_CORS_ORIGINS`: comma-separated origins
    /// (`https://studio.example.com`) whose browser pages may call the API
    /// from another origin, credentials included ([`crate::cors`]); default
    /// none. Each must be `scheme://host[:port]` (`*` is refused); a
    /// malformed one stops the gateway at start with its name.
    #[serde(default, deserialize_with = "origin_list")]
    pub gateway_cors_origins: Vec<String>,
    /// `GATEWAY_REPORT_CACHE_BYTES`: memory for rendered
    /// `/api/v1/revenues` answers, served again while the revenue service
    /// says they are current ([`crate::report_bodies`]; default 64 MiB,
    /// 0 keeps none).
    #[serde(default = "default_report_cache_bytes")]
    pub gateway_report_cache_bytes: u64,
    /// `GATEWAY_REDIS_URL`: where Studio sessions live, shared by every
    /// gateway replica (`redis://…`); unset: in this process's memory, for a
    /// single gateway ([`crate::studio::session`]).
    #[serde(default)]
    pub gateway_redis_url: Option<SecretString>,
    /// `STUDIO_SESSION_SECONDS`: how long a Studio sign-in lasts, seconds
    /// (default 28,800: eight hours); the cookie expires with it.
    #[serde(default = "default_studio_session")]
    pub studio_session_seconds: u64,
    /// `PLATFORM_TIME_ZONE`: the IANA zone of days (SPEC §2: `Asia/Seoul`);
    /// the Studio shows days and "yesterday" in it.
    #[serde(
        default,
        rename = "platform_time_zone",
        deserialize_with = "common::time::deserialize_zone"
    )]
    pub platform_time: common::time::PlatformTime,
    /// `GATEWAY_JWKS_REFETCH_SECONDS`: at most one JWK Set refetch per this
    /// many seconds when a token names an unknown `kid` (default 5).
    #[serde(default = "default_jwks_refetch")]
    pub gateway_jwks_refetch_seconds: u64,
    /// `AUTH_RATE_LIMIT_PER_MINUTE`: sign-up and login requests per client IP
    /// and minute, each (SPEC §3: 20); 0 turns the limit off.
    #[serde(default = "default_rate_limit")]
    pub auth_rate_limit_per_minute: u32,
    /// `JWT_ISSUER`: the expected `iss`.
    #[serde(default = "default_issuer")]
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE`: the expected `aud`.
    #[serde(default = "default_audience")]
    pub jwt_audience: String,
    /// `SERVICE_CREDENTIAL`: sent on every gRPC call (SPEC §9). Required; the
    /// all-in-one mode generates one.
    #[serde(default)]
    pub service_credential: Option<SecretString>,
    /// Consul registration and discovery (`CONSUL_*`, `DISCOVERY_*`; see
    /// [`common::discovery::DiscoverySettings`]).
    #[serde(flatten)]
    pub discovery: common::discovery::DiscoverySettings,
}

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_import_timeout_ms() -> u64 {
    120_000
}
fn default_close_timeout_ms() -> u64 {
    300_000
}
fn default_drain_seconds() -> u64 {
    5
}
fn default_metrics_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}
fn default_user_service_url() -> String {
    "http://127.0.0.1:50051".to_owned()
}
fn default_streaming_service_url() -> String {
    "http://127.0.0.1:50052".to_owned()
}
fn default_revenue_service_url() -> String {
    "http://127.0.0.1:50053".to_owned()
}
fn default_import_limit() -> usize {
    common::grpc::MAX_IMPORT_BYTES
}
fn default_connect_timeout_ms() -> u64 {
    1_000
}
fn default_request_timeout_ms() -> u64 {
    5_000
}
fn default_body_limit() -> usize {
    64 * 1024
}
fn default_report_cache_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_studio_session() -> u64 {
    8 * 3600
}
fn default_jwks_refetch() -> u64 {
    5
}
fn default_rate_limit() -> u32 {
    20
}
fn default_issuer() -> String {
    common::auth::DEFAULT_ISSUER.to_owned()
}
fn default_audience() -> String {
    common::auth::DEFAULT_AUDIENCE.to_owned()
}

/// The non-empty items of `"a, b"` or of a list.
fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        List(Vec<String>),
    }
    let items: Vec<String> = match Raw::deserialize(d)? {
        Raw::Text(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
        Raw::List(v) => v,
    };
    Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Accepts `"10.0.0.1, 10.0.0.2"` or a list.
fn ip_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
    comma_list(d)?
        .into_iter()
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// Accepts `"https://a.example, http://localhost:5173"` or a list; each
/// must be an origin ([`crate::cors::parse_origin`]).
fn origin_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    comma_list(d)?
        .iter()
        .map(|s| crate::cors::parse_origin(s).map_err(serde::de::Error::custom))
        .collect()
}

impl Settings {
    /// Settings with every default, the given service credential and user
    /// service URL.
    pub fn with_defaults(service_credential: SecretString, user_service_url: String) -> Self {
        Self {
            gateway_addr: default_addr(),
            gateway_metrics_addr: default_metrics_addr(),
            gateway_import_timeout_ms: default_import_timeout_ms(),
            gateway_close_timeout_ms: default_close_timeout_ms(),
            gateway_drain_seconds: default_drain_seconds(),
            gateway_workers: None,
            gateway_user_service_url: user_service_url,
            gateway_streaming_service_url: default_streaming_service_url(),
            gateway_revenue_service_url: default_revenue_service_url(),
            gateway_connect_timeout_ms: default_connect_timeout_ms(),
            gateway_request_timeout_ms: default_request_timeout_ms(),
            gateway_body_limit_bytes: default_body_limit(),
            gateway_import_limit_bytes: default_import_limit(),
            gateway_trusted_proxies: Vec::new(),
            gateway_cors_origins: Vec::new(),
            gateway_jwks_refetch_seconds: default_jwks_refetch(),
            gateway_redis_url: None,
            gateway_report_cache_bytes: default_report_cache_bytes(),
            platform_time: common::time::PlatformTime::default(),
            studio_session_seconds: default_studio_session(),
            auth_rate_limit_per_minute: default_rate_limit(),
            jwt_issuer: default_issuer(),
            jwt_audience: default_audience(),
            service_credential: Some(service_credential),
            discovery: common::discovery::DiscoverySettings::default(),
        }
    }
}
