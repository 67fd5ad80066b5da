//! The rewards catalogue: rewards bought with points, their redemption (a random code
//! issued and the points debited in one transaction), fulfilment and cancellation (the
//! points go back to the lots they came from, with those lots' expiry).
//!
//! A redemption is a point movement like an adjustment: it locks the member's book
//! (`Book::open`), then the reward's row, checks the rules of
//! `kopilka_domain::rewards::why_not`, takes a unit with a conditional UPDATE, consumes
//! points soonest-expiring first (consumption kind `reward`, referring to the
//! redemption), writes a `redeem` entry and an audit record. Lock order: the
//! redemption (cancel), the member's balance, the reward.

use super::ledger::{BalanceFigures, Book, EntryRef};
use super::{Failure, Fallible, with_retry};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::input::{Time, canonical, fmt_time, sha256_hex};
use crate::state::AppState;
use kopilka_domain::rewards::{CODE_LEN, Holder, Terms, WhyNot, code_from_bytes, normalize_code, why_not};
use kopilka_store::rewards::{self as store, Redemption, RedemptionFilter, Reward};
use kopilka_store::{Conn, StoreError, Tx, members, new_id, now_s, tenants};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A reward's editable fields, parsed and shape-checked by the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardSpec {
    pub code: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub campaign_id: Option<String>,
    pub points_price: i64,
    pub stock: Option<i64>,
    pub valid_from: Option<i64>,
    pub valid_to: Option<i64>,
    pub tiers: Vec<String>,
    pub per_member_limit: Option<i64>,
    pub active: bool,
    pub image_url: Option<String>,
}

impl RewardSpec {
    fn of(w: &Reward) -> RewardSpec {
        RewardSpec {
            code: w.code.clone(),
            name: w.name.clone(),
            description: w.description.clone(),
            kind: w.kind.clone(),
            campaign_id: w.campaign_id.clone(),
            points_price: w.points_price,
            stock: w.stock,
            valid_from: w.valid_from,
            valid_to: w.valid_to,
            tiers: w.tiers.clone(),
            per_member_limit: w.per_member_limit,
            active: w.active,
            image_url: w.image_url.clone(),
        }
    }

    fn apply(self, w: &mut Reward) {
        w.code = self.code;
        w.name = self.name;
        w.description = self.description;
        w.kind = self.kind;
        w.campaign_id = self.campaign_id;
        w.points_price = self.points_price;
        w.stock = self.stock;
        w.valid_from = self.valid_from;
        w.valid_to = self.valid_to;
        w.tiers = self.tiers;
        w.per_member_limit = self.per_member_limit;
        w.active = self.active;
        w.image_url = self.image_url;
    }
}

pub fn reward_not_found() -> ApiError {
    ApiError::not_found("reward")
}

fn redemption_not_found() -> ApiError {
    ApiError::not_found("reward redemption")
}

fn reward_exists(code: &str) -> ApiError {
    ApiError::conflict("reward_exists", format!("a reward with code {code} already exists"))
}

/// A reward as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RewardView {
    pub id: String,
    pub code: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub campaign_id: Option<String>,
    pub points_price: i64,
    pub stock: Option<i64>,
    pub stock_left: Option<i64>,
    pub redeemed_count: i64,
    pub valid_from: Option<Time>,
    pub valid_to: Option<Time>,
    pub tiers: Vec<String>,
    pub per_member_limit: Option<i64>,
    pub active: bool,
    pub archived: bool,
    pub archived_at: Option<Time>,
    pub image_url: Option<String>,
    pub version: i64,
    pub created_at: Time,
    pub updated_at: Time,
}

