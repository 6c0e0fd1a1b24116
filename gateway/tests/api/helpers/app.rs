//! Starting the platform for one test: fresh PostgreSQL databases (or
//! SQLite files) and Redis keys, dropped when the test ends.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use user_service::tokens::keys::SigningKey;

/// PostgreSQL server for tests (`TEST_DATABASE_URL`), trust auth.
pub fn postgres_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Which database the user service gets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Postgres,
    Sqlite,
}

/// Redis for tests (`TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// How to start the app. With `Store::Postgres` the streaming service
/// counts on the real Redis (keys under a prefix of this test's own); with
/// `Store::Sqlite` it counts in process.
pub struct Options {
    pub store: Store,
    pub rate_limit_per_minute: u32,
    pub admin: Option<(&'static str, &'static str)>,
    pub dedupe_window_seconds: u32,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The revenue service's `SETTLEMENT_SCHEDULE`, when not the default.
    pub settlement_schedule: Option<&'static str>,
    /// The gateway's port, when it must be known before it starts (an
    /// OpenID provider's redirect URI names it); else any free port.
    pub gateway_port: Option<u16>,
    /// An OpenID Connect provider for social login.
    pub oidc: Option<OidcOptions>,
    /// The streaming service's `COUNTER_EVENT_LAG_SECONDS`, when not the
    /// default.
    pub counter_event_lag_seconds: Option<u64>,
    /// The streaming service's `GRPC_MAX_CONCURRENT_CALLS`, when not the
    /// default.
    pub streaming_max_concurrent_calls: Option<usize>,
    /// The revenue service's `SETTLEMENT_LATE_POLL_SECONDS` (0: off).
    pub late_poll_seconds: u64,
    /// Webhooks to loopback `http` URLs, retried after this many
    /// milliseconds first, for this many seconds (else SPEC §11.5's
    /// defaults and no insecure URLs).
    pub webhooks: Option<(u64, u64)>,
    /// The revenue service's `CLOSE_SCHEDULE` (retrying every second) and
    /// `SETTLEMENT_FINAL_AFTER_DAYS`, when not the defaults.
    pub close_schedule: Option<(&'static str, u32)>,
}

/// The user service's generic OpenID Connect provider.
pub struct OidcOptions {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub state_ttl_seconds: u64,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Default for Options {
    fn default() -> Self {
        Self {
            store: Store::Postgres,
            rate_limit_per_minute: 0,
            admin: None,
            dedupe_window_seconds: 30,
            trusted_proxies: Vec::new(),
            settlement_schedule: None,
            gateway_port: None,
            oidc: None,
            counter_event_lag_seconds: None,
            streaming_max_concurrent_calls: None,
            late_poll_seconds: 0,
            webhooks: None,
            close_schedule: None,
        }
    }
}

/// Creates a fresh PostgreSQL database; returns its URL and the guard that
/// drops it.
async fn create_database(kind: &str) -> (String, TestDb) {
    let name = format!("test_{kind}_{}", uuid::Uuid::new_v4().simple());
    let server = Database::connect(postgres_url())
        .await
        .expect("PostgreSQL reachable");
    server
        .execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#))
        .await
        .expect("create database");
    let base = postgres_url();
    let url = format!(
        "{}/{name}",
        base.rsplit_once('/').map(|(b, _)| b).unwrap_or(&base)
    );
    (url, TestDb { name })
}

/// Deletes a test's Redis keys when dropped.
struct RedisKeys {
    prefix: String,
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// A database created for one test and dropped when the test ends.
struct TestDb {
    name: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(db) = Database::connect(postgres_url()).await {
                    let _ = db
                        .execute_unprepared(&format!(
                            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                        ))
                        .await;
                }
            });
        })
        .join();
    }
}

