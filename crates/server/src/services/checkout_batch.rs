//! The group commit's set-based path for checkouts ([`super::group_commit`]).
//!
//! A batch's plain checkouts are computed together: their receipts, members, balances,
//! tier spends and lots are read with one statement each (`kopilka_store::batch`), every
//! receipt is decided in memory by the same code as the per-receipt path
//! ([`super::offers::decide`], the ledger's spending order and posting sequence), and
//! their rows are written with one multi-row statement per table.
//!
//! Only the common case goes this way. A checkout takes the per-receipt path
//! ([`super::pos`]) whenever anything about it needs more than that case does: an
//! existing receipt id (replay, conflict, a reserve to commit), a coupon, the cashback
//! wallet, a one-time code or QR token, a proof the programme asks for to spend, a store
//! or member that is not found, a book with something due (holds, pending lots,
//! expiries to settle), debt, a back-dated receipt that has already expired, campaigns
//! that read the member's history or have a budget, a business error (the per-receipt
//! path answers it), or a second receipt of the same member or receipt id in the batch.
//! The per-receipt path runs after this one in the same transaction, so it sees what
//! this path wrote. `tests/api/group_commit.rs` proves both paths write the same rows and
//! answer the same.

use super::ledger::{balance_json, expiry_for};
use super::pos::{self, MemberRef, PosRequest};
use super::{Fallible, offers};
use crate::auth::Auth;
use crate::state::AppState;
use kopilka_domain::program::RedeemAuth;
use kopilka_domain::receipt::RedeemRequest;
use kopilka_domain::tiers::tier_for_spend;
use kopilka_store::ledger::{Balance, Consumption, Entry, Lot};
use kopilka_store::members::{By, Member};
use kopilka_store::receipts::{Line, Receipt};
use kopilka_store::tenants::Store;
use kopilka_store::{Tx, batch, jobs, ledger, new_id, now_s, tenants};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A checkout that may take this path.
#[derive(Clone)]
pub struct Candidate {
    pub state: AppState,
    pub auth: Auth,
    pub req: Arc<PosRequest>,
}

/// Whether a request's shape allows this path at all (before anything is read).
pub fn shaped(req: &PosRequest) -> bool {
    let member_ok = match &req.member {
        None => true,
        Some(MemberRef::Card(v)) | Some(MemberRef::Phone(v)) | Some(MemberRef::Id(v)) => !v.contains('\0'),
        Some(MemberRef::QrToken(_)) => false,
    };
    member_ok
        && req.coupons.is_empty()
        && matches!(req.wallet, RedeemRequest::None)
        && req.otp.is_none()
        && !kopilka_store::has_nul(&[&req.store_id, &req.till_id, &req.receipt_id])
}

/// One receipt being computed.
struct Item {
    /// Index into the candidates.
    at: usize,
    req: Arc<PosRequest>,
    member: Option<Member>,
}

/// What one receipt writes.
#[derive(Default)]
struct Writes {
    receipts: Vec<Receipt>,
    lines: Vec<(String, Line)>,
    lots: Vec<Lot>,
    consumptions: Vec<Consumption>,
    lot_updates: Vec<(String, i64)>,
    balances: Vec<Balance>,
    /// Per balance: whether its `next_due_at` differs from the stored one.
    due_changed: Vec<bool>,
    /// Members whose next due time must be read back after the writes.
    recheck_due: Vec<String>,
    records: Vec<kopilka_store::campaigns::ReceiptCampaign>,
}