impl From<&Reward> for RewardView {
    fn from(w: &Reward) -> Self {
        RewardView {
            id: w.id.clone(),
            code: w.code.clone(),
            name: w.name.clone(),
            description: w.description.clone(),
            kind: w.kind.clone(),
            campaign_id: w.campaign_id.clone(),
            points_price: w.points_price,
            stock: w.stock,
            stock_left: w.stock_left(),
            redeemed_count: w.redeemed_count,
            valid_from: w.valid_from.map(Time),
            valid_to: w.valid_to.map(Time),
            tiers: w.tiers.clone(),
            per_member_limit: w.per_member_limit,
            active: w.active,
            archived: w.archived_at.is_some(),
            archived_at: w.archived_at.map(Time),
            image_url: w.image_url.clone(),
            version: w.version,
            created_at: Time(w.created_at),
            updated_at: Time(w.updated_at),
        }
    }
}

/// A page of rewards.
#[derive(Debug, Clone, Serialize)]
pub struct RewardPage {
    pub rewards: Vec<RewardView>,
    pub next_cursor: Option<String>,
}

/// A reward in one member's catalogue: whether the member can redeem it now, and if not,
/// why (the first reason in check order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberReward {
    #[serde(flatten)]
    pub reward: RewardView,
    pub can_redeem: bool,
    pub reason_code: Option<&'static str>,
    pub reason: Option<String>,
    pub member_redeemed: i64,
}

/// The catalogue as one member sees it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberCatalogue {
    pub member_id: String,
    pub points_available: i64,
    pub tier: Option<String>,
    pub rewards: Vec<MemberReward>,
    pub next_cursor: Option<String>,
}

/// A redemption as the API shows it, with its reward's code and name. The answers that
/// change the member's points (redeem, cancel) carry the balance after them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedemptionView {
    pub id: String,
    pub redemption_id: String,
    pub reward_id: String,
    pub reward_code: String,
    pub reward_name: String,
    pub kind: String,
    pub campaign_id: Option<String>,
    pub member_id: String,
    pub points: i64,
    pub code: String,
    pub status: String,
    pub store_id: Option<String>,
    pub created_at: Time,
    pub fulfilled_at: Option<Time>,
    pub cancelled_at: Option<Time>,
    /// Left out where the points did not move; null when the member has no balance row.
    /// (A stored answer read back always holds a balance, so `null` never needs reading.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Option<BalanceFigures>>,
}

impl RedemptionView {
    pub fn of(x: &Redemption, w: &Reward) -> Self {
        RedemptionView {
            id: x.id.clone(),
            redemption_id: x.redemption_id.clone(),
            reward_id: x.reward_id.clone(),
            reward_code: w.code.clone(),
            reward_name: w.name.clone(),
            kind: w.kind.clone(),
            campaign_id: w.campaign_id.clone(),
            member_id: x.member_id.clone(),
            points: x.points,
            code: x.code.clone(),
            status: x.status.clone(),
            store_id: x.store_id.clone(),
            created_at: Time(x.created_at),
            fulfilled_at: x.fulfilled_at.map(Time),
            cancelled_at: x.cancelled_at.map(Time),
            balance: None,
        }
    }
}

/// A page of redemptions.
#[derive(Debug, Clone, Serialize)]
pub struct RedemptionPage {
    pub redemptions: Vec<RedemptionView>,
    pub next_cursor: Option<String>,
}

fn terms(w: &Reward) -> Terms {
    Terms {
        points_price: w.points_price,
        active: w.active && w.archived_at.is_none(),
        valid_from: w.valid_from,
        valid_to: w.valid_to,
        tiers: w.tiers.clone(),
        stock_left: w.stock_left(),
        per_member_limit: w.per_member_limit,
    }
}

fn why_not_error(w: &WhyNot) -> ApiError {
    ApiError::rule(w.code(), w.reason(fmt_time))
}

