//! The terminal's screens: the sale (member, lines, spend choice, quote, reserve,
//! checkout), the printable receipt, and refunds by receipt id.

use super::{Bar, Till, TillData, TillLine, TillMember, page};
use crate::form::Form;
use crate::i18n::{Tr, minor_digits};
use crate::{Ctx, Page, WebError, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use kopilka_domain::identity::normalize_phone;
use kopilka_domain::quantity::Quantity;
use kopilka_server::error::ApiError;
use kopilka_server::input::parse_time;
use kopilka_server::services::{members as msvc, pos, refund as refunds};
use kopilka_store::members::By;
use kopilka_store::receipts::{self, Line};
use kopilka_store::{StoreError, new_id, now_s, tenants};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Money typed by a cashier (`12.50`, `12,50`, `1 200`) in minor units of `currency`.
pub fn parse_money(s: &str, currency: &str) -> Option<i64> {
    let s: String = s.trim().chars().filter(|c| !matches!(c, ' ' | '\u{a0}')).map(|c| if c == ',' { '.' } else { c }).collect();
    let digits = minor_digits(currency) as usize;
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) || frac.len() > digits || int.len() > 13 {
        return None;
    }
    let scale = 10i64.pow(digits as u32);
    let frac_v: i64 = if digits == 0 { 0 } else { format!("{frac:0<digits$}").parse().ok()? };
    int.parse::<i64>().ok()?.checked_mul(scale)?.checked_add(frac_v)
}

/// A quantity typed by a cashier: `2` (units) or `1.5` / `1,5` (measured); its JSON form.
pub fn parse_quantity(s: &str) -> Result<Value, String> {
    let s = s.trim().replace(',', ".");
    let v = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<i64>().map(Value::from).map_err(|_| "too large".to_owned())?
    } else {
        Value::String(s)
    };
    Quantity::from_json(&v).map(|_| v)
}

/// A stored quantity for people: `2`, `1.5`.
fn show_quantity(kind: &str, base: i64) -> String {
    if kind == "milli" {
        let s = format!("{}.{:03}", base / 1000, base % 1000);
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        base.to_string()
    }
}

/// Percent-encode a path segment (receipt ids typed by cashiers).
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An API error in the reader's language where the till knows it, else its message.
fn error_text(t: Tr, e: &ApiError) -> String {
    let key = match e.code {
        "insufficient_points" => "till.error.insufficient_points",
        "redeem_limit_exceeded" => "till.error.redeem_limit",
        "redeem_auth_required" => "till.error.redeem_auth",
        "member_not_found" => "till.error.member_not_found",
        "member_required" => "till.error.member_required",
        "receipt_conflict" => "till.error.receipt_conflict",
        "rate_limited" => "common.error.rate_limited",
        "store_mismatch" => "till.error.store_mismatch",
        "not_found" => "common.error.not_found",
        _ => return format!("{} ({})", e.message, e.code),
    };
    let mut s = t.m(key).to_owned();
    if !e.fields.is_empty() {
        s.push_str(&format!(" ({})", e.fields.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("; ")));
    }
    s
}

async fn store_name(st: &WebState, t: &Till) -> WebResult<String> {
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let (store, _) = t.place();
    Ok(tenants::store_by_id(&mut c, &t.tenant.id, &store).await?.map(|s| s.name).unwrap_or(store))
}

// ---------------------------------------------------------------------------------------
// The sale
// ---------------------------------------------------------------------------------------

/// A line as the sale screen shows it.
#[derive(Debug, Clone)]
pub struct LineView {
    pub no: usize,
    pub title: String,
    pub category: String,
    pub quantity: String,
    pub price: String,
}

/// A quote or reserve, for people.
#[derive(Debug, Clone)]
pub struct QuoteView {
    pub held: bool,
    pub hold_until: Option<String>,
    pub total: String,
    pub discount: String,
    pub points_redeemed: i64,
    pub redeemed: String,
    pub payable: String,
    pub points_earned: i64,
    pub points_pending: i64,
    pub balance_after: Option<i64>,
}

