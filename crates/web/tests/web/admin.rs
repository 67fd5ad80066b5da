//! The admin console over HTTP: permissions of each role, tenant isolation, and each
//! screen doing what it says through the services.

use crate::both;
use crate::helpers::*;
use serde_json::json;

fn id_after<'a>(body: &'a str, prefix: &str) -> &'a str {
    let i = body.find(prefix).unwrap_or_else(|| panic!("{prefix} not in page")) + prefix.len();
    let rest = &body[i..];
    &rest[..rest.find('"').unwrap()]
}

/// The worked example R-000123 (docs/api.md), posted with an admin key: (store id, member id, receipt pk).
async fn worked_example(app: &TestApp, t: &Tenant) -> (String, String) {
    let store = app.store(t, "S1").await;
    let m = app.member(t, json!({"phone": "+79123456789", "name": "Ivan Petrov", "email": "ivan@example.com"})).await;
    let member = m["id"].as_str().unwrap().to_owned();
    let (s, v) = app
        .api(
            reqwest::Method::POST,
            &t.admin,
            &format!("/api/v1/members/{member}/adjustments"),
            Some(json!({"points": 1000, "reason": "welcome"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    app.checkout(
        t,
        json!({
            "receipt_id": "R-000123", "till_id": "T2", "store_id": store, "member": {"member_id": member},
            "items": [
                {"line_no": 1, "sku": "CD-1", "name": "Album", "category": "music", "quantity": 2, "unit_price_minor": 15000},
                {"line_no": 2, "sku": "FUEL95", "category": "fuel", "quantity": "35.27", "unit_price_minor": 5899, "total_minor": 208058},
                {"line_no": 3, "sku": "CIG", "category": "tobacco", "quantity": 1, "unit_price_minor": 25000}
            ],
            "redeem_points": 150
        }),
    )
    .await;
    (store, member)
}

both!(a_cashier_cannot_open_programme_settings_or_other_owner_screens, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let mut b = app.logged_in(&t, "cashier@shop.test", "cashier").await;
    b.get("/admin/programme").await.assert_status(403);
    b.post("/admin/programme", &[("currency", "USD")]).await.assert_status(403);
    b.post("/admin/programme/template", &[("template", "fuel")]).await.assert_status(403);
    b.get("/admin/stores").await.assert_status(403);
    b.post("/admin/stores", &[("code", "X"), ("name", "X")]).await.assert_status(403);
    b.get("/admin/staff").await.assert_status(403);
    b.get("/admin/dashboard/kpis.csv").await.assert_status(403);
    // The dashboard sends a cashier to the members page, and the menu shows only their screens.
    let p = b.get("/admin").await;
    assert_eq!(p.location.as_deref(), Some("/admin/members"));
    b.get("/admin/members").await.assert_status(200).assert_lacks("/admin/programme").assert_lacks("/admin/stores");
    // Nothing changed.
    let (_, prog) = app.api(reqwest::Method::GET, &t.admin, "/api/v1/program", None).await;
    assert_eq!(prog["version"], 1);
    assert_eq!(prog["currency"], "RUB");
});

both!(each_role_gets_its_permissions, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let (_, member) = worked_example(&app, &t).await;
    // An analyst reads everything and changes nothing.
    let mut analyst = app.logged_in(&t, "analyst@shop.test", "analyst").await;
    analyst.get("/admin").await.assert_status(200);
    analyst.get("/admin/programme").await.assert_status(200).assert_contains("disabled");
    analyst.post("/admin/programme", &[("currency", "RUB")]).await.assert_status(403);
    analyst.get(&format!("/admin/members/{member}")).await.assert_status(200).assert_contains("+79123456789").assert_lacks("/adjust");
    analyst.post(&format!("/admin/members/{member}/adjust"), &[("points", "5"), ("reason", "x")]).await.assert_status(403);
    // A marketer changes the programme and adjusts points, but no stores, keys or staff.
    let mut marketer = app.logged_in(&t, "marketer@shop.test", "marketer").await;
    marketer.get("/admin/stores").await.assert_status(403);
    marketer.get("/admin/staff").await.assert_status(403);
    marketer.get(&format!("/admin/members/{member}")).await.assert_status(200).assert_contains("/adjust");
    // A cashier sees members masked, as a till does.
    let mut cashier = app.logged_in(&t, "cashier@shop.test", "cashier").await;
    cashier.get(&format!("/admin/members/{member}")).await.assert_status(200).assert_contains("+7******6789").assert_lacks("+79123456789");
    cashier.post("/admin/members/search", &[("q", "Ivan")]).await.assert_status(200).assert_contains("card number, phone or email");
    cashier.post("/admin/members/search", &[("q", "8 912 345-67-89")]).await.assert_status(200).assert_contains(&member);
});

both!(tenant_a_staff_see_nothing_of_tenant_b, |app: TestApp| async move {
    let a = app.tenant("Shop A").await;
    let b_tenant = app.tenant("Shop B").await;
    let (b_store, b_member) = worked_example(&app, &b_tenant).await;
    let b_card = {
        let (_, m) = app.api(reqwest::Method::GET, &b_tenant.admin, &format!("/api/v1/members/{b_member}"), None).await;
        m["card_number"].as_str().unwrap().to_owned()
    };
    let mut bo = app.logged_in(&b_tenant, "owner@b.test", "owner").await;
    let receipts = bo.get("/admin/receipts").await;
    let b_receipt = id_after(&receipts.body, "href=\"/admin/receipts/").to_owned();
    let (s, key) =
        app.api(reqwest::Method::POST, &b_tenant.admin, "/api/v1/api-keys", Some(json!({"role": "pos", "store_id": b_store}))).await;
    assert_eq!(s, 201);
    let b_key_id = key["id"].as_str().unwrap().to_owned();

    let mut ao = app.logged_in(&a, "owner@a.test", "owner").await;
    ao.get(&format!("/admin/members/{b_member}")).await.assert_status(404);
    ao.post(&format!("/admin/members/{b_member}/adjust"), &[("points", "100"), ("reason", "steal")]).await.assert_status(404);
    ao.get(&format!("/admin/receipts/{b_receipt}")).await.assert_status(404);
    ao.post(&format!("/admin/receipts/{b_receipt}/refund"), &[("all", "on"), ("confirm", "on"), ("refund_id", "X")])
        .await
        .assert_status(404);
    ao.post(&format!("/admin/receipts/{b_receipt}/void"), &[("confirm", "on")]).await.assert_status(404);
    ao.post(&format!("/admin/stores/keys/{b_key_id}/revoke"), &[]).await.assert_status(404);
    ao.post("/admin/members/search", &[("q", &b_card)]).await.assert_status(200).assert_lacks(&b_member);
    ao.post("/admin/members/search", &[("q", "Ivan")]).await.assert_status(200).assert_lacks(&b_member);
    ao.post("/admin/receipts/search", &[("receipt_id", "R-000123")]).await.assert_status(200).assert_lacks(&b_receipt);
    let dash = ao.get("/admin").await;
    dash.assert_status(200);
    assert!(dash.body.contains("data-testid=\"kpi-members\">0<"), "tenant A has no members");
    ao.get("/admin/receipts").await.assert_lacks("R-000123");
    ao.get("/admin/stores").await.assert_lacks("S1");
    ao.get("/admin/staff").await.assert_lacks("owner@b.test");
    // B's key still works and B's member still has the points.
    let (s, _) = app.api(reqwest::Method::GET, key["key"].as_str().unwrap(), "/api/v1/program", None).await;
    assert_eq!(s, 200);
    let (_, bal) = app.api(reqwest::Method::GET, &b_tenant.admin, &format!("/api/v1/members/{b_member}/balance"), None).await;
    assert_eq!(bal["points"], 1098);
});

both!(programme_form_shows_validation_next_to_fields_and_saves_a_version, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let mut b = app.logged_in(&t, "owner@shop.test", "owner").await;
    let page = b.get("/admin/programme").await;
    page.assert_status(200).assert_contains("value=\"10.00\"").assert_contains("value=\"Silver\"");
    // Every field of the page, as the browser would send it, with three mistakes.
    let mut fields = form_fields(&page.body);
    set(&mut fields, "earn.unit_minor", "ten");
    set(&mut fields, "time_zone", "Mars/Base");
    set(&mut fields, "tiers[1].min_spend_minor", "0");
    let p = b.post("/admin/programme", &borrow(&fields)).await;
    p.assert_status(422);
    assert_field_error(&p.body, "earn.unit_minor", "Enter an amount");
    assert_field_error(&p.body, "time_zone", "Europe/Moscow");
    assert_field_error(&p.body, "tiers[1].min_spend_minor", "starts at the same spend");
    // Ranges are said in the form's units.
    let mut fields = form_fields(&page.body);
    set(&mut fields, "redeem.max_share_bp", "150");
    let p2 = b.post("/admin/programme", &borrow(&fields)).await;
    assert_field_error(&p2.body, "redeem.max_share_bp", "from 0% to 100%");
    // What was typed stays in the form.
    p.assert_contains("value=\"ten\"");
    let (_, prog) = app.api(reqwest::Method::GET, &t.admin, "/api/v1/program", None).await;
    assert_eq!(prog["version"], 1);
    // Correct values save a new version: 1 point per 20.00, 30 % max, a fourth tier.
    let mut fields = form_fields(&page.body);
    set(&mut fields, "earn.unit_minor", "20");
    set(&mut fields, "redeem.max_share_bp", "30");
    set(&mut fields, "expiry.policy", "rolling_days");
    set(&mut fields, "expiry.days", "365");
    set(&mut fields, "tiers[3].code", "platinum");
    set(&mut fields, "tiers[3].min_spend_minor", "100 000,00");
    set(&mut fields, "tiers[3].earn_multiplier_bp", "200");
    set(&mut fields, "tiers[3].discount_bp", "5");
    b.post("/admin/programme", &borrow(&fields)).await.assert_status(200).assert_contains("Saved");
    let (_, prog) = app.api(reqwest::Method::GET, &t.admin, "/api/v1/program", None).await;
    assert_eq!(prog["version"], 2);
    assert_eq!(prog["earn"]["unit_minor"], 2000);
    assert_eq!(prog["redeem"]["max_share_bp"], 3000);
    assert_eq!(prog["expiry"], json!({"policy": "rolling_days", "days": 365}));
    assert_eq!(
        prog["tiers"][3],
        json!({"code": "platinum", "name": "platinum", "min_spend_minor": 10000000, "earn_multiplier_bp": 20000, "discount_bp": 500})
    );
    // The same form again makes no new version.
    let page = b.get("/admin/programme").await;
    b.post("/admin/programme", &borrow(&form_fields(&page.body))).await.assert_status(200);
    let (_, prog) = app.api(reqwest::Method::GET, &t.admin, "/api/v1/program", None).await;
    assert_eq!(prog["version"], 2);
    // A template replaces the rules and keeps the currency and time zone.
    b.post("/admin/programme/template", &[("template", "discount")]).await.assert_status(200).assert_contains("3 %");
    let (_, prog) = app.api(reqwest::Method::GET, &t.admin, "/api/v1/program", None).await;
    assert_eq!(prog["version"], 3);
    assert_eq!(prog["tiers"][0]["discount_bp"], 300);
});

/// The name and value of every input and selected option of a page's programme form.
fn form_fields(body: &str) -> Vec<(String, String)> {
    let start = body.find("data-testid=\"programme-form\"").expect("form");
    let form = &body[start..body[start..].find("</form>").unwrap() + start];
    let mut out = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input ") {
        let tag = &rest[i..i + rest[i..].find('>').unwrap()];
        if let Some(n) = attr(tag, "name") {
            out.push((n, html_unescape(&attr(tag, "value").unwrap_or_default())));
        }
        rest = &rest[i + 1..];
    }
    let mut rest = form;
    while let Some(i) = rest.find("<select ") {
        let end = rest[i..].find("</select>").unwrap() + i;
        let sel = &rest[i..end];
        let name = attr(&sel[..sel.find('>').unwrap()], "name").unwrap();
        let value = sel
            .split("<option ")
            .skip(1)
            .find(|o| o.contains(" selected"))
            .and_then(|o| attr(&format!(" {o}"), "value"))
            .unwrap_or_default();
        out.push((name, value));
        rest = &rest[end..];
    }
    out
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let p = format!(" {name}=\"");
    let i = tag.find(&p)? + p.len();
    Some(tag[i..i + tag[i..].find('"')?].to_owned())
}

