//! Webhooks (SPEC §11.5): endpoints an admin registers, events written to
//! an outbox in the transaction of the change they announce, and a
//! delivery worker ([`Deliverer`]) that signs them as Standard Webhooks,
//! retries with exponential backoff and jitter for up to 24 hours, and
//! logs every attempt.

mod delivery;
mod endpoints;
mod signature;
pub mod urls;

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbErr, sea_query::Query};
use serde::Serialize;

pub use delivery::{Deliverer, DeliveryView, RetryPolicy, deliveries, redeliver};
pub use endpoints::{Endpoint, EndpointError, delete, exists, list, register};
pub use signature::Secret;

/// An event type (SPEC §11.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    /// A settlement run succeeded.
    #[serde(rename = "settlement.succeeded")]
    SettlementSucceeded,
    /// A settlement run failed.
    #[serde(rename = "settlement.failed")]
    SettlementFailed,
    /// A final day's amounts changed.
    #[serde(rename = "day.restated")]
    DayRestated,
    /// An invalid-traffic adjustment was posted.
    #[serde(rename = "adjustment.posted")]
    AdjustmentPosted,
    /// A monthly close issued a statement.
    #[serde(rename = "statement.issued")]
    StatementIssued,
    /// An admin recorded a statement's bank transfer.
    #[serde(rename = "statement.paid")]
    StatementPaid,
    /// A creator was put on hold, or released.
    #[serde(rename = "creator.hold_changed")]
    CreatorHoldChanged,
}

impl EventType {
    /// Every type.
    pub const ALL: [EventType; 7] = [
        EventType::SettlementSucceeded,
        EventType::SettlementFailed,
        EventType::DayRestated,
        EventType::AdjustmentPosted,
        EventType::StatementIssued,
        EventType::StatementPaid,
        EventType::CreatorHoldChanged,
    ];

    /// Its name, e.g. `statement.issued`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SettlementSucceeded => "settlement.succeeded",
            EventType::SettlementFailed => "settlement.failed",
            EventType::DayRestated => "day.restated",
            EventType::AdjustmentPosted => "adjustment.posted",
            EventType::StatementIssued => "statement.issued",
            EventType::StatementPaid => "statement.paid",
            EventType::CreatorHoldChanged => "creator.hold_changed",
        }
    }

    /// The type named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Whether some endpoint takes `event` (to skip building its data).
///
/// # Errors
/// Database failures.
pub async fn takes<C: ConnectionTrait>(db: &C, event: EventType) -> Result<bool, DbErr> {
    Ok(!endpoints::takers(db, event).await?.is_empty())
}

/// Events per `INSERT`: 3 bound values each, and 7 for each of their
/// deliveries (under SQLite's 32,766 with up to 40 endpoints).
const EVENTS_PER_INSERT: usize = 100;

/// Writes `event` with `data` to the outbox, with a pending delivery to
/// every endpoint that takes it, on `db` (the transaction of the change).
/// Writes nothing while no endpoint takes it. Returns how many deliveries
/// were queued.
///
/// # Errors
/// Database failures.
pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    event: EventType,
    data: serde_json::Value,
) -> Result<u64, DbErr> {
    enqueue_many(db, event, vec![data]).await
}

/// [`enqueue`] for many events of one type.
///
/// # Errors
/// Database failures.
pub async fn enqueue_many<C: ConnectionTrait>(
    db: &C,
    event: EventType,
    data: Vec<serde_json::Value>,
) -> Result<u64, DbErr> {
    let takers = endpoints::takers(db, event).await?;
    if takers.is_empty() || data.is_empty() {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    let now = Utc::now();
    let timestamp = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut queued = 0;
    for chunk in data.chunks(EVENTS_PER_INSERT) {
        let mut insert = Query::insert();
        insert
            .into_table(sea_orm::sea_query::Alias::new("webhook_events"))
            .columns([
                sea_orm::sea_query::Alias::new("event_type"),
                sea_orm::sea_query::Alias::new("payload"),
                sea_orm::sea_query::Alias::new("created_at"),
            ])
            .returning_col(sea_orm::sea_query::Alias::new("event_id"));
        for d in chunk {
            // The Standard Webhooks payload: type, timestamp, data.
            let payload = serde_json::json!({
                "type": event.as_str(),
                "timestamp": timestamp,
                "data": d,
            });
            insert.values_panic([
                event.as_str().into(),
                payload.to_string().into(),
                now.into(),
            ]);
        }
        let ids: Vec<i64> = db
            .query_all(backend.build(&insert))
            .await?
            .iter()
            .map(|r| r.try_get("", "event_id"))
            .collect::<Result<_, _>>()?;
        let mut deliveries = Query::insert();
        deliveries
            .into_table(sea_orm::sea_query::Alias::new("webhook_deliveries"))
            .columns(
                [
                    "webhook_id",
                    "event_id",
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "retry_from",
                    "updated_at",
                ]
                .map(sea_orm::sea_query::Alias::new),
            );
        let mut rows = 0_u64;
        for id in ids {
            for &webhook in &takers {
                deliveries.values_panic([
                    webhook.into(),
                    id.into(),
                    "pending".into(),
                    0_i32.into(),
                    now.into(),
                    now.into(),
                    now.into(),
                ]);
                rows += 1;
            }
        }
        db.execute(backend.build(&deliveries)).await?;
        queued += rows;
    }
    Ok(queued)
}