fn quote_view(t: Tr, cur: &str, tz: &str, q: &Value) -> QuoteView {
    let i = |k: &str| q[k].as_i64().unwrap_or(0);
    QuoteView {
        held: q["status"] == "held",
        hold_until: q["expires_at"].as_str().and_then(parse_time).map(|s| t.datetime(s, tz)),
        total: t.money(i("total_minor"), cur),
        discount: t.money(i("discount_minor"), cur),
        points_redeemed: i("points_redeemed"),
        redeemed: t.money(i("redeemed_minor"), cur),
        payable: t.money(i("payable_minor"), cur),
        points_earned: i("points_earned"),
        points_pending: i("points_pending"),
        balance_after: q["balance"]["points"].as_i64().map(|p| p - q["balance"]["held"].as_i64().unwrap_or(0)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "till/sale.html")]
pub struct SaleTpl {
    page: Page,
    bar: Bar,
    data: TillData,
    lines: Vec<LineView>,
    total: String,
    quote: Option<QuoteView>,
    /// The member's spendable points, when a member is on the sale.
    member_points: Option<i64>,
    error: Option<String>,
}

async fn render(st: &WebState, ctx: &Ctx, t: &Till, data: &TillData, error: Option<String>) -> WebResult<SaleTpl> {
    let tr = ctx.t;
    let cur = t.program.currency.as_str();
    let lines = data
        .lines
        .iter()
        .enumerate()
        .map(|(n, l)| LineView {
            no: n + 1,
            title: match (l.name.is_empty(), l.sku.is_empty()) {
                (false, false) => format!("{} · {}", l.name, l.sku),
                (false, true) => l.name.clone(),
                _ => l.sku.clone(),
            },
            category: l.category.clone(),
            quantity: l.quantity.clone(),
            price: tr.money(l.price_minor, cur),
        })
        .collect();
    let total: i128 = data
        .lines
        .iter()
        .map(|l| {
            let q = parse_quantity(&l.quantity).ok().and_then(|v| Quantity::from_json(&v).ok());
            q.map_or(0, |q| kopilka_domain::receipt::quantity_times_price(q, l.price_minor))
        })
        .sum();
    let member_points = match &data.member {
        Some(m) => match msvc::balance(&st.app, &t.auth(), &m.id).await {
            Ok(b) => Some(b.available),
            Err(_) => None,
        },
        None => None,
    };
    let store = store_name(st, t).await?;
    Ok(SaleTpl {
        page: page(ctx, "till.sale.title"),
        bar: Bar::of(t, &store),
        data: data.clone(),
        lines,
        total: tr.money(i64::try_from(total).unwrap_or(i64::MAX), cur),
        quote: data.quote.as_ref().map(|q| quote_view(tr, cur, &t.program.time_zone, q)),
        member_points,
        error,
    })
}

/// The sale screen again, with an error, answering `status`.
async fn refuse(st: &WebState, ctx: &Ctx, t: &Till, data: &TillData, status: StatusCode, msg: String) -> WebResult<Response> {
    Ok((status, render(st, ctx, t, data, Some(msg)).await?).into_response())
}

fn back() -> Response {
    Redirect::to("/till").into_response()
}

/// `GET /till`: the sale being built.
pub async fn show(State(st): State<WebState>, ctx: Ctx, t: Till) -> WebResult<SaleTpl> {
    render(&st, &ctx, &t, &t.data, None).await
}

/// `POST /till/member` (`by` = card | phone | qr, `value`): find the member. Lookups are
/// limited per key as the API's are.
pub async fn find_member(State(st): State<WebState>, ctx: Ctx, t: Till, f: Form) -> WebResult<Response> {
    let mut data = t.data.clone();
    if data.reserved {
        return refuse(&st, &ctx, &t, &data, StatusCode::CONFLICT, ctx.t.m("till.sale.reserved_locked").into()).await;
    }
    let value = f.get("value").unwrap_or_default().to_owned();
    let by = f.get("by").unwrap_or("card");
    let (kind, by, value) = match by {
        "phone" => match normalize_phone(&value) {
            Ok(p) => ("phone", By::Phone, p),
            Err(_) => {
                return refuse(&st, &ctx, &t, &data, StatusCode::UNPROCESSABLE_ENTITY, ctx.t.m("till.member.phone_invalid").into()).await;
            }
        },
        "qr" => ("qr", By::QrToken, value),
        _ => ("card", By::Card, value.chars().filter(|c| !c.is_whitespace()).collect()),
    };
    if value.is_empty() || value.len() > 128 {
        return refuse(&st, &ctx, &t, &data, StatusCode::UNPROCESSABLE_ENTITY, ctx.t.m("till.member.empty").into()).await;
    }
    let auth = t.auth();
    if !st.app.limiter.allow(&format!("lookup:{}", auth.key_id), st.app.config.pos_lookups_per_minute, 60, now_s()) {
        return refuse(&st, &ctx, &t, &data, StatusCode::TOO_MANY_REQUESTS, ctx.t.m("common.error.rate_limited").into()).await;
    }
    match msvc::lookup(&st.app, &auth, by, &value).await {
        Ok(m) => {
            data.member = Some(TillMember { by: kind.into(), value, id: m.id, card_number: m.card_number, name: m.name });
            data.quote = None;
            t.save(&st, &data).await?;
            Ok(back())
        }
        Err(e) if e.status.is_client_error() => refuse(&st, &ctx, &t, &data, e.status, error_text(ctx.t, &e)).await,
        Err(e) => Err(e.into()),
    }
}

/// `POST /till/member/clear`.
pub async fn clear_member(State(st): State<WebState>, ctx: Ctx, t: Till) -> WebResult<Response> {
    let mut data = t.data.clone();
    if data.reserved {
        return refuse(&st, &ctx, &t, &data, StatusCode::CONFLICT, ctx.t.m("till.sale.reserved_locked").into()).await;
    }
    data.member = None;
    data.quote = None;
    data.spend = "none".into();
    t.save(&st, &data).await?;
    Ok(back())
}

/// `POST /till/lines` (`sku`, `name`, `category`, `quantity`, `price`).
pub async fn add_line(State(st): State<WebState>, ctx: Ctx, t: Till, f: Form) -> WebResult<Response> {
    let mut data = t.data.clone();
    let tr = ctx.t;
    if data.reserved {
        return refuse(&st, &ctx, &t, &data, StatusCode::CONFLICT, tr.m("till.sale.reserved_locked").into()).await;
    }
    let field = |k: &str, max: usize| f.get(k).unwrap_or_default().chars().take(max).collect::<String>();
    let (sku, name, category) = (field("sku", 128), field("name", 256), field("category", 100));
    let quantity = f.get("quantity").unwrap_or("1").to_owned();
    let problem = if sku.is_empty() && name.is_empty() {
        Some(tr.m("till.line.need_name").to_owned())
    } else if let Err(e) = parse_quantity(&quantity) {
        Some(format!("{}: {e}", tr.m("till.line.quantity")))
    } else if parse_money(f.get("price").unwrap_or_default(), &t.program.currency).is_none() {
        Some(tr.m("till.line.price_invalid").to_owned())
    } else if data.lines.len() >= 200 {
        Some(tr.m("till.line.too_many").to_owned())
    } else {
        None
    };
    if let Some(p) = problem {
        return refuse(&st, &ctx, &t, &data, StatusCode::UNPROCESSABLE_ENTITY, p).await;
    }
    let price_minor = parse_money(f.get("price").unwrap_or_default(), &t.program.currency).unwrap_or(0);
    data.lines.push(TillLine { sku, name, category, quantity: quantity.trim().replace(',', "."), price_minor });
    data.quote = None;
    t.save(&st, &data).await?;
    Ok(back())
}

/// `POST /till/lines/{n}/remove`.
pub async fn remove_line(State(st): State<WebState>, ctx: Ctx, t: Till, Path(n): Path<String>) -> WebResult<Response> {
    let mut data = t.data.clone();
    if data.reserved {
        return refuse(&st, &ctx, &t, &data, StatusCode::CONFLICT, ctx.t.m("till.sale.reserved_locked").into()).await;
    }
    let n: usize = n.parse().map_err(|_| WebError::not_found())?;
    if n == 0 || n > data.lines.len() {
        return Err(WebError::not_found());
    }
    data.lines.remove(n - 1);
    data.quote = None;
    t.save(&st, &data).await?;
    Ok(back())
}

/// The spend choice of a form (`spend` = none | all | some, `points`).
fn read_spend(data: &mut TillData, f: &Form) -> Result<(), &'static str> {
    let spend = f.get("spend").unwrap_or("none");
    match spend {
        "none" | "all" => {}
        "some" => {
            let n = f.get("points").and_then(|p| p.parse::<i64>().ok()).filter(|n| *n > 0);
            data.spend_points = n.ok_or("till.spend.points_invalid")?;
        }
        _ => return Err("till.spend.points_invalid"),
    }
    data.spend = spend.to_owned();
    Ok(())
}

