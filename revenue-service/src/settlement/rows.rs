//! Replacing a day's rows (SPEC §6) and posting what changed to the ledger
//! (SPEC §11.1, §11.2): an unchanged row is left alone, a changed one
//! posts the difference of its amount.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use common::domain::{TransferKind, VideoId, Won};
use sea_orm::{ConnectionTrait, DatabaseTransaction, sea_query::Query};

use super::pricing::Priced;
use crate::{
    entity::daily_stat,
    ledger::{self, Posting},
    rollups::RowDelta,
    sql::stmt,
};

/// Which rows of a day a replacement covers.
pub(super) enum Scope<'a> {
    /// Videos in `(after, last]`.
    Range(VideoId, VideoId),
    /// Videos after this one.
    After(VideoId),
    /// These videos.
    Videos(&'a [VideoId]),
}

/// What a replacement changed.
#[derive(Debug, Default)]
pub(super) struct Replaced {
    /// Videos whose priced views or ad views changed (or appeared, or went).
    pub(super) moved: Vec<VideoId>,
    /// Rows whose amount changed (or appeared, or went).
    pub(super) amounts_changed: u64,
    /// Ledger transfers posted.
    pub(super) transfers: u64,
    /// Their signed sum, won (positive: owed to creators).
    pub(super) sum: Won,
    /// The roll-up differences of the changed rows (none for a day's first
    /// settlement, rolled up at once): the caller adds them with
    /// [`rollups::apply`] just before its commit, so the roll-up lock is
    /// held only from there.
    pub(super) deltas: Vec<RowDelta>,
}

/// A row as stored, to compare with its new pricing.
struct OldRow {
    creator_id: i64,
    title: String,
    views: i64,
    watch_seconds: i64,
    ad_views: i64,
    video_amount: i64,
    ad_amount: i64,
    total: i64,
    rate_card_version: i32,
    original_views: i64,
    original_ad_views: i64,
    restated_at: Option<DateTime<Utc>>,
}

impl OldRow {
    /// Its summed columns, in [`RowDelta::sums`] order.
    fn sums(&self) -> [i64; 6] {
        [
            self.views,
            self.watch_seconds,
            self.ad_views,
            self.video_amount,
            self.ad_amount,
            self.total,
        ]
    }

    /// The roll-up change of this row going.
    fn removed(&self, day: NaiveDate, video_id: VideoId) -> RowDelta {
        RowDelta {
            day,
            video_id: video_id.0,
            creator_id: self.creator_id,
            title: self.title.clone(),
            present: false,
            days: -1,
            // Never negative: negating one cannot overflow.
            sums: self.sums().map(|s| -s),
        }
    }

    /// Whether `new` would store exactly this row.
    fn same_as(&self, new: &Priced) -> bool {
        self.creator_id == new.creator_id
            && self.title == new.title
            && self.views == new.views
            && self.watch_seconds == new.watch_seconds
            && self.ad_views == new.ad_views
            && self.video_amount == new.amounts.video_amount.0
            && self.ad_amount == new.amounts.ad_amount.0
            && self.total == new.total.0
            && self.rate_card_version == new.rate_card_version
            && self.original_views == new.original_views
            && self.original_ad_views == new.original_ad_views
    }
}

