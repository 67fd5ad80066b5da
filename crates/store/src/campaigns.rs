//! Campaigns, their budget counters and per-receipt records, coupons, stamp cards, the
//! cashback wallet, action events, member tags and attributes, and the product catalogue.

use crate::Conn;
use crate::db::{Result, Tx, col};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

// ---------------------------------------------------------------- campaigns

#[derive(Debug, Clone)]
pub struct CampaignRow {
    pub id: String,
    pub code: String,
    pub spec: String,
    pub archived: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

fn campaign_row(r: &AnyRow) -> Result<CampaignRow> {
    Ok(CampaignRow {
        id: col(r, "id")?,
        code: col(r, "code")?,
        spec: col(r, "spec")?,
        archived: col::<i64>(r, "archived")? != 0,
        created_at: col(r, "created_at")?,
        updated_at: col(r, "updated_at")?,
    })
}

/// The tenant's campaign generation (0 before any campaign).
pub async fn generation(c: &mut Conn, tenant: &str) -> Result<i64> {
    let r = sqlx::query("SELECT generation FROM campaign_generations WHERE tenant_id = $1").bind(tenant).fetch_optional(c).await?;
    r.as_ref().map(|r| col(r, "generation")).transpose().map(|g| g.unwrap_or(0))
}

pub async fn bump_generation(c: &mut Conn, tenant: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO campaign_generations (tenant_id, generation) VALUES ($1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET generation = campaign_generations.generation + 1",
    )
    .bind(tenant)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn insert_campaign(c: &mut Conn, tenant: &str, row: &CampaignRow) -> Result<()> {
    sqlx::query("INSERT INTO campaigns (tenant_id, id, code, spec, archived, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(tenant)
        .bind(&row.id)
        .bind(&row.code)
        .bind(&row.spec)
        .bind(i64::from(row.archived))
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn update_campaign(c: &mut Conn, tenant: &str, row: &CampaignRow) -> Result<()> {
    sqlx::query("UPDATE campaigns SET code = $3, spec = $4, archived = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(&row.id)
        .bind(&row.code)
        .bind(&row.spec)
        .bind(i64::from(row.archived))
        .bind(row.updated_at)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn campaign(c: &mut Conn, tenant: &str, id: &str) -> Result<Option<CampaignRow>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let r = sqlx::query("SELECT * FROM campaigns WHERE tenant_id = $1 AND id = $2").bind(tenant).bind(id).fetch_optional(c).await?;
    r.as_ref().map(campaign_row).transpose()
}

/// Every campaign, archived ones included when asked, in code order.
pub async fn campaigns(c: &mut Conn, tenant: &str, archived: bool) -> Result<Vec<CampaignRow>> {
    let sql = if archived {
        "SELECT * FROM campaigns WHERE tenant_id = $1 ORDER BY code"
    } else {
        "SELECT * FROM campaigns WHERE tenant_id = $1 AND archived = 0 ORDER BY code"
    };
    let rows = sqlx::query(sql).bind(tenant).fetch_all(c).await?;
    rows.iter().map(campaign_row).collect()
}

// ---------------------------------------------------------------- budgets

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub points: i64,
    pub money_minor: i64,
    pub uses: i64,
}

/// Read (and on PostgreSQL lock, in a write transaction) the usage rows of a campaign: the
/// total ('') and, if given, the member's. Missing rows read as zero.
pub async fn usage(c: &mut Conn, tenant: &str, campaign: &str, member: Option<&str>, for_update: &str) -> Result<(Usage, Usage)> {
    let sql = format!(
        "SELECT member_id, points, money_minor, uses FROM campaign_usage WHERE tenant_id = $1 AND campaign_id = $2 \
         AND member_id IN ('', $3) ORDER BY member_id{for_update}"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(tenant).bind(campaign).bind(member.unwrap_or("")).fetch_all(c).await?;
    let (mut total, mut mine) = (Usage::default(), Usage::default());
    for r in &rows {
        let u = Usage { points: col(r, "points")?, money_minor: col(r, "money_minor")?, uses: col(r, "uses")? };
        let m: String = col(r, "member_id")?;
        if m.is_empty() {
            total = u;
        } else {
            mine = u;
        }
    }
    Ok((total, mine))
}

/// Make sure the usage rows exist, so that they can be locked.
pub async fn ensure_usage(c: &mut Conn, tenant: &str, campaign: &str, member: Option<&str>) -> Result<()> {
    for m in std::iter::once("").chain(member) {
        sqlx::query(
            "INSERT INTO campaign_usage (tenant_id, campaign_id, member_id, points, money_minor, uses) VALUES ($1, $2, $3, 0, 0, 0) \
             ON CONFLICT (tenant_id, campaign_id, member_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(campaign)
        .bind(m)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Add (or with negative amounts, give back) usage to the total and the member's row.
pub async fn add_usage(c: &mut Conn, tenant: &str, campaign: &str, member: Option<&str>, u: Usage) -> Result<()> {
    for m in std::iter::once("").chain(member) {
        sqlx::query(
            "INSERT INTO campaign_usage (tenant_id, campaign_id, member_id, points, money_minor, uses) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id, campaign_id, member_id) DO UPDATE SET points = campaign_usage.points + $4, \
             money_minor = campaign_usage.money_minor + $5, uses = campaign_usage.uses + $6",
        )
        .bind(tenant)
        .bind(campaign)
        .bind(m)
        .bind(u.points)
        .bind(u.money_minor)
        .bind(u.uses)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Give back usage on rows that exist (a campaign without a budget has none).
pub async fn sub_usage(c: &mut Conn, tenant: &str, campaign: &str, member: Option<&str>, u: Usage) -> Result<()> {
    for m in std::iter::once("").chain(member) {
        sqlx::query(
            "UPDATE campaign_usage SET points = points - $4, money_minor = money_minor - $5, uses = uses - $6 \
             WHERE tenant_id = $1 AND campaign_id = $2 AND member_id = $3",
        )
        .bind(tenant)
        .bind(campaign)
        .bind(m)
        .bind(u.points)
        .bind(u.money_minor)
        .bind(u.uses)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// What a campaign gave on live receipts (held or committed), from the receipt records.
pub async fn totals_from_receipts(c: &mut Conn, tenant: &str, campaign: &str) -> Result<Usage> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) AS p, CAST(COALESCE(SUM(money_minor), 0) AS BIGINT) AS m, CAST(COUNT(*) AS BIGINT) AS n \
         FROM receipt_campaigns WHERE tenant_id = $1 AND campaign_id = $2 AND status IN ('held', 'committed', 'refunded')",
    )
    .bind(tenant)
    .bind(campaign)
    .fetch_one(c)
    .await?;
    Ok(Usage { points: col(&r, "p")?, money_minor: col(&r, "m")?, uses: col(&r, "n")? })
}

// ---------------------------------------------------------------- receipt records

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptCampaign {
    pub receipt_pk: String,
    pub campaign_id: String,
    pub member_id: String,
    pub coupon_id: Option<String>,
    pub points: i64,
    pub money_minor: i64,
    /// For a stamp card: the card's size, and per line `[line_no, stamp units, free units]`.
    pub stamps_every: i64,
    pub stamp_lines: String,
    /// held, committed or released.
    pub status: String,
    pub created_at: i64,
    /// Added to the campaign's budget counters (the campaign had a budget then).
    pub counted: bool,
}

fn rc_row(r: &AnyRow) -> Result<ReceiptCampaign> {
    Ok(ReceiptCampaign {
        receipt_pk: col(r, "receipt_pk")?,
        campaign_id: col(r, "campaign_id")?,
        member_id: col(r, "member_id")?,
        coupon_id: col(r, "coupon_id")?,
        points: col(r, "points")?,
        money_minor: col(r, "money_minor")?,
        stamps_every: col(r, "stamps_every")?,
        stamp_lines: col(r, "stamp_lines")?,
        status: col(r, "status")?,
        created_at: col(r, "created_at")?,
        counted: col::<i64>(r, "counted")? != 0,
    })
}

pub async fn insert_receipt_campaign(c: &mut Conn, tenant: &str, rc: &ReceiptCampaign) -> Result<()> {
    sqlx::query(
        "INSERT INTO receipt_campaigns (tenant_id, receipt_pk, campaign_id, member_id, coupon_id, points, money_minor, stamps_every, stamp_lines, status, created_at, counted) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(tenant)
    .bind(&rc.receipt_pk)
    .bind(&rc.campaign_id)
    .bind(&rc.member_id)
    .bind(&rc.coupon_id)
    .bind(rc.points)
    .bind(rc.money_minor)
    .bind(rc.stamps_every)
    .bind(&rc.stamp_lines)
    .bind(&rc.status)
    .bind(rc.created_at)
    .bind(i64::from(rc.counted))
    .execute(c)
    .await?;
    Ok(())
}

/// Insert a receipt's campaign records, many rows per statement.
pub async fn insert_receipt_campaigns(c: &mut Conn, tenant: &str, rcs: &[ReceiptCampaign]) -> Result<()> {
    let mut s = crate::batch::Script::new(c);
    add_receipt_campaigns(&mut s, tenant, rcs);
    s.run(c).await
}

pub fn add_receipt_campaigns(s: &mut crate::batch::Script, tenant: &str, rcs: &[ReceiptCampaign]) {
    const COLS: usize = 12;
    for chunk in rcs.chunks(400) {
        let sql = format!(
            "INSERT INTO receipt_campaigns (tenant_id, receipt_pk, campaign_id, member_id, coupon_id, points, money_minor, stamps_every, stamp_lines, status, created_at, counted) VALUES {}",
            s.ph().rows(chunk.len(), COLS)
        );
        for rc in chunk {
            s.bind(tenant)
                .bind(&rc.receipt_pk)
                .bind(&rc.campaign_id)
                .bind(&rc.member_id)
                .bind(&rc.coupon_id)
                .bind(rc.points)
                .bind(rc.money_minor)
                .bind(rc.stamps_every)
                .bind(&rc.stamp_lines)
                .bind(&rc.status)
                .bind(rc.created_at)
                .bind(i64::from(rc.counted));
        }
        s.push(sql);
    }
}

pub async fn receipt_campaigns(c: &mut Conn, tenant: &str, receipt_pk: &str) -> Result<Vec<ReceiptCampaign>> {
    let rows = sqlx::query("SELECT * FROM receipt_campaigns WHERE tenant_id = $1 AND receipt_pk = $2 ORDER BY campaign_id")
        .bind(tenant)
        .bind(receipt_pk)
        .fetch_all(c)
        .await?;
    rows.iter().map(rc_row).collect()
}

pub async fn set_receipt_campaign_status(c: &mut Conn, tenant: &str, receipt_pk: &str, campaign: &str, status: &str) -> Result<()> {
    sqlx::query("UPDATE receipt_campaigns SET status = $4 WHERE tenant_id = $1 AND receipt_pk = $2 AND campaign_id = $3")
        .bind(tenant)
        .bind(receipt_pk)
        .bind(campaign)
        .bind(status)
        .execute(c)
        .await?;
    Ok(())
}

/// How many live (held or committed) receipts of this member used this coupon.
pub async fn coupon_member_uses(c: &mut Conn, tenant: &str, coupon: &str, member: &str) -> Result<i64> {
    let r = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM receipt_campaigns WHERE tenant_id = $1 AND coupon_id = $2 AND member_id = $3 \
         AND status IN ('held', 'committed')",
    )
    .bind(tenant)
    .bind(coupon)
    .bind(member)
    .fetch_one(c)
    .await?;
    col(&r, "n")
}

// ---------------------------------------------------------------- coupons

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coupon {
    pub id: String,
    pub campaign_id: String,
    pub code: String,
    pub member_id: Option<String>,
    pub max_uses: Option<i64>,
    pub per_member_limit: Option<i64>,
    pub uses: i64,
    pub starts_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// active or disabled.
    pub status: String,
    pub batch: Option<String>,
    pub created_at: i64,
}

fn coupon_row(r: &AnyRow) -> Result<Coupon> {
    Ok(Coupon {
        id: col(r, "id")?,
        campaign_id: col(r, "campaign_id")?,
        code: col(r, "code")?,
        member_id: col(r, "member_id")?,
        max_uses: col(r, "max_uses")?,
        per_member_limit: col(r, "per_member_limit")?,
        uses: col(r, "uses")?,
        starts_at: col(r, "starts_at")?,
        expires_at: col(r, "expires_at")?,
        status: col(r, "status")?,
        batch: col(r, "batch")?,
        created_at: col(r, "created_at")?,
    })
}

/// Insert coupons, many rows per statement. A duplicate code fails the statement (the
/// caller's transaction then rolls back).
pub async fn insert_coupons(c: &mut Conn, tenant: &str, coupons: &[Coupon]) -> Result<()> {
    for chunk in coupons.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO coupons (tenant_id, id, campaign_id, code, member_id, max_uses, per_member_limit, uses, starts_at, expires_at, status, batch, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 13;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&(1..=13).map(|k| format!("${}", b + k)).collect::<Vec<_>>().join(", "));
            sql.push(')');
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for k in chunk {
            q = q
                .bind(tenant)
                .bind(&k.id)
                .bind(&k.campaign_id)
                .bind(&k.code)
                .bind(&k.member_id)
                .bind(k.max_uses)
                .bind(k.per_member_limit)
                .bind(k.uses)
                .bind(k.starts_at)
                .bind(k.expires_at)
                .bind(&k.status)
                .bind(&k.batch)
                .bind(k.created_at);
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

pub async fn coupon_by_code(c: &mut Conn, tenant: &str, code: &str, for_update: &str) -> Result<Option<Coupon>> {
    if crate::has_nul(&[code]) {
        return Ok(None);
    }
    let sql = format!("SELECT * FROM coupons WHERE tenant_id = $1 AND code = $2{for_update}");
    let r = sqlx::query(AssertSqlSafe(sql)).bind(tenant).bind(code).fetch_optional(c).await?;
    r.as_ref().map(coupon_row).transpose()
}

pub async fn coupon_by_id(c: &mut Conn, tenant: &str, id: &str, for_update: &str) -> Result<Option<Coupon>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let sql = format!("SELECT * FROM coupons WHERE tenant_id = $1 AND id = $2{for_update}");
    let r = sqlx::query(AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(c).await?;
    r.as_ref().map(coupon_row).transpose()
}

/// A campaign's coupons in code order, after `after` (for paging), at most `limit`.
pub async fn coupons_of(c: &mut Conn, tenant: &str, campaign: &str, after: &str, limit: i64) -> Result<Vec<Coupon>> {
    let rows = sqlx::query("SELECT * FROM coupons WHERE tenant_id = $1 AND campaign_id = $2 AND code > $3 ORDER BY code LIMIT $4")
        .bind(tenant)
        .bind(campaign)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?;
    rows.iter().map(coupon_row).collect()
}

pub async fn coupons_of_member(c: &mut Conn, tenant: &str, member: &str) -> Result<Vec<Coupon>> {
    let rows = sqlx::query("SELECT * FROM coupons WHERE tenant_id = $1 AND member_id = $2 ORDER BY created_at, code")
        .bind(tenant)
        .bind(member)
        .fetch_all(c)
        .await?;
    rows.iter().map(coupon_row).collect()
}

pub async fn add_coupon_uses(c: &mut Conn, tenant: &str, id: &str, delta: i64) -> Result<()> {
    sqlx::query("UPDATE coupons SET uses = uses + $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .bind(delta)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn set_coupon_status(c: &mut Conn, tenant: &str, id: &str, status: &str) -> Result<()> {
    sqlx::query("UPDATE coupons SET status = $3 WHERE tenant_id = $1 AND id = $2").bind(tenant).bind(id).bind(status).execute(c).await?;
    Ok(())
}

// ---------------------------------------------------------------- stamps

pub async fn stamps_of(c: &mut Conn, tenant: &str, member: &str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT campaign_id, stamps FROM stamps WHERE tenant_id = $1 AND member_id = $2 ORDER BY campaign_id")
        .bind(tenant)
        .bind(member)
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| Ok((col(r, "campaign_id")?, col(r, "stamps")?))).collect()
}

pub async fn add_stamps(c: &mut Conn, tenant: &str, member: &str, campaign: &str, delta: i64, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO stamps (tenant_id, member_id, campaign_id, stamps, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, member_id, campaign_id) DO UPDATE SET stamps = stamps.stamps + $4, updated_at = $5",
    )
    .bind(tenant)
    .bind(member)
    .bind(campaign)
    .bind(delta)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- wallet

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wallet {
    pub balance_minor: i64,
    pub held_minor: i64,
    pub debt_minor: i64,
    pub seq: i64,
}

/// The member's wallet, locked for the transaction on PostgreSQL (a missing wallet is
/// created empty first so that it can be locked).
pub async fn lock_wallet(tx: &mut Tx, tenant: &str, member: &str) -> Result<Wallet> {
    sqlx::query(
        "INSERT INTO wallets (tenant_id, member_id, balance_minor, held_minor, debt_minor, seq) VALUES ($1, $2, 0, 0, 0, 0) \
         ON CONFLICT (tenant_id, member_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(member)
    .execute(tx.conn())
    .await?;
    let sql = format!("SELECT * FROM wallets WHERE tenant_id = $1 AND member_id = $2{}", tx.for_update());
    let r = sqlx::query(AssertSqlSafe(sql)).bind(tenant).bind(member).fetch_one(tx.conn()).await?;
    wallet_row(&r)
}

fn wallet_row(r: &AnyRow) -> Result<Wallet> {
    Ok(Wallet {
        balance_minor: col(r, "balance_minor")?,
        held_minor: col(r, "held_minor")?,
        debt_minor: col(r, "debt_minor")?,
        seq: col(r, "seq")?,
    })
}

pub async fn wallet(c: &mut Conn, tenant: &str, member: &str) -> Result<Wallet> {
    let r =
        sqlx::query("SELECT * FROM wallets WHERE tenant_id = $1 AND member_id = $2").bind(tenant).bind(member).fetch_optional(c).await?;
    Ok(r.as_ref().map(wallet_row).transpose()?.unwrap_or_default())
}

pub async fn save_wallet(c: &mut Conn, tenant: &str, member: &str, w: &Wallet) -> Result<()> {
    sqlx::query(
        "UPDATE wallets SET balance_minor = $3, held_minor = $4, debt_minor = $5, seq = $6 WHERE tenant_id = $1 AND member_id = $2",
    )
    .bind(tenant)
    .bind(member)
    .bind(w.balance_minor)
    .bind(w.held_minor)
    .bind(w.debt_minor)
    .bind(w.seq)
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletEntry {
    pub id: String,
    pub member_id: String,
    pub seq: i64,
    /// cashback, spend, return_spend, reverse_cashback, adjust.
    pub kind: String,
    pub amount_minor: i64,
    pub receipt_id: Option<String>,
    pub ref_id: Option<String>,
    pub reason: Option<String>,
    pub occurred_at: i64,
    pub created_at: i64,
    /// For `cashback`: the part of it that paid off wallet debt.
    pub debt_paid: i64,
}

pub async fn insert_wallet_entry(c: &mut Conn, tenant: &str, e: &WalletEntry) -> Result<()> {
    sqlx::query(
        "INSERT INTO wallet_entries (tenant_id, id, member_id, seq, kind, amount_minor, receipt_id, ref_id, reason, occurred_at, created_at, debt_paid) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(tenant)
    .bind(&e.id)
    .bind(&e.member_id)
    .bind(e.seq)
    .bind(&e.kind)
    .bind(e.amount_minor)
    .bind(&e.receipt_id)
    .bind(&e.ref_id)
    .bind(&e.reason)
    .bind(e.occurred_at)
    .bind(e.created_at)
    .bind(e.debt_paid)
    .execute(c)
    .await?;
    Ok(())
}

/// Newest first, before `before_seq`.
pub async fn wallet_entries(c: &mut Conn, tenant: &str, member: &str, before_seq: i64, limit: i64) -> Result<Vec<WalletEntry>> {
    let rows = sqlx::query("SELECT * FROM wallet_entries WHERE tenant_id = $1 AND member_id = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4")
        .bind(tenant)
        .bind(member)
        .bind(before_seq)
        .bind(limit)
        .fetch_all(c)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(WalletEntry {
                id: col(r, "id")?,
                member_id: col(r, "member_id")?,
                seq: col(r, "seq")?,
                kind: col(r, "kind")?,
                amount_minor: col(r, "amount_minor")?,
                receipt_id: col(r, "receipt_id")?,
                ref_id: col(r, "ref_id")?,
                reason: col(r, "reason")?,
                occurred_at: col(r, "occurred_at")?,
                created_at: col(r, "created_at")?,
                debt_paid: col(r, "debt_paid")?,
            })
        })
        .collect()
}

/// The wallet debt that a receipt's cashback paid off (its `cashback` entry, by the
/// receipt's pk).
pub async fn cashback_debt_paid(c: &mut Conn, tenant: &str, member: &str, receipt_pk: &str) -> Result<i64> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(debt_paid), 0) AS BIGINT) AS s FROM wallet_entries WHERE tenant_id = $1 AND member_id = $2 \
         AND kind = 'cashback' AND ref_id = $3",
    )
    .bind(tenant)
    .bind(member)
    .bind(receipt_pk)
    .fetch_one(c)
    .await?;
    col(&r, "s")
}

/// Σ of a member's wallet entries (the wallet rebuilt from its ledger).
pub async fn wallet_entries_sum(c: &mut Conn, tenant: &str, member: &str) -> Result<i64> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS s FROM wallet_entries WHERE tenant_id = $1 AND member_id = $2",
    )
    .bind(tenant)
    .bind(member)
    .fetch_one(c)
    .await?;
    col(&r, "s")
}

/// Wallet money held by the member's held receipts.
pub async fn held_wallet(c: &mut Conn, tenant: &str, member: &str) -> Result<i64> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(l.wallet_minor), 0) AS BIGINT) AS s FROM receipt_lines l JOIN receipts r \
         ON r.tenant_id = l.tenant_id AND r.id = l.receipt_pk WHERE r.tenant_id = $1 AND r.member_id = $2 AND r.status = 'held'",
    )
    .bind(tenant)
    .bind(member)
    .fetch_one(c)
    .await?;
    col(&r, "s")
}

/// Every wallet of the tenant: (member, balance, debt).
pub async fn all_wallets(c: &mut Conn, tenant: &str) -> Result<Vec<(String, Wallet)>> {
    let rows = sqlx::query("SELECT * FROM wallets WHERE tenant_id = $1 ORDER BY member_id").bind(tenant).fetch_all(c).await?;
    rows.iter().map(|r| Ok((col(r, "member_id")?, wallet_row(r)?))).collect()
}

// ---------------------------------------------------------------- action events

pub async fn action_event(c: &mut Conn, tenant: &str, event_id: &str) -> Result<Option<(String, String, String)>> {
    if crate::has_nul(&[event_id]) {
        return Ok(None);
    }
    let r = sqlx::query("SELECT member_id, body_hash, answer FROM action_events WHERE tenant_id = $1 AND event_id = $2")
        .bind(tenant)
        .bind(event_id)
        .fetch_optional(c)
        .await?;
    r.map(|r| Ok((col(&r, "member_id")?, col(&r, "body_hash")?, col(&r, "answer")?))).transpose()
}

/// A member's action event as recorded for its idempotency key, with its answer.
#[derive(Debug, Clone, Copy)]
pub struct ActionEventRecord<'a> {
    pub event_id: &'a str,
    pub member_id: &'a str,
    pub kind: &'a str,
    pub body_hash: &'a str,
    pub answer: &'a str,
    pub occurred_at: i64,
    pub created_at: i64,
}

pub async fn insert_action_event(c: &mut Conn, tenant: &str, e: &ActionEventRecord<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO action_events (tenant_id, event_id, member_id, type, body_hash, answer, occurred_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant)
    .bind(e.event_id)
    .bind(e.member_id)
    .bind(e.kind)
    .bind(e.body_hash)
    .bind(e.answer)
    .bind(e.occurred_at)
    .bind(e.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// How many events of this type the member has had (for once-only events like signup).
pub async fn action_events_count(c: &mut Conn, tenant: &str, member: &str, kind: &str) -> Result<i64> {
    let r = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM action_events WHERE tenant_id = $1 AND member_id = $2 AND type = $3")
        .bind(tenant)
        .bind(member)
        .bind(kind)
        .fetch_one(c)
        .await?;
    col(&r, "n")
}

pub async fn put_event_type(c: &mut Conn, tenant: &str, kind: &str, schema: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO event_types (tenant_id, type, schema, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, type) DO UPDATE SET schema = $3",
    )
    .bind(tenant)
    .bind(kind)
    .bind(schema)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn event_type(c: &mut Conn, tenant: &str, kind: &str) -> Result<Option<String>> {
    if crate::has_nul(&[kind]) {
        return Ok(None);
    }
    let r =
        sqlx::query("SELECT schema FROM event_types WHERE tenant_id = $1 AND type = $2").bind(tenant).bind(kind).fetch_optional(c).await?;
    r.map(|r| col(&r, "schema")).transpose()
}

pub async fn event_types(c: &mut Conn, tenant: &str) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT type, schema FROM event_types WHERE tenant_id = $1 ORDER BY type").bind(tenant).fetch_all(c).await?;
    rows.iter().map(|r| Ok((col(r, "type")?, col(r, "schema")?))).collect()
}

// ---------------------------------------------------------------- tags, attributes

pub async fn tags(c: &mut Conn, tenant: &str, member: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT tag FROM member_tags WHERE tenant_id = $1 AND member_id = $2 ORDER BY tag")
        .bind(tenant)
        .bind(member)
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| r.try_get::<String, _>("tag").map_err(Into::into)).collect()
}

pub async fn set_tags(c: &mut Conn, tenant: &str, member: &str, tags: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM member_tags WHERE tenant_id = $1 AND member_id = $2").bind(tenant).bind(member).execute(&mut *c).await?;
    for t in tags {
        sqlx::query("INSERT INTO member_tags (tenant_id, member_id, tag) VALUES ($1, $2, $3)")
            .bind(tenant)
            .bind(member)
            .bind(t)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

pub async fn attributes(c: &mut Conn, tenant: &str, member: &str) -> Result<Option<String>> {
    let r = sqlx::query("SELECT attributes FROM member_attributes WHERE tenant_id = $1 AND member_id = $2")
        .bind(tenant)
        .bind(member)
        .fetch_optional(c)
        .await?;
    r.map(|r| col(&r, "attributes")).transpose()
}

pub async fn set_attributes(c: &mut Conn, tenant: &str, member: &str, json: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO member_attributes (tenant_id, member_id, attributes) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, member_id) DO UPDATE SET attributes = $3",
    )
    .bind(tenant)
    .bind(member)
    .bind(json)
    .execute(c)
    .await?;
    Ok(())
}

/// The member's receipts that count as purchases for "first purchase": committed (or later
/// refunded) ones, and reserved ones other than `except` (a receipt's own reserve), so that a
/// reserve and another checkout cannot both be the first.
pub async fn purchases(c: &mut Conn, tenant: &str, member: &str, except: Option<(&str, &str, &str)>) -> Result<i64> {
    let (store, till, receipt) = except.unwrap_or(("", "", ""));
    let r = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM receipts WHERE tenant_id = $1 AND member_id = $2 \
         AND (status IN ('committed', 'partially_refunded', 'refunded') \
              OR (status = 'held' AND NOT (store_id = $3 AND till_id = $4 AND receipt_id = $5)))",
    )
    .bind(tenant)
    .bind(member)
    .bind(store)
    .bind(till)
    .bind(receipt)
    .fetch_one(c)
    .await?;
    col(&r, "n")
}

