//! Regression tests from an adversarial review of the ledger, the till and idempotency.

use crate::both;
use crate::helpers::*;
use serde_json::{Value, json};

async fn rv_ok(app: &TestApp, key: &str, path: &str, b: Value) -> Value {
    let (s, v) = app.post(key, path, b).await;
    assert!(s == 200 || s == 201, "{path} answered {s}: {v}");
    v
}

fn rv_short(b: &Value) -> Value {
    json!({"points": b["points"], "held": b["held"], "pending": b["pending"], "debt": b["debt"]})
}

// A refund replayed with the original store spelled out (it defaults to the refund's own
// store) is the same refund, as a pos key's own store_id is for a checkout.
both!(refund_replay_with_implied_original_store_is_the_same_body, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let m = app.member_id(&t.admin, json!({"name": "Ann"})).await;
    app.checkout(&key, receipt("R-1", &store, Some(&m), 100000, None)).await;
    let first = rv_ok(
        &app,
        &key,
        "/api/v1/pos/refund",
        json!({"receipt_id": "R-1", "refund_id": "RF-1", "items": [{"line_no": 1, "quantity": 1}]}),
    )
    .await;
    let again = rv_ok(
        &app,
        &key,
        "/api/v1/pos/refund",
        json!({"receipt_id": "R-1", "refund_id": "RF-1", "original_store_id": store, "till_id": "T1", "store_id": store,
               "items": [{"line_no": 1, "quantity": 1}]}),
    )
    .await;
    assert_eq!(first, again);
    app.assert_ledger_consistent(&t).await;
});

// A till-bound key may send or omit its own till: reserve then checkout still commit the hold.
both!(till_bound_key_explicit_till_matches_hold, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, Some("T1")).await;
    let m = app.member_id(&t.admin, json!({"name": "Ann"})).await;
    app.give(&t.admin, &m, 500).await;
    let mut b = receipt("R-1", &store, Some(&m), 100000, Some(json!(100)));
    b.as_object_mut().unwrap().remove("store_id");
    let held = rv_ok(&app, &key, "/api/v1/pos/reserve", b.clone()).await;
    b["till_id"] = json!("T1");
    b["store_id"] = json!(store);
    let done = rv_ok(&app, &key, "/api/v1/pos/checkout", b.clone()).await;
    assert_eq!(done["status"], "committed");
    assert_eq!(done["hold_id"], held["hold_id"]);
    assert_eq!(rv_short(&done["balance"]), json!({"points": 490, "held": 0, "pending": 0, "debt": 0}));
    app.assert_ledger_consistent(&t).await;
});

// Refunds of a receipt whose earned points are still pending take them from its own
// pending lot.
both!(refund_of_pending_receipt_takes_pending_points, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    app.program(&t.admin, json!({"pending_days": 1})).await;
    let store = app.store(&t.admin, "S1").await;
    let key = app.pos_key(&t.admin, &store, None).await;
    let m = app.member_id(&t.admin, json!({"name": "Ann"})).await;
    app.give(&t.admin, &m, 100).await;
    let v = app
        .checkout(
            &key,
            json!({"receipt_id": "R-1", "member": {"member_id": m}, "redeem_points": 30,
        "items": [{"line_no": 1, "sku": "A", "quantity": 2, "unit_price_minor": 50000}]}),
        )
        .await;
    assert_eq!(v["points_earned"], 97);
    assert_eq!(rv_short(&v["balance"]), json!({"points": 70, "held": 0, "pending": 97, "debt": 0}));
    let r = rv_ok(
        &app,
        &key,
        "/api/v1/pos/refund",
        json!({"receipt_id": "R-1", "refund_id": "RF-1", "items": [{"line_no": 1, "quantity": 1}]}),
    )
    .await;
    assert_eq!((r["points_returned"].as_i64(), r["points_reversed"].as_i64()), (Some(15), Some(48)));
    assert_eq!(rv_short(&r["balance"]), json!({"points": 85, "held": 0, "pending": 49, "debt": 0}));
    let c = app.post(&key, "/api/v1/pos/cancel", json!({"receipt_id": "R-1"})).await;
    assert_error(&c, 409, "cancel_not_possible");
    let r = rv_ok(&app, &key, "/api/v1/pos/refund", json!({"receipt_id": "R-1", "refund_id": "RF-2"})).await;
    assert_eq!(rv_short(&r["balance"]), json!({"points": 100, "held": 0, "pending": 0, "debt": 0}));
    app.assert_ledger_consistent(&t).await;
});

// A receipt total past 10^15 is known from the body alone, so it is a validation error
// before any lookup (here: an unknown member).
both!(receipt_total_bound_is_checked_before_lookups, |app: TestApp| async move {
    let t = app.tenant("Bound").await;
    let store = app.store(&t.admin, "B1").await;
    let line = json!({"quantity": 1000, "unit_price_minor": 1_000_000_000_000i64});
    let body = json!({
        "receipt_id": "BIG",
        "store_id": store,
        "member": {"member_id": "no-such-member"},
        "items": [line.clone(), line.clone()]
    });
    let (s, v) = app.post(&t.admin, "/api/v1/pos/checkout", body).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "validation_error");
    assert!(v["error"]["fields"]["items"].is_string(), "{v}");
});
