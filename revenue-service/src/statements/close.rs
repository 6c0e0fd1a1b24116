//! The monthly close (SPEC §11.4): one statement per creator who has a
//! payable balance or a transfer not yet on a statement, and the payout
//! and tax transfers of what is paid.
//!
//! Which transfers a close covers. Months close in order. The close of M
//! reads a transfer cursor (the highest transfer id committed when it
//! began; see [`ledger::transfer_cursor`]) and covers every payable
//! transfer (earning, restatement, adjustment) with a day in or before M
//! and an id up to the cursor. What the close of M−1 covered is the same
//! set for M−1 and its cursor, so the statement of M holds exactly
//! `covered(M) − covered(M−1)`: each transfer is on exactly one statement,
//! the first close after it was posted of a month that contains or follows
//! its day (a correction of October posted in November lands on
//! November's statement).
//!
//! Opening balances. Every creator whose statement of M−1 closed with a
//! balance other than 0 gets a statement for M, so the opening balance of
//! M is the closing balance of M−1's statement (0 without one).
//!
//! Two replicas: the `closes` row (unique by month) is written first in
//! the close's transaction; the second replica's insert waits for the
//! first to commit and then finds the month closed, issuing nothing.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Utc};
use common::domain::{Period, TransferKind, Won};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    TransactionTrait,
};

use super::{CarriedReason, StatementInputs, TaxPolicies, statement_amounts};
use crate::{
    entity::{close, creator_hold, statement},
    ledger::{self, Account, Line, Posting},
    settlement::Settler,
    sql::stmt,
    webhooks::{self, EventType},
};

/// The advisory lock that lets one close run at a time (PostgreSQL).
const CLOSE_LOCK: i64 = 0x434c_4f53_4553;

/// Statements per `INSERT`: 22 bound values each, under SQLite's 32,766.
const STATEMENTS_PER_INSERT: usize = 1_000;

/// A month as `YYYY-MM`, as its first day.
///
/// # Errors
/// Not `YYYY-MM` (a description for the field).
pub fn parse_month(text: &str) -> Result<NaiveDate, &'static str> {
    let (year, month) = text.split_once('-').ok_or("must be a month, YYYY-MM")?;
    if year.len() != 4 || month.len() != 2 {
        return Err("must be a month, YYYY-MM");
    }
    let (Ok(year), Ok(month)) = (year.parse::<i32>(), month.parse::<u32>()) else {
        return Err("must be a month, YYYY-MM");
    };
    NaiveDate::from_ymd_opt(year, month, 1).ok_or("must be a month, YYYY-MM")
}

/// `YYYY-MM` of the month starting on `first`.
pub fn month_text(first: NaiveDate) -> String {
    first.format("%Y-%m").to_string()
}

/// The month before the one starting on `first`.
fn previous_month(first: NaiveDate) -> Option<NaiveDate> {
    first
        .pred_opt()
        .and_then(|d| NaiveDate::from_ymd_opt(d.year(), d.month(), 1))
}

/// Why a month cannot be closed.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// The month has days that are not over yet (400 on `month`).
    #[error("the month is not over yet")]
    NotOver,
    /// A day of the month is not settled, or not `final` yet (409
    /// `month_not_final`): the first such day.
    #[error("{0} is not final yet: every day of the month must be settled and final")]
    NotFinal(NaiveDate),
    /// Months close in order (409 `month_out_of_order`).
    #[error("{0}")]
    OutOfOrder(String),
    /// No tax policy in effect, or one that does not validate.
    #[error(transparent)]
    Policy(anyhow::Error),
    /// An amount does not fit in 64 bits of won.
    #[error("creator {0}'s statement amounts overflow")]
    Overflow(i64),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// A close, and whether this call issued it (false: it was closed before).
#[derive(Debug, Clone)]
pub struct Closed {
    /// The `closes` row.
    pub close: close::Model,
    /// This call issued its statements.
    pub issued: bool,
}

