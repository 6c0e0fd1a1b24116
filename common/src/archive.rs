//! Retention of a table partitioned by month (issue 19, [`crate::partitions`]):
//! a month exported to a Parquet file and its partition detached and
//! dropped, and a month restored from such a file. PostgreSQL only
//! (SQLite keeps one table). The services say which of their tables are
//! archived ([`Table`]) and when a month may go (their own preconditions,
//! checked before calling [`export_month`] and [`restore_month`]):
//! `revenue-service archive` moves `daily_stats`, `streaming-service
//! archive` moves `daily_counts`.
//!
//! The file: one row per (day, key) of the month, the table's columns in
//! [`Table::columns`] order (a day is a Parquet `DATE`, a time a UTC
//! `TIMESTAMP` in microseconds, text UTF-8), Snappy compressed, row groups
//! of [`ROW_GROUP`] rows in (day, key) order. It is written beside its
//! final name and renamed once complete and read back: the partition is
//! dropped only after the file gave back as many rows, and the same sum
//! of [`Table::checksum`], as the partition holds.

use std::{fmt::Write as _, fs::File, path::Path, sync::Arc};

use chrono::{DateTime, Months, NaiveDate, Utc};
use parquet::{
    basic::Compression,
    data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type},
    file::{
        properties::WriterProperties,
        reader::{FileReader, SerializedFileReader},
        writer::{SerializedColumnWriter, SerializedFileWriter},
    },
    record::Field,
    schema::{parser::parse_message_type, types::Type},
};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement, TransactionTrait, Value,
};

use crate::partitions::{LOCK_TIMEOUT, month_of, partition_name};

/// The `archive` maintenance command of a service whose table is archived
/// (`<service> archive export|restore`; `docs/operations.md`,
/// "Retention").
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Writes a past month's rows to a Parquet file, checks the file, then
    /// detaches and drops the month's partition.
    Export {
        /// Any day of the month, or `YYYY-MM`.
        #[arg(long, value_parser = parse_month)]
        month: NaiveDate,
        /// The file to write (its directory must exist).
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Loads a month from its Parquet file and attaches it again.
    Restore {
        /// The file written by `archive export`.
        #[arg(long)]
        file: std::path::PathBuf,
    },
}

/// A month given as `YYYY-MM` or as any day of it, `YYYY-MM-DD`.
///
/// # Errors
/// Text that is neither.
pub fn parse_month(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d"))
        .map_err(|_| format!("`{text}` is not a month (YYYY-MM)"))
}

/// Rows per Parquet row group (and per database page while exporting).
pub const ROW_GROUP: usize = 50_000;

/// Bind values per `INSERT` while restoring (PostgreSQL takes at most
/// 65,535).
const INSERT_VALUES: usize = 56_000;

/// The type of an archived column, as stored in the database and in the
/// file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `DATE`; Parquet `INT32 (DATE)`.
    Date,
    /// `INTEGER`; Parquet `INT32`.
    Int32,
    /// `BIGINT`; Parquet `INT64`.
    Int64,
    /// `TEXT`/`VARCHAR`; Parquet `BYTE_ARRAY (UTF8)`.
    Text,
    /// A nullable `BIGINT`.
    OptionalInt64,
    /// A nullable text.
    OptionalText,
    /// A nullable `TIMESTAMPTZ`; Parquet `INT64 (TIMESTAMP(MICROS,true))`.
    OptionalTimestamp,
}

impl Kind {
    /// The column's line in the file's schema.
    fn schema_line(self, name: &str) -> String {
        let (repetition, physical) = match self {
            Self::Date => ("REQUIRED", "INT32 {} (DATE)"),
            Self::Int32 => ("REQUIRED", "INT32 {}"),
            Self::Int64 => ("REQUIRED", "INT64 {}"),
            Self::Text => ("REQUIRED", "BYTE_ARRAY {} (UTF8)"),
            Self::OptionalInt64 => ("OPTIONAL", "INT64 {}"),
            Self::OptionalText => ("OPTIONAL", "BYTE_ARRAY {} (UTF8)"),
            Self::OptionalTimestamp => ("OPTIONAL", "INT64 {} (TIMESTAMP(MICROS,true))"),
        };
        format!("  {repetition} {};\n", physical.replace("{}", name))
    }

    fn optional(self) -> bool {
        matches!(
            self,
            Self::OptionalInt64 | Self::OptionalText | Self::OptionalTimestamp
        )
    }
}

/// One archived column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Its name in the table and in the file.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
}

impl Column {
    /// The column `name` of type `kind`.
    pub const fn new(name: &'static str, kind: Kind) -> Self {
        Self { name, kind }
    }
}

