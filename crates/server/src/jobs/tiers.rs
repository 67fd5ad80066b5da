//! Tier changes: the worker compares each member's tier as of now with the tier it last
//! recorded and writes every change, up or down, to the member's history.

use super::expiry::fail;
use crate::services::ledger::Book;
use crate::state::AppState;
use kopilka_domain::tiers::tier_for_spend;
use kopilka_store::{members, now_s, receipts};
use serde_json::json;

pub async fn check_member(state: &AppState, tenant: &str, member: &str) -> Result<(), String> {
    let now = now_s();
    let (_, program) = {
        let mut c = state.db.pool().acquire().await.map_err(|e| e.to_string())?;
        crate::services::program::load(&mut c, tenant).await.map_err(|e| e.message)?
    };
    let mut tx = state.db.begin().await.map_err(|e| e.to_string())?;
    let Some(mut book) = Book::open(&mut tx, tenant, member, &program, now).await.map_err(fail)? else {
        return Ok(());
    };
    let (spend, tier) = crate::services::members::tier_now(tx.conn(), tenant, member, &program, now).await.map_err(|e| e.message)?;
    // Nothing recorded yet: the member has been at the tier of no spend since enrolment.
    let recorded = book.balance.tier_code.clone().or_else(|| tier_for_spend(&program.tiers, 0).map(|t| t.code.clone()));
    if tier != recorded {
        let rank =
            |c: &Option<String>| c.as_ref().and_then(|c| program.tiers.iter().position(|t| &t.code == c)).map(|i| i as i64).unwrap_or(-1);
        let direction = if rank(&tier) > rank(&recorded) { "up" } else { "down" };
        members::insert_event(
            tx.conn(),
            tenant,
            member,
            "tier_changed",
            &json!({"from": recorded, "to": tier, "direction": direction, "tier_spend_minor": spend}),
            now,
        )
        .await
        .map_err(|e| e.to_string())?;
        book.balance.tier_code = tier;
    }
    book.save(&mut tx).await.map_err(fail)?;
    tx.commit().await.map_err(|e| e.to_string())?;
    // Points or tier may have moved: update the member's wallet passes, if any were issued.
    crate::services::cards::refresh(state, tenant, member).await.map_err(|e| e.message)?;
    Ok(())
}

/// Tiers also fall with time, as old receipts leave the rolling window. Every hour,
/// re-check the members who had a receipt at the window's trailing edge since `since`
/// (the job's due time less a margin, so a worker that was down catches up; checking
/// twice is harmless). Receipts, refunds and cancels queue their own member's check, and
/// a programme change queues a full sweep.
pub async fn sweep(state: &AppState, tenant: &str, since: i64) -> Result<(), String> {
    let now = now_s();
    let ids = {
        let mut c = state.db.pool().acquire().await.map_err(|e| e.to_string())?;
        let (_, program) = crate::services::program::load(&mut c, tenant).await.map_err(|e| e.message)?;
        let window = program.tier_window_days * 86_400;
        receipts::members_with_receipts_between(&mut c, tenant, since - window, now + 1 - window).await.map_err(|e| e.to_string())?
    };
    for id in ids {
        check_member(state, tenant, &id).await?;
    }
    Ok(())
}

/// Re-check every member of the tenant (after the tiers themselves changed).
pub async fn sweep_all(state: &AppState, tenant: &str) -> Result<(), String> {
    let ids = {
        let mut c = state.db.pool().acquire().await.map_err(|e| e.to_string())?;
        members::all_ids(&mut c, tenant).await.map_err(|e| e.to_string())?
    };
    for id in ids {
        check_member(state, tenant, &id).await?;
    }
    Ok(())
}
