//! Set-based reads and writes for a batch of checkouts (the group commit's fast path,
//! `kopilka_server::services::checkout_batch`): one statement per table for the whole
//! batch instead of one per receipt. Every statement is scoped to the tenant, like the
//! rest of the store.
//!
//! - Lookups bind their keys as a `VALUES` or `IN` list, so that the planner knows how few
//!   rows drive the join (on PostgreSQL, with a fresh table's stale statistics, an unknown
//!   row count turns an index probe into a hash join over the whole table). The
//!   `CROSS JOIN` keeps SQLite from putting the table first.
//! - Inserts are multi-row `VALUES`; row updates are `UPDATE … FROM (VALUES …)`.
//! - Placeholders are `$n` on PostgreSQL and anonymous `?` on SQLite ([`Ph`]).
//!
//! Carrying the rows as one JSON parameter (one SQL text for any number of rows, so one
//! prepared statement) was tried and measured slower on PostgreSQL: see
//! docs/benchmarks-history.md ("Tried and undone: rows as one JSON parameter").

use crate::Conn;
use crate::db::{Result, Tx, col};
use crate::ledger::{Balance, Consumption, Lot};
use crate::members::{By, Member};
use crate::receipts::{Line, Receipt};
use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, AssertSqlSafe};
use std::collections::{HashMap, HashSet};

/// Placeholders for one statement, numbered in the order they are written (and so must
/// be bound): `$1, $2, …` on PostgreSQL, and anonymous `?` on SQLite, whose numbered or
/// named parameters cost a search of every earlier name when the statement is prepared
/// and bound (quadratic in a multi-row statement's thousand values).
pub struct Ph {
    pg: bool,
    n: usize,
}

impl Ph {
    pub fn new(c: &Conn) -> Ph {
        Ph { pg: c.backend_name().eq_ignore_ascii_case("postgresql"), n: 0 }
    }

    /// The next placeholder.
    pub fn param(&mut self) -> String {
        self.n += 1;
        if self.pg { format!("${}", self.n) } else { "?".to_owned() }
    }

    /// `n` placeholders, comma-separated.
    pub fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.param()).collect::<Vec<_>>().join(", ")
    }

    /// `rows` parenthesised groups of `cols` placeholders: the rows of a VALUES list.
    pub fn rows(&mut self, rows: usize, cols: usize) -> String {
        let mut s = String::with_capacity(rows * (cols * 5 + 4));
        for i in 0..rows {
            if i > 0 {
                s.push_str(", ");
            }
            s.push('(');
            s.push_str(&self.list(cols));
            s.push(')');
        }
        s
    }
}

/// Write statements sent together. On SQLite they go as one text in one round trip to
/// the connection's thread (its driver runs a text of several statements, binding the
/// anonymous `?` of each in turn), which is most of a small statement's cost there; on
/// PostgreSQL, whose extended protocol prepares one statement per message, one after
/// the other. Each statement's values are bound with [`Script::bind`] in the order its
/// placeholders ([`Script::ph`]) were written, then the statement is added with
/// [`Script::push`]. A failing statement stops the script: the caller's transaction
/// then holds an unknown part of it and must be rolled back, as after any failed write.
pub struct Script {
    pg: bool,
    /// SQLite: the statements so far, and every value they bind.
    sql: String,
    args: AnyArguments,
    /// PostgreSQL: the statements so far, each with its values.
    ready: Vec<(String, AnyArguments)>,
    error: Option<sqlx::error::BoxDynError>,
}

impl Script {
    pub fn new(c: &Conn) -> Script {
        Script { pg: Ph::new(c).pg, sql: String::new(), args: AnyArguments::default(), ready: Vec::new(), error: None }
    }

    /// Placeholders for the next statement.
    pub fn ph(&self) -> Ph {
        Ph { pg: self.pg, n: 0 }
    }

    /// Bind the next value of the statement being written.
    pub fn bind<'t, T: sqlx::Encode<'t, Any> + sqlx::Type<Any>>(&mut self, value: T) -> &mut Self {
        if let Err(e) = self.args.add(value)
            && self.error.is_none()
        {
            self.error = Some(e);
        }
        self
    }

    /// Add a statement whose values were bound since the last one.
    pub fn push(&mut self, sql: String) {
        if self.pg {
            self.ready.push((sql, std::mem::take(&mut self.args)));
        } else {
            if !self.sql.is_empty() {
                self.sql.push_str(";\n");
            }
            self.sql.push_str(&sql);
        }
    }

