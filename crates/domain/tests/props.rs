//! Property tests: spread, the receipt calculation, refunds and withholding.

mod common;

use common::*;
use kopilka_domain::money::spread;
use kopilka_domain::program::{Earn, Program, Rounding};
use kopilka_domain::quantity::Quantity;
use kopilka_domain::receipt::{CalcError, FiscalSplit, LineInput, RedeemRequest, calculate};
use kopilka_domain::refund::{LineRefund, LineState, refund_line, withhold};
use proptest::prelude::*;

fn spread_case() -> impl Strategy<Value = (i128, Vec<i128>, Option<Vec<i128>>)> {
    (0usize..8).prop_flat_map(|n| {
        (
            prop_oneof![0i128..1000, 0i128..=1_000_000_000_000_000],
            prop::collection::vec(prop_oneof![0i128..10, 0i128..=1_000_000_000_000], n),
            prop::option::of(prop::collection::vec(prop_oneof![0i128..100, 0i128..=1_000_000_000_000_000], n)),
        )
    })
}

fn line_strategy() -> impl Strategy<Value = LineInput> {
    let quantity = prop_oneof![(1i64..20).prop_map(Quantity::Units), (1i64..100_000).prop_map(Quantity::Milli)];
    let category = prop::sample::select(vec!["music", "tobacco", "fuel", "gift", ""]);
    (quantity, 0i64..100_000, prop::option::of(0i64..1_000_000), category, any::<bool>(), any::<bool>()).prop_map(
        |(quantity, price, total, category, discount, earn)| LineInput {
            quantity,
            unit_price_minor: Some(price),
            total_minor: total,
            discount,
            earn,
            ..units(0, category, 1, 0)
        },
    )
}

#[derive(Debug, Clone)]
struct ReceiptCase {
    program: Program,
    discount_bp: i64,
    multiplier_bp: i64,
    lines: Vec<LineInput>,
    redeem: RedeemRequest,
    available: i64,
}

fn receipt_case() -> impl Strategy<Value = ReceiptCase> {
    let rounding = prop::sample::select(vec![Rounding::Floor, Rounding::HalfUp, Rounding::Ceil]);
    let redeem = prop_oneof![Just(RedeemRequest::None), Just(RedeemRequest::Max), (0i64..5_000).prop_map(RedeemRequest::Points),];
    (
        rounding,
        1i64..5,
        prop::sample::select(vec![1i64, 100, 1000, 333]),
        prop::sample::select(vec![1i64, 50, 100]),
        0i64..=10_000,
        0i64..3_000,
        0i64..20_000,
        prop::collection::vec(line_strategy(), 0..6),
        redeem,
        0i64..5_000,
    )
        .prop_map(
            |(rounding, points_per_unit, unit_minor, point_value, max_share_bp, discount_bp, multiplier_bp, lines, redeem, available)| {
                let mut program = Program {
                    earn: Earn { points_per_unit, unit_minor, rounding },
                    no_earn_categories: vec!["gift".into()],
                    ..Program::default()
                };
                program.redeem.point_value_minor = point_value;
                program.redeem.max_share_bp = max_share_bp;
                let lines = lines.into_iter().enumerate().map(|(i, l)| LineInput { line_no: i as i64 + 1, ..l }).collect();
                ReceiptCase { program, discount_bp, multiplier_bp, lines, redeem, available }
            },
        )
}

fn split_sum(splits: &[FiscalSplit]) -> i64 {
    splits
        .iter()
        .map(|s| match s {
            FiscalSplit::Units { quantity, unit_price_minor } => quantity * unit_price_minor,
            FiscalSplit::Measured { total_minor, .. } => *total_minor,
        })
        .sum()
}

fn state_of(payable_minor: i64, points_redeemed: i64, points_earned: i64, quantity_base: i64) -> LineState {
    LineState { quantity_base, refunded_base: 0, payable_minor, points_redeemed, points_earned }
}

/// A line and a way to cut its quantity into refund steps (each ≥ 1, summing to q).
fn line_and_steps() -> impl Strategy<Value = (LineState, Vec<i64>)> {
    (0i64..=1_000_000_000_000, 0i64..=1_000_000, 0i64..=1_000_000, 1i64..=50_000).prop_flat_map(|(payable, redeemed, earned, q)| {
        prop::collection::vec(1i64..=q, 0..6).prop_map(move |mut cuts| {
            cuts.push(q);
            cuts.sort_unstable();
            cuts.dedup();
            let mut prev = 0;
            let steps = cuts
                .into_iter()
                .map(|c| {
                    let step = c - prev;
                    prev = c;
                    step
                })
                .collect();
            (state_of(payable, redeemed, earned, q), steps)
        })
    })
}

