//! Receipts: the newest, a search by receipt number (POST), the detail with lines and
//! fiscal splits, refunds and voids (each confirmed, each through the POS services, at the
//! receipt's own store).

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
use kopilka_domain::quantity::Quantity;
use kopilka_server::services::{pos, program, refund};
use kopilka_store::receipts::{self, Receipt};
use kopilka_store::{StoreError, analytics, tenants};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/receipts", get(list))
        .route("/admin/receipts/search", post(search))
        .route("/admin/receipts/{pk}", get(show))
        .route("/admin/receipts/{pk}/refund", post(do_refund))
        .route("/admin/receipts/{pk}/void", post(void))
}

/// The catalogue key of a receipt status.
pub fn status_key(status: &str) -> &'static str {
    match status {
        "held" => "admin.status.held",
        "committed" => "admin.status.committed",
        "cancelled" => "admin.status.cancelled",
        "partially_refunded" => "admin.status.partially_refunded",
        "refunded" => "admin.status.refunded",
        _ => "common.none",
    }
}

/// The catalogue key of a ledger entry kind.
pub fn entry_kind_key(kind: &str) -> &'static str {
    match kind {
        "earn" => "admin.kind.earn",
        "redeem" => "admin.kind.redeem",
        "reverse_earn" => "admin.kind.reverse_earn",
        "return_redeem" => "admin.kind.return_redeem",
        "expire" => "admin.kind.expire",
        "adjust" => "admin.kind.adjust",
        "transfer_in" => "admin.kind.transfer_in",
        "transfer_out" => "admin.kind.transfer_out",
        "bonus" => "admin.kind.bonus",
        _ => "common.none",
    }
}

pub struct Row {
    pub pk: String,
    pub receipt_id: String,
    pub store: String,
    pub till_id: String,
    pub member_id: String,
    pub status: String,
    pub occurred_at: i64,
    pub total_minor: i64,
    pub payable_minor: i64,
}

fn rows(list: &[Receipt], stores: &HashMap<String, String>) -> Vec<Row> {
    list.iter()
        .map(|r| Row {
            pk: r.id.clone(),
            receipt_id: r.receipt_id.clone(),
            store: stores.get(&r.store_id).cloned().unwrap_or_default(),
            till_id: r.till_id.clone(),
            member_id: r.member_id.clone().unwrap_or_default(),
            status: r.status.clone(),
            occurred_at: r.occurred_at,
            total_minor: r.total_minor,
            payable_minor: r.payable_minor,
        })
        .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/receipts.html")]
struct ListTpl {
    page: Page,
    fmt: Fmt,
    query: String,
    searched: bool,
    rows: Vec<Row>,
}

impl ListTpl {
    fn status_key(&self, s: &str) -> &'static str {
        status_key(s)
    }
}

async fn context(st: &WebState, staff: &Staff, ctx: &Ctx) -> WebResult<(Fmt, HashMap<String, String>)> {
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let (_, p) = program::current(&st.app, &mut c, &staff.tenant.id).await?;
    let stores = tenants::list_stores(&mut c, &staff.tenant.id).await?.into_iter().map(|s| (s.id, s.code)).collect();
    Ok((Fmt::new(ctx.t, &p), stores))
}

