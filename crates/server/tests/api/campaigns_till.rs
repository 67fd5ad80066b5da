//! The campaign engine at the till, through HTTP on both databases: every effect and how
//! they stack (exact integers, worked by hand in the comments), budgets and coupons under
//! concurrent checkouts, holds, refunds and voids that give back exactly what was taken,
//! every `not_applied` reason in English (and some in Russian), and the cashback wallet.
//!
//! Unless a test says otherwise the programme is the default (docs/api.md, "Configuration and defaults"): 1 point per
//! 10.00 RUB (floor), a point pays 1.00 RUB, points (and wallet money) pay at most 50 %,
//! tobacco takes no discount, and a new member is bronze (multiplier 10000, no discount).

use crate::both;
use crate::helpers::*;
use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use serde_json::{Value, json};
use std::sync::Arc;

// ------------------------------------------------------------------------------ helpers

struct Shop {
    t: Tenant,
    store: String,
    /// A pos key bound to the store (till T1): the till's requests.
    pos: String,
}

async fn shop(app: &TestApp) -> Shop {
    // Tenant names (and so slugs) must differ within a database.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let t = app.tenant(&format!("Shop {}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))).await;
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, Some("T1")).await;
    Shop { t, store, pos }
}

/// Create a campaign; returns its id.
async fn campaign(app: &TestApp, s: &Shop, spec: Value) -> String {
    let (st, v) = app.post(&s.t.admin, "/api/v1/campaigns", spec).await;
    assert_eq!(st, 201, "{v}");
    v["id"].as_str().expect("campaign id").to_owned()
}

/// Create coupons for a campaign; returns the answer.
async fn coupons(app: &TestApp, s: &Shop, campaign: &str, body: Value) -> Value {
    let (st, v) = app.post(&s.t.admin, &format!("/api/v1/campaigns/{campaign}/coupons"), body).await;
    assert_eq!(st, 201, "{v}");
    v
}

async fn usage(app: &TestApp, s: &Shop, campaign: &str) -> Value {
    let (st, v) = app.get(&s.t.admin, &format!("/api/v1/campaigns/{campaign}")).await;
    assert_eq!(st, 200, "{v}");
    v["usage"].clone()
}

async fn wallet(app: &TestApp, s: &Shop, member: &str) -> Value {
    let (st, v) = app.get(&s.t.admin, &format!("/api/v1/members/{member}/wallet")).await;
    assert_eq!(st, 200, "{v}");
    v
}

/// (balance, held, debt) of the wallet.
async fn wallet3(app: &TestApp, s: &Shop, member: &str) -> (i64, i64, i64) {
    let w = wallet(app, s, member).await;
    (w["balance_minor"].as_i64().unwrap(), w["held_minor"].as_i64().unwrap(), w["debt_minor"].as_i64().unwrap())
}

async fn points(app: &TestApp, s: &Shop, member: &str) -> i64 {
    app.balance(&s.t.admin, member).await["points"].as_i64().unwrap()
}

/// Stamp progress of a member on a stamp-card campaign.
async fn stamps(app: &TestApp, s: &Shop, member: &str, campaign: &str) -> i64 {
    let (st, v) = app.get(&s.t.admin, &format!("/api/v1/members/{member}/offers")).await;
    assert_eq!(st, 200, "{v}");
    v["stamp_cards"].as_array().unwrap().iter().find(|c| c["campaign_id"] == campaign).map(|c| c["stamps"].as_i64().unwrap()).unwrap_or(0)
}

async fn new_member(app: &TestApp, s: &Shop) -> String {
    app.member_id(&s.t.admin, json!({})).await
}

fn item(line_no: i64, sku: &str, category: &str, quantity: Value, price: i64) -> Value {
    json!({"line_no": line_no, "sku": sku, "category": category, "quantity": quantity, "unit_price_minor": price})
}

/// A till body (the pos key implies the store and till).
fn body(id: &str, member: Option<&str>, items: Vec<Value>) -> Value {
    let mut v = json!({"receipt_id": id, "items": items});
    if let Some(m) = member {
        v["member"] = json!({"member_id": m});
    }
    v
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The `applied` entry of a campaign code.
#[track_caller]
fn applied<'a>(ans: &'a Value, code: &str) -> &'a Value {
    ans["applied"].as_array().unwrap().iter().find(|a| a["code"] == code).unwrap_or_else(|| panic!("{code} not applied: {ans}"))
}

#[track_caller]
fn applied_codes(ans: &Value) -> Vec<String> {
    ans["applied"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap().to_owned()).collect()
}

/// The `not_applied` entry of a campaign code.
#[track_caller]
fn missed<'a>(ans: &'a Value, code: &str) -> &'a Value {
    ans["not_applied"].as_array().unwrap().iter().find(|a| a["code"] == code).unwrap_or_else(|| panic!("{code} not in not_applied: {ans}"))
}

async fn quote(app: &TestApp, s: &Shop, b: Value) -> Value {
    let (st, v) = app.post(&s.pos, "/api/v1/pos/quote", b).await;
    assert_eq!(st, 200, "{v}");
    v
}

async fn checkout(app: &TestApp, s: &Shop, b: Value) -> Value {
    let (st, v) = app.post(&s.pos, "/api/v1/pos/checkout", b).await;
    assert_eq!(st, 200, "{v}");
    v
}

/// Receipt figures: (total, discount, redeemed_minor, payable, points_earned).
#[track_caller]
fn figures(v: &Value) -> (i64, i64, i64, i64, i64) {
    (n(&v["total_minor"]), n(&v["discount_minor"]), n(&v["redeemed_minor"]), n(&v["payable_minor"]), n(&v["points_earned"]))
}

/// Per line: (discount, payable, points_earned, cashback).
#[track_caller]
fn line_figures(v: &Value) -> Vec<(i64, i64, i64, i64)> {
    v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (n(&l["discount_minor"]), n(&l["payable_minor"]), n(&l["points_earned"]), n(&l["cashback_minor"])))
        .collect()
}

