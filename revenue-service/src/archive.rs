//! Retention (issue 19): a month of `daily_stats` exported to a Parquet
//! file and its partition detached and dropped, and a month restored from
//! such a file. The roll-ups stay: a week's and a month's reports read
//! them, so they answer the same with the month archived; a day's report
//! and a video's days of an archived month are empty until it is
//! restored. PostgreSQL only (SQLite keeps one table).
//!
//! The file: one row per (video, day), columns as in `daily_stats`
//! (`day` a Parquet `DATE`, `restated_at` a UTC `TIMESTAMP` in
//! microseconds, the original counts and `restated_at` optional), Snappy
//! compressed, row groups of [`ROW_GROUP`] rows in (day, video) order.
//! It is written beside its final name and renamed once complete and read
//! back: the partition is dropped only after the file gave back as many
//! rows, and the same sums, as the partition holds.

use std::{fs::File, path::Path, sync::Arc};

use chrono::{DateTime, Months, NaiveDate, Utc};
use common::partitions::{month_of, partition_name};
use parquet::{
    basic::Compression,
    data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type},
    file::{
        properties::WriterProperties,
        reader::{FileReader, SerializedFileReader},
        writer::SerializedFileWriter,
    },
    record::Field,
    schema::{parser::parse_message_type, types::Type},
};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, TransactionTrait, Value};

use crate::sql::stmt;

/// Rows per Parquet row group (and per database page while exporting).
pub const ROW_GROUP: usize = 50_000;

/// Rows per `INSERT` while restoring (14 values each).
const INSERT_ROWS: usize = 4_000;

/// The file's schema, in [`Row`] order.
const SCHEMA: &str = "message daily_stats {
  REQUIRED INT32 day (DATE);
  REQUIRED INT64 video_id;
  REQUIRED INT64 creator_id;
  REQUIRED BYTE_ARRAY title (UTF8);
  REQUIRED INT64 views;
  REQUIRED INT64 watch_seconds;
  REQUIRED INT64 ad_views;
  REQUIRED INT64 video_amount;
  REQUIRED INT64 ad_amount;
  REQUIRED INT64 total_amount;
  REQUIRED INT32 rate_card_version;
  OPTIONAL INT64 original_views;
  OPTIONAL INT64 original_ad_views;
  OPTIONAL INT64 restated_at (TIMESTAMP(MICROS,true));
}";

/// The columns of `daily_stats`, in [`SCHEMA`] order.
const COLUMNS: &str = "day, video_id, creator_id, title, views, watch_seconds, ad_views, \
     video_amount, ad_amount, total_amount, rate_card_version, original_views, \
     original_ad_views, restated_at";

/// Why an export or a restore was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not on PostgreSQL, or `daily_stats` is not partitioned.
    #[error("archiving needs PostgreSQL with a partitioned daily_stats")]
    NotPartitioned,
    /// The month's last day is not final yet (SPEC §11.2): its days may
    /// still change.
    #[error("{0} is not final yet: only months whose days are all final can be archived")]
    NotOver(NaiveDate),
    /// The month has no partition (never settled, or archived already).
    #[error("daily_stats has no partition for {0}")]
    NoPartition(NaiveDate),
    /// The month's partition holds rows already: restoring would mix them.
    #[error("the partition of {0} holds {1} rows: drop or archive them first")]
    NotEmpty(NaiveDate, i64),
    /// The file is not an archive of one month of `daily_stats`.
    #[error("not an archive of daily_stats: {0}")]
    BadFile(String),
    /// The file read back differs from the partition: nothing was dropped.
    #[error("the file read back differs from the partition ({0}): nothing was dropped")]
    Mismatch(String),
    /// Reading or writing the file failed.
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    /// The Parquet library failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

