//! Accounts: sign-up, credentials check, look-ups, the admin list, and the
//! operator-made admin (SPEC §3).

pub mod domain;
pub mod entity;
pub mod password;

use chrono::Utc;
use common::auth::Role;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
    SqlErr,
};
use secrecy::SecretString;

use crate::error::UserError;
use domain::{Email, NewAccount, NewPassword};
pub use entity::Model as Account;

/// Reads and writes the `users` table; passwords go through `hasher`.
#[derive(Clone)]
pub struct AccountStore {
    db: DatabaseConnection,
    hasher: password::Hasher,
}

impl AccountStore {
    /// A store on `db` hashing with `hasher`.
    pub fn new(db: DatabaseConnection, hasher: password::Hasher) -> Self {
        Self { db, hasher }
    }

    /// Creates an account.
    ///
    /// # Errors
    /// [`UserError::EmailTaken`] when the normalised email exists, also when
    /// a concurrent sign-up wins the race (the unique index decides).
    pub async fn sign_up(&self, new: NewAccount) -> Result<Account, UserError> {
        if self.find_by_email(&new.email).await?.is_some() {
            return Err(UserError::EmailTaken);
        }
        let hash = self
            .hasher
            .hash_password(new.password.secret().clone())
            .await?;
        let row = entity::ActiveModel {
            email: Set(new.email.as_str().to_owned()),
            password_hash: Set(Some(hash)),
            display_name: Set(new.display_name.as_str().to_owned()),
            role: Set(new.role.as_str().to_owned()),
            created_at: Set(Utc::now()),
            ..Default::default()
        };
        match row.insert(&self.db).await {
            Ok(account) => Ok(account),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(UserError::EmailTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates an account for a social login: no password (password login
    /// always fails for it), the given email, a display name cut to 100
    /// characters.
    ///
    /// # Errors
    /// [`UserError::EmailTaken`] when the email exists; database failures.
    pub async fn create_social(
        &self,
        email: Email,
        name: &str,
        role: Role,
    ) -> Result<Account, UserError> {
        let name: String = name.trim().chars().take(100).collect();
        let row = entity::ActiveModel {
            email: Set(email.as_str().to_owned()),
            password_hash: Set(None),
            display_name: Set(if name.is_empty() {
                "User".to_owned()
            } else {
                name
            }),
            role: Set(role.as_str().to_owned()),
            created_at: Set(Utc::now()),
            ..Default::default()
        };
        match row.insert(&self.db).await {
            Ok(account) => Ok(account),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(UserError::EmailTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account for `email` and `password`.
    ///
    /// # Errors
    /// [`UserError::InvalidCredentials`] for an unknown email and for a wrong
    /// password alike, after the same hashing work.
    pub async fn authenticate(
        &self,
        email: &str,
        password: SecretString,
    ) -> Result<Account, UserError> {
        let account = match Email::parse(email) {
            Ok(email) => self.find_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = account.as_ref().and_then(|a| a.password_hash.clone());
        if self.hasher.verify_password(hash, password).await? {
            account.ok_or(UserError::InvalidCredentials)
        } else {
            Err(UserError::InvalidCredentials)
        }
    }

    /// The account with this email, if any.
    ///
    /// # Errors
    /// Database failures.
    pub async fn find_by_email(&self, email: &Email) -> Result<Option<Account>, UserError> {
        Ok(entity::Entity::find()
            .filter(entity::Column::Email.eq(email.as_str()))
            .one(&self.db)
            .await?)
    }

    /// The account with this id.
    ///
    /// # Errors
    /// [`UserError::UserNotFound`] when there is none.
    pub async fn get(&self, user_id: i64) -> Result<Account, UserError> {
        entity::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .ok_or(UserError::UserNotFound)
    }

    /// Up to `limit` accounts with ids above `after`, by ascending id, and
    /// whether more follow.
    ///
    /// # Errors
    /// Database failures.
    pub async fn list(&self, after: i64, limit: u32) -> Result<(Vec<Account>, bool), UserError> {
        let query = entity::Entity::find()
            .filter(entity::Column::Id.gt(after))
            .order_by_asc(entity::Column::Id);
        Ok(common::paging::fetch_page(query, limit, &self.db).await?)
    }

    /// Creates the configured admin when no account has that email; leaves
    /// an existing account untouched (SPEC §3: admins come only from
    /// operators).
    ///
    /// # Errors
    /// Bad email or password in the configuration; database failures.
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<(), UserError> {
        let email = Email::parse(email)?;
        if self.find_by_email(&email).await?.is_some() {
            return Ok(());
        }
        let account = NewAccount {
            email,
            password: NewPassword::parse(password)?,
            display_name: domain::DisplayName::parse("Administrator")?,
            role: Role::Admin,
        };
        match self.sign_up(account).await {
            Ok(admin) => {
                tracing::info!(user_id = admin.id, "admin account created");
                Ok(())
            }
            Err(UserError::EmailTaken) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
