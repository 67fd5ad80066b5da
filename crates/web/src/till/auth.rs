//! Logging a terminal in with a till key, and out.

use super::{Bar, TillData, page, usable};
use crate::form::Form;
use crate::session::{self, TILL};
use crate::{Ctx, Page, WebResult, WebState, csrf, redirect_with, staff};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use kopilka_store::{StoreError, now_s, tenants};
use std::net::SocketAddr;

#[derive(Template, WebTemplate)]
#[template(path = "till/login.html")]
pub struct LoginTpl {
    page: Page,
    bar: Bar,
    error: Option<&'static str>,
}

/// `GET /till/login`.
pub async fn login_page(State(st): State<WebState>, ctx: Ctx, headers: HeaderMap) -> WebResult<Response> {
    if session::current(&st, &TILL, &headers).await?.is_some() {
        return Ok(Redirect::to("/till").into_response());
    }
    Ok(LoginTpl { page: page(&ctx, "till.login.title"), bar: Bar { place: None }, error: None }.into_response())
}

/// `POST /till/login` (`key`): a live pos key starts a till session. Attempts count
/// against the client address (`WebConfig::login_per_ip` per window).
pub async fn login_submit(
    State(st): State<WebState>,
    ctx: Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    f: Form,
) -> WebResult<Response> {
    let refuse = |status: StatusCode, key: &'static str| {
        (status, LoginTpl { page: page(&ctx, "till.login.title"), bar: Bar { place: None }, error: Some(key) }).into_response()
    };
    let ip = staff::client_ip(&st, &headers, Some(peer.ip()));
    let now = now_s();
    if !st.app.limiter.allow(&format!("till-login-ip:{ip}"), st.cfg.login_per_ip, st.cfg.login_window_s, now) {
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, "till.login.limited"));
    }
    let key = f.get("key").unwrap_or_default();
    if key.is_empty() || key.len() > 200 {
        return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, "till.login.wrong"));
    }
    let found = {
        let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
        tenants::key_by_hash(&mut c, &kopilka_server::auth::hash_key(key)).await?
    };
    let Some(k) = found else { return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, "till.login.wrong")) };
    if !usable(&k, now) {
        let why = if k.role == "pos" { "till.login.wrong" } else { "till.login.not_pos" };
        return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, why));
    }
    let data = serde_json::to_value(TillData::fresh()).unwrap_or_default();
    let (_, cookie) = session::start(&st, &TILL, &k.tenant_id, &k.id, &data).await?;
    let (_, csrf_cookie) = csrf::rotate(&st);
    tracing::info!(tenant.id = %k.tenant_id, key.id = %k.id, "till logged in");
    Ok(redirect_with("/till", [cookie, csrf_cookie]))
}

/// `POST /till/logout`.
pub async fn logout(State(st): State<WebState>, headers: HeaderMap) -> WebResult<Response> {
    let cookie = session::end(&st, &TILL, &headers).await?;
    let (_, csrf_cookie) = csrf::rotate(&st);
    Ok(redirect_with("/till/login", [cookie, csrf_cookie]))
}
