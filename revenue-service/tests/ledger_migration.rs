//! `m20261201_000001_compact_ledger` keeps every transfer of the first
//! ledger: same ids, kinds, accounts, amounts, sources, reasons, actors and
//! times, on PostgreSQL (where a later migration also partitions them by
//! month) and on SQLite; new transfers continue after the
//! largest id; and rolling it back gives the first ledger's rows back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use common::domain::{CreatorId, TransferKind};
use revenue_service::{
    ledger::{self, Account, Line, Posting},
    migration::Migrator,
};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

/// Migrations before the compact ledger.
const BEFORE: u32 = 3;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// Every transfer as the SPEC names it, in id order.
const NAMED: &str = "SELECT transfer_id, kind, debit_account, credit_account, amount, creator_id, \
       video_id, CAST(day AS TEXT) AS day, source_kind, source_id, reason, actor \
     FROM {table} ORDER BY transfer_id";

type Row = (
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    String,
    i64,
    Option<String>,
    String,
);

async fn rows(db: &DatabaseConnection, table: &str) -> Vec<Row> {
    let rows = db
        .query_all(sea_orm::Statement::from_string(
            db.get_database_backend(),
            NAMED.replace("{table}", table),
        ))
        .await
        .expect("transfers read");
    rows.iter()
        .map(|r| {
            (
                r.try_get("", "transfer_id").unwrap(),
                r.try_get("", "kind").unwrap(),
                r.try_get("", "debit_account").unwrap(),
                r.try_get("", "credit_account").unwrap(),
                r.try_get("", "amount").unwrap(),
                r.try_get("", "creator_id").unwrap(),
                r.try_get("", "video_id").unwrap(),
                r.try_get("", "day").unwrap(),
                r.try_get("", "source_kind").unwrap(),
                r.try_get("", "source_id").unwrap(),
                r.try_get("", "reason").unwrap(),
                r.try_get("", "actor").unwrap(),
            )
        })
        .collect()
}

/// Runs the round trip on `db` (empty).
async fn round_trip(db: &DatabaseConnection) {
    Migrator::up(db, Some(BEFORE)).await.expect("first ledger");
    // Two settled days (opening `earning`s are made by the first ledger's
    // migration from rows; these are posted as that ledger posted them),
    // a restatement, an adjustment with its reason and a payout.
    db.execute_unprepared(
        "INSERT INTO ledger_transfers (kind, debit_account, credit_account, amount, creator_id, \
           video_id, day, posted_at, source_kind, source_id, reason, actor) VALUES \
         ('earning', 'platform:content_cost', 'creator:7:payable', 110, 7, 70, '2026-10-01', \
            '2026-10-02 01:00:00+00', 'run', 1, NULL, 'settlement'), \
         ('earning', 'platform:content_cost', 'creator:8:payable', 21, 8, 80, '2026-10-01', \
            '2026-10-02 01:00:00+00', 'run', 1, NULL, 'settlement'), \
         ('restatement', 'creator:8:payable', 'platform:content_cost', 1, 8, 80, '2026-10-01', \
            '2026-10-03 01:00:00+00', 'run', 2, NULL, 'settlement'), \
         ('adjustment', 'creator:7:payable', 'platform:content_cost', 110, 7, 70, '2026-10-01', \
            '2026-10-04 09:30:00+00', 'adjustment', 1, 'bot traffic', '1'), \
         ('payout', 'creator:7:payable', 'platform:cash', 5, 7, NULL, NULL, \
            '2026-11-10 00:00:00+00', 'payout', 3, NULL, 'settlement')",
    )
    .await
    .expect("first ledger's transfers");
    let before = rows(db, "ledger_transfers").await;
    assert_eq!(before.len(), 5);

    Migrator::up(db, None).await.expect("compact ledger");
    assert_eq!(rows(db, "ledger_transfers_named").await, before);
    assert_eq!(
        ledger::balance(db, CreatorId(7)).await.unwrap().0,
        -5,
        "110 earned, 110 clawed back, 5 paid out"
    );
    assert_eq!(ledger::balance(db, CreatorId(8)).await.unwrap().0, 20);
    // Postings: one per (source, reason, actor, time) the transfers shared.
    let postings = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM ledger_postings",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(postings, 4);
    // On PostgreSQL the transfers then move into their month's partition
    // (`m20261202_000004_partition_ledger_transfers`), the payout of no day
    // into the undated one.
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        let placed = db
            .query_all(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT tableoid::regclass::text AS p, COUNT(*) AS n FROM ledger_transfers \
                 GROUP BY 1 ORDER BY 1",
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| (r.try_get("", "p").unwrap(), r.try_get("", "n").unwrap()))
            .collect::<Vec<(String, i64)>>();
        assert_eq!(
            placed,
            [
                ("ledger_transfers_p202610".to_owned(), 4),
                ("ledger_transfers_undated".to_owned(), 1)
            ]
        );
    }

    // New transfers continue after the largest id.
    let posting = Posting {
        kind: TransferKind::Payout,
        source_kind: "payout",
        source_id: 4,
        reason: None,
        actor: "settlement".to_owned(),
        posted_at: chrono::Utc::now(),
        recorded: Default::default(),
    };
    let line = Line {
        kind: TransferKind::Payout,
        debit: Account::Payable,
        credit: Account::Cash,
        amount: 20,
        creator_id: 8,
        video_id: None,
        day: None,
    };
    ledger::post_lines(db, vec![line], &posting).await.unwrap();
    let after = rows(db, "ledger_transfers_named").await;
    assert_eq!(after.len(), 6);
    assert_eq!(after[5].0, 6, "the next id after 5");
    assert_eq!(after[5].2, "creator:8:payable");
    assert_eq!(after[5].3, "platform:cash");
    assert_eq!(ledger::balance(db, CreatorId(8)).await.unwrap().0, 0);

    // Rolled back (the compact ledger and every migration after it): the
    // first ledger's rows, the new one included.
    let after_first_ledger = u32::try_from(Migrator::migrations().len()).unwrap() - BEFORE;
    Migrator::down(db, Some(after_first_ledger))
        .await
        .expect("rolled back");
    let wide = rows(db, "ledger_transfers").await;
    assert_eq!(&wide[..5], &before[..]);
    assert_eq!(wide[5].0, 6);
    // And forward again.
    Migrator::up(db, None).await.expect("compact ledger again");
    assert_eq!(rows(db, "ledger_transfers_named").await, wide);
}

#[tokio::test]
async fn the_compact_ledger_keeps_every_transfer_on_sqlite() {
    let mut options = ConnectOptions::new("sqlite::memory:");
    options.max_connections(1).sqlx_logging(false);
    let db = Database::connect(options).await.expect("SQLite opens");
    round_trip(&db).await;
}

#[tokio::test]
async fn the_compact_ledger_keeps_every_transfer_on_postgres() {
    let server = Database::connect(format!("{POSTGRES}/postgres"))
        .await
        .expect("PostgreSQL reachable");
    let name = format!("test_ledger_migration_{}", uuid::Uuid::new_v4().simple());
    server
        .execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#))
        .await
        .expect("create database");
    let db = Database::connect(format!("{POSTGRES}/{name}"))
        .await
        .expect("test database");
    let outcome = tokio::spawn(async move { round_trip(&db).await }).await;
    server
        .execute_unprepared(&format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#))
        .await
        .expect("drop database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}