/// The running services.
pub struct TestApp {
    pub address: String,
    /// The gateway's `/metrics` listener, `http://host:port`.
    pub metrics_address: String,
    pub client: reqwest::Client,
    pub issuer: String,
    pub audience: String,
    /// The private key the user service signs with (PEM), to forge tokens.
    pub signing_pem: String,
    pub kid: String,
    /// The user service's gRPC URL and the service credential, to call it
    /// directly.
    pub user_url: String,
    pub credential: SecretString,
    /// The streaming service's gRPC URL.
    pub streaming_url: String,
    /// The streaming service's `/metrics` listener, `http://host:port`.
    pub streaming_metrics_address: String,
    /// The user service's `/metrics` listener, `http://host:port`.
    pub user_metrics_address: String,
    /// The revenue service's `/metrics` listener, `http://host:port`.
    pub revenue_metrics_address: String,
    /// The user database (PostgreSQL runs only).
    pub user_db_url: Option<String>,
    /// The streaming database (PostgreSQL runs only).
    pub streaming_db_url: Option<String>,
    /// The revenue database (PostgreSQL runs only).
    pub revenue_db_url: Option<String>,
    /// The streaming service's write-back, to run by hand.
    pub writeback: streaming_service::counting::writeback::Writeback,
    /// The platform, started as the `stack` binary starts it.
    pub(super) stack: stack::Stack,
    // Dropped in this order: keys, then databases, then files.
    _redis: Option<RedisKeys>,
    _dbs: Vec<TestDb>,
    _dir: tempdir::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let dir = tempdir::TempDir::new();
    let credential = SecretString::from(uuid::Uuid::new_v4().to_string());
    let signing_pem = SigningKey::generate_pem().expect("key");
    let kid = SigningKey::from_pem(&signing_pem)
        .expect("key")
        .kid()
        .to_owned();

    let mut users = user_service::Settings::with_defaults(credential.clone());
    users.data_dir = dir.path().to_path_buf();
    users.user_grpc_addr = "127.0.0.1:0".parse().expect("addr");
    users.user_signing_key = Some(SecretString::from(signing_pem.clone()));
    if let Some((email, password)) = options.admin {
        users.admin_email = Some(email.to_owned());
        users.admin_password = Some(SecretString::from(password.to_owned()));
    }
    if let Some(oidc) = &options.oidc {
        users.oauth_redirect_base_url = Some(format!(
            "http://127.0.0.1:{}",
            options.gateway_port.expect("a known gateway port")
        ));
        users.oauth_oidc_name = oidc.name.clone();
        users.oauth_oidc_issuer = Some(oidc.issuer.clone());
        users.oauth_oidc_client_id = Some(oidc.client_id.clone());
        users.oauth_oidc_client_secret = Some(SecretString::from(oidc.client_secret.clone()));
        users.oauth_state_ttl_seconds = oidc.state_ttl_seconds;
    }
    let mut dbs = Vec::new();
    let mut user_db_url = None;
    if options.store == Store::Postgres {
        let (url, db) = create_database("users").await;
        user_db_url = Some(url.clone());
        users.user_database_url = Some(SecretString::from(url));
        users.user_database_max_connections = 5;
        dbs.push(db);
    }
    let issuer = users.jwt_issuer.clone();
    let audience = users.jwt_audience.clone();
    // Stack::build points every downstream URL at the services it starts.
    let mut streaming =
        streaming_service::Settings::with_defaults(credential.clone(), String::new());
    streaming.data_dir = dir.path().to_path_buf();
    streaming.streaming_grpc_addr = "127.0.0.1:0".parse().expect("addr");
    streaming.streaming_metrics_addr = Some("127.0.0.1:0".parse().expect("addr"));
    users.user_metrics_addr = Some("127.0.0.1:0".parse().expect("addr"));
    streaming.dedupe_window_seconds = options.dedupe_window_seconds;
    // Tests write back by hand; the loop only runs at start and shutdown.
    streaming.writeback_interval_seconds = 3_600;
    if let Some(lag) = options.counter_event_lag_seconds {
        streaming.counter_event_lag_seconds = lag;
    }
    if let Some(calls) = options.streaming_max_concurrent_calls {
        streaming.grpc.grpc_max_concurrent_calls = calls;
    }
    let mut streaming_db_url = None;
    let mut redis_prefix = None;
    let redis_keys = if options.store == Store::Postgres {
        let (url, db) = create_database("streaming").await;
        streaming_db_url = Some(url.clone());
        streaming.streaming_database_url = Some(SecretString::from(url.clone()));
        streaming.streaming_database_max_connections = 10;
        dbs.push(db);
        let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        streaming.streaming_redis_url = Some(SecretString::from(redis_url()));
        streaming.streaming_redis_prefix = prefix.clone();
        redis_prefix = Some(prefix.clone());
        Some(RedisKeys { prefix })
    } else {
        None
    };
    let mut revenue =
        revenue_service::Settings::with_defaults(credential.clone(), String::new(), String::new());
    revenue.data_dir = dir.path().to_path_buf();
    revenue.revenue_grpc_addr = "127.0.0.1:0".parse().expect("addr");
    revenue.revenue_metrics_addr = Some("127.0.0.1:0".parse().expect("addr"));
    revenue.settlement_breaker_open_seconds = 1;
    revenue.settlement_call_timeout_seconds = 2;
    revenue.settlement_retries = 1;
    revenue.settlement_lease_seconds = 3;
    // Off unless a test looks for late counts: a re-run it did not ask for
    // would change the runs other tests count.
    revenue.settlement_late_poll_seconds = options.late_poll_seconds;
    if let Some((schedule, final_after_days)) = options.close_schedule {
        revenue.close_schedule = schedule.to_owned();
        revenue.close_retry_seconds = 1;
        revenue.settlement_final_after_days = final_after_days;
    }
    if let Some((first_delay_ms, window_seconds)) = options.webhooks {
        revenue.webhook_allow_insecure_urls = true;
        revenue.webhook_retry_first_delay_ms = first_delay_ms;
        revenue.webhook_retry_window_seconds = window_seconds;
        revenue.webhook_poll_ms = 50;
    }
    if let Some(schedule) = options.settlement_schedule {
        revenue.settlement_schedule = schedule.to_owned();
        revenue.settlement_watermark_poll_seconds = 1;
    }
    if let Some(prefix) = &redis_prefix {
        revenue.revenue_redis_url = Some(SecretString::from(redis_url()));
        revenue.revenue_redis_prefix = format!("{prefix}:reports");
    }
    let mut revenue_db_url = None;
    if options.store == Store::Postgres {
        let (url, db) = create_database("revenue").await;
        revenue_db_url = Some(url.clone());
        revenue.revenue_database_url = Some(SecretString::from(url));
        revenue.revenue_database_max_connections = 5;
        dbs.push(db);
    }
    let mut gw = gateway::Settings::with_defaults(credential.clone(), String::new());
    gw.gateway_trusted_proxies = options.trusted_proxies.clone();
    // Generous on a loaded 2-core CI machine (1,000 concurrent plays).
    gw.gateway_request_timeout_ms = 20_000;
    gw.gateway_addr =
        std::net::SocketAddr::from(([127, 0, 0, 1], options.gateway_port.unwrap_or(0)));
    gw.gateway_workers = Some(1);
    gw.gateway_metrics_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    gw.auth_rate_limit_per_minute = options.rate_limit_per_minute;
    let stack = stack::Stack::build(stack::Settings {
        users,
        streaming,
        revenue,
        gateway: gw,
    })
    .await
    .expect("the platform builds");
    let user_url = format!("http://{}", stack.users.settings.user_grpc_addr);
    let streaming_url = format!("http://{}", stack.streaming.settings.streaming_grpc_addr);
    let served = |addr: Option<std::net::SocketAddr>| {
        format!("http://{}", addr.expect("the service serves /metrics"))
    };
    let streaming_metrics_address = served(stack.streaming.settings.streaming_metrics_addr);
    let user_metrics_address = served(stack.users.settings.user_metrics_addr);
    let revenue_metrics_address = served(stack.revenue.settings.revenue_metrics_addr);

