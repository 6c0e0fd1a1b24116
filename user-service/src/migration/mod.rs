//! Schema migrations of the user service; they run on PostgreSQL and on
//! SQLite, at start-up.

use sea_orm_migration::{prelude::*, schema::*};

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateUsersAndRefreshTokens)]
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
