//! The set-based checkout path (services/checkout_batch.rs) against the per-receipt path:
//! the same receipts, sent in the same concurrent rounds to two servers (one with the
//! set-based path, one without), give the same answers and the same rows: balances,
//! ledger entries, lots, consumptions, receipts, lines and campaign records.

// The snapshot reads rows as plain tuples, one type per table.
#![allow(clippy::type_complexity)]

use crate::both;
use crate::helpers::*;
use kopilka_server::Config;
use kopilka_server::services::group_commit::GroupConfig;
use serde_json::{Value, json};

/// A small deterministic generator (xorshift), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Side {
    app: TestApp,
    t: Tenant,
    pos: Vec<String>,
    store: String,
    /// App-specific ids → stable names (member ids and cards, campaign ids, the store).
    names: Vec<(String, String)>,
    /// Each member's card number (given by the server).
    cards: Vec<String>,
}

const MEMBERS: usize = 12;

async fn side(backend: Backend, set_based: bool, program: &Value) -> Side {
    let group = GroupConfig { set_based, ..GroupConfig::default() };
    let app = TestApp::with_config(backend, Config { worker: false, pos_lookups_per_minute: 1_000_000, group, ..Config::default() }).await;
    let t = app.tenant("Batch").await;
    app.program(&t.admin, program.clone()).await;
    let store = app.store(&t.admin, "S1").await;
    let pos = vec![app.pos_key(&t.admin, &store, None).await, app.pos_key(&t.admin, &store, None).await];
    let mut names = vec![(store.clone(), "store".to_owned())];
    for (code, spec) in [
        (
            "cof20",
            json!({"code": "cof20", "name": "Coffee 20", "effects": [{"type": "discount_percent", "percent_bp": 2000, "target": {"categories": ["coffee"]}}]}),
        ),
        (
            "x2",
            json!({"code": "x2", "name": "Double fuel", "effects": [{"type": "points_multiplier", "multiplier_bp": 20000, "target": {"categories": ["fuel"]}}]}),
        ),
    ] {
        let (s, v) = app.post(&t.admin, "/api/v1/campaigns", spec).await;
        assert_eq!(s, 201, "{v}");
        names.push((v["id"].as_str().expect("campaign id").to_owned(), code.to_owned()));
    }
    let mut cards = Vec::new();
    for i in 0..MEMBERS {
        let v = app.member(&t.admin, json!({"external_id": format!("ext-{i:02}"), "phone": phone(i)})).await;
        names.push((v["id"].as_str().expect("member id").to_owned(), format!("member-{i:02}")));
        let card = v["card_number"].as_str().expect("card").to_owned();
        names.push((card.clone(), format!("card-{i:02}")));
        cards.push(card);
    }
    Side { app, t, pos, store, names, cards }
}

/// A placeholder for member `i`'s card number, filled in per side.
fn card(i: usize) -> String {
    format!("@card{i:02}")
}

fn phone(i: usize) -> String {
    format!("+7999000{i:04}")
}

/// One random receipt (the store id is filled in per side).
fn receipt(rng: &mut Rng, id: &str, member: Option<usize>, now: i64) -> Value {
    let cats = ["coffee", "fuel", "bakery", "tobacco", "dairy"];
    let lines: Vec<Value> = (0..1 + rng.below(3))
        .map(|n| {
            let mut l = json!({
                "line_no": n + 1,
                "sku": format!("SKU{}", rng.below(6)),
                "category": cats[rng.below(cats.len() as u64) as usize],
                "quantity": 1 + rng.below(3),
                "unit_price_minor": 500 + rng.below(20_000),
            });
            if rng.chance(10) {
                l["earn"] = json!(false);
            }
            l
        })
        .collect();
    let mut r = json!({"receipt_id": id, "till_id": format!("T{}", rng.below(2)), "items": lines});
    if let Some(m) = member {
        r["member"] = if rng.chance(25) { json!({"phone": phone(m)}) } else { json!({"card_number": card(m)}) };
        match rng.below(5) {
            0 => r["redeem_points"] = json!("max"),
            1 | 2 => r["redeem_points"] = json!(rng.below(400)),
            _ => {}
        }
    }
    // Back-dated receipts (offline tills), some beyond the programme's window.
    r["occurred_at"] = json!(rfc3339(now - rng.below(3 * 86_400) as i64 - if rng.chance(5) { 40 * 86_400 } else { 0 }));
    r
}

