//! The CSV import of historical counts (SPEC §6, §8): parsed and checked
//! whole first ([`parse_import`], no I/O), then applied in batches that
//! refresh the cumulative counts of their videos.

use std::collections::HashSet;

use chrono::NaiveDate;
use common::error::excerpt;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
    sea_query::{OnConflict, Query},
};

use super::refresh_cumulative;
use crate::{
    entity::{daily_count, video},
    error::StreamingError,
};

/// The most rows one import may hold.
pub const MAX_IMPORT_ROWS: usize = 100_000;
/// Import rows written per transaction.
pub const IMPORT_BATCH_ROWS: usize = 1_000;
/// The largest count an import row may carry in any field (SPEC §8: at
/// most 10¹²): a video's whole history of such days (years 0001–9999,
/// 3.65 × 10¹⁸) still sums inside `i64`, and a day's money fits too.
pub const MAX_IMPORT_COUNT: i64 = 1_000_000_000_000;

/// One refused CSV line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 1-based line number (the header is line 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows written.
    pub accepted: u64,
    /// Rows refused.
    pub rejected: Vec<Rejection>,
}

/// A parsed import row.
#[derive(Debug, Clone, Copy)]
struct ImportRow {
    line: u64,
    video_id: i64,
    day: NaiveDate,
    views: i64,
    watch_seconds: i64,
    ad_views: i64,
}

/// The CSV header an import must start with (SPEC §7).
pub const IMPORT_HEADER: [&str; 5] = ["video_id", "day", "views", "watch_seconds", "ad_views"];

/// Parses one record; `Err` is the rejection reason.
fn parse_record(record: &csv::StringRecord) -> Result<(i64, NaiveDate, i64, i64, i64), String> {
    if record.len() != IMPORT_HEADER.len() {
        return Err(format!("expected 5 columns, found {}", record.len()));
    }
    let field = |i: usize| record.get(i).unwrap_or_default().trim();
    let video_id: i64 = field(0)
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("video_id {} is not a video id", excerpt(field(0))))?;
    let day = common::time::parse_day(field(1)).map_err(|e| format!("day: {e}"))?;
    let count = |i: usize| -> Result<i64, String> {
        field(i)
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=MAX_IMPORT_COUNT).contains(n))
            .ok_or_else(|| {
                format!(
                    "{} {} is not an integer from 0 to {MAX_IMPORT_COUNT}",
                    IMPORT_HEADER.get(i).copied().unwrap_or("count"),
                    excerpt(field(i))
                )
            })
    };
    Ok((video_id, day, count(2)?, count(3)?, count(4)?))
}

/// Parses an import: the rows to write and the report of the lines refused
/// so far (the unknown videos are found later, against the database). No
/// I/O; any text gives an answer, never a panic.
///
/// # Errors
/// A missing or wrong header, or more than [`MAX_IMPORT_ROWS`] rows (400).
fn parse_import(csv_text: &str) -> Result<(Vec<ImportRow>, ImportReport), StreamingError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| StreamingError::field("csv", format!("unreadable header: {e}")))?
        .clone();
    if header.iter().collect::<Vec<_>>() != IMPORT_HEADER {
        return Err(StreamingError::field(
            "csv",
            format!("the header must be {}", IMPORT_HEADER.join(",")),
        ));
    }
    let mut report = ImportReport::default();
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for record in reader.records() {
        let (line, parsed) = match record {
            Ok(r) => (
                r.position().map_or(0, csv::Position::line),
                parse_record(&r),
            ),
            Err(e) => (
                e.position().map_or(0, csv::Position::line),
                Err(format!("unreadable CSV: {e}")),
            ),
        };
        if rows.len() + report.rejected.len() >= MAX_IMPORT_ROWS {
            return Err(StreamingError::field(
                "csv",
                format!("at most {MAX_IMPORT_ROWS} rows per import"),
            ));
        }
        match parsed {
            Ok((video_id, day, views, watch_seconds, ad_views)) => {
                if seen.insert((video_id, day)) {
                    rows.push(ImportRow {
                        line,
                        video_id,
                        day,
                        views,
                        watch_seconds,
                        ad_views,
                    });
                } else {
                    report.rejected.push(Rejection {
                        line,
                        reason: format!("video {video_id} on {day} appears twice in this file"),
                    });
                }
            }
            Err(reason) => report.rejected.push(Rejection { line, reason }),
        }
    }
    Ok((rows, report))
}