/// Tiers must name tiers of the current programme.
async fn check_tiers(state: &AppState, c: &mut Conn, tenant: &str, spec: &RewardSpec) -> ApiResult<()> {
    let (_, program) = super::program::current(state, c, tenant).await?;
    let mut errors = std::collections::BTreeMap::new();
    for (i, t) in spec.tiers.iter().enumerate() {
        if !program.tiers.iter().any(|x| &x.code == t) {
            errors.insert(format!("tiers[{i}]"), format!("the programme has no tier {t}"));
        }
    }
    if let Some(id) = &spec.campaign_id {
        let ok = match kopilka_store::campaigns::campaign(c, tenant, id).await? {
            Some(row) => {
                serde_json::from_str::<kopilka_domain::campaign::CampaignSpec>(&row.spec).is_ok_and(|s| s.requires_coupon) && !row.archived
            }
            None => false,
        };
        if !ok {
            errors.insert("campaign_id".into(), "must name a live campaign with requires_coupon: true".into());
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::fields(errors)) }
}

pub async fn create(state: &AppState, auth: &Auth, spec: RewardSpec) -> ApiResult<RewardView> {
    let tenant = &auth.tenant_id;
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    check_tiers(state, &mut c, tenant, &spec).await?;
    drop(c);
    let now = now_s();
    let mut w = Reward {
        id: new_id(),
        code: String::new(),
        name: String::new(),
        description: String::new(),
        kind: String::new(),
        campaign_id: None,
        points_price: 0,
        stock: None,
        redeemed_count: 0,
        valid_from: None,
        valid_to: None,
        tiers: Vec::new(),
        per_member_limit: None,
        active: true,
        image_url: None,
        archived_at: None,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    spec.apply(&mut w);
    let mut tx = state.db.begin().await?;
    match store::insert_reward(tx.conn(), tenant, &w).await {
        Err(StoreError::Unique(_)) => return Err(reward_exists(&w.code)),
        other => other?,
    }
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor: &auth.actor(),
            action: "reward.create",
            object_type: "reward",
            object_id: &w.id,
            details: &json!({"code": w.code}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(RewardView::from(&w))
}

pub async fn get(state: &AppState, auth: &Auth, id: &str) -> ApiResult<RewardView> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let w = store::reward(&mut c, &auth.tenant_id, id).await?.ok_or_else(reward_not_found)?;
    Ok(RewardView::from(&w))
}

pub async fn list(state: &AppState, auth: &Auth, include_archived: bool, cursor: Option<&str>, limit: i64) -> ApiResult<RewardPage> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let list = store::list_rewards(&mut c, &auth.tenant_id, include_archived, cursor, limit + 1).await?;
    let more = list.len() as i64 > limit;
    let page = &list[..list.len().min(limit as usize)];
    let next_cursor = if more { page.last().map(|w| w.id.clone()) } else { None };
    Ok(RewardPage { rewards: page.iter().map(RewardView::from).collect(), next_cursor })
}

