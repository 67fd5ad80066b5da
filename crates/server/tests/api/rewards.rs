//! The rewards catalogue: CRUD and validation, redemption (points debited, code issued,
//! idempotent), every reason a member cannot redeem, concurrency (stock never oversold,
//! points never overspent), cancel (points back to their lots with their expiry),
//! fulfilment, lookup by code, roles and tenant isolation. Every test that moves points
//! ends with the rebuild check.

use crate::both;
use crate::helpers::*;
use serde_json::{Value, json};

const DAY: i64 = 86_400;

/// Create a reward; returns its answer.
async fn reward(app: &TestApp, admin: &str, body: Value) -> Value {
    let (s, v) = app.post(admin, "/api/v1/rewards", body).await;
    assert_eq!(s, 201, "{v}");
    v
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

async fn redeem(app: &TestApp, key: &str, member: &str, reward: &str, redemption_id: &str) -> (u16, Value) {
    app.post(key, &format!("/api/v1/members/{member}/rewards/{reward}/redeem"), json!({"redemption_id": redemption_id})).await
}

async fn catalogue(app: &TestApp, key: &str, member: &str) -> Value {
    let (s, v) = app.get(key, &format!("/api/v1/members/{member}/rewards")).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// The member's view of one reward.
fn entry<'a>(cat: &'a Value, reward: &str) -> &'a Value {
    cat["rewards"].as_array().expect("rewards").iter().find(|r| r["id"] == reward).unwrap_or_else(|| panic!("{reward} not in {cat}"))
}

