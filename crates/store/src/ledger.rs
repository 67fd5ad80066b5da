//! The points ledger tables: balances (projection), lots, consumptions, holds and the
//! member-visible entries. The rules that decide what to write live in the server's
//! ledger service; this module only reads and writes rows.

use crate::Conn;
use crate::db::{Result, Tx, col};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub member_id: String,
    /// Available points plus held points (held points are out of their lots).
    pub points: i64,
    pub held: i64,
    pub pending: i64,
    pub debt: i64,
    pub lifetime_earned: i64,
    /// The member's posting sequence: the seq of the last ledger entry, lot or consumption.
    pub seq: i64,
    /// The soonest time something happens by itself (a pending lot becomes available, a
    /// lot expires, a hold ends); None when nothing is due.
    pub next_due_at: Option<i64>,
    /// The tier the worker last recorded for the member's history.
    pub tier_code: Option<String>,
    pub updated_at: i64,
}

impl Balance {
    pub fn next_seq(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }
}

pub(crate) const BAL_COLS: &str = "member_id, points, held, pending, debt, lifetime_earned, seq, next_due_at, tier_code, updated_at";

pub(crate) fn bal_row(r: &AnyRow) -> Result<Balance> {
    Ok(Balance {
        member_id: col(r, "member_id")?,
        points: col(r, "points")?,
        held: col(r, "held")?,
        pending: col(r, "pending")?,
        debt: col(r, "debt")?,
        lifetime_earned: col(r, "lifetime_earned")?,
        seq: col(r, "seq")?,
        next_due_at: col(r, "next_due_at")?,
        tier_code: col(r, "tier_code")?,
        updated_at: col(r, "updated_at")?,
    })
}

pub async fn balance(c: &mut Conn, tenant: &str, member: &str) -> Result<Option<Balance>> {
    let sql = format!("SELECT {BAL_COLS} FROM balances WHERE tenant_id = $1 AND member_id = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(member).fetch_optional(c).await?;
    r.as_ref().map(bal_row).transpose()
}

/// Read the balance row and lock it until the transaction ends. Every change to a
/// member's points starts here; two members are always locked in id order.
pub async fn lock_balance(tx: &mut Tx, tenant: &str, member: &str) -> Result<Option<Balance>> {
    if crate::has_nul(&[member]) {
        return Ok(None);
    }
    let sql = format!("SELECT {BAL_COLS} FROM balances WHERE tenant_id = $1 AND member_id = $2{}", tx.for_update());
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(member).fetch_optional(tx.conn()).await?;
    r.as_ref().map(bal_row).transpose()
}

/// Write a balance projection back. `due_changed` false leaves `next_due_at` as stored
/// (the caller knows it is unchanged): SQLite rewrites the entry of every index on a
/// column the UPDATE sets, changed or not, and `balances_due` would then cost a page
/// per balance written.
pub async fn save_balance(c: &mut Conn, tenant: &str, b: &Balance, due_changed: bool) -> Result<()> {
    let due = if due_changed { ", next_due_at = $11" } else { "" };
    let sql = format!(
        "UPDATE balances SET points = $3, held = $4, pending = $5, debt = $6, lifetime_earned = $7, seq = $8, tier_code = $9, updated_at = $10{due} \
         WHERE tenant_id = $1 AND member_id = $2"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(&b.member_id)
        .bind(b.points)
        .bind(b.held)
        .bind(b.pending)
        .bind(b.debt)
        .bind(b.lifetime_earned)
        .bind(b.seq)
        .bind(&b.tier_code)
        .bind(b.updated_at);
    if due_changed {
        q = q.bind(b.next_due_at);
    }
    q.execute(c).await?;
    Ok(())
}

/// Members whose balance has something due at or before `now`.
pub async fn members_due(c: &mut Conn, tenant: &str, now: i64, limit: i64) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT member_id FROM balances WHERE tenant_id = $1 AND next_due_at IS NOT NULL AND next_due_at <= $2 ORDER BY next_due_at LIMIT $3")
        .bind(tenant)
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| col(r, "member_id")).collect()
}