fn html_unescape(s: &str) -> String {
    s.replace("&#32;", " ")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn set(fields: &mut Vec<(String, String)>, k: &str, v: &str) {
    fields.retain(|(n, _)| n != k);
    fields.push((k.to_owned(), v.to_owned()));
}

fn borrow(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields.iter().filter(|(k, _)| k != "_csrf").map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[track_caller]
fn assert_field_error(body: &str, field: &str, text: &str) {
    let marker = format!("data-testid=\"error-{field}\">");
    let msg = match body.find(&marker) {
        Some(i) => &body[i + marker.len()..i + marker.len() + body[i + marker.len()..].find('<').unwrap()],
        None => {
            // Tier cells carry their error right after their input.
            let input = format!("data-testid=\"{field}\"");
            let i = body.find(&input).unwrap_or_else(|| panic!("no field {field}"));
            let e = body[i..].find("field-error\">").unwrap() + i + "field-error\">".len();
            &body[e..e + body[e..].find('<').unwrap()]
        }
    };
    let general = body.find("programme-error\">").map(|i| &body[i..i + 300]).unwrap_or("");
    assert!(msg.contains(text), "{field}: {msg:?} does not say {text:?} ({general})");
}

both!(stores_and_till_keys_work_against_the_pos_api, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let mut b = app.logged_in(&t, "owner@shop.test", "owner").await;
    b.get("/admin/stores").await.assert_status(200);
    b.post("/admin/stores", &[("code", ""), ("name", "Main"), ("lat", "95")])
        .await
        .assert_status(422)
        .assert_contains("short code")
        .assert_contains("-90 to 90");
    b.post(
        "/admin/stores",
        &[("code", "MSK-1"), ("name", "Tverskaya 1, Moscow"), ("time_zone", "Europe/Moscow"), ("lat", "55.76"), ("lon", "37.61")],
    )
    .await
    .assert_status(303);
    b.post("/admin/stores", &[("code", "MSK-1"), ("name", "Again")])
        .await
        .assert_status(422)
        .assert_contains("Another store has this code");
    let page = b.get("/admin/stores").await;
    page.assert_contains("Tverskaya 1, Moscow").assert_contains("55.76, 37.61");
    let store_id = id_after(&page.body, "<option value=\"").to_owned();
    let p = b.post("/admin/stores/keys", &[("store_id", &store_id), ("till_id", "T1"), ("label", "front till")]).await;
    p.assert_status(201);
    let key = id_after(&p.body, "data-testid=\"new-key-value\">");
    let key = key[..key.find('<').unwrap()].to_owned();
    assert!(key.starts_with("kop_"), "{key}");
    // The key works as a pos key of that store and till.
    let m = app.member(&t, json!({"phone": "+79990001122"})).await;
    let quote = json!({"receipt_id": "Q1", "member": {"card_number": m["card_number"]}, "items": [{"sku": "A", "quantity": 1, "unit_price_minor": 10000}]});
    let (s, v) = app.api(reqwest::Method::POST, &key, "/api/v1/pos/quote", Some(quote.clone())).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["till_id"], "T1");
    assert_eq!(v["store_id"], store_id.as_str());
    // Shown once: the list does not have it.
    b.get("/admin/stores").await.assert_lacks(&key).assert_contains("front till");
    // Revoked, it stops working.
    let page = b.get("/admin/stores").await;
    let key_id = id_after(&page.body, "action=\"/admin/stores/keys/").split('/').next().unwrap().to_owned();
    b.post(&format!("/admin/stores/keys/{key_id}/revoke"), &[]).await.assert_status(303);
    let (s, _) = app.api(reqwest::Method::POST, &key, "/api/v1/pos/quote", Some(quote)).await;
    assert_eq!(s, 401);
});

