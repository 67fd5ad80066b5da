//! Group commit: concurrent till writes share one database transaction, and so one
//! commit (one fsync of the WAL), while each keeps its own answer and its own errors.
//!
//! Checkouts, reserves and refunds are sent to a *lane*: a task that owns a queue. A lane
//! takes everything waiting in its queue (up to `max_batch`), opens one transaction and
//! runs each request in it, one after the other, each inside its own savepoint:
//! - a request that fails (insufficient points, a receipt conflict, a unique race) is
//!   rolled back to its savepoint and answered with its error; the others go on;
//! - when every request has run, the transaction commits once and every request that
//!   succeeded gets its answer. No answer leaves the lane before that commit.
//! - when the transaction itself breaks (a savepoint or the commit fails, a request
//!   panics), nothing of the batch is committed and every request is answered with a
//!   retryable error, which [`super::with_retry`] turns into a fresh attempt.
//!
//! The wait is bounded: a lane never waits for more requests; a batch is whatever queued
//! while the previous batch ran, so an idle lane answers a lone request at once. The
//! queue is bounded too (`QUEUE_PER_LANE`); a full queue makes submitters wait.
//!
//! SQLite has one writer, so it gets one lane. PostgreSQL gets several, and a request
//! goes to the lane of its member (the card, phone or id it names), so one member's
//! requests queue in one lane and two lanes rarely wait for the same balance row. When
//! they do (a refund names a receipt, not a member; a member named by card in one lane
//! and by phone in another; campaign budget and coupon rows), PostgreSQL's row locks
//! still serialise them, and a deadlock between two batches is detected by PostgreSQL,
//! fails one request's savepoint with a retryable error, and that request is retried.
//! Correctness does not depend on the lanes: the row locks are taken exactly as without
//! group commit.

use super::checkout_batch::Candidate;
use super::{Failure, Fallible};
use futures_util::FutureExt;
use kopilka_store::{Backend, Db, Kept, StoreError, Tx};
use serde_json::Value;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// One request's work inside the batch's transaction.
pub type Work = Box<dyn for<'t> FnOnce(&'t mut Tx) -> Pin<Box<dyn Future<Output = Fallible<Value>> + Send + 't>> + Send>;

/// The longest a lane keeps its connection over consecutive batches.
const KEEP_AT_MOST: std::time::Duration = std::time::Duration::from_millis(50);

/// Requests that may wait in one lane's queue.
const QUEUE_PER_LANE: usize = 1024;

/// How the write path batches. `max_batch = 1` turns group commit off (one transaction
/// per request), which the benchmark uses for comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    pub max_batch: usize,
    /// Lanes on PostgreSQL (SQLite always has one).
    pub pg_lanes: usize,
    /// Whether plain checkouts take the set-based path ([`super::checkout_batch`]); off,
    /// every request runs the per-receipt way (for comparison and tests).
    pub set_based: bool,
    /// SQLite: run the lane on a thread of its own, on the same CPU as the writer
    /// connection's thread ([`kopilka_store::affinity`]). Ignored on one CPU.
    pub pin_sqlite_lane: bool,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig { max_batch: 64, pg_lanes: 2, set_based: true, pin_sqlite_lane: true }
    }
}

struct Job {
    work: Work,
    /// Set for a checkout that may take the set-based path.
    fast: Option<Candidate>,
    reply: oneshot::Sender<Fallible<Value>>,
}

/// The lanes of one server.
pub struct GroupCommit {
    lanes: Vec<mpsc::Sender<Job>>,
    stats: Arc<Stats>,
    set_based: bool,
}

/// Counters since start: transactions run by the lanes and requests run in them.
#[derive(Debug, Default)]
pub struct Stats {
    pub batches: AtomicU64,
    pub requests: AtomicU64,
    /// Checkouts answered by the set-based path.
    pub fast: AtomicU64,
}

