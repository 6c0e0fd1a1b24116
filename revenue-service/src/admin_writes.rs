//! Idempotency keys and the audit log of admin writes (SPEC §11.6), kept
//! in the revenue database so they hold across gateway and service
//! replicas. The gateway calls [`begin`] before an admin `POST`, `PUT` or
//! `DELETE` and [`finish`] with its answer.
//!
//! A key is scoped to the admin who sent it. The same key with the same
//! request (its fingerprint: method, path and body) within 24 hours gets
//! the first answer back without acting again; with another request it is
//! refused. A key whose first request is still being answered is refused
//! as in progress, unless that request was abandoned (no answer after
//! [`ABANDONED_AFTER`]). Answers of 5xx are not kept: a retry with the same
//! key acts again, as the first attempt may not have.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use crate::{entity::audit_entry, sql::stmt};

/// How long a key's answer is replayed (SPEC §11.6: 24 h).
pub const KEY_LIFETIME: chrono::Duration = chrono::Duration::hours(24);
/// A first request with no answer after this long is taken to be
/// abandoned (its gateway stopped): the key may be used again.
pub const ABANDONED_AFTER: chrono::Duration = chrono::Duration::seconds(60);
/// The longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 255;

/// An answer kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// Its `content-type`.
    pub content_type: String,
    /// Its body.
    pub body: Vec<u8>,
}

/// What the gateway should do with an admin write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// Act, then call [`finish`] with this audit entry.
    Proceed {
        /// The request's audit entry.
        audit_id: i64,
    },
    /// Answer this and do not act: the key was used with this request.
    Replay {
        /// The request's audit entry (marked replayed).
        audit_id: i64,
        /// The first answer.
        response: StoredResponse,
    },
}

/// Why an admin write may not proceed.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    /// The key is malformed (400 on `Idempotency-Key`).
    #[error("must be 1 to 255 visible ASCII characters")]
    BadKey,
    /// The key came with another request (409 `idempotency_key_reused`).
    #[error("this Idempotency-Key was used with another request in the last 24 hours")]
    Reused,
    /// The key's first request is still being answered (409
    /// `idempotency_key_in_progress`).
    #[error("the first request with this Idempotency-Key is still being answered; retry shortly")]
    InProgress,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// An admin write as the gateway saw it.
#[derive(Debug, Clone)]
pub struct AdminWrite<'a> {
    /// The admin's user id.
    pub actor: i64,
    /// The `Idempotency-Key`, if any.
    pub key: Option<&'a str>,
    /// A hash of method, path and body.
    pub fingerprint: &'a str,
    /// E.g. `POST /api/v1/admin/adjustments`.
    pub action: &'a str,
    /// The path written to.
    pub target: &'a str,
    /// The request's id.
    pub request_id: &'a str,
}

