//! The points ledger's rules over its rows: lots (one per credit, each with its own
//! expiry), consumptions (which lot paid what), holds, debt, and the member-visible
//! entries. Every function works inside the caller's transaction on a member whose
//! balance row the caller has locked, and keeps the balance projection in step:
//!
//! - `points` = Σ remaining of available lots + held points (held points are out of
//!   their lots but still the member's);
//! - `pending` = Σ remaining of pending lots;
//! - Σ entries = points + pending − debt.

use super::Fallible;
use chrono::{DateTime, Utc};
use kopilka_domain::expiry::expires_at;
use kopilka_domain::program::Program;
use kopilka_store::ledger::{self, Balance, Consumption, Entry, Lot};
use kopilka_store::{Tx, new_id};

/// A locked member's book for one transaction.
pub struct Book<'p> {
    pub tenant: String,
    pub balance: Balance,
    pub program: &'p Program,
    pub now: i64,
    /// `next_due_at` as the balance row holds it, so that saving can leave it be.
    stored_due: Option<i64>,
}

/// A new lot for [`Book::credit`]: where its points come from (`source` and `ref_id`: a
/// receipt, an adjustment, a transfer, a bonus, an import), when they become available
/// and expire, and whether they first pay off the member's debt (earnings do).
#[derive(Debug, Clone, Copy)]
pub struct Credit<'a> {
    pub source: &'a str,
    pub ref_id: Option<&'a str>,
    pub points: i64,
    pub available_at: i64,
    pub expires_at: Option<i64>,
    pub pays_debt: bool,
}

/// What an entry refers to.
#[derive(Default, Clone)]
pub struct EntryRef {
    pub receipt_id: Option<String>,
    pub reason: Option<String>,
    pub ref_id: Option<String>,
}

