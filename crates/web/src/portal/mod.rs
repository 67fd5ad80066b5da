//! The member portal, `/m/{programme}`: a member logs in with a one-time code sent by SMS
//! or email and sees the card with its QR code, the balance, pending and expiring points,
//! the history, the tier, offers and rewards, consents, and the programme's rules.
//!
//! `{programme}` is the tenant's public slug, as in `/join/{slug}` and `/c/{slug}/…`. A
//! member session (`web_sessions.kind = member`) belongs to one tenant: the [`Portal`]
//! extractor accepts it only under that tenant's slug, so a member never sees another
//! programme's pages as logged in. Every read goes through the server's services with
//! the session's tenant and member, never ids taken from the request.

mod login;
mod pages;

use crate::session::{self, MEMBER};
use crate::{Ctx, Page, WebError, WebState};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kopilka_domain::program::Program;
use kopilka_server::auth::{Auth, Role};
use kopilka_server::services::{cards, enrol};
use kopilka_store::StoreError;
use kopilka_store::members::Member;
use std::sync::Arc;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/m/{slug}", get(pages::home))
        .route("/m/{slug}/login", get(login::login_page).post(login::send_code))
        .route("/m/{slug}/login/code", post(login::check_code))
        .route("/m/{slug}/logout", post(login::logout))
        .route("/m/{slug}/card.svg", get(pages::card_svg))
        .route("/m/{slug}/history", get(pages::history))
        .route("/m/{slug}/offers", get(pages::offers))
        .route("/m/{slug}/rewards/{id}/redeem", post(pages::redeem))
        .route("/m/{slug}/consents", get(pages::consents).post(pages::save_consents))
        .route("/m/{slug}/rules", get(pages::rules))
}

/// A programme as its public pages know it: found by the slug in the path.
#[derive(Debug, Clone)]
pub struct Programme {
    pub tenant_id: String,
    pub slug: String,
    /// The name members know (the card design's organisation name, else the tenant's).
    pub name: String,
    pub design: cards::Design,
    pub program: Arc<Program>,
}

impl Programme {
    /// The programme of `slug`, or 404.
    pub async fn load(st: &WebState, slug: &str) -> Result<Programme, WebError> {
        let (tenant_id, name, design) = enrol::programme(&st.app, slug).await?;
        let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
        let (_, program) = kopilka_server::services::program::current(&st.app, &mut c, &tenant_id).await?;
        Ok(Programme { tenant_id, slug: slug.to_owned(), name, design, program })
    }

    pub fn currency(&self) -> &str {
        &self.program.currency
    }

    pub fn tz(&self) -> &str {
        &self.program.time_zone
    }

    /// `style` for the card: the design's colours (validated hex when the design was saved).
    pub fn card_style(&self) -> String {
        let ok = |c: &str| c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
        let bg = if ok(&self.design.background_color) { self.design.background_color.as_str() } else { "#1f2937" };
        let fg = if ok(&self.design.foreground_color) { self.design.foreground_color.as_str() } else { "#ffffff" };
        format!("background:{bg};color:{fg}")
    }
}

/// The slug of a portal path `/m/{slug}/…`.
fn slug_of(path: &str) -> Option<&str> {
    path.strip_prefix("/m/")?.split('/').next().filter(|s| !s.is_empty())
}

/// The logged-in member of a portal request, in the programme of the path.
#[derive(Debug, Clone)]
pub struct Portal {
    pub prog: Programme,
    pub member: Member,
    pub session_id: String,
}

impl Portal {
    /// What the services need: the member's tenant, acting with the narrowest API role
    /// (personal data masked). Every call passes this member's own id.
    pub fn auth(&self) -> Auth {
        Auth {
            tenant_id: self.prog.tenant_id.clone(),
            key_id: format!("member:{}", self.member.id),
            role: Role::Pos,
            store_id: None,
            till_id: None,
            expires_at: None,
        }
    }

    /// The audit log's actor.
    pub fn actor(&self) -> String {
        format!("member:{}", self.member.id)
    }
}

/// Why a request has no member: a GET goes to the programme's login page.
pub enum NoMember {
    Login(String),
    Error(WebError),
}

impl IntoResponse for NoMember {
    fn into_response(self) -> Response {
        match self {
            NoMember::Login(slug) => Redirect::to(&format!("/m/{slug}/login")).into_response(),
            NoMember::Error(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<WebState> for Portal {
    type Rejection = NoMember;

    async fn from_request_parts(parts: &mut Parts, st: &WebState) -> Result<Self, Self::Rejection> {
        let slug = slug_of(parts.uri.path()).ok_or_else(|| NoMember::Error(WebError::not_found()))?.to_owned();
        let prog = Programme::load(st, &slug).await.map_err(NoMember::Error)?;
        let missing = || {
            if parts.method == Method::GET {
                NoMember::Login(slug.clone())
            } else {
                NoMember::Error(WebError::new(StatusCode::UNAUTHORIZED, "common.error.login"))
            }
        };
        let s = session::current(st, &MEMBER, &parts.headers).await.map_err(|e| NoMember::Error(e.into()))?;
        // A session of another programme does not count here.
        let Some(s) = s.filter(|s| s.tenant_id == prog.tenant_id) else { return Err(missing()) };
        let mut c = st.app.db.pool().acquire().await.map_err(|e| NoMember::Error(StoreError::from(e).into()))?;
        let member = kopilka_store::members::by_id(&mut c, &prog.tenant_id, &s.subject_id).await.map_err(|e| NoMember::Error(e.into()))?;
        match member {
            Some(member) => Ok(Portal { prog, member, session_id: s.id }),
            None => Err(missing()),
        }
    }
}

/// The portal's navigation, in every portal template as `nav`.
#[derive(Debug, Clone)]
pub struct Nav {
    pub slug: String,
    pub name: String,
    /// Logged in (shows the menu and the logout button).
    pub member: bool,
    pub current: &'static str,
}

impl Nav {
    pub const ITEMS: [(&'static str, &'static str, &'static str); 5] = [
        ("card", "", "portal.nav.card"),
        ("history", "/history", "portal.nav.history"),
        ("offers", "/offers", "portal.nav.offers"),
        ("consents", "/consents", "portal.nav.consents"),
        ("rules", "/rules", "portal.nav.rules"),
    ];

    /// Whether `id` is the current page.
    pub fn is(&self, id: &str) -> bool {
        self.current == id
    }
}

/// The frame of a portal page.
pub fn page(ctx: &Ctx, prog: &Programme, title_key: &str) -> Page {
    Page::new(ctx, "portal", format!("{} · {}", ctx.t.m(title_key), prog.name))
}

pub fn nav(prog: &Programme, member: bool, current: &'static str) -> Nav {
    Nav { slug: prog.slug.clone(), name: prog.name.clone(), member, current }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slug_of_paths() {
        assert_eq!(super::slug_of("/m/shop"), Some("shop"));
        assert_eq!(super::slug_of("/m/shop/history"), Some("shop"));
        assert_eq!(super::slug_of("/m/"), None);
        assert_eq!(super::slug_of("/admin"), None);
    }
}
