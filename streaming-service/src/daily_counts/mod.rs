//! `daily_counts`: the per-day rows the settlement pulls (SPEC §9), read
//! in pages and sent in messages, and the cumulative counts before each day
//! that every write keeps current; the CSV import of historical counts
//! (SPEC §6) is in [`import`], the retention of months in [`archive`].

pub mod archive;
mod import;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

pub use import::{
    IMPORT_BATCH_ROWS, IMPORT_HEADER, ImportReport, MAX_IMPORT_COUNT, MAX_IMPORT_ROWS, Rejection,
    import,
};

use crate::error::StreamingError;

/// Rows fetched per query while streaming a day.
pub const PAGE_ROWS: usize = 5_000;
/// Pages of a day read at once while streaming it, each on its own
/// database connection.
pub const PAGES_IN_FLIGHT: usize = 2;
/// Rows per `DailyCountPage` message of the stream (SPEC §9): at most
/// ≈ 900 bytes a row, so a message stays under gRPC's 4 MiB default limit.
pub const MESSAGE_ROWS: usize = 1_000;

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

/// The columns a [`DayRow`] is read from, in this order, from `daily_counts
/// d JOIN videos v`.
const DAY_ROW_COLUMNS: &str = "d.video_id, v.creator_id, v.title, d.views, d.watch_seconds, \
     d.ad_views, d.views_before, d.ad_views_before";

impl DayRow {
    /// A row selected with [`DAY_ROW_COLUMNS`] first, read by position (no
    /// lookup of each column by name).
    fn read(r: &sea_orm::QueryResult) -> Result<Self, sea_orm::DbErr> {
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
    }
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
        "SELECT {DAY_ROW_COLUMNS} \
         FROM daily_counts d JOIN videos v ON v.id = d.video_id \
         WHERE d.day = {day_p} AND d.video_id > {after_p} AND v.id > {after_p}{upper} \
         ORDER BY d.video_id"
    );
    let rows = db
        .query_all(day_after_statement(backend, sql, day, after_video_id))
        .await?;
    rows.iter()
        .map(DayRow::read)
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

/// The most days one [`changed_days`] call returns.
pub const MAX_CHANGED_DAYS: u64 = 10_000;

/// Records, in the caller's transaction, that the counts of `days` changed:
/// each gets the next change version (one for the whole change). The
/// revenue service re-settles a settled day whose version is newer than
/// the one it read before it pulled the day (SPEC §11.2). The counter's
/// row lock orders concurrent changes: versions commit in order.
///
/// # Errors
/// Database failures.
pub async fn record_changed_days<C: ConnectionTrait>(
    db: &C,
    days: &[NaiveDate],
) -> Result<(), sea_orm::DbErr> {
    if days.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let version: i64 = db
        .query_one(Statement::from_string(
            backend,
            "UPDATE change_versions SET version = version + 1 WHERE id = 1 RETURNING version",
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("no change_versions row".to_owned()))?
        .try_get_by_index(0)?;
    let mut days = days.to_vec();
    days.sort_unstable();
    days.dedup();
    for chunk in days.chunks(5_000) {
        let mut insert = sea_orm::sea_query::Query::insert();
        insert
            .into_table(sea_orm::sea_query::Alias::new("changed_days"))
            .columns([
                sea_orm::sea_query::Alias::new("day"),
                sea_orm::sea_query::Alias::new("version"),
            ]);
        for day in chunk {
            insert.values_panic([(*day).into(), version.into()]);
        }
        insert.on_conflict(
            sea_orm::sea_query::OnConflict::column(sea_orm::sea_query::Alias::new("day"))
                .update_column(sea_orm::sea_query::Alias::new("version"))
                .to_owned(),
        );
        db.execute(backend.build(&insert)).await?;
    }
    Ok(())
}

/// The version of the last change of any counts (0 before the first).
///
/// # Errors
/// Database failures.
pub async fn changes_version(db: &DatabaseConnection) -> Result<i64, StreamingError> {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM change_versions WHERE id = 1",
        ))
        .await?;
    Ok(match row {
        Some(r) => r.try_get_by_index(0)?,
        None => 0,
    })
}

