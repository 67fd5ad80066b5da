//! The worker's tier sweeps: tiers fall as receipts leave the rolling window, and a
//! programme change re-checks everyone.

use crate::both;
use crate::helpers::*;
use serde_json::json;

fn tier_events(history: &serde_json::Value) -> Vec<(serde_json::Value, serde_json::Value)> {
    let mut v: Vec<_> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "tier_changed")
        .map(|e| (e["from"].clone(), e["to"].clone()))
        .collect();
    v.reverse();
    v
}

both!(tier_falls_when_receipts_leave_the_window, |app: TestApp| async move {
    let t = app.tenant("Window").await;
    app.program(
        &t.admin,
        json!({"tier_window_days": 1, "tiers": [{"code": "bronze", "min_spend_minor": 0}, {"code": "silver", "min_spend_minor": 100000}]}),
    )
    .await;
    let store = app.store(&t.admin, "W1").await;
    let m = app.member(&t.admin, json!({"external_id": "w"})).await;
    let member = m["id"].as_str().unwrap();
    // A receipt that leaves the one-day window a few seconds from now.
    let at = unix_now() - 86_400 + 4;
    let mut body = receipt("W-1", &store, Some(member), 150000, None);
    body["occurred_at"] = json!(rfc3339(at));
    let (s, v) = app.post(&t.admin, "/api/v1/pos/checkout", body).await;
    assert_eq!(s, 200, "{v}");
    app.run_jobs().await;
    assert_eq!(app.balance(&t.admin, member).await["tier"], "silver");
    let (_, h) = app.get(&t.admin, &format!("/api/v1/members/{member}/history")).await;
    assert_eq!(tier_events(&h), vec![(json!("bronze"), json!("silver"))]);

    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(app.balance(&t.admin, member).await["tier"], "bronze", "the balance shows the tier as of now");
    app.run_jobs().await;
    let (_, h) = app.get(&t.admin, &format!("/api/v1/members/{member}/history")).await;
    assert_eq!(tier_events(&h), vec![(json!("bronze"), json!("silver")), (json!("silver"), json!("bronze"))]);
    // Running the worker again records nothing new.
    app.run_jobs().await;
    let (_, h) = app.get(&t.admin, &format!("/api/v1/members/{member}/history")).await;
    assert_eq!(tier_events(&h).len(), 2);
});

both!(a_programme_change_rechecks_every_tier, |app: TestApp| async move {
    let t = app.tenant("Retier").await;
    let store = app.store(&t.admin, "R1").await;
    let m = app.member(&t.admin, json!({"external_id": "r"})).await;
    let member = m["id"].as_str().unwrap();
    let (s, v) = app.post(&t.admin, "/api/v1/pos/checkout", receipt("R-1", &store, Some(member), 300000, None)).await;
    assert_eq!(s, 200, "{v}");
    app.run_jobs().await;
    assert_eq!(app.balance(&t.admin, member).await["tier"], "bronze");
    // Lower the silver threshold below the member's spend: the worker records the change.
    app.program(&t.admin, json!({"tiers": [{"code": "bronze", "min_spend_minor": 0}, {"code": "silver", "min_spend_minor": 200000}]}))
        .await;
    app.run_jobs().await;
    let (_, h) = app.get(&t.admin, &format!("/api/v1/members/{member}/history")).await;
    assert_eq!(tier_events(&h), vec![(json!("bronze"), json!("silver"))]);
});

// A worker that was down for hours catches up: the hourly sweep looks back to when it was
// last due, not just one period.
both!(tier_sweep_catches_up_after_downtime, |app: TestApp| async move {
    let t = app.tenant("Downtime").await;
    app.program(
        &t.admin,
        json!({"tier_window_days": 1, "offline_max_age_days": 30, "tiers": [{"code": "bronze", "min_spend_minor": 0}, {"code": "silver", "min_spend_minor": 100000}]}),
    )
    .await;
    let store = app.store(&t.admin, "D1").await;
    let m = app.member(&t.admin, json!({"external_id": "d"})).await;
    let member = m["id"].as_str().unwrap();
    app.run_jobs().await;
    // A receipt that left the one-day window five hours ago...
    let now = unix_now();
    let mut body = receipt("D-1", &store, Some(member), 150000, None);
    body["occurred_at"] = json!(rfc3339(now - 86_400 - 5 * 3600));
    let (s, v) = app.post(&t.admin, "/api/v1/pos/checkout", body).await;
    assert_eq!(s, 200, "{v}");
    // ...while the worker, down for six hours, last recorded the member as silver.
    let db = app.state.db.pool();
    sqlx::query("UPDATE balances SET tier_code = 'silver' WHERE member_id = $1").bind(member).execute(db).await.unwrap();
    sqlx::query("DELETE FROM jobs WHERE kind = 'tier'").execute(db).await.unwrap();
    sqlx::query("UPDATE jobs SET run_at = $1 WHERE kind = 'tier_sweep' AND tenant_id = $2")
        .bind(now - 6 * 3600)
        .bind(&t.id)
        .execute(db)
        .await
        .unwrap();
    app.run_jobs().await;
    let (_, h) = app.get(&t.admin, &format!("/api/v1/members/{member}/history")).await;
    assert_eq!(tier_events(&h), vec![(json!("silver"), json!("bronze"))]);
});
