//! The test kit the API tests (`crates/server/tests/api`) and the web tests
//! (`crates/web/tests/web`) share, so that setup lives in one place:
//!
//! - [`Backend`] and [`TestDb`]: a fresh database per test (a SQLite file under the temp
//!   dir, or a new PostgreSQL database `kt_<id>`) that **drops itself** when the guard is
//!   dropped — at the end of the test or while a failing test unwinds.
//! - [`App`]: the API (and, for the web suite, the web UI) served on port 0 over a
//!   [`TestDb`], with typed JSON request helpers (bearer keys, stores, members,
//!   checkouts...) and [`assert_error`] / [`assert_field_error`] for the error envelope.
//! - [`both!`]: define one test twice, `name::sqlite` and `name::postgres`; the app type
//!   each binary builds is whatever implements [`TestBackendApp`].
//! - [`Browser`] and [`Page`]: a cookie-keeping client that fills in the CSRF field.
//!
//! Each test binary wraps [`App`] in its own `TestApp` (so it can add suite-specific
//! methods) and re-exports the kit from its `helpers` module.

mod api;
mod app;
mod browser;
mod db;

pub use api::{Tenant, assert_error, assert_field_error};
pub use app::{App, SETUP_CODE, TestBackendApp, run};
pub use browser::{Browser, Page, enc};
pub use db::{Backend, TestDb, pg_admin_url};

/// Run a test body against both databases:
/// `both!(name, |app: TestApp| async move { ... })` defines `name::sqlite` and
/// `name::postgres`. The type of the closure's argument (any [`TestBackendApp`]) is the app
/// built for the test, so the closure's argument must name its type. Each test gets its
/// own multi-threaded runtime (4 workers) and its own database, dropped afterwards.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn sqlite() {
                $crate::run($crate::Backend::Sqlite, $body);
            }
            #[test]
            fn postgres() {
                $crate::run($crate::Backend::Postgres, $body);
            }
        }
    };
}
