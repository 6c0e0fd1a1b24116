//! The `refresh_tokens` table: one row per issued refresh token, stored only
//! as its SHA-256 hash (SPEC §3).

use sea_orm::entity::prelude::*;

/// A refresh token. Tokens of one login share `family_id`; `rotated_at` is
/// set when the token was exchanged for its successor, `revoked_at` when its
/// family was revoked (reuse or logout).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub family_id: String,
    pub user_id: i64,
    pub expires_at: DateTimeUtc,
    pub rotated_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
