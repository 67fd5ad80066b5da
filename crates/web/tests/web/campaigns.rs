//! The admin console's campaigns and coupons: the form builds the campaign the POS then
//! applies, the service's validation is shown next to the fields, coupons round trip
//! through CSV, and roles, tenants and CSRF hold.

use crate::both;
use crate::helpers::*;
use serde_json::{Value, json};

fn campaign_id(location: Option<&str>) -> String {
    let l = location.expect("a redirect");
    l.strip_prefix("/admin/campaigns/").unwrap_or_else(|| panic!("{l}")).to_owned()
}

/// A quote of one 100.00 line of category `shoes` at `store`: the discount it gets.
async fn quote_discount(app: &TestApp, t: &Tenant, store: &str, coupon: Option<&str>) -> Value {
    let mut body = json!({"receipt_id": "Q-1", "store_id": store,
        "items": [{"line_no": 1, "sku": "SH-1", "category": "shoes", "quantity": 1, "unit_price_minor": 10000}]});
    if let Some(c) = coupon {
        body["coupons"] = json!([c]);
    }
    let (s, v) = app.api(reqwest::Method::POST, &t.admin, "/api/v1/pos/quote", Some(body)).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn campaigns_of(app: &TestApp, t: &Tenant, archived: bool) -> Vec<Value> {
    let (s, v) = app.api(reqwest::Method::GET, &t.admin, &format!("/api/v1/campaigns?archived={archived}"), None).await;
    assert_eq!(s, 200, "{v}");
    v["campaigns"].as_array().unwrap().clone()
}

both!(a_campaign_made_in_the_form_applies_at_the_till_until_archived, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t, "S1").await;
    let mut b = app.logged_in(&t, "owner@shop.test", "owner").await;
    b.get("/admin/campaigns").await.assert_status(200).assert_contains("/admin/campaigns/new");
    b.get("/admin/campaigns/new").await.assert_status(200);
    let p = b
        .post(
            "/admin/campaigns/new",
            &[
                ("name", "Shoe week"),
                ("code", "SHOES10"),
                ("priority", "100"),
                ("starts_at", "2020-01-01T00:00"),
                ("min_total", "50"),
                ("categories", "shoes"),
                ("effect", "discount_percent"),
                ("effect_value", "10"),
                ("effect_categories", "shoes"),
                ("budget.uses", "100"),
                ("advanced", ""),
            ],
        )
        .await;
    p.assert_status(303);
    let id = campaign_id(p.location.as_deref());
    let v = quote_discount(&app, &t, &store, None).await;
    assert_eq!(v["discount_minor"], 1000, "{v}");
    assert_eq!(v["applied"][0]["code"], "SHOES10", "{v}");
    // The stored JSON is what the form said.
    let api = campaigns_of(&app, &t, false).await;
    assert_eq!(api.len(), 1);
    assert_eq!(
        api[0]["conditions"],
        json!([{"type": "receipt_total", "min_minor": 5000}, {"type": "min_quantity", "min": 1, "categories": ["shoes"], "skus": []}])
    );
    assert_eq!(api[0]["budget"], json!({"uses": 100}));
    // The list and the form show it.
    b.get("/admin/campaigns").await.assert_status(200).assert_contains("Shoe week").assert_contains("−10");
    let page = b.get(&format!("/admin/campaigns/{id}")).await;
    page.assert_status(200).assert_contains("value=\"10\"").assert_contains("value=\"50.00\"");
    // Edit: 25 % now.
    let p = b
        .post(
            &format!("/admin/campaigns/{id}"),
            &[
                ("name", "Shoe week"),
                ("code", "SHOES10"),
                ("priority", "100"),
                ("effect", "discount_percent"),
                ("effect_value", "25"),
                ("effect_categories", "shoes"),
            ],
        )
        .await;
    p.assert_status(303);
    assert_eq!(quote_discount(&app, &t, &store, None).await["discount_minor"], 2500);
    // Archive: it no longer applies, and the list shows it archived.
    b.get(&format!("/admin/campaigns/{id}")).await;
    b.post(&format!("/admin/campaigns/{id}/archive"), &[]).await.assert_status(303);
    assert_eq!(quote_discount(&app, &t, &store, None).await["discount_minor"], 0);
    assert_eq!(campaigns_of(&app, &t, true).await.len(), 1);
    let list = b.get("/admin/campaigns").await;
    let at = list.body.find("campaigns-archived").expect("archived table");
    assert!(list.body[at..].contains("Shoe week"));
    assert!(!list.body[..at].contains("Shoe week"), "an archived campaign listed as active");
    // The advanced box: a CEL condition and a description survive an edit of the form.
    let p = b
        .post(
            "/admin/campaigns/new",
            &[
                ("name", "Bonus"),
                ("code", "BONUS"),
                ("effect", "bonus_points"),
                ("effect_value", "50"),
                ("advanced", r#"{"description": "fifty", "cel": {"expression": "receipt.total_minor >= 100", "reason": "small"}}"#),
            ],
        )
        .await;
    p.assert_status(303);
    let id = campaign_id(p.location.as_deref());
    let page = b.get(&format!("/admin/campaigns/{id}")).await;
    page.assert_contains("receipt.total_minor").assert_contains("fifty");
    // The live one is listed as active only.
    let list = b.get("/admin/campaigns").await;
    let at = list.body.find("campaigns-archived").expect("archived table");
    assert!(list.body[..at].contains("BONUS") && !list.body[at..].contains("BONUS"), "a live campaign listed as archived");
});

