//! Durability of the till path, on SQLite and PostgreSQL: checkouts from several
//! concurrent tills against the real `kopilka serve`, a `kill -9` of the server in the
//! middle of the load, a restart on the same database, and then:
//!
//! - every checkout answered 200 is in the database exactly once: one committed receipt
//!   row, one `earn` entry with its points, one `redeem` entry if it spent any;
//! - no checkout answered with a 4xx left anything behind;
//! - a checkout cut off by the kill (no answer) is either there exactly once or absent;
//! - posting the same receipt again replays the stored answer and writes nothing;
//! - the balances add up to the opening balances plus the receipts, and `kopilka check`
//!   (every balance rebuilt from the ledger) finds no difference.

mod common;

use common::{Server, database, kopilka, serve, stdout};
use kopilka_store::db::Row;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MEMBERS: usize = 20;
const OPENING_POINTS: i64 = 5_000;
const CLIENTS: usize = 8;
/// The kill comes once this many checkouts were answered 200, and at least KILL_AFTER.
const MIN_COMMITTED: usize = 40;
const KILL_AFTER: Duration = Duration::from_millis(1500);
const LOAD_MAX: Duration = Duration::from_secs(15);

fn card(i: usize) -> String {
    format!("{}", 3_100_000_000_000u64 + i as u64)
}

/// What a receipt asks for, decided by its number: most earn, some spend a little, one in
/// ten asks for more points than anyone has (422) and one in ten names an unknown card (404).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Earn,
    Spend,
    Overspend,
    UnknownCard,
}

fn kind(n: usize) -> Kind {
    match n % 10 {
        0..=5 => Kind::Earn,
        6 | 7 => Kind::Spend,
        8 => Kind::Overspend,
        _ => Kind::UnknownCard,
    }
}

#[derive(Debug)]
enum Outcome {
    Ok(Value),
    Status(u16, String),
    NoAnswer,
}

#[derive(Debug)]
struct Sent {
    receipt_id: String,
    till_id: String,
    kind: Kind,
    body: Value,
    outcome: Outcome,
}

fn body(n: usize, till: &str, member: usize) -> Value {
    let k = kind(n);
    let card = if k == Kind::UnknownCard { "3199999999999".to_owned() } else { card(member) };
    let mut v = json!({
        "receipt_id": format!("D-{n}"),
        "till_id": till,
        "member": {"card_number": card},
        "items": [
            {"sku": "MILK", "category": "dairy", "quantity": 2, "unit_price_minor": 8900},
            {"sku": "FUEL95", "category": "fuel", "quantity": "35.27", "unit_price_minor": 5899},
            {"sku": "BREAD", "category": "bakery", "quantity": 1 + n % 3, "unit_price_minor": 6500}
        ]
    });
    match k {
        Kind::Spend => v["redeem_points"] = json!(10 + n % 7),
        Kind::Overspend => v["redeem_points"] = json!(1_000_000_000_000i64),
        _ => {}
    }
    v
}

struct Setup {
    tenant_id: String,
    pos_key: String,
}

