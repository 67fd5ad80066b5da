//! The cashier terminal over HTTP: till key login, a sale with points spent, the receipt,
//! a refund, tenant scope, revocation and CSRF.

use crate::both;
use crate::helpers::*;
use serde_json::json;

/// A pos key of a store (and till), made through the API.
async fn till_key(app: &TestApp, t: &Tenant, store: &str, till: Option<&str>) -> (String, String) {
    let mut body = json!({"role": "pos", "store_id": store, "label": "front till"});
    if let Some(x) = till {
        body["till_id"] = json!(x);
    }
    let (s, v) = app.api(reqwest::Method::POST, &t.admin, "/api/v1/api-keys", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    (v["id"].as_str().unwrap().to_owned(), v["key"].as_str().unwrap().to_owned())
}

async fn open_till(app: &TestApp, key: &str) -> Browser {
    let mut b = app.browser();
    b.get("/till/login").await.assert_status(200);
    let p = b.post("/till/login", &[("key", key)]).await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some("/till"));
    b.get("/till").await.assert_status(200);
    b
}

/// The receipt id on the sale screen.
fn receipt_id(page: &Page) -> String {
    let marker = "data-testid=\"receipt-id\">";
    let i = page.body.find(marker).expect("receipt id") + marker.len();
    page.body[i..i + page.body[i..].find('<').unwrap()].to_owned()
}

both!(a_cashier_sells_with_points_prints_and_refunds, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t, "S1").await;
    let (_, key) = till_key(&app, &t, &store, Some("T1")).await;
    let m = app.member(&t, json!({"phone": "+79990000001"})).await;
    let card = m["card_number"].as_str().unwrap().to_owned();
    // 300 points to spend.
    app.checkout(&t, json!({"receipt_id": "SEED", "store_id": store, "till_id": "T1", "member": {"card_number": card}, "items": [{"sku": "X", "quantity": 1, "unit_price_minor": 300000}]})).await;

    let mut b = open_till(&app, &key).await;
    // The key is in no page and no cookie.
    let page = b.get("/till").await;
    page.assert_lacks(&key);
    assert!(b.cookies.values().all(|v| !v.contains(&key)));
    b.post("/till/member", &[("by", "card"), ("value", &card)]).await.assert_status(303);
    b.get("/till").await.assert_contains(&card).assert_contains("data-testid=\"member-points\">300<");
    b.post("/till/lines", &[("sku", "MILK"), ("name", "Milk"), ("category", "dairy"), ("quantity", "2"), ("price", "50.00")])
        .await
        .assert_status(303);
    b.post("/till/lines", &[("name", "Cheese"), ("quantity", "0,5"), ("price", "800")]).await.assert_status(303);
    // A bad line is refused with a message, and adds nothing.
    b.post("/till/lines", &[("name", "Bad"), ("quantity", "1"), ("price", "abc")])
        .await
        .assert_status(422)
        .assert_contains("Enter the price");
    let sale = b.get("/till").await;
    sale.assert_contains("Milk · MILK").assert_contains("Cheese").assert_lacks(">Bad<");
    let rid = receipt_id(&sale);
    // Quote spending everything allowed: half of 500.00 is 250 points.
    b.post("/till/quote", &[("spend", "all")]).await.assert_status(303);
    b.get("/till").await.assert_contains("data-testid=\"quote-points\">250 =");
    // More than the member has is refused by the engine, in words.
    b.post("/till/quote", &[("spend", "some"), ("points", "5000")]).await.assert_status(422);
    // Reserve 100, then check out the reserve.
    b.post("/till/reserve", &[("spend", "some"), ("points", "100")]).await.assert_status(303);
    b.get("/till").await.assert_contains("data-testid=\"reserved\"");
    let p = b.post("/till/checkout", &[]).await;
    p.assert_status(303);
    let to = p.location.clone().unwrap();
    assert_eq!(to, format!("/till/receipts/{rid}"));
    let slip = b.get(&to).await;
    slip.assert_status(200)
        .assert_contains("data-testid=\"slip-points-spent\">100 =")
        .assert_contains("Milk · MILK")
        .assert_contains("paid");
    // The API sees the same receipt.
    let (s, v) = app.api(reqwest::Method::GET, &t.admin, &format!("/api/v1/pos/receipts/{rid}?store_id={store}&till_id=T1"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["points_redeemed"], 100);
    assert_eq!(v["payable_minor"], 40000);
    // A new sale has a new receipt id.
    assert_ne!(receipt_id(&b.get("/till").await), rid);

    // Refund one milk by receipt id.
    b.get("/till/refund").await.assert_status(200);
    let p = b.post("/till/refund", &[("receipt_id", &rid)]).await;
    p.assert_status(303);
    let form = b.get(p.location.as_deref().unwrap()).await;
    form.assert_status(200).assert_contains("qty_1");
    b.post(&format!("/till/receipts/{rid}/refund"), &[("qty_1", "1")])
        .await
        .assert_status(200)
        .assert_contains("data-testid=\"refund-done\"");
    let (_, v) = app.api(reqwest::Method::GET, &t.admin, &format!("/api/v1/pos/receipts/{rid}?store_id={store}&till_id=T1"), None).await;
    assert_eq!(v["status"], "partially_refunded");
    // Then everything left.
    b.get(&format!("/till/receipts/{rid}/refund")).await;
    b.post(&format!("/till/receipts/{rid}/refund"), &[("all", "on")]).await.assert_status(200).assert_contains("refunded");
    let (_, v) = app.api(reqwest::Method::GET, &t.admin, &format!("/api/v1/pos/receipts/{rid}?store_id={store}&till_id=T1"), None).await;
    assert_eq!(v["status"], "refunded");
    // Nothing is left to refund.
    b.get(&format!("/till/receipts/{rid}/refund")).await;
    b.post(&format!("/till/receipts/{rid}/refund"), &[("all", "on")]).await.assert_status(422);
    b.post("/till/refund", &[("receipt_id", "NO-SUCH")]).await.assert_status(404);
});

