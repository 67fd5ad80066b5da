//! The till: quote, reserve, checkout, cancel and receipt read-back
//! (docs/api.md, "Quote, reserve, checkout", "Cancel" and "Reading a receipt").
//!
//! Checks run in the API's order (docs/api.md, "Order of checks"): authentication and role (the HTTP layer),
//! parsing, validation, store and till binding ([`parse`]), then idempotency, lookups and
//! business rules inside one transaction ([`run`]).

use super::ledger::{Book, Credit, EntryRef, balance_json};
use super::members::member_not_found;
use super::{Failure, Fallible, offers, with_retry};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::input::{Obj, canonical, check, fmt_time, sha256_hex};
use crate::state::AppState;
use axum::http::StatusCode;
use kopilka_domain::identity::normalize_phone;
use kopilka_domain::program::Program;
use kopilka_domain::quantity::Quantity;
use kopilka_domain::receipt::{CalcError, LineInput, ReceiptCalc, RedeemRequest};
use kopilka_domain::tiers::tier_for_spend;
use kopilka_store::ledger::{self, Balance, Hold};
use kopilka_store::members::{self, By};
use kopilka_store::receipts::{self, Line, Receipt};
use kopilka_store::{StoreError, jobs, new_id, now_s, tenants};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quote,
    Reserve,
    Checkout,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MemberRef {
    Card(String),
    Phone(String),
    Id(String),
    QrToken(String),
}

#[derive(Debug, Clone)]
pub struct PosRequest {
    pub receipt_id: String,
    pub till_id: String,
    pub store_id: String,
    pub member: Option<MemberRef>,
    pub lines: Vec<LineInput>,
    pub redeem: RedeemRequest,
    /// Cashback wallet money to spend (`redeem_wallet_minor`).
    pub wallet: RedeemRequest,
    pub coupons: Vec<String>,
    pub occurred_at: Option<i64>,
    pub otp: Option<String>,
    /// SHA-256 of the canonical body (store id left out: the key implies it).
    pub hash: String,
}

/// Parse a member reference: exactly one of card_number, phone, member_id, qr_token.
pub fn parse_member_ref(obj: &mut Obj<'_>, key: &'static str) -> Option<MemberRef> {
    let m = obj.object(key)?;
    let mut r = Obj::new(m, &obj.path(key));
    let card = r.str("card_number", 19);
    let phone = r.str("phone", 32);
    let id = r.str("member_id", 64);
    let qr = r.str("qr_token", 128);
    let count = [card.is_some(), phone.is_some(), id.is_some(), qr.is_some()].iter().filter(|x| **x).count();
    let present = ["card_number", "phone", "member_id", "qr_token"].iter().filter(|k| m.contains_key(**k)).count();
    let out = match (card, phone, id, qr) {
        _ if present != 1 => {
            let p = obj.path(key);
            obj.errors.insert(p, "must hold exactly one of card_number, phone, member_id, qr_token".into());
            None
        }
        (Some(c), _, _, _) => Some(MemberRef::Card(c)),
        (_, Some(p), _, _) => match normalize_phone(&p) {
            Ok(p) => Some(MemberRef::Phone(p)),
            Err(e) => {
                r.err("phone", e);
                None
            }
        },
        (_, _, Some(i), _) => Some(MemberRef::Id(i)),
        (_, _, _, Some(q)) => Some(MemberRef::QrToken(q)),
        _ => None,
    };
    let _ = count;
    let errs = r.finish();
    obj.absorb(errs);
    out
}

/// Parse the line items of a receipt.
fn parse_items(obj: &mut Obj<'_>) -> Option<Vec<LineInput>> {
    let Some(items) = obj.array("items") else {
        if !obj.has("items") {
            obj.err("items", "is required");
        }
        return None;
    };
    if items.is_empty() {
        obj.err("items", "must hold at least one line");
        return None;
    }
    if items.len() > 1000 {
        obj.err("items", "must hold at most 1000 lines");
        return None;
    }
    let mut lines = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("items[{i}]");
        let Some(m) = item.as_object() else {
            obj.errors.insert(path, "must be an object".into());
            continue;
        };
        let mut l = Obj::new(m, &path);
        let line_no = l.int("line_no", 1, i64::MAX).unwrap_or(i as i64 + 1);
        let sku = l.str("sku", 128);
        let name = l.str("name", 256);
        let category = l.str("category", 100);
        let quantity = match l.raw("quantity") {
            None => {
                l.err("quantity", "is required");
                None
            }
            Some(v) => match Quantity::from_json(v) {
                Ok(q) => Some(q),
                Err(e) => {
                    l.err("quantity", e);
                    None
                }
            },
        };
        let unit_price_minor = l.int("unit_price_minor", 0, i64::MAX);
        let total_minor = l.int("total_minor", 0, i64::MAX);
        let discount = l.bool("discount").unwrap_or(true);
        let earn = l.bool("earn").unwrap_or(true);
        if !m.contains_key("unit_price_minor") && !m.contains_key("total_minor") {
            l.err("unit_price_minor", "is required unless total_minor is given");
        }
        if !seen.insert(line_no) {
            l.err("line_no", "must be unique within the receipt");
        }
        let errs = l.finish();
        let ok = errs.is_empty();
        obj.absorb(errs);
        if let (true, Some(quantity)) = (ok, quantity) {
            let line = LineInput { line_no, sku, name, category, quantity, unit_price_minor, total_minor, discount, earn };
            match kopilka_domain::receipt::line_total(&line) {
                Ok(_) => lines.push(line),
                Err(e) => {
                    obj.errors.insert(format!("{path}.total_minor"), e.to_string());
                }
            }
        }
    }
    // The receipt total is known from the body alone: bound it here, before any lookup.
    let total: i128 = lines.iter().filter_map(|l| kopilka_domain::receipt::line_total(l).ok()).map(i128::from).sum();
    if total > kopilka_domain::COMPUTE_MAX {
        obj.err("items", "the receipt total passes 10^15");
    }
    Some(lines)
}