fn is_code(s: &Value) -> bool {
    s.as_str().is_some_and(|c| c.len() == 12 && c.bytes().all(|b| b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ".contains(&b)))
}

/// Every reward's `redeemed_count` equals its redemptions that are not cancelled, and
/// `stock_left` follows from it.
async fn assert_rewards_consistent(app: &TestApp, admin: &str) {
    let (_, rewards) = app.get(admin, "/api/v1/rewards?include_archived=true&limit=500").await;
    for w in rewards["rewards"].as_array().expect("rewards") {
        let (_, reds) = app.get(admin, &format!("/api/v1/reward-redemptions?reward_id={}&limit=500", w["id"].as_str().unwrap())).await;
        let live = reds["redemptions"].as_array().expect("redemptions").iter().filter(|x| x["status"] != "cancelled").count() as i64;
        assert_eq!(w["redeemed_count"].as_i64(), Some(live), "{w}");
        if let Some(stock) = w["stock"].as_i64() {
            assert_eq!(w["stock_left"].as_i64(), Some((stock - live).max(0)), "{w}");
        }
    }
}

both!(reward_crud_and_validation, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let v = reward(
        &app,
        &t.admin,
        json!({"code": "THERMOS", "name": "Thermos", "points_price": 2000, "stock": 10, "tiers": ["gold"], "per_member_limit": 2,
               "valid_from": "2026-01-01T00:00:00.750Z", "image_url": "https://example.com/t.png"}),
    )
    .await;
    assert_eq!(v["code"], "THERMOS");
    assert_eq!(v["kind"], "gift");
    assert_eq!(v["description"], "");
    assert_eq!(v["points_price"], 2000);
    assert_eq!(v["stock"], 10);
    assert_eq!(v["stock_left"], 10);
    assert_eq!(v["redeemed_count"], 0);
    assert_eq!(v["tiers"], json!(["gold"]));
    assert_eq!(v["per_member_limit"], 2);
    assert_eq!(v["active"], true);
    assert_eq!(v["archived"], false);
    assert_eq!(v["valid_from"], "2026-01-01T00:00:00Z");
    assert_eq!(v["valid_to"], Value::Null);
    assert_eq!(v["version"], 1);
    let rid = id(&v);

    // The code is unique in the tenant.
    let dup = app.post(&t.admin, "/api/v1/rewards", json!({"code": "THERMOS", "name": "Other", "points_price": 1})).await;
    assert_error(&dup, 409, "reward_exists");

    // Shape errors name the field.
    let base = json!({"code": "X1", "name": "X", "points_price": 100});
    let bad = |patch: Value| {
        let mut b = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        b
    };
    for (patch, field) in [
        (json!({"code": null}), "code"),
        (json!({"code": "has space"}), "code"),
        (json!({"name": null}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"points_price": null}), "points_price"),
        (json!({"points_price": 0}), "points_price"),
        (json!({"points_price": -5}), "points_price"),
        (json!({"points_price": 10.5}), "points_price"),
        (json!({"points_price": "100"}), "points_price"),
        (json!({"points_price": 1_000_000_000_001i64}), "points_price"),
        (json!({"stock": -1}), "stock"),
        (json!({"stock": 1.0}), "stock"),
        (json!({"kind": "car"}), "kind"),
        (json!({"campaign_id": "c1"}), "campaign_id"),
        (json!({"valid_from": "yesterday"}), "valid_from"),
        (json!({"valid_from": "2026-02-01T00:00:00Z", "valid_to": "2026-01-01T00:00:00Z"}), "valid_to"),
        (json!({"tiers": "gold"}), "tiers"),
        (json!({"tiers": ["platinum"]}), "tiers[0]"),
        (json!({"tiers": ["gold", "gold"]}), "tiers[1]"),
        (json!({"per_member_limit": 0}), "per_member_limit"),
        (json!({"active": "yes"}), "active"),
        (json!({"image_url": "ftp://x"}), "image_url"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let got = app.post(&t.admin, "/api/v1/rewards", bad(patch.clone())).await;
        assert_field_error(&got, field);
    }
    assert_error(&app.post_raw(&t.admin, "/api/v1/rewards", "{not json").await, 400, "invalid_json");
    // A coupon reward may name its campaign: one that takes coupons.
    let (s, camp) = app
        .post(
            &t.admin,
            "/api/v1/campaigns",
            json!({"code": "ten", "name": "10 % off", "requires_coupon": true,
              "effects": [{"type": "discount_percent", "percent_bp": 1000}]}),
        )
        .await;
    assert_eq!(s, 201, "{camp}");
    let camp_id = camp["id"].as_str().unwrap().to_owned();
    let got = app
        .post(
            &t.admin,
            "/api/v1/rewards",
            json!({"code": "C-9", "name": "x", "kind": "coupon", "campaign_id": "camp-1", "points_price": 500}),
        )
        .await;
    assert_field_error(&got, "campaign_id");
    let coupon = reward(
        &app,
        &t.admin,
        json!({"code": "C-10", "name": "10 % coupon", "kind": "coupon", "campaign_id": camp_id, "points_price": 500}),
    )
    .await;
    assert_eq!(coupon["campaign_id"], camp_id.as_str());

    // Read, list.
    let (s, got) = app.get(&t.admin, &format!("/api/v1/rewards/{rid}")).await;
    assert_eq!(s, 200);
    assert_eq!(got, v);
    assert_error(&app.get(&t.admin, "/api/v1/rewards/nope").await, 404, "not_found");
    let (_, list) = app.get(&t.admin, "/api/v1/rewards").await;
    assert_eq!(list["rewards"].as_array().unwrap().len(), 2);
    let (_, page) = app.get(&t.admin, "/api/v1/rewards?limit=1").await;
    assert_eq!(page["rewards"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, page2) = app.get(&t.admin, &format!("/api/v1/rewards?limit=1&cursor={cursor}")).await;
    assert_eq!(page2["rewards"][0]["code"], "C-10");
    assert_eq!(page2["next_cursor"], Value::Null);
    assert_field_error(&app.get(&t.admin, "/api/v1/rewards?colour=red").await, "colour");
    assert_field_error(&app.get(&t.admin, "/api/v1/rewards?include_archived=maybe").await, "include_archived");

    // PUT replaces; read-only fields sent back are ignored; an identical PUT makes no
    // new version.
    let mut put = got.clone();
    put["name"] = json!("Steel thermos");
    put["stock"] = json!(12);
    let (s, p) = app.put(&t.admin, &format!("/api/v1/rewards/{rid}"), put.clone()).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["name"], "Steel thermos");
    assert_eq!(p["stock_left"], 12);
    assert_eq!(p["version"], 2);
    let (_, same) = app.put(&t.admin, &format!("/api/v1/rewards/{rid}"), p.clone()).await;
    assert_eq!(same["version"], 2);
    // Fields left out take their defaults.
    let (_, minimal) =
        app.put(&t.admin, &format!("/api/v1/rewards/{rid}"), json!({"code": "THERMOS", "name": "T", "points_price": 5})).await;
    assert_eq!(minimal["tiers"], json!([]));
    assert_eq!(minimal["stock"], Value::Null);
    assert_eq!(minimal["stock_left"], Value::Null);
    assert_eq!(minimal["version"], 3);
    assert_error(
        &app.put(&t.admin, &format!("/api/v1/rewards/{rid}"), json!({"code": "C-10", "name": "T", "points_price": 5})).await,
        409,
        "reward_exists",
    );
    assert_error(&app.put(&t.admin, "/api/v1/rewards/nope", json!({"code": "Z", "name": "T", "points_price": 5})).await, 404, "not_found");

    // DELETE archives: gone from the list, code free again, no more changes.
    let (s, a) = app.delete(&t.admin, &format!("/api/v1/rewards/{rid}")).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["archived"], true);
    assert!(a["archived_at"].is_string());
    let (s, again) = app.delete(&t.admin, &format!("/api/v1/rewards/{rid}")).await;
    assert_eq!((s, &again["archived_at"]), (200, &a["archived_at"]));
    let (_, list) = app.get(&t.admin, "/api/v1/rewards").await;
    assert_eq!(list["rewards"].as_array().unwrap().len(), 1);
    let (_, all) = app.get(&t.admin, "/api/v1/rewards?include_archived=true").await;
    assert_eq!(all["rewards"].as_array().unwrap().len(), 2);
    assert_error(
        &app.put(&t.admin, &format!("/api/v1/rewards/{rid}"), json!({"code": "THERMOS", "name": "T", "points_price": 5})).await,
        409,
        "reward_archived",
    );
    reward(&app, &t.admin, json!({"code": "THERMOS", "name": "New thermos", "points_price": 2500})).await;

    // Roles: analyst and pos read, only admin writes.
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    let (_, analyst) = app.api_key(&t.admin, json!({"role": "analyst"})).await;
    for key in [&pos, &analyst] {
        assert_eq!(app.get(key, "/api/v1/rewards").await.0, 200);
        assert_eq!(app.get(key, &format!("/api/v1/rewards/{rid}")).await.0, 200);
        assert_error(&app.post(key, "/api/v1/rewards", json!({"code": "Q", "name": "Q", "points_price": 1})).await, 403, "forbidden");
        assert_error(
            &app.put(key, &format!("/api/v1/rewards/{}", id(&coupon)), json!({"code": "Q", "name": "Q", "points_price": 1})).await,
            403,
            "forbidden",
        );
        assert_error(&app.delete(key, &format!("/api/v1/rewards/{}", id(&coupon))).await, 403, "forbidden");
    }
    assert_error(&app.get("", "/api/v1/rewards").await, 401, "unauthorized");
    // Every change is audited.
    let (_, audit) = app.get(&t.admin, "/api/v1/audit").await;
    let actions: Vec<&str> = audit["entries"].as_array().expect("entries").iter().filter_map(|r| r["action"].as_str()).collect();
    for a in ["reward.create", "reward.update", "reward.archive"] {
        assert!(actions.contains(&a), "{a} not audited: {audit}");
    }
});