both!(members_search_by_post_member_page_and_adjustments, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let (_, member) = worked_example(&app, &t).await;
    let mut b = app.logged_in(&t, "owner@shop.test", "owner").await;
    for q in ["ivan@EXAMPLE.com", "8 (912) 345-67-89", "petrov"] {
        b.post("/admin/members/search", &[("q", q)]).await.assert_status(200).assert_contains(&format!("/admin/members/{member}"));
    }
    b.post("/admin/members/search", &[("q", "nobody")]).await.assert_contains("data-testid=\"no-members\"");
    let p = b.get(&format!("/admin/members/{member}")).await;
    p.assert_status(200)
        .assert_contains("data-testid=\"member-points\">1,098<")
        .assert_contains("R-000123")
        .assert_contains("welcome")
        .assert_contains("Bronze")
        .assert_contains("more to Silver");
    // The reason is required; an adjustment below zero is refused; nothing was written.
    b.post(&format!("/admin/members/{member}/adjust"), &[("points", "50"), ("reason", " ")])
        .await
        .assert_status(422)
        .assert_contains("Say why");
    b.post(&format!("/admin/members/{member}/adjust"), &[("points", "-5000"), ("reason", "oops")])
        .await
        .assert_status(422)
        .assert_contains("not have that many");
    // A good one, sent twice (a double click): applied once.
    let page = b.get(&format!("/admin/members/{member}")).await;
    let adj = id_after(&page.body, "name=\"adjustment_id\" value=\"").to_owned();
    for _ in 0..2 {
        b.post(
            &format!("/admin/members/{member}/adjust"),
            &[("points", "-98"), ("reason", "goodwill correction"), ("adjustment_id", &adj)],
        )
        .await
        .assert_status(303);
    }
    let (_, bal) = app.api(reqwest::Method::GET, &t.admin, &format!("/api/v1/members/{member}/balance"), None).await;
    assert_eq!(bal["points"], 1000);
    b.get(&format!("/admin/members/{member}")).await.assert_contains("goodwill correction");
    // The audit log names the staff member.
    let (_, audit) = app.api(reqwest::Method::GET, &t.admin, "/api/v1/audit", None).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "member.adjust" && e["actor"].as_str().unwrap().starts_with("staff:")),
        "{audit}"
    );
    // No personal data in the URLs the pages link to.
    assert!(!page.body.contains("href=\"/admin/members?"), "searches are POSTs");
});

