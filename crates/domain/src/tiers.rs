//! Tier qualification by rolling spend.

use crate::program::Tier;

/// The tier with the greatest `min_spend_minor` that does not exceed `spend_minor`, or
/// None when no tier qualifies. `tiers` may be in any order.
pub fn tier_for_spend(tiers: &[Tier], spend_minor: i64) -> Option<&Tier> {
    tiers.iter().filter(|t| t.min_spend_minor <= spend_minor).max_by_key(|t| t.min_spend_minor)
}

/// The next tier above the current spend and how much more spend reaches it, if any.
pub fn next_tier(tiers: &[Tier], spend_minor: i64) -> Option<(&Tier, i64)> {
    tiers
        .iter()
        .filter(|t| t.min_spend_minor > spend_minor)
        .min_by_key(|t| t.min_spend_minor)
        .map(|t| (t, t.min_spend_minor.saturating_sub(spend_minor)))
}
