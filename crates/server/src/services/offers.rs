//! Campaigns at the till: which apply to a receipt, within their budgets and coupons, what
//! they give, and the records that let a hold, a void or a refund give it all back. Also
//! the cashback wallet's movements.
//!
//! Lock order inside a till transaction: receipt, tenant (shared), member balance, member
//! wallet, coupons (by code), campaign usage rows (by campaign id).

use super::pos::PosRequest;
use super::{Failure, Fallible};
use crate::error::ApiError;
use crate::state::AppState;
use kopilka_domain::campaign::{self as engine, CampaignSet, Ctx, MemberFacts, Place, Reason};
use kopilka_domain::program::Program;
use kopilka_domain::receipt::{CalcError, CalcInput, ReceiptCalc, RedeemRequest, calculate};
use kopilka_store::campaigns::{self as store, Coupon, ReceiptCampaign, Usage, Wallet, WalletEntry};
use kopilka_store::members::Member;
use kopilka_store::tenants::Store;
use kopilka_store::{Tx, new_id};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The sale campaigns are decided for: the receipt, its member, store and tier, the
/// programme, and the receipt's time.
#[derive(Clone, Copy)]
pub struct Sale<'a> {
    pub req: &'a PosRequest,
    pub member: Option<&'a Member>,
    pub store: &'a Store,
    pub program: &'a Program,
    pub tier: Option<&'a str>,
    pub at: i64,
}

/// Everything read from the database that the (synchronous) decision needs.
pub struct Prepared {
    pub set: Arc<CampaignSet>,
    pub facts: Option<MemberFacts>,
    /// Valid coupons presented, by campaign id.
    pub coupons: HashMap<String, Coupon>,
    /// Campaigns that must not apply, by campaign id (invalid coupon, budget spent).
    pub blocked: HashMap<String, Reason>,
    /// Budget usage so far (total, member) of budget-limited candidates.
    pub usage: HashMap<String, (Usage, Usage)>,
    pub local: chrono::NaiveDateTime,
}

/// What the campaigns did to a receipt.
pub struct Decision {
    pub calc: ReceiptCalc,
    pub applied: Vec<Value>,
    pub not_applied: Vec<Value>,
    pub records: Vec<ReceiptCampaign>,
}

fn ctx<'a>(program: &'a Program, req: &PosRequest, p: &'a Prepared, tier: Option<&'a str>, store: &'a Store, at: i64) -> Ctx<'a> {
    let mut c =
        Ctx::new(program, &req.lines, p.facts.as_ref(), tier, Place { store_id: &store.id, store_code: &store.code, local: p.local, at });
    c.coupons = p.coupons.keys().cloned().chain(p.blocked.keys().filter(|k| k.starts_with("coupon:")).map(|k| k[7..].to_owned())).collect();
    c
}

