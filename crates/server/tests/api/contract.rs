//! The API reference (docs/api.md), endpoint by endpoint: the error envelope and the order of checks, input
//! validation, the programme, stores, keys, members, balances, the ledger, adjustments,
//! transfers, the till (quote, reserve, checkout, cancel, refund) and tenant isolation.
//! Figures are asserted exactly where docs/api.md gives them.

use crate::both;
use crate::helpers::*;
use serde_json::{Value, json};

/// A tenant with one store.
struct Shop {
    t: Tenant,
    store: String,
}

async fn shop(app: &TestApp) -> Shop {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    Shop { t, store }
}

/// A counted line.
fn line(line_no: i64, sku: &str, category: &str, quantity: i64, unit_price_minor: i64) -> Value {
    json!({"line_no": line_no, "sku": sku, "category": category, "quantity": quantity, "unit_price_minor": unit_price_minor})
}

/// A receipt body with the given lines, named by member id when given.
fn body(id: &str, store: &str, member: Option<&str>, items: Value, redeem: Option<Value>) -> Value {
    let mut v = json!({"receipt_id": id, "store_id": store, "items": items});
    if let Some(m) = member {
        v["member"] = json!({"member_id": m});
    }
    if let Some(r) = redeem {
        v["redeem_points"] = r;
    }
    v
}

fn receipt_path(id: &str, store: &str, till: &str) -> String {
    format!("/api/v1/pos/receipts/{id}?store_id={store}&till_id={till}")
}

fn refund(receipt: &str, store: &str, refund_id: &str, items: Option<Value>) -> Value {
    let mut v = json!({"receipt_id": receipt, "store_id": store, "refund_id": refund_id});
    if let Some(i) = items {
        v["items"] = i;
    }
    v
}

/// The four balance figures a POS answer carries.
fn bal(points: i64, held: i64, pending: i64, debt: i64) -> Value {
    json!({"points": points, "held": held, "pending": pending, "debt": debt})
}

/// The POS answer's figures of a member's balance read.
async fn bal_of(app: &TestApp, key: &str, member: &str) -> Value {
    let b = app.balance(key, member).await;
    json!({"points": b["points"], "held": b["held"], "pending": b["pending"], "debt": b["debt"]})
}

/// A measured quantity as the API prints it (a decimal string), in thousandths.
#[track_caller]
fn milli(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("a measured quantity is a decimal string: {v}"));
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    assert!(f.len() <= 3, "{s}");
    i.parse::<i64>().expect("integer part") * 1000 + format!("{f:0<3}").parse::<i64>().expect("fraction")
}

async fn read_receipt(app: &TestApp, key: &str, path: String) -> Value {
    let (st, v) = app.get(key, &path).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn ean13_ok(card: &str) -> bool {
    let d: Vec<u32> = card.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 13 || card.len() != 13 {
        return false;
    }
    let sum: u32 = d[..12].iter().enumerate().map(|(i, x)| if i % 2 == 0 { *x } else { 3 * x }).sum();
    (10 - sum % 10) % 10 == d[12]
}

// ---------------------------------------------------------------------------------------
// Errors, authentication and roles
// ---------------------------------------------------------------------------------------

both!(error_envelope_has_code_message_fields_and_request_id, |app: TestApp| async move {
    let s = shop(&app).await;
    // A validation error names the field.
    let got = app.post(&s.t.admin, "/api/v1/members", json!({"email": "not-an-email"})).await;
    assert_field_error(&got, "email");
    // The request id is echoed when the caller sends one.
    let resp =
        app.client.get(format!("{}/api/v1/program", app.url)).header("x-request-id", "req-contract-1").send().await.expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.headers().get("x-request-id").and_then(|h| h.to_str().ok()), Some("req-contract-1"));
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["request_id"], "req-contract-1");
    assert_error(&(401, v), 401, "unauthorized");
    // Unknown routes use the envelope too.
    assert_error(&app.get(&s.t.admin, "/api/v1/no-such-thing").await, 404, "not_found");
});

both!(body_that_is_not_json_is_400, |app: TestApp| async move {
    let s = shop(&app).await;
    for path in ["/api/v1/pos/checkout", "/api/v1/members", "/api/v1/stores", "/api/v1/pos/refund"] {
        assert_error(&app.post_raw(&s.t.admin, path, "{\"receipt_id\": ").await, 400, "invalid_json");
        assert_error(&app.post_raw(&s.t.admin, path, "hello").await, 400, "invalid_json");
    }
    assert_error(&app.request(reqwest::Method::PUT, &s.t.admin, "/api/v1/program", None).await, 400, "invalid_json");
    // JSON that is not an object is valid JSON: 422.
    assert_error(&app.post_raw(&s.t.admin, "/api/v1/members", "[1, 2]").await, 422, "validation_error");
    // Nothing was written.
    let (_, list) = app.get(&s.t.admin, "/api/v1/members").await;
    assert_eq!(list["members"], json!([]));
});

both!(unauthorized_missing_invalid_revoked_and_expired_keys, |app: TestApp| async move {
    let s = shop(&app).await;
    assert_error(&app.get("", "/api/v1/program").await, 401, "unauthorized");
    assert_error(
        &app.get("kop_0000000000000000000000000000000000000000000000000000000000000000", "/api/v1/program").await,
        401,
        "unauthorized",
    );
    assert_error(&app.post("nonsense", "/api/v1/members", json!({})).await, 401, "unauthorized");
    // A non-Bearer scheme is not a key.
    let resp =
        app.client.get(format!("{}/api/v1/program", app.url)).header("authorization", format!("Basic {}", s.t.admin)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // Revoked.
    let (id, key) = app.api_key(&s.t.admin, json!({"role": "pos", "store_id": s.store})).await;
    assert_eq!(app.get(&key, "/api/v1/program").await.0, 200);
    let (st, v) = app.delete(&s.t.admin, &format!("/api/v1/api-keys/{id}")).await;
    assert_eq!(st, 200, "{v}");
    assert_error(&app.get(&key, "/api/v1/program").await, 401, "unauthorized");
    assert_error(&app.post(&key, "/api/v1/members", json!({})).await, 401, "unauthorized");
    // Revoking again, or an unknown key, is 404.
    assert_error(&app.delete(&s.t.admin, "/api/v1/api-keys/no-such-key").await, 404, "not_found");
    // The other keys still work.
    assert_eq!(app.get(&s.t.admin, "/api/v1/program").await.0, 200);

    // Expired.
    let expires = unix_now() + 2;
    let (_, short) = app.api_key(&s.t.admin, json!({"role": "analyst", "expires_at": rfc3339(expires)})).await;
    assert_eq!(app.get(&short, "/api/v1/program").await.0, 200);
    while unix_now() <= expires {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_error(&app.get(&short, "/api/v1/program").await, 401, "unauthorized");
    // A key cannot be made already expired.
    assert_field_error(
        &app.post(&s.t.admin, "/api/v1/api-keys", json!({"role": "analyst", "expires_at": rfc3339(unix_now() - 10)})).await,
        "expires_at",
    );
});

both!(pos_key_role_limits, |app: TestApp| async move {
    let s = shop(&app).await;
    let pos = app.pos_key(&s.t.admin, &s.store, None).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let m2 = app.member_id(&s.t.admin, json!({"phone": "+79120000002"})).await;
    app.give(&s.t.admin, &m, 100).await;
    let forbidden = [
        app.put(&pos, "/api/v1/program", json!({})).await,
        app.post(&pos, "/api/v1/stores", json!({"code": "S9", "name": "Nine"})).await,
        app.post(&pos, "/api/v1/api-keys", json!({"role": "pos", "store_id": s.store})).await,
        app.post(&pos, &format!("/api/v1/members/{m}/adjustments"), json!({"points": 5, "reason": "x"})).await,
        app.post(&pos, &format!("/api/v1/members/{m}/transfers"), json!({"to_member_id": m2, "points": 5, "transfer_id": "T-1"})).await,
        app.get(&pos, "/api/v1/audit").await,
    ];
    for got in &forbidden {
        assert_error(got, 403, "forbidden");
    }
    // Nothing changed.
    assert_eq!(app.balance(&s.t.admin, &m).await["points"], 100);
    assert_eq!(app.balance(&s.t.admin, &m2).await["points"], 0);
    let (_, stores) = app.get(&s.t.admin, "/api/v1/stores").await;
    assert_eq!(stores["stores"].as_array().unwrap().len(), 1);
    // What a pos key may do.
    assert_eq!(app.get(&pos, "/api/v1/program").await.0, 200);
    assert_eq!(app.post(&pos, "/api/v1/members", json!({"phone": "+79120000003"})).await.0, 201);
    assert_eq!(app.post(&pos, "/api/v1/members/lookup", json!({"phone": "+79120000001"})).await.0, 200);
    assert_eq!(app.get(&pos, &format!("/api/v1/members/{m}")).await.0, 200);
    assert_eq!(app.get(&pos, &format!("/api/v1/members/{m}/balance")).await.0, 200);
    assert_eq!(app.post(&pos, "/api/v1/pos/checkout", receipt("R-1", &s.store, Some(&m), 1000, None)).await.0, 200);
});

both!(analyst_is_read_only_and_unmasked, |app: TestApp| async move {
    let s = shop(&app).await;
    let (_, analyst) = app.api_key(&s.t.admin, json!({"role": "analyst"})).await;
    let m = app.member(&s.t.admin, json!({"phone": "8 912 345-67-89", "email": "ivan@example.com", "birthday": "1990-01-02"})).await;
    let id = m["id"].as_str().unwrap();
    app.give(&s.t.admin, id, 100).await;
    app.checkout(&s.t.admin, receipt("R-1", &s.store, Some(id), 5000, None)).await;
    let forbidden = [
        app.post(&analyst, "/api/v1/members", json!({"phone": "+79120000009"})).await,
        app.post(&analyst, "/api/v1/pos/quote", receipt("R-2", &s.store, Some(id), 1000, None)).await,
        app.post(&analyst, "/api/v1/pos/reserve", receipt("R-2", &s.store, Some(id), 1000, None)).await,
        app.post(&analyst, "/api/v1/pos/checkout", receipt("R-2", &s.store, Some(id), 1000, None)).await,
        app.post(&analyst, "/api/v1/pos/cancel", json!({"receipt_id": "R-1", "store_id": s.store})).await,
        app.post(&analyst, "/api/v1/pos/refund", refund("R-1", &s.store, "RF-1", None)).await,
        app.put(&analyst, "/api/v1/program", json!({})).await,
        app.post(&analyst, "/api/v1/stores", json!({"code": "S9", "name": "Nine"})).await,
        app.post(&analyst, "/api/v1/api-keys", json!({"role": "analyst"})).await,
        app.post(&analyst, &format!("/api/v1/members/{id}/adjustments"), json!({"points": 5, "reason": "x"})).await,
    ];
    for got in &forbidden {
        assert_error(got, 403, "forbidden");
    }
    // Reads, unmasked.
    let (st, v) = app.post(&analyst, "/api/v1/members/lookup", json!({"card_number": m["card_number"]})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["phone"], "+79123456789");
    assert_eq!(v["email"], "ivan@example.com");
    assert_eq!(v["qr_token"], m["qr_token"]);
    assert_eq!(v["birthday"], "1990-01-02");
    let (st, v) = app.get(&analyst, &format!("/api/v1/members/{id}")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["phone"], "+79123456789");
    assert_eq!(v["qr_token"], m["qr_token"]);
    assert_eq!(app.balance(&analyst, id).await["points"], 105);
    assert_eq!(app.ledger_all(&analyst, id).await.len(), 2);
    assert_eq!(app.get(&analyst, "/api/v1/program").await.0, 200);
    assert_eq!(app.get(&analyst, "/api/v1/audit").await.0, 200);
    let (st, r) = app.get(&analyst, &receipt_path("R-1", &s.store, "")).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["status"], "committed");
    // The refused writes wrote nothing.
    assert_eq!(app.balance(&s.t.admin, id).await["points"], 105);
    let (_, rc) = app.get(&s.t.admin, &receipt_path("R-1", &s.store, "")).await;
    assert_eq!(rc["status"], "committed");
});

both!(unknown_objects_are_404, |app: TestApp| async move {
    let s = shop(&app).await;
    let ghost = "01900000-0000-7000-8000-000000000000";
    for path in [
        format!("/api/v1/members/{ghost}"),
        format!("/api/v1/members/{ghost}/balance"),
        format!("/api/v1/members/{ghost}/ledger"),
        format!("/api/v1/members/{ghost}/history"),
        format!("/api/v1/stores/{ghost}"),
        receipt_path("R-404", &s.store, ""),
    ] {
        assert_error(&app.get(&s.t.admin, &path).await, 404, "not_found");
    }
    assert_error(
        &app.post(&s.t.admin, &format!("/api/v1/members/{ghost}/adjustments"), json!({"points": 5, "reason": "x"})).await,
        404,
        "not_found",
    );
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/cancel", json!({"receipt_id": "R-404", "store_id": s.store})).await, 404, "not_found");
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/refund", refund("R-404", &s.store, "RF-1", None)).await, 404, "not_found");
    // A store or member named in a body.
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", receipt("R-1", ghost, None, 1000, None)).await, 404, "store_not_found");
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", receipt("R-1", &s.store, Some(ghost), 1000, None)).await,
        404,
        "member_not_found",
    );
    assert_error(&app.post(&s.t.admin, "/api/v1/members/lookup", json!({"card_number": "2000000000008"})).await, 404, "member_not_found");
    assert_error(&app.post(&s.t.admin, "/api/v1/api-keys", json!({"role": "pos", "store_id": ghost})).await, 404, "store_not_found");
});

// ---------------------------------------------------------------------------------------
// Order of checks
// ---------------------------------------------------------------------------------------

both!(order_role_before_parsing_and_parsing_before_validation, |app: TestApp| async move {
    let s = shop(&app).await;
    let pos = app.pos_key(&s.t.admin, &s.store, None).await;
    let (_, analyst) = app.api_key(&s.t.admin, json!({"role": "analyst"})).await;
    // 401 before anything.
    assert_error(&app.post_raw("bad-key", "/api/v1/pos/checkout", "not json").await, 401, "unauthorized");
    // A pos key with a bad (or unparsable) body on an admin endpoint: 403, not 400/422.
    assert_error(&app.put(&pos, "/api/v1/program", json!({"currency": 5, "bogus": true})).await, 403, "forbidden");
    assert_error(&app.request(reqwest::Method::PUT, &pos, "/api/v1/program", Some(&Value::String("x".into()))).await, 403, "forbidden");
    let resp = app.client.put(format!("{}/api/v1/program", app.url)).bearer_auth(&pos).body("{{{").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_error(&app.post_raw(&analyst, "/api/v1/pos/checkout", "not json").await, 403, "forbidden");
    assert_error(&app.post_raw(&pos, "/api/v1/stores", "not json").await, 403, "forbidden");
    // Bad JSON is 400 before any 422.
    assert_error(&app.post_raw(&s.t.admin, "/api/v1/pos/checkout", "{\"receipt_id\": 1.5,").await, 400, "invalid_json");
    assert_error(&app.post_raw(&pos, "/api/v1/pos/checkout", "{\"items\": [}").await, 400, "invalid_json");
});

