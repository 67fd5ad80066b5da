//! Table tests for the receipt calculation: totals, discounts, limits, spending, earning,
//! fiscal splits.

mod common;

use common::*;
use kopilka_domain::program::{Earn, Program, Rounding};
use kopilka_domain::quantity::Quantity;
use kopilka_domain::receipt::{CalcError, FiscalSplit, LineInput, RedeemRequest, calculate, fiscal_splits, line_total, round_div};

#[test]
fn line_totals_round_half_up() {
    fn check(line: LineInput, expected: i64) {
        assert_eq!(line_total(&line), Ok(expected), "{line:?}");
    }
    check(units(1, "", 2, 15000), 30000);
    check(units(1, "", 1, 0), 0);
    // 35.270 × 5899 = 208057.73 → 208058.
    check(measured(1, "", 35270, Some(5899), None), 208058);
    // 1.500 × 3333 = 4999.5 → 5000 (half up).
    check(measured(1, "", 1500, Some(3333), None), 5000);
    check(measured(1, "", 1, Some(499), None), 0);
    check(measured(1, "", 1, Some(500), None), 1);
    // The till's total is authoritative.
    check(measured(1, "", 35270, Some(5899), Some(208000)), 208000);
    check(measured(1, "", 35270, None, Some(7)), 7);
    check(LineInput { total_minor: Some(99), ..units(1, "", 3, 100) }, 99);
}

#[test]
fn line_total_errors() {
    assert!(matches!(line_total(&measured(1, "", 1000, None, None)), Err(CalcError::TooLarge(_))));
    let huge = units(1, "", 1_000_000_000_000, 1_000_000_000_000);
    assert!(matches!(line_total(&huge), Err(CalcError::TooLarge(_))));
    // Exactly 10^15 is allowed.
    assert_eq!(line_total(&units(1, "", 1_000_000, 1_000_000_000)), Ok(1_000_000_000_000_000));
}

#[test]
fn receipt_total_past_the_limit_is_too_large() {
    let program = Program::default();
    let lines = vec![units(1, "", 1_000_000, 1_000_000_000), units(2, "", 1, 1)];
    let err = calculate(&input(&program, None, &lines, RedeemRequest::None, 0)).unwrap_err();
    assert!(matches!(err, CalcError::TooLarge(_)), "{err:?}");
}

#[test]
fn earning_with_multipliers_and_rounding() {
    // (payable, multiplier_bp, rounding, expected points) with the default 1 point per 10.00.
    let table = [
        (12345, 10000, Rounding::Floor, 12),
        (12345, 10000, Rounding::HalfUp, 12),
        (12345, 10000, Rounding::Ceil, 13),
        (12500, 10000, Rounding::Floor, 12),
        (12500, 10000, Rounding::HalfUp, 13),
        (12499, 10000, Rounding::HalfUp, 12),
        (12345, 12500, Rounding::Floor, 15),
        (12345, 12500, Rounding::HalfUp, 15),
        (12345, 12500, Rounding::Ceil, 16),
        (10000, 12500, Rounding::Floor, 12),
        (10000, 12500, Rounding::HalfUp, 13),
        (10000, 12500, Rounding::Ceil, 13),
        (12345, 15000, Rounding::Floor, 18),
        (12345, 15000, Rounding::HalfUp, 19),
        (12345, 15000, Rounding::Ceil, 19),
        (10000, 15000, Rounding::Floor, 15),
        (10000, 15000, Rounding::HalfUp, 15),
        (10000, 15000, Rounding::Ceil, 15),
        (999, 10000, Rounding::Floor, 0),
        (1, 10000, Rounding::Ceil, 1),
        (0, 15000, Rounding::Ceil, 0),
    ];
    for (payable, multiplier, rounding, expected) in table {
        let program = Program { earn: Earn { rounding, ..Earn::default() }, ..Program::default() };
        let t = tier("t", 0, multiplier, 0);
        let lines = vec![units(1, "music", 1, payable)];
        let calc = calculate(&input(&program, Some(&t), &lines, RedeemRequest::None, 0)).unwrap();
        assert_eq!(calc.points_earned, expected, "payable {payable}, multiplier {multiplier}, {rounding:?}");
        assert_eq!(calc.lines[0].points_earned, expected);
    }
}

#[test]
fn earning_rate_is_configurable() {
    // 3 points per 1.00, gold multiplier: 250.50 → 751.5 × 1.5 = 1127.25 → 1127.
    let program = Program { earn: Earn { points_per_unit: 3, unit_minor: 100, rounding: Rounding::Floor }, ..Program::default() };
    let gold = tier("gold", 0, 15000, 0);
    let lines = vec![units(1, "", 1, 25050)];
    let calc = calculate(&input(&program, Some(&gold), &lines, RedeemRequest::None, 0)).unwrap();
    assert_eq!(calc.points_earned, 1127);
}