/// The API body of the sale: exactly what a till integration would send.
pub fn body(data: &TillData) -> Map<String, Value> {
    let mut b = Map::new();
    b.insert("receipt_id".into(), json!(data.receipt_id));
    let items: Vec<Value> = data
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut v = json!({"line_no": i + 1, "quantity": parse_quantity(&l.quantity).unwrap_or(Value::Null), "unit_price_minor": l.price_minor});
            for (k, x) in [("sku", &l.sku), ("name", &l.name), ("category", &l.category)] {
                if !x.is_empty() {
                    v[k] = json!(x);
                }
            }
            v
        })
        .collect();
    b.insert("items".into(), Value::Array(items));
    let spends = data.spend != "none";
    if let Some(m) = &data.member {
        // A scanned QR proves the member is present (redeem.auth); it is sent when points
        // are spent. Otherwise the member's id is enough.
        let r = match m.by.as_str() {
            "card" => json!({"card_number": m.value}),
            "phone" => json!({"phone": m.value}),
            "qr" if spends => json!({"qr_token": m.value}),
            _ => json!({"member_id": m.id}),
        };
        b.insert("member".into(), r);
    }
    match data.spend.as_str() {
        "all" => {
            b.insert("redeem_points".into(), json!("max"));
        }
        "some" => {
            b.insert("redeem_points".into(), json!(data.spend_points));
        }
        _ => {}
    }
    b
}