/// Replaces the rows of `day` in `scope` with `rows` and posts the ledger
/// differences (SPEC §11.1, §11.2). Rows that would not change are left
/// alone (a re-run with unchanged counts writes nothing); a changed or new
/// row replaces the old one, a row with no counts any more goes. Each
/// (video, day) whose amount changed gets one transfer of the difference:
/// an `earning` when it had no row before, else `posting.kind`. By the
/// ledger invariant (what the ledger holds for a (video, day) is its row's
/// amount, kept in this same transaction), the old row's amount is what
/// the ledger holds, so no ledger read is needed. Without a `posting` the
/// day has no rows yet (its first settlement, under the day's lease): none
/// are read, and the caller posts, all at once. A row of a final day whose
/// amount changes is stamped restated. On PostgreSQL an original count
/// equal to the count is stored as NULL
/// (`m20261201_000003_sparse_original_counts`).
pub(super) async fn replace_rows(
    txn: &DatabaseTransaction,
    day: NaiveDate,
    scope: Scope<'_>,
    rows: &[Priced],
    is_final: bool,
    posting: Option<&Posting>,
) -> Result<Replaced, sea_orm::DbErr> {
    let now = posting.map_or_else(Utc::now, |p| p.posted_at);
    let backend = txn.get_database_backend();
    let (filter, mut values): (String, Vec<sea_orm::Value>) = match scope {
        Scope::Range(after, last) => (
            "video_id > $2 AND video_id <= $3".to_owned(),
            vec![after.into(), last.into()],
        ),
        Scope::After(after) => ("video_id > $2".to_owned(), vec![after.into()]),
        Scope::Videos(ids) => (format!("video_id IN ({})", id_list(ids)), vec![]),
    };
    values.insert(0, day.into());
    let old = if posting.is_none() {
        Vec::new()
    } else {
        txn.query_all(stmt(
            backend,
            &format!(
                "SELECT video_id, creator_id, title, views, watch_seconds, ad_views, video_amount, \
                   ad_amount, total_amount, rate_card_version, \
                   COALESCE(original_views, views) AS original_views, \
                   COALESCE(original_ad_views, ad_views) AS original_ad_views, restated_at \
                 FROM daily_stats WHERE day = $1 AND {filter}"
            ),
            values,
        ))
        .await?
    };
    let mut old = old
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<i64>("", "video_id")?,
                OldRow {
                    creator_id: r.try_get("", "creator_id")?,
                    title: r.try_get("", "title")?,
                    views: r.try_get("", "views")?,
                    watch_seconds: r.try_get("", "watch_seconds")?,
                    ad_views: r.try_get("", "ad_views")?,
                    video_amount: r.try_get("", "video_amount")?,
                    ad_amount: r.try_get("", "ad_amount")?,
                    total: r.try_get("", "total_amount")?,
                    rate_card_version: r.try_get("", "rate_card_version")?,
                    original_views: r.try_get("", "original_views")?,
                    original_ad_views: r.try_get("", "original_ad_views")?,
                    restated_at: r.try_get("", "restated_at")?,
                },
            ))
        })
        .collect::<Result<HashMap<_, _>, sea_orm::DbErr>>()?;
    let mut replaced = Replaced::default();
    let mut deltas: Vec<RowDelta> = Vec::new();
    let mut gone: Vec<VideoId> = Vec::new();
    let mut fresh: Vec<(&Priced, Option<DateTime<Utc>>)> = Vec::new();
    let mut differences: Vec<Difference> = Vec::new();
    for p in rows {
        let before = old.remove(&p.video_id.0);
        if before.as_ref().is_some_and(|o| o.same_as(p)) {
            continue;
        }
        let old_total = before.as_ref().map(|o| o.total);
        let amount_changed = old_total != Some(p.total.0);
        let counts_moved = before
            .as_ref()
            .is_none_or(|o| o.views != p.views || o.ad_views != p.ad_views);
        if amount_changed {
            replaced.amounts_changed += 1;
        }
        if counts_moved {
            replaced.moved.push(p.video_id);
        }
        let restated_at = match &before {
            Some(_) if amount_changed && is_final => Some(now),
            Some(o) => o.restated_at,
            None => None,
        };
        if let Some(o) = &before {
            gone.push(p.video_id);
            if o.creator_id != p.creator_id {
                deltas.push(o.removed(day, p.video_id));
                deltas.push(added(day, p));
            } else {
                // Stored counts and amounts are never negative: the
                // difference of two fits in an i64.
                let (new, old) = (priced_sums(p), o.sums());
                deltas.push(RowDelta {
                    days: 0,
                    sums: std::array::from_fn(|i| new[i] - old[i]),
                    ..added(day, p)
                });
            }
        } else {
            deltas.push(added(day, p));
        }
        fresh.push((p, restated_at));
        differences.push(Difference {
            video_id: p.video_id,
            creator_id: p.creator_id,
            amount: p
                .total
                .0
                .checked_sub(old_total.unwrap_or(0))
                .ok_or_else(|| overflow(p.video_id))?,
            first: before.is_none(),
        });
    }
    // Rows with no counts any more.
    for (video_id, o) in &old {
        let video_id = *video_id;
        deltas.push(o.removed(day, VideoId(video_id)));
        replaced.moved.push(VideoId(video_id));
        gone.push(VideoId(video_id));
        if o.total != 0 {
            replaced.amounts_changed += 1;
        }
        differences.push(Difference {
            video_id: VideoId(video_id),
            creator_id: o.creator_id,
            amount: o
                .total
                .checked_neg()
                .ok_or_else(|| overflow(VideoId(video_id)))?,
            first: false,
        });
    }
    differences.retain(|d| d.amount != 0);
    for d in &differences {
        replaced.sum = replaced
            .sum
            .checked_add(Won(d.amount))
            .ok_or_else(|| overflow(d.video_id))?;
    }
    for ids in gone.chunks(1_000) {
        txn.execute(stmt(
            backend,
            &format!(
                "DELETE FROM daily_stats WHERE day = $1 AND video_id IN ({})",
                id_list(ids)
            ),
            vec![day.into()],
        ))
        .await?;
    }
    insert_rows(txn, day, &fresh).await?;
    if posting.is_some() {
        // A first settlement's rows are rolled up at once by the caller
        // (`rollups::add_settled_day`).
        replaced.deltas = deltas;
    }
    if let Some(posting) = posting {
        replaced.transfers = post(txn, day, &differences, posting).await?;
    }
    Ok(replaced)
}