    /// Run every statement, in order.
    pub async fn run(self, c: &mut Conn) -> Result<()> {
        if let Some(e) = self.error {
            return Err(sqlx::Error::Encode(e).into());
        }
        if self.pg {
            for (sql, args) in self.ready {
                sqlx::query_with(AssertSqlSafe(sql), args).execute(&mut *c).await?;
            }
        } else if !self.sql.is_empty() {
            // Not kept prepared: the text changes with the row counts, and would only push
            // the small statements out of the connection's cache.
            sqlx::query_with(AssertSqlSafe(self.sql), self.args).persistent(false).execute(&mut *c).await?;
        }
        Ok(())
    }
}

/// Keys per lookup statement (far below both databases' limits on bound values).
const LOOKUP_ROWS: usize = 2_000;

/// A lookup's keys, padded to the next power of two (at most [`LOOKUP_ROWS`]) by
/// repeating the last one. A statement's text names its number of keys; with counts
/// rounded up, each lookup comes in a few texts instead of one per count, so the prepared
/// statements stay in the connection's cache (sqlx keeps 100 on SQLite) and PostgreSQL
/// plans each text a few times instead of once per new count. A repeated key changes no
/// answer: `IN` lists ignore it, and the lookups that return one row per key are read
/// into sets or by index.
fn padded<T: Copy>(chunk: &[T]) -> impl Iterator<Item = T> + '_ {
    let n = chunk.len().next_power_of_two().min(LOOKUP_ROWS).max(chunk.len());
    let last = chunk.last().copied();
    chunk.iter().copied().chain(last.into_iter().cycle().take(n - chunk.len()))
}

/// The receipt keys (store, till, receipt id) among `keys` that already exist.
pub async fn existing_receipts(c: &mut Conn, tenant: &str, keys: &[(&str, &str, &str)]) -> Result<HashSet<(String, String, String)>> {
    let mut out = HashSet::new();
    for chunk in keys.chunks(LOOKUP_ROWS) {
        let keys: Vec<(&str, &str, &str)> = padded(chunk).collect();
        let sql = existing_receipts_sql(&mut Ph::new(c), keys.len());
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
        for (s, t, r) in keys {
            q = q.bind(s).bind(t).bind(r);
        }
        for r in q.fetch_all(&mut *c).await? {
            out.insert((col(&r, "store_id")?, col(&r, "till_id")?, col(&r, "receipt_id")?));
        }
    }
    Ok(out)
}

