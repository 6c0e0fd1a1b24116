//! Monthly time partitions of the large tables on PostgreSQL (issue 19):
//! `daily_counts` (streaming), `daily_stats` and `ledger_transfers`
//! (revenue) are partitioned by `RANGE (day)`, one partition a calendar
//! month, named `{table}_pYYYYMM` (the ledger's transfers of no day are
//! in its default partition, which refuses a dated one). The services create them ahead
//! ([`ensure_months`]: at start-up, for the month of every day they are
//! about to write, and daily for the months ahead), so a write never finds
//! its month missing. A month archived (`revenue-service archive`,
//! `streaming-service archive`; `common::archive`) and not restored is
//! made again, empty, if asked for: keeping writes out of archived months
//! is the writers' part (a `daily_stats` month goes only once final; the
//! import of `daily_counts` refuses archived months under the archive's
//! lock).
//!
//! SQLite keeps one table: every function here does nothing there.

use chrono::{Datelike, Months, NaiveDate};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, TransactionTrait};

/// The advisory lock under which partitions are created: two replicas
/// creating the same month at once would otherwise race in the catalog.
const PARTITION_LOCK: i64 = 0x7373_702d_7061_7274;

/// How long making a partition waits for the table's lock (PostgreSQL's
/// `CREATE TABLE … PARTITION OF` takes an exclusive lock on the parent,
/// so it queues behind a running settlement, and every reader behind it).
/// A call that times out fails with a database error; one made ahead of
/// need is tried again at the next settlement or start-up.
pub const LOCK_TIMEOUT: &str = "5s";

/// How many months after the current one are kept created ahead.
pub const MONTHS_AHEAD: u32 = 2;

/// The first day of `day`'s month.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// The partition of `table` holding `month` (its first day):
/// `{table}_pYYYYMM`.
pub fn partition_name(table: &str, month: NaiveDate) -> String {
    format!("{table}_p{:04}{:02}", month.year(), month.month())
}

/// Whether `table` is partitioned (PostgreSQL; never on SQLite).
///
/// # Errors
/// Database failures.
pub async fn is_partitioned(db: &impl ConnectionTrait, table: &str) -> Result<bool, DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(false);
    }
    let row = db
        .query_one(sea_orm::Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p \
               JOIN pg_class c ON c.oid = p.partrelid \
               WHERE c.relname = $1 AND pg_table_is_visible(c.oid)) AS partitioned",
            [table.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => r.try_get("", "partitioned")?,
        None => false,
    })
}

/// The months (first days) whose partitions `table` has, ascending.
///
/// # Errors
/// Database failures.
pub async fn months(db: &impl ConnectionTrait, table: &str) -> Result<Vec<NaiveDate>, DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(Vec::new());
    }
    let rows = db
        .query_all(sea_orm::Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT c.relname AS name FROM pg_inherits i \
               JOIN pg_class c ON c.oid = i.inhrelid \
               JOIN pg_class p ON p.oid = i.inhparent \
             WHERE p.relname = $1 AND pg_table_is_visible(p.oid) ORDER BY c.relname",
            [table.into()],
        ))
        .await?;
    let prefix = format!("{table}_p");
    let mut months = Vec::new();
    for row in rows {
        let name: String = row.try_get("", "name")?;
        if let Some(month) = name
            .strip_prefix(&prefix)
            .and_then(|m| NaiveDate::parse_from_str(&format!("{m}01"), "%Y%m%d").ok())
        {
            months.push(month);
        }
    }
    Ok(months)
}

/// Creates the partitions of `table` for every month from `first`'s to
/// `last`'s (days of those months) that it lacks. Does nothing on SQLite
/// or when `table` is not partitioned.
///
/// # Errors
/// Database failures.
pub async fn ensure_months<C>(
    db: &C,
    table: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<(), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    if !is_partitioned(db, table).await? {
        return Ok(());
    }
    let have = months(db, table).await?;
    let mut month = month_of(first);
    let mut missing = Vec::new();
    while month <= last {
        if !have.contains(&month) {
            missing.push(month);
        }
        month = match month.checked_add_months(Months::new(1)) {
            Some(next) => next,
            None => break,
        };
    }
    if missing.is_empty() {
        return Ok(());
    }
    let txn = db.begin().await?;
    txn.execute(sea_orm::Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [PARTITION_LOCK.into()],
    ))
    .await?;
    // Creating a partition locks the whole table: rather than wait behind
    // a long transaction (and make every reader wait behind it), give up.
    txn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .await?;
    for month in missing {
        let Some(next) = month.checked_add_months(Months::new(1)) else {
            continue;
        };
        txn.execute_unprepared(&format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF {table} \
             FOR VALUES FROM ('{month}') TO ('{next}')",
            partition_name(table, month)
        ))
        .await?;
        tracing::info!(table, %month, "partition created");
    }
    txn.commit().await
}

