//! Adversarial review of the campaign engine: each test proves a bug that was found (and
//! fixed), on both databases.

use crate::both;
use crate::helpers::*;
use serde_json::{Value, json};

struct Shop {
    t: Tenant,
    pos: String,
}

async fn shop(app: &TestApp) -> Shop {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let t = app.tenant(&format!("Review {}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))).await;
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, Some("T1")).await;
    Shop { t, pos }
}

async fn campaign(app: &TestApp, s: &Shop, spec: Value) -> String {
    let (st, v) = app.post(&s.t.admin, "/api/v1/campaigns", spec).await;
    assert_eq!(st, 201, "{v}");
    v["id"].as_str().expect("campaign id").to_owned()
}

fn item(line_no: i64, sku: &str, category: &str, quantity: Value, price: i64) -> Value {
    json!({"line_no": line_no, "sku": sku, "category": category, "quantity": quantity, "unit_price_minor": price})
}

fn body(id: &str, member: Option<&str>, items: Vec<Value>) -> Value {
    let mut v = json!({"receipt_id": id, "items": items});
    if let Some(m) = member {
        v["member"] = json!({"member_id": m});
    }
    v
}

async fn checkout(app: &TestApp, s: &Shop, b: Value) -> Value {
    let (st, v) = app.post(&s.pos, "/api/v1/pos/checkout", b).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn applied_codes(ans: &Value) -> Vec<String> {
    ans["applied"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap().to_owned()).collect()
}

// A CEL expression is admin input of up to 4000 characters. Deep nesting must be refused
// with a 422 when saved (or evaluate safely), never crash the server process: a stack
// overflow cannot be caught.
both!(deeply_nested_cel_is_refused_not_a_crash, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({})).await;
    let deep = [format!("{}true{}", "(".repeat(1990), ")".repeat(1990)), format!("1{} == 1991", "+1".repeat(1990))];
    for (i, expr) in deep.into_iter().enumerate() {
        let spec = json!({"code": format!("deep{i}"), "name": "Deep", "cel": {"expression": expr, "reason": "no"},
                          "effects": [{"type": "discount_percent", "percent_bp": 1000}]});
        let (st, v) = app.post(&s.t.admin, "/api/v1/campaigns", spec).await;
        assert_eq!(st, 422, "{v}");
        assert!(v["error"]["fields"]["cel.expression"].is_string(), "{v}");
        let (st, v) =
            app.post(&s.pos, "/api/v1/pos/quote", body(&format!("Q-{i}"), Some(&m), vec![item(1, "G", "goods", json!(1), 10000)])).await;
        assert_eq!(st, 200, "{v}");
    }
    // A long but shallow chain of alternatives still compiles and applies.
    let alts = (0..60).map(|i| format!("receipt.store_code == 'X{i}'")).collect::<Vec<_>>().join(" || ");
    let spec = json!({"code": "wide", "name": "Wide", "cel": {"expression": format!("{alts} || receipt.store_code == 'S1'"), "reason": "no"},
                      "effects": [{"type": "discount_percent", "percent_bp": 1000}]});
    let (st, v) = app.post(&s.t.admin, "/api/v1/campaigns", spec).await;
    assert_eq!(st, 201, "{v}");
    let v = checkout(&app, &s, body("R-1", Some(&m), vec![item(1, "G", "goods", json!(1), 10000)])).await;
    assert_eq!(applied_codes(&v), vec!["wide"], "{v}");
});

