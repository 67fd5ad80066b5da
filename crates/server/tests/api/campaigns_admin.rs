//! The campaign engine's admin surface: campaigns (create, read, replace, archive, with
//! compile-on-save validation), roles and tenant isolation, coupons (shared, generated,
//! CSV import and export, paging, disabling, validation and its brute-force limit),
//! member segments and personal offers, action events and custom event types, and the
//! product catalogue.

use crate::both;
use crate::helpers::*;
use serde_json::{Value, json};
use std::collections::HashSet;

const ALPHABET: &str = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";

async fn create(app: &TestApp, key: &str, body: Value) -> (u16, Value) {
    app.post(key, "/api/v1/campaigns", body).await
}

/// Create a campaign and return its id.
async fn campaign_id(app: &TestApp, key: &str, body: Value) -> String {
    let (s, v) = create(app, key, body).await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().expect("campaign id").to_owned()
}

/// A campaign that takes coupons: 10 % off.
async fn coupon_campaign(app: &TestApp, key: &str, code: &str) -> String {
    campaign_id(
        app,
        key,
        json!({"code": code, "name": format!("{code} promo"), "requires_coupon": true,
               "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
    )
    .await
}

async fn coupons(app: &TestApp, key: &str, campaign: &str, body: Value) -> (u16, Value) {
    app.post(key, &format!("/api/v1/campaigns/{campaign}/coupons"), body).await
}

async fn validate(app: &TestApp, key: &str, body: Value) -> (u16, Value) {
    app.post(key, "/api/v1/coupons/validate", body).await
}

async fn post_csv(app: &TestApp, key: &str, path: &str, csv: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(format!("{}{path}", app.url))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    assert!(status < 500, "{path} answered {status}: {v}");
    (status, v)
}

/// Every coupon of a campaign, following the cursor with pages of `limit`.
async fn all_coupons(app: &TestApp, key: &str, campaign: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut pages = 0;
    let mut path = format!("/api/v1/campaigns/{campaign}/coupons?limit={limit}");
    loop {
        let (s, v) = app.get(key, &path).await;
        assert_eq!(s, 200, "{v}");
        pages += 1;
        let page = v["coupons"].as_array().expect("coupons");
        assert!(page.len() <= limit);
        out.extend(page.iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/campaigns/{campaign}/coupons?limit={limit}&cursor={c}"),
            None => return (out, pages),
        }
        assert!(pages < 1000, "cursor does not end");
    }
}

fn codes(list: &[Value]) -> Vec<String> {
    list.iter().map(|c| c["code"].as_str().expect("code").to_owned()).collect()
}

#[track_caller]
fn assert_field_contains(got: &(u16, Value), field: &str, text: &str) {
    assert_field_error(got, field);
    let msg = got.1["error"]["fields"][field].as_str().unwrap_or_default();
    assert!(msg.contains(text), "{field}: expected {text:?} in {msg:?}: {}", got.1);
}

both!(campaign_crud_and_validation, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let body = json!({
        "code": "DOUBLE-COFFEE", "name": "Double points on coffee",
        "conditions": [{"type": "tier", "in": ["gold"]}, {"type": "weekday", "days": ["sat", "sun"]}],
        "effects": [{"type": "points_multiplier", "multiplier_bp": 20000, "target": {"categories": ["Coffee"]}}],
        "budget": {"points": 100000}
    });
    let (s, c) = create(&app, &t.admin, body.clone()).await;
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().expect("id").to_owned();
    assert_eq!(c["code"], "DOUBLE-COFFEE");
    assert_eq!(c["archived"], false);
    assert_eq!(c["status"], "active");
    assert_eq!(c["trigger"], "receipt");
    assert_eq!(c["priority"], 100, "default priority");
    assert_eq!(c["effects"][0]["target"]["categories"], json!(["coffee"]), "categories are lower-cased");
    assert_eq!(c["usage"], json!({"points": 0, "money_minor": 0, "uses": 0}));
    assert_eq!(c["budget"], json!({"points": 100000}));

    let (s, got) = app.get(&t.admin, &format!("/api/v1/campaigns/{id}")).await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got, c);
    let (_, list) = app.get(&t.admin, "/api/v1/campaigns").await;
    assert_eq!(list["campaigns"].as_array().map(Vec::len), Some(1), "{list}");

    // PUT: the GET answer sent back with a change (read-only fields are ignored).
    let mut changed = got.clone();
    changed["name"] = json!("Double points on all coffee");
    changed["priority"] = json!(200);
    let (s, v) = app.put(&t.admin, &format!("/api/v1/campaigns/{id}"), changed).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["id"].as_str(), v["name"].as_str(), v["priority"].as_i64()),
        (Some(id.as_str()), Some("Double points on all coffee"), Some(200))
    );
    assert_eq!(app.get(&t.admin, &format!("/api/v1/campaigns/{id}")).await.1["name"], "Double points on all coffee");

    // Shape errors.
    let mut unknown = body.clone();
    unknown["colour"] = json!("red");
    unknown["code"] = json!("OTHER");
    let got = create(&app, &t.admin, unknown).await;
    assert_error(&got, 422, "validation_error");
    assert!(got.1["error"].to_string().contains("colour"), "the unknown field is named: {}", got.1);
    let got = create(&app, &t.admin, json!({"code": "X1", "name": "X", "effects": [{"type": "bonus_points", "points": 1.5}]})).await;
    assert_error(&got, 422, "validation_error");
    assert!(got.1["error"]["fields"].as_object().unwrap().keys().any(|k| k.starts_with("effects[0]")), "{}", got.1);
    assert!(got.1["error"].to_string().contains("integer"), "{}", got.1);
    let got =
        create(&app, &t.admin, json!({"code": "X1", "name": "X", "effects": [{"type": "bonus_points", "points": 10, "extra": 1}]})).await;
    assert_error(&got, 422, "validation_error");
    let got = create(&app, &t.admin, json!({"code": "X1", "name": "X", "effects": [{"type": "teleport"}]})).await;
    assert_error(&got, 422, "validation_error");
    assert_field_error(&create(&app, &t.admin, json!({"code": "X1", "name": "X", "effects": []})).await, "effects");
    assert_field_error(
        &create(&app, &t.admin, json!({"code": "X 1", "name": "X", "effects": [{"type": "bonus_points", "points": 1}]})).await,
        "code",
    );
    assert_error(
        &create(&app, &t.admin, json!({"name": "X", "effects": [{"type": "bonus_points", "points": 1}]})).await,
        422,
        "validation_error",
    );
    assert_error(&app.post_raw(&t.admin, "/api/v1/campaigns", "{not json").await, 400, "invalid_json");

    // A CEL expression that does not compile: the compiler's message at cel.expression.
    let got = create(
        &app,
        &t.admin,
        json!({"code": "CEL1", "name": "CEL", "cel": {"expression": "receipt.total_minor >= (", "reason": "never"},
               "effects": [{"type": "bonus_points", "points": 10}]}),
    )
    .await;
    assert_field_contains(&got, "cel.expression", "does not compile");
    let msg = got.1["error"]["fields"]["cel.expression"].as_str().unwrap();
    assert!(msg.len() > "does not compile: ".len(), "the compiler's own message follows: {msg}");
    // A compiling one needs a reason.
    let got = create(
        &app,
        &t.admin,
        json!({"code": "CEL2", "name": "CEL", "cel": {"expression": "true", "reason": " "}, "effects": [{"type": "bonus_points", "points": 10}]}),
    )
    .await;
    assert_field_error(&got, "cel.reason");
    let (s, v) = create(
        &app,
        &t.admin,
        json!({"code": "CEL3", "name": "CEL", "cel": {"expression": "1 + 1 == 2", "reason": {"en": "no", "ru": "нет"}},
               "effects": [{"type": "bonus_points", "points": 10}]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    // Each effect's ranges.
    let cases = [
        (json!({"type": "discount_percent", "percent_bp": 0}), "effects[0].percent_bp"),
        (json!({"type": "discount_percent", "percent_bp": 10001}), "effects[0].percent_bp"),
        (json!({"type": "discount_fixed", "amount_minor": 0}), "effects[0].amount_minor"),
        (json!({"type": "discount_fixed", "amount_minor": 1_000_000_000_001_i64}), "effects[0].amount_minor"),
        (json!({"type": "points_multiplier", "multiplier_bp": 10000}), "effects[0].multiplier_bp"),
        (json!({"type": "points_multiplier", "multiplier_bp": 1_000_001}), "effects[0].multiplier_bp"),
        (json!({"type": "bonus_points", "points": 0}), "effects[0].points"),
        (json!({"type": "bonus_points", "points": -5}), "effects[0].points"),
        (json!({"type": "free_item", "quantity": 0, "target": {"skus": ["A"]}}), "effects[0].quantity"),
        (json!({"type": "free_item", "target": {}}), "effects[0].target"),
        (json!({"type": "cashback", "percent_bp": 0}), "effects[0].percent_bp"),
        (json!({"type": "cashback", "percent_bp": 500, "amount_minor": 100}), "effects[0].percent_bp"),
        (json!({"type": "cashback"}), "effects[0].percent_bp"),
        (json!({"type": "cashback", "amount_minor": 0}), "effects[0].amount_minor"),
        (json!({"type": "stamp_card", "every": 1, "target": {"categories": ["coffee"]}}), "effects[0].every"),
        (json!({"type": "stamp_card", "every": 10, "target": {}}), "effects[0].target"),
    ];
    for (effect, field) in cases {
        let got = create(&app, &t.admin, json!({"code": "RANGE", "name": "Range", "effects": [effect.clone()]})).await;
        assert_field_error(&got, field);
    }
    // Budgets, conditions and event rules.
    assert_field_error(
        &create(
            &app,
            &t.admin,
            json!({"code": "B", "name": "B", "budget": {"uses": 0}, "effects": [{"type": "bonus_points", "points": 1}]}),
        )
        .await,
        "budget.uses",
    );
    assert_field_error(
        &create(
            &app,
            &t.admin,
            json!({"code": "B", "name": "B", "conditions": [{"type": "weekday", "days": ["someday"]}],
                                       "effects": [{"type": "bonus_points", "points": 1}]}),
        )
        .await,
        "conditions[0].days",
    );
    assert_field_error(
        &create(&app, &t.admin, json!({"code": "B", "name": "B", "trigger": "event", "effects": [{"type": "bonus_points", "points": 1}]}))
            .await,
        "event_type",
    );
    assert_field_error(
        &create(
            &app,
            &t.admin,
            json!({"code": "B", "name": "B", "trigger": "event", "event_type": "review",
                                       "effects": [{"type": "discount_percent", "percent_bp": 100}]}),
        )
        .await,
        "effects[0]",
    );
    assert_field_error(
        &create(
            &app,
            &t.admin,
            json!({"code": "B", "name": "B", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z",
                                       "effects": [{"type": "bonus_points", "points": 1}]}),
        )
        .await,
        "ends_at",
    );

    // Duplicate codes: on create and on PUT.
    assert_error(&create(&app, &t.admin, body.clone()).await, 409, "campaign_exists");
    let other =
        campaign_id(&app, &t.admin, json!({"code": "OTHER", "name": "Other", "effects": [{"type": "bonus_points", "points": 5}]})).await;
    let got = app.put(&t.admin, &format!("/api/v1/campaigns/{other}"), body.clone()).await;
    assert_error(&got, 409, "campaign_exists");
    // Nothing was written by the failures.
    let (_, list) = app.get(&t.admin, "/api/v1/campaigns").await;
    let listed: HashSet<&str> = list["campaigns"].as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(listed, HashSet::from(["DOUBLE-COFFEE", "CEL3", "OTHER"]));

    // Archive: out of the default list, into ?archived=true; still readable; twice is the same.
    let (s, v) = app.delete(&t.admin, &format!("/api/v1/campaigns/{id}")).await;
    assert_eq!((s, &v["archived"]), (200, &json!(true)), "{v}");
    let (s, v2) = app.delete(&t.admin, &format!("/api/v1/campaigns/{id}")).await;
    assert_eq!((s, &v2["archived"]), (200, &json!(true)), "{v2}");
    let (_, live) = app.get(&t.admin, "/api/v1/campaigns").await;
    assert!(live["campaigns"].as_array().unwrap().iter().all(|c| c["id"] != json!(id)), "{live}");
    let (_, all) = app.get(&t.admin, "/api/v1/campaigns?archived=true").await;
    let archived: Vec<Value> =
        all["campaigns"].as_array().unwrap().iter().filter(|c| c["archived"] == true).map(|c| c["id"].clone()).collect();
    assert_eq!(archived, vec![json!(id)], "?archived=true also lists the archived: {all}");
    assert_eq!(all["campaigns"].as_array().unwrap().len(), 3);
    assert_eq!(app.get(&t.admin, &format!("/api/v1/campaigns/{id}")).await.1["archived"], true);
    assert_field_error(&app.get(&t.admin, "/api/v1/campaigns?archived=maybe").await, "archived");
    assert_field_error(&app.get(&t.admin, "/api/v1/campaigns?colour=red").await, "colour");

    // Unknown ids.
    assert_error(&app.get(&t.admin, "/api/v1/campaigns/nope").await, 404, "not_found");
    assert_error(&app.get(&t.admin, "/api/v1/campaigns/a%00b").await, 404, "not_found");
    assert_error(
        &app.put(&t.admin, "/api/v1/campaigns/nope", json!({"code": "N", "name": "N", "effects": [{"type": "bonus_points", "points": 1}]}))
            .await,
        404,
        "not_found",
    );
    assert_error(&app.delete(&t.admin, "/api/v1/campaigns/nope").await, 404, "not_found");
});

both!(campaign_roles, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    let (_, analyst) = app.api_key(&t.admin, json!({"role": "analyst"})).await;
    let body = json!({"code": "C1", "name": "C1", "requires_coupon": true, "effects": [{"type": "discount_percent", "percent_bp": 500}]});
    let id = campaign_id(&app, &t.admin, body.clone()).await;
    let m = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    let (s, k) = coupons(&app, &t.admin, &id, json!({"code": "ROLE1"})).await;
    assert_eq!(s, 201, "{k}");
    let coupon = k["coupons"][0]["id"].as_str().unwrap().to_owned();

    // The analyst reads.
    for path in [
        "/api/v1/campaigns".to_owned(),
        format!("/api/v1/campaigns/{id}"),
        format!("/api/v1/campaigns/{id}/coupons"),
        format!("/api/v1/campaigns/{id}/coupons/export"),
        format!("/api/v1/members/{m}/segments"),
        format!("/api/v1/members/{m}/offers"),
        format!("/api/v1/members/{m}/wallet"),
        "/api/v1/event-types".to_owned(),
        "/api/v1/products".to_owned(),
    ] {
        let (s, v) = app.get(&analyst, &path).await;
        assert_eq!(s, 200, "analyst GET {path}: {v}");
    }
    // ... and writes nothing.
    let forbidden = |got: (u16, Value)| assert_error(&got, 403, "forbidden");
    for key in [&analyst, &pos] {
        forbidden(create(&app, key, json!({"code": "C2", "name": "C2", "effects": [{"type": "bonus_points", "points": 1}]})).await);
        forbidden(app.post_raw(key, "/api/v1/campaigns", "{not json").await);
        forbidden(app.put(key, &format!("/api/v1/campaigns/{id}"), body.clone()).await);
        forbidden(app.delete(key, &format!("/api/v1/campaigns/{id}")).await);
        forbidden(coupons(&app, key, &id, json!({"generate": 2})).await);
        forbidden(post_csv(&app, key, &format!("/api/v1/campaigns/{id}/coupons/import"), "code\nROLE2\n").await);
        forbidden(app.delete(key, &format!("/api/v1/coupons/{coupon}")).await);
        forbidden(app.put(key, &format!("/api/v1/members/{m}/segments"), json!({"tags": ["vip"]})).await);
        forbidden(app.post(key, &format!("/api/v1/members/{m}/events"), json!({"event_id": "e1", "type": "review"})).await);
        forbidden(app.put(key, "/api/v1/event-types/quiz", json!({"schema": {"type": "object"}})).await);
        forbidden(app.put(key, "/api/v1/products", json!({"products": [{"sku": "A"}]})).await);
    }
    // A pos key reads what a till needs, not the campaigns themselves.
    for path in [
        format!("/api/v1/campaigns/{id}"),
        "/api/v1/campaigns".into(),
        format!("/api/v1/campaigns/{id}/coupons"),
        "/api/v1/event-types".into(),
    ] {
        forbidden(app.get(&pos, &path).await);
    }
    for path in [format!("/api/v1/members/{m}/offers"), format!("/api/v1/members/{m}/wallet"), "/api/v1/products".into()] {
        let (s, v) = app.get(&pos, &path).await;
        assert_eq!(s, 200, "pos GET {path}: {v}");
    }
    forbidden(app.get(&pos, &format!("/api/v1/members/{m}/segments")).await);
    // Validation: admin and pos, not analyst.
    let (s, v) = validate(&app, &pos, json!({"code": "role1"})).await;
    assert_eq!((s, &v["valid"]), (200, &json!(true)), "{v}");
    forbidden(validate(&app, &analyst, json!({"code": "ROLE1"})).await);
    // Nothing changed.
    let (_, c) = app.get(&t.admin, &format!("/api/v1/campaigns/{id}")).await;
    assert_eq!((c["archived"].as_bool(), c["code"].as_str()), (Some(false), Some("C1")));
    let (_, l) = app.get(&t.admin, &format!("/api/v1/campaigns/{id}/coupons")).await;
    assert_eq!(codes(l["coupons"].as_array().unwrap()), vec!["ROLE1"]);
    assert_eq!(l["coupons"][0]["status"], "active");
});

