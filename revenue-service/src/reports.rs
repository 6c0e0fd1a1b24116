//! Reports (SPEC §7): the top videos of a period, a video's days, a
//! creator's earnings. A day's reports read `daily_stats`; a week's or a
//! month's read the roll-ups ([`crate::rollups`]), kept by the settlement
//! in the transaction of the days' rows, so they equal the sums of their
//! days and read in time proportional to the answer, not to the history.

use chrono::NaiveDate;
use common::domain::{CreatorId, Metric, Period, Tally, VideoId};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Value};

use crate::{error::RevenueError, sql::stmt};

/// The `daily_stats` column a ranking by `metric` sums.
fn column(metric: Metric) -> &'static str {
    match metric {
        Metric::Views => "views",
        Metric::WatchTime => "watch_seconds",
    }
}

/// One ranked video.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct TopRow {
    /// The video.
    pub video_id: VideoId,
    /// Its title when last settled.
    pub title: String,
    /// Its creator.
    pub creator_id: CreatorId,
    /// Views or watch seconds over the period.
    pub value: i64,
}

/// The `limit` videos with the largest `metric` in `period` starting on
/// `start` (from [`Period::range`]), ties by smaller video id; optionally
/// one creator's. A week or a month reads `limit` entries of a roll-up
/// index; a day, `limit` entries of a `daily_stats` index on
/// `(day, views DESC, video_id)` or its watch-time twin.
///
/// # Errors
/// Database failures.
pub async fn top(
    db: &DatabaseConnection,
    metric: Metric,
    (period, start): (Period, NaiveDate),
    limit: u32,
    creator_id: Option<CreatorId>,
) -> Result<Vec<TopRow>, RevenueError> {
    let column = column(metric);
    let mut values: Vec<Value> = vec![start.into(), i64::from(limit).into()];
    let creator = match creator_id {
        Some(id) => {
            values.push(id.into());
            "AND creator_id = $3"
        }
        None => "",
    };
    let sql = if period == Period::Day {
        format!(
            "SELECT video_id, title, creator_id, {column} AS value \
             FROM daily_stats WHERE day = $1 {creator} \
             ORDER BY {column} DESC, video_id ASC LIMIT $2"
        )
    } else {
        values.push(period.as_str().into());
        let p = values.len();
        format!(
            "SELECT video_id, title, creator_id, {column} AS value \
             FROM rollup_video_stats WHERE period = ${p} AND period_start = $1 {creator} \
             ORDER BY {column} DESC, video_id ASC LIMIT $2"
        )
    };
    Ok(
        TopRow::find_by_statement(stmt(db.get_database_backend(), &sql, values))
            .all(db)
            .await?,
    )
}

/// One settled day of a video.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct VideoDayRow {
    /// The day.
    pub day: NaiveDate,
    /// Its counts (after adjustments) and amounts.
    #[sea_orm(nested)]
    pub tally: Tally,
    /// Views before adjustments (SPEC §11.3).
    pub original_views: i64,
    /// Ad views before adjustments.
    pub original_ad_views: i64,
    /// When its amounts last changed after the day was final (SPEC §11.2).
    pub restated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The settled days of `video_id` from `start` to `end`.
///
/// # Errors
/// Database failures.
pub async fn video_days(
    db: &DatabaseConnection,
    video_id: VideoId,
    (start, end): (NaiveDate, NaiveDate),
) -> Result<Vec<VideoDayRow>, RevenueError> {
    Ok(VideoDayRow::find_by_statement(stmt(
        db.get_database_backend(),
        "SELECT day, views, watch_seconds, ad_views, video_amount, ad_amount, total_amount, \
           COALESCE(original_views, views) AS original_views, \
           COALESCE(original_ad_views, ad_views) AS original_ad_views, restated_at \
         FROM daily_stats WHERE video_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
        vec![video_id.into(), start.into(), end.into()],
    ))
    .all(db)
    .await?)
}

/// The creator of `video_id` as settled, if it was ever settled.
///
/// # Errors
/// Database failures.
pub async fn creator_of(
    db: &DatabaseConnection,
    video_id: VideoId,
) -> Result<Option<CreatorId>, RevenueError> {
    let row = db
        .query_one(stmt(
            db.get_database_backend(),
            "SELECT creator_id FROM daily_stats WHERE video_id = $1 LIMIT 1",
            vec![video_id.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("", "creator_id")?),
        None => None,
    })
}

/// The [`Tally`] columns of a roll-up row.
const TALLY_COLUMNS: &str = "views, watch_seconds, ad_views, video_amount, ad_amount, total_amount";

/// One video's earnings over a period.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct VideoEarnings {
    /// The video.
    pub video_id: VideoId,
    /// Its title when last settled.
    pub title: String,
    /// Its counts and amounts summed over the period.
    #[sea_orm(nested)]
    pub tally: Tally,
}

/// `creator_id`'s videos with their sums over `period` starting on
/// `start`, by id: a day's rows, or the roll-up of the week or month.
///
/// # Errors
/// Database failures.
pub async fn earnings(
    db: &DatabaseConnection,
    creator_id: CreatorId,
    (period, start): (Period, NaiveDate),
) -> Result<Vec<VideoEarnings>, RevenueError> {
    earnings_after(db, creator_id, (period, start), VideoId(0), None).await
}

