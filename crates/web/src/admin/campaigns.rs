//! Campaigns and their coupons: the list (active and archived), a form for the common
//! cases that builds the campaign's JSON, an "advanced" JSON box for everything else
//! (the CEL condition, audiences, more conditions or effects), archive; and per campaign
//! its coupons: generate, list, disable, CSV export and import.
//!
//! Everything goes through `services::campaigns`, as the API's `/campaigns` does: the
//! service's `parse` validates and compiles the JSON, and its messages are shown next to
//! the form's fields (or next to the JSON box for what the form does not show).
//!
//! Owners and marketers edit; analysts read; cashiers see nothing.

use super::programme::{field_message, parse_money, percent_text};
use crate::form::{Fields, Form};
use crate::i18n::{Fmt, Tr};
use crate::staff::{Perm, Staff};
use crate::{Ctx, Page, WebError, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{NaiveDateTime, TimeZone};
use kopilka_domain::campaign::{CampaignSpec, Clause, Effect, parse_rfc3339};
use kopilka_domain::program::Program;
use kopilka_server::services::campaigns::{self as svc, CouponBatch};
use kopilka_server::services::program;
use kopilka_store::StoreError;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/campaigns", get(list))
        .route("/admin/campaigns/new", get(new_form).post(create))
        .route("/admin/campaigns/{id}", get(edit_form).post(update))
        .route("/admin/campaigns/{id}/archive", post(archive))
        .route("/admin/campaigns/{id}/coupons", post(generate_coupons))
        .route("/admin/campaigns/{id}/coupons/import", post(import_coupons))
        .route("/admin/campaigns/{id}/coupons.csv", get(export_coupons))
        .route("/admin/campaigns/{id}/coupons/{coupon}/disable", post(disable_coupon))
}

pub struct CampaignRow {
    pub id: String,
    pub code: String,
    pub name: String,
    pub trigger: String,
    pub status: String,
    pub effects: String,
    pub starts: String,
    pub ends: String,
    pub budget: String,
    pub coupons: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/campaigns.html")]
struct ListTpl {
    page: Page,
    /// (title key, rows, test id): the active campaigns, then the archived.
    sections: Vec<(&'static str, Vec<CampaignRow>, &'static str)>,
    can_edit: bool,
}

pub struct CouponRow {
    pub id: String,
    pub code: String,
    pub uses: String,
    pub expires: String,
    pub status: String,
    pub active: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/campaign.html")]
struct FormTpl {
    page: Page,
    /// None for a new campaign.
    id: Option<String>,
    archived: bool,
    usage: String,
    form: Fields,
    /// Messages of the service about what the form does not show: (path, message).
    advanced_errors: Vec<(String, String)>,
    error: Option<String>,
    can_edit: bool,
    time_zone: String,
    requires_coupon: bool,
    coupons: Vec<CouponRow>,
    more_coupons: bool,
    coupon_form: Fields,
    /// The import's rejected rows: (line, why).
    import_errors: Vec<(String, String)>,
}

/// Coupons shown on a campaign's page (the CSV has all of them).
const COUPONS_SHOWN: i64 = 200;

async fn programme(st: &WebState, staff: &Staff) -> WebResult<Program> {
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    Ok(program::current(&st.app, &mut c, &staff.tenant.id).await?.1.as_ref().clone())
}

fn tz_of(p: &Program) -> chrono_tz::Tz {
    p.time_zone.parse().unwrap_or(chrono_tz::UTC)
}

/// An RFC 3339 time as a `datetime-local` value in the programme's time zone.
pub(crate) fn local_text(rfc: &str, tz: chrono_tz::Tz) -> String {
    match parse_rfc3339(rfc).and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
        Some(t) => t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string(),
        None => rfc.to_owned(),
    }
}

/// A `datetime-local` value (or a date) in the programme's time zone as RFC 3339.
pub(crate) fn rfc_of_local(s: &str, tz: chrono_tz::Tz) -> Option<String> {
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).expect("midnight")))
        .ok()?;
    let local = tz.from_local_datetime(&t).earliest()?;
    Some(local.fixed_offset().to_rfc3339())
}

fn list_text(v: &[String]) -> String {
    v.join(", ")
}

