//! The rewards catalogue's rules: whether a member may redeem a reward now, and if not,
//! why, in words a cashier can read. Pure: the caller gathers the facts (the time, the
//! member's tier and available points, how many of the reward the member already holds,
//! how many units are left) inside its transaction and asks.

/// The facts of a reward that decide who may redeem it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub points_price: i64,
    /// Active and not archived.
    pub active: bool,
    /// Inclusive.
    pub valid_from: Option<i64>,
    /// Exclusive.
    pub valid_to: Option<i64>,
    /// Tier codes allowed; empty allows every member, tier or not.
    pub tiers: Vec<String>,
    /// Units left; None is unlimited.
    pub stock_left: Option<i64>,
    /// Redemptions per member (issued or fulfilled); None is unlimited.
    pub per_member_limit: Option<i64>,
}

/// The member's side of the question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder<'a> {
    pub tier: Option<&'a str>,
    /// Points free to spend (balance less held points less the programme's minimum).
    pub available: i64,
    /// This member's redemptions of this reward that are issued or fulfilled.
    pub redeemed: i64,
}

/// Why a reward cannot be redeemed now. The order of the variants is the order in which
/// they are checked: the reward itself first, then who may have it, then how many are
/// left, then the member's own count, and the member's points last (the one reason the
/// member can fix by shopping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhyNot {
    /// Not active, or archived.
    Inactive,
    NotYetAvailable {
        from: i64,
    },
    Ended {
        at: i64,
    },
    TierNotEligible {
        tiers: Vec<String>,
    },
    OutOfStock,
    LimitReached {
        limit: i64,
    },
    InsufficientPoints {
        needed: i64,
        available: i64,
    },
}

impl WhyNot {
    /// The stable machine code, the same as the 422 answer's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            WhyNot::Inactive | WhyNot::NotYetAvailable { .. } | WhyNot::Ended { .. } => "reward_unavailable",
            WhyNot::TierNotEligible { .. } => "tier_not_eligible",
            WhyNot::OutOfStock => "out_of_stock",
            WhyNot::LimitReached { .. } => "reward_limit_reached",
            WhyNot::InsufficientPoints { .. } => "insufficient_points",
        }
    }

    /// A short reason a cashier can read out. `date` formats a time for the reader.
    pub fn reason(&self, date: impl Fn(i64) -> String) -> String {
        match self {
            WhyNot::Inactive => "not available".into(),
            WhyNot::NotYetAvailable { from } => format!("not yet available (from {})", date(*from)),
            WhyNot::Ended { at } => format!("ended ({})", date(*at)),
            WhyNot::TierNotEligible { tiers } => format!("{} tier only", join_or(tiers)),
            WhyNot::OutOfStock => "out of stock".into(),
            WhyNot::LimitReached { limit } => {
                format!("limit reached ({limit} per member)")
            }
            WhyNot::InsufficientPoints { needed, available } => {
                let n = needed - available;
                format!("needs {n} more {}", crate::plural::pick(crate::program::Lang::En, n.into(), ["point", "points", "points"]))
            }
        }
    }
}

/// "gold", "silver or gold", "bronze, silver or gold".
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The first reason, in check order, that the holder may not redeem the reward at `now`;
/// None when it may.
pub fn why_not(terms: &Terms, holder: &Holder<'_>, now: i64) -> Option<WhyNot> {
    if !terms.active {
        return Some(WhyNot::Inactive);
    }
    if let Some(from) = terms.valid_from
        && now < from
    {
        return Some(WhyNot::NotYetAvailable { from });
    }
    if let Some(to) = terms.valid_to
        && now >= to
    {
        return Some(WhyNot::Ended { at: to });
    }
    if !terms.tiers.is_empty() && !holder.tier.is_some_and(|t| terms.tiers.iter().any(|x| x == t)) {
        return Some(WhyNot::TierNotEligible { tiers: terms.tiers.clone() });
    }
    if terms.stock_left.is_some_and(|n| n <= 0) {
        return Some(WhyNot::OutOfStock);
    }
    if let Some(limit) = terms.per_member_limit
        && holder.redeemed >= limit
    {
        return Some(WhyNot::LimitReached { limit });
    }
    if holder.available < terms.points_price {
        return Some(WhyNot::InsufficientPoints { needed: terms.points_price, available: holder.available.max(0) });
    }
    None
}