/// Store and till binding (403 `store_mismatch`) for POS bodies: a pos key works at its
/// store (and till, when bound); an admin key names the store.
pub fn bind_store(auth: &Auth, store_id: Option<String>, till_id: Option<String>) -> ApiResult<(String, String)> {
    match auth.role {
        Role::Pos => {
            let bound = auth.store_id.clone().unwrap_or_default();
            if let Some(s) = &store_id
                && *s != bound
            {
                return Err(ApiError::store_mismatch("this key is bound to another store"));
            }
            let till = match (&auth.till_id, till_id) {
                (Some(k), Some(t)) if *k != t => return Err(ApiError::store_mismatch("this key is bound to another till")),
                (Some(k), _) => k.clone(),
                (None, t) => t.unwrap_or_default(),
            };
            Ok((bound, till))
        }
        _ => Ok((store_id.unwrap_or_default(), till_id.unwrap_or_default())),
    }
}

/// Parse and validate a quote/reserve/checkout body, and apply the key's store binding.
pub fn parse(auth: &Auth, body: Map<String, Value>) -> ApiResult<PosRequest> {
    let mut o = Obj::new(&body, "");
    let receipt_id = o.req_str("receipt_id", 128);
    let till_id = o.str_or_empty("till_id", 64);
    let store_id = o.str("store_id", 64);
    let member = if o.has("member") { parse_member_ref(&mut o, "member") } else { None };
    let lines = parse_items(&mut o);
    let redeem = match o.raw("redeem_points") {
        None => RedeemRequest::None,
        Some(Value::String(s)) if s == "max" => RedeemRequest::Max,
        Some(v) => match crate::input::int_value(v, 0, i64::MAX) {
            Ok(n) => RedeemRequest::Points(n),
            Err(e) => {
                o.err("redeem_points", format!("{e}, or \"max\""));
                RedeemRequest::None
            }
        },
    };
    let wallet = match o.raw("redeem_wallet_minor") {
        None => RedeemRequest::None,
        Some(Value::String(s)) if s == "max" => RedeemRequest::Max,
        Some(v) => match crate::input::int_value(v, 0, kopilka_domain::INPUT_MAX as i64) {
            Ok(n) => RedeemRequest::Points(n),
            Err(e) => {
                o.err("redeem_wallet_minor", format!("{e}, or \"max\""));
                RedeemRequest::None
            }
        },
    };
    let coupons: Vec<String> = match o.array("coupons") {
        None => Vec::new(),
        Some(a) => a
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c.as_str() {
                Some(s) if !s.is_empty() && s.len() <= 64 => Some(s.to_owned()),
                _ => {
                    o.errors.insert(format!("coupons[{i}]"), "must be a code string".into());
                    None
                }
            })
            .collect(),
    };
    let occurred_at = o.time("occurred_at");
    let otp = o.str("otp", 16);
    if auth.role == Role::Admin && store_id.is_none() && !o.errors.contains_key("store_id") {
        o.err("store_id", "is required for a key that is not bound to a store");
    }
    check(o)?;
    let (store_id, till_id) = bind_store(auth, store_id, till_id)?;
    let mut hashed = body.clone();
    hashed.remove("store_id");
    hashed.insert("till_id".into(), Value::String(till_id.clone()));
    let hash = sha256_hex(&canonical(&Value::Object(hashed)));
    Ok(PosRequest {
        receipt_id: receipt_id.unwrap_or_default(),
        till_id,
        store_id,
        member,
        lines: lines.unwrap_or_default(),
        redeem,
        wallet,
        coupons,
        occurred_at,
        otp,
        hash,
    })
}

pub fn store_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "store_not_found", "no such store")
}

fn calc_error(e: CalcError) -> ApiError {
    match e {
        CalcError::InsufficientPoints { requested, available } => {
            ApiError::rule("insufficient_points", format!("{requested} points requested, {available} available"))
        }
        CalcError::RedeemLimitExceeded { requested, limit } => {
            ApiError::rule("redeem_limit_exceeded", format!("{requested} points requested, at most {limit} may pay for this receipt"))
        }
        CalcError::InsufficientWallet { requested, available } => {
            ApiError::rule("insufficient_wallet", format!("{requested} requested from the cashback wallet, {available} available"))
        }
        CalcError::TooLarge(m) => ApiError::field("items", m),
    }
}

/// What the balance becomes once this receipt is checked out.
struct Outcome {
    points_pending: i64,
    available_at: i64,
    expires_at: Option<i64>,
}

fn predict(b: &Balance, spent: i64, earned: i64, o: &Outcome, now: i64, held: i64) -> Value {
    let paid = b.debt.min(earned);
    let net = earned - paid;
    let (mut points, mut pending) = (b.points - spent, b.pending);
    if o.points_pending > 0 {
        pending += net;
    } else if o.expires_at.is_none_or(|e| e > now) {
        points += net;
    }
    json!({"points": points, "held": held, "pending": pending, "debt": b.debt - paid})
}

/// The request with catalogue categories filled in for lines sent with a sku and no
/// category, or None when nothing changes.
async fn with_catalogue(tx: &mut kopilka_store::Tx, tenant: &str, req: &PosRequest) -> Fallible<Option<PosRequest>> {
    let skus: Vec<&str> = req.lines.iter().filter(|l| l.category.is_none()).filter_map(|l| l.sku.as_deref()).collect();
    if skus.is_empty() {
        return Ok(None);
    }
    let cats = kopilka_store::campaigns::product_categories(tx.conn(), tenant, &skus).await?;
    if cats.is_empty() {
        return Ok(None);
    }
    let mut r = req.clone();
    for l in &mut r.lines {
        if l.category.is_none()
            && let Some(s) = &l.sku
            && let Some((_, c)) = cats.iter().find(|(k, _)| k == s)
        {
            l.category = Some(c.clone());
        }
    }
    Ok(Some(r))
}