both!(order_validation_before_store_mismatch, |app: TestApp| async move {
    let s = shop(&app).await;
    let other = app.store(&s.t.admin, "S2").await;
    let pos = app.pos_key(&s.t.admin, &s.store, Some("T1")).await;
    // Wrong store and a float: the float wins.
    let mut b = receipt("R-1", &other, None, 1000, None);
    b["items"][0]["unit_price_minor"] = json!(10.5);
    assert_field_error(&app.post(&pos, "/api/v1/pos/checkout", b).await, "items[0].unit_price_minor");
    // Wrong till and an unknown field: the unknown field wins.
    let mut b = receipt("R-1", &s.store, None, 1000, None);
    b["till_id"] = json!("T9");
    b["colour"] = json!("red");
    assert_field_error(&app.post(&pos, "/api/v1/pos/checkout", b).await, "colour");
    // Same for cancel and refund.
    assert_field_error(&app.post(&pos, "/api/v1/pos/cancel", json!({"receipt_id": "R-1", "store_id": other, "extra": 1})).await, "extra");
    assert_field_error(
        &app.post(&pos, "/api/v1/pos/refund", json!({"receipt_id": "R-1", "store_id": other, "refund_id": 7})).await,
        "refund_id",
    );
    // Valid bodies then meet the binding.
    assert_error(&app.post(&pos, "/api/v1/pos/checkout", receipt("R-1", &other, None, 1000, None)).await, 403, "store_mismatch");
    assert_error(&app.post(&pos, "/api/v1/pos/cancel", json!({"receipt_id": "R-1", "store_id": other})).await, 403, "store_mismatch");
    assert_error(&app.post(&pos, "/api/v1/pos/refund", refund("R-1", &other, "RF-1", None)).await, 403, "store_mismatch");
});

both!(order_store_mismatch_before_idempotency, |app: TestApp| async move {
    let s = shop(&app).await;
    let other = app.store(&s.t.admin, "S2").await;
    // Receipts that exist at (S2, "") and at (S1, "T2").
    app.checkout(&s.t.admin, receipt("R-1", &other, None, 1000, None)).await;
    let mut at_t2 = receipt("R-2", &s.store, None, 1000, None);
    at_t2["till_id"] = json!("T2");
    app.checkout(&s.t.admin, at_t2.clone()).await;
    let pos = app.pos_key(&s.t.admin, &s.store, Some("T1")).await;
    // Other bodies under those ids would be 409, but the binding is checked first.
    assert_error(&app.post(&pos, "/api/v1/pos/checkout", receipt("R-1", &other, None, 2000, None)).await, 403, "store_mismatch");
    at_t2["items"][0]["unit_price_minor"] = json!(2000);
    assert_error(&app.post(&pos, "/api/v1/pos/checkout", at_t2).await, 403, "store_mismatch");
    // And the admin key does get the 409.
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", receipt("R-1", &other, None, 2000, None)).await, 409, "receipt_conflict");
});

both!(order_receipt_conflict_before_lookups_and_lookups_before_rules, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.checkout(&s.t.admin, receipt("R-1", &s.store, Some(&m), 1000, None)).await;
    let ghost = "01900000-0000-7000-8000-000000000000";
    // 409 before 404: the same ids with an unknown member.
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", receipt("R-1", &s.store, Some(ghost), 1000, None)).await,
        409,
        "receipt_conflict",
    );
    // 404 before 422 business rules.
    let mut b = receipt("R-2", &s.store, Some(ghost), 1000, Some(json!(1_000_000)));
    b["occurred_at"] = json!(rfc3339(unix_now() - 90 * 86_400));
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, 404, "member_not_found");
    let mut b = receipt("R-3", ghost, None, 1000, Some(json!(5)));
    b["occurred_at"] = json!(rfc3339(unix_now() - 90 * 86_400));
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, 404, "store_not_found");
    // 404 before 422 on a refund: the receipt is unknown and the refund is too large.
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/refund", refund("R-404", &s.store, "RF-1", Some(json!([{"line_no": 1, "quantity": 99}])))).await,
        404,
        "not_found",
    );
    // 404 before 422 on an adjustment below zero.
    assert_error(
        &app.post(&s.t.admin, &format!("/api/v1/members/{ghost}/adjustments"), json!({"points": -5, "reason": "x"})).await,
        404,
        "not_found",
    );
});

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

both!(floats_in_money_and_points_are_rejected_with_the_field_path, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 100).await;
    let mut b = receipt("R-1", &s.store, Some(&m), 1000, None);
    b["items"][0]["unit_price_minor"] = json!(150.5);
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "items[0].unit_price_minor");
    let mut b = receipt("R-1", &s.store, Some(&m), 1000, None);
    b["items"][0]["unit_price_minor"] = json!(1000.0);
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "items[0].unit_price_minor");
    let mut b = receipt("R-1", &s.store, Some(&m), 1000, None);
    b["items"][0]["total_minor"] = json!(1e3);
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/quote", b).await, "items[0].total_minor");
    let mut b = receipt("R-1", &s.store, Some(&m), 1000, None);
    b["items"][0]["quantity"] = json!(1.5);
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "items[0].quantity");
    assert_field_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", receipt("R-1", &s.store, Some(&m), 1000, Some(json!(2.5)))).await,
        "redeem_points",
    );
    assert_field_error(
        &app.post(&s.t.admin, &format!("/api/v1/members/{m}/adjustments"), json!({"points": 10.5, "reason": "x"})).await,
        "points",
    );
    assert_field_error(&app.put(&s.t.admin, "/api/v1/program", json!({"earn": {"points_per_unit": 1.5}})).await, "earn.points_per_unit");
    assert_field_error(
        &app.put(&s.t.admin, "/api/v1/program", json!({"redeem": {"point_value_minor": 100.0}})).await,
        "redeem.point_value_minor",
    );
    let m2 = app.member_id(&s.t.admin, json!({"phone": "+79120000002"})).await;
    assert_field_error(
        &app.post(&s.t.admin, &format!("/api/v1/members/{m}/transfers"), json!({"to_member_id": m2, "points": 1.0, "transfer_id": "T1"}))
            .await,
        "points",
    );
    // Nothing was written.
    assert_eq!(app.ledger_all(&s.t.admin, &m).await.len(), 1);
    assert_error(&app.get(&s.t.admin, &receipt_path("R-1", &s.store, "")).await, 404, "not_found");
    assert_eq!(app.get(&s.t.admin, "/api/v1/program").await.1["version"], 1);
});

both!(unknown_fields_are_rejected_and_null_means_left_out, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let mut b = receipt("R-1", &s.store, Some(&m), 1000, None);
    b["colour"] = json!("red");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "colour");
    let mut b = receipt("R-1", &s.store, Some(&m), 1000, None);
    b["items"][0]["colour"] = json!("red");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "items[0].colour");
    let mut b = receipt("R-1", &s.store, Some(&m), 1000, None);
    b["member"]["nickname"] = json!("x");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "member.nickname");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/members", json!({"phone": "+79120000002", "shoe_size": 42})).await, "shoe_size");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/stores", json!({"code": "S2", "name": "Two", "floor": 1})).await, "floor");
    assert_field_error(
        &app.post(&s.t.admin, &format!("/api/v1/members/{m}/adjustments"), json!({"points": 1, "reason": "x", "why": "y"})).await,
        "why",
    );
    assert_field_error(
        &app.post(&s.t.admin, "/api/v1/pos/refund", json!({"receipt_id": "R-1", "store_id": s.store, "refund_id": "RF", "note": "x"}))
            .await,
        "note",
    );
    let got = app.put(&s.t.admin, "/api/v1/program", json!({"bogus": 1})).await;
    assert_error(&got, 422, "validation_error");
    let got = app.put(&s.t.admin, "/api/v1/program", json!({"earn": {"points_per_unit": 1, "bonus": 2}})).await;
    assert_error(&got, 422, "validation_error");

    // null means the field was left out.
    let b = json!({
        "receipt_id": "R-1", "store_id": s.store, "till_id": null, "member": {"member_id": m},
        "items": [{"line_no": null, "sku": "A", "category": null, "quantity": 1, "unit_price_minor": 1000, "total_minor": null, "discount": null}],
        "redeem_points": null, "coupons": null, "occurred_at": null
    });
    let v = app.checkout(&s.t.admin, b).await;
    assert_eq!(v["till_id"], "");
    assert_eq!(v["points_redeemed"], 0);
    assert_eq!(v["points_earned"], 1);
    assert_eq!(v["lines"][0]["line_no"], 1);
    let b = json!({"receipt_id": "R-2", "store_id": s.store, "member": null, "items": [{"quantity": 1, "unit_price_minor": 1000}]});
    let v = app.checkout(&s.t.admin, b).await;
    assert_eq!(v["member_id"], Value::Null);
    let v = app.member(&s.t.admin, json!({"phone": "+79120000003", "email": null, "external_id": null, "consents": null})).await;
    assert_eq!(v["email"], Value::Null);
    // Null in the programme takes the default; a PUT of defaults with nulls is no change.
    let p = app.program(&s.t.admin, json!({"pending_days": null, "earn": null, "tiers": null})).await;
    assert_eq!(p["version"], 1);
    assert_eq!(p["pending_days"], 0);
});

both!(magnitudes_beyond_ten_to_the_twelfth_are_rejected, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let e12: i64 = 1_000_000_000_000;
    // At the bound is accepted (a quote writes nothing).
    let (st, v) = app.post(&s.t.admin, "/api/v1/pos/quote", receipt("R-1", &s.store, Some(&m), e12, None)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["total_minor"], e12);
    assert_field_error(
        &app.post(&s.t.admin, "/api/v1/pos/quote", receipt("R-1", &s.store, Some(&m), e12 + 1, None)).await,
        "items[0].unit_price_minor",
    );
    let mut b = receipt("R-1", &s.store, Some(&m), 1, None);
    b["items"][0]["quantity"] = json!(e12 + 1);
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/quote", b).await, "items[0].quantity");
    let mut b = receipt("R-1", &s.store, Some(&m), 1, None);
    b["items"][0]["quantity"] = json!("1000000000000.001");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/quote", b).await, "items[0].quantity");
    let mut b = receipt("R-1", &s.store, Some(&m), 1, None);
    b["items"][0]["total_minor"] = json!(e12 + 1);
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/quote", b).await, "items[0].total_minor");
    assert_field_error(
        &app.post(&s.t.admin, "/api/v1/pos/quote", receipt("R-1", &s.store, Some(&m), 1000, Some(json!(e12 + 1)))).await,
        "redeem_points",
    );
    // Negative amounts are for adjustments only.
    assert_field_error(
        &app.post(&s.t.admin, "/api/v1/pos/quote", receipt("R-1", &s.store, Some(&m), -1, None)).await,
        "items[0].unit_price_minor",
    );
    assert_field_error(
        &app.post(&s.t.admin, "/api/v1/pos/quote", receipt("R-1", &s.store, Some(&m), 1000, Some(json!(-1)))).await,
        "redeem_points",
    );
    // A computation past 10^15 is a validation error too.
    let mut b = receipt("R-1", &s.store, Some(&m), e12, None);
    b["items"][0]["quantity"] = json!(1_000_000);
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/quote", b).await, 422, "validation_error");
    let mut b = receipt("R-1", &s.store, Some(&m), e12, None);
    b["items"][0]["quantity"] = json!("5000.5");
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, 422, "validation_error");
    // Adjustments: within ±10^12.
    assert_field_error(
        &app.post(&s.t.admin, &format!("/api/v1/members/{m}/adjustments"), json!({"points": e12 + 1, "reason": "x"})).await,
        "points",
    );
    assert_field_error(
        &app.post(&s.t.admin, &format!("/api/v1/members/{m}/adjustments"), json!({"points": -e12 - 1, "reason": "x"})).await,
        "points",
    );
    assert_field_error(
        &app.post_raw(&s.t.admin, &format!("/api/v1/members/{m}/adjustments"), r#"{"points": 100000000000000000000, "reason": "x"}"#).await,
        "points",
    );
    assert_eq!(app.ledger_all(&s.t.admin, &m).await.len(), 0);
    assert_error(&app.get(&s.t.admin, &receipt_path("R-1", &s.store, "")).await, 404, "not_found");
});

both!(quantities_and_line_numbers_are_checked, |app: TestApp| async move {
    let s = shop(&app).await;
    let bad_quantities =
        [json!("1.2345"), json!("0"), json!(0), json!(-1), json!("-1.5"), json!("1,5"), json!("abc"), json!(""), json!("1e3"), json!(true)];
    for q in bad_quantities {
        let mut b = receipt("R-1", &s.store, None, 1000, None);
        b["items"][0]["quantity"] = q.clone();
        assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "items[0].quantity");
    }
    // Up to 3 decimals, counted in thousandths; "2.000" stays measured.
    let mut b = receipt("R-1", &s.store, None, 1000, None);
    b["items"][0]["quantity"] = json!("2.000");
    let v = app.checkout(&s.t.admin, b).await;
    assert_eq!(milli(&v["lines"][0]["quantity"]), 2000);
    assert_eq!(v["lines"][0]["total_minor"], 2000);
    let splits = v["lines"][0]["fiscal_splits"].as_array().unwrap();
    assert_eq!(splits.len(), 1, "{v}");
    assert_eq!(milli(&splits[0]["quantity"]), 2000);
    assert_eq!(splits[0]["total_minor"], 2000);
    // Half up to the minor unit: 1.235 × 1001 = 1236.235 → 1236; 0.5 × 3 = 1.5 → 2.
    let b = body(
        "R-2",
        &s.store,
        None,
        json!([
            {"sku": "A", "quantity": "1.235", "unit_price_minor": 1001},
            {"sku": "B", "quantity": "0.5", "unit_price_minor": 3}
        ]),
        None,
    );
    let v = app.checkout(&s.t.admin, b).await;
    assert_eq!(v["lines"][0]["total_minor"], 1236);
    assert_eq!(v["lines"][1]["total_minor"], 2);
    // line_no defaults to the position and must be unique.
    assert_eq!(v["lines"][0]["line_no"], 1);
    assert_eq!(v["lines"][1]["line_no"], 2);
    let b = body("R-3", &s.store, None, json!([line(1, "A", "x", 1, 100), line(1, "B", "x", 1, 100)]), None);
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "items[1].line_no");
    let b = body(
        "R-3",
        &s.store,
        None,
        json!([{"quantity": 1, "unit_price_minor": 100}, {"line_no": 1, "quantity": 1, "unit_price_minor": 100}]),
        None,
    );
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "items[1].line_no");
    // Neither price nor total.
    let b = body("R-3", &s.store, None, json!([{"sku": "A", "quantity": 1}]), None);
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, 422, "validation_error");
    // total_minor alone is enough.
    let b = body("R-3", &s.store, None, json!([{"sku": "A", "quantity": "1.5", "total_minor": 777}]), None);
    assert_eq!(app.checkout(&s.t.admin, b).await["total_minor"], 777);
    // No items, or an empty list.
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", json!({"receipt_id": "R-4", "store_id": s.store})).await, "items");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", body("R-4", &s.store, None, json!([]), None)).await, "items");
    assert_field_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", json!({"store_id": s.store, "items": [line(1, "A", "x", 1, 1)]})).await,
        "receipt_id",
    );
    // The member reference holds exactly one identifier.
    let mut b = receipt("R-4", &s.store, None, 1000, None);
    b["member"] = json!({"card_number": "2000000000008", "phone": "+79120000001"});
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "member");
    let mut b = receipt("R-4", &s.store, None, 1000, None);
    b["member"] = json!({});
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", b).await, "member");
});

