//! Members: enrolment, lookup, reads, balance, ledger, history, adjustments, transfers.

use super::ledger::{BalanceFigures, Book, Credit, EntryRef};
use super::{Failure, Fallible, with_retry};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::input::{Time, canonical, sha256_hex};
use crate::state::AppState;
use axum::http::StatusCode;
use kopilka_domain::identity::{card_number_from_digits, mask_email, mask_phone};
use kopilka_domain::tiers::{next_tier, tier_for_spend};
use kopilka_store::members::{self, By, Consent, Member};
use kopilka_store::receipts::{self, IdemTable};
use kopilka_store::{Conn, StoreError, Tx, ledger, new_id, now_s, tenants};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn member_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "member_not_found", "no such member")
}

#[derive(Debug, Clone)]
pub struct NewMember {
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub birthday: Option<String>,
    pub referral_code: Option<String>,
    pub consents: Vec<(String, bool)>,
    /// Imported members keep their card number.
    pub card_number: Option<String>,
    pub source: String,
}

/// A random 13-digit EAN-13 card number starting with 2.
pub fn new_card_number() -> String {
    let mut digits = [0u8; 11];
    for d in &mut digits {
        *d = (rand::random::<u32>() % 10) as u8;
    }
    card_number_from_digits(&digits)
}

/// An opaque token of 192 random bits.
pub fn new_qr_token() -> String {
    let mut bytes = [0u8; 24];
    rand::fill(&mut bytes);
    let mut s = String::with_capacity(48);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Insert a member inside the caller's transaction. A clash on email, phone or external
/// id is `member_exists`; a clash on a generated card number or token is retried by
/// the caller (vanishingly rare).
pub async fn insert(tx: &mut Tx, tenant: &str, m: &NewMember, now: i64) -> Fallible<Member> {
    let member = Member {
        id: new_id(),
        card_number: m.card_number.clone().unwrap_or_else(new_card_number),
        qr_token: new_qr_token(),
        phone: m.phone.clone(),
        email: m.email.clone(),
        external_id: m.external_id.clone(),
        name: m.name.clone(),
        birthday: m.birthday.clone(),
        referral_code: m.referral_code.clone(),
        source: m.source.clone(),
        created_at: now,
    };
    match members::insert(tx.conn(), tenant, &member).await {
        Ok(()) => {}
        Err(StoreError::Unique(what)) => {
            let field = ["phone", "email", "external", "card"].into_iter().find(|f| what.contains(f));
            return Err(match field {
                Some("card") if m.card_number.is_some() => {
                    Failure::Api(ApiError::conflict("member_exists", "a member with this card number already exists"))
                }
                Some("card") | None => Failure::Store(StoreError::Unique(what)),
                Some(f) => Failure::Api(ApiError::conflict(
                    "member_exists",
                    format!("a member with this {} already exists", if f == "external" { "external_id" } else { f }),
                )),
            });
        }
        Err(e) => return Err(e.into()),
    }
    for (kind, granted) in &m.consents {
        members::insert_consent(
            tx.conn(),
            tenant,
            &member.id,
            &Consent { kind: kind.clone(), granted: *granted, source: m.source.clone(), recorded_at: now },
        )
        .await?;
    }
    members::insert_event(tx.conn(), tenant, &member.id, "enrolled", &json!({"source": m.source}), now).await?;
    Ok(member)
}

pub async fn create(state: &AppState, auth: &Auth, m: NewMember) -> ApiResult<MemberView> {
    let tenant = auth.tenant_id.clone();
    let member = with_retry(|_| {
        let tenant = tenant.clone();
        let m = &m;
        async move {
            let mut tx = state.db.begin().await?;
            let now = now_s();
            let member = insert(&mut tx, &tenant, m, now).await?;
            tenants::audit(
                tx.conn(),
                &tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "member.create",
                    object_type: "member",
                    object_id: &member.id,
                    details: &json!({}),
                    at: now,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(member)
        }
    })
    .await?;
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let mut v = view(&mut c, &auth.tenant_id, &member, auth.masked()).await?;
    // The member is at the till: the pos key gets the card and token it must print.
    v.qr_token = Some(member.qr_token.clone());
    Ok(v)
}

/// One consent as a member's answer shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentView {
    pub granted: bool,
    pub source: String,
    pub recorded_at: Time,
}

/// A member as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub id: String,
    pub card_number: String,
    pub external_id: Option<String>,
    pub name: Option<String>,
    /// Masked for pos keys (`+7912*****89`).
    pub phone: Option<String>,
    /// Masked for pos keys.
    pub email: Option<String>,
    pub referral_code: Option<String>,
    /// By kind (`personal_data`, `marketing`, …).
    pub consents: BTreeMap<String, ConsentView>,
    pub created_at: Time,
    /// Left out for pos keys, except in the answer to an enrolment (the till prints it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_token: Option<String>,
    /// Left out for pos keys; null when not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birthday: Option<Option<String>>,
}

