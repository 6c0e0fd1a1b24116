//! Settings of the streaming service. Each field is set by the environment
//! variable of the same name in upper case, or by the `CONFIG_FILE` TOML file
//! (see `common::config`).

use std::{net::SocketAddr, path::PathBuf};

use common::time::PlatformTime;

use crate::clock::DevClock;
use secrecy::SecretString;
use serde::Deserialize;

/// The streaming service's settings, with the all-in-one defaults.
#[derive(Clone, Deserialize)]
pub struct Settings {
    /// `DATA_DIR`: where the embedded default keeps its files (`./data`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `STREAMING_DATABASE_URL`: `postgres://…` or `sqlite://…`; default
    /// `sqlite://$DATA_DIR/streaming.db`.
    #[serde(default)]
    pub streaming_database_url: Option<SecretString>,
    /// `STREAMING_DATABASE_MAX_CONNECTIONS`: pool size (default 16).
    #[serde(default = "default_max_connections")]
    pub streaming_database_max_connections: u32,
    /// `STREAMING_GRPC_ADDR`: where gRPC listens (default `127.0.0.1:50052`;
    /// port 0 picks a free one).
    #[serde(default = "default_grpc_addr")]
    pub streaming_grpc_addr: SocketAddr,
    /// `STREAMING_REDIS_URL`: the counter store (SPEC §5), `redis://…`; with
    /// `STREAMING_REDIS_CLUSTER=true`, a comma-separated list of cluster
    /// nodes. Unset: the in-process store of the all-in-one mode.
    #[serde(default)]
    pub streaming_redis_url: Option<SecretString>,
    /// `STREAMING_METRICS_ADDR`: where `/metrics` is served (e.g.
    /// `0.0.0.0:9465` in a container); unset: not served.
    #[serde(default)]
    pub streaming_metrics_addr: Option<SocketAddr>,
    /// `STREAMING_REDIS_CLUSTER`: the Redis URL names a Redis Cluster.
    #[serde(default)]
    pub streaming_redis_cluster: bool,
    /// `STREAMING_REDIS_PREFIX`: the prefix of every key (default `ssp`).
    #[serde(default = "default_redis_prefix")]
    pub streaming_redis_prefix: String,
    /// `STREAMING_REDIS_POOL_SIZE`: Redis connections (default 16).
    #[serde(default = "default_redis_pool")]
    pub streaming_redis_pool_size: usize,
    /// `STREAMING_USER_SERVICE_URL`: where the JWK Set comes from, one
    /// endpoint or a comma-separated list (default `http://127.0.0.1:50051`).
    /// Not used when `CONSUL_HTTP_ADDR` is set.
    #[serde(default = "default_user_service_url")]
    pub streaming_user_service_url: String,
    /// `DEDUPE_WINDOW_SECONDS`: a viewer key's second view of a video, or
    /// second crossing of an ad slot, within this many seconds is not
    /// counted (SPEC §4: 30).
    #[serde(default = "default_dedupe_window")]
    pub dedupe_window_seconds: u32,
    /// `WRITEBACK_INTERVAL_SECONDS`: counters are written back to the
    /// database this often (SPEC §5: 60), and on graceful shutdown.
    #[serde(default = "default_writeback_interval")]
    pub writeback_interval_seconds: u64,
    /// `COUNTER_EVENT_LAG_SECONDS`: the longest an event may take from its
    /// timestamp to its counter increment; the watermark trails the start of
    /// the last complete write-back by this much (default 10).
    #[serde(default = "default_event_lag")]
    pub counter_event_lag_seconds: u64,
    /// `SESSION_TTL_SECONDS`: a watch session with no report for its video's
    /// duration plus 30 minutes, or for this long if shorter, is forgotten
    /// (default 86,400); resume positions are kept 30 days.
    #[serde(default = "default_session_ttl")]
    pub session_ttl_seconds: u64,
    /// `STREAMING_MEMORY_MAX_SESSIONS`: the in-process counter store keeps
    /// at most this many watch sessions, evicting the least recently active
    /// (default 200,000, about 60 MB), and as many resume positions. Redis
    /// bounds its own memory.
    #[serde(default = "default_memory_max_sessions")]
    pub streaming_memory_max_sessions: usize,
    /// `PLATFORM_TIME_ZONE`: the IANA zone days are counted in (SPEC §2:
    /// `Asia/Seoul`).
    #[serde(
        default,
        rename = "platform_time_zone",
        deserialize_with = "common::time::deserialize_zone"
    )]
    pub platform_time: PlatformTime,
    /// `JWT_ISSUER`: the expected `iss`.
    #[serde(default = "default_issuer")]
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE`: the expected `aud`.
    #[serde(default = "default_audience")]
    pub jwt_audience: String,
    /// `SERVICE_CREDENTIAL`: the shared secret every service-to-service
    /// call carries (SPEC §9). Required; the all-in-one mode generates one.
    #[serde(default)]
    pub service_credential: Option<SecretString>,
    /// Consul registration and discovery (`CONSUL_*`, `DISCOVERY_*`; see
    /// [`common::discovery::DiscoverySettings`]).
    #[serde(flatten)]
    pub discovery: common::discovery::DiscoverySettings,
    /// Load shedding and the longest call (`GRPC_*`; see
    /// [`common::grpc::ServeLimits`]).
    #[serde(flatten)]
    pub grpc: common::grpc::ServeLimits,
    /// Not a setting: a compressed clock for development (see
    /// [`crate::clock`]). No environment variable or file sets it; only the
    /// development commands `stack demo` and `stack dev-streaming` do.
    #[serde(skip)]
    pub dev_clock: Option<DevClock>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_max_connections() -> u32 {
    16
}
fn default_grpc_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50052))
}
fn default_redis_pool() -> usize {
    16
}
fn default_redis_prefix() -> String {
    "ssp".to_owned()
}
fn default_user_service_url() -> String {
    "http://127.0.0.1:50051".to_owned()
}
fn default_dedupe_window() -> u32 {
    30
}
fn default_writeback_interval() -> u64 {
    60
}
fn default_event_lag() -> u64 {
    10
}
fn default_session_ttl() -> u64 {
    86_400
}
fn default_memory_max_sessions() -> usize {
    crate::counting::memory::DEFAULT_MAX_SESSIONS
}
fn default_issuer() -> String {
    common::auth::DEFAULT_ISSUER.to_owned()
}
fn default_audience() -> String {
    common::auth::DEFAULT_AUDIENCE.to_owned()
}

impl Settings {
    /// Settings with every default, the given service credential and user
    /// service URL.
    pub fn with_defaults(service_credential: SecretString, user_service_url: String) -> Self {
        Self {
            data_dir: default_data_dir(),
            streaming_database_url: None,
            streaming_database_max_connections: default_max_connections(),
            streaming_grpc_addr: default_grpc_addr(),
            streaming_redis_url: None,
            streaming_redis_cluster: false,
            streaming_metrics_addr: None,
            streaming_redis_prefix: default_redis_prefix(),
            streaming_redis_pool_size: default_redis_pool(),
            streaming_user_service_url: user_service_url,
            dedupe_window_seconds: default_dedupe_window(),
            writeback_interval_seconds: default_writeback_interval(),
            counter_event_lag_seconds: default_event_lag(),
            session_ttl_seconds: default_session_ttl(),
            streaming_memory_max_sessions: default_memory_max_sessions(),
            platform_time: PlatformTime::default(),
            jwt_issuer: default_issuer(),
            jwt_audience: default_audience(),
            service_credential: Some(service_credential),
            discovery: common::discovery::DiscoverySettings::default(),
            grpc: common::grpc::ServeLimits::default(),
            dev_clock: None,
        }
    }
}
