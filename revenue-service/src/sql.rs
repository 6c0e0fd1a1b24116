//! Raw SQL that runs on PostgreSQL and SQLite alike: written with `$1`,
//! `$2`… placeholders, rewritten to `?1`, `?2`… for SQLite.

use sea_orm::{DatabaseBackend, Statement, Value};

/// A statement for `backend` from `sql` with `$n` placeholders.
pub fn stmt(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    let text = match backend {
        DatabaseBackend::Postgres => sql.to_owned(),
        _ => sql.replace('$', "?"),
    };
    Statement::from_sql_and_values(backend, text, values)
}
