//! The double-entry ledger (SPEC §11.1): append-only transfers between
//! accounts, balances as sums. Settlement posts, for each (video, day), the
//! difference between the day's new `total_amount` and what the ledger
//! already holds for it — an `earning` the first time, then `restatement`s
//! or `adjustment`s — in the same transaction as the day's rows, so the
//! invariant "held = current amount" holds after every commit (and what is
//! held is the old row's amount: settlement reads no ledger). Nothing here
//! updates or deletes a transfer.

use chrono::{DateTime, NaiveDate, Utc};
use common::domain::{CreatorId, TransferKind, Won};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, Value};
use tokio::sync::OnceCell;

use crate::{
    entity::{ledger_posting, ledger_transfer},
    sql::stmt,
};

/// An account (SPEC §11.1), as stored: a code, where the creator of a
/// creator's account is the transfer's `creator_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    /// `creator:{id}:payable`: what the platform owes the creator.
    Payable,
    /// `platform:content_cost`: the expense creators' earnings are debited to.
    ContentCost,
    /// `platform:cash`: the platform's bank account (payouts are credited to it).
    Cash,
    /// `platform:income_tax_payable`: income tax withheld, owed to the tax office.
    IncomeTaxPayable,
    /// `platform:local_tax_payable`: local income tax withheld, owed to the
    /// local government.
    LocalTaxPayable,
}

impl Account {
    /// The stored code (`m20261201_000001_compact_ledger`).
    pub fn code(self) -> i16 {
        match self {
            Account::Payable => 0,
            Account::ContentCost => 1,
            Account::Cash => 2,
            Account::IncomeTaxPayable => 3,
            Account::LocalTaxPayable => 4,
        }
    }
}

/// `creator:{id}:payable`: what the platform owes the creator.
pub fn payable(creator: CreatorId) -> String {
    format!("creator:{}:payable", creator.0)
}

/// A transfer kind's stored code (`m20261201_000001_compact_ledger`).
pub fn kind_code(kind: TransferKind) -> i16 {
    match kind {
        TransferKind::Earning => 1,
        TransferKind::Restatement => 2,
        TransferKind::Adjustment => 3,
        TransferKind::Payout => 4,
        TransferKind::IncomeTax => 5,
        TransferKind::LocalTax => 6,
    }
}

/// What a posting came from, and how it is labelled: one `ledger_postings`
/// row, written with its first transfer (a posting of nothing is not
/// recorded).
#[derive(Debug, Clone)]
pub struct Posting {
    /// The kind of a change to a (video, day) that was settled before:
    /// [`TransferKind::Restatement`] or [`TransferKind::Adjustment`]. The
    /// first transfer of a (video, day) is an `earning`.
    pub kind: TransferKind,
    /// `run`, `adjustment`, `statement` or `payout`.
    pub source_kind: &'static str,
    /// The run's, adjustment's, statement's or payout's id.
    pub source_id: i64,
    /// Why, for people (an adjustment's reason).
    pub reason: Option<String>,
    /// `settlement`, or the admin's user id.
    pub actor: String,
    /// The instant every transfer of this posting carries.
    pub posted_at: DateTime<Utc>,
    /// Its `ledger_postings` id, once written (within one transaction: a
    /// posting is not reused after its transaction ends).
    pub recorded: OnceCell<i64>,
}

impl Posting {
    /// The posting's id, writing its row the first time.
    ///
    /// # Errors
    /// Database failures.
    pub async fn id<C: ConnectionTrait>(&self, db: &C) -> Result<i64, DbErr> {
        self.recorded
            .get_or_try_init(|| async {
                let posting = ledger_posting::ActiveModel {
                    source_kind: Set(self.source_kind.to_owned()),
                    source_id: Set(self.source_id),
                    reason: Set(self.reason.clone()),
                    actor: Set(self.actor.clone()),
                    posted_at: Set(self.posted_at),
                    ..Default::default()
                };
                let inserted = ledger_posting::Entity::insert(posting).exec(db).await?;
                Ok::<_, DbErr>(inserted.last_insert_id)
            })
            .await
            .copied()
    }
}