async fn setup(db: &str) -> (Setup, Server) {
    let out = kopilka(db, &["tenant", "create", "--name", "Durability", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    let dir = std::env::temp_dir().join("kopilka-tests");
    std::fs::create_dir_all(&dir).expect("dir");
    let csv = dir.join(format!("durability-{}.csv", kopilka_store::new_id()));
    let rows: String = (0..MEMBERS).map(|i| format!("{},{OPENING_POINTS}\n", card(i))).collect();
    std::fs::write(&csv, format!("card_number,points\n{rows}")).expect("write");
    let out = kopilka(db, &["import", "members", csv.to_str().expect("path"), "--tenant", t["slug"].as_str().expect("slug")]);
    assert!(out.status.success(), "{} {}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_file(&csv);

    let server = serve(db).await;
    let c = reqwest::Client::new();
    let admin = t["api_key"].as_str().expect("key");
    let store: Value = c
        .post(format!("{}/api/v1/stores", server.url))
        .bearer_auth(admin)
        .json(&json!({"code": "D1", "name": "Durability"}))
        .send()
        .await
        .expect("store")
        .json()
        .await
        .expect("json");
    let key: Value = c
        .post(format!("{}/api/v1/api-keys", server.url))
        .bearer_auth(admin)
        .json(&json!({"role": "pos", "store_id": store["id"]}))
        .send()
        .await
        .expect("key")
        .json()
        .await
        .expect("json");
    let setup = Setup { tenant_id: t["tenant_id"].as_str().expect("id").to_owned(), pos_key: key["key"].as_str().expect("key").to_owned() };
    (setup, server)
}

async fn post(c: &reqwest::Client, url: &str, key: &str, body: &Value) -> Outcome {
    match c.post(format!("{url}/api/v1/pos/checkout")).bearer_auth(key).json(body).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.text().await {
                Ok(text) if status == 200 => match serde_json::from_str(&text) {
                    Ok(v) => Outcome::Ok(v),
                    // A 200 whose body was cut off: the commit happened, the answer was lost.
                    Err(_) => Outcome::NoAnswer,
                },
                Ok(text) => Outcome::Status(status, text),
                Err(_) => Outcome::NoAnswer,
            }
        }
        Err(_) => Outcome::NoAnswer,
    }
}

/// Checkouts from CLIENTS tills until `stop`.
async fn load(url: String, key: String, stop: Arc<AtomicBool>, committed: Arc<AtomicUsize>) -> Vec<Sent> {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, key, stop, committed, next) = (url.clone(), key.clone(), stop.clone(), committed.clone(), next.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
                let till = format!("T{c}");
                let mut sent = Vec::new();
                let mut member = c * 7;
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    member = (member * 31 + n * 17 + 3) % MEMBERS;
                    let body = body(n, &till, member);
                    let outcome = post(&client, &url, &key, &body).await;
                    if matches!(outcome, Outcome::Ok(_)) {
                        committed.fetch_add(1, Ordering::Relaxed);
                    }
                    let no_answer = matches!(outcome, Outcome::NoAnswer);
                    sent.push(Sent { receipt_id: format!("D-{n}"), till_id: till.clone(), kind: kind(n), body, outcome });
                    if no_answer {
                        // The server is gone; this till stops too.
                        break;
                    }
                }
                sent
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    all
}

