//! Property tests of the whole ledger through the HTTP API (SQLite): for random
//! sequences of adjustments, checkouts (with and without redemption), quotes, refunds,
//! cancels and transfers —
//! - a quote and the checkout of the same receipt agree on every figure;
//! - no balance ever goes negative;
//! - each member's ledger entries sum to points + pending − debt;
//! - no refund returns more money or points than its receipt took;
//! - rebuilding every balance from the ledger finds no difference.

#[path = "api/helpers.rs"]
mod helpers;

use helpers::{Backend, TestApp};
use proptest::prelude::*;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
enum Op {
    Adjust { member: usize, points: i64 },
    Checkout { member: Option<usize>, lines: Vec<(i64, i64, usize)>, redeem: Redeem },
    Refund { receipt: usize, line: Option<i64>, quantity: Option<i64> },
    Cancel { receipt: usize },
    Transfer { from: usize, to: usize, points: i64 },
}

#[derive(Debug, Clone, Copy)]
enum Redeem {
    None,
    Points(i64),
    Max,
}

const CATEGORIES: &[&str] = &["goods", "tobacco", "fuel", "dairy"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3usize, -300i64..2000).prop_map(|(member, points)| Op::Adjust { member, points: if points == 0 { 1 } else { points } }),
        5 => (
            proptest::option::weighted(0.9, 0..3usize),
            proptest::collection::vec((1i64..5, 1i64..50_000, 0..CATEGORIES.len()), 1..4),
            prop_oneof![2 => Just(Redeem::None), 1 => (0i64..60).prop_map(Redeem::Points), 1 => Just(Redeem::Max)]
        )
            .prop_map(|(member, lines, redeem)| Op::Checkout { member, lines, redeem }),
        2 => (0..20usize, proptest::option::of(1i64..4), proptest::option::of(1i64..3)).prop_map(|(receipt, line, quantity)| Op::Refund { receipt, line, quantity }),
        1 => (0..20usize).prop_map(|receipt| Op::Cancel { receipt }),
        1 => (0..3usize, 0..3usize, 1i64..300).prop_map(|(from, to, points)| Op::Transfer { from, to, points }),
    ]
}

