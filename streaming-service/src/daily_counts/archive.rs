//! Retention of `daily_counts` (issue 19): a month of counts exported to
//! a Parquet file and its partition detached and dropped, and a month
//! restored from such a file (the file, the checks and the locking:
//! `common::archive`). PostgreSQL only (SQLite keeps one table).
//!
//! A video's cumulative counts before a day (its tier position, SPEC §6)
//! sum its whole history, so a month cannot just go: archiving it adds
//! each video's sums over the month to `daily_counts_carry`, where
//! [`super::refresh_cumulative`] starts a video whose earlier days are all
//! archived, and records the month in `daily_counts_archives`. For that
//! carry to be the sum of every day before any remaining one:
//! - months are archived oldest first (a month is refused while an
//!   earlier one still holds counts) and restored newest first;
//! - an archived month is never written: the import refuses its days, and
//!   only a month that is over and fully written back (the watermark past
//!   its last day) may go, so no play's write-back can reach it;
//! - the settlement's pull of one of its days, and a video's days from
//!   one of them, are refused (`FAILED_PRECONDITION`): archive a month of
//!   counts only once the revenue service is done with it (its close,
//!   SPEC §11.4).

use std::path::Path;

use chrono::NaiveDate;
pub use common::archive::{ArchiveError, Moved};
use common::{
    archive::{Column, Kind, Step, Table},
    partitions::{month_of, partition_name},
    time::PlatformTime,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Statement};

use crate::{entity::watermark, error::StreamingError};

/// `daily_counts` as archived; the file's check sum is `views`.
pub const TABLE: Table = Table {
    name: "daily_counts",
    columns: &[
        Column::new("day", Kind::Date),
        Column::new("video_id", Kind::Int64),
        Column::new("views", Kind::Int64),
        Column::new("watch_seconds", Kind::Int64),
        Column::new("ad_views", Kind::Int64),
        Column::new("views_before", Kind::Int64),
        Column::new("ad_views_before", Kind::Int64),
        Column::new("last_batch", Kind::OptionalText),
        Column::new("last_batch_seq", Kind::OptionalInt64),
    ],
    checksum: "views",
};

/// The newest archived month (its first day), if any (never on SQLite).
///
/// # Errors
/// Database failures.
pub async fn newest_archived(db: &impl ConnectionTrait) -> Result<Option<NaiveDate>, DbErr> {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT MAX(month) AS month FROM daily_counts_archives",
        ))
        .await?;
    match row {
        Some(r) => r.try_get("", "month"),
        None => Ok(None),
    }
}

/// The last archived day: every day up to it is archived, none after it.
///
/// # Errors
/// Database failures.
pub async fn archived_through(db: &impl ConnectionTrait) -> Result<Option<NaiveDate>, DbErr> {
    Ok(newest_archived(db)
        .await?
        .map(|month| common::domain::Period::Month.range(month).1))
}

/// Refuses `day` if its month is archived: its counts are not here to
/// read.
///
/// # Errors
/// [`StreamingError::MonthArchived`]; database failures.
pub async fn refuse_archived(
    db: &impl ConnectionTrait,
    day: NaiveDate,
) -> Result<(), StreamingError> {
    match archived_through(db).await? {
        Some(last) if day <= last => Err(StreamingError::MonthArchived(day)),
        _ => Ok(()),
    }
}

