//! The money of SPEC §6: tiered prices over a video's cumulative counts,
//! computed exactly in decimal and truncated to whole won. Pure functions;
//! no floating point anywhere.

use common::domain::Won;
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Serialize};

/// One tier: counts after `after` (exclusive, cumulative over the video's
/// life) are priced at `price` won each, up to the next tier's `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    /// The tier starts with count number `after + 1`.
    pub after: i64,
    /// Won per count, exact.
    pub price: Decimal,
}

/// A rate card (SPEC §6): a version, the day it takes effect, and the tiers
/// for views and for ad views, each ascending by `after` from 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateCard {
    /// Recorded on each settlement that used it.
    pub version: i32,
    /// First platform day it applies to.
    pub effective_from: chrono::NaiveDate,
    /// Prices of views.
    pub video_tiers: Vec<Tier>,
    /// Prices of ad views.
    pub ad_tiers: Vec<Tier>,
}

impl RateCard {
    /// The first card, SPEC §6: views 1 / 1.1 / 1.3 / 1.5 won and ad views
    /// 10 / 12 / 15 / 20 won, at 100,000 / 500,000 / 1,000,000.
    pub fn spec_v1() -> Self {
        let tiers = |prices: [Decimal; 4]| {
            [0, 100_000, 500_000, 1_000_000]
                .into_iter()
                .zip(prices)
                .map(|(after, price)| Tier { after, price })
                .collect()
        };
        Self {
            version: 1,
            effective_from: chrono::NaiveDate::MIN,
            video_tiers: tiers([
                Decimal::new(10, 1),
                Decimal::new(11, 1),
                Decimal::new(13, 1),
                Decimal::new(15, 1),
            ]),
            ad_tiers: tiers([
                Decimal::from(10),
                Decimal::from(12),
                Decimal::from(15),
                Decimal::from(20),
            ]),
        }
    }
}

/// The exact (untruncated) price of counts `before + 1 ..= before + count`
/// under `tiers`: each count at the tier of the cumulative count before it.
/// `None` when the counts or the price do not fit (SPEC §8: checked money
/// arithmetic; never a wrapped or saturated amount).
pub fn exact_amount(tiers: &[Tier], before: i64, count: i64) -> Option<Decimal> {
    let (before, count) = (before.max(0), count.max(0));
    let end = before.checked_add(count)?;
    let mut total = Decimal::ZERO;
    for (i, tier) in tiers.iter().enumerate() {
        let upper = tiers.get(i + 1).map_or(i64::MAX, |next| next.after);
        let overlap = end.min(upper) - before.max(tier.after);
        if overlap > 0 {
            total = total.checked_add(Decimal::from(overlap).checked_mul(tier.price)?)?;
        }
    }
    Some(total)
}

/// [`exact_amount`] truncated to whole won (SPEC §6); `None` when it does
/// not fit in `i64` won.
pub fn amount(tiers: &[Tier], before: i64, count: i64) -> Option<Won> {
    exact_amount(tiers, before, count)?
        .trunc()
        .to_i64()
        .map(Won)
}

/// A video's money for one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayAmounts {
    /// Views, truncated won.
    pub video_amount: Won,
    /// Ad views, truncated won.
    pub ad_amount: Won,
}

impl DayAmounts {
    /// `video_amount + ad_amount`; `None` when it overflows.
    pub fn total(&self) -> Option<Won> {
        self.video_amount.checked_add(self.ad_amount)
    }
}