// ---------------------------------------------------------------------------------------
// Programme
// ---------------------------------------------------------------------------------------

fn contract_defaults() -> Value {
    json!({
      "currency": "RUB",
      "time_zone": "UTC",
      "earn":   {"points_per_unit": 1, "unit_minor": 1000, "rounding": "floor"},
      "redeem": {"point_value_minor": 100, "max_share_bp": 5000, "min_balance": 0, "auth": "none", "hold_ttl_s": 900},
      "no_earn_categories": [],
      "no_discount_categories": ["tobacco"],
      "pending_days": 0,
      "expiry": {"policy": "never"},
      "tier_window_days": 365,
      "offline_max_age_days": 30,
      "tiers": [
        {"code": "bronze", "name": "Bronze", "min_spend_minor": 0,       "earn_multiplier_bp": 10000, "discount_bp": 0},
        {"code": "silver", "name": "Silver", "min_spend_minor": 1000000, "earn_multiplier_bp": 12500, "discount_bp": 0},
        {"code": "gold",   "name": "Gold",   "min_spend_minor": 5000000, "earn_multiplier_bp": 15000, "discount_bp": 0}
      ]
    })
}

#[track_caller]
fn assert_program(got: &Value, want: &Value) {
    for (k, w) in want.as_object().unwrap() {
        assert_eq!(&got[k], w, "programme field {k}: {got}");
    }
}

both!(program_get_shows_the_contract_defaults_at_version_1, |app: TestApp| async move {
    let s = shop(&app).await;
    let (st, v) = app.get(&s.t.admin, "/api/v1/program").await;
    assert_eq!(st, 200, "{v}");
    assert_program(&v, &contract_defaults());
    assert_eq!(v["version"], 1);
    // A pos key reads it too.
    let pos = app.pos_key(&s.t.admin, &s.store, None).await;
    let (st, p) = app.get(&pos, "/api/v1/program").await;
    assert_eq!(st, 200);
    assert_eq!(p, v);
    // PUT {} is the defaults: no new version.
    assert_eq!(app.program(&s.t.admin, json!({})).await["version"], 1);
    assert_eq!(app.program(&s.t.admin, contract_defaults()).await["version"], 1);
});

both!(program_put_replaces_and_identical_put_makes_no_version, |app: TestApp| async move {
    let s = shop(&app).await;
    let v = app.program(&s.t.admin, json!({"pending_days": 3, "no_earn_categories": ["Gift-Cards"]})).await;
    assert_eq!(v["version"], 2);
    assert_eq!(v["pending_days"], 3);
    assert_eq!(v["no_earn_categories"], json!(["gift-cards"]));
    let mut want = contract_defaults();
    want["pending_days"] = json!(3);
    want["no_earn_categories"] = json!(["gift-cards"]);
    assert_program(&v, &want);
    // Fields left out take the defaults again, nested ones too.
    let v = app.program(&s.t.admin, json!({"earn": {"points_per_unit": 2}})).await;
    assert_eq!(v["version"], 3);
    assert_eq!(v["pending_days"], 0);
    assert_eq!(v["no_earn_categories"], json!([]));
    assert_eq!(v["earn"], json!({"points_per_unit": 2, "unit_minor": 1000, "rounding": "floor"}));
    // The same again: no new version.
    assert_eq!(app.program(&s.t.admin, json!({"earn": {"points_per_unit": 2}})).await["version"], 3);
    // The GET answer sent back, with a read-only version that is ignored.
    let (_, mut got) = app.get(&s.t.admin, "/api/v1/program").await;
    assert_eq!(got["version"], 3);
    got["version"] = json!(99);
    let v = app.program(&s.t.admin, got).await;
    assert_eq!(v["version"], 3);
    let (_, got) = app.get(&s.t.admin, "/api/v1/program").await;
    assert_eq!(got["version"], 3);
    assert_eq!(got["earn"]["points_per_unit"], 2);
    // Version alone, different: still the defaults, a real change.
    let v = app.program(&s.t.admin, json!({"version": 3})).await;
    assert_eq!(v["version"], 4);
    assert_program(&v, &contract_defaults());
    // Each change is audited.
    let (_, audit) = app.get(&s.t.admin, "/api/v1/audit").await;
    let puts = audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "program.update").count();
    assert_eq!(puts, 3, "{audit}");
    // Bad values are field errors.
    assert_field_error(&app.put(&s.t.admin, "/api/v1/program", json!({"currency": "rub"})).await, "currency");
    assert_field_error(&app.put(&s.t.admin, "/api/v1/program", json!({"time_zone": "Mars/Olympus"})).await, "time_zone");
    assert_field_error(&app.put(&s.t.admin, "/api/v1/program", json!({"redeem": {"max_share_bp": 10001}})).await, "redeem.max_share_bp");
    assert_field_error(&app.put(&s.t.admin, "/api/v1/program", json!({"offline_max_age_days": 36501})).await, "offline_max_age_days");
    assert_error(&app.put(&s.t.admin, "/api/v1/program", json!({"earn": {"rounding": "banker"}})).await, 422, "validation_error");
    assert_eq!(app.get(&s.t.admin, "/api/v1/program").await.1["version"], 4);
});

both!(program_tiers_need_code_and_distinct_min_spend, |app: TestApp| async move {
    let s = shop(&app).await;
    let got = app
        .put(&s.t.admin, "/api/v1/program", json!({"tiers": [{"code": "a", "min_spend_minor": 0}, {"code": "b", "min_spend_minor": 0}]}))
        .await;
    assert_field_error(&got, "tiers[1].min_spend_minor");
    assert_error(&app.put(&s.t.admin, "/api/v1/program", json!({"tiers": [{"code": "a"}]})).await, 422, "validation_error");
    assert_error(&app.put(&s.t.admin, "/api/v1/program", json!({"tiers": [{"min_spend_minor": 5}]})).await, 422, "validation_error");
    assert_eq!(app.get(&s.t.admin, "/api/v1/program").await.1["version"], 1);
    // A tier's name defaults to its code, its multiplier to 10000 and its discount to 0.
    let v = app.program(&s.t.admin, json!({"tiers": [{"code": "vip", "min_spend_minor": 100000}, {"code": "base", "min_spend_minor": 0, "earn_multiplier_bp": 20000}]})).await;
    assert_eq!(
        v["tiers"],
        json!([
            {"code": "base", "name": "base", "min_spend_minor": 0, "earn_multiplier_bp": 20000, "discount_bp": 0},
            {"code": "vip", "name": "vip", "min_spend_minor": 100000, "earn_multiplier_bp": 10000, "discount_bp": 0}
        ])
    );
    // The tier is the greatest min_spend not above the spend before the receipt.
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let mut b = receipt("R-1", &s.store, Some(&m), 100000, None);
    b["occurred_at"] = json!(rfc3339(unix_now() - 3600));
    let r1 = app.checkout(&s.t.admin, b).await;
    assert_eq!(r1["tier"], "base");
    assert_eq!(r1["points_earned"], 200);
    let r2 = app.checkout(&s.t.admin, receipt("R-2", &s.store, Some(&m), 10000, None)).await;
    assert_eq!(r2["tier"], "vip");
    assert_eq!(r2["points_earned"], 10);
    let b = app.balance(&s.t.admin, &m).await;
    assert_eq!(b["tier"], "vip");
    // No tier qualifies: no tier, multiplier 10000.
    app.program(&s.t.admin, json!({"tiers": [{"code": "vip", "min_spend_minor": 10000000, "earn_multiplier_bp": 30000}]})).await;
    let r3 = app.checkout(&s.t.admin, receipt("R-3", &s.store, Some(&m), 10000, None)).await;
    assert_eq!(r3["tier"], Value::Null);
    assert_eq!(r3["points_earned"], 10);
    assert_eq!(app.balance(&s.t.admin, &m).await["tier"], Value::Null);
});

both!(program_currency_and_point_value_lock_after_a_committed_receipt, |app: TestApp| async move {
    let s = shop(&app).await;
    // Before any receipt both may change.
    assert_eq!(app.program(&s.t.admin, json!({"currency": "USD"})).await["version"], 2);
    assert_eq!(app.program(&s.t.admin, json!({"currency": "USD", "redeem": {"point_value_minor": 50}})).await["version"], 3);
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    // A quote and a hold commit nothing.
    assert_eq!(app.post(&s.t.admin, "/api/v1/pos/quote", receipt("R-1", &s.store, Some(&m), 1000, None)).await.0, 200);
    assert_eq!(app.post(&s.t.admin, "/api/v1/pos/reserve", receipt("R-0", &s.store, Some(&m), 1000, None)).await.0, 200);
    assert_eq!(app.program(&s.t.admin, json!({"currency": "EUR", "redeem": {"point_value_minor": 50}})).await["version"], 4);
    app.post(&s.t.admin, "/api/v1/pos/cancel", json!({"receipt_id": "R-0", "store_id": s.store})).await;
    app.checkout(&s.t.admin, receipt("R-1", &s.store, Some(&m), 1000, None)).await;
    assert_error(
        &app.put(&s.t.admin, "/api/v1/program", json!({"currency": "RUB", "redeem": {"point_value_minor": 50}})).await,
        422,
        "program_locked",
    );
    assert_error(&app.put(&s.t.admin, "/api/v1/program", json!({"currency": "EUR"})).await, 422, "program_locked");
    assert_error(&app.put(&s.t.admin, "/api/v1/program", json!({})).await, 422, "program_locked");
    assert_eq!(app.get(&s.t.admin, "/api/v1/program").await.1["version"], 4);
    // Other fields still change.
    let v = app.program(&s.t.admin, json!({"currency": "EUR", "redeem": {"point_value_minor": 50, "max_share_bp": 2000}})).await;
    assert_eq!(v["version"], 5);
    assert_eq!(v["redeem"]["max_share_bp"], 2000);
});

both!(a_receipt_keeps_its_program_version, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let r1 = app.checkout(&s.t.admin, receipt("R-1", &s.store, Some(&m), 10000, None)).await;
    assert_eq!(r1["program_version"], 1);
    assert_eq!(r1["points_earned"], 10);
    assert_eq!(app.program(&s.t.admin, json!({"earn": {"points_per_unit": 3}})).await["version"], 2);
    let r2 = app.checkout(&s.t.admin, receipt("R-2", &s.store, Some(&m), 10000, None)).await;
    assert_eq!(r2["program_version"], 2);
    assert_eq!(r2["points_earned"], 30);
    let (_, got) = app.get(&s.t.admin, &receipt_path("R-1", &s.store, "")).await;
    assert_eq!(got["program_version"], 1);
    assert_eq!(got["points_earned"], 10);
    // A refund of the old receipt takes back what it earned under its own version.
    let (st, r) = app.post(&s.t.admin, "/api/v1/pos/refund", refund("R-1", &s.store, "RF-1", None)).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["points_reversed"], 10);
    assert_eq!(r["refund_minor"], 10000);
    assert_eq!(r["balance"], bal(30, 0, 0, 0));
});

// ---------------------------------------------------------------------------------------
// Stores and keys
// ---------------------------------------------------------------------------------------

both!(stores_are_created_with_the_programme_time_zone_by_default, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    app.program(&t.admin, json!({"time_zone": "Europe/Moscow"})).await;
    let (st, v) = app.post(&t.admin, "/api/v1/stores", json!({"code": "S1", "name": "First"})).await;
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    assert_eq!(v["code"], "S1");
    assert_eq!(v["name"], "First");
    assert_eq!(v["time_zone"], "Europe/Moscow");
    let (st, v2) = app
        .post(
            &t.admin,
            "/api/v1/stores",
            json!({"code": "S2", "name": "Second", "time_zone": "Asia/Yekaterinburg", "lat": 56.84, "lon": 60.61}),
        )
        .await;
    assert_eq!(st, 201, "{v2}");
    assert_eq!(v2["time_zone"], "Asia/Yekaterinburg");
    assert_ne!(v2["id"], v["id"]);
    let (st, got) = app.get(&t.admin, &format!("/api/v1/stores/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["time_zone"], "Europe/Moscow");
    // A duplicate code.
    assert_error(&app.post(&t.admin, "/api/v1/stores", json!({"code": "S1", "name": "Again"})).await, 409, "store_exists");
    // Shape.
    assert_field_error(&app.post(&t.admin, "/api/v1/stores", json!({"code": "S3"})).await, "name");
    assert_field_error(&app.post(&t.admin, "/api/v1/stores", json!({"name": "No code"})).await, "code");
    assert_field_error(
        &app.post(&t.admin, "/api/v1/stores", json!({"code": "S3", "name": "x", "time_zone": "Nowhere/Else"})).await,
        "time_zone",
    );
    // A read-only id sent back is ignored: the store gets its own.
    let (st, v3) = app.post(&t.admin, "/api/v1/stores", json!({"id": id, "code": "S3", "name": "Third"})).await;
    assert_eq!(st, 201, "{v3}");
    assert_ne!(v3["id"], id.as_str());
    let (_, list) = app.get(&t.admin, "/api/v1/stores").await;
    assert_eq!(list["stores"].as_array().unwrap().len(), 3);
});

both!(api_keys_are_shown_once_and_only_pos_keys_take_a_store, |app: TestApp| async move {
    let s = shop(&app).await;
    let (st, v) = app.post(&s.t.admin, "/api/v1/api-keys", json!({"role": "pos", "store_id": s.store, "till_id": "T1"})).await;
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let key = v["key"].as_str().unwrap().to_owned();
    assert!(key.len() >= 32, "{key}");
    assert_eq!(app.get(&key, "/api/v1/program").await.0, 200);
    // The list never shows a key again.
    let (st, list) = app.get(&s.t.admin, "/api/v1/api-keys").await;
    assert_eq!(st, 200);
    let keys = list["api_keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["id"] == id.as_str() && k["store_id"] == s.store.as_str() && k["till_id"] == "T1"), "{list}");
    assert!(keys.iter().all(|k| k.get("key").is_none()), "{list}");
    assert!(!list.to_string().contains(&key));
    // Only pos keys take a store or a till.
    assert_field_error(&app.post(&s.t.admin, "/api/v1/api-keys", json!({"role": "admin", "store_id": s.store})).await, "store_id");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/api-keys", json!({"role": "analyst", "store_id": s.store})).await, "store_id");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/api-keys", json!({"role": "analyst", "till_id": "T1"})).await, "till_id");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/api-keys", json!({"role": "admin", "till_id": "T1"})).await, "till_id");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/api-keys", json!({"role": "pos"})).await, "store_id");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/api-keys", json!({"role": "cashier", "store_id": s.store})).await, "role");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/api-keys", json!({"store_id": s.store})).await, "role");
    let (_, list2) = app.get(&s.t.admin, "/api/v1/api-keys").await;
    assert_eq!(list2["api_keys"].as_array().unwrap().len(), keys.len());
    // An admin key made here is an admin.
    let (_, admin2) = app.api_key(&s.t.admin, json!({"role": "admin"})).await;
    assert_eq!(app.program(&admin2, json!({"pending_days": 1})).await["version"], 2);
});