/// One transfer to post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Its kind.
    pub kind: TransferKind,
    /// The account it is taken from.
    pub debit: Account,
    /// The account it goes to.
    pub credit: Account,
    /// Won, > 0.
    pub amount: i64,
    /// The creator whose payable one side is.
    pub creator_id: i64,
    /// The video, where one applies.
    pub video_id: Option<i64>,
    /// The day, where one applies.
    pub day: Option<NaiveDate>,
}

/// One (video, day)'s change of amount to post: signed, positive is owed to
/// the creator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// `earning`, `restatement` or `adjustment`.
    pub kind: TransferKind,
    /// The creator.
    pub creator_id: i64,
    /// The video.
    pub video_id: i64,
    /// Won, not 0.
    pub amount: i64,
}

/// Transfers per statement: 8 bound values each, under SQLite's 32,766
/// and PostgreSQL's 65,535.
const LINES_PER_STATEMENT: usize = 4_000;

/// Posts `transfers` of `day`: a positive amount from
/// `platform:content_cost` to the creator's payable, a negative one back.
/// Returns how many were posted.
///
/// # Errors
/// Database failures.
pub async fn post<C: ConnectionTrait>(
    db: &C,
    day: NaiveDate,
    transfers: &[Transfer],
    posting: &Posting,
) -> Result<u64, DbErr> {
    let lines: Vec<Line> = transfers
        .iter()
        .map(|t| {
            let (debit, credit) = if t.amount > 0 {
                (Account::ContentCost, Account::Payable)
            } else {
                (Account::Payable, Account::ContentCost)
            };
            Line {
                kind: t.kind,
                debit,
                credit,
                // A difference of two amounts of at least 0: never i64::MIN.
                amount: t.amount.saturating_abs(),
                creator_id: t.creator_id,
                video_id: Some(t.video_id),
                day: Some(day),
            }
        })
        .collect();
    post_lines(db, lines, posting).await
}

/// Posts `lines` with `posting`, creator by creator (a creator's transfers
/// of one posting get neighbouring ids). Returns how many were posted.
///
/// # Errors
/// Database failures (an amount of 0 or less breaks the table's check).
pub async fn post_lines<C: ConnectionTrait>(
    db: &C,
    mut lines: Vec<Line>,
    posting: &Posting,
) -> Result<u64, DbErr> {
    if lines.is_empty() {
        return Ok(0);
    }
    lines.sort_by_key(|l| (l.creator_id, l.video_id, l.day));
    enter_fence(db).await?;
    let posting_id = posting.id(db).await?;
    let backend = db.get_database_backend();
    let mut posted = 0;
    for chunk in lines.chunks(LINES_PER_STATEMENT) {
        let mut insert = sea_orm::sea_query::Query::insert();
        insert.into_table(ledger_transfer::Entity).columns([
            ledger_transfer::Column::CreatorId,
            ledger_transfer::Column::PostingId,
            ledger_transfer::Column::VideoId,
            ledger_transfer::Column::Amount,
            ledger_transfer::Column::Day,
            ledger_transfer::Column::Kind,
            ledger_transfer::Column::DebitAccount,
            ledger_transfer::Column::CreditAccount,
        ]);
        for l in chunk {
            insert.values_panic([
                l.creator_id.into(),
                posting_id.into(),
                l.video_id.into(),
                l.amount.into(),
                l.day.into(),
                kind_code(l.kind).into(),
                l.debit.code().into(),
                l.credit.code().into(),
            ]);
        }
        posted += db.execute(backend.build(&insert)).await?.rows_affected();
    }
    Ok(posted)
}

/// The advisory lock that fences ledger writers from a close's cursor
/// (PostgreSQL): every transaction that posts transfers holds it shared;
/// [`transfer_cursor`] takes it exclusively.
const LEDGER_FENCE: i64 = 0x4c45_4447_4552;

