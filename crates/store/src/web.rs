//! The web UI's rows: staff accounts, browser sessions (of every web area) and one-time
//! login links. Secrets are stored only as SHA-256 hashes made by the caller.

use crate::Conn;
use crate::db::{Result, col};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct StaffUser {
    pub tenant_id: String,
    pub id: String,
    /// Lower-cased.
    pub email: String,
    pub name: Option<String>,
    /// argon2id PHC string; None until a password is set.
    pub password_hash: Option<String>,
    pub role: String,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
}

const STAFF_COLS: &str = "tenant_id, id, email, name, password_hash, role, disabled_at, created_at";

fn staff_row(r: &AnyRow) -> Result<StaffUser> {
    Ok(StaffUser {
        tenant_id: col(r, "tenant_id")?,
        id: col(r, "id")?,
        email: col(r, "email")?,
        name: col(r, "name")?,
        password_hash: col(r, "password_hash")?,
        role: col(r, "role")?,
        disabled_at: col(r, "disabled_at")?,
        created_at: col(r, "created_at")?,
    })
}

/// Insert a staff user; a second account with the same email in the tenant is a
/// [`crate::StoreError::Unique`].
pub async fn insert_staff(c: &mut Conn, u: &StaffUser) -> Result<()> {
    sqlx::query(
        "INSERT INTO staff_users (tenant_id, id, email, name, password_hash, role, disabled_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&u.tenant_id)
    .bind(&u.id)
    .bind(&u.email)
    .bind(&u.name)
    .bind(&u.password_hash)
    .bind(&u.role)
    .bind(u.disabled_at)
    .bind(u.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn staff_by_id(c: &mut Conn, tenant: &str, id: &str) -> Result<Option<StaffUser>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let sql = format!("SELECT {STAFF_COLS} FROM staff_users WHERE tenant_id = $1 AND id = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(c).await?;
    r.as_ref().map(staff_row).transpose()
}

/// Every account with this (lower-cased) email, in any tenant, at most `limit`: logging
/// in is the one lookup that finds the tenant rather than taking it.
pub async fn staff_by_email_any_tenant(c: &mut Conn, email: &str, limit: i64) -> Result<Vec<StaffUser>> {
    if crate::has_nul(&[email]) {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {STAFF_COLS} FROM staff_users WHERE email = $1 ORDER BY tenant_id LIMIT $2");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(email).bind(limit).fetch_all(c).await?;
    rows.iter().map(staff_row).collect()
}

pub async fn list_staff(c: &mut Conn, tenant: &str) -> Result<Vec<StaffUser>> {
    let sql = format!("SELECT {STAFF_COLS} FROM staff_users WHERE tenant_id = $1 ORDER BY email");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).fetch_all(c).await?;
    rows.iter().map(staff_row).collect()
}

pub async fn set_staff_password(c: &mut Conn, tenant: &str, id: &str, password_hash: &str) -> Result<bool> {
    let r = sqlx::query("UPDATE staff_users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .bind(password_hash)
        .execute(c)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn set_staff_role(c: &mut Conn, tenant: &str, id: &str, role: &str) -> Result<bool> {
    let r = sqlx::query("UPDATE staff_users SET role = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .bind(role)
        .execute(c)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Disable (Some(now)) or enable (None) an account.
pub async fn set_staff_disabled(c: &mut Conn, tenant: &str, id: &str, disabled_at: Option<i64>) -> Result<bool> {
    let r = sqlx::query("UPDATE staff_users SET disabled_at = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .bind(disabled_at)
        .execute(c)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// How many enabled owners the tenant has (the last one cannot be demoted or disabled).
pub async fn count_owners(c: &mut Conn, tenant: &str) -> Result<i64> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM staff_users WHERE tenant_id = $1 AND role = 'owner' AND disabled_at IS NULL")
        .bind(tenant)
        .fetch_one(c)
        .await?;
    col(&r, "n")
}

#[derive(Debug, Clone)]
pub struct Session {
    pub tenant_id: String,
    pub id: String,
    pub kind: String,
    pub subject_id: String,
    pub data: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

const SESSION_COLS: &str = "tenant_id, id, kind, subject_id, data, created_at, last_seen_at, expires_at";

fn session_row(r: &AnyRow) -> Result<Session> {
    Ok(Session {
        tenant_id: col(r, "tenant_id")?,
        id: col(r, "id")?,
        kind: col(r, "kind")?,
        subject_id: col(r, "subject_id")?,
        data: col(r, "data")?,
        created_at: col(r, "created_at")?,
        last_seen_at: col(r, "last_seen_at")?,
        expires_at: col(r, "expires_at")?,
    })
}

pub async fn insert_session(c: &mut Conn, s: &Session, token_hash: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO web_sessions (tenant_id, id, token_hash, kind, subject_id, data, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&s.tenant_id)
    .bind(&s.id)
    .bind(token_hash)
    .bind(&s.kind)
    .bind(&s.subject_id)
    .bind(&s.data)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(s.expires_at)
    .execute(c)
    .await?;
    Ok(())
}

/// The session with this token hash, whatever its tenant (a cookie names the tenant),
/// if it has not expired by `now`.
pub async fn session_by_hash(c: &mut Conn, token_hash: &str, now: i64) -> Result<Option<Session>> {
    let sql = format!("SELECT {SESSION_COLS} FROM web_sessions WHERE token_hash = $1 AND expires_at > $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(token_hash).bind(now).fetch_optional(c).await?;
    r.as_ref().map(session_row).transpose()
}

/// Slide an active session's expiry forward.
pub async fn touch_session(c: &mut Conn, tenant: &str, id: &str, last_seen_at: i64, expires_at: i64) -> Result<()> {
    sqlx::query("UPDATE web_sessions SET last_seen_at = $3, expires_at = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .bind(last_seen_at)
        .bind(expires_at)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn set_session_data(c: &mut Conn, tenant: &str, id: &str, data: &str) -> Result<()> {
    sqlx::query("UPDATE web_sessions SET data = $3 WHERE tenant_id = $1 AND id = $2").bind(tenant).bind(id).bind(data).execute(c).await?;
    Ok(())
}

pub async fn delete_session(c: &mut Conn, tenant: &str, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM web_sessions WHERE tenant_id = $1 AND id = $2").bind(tenant).bind(id).execute(c).await?;
    Ok(())
}

/// End every session of one subject (a disabled account, a changed password, a revoked
/// till key).
pub async fn delete_sessions_of(c: &mut Conn, tenant: &str, kind: &str, subject: &str) -> Result<u64> {
    let r = sqlx::query("DELETE FROM web_sessions WHERE tenant_id = $1 AND kind = $2 AND subject_id = $3")
        .bind(tenant)
        .bind(kind)
        .bind(subject)
        .execute(c)
        .await?;
    Ok(r.rows_affected())
}

/// Delete the tenant's expired sessions and spent or expired login links.
pub async fn purge_expired(c: &mut Conn, tenant: &str, now: i64) -> Result<u64> {
    let a =
        sqlx::query("DELETE FROM web_sessions WHERE tenant_id = $1 AND expires_at <= $2").bind(tenant).bind(now).execute(&mut *c).await?;
    let b = sqlx::query("DELETE FROM login_links WHERE tenant_id = $1 AND (expires_at <= $2 OR used_at IS NOT NULL)")
        .bind(tenant)
        .bind(now)
        .execute(c)
        .await?;
    Ok(a.rows_affected() + b.rows_affected())
}

#[derive(Debug, Clone)]
pub struct LoginLink {
    pub tenant_id: String,
    pub id: String,
    pub staff_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

pub async fn insert_login_link(c: &mut Conn, l: &LoginLink, token_hash: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO login_links (tenant_id, id, token_hash, staff_id, expires_at, used_at, created_at) VALUES ($1, $2, $3, $4, $5, NULL, $6)",
    )
    .bind(&l.tenant_id)
    .bind(&l.id)
    .bind(token_hash)
    .bind(&l.staff_id)
    .bind(l.expires_at)
    .bind(l.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Spend a login link: mark it used if it is unused and unexpired, and answer it. The
/// conditional update makes two concurrent uses of one link succeed at most once.
pub async fn use_login_link(c: &mut Conn, token_hash: &str, now: i64) -> Result<Option<LoginLink>> {
    let r = sqlx::query("UPDATE login_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2")
        .bind(token_hash)
        .bind(now)
        .execute(&mut *c)
        .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let r = sqlx::query("SELECT tenant_id, id, staff_id, expires_at, used_at, created_at FROM login_links WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(c)
        .await?;
    r.map(|r| {
        Ok(LoginLink {
            tenant_id: col(&r, "tenant_id")?,
            id: col(&r, "id")?,
            staff_id: col(&r, "staff_id")?,
            expires_at: col(&r, "expires_at")?,
            used_at: col(&r, "used_at")?,
            created_at: col(&r, "created_at")?,
        })
    })
    .transpose()
}

/// Spend every unused login link of a staff account (its password changed: a link sent
/// before must not set another one). Answers how many were revoked.
pub async fn revoke_login_links(c: &mut Conn, tenant: &str, staff_id: &str, now: i64) -> Result<u64> {
    let r = sqlx::query("UPDATE login_links SET used_at = $3 WHERE tenant_id = $1 AND staff_id = $2 AND used_at IS NULL")
        .bind(tenant)
        .bind(staff_id)
        .bind(now)
        .execute(c)
        .await?;
    Ok(r.rows_affected())
}

/// Whether any tenant exists (the first-run setup page works only before the first).
pub async fn any_tenant(c: &mut Conn) -> Result<bool> {
    let r = sqlx::query("SELECT id FROM tenants LIMIT 1").fetch_optional(c).await?;
    Ok(r.is_some())
}
