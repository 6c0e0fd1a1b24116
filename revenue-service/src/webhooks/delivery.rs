//! Delivering the outbox (SPEC §11.5). A worker on each revenue replica
//! claims due deliveries — on PostgreSQL with `FOR UPDATE SKIP LOCKED`,
//! moving each claimed delivery's next attempt a lease ahead — so each
//! attempt is made by one replica; a replica that dies mid-attempt leaves
//! the delivery to be claimed again when the lease passes. Each attempt
//! is a signed `POST` (no redirects followed, 10 s timeout), logged with
//! its status code or error. A 2xx answer is success; otherwise the next
//! attempt waits the first delay × 4ⁿ (capped at 10 hours) with ±20 %
//! jitter, until the retry window (24 hours) from the event, or from a
//! redelivery, has passed: then the delivery is `failed`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr};

use super::{Secret, urls};
use crate::sql::stmt;

/// How the delivery of an event is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt (5 s); each later one is 4
    /// times the one before, at most 10 hours.
    pub first_delay: Duration,
    /// No attempt is scheduled later than this after the event (24 h).
    pub window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(5),
            window: Duration::from_secs(24 * 3_600),
        }
    }
}

/// The longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(10 * 3_600);
/// Each attempt's timeout (SPEC §11.5).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery is left to its replica.
const LEASE: Duration = Duration::from_secs(60);
/// Deliveries claimed at once.
const BATCH: i64 = 16;
/// The most characters of an error kept in the log.
const MAX_ERROR_CHARS: usize = 500;

impl RetryPolicy {
    /// The wait after `failed` failed attempts (≥ 1), before jitter.
    pub fn base_delay(&self, failed: u32) -> Duration {
        let factor = 4_u32.saturating_pow(failed.saturating_sub(1).min(15));
        self.first_delay.saturating_mul(factor).min(MAX_DELAY)
    }

    /// [`Self::base_delay`] with ±20 % jitter (in thousandths: no float).
    fn delay(&self, failed: u32) -> Duration {
        let permille: u32 = rand::Rng::random_range(&mut rand::rng(), 800..=1_200);
        self.base_delay(failed).saturating_mul(permille) / 1_000
    }
}

/// The outbox's delivery worker.
#[derive(Clone)]
pub struct Deliverer {
    db: DatabaseConnection,
    client: reqwest::Client,
    retry: RetryPolicy,
    allow_insecure: bool,
    poll: Duration,
}

/// A claimed delivery.
struct Claimed {
    delivery_id: i64,
    attempts: i32,
    retry_from: DateTime<Utc>,
    /// Its claim number: the attempt's outcome is recorded only if no
    /// redelivery (or later claim) came meanwhile.
    claim: i64,
}

