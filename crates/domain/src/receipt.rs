//! The receipt calculation (docs/api.md, "The receipt calculation", steps 1–6).

use crate::program::{Program, Tier};
use crate::quantity::Quantity;
use serde::Serialize;

/// One line as the till sent it, already shape-validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    pub line_no: i64,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub quantity: Quantity,
    pub unit_price_minor: Option<i64>,
    /// The till's authoritative line total, when sent.
    pub total_minor: Option<i64>,
    /// `"discount": false` on the line (default true).
    pub discount: bool,
    /// `"earn": false` on the line (default true).
    pub earn: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemRequest {
    None,
    Points(i64),
    Max,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalcInput<'a> {
    pub program: &'a Program,
    /// The receipt's tier (decided from the spend window), or None: multiplier 10000, no discount.
    pub tier: Option<&'a Tier>,
    pub lines: &'a [LineInput],
    pub redeem: RedeemRequest,
    /// Points available to this receipt: balance − held (other receipts' holds) −
    /// min_balance, floored at 0. Computed by the caller.
    pub available_points: i64,
    /// The campaigns that apply, in application order, with their effects resolved to
    /// lines (see [`crate::campaign`]). Empty: the steps of docs/api.md, "The steps", exactly.
    pub plan: &'a [PlannedCampaign],
    /// Cashback wallet money to spend (minor units), and how much the wallet holds.
    pub wallet: RedeemRequest,
    pub wallet_available: i64,
}

/// One applying campaign's effects, resolved to the receipt's lines (`mask[i]`: line i is
/// selected by the effect's target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCampaign {
    /// The campaign's position in the caller's list (echoed in [`CampaignAmounts`]).
    pub index: usize,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    DiscountPercent {
        bp: i64,
        mask: Vec<bool>,
    },
    DiscountFixed {
        amount_minor: i64,
        mask: Vec<bool>,
    },
    /// The `units` cheapest selected counted units are free.
    FreeUnits {
        units: i64,
        mask: Vec<bool>,
    },
    Multiplier {
        bp: i64,
        mask: Vec<bool>,
    },
    Bonus {
        points: i64,
        mask: Vec<bool>,
    },
    CashbackPercent {
        bp: i64,
        mask: Vec<bool>,
    },
    CashbackFixed {
        amount_minor: i64,
        mask: Vec<bool>,
    },
}

/// What one campaign gave on this receipt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CampaignAmounts {
    pub index: usize,
    pub discount_minor: i64,
    pub points: i64,
    pub cashback_minor: i64,
    pub free_units: i64,
    /// Per line: (line index, free units) — for stamp cards and refunds.
    pub free_by_line: Vec<(usize, i64)>,
}

impl CampaignAmounts {
    pub fn is_empty(&self) -> bool {
        self.discount_minor == 0 && self.points == 0 && self.cashback_minor == 0
    }
}

