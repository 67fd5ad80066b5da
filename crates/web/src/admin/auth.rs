//! Logging in and out: email and password, one-time links, setting a password, and the
//! first-run setup that creates the first programme and its owner.

use crate::form::{Fields, Form};
use crate::session::{self, STAFF};
use crate::staff::{self, LoginOutcome, Staff};
use crate::{Ctx, Page, WebResult, WebState, csrf, redirect_with};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kopilka_server::services::{accounts, templates};
use kopilka_store::StoreError;
use std::collections::BTreeMap;
use std::net::SocketAddr;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/login", get(login_page).post(login_submit))
        .route("/admin/login/link/{token}", get(link_page).post(link_submit))
        .route("/admin/logout", post(logout))
        .route("/admin/password", get(password_page).post(password_submit))
        .route("/admin/setup", get(setup_page).post(setup_submit))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/login.html")]
struct LoginTpl {
    page: Page,
    email: String,
    /// Show the programme field (the email has accounts in several programmes).
    ask_programme: bool,
    programme: String,
    error: Option<&'static str>,
    setup_open: bool,
}

async fn setup_open(st: &WebState) -> WebResult<bool> {
    if st.cfg.setup_token.is_none() {
        return Ok(false);
    }
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    Ok(!kopilka_store::web::any_tenant(&mut c).await?)
}

async fn login_page(State(st): State<WebState>, ctx: Ctx, headers: HeaderMap) -> WebResult<Response> {
    // Already logged in: straight to the console.
    if let Ok(Some(_)) = session::current(&st, &STAFF, &headers).await {
        return Ok(Redirect::to("/admin").into_response());
    }
    let page = Page::new(&ctx, "admin", ctx.t.m("admin.login.title"));
    let setup_open = setup_open(&st).await?;
    Ok(LoginTpl { page, email: String::new(), ask_programme: false, programme: String::new(), error: None, setup_open }.into_response())
}

/// Start a staff session for `user` and go to their first page (or to the password page
/// when they have none yet, or came by a login link). The CSRF cookie is replaced with
/// the session.
async fn log_in(st: &WebState, user: &kopilka_store::web::StaffUser, via_link: bool) -> WebResult<Response> {
    let (_, cookie) = session::start(st, &STAFF, &user.tenant_id, &user.id, &serde_json::json!({"link": via_link})).await?;
    let (_, csrf_cookie) = csrf::rotate(st);
    let to = if user.password_hash.is_none() || via_link {
        "/admin/password"
    } else {
        staff::StaffRole::parse(&user.role).map(|r| r.home()).unwrap_or("/admin")
    };
    Ok(redirect_with(to, [cookie, csrf_cookie]))
}

async fn login_submit(
    State(st): State<WebState>,
    ctx: Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    f: Form,
) -> WebResult<Response> {
    let email = f.get("email").map(str::to_owned).unwrap_or_default();
    let programme = f.get("programme").map(str::to_owned).unwrap_or_default();
    let ip = staff::client_ip(&st, &headers, Some(peer.ip()));
    let outcome = staff::login(&st, &ip, &email, f.raw("password"), Some(&programme)).await?;
    let (status, error, ask_programme) = match outcome {
        LoginOutcome::Ok(user) => return log_in(&st, &user, false).await,
        LoginOutcome::Wrong => (StatusCode::UNPROCESSABLE_ENTITY, "admin.login.wrong", !programme.is_empty()),
        LoginOutcome::Limited => (StatusCode::TOO_MANY_REQUESTS, "admin.login.limited", !programme.is_empty()),
        LoginOutcome::Ambiguous => (StatusCode::UNPROCESSABLE_ENTITY, "admin.login.which_programme", true),
    };
    let page = Page::new(&ctx, "admin", ctx.t.m("admin.login.title"));
    let tpl = LoginTpl { page, email, ask_programme, programme, error: Some(error), setup_open: false };
    Ok((status, tpl).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/link.html")]
struct LinkTpl {
    page: Page,
    token: String,
    error: Option<&'static str>,
}

/// A login link opens a page with one button: mail scanners that follow links do not
/// spend it, only the person's POST does.
async fn link_page(ctx: Ctx, Path(token): Path<String>) -> LinkTpl {
    let page = Page::new(&ctx, "admin", ctx.t.m("admin.link.title"));
    LinkTpl { page, token, error: None }
}

async fn link_submit(State(st): State<WebState>, ctx: Ctx, Path(token): Path<String>) -> WebResult<Response> {
    match staff::use_login_link(&st, &token).await? {
        Some(user) => log_in(&st, &user, true).await,
        None => {
            let page = Page::new(&ctx, "admin", ctx.t.m("admin.link.title"));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, LinkTpl { page, token, error: Some("admin.link.used") }).into_response())
        }
    }
}

