//! The programme: every field of its configuration in one form, with the server's own
//! validation (`services::program::parse`, which reports every bad field by its path)
//! shown next to each field, and a switch to another template.
//!
//! Form fields are named by their path in the programme's JSON (`earn.unit_minor`,
//! `tiers[1].discount_bp`). Money is typed in currency units (`10.00`), shares in percent
//! (`50`, `12.5`), and converted here to minor units and basis points.

use crate::form::{Fields, Form};
use crate::i18n::{Tr, minor_digits};
use crate::staff::{Perm, Staff};
use crate::{Ctx, Page, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kopilka_domain::program::{Expiry, Program};
use kopilka_server::services::{program, templates};
use kopilka_store::StoreError;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin/programme", get(show).post(save)).route("/admin/programme/template", post(apply_template))
}

/// Blank tier rows offered for new tiers.
const SPARE_TIERS: usize = 2;

#[derive(Template, WebTemplate)]
#[template(path = "admin/programme.html")]
struct ProgrammeTpl {
    page: Page,
    version: i64,
    form: Fields,
    tier_rows: Vec<usize>,
    can_edit: bool,
    templates: Vec<&'static str>,
    error: Option<String>,
}

impl ProgrammeTpl {
    /// `tiers[i].field`
    fn tk(&self, i: &usize, field: &str) -> String {
        format!("tiers[{i}].{field}")
    }

    fn template_key(&self, name: &str) -> &'static str {
        super::auth::template_key(name)
    }
}

/// Minor units as typed money: `1234.50`.
fn money_text(minor: i64, currency: &str) -> String {
    Tr::plain_money(minor, currency)
}

/// Basis points as a typed percentage: `50`, `12.5`.
pub(crate) fn percent_text(bp: i64) -> String {
    if bp % 100 == 0 {
        (bp / 100).to_string()
    } else if bp % 10 == 0 {
        format!("{}.{}", bp / 100, (bp % 100).abs() / 10)
    } else {
        format!("{}.{:02}", bp / 100, (bp % 100).abs())
    }
}

/// A typed amount (`1 234,50`, `1234.5`, `10`) in minor units of a currency.
pub fn parse_money(s: &str, currency: &str) -> Option<i64> {
    let s: String = s.chars().filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}')).collect::<String>().replace(',', ".");
    let digits = minor_digits(currency) as usize;
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > digits {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<digits$}").parse().ok()? };
    whole.checked_mul(10i64.pow(digits as u32))?.checked_add(frac)
}

/// A typed percentage with at most two decimals in basis points.
pub(crate) fn parse_percent(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('%').trim().replace(',', ".");
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().ok()? };
    whole.checked_mul(100)?.checked_add(frac)
}

fn lower<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The form's values for a programme.
fn values_of(p: &Program) -> BTreeMap<String, String> {
    let cur = p.currency.as_str();
    let mut v = BTreeMap::new();
    let mut put = |k: &str, x: String| {
        v.insert(k.to_owned(), x);
    };
    put("currency", p.currency.clone());
    put("time_zone", p.time_zone.clone());
    put("language", lower(p.language));
    put("earn.points_per_unit", p.earn.points_per_unit.to_string());
    put("earn.unit_minor", money_text(p.earn.unit_minor, cur));
    put("earn.rounding", lower(p.earn.rounding));
    put("redeem.point_value_minor", money_text(p.redeem.point_value_minor, cur));
    put("redeem.max_share_bp", percent_text(p.redeem.max_share_bp));
    put("redeem.min_balance", p.redeem.min_balance.to_string());
    put("redeem.auth", lower(p.redeem.auth));
    put("redeem.hold_ttl_s", p.redeem.hold_ttl_s.to_string());
    put("no_earn_categories", p.no_earn_categories.join(", "));
    put("no_discount_categories", p.no_discount_categories.join(", "));
    put("pending_days", p.pending_days.to_string());
    match &p.expiry {
        Expiry::Never => put("expiry.policy", "never".into()),
        Expiry::RollingDays { days } => {
            put("expiry.policy", "rolling_days".into());
            put("expiry.days", days.to_string());
        }
        Expiry::EndOfPeriod { period, periods } => {
            put("expiry.policy", "end_of_period".into());
            put("expiry.period", lower(period));
            put("expiry.periods", periods.to_string());
        }
    }
    put("tier_window_days", p.tier_window_days.to_string());
    put("offline_max_age_days", p.offline_max_age_days.to_string());
    for (i, t) in p.tiers.iter().enumerate() {
        put(&format!("tiers[{i}].code"), t.code.clone());
        put(&format!("tiers[{i}].name"), t.name.clone());
        put(&format!("tiers[{i}].min_spend_minor"), money_text(t.min_spend_minor, cur));
        put(&format!("tiers[{i}].earn_multiplier_bp"), percent_text(t.earn_multiplier_bp));
        put(&format!("tiers[{i}].discount_bp"), percent_text(t.discount_bp));
    }
    v
}

