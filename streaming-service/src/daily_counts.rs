//! Reading and importing `daily_counts`: the per-day rows the settlement
//! pulls (SPEC §9) and the CSV import of historical counts (SPEC §6).

use std::collections::HashSet;

use chrono::NaiveDate;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
    Statement, TransactionTrait,
    sea_query::{OnConflict, Query},
};

use common::error::excerpt;

use crate::{
    entity::{daily_count, video},
    error::StreamingError,
};

/// Rows fetched per query while streaming a day.
pub const PAGE_ROWS: usize = 5_000;
/// Pages of a day read at once while streaming it, each on its own
/// database connection.
pub const PAGES_IN_FLIGHT: usize = 2;
/// Rows per `DailyCountPage` message of the stream (SPEC §9): at most
/// ≈ 900 bytes a row, so a message stays under gRPC's 4 MiB default limit.
pub const MESSAGE_ROWS: usize = 1_000;
/// The most rows one import may hold.
pub const MAX_IMPORT_ROWS: usize = 100_000;
/// Import rows written per transaction.
pub const IMPORT_BATCH_ROWS: usize = 1_000;
/// The largest count an import row may carry in any field (SPEC §8: at
/// most 10¹²): a video's whole history of such days (years 0001–9999,
/// 3.65 × 10¹⁸) still sums inside `i64`, and a day's money fits too.
pub const MAX_IMPORT_COUNT: i64 = 1_000_000_000_000;

/// One video's counts of a day with its cumulative counts before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    /// The video.
    pub video_id: i64,
    /// Its creator.
    pub creator_id: i64,
    /// Views of the day.
    pub views: i64,
    /// Watch seconds of the day.
    pub watch_seconds: i64,
    /// Ad views of the day.
    pub ad_views: i64,
    /// Views of every earlier day.
    pub cumulative_views_before: i64,
    /// Ad views of every earlier day.
    pub cumulative_ad_views_before: i64,
    /// The video's title.
    pub title: String,
}

impl From<DayRow> for proto::streaming::v1::DailyCount {
    fn from(row: DayRow) -> Self {
        Self {
            video_id: row.video_id,
            creator_id: row.creator_id,
            views: row.views,
            watch_seconds: row.watch_seconds,
            ad_views: row.ad_views,
            cumulative_views_before: row.cumulative_views_before,
            cumulative_ad_views_before: row.cumulative_ad_views_before,
            title: row.title,
        }
    }
}

/// `rows` as stream messages of at most [`MESSAGE_ROWS`] rows each, in
/// order; no rows, no messages.
pub fn messages(rows: Vec<DayRow>) -> impl Iterator<Item = proto::streaming::v1::DailyCountPage> {
    let mut rows = rows.into_iter().map(Into::into).peekable();
    std::iter::from_fn(move || {
        rows.peek()?;
        Some(proto::streaming::v1::DailyCountPage {
            rows: rows.by_ref().take(MESSAGE_ROWS).collect(),
        })
    })
}

/// Where the page after `after_video_id` ends: the id of the
/// [`PAGE_ROWS`]th video with counts on `day` after it, or `None` when
/// fewer are left (the last page). An index-only walk of
/// `(day, video_id)`, much cheaper than reading the page, so the stream can
/// read the next pages while this one is still being read.
///
/// # Errors
/// Database failures.
async fn page_end(
    db: &DatabaseConnection,
    day: NaiveDate,
    after_video_id: i64,
) -> Result<Option<i64>, StreamingError> {
    let backend = db.get_database_backend();
    let (day_p, after_p) = placeholders(backend);
    let offset = PAGE_ROWS - 1;
    let sql = format!(
        "SELECT video_id FROM daily_counts WHERE day = {day_p} AND video_id > {after_p} \
         ORDER BY video_id LIMIT 1 OFFSET {offset}"
    );
    let row = db
        .query_one(day_after_statement(backend, sql, day, after_video_id))
        .await?;
    Ok(row.map(|r| r.try_get_by_index(0)).transpose()?)
}

