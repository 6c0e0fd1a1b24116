//! Webhook endpoints (SPEC §11.5): registered by an admin with the events
//! they take; the secret is answered once, at registration.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::{EventType, Secret, urls};
use crate::sql::stmt;

/// A registered endpoint, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Id.
    pub webhook_id: i64,
    /// Where events are posted.
    pub url: String,
    /// The event types it takes.
    pub events: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// Why an endpoint is refused or not found.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// A bad field: its name and why (400).
    #[error("{0}: {1}")]
    Field(&'static str, String),
    /// No such endpoint (404).
    #[error("no such webhook")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// The most endpoints registered at once.
pub const MAX_ENDPOINTS: i64 = 40;

/// Registers `url` for `events` (at least one, each a known type) as
/// admin `actor`. Returns the endpoint and its secret (`whsec_…`), which
/// is never answered again.
///
/// # Errors
/// A refused URL or event list (see [`urls`]); more than
/// [`MAX_ENDPOINTS`]; database failures.
pub async fn register<C: ConnectionTrait>(
    db: &C,
    url: &str,
    events: &[String],
    actor: i64,
    allow_insecure: bool,
) -> Result<(Endpoint, Secret), EndpointError> {
    let parsed = urls::check(url, allow_insecure).map_err(|e| EndpointError::Field("url", e))?;
    if events.is_empty() {
        return Err(EndpointError::Field(
            "events",
            "must name at least one event".to_owned(),
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for e in events {
        let t = EventType::parse(e).ok_or_else(|| {
            EndpointError::Field(
                "events",
                format!(
                    "{e:?} is not an event; events are {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            )
        })?;
        if !names.iter().any(|n| n == t.as_str()) {
            names.push(t.as_str().to_owned());
        }
    }
    urls::resolve(&parsed, allow_insecure)
        .await
        .map(drop)
        .map_err(|e| EndpointError::Field("url", e))?;
    let backend = db.get_database_backend();
    let active: i64 = db
        .query_one(stmt(
            backend,
            "SELECT COUNT(*) AS n FROM webhook_endpoints WHERE deleted_at IS NULL",
            vec![],
        ))
        .await?
        .map_or(Ok(0), |r| r.try_get("", "n"))?;
    if active >= MAX_ENDPOINTS {
        return Err(EndpointError::Field(
            "url",
            format!("at most {MAX_ENDPOINTS} webhooks may be registered; delete one first"),
        ));
    }
    let secret = Secret::generate();
    let now = Utc::now();
    let row = db
        .query_one(stmt(
            backend,
            "INSERT INTO webhook_endpoints (url, events, secret, created_at, actor) \
             VALUES ($1, $2, $3, $4, $5) RETURNING webhook_id",
            vec![
                parsed.as_str().into(),
                names.join(",").into(),
                secret.expose().into(),
                now.into(),
                actor.into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the new webhook".to_owned()))?;
    Ok((
        Endpoint {
            webhook_id: row.try_get("", "webhook_id")?,
            url: parsed.to_string(),
            events: names,
            created_at: now,
        },
        secret,
    ))
}

/// Every registered endpoint, oldest first.
///
/// # Errors
/// Database failures.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<Endpoint>, DbErr> {
    let rows = db
        .query_all(stmt(
            db.get_database_backend(),
            "SELECT webhook_id, url, events, created_at FROM webhook_endpoints \
             WHERE deleted_at IS NULL ORDER BY webhook_id",
            vec![],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Endpoint {
                webhook_id: r.try_get("", "webhook_id")?,
                url: r.try_get("", "url")?,
                events: r
                    .try_get::<String>("", "events")?
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
                created_at: r.try_get("", "created_at")?,
            })
        })
        .collect()
}

/// Removes an endpoint: it takes no new events, and its pending
/// deliveries fail at their next attempt.
///
/// # Errors
/// [`EndpointError::NotFound`]; database failures.
pub async fn delete<C: ConnectionTrait>(db: &C, webhook_id: i64) -> Result<(), EndpointError> {
    let removed = db
        .execute(stmt(
            db.get_database_backend(),
            "UPDATE webhook_endpoints SET deleted_at = $1 WHERE webhook_id = $2 AND deleted_at IS NULL",
            vec![Utc::now().into(), webhook_id.into()],
        ))
        .await?
        .rows_affected();
    if removed == 1 {
        Ok(())
    } else {
        Err(EndpointError::NotFound)
    }
}

/// The endpoints that take `event`.
pub(super) async fn takers<C: ConnectionTrait>(
    db: &C,
    event: EventType,
) -> Result<Vec<i64>, DbErr> {
    let rows = db
        .query_all(stmt(
            db.get_database_backend(),
            "SELECT webhook_id, events FROM webhook_endpoints WHERE deleted_at IS NULL",
            vec![],
        ))
        .await?;
    let mut takers = Vec::new();
    for r in rows {
        let events: String = r.try_get("", "events")?;
        if events.split(',').any(|e| e == event.as_str()) {
            takers.push(r.try_get("", "webhook_id")?);
        }
    }
    Ok(takers)
}

/// Whether endpoint `webhook_id` was ever registered (a removed one keeps
/// its delivery log).
///
/// # Errors
/// Database failures.
pub async fn exists<C: ConnectionTrait>(db: &C, webhook_id: i64) -> Result<bool, DbErr> {
    Ok(db
        .query_one(stmt(
            db.get_database_backend(),
            "SELECT 1 AS one FROM webhook_endpoints WHERE webhook_id = $1",
            vec![webhook_id.into()],
        ))
        .await?
        .is_some())
}