/// What the wallet becomes once this receipt is checked out.
fn predict_wallet(w: &kopilka_store::campaigns::Wallet, spent: i64, cashback: i64, held: i64) -> Value {
    let paid = w.debt_minor.min(cashback);
    let balance = w.balance_minor - spent + cashback - paid;
    json!({"balance_minor": balance, "held_minor": held, "debt_minor": w.debt_minor - paid, "available_minor": (balance - held).max(0)})
}

/// Wallet money held by this receipt's own live reserve (it counts as available to it).
async fn existing_held_wallet(tx: &mut kopilka_store::Tx, tenant: &str, req: &PosRequest) -> Fallible<i64> {
    let Some(r) = receipts::by_key(tx.conn(), tenant, &req.store_id, &req.till_id, &req.receipt_id).await? else {
        return Ok(0);
    };
    if r.status != "held" || r.body_hash != req.hash {
        return Ok(0);
    }
    Ok(receipts::lines(tx.conn(), tenant, &r.id).await?.iter().map(|l| l.wallet_minor).sum())
}

fn line_json(l: &kopilka_domain::receipt::LineCalc, sku: &Option<String>) -> Value {
    let mut v = json!({
        "line_no": l.line_no,
        "sku": sku,
        "quantity": l.quantity,
        "total_minor": l.total_minor,
        "discount_minor": l.discount_minor,
        "redeemed_minor": l.redeemed_minor,
        "points_redeemed": l.points_redeemed,
        "payable_minor": l.payable_minor,
        "points_earned": l.points_earned,
        "fiscal_splits": l.fiscal_splits,
    });
    // Wallet fields appear only when the wallet was used, so receipts without it keep the
    // shape of docs/api.md, "The answer of a quote, reserve or checkout", exactly.
    if l.wallet_minor != 0 {
        v["wallet_minor"] = Value::from(l.wallet_minor);
    }
    if l.cashback_minor != 0 {
        v["cashback_minor"] = Value::from(l.cashback_minor);
    }
    v
}

/// A priced receipt: the request, whose it is, the tier and programme version it was
/// priced under, and the calculation. What [`answer`] and [`new_receipt`] write down.
#[derive(Clone, Copy)]
pub(crate) struct Priced<'a> {
    pub req: &'a PosRequest,
    pub member_id: Option<&'a str>,
    pub tier: Option<&'a str>,
    pub version: i64,
    pub calc: &'a ReceiptCalc,
}

pub(crate) fn answer(p: &Priced<'_>, status: &str, points_pending: i64, balance: Value, offers: (&[Value], &[Value])) -> Value {
    let Priced { req, member_id, tier, version, calc } = *p;
    let lines: Vec<Value> = calc.lines.iter().zip(&req.lines).map(|(l, i)| line_json(l, &i.sku)).collect();
    let mut v = json!({
        "receipt_id": req.receipt_id,
        "till_id": req.till_id,
        "store_id": req.store_id,
        "member_id": member_id,
        "status": status,
        "tier": tier,
        "program_version": version,
        "total_minor": calc.total_minor,
        "discount_minor": calc.discount_minor,
        "points_redeemed": calc.points_redeemed,
        "redeemed_minor": calc.redeemed_minor,
        "payable_minor": calc.payable_minor,
        "points_earned": calc.points_earned,
        "points_pending": points_pending,
        "balance": balance,
        "lines": lines,
        "applied": offers.0,
        "not_applied": offers.1,
    });
    if calc.wallet_minor != 0 {
        v["wallet_minor"] = Value::from(calc.wallet_minor);
    }
    if calc.cashback_minor != 0 {
        v["cashback_minor"] = Value::from(calc.cashback_minor);
    }
    v
}

pub(crate) fn lines_for_store(req: &PosRequest, calc: &ReceiptCalc) -> Vec<Line> {
    calc.lines
        .iter()
        .zip(&req.lines)
        .map(|(l, i)| {
            let (kind, base) = l.quantity.to_storage();
            Line {
                line_no: l.line_no,
                sku: i.sku.clone(),
                name: i.name.clone(),
                category: i.category.clone(),
                qty_kind: kind.into(),
                quantity_base: base,
                total_minor: l.total_minor,
                discount_minor: l.discount_minor,
                redeemed_minor: l.redeemed_minor,
                points_redeemed: l.points_redeemed,
                payable_minor: l.payable_minor,
                points_earned: l.points_earned,
                refunded_base: 0,
                wallet_minor: l.wallet_minor,
                cashback_minor: l.cashback_minor,
            }
        })
        .collect()
}

async fn find_member(c: &mut kopilka_store::Conn, tenant: &str, r: &MemberRef) -> Fallible<kopilka_store::members::Member> {
    let (by, v) = match r {
        MemberRef::Card(v) => (By::Card, v),
        MemberRef::Phone(v) => (By::Phone, v),
        MemberRef::Id(v) => (By::Id, v),
        // A static or a rotating token (services/cards.rs).
        MemberRef::QrToken(v) => return Ok(super::cards::find_by_qr(c, tenant, v, now_s()).await?.ok_or_else(member_not_found)?.0),
    };
    members::find(c, tenant, by, v).await?.ok_or_else(|| Failure::Api(member_not_found()))
}

/// Whether spending is allowed by `redeem.auth` for how the member was identified: a
/// current QR token, or a one-time code (services/redeem_auth.rs). Decides without
/// writing; the proof is spent when points are.
async fn auth_satisfied(
    state: &AppState,
    tx: &mut kopilka_store::Tx,
    tenant: &str,
    program: &Program,
    req: &PosRequest,
    member: Option<&kopilka_store::members::Member>,
    now: i64,
) -> Fallible<super::redeem_auth::Proof> {
    super::redeem_auth::check(state, tx.conn(), tenant, program, req, member, now).await
}

fn redeem_auth_required() -> ApiError {
    super::redeem_auth::required()
}