/// A page of members, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct MemberPage {
    pub members: Vec<MemberView>,
    pub next_cursor: Option<String>,
}

/// The member as the API shows it; `masked` for pos keys (no token, no birthday).
pub async fn view(c: &mut Conn, tenant: &str, m: &Member, masked: bool) -> ApiResult<MemberView> {
    let consents = members::consents(c, tenant, &m.id)
        .await?
        .into_iter()
        .map(|x| (x.kind, ConsentView { granted: x.granted, source: x.source, recorded_at: Time(x.recorded_at) }))
        .collect();
    Ok(MemberView {
        id: m.id.clone(),
        card_number: m.card_number.clone(),
        external_id: m.external_id.clone(),
        name: m.name.clone(),
        phone: if masked { m.phone.as_deref().map(mask_phone) } else { m.phone.clone() },
        email: if masked { m.email.as_deref().map(mask_email) } else { m.email.clone() },
        referral_code: m.referral_code.clone(),
        consents,
        created_at: Time(m.created_at),
        qr_token: (!masked).then(|| m.qr_token.clone()),
        birthday: (!masked).then(|| m.birthday.clone()),
    })
}

/// Members page by page (admin and analyst keys: nothing is masked).
pub async fn list(state: &AppState, auth: &Auth, cursor: Option<&str>, limit: i64) -> ApiResult<MemberPage> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let list = members::list(&mut c, &auth.tenant_id, cursor, limit + 1).await?;
    let more = list.len() as i64 > limit;
    let mut out = Vec::new();
    for m in list.iter().take(limit as usize) {
        out.push(view(&mut c, &auth.tenant_id, m, false).await?);
    }
    let next_cursor = if more { list.get(limit as usize - 1).map(|m| m.id.clone()) } else { None };
    Ok(MemberPage { members: out, next_cursor })
}

pub async fn lookup(state: &AppState, auth: &Auth, by: By, value: &str) -> ApiResult<MemberView> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let m = match by {
        // A static or a rotating token (services/cards.rs).
        By::QrToken => super::cards::find_by_qr(&mut c, &auth.tenant_id, value, now_s()).await?.map(|(m, _)| m),
        _ => members::find(&mut c, &auth.tenant_id, by, value).await?,
    };
    let m = m.ok_or_else(member_not_found)?;
    view(&mut c, &auth.tenant_id, &m, auth.masked()).await
}

pub async fn get(state: &AppState, auth: &Auth, id: &str) -> ApiResult<MemberView> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let m = members::by_id(&mut c, &auth.tenant_id, id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    view(&mut c, &auth.tenant_id, &m, auth.masked()).await
}

/// Bring a member's book up to date when something is due (lazy release and expiry on
/// read), so reads are right without the worker.
pub async fn settle_if_due(state: &AppState, tenant: &str, member: &str) -> ApiResult<()> {
    let now = now_s();
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let due = ledger::balance(&mut c, tenant, member).await?.and_then(|b| b.next_due_at).is_some_and(|t| t <= now);
    if !due {
        return Ok(());
    }
    let (_, program) = super::program::current(state, &mut c, tenant).await?;
    drop(c);
    with_retry(|_| {
        let program = program.clone();
        async move {
            let mut tx = state.db.begin().await?;
            if let Some(book) = Book::open(&mut tx, tenant, member, &program, now_s()).await? {
                book.save(&mut tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }
    })
    .await
}

/// The tier as of now: spend of receipts with occurred_at in (now − window, now], so a
/// receipt posted this second already counts.
pub async fn tier_now(
    c: &mut Conn,
    tenant: &str,
    member: &str,
    program: &kopilka_domain::program::Program,
    now: i64,
) -> ApiResult<(i64, Option<String>)> {
    tier_at(c, tenant, member, program, now + 1).await
}

/// Tier spend in [t − window, t) and the tier it gives.
pub async fn tier_at(
    c: &mut Conn,
    tenant: &str,
    member: &str,
    program: &kopilka_domain::program::Program,
    t: i64,
) -> ApiResult<(i64, Option<String>)> {
    let spend = receipts::tier_spend(c, tenant, member, t - program.tier_window_days * 86_400, t).await?;
    Ok((spend, tier_for_spend(&program.tiers, spend).map(|t| t.code.clone())))
}

/// Points that expire on one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiring {
    pub points: i64,
    pub expires_at: Time,
}

/// The next tier and the spend it still needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextTier {
    pub code: String,
    pub name: String,
    pub spend_needed_minor: i64,
}

