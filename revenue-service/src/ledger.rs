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
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};

use crate::{entity::ledger_transfer, sql::stmt};

/// The platform's expense account that creators' earnings are debited to.
pub const CONTENT_COST: &str = "platform:content_cost";
/// The platform's bank account (payouts are credited to it).
pub const CASH: &str = "platform:cash";
/// Income tax withheld and owed to the tax office.
pub const INCOME_TAX_PAYABLE: &str = "platform:income_tax_payable";
/// Local income tax withheld and owed to the local government.
pub const LOCAL_TAX_PAYABLE: &str = "platform:local_tax_payable";

/// `creator:{id}:payable`: what the platform owes the creator.
pub fn payable(creator: CreatorId) -> String {
    format!("creator:{}:payable", creator.0)
}

/// What a posting came from, and how it is labelled.
#[derive(Debug, Clone)]
pub struct Posting {
    /// The kind of a change to a (video, day) that was settled before:
    /// [`TransferKind::Restatement`] or [`TransferKind::Adjustment`]. The
    /// first transfer of a (video, day) is an `earning`.
    pub kind: TransferKind,
    /// `run` or `adjustment`.
    pub source_kind: &'static str,
    /// The run's or adjustment's id.
    pub source_id: i64,
    /// Why, for people (an adjustment's reason).
    pub reason: Option<String>,
    /// `settlement`, or the admin's user id.
    pub actor: String,
    /// The instant every transfer of this posting carries.
    pub posted_at: DateTime<Utc>,
}

/// One transfer to post: a (video, day)'s change of amount, signed (positive
/// is owed to the creator).
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

/// Transfers per statement: 12 bound values each, under SQLite's 32,766
/// and PostgreSQL's 65,535.
const TRANSFERS_PER_STATEMENT: usize = 2_000;

/// Posts `transfers` of `day` with `posting`'s source, reason, actor and
/// time: a positive amount from `platform:content_cost` to the creator's
/// payable, a negative one back. Returns how many were posted.
///
/// # Errors
/// Database failures.
pub async fn post<C: ConnectionTrait>(
    db: &C,
    day: NaiveDate,
    transfers: &[Transfer],
    posting: &Posting,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let mut posted = 0;
    for chunk in transfers.chunks(TRANSFERS_PER_STATEMENT) {
        let mut insert = sea_orm::sea_query::Query::insert();
        insert.into_table(ledger_transfer::Entity).columns([
            ledger_transfer::Column::Kind,
            ledger_transfer::Column::DebitAccount,
            ledger_transfer::Column::CreditAccount,
            ledger_transfer::Column::Amount,
            ledger_transfer::Column::CreatorId,
            ledger_transfer::Column::VideoId,
            ledger_transfer::Column::Day,
            ledger_transfer::Column::PostedAt,
            ledger_transfer::Column::SourceKind,
            ledger_transfer::Column::SourceId,
            ledger_transfer::Column::Reason,
            ledger_transfer::Column::Actor,
        ]);
        for t in chunk {
            let creator = payable(CreatorId(t.creator_id));
            let (debit, credit) = if t.amount > 0 {
                (CONTENT_COST.to_owned(), creator)
            } else {
                (creator, CONTENT_COST.to_owned())
            };
            insert.values_panic([
                t.kind.as_str().into(),
                debit.into(),
                credit.into(),
                // A difference of two amounts of at least 0: never i64::MIN.
                t.amount.saturating_abs().into(),
                t.creator_id.into(),
                t.video_id.into(),
                day.into(),
                posting.posted_at.into(),
                posting.source_kind.into(),
                posting.source_id.into(),
                posting.reason.clone().into(),
                posting.actor.clone().into(),
            ]);
        }
        posted += db.execute(backend.build(&insert)).await?.rows_affected();
    }
    Ok(posted)
}

/// Posts an `earning` for every row of `day` with an amount: a day's first
/// settlement (it had no rows, so the ledger held nothing for it). One
/// `INSERT … SELECT` on the server, creator by creator, so that each
/// creator's new entries land together at the end of their part of the
/// creator index. Returns how many were posted.
///
/// # Errors
/// Database failures.
pub async fn post_earnings_of_day<C: ConnectionTrait>(
    db: &C,
    day: NaiveDate,
    posting: &Posting,
) -> Result<u64, DbErr> {
    let sql = format!(
        "INSERT INTO ledger_transfers (kind, debit_account, credit_account, amount, creator_id, \
           video_id, day, posted_at, source_kind, source_id, reason, actor) \
         SELECT 'earning', '{CONTENT_COST}', 'creator:' || creator_id || ':payable', total_amount, \
           creator_id, video_id, day, $2, $3, $4, $5, $6 \
         FROM daily_stats WHERE day = $1 AND total_amount > 0 ORDER BY creator_id, video_id"
    );
    let values: Vec<Value> = vec![
        day.into(),
        posting.posted_at.into(),
        posting.source_kind.into(),
        posting.source_id.into(),
        posting.reason.clone().into(),
        posting.actor.clone().into(),
    ];
    Ok(db
        .execute(stmt(db.get_database_backend(), &sql, values))
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
         FROM ledger_transfers WHERE creator_id = $1 AND (credit_account = $2 OR debit_account = $2)"
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
    let account = payable(creator);
    let row = db
        .query_one(stmt(
            db.get_database_backend(),
            "SELECT CAST(COALESCE(SUM(CASE WHEN credit_account = $2 THEN amount \
                 WHEN debit_account = $2 THEN -amount ELSE 0 END), 0) AS BIGINT) AS balance \
             FROM ledger_transfers WHERE creator_id = $1",
            vec![creator.0.into(), account.into()],
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
    let rows = db
        .query_all(stmt(
            db.get_database_backend(),
            "SELECT COALESCE(s.video_id, h.video_id) AS video_id, COALESCE(s.day, h.day) AS day, \
               COALESCE(h.held, 0) AS held, COALESCE(s.total_amount, 0) AS total \
             FROM daily_stats s FULL OUTER JOIN ( \
               SELECT video_id, day, \
                 CAST(SUM(CASE WHEN debit_account = 'platform:content_cost' THEN amount ELSE -amount END) AS BIGINT) AS held \
               FROM ledger_transfers WHERE kind IN ('earning', 'restatement', 'adjustment') \
               GROUP BY video_id, day) h ON h.video_id = s.video_id AND h.day = s.day \
             WHERE COALESCE(h.held, 0) <> COALESCE(s.total_amount, 0) \
             ORDER BY 1, 2",
            vec![],
        ))
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