/// Quote, reserve or check out a receipt. A quote reads in its own transaction; a reserve
/// or checkout is written through the group commit ([`super::group_commit`]).
pub async fn run(state: &AppState, auth: &Auth, req: PosRequest, mode: Mode) -> ApiResult<Value> {
    let started = std::time::Instant::now();
    let out = if mode == Mode::Quote {
        with_retry(|_| async {
            let mut tx = state.db.begin_read().await?;
            let out = attempt(state, &mut tx, auth, &req, mode).await;
            tx.rollback().await?;
            out
        })
        .await
    } else {
        let key = lane_key(&req);
        let req = std::sync::Arc::new(req);
        let batched = mode == Mode::Checkout && super::checkout_batch::shaped(&req);
        with_retry(|_| {
            let (st, a, r) = (state.clone(), auth.clone(), req.clone());
            let fast = batched.then(|| super::checkout_batch::Candidate { state: st.clone(), auth: a.clone(), req: r.clone() });
            state.group().submit(&key, Box::new(move |tx| Box::pin(async move { attempt(&st, tx, &a, &r, mode).await })), fast)
        })
        .await
    };
    let label = match mode {
        Mode::Quote => "quote",
        Mode::Reserve => "reserve",
        Mode::Checkout => "checkout",
    };
    metrics::histogram!("kopilka_pos_seconds", "op" => label).record(started.elapsed().as_secs_f64());
    metrics::counter!("kopilka_pos_total", "op" => label, "ok" => if out.is_ok() { "true" } else { "false" }).increment(1);
    out
}

/// The write lane of a receipt: its member's, so that one member's receipts queue together.
fn lane_key(req: &PosRequest) -> String {
    match &req.member {
        Some(MemberRef::Card(c)) => format!("card:{c}"),
        Some(MemberRef::Phone(p)) => format!("phone:{p}"),
        Some(MemberRef::Id(i)) => format!("id:{i}"),
        Some(MemberRef::QrToken(t)) => format!("qr:{t}"),
        None => format!("receipt:{}:{}:{}", req.store_id, req.till_id, req.receipt_id),
    }
}