/// Replace the side's own ids with stable names.
fn normal(side: &Side, v: &Value) -> Value {
    let mut s = v.to_string();
    for (id, name) in &side.names {
        s = s.replace(id.as_str(), name);
    }
    serde_json::from_str(&s).expect("json")
}

async fn send(side: &Side, round: &[(usize, Value)]) -> Vec<(u16, Value)> {
    let futs = round.iter().map(|(till, body)| {
        let mut body = body.clone();
        body["store_id"] = json!(side.store);
        if let Some(c) = body["member"]["card_number"].as_str() {
            let i: usize = c[5..].parse().expect("card placeholder");
            body["member"]["card_number"] = json!(side.cards[i]);
        }
        side.app.post(&side.pos[*till], "/api/v1/pos/checkout", body)
    });
    futures_util::future::join_all(futs)
        .await
        .into_iter()
        .map(|(s, mut v)| {
            if let Some(e) = v.get_mut("error").and_then(Value::as_object_mut) {
                e.remove("request_id");
            }
            (s, normal(side, &v))
        })
        .collect()
}

/// Every row the till writes, with ids made stable: keyed by member card, receipt id and
/// posting sequence rather than generated ids; creation times left out.
async fn snapshot(side: &Side) -> Value {
    let mut c = side.app.state.db.pool().acquire().await.expect("conn");
    let t = side.t.id.as_str();
    let balances: Vec<(String, i64, i64, i64, i64, i64, i64, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT m.external_id, b.points, b.held, b.pending, b.debt, b.lifetime_earned, b.seq, b.next_due_at, b.tier_code \
         FROM balances b JOIN members m ON m.tenant_id = b.tenant_id AND m.id = b.member_id WHERE b.tenant_id = $1 ORDER BY m.external_id",
    )
    .bind(t)
    .fetch_all(&mut *c)
    .await
    .expect("balances");
    let entries: Vec<(String, i64, String, i64, i64, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT m.external_id, e.seq, e.kind, e.points, e.occurred_at, e.receipt_id, e.reason, r.receipt_id AS ref_receipt \
         FROM ledger_entries e JOIN members m ON m.tenant_id = e.tenant_id AND m.id = e.member_id \
         LEFT JOIN receipts r ON r.tenant_id = e.tenant_id AND r.id = e.ref_id WHERE e.tenant_id = $1 ORDER BY m.external_id, e.seq",
    )
    .bind(t)
    .fetch_all(&mut *c)
    .await
    .expect("entries");
    let lots: Vec<(String, i64, String, Option<String>, i64, i64, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT m.external_id, l.seq, l.source, r.receipt_id, l.points_initial, l.points_remaining, l.is_pending, l.available_at, l.expires_at \
         FROM lots l JOIN members m ON m.tenant_id = l.tenant_id AND m.id = l.member_id \
         LEFT JOIN receipts r ON r.tenant_id = l.tenant_id AND r.id = l.ref_id WHERE l.tenant_id = $1 ORDER BY m.external_id, l.seq",
    )
    .bind(t)
    .fetch_all(&mut *c)
    .await
    .expect("lots");
    let consumptions: Vec<(String, i64, String, i64, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT m.external_id, x.seq, x.kind, l.seq AS lot_seq, r.receipt_id, x.points, x.returned \
         FROM consumptions x JOIN members m ON m.tenant_id = x.tenant_id AND m.id = x.member_id \
         JOIN lots l ON l.tenant_id = x.tenant_id AND l.id = x.lot_id \
         LEFT JOIN receipts r ON r.tenant_id = x.tenant_id AND r.id = x.ref_id WHERE x.tenant_id = $1 ORDER BY m.external_id, x.seq",
    )
    .bind(t)
    .fetch_all(&mut *c)
    .await
    .expect("consumptions");
    type ReceiptRow =
        (String, String, Option<String>, String, i64, i64, Option<String>, String, String, i64, i64, i64, i64, i64, Option<i64>);
    let receipts: Vec<ReceiptRow> = sqlx::query_as(
        "SELECT r.receipt_id, r.till_id, m.external_id, r.status, r.occurred_at, r.program_version, r.tier, r.body_hash, r.answer, \
         r.total_minor, r.payable_minor, r.points_redeemed, r.points_earned, r.refunded_payable_minor, l.seq AS lot_seq \
         FROM receipts r LEFT JOIN members m ON m.tenant_id = r.tenant_id AND m.id = r.member_id \
         LEFT JOIN lots l ON l.tenant_id = r.tenant_id AND l.id = r.earn_lot_id WHERE r.tenant_id = $1 ORDER BY r.till_id, r.receipt_id",
    )
    .bind(t)
    .fetch_all(&mut *c)
    .await
    .expect("receipts");
    type LineRow = (String, String, i64, Option<String>, Option<String>, String, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let lines: Vec<LineRow> = sqlx::query_as(
        "SELECT r.till_id, r.receipt_id, x.line_no, x.sku, x.category, x.qty_kind, x.quantity_base, x.total_minor, x.discount_minor, \
         x.redeemed_minor, x.points_redeemed, x.payable_minor, x.points_earned, x.wallet_minor, x.cashback_minor \
         FROM receipt_lines x JOIN receipts r ON r.tenant_id = x.tenant_id AND r.id = x.receipt_pk WHERE x.tenant_id = $1 \
         ORDER BY r.till_id, r.receipt_id, x.line_no",
    )
    .bind(t)
    .fetch_all(&mut *c)
    .await
    .expect("lines");
    let records: Vec<(String, String, String, i64, i64, String, i64)> = sqlx::query_as(
        "SELECT r.till_id, r.receipt_id, x.campaign_id, x.points, x.money_minor, x.status, x.counted \
         FROM receipt_campaigns x JOIN receipts r ON r.tenant_id = x.tenant_id AND r.id = x.receipt_pk WHERE x.tenant_id = $1 \
         ORDER BY r.till_id, r.receipt_id, x.campaign_id",
    )
    .bind(t)
    .fetch_all(&mut *c)
    .await
    .expect("records");
    let mut records: Vec<Value> = records.iter().map(|r| normal(side, &json!(r))).collect();
    records.sort_by_key(|v| v.to_string());
    let jobs: Vec<(String,)> = sqlx::query_as(
        "SELECT m.external_id FROM jobs j JOIN members m ON m.tenant_id = j.tenant_id AND m.id = j.job_key \
         WHERE j.tenant_id = $1 AND j.kind = 'tier' ORDER BY m.external_id",
    )
    .bind(t)
    .fetch_all(&mut *c)
    .await
    .expect("jobs");
    let receipts: Vec<Value> = receipts
        .into_iter()
        .map(|r| {
            let answer: Value = serde_json::from_str(&r.8).expect("answer");
            let mut v = json!(r);
            v[8] = normal(side, &answer);
            // The body hash covers the side's own card numbers.
            v[7] = Value::Null;
            v
        })
        .collect();
    json!({
        "balances": balances, "entries": entries, "lots": lots, "consumptions": consumptions,
        "receipts": receipts, "lines": lines, "records": records, "tier_jobs": jobs,
    })
}

async fn compare(backend: Backend, seed: u64, program: Value) {
    let fast = side(backend, true, &program).await;
    let slow = side(backend, false, &program).await;
    let mut rng = Rng(seed);
    let now = unix_now();
    let mut sent: Vec<(usize, Value)> = Vec::new();
    for round in 0..8 {
        let mut batch: Vec<(usize, Value)> = Vec::new();
        let mut members: Vec<usize> = (0..MEMBERS).collect();
        for k in 0..members.len() {
            let j = k + rng.below((members.len() - k) as u64) as usize;
            members.swap(k, j);
        }
        for (n, m) in members.iter().take(2 + rng.below(9) as usize).enumerate() {
            let till = rng.below(2) as usize;
            batch.push((till, receipt(&mut rng, &format!("R{round}-{n}"), Some(*m), now)));
        }
        for n in 0..rng.below(3) {
            batch.push((0, receipt(&mut rng, &format!("A{round}-{n}"), None, now)));
        }
        // Replays (same body) and conflicts (same id, another body) of earlier receipts.
        if !sent.is_empty() && rng.chance(60) {
            let (till, old) = sent[rng.below(sent.len() as u64) as usize].clone();
            let mut again = old.clone();
            if rng.chance(50) {
                again["items"][0]["unit_price_minor"] = json!(1);
            }
            if !batch.iter().any(|(_, b)| b.get("member") == again.get("member") && again.get("member").is_some()) {
                batch.push((till, again));
            }
        }
        let a = send(&fast, &batch).await;
        let b = send(&slow, &batch).await;
        for ((x, y), (_, body)) in a.iter().zip(&b).zip(&batch) {
            assert_eq!(x, y, "seed {seed} round {round}: the two paths answered differently for {body}");
        }
        sent.extend(batch);
    }
    let (sa, sb) = (snapshot(&fast).await, snapshot(&slow).await);
    for k in ["balances", "entries", "lots", "consumptions", "receipts", "lines", "records", "tier_jobs"] {
        let (a, b) = (sa[k].as_array().expect("rows"), sb[k].as_array().expect("rows"));
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x, y, "seed {seed}: {k} differ (set-based left, per-receipt right)");
        }
        assert_eq!(a.len(), b.len(), "seed {seed}: {k} differ in number");
    }
    eprintln!("seed {seed}: {} of the checkouts answered set-wise", fast.app.state.group().fast_answers());
    assert!(fast.app.state.group().fast_answers() > 0, "the set-based path answered nothing");
    assert_eq!(slow.app.state.group().fast_answers(), 0);
    fast.app.assert_ledger_consistent(&fast.t).await;
    slow.app.assert_ledger_consistent(&slow.t).await;
}