both!(a_till_bound_pos_key_defaults_its_till_and_refuses_others, |app: TestApp| async move {
    let s = shop(&app).await;
    let other = app.store(&s.t.admin, "S2").await;
    let pos = app.pos_key(&s.t.admin, &s.store, Some("T1")).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let mut b = receipt("R-1", &s.store, Some(&m), 1000, None);
    b.as_object_mut().unwrap().remove("store_id");
    let v = app.checkout(&pos, b.clone()).await;
    assert_eq!(v["till_id"], "T1");
    assert_eq!(v["store_id"], s.store.as_str());
    // Naming its own till and store is the same request.
    let mut same = b.clone();
    same["till_id"] = json!("T1");
    same["store_id"] = json!(s.store);
    let (st, again) = app.post(&pos, "/api/v1/pos/checkout", same).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again, v);
    // The receipt is stored at (S1, T1).
    let (st, got) = app.get(&s.t.admin, &receipt_path("R-1", &s.store, "T1")).await;
    assert_eq!(st, 200, "{got}");
    let (st, got) = app.get(&pos, "/api/v1/pos/receipts/R-1").await;
    assert_eq!(st, 200, "{got}");
    assert_eq!(got["till_id"], "T1");
    // Another till, another store.
    let mut t9 = b.clone();
    t9["till_id"] = json!("T9");
    assert_error(&app.post(&pos, "/api/v1/pos/checkout", t9.clone()).await, 403, "store_mismatch");
    assert_error(&app.post(&pos, "/api/v1/pos/quote", t9.clone()).await, 403, "store_mismatch");
    assert_error(&app.post(&pos, "/api/v1/pos/reserve", t9).await, 403, "store_mismatch");
    let mut s2 = b.clone();
    s2["store_id"] = json!(other);
    assert_error(&app.post(&pos, "/api/v1/pos/checkout", s2).await, 403, "store_mismatch");
    assert_error(&app.post(&pos, "/api/v1/pos/cancel", json!({"receipt_id": "R-1", "till_id": "T9"})).await, 403, "store_mismatch");
    assert_error(&app.get(&pos, "/api/v1/pos/receipts/R-1?till_id=T9").await, 403, "store_mismatch");
    assert_error(&app.get(&pos, &format!("/api/v1/pos/receipts/R-1?store_id={other}")).await, 403, "store_mismatch");
    // A key bound to a store only takes any till of that store, "" by default.
    let pos2 = app.pos_key(&s.t.admin, &s.store, None).await;
    let mut b2 = receipt("R-2", &s.store, Some(&m), 1000, None);
    b2.as_object_mut().unwrap().remove("store_id");
    assert_eq!(app.checkout(&pos2, b2.clone()).await["till_id"], "");
    b2["till_id"] = json!("T7");
    assert_eq!(app.checkout(&pos2, b2).await["till_id"], "T7");
    let mut b3 = receipt("R-3", &other, Some(&m), 1000, None);
    b3["till_id"] = json!("T7");
    assert_error(&app.post(&pos2, "/api/v1/pos/checkout", b3).await, 403, "store_mismatch");
    assert_eq!(app.balance(&s.t.admin, &m).await["points"], 3);
});

// ---------------------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------------------

both!(members_are_enrolled_with_a_card_number_and_qr_token, |app: TestApp| async move {
    let s = shop(&app).await;
    let pos = app.pos_key(&s.t.admin, &s.store, None).await;
    let (st, m) = app
        .post(&s.t.admin, "/api/v1/members", json!({"email": "Ivan.Petrov@Example.COM", "phone": "8 912 345-67-89", "name": "Ivan", "birthday": "1990-05-17", "external_id": "CRM-1"}))
        .await;
    assert_eq!(st, 201, "{m}");
    assert!(m["id"].as_str().is_some_and(|s| !s.is_empty()));
    let card = m["card_number"].as_str().unwrap();
    assert_eq!(card.len(), 13, "{card}");
    assert!(card.starts_with('2'), "{card}");
    assert!(ean13_ok(card), "bad EAN-13 check digit: {card}");
    assert!(m["qr_token"].as_str().is_some_and(|t| t.len() >= 22), "{m}");
    assert_eq!(m["email"], "ivan.petrov@example.com");
    assert_eq!(m["phone"], "+79123456789");
    assert_eq!(m["external_id"], "CRM-1");
    assert_eq!(m["name"], "Ivan");
    let (st, got) = app.get(&s.t.admin, &format!("/api/v1/members/{}", m["id"].as_str().unwrap())).await;
    assert_eq!(st, 200);
    for k in ["id", "card_number", "qr_token", "email", "phone", "external_id", "name"] {
        assert_eq!(got[k], m[k], "{k}");
    }
    assert_eq!(got["birthday"], "1990-05-17");
    // A pos key also gets the card and the token.
    let (st, p) = app.post(&pos, "/api/v1/members", json!({"phone": "+7 (999) 000-11-22"})).await;
    assert_eq!(st, 201, "{p}");
    assert!(ean13_ok(p["card_number"].as_str().unwrap()));
    assert!(p["qr_token"].as_str().is_some_and(|t| t.len() >= 22), "{p}");
    assert_ne!(p["card_number"], m["card_number"]);
    assert_ne!(p["qr_token"], m["qr_token"]);
    // Many cards: all valid and unique.
    let mut cards = std::collections::HashSet::new();
    for i in 0..10 {
        let v = app.member(&s.t.admin, json!({"external_id": format!("X-{i}")})).await;
        let c = v["card_number"].as_str().unwrap().to_owned();
        assert!(c.starts_with('2') && ean13_ok(&c), "{c}");
        cards.insert(c);
    }
    assert_eq!(cards.len(), 10);
    // Bad shapes.
    assert_field_error(&app.post(&s.t.admin, "/api/v1/members", json!({"email": "nobody"})).await, "email");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/members", json!({"phone": "call me"})).await, "phone");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/members", json!({"birthday": "17.05.1990"})).await, "birthday");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/members", json!({"name": 5})).await, "name");
});

both!(members_exist_once_per_email_phone_and_external_id, |app: TestApp| async move {
    let s = shop(&app).await;
    app.member(&s.t.admin, json!({"email": "ivan@example.com", "phone": "+79123456789", "external_id": "CRM-1"})).await;
    assert_error(&app.post(&s.t.admin, "/api/v1/members", json!({"email": "IVAN@Example.com"})).await, 409, "member_exists");
    assert_error(&app.post(&s.t.admin, "/api/v1/members", json!({"phone": "8 (912) 345-67-89"})).await, 409, "member_exists");
    assert_error(&app.post(&s.t.admin, "/api/v1/members", json!({"phone": "9123456789"})).await, 409, "member_exists");
    assert_error(&app.post(&s.t.admin, "/api/v1/members", json!({"external_id": "CRM-1"})).await, 409, "member_exists");
    assert_error(
        &app.post(&s.t.admin, "/api/v1/members", json!({"email": "new@example.com", "external_id": "CRM-1"})).await,
        409,
        "member_exists",
    );
    let (_, list) = app.get(&s.t.admin, "/api/v1/members").await;
    assert_eq!(list["members"].as_array().unwrap().len(), 1, "{list}");
    // The same identifiers in another tenant are fine.
    let other = app.tenant("Other").await;
    app.member(&other.admin, json!({"email": "ivan@example.com", "phone": "+79123456789", "external_id": "CRM-1"})).await;
    // The one that failed with email taken did not reserve new@example.com.
    app.member(&s.t.admin, json!({"email": "new@example.com"})).await;
});

both!(members_are_looked_up_by_each_identifier, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member(&s.t.admin, json!({"email": "ivan@example.com", "phone": "+79123456789", "external_id": "CRM-1"})).await;
    app.member(&s.t.admin, json!({"email": "other@example.com", "phone": "+79120000000", "external_id": "CRM-2"})).await;
    for body in [
        json!({"card_number": m["card_number"]}),
        json!({"phone": "8 912 345-67-89"}),
        json!({"phone": "+79123456789"}),
        json!({"email": "IVAN@example.COM"}),
        json!({"external_id": "CRM-1"}),
        json!({"qr_token": m["qr_token"]}),
    ] {
        let (st, v) = app.post(&s.t.admin, "/api/v1/members/lookup", body.clone()).await;
        assert_eq!(st, 200, "{body}: {v}");
        assert_eq!(v["id"], m["id"], "{body}");
        assert_eq!(v["card_number"], m["card_number"]);
    }
    assert_error(&app.post(&s.t.admin, "/api/v1/members/lookup", json!({"card_number": "2999999999992"})).await, 404, "member_not_found");
    assert_error(&app.post(&s.t.admin, "/api/v1/members/lookup", json!({"external_id": "CRM-9"})).await, 404, "member_not_found");
    assert_error(&app.post(&s.t.admin, "/api/v1/members/lookup", json!({})).await, 422, "validation_error");
    assert_error(
        &app.post(&s.t.admin, "/api/v1/members/lookup", json!({"email": "ivan@example.com", "external_id": "CRM-1"})).await,
        422,
        "validation_error",
    );
    assert_field_error(&app.post(&s.t.admin, "/api/v1/members/lookup", json!({"member_name": "Ivan"})).await, "member_name");
    // Every POS identifier works on a receipt too.
    for (i, member) in [
        json!({"card_number": m["card_number"]}),
        json!({"phone": "8 912 345-67-89"}),
        json!({"qr_token": m["qr_token"]}),
        json!({"member_id": m["id"]}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = receipt(&format!("R-{i}"), &s.store, None, 1000, None);
        b["member"] = member;
        assert_eq!(app.checkout(&s.t.admin, b).await["member_id"], m["id"]);
    }
});

both!(pos_reads_of_members_are_masked, |app: TestApp| async move {
    let s = shop(&app).await;
    let pos = app.pos_key(&s.t.admin, &s.store, None).await;
    let m = app
        .member(&s.t.admin, json!({"email": "ivan@example.com", "phone": "8 912 345-67-89", "birthday": "1985-03-04", "name": "Ivan"}))
        .await;
    let id = m["id"].as_str().unwrap();
    let (st, v) = app.post(&pos, "/api/v1/members/lookup", json!({"card_number": m["card_number"]})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["id"], id);
    assert_eq!(v["phone"], "+7******6789");
    assert_eq!(v["email"], "i***@example.com");
    assert!(v.get("qr_token").is_none(), "{v}");
    assert!(v.get("birthday").is_none(), "{v}");
    assert!(!v.to_string().contains("1985-03-04"));
    assert!(!v.to_string().contains(m["qr_token"].as_str().unwrap()));
    let (st, v) = app.get(&pos, &format!("/api/v1/members/{id}")).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["phone"], "+7******6789");
    assert_eq!(v["email"], "i***@example.com");
    assert!(v.get("qr_token").is_none() && v.get("birthday").is_none(), "{v}");
    // Lookup by the token itself also answers masked.
    let (_, v) = app.post(&pos, "/api/v1/members/lookup", json!({"qr_token": m["qr_token"]})).await;
    assert!(v.get("qr_token").is_none(), "{v}");
    // The admin sees everything.
    let (_, v) = app.post(&s.t.admin, "/api/v1/members/lookup", json!({"card_number": m["card_number"]})).await;
    assert_eq!(v["phone"], "+79123456789");
    assert_eq!(v["email"], "ivan@example.com");
    assert_eq!(v["birthday"], "1985-03-04");
    assert_eq!(v["qr_token"], m["qr_token"]);
});

both!(pos_lookups_are_rate_limited_per_key, |app: TestApp| async move {
    let s = shop(&app).await;
    let pos = app.pos_key(&s.t.admin, &s.store, None).await;
    let m = app.member(&s.t.admin, json!({"phone": "+79123456789"})).await;
    // Keep the 61 lookups inside one minute.
    let into_minute = unix_now().rem_euclid(60);
    if into_minute > 40 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - into_minute) as u64)).await;
    }
    for i in 0..60 {
        let (st, v) = app.post(&pos, "/api/v1/members/lookup", json!({"card_number": m["card_number"]})).await;
        assert_eq!(st, 200, "lookup {}: {v}", i + 1);
    }
    assert_error(&app.post(&pos, "/api/v1/members/lookup", json!({"card_number": m["card_number"]})).await, 429, "rate_limited");
    // Per key: the admin and another pos key are not limited.
    assert_eq!(app.post(&s.t.admin, "/api/v1/members/lookup", json!({"card_number": m["card_number"]})).await.0, 200);
    let pos2 = app.pos_key(&s.t.admin, &s.store, None).await;
    assert_eq!(app.post(&pos2, "/api/v1/members/lookup", json!({"card_number": m["card_number"]})).await.0, 200);
});

