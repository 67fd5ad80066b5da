//! The points ledger under load and over time: concurrent tills, idempotent retries,
//! holds, cancels, refunds with shortfall and debt, expiry by lots, pending points, hold
//! expiry, tiers and the worker, transfers, and a mixed random workload. Every test ends
//! with the rebuild check.

use crate::both;
use crate::helpers::*;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{Value, json};
use std::sync::Arc;

const DAY: i64 = 86_400;

fn now() -> i64 {
    Utc::now().timestamp()
}

/// RFC 3339 in UTC with whole seconds, as the API writes times.
fn ts(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_ts(s: &Value) -> i64 {
    DateTime::parse_from_rfc3339(s.as_str().expect("a time string")).expect("RFC 3339").timestamp()
}

/// A receipt of counted lines `(quantity, unit_price_minor)`, category "goods".
fn body(id: &str, member: Option<&str>, lines: &[(i64, i64)], redeem: Option<Value>, occurred_at: Option<i64>) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (q, p))| json!({"line_no": i + 1, "sku": format!("SKU-{}", i + 1), "category": "goods", "quantity": q, "unit_price_minor": p}))
        .collect();
    let mut v = json!({"receipt_id": id, "items": items});
    if let Some(m) = member {
        v["member"] = json!({"member_id": m});
    }
    if let Some(r) = redeem {
        v["redeem_points"] = r;
    }
    if let Some(t) = occurred_at {
        v["occurred_at"] = json!(ts(t));
    }
    v
}

async fn ok(app: &TestApp, key: &str, path: &str, b: Value) -> Value {
    let (s, v) = app.post(key, path, b).await;
    assert!(s == 200 || s == 201, "{path} answered {s}: {v}");
    v
}

async fn err(app: &TestApp, key: &str, path: &str, b: Value, status: u16, code: &str) -> Value {
    let (s, v) = app.post(key, path, b).await;
    assert_eq!((s, v["error"]["code"].as_str()), (status, Some(code)), "{path}: {v}");
    v
}

async fn new_member(app: &TestApp, admin: &str, name: &str) -> String {
    app.member(admin, json!({"name": name})).await["id"].as_str().unwrap().to_owned()
}

/// Every ledger entry of a member, newest first, following the cursor.
async fn entries(app: &TestApp, admin: &str, member: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/members/{member}/ledger?limit=7&cursor={c}"),
            None => format!("/api/v1/members/{member}/ledger?limit=7"),
        };
        let (s, v) = app.get(admin, &path).await;
        assert_eq!(s, 200, "{v}");
        out.extend(v["entries"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// (kind, points) of a member's entries for one receipt id, oldest first.
async fn receipt_entries(app: &TestApp, admin: &str, member: &str, receipt_id: &str) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = entries(app, admin, member)
        .await
        .iter()
        .filter(|e| e["receipt_id"] == receipt_id)
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["points"].as_i64().unwrap()))
        .collect();
    v.reverse();
    v
}

/// Assert Σ entries = points + pending − debt and nothing negative; returns the balance.
async fn assert_member_sums(app: &TestApp, admin: &str, member: &str) -> Value {
    let b = app.balance(admin, member).await;
    let sum: i64 = entries(app, admin, member).await.iter().map(|e| e["points"].as_i64().unwrap()).sum();
    let (p, pe, d, h) =
        (b["points"].as_i64().unwrap(), b["pending"].as_i64().unwrap(), b["debt"].as_i64().unwrap(), b["held"].as_i64().unwrap());
    assert_eq!(sum, p + pe - d, "Σ entries = points + pending − debt for {member}: {b}");
    assert!(p >= 0 && pe >= 0 && d >= 0 && h >= 0 && h <= p, "negative or inconsistent balance: {b}");
    b
}

fn bal(points: i64, held: i64, pending: i64, debt: i64) -> Value {
    json!({"points": points, "held": held, "pending": pending, "debt": debt})
}

/// The short balance of a full balance answer.
fn short(b: &Value) -> Value {
    bal(b["points"].as_i64().unwrap(), b["held"].as_i64().unwrap(), b["pending"].as_i64().unwrap(), b["debt"].as_i64().unwrap())
}

/// The stored balance row, as written, without the lazy settling that reads do.
async fn stored(app: &TestApp, tenant: &Tenant, member: &str) -> kopilka_store::ledger::Balance {
    let mut c = app.state.db.pool().acquire().await.unwrap();
    kopilka_store::ledger::balance(&mut c, &tenant.id, member).await.unwrap().expect("balance row")
}

fn expiring(b: &Value) -> Vec<(i64, String)> {
    b["expiring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["points"].as_i64().unwrap(), e["expires_at"].as_str().unwrap().to_owned()))
        .collect()
}

// 1. Concurrent checkouts of one member across tills never overspend.
both!(concurrent_checkouts_never_overspend, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    // Earned points stay pending, so only the initial points can pay.
    app.program(&t.admin, json!({"pending_days": 1})).await;
    let store = app.store(&t.admin, "S1").await;
    let mut keys = Vec::new();
    for till in ["T1", "T2", "T3", "T4"] {
        keys.push(app.pos_key(&t.admin, &store, Some(till)).await);
    }
    let member = new_member(&app, &t.admin, "Ann").await;
    app.give(&t.admin, &member, 1000).await;

    let app = Arc::new(app);
    let amounts = [50i64, 70, 100, 130];
    let mut tasks = Vec::new();
    for i in 0..24usize {
        let (app, key, member) = (app.clone(), keys[i % keys.len()].clone(), member.clone());
        let redeem = amounts[i % amounts.len()];
        tasks.push(tokio::spawn(async move {
            let b = body(&format!("C-{i}"), Some(&member), &[(1, 30000)], Some(json!(redeem)), None);
            let (s, v) = app.post(&key, "/api/v1/pos/checkout", b).await;
            (redeem, s, v)
        }));
    }
    let (mut redeemed, mut earned, mut ok_n, mut failed) = (0, 0, 0, Vec::new());
    for task in tasks {
        let (redeem, s, v) = task.await.unwrap();
        match s {
            200 => {
                assert_eq!(v["status"], "committed");
                assert_eq!(v["points_redeemed"], redeem);
                assert_eq!(v["points_earned"], (30000 - redeem * 100) / 1000);
                assert_eq!(v["points_pending"], v["points_earned"]);
                redeemed += redeem;
                earned += v["points_earned"].as_i64().unwrap();
                ok_n += 1;
            }
            422 => {
                assert_eq!(v["error"]["code"], "insufficient_points", "{v}");
                failed.push(redeem);
            }
            _ => panic!("checkout answered {s}: {v}"),
        }
    }
    assert!(redeemed <= 1000, "overspent: {redeemed}");
    // While 130 or more are left every request succeeds, so at least 7 do.
    assert!(ok_n >= 7 && !failed.is_empty(), "{ok_n} successes, {} failures", failed.len());
    let b = app.balance(&t.admin, &member).await;
    assert_eq!(short(&b), bal(1000 - redeemed, 0, earned, 0));
    // Every refused till asked for more than was left, and points only ever went down.
    for f in &failed {
        assert!(*f > 1000 - redeemed, "a checkout of {f} was refused with {} points left", 1000 - redeemed);
    }
    assert_member_sums(&app, &t.admin, &member).await;
    app.assert_ledger_consistent(&t).await;
});