/// Enters the ledger fence for the rest of the transaction (PostgreSQL;
/// SQLite has one writer at a time). Transfer ids are taken after this, so
/// a cursor read under the exclusive lock sees every id up to it
/// committed.
async fn enter_fence<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        db.execute(stmt(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock_shared($1)",
            vec![LEDGER_FENCE.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The transfer cursor of a monthly close (SPEC §11.4): the highest
/// transfer id taken so far, read once every transaction that was posting
/// has ended, so that every transfer with an id up to it is committed (or
/// rolled back, leaving a gap) and every later transfer gets a higher id.
/// It waits for the posting transactions in flight (at most a settlement
/// run's transaction), and postings that start meanwhile wait behind it
/// until it has read.
///
/// # Errors
/// Database failures.
pub async fn transfer_cursor(db: &sea_orm::DatabaseConnection) -> Result<i64, DbErr> {
    use sea_orm::TransactionTrait;
    let backend = db.get_database_backend();
    if backend != sea_orm::DatabaseBackend::Postgres {
        let row = db
            .query_one(stmt(
                backend,
                "SELECT CAST(COALESCE(MAX(transfer_id), 0) AS BIGINT) AS cursor FROM ledger_transfers",
                vec![],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the transfer cursor".to_owned()))?;
        return row.try_get("", "cursor");
    }
    let txn = db.begin().await?;
    txn.execute(stmt(
        backend,
        "SELECT pg_advisory_xact_lock($1)",
        vec![LEDGER_FENCE.into()],
    ))
    .await?;
    // The identity's sequence, not MAX(transfer_id): no index leads with
    // the id, and the sequence is exact under the fence.
    let sequence: String = txn
        .query_one(stmt(
            backend,
            "SELECT pg_get_serial_sequence('ledger_transfers', 'transfer_id') AS s",
            vec![],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the transfer id sequence".to_owned()))?
        .try_get("", "s")?;
    let cursor: i64 = txn
        .query_one(stmt(
            backend,
            &format!(
                "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS cursor FROM {sequence}"
            ),
            vec![],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the transfer cursor".to_owned()))?
        .try_get("", "cursor")?;
    txn.commit().await?;
    Ok(cursor)
}

/// Posts an `earning` for every row of `day` with an amount: a day's first
/// settlement (it had no rows, so the ledger held nothing for it). One
/// `INSERT … SELECT` on the server, creator by creator, so that each
/// creator's new entries land together at the end of their part of the
/// (creator, transfer) key. Returns how many were posted.
///
/// # Errors
/// Database failures.
pub async fn post_earnings_of_day<C: ConnectionTrait>(
    db: &C,
    day: NaiveDate,
    posting: &Posting,
) -> Result<u64, DbErr> {
    let any = db
        .query_one(stmt(
            db.get_database_backend(),
            "SELECT 1 AS one FROM daily_stats WHERE day = $1 AND total_amount > 0 LIMIT 1",
            vec![day.into()],
        ))
        .await?;
    if any.is_none() {
        return Ok(0);
    }
    enter_fence(db).await?;
    let posting_id = posting.id(db).await?;
    let sql = format!(
        "INSERT INTO ledger_transfers (creator_id, posting_id, video_id, amount, day, kind, \
           debit_account, credit_account) \
         SELECT creator_id, $2, video_id, total_amount, day, {}, {}, {} \
         FROM daily_stats WHERE day = $1 AND total_amount > 0 ORDER BY creator_id, video_id",
        kind_code(TransferKind::Earning),
        Account::ContentCost.code(),
        Account::Payable.code(),
    );
    Ok(db
        .execute(stmt(
            db.get_database_backend(),
            &sql,
            vec![day.into(), posting_id.into()],
        ))
        .await?
        .rows_affected())
}

/// One entry of a creator's payable account (SPEC §11.1).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Entry {
    /// The transfer.
    pub transfer_id: i64,
    /// Its kind.
    pub kind: TransferKind,
    /// Won; positive = owed to the creator.
    pub amount: i64,
    /// The video, where one applies.
    pub video_id: Option<i64>,
    /// The day, where one applies.
    pub day: Option<NaiveDate>,
    /// When it was posted.
    pub posted_at: DateTime<Utc>,
    /// Why, for people.
    pub reason: Option<String>,
    /// `run`, `adjustment`, `statement`, `payout` or `migration`.
    pub source_kind: String,
    /// The source's id.
    pub source_id: i64,
    /// `settlement` or an admin's user id.
    pub actor: String,
}

/// Up to `limit` + 1 entries of `creator`'s payable account, newest first,
/// with transfer ids below `before` (0: from the newest), posted in
/// `[from, to)` when given.
///
/// # Errors
/// Database failures.
pub async fn entries<C: ConnectionTrait>(
    db: &C,
    creator: CreatorId,
    before: i64,
    posted: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    limit: u64,
) -> Result<Vec<Entry>, DbErr> {
    let account = payable(creator);
    let mut values: Vec<Value> = vec![creator.0.into(), account.into()];
    let mut sql = "SELECT transfer_id, kind, \
           CASE WHEN credit_account = $2 THEN amount ELSE -amount END AS amount, \
           video_id, day, posted_at, reason, source_kind, source_id, actor \
         FROM ledger_transfers_named \
         WHERE creator_id = $1 AND (credit_account = $2 OR debit_account = $2)"
        .to_owned();
    if before > 0 {
        values.push(before.into());
        sql.push_str(&format!(" AND transfer_id < ${}", values.len()));
    }
    if let Some(from) = posted.0 {
        values.push(from.into());
        sql.push_str(&format!(" AND posted_at >= ${}", values.len()));
    }
    if let Some(to) = posted.1 {
        values.push(to.into());
        sql.push_str(&format!(" AND posted_at < ${}", values.len()));
    }
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    sql.push_str(&format!(
        " ORDER BY transfer_id DESC LIMIT ${}",
        values.len()
    ));
    Entry::find_by_statement(stmt(db.get_database_backend(), &sql, values))
        .all(db)
        .await
}

/// The balance of `creator`'s payable account now: credits minus debits,
/// in won (positive: owed to the creator).
///
/// # Errors
/// Database failures; a balance beyond 64 bits.
pub async fn balance<C: ConnectionTrait>(db: &C, creator: CreatorId) -> Result<Won, DbErr> {
    let row = db
        .query_one(stmt(
            db.get_database_backend(),
            "SELECT CAST(COALESCE(SUM(CASE WHEN credit_account = $2 THEN amount \
                 WHEN debit_account = $2 THEN -amount ELSE 0 END), 0) AS BIGINT) AS balance \
             FROM ledger_transfers WHERE creator_id = $1",
            vec![creator.0.into(), Account::Payable.code().into()],
        ))
        .await?;
    Ok(Won(match row {
        Some(r) => r.try_get("", "balance")?,
        None => 0,
    }))
}

/// Every settled (video, day) whose ledger sum differs from its current
/// `total_amount` (SPEC §11.1's invariant; empty when it holds), as
/// `(video, day, held, total_amount)`. For tests and the simulator's check.
///
/// # Errors
/// Database failures.
pub async fn invariant_violations<C: ConnectionTrait>(
    db: &C,
) -> Result<Vec<(i64, NaiveDate, i64, i64)>, DbErr> {
    let sql = format!(
        "SELECT COALESCE(s.video_id, h.video_id) AS video_id, COALESCE(s.day, h.day) AS day, \
           COALESCE(h.held, 0) AS held, COALESCE(s.total_amount, 0) AS total \
         FROM daily_stats s FULL OUTER JOIN ( \
           SELECT video_id, day, \
             CAST(SUM(CASE WHEN credit_account = {payable} THEN amount ELSE -amount END) AS BIGINT) AS held \
           FROM ledger_transfers WHERE kind IN ({}, {}, {}) \
           GROUP BY video_id, day) h ON h.video_id = s.video_id AND h.day = s.day \
         WHERE COALESCE(h.held, 0) <> COALESCE(s.total_amount, 0) \
         ORDER BY 1, 2",
        kind_code(TransferKind::Earning),
        kind_code(TransferKind::Restatement),
        kind_code(TransferKind::Adjustment),
        payable = Account::Payable.code(),
    );
    let rows = db
        .query_all(stmt(db.get_database_backend(), &sql, vec![]))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("", "video_id")?,
                r.try_get("", "day")?,
                r.try_get("", "held")?,
                r.try_get("", "total")?,
            ))
        })
        .collect()
}