/// The soonest future event of a member: a pending lot's release, a lot's expiry, or a
/// hold's end.
pub async fn next_due(c: &mut Conn, tenant: &str, member: &str) -> Result<Option<i64>> {
    let r = sqlx::query(
        "SELECT MIN(t) AS t FROM ( \
           SELECT MIN(available_at) AS t FROM lots WHERE tenant_id = $1 AND member_id = $2 AND is_pending = 1 \
           UNION ALL SELECT MIN(expires_at) AS t FROM lots WHERE tenant_id = $1 AND member_id = $2 AND is_pending = 0 AND points_remaining > 0 AND expires_at IS NOT NULL \
           UNION ALL SELECT MIN(expires_at) AS t FROM holds WHERE tenant_id = $1 AND member_id = $2 AND status = 'held' \
         ) due",
    )
    .bind(tenant)
    .bind(member)
    .fetch_one(c)
    .await?;
    col(&r, "t")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    pub id: String,
    pub member_id: String,
    /// receipt, adjust, bonus, import, transfer.
    pub source: String,
    pub ref_id: Option<String>,
    pub points_initial: i64,
    pub points_remaining: i64,
    pub is_pending: bool,
    pub available_at: i64,
    pub expires_at: Option<i64>,
    pub seq: i64,
    pub created_at: i64,
}

pub(crate) const LOT_COLS: &str =
    "id, member_id, source, ref_id, points_initial, points_remaining, is_pending, available_at, expires_at, seq, created_at";

pub(crate) fn lot_row(r: &AnyRow) -> Result<Lot> {
    Ok(Lot {
        id: col(r, "id")?,
        member_id: col(r, "member_id")?,
        source: col(r, "source")?,
        ref_id: col(r, "ref_id")?,
        points_initial: col(r, "points_initial")?,
        points_remaining: col(r, "points_remaining")?,
        is_pending: col::<i64>(r, "is_pending")? != 0,
        available_at: col(r, "available_at")?,
        expires_at: col(r, "expires_at")?,
        seq: col(r, "seq")?,
        created_at: col(r, "created_at")?,
    })
}