both!(tenant_isolation, |app: TestApp| async move {
    let a = app.tenant("Shop A").await;
    let b = app.tenant("Shop B").await;
    let id = coupon_campaign(&app, &a.admin, "ISO").await;
    let (s, k) = coupons(&app, &a.admin, &id, json!({"code": "ISO-CODE"})).await;
    assert_eq!(s, 201, "{k}");
    let coupon = k["coupons"][0]["id"].as_str().unwrap().to_owned();
    let m = app.member_id(&a.admin, json!({"phone": "+79120000001"})).await;
    let (s, v) = app.put(&a.admin, &format!("/api/v1/members/{m}/segments"), json!({"tags": ["vip"]})).await;
    assert_eq!(s, 200, "{v}");
    let body = json!({"code": "B1", "name": "B1", "effects": [{"type": "bonus_points", "points": 1}]});

    // Tenant B sees none of it.
    let nf = |got: (u16, Value)| assert_error(&got, 404, "not_found");
    nf(app.get(&b.admin, &format!("/api/v1/campaigns/{id}")).await);
    nf(app.put(&b.admin, &format!("/api/v1/campaigns/{id}"), body.clone()).await);
    nf(app.delete(&b.admin, &format!("/api/v1/campaigns/{id}")).await);
    nf(app.get(&b.admin, &format!("/api/v1/campaigns/{id}/coupons")).await);
    nf(app.get(&b.admin, &format!("/api/v1/campaigns/{id}/coupons/export")).await);
    nf(coupons(&app, &b.admin, &id, json!({"code": "B-CODE"})).await);
    nf(post_csv(&app, &b.admin, &format!("/api/v1/campaigns/{id}/coupons/import"), "code\nB-CODE2\n").await);
    nf(app.delete(&b.admin, &format!("/api/v1/coupons/{coupon}")).await);
    let mnf = |got: (u16, Value)| assert_error(&got, 404, "member_not_found");
    mnf(app.get(&b.admin, &format!("/api/v1/members/{m}/segments")).await);
    mnf(app.put(&b.admin, &format!("/api/v1/members/{m}/segments"), json!({"tags": ["x"]})).await);
    mnf(app.get(&b.admin, &format!("/api/v1/members/{m}/wallet")).await);
    mnf(app.get(&b.admin, &format!("/api/v1/members/{m}/offers")).await);
    mnf(app.post(&b.admin, &format!("/api/v1/members/{m}/events"), json!({"event_id": "ev-1", "type": "review"})).await);
    mnf(validate(&app, &b.admin, json!({"code": "X-1", "member_id": m})).await);
    let (s, v) = validate(&app, &b.admin, json!({"code": "ISO-CODE"})).await;
    assert_eq!((s, &v["valid"], &v["reason_code"]), (200, &json!(false), &json!("coupon_not_found")), "{v}");
    assert!(v.get("campaign_id").is_none(), "nothing of tenant A leaks: {v}");
    assert_eq!(app.get(&b.admin, "/api/v1/campaigns").await.1["campaigns"], json!([]));

    // Tenant A's data is untouched; B may use the same campaign and coupon codes.
    let (_, c) = app.get(&a.admin, &format!("/api/v1/campaigns/{id}")).await;
    assert_eq!((c["code"].as_str(), c["archived"].as_bool()), (Some("ISO"), Some(false)));
    assert_eq!(app.get(&a.admin, &format!("/api/v1/members/{m}/segments")).await.1["tags"], json!(["vip"]));
    let (s, v) = validate(&app, &a.admin, json!({"code": "iso-code"})).await;
    assert_eq!((s, &v["valid"]), (200, &json!(true)), "{v}");
    let id_b = coupon_campaign(&app, &b.admin, "ISO").await;
    let (s, v) = coupons(&app, &b.admin, &id_b, json!({"code": "ISO-CODE"})).await;
    assert_eq!(s, 201, "{v}");
});

