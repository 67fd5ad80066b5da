//! Regression tests for what schemathesis found by fuzzing the API against its OpenAPI
//! document. `TestApp::request` fails on any 5xx, so each call below is also the check
//! that the server no longer answers 500.

use crate::both;
use crate::helpers::*;
use serde_json::json;

// A NUL character in a JSON string is valid JSON, but PostgreSQL text cannot hold it: a
// store created with one was a 500 there. It is 422 `validation_error` at its path, on
// both databases, and nothing is written.
both!(nul_in_a_body_string_is_a_validation_error, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let (s, v) = app.post(&t.admin, "/api/v1/stores", json!({"code": "S\u{0}1", "name": "Main"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("validation_error")), "{v}");
    assert!(v["error"]["fields"]["code"].is_string(), "{v}");
    let (_, list) = app.get(&t.admin, "/api/v1/stores").await;
    assert_eq!(list["stores"], json!([]));

    // Nested too: a line's sku on a till request.
    let store = app.store(&t.admin, "S1").await;
    let mut body = receipt("R-1", &store, None, 1000, None);
    body["items"][0]["sku"] = json!("A\u{0}");
    let (s, v) = app.post(&t.admin, "/api/v1/pos/checkout", body).await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["fields"]["items[0].sku"].is_string(), "{v}");
});

// An id in a URL holding a NUL is simply unknown (404), after authentication and the
// role check; a query parameter holding one is 422.
both!(nul_in_a_url_id_is_not_found, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    for path in ["/api/v1/members/%00", "/api/v1/members/%00/balance", "/api/v1/members/%00/ledger", "/api/v1/stores/a%00b"] {
        let (s, v) = app.get(&t.admin, path).await;
        assert_eq!(s, 404, "{path}: {v}");
    }
    let (s, v) = app.get(&t.admin, &format!("/api/v1/pos/receipts/R%001?store_id={store}")).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = app.delete(&t.admin, "/api/v1/api-keys/%00").await;
    assert_eq!(s, 404, "{v}");
    // The role check still comes first.
    let (s, v) = app.get(&pos, "/api/v1/members/%00/ledger").await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = app.get(&t.admin, "/api/v1/members?cursor=%00").await;
    assert_eq!((s, v["error"]["fields"]["cursor"].is_string()), (422, true), "{v}");
    let (s, v) = app.get(&t.admin, "/api/v1/pos/receipts/R-1?store_id=%00").await;
    assert_eq!(s, 422, "{v}");
});

// A CSV import row holding a NUL is rejected, and so nothing is imported.
both!(nul_in_an_import_row_is_rejected, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let resp = app
        .client
        .post(format!("{}/api/v1/members/import", app.url))
        .bearer_auth(&t.admin)
        .header("content-type", "text/csv")
        .body("phone,name\n+79123400003,a\u{0}b\n")
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!((status, v["error"]["code"].as_str()), (422, Some("import_rejected")), "{v}");
    let (_, list) = app.get(&t.admin, "/api/v1/members").await;
    assert_eq!(list["members"], json!([]));
});
