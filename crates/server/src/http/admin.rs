//! Programme, stores, keys, audit and ledger-check handlers.

use super::{Params, limit_param, only_params};
use crate::auth::{Auth, Role};
use crate::error::ApiResult;
use crate::input::{Obj, check, parse_object};
use crate::services::{accounts, check as ledger_check_svc, program, templates};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kopilka_store::{StoreError, tenants};
use serde_json::{Value, json};

pub async fn get_program(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<program::Versioned>> {
    let mut c = s.db.pool().acquire().await.map_err(StoreError::from)?;
    let (v, p) = program::current(&s, &mut c, &auth.tenant_id).await?;
    Ok(Json(program::versioned(v, &p)))
}

pub async fn put_program(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<program::Versioned>> {
    auth.admin()?;
    let p = program::parse(parse_object(&body)?)?;
    program::put(&s, &auth.tenant_id, &auth.actor(), p).await.map(Json)
}

pub async fn list_templates(_auth: Auth) -> ApiResult<Json<Value>> {
    let list: Vec<Value> = templates::NAMES.iter().map(|n| json!({"name": n, "program": templates::template(n)})).collect();
    Ok(Json(json!({"templates": list})))
}

pub async fn create_store(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<(StatusCode, Json<accounts::StoreView>)> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let code = o.req_str("code", 64);
    let name = o.req_str("name", 200);
    let time_zone = o.str("time_zone", 64);
    if let Some(tz) = &time_zone
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        o.err("time_zone", "must be an IANA time zone such as Europe/Moscow");
    }
    let lat = coord(&mut o, "lat", 90.0);
    let lon = coord(&mut o, "lon", 180.0);
    o.ignore("id");
    o.ignore("created_at");
    check(o)?;
    let store = accounts::NewStore { code: code.unwrap_or_default(), name: name.unwrap_or_default(), time_zone, lat, lon };
    accounts::create_store(&s, &auth.tenant_id, &auth.actor(), store).await.map(|v| (StatusCode::CREATED, Json(v)))
}

/// Coordinates are the one place decimals are welcome; kept as text, never as money.
fn coord(o: &mut Obj<'_>, key: &'static str, max: f64) -> Option<String> {
    let v = o.raw(key)?;
    match v.as_f64() {
        Some(f) if f.abs() <= max => Some(v.to_string()),
        _ => {
            o.err(key, format!("must be a number within ±{max}"));
            None
        }
    }
}

pub async fn list_stores(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<accounts::StoreList>> {
    accounts::list_stores(&s, &auth.tenant_id).await.map(Json)
}

pub async fn get_store(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<accounts::StoreView>> {
    accounts::get_store(&s, &auth.tenant_id, &id).await.map(Json)
}

pub async fn create_key(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<(StatusCode, Json<accounts::KeyView>)> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let role = o.req_str("role", 16);
    let store_id = o.str("store_id", 64);
    let till_id = o.str("till_id", 64);
    let expires_at = o.time("expires_at");
    let label = o.str("label", 200);
    // Read-only fields of a key that a client may send back are ignored.
    for key in ["id", "created_at", "revoked_at"] {
        o.ignore(key);
    }
    let role = role.and_then(|r| {
        let parsed = Role::parse(&r);
        if parsed.is_none() {
            o.err("role", "must be admin, pos or analyst");
        }
        parsed
    });
    match role {
        Some(Role::Pos) if store_id.is_none() && !o.errors.contains_key("store_id") => o.err("store_id", "is required for a pos key"),
        Some(Role::Admin | Role::Analyst) if store_id.is_some() => o.err("store_id", "only pos keys take a store"),
        Some(Role::Admin | Role::Analyst) if till_id.is_some() => o.err("till_id", "only pos keys take a till"),
        _ => {}
    }
    if expires_at.is_some_and(|t| t <= kopilka_store::now_s()) {
        o.err("expires_at", "must be in the future");
    }
    check(o)?;
    let k = accounts::NewKey { role: role.unwrap_or(Role::Pos), store_id, till_id, expires_at, label };
    accounts::create_key(&s, &auth.tenant_id, &auth.actor(), k).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub async fn list_keys(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<accounts::KeyList>> {
    auth.admin()?;
    accounts::list_keys(&s, &auth.tenant_id).await.map(Json)
}

pub async fn revoke_key(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<accounts::Revoked>> {
    auth.admin()?;
    accounts::revoke_key(&s, &auth.tenant_id, &auth.actor(), &id).await.map(Json)
}

pub async fn audit(State(s): State<AppState>, auth: Auth, q: Params) -> ApiResult<Json<Value>> {
    auth.require(&[Role::Admin, Role::Analyst])?;
    only_params(&q, &["limit"])?;
    let limit = limit_param(&q, 100, 1000)?;
    let mut c = s.db.pool().acquire().await.map_err(StoreError::from)?;
    let list: Vec<Value> = tenants::list_audit(&mut c, &auth.tenant_id, limit)
        .await?
        .into_iter()
        .map(|r| json!({"id": r.id, "actor": r.actor, "action": r.action, "object_type": r.object_type, "object_id": r.object_id, "details": r.details, "created_at": crate::input::fmt_time(r.created_at)}))
        .collect();
    Ok(Json(json!({"entries": list})))
}

pub async fn ledger_check(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require(&[Role::Admin, Role::Analyst])?;
    let mut c = s.db.pool().acquire().await.map_err(StoreError::from)?;
    let report = ledger_check_svc::tenant(&mut c, &auth.tenant_id).await?;
    Ok(Json(serde_json::to_value(report)?))
}
