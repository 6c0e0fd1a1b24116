//! `m20261202_000003_index_day_top`: the top k of a day reads k entries of
//! `(day, views DESC, video_id)` or `(day, watch_seconds DESC, video_id)`
//! instead of ranking every row of the day (issue 19: `bench/history.sh`
//! measured the cold day top at 80–112 ms over 200,000 videos a day; it
//! grows with the day's videos). Each index is paid on every settled row
//! (`docs/benchmarks.md` has the settlement with and without them).

use sea_orm_migration::prelude::*;

/// See the module's documentation.
pub(super) struct IndexDayTop;

impl MigrationName for IndexDayTop {
    fn name(&self) -> &str {
        "m20261202_000003_index_day_top"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexDayTop {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX idx_daily_stats_day_views ON daily_stats (day, views DESC, video_id)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_daily_stats_day_watch ON daily_stats \
               (day, watch_seconds DESC, video_id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX idx_daily_stats_day_views")
            .await?;
        db.execute_unprepared("DROP INDEX idx_daily_stats_day_watch")
            .await?;
        Ok(())
    }
}
