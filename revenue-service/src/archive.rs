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
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let properties = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut writer = SerializedFileWriter::new(File::create(path)?, schema, properties)?;
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

/// Reads every row of the archive `path`, checking they all fall in one
/// month; the rows and that month.
pub fn read_file(path: &Path) -> Result<(Vec<Row>, Option<NaiveDate>), ArchiveError> {
    let reader = open(path)?;
    let mut rows = Vec::new();
    for record in reader.get_row_iter(None)? {
        let record = record?;
        let fields: Vec<&Field> = record.get_column_iter().map(|(_, f)| f).collect();
        let bad = |what: &str| ArchiveError::BadFile(format!("row {}: {what}", rows.len() + 1));
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
        rows.push(Row {
            day,
            video_id: long(1)?,
            creator_id: long(2)?,
            title,
            sums: [long(4)?, long(5)?, long(6)?, long(7)?, long(8)?, long(9)?],
            rate_card_version,
            original_views: optional(11)?,
            original_ad_views: optional(12)?,
            restated_at,
        });
    }
    let month = rows.first().map(|r| month_of(r.day));
    if let Some(m) = month
        && rows.iter().any(|r| month_of(r.day) != m)
    {
        return Err(ArchiveError::BadFile(
            "its rows span several months".to_owned(),
        ));
    }
    Ok((rows, month))
}

/// Rows and total amount of the archive `path`, whose rows must all be in
/// `month`.
fn file_totals(path: &Path, month: NaiveDate) -> Result<(i64, i64), ArchiveError> {
    let (rows, found) = read_file(path)?;
    if found.is_some_and(|m| m != month) {
        return Err(ArchiveError::BadFile(format!(
            "its rows are not of {month}"
        )));
    }
    let total = rows
        .iter()
        .try_fold(0i64, |sum, r| sum.checked_add(r.sums[5]));
    let total = total.ok_or_else(|| ArchiveError::BadFile("amounts overflow".to_owned()))?;
    Ok((i64::try_from(rows.len()).unwrap_or(i64::MAX), total))
}

/// Restores the month archived in `path`: its rows are loaded into a new
/// table, which is attached as the month's partition (an empty partition
/// made meanwhile is replaced; one holding rows is refused).
///
/// # Errors
/// See [`ArchiveError`]; on any error nothing is attached.
pub async fn restore_month(db: &DatabaseConnection, path: &Path) -> Result<Moved, ArchiveError> {
    require_partitioned(db).await?;
    let (rows, month) = read_file(path)?;
    let month = month.ok_or_else(|| ArchiveError::BadFile("it holds no row".to_owned()))?;
    let next = month
        .checked_add_months(Months::new(1))
        .ok_or_else(|| ArchiveError::BadFile("month out of range".to_owned()))?;
    let partition = partition_name("daily_stats", month);
    let loading = format!("{partition}_restoring");
    let txn = db.begin().await?;
    if common::partitions::months(&txn, "daily_stats")
        .await?
        .contains(&month)
    {
        let (held, _) = totals(&txn, &partition).await?;
        if held > 0 {
            return Err(ArchiveError::NotEmpty(month, held));
        }
        txn.execute_unprepared(&format!(
            "ALTER TABLE daily_stats DETACH PARTITION {partition}"
        ))
        .await?;
        txn.execute_unprepared(&format!("DROP TABLE {partition}"))
            .await?;
    }
    txn.execute_unprepared(&format!(
        "CREATE TABLE {loading} (LIKE daily_stats INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    ))
    .await?;
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
        txn.execute(stmt(
            DatabaseBackend::Postgres,
            &format!(
                "INSERT INTO {loading} ({COLUMNS}) VALUES {}",
                tuples.join(",")
            ),
            values,
        ))
        .await?;
    }
    txn.execute_unprepared(&format!("ALTER TABLE {loading} RENAME TO {partition}"))
        .await?;
    // Attaching builds the partition's key and indexes and checks every
    // row falls in the month.
    txn.execute_unprepared(&format!(
        "ALTER TABLE daily_stats ATTACH PARTITION {partition} \
         FOR VALUES FROM ('{month}') TO ('{next}')"
    ))
    .await?;
    let (rows, total_amount) = totals(&txn, &partition).await?;
    txn.commit().await?;
    tracing::info!(%month, rows, total_amount, path = %path.display(), "month restored");
    Ok(Moved {
        month,
        rows,
        total_amount,
    })
}
