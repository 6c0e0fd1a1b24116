//! The statement arithmetic of SPEC §11.4: what a creator is paid for a
//! month, the Korean withholding on it, and what carries over. Pure
//! functions over whole won; rates are exact decimals, never floats.

use common::domain::Won;
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Serialize};

/// A tax policy (SPEC §11.4): versioned and effective-dated like the rate
/// card; each statement records the version it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxPolicy {
    /// Recorded on each statement that used it.
    pub version: i32,
    /// The first month (its first day) it applies to.
    pub effective_from: chrono::NaiveDate,
    /// Income tax as a fraction of the payout (0.03).
    pub income_tax_rate: Decimal,
    /// Local income tax as a fraction of the income tax (0.10).
    pub local_tax_rate: Decimal,
    /// Both taxes are truncated to a multiple of this many won (10).
    pub truncate_to: i64,
    /// Income tax under this many won (after truncation) is not withheld
    /// (1,000: the small-amount rule, Income Tax Act art. 86).
    pub small_amount: i64,
    /// A gross under this many won is carried over, not paid (10,000).
    pub minimum_payout: i64,
}

impl TaxPolicy {
    /// The first policy, SPEC §11.4: 3 % income tax, 10 % of it as local
    /// income tax, both truncated to 10 won, no income tax under 1,000 won,
    /// minimum payout 10,000 won.
    pub fn spec_v1() -> Self {
        Self {
            version: 1,
            effective_from: chrono::NaiveDate::MIN,
            income_tax_rate: Decimal::new(3, 2),
            local_tax_rate: Decimal::new(10, 2),
            truncate_to: 10,
            small_amount: 1_000,
            minimum_payout: 10_000,
        }
    }

    /// Checks the policy is usable: rates in [0, 1], a positive truncation
    /// unit, thresholds ≥ 0.
    ///
    /// # Errors
    /// The first field that is not.
    pub fn validate(&self) -> Result<(), &'static str> {
        let fraction = |r: Decimal| r >= Decimal::ZERO && r <= Decimal::ONE;
        if !fraction(self.income_tax_rate) {
            return Err("income_tax_rate");
        }
        if !fraction(self.local_tax_rate) {
            return Err("local_tax_rate");
        }
        if self.truncate_to < 1 {
            return Err("truncate_to");
        }
        if self.small_amount < 0 {
            return Err("small_amount");
        }
        if self.minimum_payout < 1 {
            return Err("minimum_payout");
        }
        Ok(())
    }

    /// `rate` × `base`, truncated to a multiple of `truncate_to` won.
    fn truncated(&self, rate: Decimal, base: i64) -> Option<i64> {
        let exact = rate.checked_mul(Decimal::from(base))?.trunc().to_i64()?;
        Some(exact - exact.rem_euclid(self.truncate_to))
    }
}

/// Why a statement paid nothing (SPEC §11.4 `carried_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CarriedReason {
    /// `gross` is 0 or more but under the minimum payout.
    BelowMinimum,
    /// `gross` is under 0: the creator owes the platform.
    NegativeBalance,
    /// The creator is on hold.
    Hold,
}

/// What a statement starts from: the previous closing balance and the sums
/// of the creator's payable transfers on it, by kind (signed won, positive
/// owed to the creator).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatementInputs {
    pub opening_balance: Won,
    pub earnings: Won,
    pub restatements: Won,
    pub adjustments: Won,
    /// The creator is on hold.
    pub on_hold: bool,
}

/// A statement's amounts (SPEC §11.4), whole won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementAmounts {
    pub gross: Won,
    pub payout: Won,
    pub income_tax: Won,
    pub local_tax: Won,
    pub net: Won,
    pub closing_balance: Won,
    /// Set when nothing is paid.
    pub carried_reason: Option<CarriedReason>,
}

