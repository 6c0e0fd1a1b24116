//! Settings of the user service. Each field is set by the environment
//! variable of the same name in upper case, or by the `CONFIG_FILE` TOML file
//! (see `common::config`).

use std::{net::SocketAddr, path::PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::oauth::provider::ProviderConfig;

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
    /// `USER_METRICS_ADDR`: where `/metrics` is served (e.g. `0.0.0.0:9464`
    /// in a container); unset: not served.
    #[serde(default)]
    pub user_metrics_addr: Option<SocketAddr>,
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
    /// Consul registration and discovery (`CONSUL_*`, `DISCOVERY_*`; see
    /// [`common::discovery::DiscoverySettings`]).
    #[serde(flatten)]
    pub discovery: common::discovery::DiscoverySettings,
    /// Load shedding and the longest call (`GRPC_*`; see
    /// [`common::grpc::ServeLimits`]).
    #[serde(flatten)]
    pub grpc: common::grpc::ServeLimits,
    /// `OAUTH_REDIRECT_BASE_URL`: the gateway's public base URL, e.g.
    /// `https://api.example.com`; providers send the browser back to
    /// `{base}/api/v1/auth/oauth/{provider}/callback` (SPEC §3). Required
    /// when any provider is configured.
    #[serde(default)]
    pub oauth_redirect_base_url: Option<String>,
    /// `OAUTH_STATE_TTL_SECONDS`: how long an authorization request may take
    /// before its state is refused (default 600).
    #[serde(default = "default_state_ttl")]
    pub oauth_state_ttl_seconds: u64,
    /// `OAUTH_GOOGLE_CLIENT_ID`: turns on "Sign in with Google" (issuer
    /// `https://accounts.google.com`, scopes `openid email profile`).
    #[serde(default)]
    pub oauth_google_client_id: Option<String>,
    /// `OAUTH_GOOGLE_CLIENT_SECRET`.
    #[serde(default)]
    pub oauth_google_client_secret: Option<SecretString>,
    /// `OAUTH_KAKAO_CLIENT_ID`: turns on Kakao Login with OpenID Connect
    /// (issuer `https://kauth.kakao.com`, scopes `openid account_email
    /// profile_nickname`). Kakao's REST API key is the client id.
    #[serde(default)]
    pub oauth_kakao_client_id: Option<String>,
    /// `OAUTH_KAKAO_CLIENT_SECRET`: the Kakao app's client secret.
    #[serde(default)]
    pub oauth_kakao_client_secret: Option<SecretString>,
    /// `OAUTH_OIDC_NAME`: the URL name of the operator's OpenID Connect
    /// provider (default `oidc`).
    #[serde(default = "default_oidc_name")]
    pub oauth_oidc_name: String,
    /// `OAUTH_OIDC_ISSUER`: its issuer URL (discovery at
    /// `{issuer}/.well-known/openid-configuration`); with the client id and
    /// secret, turns it on.
    #[serde(default)]
    pub oauth_oidc_issuer: Option<String>,
    /// `OAUTH_OIDC_CLIENT_ID`.
    #[serde(default)]
    pub oauth_oidc_client_id: Option<String>,
    /// `OAUTH_OIDC_CLIENT_SECRET`.
    #[serde(default)]
    pub oauth_oidc_client_secret: Option<SecretString>,
    /// `OAUTH_OIDC_SCOPES`: space-separated (default `openid email profile`).
    #[serde(default = "default_oidc_scopes")]
    pub oauth_oidc_scopes: String,
}

fn default_state_ttl() -> u64 {
    600
}
fn default_oidc_name() -> String {
    "oidc".to_owned()
}
fn default_oidc_scopes() -> String {
    "openid email profile".to_owned()
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
            user_metrics_addr: None,
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
            discovery: common::discovery::DiscoverySettings::default(),
            grpc: common::grpc::ServeLimits::default(),
            oauth_redirect_base_url: None,
            oauth_state_ttl_seconds: default_state_ttl(),
            oauth_google_client_id: None,
            oauth_google_client_secret: None,
            oauth_kakao_client_id: None,
            oauth_kakao_client_secret: None,
            oauth_oidc_name: default_oidc_name(),
            oauth_oidc_issuer: None,
            oauth_oidc_client_id: None,
            oauth_oidc_client_secret: None,
            oauth_oidc_scopes: default_oidc_scopes(),
        }
    }

    /// The social-login providers these settings turn on (SPEC §3).
    ///
    /// # Errors
    /// A provider with a client id but no secret (or the reverse), or any
    /// provider without `OAUTH_REDIRECT_BASE_URL`.
    pub fn oauth_providers(&self) -> anyhow::Result<Vec<ProviderConfig>> {
        let mut wanted = Vec::new();
        let presets = [
            (
                "google",
                Some("https://accounts.google.com".to_owned()),
                &self.oauth_google_client_id,
                &self.oauth_google_client_secret,
                "openid email profile",
            ),
            (
                "kakao",
                Some("https://kauth.kakao.com".to_owned()),
                &self.oauth_kakao_client_id,
                &self.oauth_kakao_client_secret,
                "openid account_email profile_nickname",
            ),
            (
                self.oauth_oidc_name.as_str(),
                self.oauth_oidc_issuer.clone(),
                &self.oauth_oidc_client_id,
                &self.oauth_oidc_client_secret,
                self.oauth_oidc_scopes.as_str(),
            ),
        ];
        for (name, issuer, id, secret, scopes) in presets {
            match (issuer, id, secret) {
                (Some(issuer), Some(id), Some(secret)) => {
                    wanted.push((name.to_owned(), issuer, id.clone(), secret.clone(), scopes))
                }
                (_, None, None) => {}
                _ => anyhow::bail!(
                    "the {name} sign-in needs its issuer, client id and client secret"
                ),
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let base = self
            .oauth_redirect_base_url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("OAUTH_REDIRECT_BASE_URL is required for social login"))?
            .trim_end_matches('/');
        Ok(wanted
            .into_iter()
            .map(
                |(name, issuer, client_id, client_secret, scopes)| ProviderConfig {
                    redirect_uri: format!("{base}/api/v1/auth/oauth/{name}/callback"),
                    name,
                    issuer,
                    client_id,
                    client_secret,
                    scopes: scopes.split_whitespace().map(str::to_owned).collect(),
                },
            )
            .collect())
    }
}
