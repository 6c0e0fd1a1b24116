//! The audit log and idempotency keys of admin writes over gRPC (SPEC
//! §11.6), for the gateway.

use common::{
    error::ErrorCode,
    paging::{decode_cursor, encode_cursor, page_size},
};
use proto::revenue::v1 as pb;
use tonic::{Request, Response};

use super::RevenueApi;
use crate::{
    admin_writes::{self, AdminWrite, BeginError, Begun, StoredResponse},
    error::RevenueError,
};

fn stored(r: Option<pb::StoredResponse>) -> StoredResponse {
    let r = r.unwrap_or_default();
    StoredResponse {
        status: u16::try_from(r.status).unwrap_or(500),
        content_type: r.content_type,
        body: r.body,
    }
}

fn optional(key: &str) -> Option<&str> {
    (!key.is_empty()).then_some(key)
}

impl RevenueApi {
    pub(super) async fn begin_admin_write_call(
        &self,
        request: Request<pb::BeginAdminWriteRequest>,
    ) -> Result<Response<pb::BeginAdminWriteResponse>, RevenueError> {
        let claims = self.admin(&request).await?;
        let actor = claims
            .user_id()
            .map_err(|_| RevenueError::InvalidAccessToken)?;
        let r = request.into_inner();
        let write = AdminWrite {
            actor,
            key: optional(&r.idempotency_key),
            fingerprint: &r.fingerprint,
            action: &r.action,
            target: &r.target,
            request_id: &r.request_id,
        };
        let begun = admin_writes::begin(&self.db, &write)
            .await
            .map_err(|e| match e {
                BeginError::BadKey => RevenueError::field("Idempotency-Key", e.to_string()),
                BeginError::Reused => {
                    RevenueError::Conflict(ErrorCode::IdempotencyKeyReused, e.to_string(), false)
                }
                BeginError::InProgress => {
                    RevenueError::Conflict(ErrorCode::IdempotencyKeyInProgress, e.to_string(), true)
                }
                BeginError::Database(e) => e.into(),
            })?;
        Ok(Response::new(match begun {
            Begun::Proceed { audit_id } => pb::BeginAdminWriteResponse {
                audit_id,
                replay: None,
            },
            Begun::Replay { audit_id, response } => pb::BeginAdminWriteResponse {
                audit_id,
                replay: Some(pb::StoredResponse {
                    status: u32::from(response.status),
                    content_type: response.content_type,
                    body: response.body,
                }),
            },
        }))
    }

    pub(super) async fn finish_admin_write_call(
        &self,
        request: Request<pb::FinishAdminWriteRequest>,
    ) -> Result<Response<pb::FinishAdminWriteResponse>, RevenueError> {
        let claims = self.admin(&request).await?;
        let actor = claims
            .user_id()
            .map_err(|_| RevenueError::InvalidAccessToken)?;
        let r = request.into_inner();
        admin_writes::finish(
            &self.db,
            actor,
            r.audit_id,
            optional(&r.idempotency_key),
            &stored(r.response),
        )
        .await?;
        Ok(Response::new(pb::FinishAdminWriteResponse {}))
    }

    pub(super) async fn list_audit_call(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, RevenueError> {
        self.admin(&request).await?;
        let r = request.into_inner();
        let limit = page_size(r.limit).map_err(|e| RevenueError::field("limit", e))?;
        let before =
            decode_cursor("audit", &r.cursor).map_err(|e| RevenueError::field("cursor", e))?;
        let (items, more) = admin_writes::entries(&self.db, before, limit).await?;
        let next_cursor = match (more, items.last()) {
            (true, Some(last)) => encode_cursor("audit", last.audit_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListAuditResponse {
            items: items
                .into_iter()
                .map(|a| pb::AuditEntry {
                    audit_id: a.audit_id,
                    actor: a.actor,
                    action: a.action,
                    target: a.target,
                    request_id: a.request_id,
                    at: Some(common::grpc::timestamp(a.at)),
                    status: a.status.and_then(|s| u32::try_from(s).ok()).unwrap_or(0),
                    replayed: a.replayed,
                    idempotency_key: a.idempotency_key.unwrap_or_default(),
                })
                .collect(),
            next_cursor,
        }))
    }
}