/// Imports historical counts: each good row sets its (video, day) counts;
/// bad rows are reported by line and skipped. The whole file is parsed and
/// checked first, so bad input writes nothing (a day of an archived month
/// is refused like a bad row); good rows are then written
/// in batches of [`IMPORT_BATCH_ROWS`], each its own transaction, so that
/// other writers (plays' write-backs, uploads) move between them. An import
/// stopped part-way (its call cancelled, the database down) leaves whole
/// batches applied; importing the same file again completes it, and
/// changes nothing once complete.
///
/// # Errors
/// A missing or wrong header, or too many rows (400); database failures;
/// [`StreamingError::MonthArchived`] for a month archived while the import
/// ran (each batch checks again under the archive's lock, see `archive`;
/// the batches before stay applied).
pub async fn import(
    db: &DatabaseConnection,
    csv_text: &str,
) -> Result<ImportReport, StreamingError> {
    let (rows, mut report) = parse_import(csv_text)?;
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r.video_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut known = HashSet::new();
    for chunk in ids.chunks(10_000) {
        let found: Vec<i64> = video::Entity::find()
            .select_only()
            .column(video::Column::Id)
            .filter(video::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        known.extend(found);
    }
    let (good, unknown): (Vec<ImportRow>, Vec<ImportRow>) =
        rows.into_iter().partition(|r| known.contains(&r.video_id));
    report.rejected.extend(unknown.iter().map(|r| Rejection {
        line: r.line,
        reason: format!("video {} does not exist", r.video_id),
    }));
    // An archived month is never written (its sums are in the videos'
    // carry, see `archive`).
    let archived_through = super::archive::archived_through(db).await?;
    let (good, archived): (Vec<ImportRow>, Vec<ImportRow>) = good
        .into_iter()
        .partition(|r| archived_through.is_none_or(|last| r.day > last));
    report.rejected.extend(archived.iter().map(|r| Rejection {
        line: r.line,
        reason: format!(
            "the month of {} is archived: restore it first (streaming-service archive restore)",
            r.day
        ),
    }));
    report.rejected.sort_by_key(|r| r.line);
    let mut good = good;
    good.sort_unstable_by_key(|r| (r.video_id, r.day));
    // The months of the imported days (issue 19's partitions), only
    // those: an import of 2019 and 2026 makes no month in between.
    let months: std::collections::BTreeSet<chrono::NaiveDate> = good
        .iter()
        .map(|r| common::partitions::month_of(r.day))
        .collect();
    for month in months {
        common::partitions::ensure_months(db, "daily_counts", month, month).await?;
    }
    // SQLite has one writer at a time, and its busy handler polls at up to
    // 100 ms intervals: an import that began its next batch at once would
    // win the lock over and over. Pausing as long as each batch took leaves
    // other writers half the time. PostgreSQL locks rows; no pause there.
    let pause = db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite;
    for batch in good.chunks(IMPORT_BATCH_ROWS) {
        let started = std::time::Instant::now();
        apply_batch(db, batch).await?;
        if pause {
            tokio::time::sleep(started.elapsed()).await;
        }
    }
    report.accepted = good.len() as u64;
    Ok(report)
}

/// Writes one batch of import rows and refreshes the cumulative counts of
/// their videos, in one transaction.
async fn apply_batch(db: &DatabaseConnection, batch: &[ImportRow]) -> Result<(), StreamingError> {
    let Some(first_day) = batch.iter().map(|r| r.day).min() else {
        return Ok(());
    };
    let mut insert = Query::insert();
    insert.into_table(daily_count::Entity).columns([
        daily_count::Column::VideoId,
        daily_count::Column::Day,
        daily_count::Column::Views,
        daily_count::Column::WatchSeconds,
        daily_count::Column::AdViews,
    ]);
    for r in batch {
        insert.values_panic([
            r.video_id.into(),
            r.day.into(),
            r.views.into(),
            r.watch_seconds.into(),
            r.ad_views.into(),
        ]);
    }
    insert.on_conflict(
        OnConflict::columns([daily_count::Column::VideoId, daily_count::Column::Day])
            .update_columns([
                daily_count::Column::Views,
                daily_count::Column::WatchSeconds,
                daily_count::Column::AdViews,
            ])
            .to_owned(),
    );
    let mut videos: Vec<i64> = batch.iter().map(|r| r.video_id).collect();
    videos.dedup(); // the batch is sorted by video
    let txn = db.begin().await?;
    let backend = txn.get_database_backend();
    if backend == sea_orm::DatabaseBackend::Postgres {
        // Shared with other batches, exclusive to an archive (a batch
        // waits for a running export): read under it, the archived months
        // cannot change before this commits.
        txn.execute_unprepared(&common::archive::lock(&super::archive::TABLE, true))
            .await?;
        let archived_through = super::archive::archived_through(&txn).await?;
        if let Some(row) = batch
            .iter()
            .find(|r| archived_through.is_some_and(|last| r.day <= last))
        {
            // Earlier batches stay applied: importing the file again
            // completes it (its days of archived months refused by line).
            return Err(StreamingError::MonthArchived(row.day));
        }
    }
    txn.execute(backend.build(&insert)).await?;
    refresh_cumulative(&txn, &videos, first_day).await?;
    let days: Vec<chrono::NaiveDate> = batch.iter().map(|r| r.day).collect();
    super::record_changed_days(&txn, &days).await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(fields.to_vec())
    }

    proptest::proptest! {
        /// Any text parses or is refused, without a panic; every row it
        /// keeps is within the bounds of SPEC §8.
        #[test]
        fn any_import_text_parses_or_is_refused(
            lines in proptest::collection::vec(
                "[0-9,+\\-\"a-z ]{0,40}|[0-9]{1,20},[+]?[0-9]{4,7}-[0-9]{2}-[0-9]{2},[0-9-]{1,20},[0-9]{1,20},[0-9]{1,20}",
                0..20,
            ),
        ) {
            let text = format!("{}\n{}", IMPORT_HEADER.join(","), lines.join("\n"));
            if let Ok((rows, report)) = parse_import(&text) {
                proptest::prop_assert!(rows.len() + report.rejected.len() <= lines.len());
                for r in rows {
                    proptest::prop_assert!(r.video_id > 0);
                    for count in [r.views, r.watch_seconds, r.ad_views] {
                        proptest::prop_assert!((0..=MAX_IMPORT_COUNT).contains(&count));
                    }
                }
            }
        }

        /// Any text in the header position is answered too.
        #[test]
        fn any_header_is_answered(text in "\\PC{0,200}") {
            let _ = parse_import(&text);
        }
    }

    #[test]
    fn records_are_checked_field_by_field() {
        assert!(parse_record(&record(&["1", "2026-11-01", "5", "60", "1"])).is_ok());
        assert!(parse_record(&record(&["1", "2026-11-01", "1000000000000", "0", "0"])).is_ok());
        let bad = [
            record(&["1", "2026-11-01", "-5", "60", "1"]),
            record(&["1", "2026-13-01", "5", "60", "1"]),
            record(&["x", "2026-11-01", "5", "60", "1"]),
            record(&["1", "2026-11-01", "5", "60"]),
            record(&["1", "2026-11-01", "5", "1.5", "1"]),
            record(&["1", "2026-11-01", "9223372036854775807", "60", "1"]),
            record(&["1", "2026-11-01", "5", "60", "1000000000001"]),
            record(&["1", "+262142-12-31", "5", "60", "1"]),
        ];
        for r in bad {
            assert!(parse_record(&r).is_err(), "{r:?} accepted");
        }
    }
}