impl Deliverer {
    /// A worker over `db`'s outbox, polling every `poll` when idle.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(
        db: DatabaseConnection,
        retry: RetryPolicy,
        allow_insecure: bool,
        poll: Duration,
    ) -> anyhow::Result<Self> {
        let client = Self::client_builder().build()?;
        Ok(Self {
            db,
            client,
            retry,
            allow_insecure,
            poll,
        })
    }

    /// How every attempt's client is set up: no redirects, the timeout.
    fn client_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent("streaming-settlement-webhooks/1")
    }

    /// Delivers until `stop`.
    pub async fn run(self, stop: impl std::future::Future<Output = ()> + Send) {
        tokio::pin!(stop);
        loop {
            let idle = match self.deliver_due().await {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook deliveries: the database failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(self.poll) => {}
                }
            }
        }
    }

    /// Claims the deliveries due now and attempts each; how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn deliver_due(&self) -> Result<usize, DbErr> {
        let claimed = self.claim().await?;
        let n = claimed.len();
        let results = futures::future::join_all(claimed.into_iter().map(|c| self.attempt(c))).await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    async fn claim(&self) -> Result<Vec<Claimed>, DbErr> {
        let backend = self.db.get_database_backend();
        let lock = if backend == DatabaseBackend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let now = Utc::now();
        let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let rows = self
            .db
            .query_all(stmt(
                backend,
                &format!(
                    "UPDATE webhook_deliveries SET next_attempt_at = $1, updated_at = $2, claim = claim + 1 \
                     WHERE delivery_id IN (SELECT delivery_id FROM webhook_deliveries \
                       WHERE status = 'pending' AND next_attempt_at <= $2 \
                       ORDER BY next_attempt_at LIMIT {BATCH}{lock}) \
                     RETURNING delivery_id, attempts, retry_from, claim"
                ),
                vec![lease_until.into(), now.into()],
            ))
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Claimed {
                    delivery_id: r.try_get("", "delivery_id")?,
                    attempts: r.try_get("", "attempts")?,
                    retry_from: r.try_get("", "retry_from")?,
                    claim: r.try_get("", "claim")?,
                })
            })
            .collect()
    }

    /// One attempt of a claimed delivery, logged, and the delivery moved
    /// on.
    async fn attempt(&self, claimed: Claimed) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one(stmt(
                backend,
                "SELECT e.event_id, e.payload, w.url, w.secret, w.deleted_at \
                 FROM webhook_deliveries d \
                 JOIN webhook_events e ON e.event_id = d.event_id \
                 JOIN webhook_endpoints w ON w.webhook_id = d.webhook_id \
                 WHERE d.delivery_id = $1",
                vec![claimed.delivery_id.into()],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("delivery {}", claimed.delivery_id)))?;
        let event_id: i64 = row.try_get("", "event_id")?;
        let payload: String = row.try_get("", "payload")?;
        let url: String = row.try_get("", "url")?;
        let deleted: Option<DateTime<Utc>> = row.try_get("", "deleted_at")?;
        let secret = Secret::parse(&row.try_get::<String>("", "secret")?);
        let started = std::time::Instant::now();
        let outcome: Result<u16, String> = match (deleted, secret) {
            (Some(_), _) => Err("the webhook was deleted".to_owned()),
            (None, Err(e)) => Err(e.to_owned()),
            (None, Ok(secret)) => self.post(&url, &secret, event_id, payload).await,
        };
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let now = Utc::now();
        let (status_code, error) = match &outcome {
            Ok(code) => (Some(i32::from(*code)), None),
            Err(e) => (
                None,
                Some(e.chars().take(MAX_ERROR_CHARS).collect::<String>()),
            ),
        };
        let succeeded = matches!(outcome, Ok(code) if (200..300).contains(&code));
        let error = error.or_else(|| {
            (!succeeded).then(|| format!("answered {}", status_code.unwrap_or_default()))
        });
        let attempts = claimed.attempts.saturating_add(1);
        let next = now
            + chrono::Duration::from_std(self.retry.delay(u32::try_from(attempts).unwrap_or(1)))
                .unwrap_or_default();
        let window_end =
            claimed.retry_from + chrono::Duration::from_std(self.retry.window).unwrap_or_default();
        let status = if succeeded {
            "succeeded"
        } else if next > window_end || deleted.is_some() {
            "failed"
        } else {
            "pending"
        };
        self.db
            .execute(stmt(
                backend,
                "INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, error, duration_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
                vec![
                    claimed.delivery_id.into(),
                    now.into(),
                    status_code.into(),
                    error.clone().into(),
                    duration_ms.into(),
                ],
            ))
            .await?;
        self.db
            .execute(stmt(
                backend,
                "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, \
                   last_status_code = $4, last_error = $5, updated_at = $6 \
                 WHERE delivery_id = $7 AND claim = $8",
                vec![
                    status.into(),
                    attempts.into(),
                    next.into(),
                    status_code.into(),
                    error.into(),
                    now.into(),
                    claimed.delivery_id.into(),
                    claimed.claim.into(),
                ],
            ))
            .await?;
        Ok(())
    }

    /// Posts an event, signed; its status code, or why there is none.
    async fn post(
        &self,
        url: &str,
        secret: &Secret,
        event_id: i64,
        payload: String,
    ) -> Result<u16, String> {
        let parsed = urls::check(url, self.allow_insecure)?;
        let checked = urls::resolve(&parsed, self.allow_insecure).await?;
        // Connect to the addresses checked, not to a second lookup's.
        let client = match parsed.host_str() {
            Some(host) if !checked.is_empty() => Self::client_builder()
                .resolve_to_addrs(host.trim_matches(['[', ']']), &checked)
                .build()
                .map_err(|_| "the HTTP client could not be built".to_owned())?,
            _ => self.client.clone(),
        };
        let id = message_id(event_id);
        let timestamp = Utc::now().timestamp();
        let signature = secret.sign(&id, timestamp, payload.as_bytes());
        let response = client
            .post(parsed)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(payload)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out after 10 s".to_owned()
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                }
            })?;
        Ok(response.status().as_u16())
    }
}

