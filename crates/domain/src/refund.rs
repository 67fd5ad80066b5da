//! Refund proportions (docs/api.md, "Refund rules").

/// What a receipt line bought, and what has been refunded of it so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineState {
    /// Quantity bought, in base units (units or thousandths).
    pub quantity_base: i64,
    /// Quantity already refunded, in base units.
    pub refunded_base: i64,
    pub payable_minor: i64,
    pub points_redeemed: i64,
    pub points_earned: i64,
}

/// What refunding `k` more base units of a line takes back. Each is the difference of
/// the cumulative floor(x · k_total / q) before and after this refund, so refunding
/// everything returns exactly everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineRefund {
    pub refund_minor: i64,
    pub points_returned: i64,
    pub points_reversed: i64,
}

/// Precondition: 0 < k ≤ quantity_base − refunded_base (the caller reports
/// refund_exceeds_purchase otherwise).
pub fn refund_line(state: &LineState, k: i64) -> LineRefund {
    let q = i128::from(state.quantity_base);
    debug_assert!(k > 0 && k <= state.quantity_base - state.refunded_base, "refund within the purchase");
    if q <= 0 {
        return LineRefund::default();
    }
    // Clamped so that a broken precondition can never take back more than the line took.
    let before = i128::from(state.refunded_base).clamp(0, q);
    let after = (before + i128::from(k).max(0)).min(q);
    let taken = |x: i64| {
        let x = i128::from(x);
        (x * after / q - x * before / q) as i64
    };
    LineRefund {
        refund_minor: taken(state.payable_minor),
        points_returned: taken(state.points_redeemed),
        points_reversed: taken(state.points_earned),
    }
}

/// The shortfall step: `shortfall_points` could not be taken back. Withheld money =
/// min(shortfall × point_value, Σ line money), spread over the refunded lines by weights
/// = their refund money, caps = their refund money. Returns (withheld per line,
/// debt_added) where debt_added = floor((shortfall × value − withheld) / value).
pub fn withhold(shortfall_points: i64, point_value_minor: i64, line_refund_minor: &[i64]) -> (Vec<i64>, i64) {
    let value = i128::from(point_value_minor);
    if shortfall_points <= 0 || value <= 0 {
        return (vec![0; line_refund_minor.len()], 0);
    }
    let owed = i128::from(shortfall_points) * value;
    let money: Vec<i128> = line_refund_minor.iter().map(|&m| i128::from(m).max(0)).collect();
    let withheld_total = owed.min(money.iter().sum());
    let withheld = crate::money::spread(withheld_total, &money, Some(&money));
    let debt_added = (owed - withheld_total) / value;
    (withheld.into_iter().map(|w| w as i64).collect(), debt_added as i64)
}
