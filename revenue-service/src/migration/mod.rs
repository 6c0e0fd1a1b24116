//! Schema migrations of the revenue service; they run on PostgreSQL and on
//! SQLite, at start-up. The first rate card (SPEC §6) is seeded here.

use sea_orm_migration::{prelude::*, schema::*};

use crate::money::RateCard;

mod compact_ledger;
mod day_top;
mod ledger_partitions;
mod partitions;
mod rollups;
mod sparse_original_counts;
mod statements;
mod tax_policies;
mod webhooks;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateRevenueTables),
            Box::new(AddRunErrorCode),
            Box::new(AddLedger),
            Box::new(compact_ledger::CompactLedger),
            Box::new(tax_policies::AddTaxPolicies),
            Box::new(sparse_original_counts::SparseOriginalCounts),
            Box::new(statements::AddStatements),
            Box::new(webhooks::AddWebhooks),
            Box::new(rollups::AddRollups),
            Box::new(partitions::PartitionDailyStats),
            Box::new(day_top::IndexDayTop),
            Box::new(ledger_partitions::PartitionLedgerTransfers),
        ]
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
    OriginalViews,
    OriginalAdViews,
    RestatedAt,
}

#[derive(DeriveIden)]
enum SettledDays {
    Table,
    Day,
    SettledAt,
    RestatedAt,
    CountsVersion,
}

#[derive(DeriveIden)]
enum LedgerTransfers {
    Table,
    TransferId,
    Kind,
    DebitAccount,
    CreditAccount,
    Amount,
    CreatorId,
    VideoId,
    Day,
    PostedAt,
    SourceKind,
    SourceId,
    Reason,
    Actor,
}

#[derive(DeriveIden)]
enum Adjustments {
    Table,
    AdjustmentId,
    VideoId,
    CreatorId,
    Day,
    Views,
    AdViews,
    WatchSeconds,
    Reason,
    AmountClawedBack,
    CreatedAt,
    Actor,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Actor,
    Key,
    Fingerprint,
    CreatedAt,
    Status,
    ContentType,
    Body,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    AuditId,
    Actor,
    Action,
    Target,
    RequestId,
    At,
    Status,
    Replayed,
    IdempotencyKey,
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
    RestatedRows,
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
        drop_tables(
            manager,
            [
                SettlementLeases::Table.into_iden(),
                SettlementRuns::Table.into_iden(),
                DailyStats::Table.into_iden(),
                RateCards::Table.into_iden(),
            ],
        )
        .await?;
        Ok(())
    }
}

