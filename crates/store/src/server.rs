//! The database server itself, not a tenant's data: creating and dropping a whole
//! PostgreSQL database, analysing and checkpointing (for `kopilka bench`), and describing the server
//! and the settings that decide durability (for reports). No tenant id: nothing here
//! reads tenant rows.

use crate::db::{Backend, Db, Result, StoreError};
use sqlx::Row;

/// A PostgreSQL URL split into the server part and the database name (None when the URL
/// names no database: `postgres://user@host:5432` or `postgres://user@host:5432/`).
pub fn split_pg_url(url: &str) -> Option<(String, Option<String>, String)> {
    let scheme_end = url.find("://")? + 3;
    let (main, query) = match url[scheme_end..].find('?') {
        Some(i) => (&url[..scheme_end + i], url[scheme_end + i..].to_owned()),
        None => (url, String::new()),
    };
    match main[scheme_end..].find('/') {
        Some(i) => {
            let server = main[..scheme_end + i].to_owned();
            let db = &main[scheme_end + i + 1..];
            Some((server, (!db.is_empty()).then(|| db.to_owned()), query))
        }
        None => Some((main.to_owned(), None, query)),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Create database `name` on the PostgreSQL server of `server_url` (a URL without a
/// database; the connection goes to the `postgres` maintenance database). Returns the
/// URL of the new database.
pub async fn create_pg_database(server_url: &str, name: &str) -> Result<String> {
    if !valid_name(name) {
        return Err(StoreError::Corrupt(format!("not a plain database name: {name:?}")));
    }
    let (server, _, query) = split_pg_url(server_url).ok_or_else(|| StoreError::Corrupt(format!("not a URL: {server_url}")))?;
    let admin = Db::connect(&format!("{server}/postgres{query}")).await?;
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(admin.pool()).await;
    admin.close().await;
    r?;
    Ok(format!("{server}/{name}{query}"))
}

/// Drop database `name` on that server, closing any connections still open to it.
pub async fn drop_pg_database(server_url: &str, name: &str) -> Result<()> {
    if !valid_name(name) {
        return Err(StoreError::Corrupt(format!("not a plain database name: {name:?}")));
    }
    let (server, _, query) = split_pg_url(server_url).ok_or_else(|| StoreError::Corrupt(format!("not a URL: {server_url}")))?;
    let admin = Db::connect(&format!("{server}/postgres{query}")).await?;
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(admin.pool()).await;
    admin.close().await;
    r?;
    Ok(())
}

/// Write every change so far to the main database files: PostgreSQL's `CHECKPOINT`
/// (needs a superuser or `pg_checkpoint`), SQLite's WAL checkpoint (truncating the WAL).
/// A benchmark calls it after loading, so the load's writes are not paid for during the
/// measurement.
pub async fn checkpoint(db: &Db) -> Result<()> {
    let sql = match db.backend() {
        Backend::Postgres => "CHECKPOINT",
        Backend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    sqlx::query(sql).execute(db.pool()).await?;
    Ok(())
}

/// Refresh the planner's statistics of every table (`ANALYZE`, on both databases), as
/// after any bulk load.
///
/// On SQLite only the per-index row counts are kept (`sqlite_stat1`), not the samples
/// (`sqlite_stat4`): with samples, a statement whose `WHERE` compares an indexed column
/// with a bound value is planned again each time a new value is bound, which on the till
/// path is most statements. Its indexes are unique or nearly so, and the row counts are
/// what chooses between them.
pub async fn analyze(db: &Db) -> Result<()> {
    let mut c = db.pool().acquire().await?;
    sqlx::query("ANALYZE").execute(&mut *c).await?;
    if db.backend() == Backend::Sqlite {
        let stat4: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat4'").fetch_optional(&mut *c).await?;
        if stat4.is_some() {
            sqlx::query("DELETE FROM sqlite_stat4").execute(&mut *c).await?;
            // Reload the statistics on this connection; others load them when they open.
            sqlx::query("ANALYZE sqlite_schema").execute(&mut *c).await?;
        }
    }
    Ok(())
}

/// The server's version and its durability settings, as (name, value) pairs.
pub async fn describe(db: &Db) -> Result<Vec<(String, String)>> {
    let mut c = db.pool().acquire().await?;
    let mut out = Vec::new();
    match db.backend() {
        Backend::Postgres => {
            let v: String = sqlx::query("SELECT version()").fetch_one(&mut *c).await?.try_get(0)?;
            out.push(("version".to_owned(), v));
            for setting in ["synchronous_commit", "fsync", "wal_sync_method", "max_connections", "shared_buffers"] {
                let v: String = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT current_setting('{setting}')")))
                    .fetch_one(&mut *c)
                    .await?
                    .try_get(0)?;
                out.push((setting.to_owned(), v));
            }
        }
        Backend::Sqlite => {
            let v: String = sqlx::query("SELECT sqlite_version()").fetch_one(&mut *c).await?.try_get(0)?;
            out.push(("version".to_owned(), format!("SQLite {v}")));
            let mode: String = sqlx::query("PRAGMA journal_mode").fetch_one(&mut *c).await?.try_get(0)?;
            out.push(("journal_mode".to_owned(), mode));
            let sync: i64 = sqlx::query("PRAGMA synchronous").fetch_one(&mut *c).await?.try_get(0)?;
            let sync = match sync {
                0 => "OFF".to_owned(),
                1 => "NORMAL".to_owned(),
                2 => "FULL".to_owned(),
                3 => "EXTRA".to_owned(),
                n => n.to_string(),
            };
            out.push(("synchronous".to_owned(), sync));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::split_pg_url;

    #[test]
    fn splits_urls() {
        let s = split_pg_url;
        assert_eq!(s("postgres://u@h:5432"), Some(("postgres://u@h:5432".into(), None, "".into())));
        assert_eq!(s("postgres://u@h:5432/"), Some(("postgres://u@h:5432".into(), None, "".into())));
        assert_eq!(s("postgres://u:p@h/db"), Some(("postgres://u:p@h".into(), Some("db".into()), "".into())));
        assert_eq!(s("postgres://u@h/db?sslmode=disable"), Some(("postgres://u@h".into(), Some("db".into()), "?sslmode=disable".into())));
        assert_eq!(s("postgres://u@h?sslmode=disable"), Some(("postgres://u@h".into(), None, "?sslmode=disable".into())));
        assert_eq!(s("nonsense"), None);
    }
}
