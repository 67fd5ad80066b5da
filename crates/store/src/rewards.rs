//! The rewards catalogue's tables: rewards and their redemptions. Only reads and writes
//! rows; the rules live in `kopilka_domain::rewards` and the server's rewards service.
//! Stock is taken with one conditional UPDATE, so two redemptions can never take the
//! same last unit, on either database.

use crate::Conn;
use crate::db::{Result, Tx, col};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    pub id: String,
    pub code: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub campaign_id: Option<String>,
    pub points_price: i64,
    /// Units offered; None is unlimited.
    pub stock: Option<i64>,
    /// Redemptions issued or fulfilled.
    pub redeemed_count: i64,
    pub valid_from: Option<i64>,
    pub valid_to: Option<i64>,
    pub tiers: Vec<String>,
    pub per_member_limit: Option<i64>,
    pub active: bool,
    pub image_url: Option<String>,
    pub archived_at: Option<i64>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Reward {
    /// Units left; None is unlimited.
    pub fn stock_left(&self) -> Option<i64> {
        self.stock.map(|s| (s - self.redeemed_count).max(0))
    }
}

const REWARD_COLS: &str = "id, code, name, description, kind, campaign_id, points_price, stock, redeemed_count, valid_from, valid_to, tiers, \
                           per_member_limit, active, image_url, archived_at, version, created_at, updated_at";

fn reward_row(r: &AnyRow) -> Result<Reward> {
    let tiers: String = col(r, "tiers")?;
    Ok(Reward {
        id: col(r, "id")?,
        code: col(r, "code")?,
        name: col(r, "name")?,
        description: col(r, "description")?,
        kind: col(r, "kind")?,
        campaign_id: col(r, "campaign_id")?,
        points_price: col(r, "points_price")?,
        stock: col(r, "stock")?,
        redeemed_count: col(r, "redeemed_count")?,
        valid_from: col(r, "valid_from")?,
        valid_to: col(r, "valid_to")?,
        tiers: serde_json::from_str(&tiers).map_err(|e| crate::StoreError::Corrupt(format!("tiers: {e}")))?,
        per_member_limit: col(r, "per_member_limit")?,
        active: col::<i64>(r, "active")? != 0,
        image_url: col(r, "image_url")?,
        archived_at: col(r, "archived_at")?,
        version: col(r, "version")?,
        created_at: col(r, "created_at")?,
        updated_at: col(r, "updated_at")?,
    })
}

fn tiers_json(tiers: &[String]) -> String {
    serde_json::Value::from(tiers.to_vec()).to_string()
}