/// A member's balance as of now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceView {
    pub member_id: String,
    pub points: i64,
    pub held: i64,
    pub pending: i64,
    pub debt: i64,
    /// Points free to spend: `points` less `held`.
    pub available: i64,
    pub tier: Option<String>,
    pub tier_spend_minor: i64,
    pub next_tier: Option<NextTier>,
    pub lifetime_earned: i64,
    /// The next ten expiry dates, soonest first.
    pub expiring: Vec<Expiring>,
}

pub async fn balance(state: &AppState, auth: &Auth, id: &str) -> ApiResult<BalanceView> {
    let tenant = &auth.tenant_id;
    {
        let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
        members::by_id(&mut c, tenant, id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    }
    settle_if_due(state, tenant, id).await?;
    let now = now_s();
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let (_, program) = super::program::current(state, &mut c, tenant).await?;
    let b = ledger::balance(&mut c, tenant, id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    let (spend, tier) = tier_now(&mut c, tenant, id, &program, now).await?;
    let expiring = ledger::expiring(&mut c, tenant, id, now, 10)
        .await?
        .into_iter()
        .map(|(points, at)| Expiring { points, expires_at: Time(at) })
        .collect();
    let next_tier = next_tier(&program.tiers, spend).map(|(t, missing)| NextTier {
        code: t.code.clone(),
        name: t.name.clone(),
        spend_needed_minor: missing,
    });
    Ok(BalanceView {
        member_id: id.to_owned(),
        points: b.points,
        held: b.held,
        pending: b.pending,
        debt: b.debt,
        available: (b.points - b.held).max(0),
        tier,
        tier_spend_minor: spend,
        next_tier,
        lifetime_earned: b.lifetime_earned,
        expiring,
    })
}

/// One entry of a member's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntryView {
    pub id: String,
    pub kind: String,
    pub points: i64,
    pub created_at: Time,
    pub occurred_at: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A page of ledger entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntryView>,
    /// The cursor of the next page; none on the last.
    pub next_cursor: Option<String>,
}

pub async fn ledger_page(state: &AppState, auth: &Auth, id: &str, limit: i64, cursor: Option<&str>) -> ApiResult<LedgerPage> {
    let tenant = &auth.tenant_id;
    let before = match cursor {
        None => None,
        Some(c) => {
            Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ApiError::field("cursor", "is not a cursor this API gave out"))?)
        }
    };
    {
        let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
        members::by_id(&mut c, tenant, id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    }
    settle_if_due(state, tenant, id).await?;
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let entries = ledger::entries(&mut c, tenant, id, before, limit + 1).await?;
    let more = entries.len() as i64 > limit;
    let entries = &entries[..entries.len().min(limit as usize)];
    let next_cursor = if more { entries.last().map(|e| e.seq.to_string()) } else { None };
    let entries = entries
        .iter()
        .map(|e| LedgerEntryView {
            id: e.id.clone(),
            kind: e.kind.clone(),
            points: e.points,
            created_at: Time(e.created_at),
            occurred_at: Time(e.occurred_at),
            receipt_id: e.receipt_id.clone(),
            reason: e.reason.clone(),
        })
        .collect();
    Ok(LedgerPage { entries, next_cursor })
}

/// One event of a member's history; what it holds besides its kind and time depends on
/// the kind (free-form, as recorded).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEvent {
    pub id: String,
    pub kind: String,
    pub occurred_at: Time,
    #[serde(flatten)]
    pub data: serde_json::Map<String, Value>,
}

/// A member's history, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub events: Vec<HistoryEvent>,
}

pub async fn history(state: &AppState, auth: &Auth, id: &str, limit: i64) -> ApiResult<History> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    members::by_id(&mut c, &auth.tenant_id, id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    let events = members::events(&mut c, &auth.tenant_id, id, limit)
        .await?
        .into_iter()
        .map(|e| {
            let mut data = match e.data {
                Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            for k in ["id", "kind", "occurred_at"] {
                data.remove(k);
            }
            HistoryEvent { id: e.id, kind: e.kind, occurred_at: Time(e.occurred_at), data }
        })
        .collect();
    Ok(History { events })
}

/// The answer to an adjustment (stored, and replayed for the same `adjustment_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentAnswer {
    pub id: String,
    pub adjustment_id: Option<String>,
    pub member_id: String,
    pub points: i64,
    pub reason: String,
    pub actor: String,
    pub created_at: Time,
    pub balance: BalanceFigures,
}

