//! The dashboard, `/admin`: how the programme is doing on one page.

use crate::staff::{Perm, Staff};
use crate::{Ctx, Page, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use kopilka_store::StoreError;

#[derive(Template, WebTemplate)]
#[template(path = "admin/dashboard.html")]
struct DashboardTpl {
    page: Page,
    members: i64,
}

pub async fn show(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<Response> {
    if !staff.can(Perm::Dashboard) {
        return Ok(Redirect::to(staff.role.home()).into_response());
    }
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let members = kopilka_store::members::count(&mut c, &staff.tenant.id).await?;
    let page = super::page(&ctx, &staff, "dashboard", "admin.dashboard.title");
    Ok(DashboardTpl { page, members }.into_response())
}
