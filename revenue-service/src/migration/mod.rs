//! Schema migrations of the revenue service; they run on PostgreSQL and on
//! SQLite, at start-up. The first rate card (SPEC §6) is seeded here.

use sea_orm_migration::{prelude::*, schema::*};

use crate::money::RateCard;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateRevenueTables), Box::new(AddRunErrorCode)]
    }
}

#[derive(DeriveIden)]
enum RateCards {
    Table,
    Version,
    EffectiveFrom,
    VideoTiers,
    AdTiers,
}

#[derive(DeriveIden)]
enum DailyStats {
    Table,
    Day,
    VideoId,
    CreatorId,
    Title,
    Views,
    WatchSeconds,
    AdViews,
    VideoAmount,
    AdAmount,
    TotalAmount,
    RateCardVersion,
}

#[derive(DeriveIden)]
enum SettlementRuns {
    Table,
    Id,
    Day,
    Status,
    CreatedAt,
    StartedAt,
    FinishedAt,
    HeartbeatAt,
    Rows,
    RateCardVersion,
    TotalAmount,
    PreviousTotalAmount,
    Error,
    ErrorCode,
}

#[derive(DeriveIden)]
enum SettlementLeases {
    Table,
    Day,
    Holder,
    ExpiresAt,
}

struct CreateRevenueTables;

impl MigrationName for CreateRevenueTables {
    fn name(&self) -> &str {
        "m20261122_000001_create_revenue_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRevenueTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_rate_cards(manager).await?;
        create_daily_stats(manager).await?;
        create_runs_and_leases(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SettlementLeases::Table.into_iden(),
            SettlementRuns::Table.into_iden(),
            DailyStats::Table.into_iden(),
            RateCards::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// `rate_cards`, seeded with SPEC §6's card (version 1, in effect from
/// 1970-01-01).
async fn create_rate_cards(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(RateCards::Table)
                .col(integer(RateCards::Version).primary_key())
                .col(date(RateCards::EffectiveFrom))
                .col(text(RateCards::VideoTiers))
                .col(text(RateCards::AdTiers))
                .to_owned(),
        )
        .await?;
    let card = RateCard::spec_v1();
    let json = |t| serde_json::to_string(t).map_err(|e| DbErr::Custom(e.to_string()));
    manager
        .exec_stmt(
            Query::insert()
                .into_table(RateCards::Table)
                .columns([
                    RateCards::Version,
                    RateCards::EffectiveFrom,
                    RateCards::VideoTiers,
                    RateCards::AdTiers,
                ])
                .values_panic([
                    card.version.into(),
                    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).into(),
                    json(&card.video_tiers)?.into(),
                    json(&card.ad_tiers)?.into(),
                ])
                .to_owned(),
        )
        .await
}

/// `daily_stats`: one row per video and settled day, indexed by video and
/// by creator.
async fn create_daily_stats(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(DailyStats::Table)
                .col(date(DailyStats::Day))
                .col(big_integer(DailyStats::VideoId))
                .col(big_integer(DailyStats::CreatorId))
                .col(string_len(DailyStats::Title, 200))
                .col(big_integer(DailyStats::Views))
                .col(big_integer(DailyStats::WatchSeconds))
                .col(big_integer(DailyStats::AdViews))
                .col(big_integer(DailyStats::VideoAmount))
                .col(big_integer(DailyStats::AdAmount))
                .col(big_integer(DailyStats::TotalAmount))
                .col(integer(DailyStats::RateCardVersion))
                .primary_key(
                    Index::create()
                        .col(DailyStats::Day)
                        .col(DailyStats::VideoId),
                )
                .to_owned(),
        )
        .await?;
    for (name, cols) in [
        (
            "idx_daily_stats_video",
            vec![DailyStats::VideoId, DailyStats::Day],
        ),
        (
            "idx_daily_stats_creator",
            vec![DailyStats::CreatorId, DailyStats::Day],
        ),
    ] {
        let mut index = Index::create();
        index.name(name).table(DailyStats::Table);
        for c in cols {
            index.col(c);
        }
        manager.create_index(index.to_owned()).await?;
    }
    Ok(())
}

/// `settlement_runs` (indexed by status) and `settlement_leases`.
async fn create_runs_and_leases(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(SettlementRuns::Table)
                .col(
                    big_integer(SettlementRuns::Id)
                        .auto_increment()
                        .primary_key(),
                )
                .col(date(SettlementRuns::Day))
                .col(string_len(SettlementRuns::Status, 16))
                .col(timestamp_with_time_zone(SettlementRuns::CreatedAt))
                .col(timestamp_with_time_zone_null(SettlementRuns::StartedAt))
                .col(timestamp_with_time_zone_null(SettlementRuns::FinishedAt))
                .col(timestamp_with_time_zone_null(SettlementRuns::HeartbeatAt))
                .col(big_integer(SettlementRuns::Rows))
                .col(integer_null(SettlementRuns::RateCardVersion))
                .col(big_integer_null(SettlementRuns::TotalAmount))
                .col(big_integer_null(SettlementRuns::PreviousTotalAmount))
                .col(text_null(SettlementRuns::Error))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_settlement_runs_status")
                .table(SettlementRuns::Table)
                .col(SettlementRuns::Status)
                .col(SettlementRuns::Id)
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table(SettlementLeases::Table)
                .col(date(SettlementLeases::Day).primary_key())
                .col(string_len(SettlementLeases::Holder, 64))
                .col(timestamp_with_time_zone(SettlementLeases::ExpiresAt))
                .to_owned(),
        )
        .await
}

/// `settlement_runs.error_code`: why a run failed or waits, for programs
/// (`common::domain::RunErrorCode`'s snake_case names).
struct AddRunErrorCode;

impl MigrationName for AddRunErrorCode {
    fn name(&self) -> &str {
        "m20261129_000002_add_run_error_code"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddRunErrorCode {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SettlementRuns::Table)
                    .add_column(text_null(SettlementRuns::ErrorCode))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SettlementRuns::Table)
                    .drop_column(SettlementRuns::ErrorCode)
                    .to_owned(),
            )
            .await
    }
}