/// The programme's JSON from the form, and the fields that could not even be read.
fn json_of(f: &Form, t: Tr) -> (Map<String, Value>, BTreeMap<String, String>) {
    let mut errors = BTreeMap::new();
    let currency = f.get("currency").unwrap_or("RUB").to_uppercase();
    let int = |k: &str, errors: &mut BTreeMap<String, String>| -> Value {
        match f.get(k).map(|x| x.replace([' ', '\u{a0}'], "").parse::<i64>()) {
            Some(Ok(n)) => json!(n),
            _ => {
                errors.insert(k.to_owned(), t.m("admin.programme.whole_number").to_owned());
                Value::Null
            }
        }
    };
    let money = |k: &str, errors: &mut BTreeMap<String, String>| -> Value {
        match f.get(k).and_then(|x| parse_money(x, &currency)) {
            Some(n) => json!(n),
            None => {
                errors.insert(k.to_owned(), t.m("admin.programme.amount").to_owned());
                Value::Null
            }
        }
    };
    let percent = |k: &str, errors: &mut BTreeMap<String, String>| -> Value {
        match f.get(k).and_then(parse_percent) {
            Some(n) => json!(n),
            None => {
                errors.insert(k.to_owned(), t.m("admin.programme.percent").to_owned());
                Value::Null
            }
        }
    };
    let list = |k: &str| -> Value {
        Value::Array(f.get(k).unwrap_or_default().split(',').map(str::trim).filter(|c| !c.is_empty()).map(|c| json!(c)).collect())
    };
    let text = |k: &str| json!(f.get(k).unwrap_or_default());
    let expiry = match f.get("expiry.policy") {
        Some("rolling_days") => json!({"policy": "rolling_days", "days": int("expiry.days", &mut errors)}),
        Some("end_of_period") => {
            json!({"policy": "end_of_period", "period": text("expiry.period"), "periods": int("expiry.periods", &mut errors)})
        }
        _ => json!({"policy": "never"}),
    };
    let mut tiers = Vec::new();
    let mut i = 0;
    while f.0.contains_key(&format!("tiers[{i}].code")) && i < 60 {
        let k = |field: &str| format!("tiers[{i}].{field}");
        let blank = ["code", "name", "min_spend_minor"].iter().all(|x| f.get(&k(x)).is_none());
        if !blank {
            tiers.push(json!({
                "code": text(&k("code")),
                "name": text(&k("name")),
                "min_spend_minor": money(&k("min_spend_minor"), &mut errors),
                "earn_multiplier_bp": percent(&k("earn_multiplier_bp"), &mut errors),
                "discount_bp": percent(&k("discount_bp"), &mut errors),
            }));
        }
        i += 1;
    }
    let body = json!({
        "currency": currency,
        "time_zone": text("time_zone"),
        "language": if f.get("language") == Some("ru") { "ru" } else { "en" },
        "earn": {"points_per_unit": int("earn.points_per_unit", &mut errors), "unit_minor": money("earn.unit_minor", &mut errors), "rounding": text("earn.rounding")},
        "redeem": {
            "point_value_minor": money("redeem.point_value_minor", &mut errors),
            "max_share_bp": percent("redeem.max_share_bp", &mut errors),
            "min_balance": int("redeem.min_balance", &mut errors),
            "auth": text("redeem.auth"),
            "hold_ttl_s": int("redeem.hold_ttl_s", &mut errors),
        },
        "no_earn_categories": list("no_earn_categories"),
        "no_discount_categories": list("no_discount_categories"),
        "pending_days": int("pending_days", &mut errors),
        "expiry": expiry,
        "tier_window_days": int("tier_window_days", &mut errors),
        "offline_max_age_days": int("offline_max_age_days", &mut errors),
        "tiers": tiers,
    });
    let Value::Object(mut m) = kopilka_server::input::strip_nulls(body) else { unreachable!("an object") };
    // Tiers left out of the array would take the defaults; an empty list means "none".
    m.entry("tiers").or_insert(Value::Array(Vec::new()));
    (m, errors)
}

