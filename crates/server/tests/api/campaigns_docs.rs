//! The worked example of docs/api.md "Campaign maths", to the integer, and the rewards
//! catalogue's coupon rewards (a redemption issues a single-use coupon of a campaign).

use crate::both;
use crate::helpers::*;
use serde_json::json;

both!(docs_campaign_maths_example, |app: TestApp| async move {
    let t = app.tenant("Docs Cafe").await;
    let store = app.store(&t.admin, "S1").await;
    app.program(&t.admin, json!({"tiers": [{"code": "silver", "min_spend_minor": 0, "earn_multiplier_bp": 12500}]})).await;
    for body in [
        json!({"code": "coffee-x2", "name": "Double points on coffee", "priority": 200,
               "effects": [{"type": "points_multiplier", "multiplier_bp": 20000, "target": {"categories": ["coffee"]}}]}),
        json!({"code": "pastry-10", "name": "10 % off pastry",
               "effects": [{"type": "discount_percent", "percent_bp": 1000, "target": {"categories": ["pastry"]}}]}),
    ] {
        let (s, v) = app.post(&t.admin, "/api/v1/campaigns", body).await;
        assert_eq!(s, 201, "{v}");
    }
    let m = app.member_id(&t.admin, json!({"email": "docs@example.com"})).await;
    let body = json!({"receipt_id": "D-1", "store_id": store, "member": {"member_id": m}, "items": [
        {"line_no": 1, "sku": "CAP", "category": "Coffee", "quantity": 2, "unit_price_minor": 15000},
        {"line_no": 2, "sku": "CRO", "category": "pastry", "quantity": 1, "unit_price_minor": 9000}]});
    let v = app.checkout(&t.admin, body).await;
    assert_eq!(v["discount_minor"], 900, "{v}");
    assert_eq!(v["payable_minor"], 38100);
    assert_eq!(v["lines"][0]["points_earned"], 75);
    assert_eq!(v["lines"][1]["points_earned"], 9);
    assert_eq!(v["points_earned"], 84);
    assert_eq!(v["applied"][0]["code"], "coffee-x2");
    assert_eq!(v["applied"][0]["points"], 37);
    assert_eq!(v["applied"][1]["code"], "pastry-10");
    assert_eq!(v["applied"][1]["discount_minor"], 900);
    assert_eq!(v["lines"][1]["fiscal_splits"], json!([{"quantity": 1, "unit_price_minor": 8100}]));
    assert!(v.get("wallet_minor").is_none() && v.get("cashback_minor").is_none(), "{v}");
    app.assert_ledger_consistent(&t).await;
});

