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

async fn job_row(app: &TestApp, key: &str) -> (i64, i64) {
    let mut c = app.state.db.pool().acquire().await.unwrap();
    sqlx::query_as("SELECT run_at, locked_until FROM jobs WHERE tenant_id = 'jq' AND kind = 'test' AND job_key = $1")
        .bind(key)
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

/// The job row's version on PostgreSQL (the transaction that wrote it); None on SQLite.
async fn row_version(app: &TestApp, key: &str) -> Option<String> {
    if app.state.db.backend() != kopilka_store::Backend::Postgres {
        return None;
    }
    let mut c = app.state.db.pool().acquire().await.unwrap();
    let (v,): (String,) = sqlx::query_as("SELECT xmin::text FROM jobs WHERE tenant_id = 'jq' AND kind = 'test' AND job_key = $1")
        .bind(key)
        .fetch_one(&mut *c)
        .await
        .unwrap();
    Some(v)
}

/// Queue a job as the till's write batches do: deferred to the commit, or at once.
async fn queue_job(app: &TestApp, deferred: bool, key: &str, at: i64) {
    if deferred {
        let mut tx = app.state.db.begin().await.unwrap();
        tx.defer_appends();
        kopilka_store::jobs::enqueue_in(&mut tx, "jq", "test", key, at).await.unwrap();
        tx.commit().await.unwrap();
    } else {
        let mut c = app.state.db.pool().acquire().await.unwrap();
        kopilka_store::jobs::enqueue(&mut c, "jq", "test", key, at).await.unwrap();
    }
}

// Queueing a job again: it keeps the earlier due time; one claimed meanwhile runs again
// (its worker's completion leaves it); and queueing one that already waits, due no later,
// writes nothing (the till queues a tier check per receipt): on PostgreSQL the row keeps
// its version.
both!(queueing_a_job_again_keeps_the_earlier_time_and_reruns_a_claimed_one, |app: TestApp| async move {
    use kopilka_store::jobs;
    for (deferred, key) in [(true, "d"), (false, "i")] {
        queue_job(&app, deferred, key, 100).await;
        let version = row_version(&app, key).await;
        queue_job(&app, deferred, key, 200).await;
        assert_eq!(job_row(&app, key).await, (100, 0), "a later time leaves a waiting job be");
        assert_eq!(row_version(&app, key).await, version, "and does not write it");
        queue_job(&app, deferred, key, 50).await;
        assert_eq!(job_row(&app, key).await, (50, 0), "an earlier time moves it");
    }
    // A claimed job queued again, even for later, is released to run again, and its
    // worker's completion does not delete it.
    let claimed = jobs::claim(&app.state.db, 1_000, 60, 100).await.unwrap();
    let job = claimed.iter().find(|j| j.tenant_id == "jq" && j.key == "d").expect("claimed").clone();
    assert_ne!(job_row(&app, "d").await.1, 0);
    queue_job(&app, true, "d", 5_000).await;
    assert_eq!(job_row(&app, "d").await, (50, 0), "a claimed job queued again is claimable again");
    let mut c = app.state.db.pool().acquire().await.unwrap();
    jobs::complete(&mut c, &job).await.unwrap();
    assert_eq!(job_row(&app, "d").await, (50, 0), "and its worker's completion leaves it to run again");
});