/// Insert a reward. A code already used by a reward that is not archived is a unique
/// violation.
pub async fn insert_reward(c: &mut Conn, tenant: &str, w: &Reward) -> Result<()> {
    sqlx::query(
        "INSERT INTO rewards (tenant_id, id, code, name, description, kind, campaign_id, points_price, stock, redeemed_count, valid_from, valid_to, \
         tiers, per_member_limit, active, image_url, archived_at, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
    )
    .bind(tenant)
    .bind(&w.id)
    .bind(&w.code)
    .bind(&w.name)
    .bind(&w.description)
    .bind(&w.kind)
    .bind(&w.campaign_id)
    .bind(w.points_price)
    .bind(w.stock)
    .bind(w.redeemed_count)
    .bind(w.valid_from)
    .bind(w.valid_to)
    .bind(tiers_json(&w.tiers))
    .bind(w.per_member_limit)
    .bind(w.active as i64)
    .bind(&w.image_url)
    .bind(w.archived_at)
    .bind(w.version)
    .bind(w.created_at)
    .bind(w.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Write a reward's editable fields, its version and archive time. `redeemed_count` is
/// left alone: only redemptions and cancellations move it.
pub async fn update_reward(c: &mut Conn, tenant: &str, w: &Reward) -> Result<()> {
    sqlx::query(
        "UPDATE rewards SET code = $3, name = $4, description = $5, kind = $6, campaign_id = $7, points_price = $8, stock = $9, \
         valid_from = $10, valid_to = $11, tiers = $12, per_member_limit = $13, active = $14, image_url = $15, archived_at = $16, \
         version = $17, updated_at = $18 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&w.id)
    .bind(&w.code)
    .bind(&w.name)
    .bind(&w.description)
    .bind(&w.kind)
    .bind(&w.campaign_id)
    .bind(w.points_price)
    .bind(w.stock)
    .bind(w.valid_from)
    .bind(w.valid_to)
    .bind(tiers_json(&w.tiers))
    .bind(w.per_member_limit)
    .bind(w.active as i64)
    .bind(&w.image_url)
    .bind(w.archived_at)
    .bind(w.version)
    .bind(w.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn reward(c: &mut Conn, tenant: &str, id: &str) -> Result<Option<Reward>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let sql = format!("SELECT {REWARD_COLS} FROM rewards WHERE tenant_id = $1 AND id = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(c).await?;
    r.as_ref().map(reward_row).transpose()
}

/// Read a reward and lock its row until the transaction ends (PostgreSQL; SQLite's one
/// writer already excludes others).
pub async fn reward_locked(tx: &mut Tx, tenant: &str, id: &str) -> Result<Option<Reward>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let sql = format!("SELECT {REWARD_COLS} FROM rewards WHERE tenant_id = $1 AND id = $2{}", tx.for_update());
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(tx.conn()).await?;
    r.as_ref().map(reward_row).transpose()
}

/// A page of rewards in id order (creation order), after `after_id`.
pub async fn list_rewards(c: &mut Conn, tenant: &str, include_archived: bool, after_id: Option<&str>, limit: i64) -> Result<Vec<Reward>> {
    let sql = format!(
        "SELECT {REWARD_COLS} FROM rewards WHERE tenant_id = $1 AND id > $2{} ORDER BY id LIMIT $3",
        if include_archived { "" } else { " AND archived_at IS NULL" }
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(after_id.unwrap_or("")).bind(limit).fetch_all(c).await?;
    rows.iter().map(reward_row).collect()
}

/// Take one unit of a reward: true when a unit was left (or stock is unlimited). One
/// conditional UPDATE: on PostgreSQL a concurrent taker waits for the row and re-checks
/// the condition against the committed count.
pub async fn take_unit(c: &mut Conn, tenant: &str, id: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE rewards SET redeemed_count = redeemed_count + 1 \
         WHERE tenant_id = $1 AND id = $2 AND (stock IS NULL OR redeemed_count < stock)",
    )
    .bind(tenant)
    .bind(id)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Give back the unit of a cancelled redemption.
pub async fn return_unit(c: &mut Conn, tenant: &str, id: &str) -> Result<()> {
    sqlx::query("UPDATE rewards SET redeemed_count = redeemed_count - 1 WHERE tenant_id = $1 AND id = $2 AND redeemed_count > 0")
        .bind(tenant)
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub id: String,
    pub redemption_id: String,
    pub reward_id: String,
    pub member_id: String,
    pub code: String,
    pub points: i64,
    /// issued, fulfilled, cancelled.
    pub status: String,
    pub store_id: Option<String>,
    pub actor: String,
    pub body_hash: String,
    /// The stored JSON answer of the redeem request.
    pub answer: String,
    pub created_at: i64,
    pub fulfilled_at: Option<i64>,
    pub cancelled_at: Option<i64>,
}

const RED_COLS: &str = "id, redemption_id, reward_id, member_id, code, points, status, store_id, actor, body_hash, answer, created_at, fulfilled_at, cancelled_at";

fn red_row(r: &AnyRow) -> Result<Redemption> {
    Ok(Redemption {
        id: col(r, "id")?,
        redemption_id: col(r, "redemption_id")?,
        reward_id: col(r, "reward_id")?,
        member_id: col(r, "member_id")?,
        code: col(r, "code")?,
        points: col(r, "points")?,
        status: col(r, "status")?,
        store_id: col(r, "store_id")?,
        actor: col(r, "actor")?,
        body_hash: col(r, "body_hash")?,
        answer: col(r, "answer")?,
        created_at: col(r, "created_at")?,
        fulfilled_at: col(r, "fulfilled_at")?,
        cancelled_at: col(r, "cancelled_at")?,
    })
}

/// Insert a redemption. A used `redemption_id` or (rarely) code is a unique violation.
pub async fn insert_redemption(c: &mut Conn, tenant: &str, x: &Redemption) -> Result<()> {
    sqlx::query(
        "INSERT INTO reward_redemptions (tenant_id, id, redemption_id, reward_id, member_id, code, points, status, store_id, actor, body_hash, \
         answer, created_at, fulfilled_at, cancelled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(tenant)
    .bind(&x.id)
    .bind(&x.redemption_id)
    .bind(&x.reward_id)
    .bind(&x.member_id)
    .bind(&x.code)
    .bind(x.points)
    .bind(&x.status)
    .bind(&x.store_id)
    .bind(&x.actor)
    .bind(&x.body_hash)
    .bind(&x.answer)
    .bind(x.created_at)
    .bind(x.fulfilled_at)
    .bind(x.cancelled_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn redemption(c: &mut Conn, tenant: &str, id: &str) -> Result<Option<Redemption>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let sql = format!("SELECT {RED_COLS} FROM reward_redemptions WHERE tenant_id = $1 AND id = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(c).await?;
    r.as_ref().map(red_row).transpose()
}

/// Read a redemption and lock its row until the transaction ends.
pub async fn redemption_locked(tx: &mut Tx, tenant: &str, id: &str) -> Result<Option<Redemption>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let sql = format!("SELECT {RED_COLS} FROM reward_redemptions WHERE tenant_id = $1 AND id = $2{}", tx.for_update());
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(tx.conn()).await?;
    r.as_ref().map(red_row).transpose()
}

/// The redemption recorded under a client's idempotency key.
pub async fn redemption_by_key(c: &mut Conn, tenant: &str, redemption_id: &str) -> Result<Option<Redemption>> {
    if crate::has_nul(&[redemption_id]) {
        return Ok(None);
    }
    let sql = format!("SELECT {RED_COLS} FROM reward_redemptions WHERE tenant_id = $1 AND redemption_id = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(redemption_id).fetch_optional(c).await?;
    r.as_ref().map(red_row).transpose()
}

pub async fn redemption_by_code(c: &mut Conn, tenant: &str, code: &str) -> Result<Option<Redemption>> {
    if crate::has_nul(&[code]) {
        return Ok(None);
    }
    let sql = format!("SELECT {RED_COLS} FROM reward_redemptions WHERE tenant_id = $1 AND code = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(code).fetch_optional(c).await?;
    r.as_ref().map(red_row).transpose()
}

/// Filters of the redemption list; None matches everything.
#[derive(Debug, Clone, Default)]
pub struct RedemptionFilter<'a> {
    pub member_id: Option<&'a str>,
    pub reward_id: Option<&'a str>,
    pub status: Option<&'a str>,
}

/// A page of redemptions, newest first, before `before_id`.
pub async fn list_redemptions(
    c: &mut Conn,
    tenant: &str,
    f: &RedemptionFilter<'_>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Redemption>> {
    let sql = format!(
        "SELECT {RED_COLS} FROM reward_redemptions WHERE tenant_id = $1 \
         AND ($2 = '' OR member_id = $2) AND ($3 = '' OR reward_id = $3) AND ($4 = '' OR status = $4) AND ($5 = '' OR id < $5) \
         ORDER BY id DESC LIMIT $6"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(f.member_id.unwrap_or(""))
        .bind(f.reward_id.unwrap_or(""))
        .bind(f.status.unwrap_or(""))
        .bind(before_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(c)
        .await?;
    rows.iter().map(red_row).collect()
}

/// Move a redemption to `status` at `at` (fulfilled or cancelled).
pub async fn set_redemption_status(c: &mut Conn, tenant: &str, id: &str, status: &str, at: i64) -> Result<()> {
    let sql = match status {
        "fulfilled" => "UPDATE reward_redemptions SET status = $3, fulfilled_at = $4 WHERE tenant_id = $1 AND id = $2",
        "cancelled" => "UPDATE reward_redemptions SET status = $3, cancelled_at = $4 WHERE tenant_id = $1 AND id = $2",
        other => panic!("set_redemption_status: no such status {other}"),
    };
    sqlx::query(sql).bind(tenant).bind(id).bind(status).bind(at).execute(c).await?;
    Ok(())
}

/// How many redemptions of each reward a member holds that are issued or fulfilled:
/// (reward id, count).
pub async fn member_counts(c: &mut Conn, tenant: &str, member: &str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT reward_id, CAST(COUNT(*) AS BIGINT) AS n FROM reward_redemptions \
         WHERE tenant_id = $1 AND member_id = $2 AND status <> 'cancelled' GROUP BY reward_id",
    )
    .bind(tenant)
    .bind(member)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok((col(r, "reward_id")?, col(r, "n")?))).collect()
}

/// How many redemptions of one reward a member holds that are issued or fulfilled.
pub async fn member_count(c: &mut Conn, tenant: &str, member: &str, reward: &str) -> Result<i64> {
    let r = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM reward_redemptions \
         WHERE tenant_id = $1 AND member_id = $2 AND reward_id = $3 AND status <> 'cancelled'",
    )
    .bind(tenant)
    .bind(member)
    .bind(reward)
    .fetch_one(c)
    .await?;
    col(&r, "n")
}