fn split_list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or_default().split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// What the effects do, in a few words.
fn effects_summary(spec: &CampaignSpec, t: Tr, currency: &str) -> String {
    spec.effects
        .iter()
        .map(|e| {
            let what = match e {
                Effect::DiscountPercent { percent_bp, .. } => t.f1("admin.campaigns.fx_discount", "v", t.percent_bp(*percent_bp)),
                Effect::DiscountFixed { amount_minor, .. } => t.f1("admin.campaigns.fx_discount", "v", t.money(*amount_minor, currency)),
                Effect::PointsMultiplier { multiplier_bp, .. } => {
                    t.f1("admin.campaigns.fx_multiplier", "v", multiplier_text(*multiplier_bp))
                }
                Effect::BonusPoints { points, .. } => t.p1("admin.campaigns.fx_bonus", *points),
                Effect::FreeItem { quantity, .. } => t.f1("admin.campaigns.fx_free", "v", t.num(*quantity)),
                Effect::Cashback { percent_bp: Some(p), .. } => t.f1("admin.campaigns.fx_cashback", "v", t.percent_bp(*p)),
                Effect::Cashback { amount_minor, .. } => {
                    t.f1("admin.campaigns.fx_cashback", "v", t.money(amount_minor.unwrap_or(0), currency))
                }
                Effect::StampCard { every, .. } => t.ordinal("admin.campaigns.fx_stamps", *every),
            };
            let target = e.target();
            if target.is_all() {
                what
            } else {
                let mut on = target.categories.clone();
                on.extend(target.skus.iter().cloned());
                format!("{what} ({})", on.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// 20000 → "2", 15000 → "1.5".
fn multiplier_text(bp: i64) -> String {
    percent_text(bp / 100)
}

/// The budget used against the budget set.
fn budget_summary(spec: &CampaignSpec, usage: &svc::UsageView, t: Tr, currency: &str) -> String {
    let used = |k: &str| match k {
        "points" => usage.points,
        "money_minor" => usage.money_minor,
        _ => usage.uses,
    };
    let mut parts = Vec::new();
    let b = &spec.budget;
    let of = |u: String, limit: Option<String>| match limit {
        Some(l) => format!("{u} / {l}"),
        None => u,
    };
    if b.points.is_some() || used("points") > 0 {
        parts.push(t.f1("admin.campaigns.budget_points", "v", of(t.num(used("points")), b.points.map(|n| t.num(n)))));
    }
    if b.money_minor.is_some() || used("money_minor") > 0 {
        parts.push(t.f1(
            "admin.campaigns.budget_money",
            "v",
            of(t.money(used("money_minor"), currency), b.money_minor.map(|n| t.money(n, currency))),
        ));
    }
    parts.push(t.f1("admin.campaigns.budget_uses", "v", of(t.num(used("uses")), b.uses.map(|n| t.num(n)))));
    parts.join(" · ")
}

fn row_of(v: &svc::CampaignView, t: Tr, p: &Program) -> CampaignRow {
    let spec = &v.spec;
    let tz = tz_of(p);
    let when = |s: &Option<String>| s.as_deref().map(|s| local_text(s, tz).replace('T', " ")).unwrap_or_default();
    CampaignRow {
        id: v.id.clone(),
        code: spec.code.clone(),
        name: spec.name.clone(),
        trigger: match spec.trigger {
            kopilka_domain::campaign::Trigger::Receipt => t.m("admin.campaigns.trigger_receipt").to_owned(),
            kopilka_domain::campaign::Trigger::Event => {
                t.f1("admin.campaigns.trigger_event", "v", spec.event_type.clone().unwrap_or_default())
            }
        },
        status: match spec.status {
            kopilka_domain::campaign::Status::Active => "active".into(),
            kopilka_domain::campaign::Status::Paused => "paused".into(),
        },
        effects: effects_summary(spec, t, &p.currency),
        starts: when(&spec.starts_at),
        ends: when(&spec.ends_at),
        budget: budget_summary(spec, &v.usage, t, &p.currency),
        coupons: spec.requires_coupon,
    }
}

async fn list(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<ListTpl> {
    staff.require(Perm::OffersView)?;
    let p = programme(&st, &staff).await?;
    let auth = staff.auth();
    // `archived: true` lists every campaign, the archived ones among them.
    let all = svc::list(&st.app, &auth, true).await?;
    let rows = |archived: bool| -> Vec<CampaignRow> {
        all.campaigns.iter().filter(|c| c.archived == archived).map(|c| row_of(c, ctx.t, &p)).collect()
    };
    let (active, archived) = (rows(false), rows(true));
    Ok(ListTpl {
        page: super::page(&ctx, &staff, "campaigns", "admin.campaigns.title"),
        sections: vec![
            ("admin.campaigns.active", active, "campaigns-active"),
            ("admin.campaigns.archived", archived, "campaigns-archived"),
        ],
        can_edit: staff.can(Perm::OffersEdit),
    })
}

/// The form's values for a campaign, and the JSON of what the form cannot show (the
/// advanced box).
fn values_of(spec: &CampaignSpec, p: &Program) -> BTreeMap<String, String> {
    let cur = p.currency.as_str();
    let tz = tz_of(p);
    let mut v = BTreeMap::new();
    let mut put = |k: &str, x: String| {
        v.insert(k.to_owned(), x);
    };
    put("code", spec.code.clone());
    put("name", spec.name.clone());
    put("priority", spec.priority.to_string());
    if spec.exclusive {
        put("exclusive", "on".into());
    }
    if let Some(s) = &spec.starts_at {
        put("starts_at", local_text(s, tz));
    }
    if let Some(s) = &spec.ends_at {
        put("ends_at", local_text(s, tz));
    }
    let b = &spec.budget;
    if let Some(n) = b.points {
        put("budget.points", n.to_string());
    }
    if let Some(n) = b.money_minor {
        put("budget.money_minor", Tr::plain_money(n, cur));
    }
    if let Some(n) = b.uses {
        put("budget.uses", n.to_string());
    }
    if let Some(n) = b.per_member_uses {
        put("budget.per_member_uses", n.to_string());
    }
    let mut advanced = serde_json::to_value(spec).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default();
    for k in ["code", "name", "priority", "exclusive", "starts_at", "ends_at", "budget"] {
        advanced.remove(k);
    }
    // Budgets the form does not show stay in the box.
    let mut rest = Map::new();
    if let Some(n) = b.per_member_points {
        rest.insert("per_member_points".into(), json!(n));
    }
    if let Some(n) = b.per_member_money_minor {
        rest.insert("per_member_money_minor".into(), json!(n));
    }
    if !rest.is_empty() {
        advanced.insert("budget".into(), Value::Object(rest));
    }
    // The conditions: when each is one the form shows (once), the form shows them all.
    let mut cond = BTreeMap::new();
    let simple_conditions = spec.conditions.iter().all(|c| match c {
        Clause::ReceiptTotal { min_minor } => cond.insert("min_total", Tr::plain_money(*min_minor, cur)).is_none(),
        Clause::MinQuantity { min, categories, skus } if min == &json!(1) && skus.is_empty() && !categories.is_empty() => {
            cond.insert("categories", list_text(categories)).is_none()
        }
        Clause::Tier { r#in } => cond.insert("tiers", list_text(r#in)).is_none(),
        _ => false,
    });
    if simple_conditions {
        for (k, x) in cond {
            put(k, x);
        }
        advanced.remove("conditions");
    }
    // One effect of the four kinds the form knows, on categories only.
    let mut effect_shown = false;
    if let [e] = spec.effects.as_slice()
        && e.target().skus.is_empty()
    {
        let shown = match e {
            Effect::DiscountPercent { percent_bp, .. } => Some(("discount_percent", percent_text(*percent_bp))),
            Effect::PointsMultiplier { multiplier_bp, .. } if multiplier_bp % 100 == 0 => {
                Some(("points_multiplier", multiplier_text(*multiplier_bp)))
            }
            Effect::BonusPoints { points, .. } => Some(("bonus_points", points.to_string())),
            Effect::Cashback { percent_bp: Some(p), amount_minor: None, .. } => Some(("cashback", percent_text(*p))),
            _ => None,
        };
        if let Some((kind, value)) = shown {
            put("effect", kind.into());
            put("effect_value", value);
            put("effect_categories", list_text(&e.target().categories));
            advanced.remove("effects");
            effect_shown = true;
        }
    }
    if !effect_shown {
        put("effect", "advanced".into());
    }
    // Defaults the service fills in need not be repeated.
    if advanced.get("status") == Some(&json!("active")) {
        advanced.remove("status");
    }
    if advanced.get("trigger") == Some(&json!("receipt")) {
        advanced.remove("trigger");
    }
    for k in ["requires_coupon"] {
        if advanced.get(k) == Some(&json!(false)) {
            advanced.remove(k);
        }
    }
    for k in ["audience", "conditions"] {
        if advanced.get(k).is_some_and(|a| a.as_object().is_some_and(Map::is_empty) || a.as_array().is_some_and(Vec::is_empty)) {
            advanced.remove(k);
        }
    }
    let text = if advanced.is_empty() { String::new() } else { serde_json::to_string_pretty(&Value::Object(advanced)).unwrap_or_default() };
    put("advanced", text);
    v
}

/// Where each part of the JSON built from the form came from, to put the service's
/// messages next to the right field.
#[derive(Default)]
struct Origin {
    /// conditions[i] → the form's field.
    conditions: Vec<&'static str>,
    /// Whether effects[0] came from the form.
    effect: bool,
    /// Keys the advanced box set (its messages go to the box).
    advanced: Vec<String>,
}

/// The campaign's JSON from the form, the fields that could not be read, and where each
/// part came from.
fn json_of(f: &Form, t: Tr, p: &Program) -> (Map<String, Value>, BTreeMap<String, String>, Origin) {
    let cur = p.currency.as_str();
    let tz = tz_of(p);
    let mut errors = BTreeMap::new();
    let mut origin = Origin::default();
    let mut m = Map::new();
    m.insert("code".into(), json!(f.get("code").unwrap_or_default()));
    m.insert("name".into(), json!(f.get("name").unwrap_or_default()));
    let int = |k: &str, errors: &mut BTreeMap<String, String>| -> Option<i64> {
        let v = f.get(k)?;
        match v.replace([' ', '\u{a0}'], "").parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.insert(k.to_owned(), t.m("admin.programme.whole_number").to_owned());
                None
            }
        }
    };
    let money = |k: &str, errors: &mut BTreeMap<String, String>| -> Option<i64> {
        let v = f.get(k)?;
        match parse_money(v, cur) {
            Some(n) => Some(n),
            None => {
                errors.insert(k.to_owned(), t.m("admin.programme.amount").to_owned());
                None
            }
        }
    };
    if let Some(n) = int("priority", &mut errors) {
        m.insert("priority".into(), json!(n));
    }
    m.insert("exclusive".into(), json!(f.checked("exclusive")));
    for k in ["starts_at", "ends_at"] {
        if let Some(s) = f.get(k) {
            match rfc_of_local(s, tz) {
                Some(r) => {
                    m.insert(k.into(), json!(r));
                }
                None => {
                    errors.insert(k.into(), t.m("admin.campaigns.time_invalid").to_owned());
                }
            }
        }
    }
    let mut budget = Map::new();
    for k in ["points", "uses", "per_member_uses"] {
        if let Some(n) = int(&format!("budget.{k}"), &mut errors) {
            budget.insert(k.into(), json!(n));
        }
    }
    if let Some(n) = money("budget.money_minor", &mut errors) {
        budget.insert("money_minor".into(), json!(n));
    }
    let mut conditions = Vec::new();
    if let Some(n) = money("min_total", &mut errors) {
        conditions.push(json!({"type": "receipt_total", "min_minor": n}));
        origin.conditions.push("min_total");
    }
    let cats = split_list(f.get("categories"));
    if !cats.is_empty() {
        conditions.push(json!({"type": "min_quantity", "min": 1, "categories": cats}));
        origin.conditions.push("categories");
    }
    let tiers = split_list(f.get("tiers"));
    if !tiers.is_empty() {
        conditions.push(json!({"type": "tier", "in": tiers}));
        origin.conditions.push("tiers");
    }
    m.insert("conditions".into(), Value::Array(conditions));
    let target = json!({"categories": split_list(f.get("effect_categories"))});
    let value = f.get("effect_value");
    let percent = |errors: &mut BTreeMap<String, String>| -> Option<i64> {
        match value.and_then(super::programme::parse_percent) {
            Some(n) => Some(n),
            None => {
                errors.insert("effect_value".into(), t.m("admin.programme.percent").to_owned());
                None
            }
        }
    };
    let effect = match f.get("effect").unwrap_or("advanced") {
        "discount_percent" => percent(&mut errors).map(|n| json!({"type": "discount_percent", "percent_bp": n, "target": target})),
        "cashback" => percent(&mut errors).map(|n| json!({"type": "cashback", "percent_bp": n, "target": target})),
        "points_multiplier" => match value.and_then(super::programme::parse_percent) {
            Some(n) => Some(json!({"type": "points_multiplier", "multiplier_bp": n.saturating_mul(100), "target": target})),
            None => {
                errors.insert("effect_value".into(), t.m("admin.campaigns.multiplier_invalid").to_owned());
                None
            }
        },
        "bonus_points" => match value.map(|v| v.replace([' ', '\u{a0}'], "").parse::<i64>()) {
            Some(Ok(n)) => Some(json!({"type": "bonus_points", "points": n, "target": target})),
            _ => {
                errors.insert("effect_value".into(), t.m("admin.programme.whole_number").to_owned());
                None
            }
        },
        _ => None,
    };
    if let Some(e) = effect {
        m.insert("effects".into(), json!([e]));
        origin.effect = true;
    } else {
        m.insert("effects".into(), json!([]));
    }
    // The advanced box: a JSON object whose keys replace the form's (a budget merges).
    if let Some(text) = f.get("advanced") {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(extra)) => {
                for (k, v) in extra {
                    origin.advanced.push(k.clone());
                    if k == "budget"
                        && let Value::Object(b) = v
                    {
                        budget.extend(b);
                        continue;
                    }
                    m.insert(k, v);
                }
            }
            Ok(_) => {
                errors.insert("advanced".into(), t.m("admin.campaigns.advanced_object").to_owned());
            }
            Err(e) => {
                errors.insert("advanced".into(), t.f1("admin.campaigns.advanced_json", "e", e));
            }
        }
    }
    if !budget.is_empty() {
        m.insert("budget".into(), Value::Object(budget));
    }
    if origin.advanced.iter().any(|k| k == "conditions") {
        origin.conditions.clear();
    }
    if origin.advanced.iter().any(|k| k == "effects") {
        origin.effect = false;
    }
    (m, errors, origin)
}

/// The form field a service message about `path` belongs next to: a field of the form,
/// or None for the advanced box.
fn field_of(path: &str, origin: &Origin) -> Option<String> {
    let head = path.split(['.', '[']).next().unwrap_or(path);
    if origin.advanced.iter().any(|k| k == head) && head != "budget" {
        return None;
    }
    match head {
        "code" | "name" | "priority" | "exclusive" | "starts_at" | "ends_at" => Some(head.to_owned()),
        "budget" => {
            let k = path.strip_prefix("budget.")?;
            ["points", "money_minor", "uses", "per_member_uses"].contains(&k).then(|| path.to_owned())
        }
        "conditions" => {
            let i: usize = path.strip_prefix("conditions[")?.split(']').next()?.parse().ok()?;
            origin.conditions.get(i).map(|f| (*f).to_owned())
        }
        "effects" if origin.effect => {
            if path.contains("target") {
                Some("effect_categories".into())
            } else if path.starts_with("effects[0]") {
                Some("effect_value".into())
            } else {
                Some("effect".into())
            }
        }
        _ => None,
    }
}

async fn coupon_rows(st: &WebState, staff: &Staff, id: &str, fmt: &Fmt, t: Tr) -> WebResult<(Vec<CouponRow>, bool)> {
    let v = svc::list_coupons(&st.app, &staff.auth(), id, "", COUPONS_SHOWN).await?;
    let rows: Vec<CouponRow> = v["coupons"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|k| CouponRow {
                    id: k["id"].as_str().unwrap_or_default().to_owned(),
                    code: k["code"].as_str().unwrap_or_default().to_owned(),
                    uses: match k["max_uses"].as_i64() {
                        Some(m) => format!("{} / {}", k["uses"].as_i64().unwrap_or(0), m),
                        None => k["uses"].as_i64().unwrap_or(0).to_string(),
                    },
                    expires: k["expires_at"].as_str().and_then(parse_rfc3339).map(|s| fmt.datetime(s)).unwrap_or_default(),
                    active: k["status"] != "disabled",
                    status: if k["status"] == "disabled" {
                        t.m("admin.coupons.disabled").to_owned()
                    } else {
                        t.m("admin.coupons.active").to_owned()
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((rows, !v["next_cursor"].is_null()))
}

struct Shown {
    form: Fields,
    advanced_errors: Vec<(String, String)>,
    error: Option<String>,
    coupon_form: Fields,
    import_errors: Vec<(String, String)>,
}

impl Shown {
    fn form(form: Fields) -> Shown {
        Shown { form, advanced_errors: Vec::new(), error: None, coupon_form: Fields::default(), import_errors: Vec::new() }
    }
}

/// The campaign's page (a new one when `id` is None).
async fn render(st: &WebState, ctx: &Ctx, staff: &Staff, id: Option<&str>, shown: Option<Shown>) -> WebResult<FormTpl> {
    let p = programme(st, staff).await?;
    let t = ctx.t;
    let fmt = Fmt::new(t, &p);
    let (current, archived, usage) = match id {
        Some(id) => {
            let v = svc::get(&st.app, &staff.auth(), id).await?;
            let usage = budget_summary(&v.spec, &v.usage, t, &p.currency);
            (Some(v.spec), v.archived, usage)
        }
        None => (None, false, String::new()),
    };
    let shown = match shown {
        Some(s) => s,
        None => Shown::form(Fields::new(
            current.as_ref().map(|s| values_of(s, &p)).unwrap_or_else(|| {
                BTreeMap::from([("priority".to_owned(), "100".to_owned()), ("effect".to_owned(), "discount_percent".to_owned())])
            }),
            BTreeMap::new(),
        )),
    };
    let requires_coupon = current.as_ref().is_some_and(|s| s.requires_coupon);
    let (coupons, more_coupons) = match (id, requires_coupon) {
        (Some(id), true) => coupon_rows(st, staff, id, &fmt, t).await?,
        _ => (Vec::new(), false),
    };
    let title = if id.is_some() { "admin.campaigns.edit" } else { "admin.campaigns.new" };
    let mut coupon_form = shown.coupon_form;
    coupon_form.values.entry("count".into()).or_insert_with(|| "10".into());
    Ok(FormTpl {
        page: super::page(ctx, staff, "campaigns", title),
        id: id.map(str::to_owned),
        archived,
        usage,
        form: shown.form,
        advanced_errors: shown.advanced_errors,
        error: shown.error,
        can_edit: staff.can(Perm::OffersEdit) && !archived,
        time_zone: p.time_zone.clone(),
        requires_coupon,
        coupons,
        more_coupons,
        coupon_form,
        import_errors: shown.import_errors,
    })
}

async fn new_form(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<FormTpl> {
    staff.require(Perm::OffersEdit)?;
    render(&st, &ctx, &staff, None, None).await
}

async fn edit_form(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(id): Path<String>) -> WebResult<FormTpl> {
    staff.require(Perm::OffersView)?;
    render(&st, &ctx, &staff, Some(&id), None).await
}

async fn create(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<Response> {
    save(st, ctx, staff, None, f).await
}

async fn update(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(id): Path<String>, f: Form) -> WebResult<Response> {
    save(st, ctx, staff, Some(id), f).await
}

async fn save(st: WebState, ctx: Ctx, staff: Staff, id: Option<String>, f: Form) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    let t = ctx.t;
    let p = programme(&st, &staff).await?;
    if let Some(id) = &id {
        // 404 for another tenant's (or no) campaign, before anything else.
        svc::get(&st.app, &staff.auth(), id).await?;
    }
    let (body, mut errors, origin) = json_of(&f, t, &p);
    let mut advanced_errors = Vec::new();
    let mut general = None;
    if errors.is_empty() {
        match svc::parse(body) {
            Ok(spec) => {
                let auth = staff.auth();
                let done = match &id {
                    Some(id) => svc::update(&st.app, &auth, id, spec).await,
                    None => svc::create(&st.app, &auth, spec).await,
                };
                match done {
                    Ok(v) => {
                        let to = format!("/admin/campaigns/{}", v.id);
                        return Ok(Redirect::to(&to).into_response());
                    }
                    Err(e) if e.code == "campaign_exists" => {
                        errors.insert("code".into(), t.m("admin.campaigns.code_taken").to_owned());
                    }
                    Err(e) if e.status.is_client_error() => general = Some(e.message),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => {
                for (path, msg) in e.fields {
                    let shown = field_message(&path, &msg, t, &p.currency);
                    match field_of(&path, &origin) {
                        Some(field) => {
                            errors.entry(field).or_insert(shown);
                        }
                        None => advanced_errors.push((path, shown)),
                    }
                }
                if !e.message.is_empty() && errors.is_empty() && advanced_errors.is_empty() {
                    general = Some(e.message);
                }
            }
        }
    }
    if general.is_none() {
        general = Some(t.m("admin.programme.fix_fields").to_owned());
    }
    let mut shown = Shown::form(Fields::new(f.0.clone(), errors));
    shown.advanced_errors = advanced_errors;
    shown.error = general;
    let tpl = render(&st, &ctx, &staff, id.as_deref(), Some(shown)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response())
}

async fn archive(State(st): State<WebState>, staff: Staff, Path(id): Path<String>) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    svc::archive(&st.app, &staff.auth(), &id).await?;
    Ok(Redirect::to("/admin/campaigns").into_response())
}

// ---------------------------------------------------------------- coupons

async fn generate_coupons(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(id): Path<String>, f: Form) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    let t = ctx.t;
    let p = programme(&st, &staff).await?;
    let mut errors = BTreeMap::new();
    let count = f.get("count").and_then(|c| c.parse::<i64>().ok()).filter(|n| (1..=10_000).contains(n));
    if count.is_none() {
        errors.insert("count".to_owned(), t.m("admin.coupons.count_invalid").to_owned());
    }
    let prefix = svc::normalize_code(f.get("prefix").unwrap_or_default());
    if prefix.chars().count() > 16 || !prefix.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_') {
        errors.insert("prefix".to_owned(), t.m("admin.coupons.prefix_invalid").to_owned());
    }
    let max_uses = match f.get("max_uses").map(|v| v.parse::<i64>().ok().filter(|n| (1..=1_000_000_000_000).contains(n))) {
        None => Some(1),
        Some(Some(n)) => Some(n),
        Some(None) => {
            errors.insert("max_uses".to_owned(), t.m("admin.coupons.max_uses_invalid").to_owned());
            None
        }
    };
    let expires_at = match f.get("expires_at") {
        None => None,
        Some(s) => match rfc_of_local(s, tz_of(&p)).and_then(|r| parse_rfc3339(&r)) {
            Some(x) if x > kopilka_store::now_s() => Some(x),
            _ => {
                errors.insert("expires_at".to_owned(), t.m("admin.coupons.expires_invalid").to_owned());
                None
            }
        },
    };
    if errors.is_empty() {
        let b = CouponBatch {
            code: None,
            generate: count,
            prefix,
            length: 12,
            member_ids: Vec::new(),
            max_uses,
            per_member_limit: None,
            starts_at: None,
            expires_at,
        };
        match svc::create_coupons(&st.app, &staff.auth(), &id, b).await {
            Ok(_) => return Ok(Redirect::to(&format!("/admin/campaigns/{id}#coupons")).into_response()),
            Err(e) if e.code == "campaign_without_coupons" => {
                errors.insert("count".to_owned(), t.m("admin.coupons.not_taking").to_owned());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut shown = Shown::form(Fields::default());
    shown.coupon_form = Fields::new(f.0.clone(), errors);
    let mut tpl = render(&st, &ctx, &staff, Some(&id), Some(shown)).await?;
    tpl.form = fresh_values(&st, &staff, &id).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response())
}

/// The saved campaign's form values (when another part of the page is shown again).
async fn fresh_values(st: &WebState, staff: &Staff, id: &str) -> WebResult<Fields> {
    let p = programme(st, staff).await?;
    let v = svc::get(&st.app, &staff.auth(), id).await?;
    Ok(Fields::new(values_of(&v.spec, &p), BTreeMap::new()))
}

async fn import_coupons(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(id): Path<String>, f: Form) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    let t = ctx.t;
    let csv = f.raw("csv");
    let mut import_errors = Vec::new();
    if csv.trim().is_empty() {
        import_errors.push((String::new(), t.m("admin.coupons.csv_empty").to_owned()));
    } else {
        match svc::parse_coupon_csv(csv.as_bytes()) {
            Ok(rows) => match svc::import_coupons(&st.app, &staff.auth(), &id, rows).await {
                Ok(_) => return Ok(Redirect::to(&format!("/admin/campaigns/{id}#coupons")).into_response()),
                Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND || e.code == "member_not_found" => {
                    import_errors.push((String::new(), e.message));
                }
                Err(e) => return Err(e.into()),
            },
            Err(e) => {
                let mut fields: Vec<(String, String)> = e.fields.into_iter().collect();
                // Lines in file order ("line 10" after "line 9").
                fields.sort_by_key(|(k, _)| k.strip_prefix("line ").and_then(|n| n.parse::<usize>().ok()).unwrap_or(0));
                import_errors.extend(fields.into_iter().map(|(k, v)| (k.replace("line", t.m("admin.coupons.line")), v)));
            }
        }
    }
    let mut shown = Shown::form(Fields::default());
    shown.coupon_form = Fields::new(BTreeMap::from([("csv".to_owned(), csv.to_owned())]), BTreeMap::new());
    shown.import_errors = import_errors;
    let mut tpl = render(&st, &ctx, &staff, Some(&id), Some(shown)).await?;
    tpl.form = fresh_values(&st, &staff, &id).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response())
}

async fn export_coupons(State(st): State<WebState>, staff: Staff, Path(id): Path<String>) -> WebResult<Response> {
    staff.require(Perm::OffersView)?;
    let v = svc::get(&st.app, &staff.auth(), &id).await?;
    let csv = svc::export_coupons(&st.app, &staff.auth(), &id).await?;
    let code: String = v.spec.code.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    let disposition = format!("attachment; filename=\"coupons-{code}.csv\"");
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)], csv).into_response())
}

async fn disable_coupon(State(st): State<WebState>, staff: Staff, Path((id, coupon)): Path<(String, String)>) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    // The coupon must be one of this campaign's (and so of this tenant's).
    let listed = svc::list_coupons(&st.app, &staff.auth(), &id, "", 100_000).await?;
    let ours = listed["coupons"].as_array().is_some_and(|a| a.iter().any(|k| k["id"] == coupon.as_str()));
    if !ours {
        return Err(WebError::not_found());
    }
    svc::disable_coupon(&st.app, &staff.auth(), &coupon).await?;
    Ok(Redirect::to(&format!("/admin/campaigns/{id}#coupons")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kopilka_domain::program::Lang;

    #[test]
    fn a_campaign_of_the_common_kind_round_trips_through_the_form() {
        let p = kopilka_server::services::templates::template("retail").unwrap();
        let body = json!({
            "code": "AUTUMN", "name": "Autumn", "priority": 120, "exclusive": true,
            "starts_at": "2026-09-01T00:00:00+03:00", "ends_at": "2026-12-01T00:00:00+03:00",
            "conditions": [{"type": "receipt_total", "min_minor": 100000}, {"type": "tier", "in": ["gold"]}],
            "effects": [{"type": "discount_percent", "percent_bp": 1250, "target": {"categories": ["shoes"]}}],
            "budget": {"money_minor": 5000000, "uses": 100, "per_member_points": 5},
            "cel": {"expression": "receipt.total_minor > 0", "reason": "no"}
        });
        let spec = svc::parse(body.as_object().unwrap().clone()).unwrap();
        let mut p = p;
        p.time_zone = "Europe/Moscow".into();
        let values = values_of(&spec, &p);
        assert_eq!(values["effect"], "discount_percent");
        assert_eq!(values["effect_value"], "12.5");
        assert!(values["advanced"].contains("cel"), "{}", values["advanced"]);
        let (m, errors, _) = json_of(&Form(values), Tr::new(Lang::En), &p);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(svc::parse(m).unwrap(), spec);
    }

    #[test]
    fn local_times_are_in_the_programme_zone() {
        let tz: chrono_tz::Tz = "Europe/Moscow".parse().unwrap();
        assert_eq!(rfc_of_local("2026-09-01T10:30", tz).as_deref(), Some("2026-09-01T10:30:00+03:00"));
        assert_eq!(local_text("2026-09-01T07:30:00Z", tz), "2026-09-01T10:30");
        assert_eq!(rfc_of_local("yesterday", tz), None);
    }
}
