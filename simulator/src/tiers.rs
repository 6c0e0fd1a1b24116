//! The simulator's own rate card (SPEC §6): what a day's views and ad views
//! earn, given how many the video had before the day. Prices are integer
//! tenths of a won, so the sums are exact; amounts are truncated to whole
//! won. Re-exported from [`crate::rules`].

/// One tier of a rate card: counts up to `up_to` (cumulative, inclusive;
/// `None` = no limit) earn `tenths` tenths of a won each.
struct Tier {
    up_to: Option<i64>,
    tenths: i64,
}

/// A tier: counts up to `up_to` (`None` = no limit) at `tenths` tenths of a
/// won each.
const fn tier(up_to: Option<i64>, tenths: i64) -> Tier {
    Tier { up_to, tenths }
}

/// Views (SPEC §6): 1, 1.1, 1.3 and 1.5 won.
const VIEW_TIERS: [Tier; 4] = [
    tier(Some(100_000), 10),
    tier(Some(500_000), 11),
    tier(Some(1_000_000), 13),
    tier(None, 15),
];

/// Ad views (SPEC §6): 10, 12, 15 and 20 won.
const AD_TIERS: [Tier; 4] = [
    tier(Some(100_000), 100),
    tier(Some(500_000), 120),
    tier(Some(1_000_000), 150),
    tier(None, 200),
];

/// The amount, in whole won (truncated), of `count` events after `before`
/// earlier ones, each priced at the tier of its own ordinal.
fn tiered(tiers: &[Tier], before: i64, count: i64) -> i64 {
    let mut tenths = 0;
    let mut floor = 0;
    for tier in tiers {
        let ceiling = tier.up_to.unwrap_or(i64::MAX);
        // Ordinals before+1 ..= before+count that fall in (floor, ceiling].
        let from = (before + 1).max(floor + 1);
        let to = (before + count).min(ceiling);
        if to >= from {
            tenths += (to - from + 1) * tier.tenths;
        }
        floor = ceiling;
    }
    tenths / 10
}

/// SPEC §6 video amount in won: views of a day after `before` views.
pub fn video_amount(before: i64, views: i64) -> i64 {
    tiered(&VIEW_TIERS, before, views)
}

/// SPEC §6 ad amount in won: ad views of a day after `before` ad views.
pub fn ad_amount(before: i64, ad_views: i64) -> i64 {
    tiered(&AD_TIERS, before, ad_views)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_example_and_the_tier_edges() {
        // SPEC §6: 550,000 before, 600,000 on the day.
        assert_eq!(video_amount(550_000, 600_000), 810_000);
        assert_eq!(video_amount(0, 100_000), 100_000);
        assert_eq!(video_amount(99_999, 2), 2); // 1 + 1.1, truncated
        assert_eq!(video_amount(99_990, 20), 21); // 10 + 11
        assert_eq!(ad_amount(99_999, 2), 22);
        assert_eq!(ad_amount(999_999, 2), 35);
    }
}
