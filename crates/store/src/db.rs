//! One database handle for SQLite and PostgreSQL.
//!
//! Both backends run the same SQL through sqlx's `Any` driver. The schema uses only
//! TEXT and BIGINT columns (ids are UUIDv7 strings, times are Unix seconds, booleans are
//! 0/1), which `Any` carries faithfully on both; the few dialect differences (row locks)
//! are asked of [`Tx::for_update`].
//!
//! SQLite has one writer: writes in this process are serialised by an in-process lock
//! and start with `BEGIN IMMEDIATE`, so a transaction never has to upgrade a read lock
//! (which SQLite answers with an immediate SQLITE_BUSY). Other processes (the CLI while
//! `serve` runs) wait on the busy timeout.

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use sqlx::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint rejected the write; the string names the constraint or columns.
    #[error("unique violation: {0}")]
    Unique(String),
    /// PostgreSQL could not serialise the transaction (40001) or found a deadlock (40P01);
    /// the whole transaction may be retried.
    #[error("transaction must be retried: {0}")]
    Retry(String),
    #[error(transparent)]
    Db(sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error() {
            if db.is_unique_violation() {
                let name = db.constraint().map(str::to_owned).unwrap_or_else(|| db.message().to_owned());
                return StoreError::Unique(name);
            }
            if let Some(code) = db.code()
                && (code == "40001" || code == "40P01")
            {
                return StoreError::Retry(db.message().to_owned());
            }
            // SQLite: database is locked / busy after the busy timeout.
            if let Some(code) = db.code()
                && (code == "5" || code == "517" || code == "6")
            {
                return StoreError::Retry(db.message().to_owned());
            }
        }
        StoreError::Db(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The page cache of SQLite's writing connection (KiB). The readers keep SQLite's default.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// How often SQLite's WAL is checkpointed (see `checkpoints`).
const CHECKPOINT_EVERY_MS: u64 = 250;

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    /// SQLite only: the one connection that writes.
    writer: Option<AnyPool>,
    backend: Backend,
    /// SQLite only: the one in-process writer.
    write_lock: Option<Arc<Mutex<()>>>,
    url: String,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("backend", &self.backend).finish()
    }
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
///
/// A transaction may *defer* appends that nothing in it reads back (ledger entries, job
/// upserts): they are kept here and written with one multi-row statement per table just
/// before the commit ([`Tx::flush`]). The group commit turns this on for its batches, so
/// a batch's entries cost one statement, not one per entry.
pub struct Tx {
    pub inner: Transaction<'static, Any>,
    backend: Backend,
    _guard: Option<OwnedMutexGuard<()>>,
    pub(crate) defer: bool,
    pub(crate) entries: Vec<(String, crate::ledger::Entry)>,
    /// (tenant, kind, key) → the earliest run_at asked for.
    pub(crate) jobs: Vec<(String, String, String, i64)>,
}

/// How far a transaction's deferred appends had got (see [`Tx::mark`]).
#[derive(Debug, Clone, Copy)]
pub struct Mark(usize, usize);

impl Tx {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The row-lock suffix for a SELECT that is about to be updated: `FOR UPDATE` on
    /// PostgreSQL; nothing on SQLite, whose single writer already excludes others.
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.inner
    }

    /// Defer appends from now on (see the type's documentation).
    pub fn defer_appends(&mut self) {
        self.defer = true;
    }

    /// Where the deferred appends stand, to drop the later ones with [`Tx::rollback_to`]
    /// when a savepoint is rolled back.
    pub fn mark(&self) -> Mark {
        Mark(self.entries.len(), self.jobs.len())
    }

    /// Forget the deferred appends made after `m`.
    pub fn rollback_to(&mut self, m: Mark) {
        self.entries.truncate(m.0);
        self.jobs.truncate(m.1);
    }

    /// Write the deferred appends.
    pub async fn flush(&mut self) -> Result<()> {
        let entries = std::mem::take(&mut self.entries);
        crate::ledger::insert_entries(&mut self.inner, &entries).await?;
        let jobs = std::mem::take(&mut self.jobs);
        crate::jobs::enqueue_many(&mut self.inner, &jobs).await
    }

    pub async fn commit(mut self) -> Result<()> {
        self.flush().await?;
        self.inner.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        self.inner.rollback().await?;
        Ok(())
    }
}