/// A fiscal split: integer quantities carry a unit price, measured ones a total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FiscalSplit {
    Units { quantity: i64, unit_price_minor: i64 },
    Measured { quantity: Quantity, total_minor: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineCalc {
    pub line_no: i64,
    pub quantity: Quantity,
    pub total_minor: i64,
    pub discount_minor: i64,
    pub redeemed_minor: i64,
    pub points_redeemed: i64,
    pub payable_minor: i64,
    pub points_earned: i64,
    /// Discountable: not in no_discount_categories and not `"discount": false`.
    pub discountable: bool,
    /// Earning: not in no_earn_categories and not `"earn": false`.
    pub earning: bool,
    pub fiscal_splits: Vec<FiscalSplit>,
    /// Campaign discounts (included in `discount_minor`).
    pub campaign_discount_minor: i64,
    /// Cashback wallet money spent on this line (not part of `discount_minor`).
    pub wallet_minor: i64,
    /// Cashback this line earns into the wallet.
    pub cashback_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptCalc {
    pub total_minor: i64,
    pub discount_minor: i64,
    pub points_redeemed: i64,
    pub redeemed_minor: i64,
    pub payable_minor: i64,
    /// E before pending is considered (all earned points).
    pub points_earned: i64,
    /// The most points this receipt may spend (step 3).
    pub redeem_limit: i64,
    pub lines: Vec<LineCalc>,
    /// Wallet money spent and cashback earned.
    pub wallet_minor: i64,
    pub cashback_minor: i64,
    /// What each planned campaign gave, in plan order.
    pub campaigns: Vec<CampaignAmounts>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// More points asked for than are available (checked first).
    #[error("{requested} points requested, {available} available")]
    InsufficientPoints { requested: i64, available: i64 },
    /// More points asked for than the receipt allows.
    #[error("{requested} points requested, at most {limit} allowed on this receipt")]
    RedeemLimitExceeded { requested: i64, limit: i64 },
    /// More wallet money asked for than the wallet holds.
    #[error("{requested} requested from the wallet, {available} available")]
    InsufficientWallet { requested: i64, available: i64 },
    /// A computed amount passed 10^15 (reported as 422 validation_error).
    #[error("amount too large: {0}")]
    TooLarge(String),
}

/// The line total: `total_minor` when given, else quantity × unit price rounded half up
/// to the minor unit (for measured quantities: milli × price / 1000, half up).
/// Err when it passes 10^15 or neither price nor total was given.
pub fn line_total(line: &LineInput) -> Result<i64, CalcError> {
    let total: i128 = match (line.total_minor, line.unit_price_minor) {
        (Some(total), _) => i128::from(total),
        (None, Some(price)) => quantity_times_price(line.quantity, price),
        (None, None) => {
            return Err(CalcError::TooLarge(format!("line {}: unit_price_minor or total_minor is required", line.line_no)));
        }
    };
    if total < 0 {
        return Err(CalcError::TooLarge(format!("line {}: the line total must not be negative", line.line_no)));
    }
    checked_amount(total, || format!("line {} total", line.line_no))
}

/// Quantity × unit price in minor units, rounded half up for measured quantities:
/// floor((2·m·p + 1000) / 2000). The one place a line's amount is computed from its price,
/// so the till's screen and the receipt agree.
pub fn quantity_times_price(quantity: Quantity, unit_price_minor: i64) -> i128 {
    match quantity {
        Quantity::Units(q) => i128::from(q) * i128::from(unit_price_minor),
        Quantity::Milli(m) => (2 * i128::from(m) * i128::from(unit_price_minor) + 1000).div_euclid(2000),
    }
}

/// `value` as i64 when it is within ±10^15, else TooLarge naming `what`.
fn checked_amount(value: i128, what: impl FnOnce() -> String) -> Result<i64, CalcError> {
    if value.abs() > crate::COMPUTE_MAX {
        return Err(CalcError::TooLarge(format!("{} passes 10^15", what())));
    }
    Ok(value as i64)
}

/// Steps 1–6 of docs/api.md, "The steps". Pure and deterministic.
///
/// 1. totals; 2. tier discount on discountable lines floor(total · discount_bp / 10000);
/// 3. limit = floor(Σ net of discountable lines × max_share_bp / 10000 / point_value_minor);
///    requested > available → InsufficientPoints (first); requested > limit →
///    RedeemLimitExceeded; Max spends min(limit, available); None spends 0.
/// 4. R = points × point_value_minor spread over discountable lines (weights = net,
///    caps = net) → redeemed_minor; points spread by weights = redeemed_minor →
///    points_redeemed; payable = net − redeemed_minor.
/// 5. E = rounding(Σ payable of earning lines × points_per_unit × multiplier_bp /
///    (unit_minor × 10000)) spread over earning lines by payable.
/// 6. fiscal splits per line from payable_minor.
///
/// Campaigns (docs/api.md "Campaign maths") add 2b (campaign discounts on the nets, in plan
/// order), 4b (cashback wallet money after points, within the same share) and 5b
/// (multiplier extras, bonus points and cashback on the payable money). With an empty plan
/// and no wallet money the result is steps 1–6 exactly.
///
/// Note R may be less than points × value only when caps bind, which cannot happen since
/// limit ≤ Σ net / value; keep the spread's caps anyway.
pub fn calculate(input: &CalcInput<'_>) -> Result<ReceiptCalc, CalcError> {
    let program = input.program;
    let lines = input.lines;
    let n = lines.len();
    let discount_bp = i128::from(input.tier.map_or(0, |t| t.discount_bp));
    let multiplier_bp = i128::from(input.tier.map_or(10_000, |t| t.earn_multiplier_bp));

    // 1. Totals.
    let totals: Vec<i128> = lines.iter().map(|l| line_total(l).map(i128::from)).collect::<Result<_, _>>()?;
    let total_minor = checked_amount(totals.iter().sum(), || "receipt total".into())?;

    // 2. Tier discount on discountable lines.
    let discountable: Vec<bool> = lines.iter().map(|l| l.discount && !program.is_no_discount(l.category.as_deref())).collect();
    let earning: Vec<bool> = lines.iter().map(|l| l.earn && !program.is_no_earn(l.category.as_deref())).collect();
    let mut discounts: Vec<i128> = totals.iter().zip(&discountable).map(|(&t, &d)| if d { t * discount_bp / 10_000 } else { 0 }).collect();
    let mut nets: Vec<i128> = totals.iter().zip(&discounts).map(|(t, d)| t - d).collect();

    // 2b. Campaign discounts, campaign by campaign in plan order, each on the nets the
    // earlier ones left.
    let mut amounts: Vec<CampaignAmounts> =
        input.plan.iter().map(|p| CampaignAmounts { index: p.index, ..CampaignAmounts::default() }).collect();
    let mut campaign_discount = vec![0i128; n];
    for (pc, out) in input.plan.iter().zip(&mut amounts) {
        for op in &pc.ops {
            let eligible = |mask: &Vec<bool>, i: usize| mask.get(i).copied().unwrap_or(false) && discountable[i] && nets[i] > 0;
            let d: Vec<i128> = match op {
                Op::DiscountPercent { bp, mask } => {
                    (0..n).map(|i| if eligible(mask, i) { nets[i] * i128::from(*bp).clamp(0, 10_000) / 10_000 } else { 0 }).collect()
                }
                Op::DiscountFixed { amount_minor, mask } => {
                    let w: Vec<i128> = (0..n).map(|i| if eligible(mask, i) { nets[i] } else { 0 }).collect();
                    let a = i128::from(*amount_minor).max(0).min(w.iter().sum());
                    crate::money::spread(a, &w, Some(&w))
                }
                Op::FreeUnits { units, mask } => {
                    let free = free_units(lines, &nets, |i| eligible(mask, i), *units);
                    for &(i, f) in &free {
                        out.free_units += f;
                        out.free_by_line.push((i, f));
                    }
                    let mut d = vec![0i128; n];
                    for (i, f) in free {
                        let q = i128::from(lines[i].quantity.base());
                        d[i] = if q > 0 { nets[i] * i128::from(f) / q } else { 0 };
                    }
                    d
                }
                _ => continue,
            };
            for i in 0..n {
                let di = d[i].clamp(0, nets[i].max(0));
                nets[i] -= di;
                discounts[i] += di;
                campaign_discount[i] += di;
                out.discount_minor += di as i64;
            }
        }
    }

    // 3. Limits. A broken programme (value 0) can spend nothing rather than divide by 0.
    let point_value = i128::from(program.redeem.point_value_minor);
    let discountable_net: i128 = nets.iter().zip(&discountable).filter(|(_, d)| **d).map(|(n, _)| n).sum();
    let share_money = discountable_net * i128::from(program.redeem.max_share_bp.max(0)) / 10_000;
    let limit = if point_value > 0 { share_money / point_value } else { 0 };
    let redeem_limit = checked_amount(limit, || "redeem limit".into())?;
    let available = input.available_points.max(0);
    let points: i64 = match input.redeem {
        RedeemRequest::None => 0,
        RedeemRequest::Points(p) if p < 0 => {
            return Err(CalcError::TooLarge("redeem_points must not be negative".into()));
        }
        RedeemRequest::Points(p) => {
            if p > available {
                return Err(CalcError::InsufficientPoints { requested: p, available });
            }
            if p > redeem_limit {
                return Err(CalcError::RedeemLimitExceeded { requested: p, limit: redeem_limit });
            }
            p
        }
        RedeemRequest::Max => redeem_limit.min(available),
    };

    // 4. Spending: money by net (capped at net) over discountable lines, then points by money.
    let redeem_money = i128::from(points) * point_value;
    checked_amount(redeem_money, || "redeemed money".into())?;
    let spend_weights: Vec<i128> = nets.iter().zip(&discountable).map(|(&n, &d)| if d { n } else { 0 }).collect();
    let redeemed = crate::money::spread(redeem_money, &spend_weights, Some(&spend_weights));
    let points_by_line = crate::money::spread(i128::from(points), &redeemed, None);
    let mut payables: Vec<i128> = nets.iter().zip(&redeemed).map(|(n, r)| n - r).collect();

    // 4b. The cashback wallet pays after points, within the same share of the receipt.
    let wallet_limit = (share_money - redeem_money).max(0);
    let wallet_available = i128::from(input.wallet_available.max(0));
    let wallet_money: i128 = match input.wallet {
        RedeemRequest::None => 0,
        RedeemRequest::Points(w) if w < 0 => return Err(CalcError::TooLarge("redeem_wallet_minor must not be negative".into())),
        RedeemRequest::Points(w) => {
            let w = i128::from(w);
            if w > wallet_available {
                return Err(CalcError::InsufficientWallet { requested: w as i64, available: wallet_available as i64 });
            }
            if w > wallet_limit {
                return Err(CalcError::RedeemLimitExceeded { requested: w as i64, limit: wallet_limit as i64 });
            }
            w
        }
        RedeemRequest::Max => wallet_limit.min(wallet_available),
    };
    let wallet_weights: Vec<i128> = payables.iter().zip(&discountable).map(|(&p, &d)| if d { p } else { 0 }).collect();
    let wallet = crate::money::spread(wallet_money, &wallet_weights, Some(&wallet_weights));
    for (p, w) in payables.iter_mut().zip(&wallet) {
        *p -= w;
    }

    // 5. Earning on the payable money of earning lines.
    let earn_weights: Vec<i128> = payables.iter().zip(&earning).map(|(&p, &e)| if e { p } else { 0 }).collect();
    let earn_base: i128 = earn_weights.iter().sum();
    let ppu = i128::from(program.earn.points_per_unit.max(0));
    let unit = i128::from(program.earn.unit_minor.max(1));
    let numerator = earn_base * ppu * multiplier_bp.max(0);
    let earned_total = round_div(numerator, unit * 10_000, program.earn.rounding);
    let mut earned = crate::money::spread(earned_total, &earn_weights, None);

    // 5b. Campaign points and cashback, in plan order, on the payable money.
    let mut cashback = vec![0i128; n];
    for (pc, out) in input.plan.iter().zip(&mut amounts) {
        for op in &pc.ops {
            let selected = |mask: &Vec<bool>| -> Vec<i128> {
                (0..n).map(|i| if mask.get(i).copied().unwrap_or(false) && earning[i] { payables[i] } else { 0 }).collect()
            };
            match op {
                Op::Multiplier { bp, mask } => {
                    let w = selected(mask);
                    let extra_bp = i128::from(*bp).max(10_000) - 10_000;
                    let num = w
                        .iter()
                        .sum::<i128>()
                        .checked_mul(ppu * multiplier_bp.max(0))
                        .and_then(|x| x.checked_mul(extra_bp))
                        .ok_or_else(|| CalcError::TooLarge("campaign points pass 10^15".into()))?;
                    let x = round_div(num, unit * 10_000 * 10_000, program.earn.rounding);
                    checked_amount(x, || "campaign points".into())?;
                    add(&mut earned, &crate::money::spread(x, &w, None));
                    out.points += x as i64;
                }
                Op::Bonus { points, mask } => {
                    let mut w = selected(mask);
                    if w.iter().all(|&x| x == 0) {
                        // Nothing left to pay on the selected lines: spread evenly over them.
                        w = (0..n).map(|i| i128::from(mask.get(i).copied().unwrap_or(false) && earning[i])).collect();
                    }
                    let b = if w.iter().any(|&x| x > 0) { i128::from((*points).max(0)) } else { 0 };
                    add(&mut earned, &crate::money::spread(b, &w, None));
                    out.points += b as i64;
                }
                Op::CashbackPercent { bp, mask } => {
                    let w = selected(mask);
                    let c = w.iter().sum::<i128>() * i128::from((*bp).clamp(0, 10_000)) / 10_000;
                    add(&mut cashback, &crate::money::spread(c, &w, None));
                    out.cashback_minor += c as i64;
                }
                Op::CashbackFixed { amount_minor, mask } => {
                    let w = selected(mask);
                    let c = i128::from((*amount_minor).max(0)).min(w.iter().sum());
                    add(&mut cashback, &crate::money::spread(c, &w, None));
                    out.cashback_minor += c as i64;
                }
                _ => {}
            }
        }
    }
    let points_earned = checked_amount(earned.iter().sum(), || "points earned".into())?;
    let cashback_minor = checked_amount(cashback.iter().sum(), || "cashback".into())?;

    // 6. Fiscal splits, and the lines.
    let line_calcs: Vec<LineCalc> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| LineCalc {
            line_no: l.line_no,
            quantity: l.quantity,
            total_minor: totals[i] as i64,
            discount_minor: discounts[i] as i64,
            redeemed_minor: redeemed[i] as i64,
            points_redeemed: points_by_line[i] as i64,
            payable_minor: payables[i] as i64,
            points_earned: earned[i] as i64,
            discountable: discountable[i],
            earning: earning[i],
            fiscal_splits: fiscal_splits(l.quantity, payables[i] as i64),
            campaign_discount_minor: campaign_discount[i] as i64,
            wallet_minor: wallet[i] as i64,
            cashback_minor: cashback[i] as i64,
        })
        .collect();

    let discount_minor: i64 = line_calcs.iter().map(|l| l.discount_minor).sum();
    let redeemed_minor: i64 = line_calcs.iter().map(|l| l.redeemed_minor).sum();
    let wallet_minor = wallet_money as i64;
    let calc = ReceiptCalc {
        total_minor,
        discount_minor,
        points_redeemed: line_calcs.iter().map(|l| l.points_redeemed).sum(),
        redeemed_minor,
        payable_minor: total_minor - discount_minor - redeemed_minor - wallet_minor,
        points_earned,
        redeem_limit,
        lines: line_calcs,
        wallet_minor,
        cashback_minor,
        campaigns: amounts,
    };
    debug_assert_eq!(calc.payable_minor, calc.lines.iter().map(|l| l.payable_minor).sum::<i64>());
    debug_assert_eq!(calc.points_earned, calc.lines.iter().map(|l| l.points_earned).sum::<i64>());
    Ok(calc)
}

fn add(into: &mut [i128], more: &[i128]) {
    for (a, b) in into.iter_mut().zip(more) {
        *a += b;
    }
}

/// The `units` cheapest counted units among the lines `eligible` allows: lines in order
/// of unit net price (net / quantity, compared exactly), ties to the earlier line.
/// Returns (line index, free units) for lines that get any.
fn free_units(lines: &[LineInput], nets: &[i128], eligible: impl Fn(usize) -> bool, units: i64) -> Vec<(usize, i64)> {
    let mut order: Vec<usize> =
        (0..lines.len()).filter(|&i| eligible(i) && matches!(lines[i].quantity, crate::quantity::Quantity::Units(_))).collect();
    let q = |i: usize| i128::from(lines[i].quantity.base());
    // nets[a]/q(a) < nets[b]/q(b)  ⇔  nets[a]·q(b) < nets[b]·q(a); the sort is stable.
    order.sort_by(|&a, &b| (nets[a] * q(b)).cmp(&(nets[b] * q(a))));
    let mut left = units.max(0);
    let mut out = Vec::new();
    for i in order {
        if left == 0 {
            break;
        }
        let f = left.min(lines[i].quantity.base());
        out.push((i, f));
        left -= f;
    }
    out
}

/// Step 6 for one line.
pub fn fiscal_splits(quantity: Quantity, payable_minor: i64) -> Vec<FiscalSplit> {
    match quantity {
        Quantity::Milli(_) => vec![FiscalSplit::Measured { quantity, total_minor: payable_minor }],
        Quantity::Units(q) if q <= 0 => Vec::new(),
        Quantity::Units(q) => {
            let (u, r) = (payable_minor.div_euclid(q), payable_minor.rem_euclid(q));
            [(q - r, u), (r, u + 1)]
                .into_iter()
                .filter(|&(n, _)| n > 0)
                .map(|(quantity, unit_price_minor)| FiscalSplit::Units { quantity, unit_price_minor })
                .collect()
        }
    }
}

/// rounding(num / den) for num ≥ 0, den > 0.
pub fn round_div(num: i128, den: i128, rounding: crate::program::Rounding) -> i128 {
    use crate::program::Rounding;
    debug_assert!(den > 0);
    match rounding {
        Rounding::Floor => num.div_euclid(den),
        Rounding::HalfUp => (2 * num + den).div_euclid(2 * den),
        Rounding::Ceil => -((-num).div_euclid(den)),
    }
}