both!(member_consents_are_stored_with_time_and_source, |app: TestApp| async move {
    let s = shop(&app).await;
    let pos = app.pos_key(&s.t.admin, &s.store, None).await;
    let before = unix_now();
    let m = app.member(&pos, json!({"phone": "+79123456789", "consents": {"personal_data": true, "marketing": false}})).await;
    let after = unix_now();
    let id = m["id"].as_str().unwrap();
    let (_, got) = app.get(&s.t.admin, &format!("/api/v1/members/{id}")).await;
    let c = &got["consents"];
    assert_eq!(c["personal_data"]["granted"], true, "{got}");
    assert_eq!(c["marketing"]["granted"], false, "{got}");
    for k in ["personal_data", "marketing"] {
        assert!(c[k]["source"].as_str().is_some_and(|s| !s.is_empty()), "{got}");
        let at = parse_rfc3339(&c[k]["recorded_at"]);
        assert!(before <= at && at <= after, "{got}");
    }
    assert_eq!(c.as_object().unwrap().len(), 2, "{got}");
    // No consent is required.
    let v = app.member(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let (_, got) = app.get(&s.t.admin, &format!("/api/v1/members/{}", v["id"].as_str().unwrap())).await;
    assert!(got["consents"].as_object().is_none_or(|m| m.is_empty()), "{got}");
    // Consents are booleans of known kinds.
    assert_field_error(
        &app.post(&s.t.admin, "/api/v1/members", json!({"phone": "+79120000002", "consents": {"marketing": "yes"}})).await,
        "consents.marketing",
    );
    assert_field_error(
        &app.post(&s.t.admin, "/api/v1/members", json!({"phone": "+79120000002", "consents": {"telepathy": true}})).await,
        "consents.telepathy",
    );
});

// ---------------------------------------------------------------------------------------
// Balance and ledger
// ---------------------------------------------------------------------------------------

both!(balance_has_the_contract_shape, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let b = app.balance(&s.t.admin, &m).await;
    for (k, want) in [
        ("points", json!(0)),
        ("held", json!(0)),
        ("pending", json!(0)),
        ("debt", json!(0)),
        ("tier", json!("bronze")),
        ("tier_spend_minor", json!(0)),
        ("lifetime_earned", json!(0)),
        ("expiring", json!([])),
    ] {
        assert_eq!(b[k], want, "{k}: {b}");
    }
    app.give(&s.t.admin, &m, 100).await;
    let mut r = receipt("R-1", &s.store, Some(&m), 50000, Some(json!(10)));
    r["occurred_at"] = json!(rfc3339(unix_now() - 3600));
    let v = app.checkout(&s.t.admin, r).await;
    assert_eq!(v["points_earned"], 49);
    let b = app.balance(&s.t.admin, &m).await;
    assert_eq!(b["points"], 139);
    assert_eq!(b["lifetime_earned"], 49, "adjustments are not earnings: {b}");
    assert_eq!(b["tier_spend_minor"], 49000);
    assert_eq!(b["tier"], "bronze");
    // Pending points.
    app.program(&s.t.admin, json!({"pending_days": 14, "expiry": {"policy": "rolling_days", "days": 30}})).await;
    let v = app.checkout(&s.t.admin, receipt("R-2", &s.store, Some(&m), 20000, None)).await;
    assert_eq!(v["points_earned"], 20);
    assert_eq!(v["points_pending"], 20);
    assert_eq!(v["balance"], bal(139, 0, 20, 0));
    // Adjusted points expire by the policy from when they are credited.
    app.give(&s.t.admin, &m, 5).await;
    let ledger = app.ledger_all(&s.t.admin, &m).await;
    let credited = parse_rfc3339(&ledger[0]["created_at"]);
    let b = app.balance(&s.t.admin, &m).await;
    assert_eq!(b["points"], 144);
    assert_eq!(b["pending"], 20);
    assert_eq!(b["lifetime_earned"], 69);
    let expiring = b["expiring"].as_array().unwrap();
    // Soonest first: the adjustment's 5 points; the pending 20 expire 30 days after day 14.
    assert!(!expiring.is_empty() && expiring.len() <= 2, "{b}");
    assert_eq!(expiring[0]["points"], 5);
    assert_eq!(parse_rfc3339(&expiring[0]["expires_at"]), credited + 30 * 86_400);
    let sum: i64 = ledger.iter().map(|e| e["points"].as_i64().unwrap()).sum();
    assert_eq!(sum, 144 + 20);
    // A pos key reads the balance.
    let pos = app.pos_key(&s.t.admin, &s.store, None).await;
    assert_eq!(app.balance(&pos, &m).await["points"], 144);
});

both!(ledger_pages_newest_first_and_the_cursor_never_skips, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    for p in [10, 20, 30, -5] {
        let (st, v) =
            app.post(&s.t.admin, &format!("/api/v1/members/{m}/adjustments"), json!({"points": p, "reason": format!("step {p}")})).await;
        assert_eq!(st, 201, "{v}");
    }
    app.checkout(&s.t.admin, receipt("R-1", &s.store, Some(&m), 10000, None)).await;
    app.checkout(&s.t.admin, receipt("R-2", &s.store, Some(&m), 10000, Some(json!(5)))).await;
    let all = app.ledger_all(&s.t.admin, &m).await;
    let kinds: Vec<&str> = all.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let points: Vec<i64> = all.iter().map(|e| e["points"].as_i64().unwrap()).collect();
    assert_eq!(kinds, ["earn", "redeem", "earn", "adjust", "adjust", "adjust", "adjust"]);
    assert_eq!(points, [9, -5, 10, -5, 30, 20, 10]);
    assert_eq!(all[0]["receipt_id"], "R-2");
    assert_eq!(all[3]["reason"], "step -5");
    for e in &all {
        assert!(e["id"].is_string() && e["created_at"].is_string() && e["occurred_at"].is_string(), "{e}");
    }
    let b = app.balance(&s.t.admin, &m).await;
    assert_eq!(points.iter().sum::<i64>(), b["points"].as_i64().unwrap() + b["pending"].as_i64().unwrap() - b["debt"].as_i64().unwrap());
    assert_eq!(b["points"], 69);

    // Pages of 3.
    let (st, p1) = app.get(&s.t.admin, &format!("/api/v1/members/{m}/ledger?limit=3")).await;
    assert_eq!(st, 200, "{p1}");
    assert_eq!(p1["entries"].as_array().unwrap()[..], all[..3]);
    let c1 = p1["next_cursor"].as_str().expect("cursor").to_owned();
    // A backdated receipt posted now comes first, in posting order.
    let mut late = receipt("R-3", &s.store, Some(&m), 3000, None);
    late["occurred_at"] = json!(rfc3339(unix_now() - 2 * 86_400));
    app.checkout(&s.t.admin, late).await;
    let (_, fresh) = app.get(&s.t.admin, &format!("/api/v1/members/{m}/ledger?limit=3")).await;
    assert_eq!(fresh["entries"][0]["kind"], "earn");
    assert_eq!(fresh["entries"][0]["receipt_id"], "R-3");
    assert_eq!(fresh["entries"][0]["points"], 3);
    assert!(parse_rfc3339(&fresh["entries"][0]["occurred_at"]) < parse_rfc3339(&fresh["entries"][1]["occurred_at"]));
    // The old cursor continues exactly where it stopped.
    let (_, p2) = app.get(&s.t.admin, &format!("/api/v1/members/{m}/ledger?limit=3&cursor={c1}")).await;
    assert_eq!(p2["entries"].as_array().unwrap()[..], all[3..6]);
    let c2 = p2["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, p3) = app.get(&s.t.admin, &format!("/api/v1/members/{m}/ledger?limit=3&cursor={c2}")).await;
    assert_eq!(p3["entries"].as_array().unwrap()[..], all[6..]);
    assert_eq!(p3["next_cursor"], Value::Null);
    // Everything, once each, sums to points + pending − debt.
    let all2 = app.ledger_all(&s.t.admin, &m).await;
    assert_eq!(all2.len(), 8);
    let ids: std::collections::HashSet<&str> = all2.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 8);
    assert_eq!(all2.iter().map(|e| e["points"].as_i64().unwrap()).sum::<i64>(), 72);
    assert_eq!(app.balance(&s.t.admin, &m).await["points"], 72);
    // Bad paging parameters.
    assert_field_error(&app.get(&s.t.admin, &format!("/api/v1/members/{m}/ledger?limit=0")).await, "limit");
    assert_field_error(&app.get(&s.t.admin, &format!("/api/v1/members/{m}/ledger?cursor=zzz")).await, "cursor");
    app.assert_ledger_consistent(&s.t).await;
});

// ---------------------------------------------------------------------------------------
// Adjustments and transfers
// ---------------------------------------------------------------------------------------

both!(adjustments_need_a_reason_and_never_go_below_zero, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let path = format!("/api/v1/members/{m}/adjustments");
    let (st, v) = app.post(&s.t.admin, &path, json!({"points": 100, "reason": "welcome"})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["points"], 100);
    assert_eq!(v["reason"], "welcome");
    assert_field_error(&app.post(&s.t.admin, &path, json!({"points": 5})).await, "reason");
    assert_field_error(&app.post(&s.t.admin, &path, json!({"points": 5, "reason": ""})).await, "reason");
    assert_field_error(&app.post(&s.t.admin, &path, json!({"points": 5, "reason": "   "})).await, "reason");
    assert_field_error(&app.post(&s.t.admin, &path, json!({"reason": "x"})).await, "points");
    assert_field_error(&app.post(&s.t.admin, &path, json!({"points": "5", "reason": "x"})).await, "points");
    assert_error(&app.post(&s.t.admin, &path, json!({"points": -101, "reason": "too much"})).await, 422, "insufficient_points");
    assert_eq!(app.balance(&s.t.admin, &m).await["points"], 100);
    assert_eq!(app.ledger_all(&s.t.admin, &m).await.len(), 1);
    // Held points are not available to an adjustment.
    app.post(&s.t.admin, "/api/v1/pos/reserve", receipt("R-1", &s.store, Some(&m), 10000, Some(json!(30)))).await;
    assert_error(&app.post(&s.t.admin, &path, json!({"points": -71, "reason": "x"})).await, 422, "insufficient_points");
    let (st, v) = app.post(&s.t.admin, &path, json!({"points": -70, "reason": "fraud"})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["points"], -70);
    let b = app.balance(&s.t.admin, &m).await;
    assert_eq!((b["points"].as_i64(), b["held"].as_i64()), (Some(30), Some(30)));
    let ledger = app.ledger_all(&s.t.admin, &m).await;
    assert_eq!(ledger[0]["kind"], "adjust");
    assert_eq!(ledger[0]["points"], -70);
    assert_eq!(ledger[0]["reason"], "fraud");
    app.assert_ledger_consistent(&s.t).await;
});

both!(adjustments_are_idempotent_and_audited, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let m2 = app.member_id(&s.t.admin, json!({"phone": "+79120000002"})).await;
    let path = format!("/api/v1/members/{m}/adjustments");
    let body = json!({"points": 40, "reason": "goodwill", "adjustment_id": "ADJ-1"});
    let before = unix_now();
    let (st, a) = app.post(&s.t.admin, &path, body.clone()).await;
    assert_eq!(st, 201, "{a}");
    let (st, b) = app.post(&s.t.admin, &path, body.clone()).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(a, b);
    assert_eq!(app.balance(&s.t.admin, &m).await["points"], 40);
    assert_eq!(app.ledger_all(&s.t.admin, &m).await.len(), 1);
    // Another body under the same id, here or at another member (tenant-wide): 409.
    let got = app.post(&s.t.admin, &path, json!({"points": 41, "reason": "goodwill", "adjustment_id": "ADJ-1"})).await;
    assert_eq!(got.0, 409, "{}", got.1);
    assert_error(&got, 409, got.1["error"]["code"].as_str().unwrap());
    let got = app.post(&s.t.admin, &format!("/api/v1/members/{m2}/adjustments"), body.clone()).await;
    assert_eq!(got.0, 409, "{}", got.1);
    assert_eq!(app.balance(&s.t.admin, &m).await["points"], 40);
    assert_eq!(app.balance(&s.t.admin, &m2).await["points"], 0);
    // A failed adjustment may be retried with its id.
    assert_error(
        &app.post(&s.t.admin, &path, json!({"points": -50, "reason": "oops", "adjustment_id": "ADJ-2"})).await,
        422,
        "insufficient_points",
    );
    let (st, _) = app.post(&s.t.admin, &path, json!({"points": -40, "reason": "oops", "adjustment_id": "ADJ-2"})).await;
    assert_eq!(st, 201);
    // Audited: who, when, why.
    let (_, keys) = app.get(&s.t.admin, "/api/v1/api-keys").await;
    let admin_id = keys["api_keys"].as_array().unwrap().iter().find(|k| k["role"] == "admin").unwrap()["id"].as_str().unwrap().to_owned();
    let (st, audit) = app.get(&s.t.admin, "/api/v1/audit").await;
    assert_eq!(st, 200);
    let adj: Vec<&Value> = audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "member.adjust").collect();
    assert_eq!(adj.len(), 2, "{audit}");
    let first = adj.iter().find(|e| e["details"]["points"] == 40).expect("the +40 adjustment is audited");
    assert_eq!(first["object_id"], m.as_str());
    assert_eq!(first["details"]["reason"], "goodwill");
    assert!(first["actor"].as_str().unwrap().contains(&admin_id), "{first}");
    let at = parse_rfc3339(&first["created_at"]);
    assert!(at >= before && at <= unix_now(), "{first}");
});

both!(transfers_move_available_points_once, |app: TestApp| async move {
    let s = shop(&app).await;
    app.program(&s.t.admin, json!({"expiry": {"policy": "rolling_days", "days": 30}})).await;
    let a = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let b = app.member_id(&s.t.admin, json!({"phone": "+79120000002"})).await;
    app.give(&s.t.admin, &a, 100).await;
    let path = format!("/api/v1/members/{a}/transfers");
    let t1 = json!({"to_member_id": b, "points": 30, "transfer_id": "TR-1"});
    let (st, v) = app.post(&s.t.admin, &path, t1.clone()).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["points"], 30);
    assert_eq!(app.balance(&s.t.admin, &a).await["points"], 70);
    assert_eq!(app.balance(&s.t.admin, &b).await["points"], 30);
    let la = app.ledger_all(&s.t.admin, &a).await;
    let lb = app.ledger_all(&s.t.admin, &b).await;
    assert_eq!((la[0]["kind"].as_str(), la[0]["points"].as_i64()), (Some("transfer_out"), Some(-30)));
    assert_eq!(lb.len(), 1);
    assert_eq!((lb[0]["kind"].as_str(), lb[0]["points"].as_i64()), (Some("transfer_in"), Some(30)));
    // The points keep their lots' expiry.
    let ea = app.balance(&s.t.admin, &a).await["expiring"].clone();
    let eb = app.balance(&s.t.admin, &b).await["expiring"].clone();
    assert_eq!(eb[0]["expires_at"], ea[0]["expires_at"]);
    assert_eq!(eb[0]["points"], 30);
    // Idempotent on transfer_id.
    let (st, again) = app.post(&s.t.admin, &path, t1.clone()).await;
    assert_eq!(st, 201);
    assert_eq!(again, v);
    let got = app.post(&s.t.admin, &path, json!({"to_member_id": b, "points": 31, "transfer_id": "TR-1"})).await;
    assert_eq!(got.0, 409, "{}", got.1);
    assert_eq!(app.balance(&s.t.admin, &a).await["points"], 70);
    assert_eq!(app.balance(&s.t.admin, &b).await["points"], 30);
    // Beyond the available balance; held points are not available.
    assert_error(
        &app.post(&s.t.admin, &path, json!({"to_member_id": b, "points": 71, "transfer_id": "TR-2"})).await,
        422,
        "insufficient_points",
    );
    app.post(&s.t.admin, "/api/v1/pos/reserve", receipt("R-1", &s.store, Some(&a), 10000, Some(json!(20)))).await;
    assert_error(
        &app.post(&s.t.admin, &path, json!({"to_member_id": b, "points": 51, "transfer_id": "TR-2"})).await,
        422,
        "insufficient_points",
    );
    // The failed id is free for a valid transfer.
    let (st, v) = app.post(&s.t.admin, &path, json!({"to_member_id": b, "points": 50, "transfer_id": "TR-2"})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(app.balance(&s.t.admin, &b).await["points"], 80);
    // Shape and lookups.
    assert_error(
        &app.post(&s.t.admin, &path, json!({"to_member_id": a, "points": 1, "transfer_id": "TR-3"})).await,
        422,
        "validation_error",
    );
    assert_error(
        &app.post(&s.t.admin, &path, json!({"to_member_id": "01900000-0000-7000-8000-000000000000", "points": 1, "transfer_id": "TR-3"}))
            .await,
        404,
        "member_not_found",
    );
    assert_field_error(&app.post(&s.t.admin, &path, json!({"to_member_id": b, "points": 1})).await, "transfer_id");
    assert_field_error(&app.post(&s.t.admin, &path, json!({"to_member_id": b, "points": 0, "transfer_id": "TR-3"})).await, "points");
    assert_field_error(&app.post(&s.t.admin, &path, json!({"to_member_id": b, "points": -5, "transfer_id": "TR-3"})).await, "points");
    app.assert_ledger_consistent(&s.t).await;
});