/// One `daily_stats` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The day.
    pub day: NaiveDate,
    /// The video.
    pub video_id: i64,
    /// Its creator.
    pub creator_id: i64,
    /// Its title.
    pub title: String,
    /// Views, watch seconds, ad views, video amount, ad amount, total
    /// amount (won).
    pub sums: [i64; 6],
    /// The rate card's version.
    pub rate_card_version: i32,
    /// Views before adjustments, when they differ (NULL: the same).
    pub original_views: Option<i64>,
    /// Ad views before adjustments, when they differ.
    pub original_ad_views: Option<i64>,
    /// When the row was restated.
    pub restated_at: Option<DateTime<Utc>>,
}

/// What an export or a restore moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// The month (its first day).
    pub month: NaiveDate,
    /// Rows.
    pub rows: i64,
    /// Their total amount, won.
    pub total_amount: i64,
}

/// Row count and total amount of `table`.
async fn totals(db: &impl ConnectionTrait, table: &str) -> Result<(i64, i64), ArchiveError> {
    let row = db
        .query_one(stmt(
            DatabaseBackend::Postgres,
            &format!(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(total_amount), 0) AS BIGINT) AS total \
                 FROM {table}"
            ),
            vec![],
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("no totals".to_owned()))?;
    Ok((row.try_get("", "n")?, row.try_get("", "total")?))
}

async fn require_partitioned(db: &DatabaseConnection) -> Result<(), ArchiveError> {
    if common::partitions::is_partitioned(db, "daily_stats").await? {
        Ok(())
    } else {
        Err(ArchiveError::NotPartitioned)
    }
}

/// Exports `month` (any day of it) of `daily_stats` to the Parquet file
/// `path`, checks the file, then detaches and drops the month's partition.
///
/// # Errors
/// See [`ArchiveError`]; on any error the partition stays.
pub async fn export_month(
    db: &DatabaseConnection,
    month: NaiveDate,
    (today, final_after_days): (NaiveDate, u32),
    path: &Path,
) -> Result<Moved, ArchiveError> {
    require_partitioned(db).await?;
    let month = month_of(month);
    let last_day = common::domain::Period::Month.range(month).1;
    if !crate::settlement::day_is_final(last_day, today, final_after_days) {
        return Err(ArchiveError::NotOver(month));
    }
    if !common::partitions::months(db, "daily_stats")
        .await?
        .contains(&month)
    {
        return Err(ArchiveError::NoPartition(month));
    }
    let partition = partition_name("daily_stats", month);
    // One transaction from the first read to the drop, the partition
    // locked against writes: a restatement or an adjustment of the month
    // waits, so the file holds exactly what is dropped.
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!(
        "SET LOCAL lock_timeout = '{}'",
        common::partitions::LOCK_TIMEOUT
    ))
    .await?;
    txn.execute_unprepared(&format!("LOCK TABLE {partition} IN SHARE MODE"))
        .await?;
    let (rows, total_amount) = totals(&txn, &partition).await?;
    let partial = path.with_extension("parquet.partial");
    write_file(&txn, &partition, &partial).await?;
    let (read_rows, read_total) = file_totals(&partial, month)?;
    if (read_rows, read_total) != (rows, total_amount) {
        let _ = std::fs::remove_file(&partial);
        txn.rollback().await?;
        return Err(ArchiveError::Mismatch(format!(
            "{read_rows} rows and {read_total} won read, {rows} rows and {total_amount} won held"
        )));
    }
    std::fs::rename(&partial, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    // Detaching locks the whole table: it gives up after the lock timeout
    // rather than queue readers behind a running settlement (the file
    // stays; export again later).
    txn.execute_unprepared(&format!(
        "ALTER TABLE daily_stats DETACH PARTITION {partition}"
    ))
    .await?;
    txn.execute_unprepared(&format!("DROP TABLE {partition}"))
        .await?;
    txn.commit().await?;
    tracing::info!(%month, rows, total_amount, path = %path.display(), "month archived");
    Ok(Moved {
        month,
        rows,
        total_amount,
    })
}