/// The amounts of a day's `views` and `ad_views` after the cumulative
/// counts before the day, under `card`; `None` when an amount or their total
/// does not fit in `i64` won.
pub fn day_amounts(
    card: &RateCard,
    views_before: i64,
    views: i64,
    ad_views_before: i64,
    ad_views: i64,
) -> Option<DayAmounts> {
    let amounts = DayAmounts {
        video_amount: amount(&card.video_tiers, views_before, views)?,
        ad_amount: amount(&card.ad_tiers, ad_views_before, ad_views)?,
    };
    amounts.total().map(|_| amounts)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn views(before: i64, count: i64) -> i64 {
        amount(&RateCard::spec_v1().video_tiers, before, count).map_or(-1, |w| w.0)
    }

    fn ads(before: i64, count: i64) -> i64 {
        amount(&RateCard::spec_v1().ad_tiers, before, count).map_or(-1, |w| w.0)
    }

    #[test]
    fn amounts_that_do_not_fit_are_refused_not_wrapped() {
        let card = RateCard::spec_v1();
        // i64::MAX views at 1.5 won is past i64::MAX won.
        assert_eq!(amount(&card.video_tiers, 0, i64::MAX), None);
        assert_eq!(amount(&card.video_tiers, i64::MAX, 1), None);
        assert!(day_amounts(&card, 0, i64::MAX, 0, 0).is_none());
        // Each amount fits, their sum does not.
        let big = DayAmounts {
            video_amount: Won(i64::MAX),
            ad_amount: Won(1),
        };
        assert_eq!(big.total(), None);
        // The import's largest count (10^12 a field) still prices.
        assert_eq!(
            day_amounts(&card, 0, 1_000_000_000_000, 0, 1_000_000_000_000).map(|a| a.total()),
            Some(Some(Won(1_499_999_690_000 + 19_999_993_300_000)))
        );
    }

    #[test]
    fn spec_worked_example() {
        // 550,000 before, 600,000 on D: 450,000 × 1.3 + 150,000 × 1.5.
        assert_eq!(views(550_000, 600_000), 810_000);
    }

    #[test]
    fn a_day_across_all_four_tiers() {
        // 0 → 1,200,000: 100,000×1 + 400,000×1.1 + 500,000×1.3 + 200,000×1.5.
        assert_eq!(views(0, 1_200_000), 100_000 + 440_000 + 650_000 + 300_000);
        assert_eq!(
            ads(0, 1_200_000),
            1_000_000 + 4_800_000 + 7_500_000 + 4_000_000
        );
    }

    #[test]
    fn boundaries_and_one_past() {
        assert_eq!(views(0, 100_000), 100_000);
        assert_eq!(views(0, 100_001), 100_001); // 100,000 + 1.1 → truncated
        assert_eq!(views(0, 100_010), 100_011);
        assert_eq!(views(0, 500_000), 540_000);
        assert_eq!(views(0, 500_001), 540_001); // + 1.3 → 540,001.3
        assert_eq!(views(0, 1_000_000), 1_190_000);
        assert_eq!(views(0, 1_000_001), 1_190_001); // + 1.5 → 1,190,001.5
        assert_eq!(views(100_000, 1), 1); // 1.1 truncated
        assert_eq!(views(99_999, 2), 2); // 1 + 1.1
        assert_eq!(views(500_000, 1), 1); // 1.3
        assert_eq!(views(1_000_000, 2), 3);
        assert_eq!(ads(0, 100_000), 1_000_000);
        assert_eq!(ads(0, 100_001), 1_000_012);
        assert_eq!(ads(0, 500_000), 5_800_000);
        assert_eq!(ads(0, 500_001), 5_800_015);
        assert_eq!(ads(0, 1_000_000), 13_300_000);
        assert_eq!(ads(0, 1_000_001), 13_300_020);
        assert_eq!(views(0, 0), 0);
    }

    #[test]
    fn exact_amounts_keep_the_fraction_until_truncation() {
        let tiers = RateCard::spec_v1().video_tiers;
        assert_eq!(exact_amount(&tiers, 100_000, 3), Some(Decimal::new(33, 1)));
        assert_eq!(amount(&tiers, 100_000, 3), Some(Won(3)));
    }

    proptest! {
        /// Splitting a day's views over two days changes the summed amount
        /// by at most the truncation (less than 1 won per day).
        #[test]
        fn splitting_a_day_loses_at_most_the_truncation(
            before in 0_i64..2_000_000,
            count in 0_i64..2_000_000,
            split in 0_i64..=1_000,
        ) {
            let first = count * split / 1_000;
            let whole = views(before, count);
            let parts = views(before, first) + views(before + first, count - first);
            prop_assert!(whole - parts >= 0 && whole - parts <= 1, "{whole} vs {parts}");
            let tiers = RateCard::spec_v1().video_tiers;
            let sum = exact_amount(&tiers, before, first)
                .zip(exact_amount(&tiers, before + first, count - first))
                .map(|(a, b)| a + b);
            prop_assert_eq!(exact_amount(&tiers, before, count), sum);
        }
    }
}