// ---------------------------------------------------------------------------------------
// The till
// ---------------------------------------------------------------------------------------

both!(quote_writes_nothing, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 1000).await;
    let b0 = app.balance(&s.t.admin, &m).await;
    let l0 = app.ledger_all(&s.t.admin, &m).await;
    let (st, q) = app.post(&s.t.admin, "/api/v1/pos/quote", worked_example(&s.store, &m)).await;
    assert_eq!(st, 200, "{q}");
    assert_eq!(q["status"], "quoted");
    assert_eq!(q["points_redeemed"], 150);
    assert_eq!(q["balance"], bal(1098, 0, 0, 0));
    let (st, q2) = app.post(&s.t.admin, "/api/v1/pos/quote", worked_example(&s.store, &m)).await;
    assert_eq!(st, 200);
    assert_eq!(q2, q);
    assert_eq!(app.balance(&s.t.admin, &m).await, b0);
    assert_eq!(app.ledger_all(&s.t.admin, &m).await, l0);
    assert_error(&app.get(&s.t.admin, &receipt_path("R-000123", &s.store, "T2")).await, 404, "not_found");
    // The ids are still free for any body.
    let mut other = worked_example(&s.store, &m);
    other["redeem_points"] = json!(10);
    let v = app.checkout(&s.t.admin, other).await;
    assert_eq!(v["points_redeemed"], 10);
    // A quote that fails writes nothing either.
    let mut big = worked_example(&s.store, &m);
    big["receipt_id"] = json!("R-9");
    big["redeem_points"] = json!(100000);
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/quote", big).await, 422, "insufficient_points");
    app.assert_ledger_consistent(&s.t).await;
});

both!(checkout_is_idempotent_and_failures_are_not_stored, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 1000).await;
    let a = app.checkout(&s.t.admin, worked_example(&s.store, &m)).await;
    let b = app.checkout(&s.t.admin, worked_example(&s.store, &m)).await;
    assert_eq!(a, b);
    // Key order and whitespace do not matter: canonical JSON.
    let raw = serde_json::to_string_pretty(&worked_example(&s.store, &m)).unwrap();
    let resp = app
        .client
        .post(format!("{}/api/v1/pos/checkout", app.url))
        .bearer_auth(&s.t.admin)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), a);
    assert_eq!(app.balance(&s.t.admin, &m).await["points"], 1098);
    let ledger = app.ledger_all(&s.t.admin, &m).await;
    assert_eq!(ledger.iter().filter(|e| e["kind"] == "earn").count(), 1);
    assert_eq!(ledger.iter().filter(|e| e["kind"] == "redeem").count(), 1);
    // Another body under the same ids.
    let mut other = worked_example(&s.store, &m);
    other["redeem_points"] = json!(149);
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", other).await, 409, "receipt_conflict");
    let mut other = worked_example(&s.store, &m);
    other["items"][0]["quantity"] = json!(3);
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", other).await, 409, "receipt_conflict");
    assert_eq!(app.balance(&s.t.admin, &m).await["points"], 1098);
    // The same receipt id at another till is another receipt.
    let mut t3 = worked_example(&s.store, &m);
    t3["till_id"] = json!("T3");
    t3["redeem_points"] = json!(0);
    assert_eq!(app.checkout(&s.t.admin, t3).await["till_id"], "T3");
    // A failed request is not remembered: the same ids may be retried.
    let big = receipt("R-2", &s.store, Some(&m), 1_000_000, Some(json!(5000)));
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", big.clone()).await, 422, "insufficient_points");
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", big).await, 422, "insufficient_points");
    let ok = app.checkout(&s.t.admin, receipt("R-2", &s.store, Some(&m), 1_000_000, Some(json!(500)))).await;
    assert_eq!(ok["points_redeemed"], 500);
    // A pos key: the store its binding implies is ignored in the comparison.
    let pos = app.pos_key(&s.t.admin, &s.store, None).await;
    let mut p = receipt("R-3", &s.store, Some(&m), 1000, None);
    p.as_object_mut().unwrap().remove("store_id");
    let first = app.checkout(&pos, p.clone()).await;
    p["store_id"] = json!(s.store);
    assert_eq!(app.checkout(&pos, p).await, first);
    app.assert_ledger_consistent(&s.t).await;
});

both!(anonymous_receipts_earn_nothing_and_cannot_spend, |app: TestApp| async move {
    let s = shop(&app).await;
    let v = app.checkout(&s.t.admin, receipt("R-1", &s.store, None, 10000, None)).await;
    assert_eq!(v["status"], "committed");
    assert_eq!(v["member_id"], Value::Null);
    assert_eq!(v["points_earned"], 0);
    assert_eq!(v["lines"][0]["points_earned"], 0);
    assert_eq!(v["payable_minor"], 10000);
    assert_eq!(v["total_minor"], 10000);
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", receipt("R-2", &s.store, None, 10000, Some(json!(10)))).await,
        422,
        "member_required",
    );
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", receipt("R-2", &s.store, None, 10000, Some(json!("max")))).await,
        422,
        "member_required",
    );
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/quote", receipt("R-2", &s.store, None, 10000, Some(json!("max")))).await,
        422,
        "member_required",
    );
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/reserve", receipt("R-2", &s.store, None, 10000, Some(json!(1)))).await,
        422,
        "member_required",
    );
    let (st, got) = app.get(&s.t.admin, &receipt_path("R-1", &s.store, "")).await;
    assert_eq!(st, 200);
    assert_eq!(got["status"], "committed");
    assert_error(&app.get(&s.t.admin, &receipt_path("R-2", &s.store, "")).await, 404, "not_found");
});

both!(redeem_max_limits_and_the_order_of_spending_rules, |app: TestApp| async move {
    let s = shop(&app).await;
    let rich = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let poor = app.member_id(&s.t.admin, json!({"phone": "+79120000002"})).await;
    app.give(&s.t.admin, &rich, 1000).await;
    app.give(&s.t.admin, &poor, 30).await;
    let items = json!([line(1, "A", "goods", 1, 10000), line(2, "CIG", "Tobacco", 1, 5000)]);
    // Limit: floor(10000 × 5000 / 10000 / 100) = 50; tobacco takes no points.
    let v = app.checkout(&s.t.admin, body("R-1", &s.store, Some(&rich), items.clone(), Some(json!("max")))).await;
    assert_eq!(v["points_redeemed"], 50);
    assert_eq!(v["redeemed_minor"], 5000);
    assert_eq!(v["payable_minor"], 10000);
    assert_eq!(v["points_earned"], 10);
    assert_eq!(v["lines"][1]["redeemed_minor"], 0);
    assert_eq!(v["lines"][1]["points_redeemed"], 0);
    assert_eq!(v["balance"], bal(960, 0, 0, 0));
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", body("R-2", &s.store, Some(&rich), items.clone(), Some(json!(51)))).await,
        422,
        "redeem_limit_exceeded",
    );
    // "max" is min(limit, available).
    let v = app.checkout(&s.t.admin, body("R-3", &s.store, Some(&poor), items.clone(), Some(json!("max")))).await;
    assert_eq!(v["points_redeemed"], 30);
    assert_eq!(v["redeemed_minor"], 3000);
    assert_eq!(v["balance"], bal(12, 0, 0, 0));
    // More than available and more than the limit: insufficient_points first.
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", body("R-4", &s.store, Some(&poor), items.clone(), Some(json!(60)))).await,
        422,
        "insufficient_points",
    );
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", body("R-4", &s.store, Some(&poor), items.clone(), Some(json!(13)))).await,
        422,
        "insufficient_points",
    );
    // "max" with nothing to spend spends 0.
    let zero = app.member_id(&s.t.admin, json!({"phone": "+79120000003"})).await;
    let v = app.checkout(&s.t.admin, body("R-5", &s.store, Some(&zero), items.clone(), Some(json!("max")))).await;
    assert_eq!(v["points_redeemed"], 0);
    // A receipt of tobacco only takes no points at all.
    let cig = json!([line(1, "CIG", "tobacco", 2, 25000)]);
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", body("R-6", &s.store, Some(&rich), cig, Some(json!(1)))).await,
        422,
        "redeem_limit_exceeded",
    );
    assert_eq!(app.balance(&s.t.admin, &rich).await["points"], 960);
    app.assert_ledger_consistent(&s.t).await;
});

both!(min_balance_stays_at_the_till_but_not_for_adjustments, |app: TestApp| async move {
    let s = shop(&app).await;
    app.program(&s.t.admin, json!({"redeem": {"min_balance": 20}})).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 100).await;
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", receipt("R-1", &s.store, Some(&m), 100000, Some(json!(81)))).await,
        422,
        "insufficient_points",
    );
    let v = app.checkout(&s.t.admin, receipt("R-1", &s.store, Some(&m), 100000, Some(json!("max")))).await;
    assert_eq!(v["points_redeemed"], 80);
    assert_eq!(v["points_earned"], 92);
    assert_eq!(v["balance"], bal(112, 0, 0, 0));
    // Adjustments may take the balance to zero.
    let (st, r) = app.post(&s.t.admin, &format!("/api/v1/members/{m}/adjustments"), json!({"points": -112, "reason": "closing"})).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(app.balance(&s.t.admin, &m).await["points"], 0);
});

both!(occurred_at_must_lie_in_the_offline_window, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let now = unix_now();
    let at = |id: &str, t: String| {
        let mut b = receipt(id, &s.store, Some(&m), 10000, None);
        b["occurred_at"] = json!(t);
        b
    };
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", at("R-1", rfc3339(now - 31 * 86_400))).await,
        422,
        "occurred_at_out_of_range",
    );
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", at("R-1", rfc3339(now + 600))).await, 422, "occurred_at_out_of_range");
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/quote", at("R-1", rfc3339(now + 600))).await, 422, "occurred_at_out_of_range");
    assert_field_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", at("R-1", "yesterday".into())).await, "occurred_at");
    // Inside the window; fractions of a second are truncated, and the ledger follows.
    let t = now - 29 * 86_400;
    let frac = format!("{}.987Z", rfc3339(t).trim_end_matches('Z'));
    let v = app.checkout(&s.t.admin, at("R-1", frac)).await;
    assert_eq!(v["points_earned"], 10);
    let (_, got) = app.get(&s.t.admin, &receipt_path("R-1", &s.store, "")).await;
    assert_eq!(got["occurred_at"], rfc3339(t));
    let ledger = app.ledger_all(&s.t.admin, &m).await;
    assert_eq!(ledger[0]["occurred_at"], rfc3339(t));
    // Offsets are accepted and output in UTC.
    let v = app.checkout(&s.t.admin, at("R-2", "2020-01-01T00:00:00+03:00".replace("2020-01-01", &rfc3339(now - 86_400)[..10]))).await;
    assert_eq!(v["status"], "committed");
    // A little ahead (clock skew) is fine.
    let v = app.checkout(&s.t.admin, at("R-3", rfc3339(now + 120))).await;
    assert_eq!(v["points_earned"], 10);
    // offline_max_age_days 0: only now.
    app.program(&s.t.admin, json!({"offline_max_age_days": 0})).await;
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", at("R-4", rfc3339(unix_now() - 3600))).await,
        422,
        "occurred_at_out_of_range",
    );
    assert_eq!(app.checkout(&s.t.admin, receipt("R-4", &s.store, Some(&m), 10000, None)).await["points_earned"], 10);
    // A refund must lie in the window too, and not before its receipt.
    app.program(&s.t.admin, json!({})).await;
    let mut rf = refund("R-1", &s.store, "RF-1", None);
    rf["occurred_at"] = json!(rfc3339(t - 60));
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/refund", rf.clone()).await, 422, "occurred_at_out_of_range");
    rf["occurred_at"] = json!(rfc3339(unix_now() + 600));
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/refund", rf.clone()).await, 422, "occurred_at_out_of_range");
    rf["occurred_at"] = json!(rfc3339(t + 60));
    let (st, r) = app.post(&s.t.admin, "/api/v1/pos/refund", rf).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["points_reversed"], 10);
});

both!(points_posted_a_little_ahead_are_not_pending_without_pending_days, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let mut b = receipt("R-1", &s.store, Some(&m), 10000, None);
    b["occurred_at"] = json!(rfc3339(unix_now() + 120));
    let v = app.checkout(&s.t.admin, b).await;
    assert_eq!(v["points_earned"], 10);
    assert_eq!(v["points_pending"], 0, "pending_days is 0: {v}");
    assert_eq!(v["balance"], bal(10, 0, 0, 0));
    let bl = app.balance(&s.t.admin, &m).await;
    assert_eq!((bl["points"].as_i64(), bl["pending"].as_i64()), (Some(10), Some(0)));
});

both!(redeem_auth_qr_needs_the_qr_token_and_is_checked_before_insufficient_points, |app: TestApp| async move {
    let s = shop(&app).await;
    app.program(&s.t.admin, json!({"redeem": {"auth": "qr"}})).await;
    let m = app.member(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let id = m["id"].as_str().unwrap();
    app.give(&s.t.admin, id, 1000).await;
    let by = |rid: &str, member: Value, redeem: Option<Value>| {
        let mut b = receipt(rid, &s.store, None, 100000, redeem);
        b["member"] = member;
        b
    };
    let card = json!({"card_number": m["card_number"]});
    let qr = json!({"qr_token": m["qr_token"]});
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", by("R-1", card.clone(), Some(json!(10)))).await,
        422,
        "redeem_auth_required",
    );
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", by("R-1", card.clone(), Some(json!(5000)))).await,
        422,
        "redeem_auth_required",
    );
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", by("R-1", json!({"member_id": id}), Some(json!("max")))).await,
        422,
        "redeem_auth_required",
    );
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/reserve", by("R-1", json!({"phone": "+79120000001"}), Some(json!(10)))).await,
        422,
        "redeem_auth_required",
    );
    assert_eq!(app.balance(&s.t.admin, id).await["points"], 1000);
    // Earning needs no proof.
    assert_eq!(app.checkout(&s.t.admin, by("R-1", card, None)).await["points_earned"], 100);
    // The token proves presence; then the other rules apply.
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/checkout", by("R-2", qr.clone(), Some(json!(5000)))).await, 422, "insufficient_points");
    let v = app.checkout(&s.t.admin, by("R-2", qr, Some(json!(10)))).await;
    assert_eq!(v["points_redeemed"], 10);
    assert_eq!(v["balance"], bal(1189, 0, 0, 0));
});