/// A priced row's summed columns, in [`RowDelta::sums`] order.
fn priced_sums(p: &Priced) -> [i64; 6] {
    [
        p.views,
        p.watch_seconds,
        p.ad_views,
        p.amounts.video_amount.0,
        p.amounts.ad_amount.0,
        p.total.0,
    ]
}

/// The roll-up change of `p` appearing on `day`.
fn added(day: NaiveDate, p: &Priced) -> RowDelta {
    RowDelta {
        day,
        video_id: p.video_id.0,
        creator_id: p.creator_id,
        title: p.title.clone(),
        present: true,
        days: 1,
        sums: priced_sums(p),
    }
}

/// The most bound values one statement may carry: PostgreSQL's limit is
/// 65,535, SQLite's 32,766.
fn max_bound_values(backend: sea_orm::DatabaseBackend) -> usize {
    match backend {
        sea_orm::DatabaseBackend::Postgres => 65_535,
        _ => 32_766,
    }
}

/// Inserts `fresh` rows of `day`. On PostgreSQL a batch of plain rows (the
/// three columns a plain row leaves NULL: its original counts equal to the
/// counts, never restated), as every row of a day's first settlement is,
/// goes as arrays ([`insert_plain_arrays`]); other batches, and SQLite's,
/// as multi-row `INSERT`s of all 14 columns, as few statements as the
/// bound-value limit allows.
async fn insert_rows(
    txn: &DatabaseTransaction,
    day: NaiveDate,
    fresh: &[(&Priced, Option<DateTime<Utc>>)],
) -> Result<(), sea_orm::DbErr> {
    if fresh.is_empty() {
        return Ok(());
    }
    let backend = txn.get_database_backend();
    // NULL for "the same as the count" where the column allows it.
    let sparse = backend == sea_orm::DatabaseBackend::Postgres;
    let original = |original: i64, count: i64| (!sparse || original != count).then_some(original);
    let plain = sparse
        && fresh.iter().all(|(p, restated_at)| {
            restated_at.is_none()
                && p.original_views == p.views
                && p.original_ad_views == p.ad_views
        });
    if plain {
        return insert_plain_arrays(txn, day, fresh).await;
    }
    let columns = [
        daily_stat::Column::Day,
        daily_stat::Column::VideoId,
        daily_stat::Column::CreatorId,
        daily_stat::Column::Title,
        daily_stat::Column::Views,
        daily_stat::Column::WatchSeconds,
        daily_stat::Column::AdViews,
        daily_stat::Column::VideoAmount,
        daily_stat::Column::AdAmount,
        daily_stat::Column::TotalAmount,
        daily_stat::Column::RateCardVersion,
        daily_stat::Column::OriginalViews,
        daily_stat::Column::OriginalAdViews,
        daily_stat::Column::RestatedAt,
    ];
    for chunk in fresh.chunks(max_bound_values(backend) / columns.len()) {
        let mut insert = Query::insert();
        insert
            .into_table(daily_stat::Entity)
            .columns(columns.iter().copied());
        for (p, restated_at) in chunk {
            let mut values: Vec<sea_orm::sea_query::SimpleExpr> = vec![
                day.into(),
                p.video_id.0.into(),
                p.creator_id.into(),
                p.title.clone().into(),
                p.views.into(),
                p.watch_seconds.into(),
                p.ad_views.into(),
                p.amounts.video_amount.into(),
                p.amounts.ad_amount.into(),
                p.total.into(),
                p.rate_card_version.into(),
            ];
            values.extend([
                original(p.original_views, p.views).into(),
                original(p.original_ad_views, p.ad_views).into(),
                (*restated_at).into(),
            ]);
            insert.values_panic(values);
        }
        txn.execute(backend.build(&insert)).await?;
    }
    Ok(())
}

