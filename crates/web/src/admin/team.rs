//! Staff accounts of the tenant (owners only): add one (the person gets a one-time login
//! link, shown once, with which they set a password), change a role, disable or enable.
//! The last enabled owner can be neither demoted nor disabled.

use crate::form::Form;
use crate::staff::{self, Perm, Staff, StaffRole};
use crate::{Ctx, Page, WebError, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kopilka_store::web as rows;
use kopilka_store::{StoreError, now_s, tenants};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/staff", get(show).post(add))
        .route("/admin/staff/{id}/role", post(set_role))
        .route("/admin/staff/{id}/disable", post(disable))
        .route("/admin/staff/{id}/enable", post(enable))
}

pub struct Member {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub has_password: bool,
    pub disabled: bool,
    pub me: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/staff.html")]
struct TeamTpl {
    page: Page,
    people: Vec<Member>,
    roles: Vec<&'static str>,
    email: String,
    error: Option<&'static str>,
    /// A login link just made: (email, URL).
    link: Option<(String, String)>,
}

impl TeamTpl {
    fn role_key(&self, role: &str) -> &'static str {
        match role {
            "owner" => "admin.role.owner",
            "marketer" => "admin.role.marketer",
            "cashier" => "admin.role.cashier",
            _ => "admin.role.analyst",
        }
    }
}

async fn render(
    st: &WebState,
    ctx: &Ctx,
    staff: &Staff,
    email: String,
    error: Option<&'static str>,
    link: Option<(String, String)>,
) -> WebResult<TeamTpl> {
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let people = rows::list_staff(&mut c, &staff.tenant.id)
        .await?
        .into_iter()
        .map(|u| Member {
            me: u.id == staff.user.id,
            role: StaffRole::parse(&u.role).map(StaffRole::as_str).unwrap_or("analyst"),
            has_password: u.password_hash.is_some(),
            disabled: u.disabled_at.is_some(),
            email: u.email,
            id: u.id,
        })
        .collect();
    let page = super::page(ctx, staff, "staff", "admin.staff.title");
    Ok(TeamTpl { page, people, roles: StaffRole::ALL.iter().map(|r| r.as_str()).collect(), email, error, link })
}

async fn show(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<TeamTpl> {
    staff.require(Perm::Staff)?;
    render(&st, &ctx, &staff, String::new(), None, None).await
}

async fn add(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<Response> {
    staff.require(Perm::Staff)?;
    let email = f.get("email").unwrap_or_default().to_owned();
    let role = f.get("role").and_then(StaffRole::parse);
    let error = match (staff::normalize_email(&email), role) {
        (None, _) => Some("admin.setup.email_invalid"),
        (_, None) => Some("admin.staff.role_invalid"),
        (Some(e), Some(r)) => match staff::create_staff(&st.app.db, &staff.tenant.id, &staff.actor(), &e, r).await {
            Ok(user) => {
                let url = staff::create_login_link(&st.app.db, &st.cfg.public_url, &staff.tenant.id, &user.id).await?;
                let tpl = render(&st, &ctx, &staff, String::new(), None, Some((user.email, url))).await?;
                return Ok((StatusCode::CREATED, tpl).into_response());
            }
            Err(e) if e.code == "staff_exists" => Some("admin.staff.exists"),
            Err(e) => return Err(e.into()),
        },
    };
    let tpl = render(&st, &ctx, &staff, email, error, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response())
}

/// Change someone (not oneself) and end their sessions, so a new role or a disabled
/// account takes effect at once.
async fn change(st: &WebState, staff: &Staff, id: &str, role: Option<StaffRole>, disabled: Option<Option<i64>>) -> WebResult<()> {
    staff.require(Perm::Staff)?;
    if id == staff.user.id {
        return Err(WebError::new(StatusCode::UNPROCESSABLE_ENTITY, "admin.staff.not_yourself"));
    }
    let tenant = &staff.tenant.id;
    let mut tx = st.app.db.begin().await?;
    // One staff change of a tenant at a time (PostgreSQL; SQLite's one writer already
    // does this): two owners demoting each other at once must not both count the other
    // as the owner who remains.
    tenants::lock_tenant(&mut tx, tenant, true).await?;
    let user = rows::staff_by_id(tx.conn(), tenant, id).await?.ok_or_else(WebError::not_found)?;
    let leaves_owners = user.role == "owner"
        && user.disabled_at.is_none()
        && (role.is_some_and(|r| r != StaffRole::Owner) || disabled.is_some_and(|d| d.is_some()));
    if leaves_owners && rows::count_owners(tx.conn(), tenant).await? <= 1 {
        return Err(WebError::new(StatusCode::UNPROCESSABLE_ENTITY, "admin.staff.last_owner"));
    }
    if let Some(r) = role {
        rows::set_staff_role(tx.conn(), tenant, id, r.as_str()).await?;
    }
    if let Some(d) = disabled {
        rows::set_staff_disabled(tx.conn(), tenant, id, d).await?;
    }
    rows::delete_sessions_of(tx.conn(), tenant, crate::session::STAFF.name, id).await?;
    let details = serde_json::json!({"role": role.map(StaffRole::as_str), "disabled": disabled.map(|d| d.is_some())});
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor: &staff.actor(),
            action: "staff.update",
            object_type: "staff",
            object_id: id,
            details: &details,
            at: now_s(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn set_role(State(st): State<WebState>, staff: Staff, Path(id): Path<String>, f: Form) -> WebResult<Response> {
    let role = f
        .get("role")
        .and_then(StaffRole::parse)
        .ok_or_else(|| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, "admin.staff.role_invalid"))?;
    change(&st, &staff, &id, Some(role), None).await?;
    Ok(Redirect::to("/admin/staff").into_response())
}

async fn disable(State(st): State<WebState>, staff: Staff, Path(id): Path<String>) -> WebResult<Response> {
    change(&st, &staff, &id, None, Some(Some(now_s()))).await?;
    Ok(Redirect::to("/admin/staff").into_response())
}

async fn enable(State(st): State<WebState>, staff: Staff, Path(id): Path<String>) -> WebResult<Response> {
    change(&st, &staff, &id, None, Some(None)).await?;
    Ok(Redirect::to("/admin/staff").into_response())
}