/// Check out, in `tx`, every candidate (all of `tenant`) that this path can take. Returns
/// each candidate's answer, or None for those left to the per-receipt path. An error
/// means the caller must undo what this wrote (it rolls the transaction back) and send
/// every candidate the per-receipt way.
pub async fn run(tx: &mut Tx, state: &AppState, tenant: &str, cands: &[Candidate]) -> Fallible<Vec<Option<Value>>> {
    let now = now_s();
    let mut out: Vec<Option<Value>> = vec![None; cands.len()];

    // Shape, and one receipt per receipt key and per member reference.
    let mut keys = HashSet::new();
    let mut refs = HashSet::new();
    let mut items: Vec<Item> = Vec::with_capacity(cands.len());
    for (at, c) in cands.iter().enumerate() {
        let r = &c.req;
        if c.auth.tenant_id != tenant || !shaped(r) {
            continue;
        }
        if !keys.insert((r.store_id.clone(), r.till_id.clone(), r.receipt_id.clone())) {
            continue;
        }
        if let Some(m) = &r.member
            && !refs.insert(m.clone())
        {
            continue;
        }
        items.push(Item { at, req: r.clone(), member: None });
    }
    if items.is_empty() {
        return Ok(out);
    }

    // Receipt ids already used (replays, conflicts, reserves) go the per-receipt way.
    let key_refs: Vec<(&str, &str, &str)> =
        items.iter().map(|i| (i.req.store_id.as_str(), i.req.till_id.as_str(), i.req.receipt_id.as_str())).collect();
    let existing = batch::existing_receipts(tx.conn(), tenant, &key_refs).await?;
    items.retain(|i| !existing.contains(&(i.req.store_id.clone(), i.req.till_id.clone(), i.req.receipt_id.clone())));

    // Stores.
    let mut stores: HashMap<String, Store> = HashMap::new();
    for i in &items {
        if !stores.contains_key(&i.req.store_id)
            && let Some(s) = tenants::store_by_id(tx.conn(), tenant, &i.req.store_id).await?
        {
            stores.insert(s.id.clone(), s);
        }
    }
    items.retain(|i| stores.contains_key(&i.req.store_id));

    // Members, one statement per kind of reference; then one receipt per member.
    for (by, pick) in [(By::Card, 0), (By::Phone, 1), (By::Id, 2)] {
        let values: Vec<&str> = items.iter().filter_map(|i| ref_value(i.req.member.as_ref(), pick)).collect();
        if values.is_empty() {
            continue;
        }
        let found = batch::members_by(tx.conn(), tenant, by, &values).await?;
        let index: HashMap<&str, &Member> = found
            .iter()
            .filter_map(|m| {
                let k = match by {
                    By::Card => Some(m.card_number.as_str()),
                    By::Phone => m.phone.as_deref(),
                    _ => Some(m.id.as_str()),
                };
                k.map(|k| (k, m))
            })
            .collect();
        for i in items.iter_mut() {
            if let Some(v) = ref_value(i.req.member.as_ref(), pick) {
                i.member = index.get(v).map(|m| (*m).clone());
            }
        }
    }
    let mut seen = HashSet::new();
    items.retain(|i| match (&i.req.member, &i.member) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(_), Some(m)) => seen.insert(m.id.clone()),
    });

    // The product catalogue names the category of lines sent without one.
    let skus: Vec<&str> = items
        .iter()
        .flat_map(|i| i.req.lines.iter())
        .filter(|l| l.category.is_none())
        .filter_map(|l| l.sku.as_deref())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !skus.is_empty() {
        let cats: HashMap<String, String> =
            kopilka_store::campaigns::product_categories(tx.conn(), tenant, &skus).await?.into_iter().collect();
        if !cats.is_empty() {
            for i in items.iter_mut() {
                if i.req.lines.iter().any(|l| l.category.is_none() && l.sku.as_ref().is_some_and(|s| cats.contains_key(s))) {
                    let mut r = (*i.req).clone();
                    for l in &mut r.lines {
                        if l.category.is_none()
                            && let Some(c) = l.sku.as_ref().and_then(|s| cats.get(s))
                        {
                            l.category = Some(c.clone());
                        }
                    }
                    i.req = Arc::new(r);
                }
            }
        }
    }
    if items.is_empty() {
        return Ok(out);
    }

    // The programme (a change waits for these receipts, and they for it) and campaigns.
    tenants::lock_tenant(tx, tenant, false).await?;
    let (version, program) = super::program::current(state, tx.conn(), tenant).await?;
    let set = super::campaigns::current(state, tx.conn(), tenant).await?;

    // Rules the per-receipt path answers with an error, and spending that needs a proof.
    items.retain(|i| {
        let r = &i.req;
        let occurred_at = r.occurred_at.unwrap_or(now);
        let in_range = occurred_at >= now - program.offline_max_age_days * 86_400 && occurred_at <= now + 300;
        let spends = matches!(r.redeem, RedeemRequest::Max) || matches!(r.redeem, RedeemRequest::Points(n) if n > 0);
        in_range && !(spends && (i.member.is_none() || program.redeem.auth != RedeemAuth::None))
    });

    // Balances, locked in member id order; a book with something due is settled by the
    // per-receipt path.
    let member_ids: Vec<&str> = items.iter().filter_map(|i| i.member.as_ref().map(|m| m.id.as_str())).collect();
    let mut books: HashMap<String, Balance> = if member_ids.is_empty() {
        HashMap::new()
    } else {
        batch::lock_balances(tx, tenant, &member_ids).await?.into_iter().map(|b| (b.member_id.clone(), b)).collect()
    };
    items.retain(|i| match &i.member {
        None => true,
        Some(m) => books.get(&m.id).is_some_and(|b| b.next_due_at.is_none_or(|t| t > now) && b.debt == 0),
    });

    // Tier spends.
    let windows: Vec<(usize, (&str, i64, i64))> = items
        .iter()
        .enumerate()
        .filter_map(|(k, i)| {
            let m = i.member.as_ref()?;
            let at = i.req.occurred_at.unwrap_or(now);
            Some((k, (m.id.as_str(), at - program.tier_window_days * 86_400, at)))
        })
        .collect();
    let mut spend = vec![0i64; items.len()];
    if !program.tiers.is_empty() && !windows.is_empty() {
        let w: Vec<(&str, i64, i64)> = windows.iter().map(|(_, w)| *w).collect();
        for ((k, _), s) in windows.iter().zip(batch::tier_spends(tx.conn(), tenant, &w).await?) {
            spend[*k] = s;
        }
    }

    // Lots of the members who spend.
    let spenders: Vec<&str> = items
        .iter()
        .filter(|i| !matches!(i.req.redeem, RedeemRequest::None | RedeemRequest::Points(0)))
        .filter_map(|i| i.member.as_ref().map(|m| m.id.as_str()))
        .collect();
    let mut lots = if spenders.is_empty() { HashMap::new() } else { batch::spendable_lots(tx.conn(), tenant, &spenders, now).await? };

    // Decide every receipt in memory.
    let mut w = Writes::default();
    for (k, i) in items.iter().enumerate() {
        let req = &*i.req;
        let store = &stores[&req.store_id];
        let occurred_at = req.occurred_at.unwrap_or(now);
        let tier = i.member.as_ref().and_then(|_| tier_for_spend(&program.tiers, spend[k]));
        let tier_code = tier.map(|t| t.code.clone());
        let sale = offers::Sale { req, member: i.member.as_ref(), store, program: &program, tier: tier_code.as_deref(), at: occurred_at };
        let Some(prepared) = offers::prepare_pure(&set, &sale) else {
            continue;
        };
        let book = i.member.as_ref().and_then(|m| books.get(&m.id));
        let available = book.map(|b| (b.points - b.held - program.redeem.min_balance).max(0)).unwrap_or(0);
        let Ok(decision) = offers::decide(&sale, tier, &prepared, available, 0) else {
            continue;
        };
        let mut calc = decision.calc;
        if calc.cashback_minor > 0 || calc.wallet_minor > 0 {
            continue;
        }
        if i.member.is_none() {
            calc.points_earned = 0;
            for l in &mut calc.lines {
                l.points_earned = 0;
            }
        }
        let available_at = pos::earn_available_at(occurred_at, program.pending_days, now);
        let expires_at = i.member.as_ref().and_then(|_| expiry_for(&program, available_at));
        let pending = available_at > now;
        if calc.points_earned > 0 && !pending && expires_at.is_some_and(|e| e <= now) {
            // A back-dated lot that has already expired posts an expiry too.
            continue;
        }
        let Some(records) = offers::plain_records(&set, &decision.records, "", "committed", now) else {
            continue;
        };
        let member_lots = i.member.as_ref().map(|m| lots.remove(&m.id).unwrap_or_default()).unwrap_or_default();
        if calc.points_redeemed > 0 && member_lots.iter().map(|l| l.points_remaining).sum::<i64>() < calc.points_redeemed {
            continue;
        }

        // From here on the receipt takes this path.
        let pk = new_id();
        let points_pending = if pending { calc.points_earned } else { 0 };
        let member_id = i.member.as_ref().map(|m| m.id.as_str());
        let priced = pos::Priced { req, member_id, tier: tier_code.as_deref(), version, calc: &calc };
        let mut receipt = pos::new_receipt(&priced, &pk, "committed", occurred_at, &Value::Null, None, now);
        receipt.committed_at = Some(now);
        let balance = match &i.member {
            None => Value::Null,
            Some(m) => {
                let mut b = books.remove(&m.id).expect("a member's book was read");
                let stored_due = b.next_due_at;
                let mut recheck = false;
                if calc.points_redeemed > 0 {
                    let mut left = calc.points_redeemed;
                    for lot in &member_lots {
                        if left == 0 {
                            break;
                        }
                        let take = left.min(lot.points_remaining);
                        let seq = b.next_seq();
                        w.consumptions.push(Consumption {
                            id: new_id(),
                            member_id: m.id.clone(),
                            lot_id: lot.id.clone(),
                            kind: "redeem".into(),
                            ref_id: pk.clone(),
                            points: take,
                            returned: 0,
                            seq,
                            created_at: now,
                        });
                        w.lot_updates.push((lot.id.clone(), lot.points_remaining - take));
                        // An emptied lot may have been the one whose expiry was next due.
                        recheck |= lot.points_remaining == take && lot.expires_at.is_some() && lot.expires_at == b.next_due_at;
                        left -= take;
                    }
                    b.points -= calc.points_redeemed;
                    entry(tx, tenant, &mut b, "redeem", -calc.points_redeemed, &Posting { req, pk: &pk, occurred_at, now }).await?;
                }
                if calc.points_earned > 0 {
                    let p = calc.points_earned;
                    entry(tx, tenant, &mut b, "earn", p, &Posting { req, pk: &pk, occurred_at, now }).await?;
                    let seq = b.next_seq();
                    let lot = Lot {
                        id: new_id(),
                        member_id: m.id.clone(),
                        source: "receipt".into(),
                        ref_id: Some(pk.clone()),
                        points_initial: p,
                        points_remaining: p,
                        is_pending: pending,
                        available_at,
                        expires_at,
                        seq,
                        created_at: now,
                    };
                    let due = if pending { Some(available_at) } else { expires_at };
                    b.next_due_at = match (b.next_due_at, due) {
                        (Some(a), Some(d)) => Some(a.min(d)),
                        (a, d) => a.or(d),
                    };
                    if pending {
                        b.pending += p;
                    } else {
                        b.points += p;
                    }
                    b.lifetime_earned += p;
                    receipt.earn_lot_id = Some(lot.id.clone());
                    w.lots.push(lot);
                }
                b.updated_at = now;
                debug_assert!(b.points >= 0 && b.pending >= 0 && b.held >= 0 && b.held <= b.points);
                if recheck {
                    w.recheck_due.push(m.id.clone());
                }
                jobs::enqueue_in(tx, tenant, "tier", &m.id, now).await?;
                let json = balance_json(&b);
                w.due_changed.push(recheck || b.next_due_at != stored_due);
                w.balances.push(b);
                json
            }
        };
        let offers_json = (decision.applied.as_slice(), decision.not_applied.as_slice());
        let ans = pos::answer(&priced, "committed", points_pending, balance, offers_json);
        receipt.answer = ans.to_string();
        w.records.extend(records.into_iter().map(|mut r| {
            r.receipt_pk = pk.clone();
            r
        }));
        w.lines.extend(pos::lines_for_store(req, &calc).into_iter().map(|l| (pk.clone(), l)));
        w.receipts.push(receipt);
        out[i.at] = Some(ans);
    }
    write(tx, tenant, w).await?;
    Ok(out)
}