impl<'p> Book<'p> {
    /// Lock the member's balance row and bring it up to `now` (release due holds and
    /// pending lots, expire due lots). None when the member has no balance row.
    pub async fn open(tx: &mut Tx, tenant: &str, member: &str, program: &'p Program, now: i64) -> Fallible<Option<Book<'p>>> {
        let Some(balance) = ledger::lock_balance(tx, tenant, member).await? else {
            return Ok(None);
        };
        let mut book = Book::new(tenant, balance, program, now);
        book.settle(tx).await?;
        Ok(Some(book))
    }

    /// A book over `balance` as read from its row (not locked, not settled).
    pub fn new(tenant: &str, balance: Balance, program: &'p Program, now: i64) -> Book<'p> {
        let stored_due = balance.next_due_at;
        Book { tenant: tenant.to_owned(), balance, program, now, stored_due }
    }

    pub fn member_id(&self) -> &str {
        &self.balance.member_id
    }

    /// Points free to spend: available lots, less the minimum balance when asked.
    pub fn available(&self, min_balance: i64) -> i64 {
        (self.balance.points - self.balance.held - min_balance).max(0)
    }

    /// Bring the book up to `now`: ended holds go back to their lots, pending lots whose
    /// time has come become available, and lots past their expiry expire.
    pub async fn settle(&mut self, tx: &mut Tx) -> Fallible<()> {
        if self.balance.next_due_at.is_none_or(|t| t > self.now) {
            return Ok(());
        }
        for hold in ledger::holds_to_release(tx.conn(), &self.tenant, &self.balance.member_id, self.now).await? {
            self.release_hold(tx, &hold, "expired").await?;
        }
        for mut lot in ledger::lots_to_release(tx.conn(), &self.tenant, &self.balance.member_id, self.now).await? {
            self.balance.pending -= lot.points_remaining;
            self.balance.points += lot.points_remaining;
            lot.is_pending = false;
            ledger::update_lot(tx.conn(), &self.tenant, &lot.id, lot.points_remaining, false).await?;
        }
        for lot in ledger::lots_to_expire(tx.conn(), &self.tenant, &self.balance.member_id, self.now).await? {
            self.expire_lot(tx, &lot, lot.points_remaining).await?;
        }
        Ok(())
    }

    /// Expire `points` of an available lot now: a consumption, an `expire` entry dated
    /// at the lot's expiry.
    async fn expire_lot(&mut self, tx: &mut Tx, lot: &Lot, points: i64) -> Fallible<()> {
        if points <= 0 {
            return Ok(());
        }
        let seq = self.balance.next_seq();
        ledger::insert_consumption(
            tx.conn(),
            &self.tenant,
            &Consumption {
                id: new_id(),
                member_id: self.balance.member_id.clone(),
                lot_id: lot.id.clone(),
                kind: "expire".into(),
                ref_id: lot.id.clone(),
                points,
                returned: 0,
                seq,
                created_at: self.now,
            },
        )
        .await?;
        let current = ledger::lot(tx.conn(), &self.tenant, &lot.id).await?.map(|l| l.points_remaining).unwrap_or(0);
        ledger::update_lot(tx.conn(), &self.tenant, &lot.id, current - points, false).await?;
        self.balance.points -= points;
        let at = lot.expires_at.unwrap_or(self.now).min(self.now);
        self.entry(tx, "expire", -points, at, EntryRef { ref_id: Some(lot.id.clone()), ..Default::default() }).await
    }

    /// Append a member-visible entry in posting order.
    pub async fn entry(&mut self, tx: &mut Tx, kind: &str, points: i64, occurred_at: i64, r: EntryRef) -> Fallible<()> {
        let seq = self.balance.next_seq();
        ledger::post_entry(
            tx,
            &self.tenant,
            Entry {
                member_id: self.balance.member_id.clone(),
                seq,
                id: new_id(),
                kind: kind.into(),
                points,
                created_at: self.now,
                occurred_at,
                receipt_id: r.receipt_id,
                reason: r.reason,
                ref_id: r.ref_id,
            },
        )
        .await?;
        Ok(())
    }

    /// Take `points` from available lots, soonest-expiring first, recording consumptions
    /// of `kind` for `ref_id`. The caller has checked availability. A `hold` keeps the
    /// points in `points` and counts them in `held`; other kinds remove them.
    pub async fn consume(&mut self, tx: &mut Tx, points: i64, kind: &str, ref_id: &str) -> Fallible<Vec<Consumption>> {
        let mut left = points;
        let mut out = Vec::new();
        if left <= 0 {
            return Ok(out);
        }
        for lot in ledger::spendable_lots(tx.conn(), &self.tenant, &self.balance.member_id, self.now).await? {
            if left == 0 {
                break;
            }
            let take = left.min(lot.points_remaining);
            out.push(self.take_from(tx, &lot, take, kind, ref_id).await?);
            left -= take;
        }
        assert!(left == 0, "consume: availability was checked by the caller");
        if kind == "hold" {
            self.balance.held += points;
        } else {
            self.balance.points -= points;
        }
        Ok(out)
    }

    async fn take_from(&mut self, tx: &mut Tx, lot: &Lot, take: i64, kind: &str, ref_id: &str) -> Fallible<Consumption> {
        let seq = self.balance.next_seq();
        let c = Consumption {
            id: new_id(),
            member_id: self.balance.member_id.clone(),
            lot_id: lot.id.clone(),
            kind: kind.into(),
            ref_id: ref_id.into(),
            points: take,
            returned: 0,
            seq,
            created_at: self.now,
        };
        ledger::insert_consumption(tx.conn(), &self.tenant, &c).await?;
        ledger::update_lot(tx.conn(), &self.tenant, &lot.id, lot.points_remaining - take, lot.is_pending).await?;
        Ok(c)
    }

    /// Give back up to `points` of a reference's consumptions of `kind`, newest first, to
    /// the lots they came from. Points that land in an expired lot expire at once.
    /// `held` says the consumptions were a hold (their points never left `points`).
    /// When `entry` is given, an entry of that kind for the points given back is written
    /// before any expiry it causes. Returns the points given back.
    pub async fn give_back(
        &mut self,
        tx: &mut Tx,
        ref_id: &str,
        kind: &str,
        points: i64,
        held: bool,
        entry: Option<(&str, i64, EntryRef)>,
    ) -> Fallible<i64> {
        let mut left = points;
        let mut cons = ledger::consumptions(tx.conn(), &self.tenant, ref_id, kind).await?;
        cons.reverse();
        let mut expired_back: Vec<(Lot, i64)> = Vec::new();
        for c in cons {
            if left == 0 {
                break;
            }
            let open = c.points - c.returned;
            if open <= 0 {
                continue;
            }
            let r = left.min(open);
            ledger::set_consumption_returned(tx.conn(), &self.tenant, &c.id, c.returned + r).await?;
            let lot = ledger::lot(tx.conn(), &self.tenant, &c.lot_id).await?.expect("consumption's lot exists");
            ledger::update_lot(tx.conn(), &self.tenant, &lot.id, lot.points_remaining + r, lot.is_pending).await?;
            if held {
                self.balance.held -= r;
            } else if lot.is_pending {
                self.balance.pending += r;
            } else {
                self.balance.points += r;
            }
            if !lot.is_pending && lot.expires_at.is_some_and(|e| e <= self.now) {
                expired_back.push((lot, r));
            }
            left -= r;
        }
        let given = points - left;
        if let Some((kind, occurred_at, r)) = entry
            && given > 0
        {
            self.entry(tx, kind, given, occurred_at, r).await?;
        }
        for (lot, r) in expired_back {
            self.expire_lot(tx, &lot, r).await?;
        }
        Ok(given)
    }

    /// End a hold: its points go back to their lots (expiring at once where the lot has
    /// expired meanwhile), the held receipt is deleted so its ids may be used again.
    pub async fn release_hold(&mut self, tx: &mut Tx, hold: &ledger::Hold, status: &str) -> Fallible<()> {
        self.give_back(tx, &hold.receipt_pk, "hold", hold.points, true, None).await?;
        ledger::end_hold(tx.conn(), &self.tenant, &hold.id, status, self.now).await?;
        super::offers::release_held(tx, &self.tenant, &hold.receipt_pk, Some(&self.balance.member_id), self.now).await?;
        kopilka_store::receipts::delete_held(tx.conn(), &self.tenant, &hold.receipt_pk).await?;
        Ok(())
    }

    /// The expiry of points that become available at `available_at`.
    pub fn expiry_for(&self, available_at: i64) -> Option<i64> {
        expiry_for(self.program, available_at)
    }

    /// Credit a new lot. Earnings (`pays_debt`) first pay off debt. Pending until
    /// `available_at` when that is in the future. Returns the lot and the debt paid.
    pub async fn credit(&mut self, tx: &mut Tx, c: Credit<'_>) -> Fallible<(Lot, i64)> {
        let Credit { source, ref_id, points, available_at, expires_at: expires, pays_debt } = c;
        let seq = self.balance.next_seq();
        let is_pending = available_at > self.now;
        let mut lot = Lot {
            id: new_id(),
            member_id: self.balance.member_id.clone(),
            source: source.into(),
            ref_id: ref_id.map(str::to_owned),
            points_initial: points,
            points_remaining: points,
            is_pending,
            available_at,
            expires_at: expires,
            seq,
            created_at: self.now,
        };
        ledger::insert_lot(tx.conn(), &self.tenant, &lot).await?;
        let paid = if pays_debt { self.balance.debt.min(points) } else { 0 };
        if paid > 0 {
            let c = self.take_from(tx, &lot, paid, "debt", &lot.id.clone()).await?;
            debug_assert_eq!(c.points, paid);
            lot.points_remaining -= paid;
            self.balance.debt -= paid;
        }
        if is_pending {
            self.balance.pending += lot.points_remaining;
        } else {
            self.balance.points += lot.points_remaining;
            if lot.expires_at.is_some_and(|e| e <= self.now) {
                // Back-dated credit whose expiry has already passed.
                let left = lot.points_remaining;
                self.expire_lot(tx, &lot, left).await?;
                lot.points_remaining = 0;
            }
        }
        Ok((lot, paid))
    }

    /// Take back up to `points` for a refund or void: first from `first_lot` (the
    /// receipt's own lot, pending or available), then from the member's other lots,
    /// soonest-expiring first. Held points are never taken. Returns the points taken.
    pub async fn take_back(&mut self, tx: &mut Tx, points: i64, first_lot: Option<&str>, ref_id: &str) -> Fallible<i64> {
        let mut left = points;
        let mut lots = ledger::reversible_lots(tx.conn(), &self.tenant, &self.balance.member_id, self.now).await?;
        if let Some(first) = first_lot
            && let Some(i) = lots.iter().position(|l| l.id == first)
        {
            let own = lots.remove(i);
            lots.insert(0, own);
        }
        for lot in lots {
            if left == 0 {
                break;
            }
            let take = left.min(lot.points_remaining);
            self.take_from(tx, &lot, take, "reverse", ref_id).await?;
            if lot.is_pending {
                self.balance.pending -= take;
            } else {
                self.balance.points -= take;
            }
            left -= take;
        }
        Ok(points - left)
    }

    /// Undo the debt payments made from a lot (a voided receipt's earnings owe the debt
    /// again). Returns the points put back into the lot.
    pub async fn unpay_debt(&mut self, tx: &mut Tx, lot_id: &str) -> Fallible<i64> {
        let mut back = 0;
        for c in ledger::consumptions(tx.conn(), &self.tenant, lot_id, "debt").await? {
            let open = c.points - c.returned;
            if open <= 0 {
                continue;
            }
            ledger::set_consumption_returned(tx.conn(), &self.tenant, &c.id, c.points).await?;
            let lot = ledger::lot(tx.conn(), &self.tenant, lot_id).await?.expect("lot exists");
            ledger::update_lot(tx.conn(), &self.tenant, lot_id, lot.points_remaining + open, lot.is_pending).await?;
            if lot.is_pending {
                self.balance.pending += open;
            } else {
                self.balance.points += open;
            }
            self.balance.debt += open;
            back += open;
        }
        Ok(back)
    }

    /// Write the balance projection back, with its next due time.
    pub async fn save(mut self, tx: &mut Tx) -> Fallible<Balance> {
        assert!(
            self.balance.points >= 0 && self.balance.pending >= 0 && self.balance.held >= 0 && self.balance.debt >= 0,
            "balance went negative: {:?}",
            self.balance
        );
        assert!(self.balance.held <= self.balance.points, "held exceeds points: {:?}", self.balance);
        self.balance.next_due_at = ledger::next_due(tx.conn(), &self.tenant, &self.balance.member_id).await?;
        self.balance.updated_at = self.now;
        let due_changed = self.balance.next_due_at != self.stored_due;
        ledger::save_balance(tx.conn(), &self.tenant, &self.balance, due_changed).await?;
        Ok(self.balance)
    }
}

/// The expiry, under `program`, of points that become available at `available_at`.
pub fn expiry_for(program: &Program, available_at: i64) -> Option<i64> {
    let at = DateTime::<Utc>::from_timestamp(available_at, 0).unwrap_or_default();
    expires_at(&program.expiry, at, program.tz()).map(|t| t.timestamp())
}

/// The balance as the API shows it.
/// A balance as answers show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BalanceFigures {
    pub points: i64,
    pub held: i64,
    pub pending: i64,
    pub debt: i64,
}

impl From<&Balance> for BalanceFigures {
    fn from(b: &Balance) -> Self {
        BalanceFigures { points: b.points, held: b.held, pending: b.pending, debt: b.debt }
    }
}

pub fn balance_json(b: &Balance) -> serde_json::Value {
    serde_json::json!({"points": b.points, "held": b.held, "pending": b.pending, "debt": b.debt})
}
