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
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Database, Executor, SqlSafeStr};
use sqlx_core::transaction::TransactionManager;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use sqlx::Row;

/// sqlx's transaction manager for `Any`: BEGIN, COMMIT and ROLLBACK as its own
/// `Transaction` runs them.
type Tm = <Any as Database>::TransactionManager;

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

/// The page cache of SQLite's writing connection (KiB): SQLite's default, as the readers'.
///
/// A larger cache made the till slower, however large the database. When a B-tree page
/// splits, SQLite renumbers pages through the lock page's number (page 262,145 with 4 KiB
/// pages), which marks the cache as holding a page beyond the database's end; the commit
/// then scans the cache's whole hash table to drop it, a cost that grows with the cache.
/// With 32 MiB that scan was 8.6 % of the writer thread's time, and 2 MiB ran 6-11 % more
/// checkouts a second at 5,000 and 100,000 members (docs/benchmarks-history.md, seventh pass).
const WRITER_CACHE_KIB: i64 = 2 * 1024;

/// PostgreSQL: the group commit lanes' connections ([`Db::begin_batch`]) and the
/// prepared statements each keeps.
const LANE_CONNECTIONS: u32 = 16;
const LANE_STATEMENTS: usize = 500;

/// The size SQLite's WAL file is cut back to when it starts over (small in the unit
/// tests, so that a test sees it happen after little writing).
const WAL_KEEP_BYTES: i64 = if cfg!(test) { 1 << 20 } else { 64 << 20 };

/// Frames committed during a checkpoint that are few enough to copy under the write
/// lock (see `checkpoints`).
const CHECKPOINT_CATCH_UP_FRAMES: i64 = 256;

/// How often SQLite's WAL is checkpointed (see `checkpoints`).
const CHECKPOINT_EVERY_MS: u64 = if cfg!(test) { 50 } else { 250 };

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    /// SQLite: the one connection that writes. PostgreSQL: the connections of the group
    /// commit's lanes ([`Db::begin_batch`]), with a larger statement cache.
    writer: Option<AnyPool>,
    backend: Backend,
    /// SQLite only: the one in-process writer.
    write_lock: Option<Arc<Mutex<()>>>,
    url: String,
    /// SQLite: the id of the writer connection's thread, when it could be told apart.
    writer_thread: Option<i32>,
    /// SQLite: the checkpoint waits for the write lock ([`Db::checkpoint_waiting`]).
    checkpoint_waiting: Arc<AtomicBool>,
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
///
/// It owns its pooled connection and runs BEGIN, COMMIT and ROLLBACK through sqlx's
/// transaction manager, as sqlx's own `Transaction` does, so that a writer can keep the
/// connection (and SQLite's write lock) for its next transaction ([`Tx::commit_keep`]).
pub struct Tx {
    /// Always set; taken only by [`Tx::commit_keep`].
    conn: Option<PoolConnection<Any>>,
    /// Whether a transaction is open on `conn` (dropping the Tx then rolls it back).
    open: bool,
    backend: Backend,
    guard: Option<OwnedMutexGuard<()>>,
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
        self.conn.as_mut().expect("a transaction has its connection")
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
        // One script: on SQLite, one round trip for both tables.
        let mut s = crate::batch::Script::new(self.conn());
        crate::ledger::add_entries(&mut s, &std::mem::take(&mut self.entries));
        crate::jobs::add_many(&mut s, &std::mem::take(&mut self.jobs));
        s.run(self.conn()).await
    }

    pub async fn commit(mut self) -> Result<()> {
        self.flush().await?;
        Tm::commit(self.conn()).await?;
        self.open = false;
        Ok(())
    }

    /// Commit, and keep the connection (and on SQLite the write lock) for the next
    /// transaction, [`Db::begin_batch`]. A writer with more to write so saves giving the
    /// connection back to the pool and taking it again (each a round trip) and waiting
    /// for the lock. Until the [`Kept`] is dropped, every other writer waits.
    pub async fn commit_keep(mut self) -> Result<Kept> {
        self.flush().await?;
        Tm::commit(self.conn()).await?;
        self.open = false;
        let conn = self.conn.take().expect("a transaction has its connection");
        Ok(Kept { conn, guard: self.guard.take() })
    }

    pub async fn rollback(mut self) -> Result<()> {
        Tm::rollback(self.conn()).await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open
            && let Some(conn) = self.conn.as_mut()
        {
            // As sqlx's `Transaction` does: the rollback is queued on the connection and
            // runs before its next use, which is at the latest its return to the pool.
            Tm::start_rollback(conn);
        }
    }
}