/// Exports `month` (any day of it) of `daily_counts` to the Parquet file
/// `path` (which must not exist), adds its sums to each video's carry,
/// records it as archived, and detaches and drops its partition, all in
/// one transaction holding the archive lock (`common::archive::lock`),
/// which the import's batches share: no import writes into the month, or
/// an earlier one, meanwhile.
///
/// # Errors
/// [`ArchiveError::NotOver`] when the month's last day is not before
/// `today` or the write-back's watermark (read in `time`'s zone) is not
/// past it; [`ArchiveError::Refused`] when an earlier month still holds
/// counts; see `common::archive::export_month`. On any error nothing
/// changes.
pub async fn export_month(
    db: &DatabaseConnection,
    month: NaiveDate,
    (today, time): (NaiveDate, &PlatformTime),
    path: &Path,
) -> Result<Moved, ArchiveError> {
    common::archive::require_partitioned(db, &TABLE).await?;
    let month = month_of(month);
    let last_day = common::domain::Period::Month.range(month).1;
    if last_day >= today {
        return Err(ArchiveError::NotOver(month, "the month is not over"));
    }
    // The watermark only moves on: a check outside the lock holds.
    let written_back = watermark::Entity::find_by_id(1)
        .one(db)
        .await?
        .map(|w| time.day_of(w.written_back_until));
    if written_back.is_none_or(|day| day <= last_day) {
        return Err(ArchiveError::NotOver(
            month,
            "its plays are not all written back (the watermark is not past its last day)",
        ));
    }
    let partition = partition_name(TABLE.name, month);
    let steps = [
        // Under the lock: no import can write an earlier month meanwhile.
        // Any row of an earlier month names it.
        Step::Refuse(format!(
            "SELECT to_char(day, 'YYYY-MM') || ' still holds counts: months are archived \
             oldest first' AS refusal FROM daily_counts WHERE day < DATE '{month}' LIMIT 1"
        )),
        Step::Run(format!(
            "INSERT INTO daily_counts_carry (video_id, views, ad_views) \
             SELECT video_id, SUM(views), SUM(ad_views) FROM {partition} GROUP BY video_id \
             ON CONFLICT (video_id) DO UPDATE \
             SET views = daily_counts_carry.views + excluded.views, \
                 ad_views = daily_counts_carry.ad_views + excluded.ad_views"
        )),
        Step::Run(format!(
            "INSERT INTO daily_counts_archives (month, rows, views, ad_views, archived_at) \
             SELECT DATE '{month}', COUNT(*), COALESCE(SUM(views), 0), \
                    COALESCE(SUM(ad_views), 0), now() FROM {partition}"
        )),
    ];
    common::archive::export_month(db, &TABLE, month, path, &steps).await
}

/// Restores the month of `daily_counts` archived in `path`, which must be
/// the newest archived month and hold exactly the rows and sums recorded
/// when it was archived: its rows come back as they were, its sums leave
/// the videos' carry and it is no longer recorded as archived, in the
/// transaction that attaches it (under the archive lock, where both
/// conditions are checked again).
///
/// # Errors
/// [`ArchiveError::Refused`] for a month that is not the newest archived
/// one, or a file whose rows or sums differ from the record; see
/// `common::archive::restore_month`. On any error nothing is attached.
pub async fn restore_month(db: &DatabaseConnection, path: &Path) -> Result<Moved, ArchiveError> {
    common::archive::require_partitioned(db, &TABLE).await?;
    let month = common::archive::month_of_file(&TABLE, path)?;
    // Checked first to refuse before a long load, and again in the swap.
    let newest = Step::Refuse(format!(
        "SELECT CASE WHEN newest IS NULL \
                  THEN '{m} is not archived: no month of daily_counts is' \
                WHEN newest <> DATE '{month}' \
                  THEN '{m} is not the newest archived month (' || to_char(newest, 'YYYY-MM') \
                       || '): months are restored newest first' END AS refusal \
         FROM (SELECT MAX(month) AS newest FROM daily_counts_archives) a",
        m = month.format("%Y-%m")
    ));
    common::archive::check(db, &newest).await?;
    let partition = partition_name(TABLE.name, month);
    let steps = [
        newest,
        Step::Refuse(format!(
            "SELECT 'the file holds ' || p.n || ' rows, ' || p.views || ' views and ' \
                    || p.ad_views || ' ad views; ' || a.rows || ', ' || a.views || ' and ' \
                    || a.ad_views || ' were archived' AS refusal \
             FROM daily_counts_archives a, \
                  (SELECT COUNT(*) AS n, COALESCE(SUM(views), 0) AS views, \
                          COALESCE(SUM(ad_views), 0) AS ad_views FROM {partition}) p \
             WHERE a.month = DATE '{month}' \
               AND (a.rows, a.views, a.ad_views) IS DISTINCT FROM (p.n, p.views, p.ad_views)"
        )),
        Step::Run(format!(
            "UPDATE daily_counts_carry c \
             SET views = c.views - s.views, ad_views = c.ad_views - s.ad_views \
             FROM (SELECT video_id, SUM(views) AS views, SUM(ad_views) AS ad_views \
                   FROM {partition} GROUP BY video_id) s \
             WHERE c.video_id = s.video_id"
        )),
        Step::Run("DELETE FROM daily_counts_carry WHERE views = 0 AND ad_views = 0".to_owned()),
        Step::Run(format!(
            "DELETE FROM daily_counts_archives WHERE month = DATE '{month}'"
        )),
    ];
    common::archive::restore_month(db, &TABLE, path, &steps).await
}