fn programs() -> Vec<Value> {
    vec![
        json!({"expiry": {"policy": "rolling_days", "days": 60},
               "tiers": [{"code": "base", "min_spend_minor": 0}, {"code": "silver", "min_spend_minor": 30000, "earn_multiplier_bp": 15000}]}),
        json!({"pending_days": 2, "expiry": {"policy": "rolling_days", "days": 2},
               "redeem": {"point_value_minor": 100, "max_share_bp": 5000, "min_balance": 50, "auth": "none", "hold_ttl_s": 900}}),
    ]
}

macro_rules! equal_paths {
    ($name:ident, $backend:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let seeds: Vec<u64> = std::env::var("KOPILKA_TEST_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .map(|s| vec![s])
                .unwrap_or_else(|| vec![0x5eed, 0xbeef]);
            for seed in seeds {
                for (i, p) in programs().into_iter().enumerate() {
                    compare($backend, seed + i as u64, p).await;
                }
            }
        }
    };
}

mod set_based_checkout_equals_per_receipt {
    use super::*;
    equal_paths!(sqlite, Backend::Sqlite);
    equal_paths!(postgres, Backend::Postgres);
}

/// Two receipts of one member in one batch, spending: the second takes the per-receipt
/// path after the first was written set-wise, so the member never overspends.
async fn same_member_in_a_batch(backend: Backend) {
    let program = json!({});
    let s = side(backend, true, &program).await;
    let member = s.names.iter().find(|(_, n)| n == "member-00").map(|(id, _)| id.clone()).unwrap();
    s.app.give(&s.t.admin, &member, 300).await;
    let body = |id: &str| {
        json!({"receipt_id": id, "store_id": s.store, "member": {"card_number": s.cards[0]}, "redeem_points": 200,
               "items": [{"sku": "A", "category": "dairy", "quantity": 1, "unit_price_minor": 100_000}]})
    };
    let futs: Vec<_> = (0..6).map(|i| s.app.post(&s.pos[i % 2], "/api/v1/pos/checkout", body(&format!("M{i}")))).collect();
    let out: Vec<(u16, Value)> = futures_util::future::join_all(futs).await;
    let ok = out.iter().filter(|(st, _)| *st == 200).count();
    let refused = out.iter().filter(|(st, v)| *st == 422 && v["error"]["code"] == "insufficient_points").count();
    // 300 points pay for one receipt of 200; the one that paid earned more, so later ones
    // may pay too: what matters is that the balance never goes below zero and the
    // ledger adds up.
    assert_eq!(ok + refused, 6, "{out:?}");
    let b = s.app.balance(&s.t.admin, &member).await;
    assert!(b["points"].as_i64().unwrap() >= 0, "{b}");
    s.app.assert_ledger_consistent(&s.t).await;
    let spent: i64 = out.iter().filter(|(st, _)| *st == 200).map(|(_, v)| v["points_redeemed"].as_i64().unwrap()).sum();
    let earned: i64 = out.iter().filter(|(st, _)| *st == 200).map(|(_, v)| v["points_earned"].as_i64().unwrap()).sum();
    assert_eq!(b["points"].as_i64().unwrap(), 300 - spent + earned, "{b} {out:?}");
}