// ---------------------------------------------------------------- products

pub async fn put_product(c: &mut Conn, tenant: &str, sku: &str, name: Option<&str>, category: Option<&str>, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO products (tenant_id, sku, name, category, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, sku) DO UPDATE SET name = $3, category = $4, updated_at = $5",
    )
    .bind(tenant)
    .bind(sku)
    .bind(name)
    .bind(category)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn products(c: &mut Conn, tenant: &str, after: &str, limit: i64) -> Result<Vec<(String, Option<String>, Option<String>)>> {
    let rows = sqlx::query("SELECT sku, name, category FROM products WHERE tenant_id = $1 AND sku > $2 ORDER BY sku LIMIT $3")
        .bind(tenant)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| Ok((col(r, "sku")?, col(r, "name")?, col(r, "category")?))).collect()
}

/// Categories of these skus from the catalogue.
pub async fn product_categories(c: &mut Conn, tenant: &str, skus: &[&str]) -> Result<Vec<(String, String)>> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    let ph: Vec<String> = (0..skus.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!("SELECT sku, category FROM products WHERE tenant_id = $1 AND category IS NOT NULL AND sku IN ({})", ph.join(", "));
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
    for s in skus {
        q = q.bind(*s);
    }
    let rows = q.fetch_all(c).await?;
    rows.iter().map(|r| Ok((col(r, "sku")?, col(r, "category")?))).collect()
}
