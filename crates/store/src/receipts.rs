//! Receipts and their lines, refunds, and the idempotency records of adjustments and
//! transfers. A receipt's key (store, till, receipt id) is unique per tenant, so a
//! duplicate posting fails inside its transaction; there is no check-then-insert race.

use crate::Conn;
use crate::db::{Result, Tx, col};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: String,
    pub store_id: String,
    pub till_id: String,
    pub receipt_id: String,
    pub member_id: Option<String>,
    /// held, committed, cancelled, partially_refunded, refunded.
    pub status: String,
    pub occurred_at: i64,
    pub program_version: i64,
    pub tier: Option<String>,
    pub body_hash: String,
    /// The stored JSON answer.
    pub answer: String,
    pub total_minor: i64,
    pub payable_minor: i64,
    pub refunded_payable_minor: i64,
    pub points_redeemed: i64,
    pub points_earned: i64,
    pub earn_lot_id: Option<String>,
    /// Expired points of this receipt already exempted from reversal by refunds.
    pub expired_exempt: i64,
    pub hold_id: Option<String>,
    pub created_at: i64,
    pub committed_at: Option<i64>,
}

pub(crate) const COLS: &str = "id, store_id, till_id, receipt_id, member_id, status, occurred_at, program_version, tier, body_hash, answer, total_minor, payable_minor, \
                    refunded_payable_minor, points_redeemed, points_earned, earn_lot_id, expired_exempt, hold_id, created_at, committed_at";

pub(crate) fn row(r: &AnyRow) -> Result<Receipt> {
    Ok(Receipt {
        id: col(r, "id")?,
        store_id: col(r, "store_id")?,
        till_id: col(r, "till_id")?,
        receipt_id: col(r, "receipt_id")?,
        member_id: col(r, "member_id")?,
        status: col(r, "status")?,
        occurred_at: col(r, "occurred_at")?,
        program_version: col(r, "program_version")?,
        tier: col(r, "tier")?,
        body_hash: col(r, "body_hash")?,
        answer: col(r, "answer")?,
        total_minor: col(r, "total_minor")?,
        payable_minor: col(r, "payable_minor")?,
        refunded_payable_minor: col(r, "refunded_payable_minor")?,
        points_redeemed: col(r, "points_redeemed")?,
        points_earned: col(r, "points_earned")?,
        earn_lot_id: col(r, "earn_lot_id")?,
        expired_exempt: col(r, "expired_exempt")?,
        hold_id: col(r, "hold_id")?,
        created_at: col(r, "created_at")?,
        committed_at: col(r, "committed_at")?,
    })
}

