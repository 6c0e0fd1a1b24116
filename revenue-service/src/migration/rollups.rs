//! `m20261202_000001_add_rollups`: the roll-ups of issue 19
//! ([`crate::rollups`]), filled from the days already settled.
//!
//! - `rollup_video_stats`: per (creator, `week` or `month`, its first day,
//!   video) the sums of the video's settled rows in the period and how many
//!   there are (`days`); its title from the latest of them (`title_day`).
//!   Ranked reads of a period use `(period, period_start, views DESC,
//!   video_id)` and the same with `watch_seconds`: the top k of a period
//!   reads k index entries.
//! - `rollup_creator_stats`: per (creator, `day`, `week` or `month`, first
//!   day) the sums of the creator's rows.
//!
//! Both keys start with `creator_id`, the distribution column of a Citus
//! deployment (`docs/scaling.md`).

use common::domain::Period;
use sea_orm_migration::prelude::*;

use crate::rollups::period_start_sql;

/// See the module's documentation.
pub(super) struct AddRollups;

impl MigrationName for AddRollups {
    fn name(&self) -> &str {
        "m20261202_000001_add_rollups"
    }
}

/// The summed columns, as in `daily_stats`.
const SUMS: &str = "views, watch_seconds, ad_views, video_amount, ad_amount, total_amount";

#[async_trait::async_trait]
impl MigrationTrait for AddRollups {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let sums_columns = "views BIGINT NOT NULL, watch_seconds BIGINT NOT NULL, \
             ad_views BIGINT NOT NULL, video_amount BIGINT NOT NULL, \
             ad_amount BIGINT NOT NULL, total_amount BIGINT NOT NULL";
        db.execute_unprepared(&format!(
            "CREATE TABLE rollup_video_stats (\
               creator_id BIGINT NOT NULL, period VARCHAR(5) NOT NULL, \
               period_start DATE NOT NULL, video_id BIGINT NOT NULL, \
               title VARCHAR(200) NOT NULL, title_day DATE NULL, days BIGINT NOT NULL, \
               {sums_columns}, \
               PRIMARY KEY (creator_id, period, period_start, video_id))"
        ))
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_rollup_video_top_views ON rollup_video_stats \
               (period, period_start, views DESC, video_id)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_rollup_video_top_watch ON rollup_video_stats \
               (period, period_start, watch_seconds DESC, video_id)",
        )
        .await?;
        db.execute_unprepared(&format!(
            "CREATE TABLE rollup_creator_stats (\
               creator_id BIGINT NOT NULL, period VARCHAR(5) NOT NULL, \
               period_start DATE NOT NULL, days BIGINT NOT NULL, {sums_columns}, \
               PRIMARY KEY (creator_id, period, period_start))"
        ))
        .await?;
        // The days already settled.
        let backend = manager.get_database_backend();
        let week = period_start_sql(backend, Period::Week);
        let month = period_start_sql(backend, Period::Month);
        let summed = SUMS
            .split(", ")
            .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        for (period, start) in [("week", week), ("month", month)] {
            db.execute_unprepared(&format!(
                "INSERT INTO rollup_video_stats (creator_id, period, period_start, video_id, \
                   title, title_day, days, {SUMS}) \
                 SELECT d.creator_id, '{period}', d.period_start, d.video_id, \
                   (SELECT s.title FROM daily_stats s WHERE s.video_id = d.video_id \
                      AND s.day = d.title_day), \
                   d.title_day, d.days, {} \
                 FROM (SELECT creator_id, {start} AS period_start, video_id, \
                         MAX(day) AS title_day, COUNT(*) AS days, {summed} \
                       FROM daily_stats GROUP BY creator_id, {start}, video_id) d",
                SUMS.split(", ")
                    .map(|c| format!("d.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await?;
        }
        for (period, start) in [("day", "day"), ("week", week), ("month", month)] {
            db.execute_unprepared(&format!(
                "INSERT INTO rollup_creator_stats (creator_id, period, period_start, days, {SUMS}) \
                 SELECT creator_id, '{period}', {start}, COUNT(*), {summed} \
                 FROM daily_stats GROUP BY creator_id, {start}"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE rollup_creator_stats")
            .await?;
        db.execute_unprepared("DROP TABLE rollup_video_stats")
            .await?;
        Ok(())
    }
}
