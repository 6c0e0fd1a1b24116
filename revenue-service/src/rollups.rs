//! Roll-ups (issue 19): the settled days summed per video and per creator
//! per ISO week and calendar month (`rollup_video_stats`), and per creator
//! per day, week and month (`rollup_creator_stats`), so that a report reads
//! in time proportional to its answer, not to the history.
//!
//! They are kept by the transaction that changes `daily_stats`, so they are
//! always the sums of their days, restatements and adjustments included
//! (SPEC §11.2, §11.3: those change the days' rows):
//!
//! - a day's first settlement adds the day's rows at once
//!   ([`add_settled_day`]), straight from `daily_stats`, last before the
//!   commit;
//! - every later change of a (video, day) row (a re-settlement, a restated
//!   later day, an adjustment) is kept as its difference while the rows
//!   are written, and [`apply`] adds them, grouped per roll-up row, just
//!   before the commit.
//!
//! A roll-up row counts the days it sums (`days`); one whose days all went
//! is deleted, so a roll-up row exists exactly when a settled row of its
//! period does. Its `title` is the video's title on the latest day that
//! changed it (`title_day`); the reports used to show `MAX(title)` over the
//! period's rows, the same while a video keeps its title.
//!
//! Roll-up rows are shared by the days of a period, so on PostgreSQL every
//! transaction takes one advisory lock before its first roll-up write and
//! keeps it to its commit: roll-up writes of two transactions never
//! interleave, so they cannot deadlock. Every roll-up write is the last
//! thing its transaction does before committing, so the lock is held only
//! for those writes. SQLite has one writer anyway.

use chrono::NaiveDate;
use common::domain::Period;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr, Value};

use crate::sql::stmt;

/// The advisory lock (PostgreSQL) every roll-up write holds to its
/// transaction's end: "ssp-rollup" as an integer.
const ROLLUP_LOCK: i64 = 0x7373_702d_726f_6c6c;

/// The summed columns of both roll-up tables and of `daily_stats`, in
/// [`RowDelta::sums`] order.
const SUMS: [&str; 6] = [
    "views",
    "watch_seconds",
    "ad_views",
    "video_amount",
    "ad_amount",
    "total_amount",
];

/// The change of one (video, day) row of `daily_stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDelta {
    /// The row's day.
    pub day: NaiveDate,
    /// The video.
    pub video_id: i64,
    /// The creator the row is (or was) settled to.
    pub creator_id: i64,
    /// The title the row carries now (or carried, if it went).
    pub title: String,
    /// Whether the row exists after the change (its title is then the
    /// video's latest).
    pub present: bool,
    /// +1 a row appeared, −1 it went, 0 it changed.
    pub days: i64,
    /// New minus old: views, watch seconds, ad views, video amount, ad
    /// amount, total amount (counts, seconds and won).
    pub sums: [i64; 6],
}

impl RowDelta {
    /// Whether applying it changes nothing.
    pub fn is_noop(&self) -> bool {
        self.days == 0 && !self.present && self.sums == [0; 6]
    }
}

/// Takes the roll-up lock of the transaction (PostgreSQL; a no-op on
/// SQLite, whose one writer holds the database).
async fn lock(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute(stmt(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            vec![ROLLUP_LOCK.into()],
        ))
        .await?;
    }
    Ok(())
}