impl GroupCommit {
    /// Start the lanes (needs a Tokio runtime). They stop when this value is dropped.
    pub fn start(db: &Db, config: GroupConfig) -> Self {
        let n = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => config.pg_lanes.max(1),
        };
        let max_batch = config.max_batch.clamp(1, 1024);
        let stats = Arc::new(Stats::default());
        let lanes = (0..n)
            .map(|i| {
                let (tx, rx) = mpsc::channel(QUEUE_PER_LANE);
                let run = lane(db.clone(), rx, max_batch, i, stats.clone());
                let pin = db.sqlite_writer_thread().zip(lane_cpu()).filter(|_| config.pin_sqlite_lane);
                match pin {
                    Some((writer, cpu)) => spawn_pinned(run, writer, cpu),
                    None => {
                        tokio::spawn(run);
                    }
                }
                tx
            })
            .collect();
        GroupCommit { lanes, stats, set_based: config.set_based }
    }

    /// (batches, requests) run so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.stats.batches.load(Ordering::Relaxed), self.stats.requests.load(Ordering::Relaxed))
    }

    /// Checkouts answered by the set-based path so far.
    pub fn fast_answers(&self) -> u64 {
        self.stats.fast.load(Ordering::Relaxed)
    }

    /// Run `work` in the lane for `key` and wait for its answer, which is only given once
    /// the work is committed (or failed).
    /// `fast` offers the request to the set-based checkout path ([`super::checkout_batch`]);
    /// `work` runs it otherwise.
    pub async fn submit(&self, key: &str, work: Work, fast: Option<Candidate>) -> Fallible<Value> {
        let lane = &self.lanes[lane_for(key, self.lanes.len())];
        let (reply, answer) = oneshot::channel();
        let fast = fast.filter(|_| self.set_based);
        if lane.send(Job { work, fast, reply }).await.is_err() {
            return Err(Failure::Store(StoreError::Retry("the write lane is shutting down".into())));
        }
        answer.await.unwrap_or_else(|_| Err(Failure::Store(StoreError::Retry("the write lane dropped the request".into()))))
    }
}

/// The CPU for the SQLite lane: the last this process may use, when it may use several.
fn lane_cpu() -> Option<usize> {
    let allowed = kopilka_store::affinity::cpus_of(0)?;
    if allowed.len() > 1 { allowed.last().copied() } else { None }
}

/// Run the SQLite lane on a thread of its own, with its own one-thread runtime, pinned
/// with the writer connection's thread to `cpu`, as a batch thread
/// ([`kopilka_store::affinity`]).
fn spawn_pinned(run: impl Future<Output = ()> + Send + 'static, writer: i32, cpu: usize) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "no runtime for the SQLite lane's own thread; it shares the server's");
            tokio::spawn(run);
            return;
        }
    };
    // A server whose one write lane did not start cannot take a receipt: stop at startup.
    std::thread::Builder::new()
        .name("kopilka-sqlite-lane".into())
        .spawn(move || {
            use kopilka_store::affinity::{batch_scheduling, pin};
            let pinned = pin(0, cpu) && pin(writer, cpu);
            // Woken by the writer's thread for each row it sends, the lane waits for the
            // writer to finish the statement instead of taking its CPU row by row.
            let batch = pinned && batch_scheduling();
            tracing::debug!(cpu, pinned, batch, "the SQLite lane runs beside the writer's thread");
            runtime.block_on(run);
        })
        .expect("start the SQLite write lane's thread");
}

