//! Cross-site request forgery protection for every state-changing request of the web UI.
//!
//! Each browser holds a random `kp_csrf` cookie (HttpOnly, SameSite=Lax, `__Host-` when
//! secure), set on its first visit and replaced whenever a session starts or ends, so the
//! token of a logged-in session is its own. The token is the SHA-256 of the cookie: every
//! page gets it as [`CsrfToken`] (through [`crate::Ctx`]), every form sends it in a
//! hidden `_csrf` field, and htmx sends it in the `X-CSRF-Token` header (set once on
//! `<body hx-headers>` in base.html). [`guard`] checks it on every POST, PUT, PATCH and
//! DELETE that reaches the web router, before any handler runs, so no handler can forget.
//! A request a browser marks `Sec-Fetch-Site: cross-site` is refused outright.

use crate::WebState;
use crate::session::{cookie, cookie_name, random_token, set_cookie};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub const COOKIE: &str = "kp_csrf";
/// The form field that carries the token.
pub const FIELD: &str = "_csrf";
/// The header that carries the token (htmx).
pub const HEADER: &str = "x-csrf-token";
/// The largest form the guard reads to find the token.
const FORM_LIMIT_BYTES: usize = 1024 * 1024;

/// The token for this request's pages.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

fn token_for(secret: &str) -> String {
    kopilka_server::input::sha256_hex(&format!("kopilka-csrf:{secret}"))
}

/// A fresh CSRF secret cookie (sent when a session starts or ends).
pub fn rotate(st: &WebState) -> (String, HeaderValue) {
    let secret = random_token();
    let token = token_for(&secret);
    (token, set_cookie(st, COOKIE, &secret, None))
}

/// Compare two secrets in constant time (for equal lengths).
pub fn same(a: &str, b: &str) -> bool {
    kopilka_server::services::cards::same(a, b)
}

/// The middleware: give every request its token (setting the cookie on a first visit),
/// and refuse an unsafe request whose token is missing or wrong with 403.
pub async fn guard(State(st): State<WebState>, req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), &cookie_name(&st, COOKIE)).filter(|s| s.len() == 64).map(str::to_owned);
    let (secret, new_cookie) = match existing {
        Some(s) => (s, None),
        None => {
            let s = random_token();
            let c = set_cookie(&st, COOKIE, &s, None);
            (s, Some(c))
        }
    };
    let token = token_for(&secret);
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut req = req;
    if unsafe_method {
        let cross_site = req.headers().get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"cross-site");
        let (parts, body) = req.into_parts();
        let mut sent = parts.headers.get(HEADER).and_then(|h| h.to_str().ok()).map(str::to_owned);
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        let bytes = match to_bytes(body, FORM_LIMIT_BYTES).await {
            Ok(b) => b,
            Err(_) => return crate::WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "common.error.bad_request").into_response(),
        };
        if sent.is_none() && is_form {
            sent = crate::form::parse(&bytes).and_then(|mut f| f.remove(FIELD));
        }
        let ok = !cross_site && new_cookie.is_none() && sent.is_some_and(|s| same(&s, &token));
        if !ok {
            tracing::info!(method = %parts.method, "web request refused: CSRF token missing or wrong");
            let mut resp = crate::WebError::new(StatusCode::FORBIDDEN, "common.error.csrf").into_response();
            resp.extensions_mut().insert(CsrfToken(token));
            if let Some(c) = new_cookie {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            return resp;
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut resp = next.run(req).await;
    // The page layer (outside this guard) renders error pages with it.
    resp.extensions_mut().insert(CsrfToken(token));
    let rotated = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with(&format!("{}=", cookie_name(&st, COOKIE)))));
    if let (Some(c), false) = (new_cookie, rotated) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}
