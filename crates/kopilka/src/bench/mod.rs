//! `kopilka bench`: the till's throughput, measured the way a shop would see it.
//!
//! It makes a tenant with `kopilka tenant create`, loads its members through the CSV
//! import (timed), starts `kopilka serve` on the same database as a child process, and
//! drives `POST /api/v1/pos/checkout` over loopback HTTP from many keep-alive clients.
//! Every receipt has its own `receipt_id` and a random member; one in `--spend-every`
//! spends points. It reports checkouts per second, latency percentiles, errors by status,
//! the server's memory (VmHWM and VmRSS from /proc) and CPU, the database and the machine.
//!
//! It is a benchmark, not a test: nothing is asserted. Compare figures within one run.

mod http;

use anyhow::{Context, Result, bail};
use clap::Args;
use hyper::body::Bytes;
use kopilka_server::services;
use kopilka_store::Db;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The database: `sqlite:PATH`; `postgres://USER@HOST:PORT` without a database name
    /// (a fresh database `kbench_…` is created there and dropped afterwards); or
    /// `postgres://…/DB`, an existing database (a new tenant is made in it and kept).
    /// Default: a fresh SQLite file in a temporary folder, removed afterwards.
    #[arg(long)]
    pub db: Option<String>,
    /// Concurrent clients (each one keep-alive connection, its own till id).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value_t = 20)]
    pub duration_s: u64,
    /// Measure this many checkouts instead of a duration.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Checkouts sent before measuring starts (not counted).
    #[arg(long, default_value_t = 3)]
    pub warmup_s: u64,
    /// Members loaded (each with 100,000 points).
    #[arg(long, default_value_t = 100_000)]
    pub members: usize,
    /// One receipt in N spends 10 points (0: none spends).
    #[arg(long, default_value_t = 4)]
    pub spend_every: u64,
    /// Run the server without its background worker.
    #[arg(long)]
    pub no_worker: bool,
    /// Afterwards, run `kopilka check` on the tenant (rebuild every balance and compare).
    #[arg(long)]
    pub check: bool,
    /// Keep the database and the temporary folder (the server's log) afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
}

/// Points every loaded member starts with: enough that spending never runs out.
const OPENING_POINTS: i64 = 100_000;
const POINTS_SPENT: i64 = 10;

/// The card number of loaded member `i` (13 digits; imported cards need no check digit).
fn card(i: usize) -> String {
    format!("{}", 2_700_000_000_000u64 + i as u64)
}

fn say(args: &BenchArgs, msg: &str) {
    if !args.json {
        eprintln!("bench: {msg}");
    }
}

/// The database a run uses, and what to clean up afterwards.
struct Target {
    url: String,
    kind: &'static str,
    /// A PostgreSQL database this run created: (server URL, name).
    created_pg: Option<(String, String)>,
}

/// The run's temporary folder: the default SQLite file and the server's log.
struct WorkDir(PathBuf);

/// The server child: killed when dropped, so an error never leaves it running.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redact(url: &str) -> String {
    // postgres://user:password@host → postgres://user:***@host
    if let Some(scheme_end) = url.find("://")
        && let Some(at) = url[scheme_end + 3..].find('@')
    {
        let auth = &url[scheme_end + 3..scheme_end + 3 + at];
        if let Some((user, _)) = auth.split_once(':') {
            return format!("{}{user}:***{}", &url[..scheme_end + 3], &url[scheme_end + 3 + at..]);
        }
    }
    url.to_owned()
}

async fn target(args: &BenchArgs, work: &WorkDir) -> Result<Target> {
    let url = args.db.clone().unwrap_or_else(|| format!("sqlite:{}", work.0.join("bench.db").display()));
    if url.starts_with("sqlite:") {
        return Ok(Target { url, kind: "sqlite", created_pg: None });
    }
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("--db must be sqlite:PATH or postgres://...");
    }
    let (_, name, _) = kopilka_store::server::split_pg_url(&url).context("not a PostgreSQL URL")?;
    if name.is_some() {
        return Ok(Target { url, kind: "postgres", created_pg: None });
    }
    let name = format!("kbench_{}", kopilka_store::new_id().replace('-', ""));
    let db_url = kopilka_store::server::create_pg_database(&url, &name)
        .await
        .with_context(|| format!("cannot create database {name} on {}", redact(&url)))?;
    Ok(Target { url: db_url, kind: "postgres", created_pg: Some((url, name)) })
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned()));
    let mem_kb = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()));
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu": cpu,
        "memory_mb": mem_kb.map(|k| k / 1024),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
    })
}

