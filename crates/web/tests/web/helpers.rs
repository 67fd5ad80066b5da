//! The web suite's setup: the shared test kit (`kopilka-testkit`: a fresh database per
//! test that drops itself, `both!`, the request helpers, the small browser with cookies
//! kept, redirects not followed and the CSRF field filled from the last page) re-exported,
//! plus what only this suite needs — its `TestApp` (the API and the web UI on port 0),
//! staff accounts and logins, and API calls by tenant.

#![allow(dead_code)]

// Not every binary that includes this module uses all of it.
#[allow(unused_imports)]
pub use kopilka_testkit::{App, Backend, Browser, Page, SETUP_CODE, Tenant, TestBackendApp, TestDb, enc, pg_admin_url};

use kopilka_server::Config;
use kopilka_web::WebConfig;
use serde_json::Value;

/// Run a test body against both databases: `both!(name, |app: TestApp| async move { ... })`
/// defines `name::sqlite` and `name::postgres` (the kit's `both!`, at this crate's root).
#[macro_export]
macro_rules! both {
    ($($args:tt)*) => {
        kopilka_testkit::both!($($args)*);
    };
}

/// The API and the web UI served on port 0 over a fresh database ([`App`]: the fields
/// `url`, `client`, `state`, `backend` and the request helpers).
pub struct TestApp(App);

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
        TestApp(App::serve_web(backend, config, change).await)
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

    /// Call the JSON API with a key (any status passes).
    pub async fn api(&self, method: reqwest::Method, key: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.0.send(method, key, path, body.as_ref()).await
    }

    /// Create a store with the tenant's admin key; returns its id.
    pub async fn store(&self, tenant: &Tenant, code: &str) -> String {
        self.0.store(&tenant.admin, code).await
    }

    /// Enrol a member with the tenant's admin key.
    pub async fn member(&self, tenant: &Tenant, body: Value) -> Value {
        self.0.member(&tenant.admin, body).await
    }

    /// Check out a receipt with the tenant's admin key and assert 200.
    pub async fn checkout(&self, tenant: &Tenant, body: Value) -> Value {
        self.0.checkout(&tenant.admin, body).await
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