both!(excluded_categories_lines_and_the_discount_card, |app: TestApp| async move {
    let s = shop(&app).await;
    app.program(
        &s.t.admin,
        json!({"no_earn_categories": ["Alcohol"], "tiers": [{"code": "club", "min_spend_minor": 0, "discount_bp": 1000}]}),
    )
    .await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 1000).await;
    let items = json!([
        line(1, "A", "goods", 1, 10000),
        line(2, "CIG", "Tobacco", 1, 5000),
        {"line_no": 3, "sku": "MED", "category": "pharmacy", "quantity": 1, "unit_price_minor": 4000, "discount": false},
        line(4, "WINE", "ALCOHOL", 1, 6000),
        {"line_no": 5, "sku": "GIFT", "category": "cards", "quantity": 1, "unit_price_minor": 2000, "earn": false}
    ]);
    let v = app.checkout(&s.t.admin, body("R-1", &s.store, Some(&m), items.clone(), Some(json!("max")))).await;
    assert_eq!(v["tier"], "club");
    for (k, want) in [
        ("total_minor", 27000),
        ("discount_minor", 1800),
        ("points_redeemed", 81),
        ("redeemed_minor", 8100),
        ("payable_minor", 17100),
        ("points_earned", 13),
    ] {
        assert_eq!(v[k], want, "{k}: {v}");
    }
    let lines = v["lines"].as_array().unwrap();
    let figures: Vec<[i64; 5]> = lines
        .iter()
        .map(|l| ["discount_minor", "redeemed_minor", "points_redeemed", "payable_minor", "points_earned"].map(|k| l[k].as_i64().unwrap()))
        .collect();
    assert_eq!(
        figures,
        [[1000, 4500, 45, 4500, 5], [0, 0, 0, 5000, 5], [0, 0, 0, 4000, 3], [600, 2700, 27, 2700, 0], [200, 900, 9, 900, 0]]
    );
    assert_eq!(v["balance"], bal(932, 0, 0, 0));
    // Anonymous: no tier, so no discount.
    let v = app.checkout(&s.t.admin, body("R-2", &s.store, None, items, None)).await;
    assert_eq!(v["tier"], Value::Null);
    assert_eq!(v["discount_minor"], 0);
    assert_eq!(v["payable_minor"], 27000);
});

both!(reserve_holds_points_until_checkout, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 1000).await;
    let r1 = receipt("R-1", &s.store, Some(&m), 10000, Some(json!(50)));
    let before = unix_now();
    let (st, h) = app.post(&s.t.admin, "/api/v1/pos/reserve", r1.clone()).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["status"], "held");
    assert!(h["hold_id"].as_str().is_some_and(|x| !x.is_empty()), "{h}");
    let exp = parse_rfc3339(&h["expires_at"]);
    assert!(exp >= before + 900 && exp <= unix_now() + 900, "{h}");
    assert_eq!(h["points_redeemed"], 50);
    assert_eq!(h["points_earned"], 5);
    assert_eq!(h["balance"], bal(955, 0, 0, 0), "the balance after checkout");
    let b = app.balance(&s.t.admin, &m).await;
    assert_eq!((b["points"].as_i64(), b["held"].as_i64()), (Some(1000), Some(50)));
    let (_, got) = app.get(&s.t.admin, &receipt_path("R-1", &s.store, "")).await;
    assert_eq!(got["status"], "held");
    // The same reserve again: the same hold.
    let (st, h2) = app.post(&s.t.admin, "/api/v1/pos/reserve", r1.clone()).await;
    assert_eq!(st, 200);
    assert_eq!(h2, h);
    assert_eq!(app.balance(&s.t.admin, &m).await["held"], 50);
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/reserve", receipt("R-1", &s.store, Some(&m), 10000, Some(json!(40)))).await,
        409,
        "receipt_conflict",
    );
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/checkout", receipt("R-1", &s.store, Some(&m), 10000, Some(json!(40)))).await,
        409,
        "receipt_conflict",
    );
    // Held points are not available to anyone else.
    let (_, q) = app.post(&s.t.admin, "/api/v1/pos/quote", receipt("R-2", &s.store, Some(&m), 1_000_000, Some(json!("max")))).await;
    assert_eq!(q["points_redeemed"], 950);
    // The checkout cannot fail for lack of points, even when the rest is spent.
    let (st, _) = app.post(&s.t.admin, &format!("/api/v1/members/{m}/adjustments"), json!({"points": -950, "reason": "x"})).await;
    assert_eq!(st, 201);
    let c = app.checkout(&s.t.admin, r1.clone()).await;
    assert_eq!(c["status"], "committed");
    assert_eq!(c["points_redeemed"], 50);
    assert_eq!(c["points_earned"], 5);
    assert_eq!(c["balance"], bal(5, 0, 0, 0));
    let b = app.balance(&s.t.admin, &m).await;
    assert_eq!((b["points"].as_i64(), b["held"].as_i64()), (Some(5), Some(0)));
    let (_, got) = app.get(&s.t.admin, &receipt_path("R-1", &s.store, "")).await;
    assert_eq!(got["status"], "committed");
    // Checking out again answers the same; reserving a committed receipt is 409.
    assert_eq!(app.checkout(&s.t.admin, r1.clone()).await, c);
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/reserve", r1).await, 409, "receipt_conflict");
    let ledger = app.ledger_all(&s.t.admin, &m).await;
    assert_eq!(ledger.iter().filter(|e| e["kind"] == "redeem").count(), 1);
    app.assert_ledger_consistent(&s.t).await;
});

both!(cancel_releases_holds_and_voids_committed_receipts, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 1000).await;
    // A held receipt: the hold is released and its ids are free again.
    let (st, _) = app.post(&s.t.admin, "/api/v1/pos/reserve", receipt("R-1", &s.store, Some(&m), 10000, Some(json!(30)))).await;
    assert_eq!(st, 200);
    assert_eq!(app.balance(&s.t.admin, &m).await["held"], 30);
    let (st, c) = app.post(&s.t.admin, "/api/v1/pos/cancel", json!({"receipt_id": "R-1", "store_id": s.store})).await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(bal_of(&app, &s.t.admin, &m).await, bal(1000, 0, 0, 0));
    let v = app.checkout(&s.t.admin, receipt("R-1", &s.store, Some(&m), 20000, None)).await;
    assert_eq!(v["points_earned"], 20);
    // A committed receipt is voided exactly.
    let before = bal_of(&app, &s.t.admin, &m).await;
    let ledger_before = app.ledger_all(&s.t.admin, &m).await.len();
    let v = app.checkout(&s.t.admin, receipt("R-2", &s.store, Some(&m), 10000, Some(json!(20)))).await;
    assert_eq!((v["points_redeemed"].as_i64(), v["points_earned"].as_i64()), (Some(20), Some(8)));
    let (st, c) = app.post(&s.t.admin, "/api/v1/pos/cancel", json!({"receipt_id": "R-2", "store_id": s.store})).await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["status"], "cancelled");
    assert_eq!(bal_of(&app, &s.t.admin, &m).await, before);
    let ledger = app.ledger_all(&s.t.admin, &m).await;
    assert_eq!(ledger.len(), ledger_before + 4);
    let mut kinds: Vec<&str> = ledger[..2].iter().map(|e| e["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["return_redeem", "reverse_earn"]);
    let (_, got) = app.get(&s.t.admin, &receipt_path("R-2", &s.store, "")).await;
    assert_eq!(got["status"], "cancelled");
    // Cancelled receipts count for nothing and cannot be refunded.
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/refund", refund("R-2", &s.store, "RF-1", None)).await, 409, "receipt_not_refundable");
    let (st, again) = app.post(&s.t.admin, "/api/v1/pos/cancel", json!({"receipt_id": "R-2", "store_id": s.store})).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["status"], "cancelled");
    assert_eq!(bal_of(&app, &s.t.admin, &m).await, before);
    // After a refund, cancel is not possible.
    app.checkout(&s.t.admin, body("R-3", &s.store, Some(&m), json!([line(1, "A", "x", 2, 5000)]), None)).await;
    let (st, r) =
        app.post(&s.t.admin, "/api/v1/pos/refund", refund("R-3", &s.store, "RF-3", Some(json!([{"line_no": 1, "quantity": 1}])))).await;
    assert_eq!(st, 200, "{r}");
    let b3 = bal_of(&app, &s.t.admin, &m).await;
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/cancel", json!({"receipt_id": "R-3", "store_id": s.store})).await,
        409,
        "cancel_not_possible",
    );
    assert_eq!(bal_of(&app, &s.t.admin, &m).await, b3);
    // When the member has spent what the receipt earned, cancel is not possible either.
    let poor = app.member_id(&s.t.admin, json!({"phone": "+79120000002"})).await;
    app.checkout(&s.t.admin, receipt("R-4", &s.store, Some(&poor), 100000, None)).await;
    let (st, _) = app.post(&s.t.admin, &format!("/api/v1/members/{poor}/adjustments"), json!({"points": -60, "reason": "spent"})).await;
    assert_eq!(st, 201);
    assert_error(
        &app.post(&s.t.admin, "/api/v1/pos/cancel", json!({"receipt_id": "R-4", "store_id": s.store})).await,
        409,
        "cancel_not_possible",
    );
    assert_eq!(bal_of(&app, &s.t.admin, &poor).await, bal(40, 0, 0, 0));
    let (_, got) = app.get(&s.t.admin, &receipt_path("R-4", &s.store, "")).await;
    assert_eq!(got["status"], "committed");
    // A refused cancel leaves the receipt refundable.
    let (st, r) = app.post(&s.t.admin, "/api/v1/pos/refund", refund("R-4", &s.store, "RF-4", None)).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (r["points_reversed"].as_i64(), r["withheld_minor"].as_i64(), r["refund_minor"].as_i64()),
        (Some(40), Some(6000), Some(94000))
    );
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/cancel", json!({"receipt_id": "R-9", "store_id": s.store})).await, 404, "not_found");
    app.assert_ledger_consistent(&s.t).await;
});

both!(receipt_statuses_follow_its_life, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 100).await;
    let status = |id: &'static str| read_receipt(&app, &s.t.admin, receipt_path(id, &s.store, "T1"));
    let mut r = body("R-1", &s.store, Some(&m), json!([line(1, "A", "x", 2, 5000), line(2, "B", "y", 1, 3000)]), Some(json!(10)));
    r["till_id"] = json!("T1");
    let (st, h) = app.post(&s.t.admin, "/api/v1/pos/reserve", r.clone()).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(status("R-1").await["status"], "held");
    assert_error(
        &app.post(
            &s.t.admin,
            "/api/v1/pos/refund",
            json!({"receipt_id": "R-1", "till_id": "T1", "store_id": s.store, "refund_id": "RF-0"}),
        )
        .await,
        409,
        "receipt_not_refundable",
    );
    let c = app.checkout(&s.t.admin, r).await;
    let got = status("R-1").await;
    assert_eq!(got["status"], "committed");
    assert_eq!(got["receipt_id"], "R-1");
    assert_eq!(got["lines"], c["lines"]);
    assert_eq!(got["refunds"], json!([]));
    let (st, r1) = app.post(&s.t.admin, "/api/v1/pos/refund", json!({"receipt_id": "R-1", "till_id": "T1", "store_id": s.store, "refund_id": "RF-1", "items": [{"line_no": 1, "quantity": 1}]})).await;
    assert_eq!(st, 200, "{r1}");
    let got = status("R-1").await;
    assert_eq!(got["status"], "partially_refunded");
    assert_eq!(got["refunds"][0]["refund_id"], "RF-1");
    let (st, r2) = app
        .post(&s.t.admin, "/api/v1/pos/refund", json!({"receipt_id": "R-1", "till_id": "T1", "store_id": s.store, "refund_id": "RF-2"}))
        .await;
    assert_eq!(st, 200, "{r2}");
    let got = status("R-1").await;
    assert_eq!(got["status"], "refunded");
    assert_eq!(got["refunds"].as_array().unwrap().len(), 2);
    // Everything back, exactly.
    let r_minor = r1["refund_minor"].as_i64().unwrap() + r2["refund_minor"].as_i64().unwrap();
    assert_eq!(r_minor, c["payable_minor"].as_i64().unwrap());
    assert_eq!(bal_of(&app, &s.t.admin, &m).await, bal(100, 0, 0, 0));
    // Cancelled.
    let mut r = receipt("R-2", &s.store, Some(&m), 1000, None);
    r["till_id"] = json!("T1");
    app.checkout(&s.t.admin, r).await;
    app.post(&s.t.admin, "/api/v1/pos/cancel", json!({"receipt_id": "R-2", "till_id": "T1", "store_id": s.store})).await;
    assert_eq!(status("R-2").await["status"], "cancelled");
    // The till is part of the receipt's name.
    assert_error(&app.get(&s.t.admin, &receipt_path("R-2", &s.store, "")).await, 404, "not_found");
    assert_field_error(&app.get(&s.t.admin, "/api/v1/pos/receipts/R-2?till_id=T1").await, "store_id");
});

both!(refunds_name_lines_by_number_or_sku, |app: TestApp| async move {
    let s = shop(&app).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    let items = json!([
        line(1, "A", "x", 3, 1000),
        line(2, "B", "x", 1, 2000),
        line(3, "B", "x", 2, 500),
        {"line_no": 4, "sku": "FUEL", "category": "fuel", "quantity": "10.000", "unit_price_minor": 5000}
    ]);
    let v = app.checkout(&s.t.admin, body("R-1", &s.store, Some(&m), items, None)).await;
    assert_eq!(v["total_minor"], 56000);
    assert_eq!(v["points_earned"], 56);
    let earned: Vec<i64> = v["lines"].as_array().unwrap().iter().map(|l| l["points_earned"].as_i64().unwrap()).collect();
    assert_eq!(earned, [3, 2, 1, 50]);
    let post = |refund_id: &str, items: Value| app.post(&s.t.admin, "/api/v1/pos/refund", refund("R-1", &s.store, refund_id, Some(items)));
    // By sku when only one line has it.
    let (st, r) = post("RF-1", json!([{"sku": "A", "quantity": 1}])).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["lines"], json!([{"line_no": 1, "quantity": 1, "refund_minor": 1000, "withheld_minor": 0}]));
    assert_eq!((r["refund_minor"].as_i64(), r["points_reversed"].as_i64(), r["points_returned"].as_i64()), (Some(1000), Some(1), Some(0)));
    assert_eq!(r["balance"], bal(55, 0, 0, 0));
    assert_error(&post("RF-2", json!([{"sku": "B", "quantity": 1}])).await, 422, "ambiguous_line");
    assert_error(&post("RF-2", json!([{"sku": "ZZZ"}])).await, 422, "line_not_found");
    assert_error(&post("RF-2", json!([{"line_no": 9}])).await, 422, "line_not_found");
    assert_error(&post("RF-2", json!([{"line_no": 1, "sku": "B"}])).await, 422, "line_not_found");
    assert_error(&post("RF-2", json!([{"line_no": 1, "quantity": 3}])).await, 422, "refund_exceeds_purchase");
    assert_error(&post("RF-2", json!([{"line_no": 1, "quantity": 1}, {"sku": "A", "quantity": 2}])).await, 422, "refund_exceeds_purchase");
    assert_field_error(&post("RF-2", json!([{"quantity": 1}])).await, "items[0].line_no");
    assert_field_error(&post("RF-2", json!([{"line_no": 1, "quantity": 1.0}])).await, "items[0].quantity");
    assert_field_error(&post("RF-2", json!([{"line_no": 1, "quantity": 0}])).await, "items[0].quantity");
    // Both given and matching.
    let (st, r) = post("RF-2", json!([{"line_no": 3, "sku": "B", "quantity": 1}])).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!((r["refund_minor"].as_i64(), r["points_reversed"].as_i64()), (Some(500), Some(0)));
    // Measured lines refund decimal strings: floor(50000 × 2500 / 10000), floor(50 × 2500 / 10000).
    let (st, r) = post("RF-3", json!([{"line_no": 4, "quantity": "2.5"}])).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(milli(&r["lines"][0]["quantity"]), 2500);
    assert_eq!(r["lines"][0]["refund_minor"], 12500);
    assert_eq!(r["lines"].as_array().unwrap().len(), 1);
    assert_eq!(r["points_reversed"], 12);
    assert_field_error(&post("RF-4", json!([{"line_no": 4, "quantity": 2}])).await, "items[0].quantity");
    assert_field_error(&post("RF-4", json!([{"line_no": 1, "quantity": "1.5"}])).await, "items[0].quantity");
    assert_field_error(&post("RF-4", json!([{"line_no": 4, "quantity": "1.2345"}])).await, "items[0].quantity");
    assert_error(&post("RF-4", json!([{"line_no": 4, "quantity": "7.501"}])).await, 422, "refund_exceeds_purchase");
    // An item without quantity refunds the rest of its line: 7.5 of 10 → 50000 − 12500.
    let (st, r) = post("RF-4", json!([{"line_no": 4}])).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(milli(&r["lines"][0]["quantity"]), 7500);
    assert_eq!(
        (r["lines"][0]["line_no"].as_i64(), r["lines"][0]["refund_minor"].as_i64(), r["lines"][0]["withheld_minor"].as_i64()),
        (Some(4), Some(37500), Some(0))
    );
    assert_eq!(r["points_reversed"], 38);
    assert_eq!(app.balance(&s.t.admin, &m).await["points"], 5);
    app.assert_ledger_consistent(&s.t).await;
});

