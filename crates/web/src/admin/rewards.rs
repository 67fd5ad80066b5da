//! The rewards catalogue: the list, a form per reward (create and edit), archive, and the
//! newest redemptions with fulfil and cancel. The form's body is read by the API's own
//! reader (`http::reward_spec`) and written by `services::rewards`, so the rules are the
//! API's; their messages are shown next to the fields.
//!
//! Owners and marketers edit, fulfil and cancel; analysts read; cashiers see nothing.

use super::programme::field_message;
use crate::form::{Fields, Form};
use crate::i18n::Fmt;
use crate::staff::{Perm, Staff};
use crate::{Ctx, Page, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kopilka_domain::program::Program;
use kopilka_domain::rewards::KINDS;
use kopilka_server::services::{campaigns, program, rewards as svc};
use kopilka_store::StoreError;
use kopilka_store::rewards::RedemptionFilter;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/rewards", get(list))
        .route("/admin/rewards/new", get(new_form).post(create))
        .route("/admin/rewards/{id}", get(edit_form).post(update))
        .route("/admin/rewards/{id}/archive", post(archive))
        .route("/admin/rewards/redemptions/{id}/fulfil", post(fulfil))
        .route("/admin/rewards/redemptions/{id}/cancel", post(cancel))
}

/// Redemptions shown on the list.
const REDEMPTIONS_SHOWN: i64 = 50;

pub struct RewardRow {
    pub id: String,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub price: i64,
    pub stock: String,
    pub redeemed: i64,
    pub active: bool,
    pub archived: bool,
}

pub struct RedemptionRow {
    pub id: String,
    pub reward: String,
    pub member_id: String,
    pub points: i64,
    pub status: String,
    pub created_at: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/rewards.html")]
struct ListTpl {
    page: Page,
    fmt: Fmt,
    rewards: Vec<RewardRow>,
    redemptions: Vec<RedemptionRow>,
    can_edit: bool,
    error: Option<String>,
}

impl ListTpl {
    fn kind_key(&self, kind: &str) -> &'static str {
        kind_key(kind)
    }
    fn status_key(&self, status: &str) -> &'static str {
        match status {
            "issued" => "admin.rewards.issued",
            "fulfilled" => "admin.rewards.fulfilled",
            _ => "admin.rewards.cancelled",
        }
    }
}

fn kind_key(kind: &str) -> &'static str {
    match kind {
        "gift" => "admin.rewards.kind_gift",
        "discount" => "admin.rewards.kind_discount",
        "voucher" => "admin.rewards.kind_voucher",
        "gift_certificate" => "admin.rewards.kind_gift_certificate",
        _ => "admin.rewards.kind_coupon",
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/reward.html")]
struct FormTpl {
    page: Page,
    id: Option<String>,
    archived: bool,
    form: Fields,
    error: Option<String>,
    can_edit: bool,
    kinds: Vec<&'static str>,
    /// Campaigns a coupon reward may name: (id, name).
    coupon_campaigns: Vec<(String, String)>,
    time_zone: String,
}

impl FormTpl {
    fn kind_key(&self, kind: &str) -> &'static str {
        kind_key(kind)
    }
}

async fn programme(st: &WebState, staff: &Staff) -> WebResult<Program> {
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    Ok(program::current(&st.app, &mut c, &staff.tenant.id).await?.1.as_ref().clone())
}

fn tz_of(p: &Program) -> chrono_tz::Tz {
    p.time_zone.parse().unwrap_or(chrono_tz::UTC)
}

async fn render_list(st: &WebState, ctx: &Ctx, staff: &Staff, error: Option<String>) -> WebResult<ListTpl> {
    let p = programme(st, staff).await?;
    let auth = staff.auth();
    let v = svc::list(&st.app, &auth, true, None, 500).await?;
    let mut rewards: Vec<RewardRow> = v
        .rewards
        .into_iter()
        .map(|w| RewardRow {
            stock: match (w.stock_left, w.stock) {
                (Some(left), Some(all)) => format!("{left} / {all}"),
                _ => "∞".into(),
            },
            id: w.id,
            code: w.code,
            name: w.name,
            kind: w.kind,
            price: w.points_price,
            redeemed: w.redeemed_count,
            active: w.active,
            archived: w.archived,
        })
        .collect();
    rewards.sort_by_key(|w| w.archived);
    let filter = RedemptionFilter { member_id: None, reward_id: None, status: None };
    let r = svc::list_redemptions(&st.app, &auth, filter, None, REDEMPTIONS_SHOWN).await?;
    let redemptions = r
        .redemptions
        .into_iter()
        .map(|x| RedemptionRow {
            id: x.id,
            reward: x.reward_name,
            member_id: x.member_id,
            points: x.points,
            status: x.status,
            created_at: x.created_at.0,
        })
        .collect();
    Ok(ListTpl {
        page: super::page(ctx, staff, "rewards", "admin.rewards.title"),
        fmt: Fmt::new(ctx.t, &p),
        rewards,
        redemptions,
        can_edit: staff.can(Perm::OffersEdit),
        error,
    })
}

