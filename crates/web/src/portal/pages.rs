//! The portal's pages for a logged-in member (the card, history, offers and rewards,
//! consents) and the public rules page.

use super::{Nav, Portal, Programme, nav, page};
use crate::form::Form;
use crate::i18n::Tr;
use crate::{Ctx, Page, WebError, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use kopilka_domain::program::{Expiry, Period, RedeemAuth, Rounding};
use kopilka_server::input::parse_time;
use kopilka_server::services::{campaigns, cards, members as msvc, rewards};
use kopilka_store::{StoreError, members, new_id, now_s, tenants};
use serde_json::Value;

fn time_of(v: &Value) -> Option<i64> {
    v.as_str().and_then(parse_time)
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
}

// ---------------------------------------------------------------------------------------
// The card
// ---------------------------------------------------------------------------------------

/// Progress towards the next tier.
#[derive(Debug, Clone)]
pub struct NextTier {
    /// "₽1,200.00 more to Gold".
    pub hint: String,
    /// 0..=100.
    pub percent: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "portal/home.html")]
pub struct HomeTpl {
    page: Page,
    nav: Nav,
    prog: Programme,
    card_number: String,
    name: Option<String>,
    available: i64,
    pending: i64,
    held: i64,
    tier: Option<String>,
    tier_spend_minor: i64,
    next: Option<NextTier>,
    /// "120 points on Dec 1, 2026".
    expiring: Vec<String>,
    rotate: bool,
}

/// `GET /m/{slug}`: the card with its QR code, balance, pending and expiring points, and
/// the tier.
pub async fn home(State(st): State<WebState>, ctx: Ctx, p: Portal) -> WebResult<HomeTpl> {
    let t = ctx.t;
    let tenant = p.prog.tenant_id.as_str();
    let view = cards::view(&st.app, tenant, &p.member.id).await?;
    let b = msvc::balance(&st.app, &p.auth(), &p.member.id).await?;
    let program = &p.prog.program;
    let spend = b.tier_spend_minor;
    let tier = b.tier.as_deref().and_then(|c| program.tiers.iter().find(|x| x.code == c));
    let next = b.next_tier.as_ref().map(|n| {
        let needed = n.spend_needed_minor;
        let from = tier.map(|x| x.min_spend_minor).unwrap_or(0);
        let to = spend + needed;
        let percent = if to > from { ((spend - from).max(0) as i128 * 100 / (to - from) as i128) as i64 } else { 100 };
        let hint = t.f("portal.card.tier_next", &[("money", &t.money(needed, p.prog.currency())), ("tier", &n.name)]);
        NextTier { hint, percent: percent.clamp(0, 100) }
    });
    let expiring = b
        .expiring
        .iter()
        .map(|e| {
            let date = t.date(e.expires_at.0, p.prog.tz());
            t.p("portal.card.expiring_row", e.points, &[("date", &date)])
        })
        .collect();
    Ok(HomeTpl {
        page: page(&ctx, &p.prog, "portal.card.title"),
        nav: nav(&p.prog, true, "card"),
        card_number: p.member.card_number.clone(),
        name: p.member.name.clone(),
        available: b.available,
        pending: b.pending,
        held: b.held,
        tier: view.tier_name.clone(),
        tier_spend_minor: spend,
        next,
        expiring,
        rotate: view.design.qr_rotation,
        prog: p.prog,
    })
}

/// `GET /m/{slug}/card.svg`: the member's QR code (the current rotating token when the
/// programme rotates it), never cached.
pub async fn card_svg(State(st): State<WebState>, p: Portal) -> WebResult<Response> {
    let view = cards::view(&st.app, &p.prog.tenant_id, &p.member.id).await?;
    let (ctype, bytes) = cards::code_image(&view, kopilka_cards::Format::Qr, true, now_s())?;
    Ok(([(header::CONTENT_TYPE, ctype), (header::CACHE_CONTROL, "no-store")], bytes).into_response())
}

