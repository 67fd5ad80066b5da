//! The admin console's rewards catalogue: create and edit through the form (the API's
//! own rules, shown next to the fields), redemptions handed over or cancelled, roles,
//! tenants and CSRF.

use crate::both;
use crate::helpers::*;
use serde_json::{Value, json};

async fn rewards_of(app: &TestApp, t: &Tenant) -> Vec<Value> {
    let (s, v) = app.api(reqwest::Method::GET, &t.admin, "/api/v1/rewards?include_archived=true", None).await;
    assert_eq!(s, 200, "{v}");
    v["rewards"].as_array().unwrap().clone()
}

/// A member with 1000 points.
async fn member_with_points(app: &TestApp, t: &Tenant, phone: &str) -> String {
    let m = app.member(t, json!({"phone": phone})).await;
    let id = m["id"].as_str().unwrap().to_owned();
    let (s, v) = app
        .api(
            reqwest::Method::POST,
            &t.admin,
            &format!("/api/v1/members/{id}/adjustments"),
            Some(json!({"points": 1000, "reason": "welcome"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    id
}

async fn redeem(app: &TestApp, t: &Tenant, member: &str, reward: &str, rid: &str) -> Value {
    let (s, v) = app
        .api(
            reqwest::Method::POST,
            &t.admin,
            &format!("/api/v1/members/{member}/rewards/{reward}/redeem"),
            Some(json!({"redemption_id": rid})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn available(app: &TestApp, t: &Tenant, member: &str) -> i64 {
    let (_, v) = app.api(reqwest::Method::GET, &t.admin, &format!("/api/v1/members/{member}/balance"), None).await;
    v["available"].as_i64().unwrap_or_else(|| panic!("{v}"))
}

both!(a_reward_made_in_the_form_is_redeemed_handed_over_and_cancelled, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let mut b = app.logged_in(&t, "owner@shop.test", "owner").await;
    b.get("/admin/rewards").await.assert_status(200).assert_contains("/admin/rewards/new");
    b.get("/admin/rewards/new").await.assert_status(200);
    // The API's rules, next to the fields: a bad code, no price; nothing written.
    let p = b.post("/admin/rewards/new", &[("name", "Mug"), ("code", "-mug"), ("kind", "gift"), ("points_price", "")]).await;
    p.assert_status(422);
    for f in ["code", "points_price"] {
        let e = &p.body[p.body.find(&format!("data-testid=\"error-{f}\"")).unwrap()..];
        assert!(e.find("</p>").unwrap() > 40, "no message for {f}: {}", &e[..200]);
    }
    let p = b
        .post("/admin/rewards/new", &[("name", "Mug"), ("code", "MUG"), ("kind", "gift"), ("points_price", "300"), ("tiers", "platinum-x")])
        .await;
    p.assert_status(422).assert_contains("platinum-x");
    assert!(rewards_of(&app, &t).await.is_empty());
    // A good one.
    let p = b
        .post(
            "/admin/rewards/new",
            &[
                ("name", "Mug"),
                ("code", "MUG"),
                ("kind", "gift"),
                ("points_price", "300"),
                ("stock", "5"),
                ("per_member_limit", "3"),
                ("description", "A mug"),
                ("active", "on"),
            ],
        )
        .await;
    p.assert_status(303);
    let list = rewards_of(&app, &t).await;
    assert_eq!(list.len(), 1);
    let w = &list[0];
    assert_eq!(
        (w["points_price"].as_i64(), w["stock"].as_i64(), w["per_member_limit"].as_i64(), w["active"].as_bool()),
        (Some(300), Some(5), Some(3), Some(true))
    );
    let reward = w["id"].as_str().unwrap().to_owned();
    // Edit: 250 points.
    b.get(&format!("/admin/rewards/{reward}")).await.assert_status(200).assert_contains("value=\"300\"");
    b.post(
        &format!("/admin/rewards/{reward}"),
        &[("name", "Mug"), ("code", "MUG"), ("kind", "gift"), ("points_price", "250"), ("stock", "5"), ("active", "on")],
    )
    .await
    .assert_status(303);
    assert_eq!(rewards_of(&app, &t).await[0]["points_price"], 250);
    // Two redemptions: one handed over, one cancelled (the points come back).
    let member = member_with_points(&app, &t, "+79001112233").await;
    let x1 = redeem(&app, &t, &member, &reward, "r-1").await;
    let x2 = redeem(&app, &t, &member, &reward, "r-2").await;
    assert_eq!(available(&app, &t, &member).await, 500);
    let page = b.get("/admin/rewards").await;
    page.assert_status(200).assert_contains("data-testid=\"redemptions\"");
    let (x1, x2) = (x1["id"].as_str().unwrap().to_owned(), x2["id"].as_str().unwrap().to_owned());
    page.assert_contains(&format!("/admin/rewards/redemptions/{x1}/fulfil"));
    b.post(&format!("/admin/rewards/redemptions/{x1}/fulfil"), &[]).await.assert_status(303);
    b.post(&format!("/admin/rewards/redemptions/{x2}/cancel"), &[]).await.assert_status(303);
    assert_eq!(available(&app, &t, &member).await, 750);
    // The other way round is refused with a message, and changes nothing.
    b.get("/admin/rewards").await;
    b.post(&format!("/admin/rewards/redemptions/{x1}/cancel"), &[]).await.assert_status(409).assert_contains("rewards-error");
    b.post(&format!("/admin/rewards/redemptions/{x2}/fulfil"), &[]).await.assert_status(409);
    assert_eq!(available(&app, &t, &member).await, 750);
    let (_, r) = app.api(reqwest::Method::GET, &t.admin, &format!("/api/v1/reward-redemptions/{x1}"), None).await;
    assert_eq!(r["status"], "fulfilled");
    // Archive.
    b.post(&format!("/admin/rewards/{reward}/archive"), &[]).await.assert_status(303);
    assert_eq!(rewards_of(&app, &t).await[0]["archived"], true);
    b.get(&format!("/admin/rewards/{reward}")).await.assert_status(200).assert_lacks("save-reward");
});

both!(reward_roles_tenants_and_csrf, |app: TestApp| async move {
    let a = app.tenant("Shop A").await;
    let bt = app.tenant("Shop B").await;
    let (s, v) = app
        .api(reqwest::Method::POST, &bt.admin, "/api/v1/rewards", Some(json!({"code": "BMUG", "name": "Bravo mug", "points_price": 10})))
        .await;
    assert_eq!(s, 201, "{v}");
    let theirs = v["id"].as_str().unwrap().to_owned();
    let bm = member_with_points(&app, &bt, "+79005556677").await;
    let their_x = redeem(&app, &bt, &bm, &theirs, "b-1").await["id"].as_str().unwrap().to_owned();
    let (s, v) = app
        .api(reqwest::Method::POST, &a.admin, "/api/v1/rewards", Some(json!({"code": "AMUG", "name": "Alpha mug", "points_price": 10})))
        .await;
    assert_eq!(s, 201, "{v}");
    let ours = v["id"].as_str().unwrap().to_owned();

    let mut cashier = app.logged_in(&a, "cashier@a.test", "cashier").await;
    cashier.get("/admin/rewards").await.assert_status(403);
    cashier.get(&format!("/admin/rewards/{ours}")).await.assert_status(403);
    cashier.post("/admin/rewards/new", &[("name", "X"), ("code", "X"), ("points_price", "1")]).await.assert_status(403);
    let mut analyst = app.logged_in(&a, "analyst@a.test", "analyst").await;
    analyst.get("/admin/rewards").await.assert_status(200).assert_contains("Alpha mug").assert_lacks("/admin/rewards/new\"");
    analyst.get(&format!("/admin/rewards/{ours}")).await.assert_status(200).assert_lacks("save-reward");
    analyst.post(&format!("/admin/rewards/{ours}"), &[("name", "X"), ("code", "AMUG"), ("points_price", "1")]).await.assert_status(403);
    analyst.post(&format!("/admin/rewards/{ours}/archive"), &[]).await.assert_status(403);

    let mut owner = app.logged_in(&a, "owner@a.test", "owner").await;
    owner.get("/admin/rewards").await.assert_lacks("Bravo mug");
    owner.get(&format!("/admin/rewards/{theirs}")).await.assert_status(404);
    owner
        .post(&format!("/admin/rewards/{theirs}"), &[("name", "Mine"), ("code", "BMUG"), ("points_price", "1"), ("active", "on")])
        .await
        .assert_status(404);
    owner.post(&format!("/admin/rewards/{theirs}/archive"), &[]).await.assert_status(404);
    owner.post(&format!("/admin/rewards/redemptions/{their_x}/fulfil"), &[]).await.assert_status(404);
    owner.post(&format!("/admin/rewards/redemptions/{their_x}/cancel"), &[]).await.assert_status(404);
    let b_list = rewards_of(&app, &bt).await;
    assert_eq!(
        (b_list[0]["name"].as_str(), b_list[0]["points_price"].as_i64(), b_list[0]["archived"].as_bool()),
        (Some("Bravo mug"), Some(10), Some(false))
    );
    let (_, r) = app.api(reqwest::Method::GET, &bt.admin, &format!("/api/v1/reward-redemptions/{their_x}"), None).await;
    assert_eq!(r["status"], "issued");

    owner
        .post_raw(
            "/admin/rewards/new",
            &[("name".into(), "No token".into()), ("code".into(), "NT".into()), ("points_price".into(), "1".into())],
        )
        .await
        .assert_status(403);
    owner.post_raw(&format!("/admin/rewards/{ours}/archive"), &[]).await.assert_status(403);
    assert_eq!(rewards_of(&app, &a).await.len(), 1);
    assert_eq!(rewards_of(&app, &a).await[0]["archived"], false);
});
