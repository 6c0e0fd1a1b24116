//! `spawn_app()`: the platform started through `stack::Stack::build` (the
//! path the `stack` binary takes) on port 0 over fresh databases, and an
//! HTTP client for it.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::auth::{AccessClaims, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use serde_json::{Value, json};
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
    /// The user database (PostgreSQL runs only).
    pub user_db_url: Option<String>,
    /// The streaming database (PostgreSQL runs only).
    pub streaming_db_url: Option<String>,
    /// The revenue database (PostgreSQL runs only).
    pub revenue_db_url: Option<String>,
    /// The streaming service's write-back, to run by hand.
    pub writeback: streaming_service::counting::writeback::Writeback,
    /// The platform, started as the `stack` binary starts it.
    stack: stack::Stack,
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
    streaming.dedupe_window_seconds = options.dedupe_window_seconds;
    // Tests write back by hand; the loop only runs at start and shutdown.
    streaming.writeback_interval_seconds = 3_600;
    if let Some(lag) = options.counter_event_lag_seconds {
        streaming.counter_event_lag_seconds = lag;
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
    revenue.settlement_breaker_open_seconds = 1;
    revenue.settlement_call_timeout_seconds = 2;
    revenue.settlement_retries = 1;
    revenue.settlement_lease_seconds = 3;
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

/// Tokens as the API returns them.
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    /// Where the embedded default keeps its files (SQLite runs).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `GET path` (signed in when `token` is given), the body as JSON.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json")
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn signup(&self, email: &str, password: &str, role: &str) -> Response {
        self.post_json(
            "/api/v1/auth/signup",
            &json!({"email": email, "password": password, "display_name": "Test User", "role": role}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs up (as `role`) and logs in.
    pub async fn signed_in(&self, email: &str, role: &str) -> Tokens {
        let r = self.signup(email, "password-123", role).await;
        assert_eq!(r.status(), StatusCode::CREATED, "sign-up of {email}");
        self.login_tokens(email, "password-123").await
    }

    pub async fn login_tokens(&self, email: &str, password: &str) -> Tokens {
        let r = self.login(email, password).await;
        assert_eq!(r.status(), StatusCode::OK, "login of {email}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        Tokens {
            access: body["access_token"].as_str().expect("access").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// Signs `claims` with the user service's own key under `kid`.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        sign_with(&self.signing_pem, &self.kid, claims)
    }

    /// Valid claims for `user_id` with `role`, expiring in 15 minutes.
    pub fn claims(&self, user_id: i64, role: Role) -> AccessClaims {
        let now = chrono_now();
        AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            role,
            iat: now,
            exp: now + 900,
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Stops the streaming service gracefully (its last write-back runs)
    /// and waits until it is gone.
    pub async fn stop_streaming_service(&mut self) {
        let stopped = self.stack.streaming.stop(Duration::from_secs(15)).await;
        assert!(
            stopped.is_ok(),
            "streaming-service stopped cleanly: {stopped:?}"
        );
    }

    /// Kills the revenue service (its task is aborted mid-whatever, as a
    /// crash would: its connections drop, its transaction rolls back), then
    /// starts a new one on the same address and database.
    pub async fn kill_and_restart_revenue_service(&mut self) {
        self.stack.revenue.kill().await;
        self.stack
            .restart_revenue()
            .await
            .expect("revenue-service builds again");
    }

    /// Starts the streaming service again on the address it had.
    pub async fn restart_streaming_service(&mut self) {
        self.stack
            .restart_streaming()
            .await
            .expect("streaming-service builds again");
        self.writeback = self.stack.writeback.clone();
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Stops the user service and waits until it is gone.
    pub async fn stop_user_service(&mut self) {
        let _ = self.stack.users.stop(Duration::from_secs(15)).await;
    }
}

pub fn sign_with(pem: &str, kid: &str, claims: &AccessClaims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ed_pem(pem.as_bytes()).expect("pem"),
    )
    .expect("sign")
}

pub fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Asserts the SPEC §8 envelope: status, code, request id, and returns the body.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status);
    let header_id = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("x-request-id header");
    let body: Value = r.json().await.expect("json envelope");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["request_id"], header_id.as_str());
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(body["error"]["details"].is_array());
    body
}

/// The fields named in an envelope's `details`.
pub fn detail_fields(body: &Value) -> Vec<String> {
    body["error"]["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|v| v["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A temporary directory, removed on drop.
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

/// Calls on the streaming API, as a frontend makes them.
impl TestApp {
    /// `POST /api/v1/videos` as `token`.
    pub async fn upload(&self, token: &str, title: &str, duration_seconds: i64) -> Response {
        self.post_auth(
            "/api/v1/videos",
            token,
            &json!({"title": title, "description": "", "duration_seconds": duration_seconds}),
        )
        .await
    }

    /// Uploads and returns the video id.
    pub async fn video(&self, token: &str, duration_seconds: i64) -> i64 {
        let r = self.upload(token, "A video", duration_seconds).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.expect("json");
        body["video_id"].as_i64().expect("video_id")
    }

    /// `POST /api/v1/videos/{id}/play`, signed in or anonymous, with an
    /// optional `X-Forwarded-For`.
    pub async fn play(
        &self,
        token: Option<&str>,
        video_id: i64,
        forwarded_for: Option<&str>,
    ) -> Value {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/videos/{video_id}/play")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(xff) = forwarded_for {
            request = request.header("x-forwarded-for", xff);
        }
        let r = request.send().await.expect("request");
        let status = r.status();
        let body: Value = r.json().await.expect("json");
        assert_eq!(status, StatusCode::OK, "play: {body}");
        body
    }

    /// `POST /api/v1/videos/{id}/pause`.
    pub async fn pause(
        &self,
        token: Option<&str>,
        video_id: i64,
        session_id: &str,
        position: i64,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/videos/{video_id}/pause")))
            .json(&json!({"session_id": session_id, "position_seconds": position}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    /// Pauses and returns the body, asserting 200.
    pub async fn pause_ok(
        &self,
        token: Option<&str>,
        video_id: i64,
        session_id: &str,
        position: i64,
    ) -> Value {
        let r = self.pause(token, video_id, session_id, position).await;
        assert_eq!(r.status(), StatusCode::OK, "pause");
        r.json().await.expect("json")
    }

    /// Creates an ad as `admin`, returning its id.
    pub async fn ad(&self, admin: &str, start: chrono::NaiveDate, end: chrono::NaiveDate) -> i64 {
        let r = self
            .post_auth(
                "/api/v1/ads",
                admin,
                &json!({"title": "Ad", "duration_seconds": 15,
                        "start_date": start.to_string(), "end_date": end.to_string()}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "create ad");
        let body: Value = r.json().await.expect("json");
        body["ad_id"].as_i64().expect("ad_id")
    }

    /// `POST /api/v1/admin/imports/daily-counts` as `admin`.
    pub async fn import_csv(&self, admin: &str, csv: String) -> Response {
        self.client
            .post(self.url("/api/v1/admin/imports/daily-counts"))
            .bearer_auth(admin)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("request")
    }

    /// Writes the counters back, queues `from..=to` as `admin` and waits
    /// (up to 20 s a run) until every run has succeeded or failed; the runs.
    pub async fn settle_days(
        &self,
        admin: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Vec<Value> {
        self.write_back().await;
        let r = self
            .post_auth(
                "/api/v1/admin/settlements",
                admin,
                &json!({"from": from.to_string(), "to": to.to_string()}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = r.json().await.expect("json");
        let ids: Vec<i64> = body["run_ids"]
            .as_array()
            .expect("run_ids")
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        let mut runs = Vec::new();
        for id in ids {
            let mut run = Value::Null;
            for _ in 0..200 {
                run = self
                    .get_json(&format!("/api/v1/admin/settlements/{id}"), Some(admin))
                    .await;
                if run["status"] == "succeeded" || run["status"] == "failed" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            runs.push(run);
        }
        runs
    }

    /// Writes the counters back now.
    pub async fn write_back(&self) {
        self.writeback.run_once().await.expect("write-back");
    }

    /// Every row of `day` from the streaming service's daily-counts call,
    /// after `after` (SPEC §9).
    pub async fn daily_counts(
        &self,
        day: chrono::NaiveDate,
        after: i64,
    ) -> Vec<proto::streaming::v1::DailyCount> {
        use proto::streaming::v1::{
            StreamDailyCountsRequest, streaming_service_client::StreamingServiceClient,
        };
        use secrecy::ExposeSecret;
        let mut client = StreamingServiceClient::connect(self.streaming_url.clone())
            .await
            .expect("connect");
        let mut request = tonic::Request::new(StreamDailyCountsRequest {
            day: day.to_string(),
            after_video_id: after,
        });
        request.metadata_mut().insert(
            common::grpc::SERVICE_CREDENTIAL,
            self.credential.expose_secret().parse().expect("metadata"),
        );
        let mut stream = client
            .stream_daily_counts(request)
            .await
            .expect("stream")
            .into_inner();
        let mut rows = Vec::new();
        while let Some(page) = stream.message().await.expect("page") {
            assert!(!page.rows.is_empty(), "a page holds at least one row");
            rows.extend(page.rows);
        }
        rows
    }

    /// The day's row of `video_id`: (views, watch seconds, ad views).
    pub async fn counts_of(&self, video_id: i64) -> (i64, i64, i64) {
        let today = common::time::PlatformTime::default().today();
        self.daily_counts(today, 0)
            .await
            .into_iter()
            .find(|r| r.video_id == video_id)
            .map_or((0, 0, 0), |r| (r.views, r.watch_seconds, r.ad_views))
    }
}