/// Writes every row of `partition`, in (day, video) order, to `path`.
async fn write_file(
    db: &impl ConnectionTrait,
    partition: &str,
    path: &Path,
) -> Result<(), ArchiveError> {
    let mut writer = create(path)?;
    let mut after: Option<(NaiveDate, i64)> = None;
    loop {
        let (filter, values): (&str, Vec<Value>) = match after {
            Some((day, video)) => (
                "WHERE (day, video_id) > ($1, $2)",
                vec![day.into(), video.into()],
            ),
            None => ("", vec![]),
        };
        let page = db
            .query_all(stmt(
                DatabaseBackend::Postgres,
                &format!(
                    "SELECT {COLUMNS} FROM {partition} {filter} ORDER BY day, video_id LIMIT {ROW_GROUP}"
                ),
                values,
            ))
            .await?
            .iter()
            .map(row_of)
            .collect::<Result<Vec<Row>, _>>()?;
        let Some(last) = page.last() else { break };
        after = Some((last.day, last.video_id));
        write_group(&mut writer, &page)?;
        if page.len() < ROW_GROUP {
            break;
        }
    }
    let file = writer.into_inner()?;
    file.sync_all()?;
    Ok(())
}

/// A new archive file at `path`: [`SCHEMA`], Snappy compressed.
fn create(path: &Path) -> Result<SerializedFileWriter<File>, ArchiveError> {
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let properties = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    Ok(SerializedFileWriter::new(
        File::create(path)?,
        schema,
        properties,
    )?)
}

/// Writes `groups` as the row groups of a new archive file at `path`, in
/// the format [`export_month`] writes (its rows are not checked: a file
/// of several months is refused when read). For tools that make or repair
/// archives, and for tests.
///
/// # Errors
/// I/O and Parquet failures.
pub fn write_rows(path: &Path, groups: &[Vec<Row>]) -> Result<(), ArchiveError> {
    let mut writer = create(path)?;
    for group in groups {
        write_group(&mut writer, group)?;
    }
    writer.into_inner()?.sync_all()?;
    Ok(())
}

/// A row of a `SELECT {COLUMNS}`.
fn row_of(r: &sea_orm::QueryResult) -> Result<Row, sea_orm::DbErr> {
    let mut sums = [0; 6];
    for (value, column) in sums.iter_mut().zip([
        "views",
        "watch_seconds",
        "ad_views",
        "video_amount",
        "ad_amount",
        "total_amount",
    ]) {
        *value = r.try_get("", column)?;
    }
    Ok(Row {
        day: r.try_get("", "day")?,
        video_id: r.try_get("", "video_id")?,
        creator_id: r.try_get("", "creator_id")?,
        title: r.try_get("", "title")?,
        sums,
        rate_card_version: r.try_get("", "rate_card_version")?,
        original_views: r.try_get("", "original_views")?,
        original_ad_views: r.try_get("", "original_ad_views")?,
        restated_at: r.try_get("", "restated_at")?,
    })
}

/// Days since 1970-01-01, Parquet's `DATE`.
fn epoch_days(day: NaiveDate) -> i32 {
    let days = (day - NaiveDate::default()).num_days();
    i32::try_from(days).unwrap_or(i32::MAX)
}