/// The reward kinds the catalogue knows.
pub const KINDS: &[&str] = &["gift", "discount", "voucher", "gift_certificate", "coupon"];

/// The alphabet of redemption codes: digits and capitals without 0, 1, I and O, which
/// are easily misread. 32 symbols, so each is 5 random bits.
pub const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// 12 symbols: 60 random bits.
pub const CODE_LEN: usize = 12;

/// A redemption code from random bytes (the caller supplies them from a CSPRNG). Each
/// byte gives one symbol; 32 divides 256, so every symbol is equally likely.
pub fn code_from_bytes(bytes: &[u8; CODE_LEN]) -> String {
    bytes.iter().map(|b| CODE_ALPHABET[(*b as usize) % CODE_ALPHABET.len()] as char).collect()
}

/// A code as a person may type it: case, spaces and hyphens do not matter.
pub fn normalize_code(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_uppercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Terms {
        Terms {
            points_price: 500,
            active: true,
            valid_from: Some(100),
            valid_to: Some(200),
            tiers: vec!["gold".into()],
            stock_left: Some(3),
            per_member_limit: Some(1),
        }
    }

    fn holder(tier: Option<&str>, available: i64, redeemed: i64) -> Holder<'_> {
        Holder { tier, available, redeemed }
    }

    fn check(t: Terms, h: Holder<'_>, now: i64, expected: Option<(&str, &str)>) {
        let got = why_not(&t, &h, now).map(|w| (w.code(), w.reason(|t| t.to_string())));
        assert_eq!(got.as_ref().map(|(c, r)| (*c, r.as_str())), expected, "{t:?} {h:?} at {now}");
    }

    #[test]
    fn reasons_in_check_order() {
        let gold = holder(Some("gold"), 500, 0);
        check(terms(), gold.clone(), 150, None);
        check(Terms { active: false, ..terms() }, gold.clone(), 150, Some(("reward_unavailable", "not available")));
        check(terms(), gold.clone(), 99, Some(("reward_unavailable", "not yet available (from 100)")));
        check(terms(), gold.clone(), 100, None);
        check(terms(), gold.clone(), 200, Some(("reward_unavailable", "ended (200)")));
        check(terms(), holder(Some("silver"), 500, 0), 150, Some(("tier_not_eligible", "gold tier only")));
        check(terms(), holder(None, 500, 0), 150, Some(("tier_not_eligible", "gold tier only")));
        check(Terms { stock_left: Some(0), ..terms() }, gold.clone(), 150, Some(("out_of_stock", "out of stock")));
        check(terms(), holder(Some("gold"), 500, 1), 150, Some(("reward_limit_reached", "limit reached (1 per member)")));
        check(terms(), holder(Some("gold"), 150, 0), 150, Some(("insufficient_points", "needs 350 more points")));
        // Everything wrong at once: the first in check order wins.
        check(
            Terms { stock_left: Some(0), ..terms() },
            holder(None, 0, 5),
            99,
            Some(("reward_unavailable", "not yet available (from 100)")),
        );
    }

    #[test]
    fn open_terms_let_anyone_with_the_points_in() {
        let open = Terms {
            points_price: 1,
            active: true,
            valid_from: None,
            valid_to: None,
            tiers: vec![],
            stock_left: None,
            per_member_limit: None,
        };
        check(open.clone(), holder(None, 1, 1_000_000), 0, None);
        check(open, holder(None, 0, 0), 0, Some(("insufficient_points", "needs 1 more point")));
    }

    #[test]
    fn several_tiers_read_naturally() {
        let t = Terms { tiers: vec!["silver".into(), "gold".into(), "platinum".into()], ..terms() };
        check(t, holder(Some("bronze"), 500, 0), 150, Some(("tier_not_eligible", "silver, gold or platinum tier only")));
    }

    #[test]
    fn codes_use_the_unambiguous_alphabet() {
        let all: [u8; CODE_LEN] = std::array::from_fn(|i| (i * 23) as u8);
        let code = code_from_bytes(&all);
        assert_eq!(code.len(), CODE_LEN);
        assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        assert!(!code.contains(['0', '1', 'I', 'O']));
        assert_eq!(normalize_code(" abcd-efgh 2345 "), "ABCDEFGH2345");
    }
}
