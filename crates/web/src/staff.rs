//! Staff accounts of the admin console: roles and what each may do, passwords (argon2id),
//! logging in with its rate limits, one-time login links, and the [`Staff`] extractor that
//! every admin page takes.
//!
//! ## Roles and the API's permissions
//!
//! | role | acts with API role | may do in the console |
//! |---|---|---|
//! | owner | `admin` | everything: staff accounts, stores and till keys, the programme, campaigns and coupons, rewards, the card design, members and adjustments, receipts with refund and void, the dashboard |
//! | marketer | `admin` | the programme, campaigns and coupons, rewards, the card design, members (unmasked) and adjustments, receipts (read), the dashboard |
//! | cashier | `pos`, bound to the receipt's store | members (masked, as a till sees them), receipts with refund and void |
//! | analyst | `analyst` | read-only: the dashboard and its CSV, the programme, campaigns, coupons, rewards, the card design, members (unmasked), receipts |
//!
//! A page checks [`Perm`] with [`Staff::require`]; the service it then calls gets an
//! [`Auth`] of the role's API permissions ([`Staff::auth`]), so the services' own checks
//! (admin only, masked personal data) hold for staff exactly as for API keys.

use crate::session::{self, STAFF};
use crate::{WebError, WebState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use kopilka_server::auth::{Auth, Role};
use kopilka_server::error::ApiError;
use kopilka_store::tenants::{self, Tenant};
use kopilka_store::web::{self as rows, StaffUser};
use kopilka_store::{StoreError, new_id, now_s};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRole {
    Owner,
    Marketer,
    Cashier,
    Analyst,
}

/// What a page may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// The dashboard and its CSV exports.
    Dashboard,
    /// Read the programme settings.
    ProgrammeView,
    /// Change the programme settings.
    ProgrammeEdit,
    /// Stores and till (API) keys.
    Stores,
    /// Staff accounts.
    Staff,
    /// Search and read members (masked for a cashier).
    Members,
    /// Adjust a member's points.
    Adjust,
    /// Search and read receipts.
    Receipts,
    /// Refund and void receipts.
    Refund,
    /// Read campaigns, coupons, the rewards catalogue and its redemptions, the card design.
    OffersView,
    /// Change them: campaigns, coupons, rewards, fulfil and cancel redemptions, the card design.
    OffersEdit,
}

impl StaffRole {
    pub const ALL: [StaffRole; 4] = [StaffRole::Owner, StaffRole::Marketer, StaffRole::Cashier, StaffRole::Analyst];

    pub fn parse(s: &str) -> Option<StaffRole> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Owner => "owner",
            StaffRole::Marketer => "marketer",
            StaffRole::Cashier => "cashier",
            StaffRole::Analyst => "analyst",
        }
    }

    /// The API role whose permissions the services apply.
    pub fn api_role(self) -> Role {
        match self {
            StaffRole::Owner | StaffRole::Marketer => Role::Admin,
            StaffRole::Cashier => Role::Pos,
            StaffRole::Analyst => Role::Analyst,
        }
    }

    pub fn can(self, p: Perm) -> bool {
        use Perm::*;
        match self {
            StaffRole::Owner => true,
            StaffRole::Marketer => {
                matches!(p, Dashboard | ProgrammeView | ProgrammeEdit | Members | Adjust | Receipts | OffersView | OffersEdit)
            }
            StaffRole::Cashier => matches!(p, Members | Receipts | Refund),
            StaffRole::Analyst => matches!(p, Dashboard | ProgrammeView | Members | Receipts | OffersView),
        }
    }

    /// The console's first page for this role.
    pub fn home(self) -> &'static str {
        if self.can(Perm::Dashboard) { "/admin" } else { "/admin/members" }
    }
}