/// One row group of `rows`.
fn write_group(writer: &mut SerializedFileWriter<File>, rows: &[Row]) -> Result<(), ArchiveError> {
    let mut group = writer.next_row_group()?;
    let mut index = 0;
    while let Some(mut column) = group.next_column()? {
        match index {
            0 => {
                let values: Vec<i32> = rows.iter().map(|r| epoch_days(r.day)).collect();
                column
                    .typed::<Int32Type>()
                    .write_batch(&values, None, None)?;
            }
            3 => {
                let values: Vec<ByteArray> = rows
                    .iter()
                    .map(|r| ByteArray::from(r.title.as_str()))
                    .collect();
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, None, None)?;
            }
            10 => {
                let values: Vec<i32> = rows.iter().map(|r| r.rate_card_version).collect();
                column
                    .typed::<Int32Type>()
                    .write_batch(&values, None, None)?;
            }
            11..=13 => {
                let optional: Vec<Option<i64>> = rows
                    .iter()
                    .map(|r| match index {
                        11 => r.original_views,
                        12 => r.original_ad_views,
                        _ => r.restated_at.map(|t| t.timestamp_micros()),
                    })
                    .collect();
                let values: Vec<i64> = optional.iter().flatten().copied().collect();
                let levels: Vec<i16> = optional.iter().map(|v| i16::from(v.is_some())).collect();
                column
                    .typed::<Int64Type>()
                    .write_batch(&values, Some(&levels), None)?;
            }
            _ => {
                let values: Vec<i64> = rows
                    .iter()
                    .map(|r| match index {
                        1 => r.video_id,
                        2 => r.creator_id,
                        i => r.sums[i - 4],
                    })
                    .collect();
                column
                    .typed::<Int64Type>()
                    .write_batch(&values, None, None)?;
            }
        }
        column.close()?;
        index += 1;
    }
    group.close()?;
    Ok(())
}

/// Opens `path` as an archive of `daily_stats`.
fn open(path: &Path) -> Result<SerializedFileReader<File>, ArchiveError> {
    let reader = SerializedFileReader::new(File::open(path)?)?;
    let expected = parse_message_type(SCHEMA)?;
    let found: &Type = reader.metadata().file_metadata().schema();
    let names =
        |t: &Type| -> Vec<String> { t.get_fields().iter().map(|f| f.name().to_owned()).collect() };
    if names(found) != names(&expected) {
        return Err(ArchiveError::BadFile(format!(
            "columns {:?}, expected {:?}",
            names(found),
            names(&expected)
        )));
    }
    Ok(reader)
}

/// An archive read one row group at a time, so that at most
/// [`ROW_GROUP`] rows are in memory whatever the month's size. Every row
/// must fall in the month of the file's first row.
pub struct Groups {
    reader: SerializedFileReader<File>,
    /// The next row group to read.
    next: usize,
    /// Rows read so far (for errors: "row N").
    read: usize,
    /// The month of the first row read.
    month: Option<NaiveDate>,
}

impl Groups {
    /// Opens the archive `path`, checking its columns.
    ///
    /// # Errors
    /// [`ArchiveError::BadFile`] for another schema; I/O and Parquet
    /// failures.
    pub fn open(path: &Path) -> Result<Self, ArchiveError> {
        Ok(Self {
            reader: open(path)?,
            next: 0,
            read: 0,
            month: None,
        })
    }

    /// The month of the rows read so far (`None` before the first row).
    pub fn month(&self) -> Option<NaiveDate> {
        self.month
    }

    /// The next row group's rows, or `None` after the last.
    ///
    /// # Errors
    /// [`ArchiveError::BadFile`] for a malformed row or one outside the
    /// first row's month; Parquet failures.
    pub fn next_group(&mut self) -> Result<Option<Vec<Row>>, ArchiveError> {
        if self.next >= self.reader.num_row_groups() {
            return Ok(None);
        }
        let group = self.reader.get_row_group(self.next)?;
        self.next += 1;
        let mut rows = Vec::new();
        for record in group.get_row_iter(None)? {
            let row = row_of_record(&record?, self.read + rows.len() + 1)?;
            let month = *self.month.get_or_insert(month_of(row.day));
            if month_of(row.day) != month {
                return Err(ArchiveError::BadFile(
                    "its rows span several months".to_owned(),
                ));
            }
            rows.push(row);
        }
        self.read += rows.len();
        Ok(Some(rows))
    }
}