/// Closes the month starting on `month` (SPEC §11.4) as `actor`
/// (`schedule` or an admin's user id): checks every day of it is settled
/// and final, reads the transfer cursor, then issues the statements and
/// posts the payout and tax transfers in one transaction. Closing a closed
/// month answers its close and issues nothing.
///
/// # Errors
/// See [`CloseError`].
pub async fn close_month(
    db: &DatabaseConnection,
    settler: &Settler,
    month: NaiveDate,
    actor: &str,
) -> Result<Closed, CloseError> {
    if let Some(done) = find(db, month).await? {
        return Ok(Closed {
            close: done,
            issued: false,
        });
    }
    let (first, last) = Period::Month.range(month);
    if last >= settler.time().today() {
        return Err(CloseError::NotOver);
    }
    if let Err(e) = check_order(db, month).await {
        // Another replica may have closed this very month since the first
        // look: then its close is the answer, not an order error.
        if let Some(done) = find(db, month).await? {
            return Ok(Closed {
                close: done,
                issued: false,
            });
        }
        return Err(e);
    }
    first_day_not_final(db, settler, first, last)
        .await?
        .map_or(Ok(()), |day| Err(CloseError::NotFinal(day)))?;
    let policies = TaxPolicies::load(db).await.map_err(CloseError::Policy)?;
    let policy = policies
        .for_month(first)
        .map_err(CloseError::Policy)?
        .clone();

    // One close at a time: the order and the previous close are read again
    // under the lock (two first closes of different months must not both
    // take the same transfers), and the cursor is read after it, so it is
    // never below the previous close's.
    let txn = db.begin().await?;
    let backend = txn.get_database_backend();
    if backend == sea_orm::DatabaseBackend::Postgres {
        txn.execute(stmt(
            backend,
            "SELECT pg_advisory_xact_lock($1)",
            vec![CLOSE_LOCK.into()],
        ))
        .await?;
    }
    if let Some(done) = find(&txn, month).await? {
        txn.rollback().await?;
        return Ok(Closed {
            close: done,
            issued: false,
        });
    }
    let previous = check_order(&txn, month).await?;
    let cursor = ledger::transfer_cursor(db)
        .await?
        .max(previous.as_ref().map_or(0, |p| p.transfer_cursor));
    let now = Utc::now();
    let claimed = txn
        .query_one(stmt(
            backend,
            "INSERT INTO closes (month, transfer_cursor, tax_policy_version, statements, closed_at, actor) \
             VALUES ($1, $2, $3, 0, $4, $5) ON CONFLICT (month) DO NOTHING RETURNING close_id",
            vec![
                first.into(),
                cursor.into(),
                policy.version.into(),
                now.into(),
                actor.into(),
            ],
        ))
        .await?;
    let Some(claimed) = claimed else {
        // Another replica closed it meanwhile.
        txn.rollback().await?;
        let close = find(db, month)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("close of {month}")))?;
        return Ok(Closed {
            close,
            issued: false,
        });
    };
    let close_id: i64 = claimed.try_get("", "close_id")?;

    let mut inputs = payable_sums(&txn, last, cursor, previous.as_ref()).await?;
    if let Some(previous) = &previous {
        let rows = txn
            .query_all(stmt(
                backend,
                "SELECT creator_id, closing_balance FROM statements \
                 WHERE month = $1 AND closing_balance <> 0",
                vec![previous.month.into()],
            ))
            .await?;
        for row in rows {
            let creator: i64 = row.try_get("", "creator_id")?;
            inputs.entry(creator).or_default().opening_balance =
                Won(row.try_get("", "closing_balance")?);
        }
    }
    let holds: BTreeMap<i64, String> = creator_hold::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .map(|h| (h.creator_id, h.reason))
        .collect();

    let mut rows = Vec::with_capacity(inputs.len());
    let mut lines = Vec::new();
    for (creator, mut input) in inputs {
        let hold = holds.get(&creator);
        input.on_hold = hold.is_some();
        let a = statement_amounts(&policy, input).ok_or(CloseError::Overflow(creator))?;
        for (kind, credit, amount) in [
            (TransferKind::Payout, Account::Cash, a.net.0),
            (
                TransferKind::IncomeTax,
                Account::IncomeTaxPayable,
                a.income_tax.0,
            ),
            (
                TransferKind::LocalTax,
                Account::LocalTaxPayable,
                a.local_tax.0,
            ),
        ] {
            if amount > 0 {
                lines.push(Line {
                    kind,
                    debit: Account::Payable,
                    credit,
                    amount,
                    creator_id: creator,
                    video_id: None,
                    day: None,
                });
            }
        }
        rows.push(statement::ActiveModel {
            creator_id: Set(creator),
            month: Set(first),
            close_id: Set(close_id),
            opening_balance: Set(input.opening_balance.0),
            earnings: Set(input.earnings.0),
            restatements: Set(input.restatements.0),
            adjustments: Set(input.adjustments.0),
            gross: Set(a.gross.0),
            payout: Set(a.payout.0),
            income_tax: Set(a.income_tax.0),
            local_tax: Set(a.local_tax.0),
            net: Set(a.net.0),
            closing_balance: Set(a.closing_balance.0),
            carried_reason: Set(a.carried_reason.map(reason_text)),
            hold_reason: Set(hold.cloned()),
            tax_policy_version: Set(policy.version),
            status: Set("issued".to_owned()),
            issued_at: Set(now),
            paid_at: Set(None),
            payout_reference: Set(None),
            paid_by: Set(None),
            ..Default::default()
        });
    }
    let issued = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(STATEMENTS_PER_INSERT).collect();
        statement::Entity::insert_many(chunk)
            .exec_without_returning(&txn)
            .await?;
    }
    let posting = Posting {
        kind: TransferKind::Payout,
        source_kind: "close",
        source_id: close_id,
        reason: Some(format!("statement of {}", month_text(first))),
        actor: actor.to_owned(),
        posted_at: now,
        recorded: Default::default(),
    };
    ledger::post_lines(&txn, lines, &posting).await?;
    announce_statements(&txn, close_id).await?;
    txn.execute(stmt(
        backend,
        "UPDATE closes SET statements = $1 WHERE close_id = $2",
        vec![issued.into(), close_id.into()],
    ))
    .await?;
    txn.commit().await?;
    let close = find(db, month)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("close of {month}")))?;
    tracing::info!(month = %month_text(first), statements = issued, cursor, "month closed");
    Ok(Closed {
        close,
        issued: true,
    })
}