fn lane_for(key: &str, lanes: usize) -> usize {
    if lanes == 1 {
        return 0;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

async fn lane(db: Db, mut rx: mpsc::Receiver<Job>, max_batch: usize, index: usize, stats: Arc<Stats>) {
    let mut batch = Vec::with_capacity(max_batch);
    // The connection (and SQLite's write lock), kept from one batch to the next while
    // more requests wait, but never longer than `KEEP_AT_MOST` at a time: every other
    // writer (the job worker, the admin API) waits meanwhile, and the lock is fair.
    let mut kept: Option<Kept> = None;
    let mut kept_since = std::time::Instant::now();
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        metrics::histogram!("kopilka_group_commit_batch_size").record(batch.len() as f64);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.requests.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let started = std::time::Instant::now();
        if kept.is_none() {
            kept_since = started;
        }
        kept = run_batch(&db, &mut batch, &stats, kept).await;
        metrics::histogram!("kopilka_group_commit_batch_seconds").record(started.elapsed().as_secs_f64());
        debug_assert!(batch.is_empty());
        if rx.is_empty() || kept_since.elapsed() >= KEEP_AT_MOST || db.checkpoint_waiting() {
            kept = None;
        }
    }
    tracing::debug!(lane = index, "write lane stopped");
}

fn broken(why: &str) -> Failure {
    Failure::Store(StoreError::Retry(format!("the batch's transaction failed: {why}")))
}

async fn exec(tx: &mut Tx, sql: &'static str) -> Result<(), StoreError> {
    // `raw_sql`: one round trip for the one or two statements of a savepoint step.
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(tx.conn()).await?;
    Ok(())
}

/// Run one batch and answer every job in it, whatever happens.
///
/// Plain checkouts go first, set-wise ([`super::checkout_batch`]): when that path fails,
/// the transaction (which then holds nothing else) is rolled back and begun again, and
/// its checkouts run one by one with the rest.
///
/// Savepoints cost one round trip per request: one savepoint is opened before the first
/// request; after a request that succeeded it is released and a new one opened in one
/// step (none after the last: the commit ends it), and after one that failed it is rolled
/// back to, which leaves it open for the next request.
///
/// Returns the connection to keep for the next batch, when the batch committed.
async fn run_batch(db: &Db, batch: &mut Vec<Job>, stats: &Stats, kept: Option<Kept>) -> Option<Kept> {
    let mut tx = match db.begin_batch(kept).await {
        Ok(tx) => tx,
        Err(e) => {
            let why = e.to_string();
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(broken(&why)));
            }
            return None;
        }
    };
    // Ledger entries and job upserts of the whole batch go in one statement each, at the
    // commit.
    tx.defer_appends();
    let mut done: Vec<(oneshot::Sender<Fallible<Value>>, Fallible<Value>)> = Vec::with_capacity(batch.len());
    let mut failed: Option<String> = None;
    let mut slow: Vec<Job> = Vec::with_capacity(batch.len());
    let (mut fast, rest): (Vec<Job>, Vec<Job>) = batch.drain(..).partition(|j| j.fast.is_some());
    if !fast.is_empty() {
        let cands: Vec<Candidate> = fast.iter_mut().filter_map(|j| j.fast.take()).collect();
        match fast_path(&mut tx, &cands).await {
            Some(answers) => {
                for (job, answer) in fast.into_iter().zip(answers) {
                    match answer {
                        Some(a) => {
                            stats.fast.fetch_add(1, Ordering::Relaxed);
                            metrics::counter!("kopilka_group_commit_set_based_total").increment(1);
                            done.push((job.reply, Ok(a)));
                        }
                        None => slow.push(job),
                    }
                }
            }
            None => {
                // Nothing else ran in this transaction: start again without the
                // set-based path.
                let _ = tx.rollback().await;
                match db.begin().await {
                    Ok(t) => {
                        tx = t;
                        tx.defer_appends();
                    }
                    Err(e) => {
                        let why = e.to_string();
                        for job in fast.into_iter().chain(rest) {
                            let _ = job.reply.send(Err(broken(&why)));
                        }
                        return None;
                    }
                }
                slow.extend(fast);
            }
        }
    }
    slow.extend(rest);
    let total = slow.len();
    // A batch of one needs no savepoint: its error rolls back the whole transaction.
    let single = total == 1 && done.is_empty();
    if failed.is_none()
        && !single
        && total > 0
        && let Err(e) = exec(&mut tx, "SAVEPOINT kopilka_g").await
    {
        failed = Some(e.to_string());
    }
    for (i, job) in slow.into_iter().enumerate() {
        if let Some(why) = &failed {
            let _ = job.reply.send(Err(broken(why)));
            continue;
        }
        let mark = tx.mark();
        let out = match AssertUnwindSafe((job.work)(&mut tx)).catch_unwind().await {
            Ok(out) => out,
            Err(_) => {
                // The transaction is in an unknown state: give it up.
                tracing::error!("a till request panicked inside a write batch");
                failed = Some("a request panicked".into());
                let _ = job.reply.send(Err(Failure::Api(crate::error::ApiError::internal("a till request panicked"))));
                continue;
            }
        };
        let last = i + 1 == total;
        if !single {
            let step = match (&out, last) {
                (Ok(_), false) => exec(&mut tx, "RELEASE SAVEPOINT kopilka_g; SAVEPOINT kopilka_g").await,
                (Ok(_), true) => Ok(()),
                (Err(_), _) => {
                    tx.rollback_to(mark);
                    exec(&mut tx, "ROLLBACK TO SAVEPOINT kopilka_g").await
                }
            };
            if let Err(e) = step {
                failed = Some(e.to_string());
                let _ = job.reply.send(Err(broken(&e.to_string())));
                continue;
            }
        }
        done.push((job.reply, out));
    }
    if let Some(why) = failed {
        let _ = tx.rollback().await;
        for (reply, _) in done {
            let _ = reply.send(Err(broken(&why)));
        }
        return None;
    }
    if single && done.first().is_some_and(|(_, out)| out.is_err()) {
        // Nothing to keep: the one request failed.
        let _ = tx.rollback().await;
        for (reply, out) in done {
            let _ = reply.send(out);
        }
        return None;
    }
    match tx.commit_keep().await {
        Ok(kept) => {
            for (reply, out) in done {
                let _ = reply.send(out);
            }
            Some(kept)
        }
        Err(e) => {
            // Nothing of the batch is committed. A business error seen inside it may have
            // depended on a request that is now gone, so every request tries again.
            let why = e.to_string();
            for (reply, _) in done {
                let _ = reply.send(Err(broken(&why)));
            }
            None
        }
    }
}

