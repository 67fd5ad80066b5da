//! Members, their consents and history events.

use crate::db::{Result, col};
use crate::{Conn, new_id};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub card_number: String,
    pub qr_token: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub birthday: Option<String>,
    pub referral_code: Option<String>,
    pub source: String,
    pub created_at: i64,
}

pub(crate) const COLS: &str = "id, card_number, qr_token, phone, email, external_id, name, birthday, referral_code, source, created_at";

pub(crate) fn row(r: &AnyRow) -> Result<Member> {
    Ok(Member {
        id: col(r, "id")?,
        card_number: col(r, "card_number")?,
        qr_token: col(r, "qr_token")?,
        phone: col(r, "phone")?,
        email: col(r, "email")?,
        external_id: col(r, "external_id")?,
        name: col(r, "name")?,
        birthday: col(r, "birthday")?,
        referral_code: col(r, "referral_code")?,
        source: col(r, "source")?,
        created_at: col(r, "created_at")?,
    })
}

/// Insert the member and its (empty) balance row. A unique violation names the column
/// that clashed (card_number, qr_token, phone, email, external_id).
pub async fn insert(c: &mut Conn, tenant: &str, m: &Member) -> Result<()> {
    sqlx::query(
        "INSERT INTO members (tenant_id, id, card_number, qr_token, phone, email, external_id, name, birthday, referral_code, source, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(tenant)
    .bind(&m.id)
    .bind(&m.card_number)
    .bind(&m.qr_token)
    .bind(&m.phone)
    .bind(&m.email)
    .bind(&m.external_id)
    .bind(&m.name)
    .bind(&m.birthday)
    .bind(&m.referral_code)
    .bind(&m.source)
    .bind(m.created_at)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO balances (tenant_id, member_id, points, held, pending, debt, lifetime_earned, seq, next_due_at, tier_code, updated_at) \
         VALUES ($1, $2, 0, 0, 0, 0, 0, 0, NULL, NULL, $3)",
    )
    .bind(tenant)
    .bind(&m.id)
    .bind(m.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn by_id(c: &mut Conn, tenant: &str, id: &str) -> Result<Option<Member>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let sql = format!("SELECT {COLS} FROM members WHERE tenant_id = $1 AND id = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(c).await?;
    r.as_ref().map(row).transpose()
}

/// Which identifier a lookup uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Card,
    Phone,
    Email,
    External,
    QrToken,
    Id,
}

pub async fn find(c: &mut Conn, tenant: &str, by: By, value: &str) -> Result<Option<Member>> {
    let column = match by {
        By::Card => "card_number",
        By::Phone => "phone",
        By::Email => "email",
        By::External => "external_id",
        By::QrToken => "qr_token",
        By::Id => "id",
    };
    let sql = format!("SELECT {COLS} FROM members WHERE tenant_id = $1 AND {column} = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(value).fetch_optional(c).await?;
    r.as_ref().map(row).transpose()
}

pub async fn list(c: &mut Conn, tenant: &str, after_id: Option<&str>, limit: i64) -> Result<Vec<Member>> {
    let sql = format!("SELECT {COLS} FROM members WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(after_id.unwrap_or("")).bind(limit).fetch_all(c).await?;
    rows.iter().map(row).collect()
}

pub async fn count(c: &mut Conn, tenant: &str) -> Result<i64> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM members WHERE tenant_id = $1").bind(tenant).fetch_one(c).await?;
    col(&r, "n")
}

pub async fn all_ids(c: &mut Conn, tenant: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM members WHERE tenant_id = $1 ORDER BY id").bind(tenant).fetch_all(c).await?;
    rows.iter().map(|r| col(r, "id")).collect()
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Consent {
    pub kind: String,
    pub granted: bool,
    pub source: String,
    pub recorded_at: i64,
}

pub async fn insert_consent(c: &mut Conn, tenant: &str, member: &str, consent: &Consent) -> Result<()> {
    sqlx::query("INSERT INTO consents (tenant_id, id, member_id, kind, granted, source, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(tenant)
        .bind(new_id())
        .bind(member)
        .bind(&consent.kind)
        .bind(consent.granted as i64)
        .bind(&consent.source)
        .bind(consent.recorded_at)
        .execute(c)
        .await?;
    Ok(())
}

/// The current consent of each kind (the newest record), ordered by kind.
pub async fn consents(c: &mut Conn, tenant: &str, member: &str) -> Result<Vec<Consent>> {
    let rows = sqlx::query(
        "SELECT kind, granted, source, recorded_at, id FROM consents WHERE tenant_id = $1 AND member_id = $2 ORDER BY kind, id",
    )
    .bind(tenant)
    .bind(member)
    .fetch_all(c)
    .await?;
    let mut out: Vec<Consent> = Vec::new();
    for r in &rows {
        let consent = Consent {
            kind: col(r, "kind")?,
            granted: col::<i64>(r, "granted")? != 0,
            source: col(r, "source")?,
            recorded_at: col(r, "recorded_at")?,
        };
        match out.last_mut() {
            Some(last) if last.kind == consent.kind => *last = consent,
            _ => out.push(consent),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub data: serde_json::Value,
    pub occurred_at: i64,
}

pub async fn insert_event(c: &mut Conn, tenant: &str, member: &str, kind: &str, data: &serde_json::Value, occurred_at: i64) -> Result<()> {
    sqlx::query("INSERT INTO member_events (tenant_id, id, member_id, kind, data, occurred_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(tenant)
        .bind(new_id())
        .bind(member)
        .bind(kind)
        .bind(data.to_string())
        .bind(occurred_at)
        .execute(c)
        .await?;
    Ok(())
}

/// Newest first.
pub async fn events(c: &mut Conn, tenant: &str, member: &str, limit: i64) -> Result<Vec<Event>> {
    let rows = sqlx::query(
        "SELECT id, kind, data, occurred_at FROM member_events WHERE tenant_id = $1 AND member_id = $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(tenant)
    .bind(member)
    .bind(limit)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            let data: String = col(r, "data")?;
            Ok(Event {
                id: col(r, "id")?,
                kind: col(r, "kind")?,
                data: serde_json::from_str(&data).unwrap_or_default(),
                occurred_at: col(r, "occurred_at")?,
            })
        })
        .collect()
}