/// Read what the campaigns need: the set, the member's facts, the presented coupons and
/// the budgets of the candidates. In a write transaction (`write`), coupon and usage rows
/// are locked until commit.
pub async fn prepare(
    state: &AppState,
    tx: &mut Tx,
    auth: &crate::auth::Auth,
    sale: &Sale<'_>,
    write: bool,
    own_hold: Option<&str>,
) -> Fallible<Prepared> {
    let Sale { req, member, store, program, tier, at } = *sale;
    let tenant = auth.tenant_id.as_str();
    let set = super::campaigns::current(state, tx.conn(), tenant).await?;
    let tz: chrono_tz::Tz = store.time_zone.parse().unwrap_or_else(|_| program.tz());
    let local = chrono::DateTime::from_timestamp(at, 0).unwrap_or_default().with_timezone(&tz).naive_local();
    let mut facts = match member {
        None => None,
        Some(m) if set.campaigns.is_empty() => Some(MemberFacts { id: m.id.clone(), enrolled_at: m.created_at, ..MemberFacts::default() }),
        Some(m) => {
            // Only what some campaign can look at is read.
            let needs = set.needs;
            let attributes = match needs.attributes {
                true => store::attributes(tx.conn(), tenant, &m.id).await?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default(),
                false => serde_json::Map::new(),
            };
            Some(MemberFacts {
                id: m.id.clone(),
                tags: if needs.tags { store::tags(tx.conn(), tenant, &m.id).await? } else { Vec::new() },
                attributes,
                enrolled_at: m.created_at,
                birthday: m.birthday.as_deref().and_then(|b| chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").ok()),
                purchases: if needs.purchases {
                    store::purchases(tx.conn(), tenant, &m.id, Some((&req.store_id, &req.till_id, &req.receipt_id))).await?
                } else {
                    0
                },
                stamps: if needs.stamps {
                    store::stamps_of(tx.conn(), tenant, &m.id).await?.into_iter().collect()
                } else {
                    Default::default()
                },
            })
        }
    };
    // A quote of a receipt that this till holds with the same body (`own_hold`, its pk):
    // what its own hold took (coupon uses, budget, stamps) counts as available to it, as
    // its held points and wallet money do, so the quote agrees with the checkout.
    let own: Vec<ReceiptCampaign> = match own_hold {
        Some(pk) => store::receipt_campaigns(tx.conn(), tenant, pk).await?.into_iter().filter(|r| r.status == "held").collect(),
        None => Vec::new(),
    };
    if let Some(f) = &mut facts {
        for r in own.iter().filter(|r| r.stamps_every > 0) {
            if let Some(s) = f.stamps.get_mut(&r.campaign_id) {
                *s -= stamp_lines(r).iter().map(|(_, units, free)| units - r.stamps_every * free).sum::<i64>();
            }
        }
    }
    let lock = if write { tx.for_update() } else { "" };
    let mut p = Prepared { set: set.clone(), facts, coupons: HashMap::new(), blocked: HashMap::new(), usage: HashMap::new(), local };

    // Coupons, in code order (the lock order).
    let mut codes: Vec<(usize, String)> = req.coupons.iter().enumerate().map(|(i, c)| (i, super::campaigns::normalize_code(c))).collect();
    codes.sort_by(|a, b| a.1.cmp(&b.1));
    for (i, code) in codes {
        if super::campaigns::unknown_codes_exhausted(state, auth) {
            return Err(ApiError::rate_limited().into());
        }
        let Some(mut k) = store::coupon_by_code(tx.conn(), tenant, &code, lock).await? else {
            super::campaigns::note_unknown_code(state, auth)?;
            return Err(ApiError::rule("coupon_not_found", format!("coupon {} is not known", req.coupons[i])).into());
        };
        if p.coupons.contains_key(&k.campaign_id) || p.blocked.contains_key(&format!("coupon:{}", k.campaign_id)) {
            return Err(ApiError::field(format!("coupons[{i}]"), "another coupon of the same campaign is on this receipt").into());
        }
        let own_use = own.iter().any(|r| r.coupon_id.as_deref() == Some(k.id.as_str()));
        k.uses -= i64::from(own_use);
        match coupon_problem(tx, tenant, &set, &k, member.map(|m| m.id.as_str()), at, i64::from(own_use)).await? {
            None => {
                p.coupons.insert(k.campaign_id.clone(), k);
            }
            Some(r) => {
                p.blocked.insert(format!("coupon:{}", k.campaign_id), r);
            }
        }
    }

    // Budgets of the candidates that have one, in campaign id order (the lock order).
    let mut limited: Vec<String> = {
        let c = ctx(program, req, &p, tier, store, at);
        set.candidates(&c).into_iter().map(|i| &set.campaigns[i]).filter(|k| k.spec.budget.is_limited()).map(|k| k.id.clone()).collect()
    };
    limited.sort();
    for id in limited {
        let m = member.map(|m| m.id.as_str());
        if write {
            store::ensure_usage(tx.conn(), tenant, &id, m).await?;
        }
        let mut u = store::usage(tx.conn(), tenant, &id, m, lock).await?;
        for r in own.iter().filter(|r| r.campaign_id == id && r.counted) {
            for x in [&mut u.0, &mut u.1] {
                x.points -= r.points;
                x.money_minor -= r.money_minor;
                x.uses -= 1;
            }
        }
        p.usage.insert(id, u);
    }
    Ok(p)
}

/// [`prepare`] for a receipt that needs nothing read for its campaigns: no coupons, and
/// no candidate campaign that looks at the member's tags, attributes, purchases or
/// stamps or that has a budget. None when something must be read (the caller then takes
/// the per-receipt path). Used by the batched checkout (`checkout_batch`).
pub fn prepare_pure(set: &Arc<CampaignSet>, sale: &Sale<'_>) -> Option<Prepared> {
    let Sale { req, member, store, program, tier, at } = *sale;
    if !req.coupons.is_empty() {
        return None;
    }
    let needs = set.needs;
    if !set.campaigns.is_empty() && (needs.tags || needs.attributes || needs.purchases || needs.stamps) {
        return None;
    }
    let tz: chrono_tz::Tz = store.time_zone.parse().unwrap_or_else(|_| program.tz());
    let local = chrono::DateTime::from_timestamp(at, 0).unwrap_or_default().with_timezone(&tz).naive_local();
    let facts = member.map(|m| MemberFacts {
        id: m.id.clone(),
        enrolled_at: m.created_at,
        birthday: if set.campaigns.is_empty() {
            None
        } else {
            m.birthday.as_deref().and_then(|b| chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").ok())
        },
        ..MemberFacts::default()
    });
    let p = Prepared { set: set.clone(), facts, coupons: HashMap::new(), blocked: HashMap::new(), usage: HashMap::new(), local };
    let c = ctx(program, req, &p, tier, store, at);
    if set.candidates(&c).into_iter().any(|i| set.campaigns[i].spec.budget.is_limited()) {
        return None;
    }
    Some(p)
}

/// The rows [`record`] writes for a receipt whose campaigns count no budget, use no coupon
/// and give no stamps (None otherwise), for a caller that writes many receipts' rows in
/// one statement.
pub fn plain_records(
    set: &CampaignSet,
    records: &[ReceiptCampaign],
    receipt_pk: &str,
    status: &str,
    now: i64,
) -> Option<Vec<ReceiptCampaign>> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.receipt_pk = receipt_pk.to_owned();
            r.status = status.to_owned();
            r.created_at = now;
            r.counted = set.by_id(&r.campaign_id).is_some_and(|k| k.spec.budget.is_limited());
            let plain = !r.counted && r.coupon_id.is_none() && (r.stamps_every <= 0 || r.member_id.is_empty());
            plain.then_some(r)
        })
        .collect()
}

