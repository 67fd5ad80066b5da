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

pub fn fail(f: crate::services::Failure) -> String {
    match f {
        crate::services::Failure::Api(e) => e.message,
        crate::services::Failure::Store(e) => e.to_string(),
    }
}