/// A table partitioned by month on `day`, as archived.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The partitioned table, e.g. `daily_stats`.
    pub name: &'static str,
    /// Its columns, in file order: the first is the partition column
    /// (`day`, [`Kind::Date`]) and the second an [`Kind::Int64`] that with
    /// the day is unique (the file's order: the export pages by both).
    pub columns: &'static [Column],
    /// The [`Kind::Int64`] column whose sum, with the row count, checks a
    /// file against its partition.
    pub checksum: &'static str,
}

impl Table {
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn schema(&self) -> String {
        let mut text = format!("message {} {{\n", self.name);
        for c in self.columns {
            text.push_str(&c.kind.schema_line(c.name));
        }
        text.push('}');
        text
    }

    /// The position of [`Table::checksum`] among the columns.
    fn checksum_index(&self) -> usize {
        self.columns
            .iter()
            .position(|c| c.name == self.checksum)
            .unwrap_or(0)
    }
}

/// One value of an archived row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// NULL, in an optional column.
    Null,
    /// A day.
    Date(NaiveDate),
    /// A whole number ([`Kind::Int32`] and [`Kind::Int64`] columns).
    Int(i64),
    /// Text.
    Text(String),
    /// A time.
    Time(DateTime<Utc>),
}

/// One archived row: a [`Cell`] per column, in [`Table::columns`] order.
pub type Row = Vec<Cell>;