pub async fn insert(c: &mut Conn, tenant: &str, r: &Receipt) -> Result<()> {
    sqlx::query(
        "INSERT INTO receipts (tenant_id, id, store_id, till_id, receipt_id, member_id, status, occurred_at, program_version, tier, body_hash, answer, \
         total_minor, payable_minor, refunded_payable_minor, points_redeemed, points_earned, earn_lot_id, expired_exempt, hold_id, created_at, committed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
    )
    .bind(tenant)
    .bind(&r.id)
    .bind(&r.store_id)
    .bind(&r.till_id)
    .bind(&r.receipt_id)
    .bind(&r.member_id)
    .bind(&r.status)
    .bind(r.occurred_at)
    .bind(r.program_version)
    .bind(&r.tier)
    .bind(&r.body_hash)
    .bind(&r.answer)
    .bind(r.total_minor)
    .bind(r.payable_minor)
    .bind(r.refunded_payable_minor)
    .bind(r.points_redeemed)
    .bind(r.points_earned)
    .bind(&r.earn_lot_id)
    .bind(r.expired_exempt)
    .bind(&r.hold_id)
    .bind(r.created_at)
    .bind(r.committed_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Write back the mutable parts of a receipt: status, answer, refund progress, the earn
/// lot and commit time.
pub async fn update(c: &mut Conn, tenant: &str, r: &Receipt) -> Result<()> {
    sqlx::query(
        "UPDATE receipts SET status = $3, answer = $4, refunded_payable_minor = $5, earn_lot_id = $6, expired_exempt = $7, committed_at = $8 \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&r.id)
    .bind(&r.status)
    .bind(&r.answer)
    .bind(r.refunded_payable_minor)
    .bind(&r.earn_lot_id)
    .bind(r.expired_exempt)
    .bind(r.committed_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn by_key(c: &mut Conn, tenant: &str, store_id: &str, till_id: &str, receipt_id: &str) -> Result<Option<Receipt>> {
    if crate::has_nul(&[store_id, till_id, receipt_id]) {
        return Ok(None);
    }
    let sql = format!("SELECT {COLS} FROM receipts WHERE tenant_id = $1 AND store_id = $2 AND till_id = $3 AND receipt_id = $4");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(store_id).bind(till_id).bind(receipt_id).fetch_optional(c).await?;
    r.as_ref().map(row).transpose()
}

/// [`by_key`], locking the row until the transaction ends: whoever changes a receipt
/// (commits its hold, cancels or refunds it) reads it this way, so two of them cannot
/// both act on the same state. Lock order: the receipt, then the member's balance.
pub async fn by_key_locked(tx: &mut Tx, tenant: &str, store_id: &str, till_id: &str, receipt_id: &str) -> Result<Option<Receipt>> {
    let sql = format!(
        "SELECT {COLS} FROM receipts WHERE tenant_id = $1 AND store_id = $2 AND till_id = $3 AND receipt_id = $4{}",
        tx.for_update()
    );
    let r =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(store_id).bind(till_id).bind(receipt_id).fetch_optional(tx.conn()).await?;
    r.as_ref().map(row).transpose()
}

pub async fn by_pk(c: &mut Conn, tenant: &str, id: &str) -> Result<Option<Receipt>> {
    if crate::has_nul(&[id]) {
        return Ok(None);
    }
    let sql = format!("SELECT {COLS} FROM receipts WHERE tenant_id = $1 AND id = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(c).await?;
    r.as_ref().map(row).transpose()
}

/// Delete a held receipt whose hold ended, so its ids may be used again.
pub async fn delete_held(c: &mut Conn, tenant: &str, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM receipt_lines WHERE tenant_id = $1 AND receipt_pk = $2").bind(tenant).bind(id).execute(&mut *c).await?;
    sqlx::query("DELETE FROM receipts WHERE tenant_id = $1 AND id = $2 AND status = 'held'").bind(tenant).bind(id).execute(c).await?;
    Ok(())
}

/// The member's tier spend at `t`: payable of receipts (not held, not cancelled) with
/// occurred_at in [from, t), less the payable of their refunded units.
pub async fn tier_spend(c: &mut Conn, tenant: &str, member: &str, from: i64, t: i64) -> Result<i64> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(payable_minor - refunded_payable_minor), 0) AS BIGINT) AS s FROM receipts \
         WHERE tenant_id = $1 AND member_id = $2 AND status IN ('committed', 'partially_refunded', 'refunded') AND occurred_at >= $3 AND occurred_at < $4",
    )
    .bind(tenant)
    .bind(member)
    .bind(from)
    .bind(t)
    .fetch_one(c)
    .await?;
    col(&r, "s")
}

pub async fn list(c: &mut Conn, tenant: &str, member: Option<&str>, limit: i64) -> Result<Vec<Receipt>> {
    let sql = match member {
        Some(_) => format!("SELECT {COLS} FROM receipts WHERE tenant_id = $1 AND member_id = $2 ORDER BY id DESC LIMIT $3"),
        None => format!("SELECT {COLS} FROM receipts WHERE tenant_id = $1 AND $2 = '' ORDER BY id DESC LIMIT $3"),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(member.unwrap_or("")).bind(limit).fetch_all(c).await?;
    rows.iter().map(row).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub line_no: i64,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    /// units or milli.
    pub qty_kind: String,
    pub quantity_base: i64,
    pub total_minor: i64,
    pub discount_minor: i64,
    pub redeemed_minor: i64,
    pub points_redeemed: i64,
    pub payable_minor: i64,
    pub points_earned: i64,
    pub refunded_base: i64,
    /// Cashback wallet money spent on the line, and cashback it earned.
    pub wallet_minor: i64,
    pub cashback_minor: i64,
}

/// Insert a receipt's lines, many per statement.
pub async fn insert_lines(c: &mut Conn, tenant: &str, receipt_pk: &str, lines: &[Line]) -> Result<()> {
    let rows: Vec<(&str, &Line)> = lines.iter().map(|l| (receipt_pk, l)).collect();
    let mut s = crate::batch::Script::new(c);
    crate::batch::add_lines(&mut s, tenant, &rows);
    s.run(c).await
}

pub async fn lines(c: &mut Conn, tenant: &str, receipt_pk: &str) -> Result<Vec<Line>> {
    let rows = sqlx::query(
        "SELECT line_no, sku, name, category, qty_kind, quantity_base, total_minor, discount_minor, redeemed_minor, points_redeemed, payable_minor, points_earned, refunded_base, wallet_minor, cashback_minor \
         FROM receipt_lines WHERE tenant_id = $1 AND receipt_pk = $2 ORDER BY line_no",
    )
    .bind(tenant)
    .bind(receipt_pk)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Line {
                line_no: col(r, "line_no")?,
                sku: col(r, "sku")?,
                name: col(r, "name")?,
                category: col(r, "category")?,
                qty_kind: col(r, "qty_kind")?,
                quantity_base: col(r, "quantity_base")?,
                total_minor: col(r, "total_minor")?,
                discount_minor: col(r, "discount_minor")?,
                redeemed_minor: col(r, "redeemed_minor")?,
                points_redeemed: col(r, "points_redeemed")?,
                payable_minor: col(r, "payable_minor")?,
                points_earned: col(r, "points_earned")?,
                refunded_base: col(r, "refunded_base")?,
                wallet_minor: col(r, "wallet_minor")?,
                cashback_minor: col(r, "cashback_minor")?,
            })
        })
        .collect()
}