both!(receipt_detail_refund_and_void, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let (store, member) = worked_example(&app, &t).await;
    let mut b = app.logged_in(&t, "cashier@shop.test", "cashier").await;
    let list = b.post("/admin/receipts/search", &[("receipt_id", "R-000123")]).await;
    let pk = id_after(&list.body, "href=\"/admin/receipts/").to_owned();
    let p = b.get(&format!("/admin/receipts/{pk}")).await;
    // Lines with the worked example's fiscal splits (docs/api.md, "Worked example: receipt R-000123"): 2 × 140.55 and 35.27 = 1,949.48.
    p.assert_status(200).assert_contains("2 × ₽140.55").assert_contains("35.27 = ₽1,949.48").assert_contains("₽2,480.58");
    // Without the confirmation nothing happens.
    b.post(&format!("/admin/receipts/{pk}/refund"), &[("qty_1", "1"), ("refund_id", "WEB-1")])
        .await
        .assert_status(422)
        .assert_contains("I confirm");
    b.post(&format!("/admin/receipts/{pk}/refund"), &[("confirm", "on"), ("refund_id", "WEB-1")])
        .await
        .assert_status(422)
        .assert_contains("at least one line");
    b.post(&format!("/admin/receipts/{pk}/refund"), &[("qty_1", "1"), ("confirm", "on"), ("refund_id", "WEB-1")]).await.assert_status(303);
    // The worked example's refund (docs/api.md, "Worked example: refund RF-1"): 140.55 back, balance 1093.
    let (_, bal) = app.api(reqwest::Method::GET, &t.admin, &format!("/api/v1/members/{member}/balance"), None).await;
    assert_eq!(bal["points"], 1093);
    let p = b.get(&format!("/admin/receipts/{pk}")).await;
    p.assert_contains("partly refunded").assert_contains("WEB-1");
    // A partly refunded receipt cannot be voided.
    b.post(&format!("/admin/receipts/{pk}/void"), &[("confirm", "on")]).await.assert_status(409);
    // Another receipt is voided exactly.
    app.checkout(
        &t,
        json!({"receipt_id": "R-2", "store_id": store, "member": {"member_id": member}, "items": [{"sku": "A", "quantity": 1, "unit_price_minor": 50000}]}),
    )
    .await;
    let list = b.post("/admin/receipts/search", &[("receipt_id", "R-2")]).await;
    let pk2 = id_after(&list.body, "href=\"/admin/receipts/").to_owned();
    b.post(&format!("/admin/receipts/{pk2}/void"), &[("confirm", "on")]).await.assert_status(303);
    b.get(&format!("/admin/receipts/{pk2}")).await.assert_contains("voided");
    let (_, bal) = app.api(reqwest::Method::GET, &t.admin, &format!("/api/v1/members/{member}/balance"), None).await;
    assert_eq!(bal["points"], 1093);
    // An analyst sees receipts but has no refund or void buttons, and is refused if it tries.
    let mut analyst = app.logged_in(&t, "analyst@shop.test", "analyst").await;
    analyst.get(&format!("/admin/receipts/{pk}")).await.assert_status(200).assert_lacks("data-testid=\"refund\"");
    analyst.post(&format!("/admin/receipts/{pk}/refund"), &[("all", "on"), ("confirm", "on"), ("refund_id", "X")]).await.assert_status(403);
});