// 2. Concurrent retries of one receipt post it exactly once.
both!(concurrent_retries_post_once, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let member = new_member(&app, &t.admin, "Ann").await;
    app.give(&t.admin, &member, 1000).await;
    let app = Arc::new(app);
    let b = body("R-SAME", Some(&member), &[(2, 10000)], Some(json!(50)), None);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (app, key, b) = (app.clone(), key.clone(), b.clone());
        tasks.push(tokio::spawn(async move { app.post(&key, "/api/v1/pos/checkout", b).await }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        let (s, v) = task.await.unwrap();
        assert_eq!(s, 200, "{v}");
        answers.push(v);
    }
    for a in &answers {
        assert_eq!(a, &answers[0]);
    }
    assert_eq!(answers[0]["points_redeemed"], 50);
    assert_eq!(answers[0]["points_earned"], 15);
    assert_eq!(answers[0]["balance"], bal(965, 0, 0, 0));
    assert_eq!(receipt_entries(&app, &t.admin, &member, "R-SAME").await, vec![("redeem".into(), -50), ("earn".into(), 15)]);
    assert_eq!(short(&app.balance(&t.admin, &member).await), bal(965, 0, 0, 0));

    // Concurrent checkouts of one reserved receipt commit the hold once.
    let b = body("R-RES", Some(&member), &[(1, 40000)], Some(json!(200)), None);
    ok(&app, &key, "/api/v1/pos/reserve", b.clone()).await;
    assert_eq!(short(&app.balance(&t.admin, &member).await), bal(965, 200, 0, 0));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (app, key, b) = (app.clone(), key.clone(), b.clone());
        tasks.push(tokio::spawn(async move { app.post(&key, "/api/v1/pos/checkout", b).await }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        let (s, v) = task.await.unwrap();
        assert_eq!(s, 200, "{v}");
        answers.push(v);
    }
    for a in &answers {
        assert_eq!(a, &answers[0]);
    }
    assert_eq!(answers[0]["status"], "committed");
    assert_eq!(answers[0]["balance"], bal(965 - 200 + 20, 0, 0, 0));
    assert_eq!(receipt_entries(&app, &t.admin, &member, "R-RES").await, vec![("redeem".into(), -200), ("earn".into(), 20)]);
    assert_eq!(short(&app.balance(&t.admin, &member).await), bal(785, 0, 0, 0));
    assert_member_sums(&app, &t.admin, &member).await;
    app.assert_ledger_consistent(&t).await;
});

// 3. A reserve holds points against other tills; its checkout cannot fail for lack of points.
both!(reserve_holds_points, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let k1 = app.pos_key(&t.admin, &store, Some("T1")).await;
    let k2 = app.pos_key(&t.admin, &store, Some("T2")).await;
    let member = new_member(&app, &t.admin, "Ann").await;
    app.give(&t.admin, &member, 1000).await;

    let held_body = body("R-H", Some(&member), &[(1, 100000)], Some(json!(300)), None);
    let r = ok(&app, &k1, "/api/v1/pos/reserve", held_body.clone()).await;
    assert_eq!(r["status"], "held");
    assert_eq!((r["points_redeemed"].as_i64(), r["points_earned"].as_i64()), (Some(300), Some(70)));
    assert_eq!(r["balance"], bal(770, 0, 0, 0), "a reserve shows the balance after checkout");
    let hold_id = r["hold_id"].as_str().expect("hold_id").to_owned();
    let exp = parse_ts(&r["expires_at"]);
    assert!((exp - now() - 900).abs() <= 5, "hold for hold_ttl_s: {}", r["expires_at"]);
    let b = app.balance(&t.admin, &member).await;
    assert_eq!(short(&b), bal(1000, 300, 0, 0));
    assert_eq!(b["available"], 700);

    // The same reserve again: the same hold. Another body: 409.
    let again = ok(&app, &k1, "/api/v1/pos/reserve", held_body.clone()).await;
    assert_eq!(again, r);
    let other = body("R-H", Some(&member), &[(1, 100000)], Some(json!(299)), None);
    err(&app, &k1, "/api/v1/pos/reserve", other.clone(), 409, "receipt_conflict").await;
    err(&app, &k1, "/api/v1/pos/checkout", other, 409, "receipt_conflict").await;

    // Another till cannot take the held points.
    err(&app, &k2, "/api/v1/pos/checkout", body("R-2", Some(&member), &[(1, 200000)], Some(json!(701)), None), 422, "insufficient_points")
        .await;
    err(&app, &k2, "/api/v1/pos/reserve", body("R-2", Some(&member), &[(1, 200000)], Some(json!(701)), None), 422, "insufficient_points")
        .await;
    let c2 = ok(&app, &k2, "/api/v1/pos/checkout", body("R-2", Some(&member), &[(1, 200000)], Some(json!(700)), None)).await;
    assert_eq!(c2["balance"], bal(430, 300, 0, 0));
    // The member's other points go meanwhile; only the held ones are left.
    let (s, v) = app.post(&t.admin, &format!("/api/v1/members/{member}/adjustments"), json!({"points": -131, "reason": "test"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("insufficient_points")), "{v}");
    let v = ok(&app, &t.admin, &format!("/api/v1/members/{member}/adjustments"), json!({"points": -130, "reason": "test"})).await;
    assert_eq!(v["balance"], bal(300, 300, 0, 0));

    // Checkout of the reserved receipt commits the reserved result.
    let c = ok(&app, &k1, "/api/v1/pos/checkout", held_body.clone()).await;
    assert_eq!(c["status"], "committed");
    assert_eq!((c["points_redeemed"].as_i64(), c["points_earned"].as_i64()), (Some(300), Some(70)));
    assert_eq!(c["balance"], bal(70, 0, 0, 0));
    assert!(c.get("expires_at").is_none_or(Value::is_null), "{c}");
    for k in ["total_minor", "redeemed_minor", "payable_minor", "lines", "tier", "program_version"] {
        assert_eq!(c[k], r[k], "{k}");
    }
    // Replays answer the same; a reserve of a committed receipt is 409.
    assert_eq!(ok(&app, &k1, "/api/v1/pos/checkout", held_body.clone()).await, c);
    err(&app, &k1, "/api/v1/pos/reserve", held_body.clone(), 409, "receipt_conflict").await;
    let (s, rc) = app.get(&t.admin, &format!("/api/v1/pos/receipts/R-H?till_id=T1&store_id={store}")).await;
    assert_eq!((s, rc["status"].as_str()), (200, Some("committed")), "{rc}");
    assert_eq!(receipt_entries(&app, &t.admin, &member, "R-H").await, vec![("redeem".into(), -300), ("earn".into(), 70)]);
    let _ = hold_id;
    assert_eq!(short(&assert_member_sums(&app, &t.admin, &member).await), bal(70, 0, 0, 0));
    app.assert_ledger_consistent(&t).await;
});

// 4. Cancel releases a hold exactly, voids a committed receipt exactly, or refuses.
both!(cancel_releases_and_voids_exactly, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let member = new_member(&app, &t.admin, "Ann").await;
    app.give(&t.admin, &member, 1000).await;

    // A hold.
    ok(&app, &key, "/api/v1/pos/reserve", body("R-C1", Some(&member), &[(1, 100000)], Some(json!(200)), None)).await;
    assert_eq!(short(&app.balance(&t.admin, &member).await), bal(1000, 200, 0, 0));
    let c = ok(&app, &key, "/api/v1/pos/cancel", json!({"receipt_id": "R-C1"})).await;
    assert_eq!(c["balance"], bal(1000, 0, 0, 0), "{c}");
    assert_eq!(short(&app.balance(&t.admin, &member).await), bal(1000, 0, 0, 0));
    let (s, _) = app.get(&t.admin, &format!("/api/v1/pos/receipts/R-C1?till_id=T1&store_id={store}")).await;
    assert_eq!(s, 404, "a released hold leaves no receipt");
    // Its ids are free again, for another body.
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("R-C1", Some(&member), &[(1, 100000)], Some(json!(100)), None)).await;
    assert_eq!(v["balance"], bal(990, 0, 0, 0)); // 1000 − 100 + 90

    // A committed receipt is voided exactly.
    let before = short(&app.balance(&t.admin, &member).await);
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("R-C2", Some(&member), &[(2, 25000)], Some(json!(100)), None)).await;
    assert_eq!((v["points_redeemed"].as_i64(), v["points_earned"].as_i64()), (Some(100), Some(40)));
    assert_eq!(v["balance"], bal(930, 0, 0, 0));
    let c = ok(&app, &key, "/api/v1/pos/cancel", json!({"receipt_id": "R-C2"})).await;
    assert_eq!(c["status"], "cancelled");
    assert_eq!(c["balance"], before);
    assert_eq!(short(&app.balance(&t.admin, &member).await), before);
    let kinds = receipt_entries(&app, &t.admin, &member, "R-C2").await;
    assert_eq!(kinds, vec![("redeem".into(), -100), ("earn".into(), 40), ("reverse_earn".into(), -40), ("return_redeem".into(), 100)]);
    let (s, rc) = app.get(&t.admin, &format!("/api/v1/pos/receipts/R-C2?till_id=T1&store_id={store}")).await;
    assert_eq!((s, rc["status"].as_str()), (200, Some("cancelled")), "{rc}");
    // Cancelling again changes nothing; a cancelled receipt cannot be refunded or re-posted.
    let c2 = ok(&app, &key, "/api/v1/pos/cancel", json!({"receipt_id": "R-C2"})).await;
    assert_eq!(c2["status"], "cancelled");
    assert_eq!(short(&app.balance(&t.admin, &member).await), before);
    err(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "R-C2", "refund_id": "RF-C2"}), 409, "receipt_not_refundable").await;
    assert_eq!(lifetime(&app, &t, &member).await, 90);

    // A void is refused once the earned points are spent.
    let m2 = new_member(&app, &t.admin, "Bob").await;
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("R-C3", Some(&m2), &[(1, 100000)], None, None)).await;
    assert_eq!(v["balance"], bal(100, 0, 0, 0));
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("R-C4", Some(&m2), &[(1, 100000)], Some(json!(100)), None)).await;
    assert_eq!(v["balance"], bal(90, 0, 0, 0));
    err(&app, &key, "/api/v1/pos/cancel", json!({"receipt_id": "R-C3"}), 409, "cancel_not_possible").await;
    assert_eq!(short(&app.balance(&t.admin, &m2).await), bal(90, 0, 0, 0));
    let (s, rc) = app.get(&t.admin, &format!("/api/v1/pos/receipts/R-C3?till_id=T1&store_id={store}")).await;
    assert_eq!((s, rc["status"].as_str()), (200, Some("committed")));
    // A refunded receipt cannot be voided either.
    ok(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "R-C1", "refund_id": "RF-C1", "items": [{"line_no": 1, "quantity": 1}]}))
        .await;
    let after_refund = short(&app.balance(&t.admin, &member).await);
    assert_eq!(after_refund, bal(1000, 0, 0, 0), "R-C1's 100 points back, its 90 taken");
    err(&app, &key, "/api/v1/pos/cancel", json!({"receipt_id": "R-C1"}), 409, "cancel_not_possible").await;
    assert_eq!(short(&app.balance(&t.admin, &member).await), after_refund);
    assert_member_sums(&app, &t.admin, &member).await;
    assert_member_sums(&app, &t.admin, &m2).await;
    app.assert_ledger_consistent(&t).await;
});