both!(a_bad_campaign_shows_the_errors_next_to_the_fields_and_writes_nothing, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let mut b = app.logged_in(&t, "marketer@shop.test", "marketer").await;
    b.get("/admin/campaigns/new").await;
    let base = [("name", "Bad"), ("code", "BAD"), ("effect", "discount_percent"), ("effect_value", "10")];
    // Ends before it starts.
    let mut f = base.to_vec();
    f.extend([("starts_at", "2026-12-01T00:00"), ("ends_at", "2026-11-01T00:00")]);
    let p = b.post("/admin/campaigns/new", &f).await;
    p.assert_status(422);
    let err = &p.body[p.body.find("data-testid=\"error-ends_at\"").unwrap()..];
    assert!(err[..200].contains("after"), "{}", &err[..200]);
    // A CEL expression that does not compile: the message is next to the JSON box.
    let mut f = base.to_vec();
    f.push(("advanced", r#"{"cel": {"expression": "receipt.total_minor >>> 1", "reason": "x"}}"#));
    let p = b.post("/admin/campaigns/new", &f).await;
    p.assert_status(422).assert_contains("data-testid=\"advanced-errors\"").assert_contains("cel.expression");
    // Not JSON at all, a percent that is not one, and a discount over 100 %.
    let mut f = base.to_vec();
    f.push(("advanced", "{oops"));
    b.post("/admin/campaigns/new", &f).await.assert_status(422).assert_contains("not valid JSON");
    let p =
        b.post("/admin/campaigns/new", &[("name", "Bad"), ("code", "BAD"), ("effect", "discount_percent"), ("effect_value", "ten")]).await;
    p.assert_status(422);
    let p =
        b.post("/admin/campaigns/new", &[("name", "Bad"), ("code", "BAD"), ("effect", "discount_percent"), ("effect_value", "150")]).await;
    p.assert_status(422);
    let err = &p.body[p.body.find("data-testid=\"error-effect_value\"").unwrap()..];
    assert!(err.find("</p>").unwrap() > 40, "no message next to the value: {}", &err[..200]);
    // No name: the message is next to the name.
    let p = b.post("/admin/campaigns/new", &[("code", "BAD"), ("effect", "bonus_points"), ("effect_value", "5")]).await;
    p.assert_status(422);
    let err = &p.body[p.body.find("data-testid=\"error-name\"").unwrap()..];
    assert!(err.find("</p>").unwrap() > 40, "{}", &err[..200]);
    assert!(campaigns_of(&app, &t, false).await.is_empty());
    assert!(campaigns_of(&app, &t, true).await.is_empty());
});

both!(coupons_generate_disable_export_and_import, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t, "S1").await;
    let mut b = app.logged_in(&t, "owner@shop.test", "owner").await;
    b.get("/admin/campaigns/new").await;
    let p = b
        .post(
            "/admin/campaigns/new",
            &[
                ("name", "Spring"),
                ("code", "SPRING"),
                ("effect", "discount_percent"),
                ("effect_value", "10"),
                ("advanced", r#"{"requires_coupon": true}"#),
            ],
        )
        .await;
    p.assert_status(303);
    let id = campaign_id(p.location.as_deref());
    b.get(&format!("/admin/campaigns/{id}")).await.assert_status(200).assert_contains("id=\"coupons\"");
    // Generate 3 codes.
    b.post(&format!("/admin/campaigns/{id}/coupons"), &[("count", "3"), ("prefix", "sp-")]).await.assert_status(303);
    b.post(&format!("/admin/campaigns/{id}/coupons"), &[("count", "0")]).await.assert_status(422).assert_contains("1 to 10000");
    let csv = b.get(&format!("/admin/campaigns/{id}/coupons.csv")).await;
    csv.assert_status(200);
    assert!(csv.headers["content-disposition"].to_str().unwrap().contains("attachment"));
    let codes: Vec<String> = csv.body.lines().skip(1).map(|l| l.split(',').next().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 3, "{}", csv.body);
    assert!(codes.iter().all(|c| c.starts_with("SP-")), "{codes:?}");
    // A code works at the till; disabled, it does not.
    assert_eq!(quote_discount(&app, &t, &store, Some(&codes[0])).await["discount_minor"], 1000);
    let page = b.get(&format!("/admin/campaigns/{id}")).await;
    page.assert_contains(&codes[0]);
    let (_, list) = app.api(reqwest::Method::GET, &t.admin, &format!("/api/v1/campaigns/{id}/coupons"), None).await;
    let coupon =
        list["coupons"].as_array().unwrap().iter().find(|k| k["code"] == codes[0].as_str()).unwrap()["id"].as_str().unwrap().to_owned();
    b.post(&format!("/admin/campaigns/{id}/coupons/{coupon}/disable"), &[]).await.assert_status(303);
    assert_eq!(quote_discount(&app, &t, &store, Some(&codes[0])).await["discount_minor"], 0);
    let csv = b.get(&format!("/admin/campaigns/{id}/coupons.csv")).await;
    assert!(csv.body.contains(&format!("{},", codes[0])) && csv.body.contains("disabled"), "{}", csv.body);
    // Import: a file with a bad row imports nothing and lists the row.
    b.get(&format!("/admin/campaigns/{id}")).await;
    let p = b.post(&format!("/admin/campaigns/{id}/coupons/import"), &[("csv", "code,max_uses\nIMP-1,1\nx,1\nIMP-3,many\n")]).await;
    p.assert_status(422).assert_contains("data-testid=\"import-errors\"").assert_contains("3").assert_contains("4");
    assert_eq!(b.get(&format!("/admin/campaigns/{id}/coupons.csv")).await.body.lines().count(), 4);
    // A code that exists already: nothing either.
    let p = b.post(&format!("/admin/campaigns/{id}/coupons/import"), &[("csv", &format!("code\nIMP-1\n{}\n", codes[1]))]).await;
    p.assert_status(422);
    assert_eq!(b.get(&format!("/admin/campaigns/{id}/coupons.csv")).await.body.lines().count(), 4);
    // A good file.
    b.post(&format!("/admin/campaigns/{id}/coupons/import"), &[("csv", "code,max_uses\nIMP-1,2\nIMP-2,\n")]).await.assert_status(303);
    let csv = b.get(&format!("/admin/campaigns/{id}/coupons.csv")).await;
    assert_eq!(csv.body.lines().count(), 6, "{}", csv.body);
    assert_eq!(quote_discount(&app, &t, &store, Some("imp-2")).await["discount_minor"], 1000);
    // A campaign without coupons takes none.
    let p =
        b.post("/admin/campaigns/new", &[("name", "Plain"), ("code", "PLAIN"), ("effect", "bonus_points"), ("effect_value", "5")]).await;
    let plain = campaign_id(p.location.as_deref());
    b.get(&format!("/admin/campaigns/{plain}")).await.assert_lacks("id=\"coupons\"");
    b.post(&format!("/admin/campaigns/{plain}/coupons"), &[("count", "2")]).await.assert_status(422).assert_contains("requires_coupon");
});