// Counters start when a campaign first has a budget: a receipt from before the budget was
// never counted, so voiding it must not give anything back to the counter. Otherwise the
// budget of 1 use is passed.
both!(void_of_a_receipt_from_before_the_budget_does_not_refill_it, |app: TestApp| async move {
    let s = shop(&app).await;
    let spec = json!({"code": "ten", "name": "10 % off", "effects": [{"type": "discount_percent", "percent_bp": 1000}]});
    let k = campaign(&app, &s, spec.clone()).await;
    let goods = || vec![item(1, "G", "goods", json!(1), 10000)];
    let v = checkout(&app, &s, body("R-1", None, goods())).await;
    assert_eq!(applied_codes(&v), vec!["ten"]);
    let mut limited = spec;
    limited["budget"] = json!({"uses": 1});
    let (st, v) = app.put(&s.t.admin, &format!("/api/v1/campaigns/{k}"), limited).await;
    assert_eq!(st, 200, "{v}");
    let v = checkout(&app, &s, body("R-2", None, goods())).await;
    assert_eq!(applied_codes(&v), vec!["ten"], "the budget's one use");
    let (st, v) = app.post(&s.pos, "/api/v1/pos/cancel", json!({"receipt_id": "R-1"})).await;
    assert_eq!(st, 200, "{v}");
    let v = checkout(&app, &s, body("R-3", None, goods())).await;
    assert!(applied_codes(&v).is_empty(), "the budget of 1 use is spent by R-2: {v}");
    assert_eq!(v["not_applied"][0]["reason_code"], "budget_spent", "{v}");
});

async fn wallet3(app: &TestApp, s: &Shop, member: &str) -> (i64, i64, i64) {
    let (st, w) = app.get(&s.t.admin, &format!("/api/v1/members/{member}/wallet")).await;
    assert_eq!(st, 200, "{w}");
    (w["balance_minor"].as_i64().unwrap(), w["held_minor"].as_i64().unwrap(), w["debt_minor"].as_i64().unwrap())
}

// A void reverses everything exactly: cashback that paid off wallet debt makes that debt
// owed again (as earned points that paid debt do), instead of being refused as "spent".
both!(void_of_cashback_that_paid_wallet_debt_restores_the_debt, |app: TestApp| async move {
    let s = shop(&app).await;
    campaign(
        &app,
        &s,
        json!({"code": "cb", "name": "100 % cashback on a",
                              "effects": [{"type": "cashback", "percent_bp": 10000, "target": {"categories": ["a"]}}]}),
    )
    .await;
    let m = app.member_id(&s.t.admin, json!({})).await;
    // 10000 on category a: 10 points and 10000 cashback.
    let v = checkout(&app, &s, body("A-1", Some(&m), vec![item(1, "A", "a", json!(1), 10000)])).await;
    assert_eq!((v["points_earned"].as_i64(), v["cashback_minor"].as_i64()), (Some(10), Some(10000)), "{v}");
    // B-1 spends both (share 11000 = 1000 in points + 10000 from the wallet), earns nothing.
    let mut b = body(
        "B-1",
        Some(&m),
        vec![json!({"line_no": 1, "sku": "B", "category": "b", "quantity": 1, "unit_price_minor": 22000, "earn": false})],
    );
    b["redeem_points"] = json!(10);
    b["redeem_wallet_minor"] = json!(10000);
    checkout(&app, &s, b).await;
    assert_eq!(wallet3(&app, &s, &m).await, (0, 0, 0));
    // Refund A-1: 1000 withheld for the points, 9000 for the cashback, 1000 becomes debt.
    let (st, r) = app.post(&s.pos, "/api/v1/pos/refund", json!({"receipt_id": "A-1", "refund_id": "RF-1"})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["withheld_minor"], 10000, "{r}");
    assert_eq!(wallet3(&app, &s, &m).await, (0, 0, 1000));
    // C-1 earns 500 cashback, all of which pays debt.
    checkout(&app, &s, body("C-1", Some(&m), vec![item(1, "A", "a", json!(1), 500)])).await;
    assert_eq!(wallet3(&app, &s, &m).await, (0, 0, 500));
    // Voiding C-1 gives it all back: the 500 of debt is owed again.
    let (st, v) = app.post(&s.pos, "/api/v1/pos/cancel", json!({"receipt_id": "C-1"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(wallet3(&app, &s, &m).await, (0, 0, 1000));
    app.assert_ledger_consistent(&s.t).await;
});