async fn list(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<ListTpl> {
    staff.require(Perm::Receipts)?;
    let (fmt, stores) = context(&st, &staff, &ctx).await?;
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let list = receipts::list(&mut c, &staff.tenant.id, None, 50).await?;
    let page = super::page(&ctx, &staff, "receipts", "admin.receipts.title");
    Ok(ListTpl { page, fmt, query: String::new(), searched: false, rows: rows(&list, &stores) })
}

async fn search(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<ListTpl> {
    staff.require(Perm::Receipts)?;
    let (fmt, stores) = context(&st, &staff, &ctx).await?;
    let query = f.get("receipt_id").unwrap_or_default().chars().take(128).collect::<String>();
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let list = analytics::receipts_by_receipt_id(&mut c, &staff.tenant.id, &query, 50).await?;
    let page = super::page(&ctx, &staff, "receipts", "admin.receipts.title");
    Ok(ListTpl { page, fmt, query, searched: true, rows: rows(&list, &stores) })
}

pub struct LineView {
    pub line_no: i64,
    pub sku: String,
    pub name: String,
    pub category: String,
    pub quantity: String,
    pub measured: bool,
    pub refunded: String,
    pub left: String,
    pub total_minor: i64,
    pub discount_minor: i64,
    pub redeemed_minor: i64,
    pub points_redeemed: i64,
    pub payable_minor: i64,
    pub points_earned: i64,
    /// "2 × 140,55 ₽" or "35.27 = 1 949,48 ₽".
    pub splits: Vec<String>,
}

pub struct RefundView {
    pub refund_id: String,
    pub refund_minor: i64,
    pub points_reversed: i64,
    pub points_returned: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/receipt.html")]
struct DetailTpl {
    page: Page,
    fmt: Fmt,
    pk: String,
    receipt_id: String,
    store: String,
    till_id: String,
    member_id: String,
    status: String,
    occurred_at: i64,
    tier: String,
    program_version: i64,
    total_minor: i64,
    discount_minor: i64,
    redeemed_minor: i64,
    points_redeemed: i64,
    payable_minor: i64,
    points_earned: i64,
    lines: Vec<LineView>,
    refunds: Vec<RefundView>,
    can_refund: bool,
    can_void: bool,
    refund_key: String,
    error: Option<String>,
}

impl DetailTpl {
    fn status_key(&self, s: &str) -> &'static str {
        status_key(s)
    }
}

fn qty_text(q: Option<Quantity>) -> String {
    match q.map(Quantity::to_json) {
        Some(Value::String(s)) => s,
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

async fn detail(st: &WebState, ctx: &Ctx, staff: &Staff, pk: &str, error: Option<String>) -> WebResult<DetailTpl> {
    staff.require(Perm::Receipts)?;
    let tenant = &staff.tenant.id;
    let (fmt, stores) = context(st, staff, ctx).await?;
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let r = receipts::by_pk(&mut c, tenant, pk).await?.ok_or_else(WebError::not_found)?;
    let stored = receipts::lines(&mut c, tenant, &r.id).await?;
    drop(c);
    let v = pos::read(&st.app, &staff.auth_at(&r.store_id), &r.receipt_id, &r.till_id, &r.store_id).await?;
    let answer_lines: HashMap<i64, &Value> =
        v["lines"].as_array().map(|a| a.iter().map(|l| (l["line_no"].as_i64().unwrap_or(0), l)).collect()).unwrap_or_default();
    let lines = stored
        .iter()
        .map(|l| {
            let q = Quantity::from_storage(&l.qty_kind, l.quantity_base);
            let refunded = q.map(|q| q.with_base(l.refunded_base));
            let left = q.map(|q| q.with_base(l.quantity_base - l.refunded_base));
            let splits = answer_lines
                .get(&l.line_no)
                .and_then(|a| a["fiscal_splits"].as_array())
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            let qty = match &s["quantity"] {
                                Value::String(x) => x.clone(),
                                x => x.to_string(),
                            };
                            match (s["unit_price_minor"].as_i64(), s["total_minor"].as_i64()) {
                                (Some(u), _) => format!("{qty} × {}", fmt.money(u)),
                                (None, Some(t)) => format!("{qty} = {}", fmt.money(t)),
                                _ => qty,
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            LineView {
                line_no: l.line_no,
                sku: l.sku.clone().unwrap_or_default(),
                name: l.name.clone().unwrap_or_default(),
                category: l.category.clone().unwrap_or_default(),
                quantity: qty_text(q),
                measured: q.is_some_and(Quantity::is_measured),
                refunded: if l.refunded_base > 0 { qty_text(refunded) } else { String::new() },
                left: qty_text(left),
                total_minor: l.total_minor,
                discount_minor: l.discount_minor,
                redeemed_minor: l.redeemed_minor,
                points_redeemed: l.points_redeemed,
                payable_minor: l.payable_minor,
                points_earned: l.points_earned,
                splits,
            }
        })
        .collect();
    let refunds = v["refunds"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| RefundView {
                    refund_id: x["refund_id"].as_str().unwrap_or_default().to_owned(),
                    refund_minor: x["refund_minor"].as_i64().unwrap_or(0),
                    points_reversed: x["points_reversed"].as_i64().unwrap_or(0),
                    points_returned: x["points_returned"].as_i64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    let n = |k: &str| v[k].as_i64().unwrap_or(0);
    let refundable = matches!(r.status.as_str(), "committed" | "partially_refunded");
    let page = super::page(ctx, staff, "receipts", "admin.receipt.title");
    Ok(DetailTpl {
        page,
        pk: r.id.clone(),
        receipt_id: r.receipt_id.clone(),
        store: stores.get(&r.store_id).cloned().unwrap_or_default(),
        till_id: r.till_id.clone(),
        member_id: r.member_id.clone().unwrap_or_default(),
        status: r.status.clone(),
        occurred_at: r.occurred_at,
        tier: r.tier.clone().unwrap_or_default(),
        program_version: r.program_version,
        total_minor: n("total_minor"),
        discount_minor: n("discount_minor"),
        redeemed_minor: n("redeemed_minor"),
        points_redeemed: n("points_redeemed"),
        payable_minor: n("payable_minor"),
        points_earned: n("points_earned"),
        lines,
        refunds,
        can_refund: staff.can(Perm::Refund) && refundable,
        can_void: staff.can(Perm::Refund) && r.status == "committed",
        refund_key: format!("WEB-{}", kopilka_store::new_id()),
        error,
        fmt,
    })
}

async fn show(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(pk): Path<String>) -> WebResult<DetailTpl> {
    detail(&st, &ctx, &staff, &pk, None).await
}

async fn the_receipt(st: &WebState, staff: &Staff, pk: &str) -> WebResult<Receipt> {
    staff.require(Perm::Refund)?;
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    receipts::by_pk(&mut c, &staff.tenant.id, pk).await?.ok_or_else(WebError::not_found)
}

/// Show the receipt again with a message (a rule said no, or the form was incomplete).
async fn again(st: &WebState, ctx: &Ctx, staff: &Staff, pk: &str, status: StatusCode, msg: String) -> WebResult<Response> {
    let tpl = detail(st, ctx, staff, pk, Some(msg)).await?;
    Ok((status, tpl).into_response())
}

async fn do_refund(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(pk): Path<String>, f: Form) -> WebResult<Response> {
    let r = the_receipt(&st, &staff, &pk).await?;
    if !f.checked("confirm") {
        return again(&st, &ctx, &staff, &pk, StatusCode::UNPROCESSABLE_ENTITY, ctx.t.m("admin.receipt.confirm_needed").into()).await;
    }
    let mut body = Map::new();
    body.insert("receipt_id".into(), json!(r.receipt_id));
    body.insert("till_id".into(), json!(r.till_id));
    body.insert("original_store_id".into(), json!(r.store_id));
    body.insert("store_id".into(), json!(r.store_id));
    body.insert("refund_id".into(), json!(f.get("refund_id").unwrap_or_default()));
    if !f.checked("all") {
        let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
        let lines = receipts::lines(&mut c, &staff.tenant.id, &r.id).await?;
        let mut items = Vec::new();
        for l in &lines {
            let Some(q) = f.get(&format!("qty_{}", l.line_no)) else { continue };
            let quantity = if l.qty_kind == "units" {
                match q.parse::<i64>() {
                    Ok(n) if n > 0 => json!(n),
                    Ok(_) => continue,
                    Err(_) => json!(q),
                }
            } else {
                json!(q.replace(',', "."))
            };
            items.push(json!({"line_no": l.line_no, "quantity": quantity}));
        }
        if items.is_empty() {
            return again(&st, &ctx, &staff, &pk, StatusCode::UNPROCESSABLE_ENTITY, ctx.t.m("admin.receipt.nothing_chosen").into()).await;
        }
        body.insert("items".into(), Value::Array(items));
    }
    let auth = staff.auth_at(&r.store_id);
    let result = match refund::parse(&auth, body) {
        Ok(req) => refund::refund(&st.app, &auth, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/admin/receipts/{pk}")).into_response()),
        Err(e) if e.status.is_client_error() => {
            let msg = if e.fields.is_empty() { e.message } else { e.fields.values().cloned().collect::<Vec<_>>().join("; ") };
            again(&st, &ctx, &staff, &pk, e.status, msg).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn void(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(pk): Path<String>, f: Form) -> WebResult<Response> {
    let r = the_receipt(&st, &staff, &pk).await?;
    if !f.checked("confirm") {
        return again(&st, &ctx, &staff, &pk, StatusCode::UNPROCESSABLE_ENTITY, ctx.t.m("admin.receipt.confirm_needed").into()).await;
    }
    let auth = staff.auth_at(&r.store_id);
    let mut body = Map::new();
    body.insert("receipt_id".into(), json!(r.receipt_id));
    body.insert("till_id".into(), json!(r.till_id));
    body.insert("store_id".into(), json!(r.store_id));
    let result = match pos::parse_cancel(&auth, body) {
        Ok(req) => pos::cancel(&st.app, &auth, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/admin/receipts/{pk}")).into_response()),
        Err(e) if e.status.is_client_error() => {
            let msg = if e.code == "cancel_not_possible" { ctx.t.m("admin.receipt.void_impossible").to_owned() } else { e.message };
            again(&st, &ctx, &staff, &pk, e.status, msg).await
        }
        Err(e) => Err(e.into()),
    }
}