async fn run(ops: Vec<Op>) {
    let app = TestApp::new(Backend::Sqlite).await;
    let t = app.tenant("Props").await;
    app.program(&t.admin, json!({"pending_days": 0, "tiers": [{"code": "b", "min_spend_minor": 0}, {"code": "s", "min_spend_minor": 100000, "earn_multiplier_bp": 15000, "discount_bp": 500}]})).await;
    let store = app.store(&t.admin, "P1").await;
    let mut members = Vec::new();
    for i in 0..3 {
        members.push(app.member(&t.admin, json!({"external_id": format!("p{i}")})).await["id"].as_str().unwrap().to_owned());
    }
    let mut receipts: Vec<(String, Value)> = Vec::new();
    // Each receipt gets its own second in the past, so that a quote and its checkout see
    // the same tier spend (with the default "now" they may fall in different seconds).
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 3600;
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Adjust { member, points } => {
                let _ = app
                    .post(
                        &t.admin,
                        &format!("/api/v1/members/{}/adjustments", members[member]),
                        json!({"points": points, "reason": "prop"}),
                    )
                    .await;
            }
            Op::Checkout { member, lines, redeem } => {
                let id = format!("P-{n}");
                let mut body = json!({
                    "receipt_id": id,
                    "store_id": store,
                    "items": lines.iter().map(|(q, p, c)| json!({"quantity": q, "unit_price_minor": p, "category": CATEGORIES[*c]})).collect::<Vec<_>>(),
                    "occurred_at": chrono::DateTime::from_timestamp(start + n as i64, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                });
                if let Some(m) = member {
                    body["member"] = json!({"member_id": members[m]});
                }
                match redeem {
                    Redeem::None => {}
                    Redeem::Points(p) => body["redeem_points"] = json!(p),
                    Redeem::Max => body["redeem_points"] = json!("max"),
                }
                let (qs, q) = app.post(&t.admin, "/api/v1/pos/quote", body.clone()).await;
                let (cs, c) = app.post(&t.admin, "/api/v1/pos/checkout", body).await;
                assert_eq!(qs, cs, "quote {q} vs checkout {c}");
                if cs == 200 {
                    let mut q = q.clone();
                    q["status"] = json!("committed");
                    assert_eq!(q, c, "quote and checkout disagree");
                    receipts.push((id, c));
                } else {
                    assert_eq!(q["error"]["code"], c["error"]["code"]);
                }
            }
            Op::Refund { receipt, line, quantity } => {
                let Some((id, _)) = receipts.get(receipt % receipts.len().max(1)) else { continue };
                let mut body = json!({"receipt_id": id, "store_id": store, "refund_id": format!("RF-{n}")});
                if let Some(l) = line {
                    let mut item = json!({"line_no": l});
                    if let Some(q) = quantity {
                        item["quantity"] = json!(q);
                    }
                    body["items"] = json!([item]);
                }
                let (s, v) = app.post(&t.admin, "/api/v1/pos/refund", body).await;
                assert!(s == 200 || s == 409 || s == 422, "{v}");
            }
            Op::Cancel { receipt } => {
                let Some((id, _)) = receipts.get(receipt % receipts.len().max(1)) else { continue };
                let (s, v) = app.post(&t.admin, "/api/v1/pos/cancel", json!({"receipt_id": id, "store_id": store})).await;
                assert!(s == 200 || s == 409, "{v}");
            }
            Op::Transfer { from, to, points } => {
                if from == to {
                    continue;
                }
                let (s, v) = app
                    .post(
                        &t.admin,
                        &format!("/api/v1/members/{}/transfers", members[from]),
                        json!({"to_member_id": members[to], "points": points, "transfer_id": format!("T-{n}")}),
                    )
                    .await;
                assert!(s == 201 || s == 422, "{v}");
            }
        }
        for m in &members {
            let b = app.balance(&t.admin, m).await;
            for k in ["points", "held", "pending", "debt"] {
                assert!(b[k].as_i64().unwrap() >= 0, "{k} negative: {b}");
            }
        }
    }
    // Entries sum to points + pending − debt.
    for m in &members {
        let b = app.balance(&t.admin, m).await;
        let mut sum = 0;
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/members/{m}/ledger?limit=50&cursor={c}"),
                None => format!("/api/v1/members/{m}/ledger?limit=50"),
            };
            let (_, page) = app.get(&t.admin, &path).await;
            sum += page["entries"].as_array().unwrap().iter().map(|e| e["points"].as_i64().unwrap()).sum::<i64>();
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(
            sum,
            b["points"].as_i64().unwrap() + b["pending"].as_i64().unwrap() - b["debt"].as_i64().unwrap(),
            "ledger sum vs balance {b}"
        );
    }
    // Refunds never return more than the receipt took.
    for (id, answer) in &receipts {
        let (_, r) = app.get(&t.admin, &format!("/api/v1/pos/receipts/{id}?store_id={store}")).await;
        let refunds = r["refunds"].as_array().unwrap();
        let money: i64 = refunds.iter().map(|f| f["refund_minor"].as_i64().unwrap() + f["withheld_minor"].as_i64().unwrap()).sum();
        let returned: i64 = refunds.iter().map(|f| f["points_returned"].as_i64().unwrap()).sum();
        let reversed: i64 = refunds.iter().map(|f| f["points_reversed"].as_i64().unwrap() + f["debt_added"].as_i64().unwrap()).sum();
        assert!(money <= answer["payable_minor"].as_i64().unwrap(), "{id}: refunded {money} of {answer}");
        assert!(returned <= answer["points_redeemed"].as_i64().unwrap());
        assert!(reversed <= answer["points_earned"].as_i64().unwrap());
        if r["status"] == "refunded" {
            assert_eq!(money, answer["payable_minor"].as_i64().unwrap(), "a full refund returns exactly the payable money");
            assert_eq!(returned, answer["points_redeemed"].as_i64().unwrap());
        }
    }
    app.assert_ledger_consistent(&t).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 50, ..ProptestConfig::default() })]
    #[test]
    fn ledger_invariants_hold(ops in proptest::collection::vec(op(), 10..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(ops));
    }
}
