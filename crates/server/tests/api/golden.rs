//! The answers of a scripted till day, recorded: every answer of the script below, with
//! what changes from run to run (ids, card numbers, tokens, keys, times) replaced by
//! stable placeholders, must equal `golden/till_day.json`, on both databases.
//!
//! This is the guard for refactors that must not change what a till, a script or a browser
//! sees (typed results in place of JSON built by hand, a generated OpenAPI document, one
//! ledger planner): the same request keeps the same JSON value. When an answer changes on
//! purpose, run the test with `KOPILKA_BLESS=1` to write the file again, and review its diff.

use crate::both;
use crate::helpers::*;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/golden/till_day.json");

/// Replaces what differs between runs by placeholders numbered in order of appearance, so
/// that two answers naming the same member still name the same `<id 3>`.
struct Normalizer {
    start_s: i64,
    seen: HashMap<String, String>,
    counts: HashMap<&'static str, usize>,
}

impl Normalizer {
    fn new(start_s: i64) -> Self {
        Normalizer { start_s, seen: HashMap::new(), counts: HashMap::new() }
    }

    fn placeholder(&mut self, kind: &'static str, value: &str) -> String {
        if let Some(p) = self.seen.get(value) {
            return p.clone();
        }
        let n = self.counts.entry(kind).or_insert(0);
        *n += 1;
        let p = format!("<{kind} {n}>");
        self.seen.insert(value.to_owned(), p.clone());
        p
    }

    /// A time as its distance from the start of the test in whole days when it is one
    /// (`<now+365d>`), `<now>` within two minutes of the start, else `<time>`.
    fn time(&self, s: &str) -> Option<String> {
        let t = chrono::DateTime::parse_from_rfc3339(s).ok()?.timestamp();
        let d = t - self.start_s;
        let days = (d as f64 / 86_400.0).round() as i64;
        Some(if d.abs() < 120 {
            "<now>".into()
        } else if (d - days * 86_400).abs() < 120 {
            format!("<now{days:+}d>")
        } else {
            "<time>".into()
        })
    }

    /// Every id (a UUID) inside `s`, as in `key:0196…`, replaced by its placeholder.
    fn ids_within(&mut self, s: &str) -> String {
        let is_uuid = |w: &str| {
            w.len() == 36
                && w.bytes().enumerate().all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
        };
        let mut out = String::new();
        let mut rest = s;
        while !rest.is_empty() {
            match (0..rest.len().saturating_sub(35)).find(|&i| rest.is_char_boundary(i) && rest.get(i..i + 36).is_some_and(is_uuid)) {
                Some(i) => {
                    out.push_str(&rest[..i]);
                    out.push_str(&self.placeholder("id", &rest[i..i + 36]));
                    rest = &rest[i + 36..];
                }
                None => {
                    out.push_str(rest);
                    rest = "";
                }
            }
        }
        out
    }

    fn string(&mut self, key: &str, s: &str) -> String {
        let s = &self.ids_within(s);
        if let Some(t) = self.time(s) {
            return t;
        }
        if s.starts_with("kop_") {
            return self.placeholder("key", s);
        }
        match key {
            "card_number" => self.placeholder("card", s),
            "qr_token" | "token" => self.placeholder("token", s),
            "request_id" => "<request id>".into(),
            "slug" => self.placeholder("slug", s),
            _ => s.clone(),
        }
    }

    fn value(&mut self, key: &str, v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                // Sorted, so that the file does not depend on the order of keys.
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    out.insert(k.clone(), self.value(k, &m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(key, x)).collect()),
            Value::String(s) => Value::String(self.string(key, s)),
            other => other.clone(),
        }
    }
}

/// One step of the day: its name, the answer's status and the normalised body.
struct Day {
    norm: Normalizer,
    steps: Vec<Value>,
}

impl Day {
    fn record(&mut self, step: &str, (status, body): (u16, Value)) -> Value {
        let normalised = self.norm.value("", &body);
        self.steps.push(json!({"step": step, "status": status, "body": normalised}));
        body
    }
}

