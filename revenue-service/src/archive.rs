//! Retention (issue 19): a month of `daily_stats` exported to a Parquet
//! file and its partition detached and dropped, and a month restored from
//! such a file (the file, the checks and the locking: `common::archive`).
//! The roll-ups stay: a week's and a month's reports read them, so they
//! answer the same with the month archived; a day's report and a video's
//! days of an archived month are empty until it is restored, and settling
//! one of its days again is refused. PostgreSQL only (SQLite keeps one
//! table).
//!
//! The file's columns are `daily_stats`' ([`TABLE`]); its check sum is
//! `total_amount` (won).

use std::path::Path;

use chrono::NaiveDate;
pub use common::archive::{ArchiveError, Cell, Moved, Row};
use common::archive::{Column, Kind, Table};
use sea_orm::DatabaseConnection;

/// `daily_stats` as archived.
pub const TABLE: Table = Table {
    name: "daily_stats",
    columns: &[
        Column::new("day", Kind::Date),
        Column::new("video_id", Kind::Int64),
        Column::new("creator_id", Kind::Int64),
        Column::new("title", Kind::Text),
        Column::new("views", Kind::Int64),
        Column::new("watch_seconds", Kind::Int64),
        Column::new("ad_views", Kind::Int64),
        Column::new("video_amount", Kind::Int64),
        Column::new("ad_amount", Kind::Int64),
        Column::new("total_amount", Kind::Int64),
        Column::new("rate_card_version", Kind::Int32),
        Column::new("original_views", Kind::OptionalInt64),
        Column::new("original_ad_views", Kind::OptionalInt64),
        Column::new("restated_at", Kind::OptionalTimestamp),
    ],
    checksum: "total_amount",
};

/// Exports `month` (any day of it) of `daily_stats` to the Parquet file
/// `path`, checks the file, then detaches and drops the month's partition.
/// Only a month whose last day is final (SPEC §11.2: `final_after_days`
/// days after it, counted from `today`) may go.
///
/// # Errors
/// [`ArchiveError::NotOver`] for a month not final yet; see
/// `common::archive::export_month`. On any error the partition stays.
pub async fn export_month(
    db: &DatabaseConnection,
    month: NaiveDate,
    (today, final_after_days): (NaiveDate, u32),
    path: &Path,
) -> Result<Moved, ArchiveError> {
    common::archive::require_partitioned(db, &TABLE).await?;
    let month = common::partitions::month_of(month);
    let last_day = common::domain::Period::Month.range(month).1;
    if !crate::settlement::day_is_final(last_day, today, final_after_days) {
        return Err(ArchiveError::NotOver(
            month,
            "its last day is not final yet (SPEC §11.2)",
        ));
    }
    common::archive::export_month(db, &TABLE, month, path, &[]).await
}

/// Restores the month of `daily_stats` archived in `path`.
///
/// # Errors
/// See `common::archive::restore_month`; on any error nothing is
/// attached.
pub async fn restore_month(db: &DatabaseConnection, path: &Path) -> Result<Moved, ArchiveError> {
    common::archive::restore_month(db, &TABLE, path, &[]).await
}

/// Writes `groups` as the row groups of a new archive of `daily_stats` at
/// `path` (see `common::archive::write_rows`).
///
/// # Errors
/// I/O and Parquet failures; a cell that does not fit its column.
pub fn write_rows(path: &Path, groups: &[Vec<Row>]) -> Result<(), ArchiveError> {
    common::archive::write_rows(&TABLE, path, groups)
}