/// Why a known coupon cannot be used now, if it cannot.
async fn coupon_problem(
    tx: &mut Tx,
    tenant: &str,
    set: &CampaignSet,
    k: &Coupon,
    member: Option<&str>,
    at: i64,
    own_uses: i64,
) -> Fallible<Option<Reason>> {
    let code = k.code.clone();
    let live = set.by_id(&k.campaign_id).is_some_and(|c| c.spec.status == engine::Status::Active);
    Ok(if k.status != "active" || !live {
        Some(Reason::CouponInactive { code })
    } else if k.expires_at.is_some_and(|t| t <= at) {
        Some(Reason::CouponExpired { code })
    } else if k.starts_at.is_some_and(|t| t > at) {
        Some(Reason::CouponNotYetValid { code })
    } else if k.max_uses.is_some_and(|m| k.uses >= m) {
        Some(Reason::CouponUsedUp { code })
    } else if (k.member_id.is_some() || k.per_member_limit.is_some()) && member.is_none() {
        Some(Reason::CouponNeedsMember { code })
    } else if k.member_id.as_deref().is_some_and(|m| Some(m) != member) {
        Some(Reason::CouponNotForMember { code })
    } else if let (Some(limit), Some(m)) = (k.per_member_limit, member)
        && store::coupon_member_uses(tx.conn(), tenant, &k.id, m).await? - own_uses >= limit
    {
        Some(Reason::CouponMemberLimit { code })
    } else {
        None
    })
}