/// Receipt rows by (till, receipt id): (status, points earned, points redeemed), and how
/// many rows share the key.
async fn receipt_rows(db: &kopilka_store::Db, tenant: &str) -> HashMap<(String, String), (String, i64, i64, i64)> {
    let rows = sqlx::query("SELECT till_id, receipt_id, status, points_earned, points_redeemed FROM receipts WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_all(db.pool())
        .await
        .expect("receipts");
    let mut out: HashMap<(String, String), (String, i64, i64, i64)> = HashMap::new();
    for r in rows {
        let key = (r.get::<String, _>("till_id"), r.get::<String, _>("receipt_id"));
        let e = out.entry(key).or_insert((r.get("status"), r.get("points_earned"), r.get("points_redeemed"), 0));
        e.3 += 1;
    }
    out
}

/// Ledger entries by receipt id and kind: (count, points).
async fn entries(db: &kopilka_store::Db, tenant: &str) -> HashMap<String, BTreeMap<String, (i64, i64)>> {
    let rows = sqlx::query(
        "SELECT receipt_id, kind, COUNT(*) AS n, CAST(SUM(points) AS BIGINT) AS p FROM ledger_entries \
         WHERE tenant_id = $1 AND receipt_id IS NOT NULL GROUP BY receipt_id, kind",
    )
    .bind(tenant)
    .fetch_all(db.pool())
    .await
    .expect("entries");
    let mut out: HashMap<String, BTreeMap<String, (i64, i64)>> = HashMap::new();
    for r in rows {
        out.entry(r.get("receipt_id")).or_default().insert(r.get("kind"), (r.get("n"), r.get("p")));
    }
    out
}

/// The ledger entries a committed receipt must have, exactly.
fn expected_entries(earned: i64, redeemed: i64) -> BTreeMap<String, (i64, i64)> {
    let mut m = BTreeMap::new();
    if earned > 0 {
        m.insert("earn".to_owned(), (1, earned));
    }
    if redeemed > 0 {
        m.insert("redeem".to_owned(), (1, -redeemed));
    }
    m
}

/// Check the database against what the tills were told. `settled`: every cut-off
/// receipt has since been posted again, so it must now be present.
async fn verify(db: &kopilka_store::Db, tenant: &str, sent: &[Sent], settled: bool) -> (usize, usize) {
    let rows = receipt_rows(db, tenant).await;
    let entries = entries(db, tenant).await;
    let none = BTreeMap::new();
    let mut present_cut = 0;
    for s in sent {
        let key = (s.till_id.clone(), s.receipt_id.clone());
        let row = rows.get(&key);
        let e = entries.get(&s.receipt_id).unwrap_or(&none);
        match &s.outcome {
            Outcome::Ok(answer) => {
                let (status, earned, redeemed, n) =
                    row.unwrap_or_else(|| panic!("{} was answered 200 but is not in the database", s.receipt_id));
                assert_eq!(*n, 1, "{}: one receipt row", s.receipt_id);
                assert_eq!(status, "committed", "{}", s.receipt_id);
                assert_eq!(answer["points_earned"].as_i64(), Some(*earned), "{}: the stored receipt is the answered one", s.receipt_id);
                assert_eq!(answer["points_redeemed"].as_i64(), Some(*redeemed), "{}", s.receipt_id);
                assert_eq!(e, &expected_entries(*earned, *redeemed), "{}: in the ledger exactly once", s.receipt_id);
            }
            Outcome::Status(code, text) => {
                assert!((400..500).contains(code), "{}: a {code} is a bug: {text}", s.receipt_id);
                assert!(row.is_none(), "{} was refused with {code} but has a receipt row", s.receipt_id);
                assert!(e.is_empty(), "{} was refused with {code} but has ledger entries {e:?}", s.receipt_id);
            }
            Outcome::NoAnswer => match row {
                Some((status, earned, redeemed, n)) => {
                    present_cut += 1;
                    assert_eq!(*n, 1, "{}: one receipt row", s.receipt_id);
                    assert_eq!(status, "committed", "{}", s.receipt_id);
                    assert_eq!(e, &expected_entries(*earned, *redeemed), "{}: cut off, present exactly once", s.receipt_id);
                }
                None => {
                    assert!(e.is_empty(), "{}: cut off and absent, but has ledger entries {e:?}", s.receipt_id);
                    let postable = matches!(s.kind, Kind::Earn | Kind::Spend);
                    assert!(!(settled && postable), "{}: posted again after the restart, still absent", s.receipt_id);
                }
            },
        }
    }
    // Nothing in the database that no till sent.
    let known: HashMap<&str, &Sent> = sent.iter().map(|s| (s.receipt_id.as_str(), s)).collect();
    for (till, rid) in rows.keys() {
        let s = known.get(rid.as_str()).unwrap_or_else(|| panic!("receipt {rid} at {till} was never sent"));
        assert!(!matches!(s.outcome, Outcome::Status(..)), "{rid}");
    }
    for rid in entries.keys() {
        assert!(known.contains_key(rid.as_str()), "ledger entries for {rid}, never sent");
    }
    // The balances: the opening points plus every committed receipt, nothing twice.
    let total: i64 = sqlx::query("SELECT CAST(SUM(points) AS BIGINT) AS p FROM balances WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(db.pool())
        .await
        .expect("sum")
        .get("p");
    let moved: i64 = rows.values().filter(|r| r.0 == "committed").map(|r| r.1 - r.2).sum();
    assert_eq!(total, MEMBERS as i64 * OPENING_POINTS + moved, "balances = opening points + receipts");
    (rows.len(), present_cut)
}

async fn kill_mid_run(backend: &str) {
    let started = Instant::now();
    let db_url = database(backend, "kc").await;
    let (setup, mut server) = setup(&db_url).await;

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(load(server.url.clone(), setup.pos_key.clone(), stop.clone(), committed.clone()));
    let load_started = Instant::now();
    while load_started.elapsed() < KILL_AFTER || committed.load(Ordering::Relaxed) < MIN_COMMITTED {
        assert!(load_started.elapsed() < LOAD_MAX, "only {} checkouts in {LOAD_MAX:?}", committed.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // kill -9 while the tills are still posting.
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let sent = load.await.expect("load");
    let count = |f: fn(&Outcome) -> bool| sent.iter().filter(|s| f(&s.outcome)).count();
    let ok = count(|o| matches!(o, Outcome::Ok(_)));
    let refused = count(|o| matches!(o, Outcome::Status(..)));
    let cut = count(|o| matches!(o, Outcome::NoAnswer));
    assert!(ok >= MIN_COMMITTED && refused > 0, "ok {ok}, refused {refused}");
    for s in &sent {
        if let Outcome::Status(code, text) = &s.outcome {
            let expected = match s.kind {
                Kind::Overspend => 422,
                Kind::UnknownCard => 404,
                _ => 0,
            };
            assert_eq!(*code, expected, "{} ({:?}): {text}", s.receipt_id, s.kind);
        }
    }

    // Restart on the same database.
    let server = serve(&db_url).await;
    let db = kopilka_store::Db::connect(&db_url).await.expect("connect");
    let (rows, present_cut) = verify(&db, &setup.tenant_id, &sent, false).await;
    eprintln!("{backend}: {ok} answered 200, {refused} refused, {cut} cut off ({present_cut} of them committed), {rows} receipts");

    // Posting again replays: the stored answer, nothing written. The cut-off ones are
    // either replayed or posted now.
    let c = reqwest::Client::new();
    let oks: Vec<&Sent> = sent.iter().filter(|s| matches!(s.outcome, Outcome::Ok(_))).collect();
    let step = (oks.len() / 60).max(1);
    for s in oks.iter().step_by(step) {
        let Outcome::Ok(first) = &s.outcome else { unreachable!() };
        match post(&c, &server.url, &setup.pos_key, &s.body).await {
            Outcome::Ok(again) => assert_eq!(&again, first, "{}: a replay answers the stored answer", s.receipt_id),
            other => panic!("{}: replay answered {other:?}", s.receipt_id),
        }
        let r: Value = c
            .get(format!("{}/api/v1/pos/receipts/{}?till_id={}", server.url, s.receipt_id, s.till_id))
            .bearer_auth(&setup.pos_key)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(r["status"], "committed", "{}: {r}", s.receipt_id);
    }
    for s in sent.iter().filter(|s| matches!(s.outcome, Outcome::NoAnswer) && matches!(s.kind, Kind::Earn | Kind::Spend)) {
        let again = post(&c, &server.url, &setup.pos_key, &s.body).await;
        assert!(matches!(again, Outcome::Ok(_)), "{}: posted again after the restart: {again:?}", s.receipt_id);
    }
    verify(&db, &setup.tenant_id, &sent, true).await;
    db.close().await;
    drop(server);

    let check = kopilka(&db_url, &["check"]);
    assert!(check.status.success() && stdout(&check).contains(&format!("checked {MEMBERS} members: 0 differences")), "{}", stdout(&check));
    eprintln!("{backend}: durability test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_loses_and_doubles_nothing_sqlite() {
    kill_mid_run("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_loses_and_doubles_nothing_postgres() {
    kill_mid_run("postgres").await;
}