pub async fn set_line_refunded(c: &mut Conn, tenant: &str, receipt_pk: &str, line_no: i64, refunded_base: i64) -> Result<()> {
    sqlx::query("UPDATE receipt_lines SET refunded_base = $4 WHERE tenant_id = $1 AND receipt_pk = $2 AND line_no = $3")
        .bind(tenant)
        .bind(receipt_pk)
        .bind(line_no)
        .bind(refunded_base)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub store_id: String,
    pub refund_id: String,
    pub receipt_pk: String,
    pub body_hash: String,
    pub answer: String,
    pub refund_minor: i64,
    /// Payable money of the refunded units before withholding (lowers tier spend).
    pub payable_minor: i64,
    pub debt_added: i64,
    pub occurred_at: i64,
    pub created_at: i64,
}

const REFUND_COLS: &str =
    "id, store_id, refund_id, receipt_pk, body_hash, answer, refund_minor, payable_minor, debt_added, occurred_at, created_at";

fn refund_row(r: &AnyRow) -> Result<Refund> {
    Ok(Refund {
        id: col(r, "id")?,
        store_id: col(r, "store_id")?,
        refund_id: col(r, "refund_id")?,
        receipt_pk: col(r, "receipt_pk")?,
        body_hash: col(r, "body_hash")?,
        answer: col(r, "answer")?,
        refund_minor: col(r, "refund_minor")?,
        payable_minor: col(r, "payable_minor")?,
        debt_added: col(r, "debt_added")?,
        occurred_at: col(r, "occurred_at")?,
        created_at: col(r, "created_at")?,
    })
}