/// Validate a coupon outside a receipt (the validation endpoint).
pub async fn validate_coupon(state: &AppState, auth: &crate::auth::Auth, code: &str, member: Option<&str>) -> Result<Value, ApiError> {
    let tenant = auth.tenant_id.as_str();
    if super::campaigns::unknown_codes_exhausted(state, auth) {
        return Err(ApiError::rate_limited());
    }
    let mut tx = state.db.begin_read().await?;
    let code = super::campaigns::normalize_code(code);
    let Some(k) = store::coupon_by_code(tx.conn(), tenant, &code, "").await? else {
        super::campaigns::note_unknown_code(state, auth)?;
        return Ok(json!({"code": code, "valid": false, "reason_code": "coupon_not_found", "reason": "coupon not found"}));
    };
    let (_, program) = super::program::current(state, tx.conn(), tenant).await?;
    let set = super::campaigns::current(state, tx.conn(), tenant).await?;
    let problem = coupon_problem(&mut tx, tenant, &set, &k, member, kopilka_store::now_s(), 0).await.map_err(|e| match e {
        Failure::Api(a) => a,
        Failure::Store(s) => s.into(),
    })?;
    tx.rollback().await?;
    let campaign = set.by_id(&k.campaign_id);
    let mut out = json!({
        "code": k.code, "valid": problem.is_none(), "coupon_id": k.id, "campaign_id": k.campaign_id,
        "campaign_name": campaign.map(|c| c.spec.name.clone()), "uses": k.uses, "max_uses": k.max_uses,
        "expires_at": crate::input::fmt_time_opt(k.expires_at),
    });
    if let Some(r) = problem {
        out["reason_code"] = Value::String(r.code().into());
        out["reason"] = Value::String(r.text(program.language, &program.currency));
    }
    Ok(out)
}

