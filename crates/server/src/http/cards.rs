//! Card handlers: the card codes, pass and Google Wallet link of a member (docs/api.md, "Cards and passes"), the
//! card design in the admin API, and the public (unguessable) variants for the member's
//! own page.

use super::{Params, only_params};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::input::{Obj, check, parse_object};
use crate::services::cards as svc;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use kopilka_cards::Format;
use kopilka_store::now_s;
use serde_json::Value;

/// Routes under `/api/v1`.
pub fn api_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/members/{id}/card.png", get(card_png))
        .route("/members/{id}/card.svg", get(card_svg))
        .route("/members/{id}/pass.pkpass", get(pass))
        .route("/members/{id}/google-wallet", get(google_wallet))
        .route("/members/{id}/card-links", get(card_links))
        .route("/program/card", get(get_design).put(put_design))
        .route("/program/card/images/{kind}", put(put_image).delete(delete_image))
        .route("/program/card/apple-certificate", put(put_apple).delete(delete_apple))
        .route("/program/card/google-account", put(put_google).delete(delete_google))
        .route("/pos/otp", axum::routing::post(pos_otp))
}

/// Public routes (no API key): the member's card by its unguessable link.
pub fn public_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/c/{slug}/logo.png", get(public_logo))
        .route("/c/{slug}/{token}", get(super::public::card_page))
        .route("/c/{slug}/{token}/card.png", get(public_card_png))
        .route("/c/{slug}/{token}/card.svg", get(public_card_svg))
        .route("/c/{slug}/{token}/pass.pkpass", get(public_pass))
        .route("/c/{slug}/{token}/google-wallet", get(public_google_wallet))
}

fn format_param(q: &Params, default: Format) -> ApiResult<Format> {
    only_params(q, &["format", "t"])?;
    match q.get("format") {
        None => Ok(default),
        Some(f) => Format::parse(f).ok_or_else(|| ApiError::field("format", "must be one of qr, code128, ean13, pdf417, aztec")),
    }
}

/// A response that must not be cached (codes may rotate; tokens are credentials).
fn bytes(content_type: &'static str, body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

async fn card_image(s: &AppState, auth: &Auth, id: &str, q: &Params, svg: bool) -> ApiResult<Response> {
    let format = format_param(q, Format::Qr)?;
    // The QR holds the member's token, which pos keys do not see (docs/api.md, "Keys and roles").
    if auth.role == Role::Pos && format == Format::Qr {
        return Err(ApiError::forbidden("a pos key does not see QR tokens; ask for code128, ean13, pdf417 or aztec"));
    }
    let v = svc::view(s, &auth.tenant_id, id).await?;
    let (ct, body) = svc::code_image(&v, format, svg, now_s())?;
    Ok(bytes(ct, body))
}

pub async fn card_png(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    card_image(&s, &auth, &id, &q, false).await
}

pub async fn card_svg(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    card_image(&s, &auth, &id, &q, true).await
}

pub fn pkpass_response(body: Vec<u8>, updated_ms: i64) -> Response {
    let mut r = bytes("application/vnd.apple.pkpass", body);
    if let Ok(v) = HeaderValue::from_str(&http_date(updated_ms / 1000)) {
        r.headers_mut().insert(header::LAST_MODIFIED, v);
    }
    r
}

pub fn http_date(t: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0).unwrap_or_default().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub async fn pass(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, q: Params) -> ApiResult<Response> {
    only_params(&q, &[])?;
    let (body, updated_ms) = svc::pkpass(&s, &auth.tenant_id, &id).await?;
    Ok(pkpass_response(body, updated_ms))
}

pub async fn google_wallet(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    only_params(&q, &[])?;
    svc::google_wallet(&s, &auth.tenant_id, &id, auth.role != Role::Pos).await.map(Json)
}

pub async fn card_links(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    auth.require(&[Role::Admin, Role::Analyst])?;
    svc::links(&s, &auth.tenant_id, &id).await.map(Json)
}

pub async fn get_design(State(s): State<AppState>, auth: Auth) -> ApiResult<Json<Value>> {
    svc::get_design(&s, &auth.tenant_id).await.map(Json)
}

pub async fn put_design(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    auth.admin()?;
    let body = parse_object(&body)?;
    svc::put_design(&s, &auth.tenant_id, &auth.actor(), body).await.map(Json)
}

pub async fn put_image(State(s): State<AppState>, auth: Auth, Path(kind): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let png = o.req_str("png_base64", 2 * 1024 * 1024);
    check(o)?;
    svc::put_image(&s, &auth.tenant_id, &auth.actor(), &kind, &png.unwrap_or_default()).await.map(Json)
}

pub async fn delete_image(State(s): State<AppState>, auth: Auth, Path(kind): Path<String>) -> ApiResult<StatusCode> {
    auth.admin()?;
    svc::delete_image(&s, &auth.tenant_id, &kind).await.map(|_| StatusCode::NO_CONTENT)
}

pub async fn put_apple(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let cert = o.str("cert_pem", 64 * 1024);
    let key = o.str("key_pem", 64 * 1024);
    let wwdr = o.str("wwdr_pem", 64 * 1024);
    let p12 = o.str("pkcs12_base64", 256 * 1024);
    let password = o.str_or_empty("password", 1024);
    let (cert, key) = match (cert, key, p12) {
        (Some(c), Some(k), None) => (Some(c), Some(k)),
        (None, None, Some(p)) => match kopilka_cards::sign::pkcs12_to_pem(&p, password.as_deref().unwrap_or("")) {
            Ok((c, k)) => (Some(c), Some(k)),
            Err(e) => {
                o.err("pkcs12_base64", e.to_string());
                (None, None)
            }
        },
        _ => {
            o.err("cert_pem", "send cert_pem and key_pem, or pkcs12_base64 (with password)");
            (None, None)
        }
    };
    check(o)?;
    let (cert, key) = (cert.unwrap_or_default(), key.unwrap_or_default());
    svc::put_apple_certificate(&s, &auth.tenant_id, &auth.actor(), &cert, &key, wwdr.as_deref()).await.map(Json)
}

pub async fn delete_apple(State(s): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    auth.admin()?;
    svc::delete_wallet_key(&s, &auth.tenant_id, "apple").await.map(|_| StatusCode::NO_CONTENT)
}

pub async fn put_google(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let issuer = o.req_str("issuer_id", 32);
    let account = match o.raw("service_account") {
        Some(Value::Object(m)) => Some(Value::Object(m.clone()).to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            o.err("service_account", "must be the service account's JSON key (an object)");
            None
        }
        None => {
            o.err("service_account", "is required");
            None
        }
    };
    check(o)?;
    svc::put_google_account(&s, &auth.tenant_id, &auth.actor(), &issuer.unwrap_or_default(), &account.unwrap_or_default()).await.map(Json)
}

pub async fn delete_google(State(s): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    auth.admin()?;
    svc::delete_wallet_key(&s, &auth.tenant_id, "google").await.map(|_| StatusCode::NO_CONTENT)
}

// Public variants. Anything wrong about the link is a plain 404.

pub async fn public_logo(State(s): State<AppState>, Path(slug): Path<String>) -> ApiResult<Response> {
    let png = svc::public_logo(&s, &slug).await?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "public, max-age=300")], png).into_response())
}

