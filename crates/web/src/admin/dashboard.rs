//! The dashboard, `/admin`: how the programme is doing on one page (FEATURES K1, K2).
//!
//! What the figures mean:
//! - active members: members with a posted (not voided) receipt in the last 30 / 90 days;
//! - points issued: earned and bonus points less the earned points refunds took back;
//!   spent: redeemed less returned; expired: taken by expiry (all time, and per day);
//! - adjustments (net): staff corrections, kept apart from the three above;
//! - outstanding liability: points members hold (available, held and pending) × the
//!   programme's point value;
//! - redemption rate: spent ÷ issued;
//! - average receipt: payable money net of refunds, for member receipts and anonymous
//!   receipts of the last 30 days.

use crate::i18n::Fmt;
use crate::staff::{Perm, Staff};
use crate::{Ctx, Page, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use kopilka_server::services::program;
use kopilka_store::{StoreError, analytics, now_s};
use std::collections::BTreeMap;

/// Days in the charts and the daily table.
const DAYS: i64 = 30;

pub struct Kpis {
    pub members: i64,
    pub active_30: i64,
    pub active_90: i64,
    pub issued: i64,
    pub spent: i64,
    pub expired: i64,
    pub adjusted: i64,
    pub outstanding: i64,
    pub liability_minor: i64,
    /// None before any point was issued.
    pub redemption_bp: Option<i64>,
    pub member_receipts: i64,
    pub anonymous_receipts: i64,
    pub avg_member_minor: Option<i64>,
    pub avg_anonymous_minor: Option<i64>,
}

pub struct Day {
    /// Local midnight, Unix seconds.
    pub start: i64,
    pub member_receipts: i64,
    pub anonymous_receipts: i64,
    pub issued: i64,
    pub spent: i64,
    pub expired: i64,
}

async fn compute(st: &WebState, staff: &Staff, fmt: &Fmt, point_value_minor: i64) -> WebResult<(Kpis, Vec<Day>)> {
    let tenant = &staff.tenant.id;
    let now = now_s();
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let members = kopilka_store::members::count(&mut c, tenant).await?;
    let active_30 = analytics::active_members(&mut c, tenant, now - 30 * 86400).await?;
    let active_90 = analytics::active_members(&mut c, tenant, now - 90 * 86400).await?;
    let kinds: BTreeMap<String, i64> = analytics::points_by_kind(&mut c, tenant).await?.into_iter().collect();
    let k = |name: &str| kinds.get(name).copied().unwrap_or(0);
    let issued = k("earn") + k("bonus") + k("reverse_earn");
    let spent = -(k("redeem") + k("return_redeem"));
    let expired = -k("expire");
    let (points, pending, _debt) = analytics::points_outstanding(&mut c, tenant).await?;
    let outstanding = points + pending;
    let sums = analytics::receipt_sums(&mut c, tenant, now - DAYS * 86400).await?;
    let avg = |sum: i64, n: i64| (n > 0).then(|| sum / n);
    let kpis = Kpis {
        members,
        active_30,
        active_90,
        issued,
        spent,
        expired,
        adjusted: k("adjust+") + k("adjust-"),
        outstanding,
        liability_minor: outstanding.saturating_mul(point_value_minor),
        redemption_bp: (issued > 0).then(|| (spent as i128 * 10_000 / issued as i128) as i64),
        member_receipts: sums.member_count,
        anonymous_receipts: sums.anonymous_count,
        avg_member_minor: avg(sums.member_payable_minor, sums.member_count),
        avg_anonymous_minor: avg(sums.anonymous_payable_minor, sums.anonymous_count),
    };
    // Days in the programme's time zone (its offset today), oldest first.
    let offset = fmt.offset_s(now);
    let today = (now + offset).div_euclid(86400);
    let first = today - DAYS + 1;
    let since = first * 86400 - offset;
    let mut days: Vec<Day> = (first..=today)
        .map(|d| Day { start: d * 86400 - offset, member_receipts: 0, anonymous_receipts: 0, issued: 0, spent: 0, expired: 0 })
        .collect();
    for (d, m, a) in analytics::receipts_per_day(&mut c, tenant, since, offset).await? {
        if let Some(day) = days.get_mut((d - first) as usize) {
            day.member_receipts = m;
            day.anonymous_receipts = a;
        }
    }
    for (d, kind, s) in analytics::points_per_day(&mut c, tenant, since, offset).await? {
        if let Some(day) = usize::try_from(d - first).ok().and_then(|i| days.get_mut(i)) {
            match kind.as_str() {
                "earn" | "bonus" | "reverse_earn" => day.issued += s,
                "redeem" | "return_redeem" => day.spent -= s,
                "expire" => day.expired -= s,
                _ => {}
            }
        }
    }
    Ok((kpis, days))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/dashboard.html")]
struct DashboardTpl {
    page: Page,
    fmt: Fmt,
    k: Kpis,
    days: Vec<Day>,
    receipts_chart: String,
    points_chart: String,
}

/// Chart data for app.js: `{"lang", "tz", "x_label", "x": [...], "series": [{"label", "values"}...]}`, with `<`
/// escaped so it can sit in a `<script type="application/json">`.
/// A chart's line: its label and how to read it from a day.
type Series<'a> = (&'a str, fn(&Day) -> i64);

fn chart(fmt: &Fmt, days: &[Day], series: &[Series<'_>]) -> String {
    let v = serde_json::json!({
        "lang": fmt.t.code(),
        "tz": fmt.tz,
        "x_label": fmt.t.m("admin.csv.date"),
        "x": days.iter().map(|d| d.start).collect::<Vec<_>>(),
        "series": series.iter().map(|(label, f)| serde_json::json!({"label": label, "values": days.iter().map(f).collect::<Vec<_>>()})).collect::<Vec<_>>(),
    });
    v.to_string().replace('<', "\\u003c")
}

async fn load(st: &WebState, ctx: &Ctx, staff: &Staff) -> WebResult<(Fmt, Kpis, Vec<Day>)> {
    let (fmt, point_value) = {
        let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
        let (_, p) = program::current(&st.app, &mut c, &staff.tenant.id).await?;
        (Fmt::new(ctx.t, &p), p.redeem.point_value_minor)
    };
    let (k, days) = compute(st, staff, &fmt, point_value).await?;
    Ok((fmt, k, days))
}

pub async fn show(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<Response> {
    if !staff.can(Perm::Dashboard) {
        return Ok(Redirect::to(staff.role.home()).into_response());
    }
    let (fmt, k, days) = load(&st, &ctx, &staff).await?;
    let t = ctx.t;
    let receipts_chart = chart(
        &fmt,
        &days,
        &[(t.m("admin.kpi.member_receipts"), |d| d.member_receipts), (t.m("admin.kpi.anonymous_receipts"), |d| d.anonymous_receipts)],
    );
    let points_chart = chart(
        &fmt,
        &days,
        &[(t.m("admin.kpi.issued"), |d| d.issued), (t.m("admin.kpi.spent"), |d| d.spent), (t.m("admin.kpi.expired"), |d| d.expired)],
    );
    let page = super::page(&ctx, &staff, "dashboard", "admin.dashboard.title");
    Ok(DashboardTpl { page, fmt, k, days, receipts_chart, points_chart }.into_response())
}

fn csv_response(name: &str, rows: Vec<Vec<String>>) -> WebResult<Response> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(&r).map_err(kopilka_server::error::ApiError::internal)?;
    }
    let body = w.into_inner().map_err(kopilka_server::error::ApiError::internal)?;
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).expect("ascii file name"));
    Ok(resp)
}

