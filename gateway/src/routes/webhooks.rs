//! Webhooks (SPEC §11.5): an admin registers endpoints, reads each one's
//! delivery log and redelivers. Events are signed as Standard Webhooks
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
//! HMAC-SHA256 of id.timestamp.body>`).

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use common::auth::Role;
use proto::revenue::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    admin_write,
    auth::Authenticated,
    error::ApiError,
    extract::JsonBody,
    routes::{time_of, users::PageQuery},
    startup::AppState,
};

/// `POST /api/v1/admin/webhooks` body.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct WebhookBody {
    /// An `https` URL on a public address (`http` and private or loopback
    /// addresses only with `WEBHOOK_ALLOW_INSECURE_URLS=true`); redirects
    /// are not followed.
    #[schema(example = "https://finance.example.com/hooks/settlement")]
    pub url: String,
    /// At least one of `settlement.succeeded`, `settlement.failed`,
    /// `day.restated`, `adjustment.posted`, `statement.issued`,
    /// `statement.paid`, `creator.hold_changed`.
    pub events: Vec<String>,
}

/// A registered endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookResponse {
    /// Id.
    pub webhook_id: i64,
    /// Where events are posted.
    pub url: String,
    /// The event types it takes.
    pub events: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// `whsec_<base64 key>`: in the registration's answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<pb::Webhook> for WebhookResponse {
    fn from(w: pb::Webhook) -> Self {
        Self {
            webhook_id: w.webhook_id,
            url: w.url,
            events: w.events,
            created_at: time_of(w.created_at),
            secret: None,
        }
    }
}

/// Every endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub items: Vec<WebhookResponse>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptResponse {
    /// When.
    pub attempted_at: DateTime<Utc>,
    /// The HTTP status answered; `null` when there was no answer.
    pub status_code: Option<i32>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// How long it took, milliseconds.
    pub duration_ms: i64,
}

/// One event's delivery to the endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryResponse {
    /// Id (for redelivery).
    pub delivery_id: i64,
    /// The `webhook-id` sent, the same on every attempt.
    pub message_id: String,
    /// The event's type.
    pub event_type: String,
    /// `pending`, `succeeded` or `failed` (retries ran out after 24 h).
    pub status: String,
    /// When the next attempt is due, while `pending`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptResponse>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    /// Deliveries.
    pub items: Vec<DeliveryResponse>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Registers a webhook endpoint. The answer holds its signing secret, which
/// is not shown again. Admins only; accepts `Idempotency-Key`.
#[utoipa::path(
    tag = "admin",
    request_body = WebhookBody,
    security(("bearer" = [])),
    responses(
        (status = 201, body = WebhookResponse),
        (status = 400, description = "a refused `url` or `events`", body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/admin/webhooks")]
pub async fn create_webhook(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    body: JsonBody<WebhookBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let raw = admin_write::json_bytes(&body.0);
    admin_write::guarded(&req, &caller, &state, &raw, async {
        let message = pb::CreateWebhookRequest {
            url: body.0.url,
            events: body.0.events,
        };
        let created = state
            .downstreams
            .revenue()
            .create_webhook(state.downstreams.request(message, &caller.ctx))
            .await?
            .into_inner();
        let mut answer = WebhookResponse::from(created.webhook.unwrap_or_default());
        answer.secret = Some(created.secret);
        Ok(HttpResponse::Created().json(answer))
    })
    .await
}

/// Every registered endpoint, without secrets. Admins only.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, body = WebhookList),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/admin/webhooks")]
pub async fn list_webhooks(
    caller: Authenticated,
    state: web::Data<AppState>,
) -> Result<web::Json<WebhookList>, ApiError> {
    caller.require(Role::Admin)?;
    let r = state
        .downstreams
        .revenue()
        .list_webhooks(
            state
                .downstreams
                .request(pb::ListWebhooksRequest {}, &caller.ctx),
        )
        .await?
        .into_inner();
    Ok(web::Json(WebhookList {
        items: r.items.into_iter().map(WebhookResponse::from).collect(),
    }))
}

/// Removes an endpoint: it takes no new events, and its pending
/// deliveries fail. Admins only; accepts `Idempotency-Key`.
#[utoipa::path(
    tag = "admin",
    params(("webhook_id" = i64, Path, description = "webhook id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
        (status = 404, body = common::error::ErrorEnvelope),
    )
)]
#[delete("/api/v1/admin/webhooks/{webhook_id}")]
pub async fn delete_webhook(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    webhook_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    admin_write::guarded(&req, &caller, &state, &[], async {
        let message = pb::DeleteWebhookRequest {
            webhook_id: webhook_id.into_inner(),
        };
        state
            .downstreams
            .revenue()
            .delete_webhook(state.downstreams.request(message, &caller.ctx))
            .await?;
        Ok(HttpResponse::NoContent().finish())
    })
    .await
}

/// An endpoint's delivery log: each event sent to it, newest first, with
/// every attempt. Admins only.
#[utoipa::path(
    tag = "admin",
    params(("webhook_id" = i64, Path, description = "webhook id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DeliveryPage),
        (status = 400, body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
        (status = 404, description = "no such webhook", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/admin/webhooks/{webhook_id}/deliveries")]
pub async fn list_deliveries(
    caller: Authenticated,
    state: web::Data<AppState>,
    webhook_id: web::Path<i64>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<DeliveryPage>, ApiError> {
    caller.require(Role::Admin)?;
    let message = pb::ListDeliveriesRequest {
        webhook_id: webhook_id.into_inner(),
        limit: page.limit(20, 100)?,
        cursor: page.cursor.clone().unwrap_or_default(),
    };
    let r = state
        .downstreams
        .revenue()
        .list_deliveries(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    Ok(web::Json(DeliveryPage {
        items: r
            .items
            .into_iter()
            .map(|d| DeliveryResponse {
                next_attempt_at: (d.status == "pending").then(|| time_of(d.next_attempt_at)),
                delivery_id: d.delivery_id,
                message_id: d.message_id,
                event_type: d.event_type,
                status: d.status,
                attempts: d
                    .attempts
                    .into_iter()
                    .map(|a| AttemptResponse {
                        attempted_at: time_of(a.attempted_at),
                        status_code: Some(a.status_code).filter(|c| *c != 0),
                        error: Some(a.error).filter(|e| !e.is_empty()),
                        duration_ms: a.duration_ms,
                    })
                    .collect(),
            })
            .collect(),
        next_cursor: Some(r.next_cursor).filter(|c| !c.is_empty()),
    }))
}

/// Queues a delivery again now, with a new 24-hour retry window (a
/// `failed` one, or any other). Admins only; accepts `Idempotency-Key`.
#[utoipa::path(
    tag = "admin",
    params(
        ("webhook_id" = i64, Path, description = "webhook id"),
        ("delivery_id" = i64, Path, description = "delivery id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued"),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, body = common::error::ErrorEnvelope),
        (status = 404, body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    ids: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    admin_write::guarded(&req, &caller, &state, &[], async {
        let (webhook_id, delivery_id) = ids.into_inner();
        let message = pb::RedeliverRequest {
            webhook_id,
            delivery_id,
        };
        state
            .downstreams
            .revenue()
            .redeliver(state.downstreams.request(message, &caller.ctx))
            .await?;
        Ok(HttpResponse::Accepted().finish())
    })
    .await
}
