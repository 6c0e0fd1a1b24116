//! Schema migrations of the user service; they run on PostgreSQL and on
//! SQLite, at start-up.

use sea_orm_migration::{prelude::*, schema::*};

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateUsersAndRefreshTokens),
            Box::new(CreateSocialLogin),
        ]
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    DisplayName,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    TokenHash,
    FamilyId,
    UserId,
    ExpiresAt,
    RotatedAt,
    RevokedAt,
    CreatedAt,
}

struct CreateUsersAndRefreshTokens;

impl MigrationName for CreateUsersAndRefreshTokens {
    fn name(&self) -> &str {
        "m20261122_000001_create_users_and_refresh_tokens"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateUsersAndRefreshTokens {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_integer(Users::Id).auto_increment().primary_key())
                    .col(string_len_uniq(Users::Email, 254))
                    .col(string_null(Users::PasswordHash))
                    .col(string_len(Users::DisplayName, 100))
                    .col(string_len(Users::Role, 16))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(
                        big_integer(RefreshTokens::Id)
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(string_len_uniq(RefreshTokens::TokenHash, 64))
                    .col(string_len(RefreshTokens::FamilyId, 36))
                    .col(big_integer(RefreshTokens::UserId))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RotatedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_family")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    StateHash,
    Provider,
    PkceVerifier,
    Nonce,
    Role,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum OauthIdentities {
    Table,
    Provider,
    Subject,
    UserId,
    CreatedAt,
}

/// Social login (SPEC §3): pending authorization states and linked
/// provider identities.
struct CreateSocialLogin;

impl MigrationName for CreateSocialLogin {
    fn name(&self) -> &str {
        "m20261122_000002_create_social_login"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSocialLogin {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OauthStates::Table)
                    .col(string_len(OauthStates::StateHash, 64).primary_key())
                    .col(string_len(OauthStates::Provider, 64))
                    .col(string_len(OauthStates::PkceVerifier, 128))
                    .col(string_len(OauthStates::Nonce, 64))
                    .col(string_len(OauthStates::Role, 16))
                    .col(timestamp_with_time_zone(OauthStates::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OauthStates::UsedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthIdentities::Table)
                    .col(string_len(OauthIdentities::Provider, 64))
                    .col(string_len(OauthIdentities::Subject, 255))
                    .col(big_integer(OauthIdentities::UserId))
                    .col(timestamp_with_time_zone(OauthIdentities::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(OauthIdentities::Provider)
                            .col(OauthIdentities::Subject),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(OauthIdentities::Table, OauthIdentities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OauthIdentities::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OauthStates::Table).to_owned())
            .await
    }
}
