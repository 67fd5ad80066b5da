//! Tenants, API keys, programme versions, stores and the audit log.

use crate::db::{Result, col};
use crate::{Conn, new_id};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

fn tenant_row(r: &AnyRow) -> Result<Tenant> {
    Ok(Tenant { id: col(r, "id")?, slug: col(r, "slug")?, name: col(r, "name")?, created_at: col(r, "created_at")? })
}

pub async fn insert_tenant(c: &mut Conn, t: &Tenant) -> Result<()> {
    sqlx::query("INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&t.id)
        .bind(&t.slug)
        .bind(&t.name)
        .bind(t.created_at)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn tenant_by_slug(c: &mut Conn, slug: &str) -> Result<Option<Tenant>> {
    let r = sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE slug = $1").bind(slug).fetch_optional(c).await?;
    r.as_ref().map(tenant_row).transpose()
}

pub async fn tenant_by_id(c: &mut Conn, id: &str) -> Result<Option<Tenant>> {
    let r = sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE id = $1").bind(id).fetch_optional(c).await?;
    r.as_ref().map(tenant_row).transpose()
}

pub async fn all_tenant_ids(c: &mut Conn) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM tenants ORDER BY id").fetch_all(c).await?;
    rows.iter().map(|r| col(r, "id")).collect()
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub tenant_id: String,
    pub id: String,
    pub role: String,
    pub store_id: Option<String>,
    pub till_id: Option<String>,
    pub label: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

fn key_row(r: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        tenant_id: col(r, "tenant_id")?,
        id: col(r, "id")?,
        role: col(r, "role")?,
        store_id: col(r, "store_id")?,
        till_id: col(r, "till_id")?,
        label: col(r, "label")?,
        expires_at: col(r, "expires_at")?,
        revoked_at: col(r, "revoked_at")?,
        created_at: col(r, "created_at")?,
    })
}

const KEY_COLS: &str = "tenant_id, id, role, store_id, till_id, label, expires_at, revoked_at, created_at";

pub async fn insert_key(c: &mut Conn, k: &ApiKey, key_hash: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (tenant_id, id, key_hash, role, store_id, till_id, label, expires_at, revoked_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
    )
    .bind(&k.tenant_id)
    .bind(&k.id)
    .bind(key_hash)
    .bind(&k.role)
    .bind(&k.store_id)
    .bind(&k.till_id)
    .bind(&k.label)
    .bind(k.expires_at)
    .bind(k.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// The key with this hash, whatever its tenant: authentication is the one lookup that
/// finds the tenant rather than taking it.
pub async fn key_by_hash(c: &mut Conn, key_hash: &str) -> Result<Option<ApiKey>> {
    let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE key_hash = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key_hash).fetch_optional(c).await?;
    r.as_ref().map(key_row).transpose()
}

pub async fn list_keys(c: &mut Conn, tenant: &str) -> Result<Vec<ApiKey>> {
    let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE tenant_id = $1 ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).fetch_all(c).await?;
    rows.iter().map(key_row).collect()
}

