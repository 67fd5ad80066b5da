//! A fresh database per test, dropped when its guard is.

use sqlx::Connection;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the suites use (`KOPILKA_TEST_PG_URL`). In CI it must answer;
/// elsewhere the default local one is assumed.
pub fn pg_admin_url() -> String {
    std::env::var("KOPILKA_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database made for one test, removed when this guard is dropped: the PostgreSQL
/// database is dropped `WITH (FORCE)` (its open connections are ended), the SQLite file
/// is deleted with its `-wal`, `-shm` and `-journal` files. Dropping also happens while a
/// failing test unwinds; it never panics (a database it fails to drop stays, and
/// scripts/test.sh drops `kt_*` on its next run).
#[derive(Debug)]
pub struct TestDb {
    url: String,
    backend: Backend,
    name: String,
    place: Place,
}

#[derive(Debug)]
enum Place {
    File(PathBuf),
    Postgres { admin: String },
}

impl TestDb {
    /// A new, empty database named `kt_<id>`.
    pub async fn create(backend: Backend) -> TestDb {
        Self::create_named(backend, "kt").await
    }

    /// A new, empty database named `<prefix>_<id>` (`prefix` is a plain lowercase word).
    pub async fn create_named(backend: Backend, prefix: &str) -> TestDb {
        let name = format!("{prefix}_{}", kopilka_store::new_id().replace('-', "")).to_lowercase();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join("kopilka-tests");
                std::fs::create_dir_all(&dir).expect("temp dir");
                let file = dir.join(format!("{name}.db"));
                TestDb { url: format!("sqlite:{}", file.display()), backend, name, place: Place::File(file) }
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for the PostgreSQL tests: {e}"));
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.expect("create test database");
                let _ = conn.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or_else(|| admin.clone());
                TestDb { url: format!("{base}/{name}"), backend, name, place: Place::Postgres { admin } }
            }
        }
    }

    /// The database URL (`sqlite:/tmp/...` or `postgres://.../kt_...`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database's name (`kt_<id>`; for SQLite, the file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A `&TestDb` passes where a URL (`&str`) is wanted.
impl std::ops::Deref for TestDb {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl AsRef<str> for TestDb {
    fn as_ref(&self) -> &str {
        &self.url
    }
}

impl AsRef<std::ffi::OsStr> for TestDb {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.url.as_ref()
    }
}

impl std::fmt::Display for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.place {
            Place::File(file) => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let mut p = file.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            Place::Postgres { admin } => drop_postgres(admin.clone(), self.name.clone()),
        }
    }
}

/// `DROP DATABASE ... WITH (FORCE)` on a thread of its own with a small runtime of its
/// own (Drop cannot await, and the test's runtime may be the one blocked here), waited
/// for so the database is gone when the test ends. Errors are ignored.
fn drop_postgres(admin: String, name: String) {
    let work = move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            let drop = async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            };
            let _ = tokio::time::timeout(Duration::from_secs(30), drop).await;
        });
    };
    if let Ok(handle) = std::thread::Builder::new().name("kopilka-testkit-dropdb".into()).spawn(work) {
        let _ = handle.join();
    }
}
