//! Members: search (by POST, so no card, phone, email or name ever reaches a URL), the
//! member's page (balance, tier progress, ledger, receipts, consents) and adjustments.

use crate::form::Form;
use crate::i18n::Fmt;
use crate::staff::{Perm, Staff};
use crate::{Ctx, Page, WebError, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kopilka_domain::identity::normalize_phone;
use kopilka_server::services::{members as svc, program};
use kopilka_store::members::{self, By, Member};
use kopilka_store::{StoreError, analytics, receipts};
use serde_json::json;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/members", get(list))
        .route("/admin/members/search", post(search))
        .route("/admin/members/{id}", get(show))
        .route("/admin/members/{id}/adjust", post(adjust))
}

/// A member in a list (masked for a cashier, as a till would see them).
pub struct Row {
    pub id: String,
    pub card_number: String,
    pub name: String,
    pub phone: String,
    pub email: String,
    pub created_at: i64,
}

fn row(m: &Member, masked: bool) -> Row {
    use kopilka_domain::identity::{mask_email, mask_phone};
    let phone = m.phone.as_deref().map(|p| if masked { mask_phone(p) } else { p.to_owned() }).unwrap_or_default();
    let email = m.email.as_deref().map(|e| if masked { mask_email(e) } else { e.to_owned() }).unwrap_or_default();
    Row {
        id: m.id.clone(),
        card_number: m.card_number.clone(),
        name: m.name.clone().unwrap_or_default(),
        phone,
        email,
        created_at: m.created_at,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/members.html")]
struct ListTpl {
    page: Page,
    fmt: Fmt,
    query: String,
    /// None: the newest members; Some: search results.
    searched: bool,
    rows: Vec<Row>,
    error: Option<&'static str>,
}

async fn fmt_for(st: &WebState, staff: &Staff, ctx: &Ctx) -> WebResult<Fmt> {
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let (_, p) = program::current(&st.app, &mut c, &staff.tenant.id).await?;
    Ok(Fmt::new(ctx.t, &p))
}

async fn list(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<ListTpl> {
    staff.require(Perm::Members)?;
    let fmt = fmt_for(&st, &staff, &ctx).await?;
    // A cashier finds members one at a time, as at a till; others see the newest.
    let rows = if staff.can(Perm::Adjust) || staff.role == crate::staff::StaffRole::Analyst {
        let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
        analytics::newest_members(&mut c, &staff.tenant.id, 20).await?.iter().map(|m| row(m, false)).collect()
    } else {
        Vec::new()
    };
    let page = super::page(&ctx, &staff, "members", "admin.members.title");
    Ok(ListTpl { page, fmt, query: String::new(), searched: false, rows, error: None })
}

/// What a search string is: a card number, a phone, an email or (for roles that may
/// list members) part of a name.
async fn find(st: &WebState, staff: &Staff, q: &str) -> WebResult<Result<Vec<Member>, &'static str>> {
    let tenant = &staff.tenant.id;
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let compact: String = q.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    if q.contains('@') {
        return Ok(Ok(members::find(&mut c, tenant, By::Email, &q.trim().to_lowercase()).await?.into_iter().collect()));
    }
    if !compact.is_empty() && compact.trim_start_matches('+').bytes().all(|b| b.is_ascii_digit()) {
        if !compact.starts_with('+')
            && let Some(m) = members::find(&mut c, tenant, By::Card, &compact).await?
        {
            return Ok(Ok(vec![m]));
        }
        return Ok(match normalize_phone(&compact) {
            Ok(p) => Ok(members::find(&mut c, tenant, By::Phone, &p).await?.into_iter().collect()),
            Err(_) => Ok(Vec::new()),
        });
    }
    if staff.role == crate::staff::StaffRole::Cashier {
        return Ok(Err("admin.members.cashier_search"));
    }
    if q.chars().count() < 2 {
        return Ok(Err("admin.members.too_short"));
    }
    Ok(Ok(analytics::members_by_name(&mut c, tenant, q, 50).await?))
}

async fn search(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<Response> {
    staff.require(Perm::Members)?;
    // A cashier's searches are limited like a pos key's lookups.
    if staff.role == crate::staff::StaffRole::Cashier
        && !st.app.limiter.allow(
            &format!("lookup:{}", staff.auth().key_id),
            st.app.config.pos_lookups_per_minute,
            60,
            kopilka_store::now_s(),
        )
    {
        return Err(WebError::new(StatusCode::TOO_MANY_REQUESTS, "common.error.rate_limited"));
    }
    let query = f.get("q").unwrap_or_default().chars().take(200).collect::<String>();
    let fmt = fmt_for(&st, &staff, &ctx).await?;
    let masked = staff.auth().masked();
    let (rows, error) = match find(&st, &staff, &query).await? {
        Ok(list) => (list.iter().map(|m| row(m, masked)).collect(), None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let page = super::page(&ctx, &staff, "members", "admin.members.title");
    Ok(ListTpl { page, fmt, query, searched: true, rows, error }.into_response())
}

pub struct LedgerRow {
    pub kind: String,
    pub points: i64,
    pub occurred_at: i64,
    pub receipt_id: String,
    pub reason: String,
}

pub struct ReceiptRow {
    pub pk: String,
    pub receipt_id: String,
    pub status: String,
    pub occurred_at: i64,
    pub payable_minor: i64,
    pub points_earned: i64,
    pub points_redeemed: i64,
}

pub struct Consent {
    pub kind: String,
    pub granted: bool,
    pub source: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/member.html")]
struct MemberTpl {
    page: Page,
    fmt: Fmt,
    member: Row,
    birthday: String,
    points: i64,
    available: i64,
    held: i64,
    pending: i64,
    debt: i64,
    lifetime_earned: i64,
    tier_name: String,
    spend_minor: i64,
    next_tier_name: String,
    progress_pct: i64,
    /// "1 234,50 ₽ more to Gold".
    to_next: String,
    expiring: Vec<(i64, String)>,
    ledger: Vec<LedgerRow>,
    receipts: Vec<ReceiptRow>,
    consents: Vec<Consent>,
    show_ledger: bool,
    can_adjust: bool,
    adjustment_id: String,
    adjust_error: Option<String>,
}

async fn member_page(st: &WebState, ctx: &Ctx, staff: &Staff, id: &str, adjust_error: Option<String>) -> WebResult<MemberTpl> {
    staff.require(Perm::Members)?;
    let auth = staff.auth();
    let tenant = &staff.tenant.id;
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let m = members::by_id(&mut c, tenant, id).await?.ok_or_else(WebError::not_found)?;
    let (_, prog) = program::current(&st.app, &mut c, tenant).await?;
    let fmt = Fmt::new(ctx.t, &prog);
    let rs = receipts::list(&mut c, tenant, Some(id), 20).await?;
    drop(c);
    let mj = svc::get(&st.app, &auth, id).await?;
    let bal = svc::balance(&st.app, &auth, id).await?;
    let show_ledger = staff.role != crate::staff::StaffRole::Cashier;
    let ledger = if show_ledger {
        let l = svc::ledger_page(&st.app, &auth, id, 50, None).await?;
        l.entries
            .into_iter()
            .map(|e| LedgerRow {
                kind: e.kind,
                points: e.points,
                occurred_at: e.occurred_at.0,
                receipt_id: e.receipt_id.unwrap_or_default(),
                reason: e.reason.unwrap_or_default(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let tier_name = bal.tier.as_deref().and_then(|c| prog.tiers.iter().find(|t| t.code == c)).map(|t| t.name.clone()).unwrap_or_default();
    let spend = bal.tier_spend_minor;
    let (next_tier_name, needed) = match &bal.next_tier {
        Some(n) => (n.name.clone(), n.spend_needed_minor),
        None => (String::new(), 0),
    };
    let progress_pct = if needed > 0 { (spend as i128 * 100 / (spend as i128 + needed as i128)) as i64 } else { 100 };
    let masked = auth.masked();
    let mut member = row(&m, masked);
    // The page shows what the API shows this role (masked for a cashier).
    member.phone = mj.phone.unwrap_or_default();
    member.email = mj.email.unwrap_or_default();
    let consents = mj.consents.into_iter().map(|(kind, c)| Consent { kind, granted: c.granted, source: c.source }).collect();
    let to_next = ctx.t.f("admin.member.to_next", &[("amount", &fmt.money(needed)), ("tier", &next_tier_name)]);
    let page = super::page(ctx, staff, "members", "admin.member.title");
    Ok(MemberTpl {
        to_next,
        page,
        member,
        birthday: mj.birthday.flatten().unwrap_or_default(),
        points: bal.points,
        available: bal.available,
        held: bal.held,
        pending: bal.pending,
        debt: bal.debt,
        lifetime_earned: bal.lifetime_earned,
        tier_name,
        spend_minor: spend,
        next_tier_name,
        progress_pct,
        expiring: bal.expiring.iter().map(|e| (e.points, fmt.date(e.expires_at.0))).collect(),
        ledger,
        receipts: rs
            .iter()
            .map(|r| ReceiptRow {
                pk: r.id.clone(),
                receipt_id: r.receipt_id.clone(),
                status: r.status.clone(),
                occurred_at: r.occurred_at,
                payable_minor: r.payable_minor,
                points_earned: r.points_earned,
                points_redeemed: r.points_redeemed,
            })
            .collect(),
        consents,
        show_ledger,
        can_adjust: staff.can(Perm::Adjust),
        adjustment_id: kopilka_store::new_id(),
        adjust_error,
        fmt,
    })
}

impl MemberTpl {
    fn kind_key(&self, kind: &str) -> &'static str {
        super::receipts::entry_kind_key(kind)
    }

    fn status_key(&self, status: &str) -> &'static str {
        super::receipts::status_key(status)
    }
}

async fn show(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(id): Path<String>) -> WebResult<MemberTpl> {
    member_page(&st, &ctx, &staff, &id, None).await
}

async fn adjust(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(id): Path<String>, f: Form) -> WebResult<Response> {
    staff.require(Perm::Adjust)?;
    let t = ctx.t;
    let points = f.get("points").and_then(|p| p.replace([' ', '\u{a0}'], "").parse::<i64>().ok()).filter(|p| *p != 0);
    let reason = f.get("reason").map(str::to_owned).filter(|r| r.chars().count() <= 500);
    let adjustment_id = f.get("adjustment_id").map(str::to_owned).filter(|a| a.len() <= 128);
    let error = match (&points, &reason) {
        (None, _) => Some(t.m("admin.adjust.points_invalid").to_owned()),
        (_, None) => Some(t.m("admin.adjust.reason_required").to_owned()),
        _ => None,
    };
    if let Some(e) = error {
        let tpl = member_page(&st, &ctx, &staff, &id, Some(e)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response());
    }
    let (points, reason) = (points.unwrap_or(0), reason.unwrap_or_default());
    let body = json!({"points": points, "reason": reason, "adjustment_id": adjustment_id});
    let a = svc::Adjustment { points, reason, adjustment_id, body };
    match svc::adjust(&st.app, &staff.auth(), &id, a).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/members/{id}")).into_response()),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY || e.status == StatusCode::CONFLICT => {
            let msg = if e.code == "insufficient_points" { t.m("admin.adjust.insufficient").to_owned() } else { e.message };
            let tpl = member_page(&st, &ctx, &staff, &id, Some(msg)).await?;
            Ok((e.status, tpl).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
