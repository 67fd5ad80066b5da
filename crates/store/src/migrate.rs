//! Schema migrations: numbered SQL files compiled into the binary, applied in order, each
//! in its own transaction, recorded in `schema_migrations`.

use crate::db::{Db, Result, StoreError};
use sqlx::{AssertSqlSafe, Executor, Row};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_core.sql")),
    (2, include_str!("../migrations/0002_campaigns.sql")),
    (3, include_str!("../migrations/0003_rewards.sql")),
    (4, include_str!("../migrations/0004_cards.sql")),
    (5, include_str!("../migrations/0005_web.sql")),
];

/// Apply every migration not yet applied. Two processes starting at once may race; the
/// loser's DDL fails, it rolls back, sees the version recorded by the winner and moves on.
pub async fn run(db: &Db) -> Result<()> {
    for attempt in 0..5 {
        match run_once(db).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 4 => {
                tracing::debug!(error = %e, "migration raced another process; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200 * (attempt + 1))).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn run_once(db: &Db) -> Result<()> {
    db.pool()
        .execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .await?;
    for (version, sql) in MIGRATIONS {
        let mut tx = db.begin().await?;
        let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1").bind(*version).fetch_optional(tx.conn()).await?;
        if done.is_some() {
            continue;
        }
        for stmt in split_statements(sql) {
            tx.conn().execute(AssertSqlSafe(stmt)).await?;
        }
        let applied = sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::now_s())
            .execute(tx.conn())
            .await;
        match applied.map_err(StoreError::from) {
            Ok(_) => tx.commit().await?,
            Err(StoreError::Unique(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The newest version applied, or 0.
pub async fn current_version(db: &Db) -> Result<i64> {
    let row = sqlx::query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM schema_migrations").fetch_one(db.pool()).await?;
    Ok(row.try_get::<i64, _>("v")?)
}

fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || t.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(';') {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}