/// The value of a member reference of kind `pick` (0 card, 1 phone, 2 id).
fn ref_value(r: Option<&MemberRef>, pick: u8) -> Option<&str> {
    match (r, pick) {
        (Some(MemberRef::Card(v)), 0) | (Some(MemberRef::Phone(v)), 1) | (Some(MemberRef::Id(v)), 2) => Some(v),
        _ => None,
    }
}

/// The receipt a batch's entries belong to, and its times.
struct Posting<'a> {
    req: &'a PosRequest,
    pk: &'a str,
    occurred_at: i64,
    now: i64,
}

/// A member-visible entry (deferred to the commit, like the per-receipt path's).
async fn entry(tx: &mut Tx, tenant: &str, b: &mut Balance, kind: &str, points: i64, r: &Posting<'_>) -> Fallible<()> {
    let Posting { req, pk, occurred_at, now } = *r;
    let seq = b.next_seq();
    let e = Entry {
        member_id: b.member_id.clone(),
        seq,
        id: new_id(),
        kind: kind.into(),
        points,
        created_at: now,
        occurred_at,
        receipt_id: Some(req.receipt_id.clone()),
        reason: None,
        ref_id: Some(pk.to_owned()),
    };
    ledger::post_entry(tx, tenant, e).await?;
    Ok(())
}