async fn list(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<ListTpl> {
    staff.require(Perm::OffersView)?;
    render_list(&st, &ctx, &staff, None).await
}

/// An RFC 3339 time as a `datetime-local` value in the programme's time zone.
fn local_text(rfc: &str, tz: chrono_tz::Tz) -> String {
    super::campaigns::local_text(rfc, tz)
}

fn values_of(w: &svc::RewardView, p: &Program) -> BTreeMap<String, String> {
    let tz = tz_of(p);
    let n = |x: Option<i64>| x.map(|n| n.to_string()).unwrap_or_default();
    let mut v = BTreeMap::from([
        ("code".to_owned(), w.code.clone()),
        ("name".to_owned(), w.name.clone()),
        ("description".to_owned(), w.description.clone()),
        ("kind".to_owned(), w.kind.clone()),
        ("campaign_id".to_owned(), w.campaign_id.clone().unwrap_or_default()),
        ("points_price".to_owned(), w.points_price.to_string()),
        ("stock".to_owned(), n(w.stock)),
        ("per_member_limit".to_owned(), n(w.per_member_limit)),
        ("tiers".to_owned(), w.tiers.join(", ")),
    ]);
    for (k, t) in [("valid_from", w.valid_from), ("valid_to", w.valid_to)] {
        if let Some(t) = t {
            v.insert(k.to_owned(), local_text(&kopilka_server::input::fmt_time(t.0), tz));
        }
    }
    if w.active {
        v.insert("active".into(), "on".into());
    }
    v
}

/// The reward's JSON from the form (as the API takes it), and the fields that could not
/// even be read.
fn json_of(f: &Form, t: crate::i18n::Tr, p: &Program) -> (Map<String, Value>, BTreeMap<String, String>) {
    let tz = tz_of(p);
    let mut errors = BTreeMap::new();
    let mut m = Map::new();
    for k in ["code", "name"] {
        m.insert(k.into(), json!(f.get(k).unwrap_or_default()));
    }
    m.insert("description".into(), json!(f.get("description").unwrap_or_default()));
    m.insert("kind".into(), json!(f.get("kind").unwrap_or("gift")));
    if let Some(c) = f.get("campaign_id") {
        m.insert("campaign_id".into(), json!(c));
    }
    for k in ["points_price", "stock", "per_member_limit"] {
        if let Some(v) = f.get(k) {
            match v.replace([' ', '\u{a0}'], "").parse::<i64>() {
                Ok(n) => {
                    m.insert(k.into(), json!(n));
                }
                Err(_) => {
                    errors.insert(k.into(), t.m("admin.programme.whole_number").to_owned());
                }
            }
        }
    }
    for k in ["valid_from", "valid_to"] {
        if let Some(v) = f.get(k) {
            match super::campaigns::rfc_of_local(v, tz) {
                Some(r) => {
                    m.insert(k.into(), json!(r));
                }
                None => {
                    errors.insert(k.into(), t.m("admin.campaigns.time_invalid").to_owned());
                }
            }
        }
    }
    let tiers: Vec<Value> =
        f.get("tiers").unwrap_or_default().split(',').map(str::trim).filter(|c| !c.is_empty()).map(|c| json!(c)).collect();
    m.insert("tiers".into(), Value::Array(tiers));
    m.insert("active".into(), json!(f.checked("active")));
    (m, errors)
}

async fn render_form(
    st: &WebState,
    ctx: &Ctx,
    staff: &Staff,
    id: Option<&str>,
    shown: Option<(Fields, Option<String>)>,
) -> WebResult<FormTpl> {
    let p = programme(st, staff).await?;
    let auth = staff.auth();
    let current = match id {
        Some(id) => Some(svc::get(&st.app, &auth, id).await?),
        None => None,
    };
    let archived = current.as_ref().is_some_and(|w| w.archived);
    let (form, error) = shown.unwrap_or_else(|| {
        let values = match &current {
            Some(w) => values_of(w, &p),
            None => BTreeMap::from([("kind".to_owned(), "gift".to_owned()), ("active".to_owned(), "on".to_owned())]),
        };
        (Fields::new(values, BTreeMap::new()), None)
    });
    let all = campaigns::list(&st.app, &auth, false).await?;
    let coupon_campaigns = all.campaigns.into_iter().filter(|c| c.spec.requires_coupon).map(|c| (c.id, c.spec.name)).collect();
    let title = if id.is_some() { "admin.rewards.edit" } else { "admin.rewards.new" };
    Ok(FormTpl {
        page: super::page(ctx, staff, "rewards", title),
        id: id.map(str::to_owned),
        archived,
        form,
        error,
        can_edit: staff.can(Perm::OffersEdit) && !archived,
        kinds: KINDS.to_vec(),
        coupon_campaigns,
        time_zone: p.time_zone.clone(),
    })
}

async fn new_form(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<FormTpl> {
    staff.require(Perm::OffersEdit)?;
    render_form(&st, &ctx, &staff, None, None).await
}

async fn edit_form(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(id): Path<String>) -> WebResult<FormTpl> {
    staff.require(Perm::OffersView)?;
    render_form(&st, &ctx, &staff, Some(&id), None).await
}

async fn create(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<Response> {
    save(st, ctx, staff, None, f).await
}

async fn update(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(id): Path<String>, f: Form) -> WebResult<Response> {
    save(st, ctx, staff, Some(id), f).await
}

/// A message's field: `tiers[2]` is shown next to `tiers`.
fn form_field(path: &str) -> String {
    path.split('[').next().unwrap_or(path).to_owned()
}

async fn save(st: WebState, ctx: Ctx, staff: Staff, id: Option<String>, f: Form) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    let t = ctx.t;
    let auth = staff.auth();
    if let Some(id) = &id {
        svc::get(&st.app, &auth, id).await?;
    }
    let p = programme(&st, &staff).await?;
    let (body, mut errors) = json_of(&f, t, &p);
    let mut general = None;
    let field_errors = |e: kopilka_server::error::ApiError, errors: &mut BTreeMap<String, String>| {
        for (path, msg) in e.fields {
            errors.entry(form_field(&path)).or_insert_with(|| field_message(&path, &msg, t, &p.currency));
        }
    };
    // The API's reader checks every field, also when some could not be read here.
    match kopilka_server::http::reward_spec(&body) {
        Ok(spec) if errors.is_empty() => {
            let done = match &id {
                Some(id) => svc::replace(&st.app, &auth, id, spec).await,
                None => svc::create(&st.app, &auth, spec).await,
            };
            match done {
                Ok(_) => return Ok(Redirect::to("/admin/rewards").into_response()),
                Err(e) if e.code == "reward_exists" => {
                    errors.insert("code".into(), t.m("admin.rewards.code_taken").to_owned());
                }
                Err(e) if !e.fields.is_empty() => field_errors(e, &mut errors),
                Err(e) if e.status.is_client_error() => general = Some(e.message),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(_) => {}
        Err(e) => field_errors(e, &mut errors),
    }
    let general = general.or_else(|| Some(t.m("admin.programme.fix_fields").to_owned()));
    let tpl = render_form(&st, &ctx, &staff, id.as_deref(), Some((Fields::new(f.0.clone(), errors), general))).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response())
}

async fn archive(State(st): State<WebState>, staff: Staff, Path(id): Path<String>) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    svc::archive(&st.app, &staff.auth(), &id).await?;
    Ok(Redirect::to("/admin/rewards").into_response())
}

async fn fulfil(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(id): Path<String>) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    redemption_step(&st, &ctx, &staff, svc::fulfil(&st.app, &staff.auth(), &id, None).await).await
}

async fn cancel(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(id): Path<String>) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    let reason = Some(format!("cancelled in the console by {}", staff.actor()));
    redemption_step(&st, &ctx, &staff, svc::cancel(&st.app, &staff.auth(), &id, reason).await).await
}

/// After fulfil or cancel: back to the list, or the list with why it could not be done.
async fn redemption_step(
    st: &WebState,
    ctx: &Ctx,
    staff: &Staff,
    r: kopilka_server::error::ApiResult<svc::RedemptionView>,
) -> WebResult<Response> {
    match r {
        Ok(_) => Ok(Redirect::to("/admin/rewards#redemptions").into_response()),
        Err(e) if e.status == StatusCode::CONFLICT => {
            let key = if e.code == "redemption_cancelled" { "admin.rewards.was_cancelled" } else { "admin.rewards.was_fulfilled" };
            let tpl = render_list(st, ctx, staff, Some(ctx.t.m(key).to_owned())).await?;
            Ok((StatusCode::CONFLICT, tpl).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