/// The logged-in staff member of an admin request. Taking it as an argument makes a
/// handler require a staff session: without one, a GET is sent to the login page and
/// anything else gets 401.
#[derive(Debug, Clone)]
pub struct Staff {
    pub tenant: Tenant,
    pub user: StaffUser,
    pub role: StaffRole,
    pub session_id: String,
    /// The session was started by a one-time login link (which may set a new password
    /// without the forgotten one).
    pub via_link: bool,
}

impl Staff {
    /// 403 unless the role may do `p`.
    pub fn require(&self, p: Perm) -> Result<(), WebError> {
        if self.role.can(p) { Ok(()) } else { Err(WebError::forbidden()) }
    }

    pub fn can(&self, p: Perm) -> bool {
        self.role.can(p)
    }

    /// The API permissions of this staff member, for calling a service.
    pub fn auth(&self) -> Auth {
        Auth::for_staff(&self.tenant.id, &self.user.id, self.role.api_role(), None)
    }

    /// As [`Staff::auth`], bound to one store (a cashier's refund acts at the receipt's store).
    pub fn auth_at(&self, store_id: &str) -> Auth {
        Auth::for_staff(&self.tenant.id, &self.user.id, self.role.api_role(), Some(store_id.to_owned()))
    }

    /// The audit log's actor.
    pub fn actor(&self) -> String {
        self.auth().actor()
    }
}

/// Why a request has no staff member.
pub enum NoStaff {
    Login,
    Error(WebError),
}

impl IntoResponse for NoStaff {
    fn into_response(self) -> Response {
        match self {
            NoStaff::Login => Redirect::to("/admin/login").into_response(),
            NoStaff::Error(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<WebState> for Staff {
    type Rejection = NoStaff;

    async fn from_request_parts(parts: &mut Parts, st: &WebState) -> Result<Self, Self::Rejection> {
        let missing = || {
            if parts.method == Method::GET {
                NoStaff::Login
            } else {
                NoStaff::Error(WebError::new(StatusCode::UNAUTHORIZED, "common.error.login"))
            }
        };
        let s = session::current(st, &STAFF, &parts.headers).await.map_err(|e| NoStaff::Error(e.into()))?;
        let Some(s) = s else { return Err(missing()) };
        let load = async {
            let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
            let user = rows::staff_by_id(&mut c, &s.tenant_id, &s.subject_id).await?;
            let tenant = tenants::tenant_by_id(&mut c, &s.tenant_id).await?;
            Ok::<_, StoreError>((user, tenant))
        };
        let (user, tenant) = load.await.map_err(|e| NoStaff::Error(e.into()))?;
        match (user, tenant) {
            (Some(user), Some(tenant)) if user.disabled_at.is_none() => {
                let Some(role) = StaffRole::parse(&user.role) else { return Err(missing()) };
                let via_link = serde_json::from_str::<serde_json::Value>(&s.data).is_ok_and(|d| d["link"] == true);
                Ok(Staff { tenant, user, role, session_id: s.id, via_link })
            }
            _ => Err(missing()),
        }
    }
}

/// Normalise an email for lookups (trimmed, lower-cased), as members' emails are; None
/// when it does not look like an email.
pub fn normalize_email(s: &str) -> Option<String> {
    kopilka_domain::identity::normalize_email(s).ok()
}

/// Passwords: at least 10 characters, at most 200.
pub const PASSWORD_MIN_CHARS: usize = 10;
pub const PASSWORD_MAX_CHARS: usize = 200;

/// The catalogue key of what is wrong with a new password, if anything.
pub fn password_problem(pw: &str) -> Option<&'static str> {
    let n = pw.chars().count();
    if n < PASSWORD_MIN_CHARS {
        Some("admin.password.too_short")
    } else if n > PASSWORD_MAX_CHARS {
        Some("admin.password.too_long")
    } else {
        None
    }
}

/// Hash a password with argon2id (the crate's default parameters: 19 MiB, 2 passes), on
/// a blocking thread.
pub async fn hash_password(pw: &str) -> Result<String, ApiError> {
    let pw = pw.to_owned();
    tokio::task::spawn_blocking(move || password::hash(&pw)).await.map_err(ApiError::internal)?.map_err(ApiError::internal)
}

/// Check a password against a stored hash, on a blocking thread. With no hash, a dummy
/// hash is checked so that an unknown account takes as long as a wrong password.
pub async fn verify_password(pw: &str, hash: Option<&str>) -> bool {
    let pw = pw.to_owned();
    let hash = hash.map(str::to_owned);
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => password::verify(&pw, &h),
        None => {
            let _ = password::verify(&pw, password::dummy());
            false
        }
    })
    .await
    .unwrap_or(false)
}

mod password {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};
    use argon2::{Argon2, PasswordHash};
    use std::sync::LazyLock;