async fn public_image(s: &AppState, slug: &str, token: &str, q: &Params, svg: bool) -> ApiResult<Response> {
    let (tenant, member) = svc::resolve_public(s, slug, token).await?;
    let v = svc::view(s, &tenant, &member).await?;
    let format = format_param(q, v.design.format())?;
    let (ct, body) = svc::code_image(&v, format, svg, now_s())?;
    Ok(bytes(ct, body))
}

pub async fn public_card_png(State(s): State<AppState>, Path((slug, token)): Path<(String, String)>, q: Params) -> ApiResult<Response> {
    public_image(&s, &slug, &token, &q, false).await
}

pub async fn public_card_svg(State(s): State<AppState>, Path((slug, token)): Path<(String, String)>, q: Params) -> ApiResult<Response> {
    public_image(&s, &slug, &token, &q, true).await
}

pub async fn public_pass(State(s): State<AppState>, Path((slug, token)): Path<(String, String)>) -> ApiResult<Response> {
    let (tenant, member) = svc::resolve_public(&s, &slug, &token).await?;
    let (body, updated_ms) = svc::pkpass(&s, &tenant, &member).await?;
    Ok(pkpass_response(body, updated_ms))
}

pub async fn public_google_wallet(
    State(s): State<AppState>,
    Path((slug, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (tenant, member) = svc::resolve_public(&s, &slug, &token).await?;
    let v = svc::google_wallet(&s, &tenant, &member, true).await?;
    // A browser following the button goes straight to Google; a script gets the JSON.
    let wants_html = headers.get(header::ACCEPT).and_then(|h| h.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if wants_html && let Some(url) = v["save_url"].as_str() {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url.to_owned())]).into_response());
    }
    Ok(Json(v).into_response())
}

/// `POST /api/v1/pos/otp`: `{"member": {...}, "store_id"?, "till_id"?}`.
pub async fn pos_otp(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    auth.require(&[Role::Admin, Role::Pos])?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let member = crate::services::pos::parse_member_ref(&mut o, "member");
    if member.is_none() && !o.has("member") {
        o.err("member", "is required");
    }
    let store_id = o.str("store_id", 64);
    let till_id = o.str("till_id", 64);
    check(o)?;
    crate::services::pos::bind_store(&auth, store_id, till_id)?;
    let member = member.ok_or_else(|| ApiError::field("member", "is required"))?;
    crate::services::otp::send_pos(&s, &auth.tenant_id, &member).await.map(Json)
}
