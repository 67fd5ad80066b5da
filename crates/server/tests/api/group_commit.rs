//! Group commit: concurrent till writes share one transaction, each keeps its own answer,
//! and one request's failure does not fail the others in its batch.

use crate::both;
use crate::helpers::*;
use kopilka_server::error::ApiError;
use kopilka_server::services::Failure;
use kopilka_server::services::group_commit::Work;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::Notify;

const KIND: &str = "group-commit-test";

/// Rows of this test's kind that other connections can see (committed ones).
async fn committed(app: &TestApp, prefix: &str) -> i64 {
    let mut c = app.state.db.pool().acquire().await.unwrap();
    let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jobs WHERE tenant_id = 'gc' AND kind = $1 AND job_key LIKE $2")
        .bind(KIND)
        .bind(format!("{prefix}%"))
        .fetch_one(&mut *c)
        .await
        .unwrap();
    row.0
}

/// Insert a row with `key` in the batch's transaction; then fail as `fail` says. Answers
/// how many rows of the batch's prefix another connection saw at that moment.
fn work(app: Arc<TestApp>, key: String, fail: Option<&'static str>) -> Work {
    Box::new(move |tx| {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO jobs (tenant_id, kind, job_key, run_at, locked_until, attempts, last_error) VALUES ('gc', $1, $2, 0, 0, 0, NULL)",
            )
            .bind(KIND)
            .bind(&key)
            .execute(tx.conn())
            .await
            .map_err(|e| Failure::Store(e.into()))?;
            // A deferred append (written at the commit) must go with its request's savepoint.
            let entry = kopilka_store::ledger::Entry {
                member_id: "gc-member".into(),
                seq: key[2..].parse().unwrap(),
                id: key.clone(),
                kind: "adjust".into(),
                points: 1,
                created_at: 0,
                occurred_at: 0,
                receipt_id: None,
                reason: None,
                ref_id: None,
            };
            kopilka_store::ledger::post_entry(tx, "gc", entry).await.map_err(Failure::Store)?;
            match fail {
                Some("rule") => return Err(Failure::Api(ApiError::rule("insufficient_points", "not enough points"))),
                Some("unique") => {
                    // The same key again: a unique violation inside the request.
                    sqlx::query(
                        "INSERT INTO jobs (tenant_id, kind, job_key, run_at, locked_until, attempts, last_error) VALUES ('gc', $1, $2, 0, 0, 0, NULL)",
                    )
                    .bind(KIND)
                    .bind(&key)
                    .execute(tx.conn())
                    .await
                    .map_err(|e| Failure::Store(e.into()))?;
                }
                _ => {}
            }
            let seen = committed(&app, "b-").await;
            Ok(json!({"key": key, "seen": seen}))
        })
    })
}

