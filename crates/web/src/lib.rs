//! Kopilka's web UI: server-rendered pages (askama templates, htmx for small updates) on
//! top of the server's services. No page reaches the database except through a service
//! or a tenant-scoped store function, and no asset comes from a CDN.
//!
//! - [`session`]: browser sessions of every area (staff, member, till) and cookies;
//! - [`csrf`]: the CSRF guard every state-changing request passes;
//! - [`i18n`]: Russian and English catalogues, money and dates for the locale;
//! - [`assets`]: the vendored JS and CSS, served with cache headers;
//! - [`staff`]: staff accounts, roles and their permissions, login, login links;
//! - [`admin`]: the admin console (`/admin`);
//! - [`portal`]: the member portal (`/m/{programme}`);
//! - [`till`]: the cashier terminal (`/till`).
//!
//! Each area has its own folder, merged in [`router`]. docs/web.md says how to add a page.

pub mod admin;
pub mod assets;
pub mod csrf;
pub mod form;
pub mod i18n;
pub mod portal;
pub mod session;
pub mod staff;
pub mod till;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use i18n::Tr;
use kopilka_server::AppState;
use kopilka_server::error::ApiError;
use std::sync::Arc;

/// Settings of the web UI.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The public base URL (`KOPILKA_PUBLIC_URL`): links printed for staff, and whether
    /// cookies are `Secure` (https).
    pub public_url: String,
    pub secure: bool,
    /// The first-run setup code (`/admin/setup` works only while no tenant exists, and only
    /// with this code). None disables the page.
    pub setup_token: Option<String>,
    /// A header holding the client's address that a trusted reverse proxy sets (e.g.
    /// `x-real-ip`); None uses the peer address. Used only by the login rate limits.
    pub client_ip_header: Option<String>,
    /// Login attempts allowed per window, per client address and per account.
    pub login_per_ip: u32,
    pub login_per_account: u32,
    pub login_window_s: i64,
}

impl WebConfig {
    pub fn new(public_url: &str) -> WebConfig {
        let public_url = public_url.trim_end_matches('/').to_owned();
        WebConfig {
            secure: public_url.starts_with("https://"),
            public_url,
            setup_token: None,
            client_ip_header: None,
            login_per_ip: 30,
            login_per_account: 10,
            login_window_s: 900,
        }
    }

    /// From the environment (docs/operations.md): `KOPILKA_SETUP_TOKEN`,
    /// `KOPILKA_CLIENT_IP_HEADER`.
    pub fn from_env(public_url: &str) -> WebConfig {
        let var = |k: &str| std::env::var(k).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut c = WebConfig::new(public_url);
        c.setup_token = var("KOPILKA_SETUP_TOKEN");
        c.client_ip_header = var("KOPILKA_CLIENT_IP_HEADER").map(|h| h.to_ascii_lowercase());
        c
    }
}

/// The state of every web handler: the server's state and the web settings.
#[derive(Clone)]
pub struct WebState {
    pub app: AppState,
    pub cfg: Arc<WebConfig>,
}

/// The web UI's routes, to merge into the API's router
/// (`kopilka_server::serve_with(listener, state, kopilka_web::router(state, cfg), …)`).
pub fn router(app: AppState, cfg: WebConfig) -> Router<AppState> {
    let st = WebState { app, cfg: Arc::new(cfg) };
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/admin") }))
        .route("/lang", post(switch_lang))
        .merge(admin::routes())
        .merge(portal::routes())
        .merge(till::routes())
        .layer(middleware::from_fn_with_state(st.clone(), csrf::guard))
        .layer(middleware::from_fn_with_state(st.clone(), page_layer));
    Router::new().merge(pages).merge(assets::routes()).with_state(st)
}

/// What every page handler needs to render: the reader's language, the CSRF token and
/// the current path (the language switch comes back to it).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub t: Tr,
    pub csrf: String,
    pub path: String,
}

impl FromRequestParts<WebState> for Ctx {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _st: &WebState) -> Result<Self, Self::Rejection> {
        let csrf = parts.extensions.get::<csrf::CsrfToken>().map(|t| t.0.clone()).unwrap_or_default();
        let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
        Ok(Ctx { t: Tr::new(i18n::lang_from_headers(&parts.headers)), csrf, path })
    }
}

