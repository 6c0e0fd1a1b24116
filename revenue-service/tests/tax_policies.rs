//! The tax policy (SPEC §11.4) is a versioned, effective-dated record: the
//! migration seeds the first, a later version takes effect from its month,
//! and a malformed policy is refused with its version and field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use revenue_service::{
    migration::Migrator,
    statements::{TaxPolicies, TaxPolicy},
};
use rust_decimal::Decimal;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

fn month(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

async fn migrated() -> DatabaseConnection {
    let mut options = ConnectOptions::new("sqlite::memory:");
    options.max_connections(1).sqlx_logging(false);
    let db = Database::connect(options).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    db
}

#[tokio::test]
async fn the_first_policy_is_seeded_and_a_later_one_takes_effect_from_its_month() {
    let db = migrated().await;
    let policies = TaxPolicies::load(&db).await.unwrap();
    let v1 = policies.for_month(month("2026-11-01")).unwrap();
    assert_eq!(
        *v1,
        TaxPolicy {
            effective_from: month("1970-01-01"),
            ..TaxPolicy::spec_v1()
        }
    );
    db.execute_unprepared(
        "INSERT INTO tax_policies (version, effective_from, income_tax_rate, local_tax_rate, \
           truncate_to, small_amount, minimum_payout) \
         VALUES (2, '2027-01-01', '0.033', '0.1', 10, 1000, 20000)",
    )
    .await
    .unwrap();
    let policies = TaxPolicies::load(&db).await.unwrap();
    assert_eq!(policies.for_month(month("2026-12-01")).unwrap().version, 1);
    let v2 = policies.for_month(month("2027-01-01")).unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.income_tax_rate, Decimal::new(33, 3));
    assert_eq!(v2.minimum_payout, 20_000);
}

#[tokio::test]
async fn a_malformed_policy_is_refused_with_its_version_and_field() {
    let db = migrated().await;
    db.execute_unprepared(
        "INSERT INTO tax_policies (version, effective_from, income_tax_rate, local_tax_rate, \
           truncate_to, small_amount, minimum_payout) \
         VALUES (2, '2027-01-01', 'three percent', '0.1', 10, 1000, 10000)",
    )
    .await
    .unwrap();
    let error = TaxPolicies::load(&db).await.unwrap_err().to_string();
    assert!(error.contains("tax policy 2: income_tax_rate"), "{error}");
    db.execute_unprepared(
        "UPDATE tax_policies SET income_tax_rate = '0.03', truncate_to = 0 WHERE version = 2",
    )
    .await
    .unwrap();
    let error = TaxPolicies::load(&db).await.unwrap_err().to_string();
    assert_eq!(error, "tax policy 2: truncate_to is out of range");
}

#[tokio::test]
async fn before_any_policy_no_month_has_one() {
    let db = migrated().await;
    db.execute_unprepared("DELETE FROM tax_policies")
        .await
        .unwrap();
    let policies = TaxPolicies::load(&db).await.unwrap();
    assert!(policies.for_month(month("2026-11-01")).is_err());
}
