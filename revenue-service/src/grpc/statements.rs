//! Paying creators over gRPC (SPEC §11.4): the monthly close, statements,
//! the bank transfer that paid one, holds, and the withholding report.

use common::{
    auth::Role,
    error::ErrorCode,
    paging::{decode_cursor, encode_cursor, fetch_page, page_size},
};
use proto::revenue::v1 as pb;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tonic::{Request, Response};

use super::{Refusals, RevenueApi, creator_in_scope};
use crate::{
    entity::{close, creator_hold, statement},
    error::RevenueError,
    statements::{self, CloseError, PaidError},
};

const STATEMENTS: Refusals = Refusals {
    not_yours: "creators see only their own statements",
    not_a_creator: "only creators and admins have statements",
};

fn statement_to_proto(s: statement::Model) -> pb::Statement {
    pb::Statement {
        statement_id: s.statement_id,
        creator_id: s.creator_id,
        month: statements::month_text(s.month),
        opening_balance: s.opening_balance,
        earnings: s.earnings,
        restatements: s.restatements,
        adjustments: s.adjustments,
        gross: s.gross,
        payout: s.payout,
        income_tax: s.income_tax,
        local_tax: s.local_tax,
        net: s.net,
        closing_balance: s.closing_balance,
        carried_reason: s.carried_reason.unwrap_or_default(),
        hold_reason: s.hold_reason.unwrap_or_default(),
        tax_policy_version: s.tax_policy_version,
        status: s.status,
        issued_at: Some(common::grpc::timestamp(s.issued_at)),
        paid_at: s.paid_at.map(common::grpc::timestamp),
        payout_reference: s.payout_reference.unwrap_or_default(),
    }
}

fn close_to_proto(c: close::Model, issued: bool) -> pb::Close {
    pb::Close {
        close_id: c.close_id,
        month: statements::month_text(c.month),
        statements: c.statements,
        tax_policy_version: c.tax_policy_version,
        closed_at: Some(common::grpc::timestamp(c.closed_at)),
        actor: c.actor,
        transfer_cursor: c.transfer_cursor,
        issued,
    }
}

fn month_field(text: &str) -> Result<chrono::NaiveDate, RevenueError> {
    statements::parse_month(text).map_err(|e| RevenueError::field("month", e))
}

impl From<CloseError> for RevenueError {
    fn from(e: CloseError) -> Self {
        match e {
            CloseError::NotOver => RevenueError::field("month", "must be a month that is over"),
            CloseError::NotFinal(_) => {
                RevenueError::Conflict(ErrorCode::MonthNotFinal, e.to_string(), true)
            }
            CloseError::OutOfOrder(_) => {
                RevenueError::Conflict(ErrorCode::MonthOutOfOrder, e.to_string(), false)
            }
            CloseError::Policy(e) => RevenueError::Internal(e),
            CloseError::Overflow(_) => RevenueError::Internal(anyhow::anyhow!(e.to_string())),
            CloseError::Database(e) => RevenueError::Internal(e.into()),
        }
    }
}

impl From<PaidError> for RevenueError {
    fn from(e: PaidError) -> Self {
        match e {
            PaidError::BadReference => RevenueError::field("reference", e.to_string()),
            PaidError::NotFound => {
                RevenueError::NotFound("statement", ErrorCode::StatementNotFound)
            }
            PaidError::NothingToPay(_) => {
                RevenueError::Conflict(ErrorCode::NothingToPay, e.to_string(), false)
            }
            PaidError::AlreadyPaid(_) => {
                RevenueError::Conflict(ErrorCode::StatementAlreadyPaid, e.to_string(), false)
            }
            PaidError::Database(e) => RevenueError::Internal(e.into()),
        }
    }
}

fn positive_id(field: &str, id: i64) -> Result<i64, RevenueError> {
    if id > 0 {
        Ok(id)
    } else {
        Err(RevenueError::field(field, "must be a positive id"))
    }
}

impl RevenueApi {
    pub(super) async fn close_month_call(
        &self,
        request: Request<pb::CloseMonthRequest>,
    ) -> Result<Response<pb::Close>, RevenueError> {
        let claims = self.admin(&request).await?;
        let actor = claims
            .user_id()
            .map_err(|_| RevenueError::InvalidAccessToken)?;
        let month = month_field(&request.into_inner().month)?;
        // On its own task: a caller that gives up does not cut the close
        // short (it would roll back); asking again answers it.
        let (db, settler) = (self.db.clone(), self.settler.clone());
        let closed = tokio::spawn(async move {
            statements::close_month(&db, &settler, month, &actor.to_string()).await
        })
        .await
        .map_err(|e| RevenueError::Internal(e.into()))??;
        Ok(Response::new(close_to_proto(closed.close, closed.issued)))
    }