both!(coupons_shared_generated_paged_disabled, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let id = coupon_campaign(&app, &t.admin, "SPRING").await;

    // One shared code for the first 2 uses.
    let (s, v) = coupons(&app, &t.admin, &id, json!({"code": " spring ", "max_uses": 2})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["created"], 1);
    let k = &v["coupons"][0];
    assert_eq!((k["code"].as_str(), k["max_uses"].as_i64(), k["uses"].as_i64()), (Some("SPRING"), Some(2), Some(0)));
    assert_eq!((k["member_id"].clone(), k["status"].as_str()), (Value::Null, Some("active")));
    assert_error(&coupons(&app, &t.admin, &id, json!({"code": "Spring"})).await, 409, "coupon_exists");
    for (i, rid) in ["R-1", "R-2"].into_iter().enumerate() {
        let mut r = receipt(rid, &store, None, 10000, None);
        r["coupons"] = json!(["spring"]);
        let v = app.checkout(&t.admin, r).await;
        assert_eq!(v["discount_minor"], 1000, "use {i}: {v}");
        assert_eq!(v["applied"][0]["coupon"], "SPRING", "{v}");
    }
    let (_, v) = validate(&app, &t.admin, json!({"code": "SPRING"})).await;
    assert_eq!((&v["valid"], &v["reason_code"], &v["uses"]), (&json!(false), &json!("coupon_used_up"), &json!(2)), "{v}");
    let mut r = receipt("R-3", &store, None, 10000, None);
    r["coupons"] = json!(["SPRING"]);
    let v = app.checkout(&t.admin, r).await;
    assert_eq!(v["discount_minor"], 0, "a used-up code gives nothing: {v}");
    assert_eq!(v["not_applied"][0]["reason_code"], "coupon_used_up", "{v}");

    // Bulk unique codes: N of them, from the unambiguous alphabet, after the prefix.
    let (s, v) = coupons(&app, &t.admin, &id, json!({"generate": 60, "prefix": "sp-", "length": 10})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["created"], 60);
    let generated = v["coupons"].as_array().unwrap();
    assert_eq!(generated.len(), 60);
    let mut seen = HashSet::new();
    for k in generated {
        let code = k["code"].as_str().unwrap();
        let body = code.strip_prefix("SP-").unwrap_or_else(|| panic!("prefix: {code}"));
        assert_eq!(body.len(), 10, "{code}");
        assert!(body.chars().all(|c| ALPHABET.contains(c)), "{code}");
        assert!(seen.insert(code.to_owned()), "duplicate {code}");
        assert_eq!(k["max_uses"], 1, "generated codes are single-use by default");
        assert_eq!(k["batch"], v["batch"]);
    }
    // Two batches do not repeat one another either, and default to 12 symbols.
    let (_, v2) = coupons(&app, &t.admin, &id, json!({"generate": 40})).await;
    for k in v2["coupons"].as_array().unwrap() {
        let code = k["code"].as_str().unwrap();
        assert_eq!(code.len(), 12, "{code}");
        assert!(code.chars().all(|c| ALPHABET.contains(c)), "{code}");
        assert!(seen.insert(code.to_owned()), "duplicate {code}");
    }
    // Not guessable: symbols spread over the alphabet, not sequential.
    let used: HashSet<char> = seen.iter().flat_map(|c| c.chars()).collect();
    assert!(used.len() >= 25, "codes use the whole alphabet: {used:?}");

    // Bad batches.
    assert_field_error(&coupons(&app, &t.admin, &id, json!({})).await, "code");
    assert_field_error(&coupons(&app, &t.admin, &id, json!({"code": "ABC", "generate": 2})).await, "generate");
    assert_field_error(&coupons(&app, &t.admin, &id, json!({"generate": 0})).await, "generate");
    assert_field_error(&coupons(&app, &t.admin, &id, json!({"generate": 2, "length": 7})).await, "length");
    assert_field_error(&coupons(&app, &t.admin, &id, json!({"code": "AB"})).await, "code");
    assert_field_error(&coupons(&app, &t.admin, &id, json!({"code": "A B C"})).await, "code");
    assert_field_error(&coupons(&app, &t.admin, &id, json!({"code": "ABC", "max_uses": 1.5})).await, "max_uses");
    assert_field_error(&coupons(&app, &t.admin, &id, json!({"code": "ABC", "colour": 1})).await, "colour");
    assert_field_error(
        &coupons(&app, &t.admin, &id, json!({"code": "ABC", "starts_at": "2030-01-02T00:00:00Z", "expires_at": "2030-01-01T00:00:00Z"}))
            .await,
        "expires_at",
    );
    assert_error(&coupons(&app, &t.admin, &id, json!({"code": "ABCD", "member_id": "nobody"})).await, 404, "member_not_found");
    assert_error(&coupons(&app, &t.admin, "nope", json!({"code": "ABCD"})).await, 404, "not_found");

    // A campaign that does not take coupons.
    let plain =
        campaign_id(&app, &t.admin, json!({"code": "PLAIN", "name": "Plain", "effects": [{"type": "bonus_points", "points": 5}]})).await;
    assert_error(&coupons(&app, &t.admin, &plain, json!({"code": "PLAIN1"})).await, 422, "campaign_without_coupons");
    assert_error(&coupons(&app, &t.admin, &plain, json!({"generate": 3})).await, 422, "campaign_without_coupons");
    assert_error(
        &post_csv(&app, &t.admin, &format!("/api/v1/campaigns/{plain}/coupons/import"), "code\nPLAIN2\n").await,
        422,
        "campaign_without_coupons",
    );
    assert_eq!(app.get(&t.admin, &format!("/api/v1/campaigns/{plain}/coupons")).await.1["coupons"], json!([]));

    // Paging: 101 coupons in pages of 30, by code, each once.
    let (all, pages) = all_coupons(&app, &t.admin, &id, 30).await;
    assert_eq!(all.len(), 101);
    assert_eq!(pages, 4);
    let listed = codes(&all);
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "listed by code");
    assert_eq!(listed.iter().collect::<HashSet<_>>().len(), 101);
    assert_field_error(&app.get(&t.admin, &format!("/api/v1/campaigns/{id}/coupons?limit=0")).await, "limit");
    assert_field_error(&app.get(&t.admin, &format!("/api/v1/campaigns/{id}/coupons?limit=1001")).await, "limit");

    // Disable: unusable from then on, twice is the same.
    let victim = all.iter().find(|k| k["code"] != "SPRING").unwrap().clone();
    let vid = victim["id"].as_str().unwrap();
    let (s, v) = app.delete(&t.admin, &format!("/api/v1/coupons/{vid}")).await;
    assert_eq!((s, &v["status"]), (200, &json!("disabled")), "{v}");
    let (s, v) = app.delete(&t.admin, &format!("/api/v1/coupons/{vid}")).await;
    assert_eq!((s, &v["status"]), (200, &json!("disabled")), "{v}");
    let (_, v) = validate(&app, &t.admin, json!({"code": victim["code"]})).await;
    assert_eq!((&v["valid"], &v["reason_code"]), (&json!(false), &json!("coupon_inactive")), "{v}");
    assert_error(&app.delete(&t.admin, "/api/v1/coupons/nope").await, 404, "not_found");
});

