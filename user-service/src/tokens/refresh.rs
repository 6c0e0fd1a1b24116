//! Refresh tokens (SPEC §3): 256 random bits, stored only as a SHA-256 hash,
//! rotated on every use; presenting an already-rotated token revokes its
//! whole family (RFC 9700 §4.14.2); logout revokes the family.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait, sea_query::Expr,
};

use super::entity;
use crate::error::UserError;

/// Issues, rotates and revokes refresh tokens.
#[derive(Clone)]
pub struct RefreshTokens {
    db: DatabaseConnection,
    ttl: Duration,
}

/// What a successful rotation yields: the owner and the successor token.
pub struct Rotated {
    /// The user the family belongs to.
    pub user_id: i64,
    /// The new refresh token (the plain value, shown once).
    pub token: String,
}

impl RefreshTokens {
    /// Tokens on `db` that live `ttl_days`.
    pub fn new(db: DatabaseConnection, ttl_days: u32) -> Self {
        Self {
            db,
            ttl: Duration::days(i64::from(ttl_days)),
        }
    }

    /// Starts a new family (a login) for `user_id`; returns the plain token.
    ///
    /// # Errors
    /// Database failures.
    pub async fn issue(&self, user_id: i64) -> Result<String, UserError> {
        let family = uuid::Uuid::new_v4().to_string();
        self.insert(&self.db, user_id, family).await
    }

    /// Exchanges `presented` for its successor in the same family.
    ///
    /// # Errors
    /// [`UserError::InvalidRefreshToken`] for an unknown, expired or revoked
    /// token; for an already-rotated one too, after revoking its family.
    pub async fn rotate(&self, presented: &str) -> Result<Rotated, UserError> {
        let Some(row) = self.find(presented).await? else {
            return Err(UserError::InvalidRefreshToken);
        };
        if row.revoked_at.is_some() || row.expires_at <= Utc::now() {
            return Err(UserError::InvalidRefreshToken);
        }
        let txn = self.db.begin().await?;
        // Only one caller can move the token from live to rotated; a loser of
        // that race is a replay like any other.
        let claimed = entity::Entity::update_many()
            .col_expr(entity::Column::RotatedAt, Expr::value(Utc::now()))
            .filter(entity::Column::Id.eq(row.id))
            .filter(entity::Column::RotatedAt.is_null())
            .filter(entity::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            txn.rollback().await?;
            self.revoke_family(&row.family_id).await?;
            tracing::warn!(user_id = row.user_id, family = %row.family_id, "refresh token reuse: family revoked");
            return Err(UserError::InvalidRefreshToken);
        }
        let token = self.insert(&txn, row.user_id, row.family_id).await?;
        txn.commit().await?;
        Ok(Rotated {
            user_id: row.user_id,
            token,
        })
    }

    /// Revokes the family of `presented`, which must belong to `user_id`.
    /// An unknown or already revoked token changes nothing.
    ///
    /// # Errors
    /// [`UserError::Forbidden`] when the token is another user's.
    pub async fn revoke(&self, presented: &str, user_id: i64) -> Result<(), UserError> {
        match self.find(presented).await? {
            None => Ok(()),
            Some(row) if row.user_id != user_id => Err(UserError::Forbidden(
                "the refresh token belongs to another user",
            )),
            Some(row) => self.revoke_family(&row.family_id).await,
        }
    }

    async fn revoke_family(&self, family_id: &str) -> Result<(), UserError> {
        entity::Entity::update_many()
            .col_expr(entity::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(entity::Column::FamilyId.eq(family_id))
            .filter(entity::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn find(&self, presented: &str) -> Result<Option<entity::Model>, UserError> {
        Ok(entity::Entity::find()
            .filter(entity::Column::TokenHash.eq(hash(presented)))
            .one(&self.db)
            .await?)
    }

    async fn insert<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        user_id: i64,
        family_id: String,
    ) -> Result<String, UserError> {
        // 256 bits from the thread-local CSPRNG (ChaCha, seeded by the OS).
        let bytes: [u8; 32] = rand::random();
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let now = Utc::now();
        entity::ActiveModel {
            token_hash: Set(hash(&token)),
            family_id: Set(family_id),
            user_id: Set(user_id),
            expires_at: Set(now + self.ttl),
            rotated_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(conn)
        .await?;
        Ok(token)
    }
}

/// Hex SHA-256 of a plain token: what the table stores.
fn hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
