//! Refunds (docs/api.md, "Refunds" and "Refund rules"): per line, in exact proportion, never
//! driving a balance below zero; a shortfall is withheld from the money, then becomes debt.

use super::ledger::{Book, EntryRef, balance_json};
use super::members::member_not_found;
use super::{Failure, Fallible, with_retry};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::input::{Obj, canonical, check, fmt_time, sha256_hex};
use crate::state::AppState;
use kopilka_domain::quantity::Quantity;
use kopilka_domain::refund::{LineState, refund_line, withhold};
use kopilka_store::receipts::{self, Refund};
use kopilka_store::{jobs, ledger, new_id, now_s, tenants};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
pub struct RefundItem {
    pub path: String,
    pub line_no: Option<i64>,
    pub sku: Option<String>,
    pub quantity: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub receipt_id: String,
    pub till_id: String,
    pub original_store_id: String,
    pub store_id: String,
    pub refund_id: String,
    pub items: Option<Vec<RefundItem>>,
    pub occurred_at: Option<i64>,
    pub hash: String,
}

pub fn parse(auth: &Auth, body: Map<String, Value>) -> ApiResult<RefundRequest> {
    let mut o = Obj::new(&body, "");
    let receipt_id = o.req_str("receipt_id", 128);
    let till_id = o.str_or_empty("till_id", 64);
    let original_store_id = o.str("original_store_id", 64);
    let store_id = o.str("store_id", 64);
    let refund_id = o.req_str("refund_id", 128);
    let occurred_at = o.time("occurred_at");
    let mut items = None;
    if let Some(arr) = o.array("items") {
        if arr.is_empty() {
            o.err("items", "must hold at least one item; leave it out to refund everything left");
        }
        let mut list = Vec::new();
        for (i, it) in arr.iter().enumerate() {
            let path = format!("items[{i}]");
            let Some(m) = it.as_object() else {
                o.errors.insert(path, "must be an object".into());
                continue;
            };
            let mut r = Obj::new(m, &path);
            let line_no = r.int("line_no", 1, i64::MAX);
            let sku = r.str("sku", 128);
            let quantity = r.raw("quantity").cloned();
            if let Some(q) = &quantity
                && let Err(e) = Quantity::from_json(q)
            {
                r.err("quantity", e);
            }
            if !m.contains_key("line_no") && !m.contains_key("sku") {
                r.err("line_no", "name the line by line_no or sku");
            }
            let errs = r.finish();
            o.absorb(errs);
            list.push(RefundItem { path, line_no, sku, quantity });
        }
        items = Some(list);
    }
    if auth.role == Role::Admin && store_id.is_none() && !o.errors.contains_key("store_id") {
        o.err("store_id", "is required for a key that is not bound to a store");
    }
    check(o)?;
    let store_id = match auth.role {
        Role::Pos => {
            let bound = auth.store_id.clone().unwrap_or_default();
            if store_id.as_ref().is_some_and(|s| *s != bound) {
                return Err(ApiError::store_mismatch("this key is bound to another store"));
            }
            bound
        }
        _ => store_id.unwrap_or_default(),
    };
    let till_id = till_id.or_else(|| auth.till_id.clone()).unwrap_or_default();
    let mut hashed = body.clone();
    hashed.remove("store_id");
    hashed.insert("till_id".into(), Value::String(till_id.clone()));
    // An original store equal to the refund's own store is its default: sending it or
    // leaving it out is the same body.
    if original_store_id.as_deref() == Some(store_id.as_str()) {
        hashed.remove("original_store_id");
    }
    let hash = sha256_hex(&canonical(&Value::Object(hashed)));
    Ok(RefundRequest {
        receipt_id: receipt_id.unwrap_or_default(),
        original_store_id: original_store_id.unwrap_or_else(|| store_id.clone()),
        till_id,
        store_id,
        refund_id: refund_id.unwrap_or_default(),
        items,
        occurred_at,
        hash,
    })
}