    pub fn hash(pw: &str) -> Result<String, String> {
        Argon2::default().hash_password(pw.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
    }

    pub fn verify(pw: &str, hash: &str) -> bool {
        match PasswordHash::new(hash) {
            Ok(h) => Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
            Err(_) => false,
        }
    }

    static DUMMY: LazyLock<String> = LazyLock::new(|| hash("not a password of anyone").unwrap_or_default());

    pub fn dummy() -> &'static str {
        &DUMMY
    }
}

pub enum LoginOutcome {
    Ok(StaffUser),
    /// Unknown email, wrong password or a disabled account (not told apart).
    Wrong,
    /// Too many attempts from this address or for this account.
    Limited,
    /// The email and password fit accounts of several programmes: the form asks which.
    Ambiguous,
}

/// The client's address for rate limits: the trusted proxy header when configured, else
/// the peer.
pub fn client_ip(st: &WebState, parts_headers: &axum::http::HeaderMap, peer: Option<IpAddr>) -> String {
    if let Some(h) = &st.cfg.client_ip_header
        && let Some(v) = parts_headers.get(h.as_str()).and_then(|v| v.to_str().ok())
        && let Some(first) = v.split(',').next().map(str::trim).filter(|s| !s.is_empty())
    {
        return first.chars().take(64).collect();
    }
    peer.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into())
}

/// Count a password attempt against the account of this (normalised) email; false when
/// its window is full.
pub fn allow_account_attempt(st: &WebState, email: &str) -> bool {
    let key = format!("web-login-account:{}", kopilka_server::input::sha256_hex(email));
    st.app.limiter.allow(&key, st.cfg.login_per_account, st.cfg.login_window_s, now_s())
}

/// Log in with email and password (and the programme's slug when the email has accounts
/// in several). Every attempt counts against the address's and the account's limits.
pub async fn login(st: &WebState, ip: &str, email: &str, password: &str, programme: Option<&str>) -> Result<LoginOutcome, ApiError> {
    let email = normalize_email(email).unwrap_or_else(|| email.trim().to_lowercase());
    let now = now_s();
    let cfg = &st.cfg;
    let by_ip = st.app.limiter.allow(&format!("web-login-ip:{ip}"), cfg.login_per_ip, cfg.login_window_s, now);
    let by_account = by_ip && allow_account_attempt(st, &email);
    if !by_ip || !by_account {
        return Ok(LoginOutcome::Limited);
    }
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let mut accounts = rows::staff_by_email_any_tenant(&mut c, &email, 20).await?;
    if let Some(slug) = programme.map(str::trim).filter(|s| !s.is_empty()) {
        let tenant = tenants::tenant_by_slug(&mut c, &slug.to_lowercase()).await?;
        accounts.retain(|a| tenant.as_ref().is_some_and(|t| t.id == a.tenant_id));
    }
    drop(c);
    accounts.retain(|a| a.disabled_at.is_none());
    if accounts.is_empty() {
        verify_password(password, None).await;
        return Ok(LoginOutcome::Wrong);
    }
    let mut matched = Vec::new();
    for a in accounts {
        if verify_password(password, a.password_hash.as_deref()).await {
            matched.push(a);
        }
    }
    Ok(match matched.len() {
        0 => LoginOutcome::Wrong,
        1 => LoginOutcome::Ok(matched.remove(0)),
        _ => LoginOutcome::Ambiguous,
    })
}