async fn lifetime(app: &TestApp, t: &Tenant, member: &str) -> i64 {
    app.balance(&t.admin, member).await["lifetime_earned"].as_i64().unwrap()
}

// 5. Refunds after reserve-then-checkout return exactly what was taken.
both!(refund_after_reserve_is_exact, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let member = new_member(&app, &t.admin, "Ann").await;
    app.give(&t.admin, &member, 1000).await;
    let b = json!({
        "receipt_id": "R-F",
        "member": {"member_id": member},
        "items": [
            {"line_no": 1, "sku": "A", "category": "goods", "quantity": 7, "unit_price_minor": 3333},
            {"line_no": 2, "sku": "B", "category": "cheese", "quantity": "2.500", "unit_price_minor": 7999},
            {"line_no": 3, "sku": "C", "category": "tobacco", "quantity": 3, "unit_price_minor": 1001}
        ],
        "redeem_points": 211
    });
    let r = ok(&app, &key, "/api/v1/pos/reserve", b.clone()).await;
    assert_eq!(short(&app.balance(&t.admin, &member).await), bal(1000, 211, 0, 0));
    let c = ok(&app, &key, "/api/v1/pos/checkout", b.clone()).await;
    assert_eq!(c["lines"], r["lines"]);
    // 23331 + 19998 (2.5 × 7999 = 19997.5, half up) + 3003 = 46332.
    assert_eq!(c["total_minor"], 46332);
    assert_eq!(c["lines"][1]["total_minor"], 19998);
    assert_eq!(c["points_redeemed"], 211);
    assert_eq!(c["payable_minor"], 46332 - 21100);
    assert_eq!(c["points_earned"], 25);
    let after_checkout = 1000 - 211 + 25;
    assert_eq!(c["balance"], bal(after_checkout, 0, 0, 0));
    let lines = c["lines"].as_array().unwrap().clone();
    let q = [7i64, 2500, 3];
    let (x_pay, x_red, x_earn): (Vec<i64>, Vec<i64>, Vec<i64>) = (
        lines.iter().map(|l| l["payable_minor"].as_i64().unwrap()).collect(),
        lines.iter().map(|l| l["points_redeemed"].as_i64().unwrap()).collect(),
        lines.iter().map(|l| l["points_earned"].as_i64().unwrap()).collect(),
    );
    assert_eq!(x_red[2], 0, "tobacco takes no points");

    // Refund in steps; each takes floor(x·k/q) cumulatively.
    let steps: Vec<(Value, Vec<(usize, i64)>)> = vec![
        (json!([{"line_no": 1, "quantity": 2}]), vec![(0, 2)]),
        (
            json!([{"line_no": 1, "quantity": 3}, {"line_no": 2, "quantity": "1.2"}, {"sku": "C", "quantity": 1}]),
            vec![(0, 3), (1, 1200), (2, 1)],
        ),
        (json!([{"line_no": 2, "quantity": "0.001"}]), vec![(1, 1)]),
        (Value::Null, vec![(0, 2), (1, 1299), (2, 2)]),
    ];
    let mut done = [0i64; 3];
    let (mut money, mut returned, mut reversed) = (0, 0, 0);
    let mut balance = after_checkout;
    for (n, (items, parts)) in steps.into_iter().enumerate() {
        let mut req = json!({"receipt_id": "R-F", "refund_id": format!("RF-{n}")});
        if !items.is_null() {
            req["items"] = items;
        }
        let v = ok(&app, &key, "/api/v1/pos/refund", req.clone()).await;
        let (mut m, mut ret, mut rev) = (0, 0, 0);
        for (i, k) in parts {
            let take = |x: i64| x * (done[i] + k) / q[i] - x * done[i] / q[i];
            m += take(x_pay[i]);
            ret += take(x_red[i]);
            rev += take(x_earn[i]);
            done[i] += k;
        }
        assert_eq!(v["refund_minor"], m, "step {n}: {v}");
        assert_eq!(v["withheld_minor"], 0);
        assert_eq!(v["points_returned"], ret, "step {n}");
        assert_eq!(v["points_reversed"], rev, "step {n}");
        assert_eq!(v["debt_added"], 0);
        balance += ret - rev;
        assert_eq!(v["balance"], bal(balance, 0, 0, 0), "step {n}");
        // A replay answers the same and posts nothing.
        assert_eq!(ok(&app, &key, "/api/v1/pos/refund", req).await, v);
        money += m;
        returned += ret;
        reversed += rev;
    }
    assert_eq!(done, q);
    assert_eq!((money, returned, reversed), (46332 - 21100, 211, 25));
    assert_eq!(short(&app.balance(&t.admin, &member).await), bal(1000, 0, 0, 0));
    err(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "R-F", "refund_id": "RF-X"}), 422, "refund_exceeds_purchase").await;
    let (s, rc) = app.get(&t.admin, &format!("/api/v1/pos/receipts/R-F?till_id=T1&store_id={store}")).await;
    assert_eq!((s, rc["status"].as_str()), (200, Some("refunded")));
    assert_eq!(rc["refunds"].as_array().unwrap().len(), 4);
    assert_eq!(lifetime(&app, &t, &member).await, 0);
    assert_member_sums(&app, &t.admin, &member).await;
    app.assert_ledger_consistent(&t).await;
});

