//! Schema migrations of the streaming service; they run on PostgreSQL and on
//! SQLite, at start-up.

use sea_orm_migration::{prelude::*, schema::*};

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateStreamingTables),
            Box::new(AddChangedDays),
            Box::new(AddBatchSequence),
            Box::new(PartitionDailyCounts),
            Box::new(AddArchivedCounts),
        ]
    }
}

#[derive(DeriveIden)]
enum Videos {
    Table,
    Id,
    CreatorId,
    Title,
    Description,
    DurationSeconds,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Ads {
    Table,
    Id,
    Title,
    DurationSeconds,
    StartDate,
    EndDate,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AdSlots {
    Table,
    VideoId,
    PositionSeconds,
    AdId,
}

#[derive(DeriveIden)]
enum DailyCounts {
    Table,
    VideoId,
    Day,
    Views,
    WatchSeconds,
    AdViews,
    LastBatch,
    LastBatchSeq,
    ViewsBefore,
    AdViewsBefore,
}

#[derive(DeriveIden)]
enum Watermarks {
    Table,
    Id,
    WrittenBackUntil,
}

struct CreateStreamingTables;

impl MigrationName for CreateStreamingTables {
    fn name(&self) -> &str {
        "m20261122_000001_create_streaming_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateStreamingTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_catalog(manager).await?;
        create_counts(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Watermarks::Table.into_iden(),
            DailyCounts::Table.into_iden(),
            AdSlots::Table.into_iden(),
            Ads::Table.into_iden(),
            Videos::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The catalogue: `videos` (indexed by creator), `ads` and `ad_slots`.
async fn create_catalog(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Videos::Table)
                .col(big_integer(Videos::Id).auto_increment().primary_key())
                .col(big_integer(Videos::CreatorId))
                .col(string_len(Videos::Title, 200))
                .col(text(Videos::Description))
                .col(integer(Videos::DurationSeconds))
                .col(timestamp_with_time_zone(Videos::CreatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_videos_creator")
                .table(Videos::Table)
                .col(Videos::CreatorId)
                .col(Videos::Id)
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table(Ads::Table)
                .col(big_integer(Ads::Id).auto_increment().primary_key())
                .col(string_len(Ads::Title, 200))
                .col(integer(Ads::DurationSeconds))
                .col(date(Ads::StartDate))
                .col(date(Ads::EndDate))
                .col(timestamp_with_time_zone(Ads::CreatedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table(AdSlots::Table)
                .col(big_integer(AdSlots::VideoId))
                .col(integer(AdSlots::PositionSeconds))
                .col(big_integer_null(AdSlots::AdId))
                .primary_key(
                    Index::create()
                        .col(AdSlots::VideoId)
                        .col(AdSlots::PositionSeconds),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(AdSlots::Table, AdSlots::VideoId)
                        .to(Videos::Table, Videos::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await
}

/// The counts: `daily_counts` (with its index) and the write-back
/// `watermarks`.
async fn create_counts(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(DailyCounts::Table)
                .col(big_integer(DailyCounts::VideoId))
                .col(date(DailyCounts::Day))
                .col(big_integer(DailyCounts::Views))
                .col(big_integer(DailyCounts::WatchSeconds))
                .col(big_integer(DailyCounts::AdViews))
                .col(string_len_null(DailyCounts::LastBatch, 36))
                .col(big_integer(DailyCounts::ViewsBefore).default(0))
                .col(big_integer(DailyCounts::AdViewsBefore).default(0))
                .primary_key(
                    Index::create()
                        .col(DailyCounts::VideoId)
                        .col(DailyCounts::Day),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("idx_daily_counts_day_video")
                .table(DailyCounts::Table)
                .col(DailyCounts::Day)
                .col(DailyCounts::VideoId)
                .to_owned(),
        )
        .await?;
    manager
        .create_table(
            Table::create()
                .table(Watermarks::Table)
                .col(integer(Watermarks::Id).primary_key())
                .col(timestamp_with_time_zone(Watermarks::WrittenBackUntil))
                .to_owned(),
        )
        .await
}

#[derive(DeriveIden)]
enum ChangedDays {
    Table,
    Day,
    Version,
}

#[derive(DeriveIden)]
enum ChangeVersions {
    Table,
    Id,
    Version,
}

/// `changed_days` (each day whose counts were written, with the version of
/// its last change) and `change_versions` (the one counter those versions
/// come from): what the revenue service re-settles late counts by (SPEC
/// §11.2).
struct AddChangedDays;

impl MigrationName for AddChangedDays {
    fn name(&self) -> &str {
        "m20261130_000002_add_changed_days"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddChangedDays {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChangedDays::Table)
                    .col(date(ChangedDays::Day).primary_key())
                    .col(big_integer(ChangedDays::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_changed_days_version")
                    .table(ChangedDays::Table)
                    .col(ChangedDays::Version)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChangeVersions::Table)
                    .col(integer(ChangeVersions::Id).primary_key())
                    .col(big_integer(ChangeVersions::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(ChangeVersions::Table)
                    .columns([ChangeVersions::Id, ChangeVersions::Version])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ChangeVersions::Table.into_iden(),
            ChangedDays::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// `daily_counts.last_batch_seq`: the sequence number of the last
/// write-back batch applied to the row (see [`crate::counting`]). Rows
/// written before it have none, and the first batch with a sequence applies.
struct AddBatchSequence;

impl MigrationName for AddBatchSequence {
    fn name(&self) -> &str {
        "m20261130_000003_add_batch_sequence"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddBatchSequence {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DailyCounts::Table)
                    .add_column(big_integer_null(DailyCounts::LastBatchSeq))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DailyCounts::Table)
                    .drop_column(DailyCounts::LastBatchSeq)
                    .to_owned(),
            )
            .await
    }
}

/// `m20261202_000001_partition_daily_counts`: on PostgreSQL,
/// `daily_counts` becomes partitioned by month on `day` (issue 19;
/// `common::partitions`), with the same key `(video_id, day)` and index;
/// its rows move into their months' partitions. SQLite keeps one table.
struct PartitionDailyCounts;

impl MigrationName for PartitionDailyCounts {
    fn name(&self) -> &str {
        "m20261202_000001_partition_daily_counts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PartitionDailyCounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        common::partitions::partition_by_month(
            manager.get_connection(),
            "daily_counts",
            "video_id, day",
            &[("idx_daily_counts_day_video", "day, video_id")],
            chrono::Utc::now().date_naive(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        common::partitions::unpartition(
            manager.get_connection(),
            "daily_counts",
            "video_id, day",
            &[("idx_daily_counts_day_video", "day, video_id")],
        )
        .await
    }
}

/// `m20261203_000001_add_archived_counts`: what `streaming-service archive`
/// keeps of the months of `daily_counts` it moved to Parquet files
/// (issue 19; [`crate::daily_counts::archive`]):
/// - `daily_counts_carry (video_id PRIMARY KEY, views, ad_views)`: each
///   video's sums over its archived days, where the cumulative counts of
///   a video whose earlier days are all archived start from;
/// - `daily_counts_archives (month PRIMARY KEY, rows, views, ad_views,
///   archived_at)`: the archived months (their first days) with their row
///   count and sums, which a restore's file must match.
///
/// Both tables exist on SQLite too, and stay empty there (no partitions,
/// nothing archived). For Citus (`docs/scaling.md`): the carry is
/// distributed by `video_id`, like `daily_counts`; the archived months are
/// a local table, as the watermark.
struct AddArchivedCounts;

impl MigrationName for AddArchivedCounts {
    fn name(&self) -> &str {
        "m20261203_000001_add_archived_counts"
    }
}

#[derive(DeriveIden)]
enum DailyCountsCarry {
    Table,
    VideoId,
    Views,
    AdViews,
}

#[derive(DeriveIden)]
enum DailyCountsArchives {
    Table,
    Month,
    Rows,
    Views,
    AdViews,
    ArchivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for AddArchivedCounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DailyCountsCarry::Table)
                    .if_not_exists()
                    .col(big_integer(DailyCountsCarry::VideoId).primary_key())
                    .col(big_integer(DailyCountsCarry::Views))
                    .col(big_integer(DailyCountsCarry::AdViews))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DailyCountsArchives::Table)
                    .if_not_exists()
                    .col(date(DailyCountsArchives::Month).primary_key())
                    .col(big_integer(DailyCountsArchives::Rows))
                    .col(big_integer(DailyCountsArchives::Views))
                    .col(big_integer(DailyCountsArchives::AdViews))
                    .col(timestamp_with_time_zone(DailyCountsArchives::ArchivedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DailyCountsCarry::Table.into_iden(),
            DailyCountsArchives::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