both!(campaign_roles_tenants_and_csrf, |app: TestApp| async move {
    let a = app.tenant("Shop A").await;
    let bt = app.tenant("Shop B").await;
    let (s, v) = app
        .api(
            reqwest::Method::POST,
            &bt.admin,
            "/api/v1/campaigns",
            Some(json!({"code": "B1", "name": "Bravo deal", "requires_coupon": true,
            "effects": [{"type": "bonus_points", "points": 5}]})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let theirs = v["id"].as_str().unwrap().to_owned();
    let (s, v) =
        app.api(reqwest::Method::POST, &bt.admin, &format!("/api/v1/campaigns/{theirs}/coupons"), Some(json!({"code": "BCODE"}))).await;
    assert_eq!(s, 201, "{v}");
    let their_coupon = v["coupons"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = app
        .api(
            reqwest::Method::POST,
            &a.admin,
            "/api/v1/campaigns",
            Some(json!({"code": "A1", "name": "Alpha deal", "effects": [{"type": "bonus_points", "points": 5}]})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let ours = v["id"].as_str().unwrap().to_owned();

    // A cashier sees nothing of campaigns.
    let mut cashier = app.logged_in(&a, "cashier@a.test", "cashier").await;
    cashier.get("/admin/campaigns").await.assert_status(403);
    cashier.get(&format!("/admin/campaigns/{ours}")).await.assert_status(403);
    cashier.post("/admin/campaigns/new", &[("name", "X"), ("code", "X1")]).await.assert_status(403);
    cashier.get("/admin/members").await.assert_lacks("/admin/campaigns");
    // An analyst reads and changes nothing.
    let mut analyst = app.logged_in(&a, "analyst@a.test", "analyst").await;
    analyst.get("/admin/campaigns").await.assert_status(200).assert_contains("Alpha deal").assert_lacks("/admin/campaigns/new\"");
    analyst.get(&format!("/admin/campaigns/{ours}")).await.assert_status(200).assert_contains("disabled").assert_lacks("save-campaign");
    analyst.get("/admin/campaigns/new").await.assert_status(403);
    analyst
        .post("/admin/campaigns/new", &[("name", "X"), ("code", "X1"), ("effect", "bonus_points"), ("effect_value", "1")])
        .await
        .assert_status(403);
    analyst.post(&format!("/admin/campaigns/{ours}/archive"), &[]).await.assert_status(403);
    analyst.get(&format!("/admin/campaigns/{ours}/coupons.csv")).await.assert_status(200);
    assert_eq!(campaigns_of(&app, &a, false).await.len(), 1);

    // Tenant A's owner, with B's ids: 404 everywhere, and B's campaign is untouched.
    let mut owner = app.logged_in(&a, "owner@a.test", "owner").await;
    owner.get("/admin/campaigns").await.assert_lacks("Bravo deal");
    owner.get(&format!("/admin/campaigns/{theirs}")).await.assert_status(404);
    owner.get(&format!("/admin/campaigns/{theirs}/coupons.csv")).await.assert_status(404);
    owner
        .post(&format!("/admin/campaigns/{theirs}"), &[("name", "Mine"), ("code", "B1"), ("effect", "bonus_points"), ("effect_value", "1")])
        .await
        .assert_status(404);
    owner.post(&format!("/admin/campaigns/{theirs}/archive"), &[]).await.assert_status(404);
    owner.post(&format!("/admin/campaigns/{theirs}/coupons"), &[("count", "2")]).await.assert_status(404);
    owner.post(&format!("/admin/campaigns/{theirs}/coupons/import"), &[("csv", "code\nSTOLEN\n")]).await.assert_status(404);
    owner.post(&format!("/admin/campaigns/{theirs}/coupons/{their_coupon}/disable"), &[]).await.assert_status(404);
    owner.post(&format!("/admin/campaigns/{ours}/coupons/{their_coupon}/disable"), &[]).await.assert_status(404);
    let b_list = campaigns_of(&app, &bt, false).await;
    assert_eq!((b_list.len(), b_list[0]["name"].as_str()), (1, Some("Bravo deal")));
    let (_, k) = app.api(reqwest::Method::GET, &bt.admin, &format!("/api/v1/campaigns/{theirs}/coupons"), None).await;
    assert_eq!(k["coupons"].as_array().unwrap().len(), 1);
    assert_eq!(k["coupons"][0]["status"], "active");

    // Without the CSRF token nothing is written.
    let p = owner
        .post_raw(
            "/admin/campaigns/new",
            &[
                ("name".into(), "No token".into()),
                ("code".into(), "NT".into()),
                ("effect".into(), "bonus_points".into()),
                ("effect_value".into(), "1".into()),
            ],
        )
        .await;
    p.assert_status(403);
    owner.post_raw(&format!("/admin/campaigns/{ours}/archive"), &[]).await.assert_status(403);
    assert_eq!(campaigns_of(&app, &a, false).await.len(), 1);
});