/// Writes a `statement.issued` event for each statement of close
/// `close_id` to the webhook outbox (nothing while no endpoint takes it).
async fn announce_statements<C: ConnectionTrait>(db: &C, close_id: i64) -> Result<(), DbErr> {
    use sea_orm::ColumnTrait;
    if !webhooks::takes(db, EventType::StatementIssued).await? {
        return Ok(());
    }
    let issued = statement::Entity::find()
        .filter(statement::Column::CloseId.eq(close_id))
        .all(db)
        .await?;
    webhooks::enqueue_many(
        db,
        EventType::StatementIssued,
        issued.iter().map(super::statement_json).collect(),
    )
    .await?;
    Ok(())
}

/// The stored text of a carried reason.
pub fn reason_text(reason: CarriedReason) -> String {
    match reason {
        CarriedReason::BelowMinimum => "below_minimum",
        CarriedReason::NegativeBalance => "negative_balance",
        CarriedReason::Hold => "hold",
    }
    .to_owned()
}

/// The close of the month starting on `month`, if it is closed.
///
/// # Errors
/// Database failures.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    month: NaiveDate,
) -> Result<Option<close::Model>, DbErr> {
    use sea_orm::ColumnTrait;
    close::Entity::find()
        .filter(close::Column::Month.eq(month))
        .one(db)
        .await
}

