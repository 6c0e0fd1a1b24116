//! `m20261201_000003_sparse_original_counts`: on PostgreSQL,
//! `daily_stats.original_views` and `original_ad_views` may be NULL,
//! meaning "the same as `views` / `ad_views`" (no adjustment applies). A
//! day's millions of rows almost never have an adjustment, and two stored
//! copies of their counts cost 16 bytes a row. Rows already stored keep
//! their equal values (readers take `COALESCE(original_views, views)`), so
//! nothing is rewritten. SQLite keeps the columns as they are (it cannot
//! drop a NOT NULL in place, and the embedded database is small): there
//! the settlement writes the values.

use sea_orm_migration::prelude::*;

/// See the module's documentation.
pub(super) struct SparseOriginalCounts;

impl MigrationName for SparseOriginalCounts {
    fn name(&self) -> &str {
        "m20261201_000003_sparse_original_counts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SparseOriginalCounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE daily_stats \
                   ALTER COLUMN original_views DROP NOT NULL, \
                   ALTER COLUMN original_views DROP DEFAULT, \
                   ALTER COLUMN original_ad_views DROP NOT NULL, \
                   ALTER COLUMN original_ad_views DROP DEFAULT",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            return Ok(());
        }
        for sql in [
            "UPDATE daily_stats SET original_views = COALESCE(original_views, views), \
               original_ad_views = COALESCE(original_ad_views, ad_views) \
             WHERE original_views IS NULL OR original_ad_views IS NULL",
            "ALTER TABLE daily_stats \
               ALTER COLUMN original_views SET DEFAULT 0, \
               ALTER COLUMN original_views SET NOT NULL, \
               ALTER COLUMN original_ad_views SET DEFAULT 0, \
               ALTER COLUMN original_ad_views SET NOT NULL",
        ] {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