impl Db {
    /// Connect to `sqlite:PATH` (the file and its folder are created) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            let (file, _) = path.split_once('?').unwrap_or((path, ""));
            if file != ":memory:"
                && let Some(parent) = std::path::Path::new(file).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
            }
            (Backend::Sqlite, format!("sqlite://{file}?mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::Db(sqlx::Error::Configuration(
                format!("unsupported database URL (use sqlite:PATH or postgres://...): {url}").into(),
            )));
        };
        let sqlite = |max: u32, writer: bool| {
            AnyPoolOptions::new().max_connections(max).after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = OFF").await?;
                    if writer {
                        conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = -{WRITER_CACHE_KIB}"))).await?;
                        // Savepoint journals in memory, not in a temporary file.
                        conn.execute("PRAGMA temp_store = MEMORY").await?;
                        // The WAL is checkpointed by `checkpoints`, off the write path.
                        conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                    }
                    Ok(())
                })
            })
        };
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                let pool = sqlite(8, false).connect(&url).await?;
                // Every write goes through one connection, whose page cache then stays
                // valid from one transaction to the next (SQLite drops a connection's
                // cache when another connection has written since its last transaction).
                let writer = if url.contains(":memory:") {
                    None
                } else {
                    let writer = sqlite(1, true).connect(&url).await?;
                    tokio::spawn(checkpoints(pool.clone()));
                    Some(writer)
                };
                (pool, writer)
            }
            Backend::Postgres => {
                (AnyPoolOptions::new().max_connections(32).acquire_timeout(Duration::from_secs(30)).connect(&url).await?, None)
            }
        };
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Db { pool, writer, backend, write_lock, url })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begin a transaction that will write.
    pub async fn begin(&self) -> Result<Tx> {
        match &self.write_lock {
            Some(lock) => {
                let guard = lock.clone().lock_owned().await;
                let inner = self.writer.as_ref().unwrap_or(&self.pool).begin_with("BEGIN IMMEDIATE").await?;
                Ok(Tx { inner, backend: self.backend, _guard: Some(guard), defer: false, entries: Vec::new(), jobs: Vec::new() })
            }
            None => {
                let inner = self.pool.begin().await?;
                Ok(Tx { inner, backend: self.backend, _guard: None, defer: false, entries: Vec::new(), jobs: Vec::new() })
            }
        }
    }

    /// Begin a transaction that only reads (a consistent snapshot on both backends).
    pub async fn begin_read(&self) -> Result<Tx> {
        let inner = self.pool.begin().await?;
        Ok(Tx { inner, backend: self.backend, _guard: None, defer: false, entries: Vec::new(), jobs: Vec::new() })
    }

    pub async fn close(&self) {
        if let Some(w) = &self.writer {
            w.close().await;
        }
        self.pool.close().await;
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// SQLite: checkpoint the WAL into the database from a reading connection, so that the
/// one writer never pays for it inside a commit (its own automatic checkpoint is off). A
/// passive checkpoint copies what no reader still needs and never blocks the writer; the
/// WAL starts over from its beginning once a checkpoint has copied all of it. Stops
/// when the pool is closed.
async fn checkpoints(pool: AnyPool) {
    let mut every = tokio::time::interval(Duration::from_millis(CHECKPOINT_EVERY_MS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        every.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await
            && !pool.is_closed()
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// Read a column, mapping a decode failure to [`StoreError::Corrupt`].
pub fn col<T>(row: &AnyRow, name: &str) -> Result<T>
where
    T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get::<T, _>(name).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}