/// One attempt inside `tx`, which the caller commits or rolls back. Nothing is written for
/// a quote (its caller always rolls back).
async fn attempt(state: &AppState, tx: &mut kopilka_store::Tx, auth: &Auth, req: &PosRequest, mode: Mode) -> Fallible<Value> {
    let tenant = auth.tenant_id.as_str();
    let now = now_s();

    // Idempotency.
    let mut own_hold = 0;
    let mut own_receipt: Option<String> = None;
    let existing = if mode == Mode::Quote {
        receipts::by_key(tx.conn(), tenant, &req.store_id, &req.till_id, &req.receipt_id).await?
    } else {
        receipts::by_key_locked(tx, tenant, &req.store_id, &req.till_id, &req.receipt_id).await?
    };
    if let Some(existing) = existing {
        let mut live = true;
        if existing.status == "held" {
            let hold = match &existing.hold_id {
                Some(h) => ledger::hold(tx.conn(), tenant, h).await?,
                None => None,
            };
            if hold.as_ref().is_none_or(|h| h.expires_at <= now) {
                live = false;
                match (&existing.member_id, mode) {
                    (_, Mode::Quote) => {}
                    (None, _) => {
                        // An anonymous hold has no book to settle it: release it here.
                        if let Some(h) = &hold {
                            ledger::end_hold(tx.conn(), tenant, &h.id, "expired", now).await?;
                        }
                        offers::release_held(tx, tenant, &existing.id, None, now).await?;
                        receipts::delete_held(tx.conn(), tenant, &existing.id).await?;
                    }
                    (Some(old), _) => {
                        // Settling the holder's book releases the expired hold and frees the
                        // ids, whoever the new receipt is for.
                        let (_, program) = super::program::current(state, tx.conn(), tenant).await?;
                        if let Some(book) = Book::open(tx, tenant, old, &program, now).await? {
                            book.save(tx).await?;
                        }
                    }
                }
            } else if existing.body_hash == req.hash {
                own_hold = hold.map(|h| h.points).unwrap_or(0);
                own_receipt = Some(existing.id.clone());
            }
        }
        if live && mode != Mode::Quote {
            if existing.body_hash != req.hash {
                return Err(ApiError::conflict("receipt_conflict", "this receipt id was already used with a different body").into());
            }
            match (mode, existing.status.as_str()) {
                (Mode::Checkout, "held") => return commit_hold(tx, auth, req, existing, now).await,
                (Mode::Checkout, _) | (Mode::Reserve, "held") => return Ok(serde_json::from_str(&existing.answer)?),
                _ => return Err(ApiError::conflict("receipt_conflict", "this receipt was already committed").into()),
            }
        }
    }

    // Lookups.
    let store = tenants::store_by_id(tx.conn(), tenant, &req.store_id).await?.ok_or_else(|| Failure::Api(store_not_found()))?;
    let member = match &req.member {
        Some(r) => Some(find_member(tx.conn(), tenant, r).await?),
        None => None,
    };
    // The product catalogue names the category of a line sent without one.
    let filled;
    let req: &PosRequest = match with_catalogue(tx, tenant, req).await? {
        Some(r) => {
            filled = r;
            &filled
        }
        None => req,
    };
    if mode != Mode::Quote {
        // A programme change waits for receipts being posted, and they for it, so that
        // `program_locked` sees every committed receipt.
        tenants::lock_tenant(tx, tenant, false).await?;
    }
    let (version, program) = super::program::current(state, tx.conn(), tenant).await?;

    // Business rules.
    let occurred_at = req.occurred_at.unwrap_or(now);
    if occurred_at < now - program.offline_max_age_days * 86_400 || occurred_at > now + 300 {
        return Err(ApiError::rule(
            "occurred_at_out_of_range",
            format!("occurred_at must lie within the last {} days and at most 5 minutes ahead", program.offline_max_age_days),
        )
        .into());
    }
    let spends = matches!(req.redeem, RedeemRequest::Max) || matches!(req.redeem, RedeemRequest::Points(n) if n > 0);
    if spends && member.is_none() {
        return Err(ApiError::rule("member_required", "points can only be spent by an identified member").into());
    }
    let wallet_spends = matches!(req.wallet, RedeemRequest::Max) || matches!(req.wallet, RedeemRequest::Points(n) if n > 0);
    if wallet_spends && member.is_none() {
        return Err(ApiError::rule("member_required", "the cashback wallet can only be spent by an identified member").into());
    }
    let proof = auth_satisfied(state, tx, tenant, &program, req, member.as_ref(), now).await?;
    let auth_ok = proof.ok();
    if (matches!(req.redeem, RedeemRequest::Points(n) if n > 0) || matches!(req.wallet, RedeemRequest::Points(n) if n > 0)) && !auth_ok {
        return Err(redeem_auth_required().into());
    }

    // The member's book: locked and settled for writes; for a quote, read as is unless
    // something is due, then settled in a transaction that is rolled back.
    let mut book = match &member {
        None => None,
        // A write locks the balance row at once (one read, not two).
        Some(m) if mode != Mode::Quote => {
            Some(Book::open(tx, tenant, &m.id, &program, now).await?.ok_or_else(|| Failure::Api(member_not_found()))?)
        }
        Some(m) => {
            let b = ledger::balance(tx.conn(), tenant, &m.id).await?.ok_or_else(|| Failure::Api(member_not_found()))?;
            if b.next_due_at.is_none_or(|t| t > now) {
                Some(Book::new(tenant, b, &program, now))
            } else {
                // Settling writes: a transaction that can write, rolled back by the caller.
                let read = std::mem::replace(tx, state.db.begin().await?);
                read.rollback().await?;
                Some(Book::open(tx, tenant, &m.id, &program, now).await?.ok_or_else(|| Failure::Api(member_not_found()))?)
            }
        }
    };

    let (tier_code, tier) = match &member {
        Some(m) => {
            let spend =
                receipts::tier_spend(tx.conn(), tenant, &m.id, occurred_at - program.tier_window_days * 86_400, occurred_at).await?;
            let t = tier_for_spend(&program.tiers, spend);
            (t.map(|t| t.code.clone()), t)
        }
        None => (None, None),
    };
    let available = book.as_ref().map(|b| b.available(program.redeem.min_balance) + own_hold).unwrap_or(0);
    // The wallet: locked for writes when it may move; read for a quote.
    let write = mode != Mode::Quote;
    let mut wallet = match &member {
        Some(m) if write && wallet_spends => Some(offers::WalletBook::open(tx, tenant, &m.id).await?),
        Some(m) if wallet_spends => {
            let w = kopilka_store::campaigns::wallet(tx.conn(), tenant, &m.id).await?;
            Some(offers::WalletBook { tenant: tenant.to_owned(), member: m.id.clone(), w })
        }
        _ => None,
    };
    let own_wallet_hold = if mode == Mode::Quote && wallet_spends { existing_held_wallet(tx, tenant, req).await? } else { 0 };
    let wallet_available = wallet.as_ref().map(|w| w.available() + own_wallet_hold).unwrap_or(0);
    let sale = offers::Sale { req, member: member.as_ref(), store: &store, program: &program, tier: tier_code.as_deref(), at: occurred_at };
    let prepared = offers::prepare(state, tx, auth, &sale, write, own_receipt.as_deref()).await?;
    let decision = offers::decide(&sale, tier, &prepared, available, wallet_available).map_err(calc_error)?;
    let mut calc = decision.calc;
    if (calc.points_redeemed > 0 || calc.wallet_minor > 0) && !auth_ok {
        return Err(redeem_auth_required().into());
    }
    if let Some(m) = &member
        && write
        && wallet.is_none()
        && calc.cashback_minor > 0
    {
        wallet = Some(offers::WalletBook::open(tx, tenant, &m.id).await?);
    }
    if (calc.points_redeemed > 0 || calc.wallet_minor > 0) && mode != Mode::Quote {
        // A rotating QR code or a one-time code pays once.
        proof.spend(tx.conn(), tenant, now).await?;
    }
    let offers_json = (decision.applied.as_slice(), decision.not_applied.as_slice());
    if member.is_none() {
        // Anonymous receipts earn nothing (they still count in analytics).
        calc.points_earned = 0;
        for l in &mut calc.lines {
            l.points_earned = 0;
        }
    }
    let available_at = earn_available_at(occurred_at, program.pending_days, now);
    let expires_at = book.as_ref().and_then(|b| b.expiry_for(available_at));
    let outcome = Outcome { points_pending: if available_at > now { calc.points_earned } else { 0 }, available_at, expires_at };
    let member_id = member.as_ref().map(|m| m.id.as_str());
    let priced = Priced { req, member_id, tier: tier_code.as_deref(), version, calc: &calc };

    match mode {
        Mode::Quote => {
            let balance = book
                .as_ref()
                .map(|b| predict(&b.balance, calc.points_redeemed, calc.points_earned, &outcome, now, b.balance.held - own_hold))
                .unwrap_or(Value::Null);
            let mut ans = answer(&priced, "quoted", outcome.points_pending, balance, offers_json);
            if let Some(w) = &wallet {
                ans["wallet"] =
                    predict_wallet(&w.w, calc.wallet_minor - own_wallet_hold, calc.cashback_minor, w.w.held_minor - own_wallet_hold);
            }
            Ok(ans)
        }
        Mode::Reserve => {
            let pk = new_id();
            let hold_id = new_id();
            let hold_expires = now + program.redeem.hold_ttl_s;
            let balance = book
                .as_ref()
                .map(|b| predict(&b.balance, calc.points_redeemed, calc.points_earned, &outcome, now, b.balance.held))
                .unwrap_or(Value::Null);
            let mut ans = answer(&priced, "held", outcome.points_pending, balance, offers_json);
            ans["hold_id"] = Value::String(hold_id.clone());
            ans["expires_at"] = Value::String(fmt_time(hold_expires));
            let receipt = new_receipt(&priced, &pk, "held", occurred_at, &ans, Some(hold_id.clone()), now);
            receipts::insert(tx.conn(), tenant, &receipt).await?;
            receipts::insert_lines(tx.conn(), tenant, &pk, &lines_for_store(req, &calc)).await?;
            ledger::insert_hold(
                tx.conn(),
                tenant,
                &Hold {
                    id: hold_id,
                    member_id: member_id.unwrap_or("").to_owned(),
                    receipt_pk: pk.clone(),
                    points: calc.points_redeemed,
                    status: "held".into(),
                    expires_at: hold_expires,
                    created_at: now,
                },
            )
            .await?;
            if let Some(mut b) = book.take() {
                b.consume(tx, calc.points_redeemed, "hold", &pk).await?;
                b.save(tx).await?;
            }
            offers::record(tx, tenant, &prepared.set, &decision.records, &pk, "held", now).await?;
            if let Some(mut w) = wallet.take() {
                w.w.held_minor += calc.wallet_minor;
                ans["wallet"] = predict_wallet(&w.w, calc.wallet_minor, calc.cashback_minor, w.w.held_minor);
                w.save(tx).await?;
            }
            Ok(ans)
        }
        Mode::Checkout => {
            // The ledger first, then the receipt with its final answer in one insert. A
            // concurrent duplicate fails on the receipt's unique key and is retried, which
            // then finds this receipt and replays its answer.
            let pk = new_id();
            let mut receipt = new_receipt(&priced, &pk, "committed", occurred_at, &Value::Null, None, now);
            receipt.committed_at = Some(now);
            let balance = match book.take() {
                Some(mut b) => {
                    if calc.points_redeemed > 0 {
                        b.consume(tx, calc.points_redeemed, "redeem", &pk).await?;
                        b.entry(tx, "redeem", -calc.points_redeemed, occurred_at, receipt_ref(req, &pk)).await?;
                    }
                    receipt.earn_lot_id = earn(tx, &mut b, req, &pk, calc.points_earned, &outcome, occurred_at).await?;
                    let saved = b.save(tx).await?;
                    jobs::enqueue_in(tx, tenant, "tier", &saved.member_id, now).await?;
                    balance_json(&saved)
                }
                None => Value::Null,
            };
            let mut ans = answer(&priced, "committed", outcome.points_pending, balance, offers_json);
            offers::record(tx, tenant, &prepared.set, &decision.records, &pk, "committed", now).await?;
            if let Some(mut w) = wallet.take() {
                w.spend(tx, calc.wallet_minor, &req.receipt_id, &pk, occurred_at, now).await?;
                w.cashback(tx, calc.cashback_minor, &req.receipt_id, &pk, occurred_at, now).await?;
                ans["wallet"] = offers::wallet_json(&w.save(tx).await?);
            }
            receipt.answer = ans.to_string();
            receipts::insert(tx.conn(), tenant, &receipt).await?;
            receipts::insert_lines(tx.conn(), tenant, &pk, &lines_for_store(req, &calc)).await?;
            Ok(ans)
        }
    }
}

