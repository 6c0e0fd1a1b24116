//! `m20261203_000001_rollup_period_key`: on PostgreSQL,
//! `rollup_video_stats` is keyed `(period, period_start, creator_id,
//! video_id)` instead of `(creator_id, period, period_start, video_id)`.
//!
//! Why (issue 19, `docs/benchmarks.md`, "A year of history"): a day's
//! settlement upserts one row per video into its week and its month. With
//! the creator first, a period's rows lay between every other week and
//! month of the same creator, so the day's probes touched leaf pages spread
//! over the whole index, and the index pages a day needs grew with the
//! history. With the period first, a period's rows are one contiguous range
//! of the key, whatever the history. Every read of the table names a
//! period and its first day (`crate::reports`), so each is still one index
//! range; the key keeps `creator_id`, the Citus distribution column
//! (`docs/scaling.md`).
//!
//! SQLite keeps its key: it cannot change a primary key in place, and its
//! one-file databases are the small deployments. The upserts name the key's
//! columns as a set (`ON CONFLICT (…)`), which both keys match.
//! `rollup_creator_stats` keeps `(creator_id, period, period_start)`: its
//! reads are a creator's range of days (`reports::earnings_by_day`), and a
//! day writes one row per creator, not per video.

use sea_orm_migration::prelude::*;

/// See the module's documentation.
pub(super) struct RollupPeriodKey;

impl MigrationName for RollupPeriodKey {
    fn name(&self) -> &str {
        "m20261203_000001_rollup_period_key"
    }
}

/// Replaces the key of `rollup_video_stats` by one on `columns`.
async fn rekey(manager: &SchemaManager<'_>, columns: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "ALTER TABLE rollup_video_stats DROP CONSTRAINT rollup_video_stats_pkey, \
               ADD CONSTRAINT rollup_video_stats_pkey PRIMARY KEY ({columns})"
        ))
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for RollupPeriodKey {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rekey(manager, "period, period_start, creator_id, video_id").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rekey(manager, "creator_id, period, period_start, video_id").await
    }
}