both!(dashboard_kpis_and_csv, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let (store, _) = worked_example(&app, &t).await;
    // An anonymous receipt of 100.00.
    app.checkout(&t, json!({"receipt_id": "ANON-1", "store_id": store, "items": [{"sku": "A", "quantity": 1, "unit_price_minor": 10000}]}))
        .await;
    let mut b = app.logged_in(&t, "analyst@shop.test", "analyst").await;
    let p = b.get("/admin").await;
    p.assert_status(200);
    let kpi = |name: &str| {
        let m = format!("data-testid=\"{name}\">");
        let i = p.body.find(&m).unwrap() + m.len();
        p.body[i..i + p.body[i..].find('<').unwrap()].to_owned()
    };
    assert_eq!(kpi("kpi-members"), "1");
    assert_eq!(kpi("kpi-active-30"), "1");
    // 248 earned; 150 spent; the 1000 welcome points are an adjustment.
    assert_eq!(kpi("kpi-issued"), "248");
    assert_eq!(kpi("kpi-spent"), "150");
    assert_eq!(kpi("kpi-expired"), "0");
    // 1098 points × 1.00.
    assert_eq!(kpi("kpi-liability"), "₽1,098.00");
    assert_eq!(kpi("kpi-avg-member"), "₽2,480.58");
    assert_eq!(kpi("kpi-avg-anonymous"), "₽100.00");
    p.assert_contains("60.48%").assert_contains("chart-receipts").assert_contains("uPlot.iife.min.js");
    let csv = b.get("/admin/dashboard/kpis.csv").await;
    csv.assert_status(200);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.body.contains("Points issued,248"), "{}", csv.body);
    assert!(csv.body.contains("Outstanding liability (RUB),1098.00"), "{}", csv.body);
    let daily = b.get("/admin/dashboard/daily.csv").await;
    let lines: Vec<&str> = daily.body.lines().collect();
    assert_eq!(lines.len(), 31, "a header and 30 days");
    assert!(lines[30].ends_with(",1,1,248,150,0"), "today: {}", lines[30]);
    // In Russian, with the Russian money format.
    b.accept_language = Some("ru".into());
    b.get("/admin").await.assert_contains("1\u{a0}098,00\u{a0}₽").assert_contains("Обязательства по баллам");
});

