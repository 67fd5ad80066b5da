//! Programme templates: documented presets of the programme configuration
//! (docs/templates.md explains each).

use kopilka_domain::program::Program;
use serde_json::json;

pub const NAMES: &[&str] = &["retail", "discount", "cafe", "fuel", "travel", "entertainment"];

/// The programme configuration of a template, or None for an unknown name.
pub fn template(name: &str) -> Option<Program> {
    let v = match name {
        // Points for purchases: the programme's defaults (docs/api.md, "Configuration and defaults").
        "retail" => json!({}),
        // Cumulative discount card: no points; the discount grows with rolling spend.
        "discount" => json!({
            "earn": {"points_per_unit": 0, "unit_minor": 1000, "rounding": "floor"},
            "redeem": {"max_share_bp": 0},
            "tiers": [
                {"code": "d3", "name": "3 %", "min_spend_minor": 0, "discount_bp": 300},
                {"code": "d5", "name": "5 %", "min_spend_minor": 1500000, "discount_bp": 500},
                {"code": "d7", "name": "7 %", "min_spend_minor": 5000000, "discount_bp": 700},
                {"code": "d10", "name": "10 %", "min_spend_minor": 15000000, "discount_bp": 1000}
            ]
        }),
        // Cafe: generous points on small receipts, short expiry; the stamp card comes with
        // the campaign engine.
        "cafe" => json!({
            "earn": {"points_per_unit": 1, "unit_minor": 1000, "rounding": "half_up"},
            "redeem": {"max_share_bp": 10000},
            "expiry": {"policy": "rolling_days", "days": 90},
            "tier_window_days": 90,
            "tiers": [
                {"code": "guest", "name": "Guest", "min_spend_minor": 0},
                {"code": "regular", "name": "Regular", "min_spend_minor": 300000, "earn_multiplier_bp": 15000},
                {"code": "friend", "name": "Friend", "min_spend_minor": 1000000, "earn_multiplier_bp": 20000}
            ]
        }),
        // Petrol station: 1 point per 20 RUB, points pay up to 100 % of shop goods, fuel
        // cards are often corporate so a month's pending period guards against returns.
        "fuel" => json!({
            "earn": {"points_per_unit": 1, "unit_minor": 2000, "rounding": "floor"},
            "redeem": {"max_share_bp": 10000},
            "no_discount_categories": ["tobacco", "alcohol"],
            "expiry": {"policy": "end_of_period", "period": "year", "periods": 1},
            "tiers": [
                {"code": "standard", "name": "Standard", "min_spend_minor": 0},
                {"code": "silver", "name": "Silver", "min_spend_minor": 2000000, "earn_multiplier_bp": 12000},
                {"code": "gold", "name": "Gold", "min_spend_minor": 6000000, "earn_multiplier_bp": 15000}
            ]
        }),
        // Travel: miles on every 100 RUB, a long pending period (cancellations) and
        // two-year expiry.
        "travel" => json!({
            "earn": {"points_per_unit": 1, "unit_minor": 10000, "rounding": "floor"},
            "redeem": {"point_value_minor": 100, "max_share_bp": 10000},
            "pending_days": 14,
            "expiry": {"policy": "rolling_days", "days": 730},
            "offline_max_age_days": 90,
            "tiers": [
                {"code": "blue", "name": "Blue", "min_spend_minor": 0},
                {"code": "silver", "name": "Silver", "min_spend_minor": 15000000, "earn_multiplier_bp": 15000},
                {"code": "gold", "name": "Gold", "min_spend_minor": 40000000, "earn_multiplier_bp": 20000},
                {"code": "platinum", "name": "Platinum", "min_spend_minor": 80000000, "earn_multiplier_bp": 30000}
            ]
        }),
        // Entertainment (cinemas, parks): points expire at the end of the next month,
        // spendable on up to 30 % of a ticket.
        "entertainment" => json!({
            "earn": {"points_per_unit": 5, "unit_minor": 10000, "rounding": "floor"},
            "redeem": {"max_share_bp": 3000},
            "no_discount_categories": ["tobacco", "alcohol"],
            "expiry": {"policy": "end_of_period", "period": "month", "periods": 2},
            "tiers": [
                {"code": "fan", "name": "Fan", "min_spend_minor": 0},
                {"code": "vip", "name": "VIP", "min_spend_minor": 3000000, "earn_multiplier_bp": 20000, "discount_bp": 500}
            ]
        }),
        _ => return None,
    };
    let program: Program = serde_json::from_value(v).expect("templates are valid programmes");
    Some(program.normalize().expect("templates pass validation"))
}