/// How long a one-time login link works.
pub const LOGIN_LINK_TTL_S: i64 = 24 * 3600;

/// Make a one-time login link for a staff account; answers the full URL (shown once).
pub async fn create_login_link(db: &kopilka_store::Db, public_url: &str, tenant: &str, staff_id: &str) -> Result<String, ApiError> {
    let token = session::random_token();
    let now = now_s();
    let link = rows::LoginLink {
        tenant_id: tenant.to_owned(),
        id: new_id(),
        staff_id: staff_id.to_owned(),
        expires_at: now + LOGIN_LINK_TTL_S,
        used_at: None,
        created_at: now,
    };
    let mut tx = db.begin().await?;
    rows::insert_login_link(tx.conn(), &link, &session::hash_token(&token)).await?;
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor: "cli",
            action: "staff.login_link",
            object_type: "staff",
            object_id: staff_id,
            details: &serde_json::json!({}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(format!("{}/admin/login/link/{token}", public_url.trim_end_matches('/')))
}

/// Spend a login link; answers the staff account it logs in, if the link was good.
pub async fn use_login_link(st: &WebState, token: &str) -> Result<Option<StaffUser>, ApiError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let mut tx = st.app.db.begin().await?;
    let Some(link) = rows::use_login_link(tx.conn(), &session::hash_token(token), now_s()).await? else { return Ok(None) };
    let user = rows::staff_by_id(tx.conn(), &link.tenant_id, &link.staff_id).await?.filter(|u| u.disabled_at.is_none());
    if user.is_some() {
        tx.commit().await?;
    }
    Ok(user)
}

/// Create a staff account in a tenant (without a password: the person sets one through the
/// login link they are given).
pub async fn create_staff(db: &kopilka_store::Db, tenant: &str, actor: &str, email: &str, role: StaffRole) -> Result<StaffUser, ApiError> {
    let email = normalize_email(email).ok_or_else(|| ApiError::field("email", "must be an email address"))?;
    let now = now_s();
    let user = StaffUser {
        tenant_id: tenant.to_owned(),
        id: new_id(),
        email,
        name: None,
        password_hash: None,
        role: role.as_str().into(),
        disabled_at: None,
        created_at: now,
    };
    let mut tx = db.begin().await?;
    match rows::insert_staff(tx.conn(), &user).await {
        Err(StoreError::Unique(_)) => return Err(ApiError::conflict("staff_exists", "a staff account with this email already exists")),
        other => other?,
    }
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor,
            action: "staff.create",
            object_type: "staff",
            object_id: &user.id,
            details: &serde_json::json!({"role": user.role}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Set a staff member's password, end every session of theirs (the caller starts a fresh
/// one for this browser) and revoke their unused login links (a link logs in without the
/// password, and lets its holder set a new one).
pub async fn set_password(st: &WebState, staff: &Staff, password: &str) -> Result<(), ApiError> {
    let hash = hash_password(password).await?;
    let mut tx = st.app.db.begin().await?;
    rows::set_staff_password(tx.conn(), &staff.tenant.id, &staff.user.id, &hash).await?;
    rows::delete_sessions_of(tx.conn(), &staff.tenant.id, STAFF.name, &staff.user.id).await?;
    rows::revoke_login_links(tx.conn(), &staff.tenant.id, &staff.user.id, now_s()).await?;
    tenants::audit(
        tx.conn(),
        &staff.tenant.id,
        &tenants::Audit {
            actor: &staff.actor(),
            action: "staff.password",
            object_type: "staff",
            object_id: &staff.user.id,
            details: &serde_json::json!({}),
            at: now_s(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
