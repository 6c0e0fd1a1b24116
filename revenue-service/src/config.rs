//! Settings of the revenue service. Each field is set by the environment
//! variable of the same name in upper case, or by the `CONFIG_FILE` TOML file
//! (see `common::config`).

use std::{net::SocketAddr, path::PathBuf};

use common::time::PlatformTime;
use secrecy::SecretString;
use serde::Deserialize;

/// The revenue service's settings, with the all-in-one defaults.
#[derive(Clone, Deserialize)]
pub struct Settings {
    /// `DATA_DIR`: where the embedded default keeps its files (`./data`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `REVENUE_DATABASE_URL`: `postgres://…` or `sqlite://…`; default
    /// `sqlite://$DATA_DIR/revenue.db`.
    #[serde(default)]
    pub revenue_database_url: Option<SecretString>,
    /// `REVENUE_DATABASE_MAX_CONNECTIONS`: pool size (default 16).
    #[serde(default = "default_max_connections")]
    pub revenue_database_max_connections: u32,
    /// `REVENUE_GRPC_ADDR`: where gRPC listens (default `127.0.0.1:50053`).
    #[serde(default = "default_grpc_addr")]
    pub revenue_grpc_addr: SocketAddr,
    /// `REVENUE_USER_SERVICE_URL`: where the JWK Set comes from: one gRPC
    /// endpoint or a comma-separated list. Not used when `CONSUL_HTTP_ADDR`
    /// is set.
    #[serde(default = "default_user_service_url")]
    pub revenue_user_service_url: String,
    /// `REVENUE_STREAMING_SERVICE_URL`: where the daily counts come from:
    /// one gRPC endpoint or a comma-separated list of instances to balance
    /// over. Not used when `CONSUL_HTTP_ADDR` is set.
    #[serde(default = "default_streaming_service_url")]
    pub revenue_streaming_service_url: String,
    /// `REVENUE_METRICS_ADDR`: where `/metrics` is served (e.g.
    /// `0.0.0.0:9466` in a container); unset: not served.
    #[serde(default)]
    pub revenue_metrics_addr: Option<SocketAddr>,
    /// `REVENUE_REDIS_URL`: Redis for the read-aside report cache; unset:
    /// no cache.
    #[serde(default)]
    pub revenue_redis_url: Option<SecretString>,
    /// `REVENUE_REDIS_PREFIX`: prefix of the cache's keys (default
    /// `ssp-reports`).
    #[serde(default = "default_redis_prefix")]
    pub revenue_redis_prefix: String,
    /// `REPORT_CACHE_TTL_SECONDS`: the longest a cached report lives
    /// (default 300); a settlement invalidates all of them at once.
    #[serde(default = "default_cache_ttl")]
    pub report_cache_ttl_seconds: u64,
    /// `SETTLEMENT_SCHEDULE`: cron expression (seconds first, platform time
    /// zone) of the daily settlement of yesterday (SPEC §6: 00:10).
    #[serde(default = "default_schedule")]
    pub settlement_schedule: String,
    /// `SETTLEMENT_WATERMARK_POLL_SECONDS`: while yesterday's counts are not
    /// all written back, the schedule checks again this often (default 60).
    #[serde(default = "default_watermark_poll")]
    pub settlement_watermark_poll_seconds: u64,
    /// `CLOSE_SCHEDULE`: cron expression (seconds first, platform time zone)
    /// of the monthly close of the previous month (SPEC §11.4: the 5th at
    /// 03:00).
    #[serde(default = "default_close_schedule")]
    pub close_schedule: String,
    /// `CLOSE_RETRY_SECONDS`: while a month due cannot be closed (a day not
    /// final yet), the schedule tries again this often (default 3,600).
    #[serde(default = "default_close_retry")]
    pub close_retry_seconds: u64,
    /// `WEBHOOK_ALLOW_INSECURE_URLS`: accept `http` webhook URLs and
    /// private or loopback addresses (SPEC §11.5; default false: for tests
    /// and closed networks only).
    #[serde(default)]
    pub webhook_allow_insecure_urls: bool,
    /// `WEBHOOK_RETRY_FIRST_DELAY_MS`: the wait after a webhook's first
    /// failed attempt; each later wait is 4 times longer, at most 10 hours
    /// (default 5,000).
    #[serde(default = "default_webhook_first_delay")]
    pub webhook_retry_first_delay_ms: u64,
    /// `WEBHOOK_RETRY_WINDOW_SECONDS`: how long a webhook is retried after
    /// its event (or a redelivery) before it is `failed` (default 86,400).
    #[serde(default = "default_webhook_window")]
    pub webhook_retry_window_seconds: u64,
    /// `WEBHOOK_POLL_MS`: how often an idle delivery worker looks for due
    /// deliveries (default 1,000).
    #[serde(default = "default_webhook_poll")]
    pub webhook_poll_ms: u64,
    /// `SETTLEMENT_CALL_TIMEOUT_SECONDS`: the longest wait for the next row
    /// of the daily counts (default 10).
    #[serde(default = "default_call_timeout")]
    pub settlement_call_timeout_seconds: u64,
    /// `SETTLEMENT_RETRIES`: attempts after a failed pull, each resuming
    /// after the last video received (default 3).
    #[serde(default = "default_retries")]
    pub settlement_retries: u32,
    /// `SETTLEMENT_BREAKER_OPEN_SECONDS`: after 3 consecutive failed calls
    /// to the streaming service the circuit opens for this long (doubling
    /// while failures go on, up to 60 s) and runs fail fast (default 10).
    #[serde(default = "default_breaker_open")]
    pub settlement_breaker_open_seconds: u64,
    /// `SETTLEMENT_LEASE_SECONDS`: a day's lease lasts this long unless
    /// renewed; a run whose holder died is taken over after it (default 30).
    #[serde(default = "default_lease")]
    pub settlement_lease_seconds: u64,
    /// `SETTLEMENT_FINAL_AFTER_DAYS`: a settled day is `estimated` until
    /// this many days have passed after it, then `final`; a final day whose
    /// amounts change is `restated` (SPEC §11.2; default 3).
    #[serde(default = "default_final_after_days")]
    pub settlement_final_after_days: u32,
    /// `SETTLEMENT_LATE_POLL_SECONDS`: how often the settlement worker asks
    /// the streaming service which days' counts changed (late counts from
    /// the write-back or an import) and settles again the settled ones that
    /// changed after their last run read them; 0 turns it off (default 60).
    #[serde(default = "default_late_poll")]
    pub settlement_late_poll_seconds: u64,
    /// `PLATFORM_TIME_ZONE`: the IANA zone of days (SPEC §2: `Asia/Seoul`).
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
    /// `SERVICE_CREDENTIAL`: the shared secret of service-to-service calls.
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
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_max_connections() -> u32 {
    16
}
fn default_grpc_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50053))
}
fn default_user_service_url() -> String {
    "http://127.0.0.1:50051".to_owned()
}
fn default_streaming_service_url() -> String {
    "http://127.0.0.1:50052".to_owned()
}
fn default_redis_prefix() -> String {
    "ssp-reports".to_owned()
}
fn default_cache_ttl() -> u64 {
    300
}
fn default_schedule() -> String {
    "0 10 0 * * *".to_owned()
}
fn default_webhook_first_delay() -> u64 {
    5_000
}
fn default_webhook_window() -> u64 {
    86_400
}
fn default_webhook_poll() -> u64 {
    1_000
}
fn default_close_schedule() -> String {
    "0 0 3 5 * *".to_owned()
}
fn default_close_retry() -> u64 {
    3_600
}
fn default_watermark_poll() -> u64 {
    60
}
fn default_call_timeout() -> u64 {
    10
}
fn default_retries() -> u32 {
    3
}
fn default_breaker_open() -> u64 {
    10
}
fn default_lease() -> u64 {
    30
}
fn default_late_poll() -> u64 {
    60
}
fn default_final_after_days() -> u32 {
    3
}
fn default_issuer() -> String {
    common::auth::DEFAULT_ISSUER.to_owned()
}
fn default_audience() -> String {
    common::auth::DEFAULT_AUDIENCE.to_owned()
}