pub async fn insert_refund(c: &mut Conn, tenant: &str, r: &Refund) -> Result<()> {
    sqlx::query(
        "INSERT INTO refunds (tenant_id, id, store_id, refund_id, receipt_pk, body_hash, answer, refund_minor, payable_minor, debt_added, occurred_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(tenant)
    .bind(&r.id)
    .bind(&r.store_id)
    .bind(&r.refund_id)
    .bind(&r.receipt_pk)
    .bind(&r.body_hash)
    .bind(&r.answer)
    .bind(r.refund_minor)
    .bind(r.payable_minor)
    .bind(r.debt_added)
    .bind(r.occurred_at)
    .bind(r.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn refund_by_key(c: &mut Conn, tenant: &str, store_id: &str, refund_id: &str) -> Result<Option<Refund>> {
    let sql = format!("SELECT {REFUND_COLS} FROM refunds WHERE tenant_id = $1 AND store_id = $2 AND refund_id = $3");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(store_id).bind(refund_id).fetch_optional(c).await?;
    r.as_ref().map(refund_row).transpose()
}

pub async fn refunds_of(c: &mut Conn, tenant: &str, receipt_pk: &str) -> Result<Vec<Refund>> {
    let sql = format!("SELECT {REFUND_COLS} FROM refunds WHERE tenant_id = $1 AND receipt_pk = $2 ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(receipt_pk).fetch_all(c).await?;
    rows.iter().map(refund_row).collect()
}

/// Σ debt_added over a member's refunds (for the rebuild check).
pub async fn member_debt_added(c: &mut Conn, tenant: &str, member: &str) -> Result<i64> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(f.debt_added), 0) AS BIGINT) AS s FROM refunds f JOIN receipts r ON r.tenant_id = f.tenant_id AND r.id = f.receipt_pk \
         WHERE f.tenant_id = $1 AND r.member_id = $2",
    )
    .bind(tenant)
    .bind(member)
    .fetch_one(c)
    .await?;
    col(&r, "s")
}

/// An idempotency record of an adjustment or transfer: (body hash, stored answer).
pub async fn idem_record(c: &mut Conn, tenant: &str, table: IdemTable, key: &str) -> Result<Option<(String, String)>> {
    let sql = match table {
        IdemTable::Adjustment => "SELECT body_hash, answer FROM adjustments WHERE tenant_id = $1 AND adjustment_id = $2",
        IdemTable::Transfer => "SELECT body_hash, answer FROM transfers WHERE tenant_id = $1 AND transfer_id = $2",
    };
    let r = sqlx::query(sql).bind(tenant).bind(key).fetch_optional(c).await?;
    r.map(|r| Ok((col(&r, "body_hash")?, col(&r, "answer")?))).transpose()
}

#[derive(Debug, Clone, Copy)]
pub enum IdemTable {
    Adjustment,
    Transfer,
}

/// An admin's adjustment as recorded for its idempotency key, with the answer it gave.
#[derive(Debug, Clone, Copy)]
pub struct AdjustmentRecord<'a> {
    pub id: &'a str,
    pub adjustment_id: &'a str,
    pub member_id: &'a str,
    pub points: i64,
    pub reason: &'a str,
    pub actor: &'a str,
    pub body_hash: &'a str,
    pub answer: &'a str,
    pub created_at: i64,
}

pub async fn insert_adjustment(c: &mut Conn, tenant: &str, a: &AdjustmentRecord<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO adjustments (tenant_id, id, adjustment_id, member_id, points, reason, actor, body_hash, answer, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tenant)
    .bind(a.id)
    .bind(a.adjustment_id)
    .bind(a.member_id)
    .bind(a.points)
    .bind(a.reason)
    .bind(a.actor)
    .bind(a.body_hash)
    .bind(a.answer)
    .bind(a.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// A transfer between members as recorded for its idempotency key, with its answer.
#[derive(Debug, Clone, Copy)]
pub struct TransferRecord<'a> {
    pub id: &'a str,
    pub transfer_id: &'a str,
    pub from_member_id: &'a str,
    pub to_member_id: &'a str,
    pub points: i64,
    pub body_hash: &'a str,
    pub answer: &'a str,
    pub created_at: i64,
}

pub async fn insert_transfer(c: &mut Conn, tenant: &str, t: &TransferRecord<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO transfers (tenant_id, id, transfer_id, from_member_id, to_member_id, points, body_hash, answer, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant)
    .bind(t.id)
    .bind(t.transfer_id)
    .bind(t.from_member_id)
    .bind(t.to_member_id)
    .bind(t.points)
    .bind(t.body_hash)
    .bind(t.answer)
    .bind(t.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Members with a receipt (not held) whose occurred_at lies in [from, to): the members
/// whose rolling tier spend changes as those receipts leave the window.
pub async fn members_with_receipts_between(c: &mut Conn, tenant: &str, from: i64, to: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT member_id FROM receipts WHERE tenant_id = $1 AND member_id IS NOT NULL AND status <> 'held' AND occurred_at >= $2 AND occurred_at < $3",
    )
    .bind(tenant)
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| col(r, "member_id")).collect()
}
