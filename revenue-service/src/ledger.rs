//! The double-entry ledger (SPEC §11.1): append-only transfers between
//! accounts, balances as sums. Settlement posts, for each (video, day), the
//! difference between the day's current `total_amount` and what the ledger
//! already holds for it — an `earning` the first time, then `restatement`s
//! or `adjustment`s — in the same transaction as the day's rows, so the
//! invariant "held = current amount" holds after every commit. Nothing here
//! updates or deletes a transfer.

use chrono::{DateTime, NaiveDate, Utc};
use common::domain::{CreatorId, TransferKind, VideoId, Won};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};

use crate::sql::stmt;

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
    /// The kind of a change to a (video, day) that already holds transfers:
    /// [`TransferKind::Restatement`] or [`TransferKind::Adjustment`]. The
    /// first transfer of a (video, day) is always an `earning`.
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

/// What one (video, day) holds: the signed sum of its `earning`,
/// `restatement` and `adjustment` transfers into the creator's payable
/// (positive: owed to the creator), and how many there are.
const HELD: &str = "SELECT video_id, MAX(creator_id) AS creator_id, \
       CAST(SUM(CASE WHEN debit_account = 'platform:content_cost' THEN amount ELSE -amount END) AS BIGINT) AS held, \
       COUNT(*) AS n \
     FROM ledger_transfers \
     WHERE day = $1 AND kind IN ('earning', 'restatement', 'adjustment'){ledger_filter} \
     GROUP BY video_id";

/// What [`post_differences`] posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posted {
    /// Transfers posted.
    pub transfers: u64,
    /// Their signed sum (positive = owed to creators), when it was asked for.
    pub sum: Option<Won>,
}

/// Posts, for every video of `day` (or only `videos`), the difference
/// between its current `daily_stats.total_amount` (0 when it has no row)
/// and what the ledger holds for it; nothing when they are equal. Returns
/// the number of transfers posted and, when `videos` is given, their
/// signed sum.
///
/// One `INSERT … SELECT` on the server: a day of millions of videos never
/// crosses the wire twice.
///
/// # Errors
/// Database failures; an amount that does not fit (the `amount > 0` check
/// cannot fail: zero differences are not posted).
pub async fn post_differences<C: ConnectionTrait>(
    db: &C,
    day: NaiveDate,
    videos: Option<&[VideoId]>,
    posting: &Posting,
) -> Result<Posted, DbErr> {
    // Ids are integers: written into the text, no injection possible.
    let (stats_filter, ledger_filter) = match videos {
        Some(ids) => {
            let list = ids
                .iter()
                .map(|v| v.0.to_string())
                .collect::<Vec<_>>()
                .join(",");
            (
                format!(" AND s.video_id IN ({list})"),
                format!(" AND video_id IN ({list})"),
            )
        }
        None => (String::new(), String::new()),
    };
    let held = HELD.replace("{ledger_filter}", &ledger_filter);
    let differences = format!(
        "SELECT s.video_id, s.creator_id, s.total_amount - COALESCE(h.held, 0) AS delta, COALESCE(h.n, 0) AS n \
         FROM daily_stats s LEFT JOIN ({held}) h ON h.video_id = s.video_id \
         WHERE s.day = $1{stats_filter} \
         UNION ALL \
         SELECT h.video_id, h.creator_id, -h.held AS delta, h.n FROM ({held}) h \
         WHERE NOT EXISTS (SELECT 1 FROM daily_stats s WHERE s.day = $1 AND s.video_id = h.video_id)"
    );
    let backend = db.get_database_backend();
    // The signed sum is read first for a few videos (an adjustment's
    // clawback); a whole day's would double the work of its posting.
    let sum = match videos {
        Some(_) => {
            let row = db
                .query_one(stmt(
                    backend,
                    &format!(
                        "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) AS total \
                         FROM ({differences}) x WHERE x.delta <> 0"
                    ),
                    vec![day.into()],
                ))
                .await?;
            Some(Won(match row {
                Some(row) => row.try_get::<i64>("", "total")?,
                None => 0,
            }))
        }
        None => None,
    };
    let insert = format!(
        "INSERT INTO ledger_transfers (kind, debit_account, credit_account, amount, creator_id, \
           video_id, day, posted_at, source_kind, source_id, reason, actor) \
         SELECT CASE WHEN x.n = 0 THEN 'earning' ELSE $2 END, \
           CASE WHEN x.delta > 0 THEN 'platform:content_cost' ELSE 'creator:' || x.creator_id || ':payable' END, \
           CASE WHEN x.delta > 0 THEN 'creator:' || x.creator_id || ':payable' ELSE 'platform:content_cost' END, \
           ABS(x.delta), x.creator_id, x.video_id, $1, $3, $4, $5, $6, $7 \
         FROM ({differences}) x WHERE x.delta <> 0 ORDER BY x.video_id"
    );
    let values: Vec<Value> = vec![
        day.into(),
        posting.kind.as_str().into(),
        posting.posted_at.into(),
        posting.source_kind.into(),
        posting.source_id.into(),
        posting.reason.clone().into(),
        posting.actor.clone().into(),
    ];
    let posted = db.execute(stmt(backend, &insert, values)).await?;
    Ok(Posted {
        transfers: posted.rows_affected(),
        sum,
    })
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