/// The `webhook-id` of an event: the same on every attempt.
pub fn message_id(event_id: i64) -> String {
    format!("msg_{event_id}")
}

/// Queues a delivery of endpoint `webhook_id` again, now, with a new retry
/// window. Returns false when it has no such delivery.
///
/// # Errors
/// Database failures.
pub async fn redeliver<C: ConnectionTrait>(
    db: &C,
    webhook_id: i64,
    delivery_id: i64,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    Ok(db
        .execute(stmt(
            db.get_database_backend(),
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, claim = claim + 1, \
               next_attempt_at = $1, retry_from = $1, updated_at = $1 \
             WHERE delivery_id = $2 AND webhook_id = $3",
            vec![now.into(), delivery_id.into(), webhook_id.into()],
        ))
        .await?
        .rows_affected()
        == 1)
}

/// One attempt, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptView {
    /// When.
    pub attempted_at: DateTime<Utc>,
    /// The HTTP status answered, if any.
    pub status_code: Option<i32>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// How long it took, milliseconds.
    pub duration_ms: i64,
}

/// A delivery with its attempts, oldest attempt first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    /// Id.
    pub delivery_id: i64,
    /// The event's `webhook-id`.
    pub message_id: String,
    /// Its type.
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// When the next attempt is due (pending).
    pub next_attempt_at: DateTime<Utc>,
    /// Every attempt.
    pub attempts: Vec<AttemptView>,
}

/// Up to `limit` + 1 deliveries of endpoint `webhook_id` with ids below
/// `before` (0: from the newest), newest first, each with its attempts.
///
/// # Errors
/// Database failures.
pub async fn deliveries<C: ConnectionTrait>(
    db: &C,
    webhook_id: i64,
    before: i64,
    limit: u64,
) -> Result<Vec<DeliveryView>, DbErr> {
    let backend = db.get_database_backend();
    let before = if before > 0 { before } else { i64::MAX };
    let rows = db
        .query_all(stmt(
            backend,
            "SELECT d.delivery_id, d.event_id, e.event_type, d.status, d.next_attempt_at \
             FROM webhook_deliveries d JOIN webhook_events e ON e.event_id = d.event_id \
             WHERE d.webhook_id = $1 AND d.delivery_id < $2 \
             ORDER BY d.delivery_id DESC LIMIT $3",
            vec![
                webhook_id.into(),
                before.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    let mut views = Vec::with_capacity(rows.len());
    for r in rows {
        let delivery_id: i64 = r.try_get("", "delivery_id")?;
        let attempts = db
            .query_all(stmt(
                backend,
                "SELECT attempted_at, status_code, error, duration_ms FROM webhook_attempts \
                 WHERE delivery_id = $1 ORDER BY attempt_id",
                vec![delivery_id.into()],
            ))
            .await?
            .iter()
            .map(|a| {
                Ok(AttemptView {
                    attempted_at: a.try_get("", "attempted_at")?,
                    status_code: a.try_get("", "status_code")?,
                    error: a.try_get("", "error")?,
                    duration_ms: a.try_get("", "duration_ms")?,
                })
            })
            .collect::<Result<_, DbErr>>()?;
        views.push(DeliveryView {
            delivery_id,
            message_id: message_id(r.try_get("", "event_id")?),
            event_type: r.try_get("", "event_type")?,
            status: r.try_get("", "status")?,
            next_attempt_at: r.try_get("", "next_attempt_at")?,
            attempts,
        });
    }
    Ok(views)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_ten_hours() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (1..=9).map(|n| policy.base_delay(n).as_secs()).collect();
        assert_eq!(
            waits,
            [5, 20, 80, 320, 1_280, 5_120, 20_480, 36_000, 36_000]
        );
        for n in 1..=9 {
            let d = policy.delay(n).as_millis();
            let base = policy.base_delay(n).as_millis();
            assert!(
                d * 10 >= base * 8 && d * 10 <= base * 12,
                "{n}: {d} vs {base}"
            );
        }
        // Within 24 hours: 8 waits sum to 99,305 s, past the window, so a
        // delivery is tried about 8 times before it fails.
        let total: u64 = waits[..7].iter().sum();
        assert!(total < 86_400);
    }
}