both!(redeem_debits_points_and_issues_a_code, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let m = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&t.admin, &m, 1000).await;
    let w = id(&reward(&app, &t.admin, json!({"code": "THERMOS", "name": "Thermos", "points_price": 300, "stock": 5})).await);

    let (s, v) = redeem(&app, &t.admin, &m, &w, "red-1").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["points"], 300);
    assert_eq!(v["status"], "issued");
    assert_eq!(v["reward_id"], w);
    assert_eq!(v["reward_code"], "THERMOS");
    assert_eq!(v["member_id"], m);
    assert_eq!(v["redemption_id"], "red-1");
    assert!(is_code(&v["code"]), "{v}");
    assert!(v["created_at"].is_string());
    assert_eq!(v["balance"], json!({"points": 700, "held": 0, "pending": 0, "debt": 0}));
    assert_eq!(app.balance(&t.admin, &m).await["points"], 700);

    let ledger = app.ledger_all(&t.admin, &m).await;
    assert_eq!(ledger[0]["kind"], "redeem");
    assert_eq!(ledger[0]["points"], -300);
    assert_eq!(ledger[0]["reason"], "reward THERMOS");
    let (_, r) = app.get(&t.admin, &format!("/api/v1/rewards/{w}")).await;
    assert_eq!((r["stock_left"].as_i64(), r["redeemed_count"].as_i64()), (Some(4), Some(1)));

    // A second redemption gets another code.
    let (_, v2) = redeem(&app, &t.admin, &m, &w, "red-2").await;
    assert_ne!(v2["code"], v["code"]);
    assert_eq!(v2["balance"]["points"], 400);

    // The redemption reads back, and shows in the member's list.
    let (s, got) = app.get(&t.admin, &format!("/api/v1/reward-redemptions/{}", id(&v))).await;
    assert_eq!(s, 200);
    assert_eq!(got["code"], v["code"]);
    let (_, list) = app.get(&t.admin, &format!("/api/v1/reward-redemptions?member_id={m}")).await;
    assert_eq!(list["redemptions"].as_array().unwrap().len(), 2);
    assert_eq!(list["redemptions"][0]["redemption_id"], "red-2", "newest first");
    let (_, audit) = app.get(&t.admin, "/api/v1/audit").await;
    assert!(audit.to_string().contains("reward.redeem"), "{audit}");
    app.assert_ledger_consistent(&t).await;
    assert_rewards_consistent(&app, &t.admin).await;
});

both!(redeem_is_idempotent_on_redemption_id, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let m = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    let other = app.member_id(&t.admin, json!({"phone": "+79120000002"})).await;
    app.give(&t.admin, &m, 1000).await;
    let w = id(&reward(&app, &t.admin, json!({"code": "MUG", "name": "Mug", "points_price": 100})).await);
    let w2 = id(&reward(&app, &t.admin, json!({"code": "CAP", "name": "Cap", "points_price": 100})).await);

    let first = redeem(&app, &t.admin, &m, &w, "k-1").await;
    assert_eq!(first.0, 201, "{}", first.1);
    let again = redeem(&app, &t.admin, &m, &w, "k-1").await;
    assert_eq!(again, first, "a replay answers the same");
    assert_eq!(app.balance(&t.admin, &m).await["points"], 900, "debited once");
    // The same key for another reward or member is a conflict, checked before lookups.
    assert_error(&redeem(&app, &t.admin, &m, &w2, "k-1").await, 409, "redemption_conflict");
    assert_error(&redeem(&app, &t.admin, &other, &w, "k-1").await, 409, "redemption_conflict");
    assert_error(&redeem(&app, &t.admin, "nobody", &w, "k-1").await, 409, "redemption_conflict");
    // Shape, then lookups.
    let path = format!("/api/v1/members/{m}/rewards/{w}/redeem");
    assert_field_error(&app.post(&t.admin, &path, json!({})).await, "redemption_id");
    assert_field_error(&app.post(&t.admin, &path, json!({"redemption_id": "k-9", "points": 5})).await, "points");
    assert_field_error(&app.post(&t.admin, &path, json!({"redemption_id": ""})).await, "redemption_id");
    assert_error(&app.post_raw(&t.admin, &path, "").await, 400, "invalid_json");
    assert_error(&redeem(&app, &t.admin, "nobody", &w, "k-2").await, 404, "not_found");
    assert_error(&redeem(&app, &t.admin, &m, "nothing", "k-3").await, 404, "not_found");
    // Failed requests wrote nothing: the keys are still free.
    let (s, _) = redeem(&app, &t.admin, &m, &w2, "k-2").await;
    assert_eq!(s, 201);
    assert_eq!(app.balance(&t.admin, &m).await["points"], 800);
    app.assert_ledger_consistent(&t).await;
    assert_rewards_consistent(&app, &t.admin).await;
});