pub async fn insert_lot(c: &mut Conn, tenant: &str, l: &Lot) -> Result<()> {
    sqlx::query(
        "INSERT INTO lots (tenant_id, id, member_id, source, ref_id, points_initial, points_remaining, is_pending, available_at, expires_at, seq, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(tenant)
    .bind(&l.id)
    .bind(&l.member_id)
    .bind(&l.source)
    .bind(&l.ref_id)
    .bind(l.points_initial)
    .bind(l.points_remaining)
    .bind(l.is_pending as i64)
    .bind(l.available_at)
    .bind(l.expires_at)
    .bind(l.seq)
    .bind(l.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn lot(c: &mut Conn, tenant: &str, id: &str) -> Result<Option<Lot>> {
    let sql = format!("SELECT {LOT_COLS} FROM lots WHERE tenant_id = $1 AND id = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(c).await?;
    r.as_ref().map(lot_row).transpose()
}

/// Lots that can pay now, in spending order: soonest expiry first, never-expiring last,
/// older lots first on ties.
pub async fn spendable_lots(c: &mut Conn, tenant: &str, member: &str, now: i64) -> Result<Vec<Lot>> {
    let sql = format!(
        "SELECT {LOT_COLS} FROM lots WHERE tenant_id = $1 AND member_id = $2 AND is_pending = 0 AND points_remaining > 0 \
         AND (expires_at IS NULL OR expires_at > $3) \
         ORDER BY CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END, expires_at, seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(member).bind(now).fetch_all(c).await?;
    rows.iter().map(lot_row).collect()
}

/// Pending lots whose time has come.
pub async fn lots_to_release(c: &mut Conn, tenant: &str, member: &str, now: i64) -> Result<Vec<Lot>> {
    let sql = format!(
        "SELECT {LOT_COLS} FROM lots WHERE tenant_id = $1 AND member_id = $2 AND is_pending = 1 AND available_at <= $3 ORDER BY seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(member).bind(now).fetch_all(c).await?;
    rows.iter().map(lot_row).collect()
}

/// Available lots past their expiry that still hold points.
pub async fn lots_to_expire(c: &mut Conn, tenant: &str, member: &str, now: i64) -> Result<Vec<Lot>> {
    let sql = format!(
        "SELECT {LOT_COLS} FROM lots WHERE tenant_id = $1 AND member_id = $2 AND is_pending = 0 AND points_remaining > 0 \
         AND expires_at IS NOT NULL AND expires_at <= $3 ORDER BY expires_at, seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(member).bind(now).fetch_all(c).await?;
    rows.iter().map(lot_row).collect()
}

/// Unexpired lots with points that a refund may take from: `first` (the receipt's own
/// lot) is listed first, then the rest soonest-expiring first. Pending lots included.
pub async fn reversible_lots(c: &mut Conn, tenant: &str, member: &str, now: i64) -> Result<Vec<Lot>> {
    let sql = format!(
        "SELECT {LOT_COLS} FROM lots WHERE tenant_id = $1 AND member_id = $2 AND points_remaining > 0 \
         AND (expires_at IS NULL OR expires_at > $3) \
         ORDER BY CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END, expires_at, seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(member).bind(now).fetch_all(c).await?;
    rows.iter().map(lot_row).collect()
}

pub async fn member_lots(c: &mut Conn, tenant: &str, member: &str) -> Result<Vec<Lot>> {
    let sql = format!("SELECT {LOT_COLS} FROM lots WHERE tenant_id = $1 AND member_id = $2 ORDER BY seq");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(member).fetch_all(c).await?;
    rows.iter().map(lot_row).collect()
}

pub async fn update_lot(c: &mut Conn, tenant: &str, id: &str, points_remaining: i64, is_pending: bool) -> Result<()> {
    sqlx::query("UPDATE lots SET points_remaining = $3, is_pending = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .bind(points_remaining)
        .bind(is_pending as i64)
        .execute(c)
        .await?;
    Ok(())
}

/// Future expiries of available lots, grouped by time, soonest first.
pub async fn expiring(c: &mut Conn, tenant: &str, member: &str, now: i64, limit: i64) -> Result<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "SELECT expires_at, CAST(SUM(points_remaining) AS BIGINT) AS points FROM lots \
         WHERE tenant_id = $1 AND member_id = $2 AND points_remaining > 0 AND expires_at IS NOT NULL AND expires_at > $3 \
         GROUP BY expires_at ORDER BY expires_at LIMIT $4",
    )
    .bind(tenant)
    .bind(member)
    .bind(now)
    .bind(limit)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok((col(r, "points")?, col(r, "expires_at")?))).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumption {
    pub id: String,
    pub member_id: String,
    pub lot_id: String,
    /// redeem, hold, expire, reverse, transfer, adjust, debt.
    pub kind: String,
    pub ref_id: String,
    pub points: i64,
    pub returned: i64,
    pub seq: i64,
    pub created_at: i64,
}

const CON_COLS: &str = "id, member_id, lot_id, kind, ref_id, points, returned, seq, created_at";

fn con_row(r: &AnyRow) -> Result<Consumption> {
    Ok(Consumption {
        id: col(r, "id")?,
        member_id: col(r, "member_id")?,
        lot_id: col(r, "lot_id")?,
        kind: col(r, "kind")?,
        ref_id: col(r, "ref_id")?,
        points: col(r, "points")?,
        returned: col(r, "returned")?,
        seq: col(r, "seq")?,
        created_at: col(r, "created_at")?,
    })
}

pub async fn insert_consumption(c: &mut Conn, tenant: &str, x: &Consumption) -> Result<()> {
    sqlx::query(
        "INSERT INTO consumptions (tenant_id, id, member_id, lot_id, kind, ref_id, points, returned, seq, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tenant)
    .bind(&x.id)
    .bind(&x.member_id)
    .bind(&x.lot_id)
    .bind(&x.kind)
    .bind(&x.ref_id)
    .bind(x.points)
    .bind(x.returned)
    .bind(x.seq)
    .bind(x.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// A reference's consumptions of one kind, in spending order.
pub async fn consumptions(c: &mut Conn, tenant: &str, ref_id: &str, kind: &str) -> Result<Vec<Consumption>> {
    let sql = format!("SELECT {CON_COLS} FROM consumptions WHERE tenant_id = $1 AND ref_id = $2 AND kind = $3 ORDER BY seq, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(ref_id).bind(kind).fetch_all(c).await?;
    rows.iter().map(con_row).collect()
}

pub async fn set_consumption_returned(c: &mut Conn, tenant: &str, id: &str, returned: i64) -> Result<()> {
    sqlx::query("UPDATE consumptions SET returned = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .bind(returned)
        .execute(c)
        .await?;
    Ok(())
}

/// Turn a reference's consumptions of kind `from` into kind `to` (a hold becoming a
/// redemption at checkout).
pub async fn rekind_consumptions(c: &mut Conn, tenant: &str, ref_id: &str, from: &str, to: &str) -> Result<()> {
    sqlx::query("UPDATE consumptions SET kind = $4 WHERE tenant_id = $1 AND ref_id = $2 AND kind = $3")
        .bind(tenant)
        .bind(ref_id)
        .bind(from)
        .bind(to)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub member_id: String,
    pub seq: i64,
    pub id: String,
    /// earn, redeem, reverse_earn, return_redeem, expire, adjust, transfer_in,
    /// transfer_out, bonus.
    pub kind: String,
    pub points: i64,
    pub created_at: i64,
    pub occurred_at: i64,
    pub receipt_id: Option<String>,
    pub reason: Option<String>,
    pub ref_id: Option<String>,
}

pub async fn insert_entry(c: &mut Conn, tenant: &str, e: &Entry) -> Result<()> {
    insert_entries(c, &[(tenant.to_owned(), e.clone())]).await
}

/// Append an entry: at once, or at the commit when the transaction defers appends.
pub async fn post_entry(tx: &mut crate::Tx, tenant: &str, e: Entry) -> Result<()> {
    if tx.defer {
        tx.entries.push((tenant.to_owned(), e));
        Ok(())
    } else {
        insert_entry(tx.conn(), tenant, &e).await
    }
}

/// Insert entries with multi-row statements (at most 500 rows each).
pub async fn insert_entries(c: &mut Conn, entries: &[(String, Entry)]) -> Result<()> {
    let mut s = crate::batch::Script::new(c);
    add_entries(&mut s, entries);
    s.run(c).await
}

/// Add the inserts of `entries` (tenant, entry) to a script.
pub fn add_entries(s: &mut crate::batch::Script, entries: &[(String, Entry)]) {
    for chunk in entries.chunks(500) {
        let sql = format!(
            "INSERT INTO ledger_entries (tenant_id, member_id, seq, id, kind, points, created_at, occurred_at, receipt_id, reason, ref_id) VALUES {}",
            s.ph().rows(chunk.len(), 11)
        );
        for (tenant, e) in chunk {
            s.bind(tenant)
                .bind(&e.member_id)
                .bind(e.seq)
                .bind(&e.id)
                .bind(&e.kind)
                .bind(e.points)
                .bind(e.created_at)
                .bind(e.occurred_at)
                .bind(&e.receipt_id)
                .bind(&e.reason)
                .bind(&e.ref_id);
        }
        s.push(sql);
    }
}

/// Newest first, strictly before `before_seq` when given.
pub async fn entries(c: &mut Conn, tenant: &str, member: &str, before_seq: Option<i64>, limit: i64) -> Result<Vec<Entry>> {
    let rows = sqlx::query(
        "SELECT member_id, seq, id, kind, points, created_at, occurred_at, receipt_id, reason, ref_id FROM ledger_entries \
         WHERE tenant_id = $1 AND member_id = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4",
    )
    .bind(tenant)
    .bind(member)
    .bind(before_seq.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Entry {
                member_id: col(r, "member_id")?,
                seq: col(r, "seq")?,
                id: col(r, "id")?,
                kind: col(r, "kind")?,
                points: col(r, "points")?,
                created_at: col(r, "created_at")?,
                occurred_at: col(r, "occurred_at")?,
                receipt_id: col(r, "receipt_id")?,
                reason: col(r, "reason")?,
                ref_id: col(r, "ref_id")?,
            })
        })
        .collect()
}

/// Σ of a member's entries, and Σ of its entries by kind (for lifetime_earned).
pub async fn entry_sums(c: &mut Conn, tenant: &str, member: &str) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT kind, CAST(SUM(points) AS BIGINT) AS s FROM ledger_entries WHERE tenant_id = $1 AND member_id = $2 GROUP BY kind",
    )
    .bind(tenant)
    .bind(member)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok((col(r, "kind")?, col(r, "s")?))).collect()
}

/// Σ of a member's consumptions net of returns, by lot.
pub async fn consumed_by_lot(c: &mut Conn, tenant: &str, member: &str) -> Result<Vec<(String, String, i64)>> {
    let rows = sqlx::query(
        "SELECT lot_id, kind, CAST(SUM(points - returned) AS BIGINT) AS s FROM consumptions WHERE tenant_id = $1 AND member_id = $2 GROUP BY lot_id, kind",
    )
    .bind(tenant)
    .bind(member)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| Ok((col(r, "lot_id")?, col(r, "kind")?, col(r, "s")?))).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: String,
    pub member_id: String,
    pub receipt_pk: String,
    pub points: i64,
    /// held, committed, cancelled, expired.
    pub status: String,
    pub expires_at: i64,
    pub created_at: i64,
}

const HOLD_COLS: &str = "id, member_id, receipt_pk, points, status, expires_at, created_at";

fn hold_row(r: &AnyRow) -> Result<Hold> {
    Ok(Hold {
        id: col(r, "id")?,
        member_id: col(r, "member_id")?,
        receipt_pk: col(r, "receipt_pk")?,
        points: col(r, "points")?,
        status: col(r, "status")?,
        expires_at: col(r, "expires_at")?,
        created_at: col(r, "created_at")?,
    })
}

pub async fn insert_hold(c: &mut Conn, tenant: &str, h: &Hold) -> Result<()> {
    sqlx::query("INSERT INTO holds (tenant_id, id, member_id, receipt_pk, points, status, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(tenant)
        .bind(&h.id)
        .bind(&h.member_id)
        .bind(&h.receipt_pk)
        .bind(h.points)
        .bind(&h.status)
        .bind(h.expires_at)
        .bind(h.created_at)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn hold(c: &mut Conn, tenant: &str, id: &str) -> Result<Option<Hold>> {
    let sql = format!("SELECT {HOLD_COLS} FROM holds WHERE tenant_id = $1 AND id = $2");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(id).fetch_optional(c).await?;
    r.as_ref().map(hold_row).transpose()
}

/// A member's holds that are still held but whose time is up.
pub async fn holds_to_release(c: &mut Conn, tenant: &str, member: &str, now: i64) -> Result<Vec<Hold>> {
    let sql = format!(
        "SELECT {HOLD_COLS} FROM holds WHERE tenant_id = $1 AND member_id = $2 AND status = 'held' AND expires_at <= $3 ORDER BY id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(member).bind(now).fetch_all(c).await?;
    rows.iter().map(hold_row).collect()
}

pub async fn active_held_points(c: &mut Conn, tenant: &str, member: &str) -> Result<i64> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) AS s FROM holds WHERE tenant_id = $1 AND member_id = $2 AND status = 'held'",
    )
    .bind(tenant)
    .bind(member)
    .fetch_one(c)
    .await?;
    col(&r, "s")
}

pub async fn end_hold(c: &mut Conn, tenant: &str, id: &str, status: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE holds SET status = $3, ended_at = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}