/// When a receipt's earned points become available. Points are pending only when
/// `pending_days` > 0 (docs/api.md, "Times of a receipt"); a receipt posted a little ahead of the server's clock
/// (up to 5 minutes are allowed) earns available points at once, not pending ones.
pub(crate) fn earn_available_at(occurred_at: i64, pending_days: i64, posted_at: i64) -> i64 {
    if pending_days > 0 { occurred_at + pending_days * 86_400 } else { occurred_at.min(posted_at) }
}

fn receipt_ref(req: &PosRequest, pk: &str) -> EntryRef {
    EntryRef { receipt_id: Some(req.receipt_id.clone()), ref_id: Some(pk.to_owned()), reason: None }
}

/// Credit a receipt's earned points as its own lot (paying debt first) and write the
/// `earn` entry. Returns the lot id.
async fn earn(
    tx: &mut kopilka_store::Tx,
    b: &mut Book<'_>,
    req: &PosRequest,
    pk: &str,
    points: i64,
    o: &Outcome,
    occurred_at: i64,
) -> Fallible<Option<String>> {
    if points <= 0 {
        return Ok(None);
    }
    // The entry first: a back-dated lot that has already expired posts its `expire`
    // entry after the `earn`, never before it.
    b.entry(tx, "earn", points, occurred_at, receipt_ref(req, pk)).await?;
    let (lot, _) = b
        .credit(
            tx,
            Credit { source: "receipt", ref_id: Some(pk), points, available_at: o.available_at, expires_at: o.expires_at, pays_debt: true },
        )
        .await?;
    b.balance.lifetime_earned += points;
    Ok(Some(lot.id))
}

pub(crate) fn new_receipt(
    p: &Priced<'_>,
    pk: &str,
    status: &str,
    occurred_at: i64,
    answer: &Value,
    hold_id: Option<String>,
    now: i64,
) -> Receipt {
    let Priced { req, member_id, tier, version, calc } = *p;
    Receipt {
        id: pk.to_owned(),
        store_id: req.store_id.clone(),
        till_id: req.till_id.clone(),
        receipt_id: req.receipt_id.clone(),
        member_id: member_id.map(str::to_owned),
        status: status.into(),
        occurred_at,
        program_version: version,
        tier: tier.map(str::to_owned),
        body_hash: req.hash.clone(),
        answer: answer.to_string(),
        total_minor: calc.total_minor,
        payable_minor: calc.payable_minor,
        refunded_payable_minor: 0,
        points_redeemed: calc.points_redeemed,
        points_earned: calc.points_earned,
        earn_lot_id: None,
        expired_exempt: 0,
        hold_id,
        created_at: now,
        committed_at: None,
    }
}