mod same_member_twice_in_a_batch {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        same_member_in_a_batch(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        same_member_in_a_batch(Backend::Postgres).await;
    }
}

/// The set-based path's receipt lookups keep probing the receipt indexes when
/// PostgreSQL's statistics describe an empty `receipts` table, as on a new database
/// until autovacuum's first ANALYZE (`kopilka bench` analyses right after loading its
/// members, before any receipt). Written as joins of the batch's keys with `receipts`,
/// both lookups were planned then as one read of every receipt of the tenant (a bitmap
/// scan into a hash or a materialised list), and a batch of 32 took 20-25 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_lookups_probe_the_indexes_with_the_statistics_of_an_empty_table() {
    let app = TestApp::new(Backend::Postgres).await;
    let t = app.tenant("plans").await;
    let pool = app.state.db.pool();
    sqlx::raw_sql("ANALYZE receipts").execute(pool).await.unwrap();
    sqlx::query(
        "INSERT INTO receipts (tenant_id, id, store_id, till_id, receipt_id, member_id, status, occurred_at, program_version, \
         body_hash, answer, total_minor, payable_minor, refunded_payable_minor, points_redeemed, points_earned, expired_exempt, created_at) \
         SELECT $1, 'r' || i, 'store', 'till-' || (i % 64), 'receipt-' || i, 'member-' || (i % 5000), 'committed', i, 1, \
         'h', '{}', 1000, 1000, 0, 0, 10, 0, i FROM generate_series(1, 20000) AS i",
    )
    .bind(&t.id)
    .execute(pool)
    .await
    .unwrap();
    let mut c = pool.acquire().await.unwrap();
    let plan = kopilka_store::batch::explain_receipt_lookups(&mut c, &t.id, 32).await.unwrap();
    for bad in ["Seq Scan on receipts", "Bitmap Heap Scan on receipts", "Hash Join", "Materialize"] {
        assert!(!plan.contains(bad), "{bad} in the plans:\n{plan}");
    }
    for index in ["receipts_key", "receipts_member"] {
        assert!(plan.contains(index), "{index} not used:\n{plan}");
    }
}

