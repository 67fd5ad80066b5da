//! A smoke run of `kopilka bench`: a small load on SQLite, so the benchmark keeps
//! working. It asserts what the report says, never how fast anything was.

use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kopilka");

#[test]
fn bench_runs_and_reports() {
    let out = Command::new(BIN)
        .args(["bench", "--members", "1000", "--clients", "2", "--duration-s", "2", "--warmup-s", "1", "--check", "--json"])
        .env("KOPILKA_LOG", "warn")
        .output()
        .expect("run kopilka bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.trim().lines().count(), 1, "one line of JSON: {text}");
    let r: Value = serde_json::from_str(text.trim()).expect("json");
    assert_eq!(r["database"]["kind"], "sqlite");
    assert_eq!(r["database"]["journal_mode"], "wal");
    assert_eq!(r["database"]["synchronous"], "FULL");
    assert_eq!(r["load"]["members"], 1000);
    assert!(r["load"]["seconds"].as_f64().is_some_and(|s| s > 0.0), "{r}");
    let run = &r["run"];
    assert_eq!(run["clients"], 2);
    assert!(run["checkouts"].as_u64().is_some_and(|n| n > 0), "{r}");
    assert_eq!(run["errors"], 0, "{r}");
    let l = &run["latency_ms"];
    for p in ["p50", "p90", "p99", "max"] {
        assert!(l[p].as_f64().is_some_and(|v| v > 0.0), "{p}: {r}");
    }
    assert!(l["p50"].as_f64() <= l["p99"].as_f64() && l["p99"].as_f64() <= l["max"].as_f64(), "{r}");
    assert!(r["server"]["rss_peak_mb"].as_f64().is_some_and(|v| v > 1.0), "{r}");
    assert!(r["machine"]["nproc"].as_u64().is_some_and(|n| n >= 1), "{r}");
    assert_eq!(r["check"]["ok"], true, "{r}");
    assert_eq!(r["check"]["output"], "checked 1000 members: 0 differences", "{r}");
}