both!(a_failing_request_does_not_fail_its_batch, |app: TestApp| async move {
    let app = Arc::new(app);
    let (started, go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    // A occupies the lane until every other request is queued behind it.
    let first = {
        let (app, started, go) = (app.clone(), started.clone(), go.clone());
        tokio::spawn(async move {
            let w: Work = Box::new(move |tx| {
                Box::pin(async move {
                    started.notify_one();
                    go.notified().await;
                    sqlx::query(
                        "INSERT INTO jobs (tenant_id, kind, job_key, run_at, locked_until, attempts, last_error) VALUES ('gc', $1, 'a', 0, 0, 0, NULL)",
                    )
                    .bind(KIND)
                    .execute(tx.conn())
                    .await
                    .map_err(|e| Failure::Store(e.into()))?;
                    Ok(Value::Null)
                })
            });
            app.state.group().submit("lane", w, None).await
        })
    };
    started.notified().await;
    let plan: Vec<(String, Option<&'static str>)> = (0..12)
        .map(|i| {
            let fail = match i % 4 {
                1 => Some("rule"),
                3 if i == 7 => Some("unique"),
                _ => None,
            };
            (format!("b-{i:02}"), fail)
        })
        .collect();
    let mut tasks = Vec::new();
    for (key, fail) in plan.clone() {
        let app2 = app.clone();
        tasks.push(tokio::spawn(async move { app2.state.group().submit("lane", work(app2.clone(), key, fail), None).await }));
    }
    // Let them all reach the queue, then release A.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    go.notify_one();
    first.await.unwrap().expect("A commits");

    for ((key, fail), task) in plan.iter().zip(tasks) {
        let out = task.await.unwrap();
        match (fail, out) {
            (None, Ok(v)) => {
                assert_eq!(v["key"], key.as_str());
                // Nothing of the batch was visible outside it before its one commit.
                assert_eq!(v["seen"], 0, "{key} saw committed rows of its own batch: a transaction per request?");
            }
            (Some("rule"), Err(Failure::Api(e))) => assert_eq!(e.code, "insufficient_points"),
            (Some("unique"), Err(Failure::Store(kopilka_store::StoreError::Unique(_)))) => {}
            (f, out) => panic!("{key} (fail {f:?}) answered {out:?}"),
        }
    }
    // The good requests are committed; the failed ones left nothing behind.
    let good = plan.iter().filter(|(_, f)| f.is_none()).count() as i64;
    assert_eq!(committed(&app, "b-").await, good);
    assert_eq!(committed(&app, "a").await, 1);
    for (key, fail) in &plan {
        assert_eq!(committed(&app, key).await, i64::from(fail.is_none()), "{key}");
    }
    let mut c = app.state.db.pool().acquire().await.unwrap();
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM ledger_entries WHERE tenant_id = 'gc' ORDER BY id").fetch_all(&mut *c).await.unwrap();
    let want: Vec<(String,)> = plan.iter().filter(|(_, f)| f.is_none()).map(|(k, _)| (k.clone(),)).collect();
    assert_eq!(ids, want, "the failed requests' deferred entries were dropped, the others written once");
});

/// A receipt of one line for `member`, spending `redeem` points.
fn receipt(id: &str, member: &str, price: i64, redeem: i64) -> Value {
    json!({
        "receipt_id": id,
        "member": {"member_id": member},
        "items": [{"line_no": 1, "sku": "SKU-1", "category": "goods", "quantity": 1, "unit_price_minor": price}],
        "redeem_points": redeem,
    })
}

// Many tills at once: each checkout gets its own answer (committed, insufficient points,
// receipt conflict or an idempotent replay), no member is overspent, every receipt is
// posted once, and on PostgreSQL several receipts really shared a transaction.
both!(concurrent_checkouts_keep_their_own_answers, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    // Earned points stay pending, so only the 100 given points can pay.
    app.program(&t.admin, json!({"pending_days": 1})).await;
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, Some("T1")).await;
    let mut members = Vec::new();
    for i in 0..16 {
        let m = app.member(&t.admin, json!({"name": format!("M{i}")})).await["id"].as_str().unwrap().to_owned();
        app.give(&t.admin, &m, 100).await;
        members.push(m);
    }
    let app = Arc::new(app);
    // Per member: spend 60 (ok), spend 60 again (only one of the two can pass), a body
    // that reuses the first id (conflict or, if first, committed), and the first again.
    let mut tasks = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let bodies = [
            (format!("R{i}-a"), receipt(&format!("R{i}-a"), m, 20_000, 60)),
            (format!("R{i}-b"), receipt(&format!("R{i}-b"), m, 20_000, 60)),
            (format!("R{i}-a"), receipt(&format!("R{i}-a"), m, 30_000, 0)),
            (format!("R{i}-c"), receipt(&format!("R{i}-c"), m, 200_000, 500)),
        ];
        for (id, b) in bodies {
            let (app, pos) = (app.clone(), pos.clone());
            tasks.push(tokio::spawn(async move {
                let (s, v) = app.post(&pos, "/api/v1/pos/checkout", b.clone()).await;
                (i, id, b, s, v)
            }));
        }
    }
    let mut spent = vec![0i64; members.len()];
    let mut committed_ids = std::collections::BTreeMap::new();
    for task in tasks {
        let (i, id, b, s, v) = task.await.unwrap();
        match (s, v["error"]["code"].as_str()) {
            (200, _) => {
                assert_eq!(v["status"], "committed");
                assert_eq!(v["receipt_id"], id.as_str());
                assert_eq!(v["points_redeemed"], b["redeem_points"], "{v}");
                spent[i] += v["points_redeemed"].as_i64().unwrap();
                assert!(committed_ids.insert(id.clone(), v).is_none(), "{id} committed twice");
            }
            (422, Some("insufficient_points")) => assert!(b["redeem_points"].as_i64().unwrap() > 0),
            (409, Some("receipt_conflict")) => assert!(id.ends_with("-a")),
            _ => panic!("{id} answered {s}: {v}"),
        }
    }
    for (i, m) in members.iter().enumerate() {
        assert!(spent[i] <= 100, "member {i} overspent: {}", spent[i]);
        assert_eq!(spent[i], 60, "exactly one of the two 60-point checkouts passes for member {i}");
        assert!(committed_ids.contains_key(&format!("R{i}-a")));
        let b = app.balance(&t.admin, m).await;
        let earned: i64 =
            committed_ids.iter().filter(|(k, _)| k.starts_with(&format!("R{i}-"))).map(|(_, v)| v["points_earned"].as_i64().unwrap()).sum();
        assert_eq!((b["points"].as_i64().unwrap(), b["pending"].as_i64().unwrap()), (100 - spent[i], earned), "{b}");
    }
    // A retry of a committed receipt replays its answer and posts nothing.
    let (s, v) = app.post(&pos, "/api/v1/pos/checkout", receipt("R0-b", &members[0], 20_000, 60)).await;
    if let Some(first) = committed_ids.get("R0-b") {
        assert_eq!((s, &v), (200, first));
    }
    app.assert_ledger_consistent(&t).await;
    // Several requests really shared a transaction.
    let (batches, requests) = app.state.group().stats();
    assert!(batches < requests, "{requests} requests in {batches} transactions: nothing was batched");
});