/// A writer's connection, kept between its transactions ([`Tx::commit_keep`]).
pub struct Kept {
    conn: PoolConnection<Any>,
    guard: Option<OwnedMutexGuard<()>>,
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
            let options = AnyPoolOptions::new().max_connections(max).test_before_acquire(!writer);
            // The writer's connection lives as long as the pool: its thread is the one the
            // SQLite lane runs beside (`affinity`).
            let options = if writer { options.max_lifetime(None).idle_timeout(None) } else { options };
            options.after_connect(move |conn, _meta| {
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
                        // When the WAL starts over, a file grown past this is cut back.
                        conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA journal_size_limit = {WAL_KEEP_BYTES}"))).await?;
                    }
                    Ok(())
                })
            })
        };
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let mut writer_thread = None;
        let checkpoint_waiting = Arc::new(AtomicBool::new(false));
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                let pool = sqlite(8, false).connect(&url).await?;
                // Every write goes through one connection, whose page cache then stays
                // valid from one transaction to the next (SQLite drops a connection's
                // cache when another connection has written since its last transaction).
                let writer = if url.contains(":memory:") {
                    None
                } else {
                    let before = crate::affinity::threads_named("sqlx-sqlite-wor");
                    let writer = sqlite(1, true).connect(&url).await?;
                    let new: Vec<i32> =
                        crate::affinity::threads_named("sqlx-sqlite-wor").into_iter().filter(|t| !before.contains(t)).collect();
                    writer_thread = (new.len() == 1).then(|| new[0]);
                    let lock = write_lock.clone().expect("SQLite has a write lock");
                    tokio::spawn(checkpoints(pool.clone(), lock, checkpoint_waiting.clone()));
                    Some(writer)
                };
                (pool, writer)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new().max_connections(32).acquire_timeout(Duration::from_secs(30)).connect(&url).await?;
                // The lanes' multi-row statements change their text with their row
                // counts: a batch runs a dozen kinds in many sizes, more than sqlx's
                // default cache of 100 prepared statements holds, and a statement not
                // in it costs a round trip to prepare and a fresh plan. Only these few
                // connections keep the larger cache (and its memory in the server).
                let lanes_url = if url.contains("statement-cache-capacity") {
                    url.clone()
                } else {
                    format!("{url}{}statement-cache-capacity={LANE_STATEMENTS}", if url.contains('?') { '&' } else { '?' })
                };
                let lanes = AnyPoolOptions::new()
                    .max_connections(LANE_CONNECTIONS)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy(&lanes_url)?;
                (pool, Some(lanes))
            }
        };
        Ok(Db { pool, writer, backend, write_lock, url, writer_thread, checkpoint_waiting })
    }

    /// SQLite: the thread of the one writing connection (see [`crate::affinity`]).
    pub fn sqlite_writer_thread(&self) -> Option<i32> {
        self.writer_thread
    }

    /// SQLite: whether the WAL checkpoint waits for the write lock, to copy the last
    /// frames while nothing writes (see `checkpoints`). A writer that keeps the lock
    /// between transactions ([`Tx::commit_keep`]) should let it go: every frame committed
    /// while the checkpoint waits is one more it copies while every writer waits.
    pub fn checkpoint_waiting(&self) -> bool {
        self.checkpoint_waiting.load(Ordering::Relaxed)
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
        let (conn, guard) = match &self.write_lock {
            Some(lock) => {
                let guard = lock.clone().lock_owned().await;
                (self.writer.as_ref().unwrap_or(&self.pool).acquire().await?, Some(guard))
            }
            None => (self.pool.acquire().await?, None),
        };
        self.begin_on(conn, guard).await
    }

    /// Begin a group commit batch's transaction: on a connection kept from the lane's
    /// last one ([`Tx::commit_keep`]) when there is one; else like [`Db::begin`], but on
    /// PostgreSQL from the lanes' own connections.
    pub async fn begin_batch(&self, kept: Option<Kept>) -> Result<Tx> {
        match (kept, self.backend, &self.writer) {
            (Some(k), _, _) => self.begin_on(k.conn, k.guard).await,
            (None, Backend::Postgres, Some(lanes)) => self.begin_on(lanes.acquire().await?, None).await,
            (None, _, _) => self.begin().await,
        }
    }

    async fn begin_on(&self, conn: PoolConnection<Any>, guard: Option<OwnedMutexGuard<()>>) -> Result<Tx> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Self::tx(conn, guard, self.backend, Some(begin)).await
    }

    async fn tx(
        conn: PoolConnection<Any>,
        guard: Option<OwnedMutexGuard<()>>,
        backend: Backend,
        begin: Option<&'static str>,
    ) -> Result<Tx> {
        // Open before BEGIN, as in sqlx's `Transaction`: a BEGIN that failed half-way is
        // rolled back.
        let mut tx = Tx { conn: Some(conn), open: true, backend, guard, defer: false, entries: Vec::new(), jobs: Vec::new() };
        Tm::begin(tx.conn(), begin.map(SqlSafeStr::into_sql_str)).await?;
        Ok(tx)
    }

    /// Begin a transaction that only reads (a consistent snapshot on both backends).
    pub async fn begin_read(&self) -> Result<Tx> {
        Self::tx(self.pool.acquire().await?, None, self.backend, None).await
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
/// one writer rarely pays for it inside a commit (its own automatic checkpoint is off).
///
/// Every `CHECKPOINT_EVERY_MS`, passive checkpoints (they never block the writer inside
/// SQLite, and copy only what no reader still needs):
/// - up to three run beside the writer: the first copies most of the WAL, the next ones
///   what was committed meanwhile, until that is little (`CHECKPOINT_CATCH_UP_FRAMES`);
/// - the last runs while holding the in-process write lock, so no write is under way:
///   it copies the few frames still left, and so the whole WAL. The next write
///   transaction then starts the WAL over from its beginning.
///
/// Without the last, the writer would always be a few frames ahead, the WAL would never
/// start over, and the file would grow without end (about 90 MB a second under
/// `kopilka bench`). The passes before it keep the writer's wait for it short.
/// Stops when the pool is closed.
async fn checkpoints(pool: AnyPool, write_lock: Arc<Mutex<()>>, waiting: Arc<AtomicBool>) {
    let mut every = tokio::time::interval(Duration::from_millis(CHECKPOINT_EVERY_MS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The frames in the WAL after a passive checkpoint (all of them copied, unless a
    // reader still needed some), or None when it failed.
    let checkpoint = |pool: &AnyPool| {
        let pool = pool.clone();
        async move {
            match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&pool).await {
                Ok(row) => row.try_get::<i64, _>(1).ok(),
                Err(e) => {
                    if !pool.is_closed() {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                    None
                }
            }
        }
    };
    while !pool.is_closed() {
        every.tick().await;
        let mut last = checkpoint(&pool).await;
        for _ in 0..2 {
            let now = checkpoint(&pool).await;
            // The WAL started over meanwhile (fewer frames), or little was added.
            let small = matches!((last, now), (Some(a), Some(b)) if b < a || b - a <= CHECKPOINT_CATCH_UP_FRAMES);
            last = now;
            if small {
                break;
            }
        }
        // Writers that keep the lock between transactions let it go at their next
        // commit (`Db::checkpoint_waiting`), so that little is committed meanwhile.
        waiting.store(true, Ordering::Relaxed);
        let _no_writes = write_lock.lock().await;
        waiting.store(false, Ordering::Relaxed);
        checkpoint(&pool).await;
    }
}

/// Read a column, mapping a decode failure to [`StoreError::Corrupt`].
pub fn col<T>(row: &AnyRow, name: &str) -> Result<T>
where
    T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get::<T, _>(name).map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::Db;

    /// Under writes that never pause, the WAL still starts over from its beginning, and
    /// its file is cut back to `WAL_KEEP_BYTES`. Without the checkpoint's pass under the
    /// write lock, the writer always had frames the checkpoint had not copied, and the
    /// file grew with every transaction.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_writes_that_never_pause() {
        let dir = std::env::temp_dir().join(format!("kopilka-wal-{}", crate::new_id()));
        let db = Db::connect(&format!("sqlite:{}", dir.join("t.db").display())).await.unwrap();
        sqlx::raw_sql("CREATE TABLE scratch (x BLOB)").execute(db.pool()).await.unwrap();
        let wal = dir.join("t.db-wal");
        let (mut largest, mut cut) = (0, false);
        // At most 100 MB; the WAL is normally cut back within the first few MB.
        for _ in 0..200 {
            let mut tx = db.begin().await.unwrap();
            sqlx::raw_sql("DELETE FROM scratch; INSERT INTO scratch VALUES (randomblob(524288))").execute(tx.conn()).await.unwrap();
            tx.commit().await.unwrap();
            let now = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            if now < largest {
                cut = true;
                break;
            }
            largest = now;
        }
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(cut, "the WAL never started over: its file grew to {largest} bytes");
    }

    /// The thread taken for the writer's ([`Db::sqlite_writer_thread`], which the SQLite
    /// lane is pinned beside) is the one that runs the writes: of the connections'
    /// threads, it uses the most CPU time over a run of write transactions.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_thread_is_the_one_that_runs_the_writes() {
        use crate::affinity::{cpu_ns, threads_named};
        let dir = std::env::temp_dir().join(format!("kopilka-writer-{}", crate::new_id()));
        let db = Db::connect(&format!("sqlite:{}", dir.join("t.db").display())).await.unwrap();
        let writer = db.sqlite_writer_thread().expect("the writer's thread is known");
        let mut tx = db.begin().await.unwrap();
        sqlx::raw_sql("CREATE TABLE scratch (x BLOB); CREATE INDEX scratch_x ON scratch (x)").execute(tx.conn()).await.unwrap();
        tx.commit().await.unwrap();
        let threads = threads_named("sqlx-sqlite-wor");
        assert!(threads.contains(&writer), "{writer} is not among {threads:?}");
        let before: Vec<u64> = threads.iter().map(|&t| cpu_ns(t).unwrap_or(0)).collect();
        // Mostly B-tree work, which only the writer does; few pages for the checkpoint to
        // copy.
        for _ in 0..20 {
            let mut tx = db.begin().await.unwrap();
            let rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) SELECT randomblob(8) FROM n";
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("INSERT INTO scratch {rows}"))).execute(tx.conn()).await.unwrap();
            tx.commit().await.unwrap();
        }
        let used: Vec<(u64, i32)> = threads.iter().zip(before).map(|(&t, b)| (cpu_ns(t).unwrap_or(0).saturating_sub(b), t)).collect();
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        let busiest = used.iter().max().expect("threads").1;
        assert_eq!(busiest, writer, "CPU time per thread over the writes (ns, thread): {used:?}");
    }

    /// While a writer holds the lock, the checkpoint's last pass waits for it and says so
    /// (`Db::checkpoint_waiting`, which the group commit's lane reads to let the lock go);
    /// once it has the lock and is done, it no longer does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpoint_says_when_it_waits_for_the_write_lock() {
        let dir = std::env::temp_dir().join(format!("kopilka-waiting-{}", crate::new_id()));
        let db = Db::connect(&format!("sqlite:{}", dir.join("t.db").display())).await.unwrap();
        let until = |want: bool| {
            let db = db.clone();
            async move {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while db.checkpoint_waiting() != want {
                    assert!(std::time::Instant::now() < deadline, "checkpoint_waiting stayed {}", !want);
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        };
        let mut tx = db.begin().await.unwrap();
        sqlx::raw_sql("CREATE TABLE scratch (x BLOB)").execute(tx.conn()).await.unwrap();
        until(true).await;
        tx.commit().await.unwrap();
        until(false).await;
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