/// `SET` clauses adding `excluded`'s sums and days to `table`'s row.
fn add_excluded(table: &str) -> String {
    std::iter::once("days")
        .chain(SUMS)
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The upsert tail of `rollup_video_stats`: sums and days added, the title
/// kept from the latest day that carried one.
fn video_conflict() -> String {
    format!(
        "ON CONFLICT (creator_id, period, period_start, video_id) DO UPDATE SET {}, \
           title = CASE WHEN excluded.title_day IS NOT NULL AND (rollup_video_stats.title_day IS NULL \
             OR excluded.title_day >= rollup_video_stats.title_day) \
             THEN excluded.title ELSE rollup_video_stats.title END, \
           title_day = CASE WHEN excluded.title_day IS NOT NULL AND (rollup_video_stats.title_day IS NULL \
             OR excluded.title_day >= rollup_video_stats.title_day) \
             THEN excluded.title_day ELSE rollup_video_stats.title_day END",
        add_excluded("rollup_video_stats")
    )
}

/// The upsert tail of `rollup_creator_stats`.
fn creator_conflict() -> String {
    format!(
        "ON CONFLICT (creator_id, period, period_start) DO UPDATE SET {}",
        add_excluded("rollup_creator_stats")
    )
}

/// `SUM(c) AS c` for every summed column.
fn summed() -> String {
    SUMS.iter()
        .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds every row of `day` (just settled for the first time) to the
/// roll-ups of its week and month and to its creators' day, week and
/// month.
///
/// A period with no roll-up row yet (`day` is the first of its days to be
/// settled: every Monday's week, every 1st's month when days are settled
/// in order) takes a plain `INSERT` of the day's rows: no row can conflict,
/// since a day holds one row per video and the roll-up lock keeps every
/// other writer out. Any other period takes the upsert, which adds the
/// day to the rows already there. On PostgreSQL the plain insert skips the
/// upsert's per-row speculative insertion (issue 19's settlement floor).
///
/// # Errors
/// Database failures.
pub async fn add_settled_day(txn: &DatabaseTransaction, day: NaiveDate) -> Result<(), DbErr> {
    lock(txn).await?;
    let backend = txn.get_database_backend();
    let sums = SUMS.join(", ");
    for period in [Period::Week, Period::Month] {
        let start = period.range(day).0;
        let fresh = txn
            .query_one(stmt(
                backend,
                "SELECT 1 AS one FROM rollup_video_stats WHERE period = $1 AND period_start = $2 LIMIT 1",
                vec![period.as_str().into(), start.into()],
            ))
            .await?
            .is_none();
        txn.execute(stmt(
            backend,
            &format!(
                "INSERT INTO rollup_video_stats (period, period_start, creator_id, video_id, title, \
                   title_day, days, {sums}) \
                 SELECT $1, $2, creator_id, video_id, title, day, 1, {sums} \
                 FROM daily_stats WHERE day = $3 ORDER BY creator_id, video_id {}",
                if fresh { String::new() } else { video_conflict() }
            ),
            vec![period.as_str().into(), start.into(), day.into()],
        ))
        .await?;
    }
    for period in [Period::Day, Period::Week, Period::Month] {
        txn.execute(stmt(
            backend,
            &format!(
                "INSERT INTO rollup_creator_stats (creator_id, period, period_start, days, {sums}) \
                 SELECT creator_id, $1, $2, COUNT(*), {} \
                 FROM daily_stats WHERE day = $3 GROUP BY creator_id {}",
                summed(),
                creator_conflict()
            ),
            vec![
                period.as_str().into(),
                period.range(day).0.into(),
                day.into(),
            ],
        ))
        .await?;
    }
    Ok(())
}

/// Where a delta goes: (creator, period, first day, video or 0).
type Target = (i64, &'static str, NaiveDate, i64);

/// Adds `deltas` (changes of settled rows, written in this transaction)
/// to the roll-ups of their weeks and months, and of their creators' days,
/// weeks and months; deletes the roll-up rows left with no day.
///
/// # Errors
/// Database failures.
pub async fn apply(txn: &DatabaseTransaction, deltas: &[RowDelta]) -> Result<(), DbErr> {
    use std::collections::BTreeMap;
    let deltas: Vec<&RowDelta> = deltas.iter().filter(|d| !d.is_noop()).collect();
    if deltas.is_empty() {
        return Ok(());
    }
    // Grouped per roll-up row, in key order (the order rows are written).
    let mut videos: BTreeMap<Target, Grouped> = BTreeMap::new();
    let mut creators: BTreeMap<Target, Grouped> = BTreeMap::new();
    for d in deltas {
        for period in [Period::Week, Period::Month] {
            let key = (
                d.creator_id,
                period.as_str(),
                period.range(d.day).0,
                d.video_id,
            );
            videos.entry(key).or_default().add(d)?;
        }
        for period in [Period::Day, Period::Week, Period::Month] {
            let key = (d.creator_id, period.as_str(), period.range(d.day).0, 0);
            creators.entry(key).or_default().add(d)?;
        }
    }
    lock(txn).await?;
    let backend = txn.get_database_backend();
    let sums = SUMS.join(", ");
    let rows: Vec<(&Target, &Grouped)> = videos.iter().collect();
    for chunk in rows.chunks(UPSERT_ROWS) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 13);
        let mut tuples = Vec::with_capacity(chunk.len());
        for ((creator, period, start, video), g) in chunk {
            tuples.push(placeholders(values.len(), 13));
            values.extend([
                Value::from(*creator),
                (*period).into(),
                (*start).into(),
                (*video).into(),
                g.title.clone().into(),
                g.title_day.into(),
                g.days.into(),
            ]);
            values.extend(g.sums.iter().map(|&s| Value::from(s)));
        }
        txn.execute(stmt(
            backend,
            &format!(
                "INSERT INTO rollup_video_stats (creator_id, period, period_start, video_id, title, \
                   title_day, days, {sums}) VALUES {} {}",
                tuples.join(","),
                video_conflict()
            ),
            values,
        ))
        .await?;
    }
    let rows: Vec<(&Target, &Grouped)> = creators.iter().collect();
    for chunk in rows.chunks(UPSERT_ROWS) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 10);
        let mut tuples = Vec::with_capacity(chunk.len());
        for ((creator, period, start, _), g) in chunk {
            tuples.push(placeholders(values.len(), 10));
            values.extend([
                Value::from(*creator),
                (*period).into(),
                (*start).into(),
                g.days.into(),
            ]);
            values.extend(g.sums.iter().map(|&s| Value::from(s)));
        }
        txn.execute(stmt(
            backend,
            &format!(
                "INSERT INTO rollup_creator_stats (creator_id, period, period_start, days, {sums}) \
                 VALUES {} {}",
                tuples.join(","),
                creator_conflict()
            ),
            values,
        ))
        .await?;
    }
    // Rows whose days may all have gone.
    for (table, grouped, video) in [
        ("rollup_video_stats", &videos, true),
        ("rollup_creator_stats", &creators, false),
    ] {
        let shrunk: Vec<&Target> = grouped
            .iter()
            .filter(|(_, g)| g.days < 0)
            .map(|(k, _)| k)
            .collect();
        for chunk in shrunk.chunks(UPSERT_ROWS) {
            let width = if video { 4 } else { 3 };
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * width);
            let mut tuples = Vec::with_capacity(chunk.len());
            for (creator, period, start, video_id) in chunk {
                tuples.push(placeholders(values.len(), width));
                values.extend([Value::from(*creator), (*period).into(), (*start).into()]);
                if video {
                    values.push((*video_id).into());
                }
            }
            let key = if video {
                "(creator_id, period, period_start, video_id)"
            } else {
                "(creator_id, period, period_start)"
            };
            txn.execute(stmt(
                backend,
                &format!(
                    "DELETE FROM {table} WHERE days = 0 AND {key} IN (VALUES {})",
                    tuples.join(",")
                ),
                values,
            ))
            .await?;
        }
    }
    Ok(())
}