/// Refund lines of a receipt, written through the group commit ([`super::group_commit`]).
pub async fn refund(state: &AppState, auth: &Auth, req: RefundRequest) -> ApiResult<Value> {
    let key = format!("receipt:{}:{}:{}", req.original_store_id, req.till_id, req.receipt_id);
    let req = std::sync::Arc::new(req);
    let out = with_retry(|_| {
        let (st, a, r) = (state.clone(), auth.clone(), req.clone());
        state.group().submit(&key, Box::new(move |tx| Box::pin(async move { attempt(&st, tx, &a, &r).await })), None)
    })
    .await;
    metrics::counter!("kopilka_pos_total", "op" => "refund", "ok" => if out.is_ok() { "true" } else { "false" }).increment(1);
    out
}

/// One attempt inside `tx`, which the caller commits or rolls back.
async fn attempt(state: &AppState, tx: &mut kopilka_store::Tx, auth: &Auth, req: &RefundRequest) -> Fallible<Value> {
    let tenant = auth.tenant_id.as_str();
    let now = now_s();

    if let Some(existing) = receipts::refund_by_key(tx.conn(), tenant, &req.store_id, &req.refund_id).await? {
        if existing.body_hash == req.hash {
            return Ok(serde_json::from_str(&existing.answer)?);
        }
        return Err(ApiError::conflict("refund_conflict", "this refund id was already used with a different body").into());
    }
    if tenants::store_by_id(tx.conn(), tenant, &req.store_id).await?.is_none() {
        return Err(super::pos::store_not_found().into());
    }
    let mut receipt = receipts::by_key_locked(tx, tenant, &req.original_store_id, &req.till_id, &req.receipt_id)
        .await?
        .ok_or_else(|| Failure::Api(ApiError::not_found("receipt")))?;
    if matches!(receipt.status.as_str(), "held" | "cancelled") {
        return Err(ApiError::conflict("receipt_not_refundable", format!("a {} receipt cannot be refunded", receipt.status)).into());
    }
    let program = super::program::version(tx.conn(), tenant, receipt.program_version).await?;
    let (_, current) = super::program::current(state, tx.conn(), tenant).await?;
    let occurred_at = req.occurred_at.unwrap_or(now);
    if occurred_at < now - current.offline_max_age_days * 86_400 || occurred_at > now + 300 || occurred_at < receipt.occurred_at {
        return Err(ApiError::rule(
            "occurred_at_out_of_range",
            "occurred_at must lie within the offline window and not before the receipt",
        )
        .into());
    }

    // Which lines, how much of each.
    let lines = receipts::lines(tx.conn(), tenant, &receipt.id).await?;
    let mut wanted: Vec<(usize, i64)> = Vec::new();
    match &req.items {
        None => {
            for (i, l) in lines.iter().enumerate() {
                if l.quantity_base > l.refunded_base {
                    wanted.push((i, l.quantity_base - l.refunded_base));
                }
            }
            if wanted.is_empty() {
                return Err(ApiError::rule("refund_exceeds_purchase", "everything on this receipt has already been refunded").into());
            }
        }
        Some(items) => {
            for it in items {
                let idx = match (&it.line_no, &it.sku) {
                    (Some(n), sku) => {
                        let i = lines.iter().position(|l| l.line_no == *n).ok_or_else(|| {
                            Failure::Api(ApiError::rule("line_not_found", format!("{}: no line {n} on this receipt", it.path)))
                        })?;
                        if let Some(s) = sku
                            && lines[i].sku.as_deref() != Some(s.as_str())
                        {
                            return Err(ApiError::rule("line_not_found", format!("{}: line {n} does not have sku {s}", it.path)).into());
                        }
                        i
                    }
                    (None, Some(s)) => {
                        let found: Vec<usize> =
                            lines.iter().enumerate().filter(|(_, l)| l.sku.as_deref() == Some(s.as_str())).map(|(i, _)| i).collect();
                        match found.len() {
                            0 => return Err(ApiError::rule("line_not_found", format!("{}: no line with sku {s}", it.path)).into()),
                            1 => found[0],
                            _ => {
                                return Err(ApiError::rule(
                                    "ambiguous_line",
                                    format!("{}: several lines have sku {s}; name the line_no", it.path),
                                )
                                .into());
                            }
                        }
                    }
                    (None, None) => unreachable!("checked when parsing"),
                };
                let line = &lines[idx];
                let measured = line.qty_kind == "milli";
                let k = match &it.quantity {
                    None => line.quantity_base - line.refunded_base,
                    Some(v) => match Quantity::from_json(v) {
                        Ok(Quantity::Units(n)) if !measured => n,
                        Ok(Quantity::Milli(n)) if measured => n,
                        _ if measured => {
                            return Err(ApiError::field(
                                format!("{}.quantity", it.path),
                                "line is measured: send a decimal string such as \"1.5\"",
                            )
                            .into());
                        }
                        _ => {
                            return Err(
                                ApiError::field(format!("{}.quantity", it.path), "line is counted: send a whole number of units").into()
                            );
                        }
                    },
                };
                match wanted.iter_mut().find(|(i, _)| *i == idx) {
                    Some((_, q)) => *q += k,
                    None => wanted.push((idx, k)),
                }
            }
            for (i, k) in &wanted {
                let l = &lines[*i];
                if *k <= 0 || l.refunded_base + k > l.quantity_base {
                    return Err(
                        ApiError::rule("refund_exceeds_purchase", format!("line {}: more than what is left to refund", l.line_no)).into()
                    );
                }
            }
        }
    }
    wanted.sort_by_key(|(i, _)| *i);

    // The exact proportions.
    let parts: Vec<_> = wanted
        .iter()
        .map(|(i, k)| {
            let l = &lines[*i];
            let state = LineState {
                quantity_base: l.quantity_base,
                refunded_base: l.refunded_base,
                payable_minor: l.payable_minor,
                points_redeemed: l.points_redeemed,
                points_earned: l.points_earned,
            };
            refund_line(&state, *k)
        })
        .collect();
    let money: Vec<i64> = parts.iter().map(|p| p.refund_minor).collect();
    let money_total: i64 = money.iter().sum();
    let returned_target: i64 = parts.iter().map(|p| p.points_returned).sum();
    let reverse_target: i64 = parts.iter().map(|p| p.points_reversed).sum();
    let refund_pk = new_id();

    let (mut points_returned, mut points_reversed, mut debt_added) = (0, 0, 0);
    let mut withheld = vec![0; money.len()];
    let mut balance = Value::Null;
    if let Some(member) = receipt.member_id.clone() {
        let mut b = Book::open(tx, tenant, &member, &program, now).await?.ok_or_else(|| Failure::Api(member_not_found()))?;
        let r = || EntryRef {
            receipt_id: Some(receipt.receipt_id.clone()),
            ref_id: Some(refund_pk.clone()),
            reason: Some(format!("refund {}", req.refund_id)),
        };
        // 1. Spent points go back to their lots first.
        if returned_target > 0 {
            points_returned =
                b.give_back(tx, &receipt.id, "redeem", returned_target, false, Some(("return_redeem", occurred_at, r()))).await?;
        }
        // 2. The receipt's points that already expired are not taken again.
        let mut to_take = reverse_target;
        if let Some(lot_id) = &receipt.earn_lot_id {
            let expired: i64 = ledger::consumptions(tx.conn(), tenant, lot_id, "expire").await?.iter().map(|c| c.points - c.returned).sum();
            let exempt = to_take.min((expired - receipt.expired_exempt).max(0));
            receipt.expired_exempt += exempt;
            to_take -= exempt;
        }
        // 3. Earned points come back from the receipt's own lot, then the others.
        points_reversed = b.take_back(tx, to_take, receipt.earn_lot_id.as_deref(), &refund_pk).await?;
        // 4. What the member already spent is withheld from the money, then owed.
        let shortfall = to_take - points_reversed;
        if shortfall > 0 {
            let (w, debt) = withhold(shortfall, program.redeem.point_value_minor, &money);
            withheld = w;
            debt_added = debt;
            b.balance.debt += debt;
        }
        let reversed_entry = points_reversed + debt_added;
        if reversed_entry > 0 {
            b.balance.lifetime_earned -= reversed_entry;
            b.entry(tx, "reverse_earn", -reversed_entry, occurred_at, r()).await?;
        }
        let saved = b.save(tx).await?;
        jobs::enqueue_in(tx, tenant, "tier", &saved.member_id, now).await?;
        balance = balance_json(&saved);
    }

    // The cashback wallet: spent money comes back, earned cashback is taken back by the
    // same proportions; cashback the member already spent is withheld from the money left
    // to pay back, and the rest is owed to the wallet.
    let part = |x: i64, q: i64, k: i64| if q > 0 { ((i128::from(x) * i128::from(k)) / i128::from(q)) as i64 } else { 0 };
    let (mut wallet_returned, mut cashback_reversed) = (0i64, 0i64);
    for (i, k) in &wanted {
        let l = &lines[*i];
        wallet_returned +=
            part(l.wallet_minor, l.quantity_base, l.refunded_base + k) - part(l.wallet_minor, l.quantity_base, l.refunded_base);
        cashback_reversed +=
            part(l.cashback_minor, l.quantity_base, l.refunded_base + k) - part(l.cashback_minor, l.quantity_base, l.refunded_base);
    }
    let mut wallet_json = None;
    if let Some(member) = receipt.member_id.clone()
        && (wallet_returned > 0 || cashback_reversed > 0)
    {
        let mut w = super::offers::WalletBook::open(tx, tenant, &member).await?;
        w.return_spend(tx, wallet_returned, &receipt.receipt_id, &refund_pk, now).await?;
        let short = w.take_back(tx, cashback_reversed, &receipt.receipt_id, &refund_pk, now).await?;
        if short > 0 {
            let left: Vec<i128> = money.iter().zip(&withheld).map(|(m, w)| i128::from(m - w)).collect();
            let take = i128::from(short).min(left.iter().sum());
            let extra = kopilka_domain::money::spread(take, &left, Some(&left));
            for (w, e) in withheld.iter_mut().zip(&extra) {
                *w += *e as i64;
            }
            w.settle_debt(tx, take as i64, &receipt.receipt_id, &refund_pk, now).await?;
        }
        wallet_json = Some(super::offers::wallet_json(&w.save(tx).await?));
    }

    // Record the refund on the lines and the receipt.
    for (i, k) in &wanted {
        let l = &lines[*i];
        super::offers::refund_line(
            tx,
            tenant,
            &super::offers::StampRefund {
                receipt_pk: &receipt.id,
                line_no: l.line_no,
                quantity_base: l.quantity_base,
                refunded_before: l.refunded_base,
                refunded_after: l.refunded_base + k,
            },
            now,
        )
        .await?;
    }
    let mut out_lines = Vec::new();
    for (n, (i, k)) in wanted.iter().enumerate() {
        let l = &lines[*i];
        receipts::set_line_refunded(tx.conn(), tenant, &receipt.id, l.line_no, l.refunded_base + k).await?;
        let q = Quantity::from_storage(&l.qty_kind, *k).unwrap_or(Quantity::Units(*k));
        out_lines.push(json!({"line_no": l.line_no, "quantity": q, "refund_minor": money[n] - withheld[n], "withheld_minor": withheld[n]}));
    }
    let all_done = lines.iter().all(|l| {
        let extra = wanted.iter().find(|(i, _)| lines[*i].line_no == l.line_no).map(|(_, k)| *k).unwrap_or(0);
        l.refunded_base + extra >= l.quantity_base
    });
    receipt.status = if all_done { "refunded".into() } else { "partially_refunded".into() };
    if all_done {
        super::offers::refunded_in_full(tx, tenant, &receipt.id).await?;
    }
    receipt.refunded_payable_minor += money_total;
    receipts::update(tx.conn(), tenant, &receipt).await?;
    let withheld_total: i64 = withheld.iter().sum();
    let answer = json!({
        "refund_id": req.refund_id,
        "receipt_id": req.receipt_id,
        "store_id": req.store_id,
        "occurred_at": fmt_time(occurred_at),
        "refund_minor": money_total - withheld_total,
        "withheld_minor": withheld_total,
        "points_reversed": points_reversed,
        "points_returned": points_returned,
        "debt_added": debt_added,
        "lines": out_lines,
        "balance": balance,
    });
    let mut answer = answer;
    if let Some(w) = wallet_json {
        answer["wallet_returned_minor"] = Value::from(wallet_returned);
        answer["cashback_reversed_minor"] = Value::from(cashback_reversed);
        answer["wallet"] = w;
    }
    receipts::insert_refund(
        tx.conn(),
        tenant,
        &Refund {
            id: refund_pk.clone(),
            store_id: req.store_id.clone(),
            refund_id: req.refund_id.clone(),
            receipt_pk: receipt.id.clone(),
            body_hash: req.hash.clone(),
            answer: answer.to_string(),
            refund_minor: money_total - withheld_total,
            payable_minor: money_total,
            debt_added,
            occurred_at,
            created_at: now,
        },
    )
    .await?;
    Ok(answer)
}