/// Days whose counts changed after version `after`, by ascending version,
/// at most [`MAX_CHANGED_DAYS`].
///
/// # Errors
/// Database failures.
pub async fn changed_days(
    db: &DatabaseConnection,
    after: i64,
) -> Result<Vec<(NaiveDate, i64)>, StreamingError> {
    let backend = db.get_database_backend();
    let (after_p, _) = placeholders(backend);
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT day, version FROM changed_days WHERE version > {after_p} \
                 ORDER BY version, day LIMIT {MAX_CHANGED_DAYS}"
            ),
            [after.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get_by_index(0)?, r.try_get_by_index(1)?)))
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(Into::into)
}

/// The most videos one [`video_days`] call (and one `StreamVideoDays`
/// request) may name.
pub const MAX_HISTORY_VIDEOS: usize = 1_000;
/// The longest range of days one `StreamVideoDays` request may ask for.
pub const MAX_HISTORY_DAYS: i64 = 3_660;

/// Every row of `videos` from `from` to `to` inclusive, in (video id, day)
/// order, each with its day: what the revenue service re-prices a video's
/// later days with (SPEC §11.2). Ids are written into the SQL text
/// (integers: no injection possible).
///
/// # Errors
/// Database failures.
pub async fn video_days(
    db: &DatabaseConnection,
    videos: &[i64],
    (from, to): (NaiveDate, NaiveDate),
) -> Result<Vec<(NaiveDate, DayRow)>, StreamingError> {
    if videos.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let (from_p, to_p) = placeholders(backend);
    let ids = videos
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT {DAY_ROW_COLUMNS}, d.day \
         FROM daily_counts d JOIN videos v ON v.id = d.video_id \
         WHERE d.video_id IN ({ids}) AND d.day >= {from_p} AND d.day <= {to_p} \
         ORDER BY d.video_id, d.day"
    );
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            sql,
            [from.into(), to.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get_by_index(8)?, DayRow::read(r)?)))
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(Into::into)
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
/// Each row's sums start from the video's latest row before `from_day`
/// (that row's own sums before it plus its counts; rows before `from_day`
/// did not change, and every write that changed one refreshed from its
/// day) or, when it has none, from its sums over its archived months
/// (`daily_counts_carry`: months are archived oldest first and never
/// written again, so every archived day is before every remaining one,
/// see [`archive`]), then add the video's rows from `from_day` up to it,
/// in day order (a window function); only the rows whose sums changed are
/// written. The
/// latest earlier row is read by a scalar subquery per row, which both
/// databases evaluate as an index probe (newest partition first on
/// PostgreSQL): as a join, PostgreSQL's planner could choose to hash the
/// whole table. The work is the rows from `from_day` and two probes each,
/// whatever the history: the write-back refreshes today's rows every few
/// seconds, and a running sum from each video's first day read its whole
/// history every time (issue 19; `docs/benchmarks.md`, "The write-back
/// over a year of history"). A per-row correlated `SUM` before that was
/// quadratic.
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
         FROM (SELECT r.video_id, r.day, \
                 COALESCE((SELECT p.views_before + p.views FROM daily_counts p \
                           WHERE p.video_id = r.video_id AND p.day < {day_p} \
                           ORDER BY p.day DESC LIMIT 1), \
                          (SELECT c.views FROM daily_counts_carry c WHERE c.video_id = r.video_id), 0) \
                   + COALESCE(SUM(r.views) OVER running, 0) AS views_before, \
                 COALESCE((SELECT p.ad_views_before + p.ad_views FROM daily_counts p \
                           WHERE p.video_id = r.video_id AND p.day < {day_p} \
                           ORDER BY p.day DESC LIMIT 1), \
                          (SELECT c.ad_views FROM daily_counts_carry c WHERE c.video_id = r.video_id), 0) \
                   + COALESCE(SUM(r.ad_views) OVER running, 0) AS ad_views_before \
               FROM daily_counts r \
               WHERE r.video_id IN ({ids}) AND r.day >= {day_p} \
               WINDOW running AS (PARTITION BY r.video_id ORDER BY r.day \
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

#[cfg(test)]
mod tests {
    use super::*;

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