impl Settings {
    /// Settings with every default, the given credential and service URLs.
    pub fn with_defaults(
        service_credential: SecretString,
        user_service_url: String,
        streaming_service_url: String,
    ) -> Self {
        Self {
            data_dir: default_data_dir(),
            revenue_database_url: None,
            revenue_database_max_connections: default_max_connections(),
            revenue_grpc_addr: default_grpc_addr(),
            revenue_user_service_url: user_service_url,
            revenue_streaming_service_url: streaming_service_url,
            revenue_redis_url: None,
            revenue_metrics_addr: None,
            revenue_redis_prefix: default_redis_prefix(),
            report_cache_ttl_seconds: default_cache_ttl(),
            settlement_schedule: default_schedule(),
            settlement_watermark_poll_seconds: default_watermark_poll(),
            close_schedule: default_close_schedule(),
            close_retry_seconds: default_close_retry(),
            webhook_allow_insecure_urls: false,
            webhook_retry_first_delay_ms: default_webhook_first_delay(),
            webhook_retry_window_seconds: default_webhook_window(),
            webhook_poll_ms: default_webhook_poll(),
            settlement_call_timeout_seconds: default_call_timeout(),
            settlement_retries: default_retries(),
            settlement_breaker_open_seconds: default_breaker_open(),
            settlement_lease_seconds: default_lease(),
            settlement_final_after_days: default_final_after_days(),
            settlement_late_poll_seconds: default_late_poll(),
            platform_time: PlatformTime::default(),
            jwt_issuer: default_issuer(),
            jwt_audience: default_audience(),
            service_credential: Some(service_credential),
            discovery: common::discovery::DiscoverySettings::default(),
            grpc: common::grpc::ServeLimits::default(),
        }
    }
}
