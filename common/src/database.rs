//! Opening a service's own database (SPEC §1): the configured URL
//! (PostgreSQL in production), or a SQLite file under `DATA_DIR`, the
//! embedded default.

use std::path::Path;

use anyhow::Context;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
    TransactionTrait,
};
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

/// The advisory lock key that serialises migrations (any value; the lock is
/// per database).
const MIGRATION_LOCK: i64 = 0x5350_5f4d_4947_5241;

/// Runs `migrate` while holding a PostgreSQL advisory lock, so that replicas
/// starting together on a fresh database migrate one after the other (two
/// concurrent `CREATE TYPE`s collide in the catalog); the later ones find
/// the work done. The lock is a transaction's (`pg_advisory_xact_lock`) on
/// a connection of its own, released however `migrate` ends; the migrations
/// run on the pool's other connections. SQLite has one writer anyway.
///
/// # Errors
/// `migrate`'s, or the lock's.
pub async fn migrate_exclusively<F, Fut>(db: &DatabaseConnection, migrate: F) -> Result<(), DbErr>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), DbErr>>,
{
    if db.get_database_backend() != DbBackend::Postgres {
        return migrate().await;
    }
    let lock = db.begin().await?;
    lock.execute(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"),
    ))
    .await?;
    let migrated = migrate().await;
    lock.rollback().await?;
    migrated
}