// The same lookups give the right answers, on both databases: only this tenant's
// receipts, each key found or not, and the spend of each window.
both!(receipt_lookups_find_exactly_the_tenants_receipts, |app: TestApp| async move {
    let t = app.tenant("lookups").await;
    let other = app.tenant("other").await;
    let pool = app.state.db.pool();
    let rows = [
        (&t.id, "r1", "T1", "A", "m1", "committed", 100, 1000, 200),
        (&t.id, "r2", "T1", "B", "m1", "partially_refunded", 200, 500, 100),
        (&t.id, "r3", "T2", "A", "m2", "reserved", 300, 700, 0),
        (&other.id, "r4", "T1", "C", "m1", "committed", 100, 9000, 0),
    ];
    for (tenant, id, till, receipt, member, status, at, payable, refunded) in rows {
        sqlx::query(
            "INSERT INTO receipts (tenant_id, id, store_id, till_id, receipt_id, member_id, status, occurred_at, program_version, \
             body_hash, answer, total_minor, payable_minor, refunded_payable_minor, points_redeemed, points_earned, expired_exempt, created_at) \
             VALUES ($1, $2, 'S', $3, $4, $5, $6, $7, 1, 'h', '{}', $8, $8, $9, 0, 0, 0, $7)",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(till)
        .bind(receipt)
        .bind(member)
        .bind(status)
        .bind(at as i64)
        .bind(payable as i64)
        .bind(refunded as i64)
        .execute(pool)
        .await
        .unwrap();
    }
    let mut c = pool.acquire().await.unwrap();
    // Five keys go as eight, the last repeated (`batch::padded`); here it is one found.
    let keys = [("S", "T9", "Z"), ("S", "T1", "C"), ("S", "T1", "A"), ("S", "T1", "B"), ("S", "T2", "A")];
    let found = kopilka_store::batch::existing_receipts(&mut c, &t.id, &keys).await.unwrap();
    let mut found: Vec<_> = found.into_iter().collect();
    found.sort();
    let want: Vec<(String, String, String)> = keys[2..].iter().map(|(s, t, r)| (s.to_string(), t.to_string(), r.to_string())).collect();
    assert_eq!(found, want);
    let windows = [("m1", 0, 1000), ("m2", 0, 1000), ("m3", 0, 1000), ("m1", 150, 1000), ("m1", 0, 200)];
    let spends = kopilka_store::batch::tier_spends(&mut c, &t.id, &windows).await.unwrap();
    // m1: 1000 - 200 and 500 - 100; the window's end is exclusive; m2's receipt is only
    // reserved; the other tenant's receipt never counts.
    assert_eq!(spends, vec![1200, 0, 0, 400, 800]);
});
