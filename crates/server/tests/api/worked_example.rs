//! The worked example of docs/api.md ("Worked example: receipt R-000123", "Worked example: refund RF-1"): receipt R-000123 and its refund, to the integer.

use crate::both;
use crate::helpers::*;
use serde_json::json;

both!(receipt_and_refund, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let m = app.member(&t.admin, json!({"phone": "8 912 345-67-89"})).await;
    let member = m["id"].as_str().unwrap();
    app.give(&t.admin, member, 1000).await;

    let (s, q) = app.post(&t.admin, "/api/v1/pos/quote", worked_example(&store, member)).await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["status"], "quoted");

    let (s, v) = app.post(&t.admin, "/api/v1/pos/checkout", worked_example(&store, member)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "committed");
    assert_eq!(v["tier"], "bronze");
    assert_eq!(v["program_version"], 1);
    for (k, want) in [
        ("total_minor", 263058),
        ("discount_minor", 0),
        ("points_redeemed", 150),
        ("redeemed_minor", 15000),
        ("payable_minor", 248058),
        ("points_earned", 248),
        ("points_pending", 0),
    ] {
        assert_eq!(v[k], want, "{k}");
    }
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
    // Quote and checkout agree on everything but the status.
    let mut q2 = q.clone();
    q2["status"] = json!("committed");
    assert_eq!(q2, v);

    let (s, r) = app
        .post(&t.admin, "/api/v1/pos/refund", json!({"receipt_id": "R-000123", "till_id": "T2", "store_id": store, "refund_id": "RF-1", "items": [{"line_no": 1, "quantity": 1}]}))
        .await;
    assert_eq!(s, 200, "{r}");
    for (k, want) in [("refund_minor", 14055), ("withheld_minor", 0), ("points_reversed", 14), ("points_returned", 9), ("debt_added", 0)] {
        assert_eq!(r[k], want, "{k}");
    }
    assert_eq!(r["lines"], json!([{"line_no": 1, "quantity": 1, "refund_minor": 14055, "withheld_minor": 0}]));
    assert_eq!(r["balance"], json!({"points": 1093, "held": 0, "pending": 0, "debt": 0}));

    let (s, rc) = app.get(&t.admin, &format!("/api/v1/pos/receipts/R-000123?till_id=T2&store_id={store}")).await;
    assert_eq!(s, 200, "{rc}");
    assert_eq!(rc["status"], "partially_refunded");
    assert_eq!(rc["refunds"].as_array().unwrap().len(), 1);
    app.assert_ledger_consistent(&t).await;
});
