//! Programme KPIs for the dashboard (FEATURES K1), and the admin console's searches. Every
//! query takes the tenant id; days are bucketed in SQL by integer division of
//! `occurred_at + offset_s`, where the caller passes the programme time zone's offset.

use crate::Conn;
use crate::db::{Result, col};
use crate::members::Member;

/// Receipts that count as purchases: posted and not voided (refunds are subtracted
/// separately where money matters).
const POSTED: &str = "status IN ('committed', 'partially_refunded', 'refunded')";

/// Distinct members with a purchase at or after `since`.
pub async fn active_members(c: &mut Conn, tenant: &str, since: i64) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(DISTINCT member_id) AS n FROM receipts WHERE tenant_id = $1 AND member_id IS NOT NULL AND {POSTED} AND occurred_at >= $2"
    );
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(since).fetch_one(c).await?;
    col(&r, "n")
}

/// Σ of ledger entries by kind (all time), e.g. ("earn", 12345), ("redeem", -500).
/// Positive and negative adjustments are told apart: `adjust+` and `adjust-`.
pub async fn points_by_kind(c: &mut Conn, tenant: &str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT CASE WHEN kind = 'adjust' AND points > 0 THEN 'adjust+' WHEN kind = 'adjust' THEN 'adjust-' ELSE kind END AS k, \
         CAST(SUM(points) AS BIGINT) AS s FROM ledger_entries WHERE tenant_id = $1 \
         GROUP BY CASE WHEN kind = 'adjust' AND points > 0 THEN 'adjust+' WHEN kind = 'adjust' THEN 'adjust-' ELSE kind END",
    )
    .bind(tenant)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok((col(r, "k")?, col(r, "s")?))).collect()
}

/// Points members hold now: Σ points, pending and debt over every balance.
pub async fn points_outstanding(c: &mut Conn, tenant: &str) -> Result<(i64, i64, i64)> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) AS p, CAST(COALESCE(SUM(pending), 0) AS BIGINT) AS q, \
         CAST(COALESCE(SUM(debt), 0) AS BIGINT) AS d FROM balances WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(c)
    .await?;
    Ok((col(&r, "p")?, col(&r, "q")?, col(&r, "d")?))
}

/// Receipts since `since`: (count, Σ payable net of refunds) for members and for
/// anonymous buyers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiptSums {
    pub member_count: i64,
    pub member_payable_minor: i64,
    pub anonymous_count: i64,
    pub anonymous_payable_minor: i64,
}

pub async fn receipt_sums(c: &mut Conn, tenant: &str, since: i64) -> Result<ReceiptSums> {
    let sql = format!(
        "SELECT CASE WHEN member_id IS NULL THEN 0 ELSE 1 END AS m, COUNT(*) AS n, \
         CAST(COALESCE(SUM(payable_minor - refunded_payable_minor), 0) AS BIGINT) AS s \
         FROM receipts WHERE tenant_id = $1 AND {POSTED} AND occurred_at >= $2 GROUP BY CASE WHEN member_id IS NULL THEN 0 ELSE 1 END"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(since).fetch_all(c).await?;
    let mut out = ReceiptSums::default();
    for r in &rows {
        let (m, n, s): (i64, i64, i64) = (col(r, "m")?, col(r, "n")?, col(r, "s")?);
        if m == 1 {
            out.member_count = n;
            out.member_payable_minor = s;
        } else {
            out.anonymous_count = n;
            out.anonymous_payable_minor = s;
        }
    }
    Ok(out)
}

/// Receipts per local day since `since`: (day number = (t + offset_s) div 86400, member
/// receipts, anonymous receipts).
pub async fn receipts_per_day(c: &mut Conn, tenant: &str, since: i64, offset_s: i64) -> Result<Vec<(i64, i64, i64)>> {
    let sql = format!(
        "SELECT CAST((occurred_at + $3) / 86400 AS BIGINT) AS d, \
         CAST(SUM(CASE WHEN member_id IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS m, \
         CAST(SUM(CASE WHEN member_id IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS a \
         FROM receipts WHERE tenant_id = $1 AND {POSTED} AND occurred_at >= $2 GROUP BY CAST((occurred_at + $3) / 86400 AS BIGINT) ORDER BY d"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(since).bind(offset_s).fetch_all(c).await?;
    rows.iter().map(|r| Ok((col(r, "d")?, col(r, "m")?, col(r, "a")?))).collect()
}

/// Points per local day since `since` by entry kind: (day, kind, Σ points).
pub async fn points_per_day(c: &mut Conn, tenant: &str, since: i64, offset_s: i64) -> Result<Vec<(i64, String, i64)>> {
    let rows = sqlx::query(
        "SELECT CAST((occurred_at + $3) / 86400 AS BIGINT) AS d, kind, CAST(SUM(points) AS BIGINT) AS s FROM ledger_entries \
         WHERE tenant_id = $1 AND occurred_at >= $2 GROUP BY CAST((occurred_at + $3) / 86400 AS BIGINT), kind ORDER BY d",
    )
    .bind(tenant)
    .bind(since)
    .bind(offset_s)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok((col(r, "d")?, col(r, "kind")?, col(r, "s")?))).collect()
}

/// Members whose name contains `needle` (case-insensitive for ASCII on both databases),
/// newest first, at most `limit`.
pub async fn members_by_name(c: &mut Conn, tenant: &str, needle: &str, limit: i64) -> Result<Vec<Member>> {
    if crate::has_nul(&[needle]) {
        return Ok(Vec::new());
    }
    let escaped = needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let pattern = format!("%{}%", escaped.to_lowercase());
    let sql = format!(
        "SELECT {} FROM members WHERE tenant_id = $1 AND LOWER(name) LIKE $2 ESCAPE '\\' ORDER BY id DESC LIMIT $3",
        crate::members::COLS
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(pattern).bind(limit).fetch_all(c).await?;
    rows.iter().map(crate::members::row).collect()
}

/// The newest members, at most `limit`.
pub async fn newest_members(c: &mut Conn, tenant: &str, limit: i64) -> Result<Vec<Member>> {
    let sql = format!("SELECT {} FROM members WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2", crate::members::COLS);
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(limit).fetch_all(c).await?;
    rows.iter().map(crate::members::row).collect()
}

/// Receipts with this receipt id at any store and till of the tenant, newest first.
pub async fn receipts_by_receipt_id(c: &mut Conn, tenant: &str, receipt_id: &str, limit: i64) -> Result<Vec<crate::receipts::Receipt>> {
    if crate::has_nul(&[receipt_id]) {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {} FROM receipts WHERE tenant_id = $1 AND receipt_id = $2 ORDER BY id DESC LIMIT $3", crate::receipts::COLS);
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(receipt_id).bind(limit).fetch_all(c).await?;
    rows.iter().map(crate::receipts::row).collect()
}
