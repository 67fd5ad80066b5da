//! The worked example R-000123 and its refund RF-1 (docs/api.md), figure by figure.

mod common;

use common::*;
use kopilka_domain::program::{Program, default_tiers};
use kopilka_domain::quantity::Quantity;
use kopilka_domain::receipt::{FiscalSplit, RedeemRequest, calculate};
use kopilka_domain::refund::{LineRefund, LineState, refund_line};

#[test]
fn r000123_matches_the_api_reference() {
    let program = Program::default();
    let tiers = default_tiers();
    let bronze = &tiers[0];
    assert_eq!((bronze.code.as_str(), bronze.earn_multiplier_bp), ("bronze", 10000));
    let lines = worked_example_lines();
    let calc = calculate(&input(&program, Some(bronze), &lines, RedeemRequest::Points(150), 1000)).unwrap();

    assert_eq!(calc.total_minor, 263058);
    assert_eq!(calc.discount_minor, 0);
    assert_eq!(calc.points_redeemed, 150);
    assert_eq!(calc.redeemed_minor, 15000);
    assert_eq!(calc.payable_minor, 248058);
    assert_eq!(calc.points_earned, 248);
    assert_eq!(calc.redeem_limit, 1190);

    let got: Vec<_> = calc
        .lines
        .iter()
        .map(|l| (l.line_no, l.total_minor, l.discount_minor, l.redeemed_minor, l.points_redeemed, l.payable_minor, l.points_earned))
        .collect();
    assert_eq!(got, vec![(1, 30000, 0, 1890, 18, 28110, 29), (2, 208058, 0, 13110, 132, 194948, 195), (3, 25000, 0, 0, 0, 25000, 24),]);
    assert_eq!(calc.lines[0].fiscal_splits, vec![FiscalSplit::Units { quantity: 2, unit_price_minor: 14055 }]);
    assert_eq!(calc.lines[1].fiscal_splits, vec![FiscalSplit::Measured { quantity: Quantity::Milli(35270), total_minor: 194948 }]);
    assert_eq!(calc.lines[2].fiscal_splits, vec![FiscalSplit::Units { quantity: 1, unit_price_minor: 25000 }]);
    assert_eq!(calc.lines[0].quantity.to_json(), serde_json::json!(2));
    assert_eq!(calc.lines[1].quantity.to_json(), serde_json::json!("35.27"));
    assert!(!calc.lines[2].discountable && calc.lines[2].earning);

    // The answer's JSON shapes for the splits.
    let splits: Vec<_> = calc.lines.iter().map(|l| serde_json::to_value(&l.fiscal_splits).unwrap()).collect();
    assert_eq!(
        splits,
        vec![
            serde_json::json!([{"quantity": 2, "unit_price_minor": 14055}]),
            serde_json::json!([{"quantity": "35.27", "total_minor": 194948}]),
            serde_json::json!([{"quantity": 1, "unit_price_minor": 25000}]),
        ]
    );
}

#[test]
fn r000123_refund_of_one_cd_matches_the_api_reference() {
    let program = Program::default();
    let tiers = default_tiers();
    let lines = worked_example_lines();
    let calc = calculate(&input(&program, Some(&tiers[0]), &lines, RedeemRequest::Points(150), 1000)).unwrap();
    let cd = &calc.lines[0];
    let state = LineState {
        quantity_base: cd.quantity.base(),
        refunded_base: 0,
        payable_minor: cd.payable_minor,
        points_redeemed: cd.points_redeemed,
        points_earned: cd.points_earned,
    };
    assert_eq!(refund_line(&state, 1), LineRefund { refund_minor: 14055, points_returned: 9, points_reversed: 14 });
    // The second CD takes the rest: 14055, 9 and 15.
    let rest = refund_line(&LineState { refunded_base: 1, ..state }, 1);
    assert_eq!(rest, LineRefund { refund_minor: 14055, points_returned: 9, points_reversed: 15 });
}
