//! Logging in to the portal with a one-time code.
//!
//! The member enters the phone or email of their card (a POST form: no personal data in
//! URLs). When it belongs to a member of this programme and the deployment can send to
//! it (SMS for a phone, email for an address: services/otp.rs), a 6-digit code goes out
//! through the same adapter and table (`otp_codes`, purpose `portal`, only its HMAC
//! stored) as the till's one-time codes. The answer is the same whether or not the
//! contact has a card, so the form does not tell who is a member.
//!
//! Limits: code requests per client address and per contact (`WebConfig::login_per_ip`,
//! `login_per_account` per `login_window_s`), at most 5 codes per member per 15 minutes
//! (counted in the database under the member's balance lock, as for the till), and wrong
//! codes per member and per address. A code lives 5 minutes and works once.

use super::{Nav, Programme, nav, page};
use crate::form::Form;
use crate::session::{self, MEMBER};
use crate::{Ctx, Page, WebError, WebResult, WebState, csrf, redirect_with, staff};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use kopilka_domain::identity::{mask_email, mask_phone, normalize_email, normalize_phone};
use kopilka_server::services::{cards, otp};
use kopilka_store::members::{self, By, Member};
use kopilka_store::{StoreError, cards as store, new_id, now_s};
use std::net::SocketAddr;

/// The purpose of portal login codes in `otp_codes`.
pub const PURPOSE: &str = "portal";

#[derive(Template, WebTemplate)]
#[template(path = "portal/login.html")]
struct LoginTpl {
    page: Page,
    nav: Nav,
    contact: String,
    error: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "portal/code.html")]
struct CodeTpl {
    page: Page,
    nav: Nav,
    /// The normalised contact, sent back in a hidden field.
    contact: String,
    masked: String,
    error: Option<&'static str>,
}

fn login_tpl(ctx: &Ctx, prog: &Programme, contact: String, error: Option<&'static str>) -> LoginTpl {
    LoginTpl { page: page(ctx, prog, "portal.login.title"), nav: nav(prog, false, ""), contact, error }
}

/// `GET /m/{slug}/login`: the form, or the card when already logged in here.
pub async fn login_page(State(st): State<WebState>, ctx: Ctx, Path(slug): Path<String>, headers: HeaderMap) -> WebResult<Response> {
    let prog = Programme::load(&st, &slug).await?;
    if let Some(s) = session::current(&st, &MEMBER, &headers).await?
        && s.tenant_id == prog.tenant_id
    {
        return Ok(Redirect::to(&format!("/m/{slug}")).into_response());
    }
    Ok(login_tpl(&ctx, &prog, String::new(), None).into_response())
}

/// A contact as typed: an email (with `@`) or a phone number, normalised.
fn parse_contact(s: &str) -> Option<(By, String)> {
    let s = s.trim();
    if s.contains('@') { normalize_email(s).ok().map(|e| (By::Email, e)) } else { normalize_phone(s).ok().map(|p| (By::Phone, p)) }
}

fn masked(by: By, v: &str) -> String {
    if by == By::Email { mask_email(v) } else { mask_phone(v) }
}

fn window(st: &WebState) -> i64 {
    st.cfg.login_window_s
}

/// `POST /m/{slug}/login` (`contact`): send a code.
pub async fn send_code(
    State(st): State<WebState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    f: Form,
) -> WebResult<Response> {
    let prog = Programme::load(&st, &slug).await?;
    let typed = f.get("contact").unwrap_or_default().chars().take(254).collect::<String>();
    let refuse = |status: StatusCode, key: &'static str| (status, login_tpl(&ctx, &prog, typed.clone(), Some(key))).into_response();
    let Some((by, value)) = parse_contact(&typed) else {
        return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, "portal.login.contact_invalid"));
    };
    let ip = staff::client_ip(&st, &headers, Some(peer.ip()));
    let now = now_s();
    let cfg = &st.cfg;
    let limiter = &st.app.limiter;
    let contact_key = format!("portal-code:{}:{}", prog.tenant_id, kopilka_server::input::sha256_hex(&value));
    if !limiter.allow(&format!("portal-code-ip:{ip}"), cfg.login_per_ip, window(&st), now)
        || !limiter.allow(&contact_key, cfg.login_per_account, window(&st), now)
    {
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, "portal.login.limited"));
    }
    let (phone, email) = if by == By::Email { (None, Some(value.as_str())) } else { (Some(value.as_str()), None) };
    let Some((channel, to)) = otp::channel_for(&st.app, phone, email) else {
        return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, if by == By::Email { "portal.login.no_email" } else { "portal.login.no_sms" }));
    };
    let member = {
        let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
        members::find(&mut c, &prog.tenant_id, by, &value).await?
    };
    if let Some(m) = member {
        match send(&st, &ctx, &prog, &m, channel, &to, now).await {
            Ok(()) => {}
            Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => return Ok(refuse(e.status, "portal.login.limited")),
            Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => return Ok(refuse(e.status, "portal.login.not_sent")),
            Err(e) => return Err(e),
        }
    }
    let tpl = CodeTpl {
        page: page(&ctx, &prog, "portal.code.title"),
        nav: nav(&prog, false, ""),
        masked: masked(by, &value),
        contact: value,
        error: None,
    };
    Ok(tpl.into_response())
}