both!(every_reason_a_member_cannot_redeem, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    // Gold from 1000.00 of spend; nothing earned, so balances stay as given.
    app.program(
        &t.admin,
        json!({"earn": {"points_per_unit": 0},
               "tiers": [{"code": "bronze", "min_spend_minor": 0}, {"code": "gold", "min_spend_minor": 100000}]}),
    )
    .await;
    let store = app.store(&t.admin, "S1").await;
    let m = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&t.admin, &m, 1000).await;
    let now = unix_now();
    let mk = |code: &str, extra: Value| {
        let mut b = json!({"code": code, "name": code, "points_price": 100});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let points = id(&reward(&app, &t.admin, mk("POINTS", json!({"points_price": 1350}))).await);
    let gold = id(&reward(&app, &t.admin, mk("GOLD", json!({"tiers": ["gold"]}))).await);
    let empty = id(&reward(&app, &t.admin, mk("EMPTY", json!({"stock": 0}))).await);
    let soon = id(&reward(&app, &t.admin, mk("SOON", json!({"valid_from": rfc3339(now + 3 * DAY)}))).await);
    let ended =
        id(&reward(&app, &t.admin, mk("ENDED", json!({"valid_from": rfc3339(now - 3 * DAY), "valid_to": rfc3339(now - DAY)}))).await);
    let once = id(&reward(&app, &t.admin, mk("ONCE", json!({"per_member_limit": 1}))).await);
    let off = id(&reward(&app, &t.admin, mk("OFF", json!({"active": false}))).await);
    let gone = id(&reward(&app, &t.admin, mk("GONE", json!({}))).await);
    app.delete(&t.admin, &format!("/api/v1/rewards/{gone}")).await;
    let (s, v) = redeem(&app, &t.admin, &m, &once, "once-1").await;
    assert_eq!(s, 201, "{v}");

    let cat = catalogue(&app, &t.admin, &m).await;
    assert_eq!(cat["points_available"], 900);
    assert_eq!(cat["tier"], "bronze");
    assert!(cat["rewards"].as_array().unwrap().iter().all(|r| r["id"] != gone), "archived rewards are not listed");
    let cases = [
        (&points, "insufficient_points", "needs 450 more points".to_owned()),
        (&gold, "tier_not_eligible", "gold tier only".to_owned()),
        (&empty, "out_of_stock", "out of stock".to_owned()),
        (&soon, "reward_unavailable", format!("not yet available (from {})", rfc3339(now + 3 * DAY))),
        (&ended, "reward_unavailable", format!("ended ({})", rfc3339(now - DAY))),
        (&once, "reward_limit_reached", "limit reached (1 per member)".to_owned()),
        (&off, "reward_unavailable", "not available".to_owned()),
    ];
    for (w, code, reason) in &cases {
        let e = entry(&cat, w);
        assert_eq!(e["can_redeem"], false, "{e}");
        assert_eq!(e["reason_code"], *code, "{e}");
        assert_eq!(e["reason"], reason.as_str(), "{e}");
        // Redeeming answers the same rule as a 422, and writes nothing.
        let got = redeem(&app, &t.admin, &m, w, &format!("try-{w}")).await;
        assert_error(&got, 422, code);
        assert_eq!(got.1["error"]["message"], reason.as_str());
    }
    assert_error(&redeem(&app, &t.admin, &m, &gone, "try-gone").await, 422, "reward_unavailable");
    assert_eq!(entry(&cat, &once)["member_redeemed"], 1);
    assert_eq!(app.balance(&t.admin, &m).await["points"], 900);

    // A purchase makes the member gold; the gold reward opens.
    let pos = app.pos_key(&t.admin, &store, None).await;
    app.checkout(&pos, receipt("R-1", &store, Some(&m), 100000, None)).await;
    let cat = catalogue(&app, &pos, &m).await;
    assert_eq!(cat["tier"], "gold");
    let e = entry(&cat, &gold);
    assert_eq!((e["can_redeem"].clone(), e["reason"].clone(), e["reason_code"].clone()), (json!(true), Value::Null, Value::Null));
    assert_eq!(redeem(&app, &pos, &m, &gold, "gold-1").await.0, 201);
    // Cancelling the limited reward's redemption frees the member's limit again.
    let (_, list) = app.get(&t.admin, &format!("/api/v1/reward-redemptions?member_id={m}&reward_id={once}")).await;
    let once_red = id(&list["redemptions"][0]);
    assert_eq!(app.post(&t.admin, &format!("/api/v1/reward-redemptions/{once_red}/cancel"), json!({})).await.0, 200);
    assert_eq!(entry(&catalogue(&app, &t.admin, &m).await, &once)["can_redeem"], true);
    // min_balance counts: points that must stay are not available.
    app.program(
        &t.admin,
        json!({"earn": {"points_per_unit": 0}, "redeem": {"min_balance": 850},
               "tiers": [{"code": "bronze", "min_spend_minor": 0}, {"code": "gold", "min_spend_minor": 100000}]}),
    )
    .await;
    let cat = catalogue(&app, &t.admin, &m).await;
    assert_eq!(cat["points_available"], 50);
    assert_eq!(entry(&cat, &once)["reason"], "needs 50 more points");
    assert_error(&app.get(&t.admin, "/api/v1/members/nobody/rewards").await, 404, "not_found");
    app.assert_ledger_consistent(&t).await;
    assert_rewards_consistent(&app, &t.admin).await;
});