/// The amounts of a statement (SPEC §11.4): `gross = opening + earnings +
/// restatements + adjustments`; paid in full when `gross` reaches the
/// minimum payout and the creator is not on hold, with income tax = rate ×
/// payout truncated to `truncate_to` won (0 under `small_amount`) and local
/// tax = its rate × the income tax, truncated alike; otherwise carried
/// over whole. A negative gross is `negative_balance` even on hold; a hold
/// is named before `below_minimum`.
///
/// # Errors
/// `None` when a sum does not fit in 64 bits of won.
pub fn statement_amounts(policy: &TaxPolicy, inputs: StatementInputs) -> Option<StatementAmounts> {
    let gross = inputs
        .opening_balance
        .checked_add(inputs.earnings)?
        .checked_add(inputs.restatements)?
        .checked_add(inputs.adjustments)?;
    let carried = if gross.0 < 0 {
        Some(CarriedReason::NegativeBalance)
    } else if inputs.on_hold {
        Some(CarriedReason::Hold)
    } else if gross.0 < policy.minimum_payout {
        Some(CarriedReason::BelowMinimum)
    } else {
        None
    };
    if carried.is_some() {
        return Some(StatementAmounts {
            gross,
            payout: Won(0),
            income_tax: Won(0),
            local_tax: Won(0),
            net: Won(0),
            closing_balance: gross,
            carried_reason: carried,
        });
    }
    let payout = gross.0;
    let mut income_tax = policy.truncated(policy.income_tax_rate, payout)?;
    if income_tax < policy.small_amount {
        income_tax = 0;
    }
    let local_tax = policy.truncated(policy.local_tax_rate, income_tax)?;
    let net = payout.checked_sub(income_tax)?.checked_sub(local_tax)?;
    Some(StatementAmounts {
        gross,
        payout: Won(payout),
        income_tax: Won(income_tax),
        local_tax: Won(local_tax),
        net: Won(net),
        closing_balance: Won(0),
        carried_reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amounts(opening: i64, earnings: i64, on_hold: bool) -> StatementAmounts {
        statement_amounts(
            &TaxPolicy::spec_v1(),
            StatementInputs {
                opening_balance: Won(opening),
                earnings: Won(earnings),
                on_hold,
                ..StatementInputs::default()
            },
        )
        .expect("fits")
    }

    fn paid(gross: i64) -> (i64, i64, i64) {
        let a = amounts(0, gross, false);
        assert_eq!(a.payout.0, gross);
        assert_eq!(a.closing_balance.0, 0);
        assert_eq!(a.carried_reason, None);
        assert_eq!(a.net.0, gross - a.income_tax.0 - a.local_tax.0);
        (a.income_tax.0, a.local_tax.0, a.net.0)
    }

    #[test]
    fn the_readme_worked_example() {
        // README: 7,500 carried from September, 190,000 earned, +1,100
        // restated, −2,200 clawed back.
        let a = statement_amounts(
            &TaxPolicy::spec_v1(),
            StatementInputs {
                opening_balance: Won(7_500),
                earnings: Won(190_000),
                restatements: Won(1_100),
                adjustments: Won(-2_200),
                on_hold: false,
            },
        )
        .expect("fits");
        assert_eq!(
            (
                a.gross.0,
                a.payout.0,
                a.income_tax.0,
                a.local_tax.0,
                a.net.0
            ),
            (196_400, 196_400, 5_890, 580, 189_930)
        );
    }

    #[test]
    fn income_tax_of_exactly_1000_won_is_withheld_with_its_local_tax() {
        // 3 % of 33,334 = 1,000.02 → 1,000; local 100.
        assert_eq!(paid(33_334), (1_000, 100, 32_234));
        // 3 % of 33,340 = 1,000.2 → 1,000.
        assert_eq!(paid(33_340), (1_000, 100, 32_240));
    }

    #[test]
    fn income_tax_under_1000_won_after_truncation_is_not_withheld() {
        // 3 % of 33,333 = 999.99 → 990 → under 1,000 → 0.
        assert_eq!(paid(33_333), (0, 0, 33_333));
        // 3 % of 33,300 = 999 → 990 → 0.
        assert_eq!(paid(33_300), (0, 0, 33_300));
    }

    #[test]
    fn both_taxes_truncate_to_10_won() {
        // 3 % of 1,234,567 = 37,037.01 → 37,030; 10 % = 3,703 → 3,700.
        assert_eq!(paid(1_234_567), (37_030, 3_700, 1_193_837));
        // 3 % of 100,000 = 3,000; local 300.
        assert_eq!(paid(100_000), (3_000, 300, 96_700));
    }

    #[test]
    fn gross_exactly_at_the_minimum_is_paid_and_one_won_under_is_carried() {
        assert_eq!(paid(10_000), (0, 0, 10_000));
        let under = amounts(0, 9_999, false);
        assert_eq!(under.payout.0, 0);
        assert_eq!(under.net.0, 0);
        assert_eq!(under.closing_balance.0, 9_999);
        assert_eq!(under.carried_reason, Some(CarriedReason::BelowMinimum));
        // Carried over, it is paid with the next month's earnings.
        let next = amounts(under.closing_balance.0, 1, false);
        assert_eq!(next.gross.0, 10_000);
        assert_eq!(next.payout.0, 10_000);
    }

    #[test]
    fn a_negative_opening_balance_is_repaid_before_anything_is_paid() {
        let owing = amounts(-5_000, 12_000, false);
        assert_eq!(owing.gross.0, 7_000);
        assert_eq!(owing.carried_reason, Some(CarriedReason::BelowMinimum));
        let negative = amounts(-5_000, 1_000, false);
        assert_eq!(negative.gross.0, -4_000);
        assert_eq!(negative.closing_balance.0, -4_000);
        assert_eq!(
            negative.carried_reason,
            Some(CarriedReason::NegativeBalance)
        );
        // Negative is named even on hold.
        let held = amounts(-5_000, 1_000, true);
        assert_eq!(held.carried_reason, Some(CarriedReason::NegativeBalance));
        // Repaid, then paid.
        assert_eq!(amounts(-5_000, 45_000, false).payout.0, 40_000);
    }

    #[test]
    fn a_hold_carries_everything_and_its_release_pays_it_all() {
        let held = amounts(0, 50_000, true);
        assert_eq!(held.payout.0, 0);
        assert_eq!(held.closing_balance.0, 50_000);
        assert_eq!(held.carried_reason, Some(CarriedReason::Hold));
        // A hold is named before the minimum.
        assert_eq!(
            amounts(0, 5, true).carried_reason,
            Some(CarriedReason::Hold)
        );
        let released = amounts(held.closing_balance.0, 10_000, false);
        assert_eq!(released.payout.0, 60_000);
        assert_eq!(released.income_tax.0, 1_800);
        assert_eq!(released.local_tax.0, 180);
        assert_eq!(released.net.0, 58_020);
    }

    #[test]
    fn restatements_and_adjustments_count_into_gross() {
        let a = statement_amounts(
            &TaxPolicy::spec_v1(),
            StatementInputs {
                opening_balance: Won(100),
                earnings: Won(20_000),
                restatements: Won(-50),
                adjustments: Won(-1_000),
                on_hold: false,
            },
        )
        .unwrap();
        assert_eq!(a.gross.0, 19_050);
        assert_eq!(a.payout.0, 19_050);
    }

    #[test]
    fn sums_beyond_64_bits_are_refused_not_wrapped() {
        let a = statement_amounts(
            &TaxPolicy::spec_v1(),
            StatementInputs {
                opening_balance: Won(i64::MAX),
                earnings: Won(1),
                ..StatementInputs::default()
            },
        );
        assert_eq!(a, None);
        // The largest gross still computes its taxes exactly.
        let big = amounts(0, i64::MAX, false);
        assert_eq!(big.payout.0, i64::MAX);
        assert!(big.income_tax.0 > 0 && big.income_tax.0 % 10 == 0);
    }

    #[test]
    fn the_policy_is_validated() {
        assert_eq!(TaxPolicy::spec_v1().validate(), Ok(()));
        let mut p = TaxPolicy::spec_v1();
        p.income_tax_rate = Decimal::new(-1, 2);
        assert_eq!(p.validate(), Err("income_tax_rate"));
        let mut p = TaxPolicy::spec_v1();
        p.truncate_to = 0;
        assert_eq!(p.validate(), Err("truncate_to"));
    }

    /// SPEC §11.4 written again in plain integers, independently of the
    /// code under test: (payout, income tax, local tax, net, closing,
    /// carried reason).
    fn model(gross: i64, on_hold: bool) -> (i64, i64, i64, i64, i64, Option<CarriedReason>) {
        let carried = |reason| (0, 0, 0, 0, gross, Some(reason));
        if gross < 0 {
            return carried(CarriedReason::NegativeBalance);
        }
        if on_hold {
            return carried(CarriedReason::Hold);
        }
        if gross < 10_000 {
            return carried(CarriedReason::BelowMinimum);
        }
        // 3 % truncated to whole won, then to a multiple of 10 won.
        let mut income_tax = gross * 3 / 100 / 10 * 10;
        if income_tax < 1_000 {
            income_tax = 0;
        }
        let local_tax = income_tax / 10 / 10 * 10;
        (
            gross,
            income_tax,
            local_tax,
            gross - income_tax - local_tax,
            0,
            None,
        )
    }

    proptest::proptest! {
        #[test]
        fn statement_amounts_match_an_integer_model(
            opening in -5_000_000_i64..5_000_000,
            earnings in 0_i64..100_000_000_000,
            restatements in -1_000_000_i64..1_000_000,
            adjustments in -2_000_000_i64..=0,
            on_hold: bool,
        ) {
            let a = statement_amounts(
                &TaxPolicy::spec_v1(),
                StatementInputs {
                    opening_balance: Won(opening),
                    earnings: Won(earnings),
                    restatements: Won(restatements),
                    adjustments: Won(adjustments),
                    on_hold,
                },
            )
            .expect("fits");
            let gross = opening + earnings + restatements + adjustments;
            proptest::prop_assert_eq!(a.gross.0, gross);
            proptest::prop_assert_eq!(
                (a.payout.0, a.income_tax.0, a.local_tax.0, a.net.0, a.closing_balance.0, a.carried_reason),
                model(gross, on_hold)
            );
        }
    }
}