/// The set-based path for the batch's plain checkouts, tenant by tenant, first in the
/// batch's transaction. Per job: its answer, or None to run it the per-receipt way. None
/// when the path fails (a database error, a panic): the caller then rolls the
/// transaction back, which held nothing else, and runs every job the per-receipt way.
async fn fast_path(tx: &mut Tx, cands: &[Candidate]) -> Option<Vec<Option<Value>>> {
    let mut answers: Vec<Option<Value>> = vec![None; cands.len()];
    let mut tenants: Vec<&str> = cands.iter().map(|c| c.auth.tenant_id.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    for tenant in tenants {
        let (index, group): (Vec<usize>, Vec<Candidate>) =
            cands.iter().enumerate().filter(|(_, c)| c.auth.tenant_id == tenant).map(|(i, c)| (i, c.clone())).unzip();
        let state = group[0].state.clone();
        let run = AssertUnwindSafe(super::checkout_batch::run(tx, &state, tenant, &group)).catch_unwind().await;
        match run {
            Ok(Ok(out)) => {
                for (i, a) in index.into_iter().zip(out) {
                    answers[i] = a;
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(error = ?e, "the batched checkout path failed; its receipts run one by one");
                return None;
            }
            Err(_) => {
                tracing::error!("the batched checkout path panicked; its receipts run one by one");
                return None;
            }
        }
    }
    Some(answers)
}

#[cfg(test)]
mod tests {
    use super::lane_for;

    #[test]
    fn a_key_always_goes_to_the_same_lane() {
        for key in ["card:1", "phone:+79990000000", "id:0192", ""] {
            let l = lane_for(key, 8);
            assert!(l < 8);
            assert_eq!(l, lane_for(key, 8));
        }
        assert_eq!(lane_for("anything", 1), 0);
        let used: std::collections::HashSet<usize> = (0..200).map(|i| lane_for(&format!("card:{i}"), 8)).collect();
        assert_eq!(used.len(), 8, "keys spread over every lane");
    }
}
