//! Money corrections over gRPC: invalid-traffic adjustments (SPEC §11.3)
//! and the creator's ledger (SPEC §11.1).

use common::{
    auth::Role,
    domain::VideoId,
    error::ErrorCode,
    paging::{decode_cursor, encode_cursor, fetch_page, page_size},
};
use proto::revenue::v1 as pb;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tonic::{Request, Response};

use super::{LEDGER, RevenueApi, creator_in_scope, day_text, parse_day};
use crate::{
    entity::adjustment,
    error::RevenueError,
    ledger,
    settlement::{AdjustError, NewAdjustment},
};

fn adjustment_to_proto(a: adjustment::Model) -> pb::Adjustment {
    pb::Adjustment {
        adjustment_id: a.adjustment_id,
        video_id: a.video_id,
        day: day_text(a.day),
        views: a.views,
        ad_views: a.ad_views,
        watch_seconds: a.watch_seconds,
        reason: a.reason,
        amount_clawed_back: a.amount_clawed_back,
        created_at: Some(common::grpc::timestamp(a.created_at)),
        actor: a.actor,
        creator_id: a.creator_id,
    }
}

impl From<AdjustError> for RevenueError {
    fn from(e: AdjustError) -> Self {
        match e {
            AdjustError::Field(field, why) => RevenueError::field(field, why),
            AdjustError::VideoNotFound => RevenueError::NotFound("video", ErrorCode::VideoNotFound),
            AdjustError::Busy => RevenueError::Conflict(
                ErrorCode::SettlementBusy,
                AdjustError::Busy.to_string(),
                true,
            ),
            AdjustError::Unavailable(e) => {
                tracing::warn!(error = %e, "adjustment: the streaming service failed");
                RevenueError::Unavailable("the streaming service")
            }
            AdjustError::Database(e) => RevenueError::Internal(e.into()),
        }
    }
}

impl RevenueApi {
    pub(super) async fn create_adjustment_call(
        &self,
        request: Request<pb::CreateAdjustmentRequest>,
    ) -> Result<Response<pb::Adjustment>, RevenueError> {
        let claims = self.admin(&request).await?;
        let actor = claims
            .user_id()
            .map_err(|_| RevenueError::InvalidAccessToken)?;
        let r = request.into_inner();
        let day = parse_day("day", &r.day)?;
        let created = self
            .settler
            .adjust(NewAdjustment {
                video_id: VideoId(r.video_id),
                day,
                views: r.views,
                ad_views: r.ad_views,
                watch_seconds: r.watch_seconds,
                reason: r.reason,
                actor,
            })
            .await?;
        Ok(Response::new(adjustment_to_proto(created)))
    }

    pub(super) async fn list_adjustments_call(
        &self,
        request: Request<pb::ListAdjustmentsRequest>,
    ) -> Result<Response<pb::ListAdjustmentsResponse>, RevenueError> {
        let claims = self.caller(&request).await?;
        let r = request.into_inner();
        let limit = page_size(r.limit).map_err(|e| RevenueError::field("limit", e))?;
        let before =
            decode_cursor("adjustment", &r.cursor).map_err(|e| RevenueError::field("cursor", e))?;
        let mut query = adjustment::Entity::find();
        match claims.role {
            Role::Admin => {}
            Role::Creator => {
                let me = claims
                    .user_id()
                    .map_err(|_| RevenueError::InvalidAccessToken)?;
                query = query.filter(adjustment::Column::CreatorId.eq(me));
            }
            Role::Viewer => {
                return Err(RevenueError::Forbidden(
                    "only creators and admins see adjustments",
                ));
            }
        }
        if r.video_id != 0 {
            query = query.filter(adjustment::Column::VideoId.eq(r.video_id));
        }
        if before > 0 {
            query = query.filter(adjustment::Column::AdjustmentId.lt(before));
        }
        let (items, more) = fetch_page(
            query.order_by_desc(adjustment::Column::AdjustmentId),
            limit,
            &self.db,
        )
        .await?;
        let next_cursor = match (more, items.last()) {
            (true, Some(last)) => encode_cursor("adjustment", last.adjustment_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListAdjustmentsResponse {
            items: items.into_iter().map(adjustment_to_proto).collect(),
            next_cursor,
        }))
    }

    pub(super) async fn list_ledger_call(
        &self,
        request: Request<pb::ListLedgerRequest>,
    ) -> Result<Response<pb::ListLedgerResponse>, RevenueError> {
        let claims = self.caller(&request).await?;
        let r = request.into_inner();
        let creator = creator_in_scope(&claims, r.creator_id, &LEDGER)?;
        let limit = page_size(r.limit).map_err(|e| RevenueError::field("limit", e))?;
        let before =
            decode_cursor("ledger", &r.cursor).map_err(|e| RevenueError::field("cursor", e))?;
        let time = self.settler.time();
        let from = match r.from.as_str() {
            "" => None,
            text => Some(parse_day("from", text)?),
        };
        let to = match r.to.as_str() {
            "" => None,
            text => Some(parse_day("to", text)?),
        };
        if let (Some(from), Some(to)) = (from, to)
            && to < from
        {
            return Err(RevenueError::field("to", "must not be before from"));
        }
        let posted = (from.map(|d| time.start_of(d)), to.map(|d| time.end_of(d)));
        let mut entries =
            ledger::entries(&self.db, creator, before, posted, u64::from(limit) + 1).await?;
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let balance = ledger::balance(&self.db, creator).await?;
        let next_cursor = match (more, entries.last()) {
            (true, Some(last)) => encode_cursor("ledger", last.transfer_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListLedgerResponse {
            items: entries
                .into_iter()
                .map(|e| pb::LedgerEntry {
                    entry_id: e.transfer_id,
                    kind: pb::TransferKind::from(e.kind).into(),
                    amount: e.amount,
                    video_id: e.video_id,
                    day: e.day.map(day_text).unwrap_or_default(),
                    posted_at: Some(common::grpc::timestamp(e.posted_at)),
                    reason: e.reason.unwrap_or_default(),
                    source: Some(pb::TransferSource {
                        kind: e.source_kind,
                        id: e.source_id,
                    }),
                    actor: e.actor,
                })
                .collect(),
            next_cursor,
            balance: balance.0,
            creator_id: creator.0,
        }))
    }
}