both!(refund_everything_left_and_idempotency, |app: TestApp| async move {
    let s = shop(&app).await;
    let other = app.store(&s.t.admin, "S2").await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 100).await;
    let items = json!([line(1, "A", "x", 3, 1000), {"line_no": 2, "sku": "F", "quantity": "1.5", "total_minor": 3000}]);
    let v = app.checkout(&s.t.admin, body("R-1", &s.store, Some(&m), items, Some(json!(30)))).await;
    assert_eq!((v["points_redeemed"].as_i64(), v["points_earned"].as_i64(), v["payable_minor"].as_i64()), (Some(30), Some(3), Some(3000)));
    assert_eq!(v["balance"], bal(73, 0, 0, 0));
    let one = refund("R-1", &s.store, "RF-1", Some(json!([{"line_no": 1, "quantity": 1}])));
    let (st, a) = app.post(&s.t.admin, "/api/v1/pos/refund", one.clone()).await;
    assert_eq!(st, 200, "{a}");
    let bal_a = bal_of(&app, &s.t.admin, &m).await;
    // The same refund again: the same answer, nothing twice.
    let (st, b) = app.post(&s.t.admin, "/api/v1/pos/refund", one.clone()).await;
    assert_eq!(st, 200);
    assert_eq!(a, b);
    assert_eq!(bal_of(&app, &s.t.admin, &m).await, bal_a);
    let (_, got) = app.get(&s.t.admin, &receipt_path("R-1", &s.store, "")).await;
    assert_eq!(got["refunds"].as_array().unwrap().len(), 1);
    // Another body under the same refund id.
    let got =
        app.post(&s.t.admin, "/api/v1/pos/refund", refund("R-1", &s.store, "RF-1", Some(json!([{"line_no": 1, "quantity": 2}])))).await;
    assert_eq!(got.0, 409, "{}", got.1);
    // A refund id is per store: the same id at another store is another refund.
    let mut at_other = refund("R-1", &other, "RF-1", Some(json!([{"line_no": 1, "quantity": 1}])));
    at_other["original_store_id"] = json!(s.store);
    let (st, r) = app.post(&s.t.admin, "/api/v1/pos/refund", at_other).await;
    assert_eq!(st, 200, "{r}");
    // Items left out: everything that is left.
    let (st, r) = app.post(&s.t.admin, "/api/v1/pos/refund", refund("R-1", &s.store, "RF-2", None)).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["lines"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["lines"][0]["quantity"], 1);
    assert_eq!(milli(&r["lines"][1]["quantity"]), 1500);
    let (_, got) = app.get(&s.t.admin, &receipt_path("R-1", &s.store, "")).await;
    assert_eq!(got["status"], "refunded");
    let total_refunded: i64 = got["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["refund_minor"].as_i64().unwrap() + r["withheld_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(total_refunded, 3000);
    let returned: i64 = got["refunds"].as_array().unwrap().iter().map(|r| r["points_returned"].as_i64().unwrap()).sum();
    let reversed: i64 = got["refunds"].as_array().unwrap().iter().map(|r| r["points_reversed"].as_i64().unwrap()).sum();
    assert_eq!((returned, reversed), (30, 3));
    assert_eq!(bal_of(&app, &s.t.admin, &m).await, bal(100, 0, 0, 0));
    assert_error(&app.post(&s.t.admin, "/api/v1/pos/refund", refund("R-1", &s.store, "RF-3", None)).await, 422, "refund_exceeds_purchase");
    // A pos key refunds at its own store only.
    let pos = app.pos_key(&s.t.admin, &other, None).await;
    app.checkout(&s.t.admin, receipt("R-2", &s.store, Some(&m), 1000, None)).await;
    let (st, r) =
        app.post(&pos, "/api/v1/pos/refund", json!({"receipt_id": "R-2", "original_store_id": s.store, "refund_id": "RF-9"})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["refund_minor"], 1000);
    assert_error(
        &app.post(&pos, "/api/v1/pos/refund", json!({"receipt_id": "R-2", "store_id": s.store, "refund_id": "RF-10"})).await,
        403,
        "store_mismatch",
    );
    app.assert_ledger_consistent(&s.t).await;
});

both!(an_expired_hold_is_released_and_its_ids_are_free, |app: TestApp| async move {
    let s = shop(&app).await;
    app.program(&s.t.admin, json!({"redeem": {"hold_ttl_s": 1}})).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 100).await;
    let (st, h) = app.post(&s.t.admin, "/api/v1/pos/reserve", receipt("R-1", &s.store, Some(&m), 10000, Some(json!(40)))).await;
    assert_eq!(st, 200, "{h}");
    let expires = parse_rfc3339(&h["expires_at"]);
    // Read back only while the hold is surely live (a loaded machine may cross its second).
    let held = app.balance(&s.t.admin, &m).await["held"].clone();
    if unix_now() < expires {
        assert_eq!(held, 40);
    }
    while unix_now() <= expires {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(bal_of(&app, &s.t.admin, &m).await, bal(100, 0, 0, 0));
    // The ids may be used again, with another body.
    let v = app.checkout(&s.t.admin, receipt("R-1", &s.store, Some(&m), 10000, Some(json!(10)))).await;
    assert_eq!(v["points_redeemed"], 10);
    assert_eq!(v["balance"], bal(99, 0, 0, 0));
    assert_eq!(app.ledger_all(&s.t.admin, &m).await.iter().filter(|e| e["kind"] == "redeem").count(), 1);
    app.assert_ledger_consistent(&s.t).await;
});

both!(concurrent_checkouts_never_spend_the_same_points_twice, |app: TestApp| async move {
    let s = shop(&app).await;
    // Nothing is earned, so only the 100 points given can pay.
    app.program(&s.t.admin, json!({"earn": {"points_per_unit": 0}})).await;
    let m = app.member_id(&s.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&s.t.admin, &m, 100).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        // Four distinct receipts, each sent twice at once.
        let b = receipt(&format!("R-{}", i % 4), &s.store, Some(&m), 10000, Some(json!(30)));
        let (client, url, key) = (app.client.clone(), app.url.clone(), s.t.admin.clone());
        tasks.spawn(async move {
            let resp = client.post(format!("{url}/api/v1/pos/checkout")).bearer_auth(key).json(&b).send().await.expect("request");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.expect("json"))
        });
    }
    let mut ok = std::collections::HashMap::new();
    while let Some(r) = tasks.join_next().await {
        let (st, v) = r.expect("task");
        match st {
            200 => {
                let prev = ok.insert(v["receipt_id"].as_str().unwrap().to_owned(), v.clone());
                assert!(prev.is_none_or(|p| p == v), "the same receipt answered twice differently");
            }
            422 => assert_eq!(v["error"]["code"], "insufficient_points", "{v}"),
            409 => assert_eq!(v["error"]["code"], "receipt_conflict", "{v}"),
            _ => panic!("unexpected {st}: {v}"),
        }
    }
    // 100 points pay for at most three receipts of 30.
    assert_eq!(ok.len(), 3, "{ok:?}");
    let b = app.balance(&s.t.admin, &m).await;
    assert_eq!(b["points"], 10);
    let ledger = app.ledger_all(&s.t.admin, &m).await;
    assert_eq!(ledger.iter().filter(|e| e["kind"] == "redeem").count(), 3);
    app.assert_ledger_consistent(&s.t).await;
});

// ---------------------------------------------------------------------------------------
// Tenant isolation
// ---------------------------------------------------------------------------------------

both!(another_tenants_objects_are_404_and_unchanged, |app: TestApp| async move {
    let a = shop(&app).await;
    let b = shop(&app).await;
    let ma = app.member_id(&a.t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&a.t.admin, &ma, 100).await;
    let mb = app.member(&b.t.admin, json!({"phone": "+79120000002", "email": "b@example.com", "external_id": "B-1"})).await;
    let mb_id = mb["id"].as_str().unwrap().to_owned();
    app.give(&b.t.admin, &mb_id, 500).await;
    app.checkout(&b.t.admin, body("R-B", &b.store, Some(&mb_id), json!([line(1, "A", "x", 2, 5000)]), Some(json!(10)))).await;
    let (kb_id, kb) = app.api_key(&b.t.admin, json!({"role": "pos", "store_id": b.store})).await;
    let bal_b = app.balance(&b.t.admin, &mb_id).await;
    let ledger_b = app.ledger_all(&b.t.admin, &mb_id).await;
    let (_, receipt_b) = app.get(&b.t.admin, &receipt_path("R-B", &b.store, "")).await;

    let k = &a.t.admin;
    for path in [
        format!("/api/v1/members/{mb_id}"),
        format!("/api/v1/members/{mb_id}/balance"),
        format!("/api/v1/members/{mb_id}/ledger"),
        format!("/api/v1/members/{mb_id}/history"),
        format!("/api/v1/stores/{}", b.store),
        receipt_path("R-B", &b.store, ""),
    ] {
        let got = app.get(k, &path).await;
        assert_eq!(got.0, 404, "{path}: {}", got.1);
    }
    let got =
        app.post(k, &format!("/api/v1/members/{mb_id}/adjustments"), json!({"points": -10, "reason": "x", "adjustment_id": "X-1"})).await;
    assert_eq!(got.0, 404, "{}", got.1);
    let got =
        app.post(k, &format!("/api/v1/members/{mb_id}/transfers"), json!({"to_member_id": ma, "points": 10, "transfer_id": "X-2"})).await;
    assert_eq!(got.0, 404, "{}", got.1);
    let got =
        app.post(k, &format!("/api/v1/members/{ma}/transfers"), json!({"to_member_id": mb_id, "points": 10, "transfer_id": "X-3"})).await;
    assert_eq!(got.0, 404, "{}", got.1);
    assert_eq!(app.delete(k, &format!("/api/v1/api-keys/{kb_id}")).await.0, 404);
    assert_eq!(app.post(k, "/api/v1/pos/refund", refund("R-B", &b.store, "X-4", None)).await.0, 404);
    let mut rf = refund("R-B", &a.store, "X-5", None);
    rf["original_store_id"] = json!(b.store);
    assert_eq!(app.post(k, "/api/v1/pos/refund", rf).await.0, 404);
    assert_eq!(app.post(k, "/api/v1/pos/cancel", json!({"receipt_id": "R-B", "store_id": b.store})).await.0, 404);
    for id in [
        json!({"card_number": mb["card_number"]}),
        json!({"phone": "+79120000002"}),
        json!({"email": "b@example.com"}),
        json!({"external_id": "B-1"}),
        json!({"qr_token": mb["qr_token"]}),
    ] {
        assert_error(&app.post(k, "/api/v1/members/lookup", id).await, 404, "member_not_found");
    }
    let mut r = receipt("R-X", &a.store, None, 1000, None);
    r["member"] = json!({"card_number": mb["card_number"]});
    assert_error(&app.post(k, "/api/v1/pos/checkout", r).await, 404, "member_not_found");
    assert_error(&app.post(k, "/api/v1/pos/checkout", receipt("R-X", &b.store, None, 1000, None)).await, 404, "store_not_found");
    assert_error(&app.post(k, "/api/v1/api-keys", json!({"role": "pos", "store_id": b.store})).await, 404, "store_not_found");
    // The same receipt id in tenant A is unrelated.
    let mut r = receipt("R-B", &a.store, Some(&ma), 1000, None);
    r["till_id"] = json!("");
    assert_eq!(app.checkout(k, r).await["member_id"], ma.as_str());
    // Nothing of B changed, and B's key still works.
    assert_eq!(app.balance(&b.t.admin, &mb_id).await, bal_b);
    assert_eq!(app.ledger_all(&b.t.admin, &mb_id).await, ledger_b);
    assert_eq!(app.get(&b.t.admin, &receipt_path("R-B", &b.store, "")).await.1, receipt_b);
    assert_eq!(app.get(&kb, "/api/v1/program").await.0, 200);
    assert_eq!(app.balance(&a.t.admin, &ma).await["points"], 101);
    // A's lists show none of B.
    let (_, members) = app.get(k, "/api/v1/members").await;
    assert!(!members.to_string().contains(&mb_id));
    let (_, stores) = app.get(k, "/api/v1/stores").await;
    assert!(!stores.to_string().contains(&b.store));
    let (_, keys) = app.get(k, "/api/v1/api-keys").await;
    assert!(!keys.to_string().contains(&kb_id));
    app.assert_ledger_consistent(&a.t).await;
    app.assert_ledger_consistent(&b.t).await;
});

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

both!(health_metrics_and_openapi, |app: TestApp| async move {
    let resp = app.client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Make a request so that counters exist.
    let s = shop(&app).await;
    app.get(&s.t.admin, "/api/v1/program").await;
    let resp = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("kopilka_"), "{text}");
    let resp = app.client.get(format!("{}/api/v1/openapi.json", app.url)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let doc: Value = resp.json().await.expect("openapi is JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')), "{doc}");
    assert!(doc["paths"].is_object(), "{doc}");
});
