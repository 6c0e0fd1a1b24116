//! Reading the tax policies (SPEC §11.4) from the revenue database: the
//! policy in effect for a month is the newest whose `effective_from` is on
//! or before the month's first day.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};

use super::TaxPolicy;
use crate::entity::tax_policy;

/// Every tax policy, oldest first.
#[derive(Debug, Clone)]
pub struct TaxPolicies(Vec<TaxPolicy>);

impl TaxPolicies {
    /// Every policy in the database, each checked ([`TaxPolicy::validate`]).
    ///
    /// # Errors
    /// Database failures; a policy whose rate is not a decimal or that
    /// fails validation (named with its version and field).
    pub async fn load(db: &impl ConnectionTrait) -> anyhow::Result<Self> {
        let rows = tax_policy::Entity::find()
            .order_by_asc(tax_policy::Column::EffectiveFrom)
            .all(db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let rate = |field: &str, text: &str| {
                    text.parse::<Decimal>().map_err(|e| {
                        anyhow::anyhow!("tax policy {}: {field} {text:?}: {e}", row.version)
                    })
                };
                let policy = TaxPolicy {
                    version: row.version,
                    effective_from: row.effective_from,
                    income_tax_rate: rate("income_tax_rate", &row.income_tax_rate)?,
                    local_tax_rate: rate("local_tax_rate", &row.local_tax_rate)?,
                    truncate_to: row.truncate_to,
                    small_amount: row.small_amount,
                    minimum_payout: row.minimum_payout,
                };
                policy.validate().map_err(|field| {
                    anyhow::anyhow!("tax policy {}: {field} is out of range", row.version)
                })?;
                Ok(policy)
            })
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    /// The policy in effect for the month that starts on `month`.
    ///
    /// # Errors
    /// No policy is in effect yet.
    pub fn for_month(&self, month: NaiveDate) -> anyhow::Result<&TaxPolicy> {
        self.0
            .iter()
            .rev()
            .find(|p| p.effective_from <= month)
            .ok_or_else(|| anyhow::anyhow!("no tax policy in effect for {month}"))
    }
}
