//! Expiry, pending release and hold expiry: every member with something due is brought
//! up to date. Reads settle lazily too, so balances are right even without this job; the
//! job makes the ledger show expiries without anyone asking.

use crate::services::ledger::Book;
use crate::state::AppState;
use kopilka_store::{ledger, now_s};

pub async fn sweep(state: &AppState, tenant: &str) -> Result<(), String> {
    let (_, program) = {
        let mut c = state.db.pool().acquire().await.map_err(|e| e.to_string())?;
        crate::services::program::load(&mut c, tenant).await.map_err(|e| e.message)?
    };
    release_anonymous_holds(state, tenant).await?;
    {
        // Unconfirmed enrolments, one-time codes and spent QR steps are kept a day past
        // their expiry, then forgotten (they hold contacts or only guard replays).
        let mut c = state.db.pool().acquire().await.map_err(|e| e.to_string())?;
        kopilka_store::cards::purge_expired(&mut c, tenant, now_s() - 86_400).await.map_err(|e| e.to_string())?;
    }
    for _ in 0..100 {
        let now = now_s();
        let due = {
            let mut c = state.db.pool().acquire().await.map_err(|e| e.to_string())?;
            ledger::members_due(&mut c, tenant, now, 200).await.map_err(|e| e.to_string())?
        };
        if due.is_empty() {
            return Ok(());
        }
        for member in due {
            let mut tx = state.db.begin().await.map_err(|e| e.to_string())?;
            if let Some(book) = Book::open(&mut tx, tenant, &member, &program, now).await.map_err(fail)? {
                book.save(&mut tx).await.map_err(fail)?;
            }
            tx.commit().await.map_err(|e| e.to_string())?;
            // Expired or released points change what a wallet pass shows.
            crate::services::cards::refresh(state, tenant, &member).await.map_err(|e| e.message)?;
        }
    }
    Ok(())
}

/// Anonymous reserves have no member's book to settle them: release the expired ones here,
/// with what their campaigns held (coupon uses, budget).
async fn release_anonymous_holds(state: &AppState, tenant: &str) -> Result<(), String> {
    let now = now_s();
    let due = {
        let mut c = state.db.pool().acquire().await.map_err(|e| e.to_string())?;
        ledger::holds_to_release(&mut c, tenant, "", now).await.map_err(|e| e.to_string())?
    };
    for hold in due.into_iter().take(1000) {
        let mut tx = state.db.begin().await.map_err(|e| e.to_string())?;
        let Some(r) = kopilka_store::receipts::by_pk(tx.conn(), tenant, &hold.receipt_pk).await.map_err(|e| e.to_string())? else {
            ledger::end_hold(tx.conn(), tenant, &hold.id, "expired", now).await.map_err(|e| e.to_string())?;
            tx.commit().await.map_err(|e| e.to_string())?;
            continue;
        };
        // Lock the receipt, then look again: a till may have checked it out meanwhile.
        let locked = kopilka_store::receipts::by_key_locked(&mut tx, tenant, &r.store_id, &r.till_id, &r.receipt_id)
            .await
            .map_err(|e| e.to_string())?;
        let still = ledger::hold(tx.conn(), tenant, &hold.id)
            .await
            .map_err(|e| e.to_string())?
            .is_some_and(|h| h.status == "held" && h.expires_at <= now);
        if locked.is_some_and(|x| x.status == "held" && x.id == hold.receipt_pk) && still {
            ledger::end_hold(tx.conn(), tenant, &hold.id, "expired", now).await.map_err(|e| e.to_string())?;
            crate::services::offers::release_held(&mut tx, tenant, &hold.receipt_pk, None, now).await.map_err(fail)?;
            kopilka_store::receipts::delete_held(tx.conn(), tenant, &hold.receipt_pk).await.map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn fail(f: crate::services::Failure) -> String {
    match f {
        crate::services::Failure::Api(e) => e.message,
        crate::services::Failure::Store(e) => e.to_string(),
    }
}