// 6. A refund of points already spent: withheld money, then debt, paid by later earnings.
both!(refund_shortfall_withholds_then_owes, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    app.program(&t.admin, json!({"earn": {"points_per_unit": 15, "unit_minor": 1000, "rounding": "floor"}})).await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let member = new_member(&app, &t.admin, "Ann").await;

    // 4 × 25033 = 100132 earns floor(1501.98) = 1501.
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("R-S1", Some(&member), &[(4, 25033)], None, None)).await;
    assert_eq!(v["points_earned"], 1501);
    // Spend them all elsewhere (a line that earns nothing).
    let spend = json!({"receipt_id": "R-S2", "member": {"member_id": member}, "redeem_points": 1501,
        "items": [{"line_no": 1, "sku": "X", "category": "goods", "quantity": 1, "unit_price_minor": 400000, "earn": false}]});
    let v = ok(&app, &key, "/api/v1/pos/checkout", spend).await;
    assert_eq!(v["points_earned"], 0);
    assert_eq!(v["balance"], bal(0, 0, 0, 0));
    app.give(&t.admin, &member, 200).await;

    // One unit: 25033 money, 375 points to take; 200 can be, 175 × 100 = 17500 is withheld.
    let r1 =
        ok(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "R-S1", "refund_id": "RF-1", "items": [{"line_no": 1, "quantity": 1}]}))
            .await;
    for (k, want) in
        [("refund_minor", 7533), ("withheld_minor", 17500), ("points_reversed", 200), ("points_returned", 0), ("debt_added", 0)]
    {
        assert_eq!(r1[k], want, "{k}: {r1}");
    }
    assert_eq!(r1["lines"], json!([{"line_no": 1, "quantity": 1, "refund_minor": 7533, "withheld_minor": 17500}]));
    assert_eq!(r1["balance"], bal(0, 0, 0, 0));
    // The rest: 75099 money, 1126 points, none left: all the money is withheld and
    // floor((112600 − 75099) / 100) = 375 points become debt.
    let r2 = ok(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "R-S1", "refund_id": "RF-2"})).await;
    for (k, want) in [("refund_minor", 0), ("withheld_minor", 75099), ("points_reversed", 0), ("points_returned", 0), ("debt_added", 375)] {
        assert_eq!(r2[k], want, "{k}: {r2}");
    }
    assert_eq!(r2["balance"], bal(0, 0, 0, 375));
    let rev: Vec<i64> = entries(&app, &t.admin, &member)
        .await
        .iter()
        .filter(|e| e["kind"] == "reverse_earn")
        .map(|e| e["points"].as_i64().unwrap())
        .collect();
    assert_eq!(rev, vec![-375, -200], "reverse_earn carries the points taken plus the debt");
    assert_member_sums(&app, &t.admin, &member).await;
    assert_eq!(lifetime(&app, &t, &member).await, 1501 - 200 - 375);

    // Adjustments do not pay debt; earnings do, first.
    app.give(&t.admin, &member, 50).await;
    assert_eq!(short(&app.balance(&t.admin, &member).await), bal(50, 0, 0, 375));
    // Debt is not spendable, and points above it still are.
    err(&app, &key, "/api/v1/pos/checkout", body("R-S3", Some(&member), &[(1, 20000)], Some(json!(51)), None), 422, "insufficient_points")
        .await;
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("R-S3", Some(&member), &[(1, 30000)], None, None)).await;
    assert_eq!(v["points_earned"], 450);
    assert_eq!(v["balance"], bal(50 + 450 - 375, 0, 0, 0));
    let b = assert_member_sums(&app, &t.admin, &member).await;
    assert_eq!(short(&b), bal(125, 0, 0, 0));
    assert_eq!(b["lifetime_earned"], 1501 - 200 - 375 + 450);
    // Voiding the receipt whose earnings paid the debt owes the debt again, exactly.
    let c = ok(&app, &key, "/api/v1/pos/cancel", json!({"receipt_id": "R-S3"})).await;
    assert_eq!(c["balance"], bal(50, 0, 0, 375));
    assert_member_sums(&app, &t.admin, &member).await;
    app.assert_ledger_consistent(&t).await;
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("R-S4", Some(&member), &[(1, 30000)], None, None)).await;
    assert_eq!(v["balance"], bal(125, 0, 0, 0));
    assert_member_sums(&app, &t.admin, &member).await;
    app.assert_ledger_consistent(&t).await;
});

// 7a. Rolling expiry by lots, soonest-expiring spending, returns to the lots.
both!(expiry_rolling_lots, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    app.program(&t.admin, json!({"expiry": {"policy": "rolling_days", "days": 10}, "offline_max_age_days": 400})).await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let member = new_member(&app, &t.admin, "Ann").await;
    let t0 = now();

    // 20 days ago with days = 10: expired at once.
    let a = ok(&app, &key, "/api/v1/pos/checkout", body("R-A", Some(&member), &[(1, 100000)], None, Some(t0 - 20 * DAY))).await;
    assert_eq!(a["points_earned"], 100);
    assert_eq!(a["balance"], bal(0, 0, 0, 0));
    let es = entries(&app, &t.admin, &member).await;
    assert_eq!(es.len(), 2);
    assert_eq!((es[0]["kind"].as_str(), es[0]["points"].as_i64()), (Some("expire"), Some(-100)));
    assert_eq!(es[0]["occurred_at"], ts(t0 - 10 * DAY));
    assert_eq!((es[1]["kind"].as_str(), es[1]["points"].as_i64()), (Some("earn"), Some(100)));

    let (tb, tc, td) = (t0 - 5 * DAY, t0 - 2 * DAY, t0 - DAY);
    ok(&app, &key, "/api/v1/pos/checkout", body("R-B", Some(&member), &[(1, 50000)], None, Some(tb))).await;
    ok(&app, &key, "/api/v1/pos/checkout", body("R-C", Some(&member), &[(1, 30000)], None, Some(tc))).await;
    let b = app.balance(&t.admin, &member).await;
    assert_eq!(short(&b), bal(80, 0, 0, 0));
    assert_eq!(expiring(&b), vec![(50, ts(tb + 10 * DAY)), (30, ts(tc + 10 * DAY))]);

    // Spending takes the soonest-expiring lot first.
    let d = ok(&app, &key, "/api/v1/pos/checkout", body("R-D", Some(&member), &[(1, 100000)], Some(json!(40)), Some(td))).await;
    assert_eq!(d["points_earned"], 96);
    assert_eq!(d["balance"], bal(136, 0, 0, 0));
    let b = app.balance(&t.admin, &member).await;
    assert_eq!(expiring(&b), vec![(10, ts(tb + 10 * DAY)), (30, ts(tc + 10 * DAY)), (96, ts(td + 10 * DAY))]);

    // Adjusted points expire by the policy from when they are credited.
    let before = now();
    app.give(&t.admin, &member, 25).await;
    let after = now();
    let b = app.balance(&t.admin, &member).await;
    let ex = expiring(&b);
    assert_eq!(ex.len(), 4, "{b}");
    assert_eq!(ex[3].0, 25);
    let te = parse_ts(&json!(ex[3].1));
    assert!(te >= before + 10 * DAY && te <= after + 10 * DAY, "adjustment expires 10 days after credit: {}", ex[3].1);

    // A full refund returns the spent points to their lot, with its expiry.
    let r = ok(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "R-D", "refund_id": "RF-D"})).await;
    assert_eq!((r["points_returned"].as_i64(), r["points_reversed"].as_i64()), (Some(40), Some(96)));
    assert_eq!(r["balance"], bal(105, 0, 0, 0));
    let b = app.balance(&t.admin, &member).await;
    assert_eq!(expiring(&b), vec![(50, ts(tb + 10 * DAY)), (30, ts(tc + 10 * DAY)), (25, ex[3].1.clone())]);

    // The expired receipt's points are not taken again.
    let r = ok(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "R-A", "refund_id": "RF-A"})).await;
    for (k, want) in [("refund_minor", 100000), ("withheld_minor", 0), ("points_reversed", 0), ("debt_added", 0)] {
        assert_eq!(r[k], want, "{k}: {r}");
    }
    assert_eq!(r["balance"], bal(105, 0, 0, 0));
    assert_member_sums(&app, &t.admin, &member).await;
    app.assert_ledger_consistent(&t).await;
});

