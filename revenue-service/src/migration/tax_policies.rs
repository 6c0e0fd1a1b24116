//! `m20261201_000002_add_tax_policies`: the tax policy of SPEC §11.4 as
//! versioned, effective-dated records (like the rate card), seeded with
//! the first: 3 % income tax, 10 % of it as local income tax, both
//! truncated to 10 won, no income tax under 1,000 won, minimum payout
//! 10,000 won. Rates are exact decimals stored as text.

use sea_orm_migration::{prelude::*, schema::*};

use crate::statements::TaxPolicy;

/// See the module's documentation.
pub(super) struct AddTaxPolicies;

impl MigrationName for AddTaxPolicies {
    fn name(&self) -> &str {
        "m20261201_000002_add_tax_policies"
    }
}

#[derive(DeriveIden)]
enum TaxPolicies {
    Table,
    Version,
    EffectiveFrom,
    IncomeTaxRate,
    LocalTaxRate,
    TruncateTo,
    SmallAmount,
    MinimumPayout,
}

#[async_trait::async_trait]
impl MigrationTrait for AddTaxPolicies {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TaxPolicies::Table)
                    .col(integer(TaxPolicies::Version).primary_key())
                    .col(date(TaxPolicies::EffectiveFrom))
                    .col(string_len(TaxPolicies::IncomeTaxRate, 32))
                    .col(string_len(TaxPolicies::LocalTaxRate, 32))
                    .col(big_integer(TaxPolicies::TruncateTo))
                    .col(big_integer(TaxPolicies::SmallAmount))
                    .col(big_integer(TaxPolicies::MinimumPayout))
                    .to_owned(),
            )
            .await?;
        let policy = TaxPolicy::spec_v1();
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(TaxPolicies::Table)
                    .columns([
                        TaxPolicies::Version,
                        TaxPolicies::EffectiveFrom,
                        TaxPolicies::IncomeTaxRate,
                        TaxPolicies::LocalTaxRate,
                        TaxPolicies::TruncateTo,
                        TaxPolicies::SmallAmount,
                        TaxPolicies::MinimumPayout,
                    ])
                    .values_panic([
                        policy.version.into(),
                        chrono::NaiveDate::from_ymd_opt(1970, 1, 1).into(),
                        policy.income_tax_rate.to_string().into(),
                        policy.local_tax_rate.to_string().into(),
                        policy.truncate_to.into(),
                        policy.small_amount.into(),
                        policy.minimum_payout.into(),
                    ])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TaxPolicies::Table).to_owned())
            .await
    }
}