/// Send `n` redemptions at once; answers (status, body).
async fn redeem_at_once(app: &TestApp, key: &str, reqs: Vec<(String, String, String)>) -> Vec<(u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (member, reward, rid) in reqs {
        let (client, url, key) = (app.client.clone(), app.url.clone(), key.to_owned());
        tasks.spawn(async move {
            let resp = client
                .post(format!("{url}/api/v1/members/{member}/rewards/{reward}/redeem"))
                .bearer_auth(key)
                .json(&json!({"redemption_id": rid}))
                .send()
                .await
                .expect("request");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.expect("json"))
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.push(r.expect("task"));
    }
    out
}

both!(concurrent_redemptions_never_oversell_stock, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let w = id(&reward(&app, &t.admin, json!({"code": "LAST5", "name": "Five left", "points_price": 100, "stock": 5})).await);
    let mut members = Vec::new();
    for i in 0..20 {
        let m = app.member_id(&t.admin, json!({"phone": format!("+7912000{i:04}")})).await;
        app.give(&t.admin, &m, 150).await;
        members.push(m);
    }
    let reqs = members.iter().enumerate().map(|(i, m)| (m.clone(), w.clone(), format!("r-{i}"))).collect();
    let answers = redeem_at_once(&app, &t.admin, reqs).await;
    let ok = answers.iter().filter(|(s, _)| *s == 201).count();
    for (s, v) in &answers {
        assert!(*s == 201 || (*s == 422 && v["error"]["code"] == "out_of_stock"), "{s}: {v}");
    }
    assert_eq!(ok, 5, "{answers:?}");
    let (_, r) = app.get(&t.admin, &format!("/api/v1/rewards/{w}")).await;
    assert_eq!((r["stock_left"].as_i64(), r["redeemed_count"].as_i64()), (Some(0), Some(5)));
    let mut total = 0;
    for m in &members {
        total += app.balance(&t.admin, m).await["points"].as_i64().unwrap();
    }
    assert_eq!(total, 20 * 150 - 5 * 100);
    // Restocking by PUT counts the units already taken.
    let mut put = r.clone();
    put["stock"] = json!(6);
    let (_, r) = app.put(&t.admin, &format!("/api/v1/rewards/{w}"), put).await;
    assert_eq!(r["stock_left"], 1);
    app.assert_ledger_consistent(&t).await;
    assert_rewards_consistent(&app, &t.admin).await;
});

both!(concurrent_redemptions_never_overspend_points, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let m = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&t.admin, &m, 950).await;
    let w = id(&reward(&app, &t.admin, json!({"code": "MUG", "name": "Mug", "points_price": 300})).await);
    // Twenty distinct redemptions, plus each of the first four sent twice.
    let mut reqs: Vec<(String, String, String)> = (0..20).map(|i| (m.clone(), w.clone(), format!("r-{i}"))).collect();
    reqs.extend((0..4).map(|i| (m.clone(), w.clone(), format!("r-{i}"))));
    let answers = redeem_at_once(&app, &t.admin, reqs).await;
    let mut issued = std::collections::HashMap::new();
    for (s, v) in &answers {
        match s {
            201 => {
                let prev = issued.insert(v["redemption_id"].as_str().unwrap().to_owned(), v.clone());
                assert!(prev.is_none_or(|p| &p == v), "the same redemption answered twice differently");
            }
            422 => assert_eq!(v["error"]["code"], "insufficient_points", "{v}"),
            _ => panic!("unexpected {s}: {v}"),
        }
    }
    assert_eq!(issued.len(), 3, "950 points pay for three rewards of 300");
    assert_eq!(app.balance(&t.admin, &m).await["points"], 50);
    let ledger = app.ledger_all(&t.admin, &m).await;
    assert_eq!(ledger.iter().filter(|e| e["kind"] == "redeem").count(), 3);
    let (_, r) = app.get(&t.admin, &format!("/api/v1/rewards/{w}")).await;
    assert_eq!(r["redeemed_count"], 3);
    app.assert_ledger_consistent(&t).await;
    assert_rewards_consistent(&app, &t.admin).await;
});

