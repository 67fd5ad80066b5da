//! The jobs table: a queue that works on both databases without LISTEN/NOTIFY or advisory
//! locks. A job is unique per (tenant, kind, key) while it waits, claimed by moving its
//! `locked_until` forward, and deleted when done; running a job twice is harmless because
//! every job is idempotent.

use crate::Conn;
use crate::db::{Db, Result, col};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub tenant_id: String,
    pub kind: String,
    pub key: String,
    pub attempts: i64,
    /// The `locked_until` this claim set; completing deletes the row only if it is
    /// unchanged, so a job queued again while it ran is not lost.
    pub lease: i64,
    /// When the job was due (for a periodic job: how long it has been since it last ran).
    pub run_at: i64,
}

/// Queue a job to run at `run_at`. If the same job already waits, it keeps the sooner
/// time; if it is running, it will run once more after it finishes.
pub async fn enqueue(c: &mut Conn, tenant: &str, kind: &str, key: &str, run_at: i64) -> Result<()> {
    insert(c, tenant, kind, key, run_at, QUEUE_AGAIN).await
}

/// Queueing a job that is already queued: it runs at the earlier of the two times, and a
/// claimed one runs again (its worker's [`complete`] then leaves it). A job queued and
/// unclaimed, already due no later, is not written at all: on SQLite any UPDATE of
/// `run_at` rewrites its `jobs_due` entry, and on PostgreSQL any UPDATE writes a new row
/// version, even when nothing changes (the till queues a tier check per receipt).
const QUEUE_AGAIN: &str = "DO UPDATE SET locked_until = 0, run_at = CASE WHEN excluded.run_at < jobs.run_at THEN excluded.run_at ELSE jobs.run_at END \
                           WHERE jobs.locked_until <> 0 OR excluded.run_at < jobs.run_at";

/// [`enqueue`] within `tx`: at once, or at the commit when the transaction defers appends.
pub async fn enqueue_in(tx: &mut crate::Tx, tenant: &str, kind: &str, key: &str, run_at: i64) -> Result<()> {
    if tx.defer {
        tx.jobs.push((tenant.to_owned(), kind.to_owned(), key.to_owned(), run_at));
        Ok(())
    } else {
        enqueue(tx.conn(), tenant, kind, key, run_at).await
    }
}

/// [`enqueue`] many jobs with multi-row statements; a job asked for twice is queued once,
/// at the earlier time.
pub async fn enqueue_many(c: &mut Conn, jobs: &[(String, String, String, i64)]) -> Result<()> {
    let mut s = crate::batch::Script::new(c);
    add_many(&mut s, jobs);
    s.run(c).await
}

/// Add the upserts of `jobs` (tenant, kind, key, run at; the earliest run at of a job
/// named twice) to a script.
pub fn add_many(s: &mut crate::batch::Script, jobs: &[(String, String, String, i64)]) {
    let mut earliest: std::collections::BTreeMap<(&str, &str, &str), i64> = std::collections::BTreeMap::new();
    for (tenant, kind, key, run_at) in jobs {
        let at = earliest.entry((tenant.as_str(), kind.as_str(), key.as_str())).or_insert(*run_at);
        *at = (*at).min(*run_at);
    }
    let rows: Vec<_> = earliest.into_iter().collect();
    for chunk in rows.chunks(500) {
        let mut p = s.ph();
        let mut sql = String::from("INSERT INTO jobs (tenant_id, kind, job_key, run_at, locked_until, attempts, last_error) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("({}, 0, 0, NULL)", p.list(4)));
        }
        sql.push_str(" ON CONFLICT (tenant_id, kind, job_key) ");
        sql.push_str(QUEUE_AGAIN);
        for ((tenant, kind, key), run_at) in chunk {
            s.bind(*tenant).bind(*kind).bind(*key).bind(*run_at);
        }
        s.push(sql);
    }
}

/// Queue a periodic job unless it is already queued (its own schedule stands).
pub async fn ensure_periodic(c: &mut Conn, tenant: &str, kind: &str, key: &str, run_at: i64) -> Result<()> {
    insert(c, tenant, kind, key, run_at, "DO NOTHING").await
}

async fn insert(c: &mut Conn, tenant: &str, kind: &str, key: &str, run_at: i64, on_conflict: &'static str) -> Result<()> {
    let sql = format!(
        "INSERT INTO jobs (tenant_id, kind, job_key, run_at, locked_until, attempts, last_error) VALUES ($1, $2, $3, $4, 0, 0, NULL) \
         ON CONFLICT (tenant_id, kind, job_key) {on_conflict}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(kind).bind(key).bind(run_at).execute(c).await?;
    Ok(())
}

/// Claim up to `limit` due jobs for `lease_s` seconds.
pub async fn claim(db: &Db, now: i64, lease_s: i64, limit: i64) -> Result<Vec<Job>> {
    let mut tx = db.begin().await?;
    let sql = format!(
        "SELECT tenant_id, kind, job_key, attempts, run_at FROM jobs WHERE run_at <= $1 AND locked_until <= $1 ORDER BY run_at LIMIT $2{}",
        match tx.backend() {
            crate::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        }
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit).fetch_all(tx.conn()).await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for r in &rows {
        let job = Job {
            tenant_id: col(r, "tenant_id")?,
            kind: col(r, "kind")?,
            key: col(r, "job_key")?,
            attempts: col(r, "attempts")?,
            lease: now + lease_s,
            run_at: col(r, "run_at")?,
        };
        sqlx::query("UPDATE jobs SET locked_until = $4, attempts = attempts + 1 WHERE tenant_id = $1 AND kind = $2 AND job_key = $3")
            .bind(&job.tenant_id)
            .bind(&job.kind)
            .bind(&job.key)
            .bind(now + lease_s)
            .execute(tx.conn())
            .await?;
        jobs.push(job);
    }
    tx.commit().await?;
    Ok(jobs)
}

pub async fn complete(c: &mut Conn, job: &Job) -> Result<()> {
    sqlx::query("DELETE FROM jobs WHERE tenant_id = $1 AND kind = $2 AND job_key = $3 AND locked_until = $4")
        .bind(&job.tenant_id)
        .bind(&job.kind)
        .bind(&job.key)
        .bind(job.lease)
        .execute(c)
        .await?;
    Ok(())
}

/// Put a failed job back, claimable again from `retry_at`. Its due time stays, so a
/// periodic job still knows how far back it has to look.
pub async fn fail(c: &mut Conn, job: &Job, error: &str, retry_at: i64) -> Result<()> {
    sqlx::query("UPDATE jobs SET last_error = $4, locked_until = $5 WHERE tenant_id = $1 AND kind = $2 AND job_key = $3")
        .bind(&job.tenant_id)
        .bind(&job.kind)
        .bind(&job.key)
        .bind(error)
        .bind(retry_at)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn pending_count(c: &mut Conn) -> Result<i64> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM jobs").fetch_one(c).await?;
    col(&r, "n")
}

/// Run a periodic job again at `run_at` (it stays queued instead of being deleted).
pub async fn reschedule(c: &mut Conn, job: &Job, run_at: i64) -> Result<()> {
    sqlx::query("UPDATE jobs SET run_at = $4, locked_until = 0, attempts = 0, last_error = NULL WHERE tenant_id = $1 AND kind = $2 AND job_key = $3")
        .bind(&job.tenant_id)
        .bind(&job.kind)
        .bind(&job.key)
        .bind(run_at)
        .execute(c)
        .await?;
    Ok(())
}