async fn logout(State(st): State<WebState>, headers: HeaderMap) -> WebResult<Response> {
    let cookie = session::end(&st, &STAFF, &headers).await?;
    let (_, csrf_cookie) = csrf::rotate(&st);
    Ok(redirect_with("/admin/login", [cookie, csrf_cookie]))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/password.html")]
struct PasswordTpl {
    page: Page,
    first: bool,
    error: Option<&'static str>,
}

async fn password_page(ctx: Ctx, staff: Staff) -> PasswordTpl {
    let page = super::page(&ctx, &staff, "", "admin.password.title");
    PasswordTpl { page, first: staff.user.password_hash.is_none() || staff.via_link, error: None }
}

async fn password_submit(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<Response> {
    let first = staff.user.password_hash.is_none() || staff.via_link;
    // Changing a password needs the current one; setting the first one, or a new one in
    // a session a login link started (a forgotten password), does not.
    // Each check of the current password counts against the account's login limit.
    if !first && !staff::allow_account_attempt(&st, &staff.user.email) {
        let page = super::page(&ctx, &staff, "", "admin.password.title");
        return Ok((StatusCode::TOO_MANY_REQUESTS, PasswordTpl { page, first, error: Some("admin.login.limited") }).into_response());
    }
    let current_ok = first || staff::verify_password(f.raw("current"), staff.user.password_hash.as_deref()).await;
    let new = f.raw("password");
    let error = if !current_ok {
        Some("admin.password.current_wrong")
    } else if let Some(p) = staff::password_problem(new) {
        Some(p)
    } else if new != f.raw("password2") {
        Some("admin.password.mismatch")
    } else {
        None
    };
    if let Some(error) = error {
        let page = super::page(&ctx, &staff, "", "admin.password.title");
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, PasswordTpl { page, first, error: Some(error) }).into_response());
    }
    staff::set_password(&st, &staff, new).await?;
    let (_, cookie) = session::start(&st, &STAFF, &staff.tenant.id, &staff.user.id, &serde_json::json!({})).await?;
    let (_, csrf_cookie) = csrf::rotate(&st);
    Ok(redirect_with(staff.role.home(), [cookie, csrf_cookie]))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/setup.html")]
struct SetupTpl {
    page: Page,
    form: Fields,
    templates: Vec<&'static str>,
}

impl SetupTpl {
    fn template_key(&self, name: &str) -> &'static str {
        template_key(name)
    }
}

/// The catalogue key that describes a programme template.
pub fn template_key(name: &str) -> &'static str {
    match name {
        "retail" => "admin.template.retail",
        "discount" => "admin.template.discount",
        "cafe" => "admin.template.cafe",
        "fuel" => "admin.template.fuel",
        "travel" => "admin.template.travel",
        _ => "admin.template.entertainment",
    }
}

#[derive(serde::Deserialize)]
struct SetupQuery {
    code: Option<String>,
}

async fn setup_page(State(st): State<WebState>, ctx: Ctx, Query(q): Query<SetupQuery>) -> WebResult<Response> {
    if !setup_open(&st).await? {
        return Ok(Redirect::to("/admin/login").into_response());
    }
    let mut values = BTreeMap::new();
    values.insert("code".into(), q.code.unwrap_or_default());
    values.insert("template".into(), "retail".into());
    values.insert("time_zone".into(), "Europe/Moscow".into());
    values.insert("currency".into(), "RUB".into());
    values.insert("language".into(), ctx.t.code().into());
    let page = Page::new(&ctx, "admin", ctx.t.m("admin.setup.title"));
    Ok(SetupTpl { page, form: Fields::new(values, BTreeMap::new()), templates: templates::NAMES.to_vec() }.into_response())
}