/// Check out a reserved receipt: the held points become the redemption, and it cannot
/// fail for lack of points.
async fn commit_hold(tx: &mut kopilka_store::Tx, auth: &Auth, req: &PosRequest, mut receipt: Receipt, now: i64) -> Fallible<Value> {
    let tenant = auth.tenant_id.as_str();
    let program = super::program::version(tx.conn(), tenant, receipt.program_version).await?;
    let mut ans: Value = serde_json::from_str(&receipt.answer)?;
    let hold_id = receipt.hold_id.clone().unwrap_or_default();
    // Ended before the book is saved, which then no longer counts its expiry as due.
    ledger::end_hold(tx.conn(), tenant, &hold_id, "committed", now).await?;
    let balance = match receipt.member_id.clone() {
        Some(member) => {
            let mut b = Book::open(tx, tenant, &member, &program, now).await?.ok_or_else(|| Failure::Api(member_not_found()))?;
            let p = receipt.points_redeemed;
            if p > 0 {
                ledger::rekind_consumptions(tx.conn(), tenant, &receipt.id, "hold", "redeem").await?;
                b.balance.held -= p;
                b.balance.points -= p;
                b.entry(tx, "redeem", -p, receipt.occurred_at, receipt_ref(req, &receipt.id)).await?;
            }
            let available_at = earn_available_at(receipt.occurred_at, program.pending_days, now);
            let outcome = Outcome {
                points_pending: if available_at > now { receipt.points_earned } else { 0 },
                available_at,
                expires_at: b.expiry_for(available_at),
            };
            receipt.earn_lot_id = earn(tx, &mut b, req, &receipt.id, receipt.points_earned, &outcome, receipt.occurred_at).await?;
            ans["points_pending"] = Value::from(outcome.points_pending);
            let saved = b.save(tx).await?;
            jobs::enqueue_in(tx, tenant, "tier", &saved.member_id, now).await?;
            balance_json(&saved)
        }
        None => Value::Null,
    };
    offers::commit_held(tx, tenant, &receipt.id).await?;
    let wallet_minor = ans.get("wallet_minor").and_then(Value::as_i64).unwrap_or(0);
    let cashback_minor = ans.get("cashback_minor").and_then(Value::as_i64).unwrap_or(0);
    if let Some(member) = receipt.member_id.clone()
        && (wallet_minor > 0 || cashback_minor > 0)
    {
        let mut w = offers::WalletBook::open(tx, tenant, &member).await?;
        w.w.held_minor -= wallet_minor;
        w.spend(tx, wallet_minor, &req.receipt_id, &receipt.id, receipt.occurred_at, now).await?;
        w.cashback(tx, cashback_minor, &req.receipt_id, &receipt.id, receipt.occurred_at, now).await?;
        ans["wallet"] = offers::wallet_json(&w.save(tx).await?);
    }
    ans["status"] = Value::String("committed".into());
    ans["balance"] = balance;
    if let Value::Object(m) = &mut ans {
        m.remove("expires_at");
    }
    receipt.status = "committed".into();
    receipt.committed_at = Some(now);
    receipt.answer = ans.to_string();
    receipts::update(tx.conn(), tenant, &receipt).await?;
    Ok(ans)
}

pub struct CancelRequest {
    pub receipt_id: String,
    pub till_id: String,
    pub store_id: String,
}

pub fn parse_cancel(auth: &Auth, body: Map<String, Value>) -> ApiResult<CancelRequest> {
    let mut o = Obj::new(&body, "");
    let receipt_id = o.req_str("receipt_id", 128);
    let till_id = o.str_or_empty("till_id", 64);
    let store_id = o.str("store_id", 64);
    if auth.role == Role::Admin && store_id.is_none() && !o.errors.contains_key("store_id") {
        o.err("store_id", "is required for a key that is not bound to a store");
    }
    check(o)?;
    let (store_id, till_id) = bind_store(auth, store_id, till_id)?;
    Ok(CancelRequest { receipt_id: receipt_id.unwrap_or_default(), till_id, store_id })
}

/// Cancel: release a hold, or void a committed receipt exactly.
pub async fn cancel(state: &AppState, auth: &Auth, req: CancelRequest) -> ApiResult<Value> {
    with_retry(|_| cancel_attempt(state, auth, &req)).await
}

async fn cancel_attempt(state: &AppState, auth: &Auth, req: &CancelRequest) -> Fallible<Value> {
    let tenant = auth.tenant_id.as_str();
    let now = now_s();
    let mut tx = state.db.begin().await?;
    let receipt = receipts::by_key_locked(&mut tx, tenant, &req.store_id, &req.till_id, &req.receipt_id)
        .await?
        .ok_or_else(|| Failure::Api(ApiError::not_found("receipt")))?;
    let program = super::program::version(tx.conn(), tenant, receipt.program_version).await?;
    let base = json!({"receipt_id": req.receipt_id, "till_id": req.till_id, "store_id": req.store_id, "member_id": receipt.member_id});
    match receipt.status.as_str() {
        "held" => {
            let hold = match &receipt.hold_id {
                Some(h) => ledger::hold(tx.conn(), tenant, h).await?,
                None => None,
            };
            let mut out = base;
            out["status"] = Value::String("released".into());
            match (&receipt.member_id, hold) {
                (Some(member), Some(hold)) => {
                    let mut b =
                        Book::open(&mut tx, tenant, member, &program, now).await?.ok_or_else(|| Failure::Api(member_not_found()))?;
                    // Settling may already have released an expired hold.
                    if ledger::hold(tx.conn(), tenant, &hold.id).await?.is_some_and(|h| h.status == "held") {
                        b.release_hold(&mut tx, &hold, "cancelled").await?;
                    }
                    let saved = b.save(&mut tx).await?;
                    out["balance"] = balance_json(&saved);
                }
                (_, hold) => {
                    if let Some(h) = hold {
                        ledger::end_hold(tx.conn(), tenant, &h.id, "cancelled", now).await?;
                    }
                    offers::release_held(&mut tx, tenant, &receipt.id, None, now).await?;
                    receipts::delete_held(tx.conn(), tenant, &receipt.id).await?;
                    out["balance"] = Value::Null;
                }
            }
            tx.commit().await?;
            Ok(out)
        }
        "cancelled" => {
            let mut out = base;
            out["status"] = Value::String("cancelled".into());
            Ok(out)
        }
        "committed" => void(tx, tenant, receipt, &program, base, now).await,
        _ => Err(ApiError::conflict("cancel_not_possible", "part of this receipt was refunded; use a refund").into()),
    }
}