/// The rows of `day` for videos in `(after_video_id, last_video_id]`
/// (no upper bound when `last_video_id` is `None`), ascending.
///
/// # Errors
/// Database failures.
async fn page(
    db: &DatabaseConnection,
    day: NaiveDate,
    after_video_id: i64,
    last_video_id: Option<i64>,
) -> Result<Vec<DayRow>, StreamingError> {
    let backend = db.get_database_backend();
    let (day_p, after_p) = placeholders(backend);
    // The bounds on `v.id` as well as on `d.video_id`: otherwise the merge
    // join scans the videos from the first one on every page. The upper
    // bound is written into the text (an integer, no injection possible),
    // so that PostgreSQL plans each page for its real, small range instead
    // of a generic plan that looks expensive enough to JIT-compile.
    let upper = last_video_id
        .map(|last| format!(" AND d.video_id <= {last} AND v.id <= {last}"))
        .unwrap_or_default();
    let sql = format!(
        "SELECT d.video_id, v.creator_id, v.title, d.views, d.watch_seconds, d.ad_views, \
           d.views_before, d.ad_views_before \
         FROM daily_counts d JOIN videos v ON v.id = d.video_id \
         WHERE d.day = {day_p} AND d.video_id > {after_p} AND v.id > {after_p}{upper} \
         ORDER BY d.video_id"
    );
    let rows = db
        .query_all(day_after_statement(backend, sql, day, after_video_id))
        .await?;
    // By position, in the SELECT's order (no lookup of each column by name).
    rows.iter()
        .map(|r| {
            Ok(DayRow {
                video_id: r.try_get_by_index(0)?,
                creator_id: r.try_get_by_index(1)?,
                title: r.try_get_by_index(2)?,
                views: r.try_get_by_index(3)?,
                watch_seconds: r.try_get_by_index(4)?,
                ad_views: r.try_get_by_index(5)?,
                cumulative_views_before: r.try_get_by_index(6)?,
                cumulative_ad_views_before: r.try_get_by_index(7)?,
            })
        })
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(Into::into)
}

/// The day's rows after `after_video_id` in ascending video id order, one
/// page (about [`PAGE_ROWS`] rows) at a time, reading up to
/// [`PAGES_IN_FLIGHT`] pages at once on separate connections. Ends after
/// the last page, or after the first error.
pub fn pages(
    db: DatabaseConnection,
    day: NaiveDate,
    after_video_id: i64,
) -> impl futures::Stream<Item = Result<Vec<DayRow>, StreamingError>> {
    use futures::TryStreamExt;
    // (after, last) of each page: `last` is `None` for the final one.
    let bounds = futures::stream::try_unfold(Some(after_video_id), {
        let db = db.clone();
        move |after| {
            let db = db.clone();
            async move {
                let Some(after) = after else {
                    return Ok(None);
                };
                let last = page_end(&db, day, after).await?;
                Ok(Some(((after, last), last)))
            }
        }
    });
    bounds
        .map_ok(move |(after, last)| {
            // A task of its own: the read goes on while the caller is busy
            // sending the page before it.
            let read = tokio::spawn({
                let db = db.clone();
                async move { page(&db, day, after, last).await }
            });
            async move {
                read.await
                    .map_err(|e| StreamingError::Internal(anyhow::anyhow!("page read: {e}")))?
            }
        })
        .try_buffered(PAGES_IN_FLIGHT)
}

/// `sql` with `day` bound to its first placeholder and `after_video_id` to
/// its second (see [`placeholders`]).
fn day_after_statement(
    backend: sea_orm::DatabaseBackend,
    sql: String,
    day: NaiveDate,
    after_video_id: i64,
) -> Statement {
    Statement::from_sql_and_values(backend, sql, [day.into(), after_video_id.into()])
}

/// The first and second bind placeholders in `backend`'s SQL dialect.
fn placeholders(backend: sea_orm::DatabaseBackend) -> (&'static str, &'static str) {
    match backend {
        sea_orm::DatabaseBackend::Postgres => ("$1", "$2"),
        _ => ("?1", "?2"),
    }
}