#[test]
fn no_tier_earns_at_the_base_rate_without_discount() {
    let program = Program::default();
    let lines = vec![units(1, "", 1, 12345)];
    let calc = calculate(&input(&program, None, &lines, RedeemRequest::None, 0)).unwrap();
    assert_eq!((calc.discount_minor, calc.points_earned), (0, 12));
}

#[test]
fn round_div_modes() {
    let table = [
        (0, 7, Rounding::Floor, 0),
        (0, 7, Rounding::HalfUp, 0),
        (0, 7, Rounding::Ceil, 0),
        (14, 7, Rounding::Ceil, 2),
        (15, 7, Rounding::Floor, 2),
        (15, 7, Rounding::Ceil, 3),
        (17, 7, Rounding::HalfUp, 2),
        (18, 7, Rounding::HalfUp, 3),
        (7, 2, Rounding::HalfUp, 4),
        (5, 2, Rounding::HalfUp, 3),
    ];
    for (num, den, rounding, expected) in table {
        assert_eq!(round_div(num, den, rounding), expected, "{num}/{den} {rounding:?}");
    }
}

#[test]
fn tier_discount_applies_to_discountable_lines_only() {
    let program = Program::default();
    let card = tier("card", 0, 10000, 500);
    let lines = vec![
        units(1, "music", 2, 15000),
        units(2, "Tobacco", 1, 25000),
        LineInput { discount: false, ..units(3, "books", 1, 10000) },
        units(4, "snacks", 1, 999),
    ];
    let calc = calculate(&input(&program, Some(&card), &lines, RedeemRequest::None, 0)).unwrap();
    let discounts: Vec<i64> = calc.lines.iter().map(|l| l.discount_minor).collect();
    // 5 % of 30000 = 1500; tobacco and discount:false get none; 5 % of 999 = 49.95 → 49.
    assert_eq!(discounts, vec![1500, 0, 0, 49]);
    assert_eq!(calc.total_minor, 65999);
    assert_eq!(calc.discount_minor, 1549);
    assert_eq!(calc.payable_minor, 64450);
    assert_eq!(calc.points_earned, 64);
    // Limit: (28500 + 950) × 50 % / 100 = 147.25 → 147.
    assert_eq!(calc.redeem_limit, 147);
}

#[test]
fn excluded_lines_take_no_points() {
    let program = Program::default();
    let lines =
        vec![units(1, "music", 1, 10000), units(2, "TOBACCO", 1, 10000), LineInput { discount: false, ..units(3, "books", 1, 10000) }];
    let calc = calculate(&input(&program, None, &lines, RedeemRequest::Points(50), 1000)).unwrap();
    let redeemed: Vec<_> = calc.lines.iter().map(|l| (l.redeemed_minor, l.points_redeemed)).collect();
    assert_eq!(redeemed, vec![(5000, 50), (0, 0), (0, 0)]);
    assert_eq!(calc.redeem_limit, 50);
    assert_eq!(calc.payable_minor, 25000);
}

#[test]
fn no_earn_categories_and_earn_false_earn_nothing() {
    let program = Program { no_earn_categories: vec!["Gift_Cards".into(), "Алкоголь".into()], ..Program::default() }.normalize().unwrap();
    assert_eq!(program.no_earn_categories, vec!["gift_cards", "алкоголь"]);
    let lines = vec![
        units(1, "music", 1, 10000),
        units(2, "GIFT_CARDS", 1, 50000),
        units(3, "АЛКОГОЛЬ", 1, 50000),
        LineInput { earn: false, ..units(4, "music", 1, 50000) },
        units(5, "tobacco", 1, 20000),
    ];
    let calc = calculate(&input(&program, None, &lines, RedeemRequest::None, 0)).unwrap();
    let earned: Vec<_> = calc.lines.iter().map(|l| (l.earning, l.points_earned)).collect();
    assert_eq!(earned, vec![(true, 10), (false, 0), (false, 0), (false, 0), (true, 20)]);
    assert_eq!(calc.points_earned, 30);
    // Excluded from earning is not excluded from spending: the gift card line can take points.
    assert!(calc.lines[1].discountable);
}

#[test]
fn redemption_limits() {
    let program = Program::default();
    // Σ net of discountable lines 238058 → limit floor(238058 × 0.5 / 100) = 1190.
    let lines = worked_example_lines();
    let spend =
        |redeem, available| calculate(&input(&program, None, &lines, redeem, available)).map(|c| (c.points_redeemed, c.redeemed_minor));
    use RedeemRequest::{Max, None as NoRedeem, Points};
    let insufficient = |requested, available| Err(CalcError::InsufficientPoints { requested, available });
    let over_limit = |requested| Err(CalcError::RedeemLimitExceeded { requested, limit: 1190 });
    let table = [
        (NoRedeem, 1000, Ok((0, 0))),
        (Points(0), 0, Ok((0, 0))),
        (Points(150), 1000, Ok((150, 15000))),
        (Points(1000), 1000, Ok((1000, 100000))),
        (Points(1001), 1000, insufficient(1001, 1000)),
        // Insufficient is checked before the limit.
        (Points(5000), 1000, insufficient(5000, 1000)),
        (Points(1190), 5000, Ok((1190, 119000))),
        (Points(1191), 5000, over_limit(1191)),
        // "max" is min(limit, available).
        (Max, 1000, Ok((1000, 100000))),
        (Max, 5000, Ok((1190, 119000))),
        (Max, 0, Ok((0, 0))),
        // Availability is floored at 0 (min_balance is the caller's; it passes the rest).
        (Max, -20, Ok((0, 0))),
        (Points(1), -20, insufficient(1, 0)),
    ];
    for (redeem, available, expected) in table {
        assert_eq!(spend(redeem, available), expected, "{redeem:?} with {available} available");
    }
}

