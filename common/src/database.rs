//! Opening a service's own database (SPEC §1): the configured URL
//! (PostgreSQL in production), or a SQLite file under `DATA_DIR`, the
//! embedded default.

use std::path::Path;

use anyhow::Context;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use secrecy::{ExposeSecret, SecretString};

/// Connects to `url`, or to `sqlite://<data_dir>/<file>` (created when
/// missing) when no URL is configured, with a pool of `max_connections`.
///
/// # Errors
/// The data directory cannot be created; the database cannot be reached.
pub async fn connect(
    url: Option<&SecretString>,
    data_dir: &Path,
    file: &str,
    max_connections: u32,
) -> anyhow::Result<DatabaseConnection> {
    let url = match url {
        Some(url) => url.expose_secret().to_owned(),
        None => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            format!("sqlite://{}/{file}?mode=rwc", data_dir.display())
        }
    };
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
        .min_connections(1)
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .with_context(|| format!("connecting to the database ({file} by default)"))
}
