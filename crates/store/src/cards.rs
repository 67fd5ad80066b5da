//! Cards and passes: card settings and images, the tenant's wallet keys, Apple pass
//! registrations and change marks, one-time codes, spent rotating codes and enrolments.
//! Every function takes the tenant id.

use crate::Conn;
use crate::db::{Result, col};

/// The tenant's card settings: the derivation secret and the design (JSON).
#[derive(Debug, Clone)]
pub struct Settings {
    pub secret: String,
    pub design: String,
    pub updated_at: i64,
}

pub async fn settings(c: &mut Conn, tenant: &str) -> Result<Option<Settings>> {
    let r = sqlx::query("SELECT secret, design, updated_at FROM card_settings WHERE tenant_id = $1").bind(tenant).fetch_optional(c).await?;
    r.map(|r| Ok(Settings { secret: col(&r, "secret")?, design: col(&r, "design")?, updated_at: col(&r, "updated_at")? })).transpose()
}

/// Create the settings row if it is missing (two racing creators: the first wins).
pub async fn ensure_settings(c: &mut Conn, tenant: &str, secret: &str, design: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO card_settings (tenant_id, secret, design, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(secret)
    .bind(design)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// Replace the design. Its time always moves forward (by a second at least), since passes
/// notice a design or image change by it: two changes within one second stay apart.
pub async fn put_design(c: &mut Conn, tenant: &str, design: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE card_settings SET design = $2, updated_at = CASE WHEN $3 > updated_at THEN $3 ELSE updated_at + 1 END WHERE tenant_id = $1",
    )
    .bind(tenant)
    .bind(design)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// A card image (`logo`, `strip`, `icon`) as base64 PNG.
pub async fn image(c: &mut Conn, tenant: &str, kind: &str) -> Result<Option<String>> {
    let r = sqlx::query("SELECT png FROM card_images WHERE tenant_id = $1 AND kind = $2").bind(tenant).bind(kind).fetch_optional(c).await?;
    r.map(|r| col(&r, "png")).transpose()
}

pub async fn put_image(c: &mut Conn, tenant: &str, kind: &str, png_b64: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO card_images (tenant_id, kind, png, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, kind) DO UPDATE SET png = excluded.png, updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(kind)
    .bind(png_b64)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn delete_image(c: &mut Conn, tenant: &str, kind: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM card_images WHERE tenant_id = $1 AND kind = $2").bind(tenant).bind(kind).execute(c).await?;
    Ok(r.rows_affected() > 0)
}

/// The tenant's own wallet key material (`apple` or `google`): (material JSON, label).
pub async fn wallet_key(c: &mut Conn, tenant: &str, kind: &str) -> Result<Option<(String, String)>> {
    let r = sqlx::query("SELECT material, label FROM wallet_keys WHERE tenant_id = $1 AND kind = $2")
        .bind(tenant)
        .bind(kind)
        .fetch_optional(c)
        .await?;
    r.map(|r| Ok((col(&r, "material")?, col(&r, "label")?))).transpose()
}

pub async fn put_wallet_key(c: &mut Conn, tenant: &str, kind: &str, material: &str, label: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO wallet_keys (tenant_id, kind, material, label, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, kind) DO UPDATE SET material = excluded.material, label = excluded.label, updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(kind)
    .bind(material)
    .bind(label)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn delete_wallet_key(c: &mut Conn, tenant: &str, kind: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM wallet_keys WHERE tenant_id = $1 AND kind = $2").bind(tenant).bind(kind).execute(c).await?;
    Ok(r.rows_affected() > 0)
}

/// Register a device for a pass. False when it was already registered.
pub async fn register_device(
    c: &mut Conn,
    tenant: &str,
    device: &str,
    pass_type: &str,
    serial: &str,
    push_token: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO pass_registrations (tenant_id, device_id, pass_type_id, serial, push_token, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, device_id, pass_type_id, serial) DO NOTHING",
    )
    .bind(tenant)
    .bind(device)
    .bind(pass_type)
    .bind(serial)
    .bind(push_token)
    .bind(now)
    .execute(c)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn unregister_device(c: &mut Conn, tenant: &str, device: &str, pass_type: &str, serial: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM pass_registrations WHERE tenant_id = $1 AND device_id = $2 AND pass_type_id = $3 AND serial = $4")
        .bind(tenant)
        .bind(device)
        .bind(pass_type)
        .bind(serial)
        .execute(c)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// The serials a device holds of a pass type, with their last change time in ms (0 if
/// never marked), changed after `since_ms` when given; and how many it holds in all.
pub async fn device_serials(
    c: &mut Conn,
    tenant: &str,
    device: &str,
    pass_type: &str,
    since_ms: Option<i64>,
) -> Result<(usize, Vec<(String, i64)>)> {
    let rows = sqlx::query(
        "SELECT r.serial AS serial, CAST(COALESCE(u.updated_at_ms, 0) AS BIGINT) AS updated_at_ms FROM pass_registrations r \
         LEFT JOIN pass_updates u ON u.tenant_id = r.tenant_id AND u.serial = r.serial \
         WHERE r.tenant_id = $1 AND r.device_id = $2 AND r.pass_type_id = $3 ORDER BY r.serial",
    )
    .bind(tenant)
    .bind(device)
    .bind(pass_type)
    .fetch_all(c)
    .await?;
    let total = rows.len();
    let mut out = Vec::new();
    for r in rows {
        let serial: String = col(&r, "serial")?;
        let at: i64 = col(&r, "updated_at_ms")?;
        if since_ms.is_none_or(|s| at > s) {
            out.push((serial, at));
        }
    }
    Ok((total, out))
}

/// The push tokens of the devices that hold a pass (pass type, push token).
pub async fn push_tokens(c: &mut Conn, tenant: &str, serial: &str) -> Result<Vec<(String, String)>> {
    let rows =
        sqlx::query("SELECT pass_type_id, push_token FROM pass_registrations WHERE tenant_id = $1 AND serial = $2 ORDER BY device_id")
            .bind(tenant)
            .bind(serial)
            .fetch_all(c)
            .await?;
    rows.iter().map(|r| Ok((col(r, "pass_type_id")?, col(r, "push_token")?))).collect()
}

/// What a pass last showed and when that changed (ms).
pub async fn pass_update(c: &mut Conn, tenant: &str, serial: &str) -> Result<Option<(String, i64)>> {
    let r = sqlx::query("SELECT fingerprint, updated_at_ms FROM pass_updates WHERE tenant_id = $1 AND serial = $2")
        .bind(tenant)
        .bind(serial)
        .fetch_optional(c)
        .await?;
    r.map(|r| Ok((col(&r, "fingerprint")?, col(&r, "updated_at_ms")?))).transpose()
}

pub async fn put_pass_update(c: &mut Conn, tenant: &str, serial: &str, fingerprint: &str, now_ms: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO pass_updates (tenant_id, serial, fingerprint, updated_at_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, serial) DO UPDATE SET fingerprint = excluded.fingerprint, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(tenant)
    .bind(serial)
    .bind(fingerprint)
    .bind(now_ms)
    .execute(c)
    .await?;
    Ok(())
}

/// A one-time code (stored as a hash).
#[derive(Debug, Clone)]
pub struct Otp {
    pub id: String,
    pub member_id: String,
    pub purpose: String,
    pub code_hash: String,
    pub attempts: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

pub async fn insert_otp(c: &mut Conn, tenant: &str, o: &Otp) -> Result<()> {
    sqlx::query(
        "INSERT INTO otp_codes (tenant_id, id, member_id, purpose, code_hash, attempts, expires_at, used_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant)
    .bind(&o.id)
    .bind(&o.member_id)
    .bind(&o.purpose)
    .bind(&o.code_hash)
    .bind(o.attempts)
    .bind(o.expires_at)
    .bind(o.used_at)
    .bind(o.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Forget a code that could not be delivered.
pub async fn delete_otp(c: &mut Conn, tenant: &str, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM otp_codes WHERE tenant_id = $1 AND id = $2").bind(tenant).bind(id).execute(c).await?;
    Ok(())
}

/// Forget an enrolment whose code could not be delivered.
pub async fn delete_enrolment(c: &mut Conn, tenant: &str, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM enrolments WHERE tenant_id = $1 AND id = $2 AND member_id IS NULL").bind(tenant).bind(id).execute(c).await?;
    Ok(())
}

/// The member's newest unused, unexpired code of a purpose.
pub async fn live_otp(c: &mut Conn, tenant: &str, member: &str, purpose: &str, now: i64) -> Result<Option<Otp>> {
    let r = sqlx::query(
        "SELECT id, member_id, purpose, code_hash, attempts, expires_at, used_at, created_at FROM otp_codes \
         WHERE tenant_id = $1 AND member_id = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $4 ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(tenant)
    .bind(member)
    .bind(purpose)
    .bind(now)
    .fetch_optional(c)
    .await?;
    r.map(|r| {
        Ok(Otp {
            id: col(&r, "id")?,
            member_id: col(&r, "member_id")?,
            purpose: col(&r, "purpose")?,
            code_hash: col(&r, "code_hash")?,
            attempts: col(&r, "attempts")?,
            expires_at: col(&r, "expires_at")?,
            used_at: col(&r, "used_at")?,
            created_at: col(&r, "created_at")?,
        })
    })
    .transpose()
}

/// How many codes of a purpose the member was sent since `since`.
pub async fn otp_count_since(c: &mut Conn, tenant: &str, member: &str, purpose: &str, since: i64) -> Result<i64> {
    let r =
        sqlx::query("SELECT COUNT(*) AS n FROM otp_codes WHERE tenant_id = $1 AND member_id = $2 AND purpose = $3 AND created_at >= $4")
            .bind(tenant)
            .bind(member)
            .bind(purpose)
            .bind(since)
            .fetch_one(c)
            .await?;
    col(&r, "n")
}

/// Use a code once. False when it was already used (a concurrent spend).
pub async fn use_otp(c: &mut Conn, tenant: &str, id: &str, now: i64) -> Result<bool> {
    let r = sqlx::query("UPDATE otp_codes SET used_at = $3 WHERE tenant_id = $1 AND id = $2 AND used_at IS NULL")
        .bind(tenant)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Spend a rotating QR step once. A second spend of the same step is a unique violation.
pub async fn spend_qr_step(c: &mut Conn, tenant: &str, member: &str, step: i64, now: i64) -> Result<()> {
    sqlx::query("INSERT INTO qr_spent (tenant_id, member_id, step, spent_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant)
        .bind(member)
        .bind(step)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn qr_step_spent(c: &mut Conn, tenant: &str, member: &str, step: i64) -> Result<bool> {
    let r = sqlx::query("SELECT step FROM qr_spent WHERE tenant_id = $1 AND member_id = $2 AND step = $3")
        .bind(tenant)
        .bind(member)
        .bind(step)
        .fetch_optional(c)
        .await?;
    Ok(r.is_some())
}

/// An enrolment waiting for its code.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub id: String,
    pub form: String,
    pub channel: String,
    pub code_hash: String,
    pub attempts: i64,
    pub expires_at: i64,
    pub member_id: Option<String>,
    pub created_at: i64,
}

pub async fn insert_enrolment(c: &mut Conn, tenant: &str, e: &Enrolment) -> Result<()> {
    sqlx::query(
        "INSERT INTO enrolments (tenant_id, id, form, channel, code_hash, attempts, expires_at, member_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant)
    .bind(&e.id)
    .bind(&e.form)
    .bind(&e.channel)
    .bind(&e.code_hash)
    .bind(e.attempts)
    .bind(e.expires_at)
    .bind(&e.member_id)
    .bind(e.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn enrolment(c: &mut Conn, tenant: &str, id: &str) -> Result<Option<Enrolment>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let r = sqlx::query(
        "SELECT id, form, channel, code_hash, attempts, expires_at, member_id, created_at FROM enrolments WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(c)
    .await?;
    r.map(|r| {
        Ok(Enrolment {
            id: col(&r, "id")?,
            form: col(&r, "form")?,
            channel: col(&r, "channel")?,
            code_hash: col(&r, "code_hash")?,
            attempts: col(&r, "attempts")?,
            expires_at: col(&r, "expires_at")?,
            member_id: col(&r, "member_id")?,
            created_at: col(&r, "created_at")?,
        })
    })
    .transpose()
}

pub async fn enrolment_attempt(c: &mut Conn, tenant: &str, id: &str) -> Result<()> {
    sqlx::query("UPDATE enrolments SET attempts = attempts + 1 WHERE tenant_id = $1 AND id = $2").bind(tenant).bind(id).execute(c).await?;
    Ok(())
}

pub async fn enrolment_done(c: &mut Conn, tenant: &str, id: &str, member: &str) -> Result<bool> {
    let r = sqlx::query("UPDATE enrolments SET member_id = $3 WHERE tenant_id = $1 AND id = $2 AND member_id IS NULL")
        .bind(tenant)
        .bind(id)
        .bind(member)
        .execute(c)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Lock an enrolment row for the rest of the transaction (PostgreSQL; SQLite's single
/// writer already excludes others), so two confirmations of one form cannot both enrol.
pub async fn lock_enrolment(tx: &mut crate::Tx, tenant: &str, id: &str) -> Result<()> {
    if crate::has_nul(&[id]) {
        return Ok(());
    }
    let sql = format!("SELECT id FROM enrolments WHERE tenant_id = $1 AND id = $2{}", tx.for_update());
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(tx.conn()).await?;
    Ok(())
}

/// Forget what only mattered for a while, once it is `before`-old: enrolments never
/// confirmed (they hold the form's personal data), one-time codes, and spent rotating-QR
/// steps. Returns how many rows went.
pub async fn purge_expired(c: &mut Conn, tenant: &str, before: i64) -> Result<u64> {
    let mut n = 0;
    for sql in [
        "DELETE FROM enrolments WHERE tenant_id = $1 AND member_id IS NULL AND expires_at < $2",
        "DELETE FROM otp_codes WHERE tenant_id = $1 AND expires_at < $2",
        "DELETE FROM qr_spent WHERE tenant_id = $1 AND spent_at < $2",
    ] {
        n += sqlx::query(sql).bind(tenant).bind(before).execute(&mut *c).await?.rows_affected();
    }
    Ok(n)
}