    pub(super) async fn list_statements_call(
        &self,
        request: Request<pb::ListStatementsRequest>,
    ) -> Result<Response<pb::ListStatementsResponse>, RevenueError> {
        let claims = self.caller(&request).await?;
        let r = request.into_inner();
        let mut query = statement::Entity::find();
        // An admin may list every creator's; anyone else is scoped.
        if claims.role != Role::Admin || r.creator_id != 0 {
            let creator = creator_in_scope(&claims, r.creator_id, &STATEMENTS)?;
            query = query.filter(statement::Column::CreatorId.eq(creator.0));
        }
        if !r.month.is_empty() {
            query = query.filter(statement::Column::Month.eq(month_field(&r.month)?));
        }
        let limit = page_size(r.limit).map_err(|e| RevenueError::field("limit", e))?;
        let before =
            decode_cursor("statement", &r.cursor).map_err(|e| RevenueError::field("cursor", e))?;
        if before > 0 {
            query = query.filter(statement::Column::StatementId.lt(before));
        }
        let (items, more) = fetch_page(
            query.order_by_desc(statement::Column::StatementId),
            limit,
            &self.db,
        )
        .await?;
        let next_cursor = match (more, items.last()) {
            (true, Some(last)) => encode_cursor("statement", last.statement_id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListStatementsResponse {
            items: items.into_iter().map(statement_to_proto).collect(),
            next_cursor,
        }))
    }

    pub(super) async fn get_statement_call(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Result<Response<pb::Statement>, RevenueError> {
        let claims = self.caller(&request).await?;
        let id = positive_id("statement_id", request.into_inner().statement_id)?;
        let found = statement::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(RevenueError::NotFound(
                "statement",
                ErrorCode::StatementNotFound,
            ))?;
        creator_in_scope(&claims, found.creator_id, &STATEMENTS)?;
        Ok(Response::new(statement_to_proto(found)))
    }

    pub(super) async fn mark_statement_paid_call(
        &self,
        request: Request<pb::MarkStatementPaidRequest>,
    ) -> Result<Response<pb::Statement>, RevenueError> {
        let claims = self.admin(&request).await?;
        let actor = claims
            .user_id()
            .map_err(|_| RevenueError::InvalidAccessToken)?;
        let r = request.into_inner();
        let id = positive_id("statement_id", r.statement_id)?;
        let paid = statements::mark_paid(&self.db, id, &r.reference, actor).await?;
        Ok(Response::new(statement_to_proto(paid)))
    }

    pub(super) async fn set_hold_call(
        &self,
        request: Request<pb::SetHoldRequest>,
    ) -> Result<Response<pb::Hold>, RevenueError> {
        let claims = self.admin(&request).await?;
        let actor = claims
            .user_id()
            .map_err(|_| RevenueError::InvalidAccessToken)?;
        let r = request.into_inner();
        let creator = positive_id("creator_id", r.creator_id)?;
        let hold = statements::set_hold(&self.db, creator, &r.reason, actor)
            .await
            .map_err(|e| match e {
                None => RevenueError::field(
                    "reason",
                    "must be 1 to 500 characters, without control characters",
                ),
                Some(e) => RevenueError::Internal(e.into()),
            })?;
        Ok(Response::new(hold_to_proto(hold)))
    }

    pub(super) async fn release_hold_call(
        &self,
        request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::ReleaseHoldResponse>, RevenueError> {
        self.admin(&request).await?;
        let creator = positive_id("creator_id", request.into_inner().creator_id)?;
        let released = statements::release_hold(&self.db, creator).await?;
        Ok(Response::new(pb::ReleaseHoldResponse { released }))
    }

    pub(super) async fn withholding_call(
        &self,
        request: Request<pb::WithholdingRequest>,
    ) -> Result<Response<pb::WithholdingResponse>, RevenueError> {
        self.admin(&request).await?;
        let month = month_field(&request.into_inner().month)?;
        let close = statements::find_close(&self.db, month)
            .await?
            .ok_or_else(|| {
                RevenueError::Conflict(
                    ErrorCode::FailedPrecondition,
                    format!("{} is not closed yet", statements::month_text(month)),
                    false,
                )
            })?;
        let paid = statement::Entity::find()
            .filter(statement::Column::Month.eq(month))
            .filter(statement::Column::Payout.gt(0))
            .order_by_asc(statement::Column::CreatorId)
            .all(&self.db)
            .await?;
        let mut answer = pb::WithholdingResponse {
            month: statements::month_text(month),
            tax_policy_version: close.tax_policy_version,
            ..Default::default()
        };
        for s in paid {
            let overflow =
                || RevenueError::Internal(anyhow::anyhow!("withholding totals overflow"));
            answer.payout = answer.payout.checked_add(s.payout).ok_or_else(overflow)?;
            answer.income_tax = answer
                .income_tax
                .checked_add(s.income_tax)
                .ok_or_else(overflow)?;
            answer.local_tax = answer
                .local_tax
                .checked_add(s.local_tax)
                .ok_or_else(overflow)?;
            answer.net = answer.net.checked_add(s.net).ok_or_else(overflow)?;
            answer.items.push(pb::WithholdingLine {
                creator_id: s.creator_id,
                statement_id: s.statement_id,
                payout: s.payout,
                income_tax: s.income_tax,
                local_tax: s.local_tax,
                net: s.net,
            });
        }
        Ok(Response::new(answer))
    }
}

fn hold_to_proto(h: creator_hold::Model) -> pb::Hold {
    pb::Hold {
        creator_id: h.creator_id,
        reason: h.reason,
        held_since: Some(common::grpc::timestamp(h.held_since)),
        actor: h.actor,
    }
}