/// The archive's row `record`, the `number`th of the file.
fn row_of_record(record: &parquet::record::Row, number: usize) -> Result<Row, ArchiveError> {
    let fields: Vec<&Field> = record.get_column_iter().map(|(_, f)| f).collect();
    let bad = |what: &str| ArchiveError::BadFile(format!("row {number}: {what}"));
    let long = |i: usize| match fields.get(i) {
        Some(Field::Long(v)) => Ok(*v),
        _ => Err(bad("a number is missing")),
    };
    let optional = |i: usize| match fields.get(i) {
        Some(Field::Long(v) | Field::TimestampMicros(v)) => Ok(Some(*v)),
        Some(Field::Null) => Ok(None),
        _ => Err(bad("an optional number is malformed")),
    };
    let day = match fields.first() {
        Some(Field::Date(d)) => NaiveDate::default()
            .checked_add_signed(chrono::TimeDelta::days(i64::from(*d)))
            .ok_or_else(|| bad("day out of range"))?,
        _ => return Err(bad("no day")),
    };
    let title = match fields.get(3) {
        Some(Field::Str(s)) => s.clone(),
        _ => return Err(bad("no title")),
    };
    let rate_card_version = match fields.get(10) {
        Some(Field::Int(v)) => *v,
        _ => return Err(bad("no rate card version")),
    };
    let restated_at = optional(13)?
        .map(|micros| DateTime::from_timestamp_micros(micros).ok_or_else(|| bad("bad time")))
        .transpose()?;
    Ok(Row {
        day,
        video_id: long(1)?,
        creator_id: long(2)?,
        title,
        sums: [long(4)?, long(5)?, long(6)?, long(7)?, long(8)?, long(9)?],
        rate_card_version,
        original_views: optional(11)?,
        original_ad_views: optional(12)?,
        restated_at,
    })
}

/// Rows and total amount of the archive `path`, whose rows must all be in
/// `month`; read group by group.
fn file_totals(path: &Path, month: NaiveDate) -> Result<(i64, i64), ArchiveError> {
    let mut groups = Groups::open(path)?;
    let (mut rows, mut total) = (0i64, 0i64);
    while let Some(group) = groups.next_group()? {
        for r in &group {
            rows += 1;
            total = total
                .checked_add(r.sums[5])
                .ok_or_else(|| ArchiveError::BadFile("amounts overflow".to_owned()))?;
        }
    }
    if groups.month().is_some_and(|m| m != month) {
        return Err(ArchiveError::BadFile(format!(
            "its rows are not of {month}"
        )));
    }
    Ok((rows, total))
}

/// Restores the month archived in `path`.
///
/// The rows are loaded, one row group at a time, into a new table
/// (`<partition>_restoring`, made like `daily_stats` with its key, indexes
/// and a check that every row is in the month, in a short transaction of
/// its own) in a transaction that holds no lock on `daily_stats`:
/// settlements, reports and the making of partitions go on meanwhile. Only
/// then a short transaction (bounded by the partition lock timeout) locks
/// `daily_stats`, replaces an empty partition of the month if one was made
/// meanwhile, and attaches the table as the month's partition: PostgreSQL
/// adopts its key and indexes and, from the check, knows every row is in
/// the month, so attaching reads no row. A partition that holds rows is
/// refused, before the load and again at the swap.
///
/// # Errors
/// See [`ArchiveError`]; on any error nothing is attached. A failed load
/// drops its table. A loaded table whose swap failed (the lock timeout, a
/// partition that gained rows meanwhile) stays, logged, until the next
/// restore of the month replaces it (or `DROP TABLE` it).
pub async fn restore_month(db: &DatabaseConnection, path: &Path) -> Result<Moved, ArchiveError> {
    require_partitioned(db).await?;
    let mut groups = Groups::open(path)?;
    let Some(first) = groups.next_group()? else {
        return Err(ArchiveError::BadFile("it holds no row".to_owned()));
    };
    let month = groups
        .month()
        .ok_or_else(|| ArchiveError::BadFile("it holds no row".to_owned()))?;
    let next = month
        .checked_add_months(Months::new(1))
        .ok_or_else(|| ArchiveError::BadFile("month out of range".to_owned()))?;
    let partition = partition_name("daily_stats", month);
    let loading = format!("{partition}_restoring");
    if has_partition(db, month).await? {
        refuse_held(db, month, &partition).await?;
    }
    create_loading(db, (month, next), &loading).await?;
    let (rows, total_amount) = match load(db, &mut groups, first, &loading).await {
        Ok(totals) => totals,
        Err(e) => {
            let _ = db
                .execute_unprepared(&format!("DROP TABLE IF EXISTS {loading}"))
                .await;
            return Err(e);
        }
    };
    if let Err(e) = swap(db, (month, next), &partition, &loading).await {
        tracing::warn!(%month, table = %loading, error = %e,
            "the month was loaded but not attached: restore again to replace the table, or drop it");
        return Err(e);
    }
    tracing::info!(%month, rows, total_amount, path = %path.display(), "month restored");
    Ok(Moved {
        month,
        rows,
        total_amount,
    })
}

