//! Stores (a map-free list of addresses and time zones) and till keys: create (the key is
//! shown once), list, revoke. Owners only. Everything goes through the accounts service,
//! as the API's `POST /stores`, `POST /api-keys` and `DELETE /api-keys/{id}` do.

use crate::form::{Fields, Form};
use crate::i18n::Fmt;
use crate::staff::{Perm, Staff};
use crate::{Ctx, Page, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kopilka_server::auth::Role;
use kopilka_server::services::{accounts, program};
use kopilka_store::{StoreError, tenants};
use std::collections::BTreeMap;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/stores", get(show).post(create_store))
        .route("/admin/stores/keys", post(create_key))
        .route("/admin/stores/keys/{id}/revoke", post(revoke_key))
}

pub struct StoreRow {
    pub id: String,
    pub code: String,
    pub name: String,
    pub time_zone: String,
    pub coordinates: String,
}

pub struct KeyRow {
    pub id: String,
    pub role: String,
    pub store: String,
    pub till_id: String,
    pub label: String,
    pub created_at: i64,
    pub revoked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/stores.html")]
struct StoresTpl {
    page: Page,
    fmt: Fmt,
    stores: Vec<StoreRow>,
    keys: Vec<KeyRow>,
    form: Fields,
    /// A key just made: (its secret, the store's code, the till).
    new_key: Option<(String, String, String)>,
}

async fn render(
    st: &WebState,
    ctx: &Ctx,
    staff: &Staff,
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    new_key: Option<(String, String, String)>,
) -> WebResult<StoresTpl> {
    let tenant = &staff.tenant.id;
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    let (_, p) = program::current(&st.app, &mut c, tenant).await?;
    let stores = tenants::list_stores(&mut c, tenant).await?;
    let codes: BTreeMap<String, String> = stores.iter().map(|s| (s.id.clone(), s.code.clone())).collect();
    let mut keys: Vec<KeyRow> = tenants::list_keys(&mut c, tenant)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            store: k.store_id.as_ref().and_then(|s| codes.get(s)).cloned().unwrap_or_default(),
            id: k.id,
            role: k.role,
            till_id: k.till_id.unwrap_or_default(),
            label: k.label.unwrap_or_default(),
            created_at: k.created_at,
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    // Live keys first, the newest first.
    keys.sort_by(|a, b| a.revoked.cmp(&b.revoked).then(b.id.cmp(&a.id)));
    let stores = stores
        .into_iter()
        .map(|s| StoreRow {
            coordinates: match (&s.lat, &s.lon) {
                (Some(a), Some(b)) => format!("{a}, {b}"),
                _ => String::new(),
            },
            id: s.id,
            code: s.code,
            name: s.name,
            time_zone: s.time_zone,
        })
        .collect();
    let mut values = values;
    values.entry("time_zone".into()).or_insert_with(|| p.time_zone.clone());
    let page = super::page(ctx, staff, "stores", "admin.stores.title");
    Ok(StoresTpl { page, fmt: Fmt::new(ctx.t, &p), stores, keys, form: Fields::new(values, errors), new_key })
}

async fn show(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<StoresTpl> {
    staff.require(Perm::Stores)?;
    render(&st, &ctx, &staff, BTreeMap::new(), BTreeMap::new(), None).await
}

fn coordinate(v: Option<&str>, max: f64) -> Result<Option<String>, ()> {
    match v {
        None => Ok(None),
        Some(s) => match s.replace(',', ".").parse::<f64>() {
            Ok(f) if f.is_finite() && f.abs() <= max => Ok(Some(f.to_string())),
            _ => Err(()),
        },
    }
}

async fn create_store(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<Response> {
    staff.require(Perm::Stores)?;
    let t = ctx.t;
    let mut errors = BTreeMap::new();
    let code = f.get("code").unwrap_or_default().to_owned();
    let name = f.get("name").unwrap_or_default().to_owned();
    if code.is_empty() || code.chars().count() > 64 {
        errors.insert("code".to_owned(), t.m("admin.stores.code_required").to_owned());
    }
    if name.is_empty() || name.chars().count() > 200 {
        errors.insert("name".to_owned(), t.m("admin.stores.name_required").to_owned());
    }
    let time_zone = f.get("time_zone").map(str::to_owned);
    if time_zone.as_deref().is_some_and(|z| z.parse::<chrono_tz::Tz>().is_err()) {
        errors.insert("time_zone".to_owned(), t.m("admin.stores.time_zone_invalid").to_owned());
    }
    let lat = coordinate(f.get("lat"), 90.0).unwrap_or_else(|_| {
        errors.insert("lat".to_owned(), t.m("admin.stores.lat_invalid").to_owned());
        None
    });
    let lon = coordinate(f.get("lon"), 180.0).unwrap_or_else(|_| {
        errors.insert("lon".to_owned(), t.m("admin.stores.lon_invalid").to_owned());
        None
    });
    if lat.is_some() != lon.is_some() && !errors.contains_key("lat") && !errors.contains_key("lon") {
        errors.insert("lon".to_owned(), t.m("admin.stores.both_coordinates").to_owned());
    }
    if errors.is_empty() {
        let s = accounts::NewStore { code, name, time_zone, lat, lon };
        match accounts::create_store(&st.app, &staff.tenant.id, &staff.actor(), s).await {
            Ok(_) => return Ok(Redirect::to("/admin/stores").into_response()),
            Err(e) if e.code == "store_exists" => {
                errors.insert("code".to_owned(), t.m("admin.stores.code_taken").to_owned());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let tpl = render(&st, &ctx, &staff, f.0.clone(), errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response())
}

async fn create_key(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<Response> {
    staff.require(Perm::Stores)?;
    let t = ctx.t;
    let mut errors = BTreeMap::new();
    let store_id = f.get("store_id").map(str::to_owned);
    let till_id = f.get("till_id").map(str::to_owned);
    if till_id.as_deref().is_some_and(|x| x.chars().count() > 64) {
        errors.insert("till_id".to_owned(), t.m("admin.keys.till_too_long").to_owned());
    }
    let label = f.get("label").map(|l| l.chars().take(200).collect::<String>());
    let store = match &store_id {
        Some(id) => {
            let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
            tenants::store_by_id(&mut c, &staff.tenant.id, id).await?
        }
        None => None,
    };
    let Some(store) = store else {
        errors.insert("store_id".to_owned(), t.m("admin.keys.store_required").to_owned());
        let tpl = render(&st, &ctx, &staff, f.0.clone(), errors, None).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response());
    };
    if !errors.is_empty() {
        let tpl = render(&st, &ctx, &staff, f.0.clone(), errors, None).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response());
    }
    let k = accounts::NewKey { role: Role::Pos, store_id: Some(store.id.clone()), till_id: till_id.clone(), expires_at: None, label };
    let v = accounts::create_key(&st.app, &staff.tenant.id, &staff.actor(), k).await?;
    let secret = v.key.unwrap_or_default();
    // The key is in this one answer and nowhere else: not cached, not stored.
    let tpl = render(&st, &ctx, &staff, BTreeMap::new(), BTreeMap::new(), Some((secret, store.code, till_id.unwrap_or_default()))).await?;
    Ok((StatusCode::CREATED, tpl).into_response())
}

async fn revoke_key(State(st): State<WebState>, staff: Staff, Path(id): Path<String>) -> WebResult<Response> {
    staff.require(Perm::Stores)?;
    accounts::revoke_key(&st.app, &staff.tenant.id, &staff.actor(), &id).await?;
    // A cashier terminal logged in with this key is logged out with it.
    let mut tx = st.app.db.begin().await?;
    kopilka_store::web::delete_sessions_of(tx.conn(), &staff.tenant.id, crate::session::TILL.name, &id).await?;
    tx.commit().await?;
    Ok(Redirect::to("/admin/stores").into_response())
}