/// Creates each named index of `table` on its columns, in order.
async fn create_indexes<C: IntoIden, const N: usize>(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    indexes: impl IntoIterator<Item = (&'static str, [C; N])>,
) -> Result<(), DbErr> {
    let table = table.into_iden();
    for (name, columns) in indexes {
        let mut index = Index::create();
        index.name(name).table(table.clone());
        for column in columns {
            index.col(column);
        }
        manager.create_index(index.to_owned()).await?;
    }
    Ok(())
}

/// Drops `tables`, in order.
async fn drop_tables(
    manager: &SchemaManager<'_>,
    tables: impl IntoIterator<Item = DynIden>,
) -> Result<(), DbErr> {
    for table in tables {
        manager
            .drop_table(Table::drop().table(table).to_owned())
            .await?;
    }
    Ok(())
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
    create_indexes(
        manager,
        DailyStats::Table,
        [
            (
                "idx_daily_stats_video",
                [DailyStats::VideoId, DailyStats::Day],
            ),
            (
                "idx_daily_stats_creator",
                [DailyStats::CreatorId, DailyStats::Day],
            ),
        ],
    )
    .await?;
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

/// The ledger and what corrects money (SPEC §11.1–11.3, §11.6):
/// `ledger_transfers` (append-only, opened with one `earning` transfer per
/// settled (video, day) already in `daily_stats`), `settled_days` (a day's
/// state), the original counts of `daily_stats` beside the adjusted ones,
/// `adjustments`, `idempotency_keys` and `audit_log`.
struct AddLedger;

impl MigrationName for AddLedger {
    fn name(&self) -> &str {
        "m20261130_000003_add_ledger"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddLedger {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_original_counts(manager).await?;
        create_settled_days(manager).await?;
        create_ledger(manager).await?;
        create_adjustments(manager).await?;
        create_admin_writes(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            [
                AuditLog::Table.into_iden(),
                IdempotencyKeys::Table.into_iden(),
                Adjustments::Table.into_iden(),
                LedgerTransfers::Table.into_iden(),
                SettledDays::Table.into_iden(),
            ],
        )
        .await?;
        for column in [
            DailyStats::OriginalViews.into_iden(),
            DailyStats::OriginalAdViews.into_iden(),
            DailyStats::RestatedAt.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DailyStats::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(SettlementRuns::Table)
                    .drop_column(SettlementRuns::RestatedRows)
                    .to_owned(),
            )
            .await
    }
}

/// `daily_stats.original_views` and `original_ad_views` (the counts
/// before adjustments; so far equal to the counts), `restated_at`, and
/// `settlement_runs.restated_rows`.
async fn add_original_counts(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    for column in [
        big_integer(DailyStats::OriginalViews).default(0).to_owned(),
        big_integer(DailyStats::OriginalAdViews)
            .default(0)
            .to_owned(),
        timestamp_with_time_zone_null(DailyStats::RestatedAt).to_owned(),
    ] {
        manager
            .alter_table(
                Table::alter()
                    .table(DailyStats::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
    }
    manager
        .alter_table(
            Table::alter()
                .table(SettlementRuns::Table)
                .add_column(big_integer(SettlementRuns::RestatedRows).default(0))
                .to_owned(),
        )
        .await?;
    manager
        .exec_stmt(
            Query::update()
                .table(DailyStats::Table)
                .value(DailyStats::OriginalViews, Expr::col(DailyStats::Views))
                .value(DailyStats::OriginalAdViews, Expr::col(DailyStats::AdViews))
                .to_owned(),
        )
        .await
}

/// `settled_days`: one row per day that has been settled, with when its
/// amounts last changed after it was final and the streaming service's
/// change version its last run read (days settled before have version 0).
async fn create_settled_days(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(SettledDays::Table)
                .col(date(SettledDays::Day).primary_key())
                .col(timestamp_with_time_zone(SettledDays::SettledAt))
                .col(timestamp_with_time_zone_null(SettledDays::RestatedAt))
                .col(big_integer(SettledDays::CountsVersion).default(0))
                .to_owned(),
        )
        .await?;
    manager
        .exec_stmt(
            Query::insert()
                .into_table(SettledDays::Table)
                .columns([SettledDays::Day, SettledDays::SettledAt])
                .select_from(
                    Query::select()
                        .distinct()
                        .column(DailyStats::Day)
                        .expr(Expr::val(chrono::Utc::now()))
                        .from(DailyStats::Table)
                        .to_owned(),
                )
                .map_err(|e| DbErr::Custom(e.to_string()))?
                .to_owned(),
        )
        .await
}

/// `ledger_transfers` as the first ledger had it (one wide row per
/// transfer; `m20261201_000001_compact_ledger` replaces it), opened with an
/// `earning` transfer for every settled (video, day) with an amount.
async fn create_ledger(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_wide_ledger(manager).await?;
    let backend = manager.get_database_backend();
    manager
        .get_connection()
        .execute(crate::sql::stmt(
            backend,
            "INSERT INTO ledger_transfers (kind, debit_account, credit_account, amount, creator_id, \
               video_id, day, posted_at, source_kind, source_id, reason, actor) \
             SELECT 'earning', 'platform:content_cost', 'creator:' || creator_id || ':payable', \
               total_amount, creator_id, video_id, day, $1, 'migration', 0, \
               'opening balance: settled before the ledger', 'settlement' \
             FROM daily_stats WHERE total_amount > 0 ORDER BY day, video_id",
            vec![chrono::Utc::now().into()],
        ))
        .await?;
    Ok(())
}

/// The first ledger's `ledger_transfers`, indexed by (creator, transfer)
/// for a creator's entries.
async fn create_wide_ledger(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(LedgerTransfers::Table)
                .col(
                    big_integer(LedgerTransfers::TransferId)
                        .auto_increment()
                        .primary_key(),
                )
                .col(string_len(LedgerTransfers::Kind, 16))
                .col(string_len(LedgerTransfers::DebitAccount, 64))
                .col(string_len(LedgerTransfers::CreditAccount, 64))
                .col(
                    big_integer(LedgerTransfers::Amount)
                        .check(Expr::col(LedgerTransfers::Amount).gt(0)),
                )
                .col(big_integer_null(LedgerTransfers::CreatorId))
                .col(big_integer_null(LedgerTransfers::VideoId))
                .col(date_null(LedgerTransfers::Day))
                .col(timestamp_with_time_zone(LedgerTransfers::PostedAt))
                .col(string_len(LedgerTransfers::SourceKind, 16))
                .col(big_integer(LedgerTransfers::SourceId))
                .col(text_null(LedgerTransfers::Reason))
                .col(string_len(LedgerTransfers::Actor, 64))
                .to_owned(),
        )
        .await?;
    // By creator, for their entries and balance. Settlement reads no
    // ledger (what a (video, day) holds is its row's amount), so no index
    // by (day, video) is kept: each of a day's millions of transfers would
    // pay for it.
    create_indexes(
        manager,
        LedgerTransfers::Table,
        [(
            "idx_ledger_creator",
            [LedgerTransfers::CreatorId, LedgerTransfers::TransferId],
        )],
    )
    .await?;
    Ok(())
}

/// `adjustments`: invalid traffic removed from a video's day (SPEC §11.3),
/// indexed by (video, day) for settlement and by creator for their list.
async fn create_adjustments(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Adjustments::Table)
                .col(
                    big_integer(Adjustments::AdjustmentId)
                        .auto_increment()
                        .primary_key(),
                )
                .col(big_integer(Adjustments::VideoId))
                .col(big_integer(Adjustments::CreatorId))
                .col(date(Adjustments::Day))
                .col(big_integer(Adjustments::Views))
                .col(big_integer(Adjustments::AdViews))
                .col(big_integer(Adjustments::WatchSeconds))
                .col(text(Adjustments::Reason))
                .col(big_integer(Adjustments::AmountClawedBack))
                .col(timestamp_with_time_zone(Adjustments::CreatedAt))
                .col(big_integer(Adjustments::Actor))
                .to_owned(),
        )
        .await?;
    create_indexes(
        manager,
        Adjustments::Table,
        [
            (
                "idx_adjustments_video_day",
                [Adjustments::VideoId, Adjustments::Day],
            ),
            (
                "idx_adjustments_creator",
                [Adjustments::CreatorId, Adjustments::AdjustmentId],
            ),
        ],
    )
    .await?;
    Ok(())
}

/// `idempotency_keys` (per admin and key: the request's fingerprint and,
/// once answered, the answer) and `audit_log` (SPEC §11.6).
async fn create_admin_writes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(big_integer(IdempotencyKeys::Actor))
                .col(string_len(IdempotencyKeys::Key, 255))
                .col(string_len(IdempotencyKeys::Fingerprint, 64))
                .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                .col(integer_null(IdempotencyKeys::Status))
                .col(text_null(IdempotencyKeys::ContentType))
                .col(blob_null(IdempotencyKeys::Body))
                .primary_key(
                    Index::create()
                        .col(IdempotencyKeys::Actor)
                        .col(IdempotencyKeys::Key),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(
                    big_integer(AuditLog::AuditId)
                        .auto_increment()
                        .primary_key(),
                )
                .col(big_integer(AuditLog::Actor))
                .col(string_len(AuditLog::Action, 200))
                .col(string_len(AuditLog::Target, 500))
                .col(string_len(AuditLog::RequestId, 200))
                .col(timestamp_with_time_zone(AuditLog::At))
                .col(integer_null(AuditLog::Status))
                .col(boolean(AuditLog::Replayed).default(false))
                .col(string_len_null(AuditLog::IdempotencyKey, 255))
                .to_owned(),
        )
        .await
}