/// `GET /admin/dashboard/kpis.csv`: the KPI table (money in currency units, with a dot).
pub async fn kpis_csv(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<Response> {
    staff.require(Perm::Dashboard)?;
    let (fmt, k, _) = load(&st, &ctx, &staff).await?;
    let t = ctx.t;
    let money = |m: i64| crate::i18n::Tr::plain_money(m, &fmt.currency);
    let opt_money = |m: Option<i64>| m.map(money).unwrap_or_default();
    let rows = vec![
        vec![t.m("admin.csv.metric").to_owned(), t.m("admin.csv.value").to_owned()],
        vec![t.m("admin.kpi.members").into(), k.members.to_string()],
        vec![t.m("admin.kpi.active_30").into(), k.active_30.to_string()],
        vec![t.m("admin.kpi.active_90").into(), k.active_90.to_string()],
        vec![t.m("admin.kpi.issued").into(), k.issued.to_string()],
        vec![t.m("admin.kpi.spent").into(), k.spent.to_string()],
        vec![t.m("admin.kpi.expired").into(), k.expired.to_string()],
        vec![t.m("admin.kpi.adjusted").into(), k.adjusted.to_string()],
        vec![t.m("admin.kpi.outstanding").into(), k.outstanding.to_string()],
        vec![format!("{} ({})", t.m("admin.kpi.liability"), fmt.currency), money(k.liability_minor)],
        vec![t.m("admin.kpi.redemption_rate").into(), k.redemption_bp.map(crate::admin::programme::percent_text).unwrap_or_default()],
        vec![t.m("admin.kpi.member_receipts").into(), k.member_receipts.to_string()],
        vec![t.m("admin.kpi.anonymous_receipts").into(), k.anonymous_receipts.to_string()],
        vec![format!("{} ({})", t.m("admin.kpi.avg_member"), fmt.currency), opt_money(k.avg_member_minor)],
        vec![format!("{} ({})", t.m("admin.kpi.avg_anonymous"), fmt.currency), opt_money(k.avg_anonymous_minor)],
    ];
    csv_response("kopilka-kpis.csv", rows)
}

/// `GET /admin/dashboard/daily.csv`: the last 30 days, one row a day (ISO dates).
pub async fn daily_csv(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<Response> {
    staff.require(Perm::Dashboard)?;
    let (fmt, _, days) = load(&st, &ctx, &staff).await?;
    let t = ctx.t;
    let tz: chrono_tz::Tz = fmt.tz.parse().unwrap_or(chrono_tz::UTC);
    let mut rows = vec![vec![
        t.m("admin.csv.date").to_owned(),
        t.m("admin.kpi.member_receipts").into(),
        t.m("admin.kpi.anonymous_receipts").into(),
        t.m("admin.kpi.issued").into(),
        t.m("admin.kpi.spent").into(),
        t.m("admin.kpi.expired").into(),
    ]];
    for d in &days {
        let date =
            chrono::DateTime::from_timestamp(d.start, 0).map(|x| x.with_timezone(&tz).format("%Y-%m-%d").to_string()).unwrap_or_default();
        rows.push(vec![
            date,
            d.member_receipts.to_string(),
            d.anonymous_receipts.to_string(),
            d.issued.to_string(),
            d.spent.to_string(),
            d.expired.to_string(),
        ]);
    }
    csv_response("kopilka-daily.csv", rows)
}