/// The page of [`earnings`] after video `after`: at most `limit` videos
/// (all when `None`), by id. A week's or month's page is a range of the
/// roll-up's key; a day's reads the creator's rows of the day.
///
/// # Errors
/// Database failures.
pub async fn earnings_after(
    db: &impl ConnectionTrait,
    creator_id: CreatorId,
    (period, start): (Period, NaiveDate),
    after: VideoId,
    limit: Option<u64>,
) -> Result<Vec<VideoEarnings>, RevenueError> {
    let mut values = vec![creator_id.into(), start.into(), after.into()];
    let mut sql = format!("SELECT video_id, title, {TALLY_COLUMNS} ");
    if period == Period::Day {
        sql.push_str("FROM daily_stats WHERE creator_id = $1 AND day = $2");
    } else {
        values.push(period.as_str().into());
        sql.push_str(
            "FROM rollup_video_stats WHERE creator_id = $1 AND period = $4 AND period_start = $2",
        );
    }
    sql.push_str(" AND video_id > $3 ORDER BY video_id");
    if let Some(limit) = limit {
        values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        sql.push_str(&format!(" LIMIT ${}", values.len()));
    }
    Ok(
        VideoEarnings::find_by_statement(stmt(db.get_database_backend(), &sql, values))
            .all(db)
            .await?,
    )
}

/// [`earnings`] in pages of at most `page` videos by id, each read when the
/// stream is polled for it: memory holds one page, whatever the creator's
/// number of videos. On PostgreSQL every page reads one snapshot (a
/// `REPEATABLE READ READ ONLY` transaction from the first page to the
/// last), so a settlement committing meanwhile never mixes into the
/// answer; SQLite reads page by page. The last page is short, possibly
/// empty (the first always comes); a failure ends the stream after its
/// error.
pub fn earnings_pages(
    db: DatabaseConnection,
    creator_id: CreatorId,
    (period, start): (Period, NaiveDate),
    page: u64,
) -> impl futures::Stream<Item = Result<Vec<VideoEarnings>, RevenueError>> + Send + 'static {
    futures::stream::unfold(
        Some((Reader::Start(db), VideoId(0))),
        move |state| async move {
            let (reader, after) = state?;
            let reader = match reader.snapshot().await {
                Ok(reader) => reader,
                Err(e) => return Some((Err(e.into()), None)),
            };
            let rows = match &reader {
                Reader::Snapshot(txn) => {
                    earnings_after(txn, creator_id, (period, start), after, Some(page)).await
                }
                Reader::Start(db) | Reader::Pages(db) => {
                    earnings_after(db, creator_id, (period, start), after, Some(page)).await
                }
            };
            Some(match rows {
                Ok(rows) => {
                    let full = u64::try_from(rows.len()).is_ok_and(|n| n == page);
                    let next = rows.last().filter(|_| full).map(|r| (reader, r.video_id));
                    (Ok(rows), next)
                }
                Err(e) => (Err(e), None),
            })
        },
    )
}

/// Where [`earnings_pages`] reads.
enum Reader {
    /// Before the first page.
    Start(DatabaseConnection),
    /// PostgreSQL: one snapshot for every page.
    Snapshot(sea_orm::DatabaseTransaction),
    /// SQLite: page by page.
    Pages(DatabaseConnection),
}

impl Reader {
    /// Opens the snapshot before the first page (PostgreSQL).
    async fn snapshot(self) -> Result<Self, sea_orm::DbErr> {
        use sea_orm::TransactionTrait;
        match self {
            Self::Start(db) if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres => {
                Ok(Self::Snapshot(
                    db.begin_with_config(
                        Some(sea_orm::IsolationLevel::RepeatableRead),
                        Some(sea_orm::AccessMode::ReadOnly),
                    )
                    .await?,
                ))
            }
            Self::Start(db) => Ok(Self::Pages(db)),
            reader => Ok(reader),
        }
    }
}

/// A creator's videos summed over one day.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct DayEarnings {
    /// The day.
    pub day: NaiveDate,
    /// Counts and amounts (won) of the creator's videos that day.
    #[sea_orm(nested)]
    pub tally: Tally,
}

/// `creator_id`'s sums per day from `start` to `end`, ascending; days
/// without a settled row of theirs are absent. One read of the creator's
/// daily roll-up: a row a day, whatever the number of videos.
///
/// # Errors
/// Database failures.
pub async fn earnings_by_day(
    db: &DatabaseConnection,
    creator_id: CreatorId,
    (start, end): (NaiveDate, NaiveDate),
) -> Result<Vec<DayEarnings>, RevenueError> {
    Ok(DayEarnings::find_by_statement(stmt(
        db.get_database_backend(),
        &format!(
            "SELECT period_start AS day, {TALLY_COLUMNS} FROM rollup_creator_stats \
             WHERE creator_id = $1 AND period = $4 AND period_start >= $2 \
               AND period_start <= $3 ORDER BY period_start"
        ),
        vec![
            creator_id.into(),
            start.into(),
            end.into(),
            Period::Day.as_str().into(),
        ],
    ))
    .all(db)
    .await?)
}