/// Records `write` in the audit log and decides, for a keyed write,
/// whether it proceeds or replays.
///
/// # Errors
/// See [`BeginError`].
pub async fn begin(db: &DatabaseConnection, write: &AdminWrite<'_>) -> Result<Begun, BeginError> {
    let Some(key) = write.key else {
        return Ok(Begun::Proceed {
            audit_id: audit(db, write, None).await?,
        });
    };
    if key.is_empty() || key.len() > MAX_KEY_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BeginError::BadKey);
    }
    let backend = db.get_database_backend();
    let now = Utc::now();
    let inserted = db
        .execute(stmt(
            backend,
            "INSERT INTO idempotency_keys (actor, key, fingerprint, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (actor, key) DO NOTHING",
            vec![write.actor.into(), key.into(), write.fingerprint.into(), now.into()],
        ))
        .await?
        .rows_affected()
        == 1;
    if inserted {
        return Ok(Begun::Proceed {
            audit_id: audit(db, write, None).await?,
        });
    }
    let Some(row) = db
        .query_one(stmt(
            backend,
            "SELECT fingerprint, created_at, status, content_type, body FROM idempotency_keys \
             WHERE actor = $1 AND key = $2",
            vec![write.actor.into(), key.into()],
        ))
        .await?
    else {
        // Deleted in between (a 5xx answer): take it.
        return Box::pin(begin(db, write)).await;
    };
    let fingerprint: String = row.try_get("", "fingerprint")?;
    let created_at: DateTime<Utc> = row.try_get("", "created_at")?;
    let status: Option<i32> = row.try_get("", "status")?;
    let expired = created_at < now - KEY_LIFETIME;
    let abandoned = status.is_none() && created_at < now - ABANDONED_AFTER;
    if expired || (abandoned && fingerprint == write.fingerprint) {
        // Take the key over, unless someone else just did.
        let taken = db
            .execute(stmt(
                backend,
                "UPDATE idempotency_keys SET fingerprint = $3, created_at = $4, status = NULL, \
                   content_type = NULL, body = NULL \
                 WHERE actor = $1 AND key = $2 AND created_at = $5",
                vec![
                    write.actor.into(),
                    key.into(),
                    write.fingerprint.into(),
                    now.into(),
                    created_at.into(),
                ],
            ))
            .await?
            .rows_affected()
            == 1;
        return if taken {
            Ok(Begun::Proceed {
                audit_id: audit(db, write, None).await?,
            })
        } else {
            Err(BeginError::InProgress)
        };
    }
    if fingerprint != write.fingerprint {
        return Err(BeginError::Reused);
    }
    let Some(status) = status else {
        return Err(BeginError::InProgress);
    };
    let response = StoredResponse {
        status: u16::try_from(status).unwrap_or(500),
        content_type: row
            .try_get::<Option<String>>("", "content_type")?
            .unwrap_or_default(),
        body: row
            .try_get::<Option<Vec<u8>>>("", "body")?
            .unwrap_or_default(),
    };
    let audit_id = audit(db, write, Some(response.status)).await?;
    Ok(Begun::Replay { audit_id, response })
}

/// Records the answer of the write begun as `audit_id`: its audit entry's
/// status and, for a keyed write, the answer to replay (a 5xx answer
/// frees the key instead).
///
/// # Errors
/// Database failures.
pub async fn finish(
    db: &DatabaseConnection,
    actor: i64,
    audit_id: i64,
    key: Option<&str>,
    response: &StoredResponse,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.execute(stmt(
        backend,
        "UPDATE audit_log SET status = $1 WHERE audit_id = $2 AND actor = $3",
        vec![
            i32::from(response.status).into(),
            audit_id.into(),
            actor.into(),
        ],
    ))
    .await?;
    let Some(key) = key else { return Ok(()) };
    if response.status >= 500 {
        db.execute(stmt(
            backend,
            "DELETE FROM idempotency_keys WHERE actor = $1 AND key = $2 AND status IS NULL",
            vec![actor.into(), key.into()],
        ))
        .await?;
    } else {
        db.execute(stmt(
            backend,
            "UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5 \
             WHERE actor = $1 AND key = $2 AND status IS NULL",
            vec![
                actor.into(),
                key.into(),
                i32::from(response.status).into(),
                response.content_type.clone().into(),
                response.body.clone().into(),
            ],
        ))
        .await?;
    }
    Ok(())
}

async fn audit(
    db: &DatabaseConnection,
    write: &AdminWrite<'_>,
    replayed_status: Option<u16>,
) -> Result<i64, DbErr> {
    let row = db
        .query_one(stmt(
            db.get_database_backend(),
            "INSERT INTO audit_log (actor, action, target, request_id, at, status, replayed, idempotency_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING audit_id",
            vec![
                write.actor.into(),
                truncate(write.action, 200).into(),
                truncate(write.target, 500).into(),
                truncate(write.request_id, 200).into(),
                Utc::now().into(),
                replayed_status.map(i32::from).into(),
                replayed_status.is_some().into(),
                write.key.map(str::to_owned).into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no audit id returned".to_owned()))?;
    row.try_get("", "audit_id")
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Up to `limit` + 1 audit entries with ids below `before` (0: from the
/// newest), newest first.
///
/// # Errors
/// Database failures.
pub async fn entries(
    db: &DatabaseConnection,
    before: i64,
    limit: u32,
) -> Result<(Vec<audit_entry::Model>, bool), DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let mut query = audit_entry::Entity::find();
    if before > 0 {
        query = query.filter(audit_entry::Column::AuditId.lt(before));
    }
    common::paging::fetch_page(query.order_by_desc(audit_entry::Column::AuditId), limit, db).await
}