both!(a_till_of_one_tenant_cannot_reach_another, |app: TestApp| async move {
    let a = app.tenant("Shop A").await;
    let other = app.tenant("Shop B").await;
    let store_a = app.store(&a, "S1").await;
    let store_b = app.store(&other, "S1").await;
    let (_, key_a) = till_key(&app, &a, &store_a, None).await;
    let theirs = app.member(&other, json!({"phone": "+79990000009"})).await;
    app.checkout(&other, json!({"receipt_id": "B-1", "store_id": store_b, "member": {"member_id": theirs["id"]}, "items": [{"sku": "X", "quantity": 1, "unit_price_minor": 1000}]})).await;
    let mut b = open_till(&app, &key_a).await;
    // B's member is unknown here, by card and by phone.
    b.post("/till/member", &[("by", "card"), ("value", theirs["card_number"].as_str().unwrap())]).await.assert_status(404);
    b.post("/till/member", &[("by", "phone"), ("value", "+79990000009")]).await.assert_status(404);
    // B's receipt is unknown here.
    b.get("/till/receipts/B-1").await.assert_status(404);
    b.post("/till/refund", &[("receipt_id", "B-1")]).await.assert_status(404);
    b.get("/till/receipts/B-1/refund").await.assert_status(404);
    let (_, v) = app.api(reqwest::Method::GET, &other.admin, &format!("/api/v1/pos/receipts/B-1?store_id={store_b}"), None).await;
    assert_eq!(v["status"], "committed");
    // An admin or analyst key cannot open a till.
    let mut c = app.browser();
    c.get("/till/login").await;
    c.post("/till/login", &[("key", &a.admin)]).await.assert_status(422).assert_contains("pos");
    c.post("/till/login", &[("key", "kop_nonsense")]).await.assert_status(422);
});

both!(revoking_the_key_closes_the_till, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t, "S1").await;
    let (id, key) = till_key(&app, &t, &store, None).await;
    let mut b = open_till(&app, &key).await;
    let (s, _) = app.api(reqwest::Method::DELETE, &t.admin, &format!("/api/v1/api-keys/{id}"), None).await;
    assert_eq!(s, 200);
    let p = b.get("/till").await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some("/till/login"));
    b.post("/till/lines", &[("name", "Milk"), ("quantity", "1"), ("price", "1")]).await.assert_status(401);
    let mut c = app.browser();
    c.get("/till/login").await;
    c.post("/till/login", &[("key", &key)]).await.assert_status(422);
});

both!(till_forms_need_the_csrf_token_and_logins_are_limited, |b0: TestApp| async move {
    let app = TestApp::with(b0.backend, |c| c.login_per_ip = 3).await;
    drop(b0);
    let t = app.tenant("Shop").await;
    let store = app.store(&t, "S1").await;
    let (_, key) = till_key(&app, &t, &store, None).await;
    let mut b = app.browser();
    b.get("/till/login").await;
    b.post_raw("/till/login", &[("key".to_owned(), key.clone())]).await.assert_status(403);
    let mut b = open_till(&app, &key).await;
    for path in ["/till/lines", "/till/checkout", "/till/member", "/till/refund", "/till/new", "/till/logout"] {
        b.post_raw(path, &[("name".to_owned(), "x".to_owned())]).await.assert_status(403);
    }
    b.get("/till").await.assert_status(200).assert_contains("No lines yet");
    // Wrong keys from one address: 3 attempts per window, then even the right key waits.
    let mut c = app.browser();
    c.get("/till/login").await;
    c.post("/till/login", &[("key", "kop_wrong")]).await.assert_status(422);
    c.post("/till/login", &[("key", "kop_wrong")]).await.assert_status(422);
    c.post("/till/login", &[("key", &key)]).await.assert_status(429);
});

// The basket total on the sale screen is the receipt's: a measured line is rounded half up
// to the kopeck, as the engine does (35.27 × 58.99 = 2 080.5773, so 2 080.58, not .57).
both!(the_basket_total_of_a_measured_line_is_the_receipts, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t, "S1").await;
    let (_, key) = till_key(&app, &t, &store, Some("T1")).await;
    let mut b = open_till(&app, &key).await;
    b.post("/till/lines", &[("sku", "FUEL95"), ("category", "fuel"), ("quantity", "35.27"), ("price", "58.99")]).await.assert_status(303);
    b.get("/till").await.assert_contains("data-testid=\"lines-total\">₽2,080.58<");
    b.post("/till/quote", &[("spend", "none")]).await.assert_status(303);
    b.get("/till").await.assert_contains("data-testid=\"quote-total\">₽2,080.58<");
    let body = json!({"receipt_id": "Q1", "store_id": store, "till_id": "T1",
        "items": [{"sku": "FUEL95", "category": "fuel", "quantity": "35.27", "unit_price_minor": 5899}]});
    let (s, q) = app.api(reqwest::Method::POST, &t.admin, "/api/v1/pos/quote", Some(body)).await;
    assert_eq!((s, q["total_minor"].as_i64()), (200, Some(208058)), "{q}");
});
