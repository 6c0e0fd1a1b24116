//! Replicas that start together on a fresh PostgreSQL database migrate one
//! after the other (issue 20: two revenue replicas in compose collided in
//! `CREATE TYPE`), against the real PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use common::database::migrate_exclusively;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};

fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A migration that checks, waits, then creates: two of them at once both
/// see nothing and both create, unless they are serialised.
async fn create_type_once(db: &DatabaseConnection) -> Result<(), DbErr> {
    let exists = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT 1 AS one FROM pg_type WHERE typname = 'replica_race'",
        ))
        .await?
        .is_some();
    tokio::time::sleep(Duration::from_millis(300)).await;
    if !exists {
        db.execute_unprepared("CREATE TYPE replica_race AS ENUM ('a')")
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn replicas_migrating_at_once_take_turns() {
    let server = Database::connect(server_url()).await.unwrap();
    let name = format!("test_migrate_{}", std::process::id());
    server
        .execute_unprepared(&format!(r#"DROP DATABASE IF EXISTS "{name}""#))
        .await
        .unwrap();
    server
        .execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#))
        .await
        .unwrap();
    let url = format!(
        "{}/{name}",
        server_url().rsplit_once('/').map(|(b, _)| b).unwrap()
    );
    let one = Database::connect(&url).await.unwrap();
    let two = Database::connect(&url).await.unwrap();
    let (a, b) = tokio::join!(
        migrate_exclusively(&one, || create_type_once(&one)),
        migrate_exclusively(&two, || create_type_once(&two)),
    );
    one.close().await.unwrap();
    two.close().await.unwrap();
    server
        .execute_unprepared(&format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#))
        .await
        .unwrap();
    a.unwrap();
    b.unwrap();
}
