//! Rewards catalogue handlers: the catalogue (admin writes; every role reads), the
//! member's view with reasons, redemption (admin and pos), and fulfilment.

use super::{Params, limit_param, only_params};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::input::{Obj, check, parse_object};
use crate::services::rewards::{self as svc, RedeemRequest, RewardSpec};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kopilka_domain::rewards::KINDS;
use kopilka_store::rewards::RedemptionFilter;
use serde_json::{Map, Value};

const ALL: &[Role] = &[Role::Admin, Role::Analyst, Role::Pos];

fn code_ok(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Read a reward's fields (also the admin console's form, through `http::reward_spec`). Fields left out take their defaults (a PUT replaces the whole
/// reward); read-only fields a GET returns are ignored.
pub fn reward_spec(body: &Map<String, Value>) -> Result<RewardSpec, ApiError> {
    let mut o = Obj::new(body, "");
    let code = o.req_str("code", 64);
    if let Some(c) = &code
        && !code_ok(c)
    {
        o.err("code", "must be letters, digits, '_', '.' or '-', starting with a letter or digit");
    }
    let name = o.req_str("name", 200).filter(|n| !n.trim().is_empty());
    if body.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty() && n.trim().is_empty()) {
        o.err("name", "must not be blank");
    }
    let description = o.str_or_empty("description", 2000).unwrap_or_default();
    let kind = o.str("kind", 32).unwrap_or_else(|| "gift".into());
    if !KINDS.contains(&kind.as_str()) {
        o.err("kind", format!("must be one of {}", KINDS.join(", ")));
    }
    let campaign_id = o.str("campaign_id", 64);
    if campaign_id.is_some() && kind != "coupon" {
        o.err("campaign_id", "only a coupon reward names a campaign");
    }
    let points_price = o.req_int("points_price", 1, i64::MAX);
    let stock = o.int("stock", 0, i64::MAX);
    let valid_from = o.time("valid_from");
    let valid_to = o.time("valid_to");
    if let (Some(f), Some(t)) = (valid_from, valid_to)
        && t <= f
    {
        o.err("valid_to", "must be after valid_from");
    }
    let mut tiers: Vec<String> = Vec::new();
    if let Some(list) = o.array("tiers") {
        if list.len() > 50 {
            o.err("tiers", "at most 50 tiers");
        }
        for (i, t) in list.iter().enumerate().take(50) {
            match t.as_str() {
                Some(s) if !s.is_empty() && s.chars().count() <= 64 => {
                    if tiers.iter().any(|x| x == s) {
                        o.err(&format!("tiers[{i}]"), "is listed twice");
                    }
                    tiers.push(s.to_owned());
                }
                _ => o.err(&format!("tiers[{i}]"), "must be a tier code (a string of 1 to 64 characters)"),
            }
        }
    }
    let per_member_limit = o.int("per_member_limit", 1, i64::MAX);
    let active = o.bool("active").unwrap_or(true);
    let image_url = o.str("image_url", 2000);
    if let Some(u) = &image_url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        o.err("image_url", "must be an http(s) URL");
    }
    for key in ["id", "stock_left", "redeemed_count", "archived", "archived_at", "version", "created_at", "updated_at"] {
        o.ignore(key);
    }
    check(o)?;
    Ok(RewardSpec {
        code: code.unwrap_or_default(),
        name: name.unwrap_or_default(),
        description,
        kind,
        campaign_id,
        points_price: points_price.unwrap_or(0),
        stock,
        valid_from,
        valid_to,
        tiers,
        per_member_limit,
        active,
        image_url,
    })
}

/// `include_archived`: true or false.
fn flag(q: &std::collections::HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::field(key, "must be true or false")),
    }
}