/// Make, store and deliver a code for a member.
async fn send(st: &WebState, ctx: &Ctx, prog: &Programme, m: &Member, channel: &str, to: &str, now: i64) -> WebResult<()> {
    let tenant = prog.tenant_id.as_str();
    let id = new_id();
    let code = otp::new_code();
    let mut tx = st.app.db.begin().await?;
    // Counted under the member's balance lock, so concurrent requests cannot pass it.
    kopilka_store::ledger::lock_balance(&mut tx, tenant, &m.id).await?;
    if store::otp_count_since(tx.conn(), tenant, &m.id, PURPOSE, now - 900).await? >= otp::OTP_SENDS_PER_15_MIN {
        return Err(WebError::new(StatusCode::TOO_MANY_REQUESTS, "portal.login.limited"));
    }
    let (secret, _, _) = cards::settings(tx.conn(), tenant).await?;
    let row = store::Otp {
        id: id.clone(),
        member_id: m.id.clone(),
        purpose: PURPOSE.into(),
        code_hash: otp::hash_with(&secret, &id, &code),
        attempts: 0,
        expires_at: now + otp::OTP_TTL_S,
        used_at: None,
        created_at: now,
    };
    store::insert_otp(tx.conn(), tenant, &row).await?;
    tx.commit().await?;
    let t = ctx.t;
    let text = t.f("portal.message.code", &[("code", &code), ("name", &prog.name)]);
    let subject = t.f1("portal.message.subject", "name", &prog.name);
    if let Err(e) = otp::deliver(&st.app, channel, to, &subject, &text).await {
        let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
        store::delete_otp(&mut c, tenant, &id).await?;
        return Err(e.into());
    }
    tracing::info!(tenant.id = %tenant, member.id = %m.id, channel, "portal login code sent");
    Ok(())
}

/// `POST /m/{slug}/login/code` (`contact`, `code`): check the code and start the session.
pub async fn check_code(
    State(st): State<WebState>,
    ctx: Ctx,
    Path(slug): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    f: Form,
) -> WebResult<Response> {
    let prog = Programme::load(&st, &slug).await?;
    let Some((by, value)) = parse_contact(f.get("contact").unwrap_or_default()) else {
        return Ok(
            (StatusCode::UNPROCESSABLE_ENTITY, login_tpl(&ctx, &prog, String::new(), Some("portal.login.contact_invalid"))).into_response()
        );
    };
    let code: String = f.get("code").unwrap_or_default().chars().filter(|c| !c.is_whitespace()).take(16).collect();
    let refuse = |status: StatusCode, key: &'static str| {
        let tpl = CodeTpl {
            page: page(&ctx, &prog, "portal.code.title"),
            nav: nav(&prog, false, ""),
            masked: masked(by, &value),
            contact: value.clone(),
            error: Some(key),
        };
        (status, tpl).into_response()
    };
    let ip = staff::client_ip(&st, &headers, Some(peer.ip()));
    let now = now_s();
    let limiter = &st.app.limiter;
    let ip_key = format!("portal-verify-ip:{ip}");
    let wrong_key = format!("portal-verify:{}:{}", prog.tenant_id, kopilka_server::input::sha256_hex(&value));
    if limiter.used(&ip_key, window(&st), now) >= st.cfg.login_per_ip
        || limiter.used(&wrong_key, window(&st), now) >= st.cfg.login_per_account.min(otp::OTP_SENDS_PER_15_MIN as u32)
    {
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, "portal.login.limited"));
    }
    let mut tx = st.app.db.begin().await?;
    let tenant = prog.tenant_id.as_str();
    let member = members::find(tx.conn(), tenant, by, &value).await?;
    let mut good = None;
    if let Some(m) = member
        && code.len() == 6
        && let Some(o) = store::live_otp(tx.conn(), tenant, &m.id, PURPOSE, now).await?
        && cards::same(&o.code_hash, &otp::code_hash(tx.conn(), tenant, &o.id, &code).await?)
        && store::use_otp(tx.conn(), tenant, &o.id, now).await?
    {
        good = Some(m);
    }
    let Some(m) = good else {
        tx.rollback().await?;
        // Wrong codes count against the address and the contact.
        limiter.allow(&ip_key, u32::MAX, window(&st), now);
        limiter.allow(&wrong_key, u32::MAX, window(&st), now);
        return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, "portal.code.wrong"));
    };
    tx.commit().await?;
    let (_, cookie) = session::start(&st, &MEMBER, tenant, &m.id, &serde_json::json!({})).await?;
    let (_, csrf_cookie) = csrf::rotate(&st);
    tracing::info!(tenant.id = %tenant, member.id = %m.id, "member logged in to the portal");
    Ok(redirect_with(&format!("/m/{slug}"), [cookie, csrf_cookie]))
}

/// `POST /m/{slug}/logout`.
pub async fn logout(State(st): State<WebState>, Path(slug): Path<String>, headers: HeaderMap) -> WebResult<Response> {
    // The slug goes into a Location header: only a real programme's.
    let prog = Programme::load(&st, &slug).await?;
    let cookie = session::end(&st, &MEMBER, &headers).await?;
    let (_, csrf_cookie) = csrf::rotate(&st);
    Ok(redirect_with(&format!("/m/{}/login", prog.slug), [cookie, csrf_cookie]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_phones_or_emails() {
        assert_eq!(parse_contact(" Anna@Example.COM ").map(|x| x.1), Some("anna@example.com".into()));
        assert!(matches!(parse_contact("+7 (912) 345-67-89"), Some((By::Phone, p)) if p == "+79123456789"));
        assert!(parse_contact("hello").is_none());
        assert!(parse_contact("").is_none());
    }
}