both!(cancel_returns_points_to_their_lots_and_fulfilled_cannot_be_cancelled, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    // Two lots with different expiries: 500 expiring in 30 days, 500 in 60 days.
    app.program(&t.admin, json!({"expiry": {"policy": "rolling_days", "days": 30}})).await;
    let m = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    app.give(&t.admin, &m, 500).await;
    app.program(&t.admin, json!({"expiry": {"policy": "rolling_days", "days": 60}})).await;
    app.give(&t.admin, &m, 500).await;
    let before = app.balance(&t.admin, &m).await["expiring"].clone();
    assert_eq!(before.as_array().unwrap().len(), 2, "{before}");
    assert_eq!(before[0]["points"], 500);
    assert_eq!(before[1]["points"], 500);
    let w = id(&reward(&app, &t.admin, json!({"code": "KETTLE", "name": "Kettle", "points_price": 700, "stock": 1})).await);

    let (s, v) = redeem(&app, &t.admin, &m, &w, "red-1").await;
    assert_eq!(s, 201, "{v}");
    // Soonest-expiring first: all of the 30-day lot, 200 of the 60-day lot.
    let mid = app.balance(&t.admin, &m).await;
    assert_eq!(mid["points"], 300);
    assert_eq!(mid["expiring"], json!([{"points": 300, "expires_at": before[1]["expires_at"]}]));
    let (_, r) = app.get(&t.admin, &format!("/api/v1/rewards/{w}")).await;
    assert_eq!(r["stock_left"], 0);

    // Cancel: the points go back where they came from, with their expiry.
    let rid = id(&v);
    let (s, c) = app.post(&t.admin, &format!("/api/v1/reward-redemptions/{rid}/cancel"), json!({"reason": "changed mind"})).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["status"], "cancelled");
    assert!(c["cancelled_at"].is_string());
    assert_eq!(c["balance"]["points"], 1000);
    assert_eq!(app.balance(&t.admin, &m).await["expiring"], before);
    let ledger = app.ledger_all(&t.admin, &m).await;
    assert_eq!(ledger[0]["kind"], "return_redeem");
    assert_eq!(ledger[0]["points"], 700);
    assert_eq!(ledger[0]["reason"], "reward KETTLE cancelled");
    let (_, r) = app.get(&t.admin, &format!("/api/v1/rewards/{w}")).await;
    assert_eq!((r["stock_left"].as_i64(), r["redeemed_count"].as_i64()), (Some(1), Some(0)), "the unit is back in stock");
    // Cancelling again changes nothing; a cancelled redemption cannot be fulfilled.
    let (s, c2) = app.post(&t.admin, &format!("/api/v1/reward-redemptions/{rid}/cancel"), json!({})).await;
    assert_eq!((s, &c2["status"]), (200, &json!("cancelled")));
    assert_eq!(c2["balance"]["points"], 1000);
    assert_eq!(app.ledger_all(&t.admin, &m).await.len(), ledger.len());
    assert_error(&app.post(&t.admin, &format!("/api/v1/reward-redemptions/{rid}/fulfil"), json!({})).await, 409, "redemption_cancelled");
    // The replay of the first redeem still answers what it answered.
    assert_eq!(redeem(&app, &t.admin, &m, &w, "red-1").await, (201, v.clone()));
    assert_eq!(app.balance(&t.admin, &m).await["points"], 1000);

    // Redeem again, find it by its code the way a cashier types it, fulfil it.
    let (_, v2) = redeem(&app, &t.admin, &m, &w, "red-2").await;
    let code = v2["code"].as_str().unwrap();
    let typed = format!("{}-{} {}", &code[..4].to_lowercase(), &code[4..8], &code[8..]);
    let (s, found) = app.post(&t.admin, "/api/v1/reward-redemptions/lookup", json!({"code": typed})).await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["id"], v2["id"]);
    assert_error(&app.post(&t.admin, "/api/v1/reward-redemptions/lookup", json!({"code": "ZZZZZZZZZZZZ"})).await, 404, "not_found");
    assert_field_error(&app.post(&t.admin, "/api/v1/reward-redemptions/lookup", json!({})).await, "code");
    let rid2 = id(&v2);
    // An empty body is fine for fulfil and cancel; an unknown field is not.
    assert_field_error(&app.post(&t.admin, &format!("/api/v1/reward-redemptions/{rid2}/fulfil"), json!({"x": 1})).await, "x");
    let (s, f) = app.request(reqwest::Method::POST, &t.admin, &format!("/api/v1/reward-redemptions/{rid2}/fulfil"), None).await;
    assert_eq!(s, 200, "{f}");
    assert_eq!(f["status"], "fulfilled");
    assert!(f["fulfilled_at"].is_string());
    let (s, f2) = app.post(&t.admin, &format!("/api/v1/reward-redemptions/{rid2}/fulfil"), json!({"note": "again"})).await;
    assert_eq!((s, &f2["fulfilled_at"]), (200, &f["fulfilled_at"]));
    assert_error(&app.post(&t.admin, &format!("/api/v1/reward-redemptions/{rid2}/cancel"), json!({})).await, 409, "redemption_fulfilled");
    assert_eq!(app.balance(&t.admin, &m).await["points"], 300);
    let (_, list) = app.get(&t.admin, "/api/v1/reward-redemptions?status=fulfilled").await;
    assert_eq!(list["redemptions"].as_array().unwrap().len(), 1);
    let (_, list) = app.get(&t.admin, "/api/v1/reward-redemptions?status=cancelled").await;
    assert_eq!(list["redemptions"][0]["id"], rid);
    assert_field_error(&app.get(&t.admin, "/api/v1/reward-redemptions?status=lost").await, "status");
    assert_error(&app.post(&t.admin, "/api/v1/reward-redemptions/nope/cancel", json!({})).await, 404, "not_found");
    assert_error(&app.post(&t.admin, "/api/v1/reward-redemptions/nope/fulfil", json!({})).await, 404, "not_found");
    app.assert_ledger_consistent(&t).await;
    assert_rewards_consistent(&app, &t.admin).await;
});

