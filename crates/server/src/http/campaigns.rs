//! Campaigns, coupons, member segments and offers, the cashback wallet, action events,
//! event types and the product catalogue.

use super::{Params, limit_param, only_params};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::input::{Obj, canonical, check, parse_object, sha256_hex};
use crate::services::campaigns::{self as svc, CouponBatch};
use crate::services::{events, offers};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const READERS: &[Role] = &[Role::Admin, Role::Analyst];

pub async fn create(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<(StatusCode, Json<svc::CampaignView>)> {
    auth.admin()?;
    let spec = svc::parse(parse_object(&body)?)?;
    svc::create(&s, &auth, spec).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub async fn list(State(s): State<AppState>, auth: Auth, q: Params) -> ApiResult<Json<svc::CampaignList>> {
    auth.require(READERS)?;
    only_params(&q, &["archived"])?;
    let archived = match q.get("archived").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::field("archived", "must be true or false")),
    };
    svc::list(&s, &auth, archived).await.map(Json)
}

pub async fn get(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<svc::CampaignView>> {
    auth.require(READERS)?;
    svc::get(&s, &auth, &id).await.map(Json)
}

pub async fn put(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<svc::CampaignView>> {
    auth.admin()?;
    let spec = svc::parse(parse_object(&body)?)?;
    svc::update(&s, &auth, &id, spec).await.map(Json)
}

pub async fn archive(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<svc::CampaignView>> {
    auth.admin()?;
    svc::archive(&s, &auth, &id).await.map(Json)
}

pub async fn create_coupons(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let code = o.str("code", 64).map(|c| svc::normalize_code(&c));
    if let Some(c) = &code
        && !svc::code_ok(c)
    {
        o.err("code", "must be 3 to 64 letters, digits, '-' or '_'");
    }
    let generate = o.int("generate", 1, 100_000);
    match (&code, generate) {
        (None, None) => o.err("code", "give a code, or generate: N"),
        (Some(_), Some(_)) => o.err("generate", "give either a code or generate, not both"),
        _ => {}
    }
    let prefix = o.str("prefix", 16).map(|p| svc::normalize_code(&p)).unwrap_or_default();
    if !prefix.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_') {
        o.err("prefix", "must be letters, digits, '-' or '_'");
    }
    let length = o.int("length", 8, 32).unwrap_or(12) as usize;
    let mut member_ids = Vec::new();
    if let Some(list) = o.array("member_ids") {
        for (i, v) in list.iter().enumerate() {
            match v.as_str() {
                Some(m) if !m.is_empty() && m.len() <= 64 && !m.contains('\0') => member_ids.push(m.to_owned()),
                _ => {
                    o.errors.insert(format!("member_ids[{i}]"), "must be a member id".into());
                }
            }
        }
    }
    if let Some(m) = o.str("member_id", 64) {
        member_ids.push(m);
    }
    if !member_ids.is_empty() && member_ids.len() as i64 != generate.unwrap_or(1) {
        o.err("member_ids", "give one member per coupon (as many as generate, or one with a code)");
    }
    let max_uses = o.int("max_uses", 1, 1_000_000_000_000);
    let per_member_limit = o.int("per_member_limit", 1, 1_000_000_000_000);
    let starts_at = o.time("starts_at");
    let expires_at = o.time("expires_at");
    if let (Some(a), Some(b)) = (starts_at, expires_at)
        && a >= b
    {
        o.err("expires_at", "must be after starts_at");
    }
    check(o)?;
    // A generated or personal code is single-use unless said otherwise; a shared code is
    // unlimited unless max_uses says.
    let max_uses = max_uses.or(if generate.is_some() || !member_ids.is_empty() { Some(1) } else { None });
    let b = CouponBatch { code, generate, prefix, length, member_ids, max_uses, per_member_limit, starts_at, expires_at };
    svc::create_coupons(&s, &auth, &id, b).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub async fn list_coupons(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    auth.require(READERS)?;
    only_params(&q, &["limit", "cursor"])?;
    let limit = limit_param(&q, 100, 1000)?;
    svc::list_coupons(&s, &auth, &id, q.get("cursor").map(String::as_str).unwrap_or(""), limit).await.map(Json)
}

pub async fn import_coupons(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.admin()?;
    let rows = svc::parse_coupon_csv(&body)?;
    svc::import_coupons(&s, &auth, &id, rows).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub async fn export_coupons(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Response> {
    auth.require(READERS)?;
    let csv = svc::export_coupons(&s, &auth, &id).await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}

pub async fn disable_coupon(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    auth.admin()?;
    svc::disable_coupon(&s, &auth, &id).await.map(Json)
}

pub async fn validate_coupon(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    auth.require(&[Role::Admin, Role::Pos])?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let code = o.req_str("code", 64);
    let member_id = o.str("member_id", 64);
    check(o)?;
    if let Some(m) = &member_id {
        let mut c = s.db.pool().acquire().await.map_err(kopilka_store::StoreError::from)?;
        kopilka_store::members::by_id(&mut c, &auth.tenant_id, m).await?.ok_or_else(crate::services::members::member_not_found)?;
    }
    offers::validate_coupon(&s, &auth, &code.unwrap_or_default(), member_id.as_deref()).await.map(Json)
}

pub async fn member_offers(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    auth.require(&[Role::Admin, Role::Analyst, Role::Pos])?;
    svc::member_offers(&s, &auth, &id).await.map(Json)
}

pub async fn get_segments(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    auth.require(READERS)?;
    svc::get_segments(&s, &auth, &id).await.map(Json)
}

pub async fn put_segments(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    o.ignore("member_id");
    let mut tags = Vec::new();
    if let Some(list) = o.array("tags") {
        for (i, v) in list.iter().enumerate() {
            match v.as_str() {
                Some(t) if !t.is_empty() && t.chars().count() <= 64 && !t.contains('\0') => tags.push(t.to_lowercase()),
                _ => {
                    o.errors.insert(format!("tags[{i}]"), "must be a tag of 1 to 64 characters".into());
                }
            }
        }
    }
    tags.sort();
    tags.dedup();
    if tags.len() > 100 {
        o.err("tags", "at most 100 tags");
    }
    let attributes = o.object("attributes").cloned();
    if let Some(a) = &attributes
        && (a.len() > 100 || Value::Object(a.clone()).to_string().len() > 16_384)
    {
        o.err("attributes", "at most 100 attributes and 16 KiB");
    }
    check(o)?;
    // A field left out keeps what the member has.
    let tags = body.contains_key("tags").then_some(tags);
    svc::set_segments(&s, &auth, &id, tags, attributes).await.map(Json)
}

pub async fn wallet(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    auth.require(&[Role::Admin, Role::Analyst, Role::Pos])?;
    only_params(&q, &["limit"])?;
    let limit = limit_param(&q, 50, 500)?;
    svc::wallet(&s, &auth, &id, limit).await.map(Json)
}

pub async fn post_event(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let event_id = o.req_str("event_id", 128);
    let kind = o.req_str("type", 64);
    let data = match o.raw("data") {
        None => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            o.err("data", "must be an object");
            Value::Null
        }
    };
    if data.to_string().len() > 65_536 {
        o.err("data", "must be at most 64 KiB");
    }
    let occurred_at = o.time("occurred_at");
    check(o)?;
    let hash = sha256_hex(&canonical(&Value::Object(body.clone())));
    let ev = events::EventRequest { event_id: event_id.unwrap_or_default(), kind: kind.unwrap_or_default(), data, occurred_at, hash };
    let (created, v) = events::post(&s, &auth, &id, ev).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(v)))
}

pub async fn put_event_type(State(s): State<AppState>, auth: Auth, Path(kind): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    o.ignore("type");
    let schema = o.raw("schema").cloned();
    if schema.is_none() {
        o.err("schema", "is required");
    }
    check(o)?;
    events::put_type(&s, &auth, &kind, schema.unwrap_or(Value::Null)).await.map(Json)
}

pub async fn list_event_types(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require(READERS)?;
    events::list_types(&s, &auth).await.map(Json)
}

pub async fn put_products(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let mut out = Vec::new();
    match o.array("products") {
        None => o.err("products", "is required"),
        Some(list) if list.len() > 10_000 => o.err("products", "at most 10000 per request"),
        Some(list) => {
            for (i, v) in list.iter().enumerate() {
                let Some(m) = v.as_object() else {
                    o.errors.insert(format!("products[{i}]"), "must be an object".into());
                    continue;
                };
                let mut p = Obj::new(m, &format!("products[{i}]"));
                let sku = p.req_str("sku", 128);
                let name = p.str("name", 256);
                let category = p.str("category", 100).map(|c| c.to_lowercase());
                let errs = p.finish();
                let ok = errs.is_empty();
                o.absorb(errs);
                if let (true, Some(sku)) = (ok, sku) {
                    out.push((sku, name, category));
                }
            }
        }
    }
    check(o)?;
    svc::put_products(&s, &auth, out).await.map(Json)
}

pub async fn list_products(State(s): State<AppState>, auth: Auth, q: Params) -> ApiResult<Json<Value>> {
    auth.require(&[Role::Admin, Role::Analyst, Role::Pos])?;
    only_params(&q, &["limit", "cursor"])?;
    let limit = limit_param(&q, 100, 1000)?;
    svc::list_products(&s, &auth, q.get("cursor").map(String::as_str).unwrap_or(""), limit).await.map(Json)
}