/// Creates the partitions of `table` from `today`'s month to
/// [`MONTHS_AHEAD`] months after it.
///
/// # Errors
/// Database failures.
pub async fn ensure_ahead<C>(db: &C, table: &str, today: NaiveDate) -> Result<(), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    let last = month_of(today)
        .checked_add_months(Months::new(MONTHS_AHEAD))
        .unwrap_or(today);
    ensure_months(db, table, today, last).await
}

/// Turns the plain table `table` into one partitioned by month on `day`
/// (a migration, on PostgreSQL; nothing on SQLite): the table is renamed,
/// a partitioned one with the same columns, `primary_key` and `indexes`
/// (name, columns) is created, with a partition for every month holding a
/// row and for the current month and the next [`MONTHS_AHEAD`], the rows
/// are moved and the old table dropped.
///
/// # Errors
/// Database failures.
pub async fn partition_by_month(
    db: &impl ConnectionTrait,
    table: &str,
    primary_key: &str,
    indexes: &[(&str, &str)],
    today: NaiveDate,
) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    let flat = format!("{table}_flat");
    db.execute_unprepared(&format!("ALTER TABLE {table} RENAME TO {flat}"))
        .await?;
    db.execute_unprepared(&format!(
        "ALTER TABLE {flat} RENAME CONSTRAINT {table}_pkey TO {flat}_pkey"
    ))
    .await?;
    for (name, _) in indexes {
        db.execute_unprepared(&format!("ALTER INDEX {name} RENAME TO {name}_flat"))
            .await?;
    }
    db.execute_unprepared(&format!(
        "CREATE TABLE {table} (LIKE {flat} INCLUDING DEFAULTS INCLUDING CONSTRAINTS \
           INCLUDING STORAGE, PRIMARY KEY ({primary_key})) PARTITION BY RANGE (day)"
    ))
    .await?;
    for (name, columns) in indexes {
        db.execute_unprepared(&format!("CREATE INDEX {name} ON {table} ({columns})"))
            .await?;
    }
    let rows = db
        .query_all(sea_orm::Statement::from_string(
            DatabaseBackend::Postgres,
            format!("SELECT DISTINCT CAST(date_trunc('month', day) AS DATE) AS month FROM {flat}"),
        ))
        .await?;
    let mut wanted: Vec<NaiveDate> = rows
        .iter()
        .map(|r| r.try_get("", "month"))
        .collect::<Result<_, _>>()?;
    let mut month = month_of(today);
    for _ in 0..=MONTHS_AHEAD {
        wanted.push(month);
        month = month.checked_add_months(Months::new(1)).unwrap_or(month);
    }
    wanted.sort_unstable();
    wanted.dedup();
    for month in wanted {
        let Some(next) = month.checked_add_months(Months::new(1)) else {
            continue;
        };
        db.execute_unprepared(&format!(
            "CREATE TABLE {} PARTITION OF {table} FOR VALUES FROM ('{month}') TO ('{next}')",
            partition_name(table, month)
        ))
        .await?;
    }
    db.execute_unprepared(&format!("INSERT INTO {table} SELECT * FROM {flat}"))
        .await?;
    db.execute_unprepared(&format!("DROP TABLE {flat}")).await?;
    Ok(())
}

/// Undoes [`partition_by_month`] (a migration's `down`): `table` becomes a
/// plain table again with its rows, `primary_key` and `indexes`. Nothing
/// on SQLite or when `table` is not partitioned.
///
/// # Errors
/// Database failures.
pub async fn unpartition(
    db: &impl ConnectionTrait,
    table: &str,
    primary_key: &str,
    indexes: &[(&str, &str)],
) -> Result<(), DbErr> {
    if !is_partitioned(db, table).await? {
        return Ok(());
    }
    let parts = format!("{table}_parts");
    db.execute_unprepared(&format!("ALTER TABLE {table} RENAME TO {parts}"))
        .await?;
    db.execute_unprepared(&format!(
        "ALTER TABLE {parts} RENAME CONSTRAINT {table}_pkey TO {parts}_pkey"
    ))
    .await?;
    for (name, _) in indexes {
        db.execute_unprepared(&format!("ALTER INDEX {name} RENAME TO {name}_parts"))
            .await?;
    }
    db.execute_unprepared(&format!(
        "CREATE TABLE {table} (LIKE {parts} INCLUDING DEFAULTS INCLUDING CONSTRAINTS \
           INCLUDING STORAGE, PRIMARY KEY ({primary_key}))"
    ))
    .await?;
    db.execute_unprepared(&format!("INSERT INTO {table} SELECT * FROM {parts}"))
        .await?;
    db.execute_unprepared(&format!("DROP TABLE {parts}"))
        .await?;
    for (name, columns) in indexes {
        db.execute_unprepared(&format!("CREATE INDEX {name} ON {table} ({columns})"))
            .await?;
    }
    Ok(())
}
