//! What admins record after a close (SPEC §11.4): the bank transfer that
//! paid a statement, and holds on a creator's payouts.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    TransactionTrait, sea_query::OnConflict,
};

use crate::{
    entity::{creator_hold, statement},
    webhooks::{self, EventType},
};

/// The longest bank reference, in characters.
pub const MAX_REFERENCE_CHARS: usize = 200;
/// The longest hold reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Why a statement cannot be marked paid.
#[derive(Debug, thiserror::Error)]
pub enum PaidError {
    /// The reference is empty, too long or has control characters (400 on
    /// `reference`).
    #[error("must be 1 to 200 characters, without control characters")]
    BadReference,
    /// No such statement (404).
    #[error("no such statement")]
    NotFound,
    /// The statement paid nothing (409 `nothing_to_pay`).
    #[error("statement {0} carried its balance over: there is no payout to record")]
    NothingToPay(i64),
    /// Paid already, with another reference (409 `statement_already_paid`).
    #[error("statement {0} was recorded paid already, with another reference")]
    AlreadyPaid(i64),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Whether `text` is 1 to `max` characters with no control characters,
/// and not only blanks.
fn acceptable(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max && !text.chars().any(char::is_control)
}

/// Records that statement `id` was paid by the bank transfer `reference`,
/// by admin `actor`: `issued` → `paid`. Recording the same reference again
/// answers the statement as it is.
///
/// # Errors
/// See [`PaidError`].
pub async fn mark_paid(
    db: &DatabaseConnection,
    id: i64,
    reference: &str,
    actor: i64,
) -> Result<statement::Model, PaidError> {
    if !acceptable(reference, MAX_REFERENCE_CHARS) {
        return Err(PaidError::BadReference);
    }
    let current = statement::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(PaidError::NotFound)?;
    if current.payout == 0 {
        return Err(PaidError::NothingToPay(id));
    }
    let txn = db.begin().await?;
    let updated = statement::Entity::update_many()
        .col_expr(statement::Column::Status, "paid".into())
        .col_expr(statement::Column::PaidAt, Utc::now().into())
        .col_expr(statement::Column::PayoutReference, reference.into())
        .col_expr(statement::Column::PaidBy, actor.into())
        .filter(statement::Column::StatementId.eq(id))
        .filter(statement::Column::Status.eq("issued"))
        .exec(&txn)
        .await?
        .rows_affected;
    let now = statement::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(PaidError::NotFound)?;
    if updated == 0 && now.payout_reference.as_deref() != Some(reference) {
        return Err(PaidError::AlreadyPaid(id));
    }
    if updated == 1 {
        webhooks::enqueue(&txn, EventType::StatementPaid, super::statement_json(&now)).await?;
    }
    txn.commit().await?;
    Ok(now)
}

/// Puts `creator`'s payouts on hold for `reason` (1 to 500 characters),
/// or changes the reason of their hold. Statements issued while on hold
/// pay nothing and carry the balance over (`carried_reason: hold`).
///
/// # Errors
/// `Err(None)` for a bad reason; database failures.
pub async fn set_hold(
    db: &DatabaseConnection,
    creator: i64,
    reason: &str,
    actor: i64,
) -> Result<creator_hold::Model, Option<DbErr>> {
    if !acceptable(reason, MAX_REASON_CHARS) {
        return Err(None);
    }
    let hold = creator_hold::ActiveModel {
        creator_id: Set(creator),
        reason: Set(reason.to_owned()),
        held_since: Set(Utc::now()),
        actor: Set(actor),
    };
    let txn = db.begin().await.map_err(Some)?;
    creator_hold::Entity::insert(hold)
        .on_conflict(
            OnConflict::column(creator_hold::Column::CreatorId)
                .update_columns([creator_hold::Column::Reason, creator_hold::Column::Actor])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(Some)?;
    let held = creator_hold::Entity::find_by_id(creator)
        .one(&txn)
        .await
        .map_err(Some)?
        .ok_or_else(|| Some(DbErr::RecordNotFound(format!("hold of {creator}"))))?;
    webhooks::enqueue(
        &txn,
        EventType::CreatorHoldChanged,
        serde_json::json!({"creator_id": creator, "on_hold": true, "reason": held.reason}),
    )
    .await
    .map_err(Some)?;
    txn.commit().await.map_err(Some)?;
    Ok(held)
}

/// Releases `creator`'s hold, if any; true when there was one. The next
/// close pays the carried balance (if it reaches the minimum).
///
/// # Errors
/// Database failures.
pub async fn release_hold(db: &DatabaseConnection, creator: i64) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let released = creator_hold::Entity::delete_by_id(creator)
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if released {
        webhooks::enqueue(
            &txn,
            EventType::CreatorHoldChanged,
            serde_json::json!({"creator_id": creator, "on_hold": false, "reason": null}),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(released)
}