both!(owners_manage_staff_but_never_the_last_owner, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let mut b = app.logged_in(&t, "owner@shop.test", "owner").await;
    let p = b.post("/admin/staff", &[("email", "Kassa@Shop.test"), ("role", "cashier")]).await;
    p.assert_status(201).assert_contains("/admin/login/link/").assert_contains("kassa@shop.test");
    b.post("/admin/staff", &[("email", "kassa@shop.test"), ("role", "cashier")])
        .await
        .assert_status(422)
        .assert_contains("already has an account");
    // The link logs the cashier in, to set a password.
    let i = p.body.find(" id=\"staff-link\">").expect("link shown") + " id=\"staff-link\">".len();
    let link = html_unescape(&p.body[i..i + p.body[i..].find('<').unwrap()]);
    let link = link.strip_prefix(&app.url).unwrap_or_else(|| panic!("{link}")).to_owned();
    let mut c = app.browser();
    c.get(&link).await;
    let r = c.post(&link, &[]).await;
    assert_eq!(r.location.as_deref(), Some("/admin/password"));
    // The owner cannot demote or disable themself, being the last owner.
    let page = b.get("/admin/staff").await;
    let own_id = {
        let mut c = app.state.db.pool().acquire().await.unwrap();
        kopilka_store::web::staff_by_email_any_tenant(&mut c, "owner@shop.test", 5).await.unwrap()[0].id.clone()
    };
    assert!(!page.body.contains(&format!("/admin/staff/{own_id}/")));
    b.post(&format!("/admin/staff/{own_id}/disable"), &[]).await.assert_status(422);
    // Disabling the cashier ends their session at once.
    let kassa_id = {
        let mut c = app.state.db.pool().acquire().await.unwrap();
        kopilka_store::web::staff_by_email_any_tenant(&mut c, "kassa@shop.test", 5).await.unwrap()[0].id.clone()
    };
    c.get("/admin/password").await.assert_status(200);
    b.post(&format!("/admin/staff/{kassa_id}/disable"), &[]).await.assert_status(303);
    c.get("/admin/password").await.assert_status(303);
});

