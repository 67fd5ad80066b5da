//! The API suite's setup: the shared test kit (`kopilka-testkit`: a fresh database per
//! test that drops itself, `both!`, the request helpers) re-exported, plus what only
//! this suite needs — its `TestApp` (the API alone, no background worker), the receipts
//! it checks out, and time helpers.

#![allow(dead_code)]

// Not every binary that includes this module uses all of it.
#[allow(unused_imports)]
pub use kopilka_testkit::{App, Backend, Tenant, TestBackendApp, TestDb, assert_error, assert_field_error, pg_admin_url};

use kopilka_server::Config;
use serde_json::{Value, json};

/// Run a test body against both databases: `both!(name, |app: TestApp| async move { ... })`
/// defines `name::sqlite` and `name::postgres` (the kit's `both!`, at this crate's root).
#[macro_export]
macro_rules! both {
    ($($args:tt)*) => {
        kopilka_testkit::both!($($args)*);
    };
}

/// The API served on port 0 over a fresh database ([`App`]: the fields `url`, `client`,
/// `state`, `backend` and the request helpers). Test files add their own methods.
pub struct TestApp(App);

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_config(backend, Config { worker: false, ..Config::default() }).await
    }

    pub async fn with_config(backend: Backend, config: Config) -> TestApp {
        TestApp(App::serve_api(backend, config).await)
    }
}

impl TestBackendApp for TestApp {
    fn start(backend: Backend) -> impl Future<Output = Self> {
        TestApp::new(backend)
    }
}

impl std::ops::Deref for TestApp {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// The worked example receipt R-000123 (docs/api.md, "Worked example: receipt R-000123").
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