async fn run(st: &WebState, t: &Till, data: &TillData, mode: pos::Mode) -> Result<Value, ApiError> {
    let auth = t.auth();
    let req = pos::parse(&auth, body(data))?;
    pos::run(&st.app, &auth, req, mode).await
}

async fn priced(st: WebState, ctx: Ctx, t: Till, f: Form, mode: pos::Mode) -> WebResult<Response> {
    let mut data = t.data.clone();
    if data.lines.is_empty() {
        return refuse(&st, &ctx, &t, &data, StatusCode::UNPROCESSABLE_ENTITY, ctx.t.m("till.sale.no_lines").into()).await;
    }
    // Once reserved, the body stays as reserved (the checkout commits that hold).
    if !data.reserved
        && let Err(k) = read_spend(&mut data, &f)
    {
        return refuse(&st, &ctx, &t, &data, StatusCode::UNPROCESSABLE_ENTITY, ctx.t.m(k).into()).await;
    }
    if mode == pos::Mode::Reserve && data.reserved {
        return Ok(back());
    }
    match run(&st, &t, &data, mode).await {
        Ok(ans) => {
            let receipt_id = data.receipt_id.clone();
            match mode {
                pos::Mode::Checkout => {
                    t.save(&st, &TillData::fresh()).await?;
                    tracing::info!(tenant.id = %t.tenant.id, key.id = %t.key.id, "till checkout");
                    Ok(Redirect::to(&format!("/till/receipts/{}", seg(&receipt_id))).into_response())
                }
                pos::Mode::Reserve => {
                    data.reserved = true;
                    data.quote = Some(ans);
                    t.save(&st, &data).await?;
                    Ok(back())
                }
                pos::Mode::Quote => {
                    data.quote = Some(ans);
                    t.save(&st, &data).await?;
                    Ok(back())
                }
            }
        }
        Err(e) if e.status.is_client_error() => {
            data.quote = None;
            t.save(&st, &data).await?;
            refuse(&st, &ctx, &t, &data, e.status, error_text(ctx.t, &e)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /till/quote` (`spend`, `points`).
pub async fn quote(State(st): State<WebState>, ctx: Ctx, t: Till, f: Form) -> WebResult<Response> {
    priced(st, ctx, t, f, pos::Mode::Quote).await
}

/// `POST /till/reserve`: hold the points until checkout (or cancel, or the hold's expiry).
pub async fn reserve(State(st): State<WebState>, ctx: Ctx, t: Till, f: Form) -> WebResult<Response> {
    priced(st, ctx, t, f, pos::Mode::Reserve).await
}

/// `POST /till/checkout`: post the receipt and show it for printing.
pub async fn checkout(State(st): State<WebState>, ctx: Ctx, t: Till, f: Form) -> WebResult<Response> {
    priced(st, ctx, t, f, pos::Mode::Checkout).await
}

/// Release the sale's reserve, if it has one.
async fn release(st: &WebState, t: &Till, data: &TillData) -> Result<(), ApiError> {
    if data.reserved {
        let auth = t.auth();
        let mut b = Map::new();
        b.insert("receipt_id".into(), json!(data.receipt_id));
        pos::cancel(&st.app, &auth, pos::parse_cancel(&auth, b)?).await?;
    }
    Ok(())
}

/// `POST /till/cancel`: release the reserve; the sale stays (under a new receipt id).
pub async fn cancel(State(st): State<WebState>, ctx: Ctx, t: Till) -> WebResult<Response> {
    let mut data = t.data.clone();
    if let Err(e) = release(&st, &t, &data).await {
        return refuse(&st, &ctx, &t, &data, e.status, error_text(ctx.t, &e)).await;
    }
    data.reserved = false;
    data.quote = None;
    data.receipt_id = super::new_receipt_id();
    t.save(&st, &data).await?;
    Ok(back())
}

/// `POST /till/new`: drop the sale (releasing its reserve) and start another.
pub async fn new_sale(State(st): State<WebState>, ctx: Ctx, t: Till) -> WebResult<Response> {
    if let Err(e) = release(&st, &t, &t.data).await
        && e.status != StatusCode::NOT_FOUND
    {
        return refuse(&st, &ctx, &t, &t.data, e.status, error_text(ctx.t, &e)).await;
    }
    t.save(&st, &TillData::fresh()).await?;
    Ok(back())
}

// ---------------------------------------------------------------------------------------
// The receipt
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ReceiptLine {
    pub no: i64,
    pub title: String,
    pub quantity: String,
    pub payable: String,
    pub refunded: String,
    /// What may still be refunded (in the line's quantity form), empty when nothing.
    pub left: String,
}

#[derive(Debug, Clone)]
pub struct ReceiptView {
    pub receipt_id: String,
    pub status: String,
    pub date: String,
    pub total: String,
    pub discount: String,
    pub redeemed: String,
    pub points_redeemed: i64,
    pub payable: String,
    pub points_earned: i64,
    pub points_pending: i64,
    pub card: Option<String>,
    pub balance: Option<i64>,
    pub lines: Vec<ReceiptLine>,
}

async fn receipt_view(st: &WebState, t: &Till, tr: Tr, id: &str) -> Result<ReceiptView, WebError> {
    let (store, till) = t.place();
    let auth = t.auth();
    let v = pos::read(&st.app, &auth, id, &till, &store).await?;
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let tenant = t.tenant.id.as_str();
    let r = receipts::by_key(&mut c, tenant, &store, &till, id).await?.ok_or_else(WebError::not_found)?;
    let lines = receipts::lines(&mut c, tenant, &r.id).await?;
    let card = match &r.member_id {
        Some(m) => kopilka_store::members::by_id(&mut c, tenant, m).await?.map(|m| m.card_number),
        None => None,
    };
    let cur = t.program.currency.as_str();
    let tz = t.program.time_zone.as_str();
    let i = |k: &str| v[k].as_i64().unwrap_or(0);
    let line_view = |l: &Line| {
        let title = match (&l.name, &l.sku) {
            (Some(n), Some(s)) => format!("{n} · {s}"),
            (Some(n), None) => n.clone(),
            (None, Some(s)) => s.clone(),
            (None, None) => format!("#{}", l.line_no),
        };
        let left = l.quantity_base - l.refunded_base;
        ReceiptLine {
            no: l.line_no,
            title,
            quantity: show_quantity(&l.qty_kind, l.quantity_base),
            payable: tr.money(l.payable_minor, cur),
            refunded: if l.refunded_base > 0 { show_quantity(&l.qty_kind, l.refunded_base) } else { String::new() },
            left: if left > 0 { show_quantity(&l.qty_kind, left) } else { String::new() },
        }
    };
    Ok(ReceiptView {
        receipt_id: r.receipt_id.clone(),
        status: r.status.clone(),
        date: tr.datetime(r.occurred_at, tz),
        total: tr.money(i("total_minor"), cur),
        discount: tr.money(i("discount_minor"), cur),
        redeemed: tr.money(i("redeemed_minor"), cur),
        points_redeemed: i("points_redeemed"),
        payable: tr.money(i("payable_minor"), cur),
        points_earned: i("points_earned"),
        points_pending: i("points_pending"),
        card,
        balance: v["balance"]["points"].as_i64(),
        lines: lines.iter().map(line_view).collect(),
    })
}

fn status_key(s: &str) -> &'static str {
    match s {
        "committed" => "till.status.committed",
        "held" => "till.status.held",
        "cancelled" => "till.status.cancelled",
        "refunded" => "till.status.refunded",
        "partially_refunded" => "till.status.partially_refunded",
        _ => "till.status.other",
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "till/receipt.html")]
pub struct ReceiptTpl {
    page: Page,
    bar: Bar,
    r: ReceiptView,
    org: String,
    store: String,
}

impl ReceiptTpl {
    fn status(&self) -> &'static str {
        status_key(&self.r.status)
    }
}

/// `GET /till/receipts/{id}`: the receipt, printable (`@media print`).
pub async fn receipt(State(st): State<WebState>, ctx: Ctx, t: Till, Path(id): Path<String>) -> WebResult<ReceiptTpl> {
    let r = receipt_view(&st, &t, ctx.t, &id).await?;
    let store = store_name(&st, &t).await?;
    Ok(ReceiptTpl { page: page(&ctx, "till.receipt.title"), bar: Bar::of(&t, &store), r, org: t.tenant.name.clone(), store })
}

// ---------------------------------------------------------------------------------------
// Refunds
// ---------------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "till/refund_find.html")]
pub struct RefundFindTpl {
    page: Page,
    bar: Bar,
    receipt_id: String,
    error: Option<&'static str>,
}

/// `GET /till/refund`: which receipt.
pub async fn refund_page(State(st): State<WebState>, ctx: Ctx, t: Till) -> WebResult<RefundFindTpl> {
    let store = store_name(&st, &t).await?;
    Ok(RefundFindTpl { page: page(&ctx, "till.refund.title"), bar: Bar::of(&t, &store), receipt_id: String::new(), error: None })
}

/// `POST /till/refund` (`receipt_id`): open the receipt's refund form.
pub async fn refund_find(State(st): State<WebState>, ctx: Ctx, t: Till, f: Form) -> WebResult<Response> {
    let id = f.get("receipt_id").unwrap_or_default().to_owned();
    let (store, till) = t.place();
    let found = if id.is_empty() || id.len() > 128 {
        None
    } else {
        let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
        receipts::by_key(&mut c, &t.tenant.id, &store, &till, &id).await?
    };
    if found.is_none() {
        let name = store_name(&st, &t).await?;
        let tpl = RefundFindTpl {
            page: page(&ctx, "till.refund.title"),
            bar: Bar::of(&t, &name),
            receipt_id: id,
            error: Some("till.refund.not_found"),
        };
        return Ok((StatusCode::NOT_FOUND, tpl).into_response());
    }
    Ok(Redirect::to(&format!("/till/receipts/{}/refund", seg(&id))).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "till/refund.html")]
pub struct RefundTpl {
    page: Page,
    bar: Bar,
    r: ReceiptView,
    refund_id: String,
    error: Option<String>,
    /// The refund just made.
    done: Option<RefundDone>,
}

#[derive(Debug, Clone)]
pub struct RefundDone {
    pub money: String,
    pub withheld: String,
    pub points_returned: i64,
    pub points_reversed: i64,
    pub balance: Option<i64>,
}

impl RefundTpl {
    fn status(&self) -> &'static str {
        status_key(&self.r.status)
    }
}

/// `GET /till/receipts/{id}/refund`: the lines with what may still be refunded.
pub async fn refund_form(State(st): State<WebState>, ctx: Ctx, t: Till, Path(id): Path<String>) -> WebResult<RefundTpl> {
    let r = receipt_view(&st, &t, ctx.t, &id).await?;
    let store = store_name(&st, &t).await?;
    Ok(RefundTpl { page: page(&ctx, "till.refund.title"), bar: Bar::of(&t, &store), r, refund_id: new_id(), error: None, done: None })
}

/// `POST /till/receipts/{id}/refund` (`refund_id`, `all` or `qty_<line_no>` per line).
pub async fn refund_submit(State(st): State<WebState>, ctx: Ctx, t: Till, Path(id): Path<String>, f: Form) -> WebResult<Response> {
    let tr = ctx.t;
    let refund_id = f.get("refund_id").filter(|r| r.len() <= 128).map(str::to_owned).unwrap_or_else(new_id);
    let mut body = Map::new();
    body.insert("receipt_id".into(), json!(id));
    body.insert("refund_id".into(), json!(refund_id));
    let mut problem = None;
    if !f.checked("all") {
        let mut items = Vec::new();
        for (k, v) in &f.0 {
            let Some(n) = k.strip_prefix("qty_").and_then(|n| n.parse::<i64>().ok()) else { continue };
            let v = v.trim();
            if v.is_empty() || v == "0" {
                continue;
            }
            match parse_quantity(v) {
                Ok(q) => items.push(json!({"line_no": n, "quantity": q})),
                Err(e) => problem = Some(format!("{} {n}: {e}", tr.m("till.refund.line"))),
            }
        }
        if items.is_empty() && problem.is_none() {
            problem = Some(tr.m("till.refund.nothing").to_owned());
        }
        body.insert("items".into(), Value::Array(items));
    }
    let auth = t.auth();
    let outcome: Result<Value, String> = match problem {
        Some(p) => Err(p),
        None => {
            let res = match refunds::parse(&auth, body) {
                Ok(req) => refunds::refund(&st.app, &auth, req).await,
                Err(e) => Err(e),
            };
            match res {
                Ok(a) => Ok(a),
                Err(e) if e.status.is_client_error() => Err(error_text(tr, &e)),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let cur = t.program.currency.as_str();
    let store = store_name(&st, &t).await?;
    let (status, done, error) = match outcome {
        Ok(a) => {
            let i = |k: &str| a[k].as_i64().unwrap_or(0);
            let done = RefundDone {
                money: tr.money(i("refund_minor"), cur),
                withheld: tr.money(i("withheld_minor"), cur),
                points_returned: i("points_returned"),
                points_reversed: i("points_reversed"),
                balance: a["balance"]["points"].as_i64(),
            };
            tracing::info!(tenant.id = %t.tenant.id, key.id = %t.key.id, "till refund");
            (StatusCode::OK, Some(done), None)
        }
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, None, Some(e)),
    };
    let r = receipt_view(&st, &t, tr, &id).await?;
    let tpl = RefundTpl { page: page(&ctx, "till.refund.title"), bar: Bar::of(&t, &store), r, refund_id: new_id(), error, done };
    Ok((status, tpl).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_as_typed() {
        assert_eq!(parse_money("12.50", "RUB"), Some(1250));
        assert_eq!(parse_money("12,5", "RUB"), Some(1250));
        assert_eq!(parse_money("1 200", "RUB"), Some(120000));
        assert_eq!(parse_money("7", "JPY"), Some(7));
        assert_eq!(parse_money("7.5", "JPY"), None);
        assert_eq!(parse_money("1.234", "RUB"), None);
        assert_eq!(parse_money("-1", "RUB"), None);
        assert_eq!(parse_money("", "RUB"), None);
        assert_eq!(parse_money("99999999999999", "RUB"), None);
    }

    #[test]
    fn quantities_as_typed() {
        assert_eq!(parse_quantity("2"), Ok(json!(2)));
        assert_eq!(parse_quantity("1,5"), Ok(json!("1.5")));
        assert!(parse_quantity("0").is_err());
        assert!(parse_quantity("abc").is_err());
        assert_eq!(show_quantity("milli", 1500), "1.5");
        assert_eq!(show_quantity("units", 3), "3");
    }
}
