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

// A body over the limit gets the usual error envelope, not the framework's plain text.
// (Sent by hand: the server answers from the Content-Length alone, before the body.)
both!(oversized_body_gets_the_envelope, |app: TestApp| async move {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = app.tenant("Big").await;
    let addr = app.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/stores HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        t.admin,
        9 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["error"]["code"], "payload_too_large", "{v}");
    assert!(v["error"]["request_id"].as_str().is_some_and(|s| !s.is_empty()));
});

// API keys are stored only as SHA-256 hashes: the secret is nowhere in the database.
both!(api_keys_are_stored_only_as_hashes, |app: TestApp| async move {
    let t = app.tenant("Hashes").await;
    let store = app.store(&t.admin, "H1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    let rows = sqlx::query("SELECT key_hash FROM api_keys").fetch_all(app.state.db.pool()).await.unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let hash: String = sqlx::Row::try_get(r, "key_hash").unwrap();
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&t.admin[4..]) && !hash.contains(&pos[4..]));
    }
    for secret in [&t.admin, &pos] {
        for table in ["api_keys", "audit_log"] {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE {} LIKE $1",
                if table == "api_keys" { "key_hash || COALESCE(label, '')" } else { "details" }
            );
            let n: i64 = sqlx::Row::try_get(
                &sqlx::query(sqlx::AssertSqlSafe(sql)).bind(format!("%{}%", &secret[4..])).fetch_one(app.state.db.pool()).await.unwrap(),
                "n",
            )
            .unwrap();
            assert_eq!(n, 0, "a key's secret is stored in {table}");
        }
    }
    // The hash is what authenticates: the key still works.
    let (s, _) = app.get(&pos, "/api/v1/program").await;
    assert_eq!(s, 200);
});

// Bodies up to the documented 8 MiB are read (here a 3 MiB one reaches validation).
both!(bodies_up_to_eight_mib_are_read, |app: TestApp| async move {
    let t = app.tenant("Mid").await;
    let name = "n".repeat(3 * 1024 * 1024);
    let (s, v) = app.post(&t.admin, "/api/v1/stores", json!({"code": "M1", "name": name})).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["fields"]["name"], "must be at most 200 characters");
});