/// Why an export or a restore was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not on PostgreSQL, or the table is not partitioned.
    #[error("archiving needs PostgreSQL with a partitioned {0}")]
    NotPartitioned(&'static str),
    /// The month's rows may still change (the reason: not over, its last
    /// day not final yet (SPEC §11.2), not all written back).
    #[error("{0} cannot be archived yet: {1}")]
    NotOver(NaiveDate, &'static str),
    /// The table has no partition for the month (never written, or
    /// archived already).
    #[error("{0} has no partition for {1}")]
    NoPartition(&'static str, NaiveDate),
    /// The month's partition holds rows already: restoring would mix them.
    #[error("the partition of {0} holds {1} rows: drop or archive them first")]
    NotEmpty(NaiveDate, i64),
    /// A service's own precondition (the order of archived months, say).
    #[error("{0}")]
    Refused(String),
    /// The file is not an archive of one month of the table.
    #[error("not an archive of {0}")]
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
    Database(#[from] DbErr),
}

/// A statement a service runs in an export's or a restore's transaction:
/// its own bookkeeping of the archived month, or a precondition checked
/// under the archive's lock (see [`lock`]).
#[derive(Debug, Clone)]
pub enum Step {
    /// A statement run for its effect.
    Run(String),
    /// A query of one nullable text column, `refusal`: when it returns a
    /// row whose `refusal` is not null, the export or restore is refused
    /// ([`ArchiveError::Refused`]) with that text, and nothing changes.
    Refuse(String),
}

impl Step {
    async fn apply(&self, txn: &impl ConnectionTrait) -> Result<(), ArchiveError> {
        match self {
            Self::Run(sql) => {
                txn.execute_unprepared(sql).await?;
            }
            Self::Refuse(sql) => {
                let refusal = match txn.query_one(stmt(sql, vec![])).await? {
                    Some(row) => row.try_get::<Option<String>>("", "refusal")?,
                    None => None,
                };
                if let Some(why) = refusal {
                    return Err(ArchiveError::Refused(why));
                }
            }
        }
        Ok(())
    }
}

/// Runs one `step` outside an archive's transaction: a
/// [`Step::Refuse`] checked early, before a long load (it is checked again
/// in the transaction).
///
/// # Errors
/// [`ArchiveError::Refused`]; database failures.
pub async fn check(db: &impl ConnectionTrait, step: &Step) -> Result<(), ArchiveError> {
    step.apply(db).await
}

/// The statement that takes `table`'s archive lock until the end of the
/// transaction: exclusive for an export or a restore (taken first in
/// their transactions), shared for a writer that must not write into a
/// month being archived (it takes the lock, then reads which months are
/// archived). PostgreSQL only; bounded by the transaction's lock timeout.
#[must_use]
pub fn lock(table: &Table, shared: bool) -> String {
    let function = if shared {
        "pg_advisory_xact_lock_shared"
    } else {
        "pg_advisory_xact_lock"
    };
    format!("SELECT {function}(hashtext('archive {}'))", table.name)
}

/// What an export or a restore moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// The month (its first day).
    pub month: NaiveDate,
    /// Rows.
    pub rows: i64,
    /// The sum of the table's [`Table::checksum`] column over them (won
    /// for `daily_stats`' `total_amount`, views for `daily_counts`).
    pub checksum: i64,
}

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

/// Row count and checksum sum of `relation` (a partition of `table`).
async fn totals(
    db: &impl ConnectionTrait,
    table: &Table,
    relation: &str,
) -> Result<(i64, i64), ArchiveError> {
    let row = db
        .query_one(stmt(
            &format!(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM({}), 0) AS BIGINT) AS total \
                 FROM {relation}",
                table.checksum
            ),
            vec![],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no totals".to_owned()))?;
    Ok((row.try_get("", "n")?, row.try_get("", "total")?))
}

/// Refuses a table that is not partitioned (or not on PostgreSQL).
///
/// # Errors
/// [`ArchiveError::NotPartitioned`]; database failures.
pub async fn require_partitioned(
    db: &impl ConnectionTrait,
    table: &Table,
) -> Result<(), ArchiveError> {
    if crate::partitions::is_partitioned(db, table.name).await? {
        Ok(())
    } else {
        Err(ArchiveError::NotPartitioned(table.name))
    }
}

/// Exports `month` (any day of it) of `table` to the Parquet file `path`,
/// which must not exist, checks the file, then detaches and drops the
/// month's partition, in one transaction holding the table's archive lock
/// ([`lock`]). `steps` run in that transaction: each [`Step::Refuse`]
/// before the file is written, each [`Step::Run`] (a service's
/// bookkeeping) after it is checked, before the drop. The caller checked
/// that the month may go; a precondition another writer could change
/// meanwhile belongs in a `Step::Refuse`.
///
/// # Errors
/// See [`ArchiveError`]; [`ArchiveError::Refused`] for a file that exists
/// (an earlier archive is never overwritten). On any error the partition
/// stays and no file is left at `path`.
pub async fn export_month(
    db: &DatabaseConnection,
    table: &Table,
    month: NaiveDate,
    path: &Path,
    steps: &[Step],
) -> Result<Moved, ArchiveError> {
    require_partitioned(db, table).await?;
    let month = month_of(month);
    if path.exists() {
        return Err(ArchiveError::Refused(format!(
            "{} exists: an archive is never overwritten (move it, or choose another file)",
            path.display()
        )));
    }
    if !crate::partitions::months(db, table.name)
        .await?
        .contains(&month)
    {
        return Err(ArchiveError::NoPartition(table.name, month));
    }
    let partition = partition_name(table.name, month);
    // One transaction from the first read to the drop, the partition
    // locked against writes: a write to the month waits, so the file
    // holds exactly what is dropped.
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .await?;
    txn.execute_unprepared(&lock(table, false)).await?;
    txn.execute_unprepared(&format!("LOCK TABLE {partition} IN SHARE MODE"))
        .await?;
    for step in steps.iter().filter(|s| matches!(s, Step::Refuse(_))) {
        step.apply(&txn).await?;
    }
    let (rows, checksum) = totals(&txn, table, &partition).await?;
    let partial = path.with_extension("parquet.partial");
    let written = async {
        write_file(&txn, table, &partition, &partial).await?;
        let (read_rows, read_sum) = file_totals(table, &partial, month)?;
        if (read_rows, read_sum) != (rows, checksum) {
            return Err(ArchiveError::Mismatch(format!(
                "{read_rows} rows and a {} sum of {read_sum} read, {rows} rows and {checksum} held",
                table.checksum
            )));
        }
        // A hard link, not a rename: it fails if a file appeared at
        // `path` meanwhile, instead of replacing it.
        std::fs::hard_link(&partial, path)?;
        Ok(())
    }
    .await;
    let _ = std::fs::remove_file(&partial);
    written?;
    let dropped = async {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
        for step in steps.iter().filter(|s| matches!(s, Step::Run(_))) {
            step.apply(&txn).await?;
        }
        // Detaching locks the whole table: it gives up after the lock
        // timeout rather than queue readers behind a running writer
        // (export again later).
        txn.execute_unprepared(&format!(
            "ALTER TABLE {} DETACH PARTITION {partition}",
            table.name
        ))
        .await?;
        txn.execute_unprepared(&format!("DROP TABLE {partition}"))
            .await?;
        Ok::<_, ArchiveError>(())
    }
    .await;
    if let Err(e) = dropped {
        // Not committed: the partition stays, and so must no file that
        // would refuse the next export.
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    // A failed commit keeps the file: whether the drop committed is then
    // unknown, and the file may be the month's only copy.
    txn.commit().await?;
    tracing::info!(table = table.name, %month, rows, checksum, path = %path.display(), "month archived");
    Ok(Moved {
        month,
        rows,
        checksum,
    })
}

/// Writes every row of `partition`, in (day, key) order, to `path`.
async fn write_file(
    db: &impl ConnectionTrait,
    table: &Table,
    partition: &str,
    path: &Path,
) -> Result<(), ArchiveError> {
    let mut writer = create(table, path)?;
    let columns = table.column_list();
    let (day, key) = (table.columns[0].name, table.columns[1].name);
    let mut after: Option<(NaiveDate, i64)> = None;
    loop {
        let (filter, values): (String, Vec<Value>) = match after {
            Some((d, k)) => (
                format!("WHERE ({day}, {key}) > ($1, $2)"),
                vec![d.into(), k.into()],
            ),
            None => (String::new(), vec![]),
        };
        let page = db
            .query_all(stmt(
                &format!(
                    "SELECT {columns} FROM {partition} {filter} ORDER BY {day}, {key} LIMIT {ROW_GROUP}"
                ),
                values,
            ))
            .await?
            .iter()
            .map(|r| row_of(table, r))
            .collect::<Result<Vec<Row>, _>>()?;
        let Some(last) = page.last() else { break };
        after = match (&last[0], &last[1]) {
            (Cell::Date(d), Cell::Int(k)) => Some((*d, *k)),
            _ => {
                return Err(ArchiveError::BadFile(format!(
                    "{}: no day and key",
                    table.name
                )));
            }
        };
        write_group(table, &mut writer, &page)?;
        if page.len() < ROW_GROUP {
            break;
        }
    }
    writer.into_inner()?.sync_all()?;
    Ok(())
}

/// A new archive file of `table` at `path`, Snappy compressed.
fn create(table: &Table, path: &Path) -> Result<SerializedFileWriter<File>, ArchiveError> {
    let schema = Arc::new(parse_message_type(&table.schema())?);
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

/// Writes `groups` as the row groups of a new archive of `table` at
/// `path`, in the format [`export_month`] writes (its rows are not
/// checked: a file of several months is refused when read). For tools
/// that make or repair archives, and for tests.
///
/// # Errors
/// I/O and Parquet failures; a cell that does not fit its column.
pub fn write_rows(table: &Table, path: &Path, groups: &[Vec<Row>]) -> Result<(), ArchiveError> {
    let mut writer = create(table, path)?;
    for group in groups {
        write_group(table, &mut writer, group)?;
    }
    writer.into_inner()?.sync_all()?;
    Ok(())
}

/// A row of a `SELECT` of the table's columns.
fn row_of(table: &Table, r: &sea_orm::QueryResult) -> Result<Row, DbErr> {
    table
        .columns
        .iter()
        .map(|c| {
            let optional = |v: Option<Cell>| v.unwrap_or(Cell::Null);
            Ok(match c.kind {
                Kind::Date => Cell::Date(r.try_get("", c.name)?),
                Kind::Int32 => Cell::Int(i64::from(r.try_get::<i32>("", c.name)?)),
                Kind::Int64 => Cell::Int(r.try_get("", c.name)?),
                Kind::Text => Cell::Text(r.try_get("", c.name)?),
                Kind::OptionalInt64 => {
                    optional(r.try_get::<Option<i64>>("", c.name)?.map(Cell::Int))
                }
                Kind::OptionalText => {
                    optional(r.try_get::<Option<String>>("", c.name)?.map(Cell::Text))
                }
                Kind::OptionalTimestamp => optional(
                    r.try_get::<Option<DateTime<Utc>>>("", c.name)?
                        .map(Cell::Time),
                ),
            })
        })
        .collect()
}

/// Days since 1970-01-01, Parquet's `DATE`.
fn epoch_days(day: NaiveDate) -> i32 {
    let days = (day - NaiveDate::default()).num_days();
    i32::try_from(days).unwrap_or(i32::MAX)
}

/// A cell that does not fit its column.
fn misfit(table: &Table, column: &Column, cell: &Cell) -> ArchiveError {
    ArchiveError::BadFile(format!(
        "{}: {cell:?} does not fit column {} ({:?})",
        table.name, column.name, column.kind
    ))
}

/// One row group of `rows`.
fn write_group(
    table: &Table,
    writer: &mut SerializedFileWriter<File>,
    rows: &[Row],
) -> Result<(), ArchiveError> {
    let mut group = writer.next_row_group()?;
    for (index, column) in table.columns.iter().enumerate() {
        let Some(mut out) = group.next_column()? else {
            return Err(ArchiveError::BadFile(format!(
                "{}: the schema has fewer columns than the table",
                table.name
            )));
        };
        let cells = rows.iter().map(|r| r.get(index).unwrap_or(&Cell::Null));
        write_column(table, column, &mut out, cells)?;
        out.close()?;
    }
    group.close()?;
    Ok(())
}

/// Writes one column's `cells` (with definition levels when optional).
fn write_column<'a>(
    table: &Table,
    column: &Column,
    out: &mut SerializedColumnWriter<'_>,
    cells: impl Iterator<Item = &'a Cell>,
) -> Result<(), ArchiveError> {
    let mut levels = Vec::new();
    let present =
        |cell: &'a Cell, levels: &mut Vec<i16>| -> Result<Option<&'a Cell>, ArchiveError> {
            let some = !matches!(cell, Cell::Null);
            if column.kind.optional() {
                levels.push(i16::from(some));
            } else if !some {
                return Err(misfit(table, column, cell));
            }
            Ok(some.then_some(cell))
        };
    let levels_of = |levels: &[i16]| column.kind.optional().then(|| levels.to_vec());
    match column.kind {
        Kind::Date | Kind::Int32 => {
            let mut values = Vec::new();
            for cell in cells {
                match present(cell, &mut levels)? {
                    Some(Cell::Date(d)) if column.kind == Kind::Date => values.push(epoch_days(*d)),
                    Some(Cell::Int(v)) if column.kind == Kind::Int32 => {
                        values.push(i32::try_from(*v).map_err(|_| misfit(table, column, cell))?)
                    }
                    _ => return Err(misfit(table, column, cell)),
                }
            }
            out.typed::<Int32Type>()
                .write_batch(&values, levels_of(&levels).as_deref(), None)?;
        }
        Kind::Int64 | Kind::OptionalInt64 | Kind::OptionalTimestamp => {
            let mut values = Vec::new();
            for cell in cells {
                match present(cell, &mut levels)? {
                    None => {}
                    Some(Cell::Int(v)) if column.kind != Kind::OptionalTimestamp => values.push(*v),
                    Some(Cell::Time(t)) if column.kind == Kind::OptionalTimestamp => {
                        values.push(t.timestamp_micros());
                    }
                    Some(_) => return Err(misfit(table, column, cell)),
                }
            }
            out.typed::<Int64Type>()
                .write_batch(&values, levels_of(&levels).as_deref(), None)?;
        }
        Kind::Text | Kind::OptionalText => {
            let mut values = Vec::new();
            for cell in cells {
                match present(cell, &mut levels)? {
                    None => {}
                    Some(Cell::Text(s)) => values.push(ByteArray::from(s.as_str())),
                    Some(_) => return Err(misfit(table, column, cell)),
                }
            }
            out.typed::<ByteArrayType>().write_batch(
                &values,
                levels_of(&levels).as_deref(),
                None,
            )?;
        }
    }
    Ok(())
}

/// An archive of a table read one row group at a time, so that at most
/// [`ROW_GROUP`] rows are in memory whatever the month's size. Every row
/// must fall in the month of the file's first row.
pub struct Groups {
    table: Table,
    reader: SerializedFileReader<File>,
    /// The next row group to read.
    next: usize,
    /// Rows read so far (for errors: "row N").
    read: usize,
    /// The month of the first row read.
    month: Option<NaiveDate>,
}

impl Groups {
    /// Opens the archive of `table` at `path`, checking its columns.
    ///
    /// # Errors
    /// [`ArchiveError::BadFile`] for other columns; I/O and Parquet
    /// failures.
    pub fn open(table: &Table, path: &Path) -> Result<Self, ArchiveError> {
        let reader = SerializedFileReader::new(File::open(path)?)?;
        let found: &Type = reader.metadata().file_metadata().schema();
        let names: Vec<&str> = found.get_fields().iter().map(|f| f.name()).collect();
        let expected: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        if names != expected {
            return Err(ArchiveError::BadFile(format!(
                "{}: columns {names:?}, expected {expected:?}",
                table.name
            )));
        }
        Ok(Self {
            table: *table,
            reader,
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
            let row = self.row_of_record(&record?, self.read + rows.len() + 1)?;
            let Some(Cell::Date(day)) = row.first() else {
                return Err(ArchiveError::BadFile(format!(
                    "{}: no day",
                    self.table.name
                )));
            };
            let month = *self.month.get_or_insert(month_of(*day));
            if month_of(*day) != month {
                return Err(ArchiveError::BadFile(format!(
                    "{}: its rows span several months",
                    self.table.name
                )));
            }
            rows.push(row);
        }
        self.read += rows.len();
        Ok(Some(rows))
    }

    /// The file's row `record`, its `number`th.
    fn row_of_record(
        &self,
        record: &parquet::record::Row,
        number: usize,
    ) -> Result<Row, ArchiveError> {
        let bad = |column: &str| {
            ArchiveError::BadFile(format!(
                "{}: row {number}: {column} is malformed",
                self.table.name
            ))
        };
        let fields: Vec<&Field> = record.get_column_iter().map(|(_, f)| f).collect();
        self.table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Ok(match (c.kind, fields.get(i)) {
                    (kind, Some(Field::Null)) if kind.optional() => Cell::Null,
                    (Kind::Date, Some(Field::Date(d))) => Cell::Date(
                        NaiveDate::default()
                            .checked_add_signed(chrono::TimeDelta::days(i64::from(*d)))
                            .ok_or_else(|| bad(c.name))?,
                    ),
                    (Kind::Int32, Some(Field::Int(v))) => Cell::Int(i64::from(*v)),
                    (Kind::Int64 | Kind::OptionalInt64, Some(Field::Long(v))) => Cell::Int(*v),
                    (Kind::Text | Kind::OptionalText, Some(Field::Str(s))) => Cell::Text(s.clone()),
                    (Kind::OptionalTimestamp, Some(Field::TimestampMicros(v) | Field::Long(v))) => {
                        Cell::Time(DateTime::from_timestamp_micros(*v).ok_or_else(|| bad(c.name))?)
                    }
                    _ => return Err(bad(c.name)),
                })
            })
            .collect()
    }
}

/// The month of the archive of `table` at `path` (of its first row).
///
/// # Errors
/// [`ArchiveError::BadFile`] for another table's file or one with no
/// row; I/O and Parquet failures.
pub fn month_of_file(table: &Table, path: &Path) -> Result<NaiveDate, ArchiveError> {
    let mut groups = Groups::open(table, path)?;
    while groups.next_group()?.is_some_and(|g| g.is_empty()) {}
    groups
        .month()
        .ok_or_else(|| ArchiveError::BadFile(format!("{}: it holds no row", table.name)))
}

/// Rows and checksum sum of the archive `path`, whose rows must all be in
/// `month`; read group by group.
fn file_totals(table: &Table, path: &Path, month: NaiveDate) -> Result<(i64, i64), ArchiveError> {
    let mut groups = Groups::open(table, path)?;
    let index = table.checksum_index();
    let (mut rows, mut sum) = (0i64, 0i64);
    while let Some(group) = groups.next_group()? {
        for r in &group {
            rows += 1;
            let value = match r.get(index) {
                Some(Cell::Int(v)) => *v,
                _ => 0,
            };
            sum = sum
                .checked_add(value)
                .ok_or_else(|| ArchiveError::BadFile(format!("{}: sums overflow", table.name)))?;
        }
    }
    if groups.month().is_some_and(|m| m != month) {
        return Err(ArchiveError::BadFile(format!(
            "{}: its rows are not of {month}",
            table.name
        )));
    }
    Ok((rows, sum))
}

/// Restores the month of `table` archived in `path`; `after_attach` runs,
/// in order, in the transaction that attaches it, under the table's
/// archive lock ([`lock`]): a service's own bookkeeping of the restored
/// month ([`Step::Run`]) and the preconditions another writer could
/// change meanwhile, or that need the loaded rows ([`Step::Refuse`]).
///
/// The rows are loaded, one row group at a time, into a new table
/// (`<partition>_restoring`, made like the table with its key, indexes
/// and a check that every row is in the month, in a short transaction of
/// its own) in a transaction that holds no lock on the table: writes,
/// reads and the making of partitions go on meanwhile. Only then a short
/// transaction (bounded by the partition lock timeout) locks the table,
/// replaces an empty partition of the month if one was made meanwhile, and
/// attaches the loaded table as the month's partition: PostgreSQL adopts
/// its key and indexes and, from the check, knows every row is in the
/// month, so attaching reads no row. A partition that holds rows is
/// refused, before the load and again at the swap.
///
/// # Errors
/// See [`ArchiveError`]; on any error nothing is attached. A failed load
/// drops its table. A loaded table whose swap failed (the lock timeout, a
/// partition that gained rows meanwhile) stays, logged, until the next
/// restore of the month replaces it (or `DROP TABLE` it).
pub async fn restore_month(
    db: &DatabaseConnection,
    table: &Table,
    path: &Path,
    after_attach: &[Step],
) -> Result<Moved, ArchiveError> {
    require_partitioned(db, table).await?;
    let mut groups = Groups::open(table, path)?;
    let no_row = || ArchiveError::BadFile(format!("{}: it holds no row", table.name));
    let first = groups.next_group()?.ok_or_else(no_row)?;
    let month = groups.month().ok_or_else(no_row)?;
    let next = month
        .checked_add_months(Months::new(1))
        .ok_or_else(|| ArchiveError::BadFile("month out of range".to_owned()))?;
    let partition = partition_name(table.name, month);
    let loading = format!("{partition}_restoring");
    if has_partition(db, table, month).await? {
        refuse_held(db, table, month, &partition).await?;
    }
    create_loading(db, table, (month, next), &loading).await?;
    let (rows, checksum) = match load(db, table, &mut groups, first, &loading).await {
        Ok(totals) => totals,
        Err(e) => {
            let _ = db
                .execute_unprepared(&format!("DROP TABLE IF EXISTS {loading}"))
                .await;
            return Err(e);
        }
    };
    if let Err(e) = swap(
        db,
        table,
        (month, next),
        (&partition, &loading),
        after_attach,
    )
    .await
    {
        tracing::warn!(table = table.name, %month, loading = %loading, error = %e,
            "the month was loaded but not attached: restore again to replace the table, or drop it");
        return Err(e);
    }
    tracing::info!(table = table.name, %month, rows, checksum, path = %path.display(), "month restored");
    Ok(Moved {
        month,
        rows,
        checksum,
    })
}

/// The check of the loading table's month.
const RESTORING_CHECK: &str = "restoring_month";

/// Whether `month` has a partition of `table`.
async fn has_partition(
    db: &impl ConnectionTrait,
    table: &Table,
    month: NaiveDate,
) -> Result<bool, ArchiveError> {
    Ok(crate::partitions::months(db, table.name)
        .await?
        .contains(&month))
}

/// Refuses the partition of `month` if it holds rows.
async fn refuse_held(
    db: &impl ConnectionTrait,
    table: &Table,
    month: NaiveDate,
    partition: &str,
) -> Result<(), ArchiveError> {
    let (held, _) = totals(db, table, partition).await?;
    if held > 0 {
        return Err(ArchiveError::NotEmpty(month, held));
    }
    Ok(())
}

/// Makes `loading`, like the table with a check of the month (a leftover
/// of an interrupted restore is replaced), in a transaction of its own:
/// `LIKE` holds a lock on the table to its transaction's end.
async fn create_loading(
    db: &DatabaseConnection,
    table: &Table,
    (month, next): (NaiveDate, NaiveDate),
    loading: &str,
) -> Result<(), ArchiveError> {
    let day = table.columns[0].name;
    let txn = db.begin().await?;
    for sql in [
        format!("DROP TABLE IF EXISTS {loading}"),
        format!("CREATE TABLE {loading} (LIKE {} INCLUDING ALL)", table.name),
        format!(
            "ALTER TABLE {loading} ADD CONSTRAINT {RESTORING_CHECK} \
             CHECK ({day} >= '{month}' AND {day} < '{next}')"
        ),
    ] {
        txn.execute_unprepared(&sql).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Loads `first` and the rest of `groups` into `loading`, in one
/// transaction; the rows loaded and their checksum sum.
async fn load(
    db: &DatabaseConnection,
    table: &Table,
    groups: &mut Groups,
    first: Vec<Row>,
    loading: &str,
) -> Result<(i64, i64), ArchiveError> {
    let txn = db.begin().await?;
    let mut group = Some(first);
    while let Some(rows) = group {
        insert_rows(&txn, table, loading, &rows).await?;
        // One row group in memory at a time.
        drop(rows);
        group = groups.next_group()?;
    }
    let totals = totals(&txn, table, loading).await?;
    txn.commit().await?;
    Ok(totals)
}

/// Attaches `loading` as `partition`, the month's, replacing an empty
/// partition of the month, then runs `after_attach`; one short transaction
/// holding the archive lock, then the table's lock (taken in the order
/// writers take them, so no deadlock with them), bounded by the
/// partitions' lock timeout.
async fn swap(
    db: &DatabaseConnection,
    table: &Table,
    (month, next): (NaiveDate, NaiveDate),
    (partition, loading): (&str, &str),
    after_attach: &[Step],
) -> Result<(), ArchiveError> {
    let name = table.name;
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .await?;
    txn.execute_unprepared(&lock(table, false)).await?;
    if has_partition(&txn, table, month).await? {
        // Locked before counting: no writer can add a row between the
        // count and the drop.
        txn.execute_unprepared(&format!("LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
            .await?;
        refuse_held(&txn, table, month, partition).await?;
        txn.execute_unprepared(&format!("ALTER TABLE {name} DETACH PARTITION {partition}"))
            .await?;
        txn.execute_unprepared(&format!("DROP TABLE {partition}"))
            .await?;
    }
    txn.execute_unprepared(&format!("ALTER TABLE {loading} RENAME TO {partition}"))
        .await?;
    txn.execute_unprepared(&format!(
        "ALTER TABLE {name} ATTACH PARTITION {partition} \
         FOR VALUES FROM ('{month}') TO ('{next}')"
    ))
    .await?;
    // The check did its work; the partition's bounds now say the same.
    txn.execute_unprepared(&format!(
        "ALTER TABLE {partition} DROP CONSTRAINT {RESTORING_CHECK}"
    ))
    .await?;
    for step in after_attach {
        step.apply(&txn).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The bind value of `cell` in `column`.
fn value_of(table: &Table, column: &Column, cell: &Cell) -> Result<Value, ArchiveError> {
    Ok(match (column.kind, cell) {
        (Kind::Date, Cell::Date(d)) => Value::from(*d),
        (Kind::Int32, Cell::Int(v)) => {
            Value::from(i32::try_from(*v).map_err(|_| misfit(table, column, cell))?)
        }
        (Kind::Int64 | Kind::OptionalInt64, Cell::Int(v)) => Value::from(*v),
        (Kind::Text | Kind::OptionalText, Cell::Text(s)) => Value::from(s.clone()),
        (Kind::OptionalTimestamp, Cell::Time(t)) => Value::from(*t),
        (Kind::OptionalInt64, Cell::Null) => Value::from(None::<i64>),
        (Kind::OptionalText, Cell::Null) => Value::from(None::<String>),
        (Kind::OptionalTimestamp, Cell::Null) => Value::from(None::<DateTime<Utc>>),
        _ => return Err(misfit(table, column, cell)),
    })
}

/// Inserts `rows` into `relation`, as many a statement as its bind values
/// allow.
async fn insert_rows(
    db: &impl ConnectionTrait,
    table: &Table,
    relation: &str,
    rows: &[Row],
) -> Result<(), ArchiveError> {
    let width = table.columns.len();
    let columns = table.column_list();
    for chunk in rows.chunks((INSERT_VALUES / width).max(1)) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * width);
        let mut sql = format!("INSERT INTO {relation} ({columns}) VALUES ");
        for (i, r) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ",(" });
            for (j, column) in table.columns.iter().enumerate() {
                let cell = r.get(j).unwrap_or(&Cell::Null);
                values.push(value_of(table, column, cell)?);
                let _ = write!(sql, "{}${}", if j == 0 { "" } else { "," }, values.len());
            }
            sql.push(')');
        }
        db.execute(stmt(&sql, values)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const TABLE: Table = Table {
        name: "samples",
        columns: &[
            Column::new("day", Kind::Date),
            Column::new("video_id", Kind::Int64),
            Column::new("title", Kind::Text),
            Column::new("version", Kind::Int32),
            Column::new("views", Kind::Int64),
            Column::new("original_views", Kind::OptionalInt64),
            Column::new("batch", Kind::OptionalText),
            Column::new("restated_at", Kind::OptionalTimestamp),
        ],
        checksum: "views",
    };

    fn row(day: NaiveDate, video_id: i64) -> Row {
        vec![
            Cell::Date(day),
            Cell::Int(video_id),
            Cell::Text(format!("video {video_id}")),
            Cell::Int(1),
            Cell::Int(100 + video_id),
            if video_id % 2 == 0 {
                Cell::Int(7)
            } else {
                Cell::Null
            },
            if video_id % 3 == 0 {
                Cell::Text("b-1".to_owned())
            } else {
                Cell::Null
            },
            if video_id % 5 == 0 {
                Cell::Time(DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap())
            } else {
                Cell::Null
            },
        ]
    }

    /// Writes `groups` as the row groups of a new archive in a new
    /// directory; the file.
    fn archive(groups: &[Vec<Row>]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("archive-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("month.parquet");
        write_rows(&TABLE, &path, groups).unwrap();
        path
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, d).unwrap()
    }

    #[test]
    fn an_archive_is_read_one_row_group_at_a_time_with_every_kind_of_cell() {
        let groups = vec![
            vec![row(day(1), 1), row(day(1), 2), row(day(2), 3)],
            vec![row(day(15), 4), row(day(15), 5), row(day(15), 6)],
            vec![row(day(31), 10)],
        ];
        let path = archive(&groups);
        let mut read = Groups::open(&TABLE, &path).unwrap();
        assert_eq!(read.month(), None);
        for group in &groups {
            assert_eq!(read.next_group().unwrap().as_ref(), Some(group));
            assert_eq!(read.month(), Some(day(1)));
        }
        assert_eq!(read.next_group().unwrap(), None);
        assert_eq!(month_of_file(&TABLE, &path).unwrap(), day(1));
        let views: i64 = (1..=6).chain([10]).map(|v| 100 + v).sum();
        assert_eq!(file_totals(&TABLE, &path, day(1)).unwrap(), (7, views));
        assert!(matches!(
            file_totals(&TABLE, &path, NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()),
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
        let mut read = Groups::open(&TABLE, &path).unwrap();
        assert_eq!(read.next_group().unwrap().map(|g| g.len()), Some(1));
        match read.next_group() {
            Err(ArchiveError::BadFile(why)) => assert!(why.contains("several months"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            file_totals(&TABLE, &path, day(1)),
            Err(ArchiveError::BadFile(_))
        ));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_cell_that_does_not_fit_its_column_is_refused_and_another_tables_file_too() {
        let dir = std::env::temp_dir().join(format!("archive-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.parquet");
        let mut null_title = row(day(1), 1);
        null_title[2] = Cell::Null;
        let mut wide_version = row(day(1), 1);
        wide_version[3] = Cell::Int(i64::from(i32::MAX) + 1);
        for bad in [null_title, wide_version] {
            assert!(matches!(
                write_rows(&TABLE, &path, &[vec![bad]]),
                Err(ArchiveError::BadFile(_))
            ));
        }
        let other = Table {
            name: "other",
            columns: &TABLE.columns[..2],
            checksum: "video_id",
        };
        write_rows(
            &other,
            &path,
            &[vec![vec![Cell::Date(day(1)), Cell::Int(1)]]],
        )
        .unwrap();
        match Groups::open(&TABLE, &path) {
            Err(ArchiveError::BadFile(why)) => assert!(why.contains("columns"), "{why}"),
            other => panic!("{:?}", other.err()),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