both!(pos_and_analyst_keys, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let s1 = app.store(&t.admin, "S1").await;
    let s2 = app.store(&t.admin, "S2").await;
    let pos1 = app.pos_key(&t.admin, &s1, None).await;
    let pos2 = app.pos_key(&t.admin, &s2, None).await;
    let (_, analyst) = app.api_key(&t.admin, json!({"role": "analyst"})).await;
    let m = app.member_id(&pos1, json!({"phone": "+79120000001"})).await;
    app.give(&t.admin, &m, 1000).await;
    let w = id(&reward(&app, &t.admin, json!({"code": "MUG", "name": "Mug", "points_price": 100})).await);

    // A till redeems at the counter; the redemption remembers the store.
    assert_eq!(catalogue(&app, &pos1, &m).await["rewards"].as_array().unwrap().len(), 1);
    let (s, v) = redeem(&app, &pos1, &m, &w, "p-1").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["store_id"], s1);
    let rid = id(&v);
    // The analyst reads but does not redeem, fulfil or cancel.
    assert_eq!(catalogue(&app, &analyst, &m).await["member_id"], m);
    assert_error(&redeem(&app, &analyst, &m, &w, "a-1").await, 403, "forbidden");
    assert_eq!(app.get(&analyst, "/api/v1/reward-redemptions").await.0, 200);
    assert_eq!(app.get(&analyst, &format!("/api/v1/reward-redemptions/{rid}")).await.0, 200);
    assert_error(&app.post(&analyst, &format!("/api/v1/reward-redemptions/{rid}/fulfil"), json!({})).await, 403, "forbidden");
    assert_error(&app.post(&analyst, &format!("/api/v1/reward-redemptions/{rid}/cancel"), json!({})).await, 403, "forbidden");
    // A till does not list every redemption, but finds one by code.
    assert_error(&app.get(&pos1, "/api/v1/reward-redemptions").await, 403, "forbidden");
    let (s, found) = app.post(&pos2, "/api/v1/reward-redemptions/lookup", json!({"code": v["code"]})).await;
    assert_eq!((s, &found["id"]), (200, &v["id"]));
    // Another store's till may not cancel it; its own store's may.
    assert_error(&app.post(&pos2, &format!("/api/v1/reward-redemptions/{rid}/cancel"), json!({})).await, 403, "forbidden");
    let (s, c) = app.post(&pos1, &format!("/api/v1/reward-redemptions/{rid}/cancel"), json!({})).await;
    assert_eq!((s, &c["status"]), (200, &json!("cancelled")), "{c}");
    // Any till may hand a reward over (the code is the proof).
    let (_, v2) = redeem(&app, &pos1, &m, &w, "p-2").await;
    let (s, f) = app.post(&pos2, &format!("/api/v1/reward-redemptions/{}/fulfil", id(&v2)), json!({})).await;
    assert_eq!((s, &f["status"]), (200, &json!("fulfilled")), "{f}");
    // Lookups by a till are rate limited.
    let mut limited = false;
    for _ in 0..70 {
        let (s, _) = app.post(&pos2, "/api/v1/reward-redemptions/lookup", json!({"code": "ZZZZZZZZZZZZ"})).await;
        if s == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "pos lookups by code are rate limited");
    assert_eq!(app.balance(&t.admin, &m).await["points"], 900);
    app.assert_ledger_consistent(&t).await;
    assert_rewards_consistent(&app, &t.admin).await;
});

both!(tenants_are_isolated, |app: TestApp| async move {
    let a = app.tenant("Shop A").await;
    let b = app.tenant("Shop B").await;
    let ma = app.member_id(&a.admin, json!({"phone": "+79120000001"})).await;
    let mb = app.member_id(&b.admin, json!({"phone": "+79120000001"})).await;
    app.give(&a.admin, &ma, 1000).await;
    app.give(&b.admin, &mb, 1000).await;
    let wa = reward(&app, &a.admin, json!({"code": "MUG", "name": "Mug", "points_price": 100, "stock": 3})).await;
    let wa_id = id(&wa);
    // The same code in another tenant is no clash.
    let wb_id = id(&reward(&app, &b.admin, json!({"code": "MUG", "name": "Mug B", "points_price": 100})).await);
    let (_, red) = redeem(&app, &a.admin, &ma, &wa_id, "shared-key").await;
    let red_id = id(&red);

    let body = json!({"code": "MUG", "name": "Stolen", "points_price": 1});
    assert_error(&app.get(&b.admin, &format!("/api/v1/rewards/{wa_id}")).await, 404, "not_found");
    assert_error(&app.put(&b.admin, &format!("/api/v1/rewards/{wa_id}"), body).await, 404, "not_found");
    assert_error(&app.delete(&b.admin, &format!("/api/v1/rewards/{wa_id}")).await, 404, "not_found");
    let (_, list) = app.get(&b.admin, "/api/v1/rewards").await;
    assert_eq!(list["rewards"].as_array().unwrap().len(), 1);
    assert_eq!(list["rewards"][0]["id"], wb_id);
    assert_error(&app.get(&b.admin, &format!("/api/v1/members/{ma}/rewards")).await, 404, "not_found");
    let cat = catalogue(&app, &b.admin, &mb).await;
    assert!(cat["rewards"].as_array().unwrap().iter().all(|r| r["id"] != wa_id.as_str()));
    // Redeeming A's reward with B's key: for A's member, for B's own member.
    assert_error(&redeem(&app, &b.admin, &ma, &wa_id, "b-1").await, 404, "not_found");
    assert_error(&redeem(&app, &b.admin, &mb, &wa_id, "b-2").await, 404, "not_found");
    assert_error(&redeem(&app, &b.admin, &ma, &wb_id, "b-3").await, 404, "not_found");
    // Idempotency keys are per tenant: B may use A's key.
    assert_eq!(redeem(&app, &b.admin, &mb, &wb_id, "shared-key").await.0, 201);
    // A's redemption is invisible to B.
    assert_error(&app.get(&b.admin, &format!("/api/v1/reward-redemptions/{red_id}")).await, 404, "not_found");
    assert_error(&app.post(&b.admin, "/api/v1/reward-redemptions/lookup", json!({"code": red["code"]})).await, 404, "not_found");
    assert_error(&app.post(&b.admin, &format!("/api/v1/reward-redemptions/{red_id}/fulfil"), json!({})).await, 404, "not_found");
    assert_error(&app.post(&b.admin, &format!("/api/v1/reward-redemptions/{red_id}/cancel"), json!({})).await, 404, "not_found");
    let (_, reds) = app.get(&b.admin, &format!("/api/v1/reward-redemptions?member_id={ma}")).await;
    assert_eq!(reds["redemptions"], json!([]));
    let (_, reds) = app.get(&b.admin, "/api/v1/reward-redemptions").await;
    assert_eq!(reds["redemptions"].as_array().unwrap().len(), 1);
    // A is untouched.
    let (_, r) = app.get(&a.admin, &format!("/api/v1/rewards/{wa_id}")).await;
    assert_eq!(r, {
        let mut w = wa.clone();
        w["stock_left"] = json!(2);
        w["redeemed_count"] = json!(1);
        w
    });
    let (_, got) = app.get(&a.admin, &format!("/api/v1/reward-redemptions/{red_id}")).await;
    assert_eq!(got["status"], "issued");
    assert_eq!(app.balance(&a.admin, &ma).await["points"], 900);
    app.assert_ledger_consistent(&a).await;
    app.assert_ledger_consistent(&b).await;
    assert_rewards_consistent(&app, &a.admin).await;
    assert_rewards_consistent(&app, &b.admin).await;
});