#[test]
fn redemption_on_a_receipt_without_discountable_lines() {
    let program = Program::default();
    let lines = vec![units(1, "tobacco", 1, 25000)];
    let calc = calculate(&input(&program, None, &lines, RedeemRequest::Max, 1000)).unwrap();
    assert_eq!((calc.redeem_limit, calc.points_redeemed), (0, 0));
    let err = calculate(&input(&program, None, &lines, RedeemRequest::Points(5), 1000)).unwrap_err();
    assert_eq!(err, CalcError::RedeemLimitExceeded { requested: 5, limit: 0 });
}

#[test]
fn redemption_spreads_over_measured_lines() {
    let program = Program::default();
    let lines = vec![
        measured(1, "fuel", 40000, Some(6000), None), // 40.000 l → 240000
        measured(2, "coffee", 250, Some(2000), None), // 0.250 kg → 500
    ];
    let calc = calculate(&input(&program, None, &lines, RedeemRequest::Points(1000), 1000)).unwrap();
    assert_eq!(calc.total_minor, 240500);
    let got: Vec<_> = calc.lines.iter().map(|l| (l.redeemed_minor, l.points_redeemed, l.payable_minor)).collect();
    // 100000 by 240000:500 → 99792.09 and 207.9 → 99792 + 0 and 207 + 1 (line 1 is heavier):
    // 99793 and 207; points 1000 by those → 997.93 and 2.07 → 997 + 1 and 2.
    assert_eq!(got, vec![(99793, 998, 140207), (207, 2, 293)]);
    assert_eq!(calc.lines[0].fiscal_splits, vec![FiscalSplit::Measured { quantity: Quantity::Milli(40000), total_minor: 140207 }]);
}

#[test]
fn fiscal_splits_table() {
    fn check(quantity: Quantity, payable: i64, expected: &[(i64, i64)]) {
        let want: Vec<FiscalSplit> =
            expected.iter().map(|&(quantity, unit_price_minor)| FiscalSplit::Units { quantity, unit_price_minor }).collect();
        assert_eq!(fiscal_splits(quantity, payable), want, "{quantity:?} {payable}");
    }
    check(Quantity::Units(3), 1000, &[(2, 333), (1, 334)]);
    check(Quantity::Units(2), 28110, &[(2, 14055)]);
    check(Quantity::Units(1), 25000, &[(1, 25000)]);
    check(Quantity::Units(7), 100, &[(5, 14), (2, 15)]);
    check(Quantity::Units(4), 3, &[(1, 0), (3, 1)]);
    check(Quantity::Units(5), 0, &[(5, 0)]);
    assert_eq!(
        fiscal_splits(Quantity::Milli(2000), 777),
        vec![FiscalSplit::Measured { quantity: Quantity::Milli(2000), total_minor: 777 }]
    );
}

#[test]
fn fiscal_splits_of_a_redeemed_receipt_re_add() {
    let program = Program::default();
    let lines = vec![units(1, "", 3, 333), units(2, "", 7, 1001)];
    let calc = calculate(&input(&program, None, &lines, RedeemRequest::Points(17), 100)).unwrap();
    for line in &calc.lines {
        let sum: i64 = line
            .fiscal_splits
            .iter()
            .map(|s| match s {
                FiscalSplit::Units { quantity, unit_price_minor } => quantity * unit_price_minor,
                FiscalSplit::Measured { total_minor, .. } => *total_minor,
            })
            .sum();
        assert_eq!(sum, line.payable_minor);
    }
}

#[test]
fn earning_too_large_is_rejected() {
    let program =
        Program { earn: Earn { points_per_unit: 1_000_000_000_000, unit_minor: 1, rounding: Rounding::Floor }, ..Program::default() };
    let t = tier("t", 0, 1_000_000, 0);
    let lines = vec![units(1, "", 1, 1_000_000)];
    let err = calculate(&input(&program, Some(&t), &lines, RedeemRequest::None, 0)).unwrap_err();
    assert!(matches!(err, CalcError::TooLarge(_)), "{err:?}");
}

#[test]
fn empty_receipt_is_all_zero() {
    let program = Program::default();
    let calc = calculate(&input(&program, None, &[], RedeemRequest::Max, 100)).unwrap();
    assert_eq!((calc.total_minor, calc.payable_minor, calc.points_redeemed, calc.points_earned), (0, 0, 0, 0));
}