both!(coupon_reward_issues_a_coupon_of_its_campaign, |app: TestApp| async move {
    let t = app.tenant("Coupon Rewards").await;
    let store = app.store(&t.admin, "S1").await;
    let (s, camp) = app
        .post(
            &t.admin,
            "/api/v1/campaigns",
            json!({"code": "gift-500", "name": "500 off", "requires_coupon": true,
              "effects": [{"type": "discount_fixed", "amount_minor": 50000}]}),
        )
        .await;
    assert_eq!(s, 201, "{camp}");
    let campaign = camp["id"].as_str().unwrap().to_owned();
    // A reward of kind coupon must name a campaign that takes coupons.
    let (s, v) = app
        .post(
            &t.admin,
            "/api/v1/rewards",
            json!({"code": "R1", "name": "500 off", "kind": "coupon",
                                                                "campaign_id": "nope", "points_price": 300}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["fields"]["campaign_id"].is_string(), "{v}");
    let (s, reward) = app
        .post(
            &t.admin,
            "/api/v1/rewards",
            json!({"code": "R1", "name": "500 off", "kind": "coupon",
                                                                     "campaign_id": campaign, "points_price": 300}),
        )
        .await;
    assert_eq!(s, 201, "{reward}");
    let rid = reward["id"].as_str().unwrap().to_owned();
    let m = app.member_id(&t.admin, json!({"email": "cr@example.com"})).await;
    let other = app.member_id(&t.admin, json!({"email": "other@example.com"})).await;
    app.give(&t.admin, &m, 1000).await;
    let (s, x) = app.post(&t.admin, &format!("/api/v1/members/{m}/rewards/{rid}/redeem"), json!({"redemption_id": "x1"})).await;
    assert_eq!(s, 201, "{x}");
    let code = x["code"].as_str().unwrap().to_owned();
    let receipt = |id: &str, member: &str| {
        json!({"receipt_id": id, "store_id": store, "member": {"member_id": member},
        "items": [{"line_no": 1, "category": "gifts", "quantity": 1, "unit_price_minor": 200000}], "coupons": [code]})
    };
    // Another member cannot use it.
    let (s, q) = app.post(&t.admin, "/api/v1/pos/quote", receipt("C-0", &other)).await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["not_applied"][0]["reason_code"], "coupon_not_for_member", "{q}");
    let v = app.checkout(&t.admin, receipt("C-1", &m)).await;
    assert_eq!(v["discount_minor"], 50000, "{v}");
    assert_eq!(v["applied"][0]["coupon"], code);
    // Single use.
    let (_, q) = app.post(&t.admin, "/api/v1/pos/quote", receipt("C-2", &m)).await;
    assert_eq!(q["not_applied"][0]["reason_code"], "coupon_used_up", "{q}");
    // A used coupon reward cannot be cancelled for its points.
    let xid = x["id"].as_str().unwrap();
    let (s, v) = app.post(&t.admin, &format!("/api/v1/reward-redemptions/{xid}/cancel"), json!({})).await;
    assert_error(&(s, v), 409, "redemption_fulfilled");
    // An unused one can, and its coupon stops working.
    let (s, y) = app.post(&t.admin, &format!("/api/v1/members/{m}/rewards/{rid}/redeem"), json!({"redemption_id": "x2"})).await;
    assert_eq!(s, 201, "{y}");
    let yid = y["id"].as_str().unwrap();
    let (s, v) = app.post(&t.admin, &format!("/api/v1/reward-redemptions/{yid}/cancel"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    let mut r = receipt("C-3", &m);
    r["coupons"] = json!([y["code"]]);
    let (_, q) = app.post(&t.admin, "/api/v1/pos/quote", r).await;
    assert_eq!(q["not_applied"][0]["reason_code"], "coupon_inactive", "{q}");
    app.assert_ledger_consistent(&t).await;
});

both!(an_expired_anonymous_reserve_gives_its_coupon_back, |app: TestApp| async move {
    let t = app.tenant("Anon Holds").await;
    let store = app.store(&t.admin, "S1").await;
    app.program(&t.admin, json!({"redeem": {"hold_ttl_s": 1}})).await;
    let (s, camp) = app
        .post(
            &t.admin,
            "/api/v1/campaigns",
            json!({"code": "once", "name": "One-off 10 %", "requires_coupon": true,
              "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
        )
        .await;
    assert_eq!(s, 201, "{camp}");
    let id = camp["id"].as_str().unwrap();
    let (s, v) = app.post(&t.admin, &format!("/api/v1/campaigns/{id}/coupons"), json!({"code": "ONCE", "max_uses": 1})).await;
    assert_eq!(s, 201, "{v}");
    let body = |rid: &str| {
        json!({"receipt_id": rid, "store_id": store, "coupons": ["once"],
                                  "items": [{"line_no": 1, "category": "toys", "quantity": 1, "unit_price_minor": 10000}]})
    };
    let (s, v) = app.post(&t.admin, "/api/v1/pos/reserve", body("A-1")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["discount_minor"], 1000, "{v}");
    let (_, q) = app.post(&t.admin, "/api/v1/pos/quote", body("A-2")).await;
    assert_eq!(q["not_applied"][0]["reason_code"], "coupon_used_up", "the reserve holds the use: {q}");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    app.run_jobs().await;
    let (_, q) = app.post(&t.admin, "/api/v1/pos/quote", body("A-2")).await;
    assert_eq!(q["discount_minor"], 1000, "the expired hold gave the use back: {q}");
    let (s, r) = app.get(&t.admin, &format!("/api/v1/pos/receipts/A-1?store_id={store}")).await;
    assert_eq!(s, 404, "the expired anonymous hold is gone: {r}");
});

both!(a_reserve_counts_as_the_first_purchase, |app: TestApp| async move {
    let t = app.tenant("First Buy").await;
    let store = app.store(&t.admin, "S1").await;
    let (s, v) = app
        .post(
            &t.admin,
            "/api/v1/campaigns",
            json!({"code": "welcome", "name": "300 points on the first purchase",
              "conditions": [{"type": "first_purchase"}], "effects": [{"type": "bonus_points", "points": 300}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let m = app.member_id(&t.admin, json!({"email": "first@example.com"})).await;
    let body = |rid: &str| {
        json!({"receipt_id": rid, "store_id": store, "member": {"member_id": m},
                                  "items": [{"line_no": 1, "category": "toys", "quantity": 1, "unit_price_minor": 10000}]})
    };
    let (s, r1) = app.post(&t.admin, "/api/v1/pos/reserve", body("F-1")).await;
    assert_eq!(s, 200, "{r1}");
    assert_eq!(r1["applied"][0]["points"], 300, "{r1}");
    // Another receipt while the first is reserved is not the first purchase.
    let (_, q) = app.post(&t.admin, "/api/v1/pos/quote", body("F-2")).await;
    assert_eq!(q["not_applied"][0]["reason_code"], "first_purchase_only", "{q}");
    // The reserved receipt itself still is, and checks out with its bonus.
    let (_, q1) = app.post(&t.admin, "/api/v1/pos/quote", body("F-1")).await;
    assert_eq!(q1["applied"][0]["points"], 300, "{q1}");
    let c = app.checkout(&t.admin, body("F-1")).await;
    assert_eq!(c["points_earned"], 310, "{c}");
    app.assert_ledger_consistent(&t).await;
});
