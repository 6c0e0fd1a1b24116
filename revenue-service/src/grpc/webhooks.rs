//! Webhooks over gRPC (SPEC §11.5): endpoints, deliveries, redelivery.
//! Admins only.

use common::{
    error::ErrorCode,
    paging::{decode_cursor, encode_cursor, page_size},
};
use proto::revenue::v1 as pb;
use tonic::{Request, Response};

use super::RevenueApi;
use crate::{
    error::RevenueError,
    webhooks::{self, Endpoint, EndpointError},
};

fn webhook_to_proto(e: Endpoint) -> pb::Webhook {
    pb::Webhook {
        webhook_id: e.webhook_id,
        url: e.url,
        events: e.events,
        created_at: Some(common::grpc::timestamp(e.created_at)),
    }
}

impl From<EndpointError> for RevenueError {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::Field(field, why) => RevenueError::field(field, why),
            EndpointError::NotFound => RevenueError::NotFound("webhook", ErrorCode::NotFound),
            EndpointError::Database(e) => RevenueError::Internal(e.into()),
        }
    }
}

impl RevenueApi {
    pub(super) async fn create_webhook_call(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreatedWebhook>, RevenueError> {
        let claims = self.admin(&request).await?;
        let actor = claims
            .user_id()
            .map_err(|_| RevenueError::InvalidAccessToken)?;
        let r = request.into_inner();
        let (endpoint, secret) =
            webhooks::register(&self.db, &r.url, &r.events, actor, self.insecure_webhooks).await?;
        Ok(Response::new(pb::CreatedWebhook {
            webhook: Some(webhook_to_proto(endpoint)),
            secret: secret.expose(),
        }))
    }

    pub(super) async fn list_webhooks_call(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, RevenueError> {
        self.admin(&request).await?;
        let items = webhooks::list(&self.db).await?;
        Ok(Response::new(pb::ListWebhooksResponse {
            items: items.into_iter().map(webhook_to_proto).collect(),
        }))
    }

    pub(super) async fn delete_webhook_call(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, RevenueError> {
        self.admin(&request).await?;
        webhooks::delete(&self.db, request.into_inner().webhook_id).await?;
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    pub(super) async fn list_deliveries_call(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, RevenueError> {
        self.admin(&request).await?;
        let r = request.into_inner();
        if !webhooks::exists(&self.db, r.webhook_id).await? {
            return Err(RevenueError::NotFound("webhook", ErrorCode::NotFound));
        }
        let limit = page_size(r.limit).map_err(|e| RevenueError::field("limit", e))?;
        let before =
            decode_cursor("delivery", &r.cursor).map_err(|e| RevenueError::field("cursor", e))?;
        let mut items =
            webhooks::deliveries(&self.db, r.webhook_id, before, u64::from(limit) + 1).await?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = match (more, items.last()) {
            (true, Some(last)) => encode_cursor("delivery", last.delivery_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListDeliveriesResponse {
            items: items
                .into_iter()
                .map(|d| pb::Delivery {
                    delivery_id: d.delivery_id,
                    message_id: d.message_id,
                    event_type: d.event_type,
                    status: d.status,
                    next_attempt_at: Some(common::grpc::timestamp(d.next_attempt_at)),
                    attempts: d
                        .attempts
                        .into_iter()
                        .map(|a| pb::DeliveryAttempt {
                            attempted_at: Some(common::grpc::timestamp(a.attempted_at)),
                            status_code: a.status_code.unwrap_or(0),
                            error: a.error.unwrap_or_default(),
                            duration_ms: a.duration_ms,
                        })
                        .collect(),
                })
                .collect(),
            next_cursor,
        }))
    }

    pub(super) async fn redeliver_call(
        &self,
        request: Request<pb::RedeliverRequest>,
    ) -> Result<Response<pb::RedeliverResponse>, RevenueError> {
        self.admin(&request).await?;
        let r = request.into_inner();
        if webhooks::redeliver(&self.db, r.webhook_id, r.delivery_id).await? {
            Ok(Response::new(pb::RedeliverResponse {}))
        } else {
            Err(RevenueError::NotFound("delivery", ErrorCode::NotFound))
        }
    }
}