// ---------------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Entry {
    pub date: String,
    pub kind: &'static str,
    pub points: i64,
    pub note: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "portal/history.html")]
pub struct HistoryTpl {
    page: Page,
    nav: Nav,
    entries: Vec<Entry>,
}

/// The catalogue key of a ledger entry's kind.
fn kind_key(kind: &str) -> &'static str {
    match kind {
        "earn" => "portal.kind.earn",
        "redeem" => "portal.kind.redeem",
        "return_redeem" => "portal.kind.return_redeem",
        "reverse_earn" => "portal.kind.reverse_earn",
        "expire" => "portal.kind.expire",
        "adjust" => "portal.kind.adjust",
        "transfer_in" => "portal.kind.transfer_in",
        "transfer_out" => "portal.kind.transfer_out",
        "withheld" => "portal.kind.withheld",
        _ => "portal.kind.other",
    }
}

/// `GET /m/{slug}/history`: the newest 100 ledger entries.
pub async fn history(State(st): State<WebState>, ctx: Ctx, p: Portal) -> WebResult<HistoryTpl> {
    let v = msvc::ledger_page(&st.app, &p.auth(), &p.member.id, 100, None).await?;
    let tz = p.prog.tz();
    let entries = v
        .entries
        .into_iter()
        .map(|e| {
            let receipt = e.receipt_id.as_deref().map(|r| ctx.t.f1("portal.history.receipt", "id", r));
            Entry {
                date: ctx.t.date(e.occurred_at.0, tz),
                kind: kind_key(&e.kind),
                points: e.points,
                note: receipt.or(e.reason).unwrap_or_default(),
            }
        })
        .collect();
    Ok(HistoryTpl { page: page(&ctx, &p.prog, "portal.history.title"), nav: nav(&p.prog, true, "history"), entries })
}

// ---------------------------------------------------------------------------------------
// Offers and rewards
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Offer {
    pub name: String,
    pub description: String,
    pub until: Option<String>,
    pub coupon: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Stamps {
    pub name: String,
    /// "3 of 6 stamps".
    pub progress: String,
}

#[derive(Debug, Clone)]
pub struct RewardRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub price: i64,
    pub can_redeem: bool,
    pub reason: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "portal/offers.html")]
pub struct OffersTpl {
    page: Page,
    nav: Nav,
    offers: Vec<Offer>,
    stamps: Vec<Stamps>,
    rewards: Vec<RewardRow>,
    points_available: i64,
    /// A fresh idempotency id for each redeem form (a double click redeems once).
    redemption_id: String,
    /// The code of a reward just redeemed.
    issued: Option<(String, String)>,
}