/// Fire checkouts concurrently; every answer must be 200.
async fn concurrent_checkouts(app: &Arc<TestApp>, key: &str, bodies: Vec<Value>) -> Vec<Value> {
    let mut tasks = Vec::new();
    for b in bodies {
        let (app, key) = (app.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move { app.post(&key, "/api/v1/pos/checkout", b).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        let (st, v) = t.await.unwrap();
        assert_eq!(st, 200, "{v}");
        out.push(v);
    }
    out
}

/// A small deterministic generator (xorshift64*), so that the random cases repeat.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

// ------------------------------------------------------------------ 1. effects, stacking

struct Case {
    name: &'static str,
    program: Option<Value>,
    campaigns: Vec<Value>,
    /// Points the member holds first.
    give: i64,
    items: Vec<Value>,
    redeem: Option<Value>,
    /// (total, discount, redeemed_minor, payable, points_earned)
    want: (i64, i64, i64, i64, i64),
    /// Per line: (discount, payable, points_earned, cashback)
    lines: Vec<(i64, i64, i64, i64)>,
    /// Per applied campaign in application order: (code, discount, points, cashback)
    applied: Vec<(&'static str, i64, i64, i64)>,
    /// (code, reason_code) expected in not_applied
    missed: Vec<(&'static str, &'static str)>,
}

fn effect_cases() -> Vec<Case> {
    let coffee = |no, q: i64, p| item(no, &format!("COF-{no}"), "coffee", json!(q), p);
    let tea = |no, q: i64, p| item(no, &format!("TEA-{no}"), "tea", json!(q), p);
    let tobacco = |no| item(no, "CIG", "tobacco", json!(1), 25000);
    let goods = |no, p| item(no, &format!("G-{no}"), "goods", json!(1), p);
    vec![
        Case {
            name: "discount_percent on the receipt",
            program: None,
            campaigns: vec![json!({"code": "ten", "name": "Ten off", "effects": [{"type": "discount_percent", "percent_bp": 1000}]})],
            give: 0,
            items: vec![coffee(1, 2, 15000), tobacco(2)],
            redeem: None,
            // coffee 30000 · 10 % = 3000 off; tobacco takes no discount. Payable 27000 + 25000.
            // Earn floor(52000 / 1000) = 52 spread by 27000 : 25000 → 27, 25.
            want: (55000, 3000, 0, 52000, 52),
            lines: vec![(3000, 27000, 27, 0), (0, 25000, 25, 0)],
            applied: vec![("ten", 3000, 0, 0)],
            missed: vec![],
        },
        Case {
            name: "discount_percent on a category",
            program: None,
            campaigns: vec![
                json!({"code": "cof20", "name": "Coffee 20", "effects": [{"type": "discount_percent", "percent_bp": 2000, "target": {"categories": ["COFFEE"]}}]}),
            ],
            give: 0,
            items: vec![coffee(1, 2, 15000), tea(2, 1, 10000), tobacco(3)],
            redeem: None,
            // Only coffee: 30000 · 20 % = 6000. Payable 24000 + 10000 + 25000 = 59000, earn 59
            // spread by 24000 : 10000 : 25000 → 24, 10, 25 exactly.
            want: (65000, 6000, 0, 59000, 59),
            lines: vec![(6000, 24000, 24, 0), (0, 10000, 10, 0), (0, 25000, 25, 0)],
            applied: vec![("cof20", 6000, 0, 0)],
            missed: vec![],
        },
        Case {
            name: "discount_fixed spread by net, tobacco excluded",
            program: None,
            campaigns: vec![json!({"code": "fifty", "name": "50 off", "effects": [{"type": "discount_fixed", "amount_minor": 5000}]})],
            give: 0,
            items: vec![coffee(1, 2, 15000), tea(2, 1, 10000), tobacco(3)],
            redeem: None,
            // 5000 spread over 30000 : 10000 (tobacco weight 0) → 3750, 1250.
            // Payable 26250 + 8750 + 25000 = 60000, earn 60 spread → 26.25, 8.75, 25 → floors
            // 26, 8, 25 (59), the 1 left over to the largest payable (26250) → 27, 8, 25.
            want: (65000, 5000, 0, 60000, 60),
            lines: vec![(3750, 26250, 27, 0), (1250, 8750, 8, 0), (0, 25000, 25, 0)],
            applied: vec![("fifty", 5000, 0, 0)],
            missed: vec![],
        },
        Case {
            name: "points_multiplier on a category, no_earn line left out",
            program: None,
            campaigns: vec![
                json!({"code": "x2", "name": "Double coffee", "effects": [{"type": "points_multiplier", "multiplier_bp": 20000, "target": {"categories": ["coffee"]}}]}),
            ],
            give: 0,
            items: vec![
                coffee(1, 2, 15000),
                tea(2, 1, 10000),
                json!({"line_no": 3, "sku": "COF-GIFT", "category": "coffee", "quantity": 1, "unit_price_minor": 10000, "earn": false}),
            ],
            redeem: None,
            // Base: floor(40000 / 1000) = 40 over the earning lines 30000 : 10000 → 30, 10.
            // Extra: floor(30000 · 1 · 10000 · (20000 − 10000) / (1000 · 10000 · 10000)) = 30 on
            // coffee only; the earn:false coffee line gets nothing. Total 70.
            want: (50000, 0, 0, 50000, 70),
            lines: vec![(0, 30000, 60, 0), (0, 10000, 10, 0), (0, 10000, 0, 0)],
            applied: vec![("x2", 0, 30, 0)],
            missed: vec![],
        },
        Case {
            name: "bonus_points",
            program: None,
            campaigns: vec![json!({"code": "b300", "name": "300 bonus", "effects": [{"type": "bonus_points", "points": 300}]})],
            give: 0,
            items: vec![goods(1, 10000)],
            redeem: None,
            // floor(10000 / 1000) = 10, plus 300.
            want: (10000, 0, 0, 10000, 310),
            lines: vec![(0, 10000, 310, 0)],
            applied: vec![("b300", 0, 300, 0)],
            missed: vec![],
        },
        Case {
            name: "free_item: the cheapest selected unit",
            program: None,
            campaigns: vec![
                json!({"code": "croissant", "name": "Free croissant", "effects": [{"type": "free_item", "quantity": 1, "target": {"skus": ["CRO"]}}]}),
            ],
            give: 0,
            items: vec![item(1, "CRO", "bakery", json!(3), 9000), coffee(2, 1, 15000)],
            redeem: None,
            // One of 3 croissants free: 27000 · 1 / 3 = 9000. Payable 18000 + 15000,
            // earn 33 → 18, 15.
            want: (42000, 9000, 0, 33000, 33),
            lines: vec![(9000, 18000, 18, 0), (0, 15000, 15, 0)],
            applied: vec![("croissant", 9000, 0, 0)],
            missed: vec![],
        },
        Case {
            name: "cashback percent on earning lines",
            program: None,
            campaigns: vec![json!({"code": "cb5", "name": "5 % back", "effects": [{"type": "cashback", "percent_bp": 500}]})],
            give: 0,
            items: vec![
                coffee(1, 2, 15000),
                tobacco(2),
                json!({"line_no": 3, "sku": "GIFT", "category": "goods", "quantity": 1, "unit_price_minor": 10000, "earn": false}),
            ],
            redeem: None,
            // Earning lines 30000 + 25000 (tobacco earns; the earn:false line does not):
            // 55000 · 5 % = 2750 spread 1500, 1250. Points floor(55000 / 1000) = 55 → 30, 25.
            want: (65000, 0, 0, 65000, 55),
            lines: vec![(0, 30000, 30, 1500), (0, 25000, 25, 1250), (0, 10000, 0, 0)],
            applied: vec![("cb5", 0, 0, 2750)],
            missed: vec![],
        },
        Case {
            name: "cashback fixed on a category",
            program: None,
            campaigns: vec![
                json!({"code": "cbtea", "name": "10 back on tea", "effects": [{"type": "cashback", "amount_minor": 1000, "target": {"categories": ["tea"]}}]}),
            ],
            give: 0,
            items: vec![tea(1, 1, 5000), coffee(2, 1, 15000)],
            redeem: None,
            // min(1000, 5000) = 1000 on the tea line. Points 20 → 5, 15.
            want: (20000, 0, 0, 20000, 20),
            lines: vec![(0, 5000, 5, 1000), (0, 15000, 15, 0)],
            applied: vec![("cbtea", 0, 0, 1000)],
            missed: vec![],
        },
        Case {
            name: "priority order: percent (200) before fixed (100)",
            program: None,
            campaigns: vec![
                json!({"code": "a-fixed", "name": "10 off", "priority": 100, "effects": [{"type": "discount_fixed", "amount_minor": 1000}]}),
                json!({"code": "b-pct", "name": "10 %", "priority": 200, "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
            ],
            give: 0,
            items: vec![goods(1, 20000)],
            redeem: None,
            // 10 % of 20000 = 2000 first (net 18000), then 1000 → 17000 (the other order
            // would give 19000 − 1900 = 17100). Earn 17.
            want: (20000, 3000, 0, 17000, 17),
            lines: vec![(3000, 17000, 17, 0)],
            applied: vec![("b-pct", 2000, 0, 0), ("a-fixed", 1000, 0, 0)],
            missed: vec![],
        },
        Case {
            name: "exclusive of higher priority: nothing lower applies with it",
            program: None,
            campaigns: vec![
                json!({"code": "excl", "name": "Exclusive 5", "priority": 300, "exclusive": true, "effects": [{"type": "discount_percent", "percent_bp": 500}]}),
                json!({"code": "ten", "name": "Ten", "priority": 100, "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
            ],
            give: 0,
            items: vec![goods(1, 20000)],
            redeem: None,
            // 5 % of 20000 = 1000 only. Earn 19.
            want: (20000, 1000, 0, 19000, 19),
            lines: vec![(1000, 19000, 19, 0)],
            applied: vec![("excl", 1000, 0, 0)],
            missed: vec![("ten", "not_combinable")],
        },
        Case {
            name: "exclusive of lower priority: not after a stackable one applied",
            program: None,
            campaigns: vec![
                json!({"code": "bonus", "name": "Bonus", "priority": 500, "effects": [{"type": "bonus_points", "points": 50}]}),
                json!({"code": "excl", "name": "Exclusive 5", "priority": 300, "exclusive": true, "effects": [{"type": "discount_percent", "percent_bp": 500}]}),
                json!({"code": "ten", "name": "Ten", "priority": 100, "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
            ],
            give: 0,
            items: vec![goods(1, 20000)],
            redeem: None,
            // bonus applies, excl does not combine with it, ten stacks: 2000 off,
            // earn floor(18000 / 1000) = 18 + 50 = 68.
            want: (20000, 2000, 0, 18000, 68),
            lines: vec![(2000, 18000, 68, 0)],
            applied: vec![("bonus", 0, 50, 0), ("ten", 2000, 0, 0)],
            missed: vec![("excl", "not_combinable")],
        },
        Case {
            name: "tier discount, then campaign discount, then points",
            program: Some(json!({"tiers": [{"code": "bronze", "min_spend_minor": 0, "discount_bp": 300}]})),
            campaigns: vec![json!({"code": "ten", "name": "Ten", "effects": [{"type": "discount_percent", "percent_bp": 1000}]})],
            give: 100,
            items: vec![goods(1, 20000), tobacco(2)],
            redeem: Some(json!(50)),
            // Tier: floor(20000 · 300 / 10000) = 600 → net 19400; campaign 10 % of the net:
            // 1940 → 17460; tobacco nothing. Limit floor(17460 · 0.5 / 100) = 87 ≥ 50.
            // 50 points = 5000 all on the goods line → payable 12460 + 25000 = 37460.
            // Earn 37 spread 12460 : 25000 → 12.3, 24.7 → 12, 24, leftover 1 to tobacco → 25.
            want: (45000, 2540, 5000, 37460, 37),
            lines: vec![(2540, 12460, 12, 0), (0, 25000, 25, 0)],
            applied: vec![("ten", 1940, 0, 0)],
            missed: vec![],
        },
        Case {
            name: "no_discount and no_earn exclusions under every effect",
            program: Some(json!({"no_earn_categories": ["lottery"]})),
            campaigns: vec![
                json!({"code": "a-pct", "name": "All 10", "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
                json!({"code": "b-x3", "name": "Triple", "effects": [{"type": "points_multiplier", "multiplier_bp": 30000}]}),
                json!({"code": "c-cb", "name": "Back 10", "effects": [{"type": "cashback", "percent_bp": 1000}]}),
            ],
            give: 0,
            items: vec![
                goods(1, 10000),
                tobacco(2),
                item(3, "LOT", "lottery", json!(1), 5000),
                json!({"line_no": 4, "sku": "NODISC", "category": "goods", "quantity": 1, "unit_price_minor": 4000, "discount": false}),
            ],
            redeem: None,
            // Discount 10 % on goods (1000) and on lottery (500); tobacco and the
            // discount:false line keep their totals. Payable 9000, 25000, 4500, 4000 = 42500.
            // Earning lines: all but lottery: 9000 + 25000 + 4000 = 38000 → 38 base, spread
            // 9, 25, 4. Triple: extra floor(38000 · 20000 / 10^7) = 76 → 18, 50, 8 by the same
            // weights (76·9000/38000 = 18, ·25000 = 50, ·4000 = 8). Cashback 10 % of 38000 =
            // 3800 → 900, 2500, 400; lottery gets neither.
            want: (44000, 1500, 0, 42500, 114),
            lines: vec![(1000, 9000, 27, 900), (0, 25000, 75, 2500), (500, 4500, 0, 0), (0, 4000, 12, 400)],
            applied: vec![("a-pct", 1500, 0, 0), ("b-x3", 0, 76, 0), ("c-cb", 0, 0, 3800)],
            missed: vec![],
        },
    ]
}

both!(effects_and_stacking_table, |app: TestApp| async move {
    for c in effect_cases() {
        let s = shop(&app).await;
        if let Some(p) = &c.program {
            app.program(&s.t.admin, p.clone()).await;
        }
        for k in &c.campaigns {
            campaign(&app, &s, k.clone()).await;
        }
        let m = new_member(&app, &s).await;
        if c.give > 0 {
            app.give(&s.t.admin, &m, c.give).await;
        }
        let mut b = body("R-1", Some(&m), c.items.clone());
        if let Some(r) = &c.redeem {
            b["redeem_points"] = r.clone();
        }
        let q = quote(&app, &s, b.clone()).await;
        let v = checkout(&app, &s, b).await;
        for ans in [&q, &v] {
            assert_eq!(figures(ans), c.want, "{}: {ans}", c.name);
            assert_eq!(line_figures(ans), c.lines, "{}: {ans}", c.name);
            let got: Vec<(String, i64, i64, i64)> = ans["applied"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| (a["code"].as_str().unwrap().to_owned(), n(&a["discount_minor"]), n(&a["points"]), n(&a["cashback_minor"])))
                .collect();
            let want: Vec<(String, i64, i64, i64)> = c.applied.iter().map(|(k, d, p, cb)| ((*k).to_owned(), *d, *p, *cb)).collect();
            assert_eq!(got, want, "{}: {ans}", c.name);
            for (code, reason) in &c.missed {
                assert_eq!(missed(ans, code)["reason_code"], *reason, "{}: {ans}", c.name);
            }
            let cashback: i64 = c.lines.iter().map(|l| l.3).sum();
            assert_eq!(n(&ans["cashback_minor"]), cashback, "{}: {ans}", c.name);
            // The fiscal splits always add up to the payable money.
            for l in ans["lines"].as_array().unwrap() {
                let sum: i64 = l["fiscal_splits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| n(&f["quantity"]) * n(&f["unit_price_minor"]) + n(&f["total_minor"]))
                    .sum();
                assert_eq!(sum, n(&l["payable_minor"]), "{}: {l}", c.name);
            }
        }
        // Points: what the member held − spent + earned; the wallet got the cashback.
        let spent = n(&v["points_redeemed"]);
        assert_eq!(points(&app, &s, &m).await, c.give - spent + c.want.4, "{}", c.name);
        let cashback: i64 = c.lines.iter().map(|l| l.3).sum();
        assert_eq!(wallet3(&app, &s, &m).await, (cashback, 0, 0), "{}", c.name);
        app.assert_ledger_consistent(&s.t).await;
    }
});

// The worked example R-000123 (docs/api.md) keeps its figures exactly when campaigns exist that do not
// touch it: one indexed on a category the receipt lacks (never evaluated) and one that
// misses (gold only).
both!(untouched_receipt_keeps_the_worked_example, |app: TestApp| async move {
    let s = shop(&app).await;
    campaign(&app, &s, json!({"code": "coffee", "name": "Coffee", "effects": [{"type": "discount_percent", "percent_bp": 5000, "target": {"categories": ["coffee"]}}]})).await;
    campaign(&app, &s, json!({"code": "gold", "name": "Gold double", "conditions": [{"type": "tier", "in": ["gold"]}], "effects": [{"type": "points_multiplier", "multiplier_bp": 20000}]})).await;
    let m = new_member(&app, &s).await;
    app.give(&s.t.admin, &m, 1000).await;
    // The example's till is T2: the admin key names the store.
    let v = app.checkout(&s.t.admin, worked_example(&s.store, &m)).await;
    assert_eq!(figures(&v), (263058, 0, 15000, 248058, 248));
    assert_eq!(v["points_redeemed"], 150);
    assert_eq!(v["balance"], json!({"points": 1098, "held": 0, "pending": 0, "debt": 0}));
    assert_eq!(
        v["lines"],
        json!([
            {"line_no": 1, "sku": "CD-1", "quantity": 2, "total_minor": 30000, "discount_minor": 0,
             "redeemed_minor": 1890, "points_redeemed": 18, "payable_minor": 28110, "points_earned": 29,
             "fiscal_splits": [{"quantity": 2, "unit_price_minor": 14055}]},
            {"line_no": 2, "sku": "FUEL95", "quantity": "35.27", "total_minor": 208058, "discount_minor": 0,
             "redeemed_minor": 13110, "points_redeemed": 132, "payable_minor": 194948, "points_earned": 195,
             "fiscal_splits": [{"quantity": "35.27", "total_minor": 194948}]},
            {"line_no": 3, "sku": "CIG", "quantity": 1, "total_minor": 25000, "discount_minor": 0,
             "redeemed_minor": 0, "points_redeemed": 0, "payable_minor": 25000, "points_earned": 24,
             "fiscal_splits": [{"quantity": 1, "unit_price_minor": 25000}]}
        ])
    );
    assert_eq!(v["applied"], json!([]));
    let na = v["not_applied"].as_array().unwrap();
    assert_eq!(na.len(), 1, "{v}");
    assert_eq!(na[0]["code"], "gold");
    assert_eq!(na[0]["reason"], "gold tier only");
    // No wallet fields on a receipt the wallet never touched.
    assert!(v.get("wallet").is_none() && v.get("cashback_minor").is_none() && v.get("wallet_minor").is_none(), "{v}");
    app.assert_ledger_consistent(&s.t).await;
});

// Stamp card: the every-th unit free, progress kept per member, shown in `applied`.
both!(stamp_card_gives_the_nth_free, |app: TestApp| async move {
    let s = shop(&app).await;
    let k = campaign(&app, &s, json!({"code": "stamps", "name": "5th coffee free", "effects": [{"type": "stamp_card", "every": 5, "target": {"categories": ["coffee"]}}]})).await;
    let m = new_member(&app, &s).await;
    let coffee = |q: i64| vec![item(1, "COF", "coffee", json!(q), 15000)];
    // 3 stamps, nothing free yet: the card is listed with its progress, no money.
    let v = checkout(&app, &s, body("R-1", Some(&m), coffee(3))).await;
    assert_eq!(figures(&v), (45000, 0, 0, 45000, 45));
    assert_eq!(applied(&v, "stamps")["stamps"], json!({"every": 5, "before": 0, "added": 3, "free_units": 0, "after": 3}));
    assert_eq!(stamps(&app, &s, &m, &k).await, 3);
    // 3 + 3 = 6 ≥ 5: one coffee free (45000 · 1 / 3 = 15000), 1 stamp carried over.
    // Payable 30000, earn 30.
    // Reserved first: the hold takes the stamps; a quote of the same body still sees the
    // card as before the hold, and the checkout commits the held result.
    let (st, h) = app.post(&s.pos, "/api/v1/pos/reserve", body("R-2", Some(&m), coffee(3))).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(applied(&h, "stamps")["stamps"], json!({"every": 5, "before": 3, "added": 3, "free_units": 1, "after": 1}));
    let q = quote(&app, &s, body("R-2", Some(&m), coffee(3))).await;
    assert_eq!(applied(&q, "stamps"), applied(&h, "stamps"), "{q}");
    assert_eq!(figures(&q), figures(&h));
    let v = checkout(&app, &s, body("R-2", Some(&m), coffee(3))).await;
    assert_eq!(figures(&v), (45000, 15000, 0, 30000, 30));
    let a = applied(&v, "stamps");
    assert_eq!(a["discount_minor"], 15000);
    assert_eq!(a["free_units"], 1);
    assert_eq!(a["stamps"], json!({"every": 5, "before": 3, "added": 3, "free_units": 1, "after": 1}));
    assert_eq!(v["lines"][0]["fiscal_splits"], json!([{"quantity": 3, "unit_price_minor": 10000}]));
    assert_eq!(stamps(&app, &s, &m, &k).await, 1);
    // Anonymous receipts collect no stamps: the card needs a member.
    let v = quote(&app, &s, body("R-3", None, coffee(9))).await;
    assert_eq!(missed(&v, "stamps")["reason_code"], "member_only");
    app.assert_ledger_consistent(&s.t).await;
});

// ---------------------------------------------------- 2. budgets and coupons under load

// 20 concurrent checkouts against each kind of limit that allows 5 (1 or 2 for a member):
// the campaign applies exactly as often as the limit allows, never more.
both!(budgets_hold_under_concurrent_checkouts, |app: TestApp| async move {
    let app = Arc::new(app);
    let s = shop(&app).await;
    let members: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..20 {
            v.push(new_member(&app, &s).await);
        }
        v
    };
    // Each campaign is indexed on its own category, so each round touches one campaign.
    let uses = campaign(&app, &s, json!({"code": "uses", "name": "Uses", "budget": {"uses": 5}, "effects": [{"type": "discount_percent", "percent_bp": 1000, "target": {"categories": ["c-uses"]}}]})).await;
    let pts = campaign(&app, &s, json!({"code": "pts", "name": "Points", "budget": {"points": 500}, "effects": [{"type": "bonus_points", "points": 100, "target": {"categories": ["c-pts"]}}]})).await;
    let money = campaign(&app, &s, json!({"code": "money", "name": "Money", "budget": {"money_minor": 5000}, "effects": [{"type": "discount_fixed", "amount_minor": 1000, "target": {"categories": ["c-money"]}}]})).await;
    let per = campaign(&app, &s, json!({"code": "per", "name": "Per member", "budget": {"per_member_uses": 2}, "effects": [{"type": "bonus_points", "points": 10, "target": {"categories": ["c-per"]}}]})).await;
    let cb = campaign(&app, &s, json!({"code": "cb", "name": "Cashback", "budget": {"money_minor": 2500}, "effects": [{"type": "cashback", "amount_minor": 500, "target": {"categories": ["c-cb"]}}]})).await;

    for (id, code, cat, per_member, want, reason) in [
        (&uses, "uses", "c-uses", false, 5, "budget_spent"),
        (&pts, "pts", "c-pts", false, 5, "budget_spent"),
        (&money, "money", "c-money", false, 5, "budget_spent"),
        (&cb, "cb", "c-cb", false, 5, "budget_spent"),
        (&per, "per", "c-per", true, 2, "member_limit_reached"),
    ] {
        let bodies: Vec<Value> = (0..20)
            .map(|i| {
                let m = if per_member { &members[0] } else { &members[i] };
                body(&format!("{code}-{i}"), Some(m), vec![item(1, "X", cat, json!(1), 10000)])
            })
            .collect();
        let answers = concurrent_checkouts(&app, &s.pos, bodies).await;
        let hits = answers.iter().filter(|a| applied_codes(a).contains(&code.to_owned())).count();
        assert_eq!(hits, want, "{code}");
        for a in answers.iter().filter(|a| !applied_codes(a).contains(&code.to_owned())) {
            assert_eq!(missed(a, code)["reason_code"], reason, "{a}");
        }
        let u = usage(&app, &s, id).await;
        assert_eq!(u["uses"], want as i64, "{code}: {u}");
        match code {
            "pts" => assert_eq!(u["points"], 500),
            "money" => assert_eq!(u["money_minor"], 5000),
            "cb" => assert_eq!(u["money_minor"], 2500),
            _ => {}
        }
    }
    app.assert_ledger_consistent(&s.t).await;
});

// Random cases (fixed seed): random limits and concurrency, the counts never pass them.
both!(budgets_random_cases_never_exceeded, |app: TestApp| async move {
    let app = Arc::new(app);
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for case in 0..3 {
        let s = shop(&app).await;
        let limit = 1 + rng.below(5) as i64;
        let concurrency = 6 + rng.below(7) as usize;
        let bonus = 10 + rng.below(90) as i64;
        let (budget, fits) = match rng.below(3) {
            0 => (json!({"uses": limit}), limit),
            1 => (json!({"points": bonus * limit + rng.below(bonus as u64) as i64}), limit),
            _ => (json!({"uses": limit + 3, "per_member_uses": limit}), limit),
        };
        let per_member = budget.get("per_member_uses").is_some();
        let id = campaign(
            &app,
            &s,
            json!({"code": "r", "name": "Random", "budget": budget, "effects": [{"type": "bonus_points", "points": bonus}]}),
        )
        .await;
        let one = new_member(&app, &s).await;
        let mut bodies = Vec::new();
        for i in 0..concurrency {
            let m = if per_member { one.clone() } else { new_member(&app, &s).await };
            bodies.push(body(&format!("R-{i}"), Some(&m), vec![item(1, "X", "goods", json!(1), 5000)]));
        }
        let answers = concurrent_checkouts(&app, &s.pos, bodies).await;
        let hits = answers.iter().filter(|a| applied_codes(a).contains(&"r".to_owned())).count() as i64;
        assert_eq!(hits, fits.min(concurrency as i64), "case {case}: {budget}");
        let u = usage(&app, &s, &id).await;
        assert_eq!(u["uses"], hits, "case {case}");
        assert_eq!(u["points"], hits * bonus, "case {case}");
        app.assert_ledger_consistent(&s.t).await;
    }
});

// A coupon is never redeemed beyond max_uses, nor beyond per_member_limit.
both!(coupons_hold_under_concurrent_checkouts, |app: TestApp| async move {
    let app = Arc::new(app);
    let s = shop(&app).await;
    let k = campaign(
        &app,
        &s,
        json!({"code": "spring", "name": "Spring", "requires_coupon": true, "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
    )
    .await;
    coupons(&app, &s, &k, json!({"code": "spring", "max_uses": 5})).await;
    let mut bodies = Vec::new();
    for i in 0..20 {
        let m = new_member(&app, &s).await;
        let mut b = body(&format!("C-{i}"), Some(&m), vec![item(1, "X", "goods", json!(1), 10000)]);
        b["coupons"] = json!(["Spring"]);
        bodies.push(b);
    }
    let answers = concurrent_checkouts(&app, &s.pos, bodies).await;
    let used: Vec<&Value> = answers.iter().filter(|a| applied_codes(a).contains(&"spring".to_owned())).collect();
    assert_eq!(used.len(), 5);
    for a in &used {
        assert_eq!(applied(a, "spring")["coupon"], "SPRING");
        assert_eq!(a["discount_minor"], 1000);
    }
    for a in answers.iter().filter(|a| !applied_codes(a).contains(&"spring".to_owned())) {
        let miss = missed(a, "spring");
        assert_eq!(miss["reason_code"], "coupon_used_up", "{a}");
        assert_eq!(miss["reason"], "coupon SPRING has been used up");
        assert_eq!(a["discount_minor"], 0);
    }
    let (_, v) = app.post(&s.pos, "/api/v1/coupons/validate", json!({"code": "SPRING"})).await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["uses"], 5);

    // Per member: one member, 10 concurrent checkouts, a limit of 1 each.
    let k2 = campaign(
        &app,
        &s,
        json!({"code": "once", "name": "Once", "requires_coupon": true, "effects": [{"type": "discount_fixed", "amount_minor": 500}]}),
    )
    .await;
    coupons(&app, &s, &k2, json!({"code": "ONCE", "per_member_limit": 1})).await;
    let m = new_member(&app, &s).await;
    let bodies: Vec<Value> = (0..10)
        .map(|i| {
            let mut b = body(&format!("P-{i}"), Some(&m), vec![item(1, "X", "goods", json!(1), 10000)]);
            b["coupons"] = json!(["ONCE"]);
            b
        })
        .collect();
    let answers = concurrent_checkouts(&app, &s.pos, bodies).await;
    assert_eq!(answers.iter().filter(|a| applied_codes(a).contains(&"once".to_owned())).count(), 1);
    for a in answers.iter().filter(|a| !applied_codes(a).contains(&"once".to_owned())) {
        assert_eq!(missed(a, "once")["reason_code"], "coupon_member_limit", "{a}");
    }
    app.assert_ledger_consistent(&s.t).await;
});

// A reserve holds coupon uses, budget and wallet money; cancel and hold expiry give them
// back.
both!(reserve_holds_coupon_and_budget_until_released, |app: TestApp| async move {
    let s = shop(&app).await;
    app.program(&s.t.admin, json!({"redeem": {"hold_ttl_s": 2}})).await;
    let k = campaign(
        &app,
        &s,
        json!({"code": "spring", "name": "Spring", "requires_coupon": true, "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
    )
    .await;
    coupons(&app, &s, &k, json!({"code": "ONE", "max_uses": 1})).await;
    let b1 = campaign(
        &app,
        &s,
        json!({"code": "limited", "name": "Limited", "budget": {"uses": 1}, "effects": [{"type": "bonus_points", "points": 100}]}),
    )
    .await;
    let (a, b) = (new_member(&app, &s).await, new_member(&app, &s).await);
    let rcpt = |id: &str, m: &str| {
        let mut v = body(id, Some(m), vec![item(1, "X", "goods", json!(1), 10000)]);
        v["coupons"] = json!(["ONE"]);
        v
    };
    // A reserves: coupon and budget held.
    let (st, h) = app.post(&s.pos, "/api/v1/pos/reserve", rcpt("H-1", &a)).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(applied_codes(&h), vec!["limited", "spring"]);
    assert_eq!(usage(&app, &s, &b1).await["uses"], 1);
    // The receipt's own hold counts as available to it: a quote of the same body agrees
    // with the reserve (and the checkout to come).
    let q = quote(&app, &s, rcpt("H-1", &a)).await;
    assert_eq!(applied_codes(&q), vec!["limited", "spring"], "{q}");
    assert_eq!((n(&q["discount_minor"]), n(&q["points_earned"])), (1000, 109), "{q}");
    let q = quote(&app, &s, rcpt("Q-1", &b)).await;
    assert_eq!(missed(&q, "spring")["reason_code"], "coupon_used_up");
    assert_eq!(missed(&q, "limited")["reason_code"], "budget_spent");
    // Cancel releases both.
    let (st, c) = app.post(&s.pos, "/api/v1/pos/cancel", json!({"receipt_id": "H-1"})).await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(usage(&app, &s, &b1).await["uses"], 0);
    let q = quote(&app, &s, rcpt("Q-1", &b)).await;
    assert_eq!(applied_codes(&q), vec!["limited", "spring"]);

    // Reserve again, let the hold expire: the sweep (or the holder's next request) gives
    // everything back.
    let (st, h) = app.post(&s.pos, "/api/v1/pos/reserve", rcpt("H-2", &a)).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(usage(&app, &s, &b1).await["uses"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    app.run_jobs().await;
    assert_eq!(usage(&app, &s, &b1).await["uses"], 0);
    let v = checkout(&app, &s, rcpt("C-1", &b)).await;
    assert_eq!(applied_codes(&v), vec!["limited", "spring"]);
    assert_eq!(v["discount_minor"], 1000);
    assert_eq!(usage(&app, &s, &b1).await["uses"], 1);
    // A reserved-then-checked-out receipt keeps them (committed, not released twice).
    let (st, h) = app.post(&s.pos, "/api/v1/pos/reserve", body("H-3", Some(&a), vec![item(1, "X", "goods", json!(1), 10000)])).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(missed(&h, "limited")["reason_code"], "budget_spent");
    app.assert_ledger_consistent(&s.t).await;
});

// ------------------------------------------------------------- 3. refunds and voids

/// The refund scenario: a member with 1000 points, a 5 % cashback campaign, a coupon
/// SPRING (10 %, one use) and a stamp card (every 3rd coffee). Returns
/// (shop, member, stamp campaign id, coupon campaign id).
async fn refund_scenario(app: &TestApp) -> (Shop, String, String) {
    let s = shop(app).await;
    campaign(app, &s, json!({"code": "cashback5", "name": "5 % back", "effects": [{"type": "cashback", "percent_bp": 500}]})).await;
    let spring = campaign(
        app,
        &s,
        json!({"code": "spring", "name": "Spring", "requires_coupon": true, "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
    )
    .await;
    coupons(app, &s, &spring, json!({"code": "SPRING", "max_uses": 1})).await;
    let st = campaign(app, &s, json!({"code": "stamps", "name": "3rd coffee free", "effects": [{"type": "stamp_card", "every": 3, "target": {"categories": ["coffee"]}}]})).await;
    let m = new_member(app, &s).await;
    app.give(&s.t.admin, &m, 1000).await;
    // R1: 2 coffees, 30000: 2 stamps, 30 points, 1500 cashback.
    let v = checkout(app, &s, body("R-1", Some(&m), vec![item(1, "COF", "coffee", json!(2), 15000)])).await;
    assert_eq!(figures(&v), (30000, 0, 0, 30000, 30));
    assert_eq!(v["cashback_minor"], 1500);
    (s, m, st)
}

/// R2: 2 coffees and goods, the coupon, 50 points and 1000 of wallet money.
fn discounted_receipt(id: &str, m: &str) -> Value {
    let mut b = body(id, Some(m), vec![item(1, "COF", "coffee", json!(2), 15000), item(2, "G", "goods", json!(1), 20000)]);
    b["coupons"] = json!(["spring"]);
    b["redeem_points"] = json!(50);
    b["redeem_wallet_minor"] = json!(1000);
    b
}

/// The hand-worked R2 (campaigns in order cashback5, spring, stamps: priority ties go to
/// the smaller code):
/// - spring 10 %: coffee 30000 → 3000 off (27000), goods 20000 → 2000 off (18000);
/// - stamps: 2 before + 2 = 4 ≥ 3, one coffee free: 27000 · 1 / 2 = 13500 → 13500;
///   discounts 16500 + 2000 = 18500;
/// - limit floor(31500 · 0.5 / 100) = 157; 50 points = 5000 spread 13500 : 18000 →
///   2142.9, 2857.1 → 2142, 2857, leftover 1 to goods → 2858; the points 50 by
///   2142 : 2858 → 21.4, 28.6 → 21, 28, leftover to goods → 29;
/// - wallet within 15750 − 5000 = 10750: 1000 spread by 11358 : 15142 → 428.6, 571.4 →
///   428, 571, leftover to goods → 572; payable 10930 + 14570 = 25500;
/// - earn floor(25500 / 1000) = 25 → 10.7, 14.3 → 10, 14, leftover to goods → 15;
/// - cashback 5 % of 25500 = 1275 → 546.5, 728.5 → 546, 728, leftover to goods → 729.
#[track_caller]
fn assert_discounted_receipt(v: &Value) {
    assert_eq!(figures(v), (50000, 18500, 5000, 25500, 25), "{v}");
    assert_eq!(v["points_redeemed"], 50);
    assert_eq!(v["wallet_minor"], 1000);
    assert_eq!(v["cashback_minor"], 1275);
    assert_eq!(line_figures(v), vec![(16500, 10930, 10, 546), (2000, 14570, 15, 729)], "{v}");
    let l: Vec<(i64, i64, i64)> =
        v["lines"].as_array().unwrap().iter().map(|l| (n(&l["redeemed_minor"]), n(&l["points_redeemed"]), n(&l["wallet_minor"]))).collect();
    assert_eq!(l, vec![(2142, 21, 428), (2858, 29, 572)]);
    assert_eq!(applied_codes(v), vec!["cashback5", "spring", "stamps"]);
    assert_eq!(applied(v, "spring")["discount_minor"], 5000);
    assert_eq!(applied(v, "spring")["coupon"], "SPRING");
    assert_eq!(applied(v, "stamps")["discount_minor"], 13500);
    assert_eq!(applied(v, "stamps")["stamps"], json!({"every": 3, "before": 2, "added": 2, "free_units": 1, "after": 1}));
    assert_eq!(applied(v, "cashback5")["cashback_minor"], 1275);
}

both!(refund_returns_exactly_what_was_taken, |app: TestApp| async move {
    let (s, m, stamp_card) = refund_scenario(&app).await;
    // Before R2: 1030 points, 1500 in the wallet, 2 stamps, the coupon unused.
    assert_eq!(points(&app, &s, &m).await, 1030);
    assert_eq!(wallet3(&app, &s, &m).await, (1500, 0, 0));
    assert_eq!(stamps(&app, &s, &m, &stamp_card).await, 2);

    let q = quote(&app, &s, discounted_receipt("R-2", &m)).await;
    assert_discounted_receipt(&q);
    let v = checkout(&app, &s, discounted_receipt("R-2", &m)).await;
    assert_discounted_receipt(&v);
    // 1030 − 50 + 25 = 1005; wallet 1500 − 1000 + 1275 = 1775; stamps 2 + 2 − 3 = 1.
    assert_eq!(points(&app, &s, &m).await, 1005);
    assert_eq!(v["wallet"]["balance_minor"], 1775);
    assert_eq!(wallet3(&app, &s, &m).await, (1775, 0, 0));
    assert_eq!(stamps(&app, &s, &m, &stamp_card).await, 1);
    let (_, val) = app.post(&s.pos, "/api/v1/coupons/validate", json!({"code": "SPRING"})).await;
    assert_eq!(val["valid"], false);
    assert_eq!(val["reason_code"], "coupon_used_up");

    // Refund the goods line first (partial): its points and money, no stamps move.
    let (st, r) =
        app.post(&s.pos, "/api/v1/pos/refund", json!({"receipt_id": "R-2", "refund_id": "RF-1", "items": [{"line_no": 2}]})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!((n(&r["refund_minor"]), n(&r["points_returned"]), n(&r["points_reversed"])), (14570, 29, 15));
    assert_eq!((n(&r["wallet_returned_minor"]), n(&r["cashback_reversed_minor"])), (572, 729));
    assert_eq!(stamps(&app, &s, &m, &stamp_card).await, 1);
    let (_, val) = app.post(&s.pos, "/api/v1/coupons/validate", json!({"code": "SPRING"})).await;
    assert_eq!(val["valid"], false, "a partial refund keeps the coupon used");
    // Then the rest: everything is back as before R2.
    let (st, r) = app.post(&s.pos, "/api/v1/pos/refund", json!({"receipt_id": "R-2", "refund_id": "RF-2"})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!((n(&r["refund_minor"]), n(&r["withheld_minor"]), n(&r["points_returned"]), n(&r["points_reversed"])), (10930, 0, 21, 10));
    assert_eq!(points(&app, &s, &m).await, 1030);
    assert_eq!(wallet3(&app, &s, &m).await, (1500, 0, 0));
    assert_eq!(stamps(&app, &s, &m, &stamp_card).await, 2);
    let (_, val) = app.post(&s.pos, "/api/v1/coupons/validate", json!({"code": "SPRING"})).await;
    assert_eq!(val["valid"], true, "{val}");
    assert_eq!(val["uses"], 0);

    // The coupon works again, with the very same figures.
    let v = checkout(&app, &s, discounted_receipt("R-3", &m)).await;
    assert_discounted_receipt(&v);
    // A void gives everything back too.
    let (st, c) = app.post(&s.pos, "/api/v1/pos/cancel", json!({"receipt_id": "R-3"})).await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["status"], "cancelled");
    assert_eq!(points(&app, &s, &m).await, 1030);
    assert_eq!(wallet3(&app, &s, &m).await, (1500, 0, 0));
    assert_eq!(stamps(&app, &s, &m, &stamp_card).await, 2);
    let (_, val) = app.post(&s.pos, "/api/v1/coupons/validate", json!({"code": "SPRING"})).await;
    assert_eq!(val["valid"], true, "{val}");
    app.assert_ledger_consistent(&s.t).await;
});

// Cashback the member already spent is withheld from the money refunded.
both!(refund_withholds_spent_cashback, |app: TestApp| async move {
    let (s, m, _) = refund_scenario(&app).await;
    // R3 spends the whole wallet: goods 10000, limit 5000, wallet 1500 → payable 8500,
    // cashback 5 % = 425 (the wallet is now 425), earn 8.
    let mut b = body("R-3", Some(&m), vec![item(1, "G", "goods", json!(1), 10000)]);
    b["redeem_wallet_minor"] = json!("max");
    let v = checkout(&app, &s, b).await;
    assert_eq!(v["wallet_minor"], 1500, "{v}");
    assert_eq!(figures(&v), (10000, 0, 0, 8500, 8));
    assert_eq!(v["cashback_minor"], 425);
    assert_eq!(wallet3(&app, &s, &m).await, (425, 0, 0));
    // A void of R1 is refused: its cashback is spent.
    let (st, c) = app.post(&s.pos, "/api/v1/pos/cancel", json!({"receipt_id": "R-1"})).await;
    assert_error(&(st, c), 409, "cancel_not_possible");
    // Refund R1 in full: 1500 cashback back, the wallet covers 425, 1075 is withheld from
    // the 30000: 28925 paid back, the wallet ends at 0 with no debt.
    let (st, r) = app.post(&s.pos, "/api/v1/pos/refund", json!({"receipt_id": "R-1", "refund_id": "RF-1"})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!((n(&r["refund_minor"]), n(&r["withheld_minor"])), (28925, 1075), "{r}");
    assert_eq!(r["lines"], json!([{"line_no": 1, "quantity": 2, "refund_minor": 28925, "withheld_minor": 1075}]));
    assert_eq!(n(&r["cashback_reversed_minor"]), 1500);
    assert_eq!(wallet3(&app, &s, &m).await, (0, 0, 0));
    // Points: 1000 + 30 + 8 − 30 = 1008.
    assert_eq!(points(&app, &s, &m).await, 1008);
    app.assert_ledger_consistent(&s.t).await;
});

// ------------------------------------------------------------ 4. every not_applied reason

/// A fixed time: the most recent Monday before today, 10:00 UTC (within the offline window).
fn monday_10() -> (NaiveDate, i64) {
    let mut d = Utc::now().date_naive() - Duration::days(1);
    while d.weekday() != Weekday::Mon {
        d -= Duration::days(1);
    }
    (d, d.and_hms_opt(10, 0, 0).unwrap().and_utc().timestamp())
}

both!(every_not_applied_reason, |app: TestApp| async move {
    let s = shop(&app).await;
    let (monday, at) = monday_10();
    let m = new_member(&app, &s).await;
    // Each campaign targets its own category, so a receipt of that category meets only it.
    let bonus = |cat: &str| json!([{"type": "bonus_points", "points": 10, "target": {"categories": [cat]}}]);
    let mk = |code: &str, extra: Value| {
        let mut c = json!({"code": code, "name": format!("Offer {code}"), "effects": bonus(code)});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let cases: Vec<(&str, Value, Value, &str, String)> = vec![
        (
            "qty",
            json!({"conditions": [{"type": "min_quantity", "min": 3, "categories": ["qty"]}]}),
            json!(1),
            "needs_quantity",
            "needs 2 more items in category qty".into(),
        ),
        (
            "qty1",
            json!({"conditions": [{"type": "min_quantity", "min": 2, "categories": ["qty1"]}]}),
            json!(1),
            "needs_quantity",
            "needs 1 more item in category qty1".into(),
        ),
        (
            "kg",
            json!({"conditions": [{"type": "min_quantity", "min": "2.000", "categories": ["kg"]}]}),
            json!("0.5"),
            "needs_quantity",
            "needs 1.500 more in category kg".into(),
        ),
        (
            "amt",
            json!({"conditions": [{"type": "min_amount", "min_minor": 50000, "skus": ["X-amt"]}]}),
            json!(1),
            "needs_amount",
            "needs 300.00 RUB more of X-amt".into(),
        ),
        (
            "total",
            json!({"conditions": [{"type": "receipt_total", "min_minor": 100000}]}),
            json!(1),
            "needs_receipt_total",
            "needs 800.00 RUB more on the receipt".into(),
        ),
        (
            "tier",
            json!({"conditions": [{"type": "tier", "in": ["silver", "gold"]}]}),
            json!(1),
            "tier_only",
            "silver or gold tier only".into(),
        ),
        (
            "seg",
            json!({"conditions": [{"type": "segment", "tag": "VIP"}]}),
            json!(1),
            "segment_only",
            "members in segment \"vip\" only".into(),
        ),
        (
            "attr",
            json!({"conditions": [{"type": "attribute", "name": "city", "in": ["Moscow"]}]}),
            json!(1),
            "attribute_only",
            "only for members with a matching city".into(),
        ),
        (
            "enrol",
            json!({"conditions": [{"type": "days_since_enrolment", "min": 30}]}),
            json!(1),
            "enrolled_too_recently",
            "available to this member in 30 days".into(),
        ),
        (
            "bday",
            json!({"conditions": [{"type": "birthday", "days_before": 3, "days_after": 3}]}),
            json!(1),
            "birthday_unknown",
            "the member's birthday is not known".into(),
        ),
        (
            "store",
            json!({"conditions": [{"type": "store", "in": ["OTHER"]}]}),
            json!(1),
            "not_this_store",
            "not valid at this store".into(),
        ),
        (
            "days",
            json!({"conditions": [{"type": "weekday", "days": ["sat", "tue"]}]}),
            json!(1),
            "weekdays_only",
            "only on Tuesday, Saturday".into(),
        ),
        (
            "hours",
            json!({"conditions": [{"type": "time_window", "from": "12:00", "to": "14:00"}]}),
            json!(1),
            "hours_only",
            "only from 12:00 to 14:00".into(),
        ),
        (
            "night",
            json!({"conditions": [{"type": "time_window", "from": "22:00", "to": "06:00"}]}),
            json!(1),
            "hours_only",
            "only from 22:00 to 06:00".into(),
        ),
        (
            "cel",
            json!({"cel": {"expression": "receipt.total_minor > 1000000", "reason": {"en": "big baskets only", "ru": "только для больших корзин"}}}),
            json!(1),
            "custom",
            "big baskets only".into(),
        ),
        ("sat", json!({"starts_at": rfc3339(at - 10 * 3600 + 5 * 86400)}), json!(1), "not_started", "starts Saturday".into()),
        (
            "later",
            json!({"starts_at": rfc3339(at + 10 * 86400)}),
            json!(1),
            "not_started",
            format!("starts on {}", monday + Duration::days(10)),
        ),
        ("excl", json!({}), json!(1), "not_combinable", "does not combine with \"Exclusive\"".into()),
        (
            "tob",
            json!({"effects": [{"type": "discount_percent", "percent_bp": 1000, "target": {"categories": ["tob"]}}]}),
            json!(1),
            "nothing_qualifies",
            "nothing on this receipt qualifies".into(),
        ),
    ];
    // An exclusive campaign of higher priority on category excl.
    campaign(&app, &s, json!({"code": "exclusive", "name": "Exclusive", "priority": 1000, "exclusive": true, "effects": bonus("excl")}))
        .await;
    app.program(&s.t.admin, json!({"no_discount_categories": ["tobacco", "tob"]})).await;
    for (code, extra, _, _, _) in &cases {
        campaign(&app, &s, mk(code, extra.clone())).await;
    }
    for (code, _, qty, reason_code, text) in &cases {
        let mut b = body(
            "Q",
            Some(&m),
            vec![json!({"line_no": 1, "sku": format!("X-{code}"), "category": code, "quantity": qty, "unit_price_minor": 20000})],
        );
        // Time conditions are checked at the fixed Monday 10:00; the rest now (the member
        // enrolled just now: 0 days).
        if ["days", "hours", "night", "sat", "later"].contains(code) {
            b["occurred_at"] = json!(rfc3339(at));
        }
        let q = quote(&app, &s, b).await;
        let miss = missed(&q, code);
        assert_eq!(miss["reason_code"], *reason_code, "{code}: {q}");
        assert_eq!(miss["reason"], *text, "{code}: {q}");
        assert!(!applied_codes(&q).contains(&code.to_string()), "{code}: {q}");
    }
    let _ = monday;

    // Reasons that need the member's state.
    let quote_cat = |cat: &'static str, member: Option<String>| {
        let mut b = body("Q", member.as_deref(), vec![item(1, &format!("X-{cat}"), cat, json!(1), 20000)]);
        b["occurred_at"] = json!(rfc3339(at));
        b
    };
    // Birthday known but far away; enrolment offer over; first purchase only; member only.
    campaign(&app, &s, mk("bday2", json!({"conditions": [{"type": "birthday", "days_before": 3, "days_after": 3}]}))).await;
    // 2000 is a leap year, so any month and day exist.
    let far = (monday + Duration::days(180)).format("2000-%m-%d").to_string();
    let with_bday = app.member_id(&s.t.admin, json!({"birthday": far})).await;
    let q = quote(&app, &s, quote_cat("bday2", Some(with_bday.clone()))).await;
    assert_eq!(
        (missed(&q, "bday2")["reason_code"].clone(), missed(&q, "bday2")["reason"].clone()),
        (json!("birthday_only"), json!("only around the member's birthday"))
    );
    campaign(&app, &s, mk("newbie", json!({"conditions": [{"type": "days_since_enrolment", "max": 7}]}))).await;
    let old = new_member(&app, &s).await;
    let db = app.state.db.pool();
    sqlx::query("UPDATE members SET created_at = created_at - 3000000 WHERE id = $1").bind(old.clone()).execute(db).await.unwrap();
    let q = quote(&app, &s, quote_cat("newbie", Some(old.clone()))).await;
    assert_eq!(
        (missed(&q, "newbie")["reason_code"].clone(), missed(&q, "newbie")["reason"].clone()),
        (json!("enrolment_offer_over"), json!("only in the first 7 days after joining"))
    );
    campaign(&app, &s, mk("first", json!({"conditions": [{"type": "first_purchase"}]}))).await;
    let q = quote(&app, &s, quote_cat("first", Some(m.clone()))).await;
    assert_eq!(applied_codes(&q), vec!["first"], "a member with no purchase yet gets it: {q}");
    checkout(&app, &s, body("P-1", Some(&m), vec![item(1, "G", "goods", json!(1), 1000)])).await;
    let q = quote(&app, &s, quote_cat("first", Some(m.clone()))).await;
    assert_eq!(
        (missed(&q, "first")["reason_code"].clone(), missed(&q, "first")["reason"].clone()),
        (json!("first_purchase_only"), json!("first purchase only"))
    );
    let q = quote(&app, &s, quote_cat("first", None)).await;
    assert_eq!(
        (missed(&q, "first")["reason_code"].clone(), missed(&q, "first")["reason"].clone()),
        (json!("member_only"), json!("needs a loyalty card"))
    );
    // The member's segment and attribute make them apply.
    let (st, v) =
        app.put(&s.t.admin, &format!("/api/v1/members/{m}/segments"), json!({"tags": ["vip"], "attributes": {"city": "Moscow"}})).await;
    assert_eq!(st, 200, "{v}");
    for cat in ["seg", "attr"] {
        let q = quote(&app, &s, quote_cat(cat, Some(m.clone()))).await;
        assert_eq!(applied_codes(&q), vec![cat.to_owned()], "{q}");
    }

    // Budgets: spent, and a member's limit reached.
    campaign(&app, &s, mk("budget", json!({"budget": {"uses": 1}}))).await;
    campaign(&app, &s, mk("permember", json!({"budget": {"per_member_uses": 1}}))).await;
    checkout(
        &app,
        &s,
        body("B-1", Some(&m), vec![item(1, "X-budget", "budget", json!(1), 20000), item(2, "X-pm", "permember", json!(1), 20000)]),
    )
    .await;
    let q = quote(
        &app,
        &s,
        body("Q", Some(&m), vec![item(1, "X-budget", "budget", json!(1), 20000), item(2, "X-pm", "permember", json!(1), 20000)]),
    )
    .await;
    assert_eq!(
        (missed(&q, "budget")["reason_code"].clone(), missed(&q, "budget")["reason"].clone()),
        (json!("budget_spent"), json!("budget spent"))
    );
    assert_eq!(
        (missed(&q, "permember")["reason_code"].clone(), missed(&q, "permember")["reason"].clone()),
        (json!("member_limit_reached"), json!("this member has reached the offer's limit"))
    );
    // Another member still gets the per-member offer.
    let other = new_member(&app, &s).await;
    let q = quote(&app, &s, body("Q", Some(&other), vec![item(2, "X-pm", "permember", json!(1), 20000)])).await;
    assert_eq!(applied_codes(&q), vec!["permember"]);

    // Coupons: every reason a known coupon cannot be used.
    let now = unix_now();
    let cp = campaign(
        &app,
        &s,
        json!({"code": "cp", "name": "Coupon", "requires_coupon": true, "effects": [{"type": "discount_fixed", "amount_minor": 100}]}),
    )
    .await;
    coupons(&app, &s, &cp, json!({"code": "OLD", "expires_at": rfc3339(now - 60)})).await;
    coupons(&app, &s, &cp, json!({"code": "SOON", "starts_at": rfc3339(now + 86400)})).await;
    coupons(&app, &s, &cp, json!({"code": "USED", "max_uses": 1})).await;
    coupons(&app, &s, &cp, json!({"code": "ONCE", "per_member_limit": 1})).await;
    coupons(&app, &s, &cp, json!({"code": "HERS", "member_id": other})).await;
    let off = coupons(&app, &s, &cp, json!({"code": "OFF"})).await;
    let off_id = off["coupons"][0]["id"].as_str().unwrap().to_owned();
    let (st, v) = app.delete(&s.t.admin, &format!("/api/v1/coupons/{off_id}")).await;
    assert_eq!(st, 200, "{v}");
    let with_coupon = |code: &str, member: Option<&str>| {
        let mut b = body(&format!("K-{code}"), member, vec![item(1, "G", "goods", json!(1), 20000)]);
        b["coupons"] = json!([code]);
        b
    };
    checkout(&app, &s, with_coupon("USED", Some(&m))).await;
    checkout(&app, &s, with_coupon("ONCE", Some(&m))).await;
    for (code, member, reason_code, text) in [
        ("OLD", Some(m.as_str()), "coupon_expired", "coupon OLD has expired"),
        ("SOON", Some(m.as_str()), "coupon_not_yet_valid", "coupon SOON is not valid yet"),
        ("USED", Some(m.as_str()), "coupon_used_up", "coupon USED has been used up"),
        ("ONCE", Some(m.as_str()), "coupon_member_limit", "this member has already used coupon ONCE"),
        ("HERS", Some(m.as_str()), "coupon_not_for_member", "coupon HERS belongs to another member"),
        ("HERS", None, "coupon_needs_member", "coupon HERS needs the member's loyalty card"),
        ("OFF", Some(m.as_str()), "coupon_inactive", "coupon OFF is not active"),
    ] {
        let mut b = with_coupon(code, member);
        b["receipt_id"] = json!("Q-coupon");
        let q = quote(&app, &s, b).await;
        let miss = missed(&q, "cp");
        assert_eq!((miss["reason_code"].as_str().unwrap(), miss["reason"].as_str().unwrap()), (reason_code, text), "{code}: {q}");
        assert_eq!(q["discount_minor"], 0, "{code}");
    }
    // The rightful member uses HERS.
    let q = quote(&app, &s, with_coupon("HERS", Some(&other))).await;
    assert_eq!(applied_codes(&q), vec!["cp"]);

    // Russian texts.
    app.program(&s.t.admin, json!({"language": "ru", "no_discount_categories": ["tobacco", "tob"]})).await;
    for (cat, qty, text) in [
        ("qty", json!(1), "нужно ещё 2 товара из категории qty"),
        ("tier", json!(1), "только для уровня silver или gold"),
        ("sat", json!(1), "начнётся в субботу"),
        ("cel", json!(1), "только для больших корзин"),
        ("amt", json!(1), "нужно ещё на 300,00 ₽ из списка X-amt"),
    ] {
        let mut b = body(
            "Q",
            Some(&m),
            vec![json!({"line_no": 1, "sku": format!("X-{cat}"), "category": cat, "quantity": qty, "unit_price_minor": 20000})],
        );
        b["occurred_at"] = json!(rfc3339(at));
        let q = quote(&app, &s, b).await;
        assert_eq!(missed(&q, cat)["reason"], text, "{q}");
    }
    let q = quote(&app, &s, body("Q", Some(&m), vec![item(1, "X-budget", "budget", json!(1), 20000)])).await;
    assert_eq!(missed(&q, "budget")["reason"], "бюджет акции исчерпан");
    let q = quote(&app, &s, with_coupon("OLD", Some(&m))).await;
    assert_eq!(missed(&q, "cp")["reason"], "срок действия купона OLD истёк");
    app.assert_ledger_consistent(&s.t).await;
});

// At most 5 misses, the nearest first; personal offers for others are never shown.
both!(misses_nearest_first_and_personal_offers_hidden, |app: TestApp| async move {
    let s = shop(&app).await;
    let (a, b) = (new_member(&app, &s).await, new_member(&app, &s).await);
    // Needing 2..8 units with 1 on the receipt: distances 1/2, 2/3, …, 7/8.
    for min in [5, 2, 8, 3, 7, 4, 6] {
        campaign(&app, &s, json!({"code": format!("q{min}"), "name": format!("Buy {min}"), "conditions": [{"type": "min_quantity", "min": min, "categories": ["near"]}], "effects": [{"type": "bonus_points", "points": 5}]})).await;
    }
    campaign(&app, &s, json!({"code": "gold", "name": "Gold", "conditions": [{"type": "tier", "in": ["gold"]}], "effects": [{"type": "bonus_points", "points": 5}]})).await;
    // Personal offers for b: by id, and by segment tag.
    campaign(&app, &s, json!({"code": "for-b", "name": "For B", "audience": {"member_ids": [b]}, "conditions": [{"type": "min_quantity", "min": 2, "categories": ["near"]}], "effects": [{"type": "bonus_points", "points": 7}]})).await;
    campaign(
        &app,
        &s,
        json!({"code": "vips", "name": "VIPs", "audience": {"segment_tags": ["vip"]}, "effects": [{"type": "bonus_points", "points": 9}]}),
    )
    .await;
    let r = |m: &str| body("Q", Some(m), vec![item(1, "N", "near", json!(1), 10000)]);
    let q = quote(&app, &s, r(&a)).await;
    let codes: Vec<&str> = q["not_applied"].as_array().unwrap().iter().map(|x| x["code"].as_str().unwrap()).collect();
    assert_eq!(codes, vec!["q2", "q3", "q4", "q5", "q6"], "{q}");
    assert_eq!(q["not_applied"][0]["reason"], "needs 1 more item in category near");
    assert_eq!(q["applied"], json!([]));
    // b sees their own offers, and a never does.
    let q = quote(&app, &s, r(&b)).await;
    assert!(q["not_applied"].as_array().unwrap().iter().any(|x| x["code"] == "for-b"), "{q}");
    let (st, _) = app.put(&s.t.admin, &format!("/api/v1/members/{b}/segments"), json!({"tags": ["VIP"]})).await;
    assert_eq!(st, 200);
    let q = quote(&app, &s, body("Q", Some(&b), vec![item(1, "N", "near", json!(2), 10000)])).await;
    assert_eq!(applied_codes(&q), vec!["for-b", "q2", "vips"], "{q}");
    let q = quote(&app, &s, body("Q", Some(&a), vec![item(1, "N", "near", json!(2), 10000)])).await;
    assert_eq!(applied_codes(&q), vec!["q2"], "{q}");
    for x in q["not_applied"].as_array().unwrap() {
        assert!(x["code"] != "for-b" && x["code"] != "vips", "{q}");
    }
    let q = quote(&app, &s, body("Q", None, vec![item(1, "N", "near", json!(2), 10000)])).await;
    for x in q["not_applied"].as_array().unwrap().iter().chain(q["applied"].as_array().unwrap()) {
        assert!(x["code"] != "for-b" && x["code"] != "vips", "{q}");
    }
});

// Unknown codes: 422 coupon_not_found; after 20 unknown codes a minute a key gets 429,
// even for a real code; another key is not affected.
both!(unknown_coupons_and_brute_force, |app: TestApp| async move {
    let s = shop(&app).await;
    let k = campaign(
        &app,
        &s,
        json!({"code": "cp", "name": "Coupon", "requires_coupon": true, "effects": [{"type": "discount_fixed", "amount_minor": 100}]}),
    )
    .await;
    coupons(&app, &s, &k, json!({"code": "REAL"})).await;
    // The limiter counts per calendar minute: start well inside one.
    let sec = unix_now().rem_euclid(60);
    if sec > 40 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - sec) as u64)).await;
    }
    let with = |code: &str| {
        let mut b = body("R-1", None, vec![item(1, "G", "goods", json!(1), 20000)]);
        b["coupons"] = json!([code]);
        b
    };
    let got = app.post(&s.pos, "/api/v1/pos/checkout", with("NOPE-0")).await;
    assert_error(&got, 422, "coupon_not_found");
    for i in 1..20 {
        let path = if i % 2 == 0 { "/api/v1/pos/quote" } else { "/api/v1/pos/checkout" };
        let got = app.post(&s.pos, path, with(&format!("NOPE-{i}"))).await;
        assert_error(&got, 422, "coupon_not_found");
    }
    let got = app.post(&s.pos, "/api/v1/pos/quote", with("NOPE-20")).await;
    assert_error(&got, 429, "rate_limited");
    let got = app.post(&s.pos, "/api/v1/pos/quote", with("REAL")).await;
    assert_error(&got, 429, "rate_limited");
    // Nothing was written by the failures: R-1 is free.
    let other = app.pos_key(&s.t.admin, &s.store, Some("T1")).await;
    let (st, v) = app.post(&other, "/api/v1/pos/checkout", with("real")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["discount_minor"], 100);
    app.assert_ledger_consistent(&s.t).await;
});

// ------------------------------------------------------------------ 5. the wallet

both!(cashback_wallet_at_the_till, |app: TestApp| async move {
    let s = shop(&app).await;
    campaign(&app, &s, json!({"code": "cb", "name": "10 back", "effects": [{"type": "cashback", "percent_bp": 1000, "target": {"categories": ["coffee"]}}]})).await;
    let m = new_member(&app, &s).await;
    app.give(&s.t.admin, &m, 1000).await;
    // 10 % of 20000 = 2000 credited at checkout.
    let v = checkout(&app, &s, body("R-1", Some(&m), vec![item(1, "COF", "coffee", json!(2), 10000)])).await;
    assert_eq!(v["cashback_minor"], 2000);
    assert_eq!(v["wallet"], json!({"balance_minor": 2000, "held_minor": 0, "debt_minor": 0, "available_minor": 2000}));
    let w = wallet(&app, &s, &m).await;
    assert_eq!(w["entries"][0]["kind"], "cashback");
    assert_eq!(w["entries"][0]["amount_minor"], 2000);

    let goods = |id: &str, m: Option<&str>| body(id, m, vec![item(1, "G", "goods", json!(1), 10000)]);
    // Anonymous: member_required.
    let mut b = goods("R-2", None);
    b["redeem_wallet_minor"] = json!(100);
    assert_error(&app.post(&s.pos, "/api/v1/pos/quote", b).await, 422, "member_required");
    let mut b = goods("R-2", None);
    b["redeem_wallet_minor"] = json!("max");
    assert_error(&app.post(&s.pos, "/api/v1/pos/checkout", b).await, 422, "member_required");
    // More than the wallet holds: insufficient_wallet (within the share limit).
    let mut b = goods("R-2", Some(&m));
    b["redeem_wallet_minor"] = json!(2001);
    b["redeem_points"] = json!(10);
    assert_error(&app.post(&s.pos, "/api/v1/pos/quote", b).await, 422, "insufficient_wallet");
    // Points first, then the wallet within what is left of the 50 % share: 30 points =
    // 3000, the wallet may add at most 5000 − 3000 = 2000.
    let mut b = goods("R-2", Some(&m));
    b["redeem_points"] = json!(40);
    b["redeem_wallet_minor"] = json!(1001);
    assert_error(&app.post(&s.pos, "/api/v1/pos/quote", b).await, 422, "redeem_limit_exceeded");
    let mut b = goods("R-2", Some(&m));
    b["redeem_points"] = json!(30);
    b["redeem_wallet_minor"] = json!("max");
    let q = quote(&app, &s, b).await;
    assert_eq!((n(&q["redeemed_minor"]), n(&q["wallet_minor"]), n(&q["payable_minor"])), (3000, 2000, 5000), "{q}");
    // Wallet alone, without redeem_points: 1500 of 2000; payable 8500, earn 8.
    let mut b = goods("R-2", Some(&m));
    b["redeem_wallet_minor"] = json!(1500);
    let q = quote(&app, &s, b.clone()).await;
    assert_eq!((n(&q["wallet_minor"]), n(&q["payable_minor"]), n(&q["points_earned"])), (1500, 8500, 8), "{q}");
    assert_eq!(q["lines"][0]["wallet_minor"], 1500);
    assert_eq!(q["wallet"]["balance_minor"], 500);

    // Reserve holds the wallet money: another receipt cannot spend it.
    let (st, h) = app.post(&s.pos, "/api/v1/pos/reserve", b.clone()).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(wallet3(&app, &s, &m).await, (2000, 1500, 0));
    let mut other = goods("R-3", Some(&m));
    other["redeem_wallet_minor"] = json!(600);
    assert_error(&app.post(&s.pos, "/api/v1/pos/quote", other.clone()).await, 422, "insufficient_wallet");
    // The receipt's own hold is available to it.
    let q = quote(&app, &s, b.clone()).await;
    assert_eq!(q["wallet_minor"], 1500, "{q}");
    // Cancel releases it.
    let (st, c) = app.post(&s.pos, "/api/v1/pos/cancel", json!({"receipt_id": "R-2"})).await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(wallet3(&app, &s, &m).await, (2000, 0, 0));
    // Reserve again, then check out: the held money is spent.
    let (st, h) = app.post(&s.pos, "/api/v1/pos/reserve", b.clone()).await;
    assert_eq!(st, 200, "{h}");
    let v = checkout(&app, &s, b).await;
    assert_eq!((n(&v["wallet_minor"]), n(&v["payable_minor"])), (1500, 8500), "{v}");
    assert_eq!(wallet3(&app, &s, &m).await, (500, 0, 0));
    let w = wallet(&app, &s, &m).await;
    assert_eq!(w["entries"][0]["kind"], "spend");
    assert_eq!(w["entries"][0]["amount_minor"], -1500);
    app.assert_ledger_consistent(&s.t).await;
});