// 7b. Returned points landing in a lot that expired meanwhile expire at once.
both!(expiry_return_to_expired_lot, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    app.program(&t.admin, json!({"expiry": {"policy": "rolling_days", "days": 10}, "offline_max_age_days": 400})).await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let member = new_member(&app, &t.admin, "Ann").await;
    // A lot that expires in a few seconds.
    let expires = now() + 6;
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("R-E1", Some(&member), &[(1, 100000)], None, Some(expires - 10 * DAY))).await;
    assert_eq!(v["balance"], bal(100, 0, 0, 0));
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("R-E2", Some(&member), &[(1, 40000)], Some(json!(60)), None)).await;
    assert_eq!(v["points_earned"], 34);
    assert!(now() < expires, "the machine is too slow for this test");
    assert_eq!(v["balance"], bal(74, 0, 0, 0));
    tokio::time::sleep(std::time::Duration::from_millis(((expires - now()) * 1000 + 1300) as u64)).await;
    // The 40 left in the lot expired.
    let b = app.balance(&t.admin, &member).await;
    assert_eq!(short(&b), bal(34, 0, 0, 0));
    let r = ok(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "R-E2", "refund_id": "RF-E2"})).await;
    assert_eq!((r["points_returned"].as_i64(), r["points_reversed"].as_i64(), r["debt_added"].as_i64()), (Some(60), Some(34), Some(0)));
    assert_eq!(r["balance"], bal(0, 0, 0, 0));
    let kinds: Vec<(String, i64)> = entries(&app, &t.admin, &member)
        .await
        .iter()
        .rev()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["points"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("earn".into(), 100),
            ("redeem".into(), -60),
            ("earn".into(), 34),
            ("expire".into(), -40),
            ("return_redeem".into(), 60),
            ("expire".into(), -60),
            ("reverse_earn".into(), -34),
        ]
    );
    // All of R-E1's points expired: refunding it takes nothing.
    let r = ok(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "R-E1", "refund_id": "RF-E1"})).await;
    assert_eq!((r["points_reversed"].as_i64(), r["withheld_minor"].as_i64(), r["debt_added"].as_i64()), (Some(0), Some(0), Some(0)));
    assert_eq!(r["refund_minor"], 100000);
    assert_member_sums(&app, &t.admin, &member).await;
    app.assert_ledger_consistent(&t).await;
});

/// The first instant of the month `periods` months after the one holding `t` in a zone
/// of fixed offset `offset_s`.
fn month_end(t: i64, offset_s: i64, periods: i32) -> i64 {
    let local = DateTime::<Utc>::from_timestamp(t + offset_s, 0).unwrap().date_naive();
    let m = local.year() * 12 + local.month0() as i32 + periods;
    NaiveDate::from_ymd_opt(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp()
        - offset_s
}

fn year_end(t: i64, offset_s: i64, periods: i32) -> i64 {
    let local = DateTime::<Utc>::from_timestamp(t + offset_s, 0).unwrap().date_naive();
    NaiveDate::from_ymd_opt(local.year() + periods, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp() - offset_s
}

// 7c. End of period, in the programme's time zone.
both!(expiry_end_of_period_in_time_zone, |app: TestApp| async move {
    let now0 = now();
    let today = DateTime::<Utc>::from_timestamp(now0, 0).unwrap().date_naive();
    let first_of_month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap();
    let last_of_prev = first_of_month.pred_opt().unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    let dec31 = NaiveDate::from_ymd_opt(today.year() - 1, 12, 31).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    let cases = [
        // Moscow is UTC+3: 20:30 UTC is still the old month there, 21:30 UTC the new one.
        (
            json!({"policy": "end_of_period", "period": "month", "periods": 1}),
            "Europe/Moscow",
            3 * 3600,
            last_of_prev + 20 * 3600 + 1800,
            last_of_prev + 21 * 3600 + 1800,
            true,
        ),
        // Vladivostok is UTC+10: 13:00 UTC on 31 December is the old year, 15:00 UTC the new one.
        (
            json!({"policy": "end_of_period", "period": "year", "periods": 1}),
            "Asia/Vladivostok",
            10 * 3600,
            dec31 + 13 * 3600,
            dec31 + 15 * 3600,
            false,
        ),
    ];
    for (n, (expiry, tz, offset, t_old, t_new, month)) in cases.into_iter().enumerate() {
        let t = app.tenant(&format!("Shop {n}")).await;
        app.program(&t.admin, json!({"time_zone": tz, "expiry": expiry, "offline_max_age_days": 400})).await;
        let store = app.store(&t.admin, "S1").await;
        let key = app.pos_key(&t.admin, &store, Some("T1")).await;
        let member = new_member(&app, &t.admin, "Ann").await;
        let end = |t: i64| if month { month_end(t, offset, 1) } else { year_end(t, offset, 1) };
        let (e_old, e_new) = (end(t_old), end(t_new));
        assert!(e_old < e_new);
        ok(&app, &key, "/api/v1/pos/checkout", body("R-OLD", Some(&member), &[(1, 70000)], None, Some(t_old))).await;
        ok(&app, &key, "/api/v1/pos/checkout", body("R-NEW", Some(&member), &[(1, 30000)], None, Some(t_new))).await;
        let now1 = now();
        let mut want_points = 0;
        let mut want_exp = Vec::new();
        for (e, p) in [(e_old, 70), (e_new, 30)] {
            if e > now1 + 1 {
                want_points += p;
                want_exp.push((p, ts(e)));
            } else {
                assert!(e < now0 - 1, "expiry too close to now to test");
            }
        }
        assert_eq!(want_points, if e_old > now1 { 100 } else { 30 });
        let b = app.balance(&t.admin, &member).await;
        assert_eq!(short(&b), bal(want_points, 0, 0, 0), "{tz}");
        assert_eq!(expiring(&b), want_exp, "{tz}");
        let exp: i64 =
            entries(&app, &t.admin, &member).await.iter().filter(|e| e["kind"] == "expire").map(|e| e["points"].as_i64().unwrap()).sum();
        assert_eq!(exp, want_points - 100);
        assert_member_sums(&app, &t.admin, &member).await;
        app.assert_ledger_consistent(&t).await;
    }
});

// 8. Pending points: pending at posting, available after pending_days, released lazily
// on read and by the worker.
both!(pending_points_release, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    app.program(&t.admin, json!({"pending_days": 1})).await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let m1 = new_member(&app, &t.admin, "Ann").await;
    let m2 = new_member(&app, &t.admin, "Bob").await;

    let v = ok(&app, &key, "/api/v1/pos/checkout", body("P-1", Some(&m1), &[(1, 100000)], None, None)).await;
    assert_eq!((v["points_earned"].as_i64(), v["points_pending"].as_i64()), (Some(100), Some(100)));
    assert_eq!(v["balance"], bal(0, 0, 100, 0));
    // Pending points cannot be spent.
    err(&app, &key, "/api/v1/pos/checkout", body("P-X", Some(&m1), &[(1, 100000)], Some(json!(1)), None), 422, "insufficient_points").await;
    // Back-dated two days: already available.
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("P-2", Some(&m1), &[(1, 50000)], None, Some(now() - 2 * DAY))).await;
    assert_eq!((v["points_earned"].as_i64(), v["points_pending"].as_i64()), (Some(50), Some(0)));
    assert_eq!(v["balance"], bal(50, 0, 100, 0));
    // Pending for a few more seconds.
    let due = now() + 6;
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("P-3", Some(&m1), &[(1, 30000)], None, Some(due - DAY))).await;
    assert_eq!((v["points_earned"].as_i64(), v["points_pending"].as_i64()), (Some(30), Some(30)));
    assert_eq!(v["balance"], bal(50, 0, 130, 0));
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("P-4", Some(&m2), &[(1, 40000)], None, Some(due - DAY))).await;
    assert_eq!(v["balance"], bal(0, 0, 40, 0));
    let b = app.balance(&t.admin, &m1).await;
    assert_eq!(short(&b), bal(50, 0, 130, 0));
    // The worker runs now (its per-receipt jobs are done), and runs again later.
    app.run_jobs().await;
    let s = stored(&app, &t, &m2).await;
    assert_eq!((s.points, s.pending), (0, 40), "not due yet");
    assert!(now() < due, "the machine is too slow for this test");
    tokio::time::sleep(std::time::Duration::from_millis(((due - now()) * 1000 + 1300) as u64)).await;

    // Lazily on read, without the worker.
    let b = app.balance(&t.admin, &m1).await;
    assert_eq!(short(&b), bal(80, 0, 100, 0));
    // By the worker: the stored row changes without anyone reading.
    let s = stored(&app, &t, &m2).await;
    assert_eq!((s.points, s.pending), (0, 40), "nothing has settled m2 yet");
    app.run_jobs().await;
    let s = stored(&app, &t, &m2).await;
    assert_eq!((s.points, s.pending), (40, 0), "the worker released the pending points");
    assert_eq!(short(&app.balance(&t.admin, &m2).await), bal(40, 0, 0, 0));
    // A refund takes the earned points back from the receipt's own pending lot.
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("P-5", Some(&m1), &[(2, 50000)], None, None)).await;
    assert_eq!(v["balance"], bal(80, 0, 200, 0));
    let r =
        ok(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "P-5", "refund_id": "RP-5", "items": [{"line_no": 1, "quantity": 1}]}))
            .await;
    assert_eq!((r["points_reversed"].as_i64(), r["debt_added"].as_i64()), (Some(50), Some(0)));
    assert_eq!(r["balance"], bal(80, 0, 150, 0));
    assert_member_sums(&app, &t.admin, &m1).await;
    assert_member_sums(&app, &t.admin, &m2).await;
    app.assert_ledger_consistent(&t).await;
});

