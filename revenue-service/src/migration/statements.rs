//! `m20261201_000004_add_statements`: the monthly close of SPEC §11.4.
//!
//! - `closes`: one row per closed month (unique: two replicas never close
//!   the same month twice), with the transfer cursor it covered (every
//!   payable transfer with an id up to it and a day up to the month's end
//!   is on this or an earlier statement) and the tax policy it used.
//! - `statements`: one per creator and closed month, amounts in whole won,
//!   never changed once issued except `paid_at`, `payout_reference` and
//!   `status` when an admin records the bank transfer.
//! - `creator_holds`: creators whose payouts are held, with the reason.

use sea_orm_migration::{prelude::*, schema::*};

/// See the module's documentation.
pub(super) struct AddStatements;

impl MigrationName for AddStatements {
    fn name(&self) -> &str {
        "m20261201_000004_add_statements"
    }
}

#[derive(DeriveIden)]
enum Closes {
    Table,
    CloseId,
    Month,
    TransferCursor,
    TaxPolicyVersion,
    Statements,
    ClosedAt,
    Actor,
}

#[derive(DeriveIden)]
enum Statements {
    Table,
    StatementId,
    CreatorId,
    Month,
    CloseId,
    OpeningBalance,
    Earnings,
    Restatements,
    Adjustments,
    Gross,
    Payout,
    IncomeTax,
    LocalTax,
    Net,
    ClosingBalance,
    CarriedReason,
    HoldReason,
    TaxPolicyVersion,
    Status,
    IssuedAt,
    PaidAt,
    PayoutReference,
    PaidBy,
}

#[derive(DeriveIden)]
enum CreatorHolds {
    Table,
    CreatorId,
    Reason,
    HeldSince,
    Actor,
}

#[async_trait::async_trait]
impl MigrationTrait for AddStatements {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Closes::Table)
                    .col(big_integer(Closes::CloseId).auto_increment().primary_key())
                    .col(date(Closes::Month).unique_key())
                    .col(big_integer(Closes::TransferCursor))
                    .col(integer(Closes::TaxPolicyVersion))
                    .col(big_integer(Closes::Statements))
                    .col(timestamp_with_time_zone(Closes::ClosedAt))
                    .col(string_len(Closes::Actor, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Statements::Table)
                    .col(
                        big_integer(Statements::StatementId)
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(big_integer(Statements::CreatorId))
                    .col(date(Statements::Month))
                    .col(big_integer(Statements::CloseId))
                    .col(big_integer(Statements::OpeningBalance))
                    .col(big_integer(Statements::Earnings))
                    .col(big_integer(Statements::Restatements))
                    .col(big_integer(Statements::Adjustments))
                    .col(big_integer(Statements::Gross))
                    .col(big_integer(Statements::Payout))
                    .col(big_integer(Statements::IncomeTax))
                    .col(big_integer(Statements::LocalTax))
                    .col(big_integer(Statements::Net))
                    .col(big_integer(Statements::ClosingBalance))
                    .col(string_len_null(Statements::CarriedReason, 32))
                    .col(text_null(Statements::HoldReason))
                    .col(integer(Statements::TaxPolicyVersion))
                    .col(string_len(Statements::Status, 16))
                    .col(timestamp_with_time_zone(Statements::IssuedAt))
                    .col(timestamp_with_time_zone_null(Statements::PaidAt))
                    .col(string_len_null(Statements::PayoutReference, 200))
                    .col(big_integer_null(Statements::PaidBy))
                    .to_owned(),
            )
            .await?;
        // A creator's statements by month (and one per month); a month's
        // statements by creator (the withholding report).
        manager
            .create_index(
                Index::create()
                    .name("statements_creator_month")
                    .table(Statements::Table)
                    .col(Statements::CreatorId)
                    .col(Statements::Month)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("statements_month_creator")
                    .table(Statements::Table)
                    .col(Statements::Month)
                    .col(Statements::CreatorId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CreatorHolds::Table)
                    .col(big_integer(CreatorHolds::CreatorId).primary_key())
                    .col(text(CreatorHolds::Reason))
                    .col(timestamp_with_time_zone(CreatorHolds::HeldSince))
                    .col(big_integer(CreatorHolds::Actor))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CreatorHolds::Table.into_iden(),
            Statements::Table.into_iden(),
            Closes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