/// Inserts plain `fresh` rows of `day` on PostgreSQL (their original counts
/// equal to the counts, never restated: the columns left NULL) as one
/// `INSERT … SELECT … FROM UNNEST(…)` of one array per column: eleven bound
/// values a statement however many rows, so the server neither parses nor
/// plans 55,000 placeholders a batch (issue 19's settlement floor; a binary
/// `COPY` is not reachable inside sea-orm's transaction, and the rows must
/// be written in the transaction that posts them, SPEC §11.1).
async fn insert_plain_arrays(
    txn: &DatabaseTransaction,
    day: NaiveDate,
    fresh: &[(&Priced, Option<DateTime<Utc>>)],
) -> Result<(), sea_orm::DbErr> {
    let column = |f: fn(&Priced) -> i64| -> sea_orm::Value {
        fresh.iter().map(|(p, _)| f(p)).collect::<Vec<i64>>().into()
    };
    let values = vec![
        day.into(),
        column(|p| p.video_id.0),
        column(|p| p.creator_id),
        fresh
            .iter()
            .map(|(p, _)| p.title.clone())
            .collect::<Vec<String>>()
            .into(),
        column(|p| p.views),
        column(|p| p.watch_seconds),
        column(|p| p.ad_views),
        column(|p| p.amounts.video_amount.0),
        column(|p| p.amounts.ad_amount.0),
        column(|p| p.total.0),
        fresh
            .iter()
            .map(|(p, _)| p.rate_card_version)
            .collect::<Vec<i32>>()
            .into(),
    ];
    txn.execute(stmt(
        sea_orm::DatabaseBackend::Postgres,
        "INSERT INTO daily_stats (day, video_id, creator_id, title, views, watch_seconds, \
           ad_views, video_amount, ad_amount, total_amount, rate_card_version) \
         SELECT $1::date, * FROM UNNEST($2::int8[], $3::int8[], $4::text[], $5::int8[], \
           $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int4[])",
        values,
    ))
    .await?;
    Ok(())
}

/// A money sum that does not fit in 64 bits (SPEC §8: checked arithmetic).
fn overflow(video: VideoId) -> sea_orm::DbErr {
    sea_orm::DbErr::Custom(format!(
        "the ledger difference of video {video} does not fit in 64 bits of won"
    ))
}

/// One (video, day)'s change of amount, won.
struct Difference {
    video_id: VideoId,
    creator_id: i64,
    amount: i64,
    /// It had no row before: the transfer is an `earning`.
    first: bool,
}

/// Posts `differences` as transfers of `day`; how many.
async fn post(
    txn: &DatabaseTransaction,
    day: NaiveDate,
    differences: &[Difference],
    posting: &Posting,
) -> Result<u64, sea_orm::DbErr> {
    let transfers: Vec<ledger::Transfer> = differences
        .iter()
        .map(|d| ledger::Transfer {
            kind: if d.first {
                TransferKind::Earning
            } else {
                posting.kind
            },
            creator_id: d.creator_id,
            video_id: d.video_id.0,
            amount: d.amount,
        })
        .collect();
    ledger::post(txn, day, &transfers, posting).await
}

/// Ids as a SQL list (integers: no injection possible).
pub(super) fn id_list(videos: &[VideoId]) -> String {
    videos
        .iter()
        .map(|v| v.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
