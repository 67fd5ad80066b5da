//! Browser sessions for every web area, and cookies.
//!
//! A session is a row in `web_sessions` (crates/store/src/web.rs) found by the SHA-256 of
//! a 256-bit random token; the token itself lives only in the browser's cookie. Each
//! area has its own [`Kind`]: its cookie name and how long a session lives. Cookies are
//! `HttpOnly; SameSite=Lax; Path=/`, and when the public URL is https also `Secure` with
//! the `__Host-` prefix (so no subdomain can plant one).
//!
//! An area reads its session with [`current`] (the staff area wraps it in the
//! [`crate::staff::Staff`] extractor), starts one with [`start`] and ends it with [`end`].

use crate::WebState;
use axum::http::{HeaderMap, HeaderValue, header};
use kopilka_server::error::ApiError;
use kopilka_store::web::{self as rows, Session};
use kopilka_store::{StoreError, new_id, now_s};

/// An area's sessions.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// Stored in `web_sessions.kind`.
    pub name: &'static str,
    /// The cookie's name without the `__Host-` prefix.
    pub cookie: &'static str,
    /// A session unused this long ends.
    pub idle_s: i64,
    /// A session ends this long after it started, however busy.
    pub max_s: i64,
    /// Whether the cookie outlives the browser (Max-Age) or is a browser-session cookie.
    pub persistent: bool,
}

/// The admin console: a browser-session cookie, 12 hours idle, 7 days at most.
pub const STAFF: Kind = Kind { name: "staff", cookie: "kp_staff", idle_s: 12 * 3600, max_s: 7 * 86400, persistent: false };
/// The member portal on a phone: 30 days idle, 90 days at most.
pub const MEMBER: Kind = Kind { name: "member", cookie: "kp_member", idle_s: 30 * 86400, max_s: 90 * 86400, persistent: true };
/// The cashier terminal on a shop's tablet: 16 hours idle (a shift), 30 days at most.
pub const TILL: Kind = Kind { name: "till", cookie: "kp_till", idle_s: 16 * 3600, max_s: 30 * 86400, persistent: true };

/// How often a busy session's expiry is pushed forward (not on every request).
const TOUCH_EVERY_S: i64 = 300;

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The cookie's full name: `__Host-` prefixed when cookies are secure.
pub fn cookie_name(st: &WebState, base: &str) -> String {
    if st.cfg.secure { format!("__Host-{base}") } else { base.to_owned() }
}

/// A `Set-Cookie` value; `max_age_s` None makes a browser-session cookie, Some(0) deletes.
pub fn set_cookie(st: &WebState, base: &str, value: &str, max_age_s: Option<i64>) -> HeaderValue {
    let mut c = format!("{}={value}; Path=/; HttpOnly; SameSite=Lax", cookie_name(st, base));
    if let Some(s) = max_age_s {
        c.push_str(&format!("; Max-Age={s}"));
    }
    if st.cfg.secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie values are ASCII")
}

/// 256 random bits as 64 hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    kopilka_server::input::sha256_hex(token)
}

fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Start a session of `kind` for `subject` in `tenant`; answers the row and the
/// `Set-Cookie` header that carries its token.
pub async fn start(
    st: &WebState,
    kind: &Kind,
    tenant: &str,
    subject: &str,
    data: &serde_json::Value,
) -> Result<(Session, HeaderValue), ApiError> {
    let token = random_token();
    let now = now_s();
    let s = Session {
        tenant_id: tenant.to_owned(),
        id: new_id(),
        kind: kind.name.to_owned(),
        subject_id: subject.to_owned(),
        data: data.to_string(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + kind.idle_s.min(kind.max_s),
    };
    let mut tx = st.app.db.begin().await?;
    rows::insert_session(tx.conn(), &s, &hash_token(&token)).await?;
    // Expired rows of the tenant go when someone logs in: no job needed.
    rows::purge_expired(tx.conn(), tenant, now).await?;
    tx.commit().await?;
    let cookie = set_cookie(st, kind.cookie, &token, kind.persistent.then_some(kind.max_s));
    Ok((s, cookie))
}

/// The request's live session of `kind`, its expiry slid forward when due.
pub async fn current(st: &WebState, kind: &Kind, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
    let Some(token) = cookie(headers, &cookie_name(st, kind.cookie)).filter(|t| well_formed(t)) else { return Ok(None) };
    let now = now_s();
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let Some(mut s) = rows::session_by_hash(&mut c, &hash_token(token), now).await?.filter(|s| s.kind == kind.name) else {
        return Ok(None);
    };
    if now - s.last_seen_at >= TOUCH_EVERY_S {
        let expires_at = (now + kind.idle_s).min(s.created_at + kind.max_s);
        drop(c);
        let mut tx = st.app.db.begin().await?;
        rows::touch_session(tx.conn(), &s.tenant_id, &s.id, now, expires_at).await?;
        tx.commit().await?;
        s.last_seen_at = now;
        s.expires_at = expires_at;
    }
    Ok(Some(s))
}

/// End the request's session of `kind` (if any); answers the `Set-Cookie` that deletes
/// the cookie.
pub async fn end(st: &WebState, kind: &Kind, headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    if let Some(s) = current(st, kind, headers).await? {
        let mut tx = st.app.db.begin().await?;
        rows::delete_session(tx.conn(), &s.tenant_id, &s.id).await?;
        tx.commit().await?;
    }
    Ok(set_cookie(st, kind.cookie, "", Some(0)))
}

/// Replace the session's area data (JSON).
pub async fn set_data(st: &WebState, s: &Session, data: &serde_json::Value) -> Result<(), ApiError> {
    let mut tx = st.app.db.begin().await?;
    rows::set_session_data(tx.conn(), &s.tenant_id, &s.id, &data.to_string()).await?;
    tx.commit().await?;
    Ok(())
}