/// Void a committed receipt: return its redeemed points to their lots and take back its
/// earned points, exactly, or refuse with 409 `cancel_not_possible`.
async fn void(mut tx: kopilka_store::Tx, tenant: &str, mut receipt: Receipt, program: &Program, base: Value, now: i64) -> Fallible<Value> {
    let mut out = base;
    if let Some(member) = receipt.member_id.clone() {
        let mut b = Book::open(&mut tx, tenant, &member, program, now).await?.ok_or_else(|| Failure::Api(member_not_found()))?;
        let earned = receipt.points_earned;
        if earned > 0 {
            let lot_id = receipt.earn_lot_id.clone().unwrap_or_default();
            let lot = ledger::lot(tx.conn(), tenant, &lot_id).await?;
            let expired = lot.as_ref().is_some_and(|l| !l.is_pending && l.expires_at.is_some_and(|e| e <= now));
            // Its own lot (including points that paid debt) plus what else is free.
            let debt_paid: i64 =
                ledger::consumptions(tx.conn(), tenant, &lot_id, "debt").await?.iter().map(|c| c.points - c.returned).sum();
            let own = lot.as_ref().map(|l| l.points_remaining).unwrap_or(0);
            let others = b.available(0) - if lot.as_ref().is_some_and(|l| !l.is_pending) { own } else { 0 };
            if expired || own + debt_paid + others.max(0) < earned {
                return Err(ApiError::conflict(
                    "cancel_not_possible",
                    "the member has already spent the points this receipt earned; use a refund",
                )
                .into());
            }
            b.unpay_debt(&mut tx, &lot_id).await?;
            let taken = b.take_back(&mut tx, earned, Some(&lot_id), &receipt.id).await?;
            assert_eq!(taken, earned, "void takes back exactly what was earned");
            b.balance.lifetime_earned -= earned;
            b.entry(
                &mut tx,
                "reverse_earn",
                -earned,
                now,
                EntryRef {
                    receipt_id: Some(receipt.receipt_id.clone()),
                    ref_id: Some(receipt.id.clone()),
                    reason: Some("cancelled".into()),
                },
            )
            .await?;
        }
        // The cashback wallet: its cashback must still be there to take back.
        let lines = receipts::lines(tx.conn(), tenant, &receipt.id).await?;
        let (spent, cashback): (i64, i64) = (lines.iter().map(|l| l.wallet_minor).sum(), lines.iter().map(|l| l.cashback_minor).sum());
        if spent > 0 || cashback > 0 {
            let mut w = offers::WalletBook::open(&mut tx, tenant, &member).await?;
            // Cashback that paid off wallet debt is owed again rather than taken.
            let paid = kopilka_store::campaigns::cashback_debt_paid(tx.conn(), tenant, &member, &receipt.id).await?;
            if w.available() + spent + paid < cashback {
                return Err(ApiError::conflict(
                    "cancel_not_possible",
                    "the member has already spent this receipt's cashback; use a refund",
                )
                .into());
            }
            w.return_spend(&mut tx, spent, &receipt.receipt_id, &receipt.id, now).await?;
            w.w.balance_minor += paid;
            w.w.debt_minor += paid;
            let short = w.take_back(&mut tx, cashback, &receipt.receipt_id, &receipt.id, now).await?;
            debug_assert_eq!(short, 0);
            out["wallet"] = offers::wallet_json(&w.save(&mut tx).await?);
        }
        if receipt.points_redeemed > 0 {
            let r = EntryRef {
                receipt_id: Some(receipt.receipt_id.clone()),
                ref_id: Some(receipt.id.clone()),
                reason: Some("cancelled".into()),
            };
            let back = b.give_back(&mut tx, &receipt.id, "redeem", receipt.points_redeemed, false, Some(("return_redeem", now, r))).await?;
            assert_eq!(back, receipt.points_redeemed, "void returns every redeemed point");
        }
        let saved = b.save(&mut tx).await?;
        jobs::enqueue_in(&mut tx, tenant, "tier", &saved.member_id, now).await?;
        out["balance"] = balance_json(&saved);
    } else {
        out["balance"] = Value::Null;
    }
    offers::release(&mut tx, tenant, &receipt.id, now).await?;
    receipt.status = "cancelled".into();
    receipts::update(tx.conn(), tenant, &receipt).await?;
    out["status"] = Value::String("cancelled".into());
    tx.commit().await?;
    Ok(out)
}

/// A receipt as stored: its answer, its refunds and its status.
pub async fn read(state: &AppState, auth: &Auth, receipt_id: &str, till_id: &str, store_id: &str) -> ApiResult<Value> {
    let tenant = auth.tenant_id.as_str();
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let receipt = receipts::by_key(&mut c, tenant, store_id, till_id, receipt_id).await?.ok_or_else(|| ApiError::not_found("receipt"))?;
    let mut v: Value = serde_json::from_str(&receipt.answer)?;
    let refunds: Vec<Value> = receipts::refunds_of(&mut c, tenant, &receipt.id)
        .await?
        .iter()
        .map(|r| serde_json::from_str(&r.answer).unwrap_or(Value::Null))
        .collect();
    v["status"] = Value::String(receipt.status.clone());
    v["refunds"] = Value::Array(refunds);
    v["occurred_at"] = Value::String(fmt_time(receipt.occurred_at));
    Ok(v)
}