/// Revoke a key; false when the tenant has no such key.
pub async fn revoke_key(c: &mut Conn, tenant: &str, id: &str, now: i64) -> Result<bool> {
    if crate::has_nul(&[id]) {
        return Ok(false);
    }
    let r = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// The newest programme version and its JSON, if any.
pub async fn current_program(c: &mut Conn, tenant: &str) -> Result<Option<(i64, String)>> {
    let r = sqlx::query("SELECT version, config FROM programs WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1")
        .bind(tenant)
        .fetch_optional(c)
        .await?;
    r.map(|r| Ok((col(&r, "version")?, col(&r, "config")?))).transpose()
}

pub async fn program_version(c: &mut Conn, tenant: &str, version: i64) -> Result<Option<String>> {
    let r = sqlx::query("SELECT config FROM programs WHERE tenant_id = $1 AND version = $2")
        .bind(tenant)
        .bind(version)
        .fetch_optional(c)
        .await?;
    r.map(|r| col(&r, "config")).transpose()
}

pub async fn insert_program(c: &mut Conn, tenant: &str, version: i64, config: &str, now: i64) -> Result<()> {
    sqlx::query("INSERT INTO programs (tenant_id, version, config, created_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant)
        .bind(version)
        .bind(config)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Store {
    pub id: String,
    pub code: String,
    pub name: String,
    pub time_zone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<String>,
    #[serde(skip)]
    pub created_at: i64,
}

fn store_row(r: &AnyRow) -> Result<Store> {
    Ok(Store {
        id: col(r, "id")?,
        code: col(r, "code")?,
        name: col(r, "name")?,
        time_zone: col(r, "time_zone")?,
        lat: col(r, "lat")?,
        lon: col(r, "lon")?,
        created_at: col(r, "created_at")?,
    })
}

pub async fn insert_store(c: &mut Conn, tenant: &str, s: &Store) -> Result<()> {
    sqlx::query("INSERT INTO stores (tenant_id, id, code, name, time_zone, lat, lon, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(tenant)
        .bind(&s.id)
        .bind(&s.code)
        .bind(&s.name)
        .bind(&s.time_zone)
        .bind(&s.lat)
        .bind(&s.lon)
        .bind(s.created_at)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn store_by_id(c: &mut Conn, tenant: &str, id: &str) -> Result<Option<Store>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let r = sqlx::query("SELECT id, code, name, time_zone, lat, lon, created_at FROM stores WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_optional(c)
        .await?;
    r.as_ref().map(store_row).transpose()
}

pub async fn list_stores(c: &mut Conn, tenant: &str) -> Result<Vec<Store>> {
    let rows = sqlx::query("SELECT id, code, name, time_zone, lat, lon, created_at FROM stores WHERE tenant_id = $1 ORDER BY code")
        .bind(tenant)
        .fetch_all(c)
        .await?;
    rows.iter().map(store_row).collect()
}

/// One audit record: who (`actor`: a staff user, an API key or the command line) did what
/// (`action`) to which object, when, and the details of the change.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub details: &'a serde_json::Value,
    pub at: i64,
}

/// Append an audit record.
pub async fn audit(c: &mut Conn, tenant: &str, a: &Audit<'_>) -> Result<()> {
    let Audit { actor, action, object_type, object_id, details, at: now } = *a;
    sqlx::query("INSERT INTO audit_log (tenant_id, id, actor, action, object_type, object_id, details, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(tenant)
        .bind(new_id())
        .bind(actor)
        .bind(action)
        .bind(object_type)
        .bind(object_id)
        .bind(details.to_string())
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub details: serde_json::Value,
    pub created_at: i64,
}

pub async fn list_audit(c: &mut Conn, tenant: &str, limit: i64) -> Result<Vec<AuditRecord>> {
    let rows = sqlx::query("SELECT id, actor, action, object_type, object_id, details, created_at FROM audit_log WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2")
        .bind(tenant)
        .bind(limit)
        .fetch_all(c)
        .await?;
    rows.iter()
        .map(|r| {
            let details: String = col(r, "details")?;
            Ok(AuditRecord {
                id: col(r, "id")?,
                actor: col(r, "actor")?,
                action: col(r, "action")?,
                object_type: col(r, "object_type")?,
                object_id: col(r, "object_id")?,
                details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                created_at: col(r, "created_at")?,
            })
        })
        .collect()
}

/// True once any receipt of the tenant has been committed (then currency and point value
/// are locked).
pub async fn any_committed_receipt(c: &mut Conn, tenant: &str) -> Result<bool> {
    let r = sqlx::query("SELECT 1 AS one FROM receipts WHERE tenant_id = $1 AND status <> 'held' LIMIT 1")
        .bind(tenant)
        .fetch_optional(c)
        .await?;
    Ok(r.is_some())
}

/// The newest programme version number (0 when none).
pub async fn program_max_version(c: &mut Conn, tenant: &str) -> Result<i64> {
    let r = sqlx::query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM programs WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(c)
        .await?;
    col(&r, "v")
}

/// Lock the tenant's row until the transaction ends: shared for a receipt being posted,
/// exclusive for a programme change (PostgreSQL; SQLite's single writer already
/// serialises them).
pub async fn lock_tenant(tx: &mut crate::Tx, tenant: &str, exclusive: bool) -> Result<()> {
    let suffix = match (tx.backend(), exclusive) {
        (crate::Backend::Sqlite, _) => return Ok(()),
        (crate::Backend::Postgres, true) => " FOR UPDATE",
        (crate::Backend::Postgres, false) => " FOR SHARE",
    };
    let sql = format!("SELECT id FROM tenants WHERE id = $1{suffix}");
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).fetch_optional(tx.conn()).await?;
    Ok(())
}