both!(a_till_days_answers_are_unchanged, |app: TestApp| async move {
    let mut day = Day { norm: Normalizer::new(unix_now()), steps: Vec::new() };
    let t = app.tenant("Golden shop").await;
    let a = t.admin.clone();

    // Setup: the programme, a store, a till key, two members, points to spend.
    day.record("program", app.get(&a, "/api/v1/program").await);
    let store = day
        .record("create store", app.post(&a, "/api/v1/stores", json!({"code": "S1", "name": "Main", "time_zone": "Europe/Moscow"})).await);
    let store = store["id"].as_str().expect("store id").to_owned();
    let key = day.record(
        "create pos key",
        app.post(&a, "/api/v1/api-keys", json!({"role": "pos", "store_id": store, "till_id": "T2", "label": "front"})).await,
    );
    let pos = key["key"].as_str().expect("key").to_owned();
    let anna = day.record(
        "enrol anna",
        app.post(
            &a,
            "/api/v1/members",
            json!({"phone": "8 912 345-67-89", "email": "Anna@Example.com", "name": "Anna", "birthday": "1990-05-17"}),
        )
        .await,
    );
    let anna_id = anna["id"].as_str().expect("id").to_owned();
    let anna_card = anna["card_number"].as_str().expect("card").to_owned();
    let boris = day.record("enrol boris", app.post(&a, "/api/v1/members", json!({"external_id": "CRM-2"})).await);
    let boris_id = boris["id"].as_str().expect("id").to_owned();
    day.record(
        "adjust",
        app.post(
            &a,
            &format!("/api/v1/members/{anna_id}/adjustments"),
            json!({"points": 1000, "reason": "welcome", "adjustment_id": "ADJ-1"}),
        )
        .await,
    );
    day.record(
        "adjust replayed",
        app.post(
            &a,
            &format!("/api/v1/members/{anna_id}/adjustments"),
            json!({"points": 1000, "reason": "welcome", "adjustment_id": "ADJ-1"}),
        )
        .await,
    );
    day.record("campaign", app.post(&a, "/api/v1/campaigns", json!({"code": "MILK5", "name": "5 % off dairy", "conditions": [{"type": "min_quantity", "min": 2, "categories": ["dairy"]}], "effects": [{"type": "discount_percent", "percent_bp": 500, "target": {"categories": ["dairy"]}}]})).await);

    // The till: lookups, the worked example quoted and checked out, a reserve released and
    // one committed, a refund, errors.
    day.record("lookup by card", app.post(&pos, "/api/v1/members/lookup", json!({"card_number": anna_card})).await);
    day.record("lookup by phone", app.post(&pos, "/api/v1/members/lookup", json!({"phone": "+79123456789"})).await);
    let mut example = worked_example(&store, &anna_id);
    example["member"] = json!({"card_number": anna_card});
    day.record("quote", app.post(&pos, "/api/v1/pos/quote", example.clone()).await);
    day.record("checkout", app.post(&pos, "/api/v1/pos/checkout", example.clone()).await);
    day.record("checkout replayed", app.post(&pos, "/api/v1/pos/checkout", example.clone()).await);
    let mut changed = example.clone();
    changed["redeem_points"] = json!(10);
    day.record("checkout conflicting", app.post(&pos, "/api/v1/pos/checkout", changed).await);
    let dairy = |id: &str, redeem: Value| {
        json!({"receipt_id": id, "store_id": store, "member": {"member_id": anna_id}, "redeem_points": redeem,
               "items": [{"line_no": 1, "sku": "MILK", "category": "dairy", "quantity": 3, "unit_price_minor": 8990},
                         {"line_no": 2, "sku": "CHEESE", "category": "dairy", "quantity": "0.456", "unit_price_minor": 129900}]})
    };
    day.record("quote with campaign", app.post(&pos, "/api/v1/pos/quote", dairy("R-2", json!("max"))).await);
    day.record("reserve", app.post(&pos, "/api/v1/pos/reserve", dairy("R-2", json!(100))).await);
    day.record("balance while held", app.get(&a, &format!("/api/v1/members/{anna_id}/balance")).await);
    day.record("cancel", app.post(&pos, "/api/v1/pos/cancel", json!({"receipt_id": "R-2", "store_id": store})).await);
    day.record("reserve again", app.post(&pos, "/api/v1/pos/reserve", dairy("R-3", json!(50))).await);
    day.record("commit reserve", app.post(&pos, "/api/v1/pos/checkout", dairy("R-3", json!(50))).await);
    day.record("anonymous checkout", app.post(&pos, "/api/v1/pos/checkout", receipt("R-4", &store, None, 50000, None)).await);
    day.record("boris checkout", app.post(&pos, "/api/v1/pos/checkout", receipt("R-5", &store, Some(&boris_id), 123456, None)).await);
    day.record(
        "refund",
        app.post(&pos, "/api/v1/pos/refund", json!({"receipt_id": "R-000123", "till_id": "T2", "store_id": store, "refund_id": "RF-1", "items": [{"line_no": 1, "quantity": 1}]})).await,
    );
    day.record("refund too much", app.post(&pos, "/api/v1/pos/refund", json!({"receipt_id": "R-000123", "till_id": "T2", "store_id": store, "refund_id": "RF-2", "items": [{"line_no": 1, "quantity": 5}]})).await);
    day.record(
        "insufficient points",
        app.post(&pos, "/api/v1/pos/quote", receipt("R-6", &store, Some(&boris_id), 1000, Some(json!(999999)))).await,
    );
    day.record("unknown card", app.post(&pos, "/api/v1/pos/quote", json!({"receipt_id": "R-7", "store_id": store, "member": {"card_number": "2000000000008"}, "items": [{"sku": "X", "quantity": 1, "unit_price_minor": 100}]})).await);

    // Read-backs: the receipt, the member, balance, ledger, history, offers, transfers.
    day.record("receipt", app.get(&pos, &format!("/api/v1/pos/receipts/R-000123?till_id=T2&store_id={store}")).await);
    day.record("member", app.get(&a, &format!("/api/v1/members/{anna_id}")).await);
    day.record("member as pos", app.get(&pos, &format!("/api/v1/members/{anna_id}")).await);
    day.record("balance", app.get(&a, &format!("/api/v1/members/{anna_id}/balance")).await);
    day.record("ledger", app.get(&a, &format!("/api/v1/members/{anna_id}/ledger")).await);
    day.record("history", app.get(&a, &format!("/api/v1/members/{anna_id}/history")).await);
    day.record("offers", app.get(&a, &format!("/api/v1/members/{anna_id}/offers")).await);
    day.record(
        "transfer",
        app.post(
            &a,
            &format!("/api/v1/members/{anna_id}/transfers"),
            json!({"to_member_id": boris_id, "points": 25, "transfer_id": "TR-1"}),
        )
        .await,
    );
    day.record("boris balance", app.get(&a, &format!("/api/v1/members/{boris_id}/balance")).await);
    day.record("ledger check", app.get(&a, "/api/v1/admin/ledger-check").await);

    let got = Value::Array(day.steps);
    let text = serde_json::to_string_pretty(&got).expect("json") + "\n";
    if std::env::var("KOPILKA_BLESS").is_ok_and(|v| v == "1") && app.backend == Backend::Sqlite {
        std::fs::create_dir_all(std::path::Path::new(GOLDEN).parent().expect("dir")).expect("mkdir");
        std::fs::write(GOLDEN, &text).expect("write the golden file");
        return;
    }
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(GOLDEN).expect("the golden file (run with KOPILKA_BLESS=1 to write it)"))
            .expect("golden json");
    let (got, want) = (got.as_array().expect("steps"), want.as_array().expect("steps"));
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w, "step {} answers differently from {GOLDEN}", w["step"]);
    }
    assert_eq!(got.len(), want.len(), "the day has a different number of steps than {GOLDEN}");
});