/// A field of /proc/PID/status in kB (VmRSS, VmHWM).
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat (clock ticks of
/// 1/100 s, Linux's USER_HZ).
fn cpu_s(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Run `kopilka ARGS` on database `url`. The URL goes in the environment, not on the
/// command line, so a password in it does not show in the process list.
fn kopilka(exe: &Path, url: &str, args: &[&str]) -> Result<std::process::Output> {
    Command::new(exe)
        .args(args)
        .env("KOPILKA_DATABASE_URL", url)
        .env("KOPILKA_LOG", "warn")
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn start_server(exe: &Path, url: &str, work: &WorkDir, no_worker: bool) -> Result<Server> {
    let log_path = work.0.join("server.log");
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--listen", &listen]).env("KOPILKA_DATABASE_URL", url);
    if no_worker {
        cmd.arg("--no-worker");
    }
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let child = cmd
        .env("KOPILKA_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {} serve", exe.display()))?;
    let mut server = Server { child, addr: listen.parse()? };
    let mut c = http::Conn::new(server.addr, None);
    for _ in 0..600 {
        if let Some(status) = server.child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the server exited ({status}) before answering:\n{log}");
        }
        if matches!(c.get("/healthz").await, Ok((200, _))) {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not answer /healthz within 60 s (log: {})", log_path.display())
}

/// Counters and samples of one client.
#[derive(Default)]
struct ClientStats {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
    error_samples: BTreeMap<String, String>,
}

struct Load {
    addr: SocketAddr,
    key: String,
    members: usize,
    spend_every: u64,
    prefix: String,
    /// Receipts started so far (the receipt number).
    next: AtomicU64,
    /// Receipts started inside the measured window.
    measured: AtomicU64,
    limit: Option<u64>,
}

fn checkout_body(load: &Load, n: u64, till: usize, member: usize) -> Bytes {
    let mut s = String::with_capacity(400);
    let _ = write!(
        s,
        r#"{{"receipt_id":"{}-{n}","till_id":"T{till}","member":{{"card_number":"{}"}},"items":[{{"sku":"MILK","category":"dairy","quantity":2,"unit_price_minor":8900}},{{"sku":"FUEL95","category":"fuel","quantity":"35.27","unit_price_minor":5899}},{{"sku":"BREAD","category":"bakery","quantity":1,"unit_price_minor":6500}}]"#,
        load.prefix,
        card(member)
    );
    if load.spend_every > 0 && n.is_multiple_of(load.spend_every) {
        let _ = write!(s, r#","redeem_points":{POINTS_SPENT}"#);
    }
    s.push('}');
    Bytes::from(s)
}

/// One till: checkouts back to back on one connection, from `start` until `end` (or
/// until the request limit). Latencies are kept for checkouts started after `measure_from`.
async fn client(load: Arc<Load>, till: usize, measure_from: Instant, end: Option<Instant>) -> ClientStats {
    let mut stats = ClientStats { latencies_us: Vec::with_capacity(1 << 14), ..Default::default() };
    let mut rng = StdRng::seed_from_u64(rand::random::<u64>() ^ till as u64);
    let mut conn = http::Conn::new(load.addr, Some(&load.key));
    loop {
        let now = Instant::now();
        if end.is_some_and(|e| now >= e) {
            break;
        }
        let measured = now >= measure_from;
        if measured
            && let Some(limit) = load.limit
            && load.measured.fetch_add(1, Ordering::Relaxed) >= limit
        {
            break;
        }
        let n = load.next.fetch_add(1, Ordering::Relaxed);
        let body = checkout_body(&load, n, till, rng.random_range(0..load.members));
        let started = Instant::now();
        let r = conn.request(hyper::Method::POST, "/api/v1/pos/checkout", Some(body)).await;
        let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let (status, text) = match r {
            Ok((200, _)) => {
                if measured {
                    stats.latencies_us.push(us);
                }
                continue;
            }
            Ok((status, body)) => (status.to_string(), String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()),
            Err(e) => ("no answer".to_owned(), e.to_string()),
        };
        let no_answer = status == "no answer";
        if measured {
            *stats.errors.entry(status.clone()).or_default() += 1;
            stats.error_samples.entry(status).or_insert(text);
        }
        if no_answer {
            // A broken connection: do not spin while the server is gone.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    stats
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Run the benchmark and print its report. `exe` is this binary (the server and the
/// tenant command run as its children).
pub async fn run(exe: PathBuf, args: BenchArgs) -> Result<()> {
    if args.clients == 0 || args.members == 0 {
        bail!("--clients and --members must be at least 1");
    }
    let work = WorkDir(std::env::temp_dir().join(format!("kopilka-bench-{}", kopilka_store::new_id())));
    std::fs::create_dir_all(&work.0).with_context(|| format!("cannot create {}", work.0.display()))?;
    let target = target(&args, &work).await?;
    let result = measure(&exe, &args, &target, &work).await;
    // Clean up whatever happened (the server is already stopped).
    if !args.keep {
        if let Some((server, name)) = &target.created_pg
            && let Err(e) = kopilka_store::server::drop_pg_database(server, name).await
        {
            eprintln!("bench: could not drop database {name}: {e}");
        }
        let _ = std::fs::remove_dir_all(&work.0);
    } else {
        say(&args, &format!("kept {} and {}", redact(&target.url), work.0.display()));
    }
    let report = result?;
    if args.json {
        println!("{report}");
    } else {
        print_text(&report);
    }
    Ok(())
}

async fn measure(exe: &Path, args: &BenchArgs, target: &Target, work: &WorkDir) -> Result<Value> {
    let url = target.url.as_str();
    say(args, &format!("database {}", redact(url)));
    // The tenant, as an operator makes one.
    let out = kopilka(exe, url, &["tenant", "create", "--name", "Kopilka bench", "--template", "retail", "--json"])?;
    if !out.status.success() {
        bail!("tenant create failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let t: Value = serde_json::from_slice(&out.stdout).context("tenant create printed no JSON")?;
    let (tenant_id, slug, admin_key) = match (t["tenant_id"].as_str(), t["slug"].as_str(), t["api_key"].as_str()) {
        (Some(a), Some(b), Some(c)) => (a.to_owned(), b.to_owned(), c.to_owned()),
        _ => bail!("tenant create printed {t}"),
    };

    // The members, through the CSV import (one transaction, all or nothing).
    let db = Db::connect(url).await.context("cannot open the database")?;
    let database = {
        let info = kopilka_store::server::describe(&db).await?;
        let mut m = serde_json::Map::new();
        m.insert("kind".into(), json!(target.kind));
        m.insert("url".into(), json!(redact(url)));
        for (k, v) in info {
            m.insert(k, json!(v));
        }
        Value::Object(m)
    };
    // One import, as an operator would run it. (Several imports at once are no faster on
    // two cores, and on PostgreSQL their clash lookups can keep a plan made while the
    // members table was empty, a scan of the tenant's members, until autovacuum analyses
    // the table: minutes instead of seconds.)
    let mut csv = String::with_capacity(args.members * 24 + 32);
    csv.push_str("card_number,points\n");
    for i in 0..args.members {
        let _ = writeln!(csv, "{},{OPENING_POINTS}", card(i));
    }
    say(args, &format!("loading {} members through the CSV import...", args.members));
    let started = Instant::now();
    let report = services::import::import_csv(&db, &tenant_id, "bench", csv.as_bytes(), None).await.map_err(crate::api_error)?;
    if report.imported != args.members {
        bail!("the import rejected rows: {:?}", report.rejected.iter().take(3).collect::<Vec<_>>());
    }
    let load_s = started.elapsed().as_secs_f64();
    // As after any bulk load: statistics for the planner, and the load's writes in the main
    // files now rather than during the measurement.
    if let Err(e) = kopilka_store::server::analyze(&db).await {
        say(args, &format!("could not analyse after loading ({e})"));
    }
    if let Err(e) = kopilka_store::server::checkpoint(&db).await {
        say(args, &format!("could not checkpoint after loading ({e}); the measurement may pay for it"));
    }
    db.close().await;
    say(args, &format!("loaded {} members in {load_s:.1} s ({:.0} members/s)", args.members, args.members as f64 / load_s));

    // The server, and a store with a pos key, as a shop would set them up.
    let server = start_server(exe, url, work, args.no_worker).await?;
    let mut admin = http::Conn::new(server.addr, Some(&admin_key));
    let (status, store) =
        admin.post_json("/api/v1/stores", &json!({"code": "B1", "name": "Bench"})).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(store_id) = store["id"].as_str().filter(|_| status == 201) else { bail!("creating the store: {status} {store}") };
    let (status, key) = admin
        .post_json("/api/v1/api-keys", &json!({"role": "pos", "store_id": store_id, "label": "bench"}))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(pos_key) = key["key"].as_str().filter(|_| status == 201) else { bail!("creating the pos key: {status} {key}") };

    // The load.
    let load = Arc::new(Load {
        addr: server.addr,
        key: pos_key.to_owned(),
        members: args.members,
        spend_every: args.spend_every,
        prefix: format!("B{}", &kopilka_store::new_id()[24..]),
        next: AtomicU64::new(0),
        measured: AtomicU64::new(0),
        limit: args.requests,
    });
    let pid = server.child.id();
    let cpu_server_0 = cpu_s(&pid.to_string()).unwrap_or(0.0);
    let cpu_self_0 = cpu_s("self").unwrap_or(0.0);
    let t0 = Instant::now();
    let measure_from = t0 + Duration::from_secs(args.warmup_s);
    let end = args.requests.is_none().then(|| measure_from + Duration::from_secs(args.duration_s));
    match args.requests {
        Some(n) => say(args, &format!("{} clients: {}s warm-up, then {n} checkouts...", args.clients, args.warmup_s)),
        None => say(args, &format!("{} clients: {}s warm-up, then {}s measured...", args.clients, args.warmup_s, args.duration_s)),
    }
    // Sample the server's resident memory while the load runs.
    let sampling = Arc::new(AtomicU64::new(0));
    let sampler = {
        let max = sampling.clone();
        tokio::spawn(async move {
            loop {
                if let Some(kb) = proc_status_kb(pid, "VmRSS") {
                    max.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let tasks: Vec<_> = (0..args.clients).map(|i| tokio::spawn(client(load.clone(), i + 1, measure_from, end))).collect();
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut samples: BTreeMap<String, String> = BTreeMap::new();
    for t in tasks {
        let s = t.await.context("a client task failed")?;
        latencies.extend(s.latencies_us);
        for (k, v) in s.errors {
            *errors.entry(k).or_default() += v;
        }
        for (k, v) in s.error_samples {
            samples.entry(k).or_insert(v);
        }
    }
    let measured_s = measure_from.elapsed().as_secs_f64().max(1e-9);
    let cpu_server = cpu_s(&pid.to_string()).unwrap_or(0.0) - cpu_server_0;
    let cpu_self = cpu_s("self").unwrap_or(0.0) - cpu_self_0;
    let wall = t0.elapsed().as_secs_f64().max(1e-9);
    sampler.abort();
    let rss_peak_kb = proc_status_kb(pid, "VmHWM");
    let rss_now_kb = proc_status_kb(pid, "VmRSS");
    let counters = match admin.get("/metrics").await {
        Ok((200, body)) => server_counters(&String::from_utf8_lossy(&body)),
        _ => Value::Null,
    };
    drop(server);

    latencies.sort_unstable();
    let ok = latencies.len() as u64;
    let failed: u64 = errors.values().sum();
    let mean_ms = if ok > 0 { latencies.iter().map(|&u| u as f64).sum::<f64>() / ok as f64 / 1000.0 } else { 0.0 };
    let mb = |kb: Option<u64>| kb.map(|k| (k as f64 / 1024.0 * 10.0).round() / 10.0);

    let check = if args.check {
        say(args, "running kopilka check...");
        let started = Instant::now();
        let out = kopilka(exe, url, &["check", "--tenant", &slug])?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        json!({"ok": out.status.success(), "output": text.lines().last().unwrap_or(""), "seconds": started.elapsed().as_secs_f64()})
    } else {
        Value::Null
    };
    let round = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
    Ok(json!({
        "machine": machine(),
        "database": database,
        "load": {"members": args.members, "seconds": round(load_s, 2), "members_per_s": round(args.members as f64 / load_s, 0)},
        "run": {
            "clients": args.clients,
            "warmup_s": args.warmup_s,
            "measured_s": round(measured_s, 2),
            "spend_every": args.spend_every,
            "worker": !args.no_worker,
            "checkouts": ok,
            "checkouts_per_s": round(ok as f64 / measured_s, 1),
            "latency_ms": {
                "mean": round(mean_ms, 2),
                "p50": percentile(&latencies, 0.50),
                "p90": percentile(&latencies, 0.90),
                "p99": percentile(&latencies, 0.99),
                "max": percentile(&latencies, 1.0),
            },
            "errors": failed,
            "errors_by_status": errors,
            "error_samples": samples,
        },
        "server": {
            "rss_peak_mb": mb(rss_peak_kb),
            "rss_end_mb": mb(rss_now_kb),
            "rss_max_sampled_mb": mb(Some(sampling.load(Ordering::Relaxed)).filter(|&k| k > 0)),
            // Share of the whole machine over warm-up plus measurement.
            "cpu_share": round(cpu_server / wall / std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64, 3),
            // CPU time per checkout sent over the same span: how much work a checkout costs,
            // which a busy neighbour changes far less than the rate.
            "cpu_us_per_checkout": (cpu_server * 1e6 / (load.next.load(Ordering::Relaxed).max(1) as f64)).round() as u64,
        },
        "group_commit": counters,
        "load_generator": {
            "cpu_share": round(cpu_self / wall / std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64, 3),
        },
        "check": check,
    }))
}

/// The server's own view of the run, from its Prometheus text (warm-up included):
/// transactions of the write lanes, their mean size and time, and the checkouts the
/// set-based path answered.
fn server_counters(text: &str) -> Value {
    let get = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
            // An empty sum of floats is -0.0, which prints as "-0".
            + 0.0
    };
    let batches = get("kopilka_group_commit_batch_size_count");
    let requests = get("kopilka_group_commit_batch_size_sum");
    let seconds = get("kopilka_group_commit_batch_seconds_sum");
    let set_based = get("kopilka_group_commit_set_based_total");
    let checkouts = text
        .lines()
        .filter(|l| l.starts_with("kopilka_pos_total{") && l.contains("op=\"checkout\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
        + 0.0;
    if batches == 0.0 {
        return Value::Null;
    }
    json!({
        "batches": batches,
        "mean_batch": (requests / batches * 10.0).round() / 10.0,
        "mean_batch_ms": (seconds / batches * 1000.0 * 100.0).round() / 100.0,
        "set_based_share": if checkouts > 0.0 { (set_based / checkouts * 1000.0).round() / 1000.0 } else { 0.0 },
    })
}

fn print_text(r: &Value) {
    let m = &r["machine"];
    let d = &r["database"];
    let run = &r["run"];
    let l = &run["latency_ms"];
    let s = &r["server"];
    println!(
        "machine:    {} CPUs, {}, {} MB, Linux {}",
        m["nproc"],
        m["cpu"].as_str().unwrap_or("?"),
        m["memory_mb"],
        m["kernel"].as_str().unwrap_or("?")
    );
    let settings: Vec<String> = d
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !["kind", "url", "version"].contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    println!("database:   {} ({}; {})", d["url"].as_str().unwrap_or(""), d["version"].as_str().unwrap_or("?"), settings.join(", "));
    println!("members:    {} loaded in {} s ({} members/s)", r["load"]["members"], r["load"]["seconds"], r["load"]["members_per_s"]);
    println!(
        "load:       {} clients, {} s warm-up, {} s measured, one receipt in {} spends points, worker {}",
        run["clients"],
        run["warmup_s"],
        run["measured_s"],
        run["spend_every"],
        if run["worker"] == true { "on" } else { "off" }
    );
    println!("checkouts:  {} ({} /s)", run["checkouts"], run["checkouts_per_s"]);
    println!("latency ms: p50 {}  p90 {}  p99 {}  max {}  mean {}", l["p50"], l["p90"], l["p99"], l["max"], l["mean"]);
    println!("errors:     {} {}", run["errors"], if run["errors"] == 0 { String::new() } else { run["errors_by_status"].to_string() });
    if let Some(samples) = run["error_samples"].as_object() {
        for (k, v) in samples {
            println!("  {k}: {}", v.as_str().unwrap_or(""));
        }
    }
    println!(
        "server:     RSS peak (VmHWM) {} MB, at the end {} MB; CPU {}% of the machine, {} µs a checkout (load generator {}%)",
        s["rss_peak_mb"],
        s["rss_end_mb"],
        (s["cpu_share"].as_f64().unwrap_or(0.0) * 100.0).round(),
        s["cpu_us_per_checkout"],
        (r["load_generator"]["cpu_share"].as_f64().unwrap_or(0.0) * 100.0).round()
    );
    let g = &r["group_commit"];
    if !g.is_null() {
        println!(
            "batches:    {} transactions, {} requests each on average, {} ms each; {}% of checkouts set-based",
            g["batches"],
            g["mean_batch"],
            g["mean_batch_ms"],
            (g["set_based_share"].as_f64().unwrap_or(0.0) * 100.0).round()
        );
    }
    if !r["check"].is_null() {
        println!(
            "check:      {} ({})",
            if r["check"]["ok"] == true { "ok" } else { "FAILED" },
            r["check"]["output"].as_str().unwrap_or("")
        );
    }
}