both!(migrations_apply_with_a_gap_in_versions, |app: TestApp| async move {
    // Version 2 belongs to another work item; the migrator applies each missing version,
    // so 1 and 3 are recorded and running again changes nothing.
    kopilka_store::migrate::run(&app.state.db).await.expect("migrate again");
    let rows =
        sqlx::query("SELECT version FROM schema_migrations ORDER BY version").fetch_all(app.state.db.pool()).await.expect("versions");
    let versions: Vec<i64> = rows.iter().map(|r| sqlx::Row::get::<i64, _>(r, "version")).collect();
    assert!(versions.contains(&1) && versions.contains(&3), "{versions:?}");
    assert_eq!(kopilka_store::migrate::current_version(&app.state.db).await.expect("version"), *versions.last().unwrap());
});

both!(cancel_after_the_lot_expired_expires_the_returned_points, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    // An imported opening balance that expires in two seconds, and one that never does.
    let expires = unix_now() + 2;
    let csv = format!("external_id,points,points_expires_at\nX-1,400,{}\n", rfc3339(expires));
    let resp = app.client.post(format!("{}/api/v1/members/import", app.url)).bearer_auth(&t.admin).body(csv).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().await.unwrap());
    let (_, found) = app.post(&t.admin, "/api/v1/members/lookup", json!({"external_id": "X-1"})).await;
    let m = id(&found);
    app.give(&t.admin, &m, 100).await;
    let w = id(&reward(&app, &t.admin, json!({"code": "PEN", "name": "Pen", "points_price": 450})).await);
    // Soonest-expiring first: 400 from the expiring lot, 50 from the other.
    let (s, v) = redeem(&app, &t.admin, &m, &w, "red-1").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["balance"]["points"], 50);
    while unix_now() <= expires {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The 400 land in their lot, which has expired, and expire at once; the 50 stay.
    let (s, c) = app.post(&t.admin, &format!("/api/v1/reward-redemptions/{}/cancel", id(&v)), json!({})).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["balance"]["points"], 100);
    let ledger = app.ledger_all(&t.admin, &m).await;
    let kinds: Vec<(&str, i64)> = ledger.iter().take(2).map(|e| (e["kind"].as_str().unwrap(), e["points"].as_i64().unwrap())).collect();
    assert_eq!(kinds, [("expire", -400), ("return_redeem", 450)]);
    assert_eq!(app.balance(&t.admin, &m).await["points"], 100);
    app.assert_ledger_consistent(&t).await;
    assert_rewards_consistent(&app, &t.admin).await;
});

both!(nul_characters_in_paths_are_unknown_ids, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let m = app.member_id(&t.admin, json!({"phone": "+79120000001"})).await;
    let w = id(&reward(&app, &t.admin, json!({"code": "MUG", "name": "Mug", "points_price": 1})).await);
    for path in ["/api/v1/rewards/a%00b", "/api/v1/reward-redemptions/%00", "/api/v1/members/%00/rewards"] {
        assert_error(&app.get(&t.admin, path).await, 404, "not_found");
    }
    assert_error(&app.put(&t.admin, "/api/v1/rewards/%00", json!({"code": "Z", "name": "Z", "points_price": 1})).await, 404, "not_found");
    assert_error(&app.delete(&t.admin, "/api/v1/rewards/%00").await, 404, "not_found");
    assert_error(&redeem(&app, &t.admin, "a%00", &w, "k-1").await, 404, "not_found");
    assert_error(&redeem(&app, &t.admin, &m, "%00", "k-2").await, 404, "not_found");
    for action in ["fulfil", "cancel"] {
        assert_error(&app.post(&t.admin, &format!("/api/v1/reward-redemptions/%00/{action}"), json!({})).await, 404, "not_found");
    }
    assert_field_error(&app.post(&t.admin, "/api/v1/reward-redemptions/lookup", json!({"code": "A\u{0}"})).await, "code");
    assert_field_error(&app.get(&t.admin, "/api/v1/reward-redemptions?member_id=%00").await, "member_id");
});
