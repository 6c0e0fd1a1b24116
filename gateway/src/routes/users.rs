//! `/api/v1/users/me` and `/api/v1/admin/users` (SPEC §7).

use actix_web::{get, web};
use common::auth::Role;
use proto::user::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{auth::Authenticated, error::ApiError, routes::auth::UserResponse, startup::AppState};

/// The signed-in user.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserResponse),
        (status = 401, body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/users/me")]
pub async fn me(
    caller: Authenticated,
    state: web::Data<AppState>,
) -> Result<web::Json<UserResponse>, ApiError> {
    let user = state
        .downstreams
        .users()
        .get_me(state.downstreams.request(pb::GetMeRequest {}, &caller.ctx))
        .await?;
    Ok(web::Json(user.into_inner().into()))
}

/// Paging parameters (SPEC §7).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct PageQuery {
    /// 1 to 100 (default 20).
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The limit, checked against 1..=`max`, or `default`.
    ///
    /// # Errors
    /// 400 naming `limit`.
    pub fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        match &self.limit {
            None => Ok(default),
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_field(
                    "limit",
                    format!("must be an integer from 1 to {max}"),
                )),
            },
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    /// Users by ascending id.
    pub items: Vec<UserResponse>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Every user, paged. Admin only.
#[utoipa::path(
    tag = "admin",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserPage),
        (status = 400, body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, description = "not an admin", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/admin/users")]
pub async fn list_users(
    caller: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<UserPage>, ApiError> {
    caller.require(Role::Admin)?;
    let message = pb::ListUsersRequest {
        limit: query.limit(20, 100)?,
        cursor: query.cursor.clone().unwrap_or_default(),
    };
    let page = state
        .downstreams
        .users()
        .list_users(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    Ok(web::Json(UserPage {
        items: page.users.into_iter().map(UserResponse::from).collect(),
        next_cursor: Some(page.next_cursor).filter(|c| !c.is_empty()),
    }))
}