pub async fn create(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<(StatusCode, Json<svc::RewardView>)> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let spec = reward_spec(&body)?;
    svc::create(&s, &auth, spec).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub async fn list(State(s): State<AppState>, auth: Auth, q: Params) -> ApiResult<Json<svc::RewardPage>> {
    auth.require(ALL)?;
    only_params(&q, &["limit", "cursor", "include_archived"])?;
    let limit = limit_param(&q, 100, 500)?;
    let archived = flag(&q, "include_archived")?;
    svc::list(&s, &auth, archived, q.get("cursor").map(String::as_str), limit).await.map(Json)
}

pub async fn get(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<svc::RewardView>> {
    auth.require(ALL)?;
    svc::get(&s, &auth, &id).await.map(Json)
}

pub async fn replace(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<svc::RewardView>> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let spec = reward_spec(&body)?;
    svc::replace(&s, &auth, &id, spec).await.map(Json)
}

pub async fn archive(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<svc::RewardView>> {
    auth.admin()?;
    svc::archive(&s, &auth, &id).await.map(Json)
}

pub async fn member_catalogue(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    q: Params,
) -> ApiResult<Json<svc::MemberCatalogue>> {
    auth.require(ALL)?;
    only_params(&q, &["limit", "cursor"])?;
    let limit = limit_param(&q, 100, 500)?;
    svc::member_catalogue(&s, &auth, &id, q.get("cursor").map(String::as_str), limit).await.map(Json)
}

pub async fn redeem(
    State(s): State<AppState>,
    auth: Auth,
    Path((member, reward)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<svc::RedemptionView>)> {
    auth.require(&[Role::Admin, Role::Pos])?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let redemption_id = o.req_str("redemption_id", 128);
    check(o)?;
    let req = RedeemRequest { redemption_id: redemption_id.unwrap_or_default(), body: Value::Object(body) };
    svc::redeem(&s, &auth, &member, &reward, req).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub async fn list_redemptions(State(s): State<AppState>, auth: Auth, q: Params) -> ApiResult<Json<svc::RedemptionPage>> {
    auth.require(&[Role::Admin, Role::Analyst])?;
    only_params(&q, &["limit", "cursor", "member_id", "reward_id", "status"])?;
    let limit = limit_param(&q, 100, 500)?;
    let status = q.get("status").map(String::as_str);
    if let Some(st) = status
        && !["issued", "fulfilled", "cancelled"].contains(&st)
    {
        return Err(ApiError::field("status", "must be issued, fulfilled or cancelled"));
    }
    let filter = RedemptionFilter {
        member_id: q.get("member_id").map(String::as_str).filter(|x| !x.is_empty()),
        reward_id: q.get("reward_id").map(String::as_str).filter(|x| !x.is_empty()),
        status,
    };
    svc::list_redemptions(&s, &auth, filter, q.get("cursor").map(String::as_str).filter(|x| !x.is_empty()), limit).await.map(Json)
}

pub async fn get_redemption(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<svc::RedemptionView>> {
    auth.require(ALL)?;
    svc::get_redemption(&s, &auth, &id).await.map(Json)
}

pub async fn lookup(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<svc::RedemptionView>> {
    auth.require(ALL)?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let code = o.req_str("code", 64);
    check(o)?;
    // Codes are 60 random bits; a pos key is also rate limited, like member lookups.
    if auth.role == Role::Pos
        && !s.limiter.allow(&format!("reward-lookup:{}", auth.key_id), s.config.pos_lookups_per_minute, 60, kopilka_store::now_s())
    {
        return Err(ApiError::rate_limited());
    }
    svc::lookup(&s, &auth, &code.unwrap_or_default()).await.map(Json)
}

/// An optional body with one optional text field (`note` or `reason`).
fn optional_text(body: &Bytes, key: &'static str) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let body = parse_object(body)?;
    let mut o = Obj::new(&body, "");
    let v = o.str(key, 500);
    check(o)?;
    Ok(v)
}

pub async fn fulfil(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<svc::RedemptionView>> {
    auth.require(&[Role::Admin, Role::Pos])?;
    let note = optional_text(&body, "note")?;
    svc::fulfil(&s, &auth, &id, note).await.map(Json)
}

pub async fn cancel(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<svc::RedemptionView>> {
    auth.require(&[Role::Admin, Role::Pos])?;
    let reason = optional_text(&body, "reason")?;
    svc::cancel(&s, &auth, &id, reason).await.map(Json)
}