/// Replace a reward's editable fields. An identical PUT makes no new version. An
/// archived reward cannot change (409 `reward_archived`).
pub async fn replace(state: &AppState, auth: &Auth, id: &str, spec: RewardSpec) -> ApiResult<RewardView> {
    let tenant = &auth.tenant_id;
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    check_tiers(state, &mut c, tenant, &spec).await?;
    drop(c);
    let mut tx = state.db.begin().await?;
    let mut w = store::reward_locked(&mut tx, tenant, id).await?.ok_or_else(reward_not_found)?;
    if w.archived_at.is_some() {
        return Err(ApiError::conflict("reward_archived", "this reward is archived and cannot change"));
    }
    if RewardSpec::of(&w) == spec {
        return Ok(RewardView::from(&w));
    }
    let now = now_s();
    spec.apply(&mut w);
    w.version += 1;
    w.updated_at = now;
    match store::update_reward(tx.conn(), tenant, &w).await {
        Err(StoreError::Unique(_)) => return Err(reward_exists(&w.code)),
        other => other?,
    }
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor: &auth.actor(),
            action: "reward.update",
            object_type: "reward",
            object_id: id,
            details: &json!({"version": w.version}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(RewardView::from(&w))
}

/// Archive a reward: it leaves the catalogue, cannot be redeemed, and frees its code.
/// Its redemptions can still be fulfilled or cancelled. Archiving twice is harmless.
pub async fn archive(state: &AppState, auth: &Auth, id: &str) -> ApiResult<RewardView> {
    let tenant = &auth.tenant_id;
    let mut tx = state.db.begin().await?;
    let mut w = store::reward_locked(&mut tx, tenant, id).await?.ok_or_else(reward_not_found)?;
    if w.archived_at.is_some() {
        return Ok(RewardView::from(&w));
    }
    let now = now_s();
    w.archived_at = Some(now);
    w.version += 1;
    w.updated_at = now;
    store::update_reward(tx.conn(), tenant, &w).await?;
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor: &auth.actor(),
            action: "reward.archive",
            object_type: "reward",
            object_id: id,
            details: &json!({"code": w.code}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(RewardView::from(&w))
}

/// The catalogue as one member sees it: every reward that is not archived, with whether
/// the member can redeem it now and, if not, why.
pub async fn member_catalogue(state: &AppState, auth: &Auth, member: &str, cursor: Option<&str>, limit: i64) -> ApiResult<MemberCatalogue> {
    let tenant = &auth.tenant_id;
    {
        let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
        members::by_id(&mut c, tenant, member).await?.ok_or_else(|| ApiError::not_found("member"))?;
    }
    super::members::settle_if_due(state, tenant, member).await?;
    let now = now_s();
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let (_, program) = super::program::current(state, &mut c, tenant).await?;
    let b = kopilka_store::ledger::balance(&mut c, tenant, member).await?.ok_or_else(|| ApiError::not_found("member"))?;
    let available = (b.points - b.held - program.redeem.min_balance).max(0);
    let (_, tier) = super::members::tier_now(&mut c, tenant, member, &program, now).await?;
    let counts: HashMap<String, i64> = store::member_counts(&mut c, tenant, member).await?.into_iter().collect();
    let list = store::list_rewards(&mut c, tenant, false, cursor, limit + 1).await?;
    let more = list.len() as i64 > limit;
    let page = &list[..list.len().min(limit as usize)];
    let next_cursor = if more { page.last().map(|w| w.id.clone()) } else { None };
    let rewards = page
        .iter()
        .map(|w| {
            let holder = Holder { tier: tier.as_deref(), available, redeemed: counts.get(&w.id).copied().unwrap_or(0) };
            let why = why_not(&terms(w), &holder, now);
            MemberReward {
                reward: RewardView::from(w),
                can_redeem: why.is_none(),
                reason_code: why.as_ref().map(WhyNot::code),
                reason: why.as_ref().map(|x| x.reason(fmt_time)),
                member_redeemed: holder.redeemed,
            }
        })
        .collect();
    Ok(MemberCatalogue { member_id: member.to_owned(), points_available: available, tier, rewards, next_cursor })
}

pub struct RedeemRequest {
    pub redemption_id: String,
    pub body: Value,
}

/// 60 random bits from the operating system's CSPRNG (through `rand`'s thread generator,
/// which is reseeded from it), as 12 unambiguous symbols.
fn new_code() -> String {
    let mut bytes = [0u8; CODE_LEN];
    rand::fill(&mut bytes);
    code_from_bytes(&bytes)
}

/// Redeem a reward for a member: one transaction that takes a unit of stock, debits the
/// points, issues a code and audits it. Idempotent on `redemption_id`, tenant-wide.
pub async fn redeem(state: &AppState, auth: &Auth, member: &str, reward_id: &str, req: RedeemRequest) -> ApiResult<RedemptionView> {
    let tenant = auth.tenant_id.clone();
    let hash = sha256_hex(&canonical(&json!({"member": member, "reward": reward_id, "body": req.body})));
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let (_, program) = super::program::current(state, &mut c, &tenant).await?;
    drop(c);
    with_retry(|_| {
        let (tenant, program, hash, req) = (tenant.clone(), program.clone(), hash.clone(), &req);
        async move {
            let mut tx = state.db.begin().await?;
            if let Some(x) = store::redemption_by_key(tx.conn(), &tenant, &req.redemption_id).await? {
                if x.body_hash == hash {
                    return Ok(serde_json::from_str(&x.answer)?);
                }
                return Err(ApiError::conflict("redemption_conflict", "this redemption_id was already used with a different body").into());
            }
            let now = now_s();
            // No stored id holds a NUL (PostgreSQL text cannot), so such a member is unknown.
            let book = match kopilka_store::has_nul(&[member]) {
                true => None,
                false => Book::open(&mut tx, &tenant, member, &program, now).await?,
            };
            let mut book = book.ok_or_else(|| Failure::Api(ApiError::not_found("member")))?;
            let reward = store::reward_locked(&mut tx, &tenant, reward_id).await?.ok_or_else(|| Failure::Api(reward_not_found()))?;
            let (_, tier) = super::members::tier_now(tx.conn(), &tenant, member, &program, now).await?;
            let redeemed = store::member_count(tx.conn(), &tenant, member, reward_id).await?;
            let holder = Holder { tier: tier.as_deref(), available: book.available(program.redeem.min_balance), redeemed };
            if let Some(why) = why_not(&terms(&reward), &holder, now) {
                return Err(why_not_error(&why).into());
            }
            if !store::take_unit(tx.conn(), &tenant, reward_id).await? {
                return Err(why_not_error(&WhyNot::OutOfStock).into());
            }
            let id = new_id();
            let code = new_code();
            let points = reward.points_price;
            // A coupon reward issues its code as a single-use personal coupon of its campaign.
            if let Some(campaign) = reward.campaign_id.as_ref().filter(|_| reward.kind == "coupon") {
                let coupon = kopilka_store::campaigns::Coupon {
                    id: format!("reward:{id}"),
                    campaign_id: campaign.clone(),
                    code: code.clone(),
                    member_id: Some(member.to_owned()),
                    max_uses: Some(1),
                    per_member_limit: None,
                    uses: 0,
                    starts_at: None,
                    expires_at: reward.valid_to,
                    status: "active".into(),
                    batch: Some(format!("reward:{reward_id}")),
                    created_at: now,
                };
                kopilka_store::campaigns::insert_coupons(tx.conn(), &tenant, std::slice::from_ref(&coupon)).await?;
            }
            book.consume(&mut tx, points, "reward", &id).await?;
            let r = EntryRef { reason: Some(format!("reward {}", reward.code)), ref_id: Some(id.clone()), ..Default::default() };
            book.entry(&mut tx, "redeem", -points, now, r).await?;
            let b = book.save(&mut tx).await?;
            let mut x = Redemption {
                id: id.clone(),
                redemption_id: req.redemption_id.clone(),
                reward_id: reward_id.to_owned(),
                member_id: member.to_owned(),
                code,
                points,
                status: "issued".into(),
                store_id: auth.store_id.clone(),
                actor: auth.actor(),
                body_hash: hash,
                answer: String::new(),
                created_at: now,
                fulfilled_at: None,
                cancelled_at: None,
            };
            let answer = RedemptionView { balance: Some(Some(BalanceFigures::from(&b))), ..RedemptionView::of(&x, &reward) };
            x.answer = serde_json::to_string(&answer)?;
            store::insert_redemption(tx.conn(), &tenant, &x).await?;
            tenants::audit(
                tx.conn(),
                &tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "reward.redeem",
                    object_type: "reward_redemption",
                    object_id: &id,
                    details: &json!({"member": member, "reward": reward.code, "points": points}),
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

async fn with_reward(c: &mut Conn, tenant: &str, x: &Redemption) -> ApiResult<RedemptionView> {
    let w = store::reward(c, tenant, &x.reward_id).await?.ok_or_else(|| ApiError::internal("a redemption's reward is missing"))?;
    Ok(RedemptionView::of(x, &w))
}

pub async fn get_redemption(state: &AppState, auth: &Auth, id: &str) -> ApiResult<RedemptionView> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let x = store::redemption(&mut c, &auth.tenant_id, id).await?.ok_or_else(redemption_not_found)?;
    with_reward(&mut c, &auth.tenant_id, &x).await
}

/// Find a redemption by the code the member shows. Case, spaces and hyphens are ignored.
pub async fn lookup(state: &AppState, auth: &Auth, code: &str) -> ApiResult<RedemptionView> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let x = store::redemption_by_code(&mut c, &auth.tenant_id, &normalize_code(code)).await?.ok_or_else(redemption_not_found)?;
    with_reward(&mut c, &auth.tenant_id, &x).await
}

pub async fn list_redemptions(
    state: &AppState,
    auth: &Auth,
    filter: RedemptionFilter<'_>,
    cursor: Option<&str>,
    limit: i64,
) -> ApiResult<RedemptionPage> {
    let tenant = &auth.tenant_id;
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let list = store::list_redemptions(&mut c, tenant, &filter, cursor, limit + 1).await?;
    let more = list.len() as i64 > limit;
    let page = &list[..list.len().min(limit as usize)];
    let next_cursor = if more { page.last().map(|x| x.id.clone()) } else { None };
    let mut rewards: HashMap<String, Reward> = HashMap::new();
    let mut out = Vec::with_capacity(page.len());
    for x in page {
        if !rewards.contains_key(&x.reward_id) {
            let w =
                store::reward(&mut c, tenant, &x.reward_id).await?.ok_or_else(|| ApiError::internal("a redemption's reward is missing"))?;
            rewards.insert(x.reward_id.clone(), w);
        }
        out.push(RedemptionView::of(x, &rewards[&x.reward_id]));
    }
    Ok(RedemptionPage { redemptions: out, next_cursor })
}

/// Hand the reward over: issued → fulfilled. Fulfilling a fulfilled redemption again
/// answers it unchanged; a cancelled one is 409 `redemption_cancelled`.
pub async fn fulfil(state: &AppState, auth: &Auth, id: &str, note: Option<String>) -> ApiResult<RedemptionView> {
    let tenant = auth.tenant_id.clone();
    with_retry(|_| {
        let (tenant, note) = (tenant.clone(), note.clone());
        async move {
            let mut tx = state.db.begin().await?;
            let mut x = store::redemption_locked(&mut tx, &tenant, id).await?.ok_or_else(|| Failure::Api(redemption_not_found()))?;
            match x.status.as_str() {
                "fulfilled" => return Ok(with_reward(tx.conn(), &tenant, &x).await?),
                "cancelled" => {
                    return Err(ApiError::conflict("redemption_cancelled", "this redemption was cancelled; it cannot be fulfilled").into());
                }
                _ => {}
            }
            let now = now_s();
            store::set_redemption_status(tx.conn(), &tenant, id, "fulfilled", now).await?;
            x.status = "fulfilled".into();
            x.fulfilled_at = Some(now);
            tenants::audit(
                tx.conn(),
                &tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "reward.fulfil",
                    object_type: "reward_redemption",
                    object_id: id,
                    details: &json!({"store": auth.store_id, "note": note}),
                    at: now,
                },
            )
            .await?;
            let answer = with_reward(tx.conn(), &tenant, &x).await?;
            tx.commit().await?;
            Ok(answer)
        }
    })
    .await
}

/// Cancel an issued redemption: the points go back to the lots they were taken from
/// (newest consumption first, keeping the lots' expiry; points landing in a lot that has
/// expired meanwhile expire at once) with a `return_redeem` entry, and the unit goes back
/// to stock. Cancelling a cancelled redemption answers it unchanged (with the balance now);
/// a fulfilled one is 409 `redemption_fulfilled`. A pos key may cancel only what its own
/// store issued.
pub async fn cancel(state: &AppState, auth: &Auth, id: &str, reason: Option<String>) -> ApiResult<RedemptionView> {
    let tenant = auth.tenant_id.clone();
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let (_, program) = super::program::current(state, &mut c, &tenant).await?;
    drop(c);
    with_retry(|_| {
        let (tenant, program, reason) = (tenant.clone(), program.clone(), reason.clone());
        async move {
            let mut tx = state.db.begin().await?;
            let mut x = store::redemption_locked(&mut tx, &tenant, id).await?.ok_or_else(|| Failure::Api(redemption_not_found()))?;
            if auth.role == Role::Pos && x.store_id != auth.store_id {
                return Err(ApiError::forbidden("a pos key may cancel only the redemptions issued at its own store").into());
            }
            match x.status.as_str() {
                "cancelled" => {
                    let mut answer = with_reward(tx.conn(), &tenant, &x).await?;
                    let b = kopilka_store::ledger::balance(tx.conn(), &tenant, &x.member_id).await?;
                    answer.balance = Some(b.as_ref().map(BalanceFigures::from));
                    return Ok(answer);
                }
                "fulfilled" => {
                    return Err(ApiError::conflict("redemption_fulfilled", "this reward was handed over; it cannot be cancelled").into());
                }
                _ => {}
            }
            let now = now_s();
            let answer = cancel_in(&mut tx, &tenant, &program, &mut x, now).await?;
            tenants::audit(
                tx.conn(),
                &tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "reward.cancel",
                    object_type: "reward_redemption",
                    object_id: id,
                    details: &json!({"member": x.member_id, "points": x.points, "reason": reason}),
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

/// The ledger side of a cancel, inside the caller's transaction (the redemption row is
/// locked and issued). Answers the redemption with the member's balance after it.
async fn cancel_in(
    tx: &mut Tx,
    tenant: &str,
    program: &kopilka_domain::program::Program,
    x: &mut Redemption,
    now: i64,
) -> Fallible<RedemptionView> {
    let reward =
        store::reward(tx.conn(), tenant, &x.reward_id).await?.ok_or_else(|| ApiError::internal("a redemption's reward is missing"))?;
    let mut book =
        Book::open(tx, tenant, &x.member_id, program, now).await?.ok_or_else(|| ApiError::internal("a redemption's member is missing"))?;
    let r = EntryRef { reason: Some(format!("reward {} cancelled", reward.code)), ref_id: Some(x.id.clone()), ..Default::default() };
    // A coupon reward: its coupon must be unused, and stops working.
    let lock = tx.for_update();
    if let Some(k) = kopilka_store::campaigns::coupon_by_id(tx.conn(), tenant, &format!("reward:{}", x.id), lock).await? {
        if k.uses > 0 {
            return Err(
                ApiError::conflict("redemption_fulfilled", "the coupon of this reward was already used; it cannot be cancelled").into()
            );
        }
        kopilka_store::campaigns::set_coupon_status(tx.conn(), tenant, &k.id, "disabled").await?;
    }
    let back = book.give_back(tx, &x.id, "reward", x.points, false, Some(("return_redeem", now, r))).await?;
    assert_eq!(back, x.points, "a redemption's consumptions give back exactly its points");
    let b = book.save(tx).await?;
    store::return_unit(tx.conn(), tenant, &x.reward_id).await?;
    store::set_redemption_status(tx.conn(), tenant, &x.id, "cancelled", now).await?;
    x.status = "cancelled".into();
    x.cancelled_at = Some(now);
    Ok(RedemptionView { balance: Some(Some(BalanceFigures::from(&b))), ..RedemptionView::of(x, &reward) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed reward writes exactly the JSON the API has always answered.
    #[test]
    fn a_reward_is_shown_as_before() {
        let w = Reward {
            id: "r1".into(),
            code: "MUG".into(),
            name: "Mug".into(),
            description: "A mug".into(),
            kind: "gift".into(),
            campaign_id: None,
            points_price: 500,
            stock: Some(10),
            redeemed_count: 3,
            valid_from: Some(1_800_000_000),
            valid_to: None,
            tiers: vec!["gold".into()],
            per_member_limit: Some(2),
            active: true,
            image_url: Some("https://example.com/mug.png".into()),
            archived_at: None,
            version: 2,
            created_at: 1_790_000_000,
            updated_at: 1_795_000_000,
        };
        let expected = json!({
            "id": "r1", "code": "MUG", "name": "Mug", "description": "A mug", "kind": "gift", "campaign_id": null,
            "points_price": 500, "stock": 10, "stock_left": 7, "redeemed_count": 3,
            "valid_from": "2027-01-15T08:00:00Z", "valid_to": null, "tiers": ["gold"], "per_member_limit": 2,
            "active": true, "archived": false, "archived_at": null, "image_url": "https://example.com/mug.png",
            "version": 2, "created_at": "2026-09-21T14:13:20Z", "updated_at": "2026-11-18T11:06:40Z",
        });
        assert_eq!(serde_json::to_value(RewardView::from(&w)).unwrap(), expected);
        let entry = MemberReward {
            reward: RewardView::from(&w),
            can_redeem: false,
            reason_code: Some("insufficient_points"),
            reason: Some("needs 1 more point".into()),
            member_redeemed: 0,
        };
        let mut with = expected.clone();
        for (k, v) in [
            ("can_redeem", json!(false)),
            ("reason_code", json!("insufficient_points")),
            ("reason", json!("needs 1 more point")),
            ("member_redeemed", json!(0)),
        ] {
            with[k] = v;
        }
        assert_eq!(serde_json::to_value(entry).unwrap(), with);

        // A redemption: without a balance where the points did not move, with one where they
        // did, null where the member has no balance row; and a stored answer reads back.
        let x = Redemption {
            id: "x1".into(),
            redemption_id: "RD-1".into(),
            reward_id: "r1".into(),
            member_id: "m1".into(),
            code: "ABCDEFGHJKMN".into(),
            points: 500,
            status: "issued".into(),
            store_id: Some("s1".into()),
            actor: "key:k1".into(),
            body_hash: String::new(),
            answer: String::new(),
            created_at: 1_800_000_000,
            fulfilled_at: None,
            cancelled_at: None,
        };
        let plain = json!({
            "id": "x1", "redemption_id": "RD-1", "reward_id": "r1", "reward_code": "MUG", "reward_name": "Mug", "kind": "gift",
            "campaign_id": null, "member_id": "m1", "points": 500, "code": "ABCDEFGHJKMN", "status": "issued", "store_id": "s1",
            "created_at": "2027-01-15T08:00:00Z", "fulfilled_at": null, "cancelled_at": null,
        });
        assert_eq!(serde_json::to_value(RedemptionView::of(&x, &w)).unwrap(), plain);
        let figures = BalanceFigures { points: 100, held: 0, pending: 5, debt: 0 };
        let moved = RedemptionView { balance: Some(Some(figures)), ..RedemptionView::of(&x, &w) };
        let mut with_balance = plain.clone();
        with_balance["balance"] = json!({"points": 100, "held": 0, "pending": 5, "debt": 0});
        assert_eq!(serde_json::to_value(&moved).unwrap(), with_balance);
        let stored = serde_json::to_string(&moved).unwrap();
        assert_eq!(serde_json::from_str::<RedemptionView>(&stored).unwrap(), moved);
        let none = RedemptionView { balance: Some(None), ..RedemptionView::of(&x, &w) };
        assert_eq!(serde_json::to_value(none).unwrap()["balance"], Value::Null);
    }
}
