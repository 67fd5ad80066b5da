//! The rebuild check: recompute every balance from the ledger's rows and compare it with
//! the stored projection. Any difference is a bug; `kopilka check` and the admin
//! endpoint report them, and the test suites run it after mixed workloads.

use kopilka_store::{Conn, StoreError, ledger, members, receipts};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Difference {
    pub tenant_id: String,
    pub member_id: String,
    pub what: String,
    pub stored: i64,
    pub rebuilt: i64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub members_checked: i64,
    pub differences: Vec<Difference>,
}

/// Check every member of a tenant.
pub async fn tenant(c: &mut Conn, tenant: &str) -> Result<Report, StoreError> {
    let mut report = Report::default();
    for member in members::all_ids(c, tenant).await? {
        report.members_checked += 1;
        report.differences.extend(member_diffs(c, tenant, &member).await?);
    }
    Ok(report)
}

/// Recompute one member's balance from lots, consumptions, holds, refunds and entries.
pub async fn member_diffs(c: &mut Conn, tenant: &str, member: &str) -> Result<Vec<Difference>, StoreError> {
    let mut out = Vec::new();
    let Some(b) = ledger::balance(c, tenant, member).await? else {
        return Ok(out);
    };
    let mut diff = |what: &str, stored: i64, rebuilt: i64| {
        if stored != rebuilt {
            out.push(Difference { tenant_id: tenant.into(), member_id: member.into(), what: what.into(), stored, rebuilt });
        }
    };
    let lots = ledger::member_lots(c, tenant, member).await?;
    let consumed = ledger::consumed_by_lot(c, tenant, member).await?;
    let mut by_lot: HashMap<&str, i64> = HashMap::new();
    let mut debt_paid = 0;
    for (lot, kind, s) in &consumed {
        *by_lot.entry(lot.as_str()).or_default() += s;
        if kind == "debt" {
            debt_paid += s;
        }
    }
    for lot in &lots {
        let rebuilt = lot.points_initial - by_lot.get(lot.id.as_str()).copied().unwrap_or(0);
        diff(&format!("lot {} remaining", lot.id), lot.points_remaining, rebuilt);
        if lot.points_remaining < 0 {
            diff(&format!("lot {} negative", lot.id), lot.points_remaining, 0);
        }
    }
    let held = ledger::active_held_points(c, tenant, member).await?;
    let available: i64 = lots.iter().filter(|l| !l.is_pending).map(|l| l.points_remaining).sum();
    let pending: i64 = lots.iter().filter(|l| l.is_pending).map(|l| l.points_remaining).sum();
    let debt = receipts::member_debt_added(c, tenant, member).await? - debt_paid;
    diff("held", b.held, held);
    diff("points", b.points, available + held);
    diff("pending", b.pending, pending);
    diff("debt", b.debt, debt);
    let sums = ledger::entry_sums(c, tenant, member).await?;
    let total: i64 = sums.iter().map(|(_, s)| s).sum();
    diff("ledger sum = points + pending - debt", b.points + b.pending - b.debt, total);
    let lifetime: i64 = sums.iter().filter(|(k, _)| matches!(k.as_str(), "earn" | "bonus" | "reverse_earn")).map(|(_, s)| s).sum();
    diff("lifetime_earned", b.lifetime_earned, lifetime);
    // The next due time (a pending lot's release, a lot's expiry, a hold's end), which the
    // worker's sweep and the till's fast path rely on; -1 for none.
    let due = ledger::next_due(c, tenant, member).await?;
    diff("next_due_at", b.next_due_at.unwrap_or(-1), due.unwrap_or(-1));
    for (what, v) in [("points", b.points), ("pending", b.pending), ("debt", b.debt), ("held", b.held)] {
        if v < 0 {
            diff(&format!("{what} negative"), v, 0);
        }
    }
    // The cashback wallet: its entries sum to balance − debt, and holds match held receipts.
    let w = kopilka_store::campaigns::wallet(c, tenant, member).await?;
    let wallet_sum = kopilka_store::campaigns::wallet_entries_sum(c, tenant, member).await?;
    let held_wallet = kopilka_store::campaigns::held_wallet(c, tenant, member).await?;
    diff("wallet ledger sum = balance - debt", w.balance_minor - w.debt_minor, wallet_sum);
    diff("wallet held", w.held_minor, held_wallet);
    for (what, v) in
        [("wallet balance", w.balance_minor), ("wallet debt", w.debt_minor), ("wallet available", w.balance_minor - w.held_minor)]
    {
        if v < 0 {
            diff(&format!("{what} negative"), v, 0);
        }
    }
    Ok(out)
}