both!(coupon_csv_import_and_export, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let id = coupon_campaign(&app, &t.admin, "CSV").await;
    let m = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    let path = format!("/api/v1/campaigns/{id}/coupons/import");

    // One bad row rejects the whole file; every bad row is named by its line.
    let bad = "code,max_uses,expires_at\nGOOD-01,1,\nx,1,\nGOOD-02,abc,\nGOOD-01,2,\nGOOD-03,,yesterday\nGOOD-04,3,\n";
    let got = post_csv(&app, &t.admin, &path, bad).await;
    assert_error(&got, 422, "validation_error");
    let fields = got.1["error"]["fields"].as_object().unwrap();
    let lines: HashSet<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(lines, HashSet::from(["line 3", "line 4", "line 5", "line 6"]), "{}", got.1);
    assert_eq!(app.get(&t.admin, &format!("/api/v1/campaigns/{id}/coupons")).await.1["coupons"], json!([]), "nothing imported");
    assert_field_error(&post_csv(&app, &t.admin, &path, "code,colour\nABC,red\n").await, "csv");
    assert_field_error(&post_csv(&app, &t.admin, &path, "member_id\nx\n").await, "csv");
    assert_field_error(&post_csv(&app, &t.admin, &path, "code\n").await, "csv");
    assert_error(&post_csv(&app, &t.admin, &path, "code,member_id\nPERS-1,nobody\n").await, 404, "member_not_found");

    // A good file.
    let good =
        format!("code,member_id,max_uses,per_member_limit,expires_at\nshared-1,,,2,2030-01-01T00:00:00Z\nPERS-1,{m},1,,\nlimited-5,,5,,\n");
    let (s, v) = post_csv(&app, &t.admin, &path, &good).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["created"], 3);
    // A code already taken: 409, nothing imported.
    let got = post_csv(&app, &t.admin, &path, "code\nNEW-1\nSHARED-1\n").await;
    assert_error(&got, 409, "coupon_exists");
    let (list, _) = all_coupons(&app, &t.admin, &id, 100).await;
    assert_eq!(codes(&list), vec!["LIMITED-5", "PERS-1", "SHARED-1"]);
    let shared = &list[2];
    assert_eq!((shared["max_uses"].clone(), shared["per_member_limit"].as_i64()), (Value::Null, Some(2)), "empty max_uses cell: unlimited");
    assert_eq!(shared["expires_at"], "2030-01-01T00:00:00Z");
    assert_eq!(list[1]["member_id"], json!(m));
    assert_eq!(list[0]["max_uses"], 5);
    // Without a max_uses column each imported coupon is single-use.
    let (s, _) = post_csv(&app, &t.admin, &path, "code\nSINGLE-1\n").await;
    assert_eq!(s, 201);

    // Export, then import it into another tenant: the same coupons come out again.
    let (s, first) = app.get(&t.admin, &format!("/api/v1/campaigns/{id}/coupons/export")).await;
    assert_eq!(s, 200, "{first}");
    let first = first.as_str().expect("CSV text").to_owned();
    let rows: Vec<&str> = first.lines().collect();
    assert_eq!(rows[0], "code,member_id,max_uses,per_member_limit,uses,starts_at,expires_at,status");
    assert_eq!(rows.len(), 5, "{first}");
    assert!(rows.contains(&"SINGLE-1,,1,,0,,,active"), "{first}");
    assert!(rows.contains(&"SHARED-1,,,2,0,,2030-01-01T00:00:00Z,active"), "{first}");
    let other = app.tenant("Other").await;
    let id2 = coupon_campaign(&app, &other.admin, "CSV").await;
    let without_personal: String = first.lines().filter(|l| !l.starts_with("PERS-1")).map(|l| format!("{l}\n")).collect();
    let (s, v) = post_csv(&app, &other.admin, &format!("/api/v1/campaigns/{id2}/coupons/import"), &without_personal).await;
    assert_eq!(s, 201, "{v}");
    let (_, again) = app.get(&other.admin, &format!("/api/v1/campaigns/{id2}/coupons/export")).await;
    assert_eq!(again.as_str().unwrap(), without_personal, "export → import → export is exact");
    assert_error(&app.get(&t.admin, "/api/v1/campaigns/nope/coupons/export").await, 404, "not_found");
});