async fn offers_tpl(st: &WebState, ctx: &Ctx, p: &Portal, issued: Option<(String, String)>) -> WebResult<OffersTpl> {
    let auth = p.auth();
    let tz = p.prog.tz();
    let t = ctx.t;
    let o = campaigns::member_offers(&st.app, &auth, &p.member.id).await?;
    let until = |v: &Value| time_of(v).map(|s| t.date(s, tz));
    let mut offers: Vec<Offer> = o["offers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| Offer { name: text(&k["name"]), description: text(&k["description"]), until: until(&k["ends_at"]), coupon: None })
        .collect();
    for c in o["coupons"].as_array().into_iter().flatten() {
        let k = &c["campaign"];
        offers.push(Offer {
            name: text(&k["name"]),
            description: text(&k["description"]),
            until: until(&c["expires_at"]).or_else(|| until(&k["ends_at"])),
            coupon: Some(text(&c["code"])),
        });
    }
    let stamps = o["stamp_cards"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| Stamps {
            name: text(&s["name"]),
            progress: t.p("portal.offers.stamps", int(&s["every"]), &[("have", &int(&s["stamps"]))]),
        })
        .collect();
    let r = rewards::member_catalogue(&st.app, &auth, &p.member.id, None, 100).await?;
    let rewards = r
        .rewards
        .into_iter()
        .filter(|w| w.reward.active)
        .map(|w| RewardRow {
            id: w.reward.id,
            name: w.reward.name,
            description: w.reward.description,
            price: w.reward.points_price,
            can_redeem: w.can_redeem,
            reason: w.reason_code.map(|c| reason_text(t, c).to_owned()),
        })
        .collect();
    Ok(OffersTpl {
        page: page(ctx, &p.prog, "portal.offers.title"),
        nav: nav(&p.prog, true, "offers"),
        offers,
        stamps,
        rewards,
        points_available: r.points_available,
        redemption_id: new_id(),
        issued,
    })
}

/// Why a reward cannot be redeemed, in the reader's language.
fn reason_text(t: Tr, code: &str) -> &'static str {
    match code {
        "insufficient_points" => t.m("portal.rewards.why.points"),
        "out_of_stock" => t.m("portal.rewards.why.stock"),
        "tier_not_eligible" => t.m("portal.rewards.why.tier"),
        "reward_limit_reached" => t.m("portal.rewards.why.limit"),
        _ => t.m("portal.rewards.why.other"),
    }
}

/// `GET /m/{slug}/offers`: the member's personal offers, coupons, stamp cards and the
/// rewards catalogue.
pub async fn offers(State(st): State<WebState>, ctx: Ctx, p: Portal) -> WebResult<OffersTpl> {
    offers_tpl(&st, &ctx, &p, None).await
}