/// One checkout through a fresh SQLite server's lane (which starts with its first
/// request); then (the writer's thread, the lane threads, the CPUs this thread may use).
#[cfg(target_os = "linux")]
async fn lane_threads(app: &TestApp) -> (i32, Vec<i32>, Vec<usize>) {
    let t = app.tenant("Pinned").await;
    let store = app.store(&t.admin, "S1").await;
    let v = app.checkout(&t.admin, crate::helpers::receipt("pin-1", &store, None, 10_000, None)).await;
    assert_eq!(v["receipt_id"], "pin-1", "{v}");
    let writer = app.state.db.sqlite_writer_thread().expect("the writer's thread is known");
    let lanes = kopilka_store::affinity::threads_named("kopilka-sqlite-");
    (writer, lanes, kopilka_store::affinity::cpus_of(0).expect("this thread's CPUs"))
}

/// SQLite: the lane runs on a thread of its own, pinned with the writer connection's
/// thread to one CPU (the last the process may use), when there are several.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sqlite_lane_runs_on_the_cpu_of_the_writers_thread() {
    use kopilka_store::affinity::{cpus_of, is_batch_scheduled};
    let app = TestApp::new(Backend::Sqlite).await;
    let (writer, lanes, allowed) = lane_threads(&app).await;
    if allowed.len() < 2 {
        assert!(lanes.is_empty(), "one CPU: the lane shares the server's threads");
        return;
    }
    let last = vec![*allowed.last().unwrap()];
    assert_eq!(lanes.len(), 1, "one lane thread");
    assert_eq!(cpus_of(lanes[0]), Some(last.clone()), "the lane's thread");
    assert_eq!(cpus_of(writer), Some(last), "the writer's thread");
    assert!(is_batch_scheduled(lanes[0]), "the lane does not preempt the writer's thread (SCHED_BATCH)");
    assert!(!is_batch_scheduled(writer), "the writer's thread keeps the normal policy");
}

/// With pinning off, nothing is pinned and the lane shares the server's threads.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sqlite_lane_is_not_pinned_when_told_not_to() {
    use kopilka_server::services::group_commit::GroupConfig;
    let group = GroupConfig { pin_sqlite_lane: false, ..GroupConfig::default() };
    let config = kopilka_server::state::Config { worker: false, group, ..Default::default() };
    let app = TestApp::with_config(Backend::Sqlite, config).await;
    let (writer, lanes, allowed) = lane_threads(&app).await;
    assert_eq!(kopilka_store::affinity::cpus_of(writer), Some(allowed));
    assert!(lanes.is_empty(), "{lanes:?}");
}