/// The server's validation message for a field, in the reader's language and in the
/// form's units (percent for `_bp` fields, money for `_minor` fields).
pub(crate) fn field_message(path: &str, msg: &str, t: Tr, currency: &str) -> String {
    let range = msg.strip_prefix("must be between ").and_then(|r| {
        let (lo, hi) = r.split_once(" and ")?;
        Some((lo.parse::<i64>().ok()?, hi.parse::<i64>().ok()?))
    });
    if let Some((lo, hi)) = range {
        let show = |n: i64| {
            if path.ends_with("_bp") {
                t.percent_bp(n)
            } else if path.ends_with("_minor") {
                t.money(n, currency)
            } else {
                t.num(n)
            }
        };
        return t.f("admin.programme.range", &[("lo", &show(lo)), ("hi", &show(hi))]);
    }
    let key = match msg {
        m if m.starts_with("must be 3 upper-case letters") => "admin.programme.currency_invalid",
        m if m.starts_with("must be an IANA time zone") => "admin.stores.time_zone_invalid",
        "two tiers with the same min_spend_minor" => "admin.programme.tier_same_spend",
        "two tiers with the same code" => "admin.programme.tier_same_code",
        "is required" => "admin.programme.required",
        m if m.starts_with("must be at most") => "admin.programme.too_long",
        m if m.starts_with("unknown variant") => "admin.programme.choose",
        _ => return msg.to_owned(),
    };
    t.m(key).to_owned()
}

/// A validation message from the server names a field by its JSON path; tiers are
/// numbered as sent, which is the form's numbering minus blank rows before them, so map
/// them back.
fn form_path(path: &str, tier_rows: &[usize]) -> String {
    if let Some(rest) = path.strip_prefix("tiers[")
        && let Some((n, tail)) = rest.split_once(']')
        && let Ok(n) = n.parse::<usize>()
        && let Some(row) = tier_rows.get(n)
    {
        return format!("tiers[{row}]{tail}");
    }
    path.to_owned()
}

async fn render(
    st: &WebState,
    ctx: &Ctx,
    staff: &Staff,
    form: Option<(BTreeMap<String, String>, BTreeMap<String, String>)>,
    error: Option<String>,
) -> WebResult<ProgrammeTpl> {
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let (version, p) = program::current(&st.app, &mut c, &staff.tenant.id).await?;
    let (values, errors) = form.unwrap_or_else(|| (values_of(&p), BTreeMap::new()));
    // Rows up to the last one with something in it; blank rows sent back are not kept.
    let filled = |i: usize| {
        ["code", "name", "min_spend_minor"].iter().any(|f| values.get(&format!("tiers[{i}].{f}")).is_some_and(|v| !v.trim().is_empty()))
    };
    let rows = (0..60).filter(|i| filled(*i)).map(|i| i + 1).max().unwrap_or(0);
    let page = super::page(ctx, staff, "programme", "admin.programme.title");
    Ok(ProgrammeTpl {
        page,
        version,
        form: Fields::new(values, errors),
        tier_rows: (0..rows + SPARE_TIERS).collect(),
        can_edit: staff.can(Perm::ProgrammeEdit),
        templates: templates::NAMES.to_vec(),
        error,
    })
}