both!(coupon_validation_reasons_and_brute_force_limit, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    let id = coupon_campaign(&app, &t.admin, "VAL").await;
    let m1 = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    let m2 = app.member_id(&t.admin, json!({"phone": "+79120000002"})).await;
    let now = unix_now();
    let mk = |body: Value| {
        let app = &app;
        let t = &t;
        let id = id.clone();
        async move {
            let (s, v) = coupons(app, &t.admin, &id, body).await;
            assert_eq!(s, 201, "{v}");
        }
    };
    mk(json!({"code": "OK-1"})).await;
    mk(json!({"code": "OLD-1", "expires_at": rfc3339(now - 3600)})).await;
    mk(json!({"code": "LATER-1", "starts_at": rfc3339(now + 86400)})).await;
    mk(json!({"code": "ONCE-1", "max_uses": 1})).await;
    mk(json!({"code": "MINE-1", "member_id": m1})).await;

    let check = |code: &'static str, member: Option<&str>, valid: bool, reason: Option<&str>| {
        let app = &app;
        let key = pos.clone();
        let member = member.map(str::to_owned);
        let reason = reason.map(str::to_owned);
        async move {
            let mut body = json!({"code": code});
            if let Some(m) = member {
                body["member_id"] = json!(m);
            }
            let (s, v) = validate(app, &key, body).await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["valid"], valid, "{code}: {v}");
            assert_eq!(v["reason_code"].as_str(), reason.as_deref(), "{code}: {v}");
            if !valid {
                assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "a reason in words: {v}");
            }
            v
        }
    };
    let v = check("ok-1", None, true, None).await;
    assert_eq!((v["code"].as_str(), v["campaign_id"].as_str()), (Some("OK-1"), Some(id.as_str())));
    check("OLD-1", None, false, Some("coupon_expired")).await;
    check("LATER-1", None, false, Some("coupon_not_yet_valid")).await;
    check("MINE-1", Some(&m1), true, None).await;
    check("MINE-1", Some(&m2), false, Some("coupon_not_for_member")).await;
    check("MINE-1", None, false, Some("coupon_needs_member")).await;
    check("NO-SUCH-CODE", None, false, Some("coupon_not_found")).await;
    // Used up after its one use, and the per-member limit.
    let mut r = receipt("R-1", &store, Some(&m1), 10000, None);
    r["coupons"] = json!(["ONCE-1"]);
    let v = app.checkout(&pos, r).await;
    assert_eq!(v["discount_minor"], 1000, "{v}");
    check("ONCE-1", None, false, Some("coupon_used_up")).await;
    let campaign2 = coupon_campaign(&app, &t.admin, "VAL2").await;
    let (s, _) = coupons(&app, &t.admin, &campaign2, json!({"code": "PM-2", "per_member_limit": 1})).await;
    assert_eq!(s, 201);
    let mut r = receipt("R-2", &store, Some(&m1), 10000, None);
    r["coupons"] = json!(["PM-2"]);
    let v = app.checkout(&pos, r).await;
    assert_eq!(v["applied"][0]["coupon"], "PM-2", "{v}");
    check("PM-2", Some(&m1), false, Some("coupon_member_limit")).await;
    check("PM-2", Some(&m2), true, None).await;

    // Shape and lookups.
    assert_field_error(&validate(&app, &pos, json!({})).await, "code");
    assert_field_error(&validate(&app, &pos, json!({"code": "X", "extra": 1})).await, "extra");
    assert_field_error(&validate(&app, &pos, json!({"code": 5})).await, "code");
    assert_error(&validate(&app, &pos, json!({"code": "OK-1", "member_id": "nobody"})).await, 404, "member_not_found");

    // Brute force: 20 unknown codes a minute per key, then 429 for that key, even for a
    // valid code; other keys are not affected. (Stay inside one minute window.)
    if unix_now() % 60 > 55 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - unix_now() % 60) as u64)).await;
    }
    let guesser = app.pos_key(&t.admin, &store, None).await;
    for i in 0..20 {
        let (s, v) = validate(&app, &guesser, json!({"code": format!("GUESS-{i:03}")})).await;
        assert_eq!((s, &v["reason_code"]), (200, &json!("coupon_not_found")), "guess {i}: {v}");
    }
    assert_error(&validate(&app, &guesser, json!({"code": "GUESS-999"})).await, 429, "rate_limited");
    assert_error(&validate(&app, &guesser, json!({"code": "OK-1"})).await, 429, "rate_limited");
    let mut r = receipt("R-9", &store, None, 10000, None);
    r["coupons"] = json!(["OK-1"]);
    assert_error(&app.post(&guesser, "/api/v1/pos/quote", r).await, 429, "rate_limited");
    check("OK-1", None, true, None).await;
    let (s, v) = validate(&app, &t.admin, json!({"code": "OK-1"})).await;
    assert_eq!((s, &v["valid"]), (200, &json!(true)), "{v}");
});

