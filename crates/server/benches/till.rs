//! The till path benchmark: quote and checkout over HTTP against a server in this
//! process, on SQLite and (when KOPILKA_TEST_PG_URL or the local default answers) on
//! PostgreSQL. Prints throughput and latency percentiles; compare figures only within one
//! run (the machines are shared and noisy).
//!
//!     cargo bench -p kopilka-server --bench till -- [--members N] [--seconds S] [--clients C] [--campaigns N]
//!         [--batch-max 1,64] [--lanes 8]
//!
//! `--batch-max` takes a list: each value gets its own fresh database and server, so
//! group commit (64, the default) and one transaction per request (1) compare in one run.

use kopilka_server::{AppState, Config};
use kopilka_store::Db;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Setup {
    state: AppState,
    url: String,
    key: String,
    store: String,
    members: Vec<String>,
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn setup(url: &str, members: usize, campaigns: usize, batch_max: usize) -> Setup {
    let db = Db::connect(url).await.expect("connect");
    kopilka_store::migrate::run(&db).await.expect("migrate");
    let t = kopilka_server::services::accounts::create_tenant(&db, "Bench", None, "retail").await.expect("tenant");
    let group = kopilka_server::services::group_commit::GroupConfig {
        max_batch: batch_max,
        pg_lanes: arg("--lanes", 8),
        set_based: arg("--set-based", 1) != 0,
        ..Default::default()
    };
    let state = AppState::new(db, Config { worker: false, pos_lookups_per_minute: 1_000_000, group, ..Config::default() }, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (_tx, rx) = tokio::sync::watch::channel(false);
    std::mem::forget(_tx);
    tokio::spawn(kopilka_server::serve(listener, state.clone(), rx));
    let base = format!("http://{addr}");
    let c = reqwest::Client::new();
    let store: Value = c
        .post(format!("{base}/api/v1/stores"))
        .bearer_auth(&t.api_key)
        .json(&json!({"code": "B1", "name": "Bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let store = store["id"].as_str().unwrap().to_owned();
    // Campaigns shaped like a retailer's: most need a category this receipt does not have;
    // one in 50 multiplies the points of dairy, which it has.
    for i in 0..campaigns {
        let spec = if i % 50 == 0 {
            json!({"code": format!("c{i}"), "name": format!("Dairy x1.5 #{i}"), "conditions": [{"type": "min_quantity", "categories": ["dairy"], "min": 1}],
                   "effects": [{"type": "points_multiplier", "multiplier_bp": 15000, "target": {"categories": ["dairy"]}}]})
        } else {
            json!({"code": format!("c{i}"), "name": format!("Category offer #{i}"), "conditions": [{"type": "min_quantity", "categories": [format!("cat{}", i % 500)], "min": 2}],
                   "effects": [{"type": "discount_percent", "percent_bp": 500, "target": {"categories": [format!("cat{}", i % 500)]}}]})
        };
        let r = c.post(format!("{base}/api/v1/campaigns")).bearer_auth(&t.api_key).json(&spec).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let mut ids = Vec::with_capacity(members);
    for i in 0..members {
        let m: Value = c
            .post(format!("{base}/api/v1/members"))
            .bearer_auth(&t.api_key)
            .json(&json!({"external_id": format!("B{i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = m["id"].as_str().unwrap().to_owned();
        c.post(format!("{base}/api/v1/members/{id}/adjustments"))
            .bearer_auth(&t.api_key)
            .json(&json!({"points": 1_000_000, "reason": "bench"}))
            .send()
            .await
            .unwrap();
        ids.push(id);
    }
    Setup { state, url: base, key: t.api_key, store, members: ids }
}

fn body(s: &Setup, n: usize, redeem: bool) -> Value {
    let member = &s.members[n % s.members.len()];
    let mut v = json!({
        "receipt_id": format!("BR-{n}"),
        "store_id": s.store,
        "member": {"member_id": member},
        "items": [
            {"sku": "MILK", "category": "dairy", "quantity": 2, "unit_price_minor": 8900},
            {"sku": "FUEL95", "category": "fuel", "quantity": "35.27", "unit_price_minor": 5899},
            {"sku": "BREAD", "category": "bakery", "quantity": 1, "unit_price_minor": 6500}
        ]
    });
    if redeem {
        v["redeem_points"] = json!(10);
    }
    v
}

/// Drive `op` from `clients` concurrent clients for `seconds`; returns (ops/s, p50 ms, p99 ms, errors).
async fn drive(s: Arc<Setup>, op: &'static str, clients: usize, seconds: u64) -> (f64, f64, f64, usize) {
    let counter = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (s, counter) = (s.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed) + 1_000_000 * (op == "quote") as usize;
                let t = Instant::now();
                let r =
                    c.post(format!("{}/api/v1/pos/{op}", s.url)).bearer_auth(&s.key).json(&body(&s, n, n.is_multiple_of(3))).send().await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| all.get(((all.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN);
    (all.len() as f64 / elapsed, pct(0.5), pct(0.99), errors)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let members = arg("--members", 200);
    let seconds = arg("--seconds", 5) as u64;
    let clients = arg("--clients", 16);
    let campaigns = arg("--campaigns", 0);
    let batches: Vec<usize> = std::env::args()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0] == "--batch-max")
        .map(|w| w[1].split(',').filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_else(|| vec![64]);
    let pg = std::env::var("KOPILKA_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pg_admin = Db::connect(&pg).await.ok();
    println!("| database | campaigns | batch max | operation | clients | ops/s | p50 ms | p99 ms | errors | mean batch |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for name in ["SQLite", "PostgreSQL"] {
        for &batch_max in &batches {
            let url = if name == "SQLite" {
                format!("sqlite:{}", std::env::temp_dir().join(format!("kopilka-bench-{}.db", kopilka_store::new_id())).display())
            } else {
                let Some(admin) = &pg_admin else { continue };
                let db = format!("kbench_{}", kopilka_store::new_id().replace('-', ""));
                if sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(admin.pool()).await.is_err() {
                    continue;
                }
                format!("{}/{db}", pg.rsplit_once('/').unwrap().0)
            };
            let s = Arc::new(setup(&url, members, campaigns, batch_max).await);
            for (op, c) in [("quote", 1), ("quote", clients), ("checkout", 1), ("checkout", clients)] {
                let before = s.state.group().stats();
                let (ops, p50, p99, errors) = drive(s.clone(), op, c, seconds).await;
                let after = s.state.group().stats();
                let batch = (after.1 - before.1) as f64 / (after.0 - before.0).max(1) as f64;
                println!("| {name} | {campaigns} | {batch_max} | {op} | {c} | {ops:.0} | {p50:.2} | {p99:.2} | {errors} | {batch:.1} |");
            }
        }
    }
}