/// Members found by one kind of key; the caller matches them back by that key.
pub async fn members_by(c: &mut Conn, tenant: &str, by: By, values: &[&str]) -> Result<Vec<Member>> {
    let column = match by {
        By::Card => "card_number",
        By::Phone => "phone",
        By::Email => "email",
        By::External => "external_id",
        By::QrToken => "qr_token",
        By::Id => "id",
    };
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.chunks(LOOKUP_ROWS) {
        let values: Vec<&str> = padded(chunk).collect();
        let mut p = Ph::new(c);
        let sql = format!(
            "SELECT {} FROM members WHERE tenant_id = {} AND {column} IN ({})",
            crate::members::COLS,
            p.param(),
            p.list(values.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
        for v in values {
            q = q.bind(v);
        }
        for r in q.fetch_all(&mut *c).await? {
            out.push(crate::members::row(&r)?);
        }
    }
    Ok(out)
}

/// Read and lock the balance rows of `members` (sorted by id, the lock order of every
/// balance change; see [`crate::ledger::lock_balance`]).
pub async fn lock_balances(tx: &mut Tx, tenant: &str, members: &[&str]) -> Result<Vec<Balance>> {
    let mut sorted: Vec<&str> = members.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::with_capacity(sorted.len());
    for chunk in sorted.chunks(LOOKUP_ROWS) {
        let ids: Vec<&str> = padded(chunk).collect();
        let mut p = Ph::new(tx.conn());
        let sql = format!(
            "SELECT {} FROM balances WHERE tenant_id = {} AND member_id IN ({}) ORDER BY member_id{}",
            crate::ledger::BAL_COLS,
            p.param(),
            p.list(ids.len()),
            tx.for_update()
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
        for m in ids {
            q = q.bind(m);
        }
        for r in q.fetch_all(tx.conn()).await? {
            out.push(crate::ledger::bal_row(&r)?);
        }
    }
    Ok(out)
}

/// Tier spend ([`crate::receipts::tier_spend`]) of several (member, from, to) windows at
/// once, in the order asked.
pub async fn tier_spends(c: &mut Conn, tenant: &str, windows: &[(&str, i64, i64)]) -> Result<Vec<i64>> {
    let mut out = vec![0; windows.len()];
    for (n, chunk) in windows.chunks(LOOKUP_ROWS).enumerate() {
        let indexed: Vec<(usize, (&str, i64, i64))> = chunk.iter().copied().enumerate().collect();
        let rows: Vec<(usize, (&str, i64, i64))> = padded(&indexed).collect();
        let sql = tier_spends_sql(&mut Ph::new(c), rows.len());
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
        for (i, (m, from, to)) in rows {
            q = q.bind((n * LOOKUP_ROWS + i) as i64).bind(m).bind(from).bind(to);
        }
        for r in q.fetch_all(&mut *c).await? {
            let k: i64 = col(&r, "k")?;
            if let Some(slot) = usize::try_from(k).ok().and_then(|k| out.get_mut(k)) {
                *slot = col(&r, "s")?;
            }
        }
    }
    Ok(out)
}

/// The statement of [`existing_receipts`] for `rows` keys; binds: the tenant, then
/// (store, till, receipt id) per key.
///
/// A subquery per key, not a join of the keys with `receipts`: see [`tier_spends_sql`].
/// `receipts_key` is unique, so each subquery finds at most one row. The subquery stands
/// before the keys in the text, as the binds do: SQLite numbers its `?` in text order.
fn existing_receipts_sql(p: &mut Ph, rows: usize) -> String {
    let tenant_at = p.param();
    format!(
        "SELECT x.store_id, x.till_id, x.receipt_id FROM (SELECT (SELECT 1 FROM receipts r WHERE r.tenant_id = {tenant_at} \
         AND r.store_id = v.column1 AND r.till_id = v.column2 AND r.receipt_id = v.column3) AS found, \
         v.column1 AS store_id, v.column2 AS till_id, v.column3 AS receipt_id FROM (VALUES {}) AS v) AS x WHERE x.found IS NOT NULL",
        p.rows(rows, 3),
    )
}

/// The statement of [`tier_spends`] for `rows` windows; binds: the tenant, then (index,
/// member, from, to) per window.
///
/// One subquery per window, not a join of the windows with `receipts`. A join leaves
/// PostgreSQL free to plan the receipts side once for all windows. With the statistics
/// of a nearly empty `receipts` (a new database, until autovacuum's first ANALYZE) it
/// read every receipt of the tenant into a hash or a materialised list and matched each
/// window against all of them: 20-25 ms a batch of 32 and growing with the table. A
/// correlated subquery runs once per window and probes `receipts_member` (tenant,
/// member, occurred at).
fn tier_spends_sql(p: &mut Ph, rows: usize) -> String {
    let tenant_at = p.param();
    format!(
        "SELECT v.column1 AS k, CAST(COALESCE((SELECT SUM(r.payable_minor - r.refunded_payable_minor) FROM receipts r \
         WHERE r.tenant_id = {tenant_at} AND r.member_id = v.column2 AND r.status IN ('committed', 'partially_refunded', 'refunded') \
         AND r.occurred_at >= v.column3 AND r.occurred_at < v.column4), 0) AS BIGINT) AS s FROM (VALUES {}) AS v",
        p.rows(rows, 4),
    )
}

/// The database's plans (`EXPLAIN`) of the receipt lookups of the set-based checkout
/// path, [`existing_receipts`] and [`tier_spends`], for `rows` made-up keys of `tenant`.
/// For tests that pin the plans down.
#[doc(hidden)]
pub async fn explain_receipt_lookups(c: &mut Conn, tenant: &str, rows: usize) -> Result<String> {
    use sqlx::Row;
    let mut out = String::new();
    let sql = format!("EXPLAIN {}", existing_receipts_sql(&mut Ph::new(c), rows));
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
    for i in 0..rows {
        q = q.bind("store").bind(format!("till-{i}")).bind(format!("receipt-{i}"));
    }
    for r in q.fetch_all(&mut *c).await? {
        out.push_str(&r.try_get::<String, _>(0)?);
        out.push('\n');
    }
    let sql = format!("EXPLAIN {}", tier_spends_sql(&mut Ph::new(c), rows));
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
    for i in 0..rows {
        q = q.bind(i as i64).bind(format!("member-{i}")).bind(0i64).bind(i64::MAX / 2);
    }
    for r in q.fetch_all(&mut *c).await? {
        out.push_str(&r.try_get::<String, _>(0)?);
        out.push('\n');
    }
    Ok(out)
}

/// The spendable lots of several members, each member's in spending order
/// ([`crate::ledger::spendable_lots`]).
pub async fn spendable_lots(c: &mut Conn, tenant: &str, members: &[&str], now: i64) -> Result<HashMap<String, Vec<Lot>>> {
    let mut out: HashMap<String, Vec<Lot>> = HashMap::new();
    for chunk in members.chunks(LOOKUP_ROWS) {
        let ids: Vec<&str> = padded(chunk).collect();
        let mut p = Ph::new(c);
        let sql = format!(
            "SELECT {} FROM lots WHERE tenant_id = {} AND member_id IN ({}) AND is_pending = 0 AND points_remaining > 0 \
             AND (expires_at IS NULL OR expires_at > {}) \
             ORDER BY member_id, CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END, expires_at, seq",
            crate::ledger::LOT_COLS,
            p.param(),
            p.list(ids.len()),
            p.param()
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant);
        for m in ids {
            q = q.bind(m);
        }
        for r in q.bind(now).fetch_all(&mut *c).await? {
            let lot = crate::ledger::lot_row(&r)?;
            out.entry(lot.member_id.clone()).or_default().push(lot);
        }
    }
    Ok(out)
}

/// Rows of a statement with `cols` values per row, within both databases' limits on
/// bound values (SQLite 32,766, PostgreSQL 65,535).
fn chunk_rows(cols: usize) -> usize {
    (30_000 / cols).max(1)
}

pub fn add_receipts(s: &mut Script, tenant: &str, receipts: &[Receipt]) {
    const COLS: usize = 22;
    for chunk in receipts.chunks(chunk_rows(COLS)) {
        let sql = format!(
            "INSERT INTO receipts (tenant_id, id, store_id, till_id, receipt_id, member_id, status, occurred_at, program_version, tier, body_hash, answer, \
             total_minor, payable_minor, refunded_payable_minor, points_redeemed, points_earned, earn_lot_id, expired_exempt, hold_id, created_at, committed_at) \
             VALUES {}",
            s.ph().rows(chunk.len(), COLS)
        );
        for r in chunk {
            s.bind(tenant)
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
                .bind(r.committed_at);
        }
        s.push(sql);
    }
}

/// The lines of several receipts: (receipt pk, line).
pub fn add_lines(s: &mut Script, tenant: &str, lines: &[(&str, &Line)]) {
    const COLS: usize = 17;
    for chunk in lines.chunks(chunk_rows(COLS)) {
        let sql = format!(
            "INSERT INTO receipt_lines (tenant_id, receipt_pk, line_no, sku, name, category, qty_kind, quantity_base, total_minor, discount_minor, \
             redeemed_minor, points_redeemed, payable_minor, points_earned, refunded_base, wallet_minor, cashback_minor) VALUES {}",
            s.ph().rows(chunk.len(), COLS)
        );
        for (pk, l) in chunk {
            s.bind(tenant)
                .bind(*pk)
                .bind(l.line_no)
                .bind(&l.sku)
                .bind(&l.name)
                .bind(&l.category)
                .bind(&l.qty_kind)
                .bind(l.quantity_base)
                .bind(l.total_minor)
                .bind(l.discount_minor)
                .bind(l.redeemed_minor)
                .bind(l.points_redeemed)
                .bind(l.payable_minor)
                .bind(l.points_earned)
                .bind(l.refunded_base)
                .bind(l.wallet_minor)
                .bind(l.cashback_minor);
        }
        s.push(sql);
    }
}

pub fn add_lots(s: &mut Script, tenant: &str, lots: &[Lot]) {
    const COLS: usize = 12;
    for chunk in lots.chunks(chunk_rows(COLS)) {
        let sql = format!(
            "INSERT INTO lots (tenant_id, id, member_id, source, ref_id, points_initial, points_remaining, is_pending, available_at, expires_at, seq, created_at) \
             VALUES {}",
            s.ph().rows(chunk.len(), COLS)
        );
        for l in chunk {
            s.bind(tenant)
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
                .bind(l.created_at);
        }
        s.push(sql);
    }
}

pub fn add_consumptions(s: &mut Script, tenant: &str, cons: &[Consumption]) {
    const COLS: usize = 10;
    for chunk in cons.chunks(chunk_rows(COLS)) {
        let sql = format!(
            "INSERT INTO consumptions (tenant_id, id, member_id, lot_id, kind, ref_id, points, returned, seq, created_at) VALUES {}",
            s.ph().rows(chunk.len(), COLS)
        );
        for x in chunk {
            s.bind(tenant)
                .bind(&x.id)
                .bind(&x.member_id)
                .bind(&x.lot_id)
                .bind(&x.kind)
                .bind(&x.ref_id)
                .bind(x.points)
                .bind(x.returned)
                .bind(x.seq)
                .bind(x.created_at);
        }
        s.push(sql);
    }
}

/// Set the remaining points of several lots: (lot id, points remaining).
pub fn add_lots_remaining(s: &mut Script, tenant: &str, lots: &[(&str, i64)]) {
    for chunk in lots.chunks(chunk_rows(3)) {
        let mut p = s.ph();
        // The ids once more as a list, as in `add_balances`.
        let sql = format!(
            "UPDATE lots SET points_remaining = v.column2 FROM (VALUES {}) AS v WHERE lots.tenant_id = {} AND lots.id = v.column1 AND lots.id IN ({})",
            p.rows(chunk.len(), 2),
            p.param(),
            p.list(chunk.len())
        );
        for (id, left) in chunk {
            s.bind(*id).bind(*left);
        }
        s.bind(tenant);
        for (id, _) in chunk {
            s.bind(*id);
        }
        s.push(sql);
    }
}

/// Write several balance projections back ([`crate::ledger::save_balance`]); with
/// `due_changed` false their `next_due_at` is left as stored.
pub fn add_balances(s: &mut Script, tenant: &str, balances: &[&Balance], due_changed: bool) {
    let cols: usize = if due_changed { 10 } else { 9 };
    let due = if due_changed { ", next_due_at = v.column10" } else { "" };
    for chunk in balances.chunks(chunk_rows(cols + 1)) {
        let mut p = s.ph();
        // The member ids once more as a list: with only the join to go by, PostgreSQL
        // planned a batch of 32 as a scan of every balance of the tenant (3 ms a batch
        // at 5,000 members, more as updates leave dead row versions); the list lets it
        // probe the primary key for just these members.
        let sql = format!(
            "UPDATE balances SET points = v.column2, held = v.column3, pending = v.column4, debt = v.column5, lifetime_earned = v.column6, \
             seq = v.column7, tier_code = v.column8, updated_at = v.column9{due} \
             FROM (VALUES {}) AS v WHERE balances.tenant_id = {} AND balances.member_id = v.column1 AND balances.member_id IN ({})",
            p.rows(chunk.len(), cols),
            p.param(),
            p.list(chunk.len())
        );
        for b in chunk {
            s.bind(&b.member_id)
                .bind(b.points)
                .bind(b.held)
                .bind(b.pending)
                .bind(b.debt)
                .bind(b.lifetime_earned)
                .bind(b.seq)
                .bind(&b.tier_code)
                .bind(b.updated_at);
            if due_changed {
                s.bind(b.next_due_at);
            }
        }
        s.bind(tenant);
        for b in chunk {
            s.bind(&b.member_id);
        }
        s.push(sql);
    }
}

#[cfg(test)]
mod tests {
    use super::Ph;

    #[test]
    fn lookups_are_padded_to_powers_of_two_with_the_last_key() {
        let got: Vec<u32> = super::padded(&[7, 8, 9]).collect();
        assert_eq!(got, [7, 8, 9, 9]);
        assert_eq!(super::padded(&[1]).count(), 1);
        assert_eq!(super::padded(&[1u8; 17]).count(), 32);
        assert_eq!(super::padded(&[1u8; 1500]).count(), super::LOOKUP_ROWS);
        assert_eq!(super::padded(&[1u8; 2000]).count(), 2000);
    }

    #[test]
    fn placeholders_are_numbered_in_writing_order() {
        let mut p = Ph { pg: true, n: 0 };
        assert_eq!(p.rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(p.param(), "$7");
        assert_eq!(p.list(2), "$8, $9");
        let mut s = Ph { pg: false, n: 0 };
        assert_eq!(s.rows(1, 2), "(?, ?)");
        assert_eq!(s.list(2), "?, ?");
    }
}