both!(segments_and_personal_offers, |app: TestApp| async move {
    let t = app.tenant("Cafe").await;
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    let m1 = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    let m2 = app.member_id(&t.admin, json!({"phone": "+79120000002"})).await;
    let m3 = app.member_id(&t.admin, json!({"phone": "+79120000003"})).await;

    // Segments: tags lower-cased and deduplicated; attributes kept when left out.
    let (s, v) = app
        .put(
            &t.admin,
            &format!("/api/v1/members/{m2}/segments"),
            json!({"tags": ["VIP", "vip", "Student"], "attributes": {"city": "Perm"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"member_id": m2, "tags": ["student", "vip"], "attributes": {"city": "Perm"}}));
    let (_, v) = app.put(&t.admin, &format!("/api/v1/members/{m2}/segments"), json!({"tags": ["vip"]})).await;
    assert_eq!(v, json!({"member_id": m2, "tags": ["vip"], "attributes": {"city": "Perm"}}));
    assert_eq!(app.get(&t.admin, &format!("/api/v1/members/{m2}/segments")).await.1, v);
    assert_eq!(
        app.get(&t.admin, &format!("/api/v1/members/{m3}/segments")).await.1,
        json!({"member_id": m3, "tags": [], "attributes": {}})
    );
    assert_field_error(&app.put(&t.admin, &format!("/api/v1/members/{m2}/segments"), json!({"tags": [""]})).await, "tags[0]");
    assert_field_error(&app.put(&t.admin, &format!("/api/v1/members/{m2}/segments"), json!({"tags": [5]})).await, "tags[0]");
    assert_field_error(&app.put(&t.admin, &format!("/api/v1/members/{m2}/segments"), json!({"attributes": [1]})).await, "attributes");
    assert_field_error(&app.put(&t.admin, &format!("/api/v1/members/{m2}/segments"), json!({"colour": 1})).await, "colour");
    assert_error(&app.put(&t.admin, "/api/v1/members/nobody/segments", json!({"tags": []})).await, 404, "member_not_found");
    assert_eq!(app.get(&t.admin, &format!("/api/v1/members/{m2}/segments")).await.1["tags"], json!(["vip"]), "failures wrote nothing");

    let effect = json!([{"type": "bonus_points", "points": 100}]);
    let for_m1 =
        campaign_id(&app, &t.admin, json!({"code": "FOR-M1", "name": "Just for you", "audience": {"member_ids": [m1]}, "effects": effect}))
            .await;
    let for_vip = campaign_id(
        &app,
        &t.admin,
        json!({"code": "FOR-VIP", "name": "VIP week", "audience": {"segment_tags": ["VIP"]}, "effects": effect}),
    )
    .await;
    campaign_id(&app, &t.admin, json!({"code": "EVERYONE", "name": "For all", "effects": effect})).await;
    campaign_id(
        &app,
        &t.admin,
        json!({"code": "PAUSED", "name": "Paused", "status": "paused", "audience": {"member_ids": [m1]}, "effects": effect}),
    )
    .await;
    campaign_id(
        &app,
        &t.admin,
        json!({"code": "OVER", "name": "Over", "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-02-01T00:00:00Z",
               "audience": {"member_ids": [m1]}, "effects": effect}),
    )
    .await;
    let archived =
        campaign_id(&app, &t.admin, json!({"code": "GONE", "name": "Gone", "audience": {"member_ids": [m1]}, "effects": effect})).await;
    app.delete(&t.admin, &format!("/api/v1/campaigns/{archived}")).await;
    // A personal coupon, and a stamp card with progress.
    let cc = coupon_campaign(&app, &t.admin, "WELCOME").await;
    let (s, k) = coupons(&app, &t.admin, &cc, json!({"code": "M1-GIFT", "member_id": m1})).await;
    assert_eq!(s, 201, "{k}");
    let (s, _) = coupons(&app, &t.admin, &cc, json!({"code": "M1-OLD", "member_id": m1, "expires_at": rfc3339(unix_now() - 60)})).await;
    assert_eq!(s, 201);
    let stamp = campaign_id(
        &app,
        &t.admin,
        json!({"code": "TENTH", "name": "10th coffee free", "effects": [{"type": "stamp_card", "every": 10, "target": {"categories": ["coffee"]}}]}),
    )
    .await;
    let coffee = json!({
        "receipt_id": "R-1", "store_id": store, "member": {"member_id": m1},
        "items": [{"line_no": 1, "sku": "LATTE", "category": "Coffee", "quantity": 3, "unit_price_minor": 20000}]
    });
    let v = app.checkout(&pos, coffee).await;
    let stamps = v["applied"].as_array().unwrap().iter().find(|a| a["campaign_id"] == json!(stamp)).cloned();
    assert_eq!(stamps.map(|a| a["stamps"]["after"].clone()), Some(json!(3)), "{v}");

    let offers = |m: String| {
        let app = &app;
        let key = pos.clone();
        async move {
            let (s, v) = app.get(&key, &format!("/api/v1/members/{m}/offers")).await;
            assert_eq!(s, 200, "{v}");
            v
        }
    };
    let o1 = offers(m1.clone()).await;
    assert_eq!(o1["member_id"], json!(m1));
    let ids: Vec<&Value> = o1["offers"].as_array().unwrap().iter().map(|o| &o["campaign_id"]).collect();
    assert_eq!(ids, vec![&json!(for_m1)], "only the live offer aimed at m1: {o1}");
    assert_eq!(o1["offers"][0]["name"], "Just for you");
    assert_eq!(codes(o1["coupons"].as_array().unwrap()), vec!["M1-GIFT"], "usable own coupons only: {o1}");
    assert_eq!(o1["coupons"][0]["campaign"]["campaign_id"], json!(cc));
    let card = o1["stamp_cards"].as_array().unwrap().iter().find(|c| c["campaign_id"] == json!(stamp)).cloned().expect("stamp card");
    assert_eq!((card["every"].as_i64(), card["stamps"].as_i64(), card["to_free"].as_i64()), (Some(10), Some(3), Some(7)), "{card}");

    let o2 = offers(m2.clone()).await;
    let ids: Vec<&Value> = o2["offers"].as_array().unwrap().iter().map(|o| &o["campaign_id"]).collect();
    assert_eq!(ids, vec![&json!(for_vip)], "by segment tag: {o2}");
    assert_eq!(o2["coupons"], json!([]), "not m1's coupons: {o2}");
    let card = o2["stamp_cards"].as_array().unwrap().iter().find(|c| c["campaign_id"] == json!(stamp)).cloned().expect("stamp card");
    assert_eq!(card["stamps"], 0);

    let o3 = offers(m3.clone()).await;
    assert_eq!((o3["offers"].clone(), o3["coupons"].clone()), (json!([]), json!([])), "{o3}");
    // A stamp card aimed at m1 is not m3's.
    let vip_card = campaign_id(
        &app,
        &t.admin,
        json!({"code": "M1-CARD", "name": "m1's card", "audience": {"member_ids": [m1]},
               "effects": [{"type": "stamp_card", "every": 5, "target": {"categories": ["tea"]}}]}),
    )
    .await;
    let cards = |v: &Value| v["stamp_cards"].as_array().unwrap().iter().map(|c| c["campaign_id"].clone()).collect::<Vec<_>>();
    assert!(cards(&offers(m1.clone()).await).contains(&json!(vip_card)));
    assert!(!cards(&offers(m3.clone()).await).contains(&json!(vip_card)));
    // A coupon of an archived campaign is no longer an offer.
    app.delete(&t.admin, &format!("/api/v1/campaigns/{cc}")).await;
    assert_eq!(offers(m1.clone()).await["coupons"], json!([]));
    // Losing the tag loses the offer.
    app.put(&t.admin, &format!("/api/v1/members/{m2}/segments"), json!({"tags": []})).await;
    assert_eq!(offers(m2.clone()).await["offers"], json!([]));
    assert_error(&app.get(&t.admin, "/api/v1/members/nobody/offers").await, 404, "member_not_found");

    // The wallet reads empty for a member who never had cashback.
    let (s, w) = app.get(&pos, &format!("/api/v1/members/{m3}/wallet")).await;
    assert_eq!(s, 200, "{w}");
    assert_eq!((w["balance_minor"].as_i64(), w["entries"].clone()), (Some(0), json!([])), "{w}");
    assert_field_error(&app.get(&pos, &format!("/api/v1/members/{m3}/wallet?limit=0")).await, "limit");
});

both!(action_events_award_bonus_points, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let m = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    let other = app.member_id(&t.admin, json!({"phone": "+79120000002"})).await;
    let review = campaign_id(
        &app,
        &t.admin,
        json!({"code": "REVIEW-300", "name": "300 points for a review", "trigger": "event", "event_type": "review",
               "budget": {"per_member_uses": 2}, "effects": [{"type": "bonus_points", "points": 300}]}),
    )
    .await;
    let ev = |member: String, body: Value| {
        let app = &app;
        let key = t.admin.clone();
        async move { app.post(&key, &format!("/api/v1/members/{member}/events"), body).await }
    };

    let body = json!({"event_id": "rev-1", "type": "review", "data": {"stars": 5}});
    let (s, first) = ev(m.clone(), body.clone()).await;
    assert_eq!(s, 201, "{first}");
    assert_eq!(first["points_awarded"], 300);
    assert_eq!(
        (first["event_id"].as_str(), first["type"].as_str(), first["member_id"].as_str()),
        (Some("rev-1"), Some("review"), Some(m.as_str()))
    );
    assert_eq!(first["applied"], json!([{"campaign_id": review, "code": "REVIEW-300", "name": "300 points for a review", "points": 300}]));
    assert_eq!(first["balance"]["points"], 300);
    // The same event again: 200, the same answer, nothing twice.
    let (s, again) = ev(m.clone(), body.clone()).await;
    assert_eq!((s, &again), (200, &first));
    assert_eq!(app.balance(&t.admin, &m).await["points"], 300);
    // The same id with another body, or for another member: 409.
    assert_error(&ev(m.clone(), json!({"event_id": "rev-1", "type": "review", "data": {"stars": 4}})).await, 409, "event_conflict");
    assert_error(&ev(other.clone(), body.clone()).await, 409, "event_conflict");

    // The per-member limit: two reviews pay, the third says why not.
    let (s, v) = ev(m.clone(), json!({"event_id": "rev-2", "type": "review"})).await;
    assert_eq!((s, &v["points_awarded"]), (201, &json!(300)), "{v}");
    let (s, v) = ev(m.clone(), json!({"event_id": "rev-3", "type": "review"})).await;
    assert_eq!((s, &v["points_awarded"]), (201, &json!(0)), "{v}");
    assert_eq!(v["applied"], json!([]));
    assert_eq!(v["not_applied"][0]["reason_code"], "member_limit_reached", "{v}");
    assert!(v["not_applied"][0]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    // Another member still gets theirs.
    let (s, v) = ev(other.clone(), json!({"event_id": "rev-4", "type": "review"})).await;
    assert_eq!((s, &v["points_awarded"]), (201, &json!(300)), "{v}");
    // A built-in type with no campaign: recorded, nothing awarded.
    let (s, v) = ev(m.clone(), json!({"event_id": "sub-1", "type": "newsletter_subscribed"})).await;
    assert_eq!((s, &v["points_awarded"], &v["applied"]), (201, &json!(0), &json!([])), "{v}");
    let (_, c) = app.get(&t.admin, &format!("/api/v1/campaigns/{review}")).await;
    assert_eq!(c["usage"], json!({"points": 900, "money_minor": 0, "uses": 3}), "{c}");

    // A custom type with a schema.
    let schema = json!({"type": "object", "required": ["score"], "additionalProperties": false,
                        "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 10}, "comment": {"type": "string", "maxLength": 20}}});
    let (s, v) = app.put(&t.admin, "/api/v1/event-types/quiz", json!({"schema": schema})).await;
    assert_eq!((s, &v), (200, &json!({"type": "quiz", "schema": schema})));
    let (_, types) = app.get(&t.admin, "/api/v1/event-types").await;
    assert!(types["builtin"].as_array().unwrap().contains(&json!("review")), "{types}");
    assert_eq!(types["custom"], json!([{"type": "quiz", "schema": schema}]));
    campaign_id(
        &app,
        &t.admin,
        json!({"code": "QUIZ", "name": "Quiz", "trigger": "event", "event_type": "quiz", "effects": [{"type": "bonus_points", "points": 50}]}),
    )
    .await;
    let bad = |data: Value, field: &'static str| {
        let ev = &ev;
        let m = m.clone();
        async move {
            let got = ev(m, json!({"event_id": "quiz-1", "type": "quiz", "data": data})).await;
            assert_field_error(&got, field);
        }
    };
    bad(json!({"score": 11}), "data.score").await;
    bad(json!({}), "data.score").await;
    bad(json!({"score": "ten"}), "data.score").await;
    bad(json!({"score": 5, "extra": 1}), "data.extra").await;
    bad(json!({"score": 5, "comment": "far too long a comment here"}), "data.comment").await;
    // The failures wrote nothing: the same event id now goes through.
    let (s, v) = ev(m.clone(), json!({"event_id": "quiz-1", "type": "quiz", "data": {"score": 7}})).await;
    assert_eq!((s, &v["points_awarded"]), (201, &json!(50)), "{v}");

    // Unknown types and bad bodies.
    assert_error(&ev(m.clone(), json!({"event_id": "x-1", "type": "dance"})).await, 422, "unknown_event_type");
    assert_field_error(&ev(m.clone(), json!({"type": "review"})).await, "event_id");
    assert_field_error(&ev(m.clone(), json!({"event_id": "x-2"})).await, "type");
    assert_field_error(&ev(m.clone(), json!({"event_id": "x-3", "type": "review", "data": [1]})).await, "data");
    assert_field_error(&ev(m.clone(), json!({"event_id": "x-4", "type": "review", "colour": 1})).await, "colour");
    assert_field_error(&ev(m.clone(), json!({"event_id": "x-5", "type": "review", "occurred_at": "yesterday"})).await, "occurred_at");
    assert_error(
        &ev(m.clone(), json!({"event_id": "x-6", "type": "review", "occurred_at": rfc3339(unix_now() + 86400)})).await,
        422,
        "occurred_at_out_of_range",
    );
    assert_error(&ev("nobody".into(), json!({"event_id": "x-7", "type": "review"})).await, 404, "member_not_found");
    assert_error(&app.put(&t.admin, "/api/v1/event-types/review", json!({"schema": {"type": "object"}})).await, 422, "builtin_event_type");
    assert_field_error(&app.put(&t.admin, "/api/v1/event-types/Bad-Name", json!({"schema": {"type": "object"}})).await, "type");
    assert_field_error(
        &app.put(&t.admin, "/api/v1/event-types/quiz2", json!({"schema": {"type": "object", "pattern": "x"}})).await,
        "schema.pattern",
    );
    assert_field_error(&app.put(&t.admin, "/api/v1/event-types/quiz2", json!({"schema": {"type": "number"}})).await, "schema.type");
    assert_field_error(&app.put(&t.admin, "/api/v1/event-types/quiz2", json!({})).await, "schema");
    assert_field_error(&app.put(&t.admin, "/api/v1/event-types/quiz2", json!({"schema": 5})).await, "schema");

    // The ledger: bonus entries, consistent.
    let ledger = app.ledger_all(&t.admin, &m).await;
    let bonus: Vec<i64> = ledger.iter().filter(|e| e["kind"] == "bonus").map(|e| e["points"].as_i64().unwrap()).collect();
    assert_eq!(bonus, vec![50, 300, 300], "{ledger:?}");
    assert_eq!(ledger.len(), 3, "{ledger:?}");
    let b = app.balance(&t.admin, &m).await;
    assert_eq!((b["points"].as_i64(), b["lifetime_earned"].as_i64()), (Some(650), Some(650)), "{b}");
    app.assert_ledger_consistent(&t).await;
});

both!(product_catalogue_names_categories, |app: TestApp| async move {
    let t = app.tenant("Cafe").await;
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    let (s, v) = app
        .put(
            &t.admin,
            "/api/v1/products",
            json!({"products": [
                {"sku": "ESP-1", "name": "Espresso", "category": "Coffee"},
                {"sku": "CAKE-1", "name": "Cake", "category": "bakery"},
                {"sku": "TEA-1"}
            ]}),
        )
        .await;
    assert_eq!((s, v), (200, json!({"updated": 3})));
    // Upsert.
    let (s, _) = app.put(&t.admin, "/api/v1/products", json!({"products": [{"sku": "TEA-1", "name": "Tea", "category": "Tea"}]})).await;
    assert_eq!(s, 200);
    let (s, v) = app.get(&pos, "/api/v1/products").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"products": [
            {"sku": "CAKE-1", "name": "Cake", "category": "bakery"},
            {"sku": "ESP-1", "name": "Espresso", "category": "coffee"},
            {"sku": "TEA-1", "name": "Tea", "category": "tea"}
        ], "next_cursor": null})
    );
    let (_, p1) = app.get(&t.admin, "/api/v1/products?limit=2").await;
    assert_eq!(p1["products"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, p2) = app.get(&t.admin, &format!("/api/v1/products?limit=2&cursor={cursor}")).await;
    assert_eq!(p2["products"][0]["sku"], "TEA-1", "{p2}");
    assert_field_error(&app.put(&t.admin, "/api/v1/products", json!({})).await, "products");
    assert_field_error(&app.put(&t.admin, "/api/v1/products", json!({"products": [{"name": "x"}]})).await, "products[0].sku");
    assert_field_error(&app.put(&t.admin, "/api/v1/products", json!({"products": [{"sku": "A", "price": 1}]})).await, "products[0].price");
    assert_field_error(&app.put(&t.admin, "/api/v1/products", json!({"products": [5]})).await, "products[0]");
    assert_field_error(&app.get(&t.admin, "/api/v1/products?limit=abc").await, "limit");

    // A till line with a sku and no category takes the catalogue's category.
    let coffee = campaign_id(
        &app,
        &t.admin,
        json!({"code": "COFFEE10", "name": "10 % off coffee", "effects": [{"type": "discount_percent", "percent_bp": 1000, "target": {"categories": ["coffee"]}}]}),
    )
    .await;
    let quote = |items: Value| {
        let app = &app;
        let key = pos.clone();
        async move {
            let (s, v) = app.post(&key, "/api/v1/pos/quote", json!({"receipt_id": "Q-1", "items": items})).await;
            assert_eq!(s, 200, "{v}");
            v
        }
    };
    let v = quote(json!([{"line_no": 1, "sku": "ESP-1", "quantity": 2, "unit_price_minor": 15000},
                         {"line_no": 2, "sku": "CAKE-1", "quantity": 1, "unit_price_minor": 30000}]))
    .await;
    assert_eq!(v["discount_minor"], 3000, "{v}");
    assert_eq!((v["lines"][0]["discount_minor"].as_i64(), v["lines"][1]["discount_minor"].as_i64()), (Some(3000), Some(0)), "{v}");
    assert_eq!(v["applied"][0]["campaign_id"], json!(coffee), "{v}");
    // A category the till sends wins over the catalogue's.
    let v = quote(json!([{"line_no": 1, "sku": "ESP-1", "category": "merch", "quantity": 2, "unit_price_minor": 15000}])).await;
    assert_eq!(v["discount_minor"], 0, "{v}");
    // An unknown sku has no category.
    let v = quote(json!([{"line_no": 1, "sku": "UNKNOWN", "quantity": 2, "unit_price_minor": 15000}])).await;
    assert_eq!(v["discount_minor"], 0, "{v}");
});
