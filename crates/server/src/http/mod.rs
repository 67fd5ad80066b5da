//! The HTTP edge: routes, the request-id and panic layers, and thin handlers that parse
//! input, call one service function and map the result.

mod admin;
mod campaigns;
mod cards;
mod members;
pub mod openapi;
mod pos;
pub mod public;
mod rewards;
/// The rewards API's reading of a reward body, shared with the admin console's form.
pub use rewards::reward_spec;
mod wallet;

use crate::error::{ApiError, REQUEST_ID};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

/// The largest request body (a member import CSV is the largest expected).
pub const BODY_LIMIT_BYTES: usize = 8 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The API's router with `extra` routes merged in (the web UI of `crates/web`), under the
/// same request-id, panic and body-limit layers.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/program", get(admin::get_program).put(admin::put_program))
        .route("/program/templates", get(admin::list_templates))
        .route("/stores", post(admin::create_store).get(admin::list_stores))
        .route("/stores/{id}", get(admin::get_store))
        .route("/api-keys", post(admin::create_key).get(admin::list_keys))
        .route("/api-keys/{id}", delete(admin::revoke_key))
        .route("/audit", get(admin::audit))
        .route("/admin/ledger-check", get(admin::ledger_check))
        .route("/members", post(members::create).get(members::list))
        .route("/members/import", post(members::import))
        .route("/members/lookup", post(members::lookup))
        .route("/members/{id}", get(members::get))
        .route("/members/{id}/balance", get(members::balance))
        .route("/members/{id}/ledger", get(members::ledger))
        .route("/members/{id}/history", get(members::history))
        .route("/members/{id}/adjustments", post(members::adjust))
        .route("/members/{id}/transfers", post(members::transfer))
        .route("/members/{id}/offers", get(campaigns::member_offers))
        .route("/members/{id}/segments", get(campaigns::get_segments).put(campaigns::put_segments))
        .route("/members/{id}/wallet", get(campaigns::wallet))
        .route("/members/{id}/events", post(campaigns::post_event))
        .route("/campaigns", post(campaigns::create).get(campaigns::list))
        .route("/campaigns/{id}", get(campaigns::get).put(campaigns::put).delete(campaigns::archive))
        .route("/campaigns/{id}/coupons", post(campaigns::create_coupons).get(campaigns::list_coupons))
        .route("/campaigns/{id}/coupons/import", post(campaigns::import_coupons))
        .route("/campaigns/{id}/coupons/export", get(campaigns::export_coupons))
        .route("/coupons/validate", post(campaigns::validate_coupon))
        .route("/coupons/{id}", delete(campaigns::disable_coupon))
        .route("/event-types", get(campaigns::list_event_types))
        .route("/event-types/{type}", put(campaigns::put_event_type))
        .route("/products", get(campaigns::list_products).put(campaigns::put_products))
        .route("/members/{id}/rewards", get(rewards::member_catalogue))
        .route("/members/{id}/rewards/{reward_id}/redeem", post(rewards::redeem))
        .route("/rewards", post(rewards::create).get(rewards::list))
        .route("/rewards/{id}", get(rewards::get).put(rewards::replace).delete(rewards::archive))
        .route("/reward-redemptions", get(rewards::list_redemptions))
        .route("/reward-redemptions/lookup", post(rewards::lookup))
        .route("/reward-redemptions/{id}", get(rewards::get_redemption))
        .route("/reward-redemptions/{id}/fulfil", post(rewards::fulfil))
        .route("/reward-redemptions/{id}/cancel", post(rewards::cancel))
        .route("/pos/quote", post(pos::quote))
        .route("/pos/reserve", post(pos::reserve))
        .route("/pos/checkout", post(pos::checkout))
        .route("/pos/cancel", post(pos::cancel))
        .route("/pos/refund", post(pos::refund))
        .route("/pos/receipts/{receipt_id}", get(pos::receipt))
        .merge(cards::api_routes());
    Router::new()
        .nest("/api/v1", api)
        .merge(cards::public_routes())
        .merge(wallet::routes())
        .merge(public::routes())
        .merge(extra)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Give each request an id (echoed in `x-request-id` and in error bodies), and record
/// its latency. Personal data never reaches the log: only method, route and status.
async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|h| h.to_str().ok())
        .filter(|s| s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned)
        .unwrap_or_else(kopilka_store::new_id);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    let is_json = resp.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    // Public pages answer a bad form with the form again, as HTML.
    let is_html = resp.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if resp.status().is_client_error() && !is_json && !is_html {
        // A rejection from the framework (body too large, bad path...): same envelope.
        let (code, message) = match resp.status().as_u16() {
            413 => ("payload_too_large", "the body is larger than this API accepts"),
            415 => ("unsupported_media_type", "send the body as JSON"),
            405 => ("method_not_allowed", "this route does not take that method"),
            _ => ("bad_request", "the request could not be read"),
        };
        let status = resp.status();
        resp = REQUEST_ID.sync_scope(id.clone(), || ApiError::new(status, code, message).into_response());
    }
    let status = resp.status().as_u16();
    if status >= 500 {
        tracing::error!(request.id = %id, %method, status, "request failed");
    } else {
        tracing::debug!(request.id = %id, %method, status, elapsed_us = started.elapsed().as_micros() as u64, "request");
    }
    let _ = path;
    metrics::counter!("kopilka_http_requests_total", "status" => status.to_string()).increment(1);
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "unavailable"}))).into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let body = state.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Query parameters as a map; unknown ones are rejected by each handler.
pub type Params = axum::extract::Query<std::collections::HashMap<String, String>>;

/// Reject query parameters a handler does not take.
pub fn only_params(q: &std::collections::HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    for (k, v) in q {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::field(k.clone(), "unknown query parameter"));
        }
        if v.contains('\0') {
            return Err(ApiError::field(k.clone(), "must not contain a NUL character"));
        }
    }
    Ok(())
}

/// `limit` in 1..=max, default `default`.
pub fn limit_param(q: &std::collections::HashMap<String, String>, default: i64, max: i64) -> Result<i64, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::field("limit", format!("must be an integer from 1 to {max}"))),
    }
}