/// The check of the loading table's month.
const RESTORING_CHECK: &str = "restoring_month";

/// Whether `month` has a partition of `daily_stats`.
async fn has_partition(db: &impl ConnectionTrait, month: NaiveDate) -> Result<bool, ArchiveError> {
    Ok(common::partitions::months(db, "daily_stats")
        .await?
        .contains(&month))
}

/// Refuses the partition of `month` if it holds rows.
async fn refuse_held(
    db: &impl ConnectionTrait,
    month: NaiveDate,
    partition: &str,
) -> Result<(), ArchiveError> {
    let (held, _) = totals(db, partition).await?;
    if held > 0 {
        return Err(ArchiveError::NotEmpty(month, held));
    }
    Ok(())
}

/// Makes `loading`, like `daily_stats` with a check of the month (a
/// leftover of an interrupted restore is replaced), in a transaction of its
/// own: `LIKE` holds a lock on `daily_stats` to its transaction's end.
async fn create_loading(
    db: &DatabaseConnection,
    (month, next): (NaiveDate, NaiveDate),
    loading: &str,
) -> Result<(), ArchiveError> {
    let txn = db.begin().await?;
    for sql in [
        format!("DROP TABLE IF EXISTS {loading}"),
        format!("CREATE TABLE {loading} (LIKE daily_stats INCLUDING ALL)"),
        format!(
            "ALTER TABLE {loading} ADD CONSTRAINT {RESTORING_CHECK} \
             CHECK (day >= '{month}' AND day < '{next}')"
        ),
    ] {
        txn.execute_unprepared(&sql).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Loads `first` and the rest of `groups` into `loading`, in one
/// transaction; the rows loaded and their total amount, won.
async fn load(
    db: &DatabaseConnection,
    groups: &mut Groups,
    first: Vec<Row>,
    loading: &str,
) -> Result<(i64, i64), ArchiveError> {
    let txn = db.begin().await?;
    let mut group = Some(first);
    while let Some(rows) = group {
        insert_rows(&txn, loading, &rows).await?;
        // One row group in memory at a time.
        drop(rows);
        group = groups.next_group()?;
    }
    let totals = totals(&txn, loading).await?;
    txn.commit().await?;
    Ok(totals)
}

/// Attaches `loading` as `partition`, the month's, replacing an empty
/// partition of the month; one short transaction holding `daily_stats`'
/// lock (taken first, as writers do, so no deadlock with them), bounded by
/// the partitions' lock timeout.
async fn swap(
    db: &DatabaseConnection,
    (month, next): (NaiveDate, NaiveDate),
    partition: &str,
    loading: &str,
) -> Result<(), ArchiveError> {
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!(
        "SET LOCAL lock_timeout = '{}'",
        common::partitions::LOCK_TIMEOUT
    ))
    .await?;
    if has_partition(&txn, month).await? {
        // Locked before counting: no writer can add a row between the
        // count and the drop.
        txn.execute_unprepared("LOCK TABLE daily_stats IN ACCESS EXCLUSIVE MODE")
            .await?;
        refuse_held(&txn, month, partition).await?;
        txn.execute_unprepared(&format!(
            "ALTER TABLE daily_stats DETACH PARTITION {partition}"
        ))
        .await?;
        txn.execute_unprepared(&format!("DROP TABLE {partition}"))
            .await?;
    }
    txn.execute_unprepared(&format!("ALTER TABLE {loading} RENAME TO {partition}"))
        .await?;
    txn.execute_unprepared(&format!(
        "ALTER TABLE daily_stats ATTACH PARTITION {partition} \
         FOR VALUES FROM ('{month}') TO ('{next}')"
    ))
    .await?;
    // The check did its work; the partition's bounds now say the same.
    txn.execute_unprepared(&format!(
        "ALTER TABLE {partition} DROP CONSTRAINT {RESTORING_CHECK}"
    ))
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Inserts `rows` into `table`, [`INSERT_ROWS`] a statement.
async fn insert_rows(
    db: &impl ConnectionTrait,
    table: &str,
    rows: &[Row],
) -> Result<(), ArchiveError> {
    for chunk in rows.chunks(INSERT_ROWS) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 14);
        let mut tuples = Vec::with_capacity(chunk.len());
        for r in chunk {
            let n = values.len();
            tuples.push(format!(
                "({})",
                (1..=14)
                    .map(|i| format!("${}", n + i))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
            values.extend([
                Value::from(r.day),
                r.video_id.into(),
                r.creator_id.into(),
                r.title.clone().into(),
            ]);
            values.extend(r.sums.iter().map(|&s| Value::from(s)));
            values.extend([
                Value::from(r.rate_card_version),
                r.original_views.into(),
                r.original_ad_views.into(),
                r.restated_at.into(),
            ]);
        }
        db.execute(stmt(
            DatabaseBackend::Postgres,
            &format!(
                "INSERT INTO {table} ({COLUMNS}) VALUES {}",
                tuples.join(",")
            ),
            values,
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn row(day: NaiveDate, video_id: i64) -> Row {
        Row {
            day,
            video_id,
            creator_id: video_id % 3,
            title: format!("video {video_id}"),
            sums: [video_id, 2, 3, 4, 5, 100 + video_id],
            rate_card_version: 1,
            original_views: (video_id % 2 == 0).then_some(7),
            original_ad_views: None,
            restated_at: None,
        }
    }

    /// Writes `groups` as the row groups of a new archive in a new
    /// directory; the file.
    fn archive(groups: &[Vec<Row>]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("archive-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("month.parquet");
        write_rows(&path, groups).unwrap();
        path
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, d).unwrap()
    }

    #[test]
    fn an_archive_is_read_one_row_group_at_a_time() {
        let groups = vec![
            vec![row(day(1), 1), row(day(1), 2), row(day(2), 1)],
            vec![row(day(15), 4), row(day(15), 5)],
            vec![row(day(31), 9)],
        ];
        let path = archive(&groups);
        let mut read = Groups::open(&path).unwrap();
        assert_eq!(read.month(), None);
        for group in &groups {
            assert_eq!(read.next_group().unwrap().as_ref(), Some(group));
            assert_eq!(read.month(), Some(day(1)));
        }
        assert_eq!(read.next_group().unwrap(), None);
        let total: i64 = groups.iter().flatten().map(|r| r.sums[5]).sum();
        assert_eq!(file_totals(&path, day(1)).unwrap(), (6, total));
        assert!(matches!(
            file_totals(&path, NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()),
            Err(ArchiveError::BadFile(_))
        ));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_row_of_another_month_is_refused_in_any_row_group() {
        let november = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let path = archive(&[
            vec![row(day(30), 1)],
            // All of November: the month is the file's, not the group's.
            vec![row(november, 1), row(november, 2)],
        ]);
        let mut read = Groups::open(&path).unwrap();
        assert_eq!(read.next_group().unwrap().map(|g| g.len()), Some(1));
        match read.next_group() {
            Err(ArchiveError::BadFile(why)) => assert!(why.contains("several months"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            file_totals(&path, day(1)),
            Err(ArchiveError::BadFile(_))
        ));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