proptest! {
    #[test]
    fn spread_never_exceeds_caps_and_preserves_the_sum_when_it_can((x, weights, caps) in spread_case()) {
        let out = spread(x, &weights, caps.as_deref());
        prop_assert_eq!(out.len(), weights.len());
        prop_assert_eq!(&out, &spread(x, &weights, caps.as_deref()), "deterministic");
        let total: i128 = out.iter().sum();
        prop_assert!(total <= x);
        prop_assert!(out.iter().all(|&v| v >= 0));
        let total_weight: i128 = weights.iter().sum();
        if total_weight == 0 {
            prop_assert!(out.iter().all(|&v| v == 0));
            return Ok(());
        }
        for (i, &w) in weights.iter().enumerate() {
            let cap = caps.as_ref().map_or(i128::MAX, |c| c[i]);
            prop_assert!(out[i] <= cap, "line {} over its cap", i);
            // Never less than its floor share (capped).
            prop_assert!(out[i] >= (x * w / total_weight).min(cap));
            if w == 0 {
                prop_assert_eq!(out[i], 0);
            }
        }
        let room: i128 = match &caps {
            None => i128::MAX,
            Some(c) => weights.iter().zip(c).filter(|(w, _)| **w > 0).map(|(_, c)| *c).sum(),
        };
        if room >= x {
            prop_assert_eq!(total, x);
        } else {
            prop_assert_eq!(total, room, "every line with room is filled");
        }
        if caps.is_none() {
            // Uncapped, no line is more than one unit past its exact share.
            for (i, &w) in weights.iter().enumerate() {
                prop_assert!(out[i] <= x * w / total_weight + 1);
            }
        }
    }

    #[test]
    fn calculate_invariants(case in receipt_case()) {
        let t = tier("t", 0, case.multiplier_bp, case.discount_bp);
        let input = input(&case.program, Some(&t), &case.lines, case.redeem, case.available);
        let result = calculate(&input);
        prop_assert_eq!(&result, &calculate(&input), "deterministic");
        let calc = match result {
            Ok(calc) => calc,
            Err(CalcError::InsufficientPoints { requested, available }) => {
                prop_assert_eq!(case.redeem, RedeemRequest::Points(requested));
                prop_assert!(requested > available && available == case.available);
                return Ok(());
            }
            Err(CalcError::RedeemLimitExceeded { requested, limit }) => {
                prop_assert_eq!(case.redeem, RedeemRequest::Points(requested));
                prop_assert!(requested <= case.available && requested > limit);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected {e:?}"))),
        };
        let lines = &calc.lines;
        prop_assert_eq!(calc.total_minor, lines.iter().map(|l| l.total_minor).sum::<i64>());
        prop_assert_eq!(calc.discount_minor, lines.iter().map(|l| l.discount_minor).sum::<i64>());
        prop_assert_eq!(calc.redeemed_minor, lines.iter().map(|l| l.redeemed_minor).sum::<i64>());
        prop_assert_eq!(calc.points_redeemed, lines.iter().map(|l| l.points_redeemed).sum::<i64>());
        prop_assert_eq!(calc.payable_minor, lines.iter().map(|l| l.payable_minor).sum::<i64>());
        prop_assert_eq!(calc.points_earned, lines.iter().map(|l| l.points_earned).sum::<i64>());
        prop_assert_eq!(calc.payable_minor, calc.total_minor - calc.discount_minor - calc.redeemed_minor);
        prop_assert!(calc.payable_minor >= 0);
        prop_assert!(calc.points_earned >= 0);
        prop_assert_eq!(calc.redeemed_minor, calc.points_redeemed * case.program.redeem.point_value_minor);
        prop_assert!(calc.points_redeemed <= calc.redeem_limit && calc.points_redeemed <= case.available);
        match case.redeem {
            RedeemRequest::None => prop_assert_eq!(calc.points_redeemed, 0),
            RedeemRequest::Points(p) => prop_assert_eq!(calc.points_redeemed, p),
            RedeemRequest::Max => prop_assert_eq!(calc.points_redeemed, calc.redeem_limit.min(case.available)),
        }
        for line in lines {
            prop_assert!(line.payable_minor >= 0 && line.redeemed_minor >= 0 && line.points_redeemed >= 0);
            prop_assert!(line.points_earned >= 0 && line.discount_minor >= 0);
            prop_assert_eq!(line.payable_minor, line.total_minor - line.discount_minor - line.redeemed_minor);
            prop_assert_eq!(split_sum(&line.fiscal_splits), line.payable_minor, "fiscal splits re-add");
            if let Quantity::Units(q) = line.quantity {
                let units: i64 = line.fiscal_splits.iter().map(|s| match s {
                    FiscalSplit::Units { quantity, .. } => *quantity,
                    FiscalSplit::Measured { .. } => 0,
                }).sum();
                prop_assert_eq!(units, q);
            }
            if !line.discountable {
                prop_assert_eq!((line.discount_minor, line.redeemed_minor, line.points_redeemed), (0, 0, 0));
            }
            if !line.earning {
                prop_assert_eq!(line.points_earned, 0);
            }
        }
    }

    #[test]
    fn refunding_a_calculated_receipt_returns_exactly_everything(case in receipt_case(), cut in 0usize..4) {
        let t = tier("t", 0, case.multiplier_bp, case.discount_bp);
        let Ok(calc) = calculate(&input(&case.program, Some(&t), &case.lines, case.redeem, case.available)) else {
            return Ok(());
        };
        let mut total = (0i64, 0i64, 0i64);
        for line in &calc.lines {
            let q = line.quantity.base();
            let mut state = state_of(line.payable_minor, line.points_redeemed, line.points_earned, q);
            // Refund in up to two steps, then the rest.
            let first = (q / 4 * cut as i64).clamp(0, q);
            for k in [first, q - first] {
                if k == 0 {
                    continue;
                }
                let r = refund_line(&state, k);
                state.refunded_base += k;
                total = (total.0 + r.refund_minor, total.1 + r.points_returned, total.2 + r.points_reversed);
            }
        }
        prop_assert_eq!(total, (calc.payable_minor, calc.points_redeemed, calc.points_earned));
    }

    #[test]
    fn partial_refunds_never_return_more_than_the_line_took((start, steps) in line_and_steps()) {
        let mut state = start;
        let mut taken = LineRefund::default();
        for k in steps {
            let r = refund_line(&state, k);
            prop_assert!(r.refund_minor >= 0 && r.points_returned >= 0 && r.points_reversed >= 0);
            taken.refund_minor += r.refund_minor;
            taken.points_returned += r.points_returned;
            taken.points_reversed += r.points_reversed;
            state.refunded_base += k;
            prop_assert!(taken.refund_minor <= start.payable_minor);
            prop_assert!(taken.points_returned <= start.points_redeemed);
            prop_assert!(taken.points_reversed <= start.points_earned);
            // The cumulative amount is exactly the proportional floor, however it was cut.
            let floor_share = |x: i64| (i128::from(x) * i128::from(state.refunded_base) / i128::from(start.quantity_base)) as i64;
            prop_assert_eq!(
                taken,
                LineRefund {
                    refund_minor: floor_share(start.payable_minor),
                    points_returned: floor_share(start.points_redeemed),
                    points_reversed: floor_share(start.points_earned),
                }
            );
            prop_assert_eq!(refund_line(&start, state.refunded_base), taken);
        }
        prop_assert_eq!(state.refunded_base, start.quantity_base);
        prop_assert_eq!(
            taken,
            LineRefund { refund_minor: start.payable_minor, points_returned: start.points_redeemed, points_reversed: start.points_earned }
        );
    }

    #[test]
    fn cumulative_refund_is_monotone_in_quantity((start, _) in line_and_steps(), a in 1i64..=50_000, b in 1i64..=50_000) {
        let q = start.quantity_base;
        let (lo, hi) = (a.min(b).min(q), a.max(b).min(q));
        let small = refund_line(&start, lo);
        let large = refund_line(&start, hi);
        prop_assert!(small.refund_minor <= large.refund_minor);
        prop_assert!(small.points_returned <= large.points_returned);
        prop_assert!(small.points_reversed <= large.points_reversed);
    }

    #[test]
    fn withholding_is_bounded(shortfall in 0i64..1_000_000, value in 1i64..1_000, money in prop::collection::vec(0i64..1_000_000, 0..5)) {
        let (withheld, debt) = withhold(shortfall, value, &money);
        prop_assert_eq!(withheld.len(), money.len());
        let owed = i128::from(shortfall) * i128::from(value);
        let withheld_total: i128 = withheld.iter().map(|&w| i128::from(w)).sum();
        let money_total: i128 = money.iter().map(|&m| i128::from(m)).sum();
        prop_assert!(withheld.iter().zip(&money).all(|(w, m)| *w >= 0 && w <= m));
        prop_assert_eq!(withheld_total, owed.min(money_total));
        prop_assert_eq!(i128::from(debt), (owed - withheld_total) / i128::from(value));
        prop_assert!(debt >= 0 && debt <= shortfall);
    }
}