async fn show(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<ProgrammeTpl> {
    staff.require(Perm::ProgrammeView)?;
    render(&st, &ctx, &staff, None, None).await
}

async fn save(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<Response> {
    staff.require(Perm::ProgrammeEdit)?;
    let (body, mut errors) = json_of(&f, ctx.t);
    // Rows of the form that were sent as tiers, in order.
    let tier_rows: Vec<usize> = (0..60)
        .take_while(|i| f.0.contains_key(&format!("tiers[{i}].code")))
        .filter(|i| ["code", "name", "min_spend_minor"].iter().any(|x| f.get(&format!("tiers[{i}].{x}")).is_some()))
        .collect();
    let parsed = program::parse(body);
    let mut general = None;
    match parsed {
        Ok(p) if errors.is_empty() => match program::put(&st.app, &staff.tenant.id, &staff.actor(), p).await {
            Ok(_) => {
                let mut tpl = render(&st, &ctx, &staff, None, None).await?;
                tpl.page.notice = Some(ctx.t.m("admin.programme.saved").to_owned());
                return Ok(tpl.into_response());
            }
            Err(e) if e.code == "program_locked" => general = Some(ctx.t.m("admin.programme.locked").to_owned()),
            Err(e) if e.status.is_client_error() => general = Some(e.message),
            Err(e) => return Err(e.into()),
        },
        Ok(_) => {}
        Err(e) => {
            let currency = f.get("currency").unwrap_or("RUB").to_uppercase();
            for (k, v) in e.fields {
                let msg = field_message(&k, &v, ctx.t, &currency);
                errors.entry(form_path(&k, &tier_rows)).or_insert(msg);
            }
        }
    }
    if general.is_none() {
        general = Some(ctx.t.m("admin.programme.fix_fields").to_owned());
    }
    let values = f.0.clone();
    let tpl = render(&st, &ctx, &staff, Some((values, errors)), general).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response())
}

/// Replace the rules with another template's, keeping the currency, time zone and
/// language.
async fn apply_template(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<Response> {
    staff.require(Perm::ProgrammeEdit)?;
    let Some(mut p) = f.get("template").and_then(templates::template) else {
        let tpl = render(&st, &ctx, &staff, None, Some(ctx.t.m("admin.setup.template_unknown").to_owned())).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response());
    };
    let current = {
        let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
        program::current(&st.app, &mut c, &staff.tenant.id).await?.1
    };
    p.currency = current.currency.clone();
    p.time_zone = current.time_zone.clone();
    p.language = current.language;
    // A template's point value may differ from the current one, which is locked once
    // receipts exist: keep the current value then.
    let result = match program::put(&st.app, &staff.tenant.id, &staff.actor(), p.clone()).await {
        Err(e) if e.code == "program_locked" => {
            p.redeem.point_value_minor = current.redeem.point_value_minor;
            program::put(&st.app, &staff.tenant.id, &staff.actor(), p).await
        }
        other => other,
    };
    result?;
    let mut tpl = render(&st, &ctx, &staff, None, None).await?;
    tpl.page.notice = Some(ctx.t.m("admin.programme.template_applied").to_owned());
    Ok(tpl.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kopilka_domain::program::Lang;

    #[test]
    fn typed_amounts_and_percentages() {
        assert_eq!(parse_money("1 234,50", "RUB"), Some(123450));
        assert_eq!(parse_money("10", "RUB"), Some(1000));
        assert_eq!(parse_money("0.5", "RUB"), Some(50));
        assert_eq!(parse_money("1.234", "RUB"), None);
        assert_eq!(parse_money("-1", "RUB"), None);
        assert_eq!(parse_money("12", "JPY"), Some(12));
        assert_eq!(parse_money("1e3", "RUB"), None);
        assert_eq!(parse_percent("50"), Some(5000));
        assert_eq!(parse_percent("12,5 %"), Some(1250));
        assert_eq!(parse_percent("0.01"), Some(1));
        assert_eq!(parse_percent("1.234"), None);
        assert_eq!(percent_text(1250), "12.5");
        assert_eq!(percent_text(1234), "12.34");
        assert_eq!(money_text(1000, "RUB"), "10.00");
    }

    #[test]
    fn every_template_round_trips_through_the_form() {
        for name in templates::NAMES {
            let p = templates::template(name).unwrap();
            let values = values_of(&p);
            let f = Form(values);
            let (body, errors) = json_of(&f, Tr::new(Lang::En));
            assert!(errors.is_empty(), "{name}: {errors:?}");
            assert_eq!(program::parse(body).unwrap(), p, "{name}");
        }
    }
}