// 9. An expired hold releases its points and its ids.
both!(hold_expiry_releases, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let mut p = app.get(&t.admin, "/api/v1/program").await.1;
    p["redeem"]["hold_ttl_s"] = json!(1);
    app.program(&t.admin, p).await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let m1 = new_member(&app, &t.admin, "Ann").await;
    let m2 = new_member(&app, &t.admin, "Bob").await;
    app.give(&t.admin, &m1, 500).await;
    app.give(&t.admin, &m2, 500).await;
    ok(&app, &key, "/api/v1/pos/reserve", body("H-1", Some(&m1), &[(1, 100000)], Some(json!(100)), None)).await;
    ok(&app, &key, "/api/v1/pos/reserve", body("H-2", Some(&m2), &[(1, 100000)], Some(json!(200)), None)).await;
    // The stored rows (a read could already settle a one-second hold on a busy machine).
    for (m, held) in [(&m1, 100), (&m2, 200)] {
        let s = stored(&app, &t, m).await;
        assert_eq!((s.points, s.held), (500, held));
    }
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;

    // Read first: held is 0; the ids take another body.
    assert_eq!(short(&app.balance(&t.admin, &m1).await), bal(500, 0, 0, 0));
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("H-1", Some(&m1), &[(1, 100000)], Some(json!(50)), None)).await;
    assert_eq!(v["balance"], bal(545, 0, 0, 0));
    // Without a read first: the checkout itself releases the expired hold.
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("H-2", Some(&m2), &[(1, 100000)], Some(json!(500)), None)).await;
    assert_eq!(v["balance"], bal(50, 0, 0, 0));
    assert_eq!(receipt_entries(&app, &t.admin, &m2, "H-2").await, vec![("redeem".into(), -500), ("earn".into(), 50)]);
    assert_member_sums(&app, &t.admin, &m1).await;
    assert_member_sums(&app, &t.admin, &m2).await;
    app.assert_ledger_consistent(&t).await;
});