/// The close of the month before `month`, checking months close in order:
/// none when no month was closed yet.
async fn check_order<C: ConnectionTrait>(
    db: &C,
    month: NaiveDate,
) -> Result<Option<close::Model>, CloseError> {
    use sea_orm::QueryOrder;
    let latest = close::Entity::find()
        .order_by_desc(close::Column::Month)
        .one(db)
        .await?;
    let Some(latest) = latest else {
        return Ok(None);
    };
    if latest.month > month {
        return Err(CloseError::OutOfOrder(format!(
            "{} is closed already: its statements hold {}'s transfers, so {} cannot be closed",
            month_text(latest.month),
            month_text(month),
            month_text(month),
        )));
    }
    let expected = latest
        .month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(latest.month);
    if expected != month {
        return Err(CloseError::OutOfOrder(format!(
            "months close in order: close {} first",
            month_text(expected)
        )));
    }
    debug_assert_eq!(previous_month(month), Some(latest.month));
    Ok(Some(latest))
}

/// The first day of `[first, last]` that is not settled or not final yet.
async fn first_day_not_final(
    db: &DatabaseConnection,
    settler: &Settler,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Option<NaiveDate>, DbErr> {
    let settled: std::collections::BTreeSet<NaiveDate> = db
        .query_all(stmt(
            db.get_database_backend(),
            "SELECT day FROM settled_days WHERE day BETWEEN $1 AND $2",
            vec![first.into(), last.into()],
        ))
        .await?
        .into_iter()
        .map(|row| row.try_get::<NaiveDate>("", "day"))
        .collect::<Result<_, _>>()?;
    Ok(first
        .iter_days()
        .take_while(|d| *d <= last)
        .find(|d| !settled.contains(d) || !settler.is_final(*d)))
}

/// Each creator's payable transfers the close covers, summed by kind:
/// kinds earning, restatement and adjustment with a day up to `last` and
/// an id up to `cursor`, less what the previous close covered.
async fn payable_sums<C: ConnectionTrait>(
    db: &C,
    last: NaiveDate,
    cursor: i64,
    previous: Option<&close::Model>,
) -> Result<BTreeMap<i64, StatementInputs>, DbErr> {
    let mut values = vec![last.into(), cursor.into()];
    let mut sql = format!(
        "SELECT creator_id, kind, \
           CAST(SUM(CASE WHEN credit_account = {payable} THEN amount ELSE -amount END) AS BIGINT) AS amount \
         FROM ledger_transfers \
         WHERE kind IN ({earning}, {restatement}, {adjustment}) AND day <= $1 AND transfer_id <= $2",
        payable = Account::Payable.code(),
        earning = ledger::kind_code(TransferKind::Earning),
        restatement = ledger::kind_code(TransferKind::Restatement),
        adjustment = ledger::kind_code(TransferKind::Adjustment),
    );
    if let Some(previous) = previous {
        let (_, previous_last) = Period::Month.range(previous.month);
        values.push(previous_last.into());
        values.push(previous.transfer_cursor.into());
        sql.push_str(" AND (day > $3 OR transfer_id > $4)");
    }
    sql.push_str(" GROUP BY creator_id, kind");
    let rows = db
        .query_all(stmt(db.get_database_backend(), &sql, values))
        .await?;
    let mut sums: BTreeMap<i64, StatementInputs> = BTreeMap::new();
    for row in rows {
        let creator: i64 = row.try_get("", "creator_id")?;
        let kind: i16 = row.try_get("", "kind")?;
        let amount = Won(row.try_get("", "amount")?);
        let input = sums.entry(creator).or_default();
        if kind == ledger::kind_code(TransferKind::Earning) {
            input.earnings = amount;
        } else if kind == ledger::kind_code(TransferKind::Restatement) {
            input.restatements = amount;
        } else {
            input.adjustments = amount;
        }
    }
    Ok(sums)
}

/// Creators whose statements and ledger disagree, as `(creator, what,
/// ledger, statements)` (empty when they agree): for tests and the
/// simulator. Two checks against the last close: what its and the earlier
/// statements list as earnings, restatements and adjustments is exactly
/// the payable transfers covered (`covered`: each transfer on exactly one
/// statement); and the payable balance is the last closing balance plus
/// the payable transfers not covered yet (`balance`).
///
/// # Errors
/// Database failures.
pub async fn statement_violations<C: ConnectionTrait>(
    db: &C,
) -> Result<Vec<(i64, &'static str, i64, i64)>, DbErr> {
    use sea_orm::QueryOrder;
    let Some(last) = close::Entity::find()
        .order_by_desc(close::Column::Month)
        .one(db)
        .await?
    else {
        return Ok(Vec::new());
    };
    let (_, end) = Period::Month.range(last.month);
    let backend = db.get_database_backend();
    let sums = |sql: String, values: Vec<sea_orm::Value>| async move {
        let rows = db.query_all(stmt(backend, &sql, values)).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64>("", "creator_id")?,
                    r.try_get::<i64>("", "amount")?,
                ))
            })
            .collect::<Result<BTreeMap<i64, i64>, DbErr>>()
    };
    let signed = format!(
        "CAST(SUM(CASE WHEN credit_account = {} THEN amount ELSE -amount END) AS BIGINT) AS amount",
        Account::Payable.code()
    );
    let payable_kinds = format!(
        "kind IN ({}, {}, {})",
        ledger::kind_code(TransferKind::Earning),
        ledger::kind_code(TransferKind::Restatement),
        ledger::kind_code(TransferKind::Adjustment)
    );
    let covered = sums(
        format!(
            "SELECT creator_id, {signed} FROM ledger_transfers \
             WHERE {payable_kinds} AND day <= $1 AND transfer_id <= $2 GROUP BY creator_id"
        ),
        vec![end.into(), last.transfer_cursor.into()],
    )
    .await?;
    let listed = sums(
        "SELECT creator_id, CAST(SUM(earnings + restatements + adjustments) AS BIGINT) AS amount \
         FROM statements GROUP BY creator_id"
            .to_owned(),
        vec![],
    )
    .await?;
    let open = sums(
        format!(
            "SELECT creator_id, {signed} FROM ledger_transfers \
             WHERE {payable_kinds} AND NOT (day <= $1 AND transfer_id <= $2) GROUP BY creator_id"
        ),
        vec![end.into(), last.transfer_cursor.into()],
    )
    .await?;
    let closing = sums(
        "SELECT creator_id, closing_balance AS amount FROM statements WHERE month = $1".to_owned(),
        vec![last.month.into()],
    )
    .await?;
    let balance = sums(
        format!("SELECT creator_id, {signed} FROM ledger_transfers GROUP BY creator_id"),
        vec![],
    )
    .await?;
    let get = |m: &BTreeMap<i64, i64>, c: i64| m.get(&c).copied().unwrap_or(0);
    let creators: std::collections::BTreeSet<i64> = [&covered, &listed, &open, &closing, &balance]
        .iter()
        .flat_map(|m| m.keys().copied())
        .collect();
    let mut violations = Vec::new();
    for c in creators {
        if get(&covered, c) != get(&listed, c) {
            violations.push((c, "covered", get(&covered, c), get(&listed, c)));
        }
        let expected = get(&closing, c) + get(&open, c);
        if get(&balance, c) != expected {
            violations.push((c, "balance", get(&balance, c), expected));
        }
    }
    Ok(violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_as_their_first_day_and_nothing_else_does() {
        assert_eq!(
            parse_month("2026-10"),
            Ok(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap())
        );
        for bad in [
            "2026-13",
            "2026-1",
            "26-10",
            "2026-10-01",
            "",
            "october",
            "2026-00",
        ] {
            assert!(parse_month(bad).is_err(), "{bad}");
        }
        assert_eq!(
            month_text(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
            "2026-01"
        );
        assert_eq!(
            previous_month(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
            NaiveDate::from_ymd_opt(2025, 12, 1)
        );
    }
}
