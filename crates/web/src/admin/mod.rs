//! The admin console, `/admin`: one file per screen, each with its templates under
//! `templates/admin/` and its texts in `i18n/admin.*.txt`.

mod auth;
mod campaigns;
mod card;
mod dashboard;
mod members;
mod programme;
mod receipts;
mod rewards;
mod stores;
mod team;

use crate::staff::{Perm, Staff};
use crate::{Ctx, Page, WebState};
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin", get(dashboard::show))
        .route("/admin/dashboard/kpis.csv", get(dashboard::kpis_csv))
        .route("/admin/dashboard/daily.csv", get(dashboard::daily_csv))
        .merge(auth::routes())
        .merge(members::routes())
        .merge(receipts::routes())
        .merge(programme::routes())
        .merge(stores::routes())
        .merge(team::routes())
        .merge(campaigns::routes())
        .merge(rewards::routes())
        .merge(card::routes())
        // An unknown console address is an HTML page too, not the API's JSON 404.
        .route("/admin/{*rest}", axum::routing::any(|| async { crate::WebError::not_found() }))
}

/// The console's navigation bar: who is logged in, where, and the screens their role may
/// open.
#[derive(Debug, Clone)]
pub struct Nav {
    pub tenant_name: String,
    pub tenant_slug: String,
    pub email: String,
    pub role: &'static str,
    pub items: Vec<NavItem>,
}

#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    /// A catalogue key.
    pub label: &'static str,
    pub active: bool,
}

/// The screens of the console: (id, href, label key, permission).
const SCREENS: &[(&str, &str, &str, Perm)] = &[
    ("dashboard", "/admin", "admin.nav.dashboard", Perm::Dashboard),
    ("members", "/admin/members", "admin.nav.members", Perm::Members),
    ("receipts", "/admin/receipts", "admin.nav.receipts", Perm::Receipts),
    ("programme", "/admin/programme", "admin.nav.programme", Perm::ProgrammeView),
    ("campaigns", "/admin/campaigns", "admin.nav.campaigns", Perm::OffersView),
    ("rewards", "/admin/rewards", "admin.nav.rewards", Perm::OffersView),
    ("card", "/admin/card", "admin.nav.card", Perm::OffersView),
    ("stores", "/admin/stores", "admin.nav.stores", Perm::Stores),
    ("staff", "/admin/staff", "admin.nav.staff", Perm::Staff),
];

impl Nav {
    pub fn new(staff: &Staff, current: &str) -> Nav {
        let items = SCREENS
            .iter()
            .filter(|(_, _, _, p)| staff.can(*p))
            .map(|(id, href, label, _)| NavItem { href, label, active: *id == current })
            .collect();
        Nav {
            tenant_name: staff.tenant.name.clone(),
            tenant_slug: staff.tenant.slug.clone(),
            email: staff.user.email.clone(),
            role: staff.role.as_str(),
            items,
        }
    }
}

impl Nav {
    /// The catalogue key of the role's name.
    pub fn role_key(&self) -> &'static str {
        match self.role {
            "owner" => "admin.role.owner",
            "marketer" => "admin.role.marketer",
            "cashier" => "admin.role.cashier",
            _ => "admin.role.analyst",
        }
    }
}

/// The frame of an admin page for a logged-in staff member, on screen `current`.
pub fn page(ctx: &Ctx, staff: &Staff, current: &str, title_key: &str) -> Page {
    let mut p = Page::new(ctx, "admin", ctx.t.m(title_key));
    p.nav = Some(Nav::new(staff, current));
    p
}
