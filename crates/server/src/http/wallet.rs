//! The Apple Wallet pass web service, as Apple specifies it ("Wallet Passes web service"),
//! under each programme's `webServiceURL`, `/wallet/apple/{programme}`:
//!
//! - `POST   /v1/devices/{device}/registrations/{passType}/{serial}`: register (201 new,
//!   200 already);
//! - `DELETE /v1/devices/{device}/registrations/{passType}/{serial}`: unregister (200);
//! - `GET    /v1/devices/{device}/registrations/{passType}?passesUpdatedSince=tag`: the
//!   serials changed since the tag (200 with `serialNumbers` and `lastUpdated`; 204 none);
//! - `GET    /v1/passes/{passType}/{serial}`: the latest pass, honouring
//!   `If-Modified-Since` (304);
//! - `POST   /v1/log`: the device's error messages.
//!
//! Requests about one pass carry `Authorization: ApplePass <authenticationToken>`; a
//! missing or wrong token is 401.

use super::cards::{http_date, pkpass_response};
use crate::error::{ApiError, ApiResult};
use crate::services::cards as svc;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kopilka_store::{cards as store, members, now_s, tenants};
use serde_json::{Value, json};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/wallet/apple/{slug}/v1/devices/{device}/registrations/{pass_type}/{serial}", post(register).delete(unregister))
        .route("/wallet/apple/{slug}/v1/devices/{device}/registrations/{pass_type}", get(updated_serials))
        .route("/wallet/apple/{slug}/v1/passes/{pass_type}/{serial}", get(latest_pass))
        .route("/wallet/apple/{slug}/v1/log", post(log))
}

fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong ApplePass authentication token")
}

fn ok_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The tenant of the URL and its pass type identifier; 404 when either is wrong.
async fn tenant_for(s: &AppState, slug: &str, pass_type: &str) -> ApiResult<(String, Vec<u8>)> {
    if !ok_id(slug) || !ok_id(pass_type) {
        return Err(ApiError::not_found("pass type"));
    }
    let mut c = svc::conn(s).await?;
    let t = tenants::tenant_by_slug(&mut c, slug).await?.ok_or_else(|| ApiError::not_found("programme"))?;
    let signer = svc::apple_signer(s, &mut c, &t.id).await.map_err(|_| ApiError::not_found("pass type"))?;
    if signer.pass_type_id != pass_type {
        return Err(ApiError::not_found("pass type"));
    }
    let (secret, _, _) = svc::settings(&mut c, &t.id).await?;
    Ok((t.id, secret))
}

/// Check `Authorization: ApplePass <token>` for a serial (a member id of the tenant).
async fn authorise(s: &AppState, tenant: &str, secret: &[u8], serial: &str, headers: &HeaderMap) -> ApiResult<()> {
    let given = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("ApplePass ")).map(str::trim);
    let Some(given) = given else { return Err(unauthorized()) };
    if !ok_id(serial) || !svc::same(given, &svc::apple_token(secret, serial)) {
        return Err(unauthorized());
    }
    let mut c = svc::conn(s).await?;
    members::by_id(&mut c, tenant, serial).await?.ok_or_else(|| ApiError::not_found("pass"))?;
    Ok(())
}

pub async fn register(
    State(s): State<AppState>,
    Path((slug, device, pass_type, serial)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (tenant, secret) = tenant_for(&s, &slug, &pass_type).await?;
    authorise(&s, &tenant, &secret, &serial, &headers).await?;
    if !ok_id(&device) {
        return Err(ApiError::field("deviceLibraryIdentifier", "is not a valid identifier"));
    }
    let body = crate::input::parse_object(&body)?;
    let token = match body.get("pushToken") {
        Some(Value::String(t)) if !t.is_empty() && t.len() <= 200 && t.bytes().all(|b| b.is_ascii_hexdigit()) => t.clone(),
        _ => return Err(ApiError::field("pushToken", "must be the device's hex push token")),
    };
    let mut c = svc::conn(&s).await?;
    let created = store::register_device(&mut c, &tenant, &device, &pass_type, &serial, &token, now_s()).await?;
    tracing::info!(tenant.id = %tenant, member.id = %serial, created, "wallet device registered");
    Ok(if created { StatusCode::CREATED } else { StatusCode::OK }.into_response())
}

pub async fn unregister(
    State(s): State<AppState>,
    Path((slug, device, pass_type, serial)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, secret) = tenant_for(&s, &slug, &pass_type).await?;
    authorise(&s, &tenant, &secret, &serial, &headers).await?;
    let mut c = svc::conn(&s).await?;
    if ok_id(&device) {
        store::unregister_device(&mut c, &tenant, &device, &pass_type, &serial).await?;
    }
    tracing::info!(tenant.id = %tenant, member.id = %serial, "wallet device unregistered");
    Ok(StatusCode::OK.into_response())
}

pub async fn updated_serials(
    State(s): State<AppState>,
    Path((slug, device, pass_type)): Path<(String, String, String)>,
    q: super::Params,
) -> ApiResult<Response> {
    super::only_params(&q, &["passesUpdatedSince"])?;
    let (tenant, _) = tenant_for(&s, &slug, &pass_type).await?;
    let since = match q.get("passesUpdatedSince").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| ApiError::field("passesUpdatedSince", "must be a tag this service gave"))?),
    };
    if !ok_id(&device) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut c = svc::conn(&s).await?;
    let (_, changed) = store::device_serials(&mut c, &tenant, &device, &pass_type, since).await?;
    if changed.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let last = changed.iter().map(|(_, at)| *at).max().unwrap_or(0).max(since.unwrap_or(0));
    let serials: Vec<&str> = changed.iter().map(|(s, _)| s.as_str()).collect();
    Ok(Json(json!({"serialNumbers": serials, "lastUpdated": last.to_string()})).into_response())
}

pub async fn latest_pass(
    State(s): State<AppState>,
    Path((slug, pass_type, serial)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, secret) = tenant_for(&s, &slug, &pass_type).await?;
    authorise(&s, &tenant, &secret, &serial, &headers).await?;
    let (body, updated_ms) = svc::pkpass(&s, &tenant, &serial).await?;
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| chrono::DateTime::parse_from_rfc2822(&h.replace("GMT", "+0000")).ok())
        .map(|t| t.timestamp());
    if since.is_some_and(|t| updated_ms.div_euclid(1000) <= t) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = header::HeaderValue::from_str(&http_date(updated_ms / 1000)) {
            r.headers_mut().insert(header::LAST_MODIFIED, v);
        }
        return Ok(r);
    }
    Ok(pkpass_response(body, updated_ms))
}

pub async fn log(Path(slug): Path<String>, body: Bytes) -> ApiResult<StatusCode> {
    let body = crate::input::parse_object(&body)?;
    let n = body.get("logs").and_then(Value::as_array).map(|a| a.len()).unwrap_or(0);
    // The messages themselves may name serials and URLs; only their count is logged.
    tracing::info!(programme = %slug.chars().take(64).collect::<String>(), messages = n, "wallet device log");
    Ok(StatusCode::OK)
}
