//! Builders shared by the integration tests.
#![allow(dead_code)]

use kopilka_domain::program::{Program, Tier};
use kopilka_domain::quantity::Quantity;
use kopilka_domain::receipt::{CalcInput, LineInput, RedeemRequest};

/// A counted line: `q` units at `price` each.
pub fn units(line_no: i64, category: &str, q: i64, price: i64) -> LineInput {
    LineInput {
        line_no,
        sku: Some(format!("SKU-{line_no}")),
        name: None,
        category: Some(category.to_string()).filter(|c| !c.is_empty()),
        quantity: Quantity::Units(q),
        unit_price_minor: Some(price),
        total_minor: None,
        discount: true,
        earn: true,
    }
}

/// A measured line in thousandths with an optional till total.
pub fn measured(line_no: i64, category: &str, milli: i64, price: Option<i64>, total: Option<i64>) -> LineInput {
    LineInput { quantity: Quantity::Milli(milli), unit_price_minor: price, total_minor: total, ..units(line_no, category, 1, 0) }
}

/// The lines of R-000123 (docs/api.md, "Worked example: receipt R-000123").
pub fn worked_example_lines() -> Vec<LineInput> {
    vec![
        LineInput { sku: Some("CD-1".into()), name: Some("Album".into()), ..units(1, "music", 2, 15000) },
        LineInput { sku: Some("FUEL95".into()), ..measured(2, "fuel", 35270, Some(5899), Some(208058)) },
        LineInput { sku: Some("CIG".into()), ..units(3, "tobacco", 1, 25000) },
    ]
}

pub fn tier(code: &str, min_spend_minor: i64, earn_multiplier_bp: i64, discount_bp: i64) -> Tier {
    Tier { code: code.into(), name: code.into(), min_spend_minor, earn_multiplier_bp, discount_bp }
}

pub fn input<'a>(
    program: &'a Program,
    tier: Option<&'a Tier>,
    lines: &'a [LineInput],
    redeem: RedeemRequest,
    available_points: i64,
) -> CalcInput<'a> {
    CalcInput { program, tier, lines, redeem, available_points, plan: &[], wallet: RedeemRequest::None, wallet_available: 0 }
}