/// Decide the campaigns and compute the receipt. Campaigns whose budget the result would
/// pass, or that would give nothing, are blocked and the receipt computed again.
pub fn decide(
    sale: &Sale<'_>,
    tier_row: Option<&kopilka_domain::program::Tier>,
    p: &Prepared,
    available: i64,
    wallet_available: i64,
) -> Result<Decision, CalcError> {
    let Sale { req, store, program, at, .. } = *sale;
    let tier = tier_row.map(|t| t.code.as_str());
    let c = ctx(program, req, p, tier, store, at);
    let set = &p.set;
    let mut blocked: HashMap<usize, Reason> = HashMap::new();
    for (i, k) in set.campaigns.iter().enumerate() {
        if let Some(r) = p.blocked.get(&format!("coupon:{}", k.id)).or_else(|| p.blocked.get(&k.id)) {
            blocked.insert(i, r.clone());
        }
    }
    // `spend`: with the requested points and wallet money, or (while settling the
    // campaigns after a spending error) without any.
    let input = |plan: &[kopilka_domain::receipt::PlannedCampaign], spend: bool| {
        calculate(&CalcInput {
            program,
            tier: tier_row,
            lines: &req.lines,
            redeem: if spend { req.redeem } else { RedeemRequest::None },
            available_points: available,
            plan,
            wallet: if spend { req.wallet } else { RedeemRequest::None },
            wallet_available,
        })
    };
    let mut spend = true;
    let (verdict, calc) = loop {
        let verdict = engine::evaluate(set, &c, &blocked);
        let calc = match input(&verdict.plan, spend) {
            Ok(calc) => calc,
            // Spending limits depend on the discounts; settle the campaigns without
            // spending first (blocking only lowers discounts, so the limit only rises).
            Err(CalcError::InsufficientPoints { .. } | CalcError::RedeemLimitExceeded { .. } | CalcError::InsufficientWallet { .. })
                if spend =>
            {
                spend = false;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut changed = false;
        for (pc, amt) in verdict.plan.iter().zip(&calc.campaigns) {
            let k = &set.campaigns[pc.index];
            let stamps = k.stamp_every().map(|(_, t)| engine::stamp_units(&c, &selector_mask(&c, t))).unwrap_or(0);
            if amt.is_empty() && stamps == 0 {
                blocked.insert(pc.index, Reason::NothingQualifies);
                changed = true;
                continue;
            }
            if let Some((total, mine)) = p.usage.get(&k.id) {
                let b = &k.spec.budget;
                let money = amt.discount_minor + amt.cashback_minor;
                let over = |u: &Usage, pts: Option<i64>, mon: Option<i64>, uses: Option<i64>| {
                    pts.is_some_and(|l| u.points + amt.points > l)
                        || mon.is_some_and(|l| u.money_minor + money > l)
                        || uses.is_some_and(|l| u.uses + 1 > l)
                };
                if over(total, b.points, b.money_minor, b.uses) {
                    blocked.insert(pc.index, Reason::BudgetSpent);
                    changed = true;
                } else if b.has_per_member()
                    && c.member.is_some()
                    && over(mine, b.per_member_points, b.per_member_money_minor, b.per_member_uses)
                {
                    blocked.insert(pc.index, Reason::MemberLimitReached);
                    changed = true;
                }
            }
        }
        if !changed {
            if !spend {
                // Campaigns are settled; now the real spending (its errors are the answer).
                let calc = input(&verdict.plan, true)?;
                break (verdict, calc);
            }
            break (verdict, calc);
        }
    };

    let lang = program.language;
    let mut applied = Vec::new();
    let mut records = Vec::new();
    for (pc, amt) in verdict.plan.iter().zip(&calc.campaigns) {
        let k = &set.campaigns[pc.index];
        let coupon = p.coupons.get(&k.id);
        let mut a = json!({
            "campaign_id": k.id, "code": k.spec.code, "name": k.spec.name,
            "discount_minor": amt.discount_minor, "points": amt.points, "cashback_minor": amt.cashback_minor,
        });
        if amt.free_units > 0 {
            a["free_units"] = Value::from(amt.free_units);
        }
        if let Some(cp) = coupon {
            a["coupon"] = Value::String(cp.code.clone());
        }
        let (mut every, mut stamp_lines) = (0, Vec::new());
        if let Some((n, target)) = k.stamp_every() {
            every = n;
            let mask = selector_mask(&c, target);
            let units = engine::stamp_units(&c, &mask);
            let before = c.member.and_then(|m| m.stamps.get(&k.id).copied()).unwrap_or(0);
            let after = before + units - n * amt.free_units;
            a["stamps"] = json!({"every": n, "before": before, "added": units, "free_units": amt.free_units, "after": after});
            for (i, l) in c.lines.iter().enumerate() {
                let counted = mask[i] && l.counted && l.discountable;
                let free = amt.free_by_line.iter().filter(|(j, _)| *j == i).map(|(_, f)| *f).sum::<i64>();
                if counted {
                    stamp_lines.push(json!([req.lines[i].line_no, (l.milli / 1000) as i64, free]));
                }
            }
        }
        applied.push(a);
        records.push(ReceiptCampaign {
            receipt_pk: String::new(),
            campaign_id: k.id.clone(),
            member_id: c.member.map(|m| m.id.clone()).unwrap_or_default(),
            coupon_id: coupon.map(|cp| cp.id.clone()),
            points: amt.points,
            money_minor: amt.discount_minor + amt.cashback_minor,
            stamps_every: every,
            stamp_lines: Value::Array(stamp_lines).to_string(),
            status: String::new(),
            created_at: 0,
            counted: k.spec.budget.is_limited(),
        });
    }
    let misses = verdict.misses;
    let not_applied = misses
        .iter()
        .filter(|(_, m)| !m.reasons.is_empty())
        .take(engine::MAX_MISSES)
        .map(|(i, m)| {
            let k = &set.campaigns[*i];
            json!({"campaign_id": k.id, "code": k.spec.code, "name": k.spec.name,
                   "reason_code": m.reasons[0].code(), "reason": m.text(lang, &program.currency)})
        })
        .collect();
    Ok(Decision { calc, applied, not_applied, records })
}

fn selector_mask(c: &Ctx<'_>, s: &engine::Selector) -> Vec<bool> {
    let cats: Vec<String> = s.categories.iter().map(|x| x.to_lowercase()).collect();
    c.lines
        .iter()
        .map(|l| {
            (cats.is_empty() && s.skus.is_empty())
                || l.category.as_ref().is_some_and(|x| cats.contains(x))
                || l.sku.as_ref().is_some_and(|x| s.skus.contains(x))
        })
        .collect()
}

/// Write what the campaigns gave: per-receipt records, budget usage, coupon uses and
/// stamps. `status` is `held` (a reserve) or `committed`.
pub async fn record(
    tx: &mut Tx,
    tenant: &str,
    set: &CampaignSet,
    records: &[ReceiptCampaign],
    receipt_pk: &str,
    status: &str,
    now: i64,
) -> Fallible<()> {
    let records: Vec<ReceiptCampaign> = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.receipt_pk = receipt_pk.to_owned();
            r.status = status.to_owned();
            r.created_at = now;
            r.counted = set.by_id(&r.campaign_id).is_some_and(|k| k.spec.budget.is_limited());
            r
        })
        .collect();
    store::insert_receipt_campaigns(tx.conn(), tenant, &records).await?;
    for r in &records {
        let member = (!r.member_id.is_empty()).then_some(r.member_id.as_str());
        if r.counted {
            store::add_usage(tx.conn(), tenant, &r.campaign_id, member, Usage { points: r.points, money_minor: r.money_minor, uses: 1 })
                .await?;
        }
        if let Some(cp) = &r.coupon_id {
            store::add_coupon_uses(tx.conn(), tenant, cp, 1).await?;
        }
        if let Some(m) = member
            && r.stamps_every > 0
        {
            let delta: i64 = stamp_lines(r).iter().map(|(_, units, free)| units - r.stamps_every * free).sum();
            store::add_stamps(tx.conn(), tenant, m, &r.campaign_id, delta, now).await?;
        }
    }
    Ok(())
}