/// `POST /m/{slug}/rewards/{id}/redeem` (`redemption_id`): redeem a reward for points.
pub async fn redeem(
    State(st): State<WebState>,
    ctx: Ctx,
    p: Portal,
    Path((_, id)): Path<(String, String)>,
    f: Form,
) -> WebResult<Response> {
    let redemption_id = f.get("redemption_id").filter(|r| r.len() <= 128).map(str::to_owned).unwrap_or_else(new_id);
    let req = rewards::RedeemRequest { redemption_id, body: serde_json::json!({"source": "portal"}) };
    match rewards::redeem(&st.app, &p.auth(), &p.member.id, &id, req).await {
        Ok(x) => {
            let tpl = offers_tpl(&st, &ctx, &p, Some((x.reward_name, x.code))).await?;
            Ok(tpl.into_response())
        }
        Err(e) if e.status.is_client_error() => {
            let mut tpl = offers_tpl(&st, &ctx, &p, None).await?;
            let why = if e.status == StatusCode::NOT_FOUND { ctx.t.m("common.error.not_found") } else { reason_text(ctx.t, e.code) };
            tpl.page.notice = Some(why.to_owned());
            Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------
// Consents
// ---------------------------------------------------------------------------------------

/// Consents a member may give or withdraw here. Withdrawing `personal_data` ends the
/// membership, which the programme handles: the page says so instead.
pub const CHANGEABLE: [&str; 4] = ["marketing", "sms", "email", "push"];

#[derive(Debug, Clone)]
pub struct ConsentRow {
    pub kind: &'static str,
    pub label: &'static str,
    pub granted: bool,
    pub since: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "portal/consents.html")]
pub struct ConsentsTpl {
    page: Page,
    nav: Nav,
    rows: Vec<ConsentRow>,
    personal_data: Option<String>,
}

fn consent_label(kind: &str) -> &'static str {
    match kind {
        "marketing" => "portal.consents.marketing",
        "sms" => "portal.consents.sms",
        "email" => "portal.consents.email",
        _ => "portal.consents.push",
    }
}

async fn consents_tpl(st: &WebState, ctx: &Ctx, p: &Portal) -> WebResult<ConsentsTpl> {
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let current = members::consents(&mut c, &p.prog.tenant_id, &p.member.id).await?;
    let tz = p.prog.tz();
    let rows = CHANGEABLE
        .iter()
        .map(|k| {
            let x = current.iter().find(|x| x.kind == *k);
            ConsentRow {
                kind: k,
                label: consent_label(k),
                granted: x.is_some_and(|x| x.granted),
                since: x.map(|x| ctx.t.date(x.recorded_at, tz)),
            }
        })
        .collect();
    let personal_data = current.iter().find(|x| x.kind == "personal_data" && x.granted).map(|x| ctx.t.date(x.recorded_at, tz));
    Ok(ConsentsTpl { page: page(ctx, &p.prog, "portal.consents.title"), nav: nav(&p.prog, true, "consents"), rows, personal_data })
}

/// `GET /m/{slug}/consents`.
pub async fn consents(State(st): State<WebState>, ctx: Ctx, p: Portal) -> WebResult<ConsentsTpl> {
    consents_tpl(&st, &ctx, &p).await
}

/// `POST /m/{slug}/consents` (a checkbox per kind): record each change, with the portal as
/// its source, and audit it.
pub async fn save_consents(State(st): State<WebState>, ctx: Ctx, p: Portal, f: Form) -> WebResult<ConsentsTpl> {
    let tenant = p.prog.tenant_id.as_str();
    let now = now_s();
    let mut tx = st.app.db.begin().await?;
    let current = members::consents(tx.conn(), tenant, &p.member.id).await?;
    let mut changed = serde_json::Map::new();
    for kind in CHANGEABLE {
        let granted = f.checked(kind);
        let was = current.iter().find(|x| x.kind == kind).map(|x| x.granted);
        if was == Some(granted) || (was.is_none() && !granted) {
            continue;
        }
        let c = members::Consent { kind: kind.to_owned(), granted, source: "portal".into(), recorded_at: now };
        members::insert_consent(tx.conn(), tenant, &p.member.id, &c).await?;
        changed.insert(kind.to_owned(), Value::Bool(granted));
    }
    if !changed.is_empty() {
        tenants::audit(
            tx.conn(),
            tenant,
            &tenants::Audit {
                actor: &p.actor(),
                action: "member.consents",
                object_type: "member",
                object_id: &p.member.id,
                details: &Value::Object(changed),
                at: now,
            },
        )
        .await?;
    }
    tx.commit().await?;
    let mut tpl = consents_tpl(&st, &ctx, &p).await?;
    tpl.page.notice = Some(ctx.t.m("portal.consents.saved").to_owned());
    Ok(tpl)
}

// ---------------------------------------------------------------------------------------
// The programme's rules (FEATURES A3), generated from its configuration
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct TierRow {
    pub name: String,
    pub from: String,
    pub multiplier: String,
    pub discount: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "portal/rules.html")]
pub struct RulesTpl {
    page: Page,
    nav: Nav,
    earning: Vec<String>,
    spending: Vec<String>,
    keeping: Vec<String>,
    tiers: Vec<TierRow>,
    tier_window: String,
}