/// Write a batch's rows, one statement per table.
async fn write(tx: &mut Tx, tenant: &str, mut w: Writes) -> Fallible<()> {
    if w.receipts.is_empty() {
        return Ok(());
    }
    let c = tx.conn();
    // The receipts first: a receipt id taken meanwhile by another lane fails there,
    // before anything else is written.
    let mut s = batch::Script::new(c);
    batch::add_receipts(&mut s, tenant, &w.receipts);
    let lines: Vec<(&str, &Line)> = w.lines.iter().map(|(pk, l)| (pk.as_str(), l)).collect();
    batch::add_lines(&mut s, tenant, &lines);
    let updates: Vec<(&str, i64)> = w.lot_updates.iter().map(|(id, n)| (id.as_str(), *n)).collect();
    if !w.consumptions.is_empty() {
        batch::add_consumptions(&mut s, tenant, &w.consumptions);
        batch::add_lots_remaining(&mut s, tenant, &updates);
    }
    if !w.lots.is_empty() {
        batch::add_lots(&mut s, tenant, &w.lots);
    }
    if !w.recheck_due.is_empty() {
        // The next due time is read back from the lots just written.
        s.run(c).await?;
        for m in &w.recheck_due {
            let due = ledger::next_due(c, tenant, m).await?;
            if let Some(k) = w.balances.iter().position(|b| b.member_id == *m) {
                w.balances[k].next_due_at = due;
                w.due_changed[k] = true;
            }
        }
        s = batch::Script::new(c);
    }
    for changed in [true, false] {
        let some: Vec<&Balance> = w.balances.iter().zip(&w.due_changed).filter(|(_, c)| **c == changed).map(|(b, _)| b).collect();
        if !some.is_empty() {
            batch::add_balances(&mut s, tenant, &some, changed);
        }
    }
    if !w.records.is_empty() {
        kopilka_store::campaigns::add_receipt_campaigns(&mut s, tenant, &w.records);
    }
    s.run(c).await?;
    Ok(())
}