/// (line_no, stamp units, free units) of a stamp-card record.
pub fn stamp_lines(r: &ReceiptCampaign) -> Vec<(i64, i64, i64)> {
    serde_json::from_str::<Vec<(i64, i64, i64)>>(&r.stamp_lines).unwrap_or_default()
}

/// A held receipt was checked out: its records become committed.
pub async fn commit_held(tx: &mut Tx, tenant: &str, receipt_pk: &str) -> Fallible<()> {
    for r in store::receipt_campaigns(tx.conn(), tenant, receipt_pk).await? {
        if r.status == "held" {
            store::set_receipt_campaign_status(tx.conn(), tenant, receipt_pk, &r.campaign_id, "committed").await?;
        }
    }
    Ok(())
}

/// Give back everything a receipt's campaigns took: budget usage, coupon uses, stamps.
/// Used when a hold ends and when a receipt is voided.
pub async fn release(tx: &mut Tx, tenant: &str, receipt_pk: &str, now: i64) -> Fallible<()> {
    for r in store::receipt_campaigns(tx.conn(), tenant, receipt_pk).await? {
        if r.status != "held" && r.status != "committed" {
            continue;
        }
        store::set_receipt_campaign_status(tx.conn(), tenant, receipt_pk, &r.campaign_id, "released").await?;
        let member = (!r.member_id.is_empty()).then_some(r.member_id.as_str());
        // Only what was added to the counters is taken off (a record from before the
        // campaign had a budget never was).
        if r.counted {
            store::sub_usage(tx.conn(), tenant, &r.campaign_id, member, Usage { points: r.points, money_minor: r.money_minor, uses: 1 })
                .await?;
        }
        if let Some(cp) = &r.coupon_id {
            store::add_coupon_uses(tx.conn(), tenant, cp, -1).await?;
        }
        if let Some(m) = member
            && r.stamps_every > 0
        {
            let delta: i64 = stamp_lines(&r).iter().map(|(_, units, free)| units - r.stamps_every * free).sum();
            store::add_stamps(tx.conn(), tenant, m, &r.campaign_id, -delta, now).await?;
        }
    }
    Ok(())
}

/// Units of one line of a receipt being refunded: `refunded_before → refunded_after` of
/// its `quantity_base` (all in the base unit).
#[derive(Debug, Clone, Copy)]
pub struct StampRefund<'a> {
    pub receipt_pk: &'a str,
    pub line_no: i64,
    pub quantity_base: i64,
    pub refunded_before: i64,
    pub refunded_after: i64,
}