    TestApp {
        address: format!("http://{}", stack.gateway_addr),
        metrics_address: format!("http://{}", stack.metrics_addr),
        client: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        issuer,
        audience,
        signing_pem,
        kid,
        user_url,
        credential,
        streaming_url,
        streaming_metrics_address,
        user_metrics_address,
        revenue_metrics_address,
        user_db_url,
        streaming_db_url,
        revenue_db_url,
        writeback: stack.writeback.clone(),
        stack,
        _redis: redis_keys,
        _dbs: dbs,
        _dir: dir,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stack.stop_now();
    }
}

impl TestApp {
    /// Where the embedded default keeps its files (SQLite runs).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// A temporary directory, removed on drop.
/// A gateway running alone (every downstream unreachable), configured by
/// `configure`: its base URL, the switch that stops it, and its task.
pub async fn lone_gateway(
    configure: impl FnOnce(&mut gateway::Settings),
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let mut settings = gateway::Settings::with_defaults(
        SecretString::from("lone-gateway-credential"),
        "http://127.0.0.1:9".to_owned(),
    );
    settings.gateway_streaming_service_url = "http://127.0.0.1:9".to_owned();
    settings.gateway_revenue_service_url = "http://127.0.0.1:9".to_owned();
    settings.gateway_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    settings.gateway_metrics_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    settings.gateway_workers = Some(1);
    settings.gateway_drain_seconds = 0;
    configure(&mut settings);
    let app = gateway::Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    (base, stop, task)
}

pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let path =
                std::env::temp_dir().join(format!("ssp-test-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&path).expect("temp dir");
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