/// The answer to a transfer (stored, and replayed for the same `transfer_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferAnswer {
    pub id: String,
    pub transfer_id: String,
    pub from_member_id: String,
    pub to_member_id: String,
    pub points: i64,
    pub created_at: Time,
    /// The sender's balance.
    pub balance: BalanceFigures,
}

/// Replay an idempotent request: the stored answer for the same body, 409 for another.
fn replay<T: serde::de::DeserializeOwned>(stored: Option<(String, String)>, hash: &str, conflict: &'static str) -> Fallible<Option<T>> {
    match stored {
        Some((h, answer)) if h == hash => Ok(Some(serde_json::from_str(&answer)?)),
        Some(_) => Err(ApiError::conflict(conflict, "this id was already used with a different body").into()),
        None => Ok(None),
    }
}

pub struct Adjustment {
    pub points: i64,
    pub reason: String,
    pub adjustment_id: Option<String>,
    pub body: Value,
}

pub async fn adjust(state: &AppState, auth: &Auth, member: &str, a: Adjustment) -> ApiResult<AdjustmentAnswer> {
    let tenant = auth.tenant_id.clone();
    let hash = sha256_hex(&canonical(&json!({"member": member, "body": a.body})));
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let (_, program) = super::program::current(state, &mut c, &tenant).await?;
    drop(c);
    with_retry(|_| {
        let (tenant, program, hash, a) = (tenant.clone(), program.clone(), hash.clone(), &a);
        async move {
            let mut tx = state.db.begin().await?;
            if let Some(key) = &a.adjustment_id
                && let Some(v) =
                    replay(receipts::idem_record(tx.conn(), &tenant, IdemTable::Adjustment, key).await?, &hash, "adjustment_conflict")?
            {
                return Ok(v);
            }
            let now = now_s();
            let mut book =
                Book::open(&mut tx, &tenant, member, &program, now).await?.ok_or_else(|| Failure::Api(ApiError::not_found("member")))?;
            let id = new_id();
            let r = EntryRef { reason: Some(a.reason.clone()), ref_id: Some(id.clone()), ..Default::default() };
            if a.points > 0 {
                let expires = book.expiry_for(now);
                book.credit(
                    &mut tx,
                    Credit {
                        source: "adjust",
                        ref_id: Some(&id),
                        points: a.points,
                        available_at: now,
                        expires_at: expires,
                        pays_debt: false,
                    },
                )
                .await?;
                book.entry(&mut tx, "adjust", a.points, now, r).await?;
            } else if a.points < 0 {
                let need = -a.points;
                let available = book.available(0);
                if need > available {
                    return Err(ApiError::rule("insufficient_points", format!("{need} points to remove, {available} available")).into());
                }
                book.consume(&mut tx, need, "adjust", &id).await?;
                book.entry(&mut tx, "adjust", a.points, now, r).await?;
            }
            let b = book.save(&mut tx).await?;
            // The worker's tier job also brings the member's wallet passes up to date.
            kopilka_store::jobs::enqueue(tx.conn(), &tenant, "tier", member, now).await?;
            let answer = AdjustmentAnswer {
                id: id.clone(),
                adjustment_id: a.adjustment_id.clone(),
                member_id: member.to_owned(),
                points: a.points,
                reason: a.reason.clone(),
                actor: auth.actor(),
                created_at: Time(now),
                balance: BalanceFigures::from(&b),
            };
            receipts::insert_adjustment(
                tx.conn(),
                &tenant,
                &receipts::AdjustmentRecord {
                    id: &id,
                    adjustment_id: a.adjustment_id.as_deref().unwrap_or(&id),
                    member_id: member,
                    points: a.points,
                    reason: &a.reason,
                    actor: &auth.actor(),
                    body_hash: &hash,
                    answer: &serde_json::to_string(&answer)?,
                    created_at: now,
                },
            )
            .await?;
            tenants::audit(
                tx.conn(),
                &tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "member.adjust",
                    object_type: "member",
                    object_id: member,
                    details: &json!({"points": a.points, "reason": a.reason, "adjustment": id}),
                    at: now,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(answer)
        }
    })
    .await
}

pub struct Transfer {
    pub to_member_id: String,
    pub points: i64,
    pub transfer_id: String,
    pub body: Value,
}

pub async fn transfer(state: &AppState, auth: &Auth, from: &str, t: Transfer) -> ApiResult<TransferAnswer> {
    let tenant = auth.tenant_id.clone();
    if t.to_member_id == from {
        return Err(ApiError::field("to_member_id", "must be another member"));
    }
    let hash = sha256_hex(&canonical(&json!({"member": from, "body": t.body})));
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let (_, program) = super::program::current(state, &mut c, &tenant).await?;
    drop(c);
    with_retry(|_| {
        let (tenant, program, hash, t) = (tenant.clone(), program.clone(), hash.clone(), &t);
        async move {
            let mut tx = state.db.begin().await?;
            if let Some(v) =
                replay(receipts::idem_record(tx.conn(), &tenant, IdemTable::Transfer, &t.transfer_id).await?, &hash, "transfer_conflict")?
            {
                return Ok(v);
            }
            let now = now_s();
            // Lock both members in id order so two opposite transfers cannot deadlock.
            let (first, second) =
                if from < t.to_member_id.as_str() { (from, t.to_member_id.as_str()) } else { (t.to_member_id.as_str(), from) };
            let a = Book::open(&mut tx, &tenant, first, &program, now).await?;
            let b = Book::open(&mut tx, &tenant, second, &program, now).await?;
            let (mut src, mut dst) = match (a, b) {
                (Some(a), Some(b)) if a.member_id() == from => (a, b),
                (Some(a), Some(b)) => (b, a),
                (None, _) | (_, None) => {
                    let from_exists = members::by_id(tx.conn(), &tenant, from).await?.is_some();
                    return Err(if from_exists {
                        ApiError::new(StatusCode::NOT_FOUND, "member_not_found", "no such recipient member")
                    } else {
                        ApiError::not_found("member")
                    }
                    .into());
                }
            };
            let available = src.available(0);
            if t.points > available {
                return Err(ApiError::rule("insufficient_points", format!("{} points to transfer, {available} available", t.points)).into());
            }
            let id = new_id();
            let cons = src.consume(&mut tx, t.points, "transfer", &id).await?;
            src.entry(
                &mut tx,
                "transfer_out",
                -t.points,
                now,
                EntryRef { ref_id: Some(id.clone()), reason: Some(format!("to {}", t.to_member_id)), ..Default::default() },
            )
            .await?;
            // The points keep their lots' expiry.
            for c in &cons {
                let lot = ledger::lot(tx.conn(), &tenant, &c.lot_id).await?.expect("lot exists");
                dst.credit(
                    &mut tx,
                    Credit {
                        source: "transfer",
                        ref_id: Some(&id),
                        points: c.points,
                        available_at: now,
                        expires_at: lot.expires_at,
                        pays_debt: false,
                    },
                )
                .await?;
            }
            dst.entry(
                &mut tx,
                "transfer_in",
                t.points,
                now,
                EntryRef { ref_id: Some(id.clone()), reason: Some(format!("from {from}")), ..Default::default() },
            )
            .await?;
            let sb = src.save(&mut tx).await?;
            dst.save(&mut tx).await?;
            kopilka_store::jobs::enqueue(tx.conn(), &tenant, "tier", from, now).await?;
            kopilka_store::jobs::enqueue(tx.conn(), &tenant, "tier", &t.to_member_id, now).await?;
            let answer = TransferAnswer {
                id: id.clone(),
                transfer_id: t.transfer_id.clone(),
                from_member_id: from.to_owned(),
                to_member_id: t.to_member_id.clone(),
                points: t.points,
                created_at: Time(now),
                balance: BalanceFigures::from(&sb),
            };
            receipts::insert_transfer(
                tx.conn(),
                &tenant,
                &receipts::TransferRecord {
                    id: &id,
                    transfer_id: &t.transfer_id,
                    from_member_id: from,
                    to_member_id: &t.to_member_id,
                    points: t.points,
                    body_hash: &hash,
                    answer: &serde_json::to_string(&answer)?,
                    created_at: now,
                },
            )
            .await?;
            tenants::audit(
                tx.conn(),
                &tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "member.transfer",
                    object_type: "member",
                    object_id: from,
                    details: &json!({"to": t.to_member_id, "points": t.points}),
                    at: now,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(answer)
        }
    })
    .await
}

pub fn consent_list(v: &Value) -> Vec<(String, bool)> {
    v.as_object().map(|m| m.iter().filter_map(|(k, v)| v.as_bool().map(|b| (k.clone(), b))).collect()).unwrap_or_default()
}