/// A refund of `k_before → k_after` units (base) of line `line_no` (quantity `q`): take
/// back the stamps those units earned and give back the free units they used, by the
/// same cumulative floor proportions as points. When the receipt is now refunded in full,
/// its coupon uses are given back too.
pub async fn refund_line(tx: &mut Tx, tenant: &str, r: &StampRefund<'_>, now: i64) -> Fallible<()> {
    let StampRefund { receipt_pk, line_no, quantity_base: q, refunded_before: k_before, refunded_after: k_after } = *r;
    if q <= 0 {
        return Ok(());
    }
    for r in store::receipt_campaigns(tx.conn(), tenant, receipt_pk).await? {
        if r.status != "committed" || r.stamps_every == 0 || r.member_id.is_empty() {
            continue;
        }
        for (ln, units, free) in stamp_lines(&r) {
            if ln != line_no {
                continue;
            }
            let part = |x: i64, k: i64| ((i128::from(x) * i128::from(k)) / i128::from(q)) as i64;
            let units_back = part(units, k_after) - part(units, k_before);
            let free_back = part(free, k_after) - part(free, k_before);
            let delta = -units_back + r.stamps_every * free_back;
            if delta != 0 {
                store::add_stamps(tx.conn(), tenant, &r.member_id, &r.campaign_id, delta, now).await?;
            }
        }
    }
    Ok(())
}