both!(two_owners_demoting_each_other_at_once_leave_one_owner, |app: TestApp| async move {
    // Each owner's check that another owner remains must see the other's change: on
    // PostgreSQL both could count two owners and both succeed, leaving none.
    for round in 0..8 {
        let t = app.tenant(&format!("Shop {round}")).await;
        let a_id = app.staff(&t, &format!("a{round}@shop.test"), "owner", "a good password").await;
        let b_id = app.staff(&t, &format!("b{round}@shop.test"), "owner", "a good password").await;
        let (mut a, mut b) = (app.browser(), app.browser());
        a.login(&format!("a{round}@shop.test"), "a good password").await;
        b.login(&format!("b{round}@shop.test"), "a good password").await;
        let (to_b, to_a) = (format!("/admin/staff/{b_id}/role"), format!("/admin/staff/{a_id}/role"));
        let (pa, pb) = tokio::join!(a.post(&to_b, &[("role", "analyst")]), b.post(&to_a, &[("role", "analyst")]));
        let mut c = app.state.db.pool().acquire().await.unwrap();
        let owners = kopilka_store::web::count_owners(&mut c, &t.id).await.unwrap();
        assert_eq!(owners, 1, "round {round}: {} and {}", pa.status, pb.status);
        // One change went through; the other was refused (the last owner stays) or came
        // from a session the first had just ended.
        let statuses = [pa.status, pb.status];
        assert!(statuses.contains(&303), "{statuses:?}");
    }
});
