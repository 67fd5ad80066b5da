//! Table tests for refund proportions and the shortfall (withhold and debt) step.

mod common;

use common::*;
use kopilka_domain::program::Program;
use kopilka_domain::receipt::{LineCalc, RedeemRequest, calculate};
use kopilka_domain::refund::{LineRefund, LineState, refund_line, withhold};

fn state(line: &LineCalc) -> LineState {
    LineState {
        quantity_base: line.quantity.base(),
        refunded_base: 0,
        payable_minor: line.payable_minor,
        points_redeemed: line.points_redeemed,
        points_earned: line.points_earned,
    }
}

/// Refund `steps` (base units each) of a line in order; returns each step's refund.
fn refund_in_steps(start: LineState, steps: &[i64]) -> Vec<LineRefund> {
    let mut s = start;
    steps
        .iter()
        .map(|&k| {
            let r = refund_line(&s, k);
            s.refunded_base += k;
            r
        })
        .collect()
}

fn sum(refunds: &[LineRefund]) -> (i64, i64, i64) {
    refunds.iter().fold((0, 0, 0), |a, r| (a.0 + r.refund_minor, a.1 + r.points_returned, a.2 + r.points_reversed))
}

#[test]
fn refund_proportions_table() {
    let line = LineState { quantity_base: 3, refunded_base: 0, payable_minor: 1000, points_redeemed: 10, points_earned: 7 };
    let r = |refunded_base, k| refund_line(&LineState { refunded_base, ..line }, k);
    let lr = |refund_minor, points_returned, points_reversed| LineRefund { refund_minor, points_returned, points_reversed };
    // Cumulative floor(x · k / 3): 333/666/1000, 3/6/10, 2/4/7.
    assert_eq!(r(0, 1), lr(333, 3, 2));
    assert_eq!(r(1, 1), lr(333, 3, 2));
    assert_eq!(r(2, 1), lr(334, 4, 3));
    assert_eq!(r(0, 2), lr(666, 6, 4));
    assert_eq!(r(0, 3), lr(1000, 10, 7));
    assert_eq!(r(1, 2), lr(667, 7, 5));
}

#[test]
fn worked_example_refunded_in_steps_returns_exactly_everything() {
    let program = Program::default();
    let lines = worked_example_lines();
    let calc = calculate(&input(&program, None, &lines, RedeemRequest::Points(150), 1000)).unwrap();

    // CD-1, one unit at a time.
    let cd = refund_in_steps(state(&calc.lines[0]), &[1, 1]);
    assert_eq!(sum(&cd), (28110, 18, 29));

    // Fuel, measured in thousandths: 10.000 l, then 0.001 l, then 25.269 l.
    let fuel = refund_in_steps(state(&calc.lines[1]), &[10000, 1, 25269]);
    assert_eq!(fuel[0], LineRefund { refund_minor: 55273, points_returned: 37, points_reversed: 55 });
    assert_eq!(sum(&fuel), (194948, 132, 195));

    // Tobacco took no points, so its refund returns none.
    let cig = refund_in_steps(state(&calc.lines[2]), &[1]);
    assert_eq!(sum(&cig), (25000, 0, 24));

    let total = [sum(&cd), sum(&fuel), sum(&cig)].iter().fold((0, 0, 0), |a, s| (a.0 + s.0, a.1 + s.1, a.2 + s.2));
    assert_eq!(total, (calc.payable_minor, calc.points_redeemed, calc.points_earned));
}

#[test]
fn refund_after_redemption_never_pays_back_the_points_as_money() {
    // 1 unit at 10000 with 50 points spent: payable 5000, so a refund pays 5000 and returns 50 points.
    let program = Program::default();
    let lines = vec![units(1, "", 1, 10000)];
    let calc = calculate(&input(&program, None, &lines, RedeemRequest::Points(50), 50)).unwrap();
    let r = refund_line(&state(&calc.lines[0]), 1);
    assert_eq!(r, LineRefund { refund_minor: 5000, points_returned: 50, points_reversed: 5 });
}

#[test]
fn withhold_table() {
    fn check(shortfall: i64, value: i64, money: &[i64], expected: (&[i64], i64)) {
        let (withheld, debt) = withhold(shortfall, value, money);
        assert_eq!((withheld.as_slice(), debt), expected, "withhold({shortfall}, {value}, {money:?})");
    }
    // No shortfall: nothing withheld, no debt.
    check(0, 100, &[14055], (&[0], 0));
    // A small shortfall is withheld in full.
    check(5, 100, &[14055], (&[500], 0));
    // Spread over the refunded lines by their money.
    check(3, 100, &[100, 300], (&[75, 225], 0));
    check(1, 100, &[1, 1, 1], (&[1, 1, 1], 0));
    check(1, 100, &[50, 50, 50], (&[34, 33, 33], 0));
    // More than the money: everything is withheld and the rest becomes debt.
    check(200, 100, &[14055], (&[14055], 59));
    check(200, 100, &[10000, 4055], (&[10000, 4055], 59));
    // A part of a point left over is not debt (floor).
    check(2, 100, &[50, 50, 1], (&[50, 50, 1], 0));
    // Nothing to withhold from: all of it is debt.
    check(7, 100, &[0, 0], (&[0, 0], 7));
    check(7, 100, &[], (&[], 7));
    // Another point value.
    check(3, 250, &[600], (&[600], 0));
    check(4, 250, &[600], (&[600], 1));
}