/// The receipt is now refunded in full: its coupons may be used again.
pub async fn refunded_in_full(tx: &mut Tx, tenant: &str, receipt_pk: &str) -> Fallible<()> {
    for r in store::receipt_campaigns(tx.conn(), tenant, receipt_pk).await? {
        if r.status == "committed" {
            store::set_receipt_campaign_status(tx.conn(), tenant, receipt_pk, &r.campaign_id, "refunded").await?;
            if let Some(cp) = &r.coupon_id {
                store::add_coupon_uses(tx.conn(), tenant, cp, -1).await?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- the cashback wallet

/// A member's wallet inside a transaction.
pub struct WalletBook {
    pub tenant: String,
    pub member: String,
    pub w: Wallet,
}

/// One wallet entry to append: its kind and amount, what it refers to, when it happened
/// and was written, and the debt it paid off.
#[derive(Debug, Clone, Copy)]
struct WalletPosting<'a> {
    kind: &'a str,
    amount: i64,
    receipt_id: Option<&'a str>,
    ref_id: &'a str,
    reason: Option<&'a str>,
    at: i64,
    now: i64,
    debt_paid: i64,
}

impl<'a> WalletPosting<'a> {
    /// An entry of a receipt, with no reason and no debt paid.
    fn of_receipt(kind: &'a str, amount: i64, receipt_id: &'a str, ref_id: &'a str, at: i64, now: i64) -> Self {
        WalletPosting { kind, amount, receipt_id: Some(receipt_id), ref_id, reason: None, at, now, debt_paid: 0 }
    }
}

impl WalletBook {
    pub async fn open(tx: &mut Tx, tenant: &str, member: &str) -> Fallible<WalletBook> {
        let w = store::lock_wallet(tx, tenant, member).await?;
        Ok(WalletBook { tenant: tenant.to_owned(), member: member.to_owned(), w })
    }

    pub fn available(&self) -> i64 {
        (self.w.balance_minor - self.w.held_minor).max(0)
    }

    async fn entry(&mut self, tx: &mut Tx, e: WalletPosting<'_>) -> Fallible<()> {
        let WalletPosting { kind, amount, receipt_id, ref_id, reason, at, now, debt_paid } = e;
        self.w.seq += 1;
        store::insert_wallet_entry(
            tx.conn(),
            &self.tenant,
            &WalletEntry {
                id: new_id(),
                member_id: self.member.clone(),
                seq: self.w.seq,
                kind: kind.into(),
                amount_minor: amount,
                receipt_id: receipt_id.map(str::to_owned),
                ref_id: Some(ref_id.to_owned()),
                reason: reason.map(str::to_owned),
                occurred_at: at,
                created_at: now,
                debt_paid,
            },
        )
        .await?;
        Ok(())
    }

    /// Spend wallet money on a receipt (`spend`, negative).
    pub async fn spend(&mut self, tx: &mut Tx, amount: i64, receipt_id: &str, pk: &str, at: i64, now: i64) -> Fallible<()> {
        if amount > 0 {
            self.w.balance_minor -= amount;
            self.entry(tx, WalletPosting::of_receipt("spend", -amount, receipt_id, pk, at, now)).await?;
        }
        Ok(())
    }

    /// Cashback earned: pays wallet debt first, the rest is credited. The entry carries
    /// the whole amount (entries sum to balance − debt).
    pub async fn cashback(&mut self, tx: &mut Tx, amount: i64, receipt_id: &str, pk: &str, at: i64, now: i64) -> Fallible<()> {
        if amount > 0 {
            let paid = self.w.debt_minor.min(amount);
            self.w.debt_minor -= paid;
            self.w.balance_minor += amount - paid;
            let posting = WalletPosting { debt_paid: paid, ..WalletPosting::of_receipt("cashback", amount, receipt_id, pk, at, now) };
            self.entry(tx, posting).await?;
        }
        Ok(())
    }

    /// Money spent on a receipt comes back (refund or void).
    pub async fn return_spend(&mut self, tx: &mut Tx, amount: i64, receipt_id: &str, ref_id: &str, now: i64) -> Fallible<()> {
        if amount > 0 {
            self.w.balance_minor += amount;
            self.entry(tx, WalletPosting::of_receipt("return_spend", amount, receipt_id, ref_id, now, now)).await?;
        }
        Ok(())
    }

    /// Take back cashback: what the available balance covers; the rest is returned as the
    /// shortfall for the caller to withhold or record as debt.
    pub async fn take_back(&mut self, tx: &mut Tx, amount: i64, receipt_id: &str, ref_id: &str, now: i64) -> Fallible<i64> {
        if amount <= 0 {
            return Ok(0);
        }
        let taken = amount.min(self.available());
        self.w.balance_minor -= taken;
        let shortfall = amount - taken;
        self.w.debt_minor += shortfall;
        self.entry(tx, WalletPosting::of_receipt("reverse_cashback", -amount, receipt_id, ref_id, now, now)).await?;
        Ok(shortfall)
    }

    /// Withheld money settles part of the wallet debt just created (an entry of its own).
    pub async fn settle_debt(&mut self, tx: &mut Tx, amount: i64, receipt_id: &str, ref_id: &str, now: i64) -> Fallible<()> {
        if amount > 0 {
            self.w.debt_minor -= amount;
            self.entry(
                tx,
                WalletPosting {
                    reason: Some("withheld from the refund"),
                    ..WalletPosting::of_receipt("withheld", amount, receipt_id, ref_id, now, now)
                },
            )
            .await?;
        }
        Ok(())
    }

    pub async fn save(self, tx: &mut Tx) -> Fallible<Wallet> {
        store::save_wallet(tx.conn(), &self.tenant, &self.member, &self.w).await?;
        Ok(self.w)
    }
}

pub fn wallet_json(w: &Wallet) -> Value {
    json!({"balance_minor": w.balance_minor, "held_minor": w.held_minor, "debt_minor": w.debt_minor,
           "available_minor": (w.balance_minor - w.held_minor).max(0)})
}

/// A hold ended (expired or cancelled) or a held receipt is dropped: give back the
/// campaigns' usage and the wallet money it held.
pub async fn release_held(tx: &mut Tx, tenant: &str, receipt_pk: &str, member: Option<&str>, now: i64) -> Fallible<()> {
    release(tx, tenant, receipt_pk, now).await?;
    if let Some(m) = member {
        let held: i64 = kopilka_store::receipts::lines(tx.conn(), tenant, receipt_pk).await?.iter().map(|l| l.wallet_minor).sum();
        if held > 0 {
            let mut wb = WalletBook::open(tx, tenant, m).await?;
            wb.w.held_minor -= held;
            wb.save(tx).await?;
        }
    }
    Ok(())
}
