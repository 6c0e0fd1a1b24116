//! Building and running the user service: database, migrations, the admin
//! account, the signing key, and the gRPC server with health and reflection.

use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use proto::user::v1::user_service_server::UserServiceServer;
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::{
    accounts::{AccountStore, password::Hasher},
    config::Settings,
    grpc::UserApi,
    migration::Migrator,
    oauth::SocialLogin,
    tokens::{access::AccessTokens, keys::SigningKey, refresh::RefreshTokens},
};

/// A built user service, bound to its port and ready to serve.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    api: UserApi,
    settings: Settings,
    /// What its gRPC health status depends on: the database.
    dependencies: common::grpc::health::Dependencies,
    /// `/metrics`, when `USER_METRICS_ADDR` is set.
    metrics: Option<(common::metrics::MetricsListener, prometheus::Registry)>,
}

impl Application {
    /// Connects to the database, migrates it, creates the configured admin,
    /// loads (or generates) the signing key and binds the gRPC port.
    ///
    /// # Errors
    /// Unreachable database, failed migration, bad admin settings, missing
    /// or bad signing key, port in use.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if settings.service_credential.is_none() {
            anyhow::bail!("SERVICE_CREDENTIAL is required");
        }
        let db = common::database::connect(
            settings.user_database_url.as_ref(),
            &settings.data_dir,
            "users.db",
            settings.user_database_max_connections,
        )
        .await?;
        common::database::migrate_exclusively(&db, || Migrator::up(&db, None))
            .await
            .context("migrating the user database")?;
        let accounts = AccountStore::new(db.clone(), Hasher::default());
        if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) {
            accounts
                .ensure_admin(email, password.expose_secret())
                .await
                .map_err(|e| anyhow::anyhow!("ADMIN_EMAIL/ADMIN_PASSWORD: {e:?}"))?;
        }
        let key = SigningKey::from_settings(&settings)?;
        let access = AccessTokens::new(
            key,
            settings.jwt_issuer.clone(),
            settings.jwt_audience.clone(),
            settings.access_token_ttl_seconds,
        );
        let refresh = RefreshTokens::new(db.clone(), settings.refresh_token_ttl_days);
        let providers = settings.oauth_providers()?;
        if !providers.is_empty() {
            let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
            tracing::info!(?names, "social login providers");
        }
        let dependencies = common::grpc::health::Dependencies::none().with_database(db.clone());
        let metrics = crate::metrics::UserMetrics::new();
        metrics.register_pool(&db)?;
        let social = SocialLogin::new(
            providers,
            db,
            accounts.clone(),
            std::time::Duration::from_secs(settings.oauth_state_ttl_seconds),
        )?;
        let listener = TcpListener::bind(settings.user_grpc_addr)
            .await
            .with_context(|| format!("binding {}", settings.user_grpc_addr))?;
        let addr = listener.local_addr()?;
        let api = UserApi::new(accounts, access, refresh, social).observed_by(metrics.clone());
        let metrics = match settings.user_metrics_addr {
            Some(addr) => Some((
                common::metrics::MetricsListener::bind(addr)?,
                metrics.registry,
            )),
            None => None,
        };
        Ok(Self {
            listener,
            addr,
            api,
            settings,
            dependencies,
            metrics,
        })
    }

    /// Where gRPC listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(l, _)| l.local_addr())
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes in-flight calls.
    ///
    /// # Errors
    /// Server failures.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(common::shutdown::signal()).await
    }

    /// Serves until `stop` resolves, then finishes in-flight calls.
    ///
    /// # Errors
    /// Server failures.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let credential = self
            .settings
            .service_credential
            .clone()
            .context("SERVICE_CREDENTIAL is required")?;
        let metrics = match self.metrics {
            Some((listener, registry)) => Some(listener.spawn(registry)?),
            None => None,
        };
        let served = common::grpc::serve(
            self.listener,
            credential,
            UserServiceServer::new(self.api),
            self.settings.grpc,
            self.dependencies,
            stop,
        )
        .await;
        drop(metrics);
        served
    }
}