async fn setup_submit(State(st): State<WebState>, ctx: Ctx, f: Form) -> WebResult<Response> {
    if !setup_open(&st).await? {
        return Ok(Redirect::to("/admin/login").into_response());
    }
    let t = ctx.t;
    let mut errors = BTreeMap::new();
    let expected = st.cfg.setup_token.as_deref().unwrap_or_default();
    let code = f.get("code").unwrap_or_default();
    if expected.is_empty() || !csrf::same(code, expected) {
        errors.insert("code".to_owned(), t.m("admin.setup.code_wrong").to_owned());
    }
    let name = f.get("name").unwrap_or_default().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.insert("name".into(), t.m("admin.setup.name_required").into());
    }
    let template = f.get("template").unwrap_or("retail");
    let program = templates::template(template);
    if program.is_none() {
        errors.insert("template".into(), t.m("admin.setup.template_unknown").into());
    }
    let email = staff::normalize_email(f.get("email").unwrap_or_default());
    if email.is_none() {
        errors.insert("email".into(), t.m("admin.setup.email_invalid").into());
    }
    let password = f.raw("password");
    if let Some(p) = staff::password_problem(password) {
        errors.insert("password".into(), t.m(p).into());
    } else if password != f.raw("password2") {
        errors.insert("password2".into(), t.m("admin.password.mismatch").into());
    }
    // The template with the owner's time zone, currency and language, validated as any
    // programme is.
    let mut program = program.unwrap_or_default();
    program.time_zone = f.get("time_zone").unwrap_or("UTC").to_owned();
    program.currency = f.get("currency").unwrap_or("RUB").to_uppercase();
    program.language = if f.get("language") == Some("ru") { crate::i18n::Lang::Ru } else { crate::i18n::Lang::En };
    let program = match program.normalize() {
        Ok(p) => Some(p),
        Err(e) => {
            let currency = f.get("currency").unwrap_or("RUB").to_uppercase();
            for (k, v) in e {
                let msg = super::programme::field_message(&k, &v, t, &currency);
                errors.insert(k, msg);
            }
            None
        }
    };
    let render = |errors: BTreeMap<String, String>, status: StatusCode| {
        let page = Page::new(&ctx, "admin", t.m("admin.setup.title"));
        let mut values = f.0.clone();
        values.remove("password");
        values.remove("password2");
        (status, SetupTpl { page, form: Fields::new(values, errors), templates: templates::NAMES.to_vec() }).into_response()
    };
    let (Some(program), Some(email), true) = (program, email, errors.is_empty()) else {
        return Ok(render(errors, StatusCode::UNPROCESSABLE_ENTITY));
    };
    let password_hash = staff::hash_password(password).await?;
    let created = accounts::create_tenant_with(
        &st.app.db,
        accounts::NewTenant {
            name: &name,
            slug: None,
            template,
            program,
            admin_key: false,
            owner: Some(accounts::NewOwner { email, password_hash: Some(password_hash) }),
            actor: "setup",
        },
    )
    .await;
    let created = match created {
        Ok(c) => c,
        Err(e) if e.status.is_client_error() => {
            let mut errors = BTreeMap::new();
            for (k, v) in &e.fields {
                errors.insert(k.clone(), v.clone());
            }
            errors.entry("name".into()).or_insert(e.message);
            return Ok(render(errors, e.status));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(tenant.id = %created.tenant_id, "first-run setup created the first programme");
    let owner = created.owner_id.unwrap_or_default();
    let (_, cookie) = session::start(&st, &STAFF, &created.tenant_id, &owner, &serde_json::json!({})).await?;
    let (_, csrf_cookie) = csrf::rotate(&st);
    Ok(redirect_with("/admin", [cookie, csrf_cookie]))
}