/// The rules in sentences, from the programme the engine runs.
fn rules_text(t: Tr, prog: &Programme) -> RulesText {
    let p = &prog.program;
    let cur = prog.currency();
    let mut earning = vec![t.p("portal.rules.earn", p.earn.points_per_unit, &[("money", &t.money(p.earn.unit_minor, cur))])];
    earning.push(
        t.m(match p.earn.rounding {
            Rounding::Floor => "portal.rules.round_floor",
            Rounding::HalfUp => "portal.rules.round_half_up",
            Rounding::Ceil => "portal.rules.round_ceil",
        })
        .to_owned(),
    );
    if !p.no_earn_categories.is_empty() {
        earning.push(t.f1("portal.rules.no_earn", "list", p.no_earn_categories.join(", ")));
    }
    if p.pending_days > 0 {
        earning.push(t.p1("portal.rules.pending", p.pending_days));
    } else {
        earning.push(t.m("portal.rules.pending_none").to_owned());
    }
    let mut spending = vec![t.f1("portal.rules.point_value", "money", t.money(p.redeem.point_value_minor, cur))];
    spending.push(t.f1("portal.rules.max_share", "percent", t.percent_bp(p.redeem.max_share_bp)));
    if p.redeem.min_balance > 0 {
        spending.push(t.p1("portal.rules.min_balance", p.redeem.min_balance));
    }
    if !p.no_discount_categories.is_empty() {
        spending.push(t.f1("portal.rules.no_discount", "list", p.no_discount_categories.join(", ")));
    }
    match p.redeem.auth {
        RedeemAuth::None => {}
        RedeemAuth::Qr => spending.push(t.m("portal.rules.auth_qr").to_owned()),
        RedeemAuth::QrOrOtp => spending.push(t.m("portal.rules.auth_qr_or_otp").to_owned()),
    }
    let mut keeping = Vec::new();
    match &p.expiry {
        Expiry::Never => keeping.push(t.m("portal.rules.expiry_never").to_owned()),
        Expiry::RollingDays { days } => keeping.push(t.p1("portal.rules.expiry_days", *days)),
        Expiry::EndOfPeriod { period: Period::Month, periods } => keeping.push(t.ordinal("portal.rules.expiry_months", *periods)),
        Expiry::EndOfPeriod { period: Period::Year, periods } => keeping.push(t.ordinal("portal.rules.expiry_years", *periods)),
    }
    // An example from the engine's own expiry rule, so the page never disagrees with it.
    let tz: chrono_tz::Tz = p.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let now = chrono::Utc::now();
    if let Some(at) = kopilka_domain::expiry::expires_at(&p.expiry, now, tz) {
        keeping.push(t.f1("portal.rules.expiry_example", "date", t.date(at.timestamp(), prog.tz())));
    }
    let tiers = p
        .tiers
        .iter()
        .map(|x| TierRow {
            name: x.name.clone(),
            from: t.money(x.min_spend_minor, cur),
            multiplier: multiplier(t, x.earn_multiplier_bp),
            discount: (x.discount_bp > 0).then(|| t.percent_bp(x.discount_bp)),
        })
        .collect();
    RulesText { earning, spending, keeping, tiers, tier_window: t.p1("portal.rules.tier_window", p.tier_window_days) }
}

/// An earning multiplier in basis points: `×1.5` / `×1,5`.
fn multiplier(t: Tr, bp: i64) -> String {
    let whole = bp / 10_000;
    let frac = format!("{:04}", (bp % 10_000).abs());
    let frac = frac.trim_end_matches('0');
    let sep = if t.lang == crate::i18n::Lang::Ru { "," } else { "." };
    if frac.is_empty() { format!("×{whole}") } else { format!("×{whole}{sep}{frac}") }
}

/// [`RulesTpl`] without the frame (testable without a request).
struct RulesText {
    earning: Vec<String>,
    spending: Vec<String>,
    keeping: Vec<String>,
    tiers: Vec<TierRow>,
    tier_window: String,
}

/// `GET /m/{slug}/rules`: public, logged in or not.
pub async fn rules(State(st): State<WebState>, ctx: Ctx, Path(slug): Path<String>, headers: axum::http::HeaderMap) -> WebResult<RulesTpl> {
    let prog = Programme::load(&st, &slug).await?;
    let logged_in = crate::session::current(&st, &crate::session::MEMBER, &headers)
        .await
        .map_err(WebError::from)?
        .is_some_and(|s| s.tenant_id == prog.tenant_id);
    let r = rules_text(ctx.t, &prog);
    Ok(RulesTpl {
        page: page(&ctx, &prog, "portal.rules.title"),
        nav: nav(&prog, logged_in, "rules"),
        earning: r.earning,
        spending: r.spending,
        keeping: r.keeping,
        tiers: r.tiers,
        tier_window: r.tier_window,
    })
}
