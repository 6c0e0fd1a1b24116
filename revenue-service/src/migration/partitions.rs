//! `m20261202_000002_partition_daily_stats`: on PostgreSQL, `daily_stats`
//! becomes partitioned by month on `day` (issue 19; `common::partitions`),
//! with the same key `(day, video_id)` and indexes; its rows move into
//! their months' partitions. SQLite keeps one table.

use sea_orm_migration::prelude::*;

/// See the module's documentation.
pub(super) struct PartitionDailyStats;

/// The secondary indexes of `daily_stats`: (name, columns).
const INDEXES: &[(&str, &str)] = &[
    ("idx_daily_stats_video", "video_id, day"),
    ("idx_daily_stats_creator", "creator_id, day"),
];

impl MigrationName for PartitionDailyStats {
    fn name(&self) -> &str {
        "m20261202_000002_partition_daily_stats"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PartitionDailyStats {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        common::partitions::partition_by_month(
            manager.get_connection(),
            "daily_stats",
            "day, video_id",
            INDEXES,
            chrono::Utc::now().date_naive(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        common::partitions::unpartition(
            manager.get_connection(),
            "daily_stats",
            "day, video_id",
            INDEXES,
        )
        .await
    }
}
