//! The campaign engine on the till's hot path: a 50-line receipt quoted against 100, 1,000
//! and 10,000 active campaigns (evaluate the candidates, then the receipt calculation with
//! the plan). Criterion gives the mean; the tail (p50, p99, max over 20,000 quotes) is
//! printed after it, because the target is a p99.
//!
//! Run: `cargo bench -p kopilka-domain --bench campaigns`.

use criterion::{Criterion, criterion_group};
use kopilka_domain::campaign::{Campaign, CampaignSet, CampaignSpec, Ctx, MemberFacts, Place, evaluate};
use kopilka_domain::program::{Program, default_tiers};
use kopilka_domain::quantity::Quantity;
use kopilka_domain::receipt::{CalcInput, LineInput, RedeemRequest, calculate};
use serde_json::json;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const CATEGORIES: usize = 500;
const SKUS: usize = 5000;

/// A deterministic pseudo-random sequence (no dependency, same set every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// A tenant's campaigns, shaped like a large retailer's: most are triggered by a category
/// or sku, some are personal or need a coupon, and 1 % look at every receipt.
fn campaigns(n: usize) -> CampaignSet {
    let mut r = Lcg(42);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let kind = r.next(100);
        let cat = format!("cat{}", r.next(CATEGORIES));
        let sku = format!("SKU{}", r.next(SKUS));
        let min = r.next(4) + 1;
        let spec = match kind {
            0..=59 => json!({"code": format!("c{i}"), "name": format!("Category offer {i}"), "priority": r.next(200),
                "conditions": [{"type": "min_quantity", "categories": [cat], "min": min}],
                "effects": [if i % 2 == 0 { json!({"type": "points_multiplier", "multiplier_bp": 15000, "target": {"categories": [cat]}}) }
                            else { json!({"type": "discount_percent", "percent_bp": 500, "target": {"categories": [cat]}}) }]}),
            60..=79 => json!({"code": format!("c{i}"), "name": format!("Sku offer {i}"),
                "conditions": [{"type": "min_amount", "skus": [sku], "min_minor": 10000 * min}],
                "effects": [{"type": "bonus_points", "points": 50}], "budget": {"points": 1_000_000}}),
            80..=89 => {
                json!({"code": format!("c{i}"), "name": format!("Personal {i}"), "audience": {"member_ids": [format!("m{}", r.next(100_000))]},
                "effects": [{"type": "discount_fixed", "amount_minor": 5000}]})
            }
            90..=98 => json!({"code": format!("c{i}"), "name": format!("Coupon {i}"), "requires_coupon": true,
                "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
            _ => json!({"code": format!("c{i}"), "name": format!("Gold weekend {i}"),
                "conditions": [{"type": "tier", "in": ["gold"]}, {"type": "weekday", "days": ["sat", "sun"]}],
                "effects": [{"type": "points_multiplier", "multiplier_bp": 20000}]}),
        };
        let spec: CampaignSpec = serde_json::from_value(spec).expect("bench campaign parses");
        out.push(Arc::new(Campaign::compile(format!("id{i}"), spec).expect("bench campaign compiles")));
    }
    CampaignSet::new(out)
}

fn receipt() -> Vec<LineInput> {
    let mut r = Lcg(7);
    (0..50)
        .map(|i| LineInput {
            line_no: i as i64 + 1,
            sku: Some(format!("SKU{}", r.next(SKUS))),
            name: None,
            category: Some(format!("cat{}", r.next(40))),
            quantity: Quantity::Units(r.next(3) as i64 + 1),
            unit_price_minor: Some(r.next(50_000) as i64 + 100),
            total_minor: None,
            discount: true,
            earn: true,
        })
        .collect()
}

/// One quote's engine work: context, candidates, conditions, plan, calculation.
fn quote(set: &CampaignSet, program: &Program, lines: &[LineInput], member: &MemberFacts) -> i64 {
    let tier = &program.tiers[1];
    let local = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap().and_hms_opt(12, 0, 0).unwrap();
    let ctx =
        Ctx::new(program, lines, Some(member), Some(&tier.code), Place { store_id: "store", store_code: "S1", local, at: 1_795_000_000 });
    let verdict = evaluate(set, &ctx, &HashMap::new());
    let calc = calculate(&CalcInput {
        program,
        tier: Some(tier),
        lines,
        redeem: RedeemRequest::Max,
        available_points: 5000,
        plan: &verdict.plan,
        wallet: RedeemRequest::None,
        wallet_available: 0,
    })
    .expect("bench receipt computes");
    calc.points_earned + verdict.misses.len() as i64
}

fn bench(c: &mut Criterion) {
    let program = Program { tiers: default_tiers(), ..Program::default() };
    let lines = receipt();
    let member = MemberFacts { id: "m1".into(), enrolled_at: 1_700_000_000, ..MemberFacts::default() };
    let mut group = c.benchmark_group("quote_50_lines");
    for n in [0, 100, 1_000, 10_000] {
        let set = campaigns(n);
        group.bench_function(format!("{n}_campaigns"), |b| b.iter(|| quote(black_box(&set), &program, &lines, &member)));
    }
    group.finish();
}

/// The tail: 20,000 quotes each, timed one by one.
fn tail() {
    let program = Program { tiers: default_tiers(), ..Program::default() };
    let lines = receipt();
    let member = MemberFacts { id: "m1".into(), enrolled_at: 1_700_000_000, ..MemberFacts::default() };
    println!("\nquote of a 50-line receipt, engine and calculation, 20000 runs each:");
    for n in [0, 100, 1_000, 10_000] {
        let set = campaigns(n);
        let ctx_probe = {
            let local = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap().and_hms_opt(12, 0, 0).unwrap();
            let ctx = Ctx::new(
                &program,
                &lines,
                Some(&member),
                Some("silver"),
                Place { store_id: "store", store_code: "S1", local, at: 1_795_000_000 },
            );
            let v = evaluate(&set, &ctx, &HashMap::new());
            (set.candidates(&ctx).len(), v.plan.len())
        };
        let mut times: Vec<u128> = (0..20_000)
            .map(|_| {
                let t = Instant::now();
                black_box(quote(&set, &program, &lines, &member));
                t.elapsed().as_nanos()
            })
            .collect();
        times.sort_unstable();
        let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)] as f64 / 1000.0;
        println!(
            "  {n:>6} campaigns: {} evaluated, {} applied; p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            ctx_probe.0,
            ctx_probe.1,
            pct(0.50),
            pct(0.99),
            *times.last().unwrap() as f64 / 1000.0
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    tail();
}
