//! One place for test setup: a fresh database per test (a SQLite file, or a new
//! PostgreSQL database), the app served on port 0, and request helpers.

#![allow(dead_code)]

use kopilka_server::{AppState, Config};
use kopilka_store::Db;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Run a test body against both databases: `both!(name, |app| async move { ... })`
/// defines `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::new($crate::helpers::Backend::Sqlite).await;
                ($body)(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let app = $crate::helpers::TestApp::new($crate::helpers::Backend::Postgres).await;
                ($body)(app).await;
            }
        }
    };
}

pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub backend: Backend,
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// The PostgreSQL server the suite uses. In CI it must answer; elsewhere the default
/// local one is assumed.
pub fn pg_admin_url() -> String {
    std::env::var("KOPILKA_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn database_url(backend: Backend) -> String {
    let name = format!("kt_{}", uuid_like());
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("kopilka-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!("sqlite:{}", dir.join(format!("{name}.db")).display())
        }
        Backend::Postgres => {
            let admin = pg_admin_url();
            let db =
                Db::connect(&admin).await.unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for the PostgreSQL tests: {e}"));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(db.pool()).await.expect("create test database");
            db.close().await;
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin);
            format!("{base}/{name}")
        }
    }
}

fn uuid_like() -> String {
    kopilka_store::new_id().replace('-', "")
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_config(backend, Config { worker: false, ..Config::default() }).await
    }

    pub async fn with_config(backend: Backend, config: Config) -> TestApp {
        let url = database_url(backend).await;
        let db = Db::connect(&url).await.expect("connect");
        kopilka_store::migrate::run(&db).await.expect("migrate");
        let state = AppState::new(db, config, kopilka_server::metrics_handle());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::watch::channel(false);
        let s = state.clone();
        tokio::spawn(async move {
            kopilka_server::serve(listener, s, rx).await.expect("serve");
        });
        TestApp { url: format!("http://{addr}"), client: reqwest::Client::new(), state, backend, shutdown: tx }
    }

    /// A new tenant (retail template): (tenant id, admin key).
    pub async fn tenant(&self, name: &str) -> Tenant {
        let t = kopilka_server::services::accounts::create_tenant(&self.state.db, name, None, "retail").await.expect("tenant");
        Tenant { id: t.tenant_id, slug: t.slug, admin: t.api_key }
    }

    pub async fn request(&self, method: reqwest::Method, key: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut r = self.client.request(method, format!("{}{path}", self.url));
        if !key.is_empty() {
            r = r.bearer_auth(key);
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_string());
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        assert!(status < 500, "{path} answered {status}: {v}");
        (status, v)
    }

    /// Send a raw body (for parse errors).
    pub async fn post_raw(&self, key: &str, path: &str, body: &str) -> (u16, Value) {
        let resp = self.client.post(format!("{}{path}", self.url)).bearer_auth(key).body(body.to_owned()).send().await.expect("request");
        let status = resp.status().as_u16();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, key, path, None).await
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, key, path, Some(&body)).await
    }

    pub async fn put(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::PUT, key, path, Some(&body)).await
    }

    pub async fn delete(&self, key: &str, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, key, path, None).await
    }

    /// Create a store; returns its id.
    pub async fn store(&self, admin: &str, code: &str) -> String {
        let (s, v) = self.post(admin, "/api/v1/stores", json!({"code": code, "name": format!("Store {code}")})).await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().expect("store id").to_owned()
    }

    /// A pos key bound to a store (and a till when given).
    pub async fn pos_key(&self, admin: &str, store: &str, till: Option<&str>) -> String {
        let mut body = json!({"role": "pos", "store_id": store});
        if let Some(t) = till {
            body["till_id"] = json!(t);
        }
        let (s, v) = self.post(admin, "/api/v1/api-keys", body).await;
        assert_eq!(s, 201, "{v}");
        v["key"].as_str().expect("key").to_owned()
    }

    /// Enrol a member; returns the full answer.
    pub async fn member(&self, key: &str, body: Value) -> Value {
        let (s, v) = self.post(key, "/api/v1/members", body).await;
        assert_eq!(s, 201, "{v}");
        v
    }

    /// Give a member points by an admin adjustment.
    pub async fn give(&self, admin: &str, member: &str, points: i64) {
        let (s, v) = self.post(admin, &format!("/api/v1/members/{member}/adjustments"), json!({"points": points, "reason": "test"})).await;
        assert_eq!(s, 201, "{v}");
    }

    pub async fn balance(&self, key: &str, member: &str) -> Value {
        let (s, v) = self.get(key, &format!("/api/v1/members/{member}/balance")).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Replace the programme (fields left out take their defaults).
    pub async fn program(&self, admin: &str, body: Value) -> Value {
        let (s, v) = self.put(admin, "/api/v1/program", body).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Run every due background job now.
    pub async fn run_jobs(&self) {
        kopilka_server::jobs::drain(&self.state).await.expect("jobs");
    }

    /// Rebuild every balance of a tenant from the ledger and assert no difference.
    pub async fn assert_ledger_consistent(&self, tenant: &Tenant) {
        let (s, v) = self.get(&tenant.admin, "/api/v1/admin/ledger-check").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["differences"], json!([]), "ledger rebuild found differences: {v}");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub admin: String,
}

/// The contract's worked example receipt R-000123.
pub fn worked_example(store: &str, member: &str) -> Value {
    json!({
        "receipt_id": "R-000123",
        "till_id": "T2",
        "store_id": store,
        "member": {"member_id": member},
        "items": [
            {"line_no": 1, "sku": "CD-1", "name": "Album", "category": "music", "quantity": 2, "unit_price_minor": 15000},
            {"line_no": 2, "sku": "FUEL95", "category": "fuel", "quantity": "35.27", "unit_price_minor": 5899, "total_minor": 208058},
            {"line_no": 3, "sku": "CIG", "category": "tobacco", "quantity": 1, "unit_price_minor": 25000}
        ],
        "redeem_points": 150
    })
}

/// A simple receipt of one line.
pub fn receipt(id: &str, store: &str, member: Option<&str>, total_minor: i64, redeem: Option<Value>) -> Value {
    let mut v = json!({
        "receipt_id": id,
        "store_id": store,
        "items": [{"line_no": 1, "sku": "SKU-1", "category": "goods", "quantity": 1, "unit_price_minor": total_minor}]
    });
    if let Some(m) = member {
        v["member"] = json!({"member_id": m});
    }
    if let Some(r) = redeem {
        v["redeem_points"] = r;
    }
    v
}

// ---------------------------------------------------------------------------------------
// Helpers for the contract suite (contract.rs).
// ---------------------------------------------------------------------------------------

/// Assert a non-2xx answer: its status, its code, and the contract's error envelope
/// `{"error": {"code", "message", "fields", "request_id"}}`.
#[track_caller]
pub fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    let (s, v) = got;
    assert_eq!(*s, status, "expected {status} {code}, got {s}: {v}");
    let e = &v["error"];
    assert_eq!(e["code"], code, "expected code {code}: {v}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "error message must be a non-empty string: {v}");
    assert!(e["fields"].is_object(), "error fields must be an object: {v}");
    assert!(e["request_id"].as_str().is_some_and(|m| !m.is_empty()), "error request_id must be a non-empty string: {v}");
    assert_eq!(v.as_object().map(|m| m.len()), Some(1), "the error body holds only \"error\": {v}");
}

/// Assert a 422 `validation_error` that names `field` in "fields".
#[track_caller]
pub fn assert_field_error(got: &(u16, Value), field: &str) {
    assert_error(got, 422, "validation_error");
    assert!(got.1["error"]["fields"].get(field).is_some(), "fields should name {field}: {}", got.1);
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// RFC 3339 in UTC with whole seconds.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0).expect("time").to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Parse an RFC 3339 time to Unix seconds.
#[track_caller]
pub fn parse_rfc3339(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).expect("RFC 3339").timestamp()
}

impl TestApp {
    /// Create an API key of any shape; returns (id, key).
    pub async fn api_key(&self, admin: &str, body: Value) -> (String, String) {
        let (s, v) = self.post(admin, "/api/v1/api-keys", body).await;
        assert_eq!(s, 201, "{v}");
        (v["id"].as_str().expect("key id").to_owned(), v["key"].as_str().expect("key").to_owned())
    }

    /// Enrol a member and return only its id.
    pub async fn member_id(&self, key: &str, body: Value) -> String {
        self.member(key, body).await["id"].as_str().expect("member id").to_owned()
    }

    /// Every ledger entry of a member, newest first, following the cursor.
    pub async fn ledger_all(&self, key: &str, member: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = format!("/api/v1/members/{member}/ledger?limit=500");
        for _ in 0..100 {
            let (s, v) = self.get(key, &path).await;
            assert_eq!(s, 200, "{v}");
            out.extend(v["entries"].as_array().expect("entries").iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => path = format!("/api/v1/members/{member}/ledger?limit=500&cursor={c}"),
                None => return out,
            }
        }
        panic!("ledger cursor did not end");
    }

    /// Check out a receipt and assert 200.
    pub async fn checkout(&self, key: &str, body: Value) -> Value {
        let (s, v) = self.post(key, "/api/v1/pos/checkout", body).await;
        assert_eq!(s, 200, "{v}");
        v
    }
}
// ---------------------------------------------------------------------------------------