// 10. Tiers from rolling spend before each receipt; refunds and cancels; worker events.
both!(tiers_follow_spend, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let member = new_member(&app, &t.admin, "Ann").await;
    let t0 = now();
    // A member who stays bronze has no tier change to record.
    let m0 = new_member(&app, &t.admin, "Bob").await;
    let r0 = ok(&app, &key, "/api/v1/pos/checkout", body("T-0", Some(&m0), &[(1, 10000)], None, None)).await;
    assert_eq!(r0["tier"], "bronze");
    app.run_jobs().await;
    assert_eq!(events(&app, &t, &m0).await, Vec::<(Value, Value, String)>::new());

    // Crossing the silver threshold: this receipt is still bronze.
    let r1 = ok(&app, &key, "/api/v1/pos/checkout", body("T-1", Some(&member), &[(2, 600000)], None, Some(t0 - 3 * 3600))).await;
    assert_eq!((r1["tier"].as_str(), r1["points_earned"].as_i64()), (Some("bronze"), Some(1200)));
    // The next one is silver, with its multiplier: 100000 × 1.25 / 1000 = 125.
    let r2 = ok(&app, &key, "/api/v1/pos/checkout", body("T-2", Some(&member), &[(1, 100000)], None, Some(t0 - 2 * 3600))).await;
    assert_eq!((r2["tier"].as_str(), r2["points_earned"].as_i64()), (Some("silver"), Some(125)));
    let b = app.balance(&t.admin, &member).await;
    assert_eq!((b["tier"].as_str(), b["tier_spend_minor"].as_i64()), (Some("silver"), Some(1_300_000)));
    assert_eq!(events(&app, &t, &member).await, Vec::<(Value, Value, String)>::new(), "no event before the worker runs");
    app.run_jobs().await;
    assert_eq!(events(&app, &t, &member).await, vec![(json!("bronze"), json!("silver"), "up".to_owned())]);

    // A refund of one unit lowers the spend for later receipts.
    let r =
        ok(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "T-1", "refund_id": "TR-1", "items": [{"line_no": 1, "quantity": 1}]}))
            .await;
    assert_eq!((r["refund_minor"].as_i64(), r["points_reversed"].as_i64()), (Some(600000), Some(600)));
    let b = app.balance(&t.admin, &member).await;
    assert_eq!((b["tier"].as_str(), b["tier_spend_minor"].as_i64()), (Some("bronze"), Some(700_000)));
    app.run_jobs().await;
    assert_eq!(
        events(&app, &t, &member).await,
        vec![(json!("silver"), json!("bronze"), "down".to_owned()), (json!("bronze"), json!("silver"), "up".to_owned())]
    );
    let r3 = ok(&app, &key, "/api/v1/pos/checkout", body("T-3", Some(&member), &[(1, 100000)], None, Some(t0 - 3600))).await;
    assert_eq!((r3["tier"].as_str(), r3["points_earned"].as_i64()), (Some("bronze"), Some(100)));

    // A cancelled receipt does not count.
    let r4 = ok(&app, &key, "/api/v1/pos/checkout", body("T-4", Some(&member), &[(1, 400000)], None, Some(t0 - 3000))).await;
    assert_eq!((r4["tier"].as_str(), r4["points_earned"].as_i64()), (Some("bronze"), Some(400)));
    let c = ok(&app, &key, "/api/v1/pos/cancel", json!({"receipt_id": "T-4"})).await;
    assert_eq!(c["status"], "cancelled");
    let r5 = ok(&app, &key, "/api/v1/pos/checkout", body("T-5", Some(&member), &[(1, 100000)], None, Some(t0 - 2400))).await;
    assert_eq!((r5["tier"].as_str(), r5["points_earned"].as_i64()), (Some("bronze"), Some(100)));
    let b = app.balance(&t.admin, &member).await;
    assert_eq!((b["tier"].as_str(), b["tier_spend_minor"].as_i64()), (Some("bronze"), Some(900_000)));
    assert_eq!(short(&b), bal(1200 + 125 - 600 + 100 + 100, 0, 0, 0));
    app.run_jobs().await;
    assert_eq!(events(&app, &t, &member).await.len(), 2, "no change, no event");

    // Back up to silver now: the worker records it.
    ok(&app, &key, "/api/v1/pos/checkout", body("T-6", Some(&member), &[(1, 100000)], None, Some(t0 - 1800))).await;
    app.run_jobs().await;
    let ev = events(&app, &t, &member).await;
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0], (json!("bronze"), json!("silver"), "up".to_owned()));
    assert_eq!(app.balance(&t.admin, &member).await["tier"], "silver");
    assert_member_sums(&app, &t.admin, &member).await;
    app.assert_ledger_consistent(&t).await;
});

/// The member's tier_changed events, newest first: (from, to, direction).
async fn events(app: &TestApp, t: &Tenant, member: &str) -> Vec<(Value, Value, String)> {
    let (s, v) = app.get(&t.admin, &format!("/api/v1/members/{member}/history")).await;
    assert_eq!(s, 200, "{v}");
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "tier_changed")
        .map(|e| (e["from"].clone(), e["to"].clone(), e["direction"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

// 12. Transfers keep the lots' expiry.
both!(transfer_keeps_expiry, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    app.program(&t.admin, json!({"expiry": {"policy": "rolling_days", "days": 30}, "offline_max_age_days": 400})).await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let a = new_member(&app, &t.admin, "Ann").await;
    let b = new_member(&app, &t.admin, "Bob").await;
    let t0 = now();
    ok(&app, &key, "/api/v1/pos/checkout", body("X-1", Some(&a), &[(1, 100000)], None, Some(t0 - 10 * DAY))).await;
    ok(&app, &key, "/api/v1/pos/checkout", body("X-2", Some(&a), &[(1, 50000)], None, Some(t0 - 5 * DAY))).await;
    let (e1, e2) = (ts(t0 + 20 * DAY), ts(t0 + 25 * DAY));
    let (s, v) = app
        .post(&t.admin, &format!("/api/v1/members/{a}/transfers"), json!({"to_member_id": b, "points": 151, "transfer_id": "TF-0"}))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("insufficient_points")), "{v}");
    let tr = json!({"to_member_id": b, "points": 120, "transfer_id": "TF-1"});
    let v = ok(&app, &t.admin, &format!("/api/v1/members/{a}/transfers"), tr.clone()).await;
    assert_eq!(v["balance"], bal(30, 0, 0, 0));
    assert_eq!(ok(&app, &t.admin, &format!("/api/v1/members/{a}/transfers"), tr).await, v, "idempotent on transfer_id");
    let ba = app.balance(&t.admin, &a).await;
    let bb = app.balance(&t.admin, &b).await;
    assert_eq!(short(&ba), bal(30, 0, 0, 0));
    assert_eq!(short(&bb), bal(120, 0, 0, 0));
    assert_eq!(expiring(&ba), vec![(30, e2.clone())]);
    assert_eq!(expiring(&bb), vec![(100, e1), (20, e2)]);
    let kinds =
        |es: Vec<Value>| es.iter().map(|e| (e["kind"].as_str().unwrap().to_owned(), e["points"].as_i64().unwrap())).collect::<Vec<_>>();
    assert_eq!(kinds(entries(&app, &t.admin, &b).await), vec![("transfer_in".to_owned(), 120)]);
    assert_eq!(kinds(entries(&app, &t.admin, &a).await)[0], ("transfer_out".to_owned(), -120));
    assert_member_sums(&app, &t.admin, &a).await;
    assert_member_sums(&app, &t.admin, &b).await;
    app.assert_ledger_consistent(&t).await;
});

/// A deterministic linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

struct Posted {
    id: String,
    key: usize,
    member: usize,
    lines: Vec<(i64, i64)>,
}