/// How many roll-up rows one statement writes (at most 13 bound values
/// each: within SQLite's 32,766).
const UPSERT_ROWS: usize = 2_000;

/// `($n+1,…,$n+width)`.
fn placeholders(n: usize, width: usize) -> String {
    format!(
        "({})",
        (1..=width)
            .map(|i| format!("${}", n + i))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// The deltas of one roll-up row, added up.
#[derive(Debug, Default)]
struct Grouped {
    title: String,
    title_day: Option<NaiveDate>,
    days: i64,
    sums: [i64; 6],
}

impl Grouped {
    /// Adds `d`; a sum past 64 bits is refused (SPEC §8).
    fn add(&mut self, d: &RowDelta) -> Result<(), DbErr> {
        if d.present && self.title_day.is_none_or(|t| d.day >= t) {
            self.title_day = Some(d.day);
            self.title.clone_from(&d.title);
        } else if self.title.is_empty() {
            self.title.clone_from(&d.title);
        }
        self.days += d.days;
        for (total, value) in self.sums.iter_mut().zip(d.sums) {
            *total = total.checked_add(value).ok_or_else(|| {
                DbErr::Custom(format!(
                    "a roll-up sum of video {} does not fit in 64 bits",
                    d.video_id
                ))
            })?;
        }
        Ok(())
    }
}

/// The SQL of the first day of `period` around the date column `day`, on
/// `backend`.
pub(crate) fn period_start_sql(backend: DatabaseBackend, period: Period) -> &'static str {
    match (backend, period) {
        (_, Period::Day) => "day",
        (DatabaseBackend::Postgres, Period::Week) => "CAST(date_trunc('week', day) AS DATE)",
        (DatabaseBackend::Postgres, Period::Month) => "CAST(date_trunc('month', day) AS DATE)",
        // The Monday on or before `day`; the first of its month.
        (_, Period::Week) => "date(day, 'weekday 0', '-6 days')",
        (_, Period::Month) => "date(day, 'start of month')",
    }
}

/// A roll-up row's key: `video` or `creator`, period, first day, creator,
/// video (0 for a creator's).
type Key = (&'static str, &'static str, NaiveDate, i64, i64);

/// Where the roll-ups differ from the sums of `daily_stats` (a
/// description each; none when they agree): the check of the tests and
/// of an operator after a restore. It reads every row of both, so it
/// is for tests and for maintenance, not for a request.
///
/// # Errors
/// Database failures.
pub async fn mismatches(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    use std::collections::BTreeMap;
    let backend = db.get_database_backend();
    let sums = SUMS.join(", ");
    let summed = summed();
    let read = |r: &sea_orm::QueryResult| -> Result<(i64, [i64; 6]), DbErr> {
        let mut values = [0; 6];
        for (value, column) in values.iter_mut().zip(SUMS) {
            *value = r.try_get("", column)?;
        }
        Ok((r.try_get("", "days")?, values))
    };
    let mut expected: BTreeMap<Key, (i64, [i64; 6])> = BTreeMap::new();
    let mut stored: BTreeMap<Key, (i64, [i64; 6])> = BTreeMap::new();
    let tables = [
        (
            "video",
            "rollup_video_stats",
            "video_id",
            &[Period::Week, Period::Month][..],
        ),
        (
            "creator",
            "rollup_creator_stats",
            "CAST(0 AS BIGINT)",
            &[Period::Day, Period::Week, Period::Month][..],
        ),
    ];
    for (kind, table, video, periods) in tables {
        for &period in periods {
            let start = period_start_sql(backend, period);
            let group_video = if kind == "video" { ", video_id" } else { "" };
            for (into, sql, values) in [
                (
                    &mut expected,
                    format!(
                        "SELECT creator_id, {start} AS period_start, {video} AS video, \
                           COUNT(*) AS days, {summed} FROM daily_stats \
                         GROUP BY creator_id, {start}{group_video}"
                    ),
                    vec![],
                ),
                (
                    &mut stored,
                    format!(
                        "SELECT creator_id, period_start, {video} AS video, days, {sums} \
                         FROM {table} WHERE period = $1"
                    ),
                    vec![period.as_str().into()],
                ),
            ] {
                for r in db.query_all(stmt(backend, &sql, values)).await? {
                    let key = (
                        kind,
                        period.as_str(),
                        r.try_get("", "period_start")?,
                        r.try_get("", "creator_id")?,
                        r.try_get("", "video")?,
                    );
                    into.insert(key, read(&r)?);
                }
            }
        }
    }
    let mut found = Vec::new();
    for (key, want) in &expected {
        match stored.remove(key) {
            Some(have) if have == *want => {}
            have => found.push(format!(
                "{key:?}: stored {have:?}, the days sum to {want:?}"
            )),
        }
    }
    found.extend(
        stored
            .into_iter()
            .map(|(key, have)| format!("{key:?}: stored {have:?} with no settled day")),
    );
    Ok(found)
}
