//! One place for the web tests' setup: a fresh database per test (a SQLite file or a new
//! PostgreSQL database), the API and the web UI served on port 0, and a small browser
//! (cookies kept, redirects not followed, the CSRF field filled from the last page).

#![allow(dead_code)]

use kopilka_server::{AppState, Config};
use kopilka_store::Db;
use kopilka_web::WebConfig;
use serde_json::{Value, json};
use std::collections::BTreeMap;

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
    pub state: AppState,
    pub backend: Backend,
    shutdown: tokio::sync::watch::Sender<bool>,
}

pub fn pg_admin_url() -> String {
    std::env::var("KOPILKA_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn database_url(backend: Backend) -> String {
    let name = format!("kt_{}", kopilka_store::new_id().replace('-', ""));
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

pub const SETUP_CODE: &str = "test-setup-code";

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with(backend, |_| {}).await
    }

    /// With changed web settings (login limits...).
    pub async fn with(backend: Backend, change: impl FnOnce(&mut WebConfig)) -> TestApp {
        Self::with_config(backend, Config { worker: false, ..Config::default() }, change).await
    }

    /// With the server's settings too (the SMS and email adapters of the member portal).
    pub async fn with_config(backend: Backend, config: Config, change: impl FnOnce(&mut WebConfig)) -> TestApp {
        let url = database_url(backend).await;
        let db = Db::connect(&url).await.expect("connect");
        kopilka_store::migrate::run(&db).await.expect("migrate");
        let state = AppState::new(db, config, kopilka_server::metrics_handle());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut web = WebConfig::new(&format!("http://{addr}"));
        web.setup_token = Some(SETUP_CODE.into());
        change(&mut web);
        let pages = kopilka_web::router(state.clone(), web);
        let (tx, rx) = tokio::sync::watch::channel(false);
        let s = state.clone();
        tokio::spawn(async move {
            kopilka_server::serve_with(listener, s, pages, rx).await.expect("serve");
        });
        TestApp { url: format!("http://{addr}"), state, backend, shutdown: tx }
    }

    /// A tenant (from a template) with its admin API key.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let t = kopilka_server::services::accounts::create_tenant(&self.state.db, name, None, "retail").await.expect("tenant");
        Tenant { id: t.tenant_id, slug: t.slug, admin: t.api_key }
    }

    /// A staff account with a password.
    pub async fn staff(&self, tenant: &Tenant, email: &str, role: &str, password: &str) -> String {
        let role = kopilka_web::staff::StaffRole::parse(role).expect("role");
        let user = kopilka_web::staff::create_staff(&self.state.db, &tenant.id, "test", email, role).await.expect("staff");
        let hash = kopilka_web::staff::hash_password(password).await.expect("hash");
        let mut tx = self.state.db.begin().await.expect("tx");
        kopilka_store::web::set_staff_password(tx.conn(), &tenant.id, &user.id, &hash).await.expect("password");
        tx.commit().await.expect("commit");
        user.id
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.url)
    }

    /// A logged-in browser of a new staff account.
    pub async fn logged_in(&self, tenant: &Tenant, email: &str, role: &str) -> Browser {
        self.staff(tenant, email, role, "a good password").await;
        let mut b = self.browser();
        b.login(email, "a good password").await;
        b
    }

    /// Call the JSON API with a key.
    pub async fn api(&self, method: reqwest::Method, key: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = reqwest::Client::new().request(method, format!("{}{path}", self.url)).bearer_auth(key);
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_string());
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn store(&self, tenant: &Tenant, code: &str) -> String {
        let (s, v) = self
            .api(reqwest::Method::POST, &tenant.admin, "/api/v1/stores", Some(json!({"code": code, "name": format!("Store {code}")})))
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().expect("id").to_owned()
    }

    pub async fn member(&self, tenant: &Tenant, body: Value) -> Value {
        let (s, v) = self.api(reqwest::Method::POST, &tenant.admin, "/api/v1/members", Some(body)).await;
        assert_eq!(s, 201, "{v}");
        v
    }

    pub async fn checkout(&self, tenant: &Tenant, body: Value) -> Value {
        let (s, v) = self.api(reqwest::Method::POST, &tenant.admin, "/api/v1/pos/checkout", Some(body)).await;
        assert_eq!(s, 200, "{v}");
        v
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

/// An answer as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Page {
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", &self.body[..self.body.len().min(2000)]);
        self
    }

    #[track_caller]
    pub fn assert_contains(&self, text: &str) -> &Self {
        assert!(self.body.contains(text), "{text:?} not in: {}", &self.body[..self.body.len().min(4000)]);
        self
    }

    #[track_caller]
    pub fn assert_lacks(&self, text: &str) -> &Self {
        assert!(!self.body.contains(text), "{text:?} unexpectedly in the page");
        self
    }
}

/// A cookie-keeping client that does not follow redirects.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// The CSRF token of the last page that had a form.
    pub csrf: Option<String>,
    pub accept_language: Option<String>,
    /// Sent with every request (e.g. htmx's `X-CSRF-Token`, a browser's `Sec-Fetch-Site`).
    pub headers: Vec<(String, String)>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Browser { base: base.to_owned(), client, cookies: BTreeMap::new(), csrf: None, accept_language: None, headers: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let mut r = r.header("cookie", self.cookie_header());
        if let Some(l) = &self.accept_language {
            r = r.header("accept-language", l.clone());
        }
        for (k, v) in &self.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let set_cookies: Vec<String> = headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                let deleted = c.contains("Max-Age=0");
                if deleted || v.is_empty() {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let location = headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.text().await.unwrap_or_default();
        if let Some(t) = csrf_in(&body) {
            self.csrf = Some(t);
        }
        assert!(status < 500, "answered {status}: {body}");
        Page { status, location, headers, set_cookies, body }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self.client.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    /// POST a form with the CSRF token of the last page.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if let Some(t) = &self.csrf {
            all.push(("_csrf".into(), t.clone()));
        }
        self.post_raw(path, &all).await
    }

    /// POST exactly these fields (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(String, String)]) -> Page {
        let body = fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
        let r = self.client.post(format!("{}{path}", self.base)).header("content-type", "application/x-www-form-urlencoded").body(body);
        self.send(r).await
    }

    /// Log in with email and password; asserts it worked.
    pub async fn login(&mut self, email: &str, password: &str) {
        self.get("/admin/login").await.assert_status(200);
        let p = self.post("/admin/login", &[("email", email), ("password", password)]).await;
        assert_eq!(p.status, 303, "login failed: {}", p.body);
        // The new session has its own CSRF token: read it from the next page.
        let to = p.location.clone().expect("location");
        self.get(&to).await;
    }
}

fn csrf_in(body: &str) -> Option<String> {
    let marker = "name=\"_csrf\" value=\"";
    let i = body.find(marker)? + marker.len();
    let rest = &body[i..];
    Some(rest[..rest.find('"')?].to_owned())
}

pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