/// The frame of a page, for base.html: every page template has a `page: Page` field.
#[derive(Debug, Clone)]
pub struct Page {
    pub t: Tr,
    pub csrf: String,
    pub path: String,
    pub title: String,
    /// `admin`, `portal`, `till`: a CSS class on `<body>`.
    pub area: &'static str,
    /// The admin console's navigation, when a staff member is logged in.
    pub nav: Option<admin::Nav>,
    /// A one-line notice shown above the content ("Saved").
    pub notice: Option<String>,
}

impl Page {
    pub fn new(ctx: &Ctx, area: &'static str, title: impl Into<String>) -> Page {
        Page { t: ctx.t, csrf: ctx.csrf.clone(), path: ctx.path.clone(), title: title.into(), area, nav: None, notice: None }
    }

    /// The URL of an asset under `crates/web/assets/`, with its content hash.
    pub fn asset(&self, path: &str) -> String {
        assets::url(path)
    }
}

/// An error page: the status and a catalogue key (rendered in the reader's language by
/// the page layer), with an optional detail in plain text.
#[derive(Debug, Clone)]
pub struct WebError {
    pub status: StatusCode,
    pub key: &'static str,
    pub detail: Option<String>,
}

impl WebError {
    pub fn new(status: StatusCode, key: &'static str) -> WebError {
        WebError { status, key, detail: None }
    }

    pub fn not_found() -> WebError {
        WebError::new(StatusCode::NOT_FOUND, "common.error.not_found")
    }

    pub fn forbidden() -> WebError {
        WebError::new(StatusCode::FORBIDDEN, "common.error.forbidden")
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        let key = match e.status.as_u16() {
            404 => "common.error.not_found",
            403 => "common.error.forbidden",
            429 => "common.error.rate_limited",
            s if s >= 500 => "common.error.internal",
            _ => "common.error.bad_request",
        };
        let detail = e.status.is_client_error().then_some(e.message);
        WebError { status: e.status, key, detail }
    }
}

impl From<kopilka_store::StoreError> for WebError {
    fn from(e: kopilka_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

pub type WebResult<T> = Result<T, WebError>;

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "error.html")]
struct ErrorTpl {
    page: Page,
    message: String,
    detail: Option<String>,
    status: u16,
}

/// Around every page: render [`WebError`]s in the reader's language, and add the
/// security headers (no framing, no sniffing, no referrer, scripts only from here).
async fn page_layer(State(_st): State<WebState>, req: Request, next: Next) -> Response {
    let t = Tr::new(i18n::lang_from_headers(req.headers()));
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    let csrf = resp.extensions().get::<csrf::CsrfToken>().map(|c| c.0.clone()).unwrap_or_default();
    if let Some(e) = resp.extensions_mut().remove::<WebError>() {
        let set_cookies: Vec<HeaderValue> = resp.headers().get_all(header::SET_COOKIE).iter().cloned().collect();
        let ctx = Ctx { t, csrf, path };
        let page = Page::new(&ctx, "error", t.m(e.key));
        let tpl = ErrorTpl { message: t.m(e.key).to_owned(), detail: e.detail, status: e.status.as_u16(), page };
        resp = (e.status, tpl).into_response();
        for c in set_cookies {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    let h = resp.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
             media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// `POST /lang` (`lang` = en | ru, `back` = the page to return to): remember the choice
/// for a year.
async fn switch_lang(State(st): State<WebState>, form::Form(f): form::Form) -> Response {
    let lang = match f.get("lang").map(String::as_str) {
        Some("ru") => "ru",
        _ => "en",
    };
    let back = f.get("back").map(String::as_str).filter(|b| local_path(b)).unwrap_or("/admin").to_owned();
    let cookie =
        format!("{}={lang}; Path=/; SameSite=Lax; Max-Age=31536000{}", i18n::LANG_COOKIE, if st.cfg.secure { "; Secure" } else { "" });
    let mut resp = Redirect::to(&back).into_response();
    resp.headers_mut().append(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ascii cookie"));
    resp
}

/// A path on this site (no scheme, no host, no `//`), safe to redirect to. No control
/// characters: browsers drop tabs and newlines from URLs (`/<TAB>/host` is `//host`), and
/// the others cannot be in a Location header.
pub fn local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") && !p.chars().any(char::is_control)
}

/// A `303 See Other` to `to` with extra `Set-Cookie` headers.
pub fn redirect_with(to: &str, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut resp = Redirect::to(to).into_response();
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}