// 11. A mixed random workload keeps every book consistent.
both!(mixed_random_workload, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    app.program(&t.admin, json!({"expiry": {"policy": "rolling_days", "days": 20}, "offline_max_age_days": 60})).await;
    let store = app.store(&t.admin, "S1").await;
    let keys = [app.pos_key(&t.admin, &store, Some("T1")).await, app.pos_key(&t.admin, &store, Some("T2")).await];
    let mut members = Vec::new();
    for n in 0..4 {
        let m = new_member(&app, &t.admin, &format!("M{n}")).await;
        app.give(&t.admin, &m, 300).await;
        members.push(m);
    }
    let mut rng = Lcg(0x6b6f70696c6b61);
    let mut receipts: Vec<Posted> = Vec::new();
    let mut holds: Vec<(Posted, Value, i64)> = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let t0 = now();
    for step in 0..160 {
        let op = rng.below(8);
        let mi = rng.below(members.len() as u64) as usize;
        let member = members[mi].clone();
        match op {
            0 => {
                let points = if rng.below(2) == 0 { 1 + rng.below(200) } else { -(1 + rng.below(150)) };
                let (s, v) = app
                    .post(&t.admin, &format!("/api/v1/members/{member}/adjustments"), json!({"points": points, "reason": "random"}))
                    .await;
                match s {
                    201 => *counts.entry("adjust").or_default() += 1,
                    422 => assert_eq!(v["error"]["code"], "insufficient_points", "{v}"),
                    _ => panic!("adjust {s}: {v}"),
                }
            }
            1 | 2 | 6 => {
                let n_lines = 1 + rng.below(2) as usize;
                let lines: Vec<(i64, i64)> = (0..n_lines).map(|_| (1 + rng.below(3), 1000 + rng.below(40000))).collect();
                let total: i64 = lines.iter().map(|(q, p)| q * p).sum();
                let limit = total / 200;
                let redeem = match rng.below(4) {
                    0 => None,
                    1 => Some(json!("max")),
                    _ => Some(json!(rng.below(limit as u64 + 1))),
                };
                let back = if op == 6 { None } else { Some(t0 - rng.below(30) * DAY - rng.below(DAY as u64)) };
                let ki = rng.below(2) as usize;
                let id = format!("W-{step}");
                let b = body(&id, Some(&member), &lines, redeem, back);
                let path = if op == 6 { "/api/v1/pos/reserve" } else { "/api/v1/pos/checkout" };
                let (s, v) = app.post(&keys[ki], path, b.clone()).await;
                match s {
                    200 => {
                        let p = Posted { id, key: ki, member: mi, lines };
                        if op == 6 {
                            *counts.entry("reserve").or_default() += 1;
                            let pts = v["points_redeemed"].as_i64().unwrap();
                            holds.push((p, b, pts));
                        } else {
                            *counts.entry("checkout").or_default() += 1;
                            receipts.push(p);
                        }
                    }
                    422 => assert_eq!(v["error"]["code"], "insufficient_points", "{v}"),
                    _ => panic!("{path} {s}: {v}"),
                }
            }
            3 if !receipts.is_empty() => {
                let r = &receipts[rng.below(receipts.len() as u64) as usize];
                let mut req = json!({"receipt_id": r.id, "refund_id": format!("WR-{step}")});
                if rng.below(2) == 0 {
                    let line = rng.below(r.lines.len() as u64) as usize;
                    req["items"] = json!([{"line_no": line + 1, "quantity": 1}]);
                }
                let (s, v) = app.post(&keys[r.key], "/api/v1/pos/refund", req).await;
                match s {
                    200 => {
                        *counts.entry("refund").or_default() += 1;
                        assert!(v["withheld_minor"].as_i64().unwrap() >= 0 && v["debt_added"].as_i64().unwrap() >= 0);
                    }
                    422 => assert_eq!(v["error"]["code"], "refund_exceeds_purchase", "{v}"),
                    409 => assert_eq!(v["error"]["code"], "receipt_not_refundable", "{v}"),
                    _ => panic!("refund {s}: {v}"),
                }
            }
            4 if !receipts.is_empty() => {
                let r = &receipts[rng.below(receipts.len() as u64) as usize];
                let (s, v) = app.post(&keys[r.key], "/api/v1/pos/cancel", json!({"receipt_id": r.id})).await;
                match s {
                    200 => *counts.entry("cancel").or_default() += 1,
                    409 => assert_eq!(v["error"]["code"], "cancel_not_possible", "{v}"),
                    _ => panic!("cancel {s}: {v}"),
                }
            }
            5 => {
                let to = members[(mi + 1 + rng.below(members.len() as u64 - 1) as usize) % members.len()].clone();
                let points = 1 + rng.below(150);
                let (s, v) = app
                    .post(
                        &t.admin,
                        &format!("/api/v1/members/{member}/transfers"),
                        json!({"to_member_id": to, "points": points, "transfer_id": format!("WT-{step}")}),
                    )
                    .await;
                match s {
                    201 => *counts.entry("transfer").or_default() += 1,
                    422 => assert_eq!(v["error"]["code"], "insufficient_points", "{v}"),
                    _ => panic!("transfer {s}: {v}"),
                }
            }
            _ if !holds.is_empty() => {
                let (p, b, _) = holds.remove(rng.below(holds.len() as u64) as usize);
                if rng.below(2) == 0 {
                    let v = ok(&app, &keys[p.key], "/api/v1/pos/checkout", b).await;
                    assert_eq!(v["status"], "committed");
                    *counts.entry("hold_checkout").or_default() += 1;
                    receipts.push(p);
                } else {
                    let v = ok(&app, &keys[p.key], "/api/v1/pos/cancel", json!({"receipt_id": p.id})).await;
                    assert_eq!(v["status"], "released");
                    *counts.entry("hold_cancel").or_default() += 1;
                }
            }
            _ => {}
        }
    }
    for k in ["adjust", "checkout", "reserve", "refund", "cancel", "transfer", "hold_checkout", "hold_cancel"] {
        assert!(counts.get(k).copied().unwrap_or(0) >= 2, "the workload did too few {k}: {counts:?}");
    }
    for (mi, m) in members.iter().enumerate() {
        let b = assert_member_sums(&app, &t.admin, m).await;
        let held: i64 = holds.iter().filter(|(p, _, _)| p.member == mi).map(|(_, _, h)| h).sum();
        assert_eq!(b["held"], held, "held = the open reserves of member {mi}");
    }
    app.assert_ledger_consistent(&t).await;
});

// 2b. Concurrent refunds and cancels of one receipt never take back more than it holds.
both!(concurrent_refunds_and_cancels, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let member = new_member(&app, &t.admin, "Ann").await;
    app.give(&t.admin, &member, 1000).await;
    // 3 × 33334 = 100002, 300 points spent: payable 70002, 70 earned.
    let v = ok(&app, &key, "/api/v1/pos/checkout", body("R-CC", Some(&member), &[(3, 33334)], Some(json!(300)), None)).await;
    assert_eq!((v["payable_minor"].as_i64(), v["points_earned"].as_i64()), (Some(70002), Some(70)));
    // An anonymous receipt too: no member lock to lean on.
    ok(&app, &key, "/api/v1/pos/checkout", body("R-AN", None, &[(3, 1000)], None, None)).await;
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (app, key) = (app.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let (rid, req) = match i % 4 {
                0 => ("R-CC", json!({"receipt_id": "R-CC", "refund_id": format!("RF-{i}")})),
                1 | 2 => ("R-CC", json!({"receipt_id": "R-CC", "refund_id": format!("RF-{i}"), "items": [{"line_no": 1, "quantity": 1}]})),
                _ => ("R-AN", json!({"receipt_id": "R-AN", "refund_id": format!("RF-{i}"), "items": [{"line_no": 1, "quantity": 2}]})),
            };
            let (s, v) = app.post(&key, "/api/v1/pos/refund", req).await;
            (rid, s, v)
        }));
    }
    for _ in 0..3 {
        let (app, key) = (app.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let (s, v) = app.post(&key, "/api/v1/pos/cancel", json!({"receipt_id": "R-CC"})).await;
            ("cancel", s, v)
        }));
    }
    let (mut money, mut returned, mut reversed, mut anon_money, mut cancelled) = (0, 0, 0, 0, 0);
    for task in tasks {
        let (what, s, v) = task.await.unwrap();
        match (what, s) {
            ("cancel", 200) => {
                assert_eq!(v["status"], "cancelled");
                cancelled += 1;
            }
            ("cancel", 409) => assert_eq!(v["error"]["code"], "cancel_not_possible", "{v}"),
            ("R-CC", 200) => {
                money += v["refund_minor"].as_i64().unwrap() + v["withheld_minor"].as_i64().unwrap();
                returned += v["points_returned"].as_i64().unwrap();
                reversed += v["points_reversed"].as_i64().unwrap() + v["debt_added"].as_i64().unwrap();
            }
            ("R-AN", 200) => anon_money += v["refund_minor"].as_i64().unwrap(),
            (_, 422) => assert_eq!(v["error"]["code"], "refund_exceeds_purchase", "{v}"),
            (_, 409) => assert_eq!(v["error"]["code"], "receipt_not_refundable", "{v}"),
            _ => panic!("{what} answered {s}: {v}"),
        }
    }
    assert_eq!(anon_money, 2000, "one refund of 2 of 3 units");
    if cancelled > 0 {
        assert_eq!((money, returned, reversed), (0, 0, 0), "a voided receipt was also refunded");
    } else {
        assert!(money <= 70002 && returned <= 300 && reversed <= 70, "over-refunded: {money} {returned} {reversed}");
    }
    let b = app.balance(&t.admin, &member).await;
    let want = if cancelled > 0 { 1000 } else { 1000 - 300 + 70 + returned - reversed };
    assert_eq!(short(&b), bal(want, 0, 0, 0));
    assert_member_sums(&app, &t.admin, &member).await;
    app.assert_ledger_consistent(&t).await;
});
