//! `m20261201_000005_add_webhooks`: webhooks (SPEC §11.5).
//!
//! - `webhook_endpoints`: registered URLs with the events they take and
//!   their Standard Webhooks secret; `deleted_at` set when removed.
//! - `webhook_events`: the outbox, written in the transaction of the change
//!   (only while some endpoint takes the event's type).
//! - `webhook_deliveries`: one per (event, endpoint): `pending` with its
//!   next attempt's time, `succeeded` or `failed`; `claim` counts claims and
//!   redeliveries, so an attempt's outcome never overwrites a newer one.
//! - `webhook_attempts`: every attempt, its status code or error.

use sea_orm_migration::{prelude::*, schema::*};

/// See the module's documentation.
pub(super) struct AddWebhooks;

impl MigrationName for AddWebhooks {
    fn name(&self) -> &str {
        "m20261201_000005_add_webhooks"
    }
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    WebhookId,
    Url,
    Events,
    Secret,
    CreatedAt,
    Actor,
    DeletedAt,
}

#[derive(DeriveIden)]
enum WebhookEvents {
    Table,
    EventId,
    EventType,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    DeliveryId,
    WebhookId,
    EventId,
    Status,
    Attempts,
    NextAttemptAt,
    RetryFrom,
    LastStatusCode,
    LastError,
    UpdatedAt,
    Claim,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    AttemptId,
    DeliveryId,
    AttemptedAt,
    StatusCode,
    Error,
    DurationMs,
}

#[async_trait::async_trait]
impl MigrationTrait for AddWebhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(
                        big_integer(WebhookEndpoints::WebhookId)
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(text(WebhookEndpoints::Url))
                    .col(text(WebhookEndpoints::Events))
                    .col(text(WebhookEndpoints::Secret))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                    .col(big_integer(WebhookEndpoints::Actor))
                    .col(timestamp_with_time_zone_null(WebhookEndpoints::DeletedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookEvents::Table)
                    .col(
                        big_integer(WebhookEvents::EventId)
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(string_len(WebhookEvents::EventType, 64))
                    .col(text(WebhookEvents::Payload))
                    .col(timestamp_with_time_zone(WebhookEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(
                        big_integer(WebhookDeliveries::DeliveryId)
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(big_integer(WebhookDeliveries::WebhookId))
                    .col(big_integer(WebhookDeliveries::EventId))
                    .col(string_len(WebhookDeliveries::Status, 16))
                    .col(integer(WebhookDeliveries::Attempts).default(0))
                    .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone(WebhookDeliveries::RetryFrom))
                    .col(integer_null(WebhookDeliveries::LastStatusCode))
                    .col(text_null(WebhookDeliveries::LastError))
                    .col(timestamp_with_time_zone(WebhookDeliveries::UpdatedAt))
                    .col(big_integer(WebhookDeliveries::Claim).default(0))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "webhook_deliveries_due",
                vec![WebhookDeliveries::Status, WebhookDeliveries::NextAttemptAt],
            ),
            (
                "webhook_deliveries_endpoint",
                vec![WebhookDeliveries::WebhookId, WebhookDeliveries::DeliveryId],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(WebhookDeliveries::Table);
            for c in columns {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(
                        big_integer(WebhookAttempts::AttemptId)
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(big_integer(WebhookAttempts::DeliveryId))
                    .col(timestamp_with_time_zone(WebhookAttempts::AttemptedAt))
                    .col(integer_null(WebhookAttempts::StatusCode))
                    .col(text_null(WebhookAttempts::Error))
                    .col(big_integer(WebhookAttempts::DurationMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempts_delivery")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::DeliveryId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            WebhookEvents::Table.into_iden(),
            WebhookEndpoints::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