/// Recomputes `views_before` and `ad_views_before` of the rows of
/// `videos` from `from_day` on, after their counts changed on `from_day`
/// or later. Derived values only: running it twice changes nothing.
///
/// One pass per video: a running sum (a window function) over its days in
/// order, linear in its history, writing only the rows whose sums changed
/// (a per-row correlated `SUM` was quadratic: 90,000 days held the
/// embedded database's write lock for minutes).
///
/// # Errors
/// Database failures.
pub async fn refresh_cumulative<C: ConnectionTrait>(
    db: &C,
    videos: &[i64],
    from_day: NaiveDate,
) -> Result<(), sea_orm::DbErr> {
    if videos.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let (day_p, _) = placeholders(backend);
    // Ids are integers: written into the text, no injection possible.
    let ids = videos
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "UPDATE daily_counts SET views_before = w.views_before, ad_views_before = w.ad_views_before \
         FROM (SELECT video_id, day, \
                 COALESCE(SUM(views) OVER running, 0) AS views_before, \
                 COALESCE(SUM(ad_views) OVER running, 0) AS ad_views_before \
               FROM daily_counts WHERE video_id IN ({ids}) \
               WINDOW running AS (PARTITION BY video_id ORDER BY day \
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS w \
         WHERE daily_counts.video_id IN ({ids}) AND daily_counts.day >= {day_p} \
           AND daily_counts.video_id = w.video_id AND daily_counts.day = w.day \
           AND (daily_counts.views_before <> w.views_before \
                OR daily_counts.ad_views_before <> w.ad_views_before)"
    );
    db.execute(Statement::from_sql_and_values(
        backend,
        sql,
        [from_day.into()],
    ))
    .await?;
    Ok(())
}

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
/// checked first, so bad input writes nothing; good rows are then written
/// in batches of [`IMPORT_BATCH_ROWS`], each its own transaction, so that
/// other writers (plays' write-backs, uploads) move between them. An import
/// stopped part-way (its call cancelled, the database down) leaves whole
/// batches applied; importing the same file again completes it, and
/// changes nothing once complete.
///
/// # Errors
/// A missing or wrong header, or too many rows (400); database failures.
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
    report.rejected.sort_by_key(|r| r.line);
    let mut good = good;
    good.sort_unstable_by_key(|r| (r.video_id, r.day));
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
async fn apply_batch(db: &DatabaseConnection, batch: &[ImportRow]) -> Result<(), sea_orm::DbErr> {
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
    txn.execute(backend.build(&insert)).await?;
    refresh_cumulative(&txn, &videos, first_day).await?;
    txn.commit().await
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

    fn day_row(video_id: i64) -> DayRow {
        DayRow {
            video_id,
            creator_id: 7,
            views: video_id * 2,
            watch_seconds: video_id * 60,
            ad_views: 1,
            cumulative_views_before: 10,
            cumulative_ad_views_before: 3,
            title: format!("Video {video_id}"),
        }
    }

    #[test]
    fn rows_go_out_in_order_in_messages_of_at_most_message_rows() {
        let rows: Vec<DayRow> = (1..=2_500).map(day_row).collect();
        let sent: Vec<_> = messages(rows).collect();
        let sizes: Vec<usize> = sent.iter().map(|m| m.rows.len()).collect();
        assert_eq!(sizes, [MESSAGE_ROWS, MESSAGE_ROWS, 500]);
        let ids: Vec<i64> = sent
            .iter()
            .flat_map(|m| &m.rows)
            .map(|r| r.video_id)
            .collect();
        assert_eq!(ids, (1..=2_500).collect::<Vec<_>>());
        let last = sent.last().and_then(|m| m.rows.last()).expect("a row");
        assert_eq!(
            (
                last.views,
                last.watch_seconds,
                last.cumulative_views_before,
                last.title.as_str()
            ),
            (5_000, 150_000, 10, "Video 2500")
        );
        assert_eq!(messages(Vec::new()).count(), 0);
        assert_eq!(
            messages((1..=MESSAGE_ROWS as i64).map(day_row).collect()).count(),
            1
        );
    }
}
