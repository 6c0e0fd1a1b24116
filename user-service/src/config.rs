//! Settings of the user service. Each field is set by the environment
//! variable of the same name in upper case, or by the `CONFIG_FILE` TOML file
//! (see `common::config`).

use std::{net::SocketAddr, path::PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

/// The user service's settings, with the all-in-one defaults.
#[derive(Clone, Deserialize)]
pub struct Settings {
    /// `DATA_DIR`: where the embedded default keeps its files (`./data`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `USER_DATABASE_URL`: `postgres://…` or `sqlite://…`; default
    /// `sqlite://$DATA_DIR/users.db`.
    #[serde(default)]
    pub user_database_url: Option<SecretString>,
    /// `USER_DATABASE_MAX_CONNECTIONS`: pool size (default 16).
    #[serde(default = "default_max_connections")]
    pub user_database_max_connections: u32,
    /// `USER_GRPC_ADDR`: where gRPC listens (default `127.0.0.1:50051`; port
    /// 0 picks a free one).
    #[serde(default = "default_grpc_addr")]
    pub user_grpc_addr: SocketAddr,
    /// `USER_SIGNING_KEY`: the Ed25519 private key as PKCS#8 PEM.
    #[serde(default)]
    pub user_signing_key: Option<SecretString>,
    /// `USER_SIGNING_KEY_FILE`: a file holding that PEM; read when
    /// `USER_SIGNING_KEY` is unset.
    #[serde(default)]
    pub user_signing_key_file: Option<PathBuf>,
    /// `USER_GENERATE_SIGNING_KEY`: when no key is configured, generate one
    /// into `USER_SIGNING_KEY_FILE` (default `$DATA_DIR/jwt-ed25519.pem`) on
    /// first start and reuse it after. The all-in-one mode turns it on.
    #[serde(default)]
    pub user_generate_signing_key: bool,
    /// `JWT_ISSUER`: the `iss` of access tokens.
    #[serde(default = "default_issuer")]
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE`: the `aud` of access tokens.
    #[serde(default = "default_audience")]
    pub jwt_audience: String,
    /// `ACCESS_TOKEN_TTL_SECONDS`: access-token lifetime (SPEC §3: 900).
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_seconds: u32,
    /// `REFRESH_TOKEN_TTL_DAYS`: refresh-token lifetime (SPEC §3: 14).
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_days: u32,
    /// `ADMIN_EMAIL`: an admin created at start-up when absent.
    #[serde(default)]
    pub admin_email: Option<String>,
    /// `ADMIN_PASSWORD`: that admin's password.
    #[serde(default)]
    pub admin_password: Option<SecretString>,
    /// `SERVICE_CREDENTIAL`: the shared secret every service-to-service
    /// call carries (SPEC §9). Required; the all-in-one mode generates one.
    #[serde(default)]
    pub service_credential: Option<SecretString>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_max_connections() -> u32 {
    16
}
fn default_grpc_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50051))
}
/// The default `iss` of access tokens.
pub fn default_issuer() -> String {
    common::auth::DEFAULT_ISSUER.to_owned()
}
/// The default `aud` of access tokens.
pub fn default_audience() -> String {
    common::auth::DEFAULT_AUDIENCE.to_owned()
}
fn default_access_ttl() -> u32 {
    900
}
fn default_refresh_ttl() -> u32 {
    14
}

impl Settings {
    /// Settings with every default and the given service credential.
    pub fn with_defaults(service_credential: SecretString) -> Self {
        Self {
            data_dir: default_data_dir(),
            user_database_url: None,
            user_database_max_connections: default_max_connections(),
            user_grpc_addr: default_grpc_addr(),
            user_signing_key: None,
            user_signing_key_file: None,
            user_generate_signing_key: false,
            jwt_issuer: default_issuer(),
            jwt_audience: default_audience(),
            access_token_ttl_seconds: default_access_ttl(),
            refresh_token_ttl_days: default_refresh_ttl(),
            admin_email: None,
            admin_password: None,
            service_credential: Some(service_credential),
        }
    }
}
