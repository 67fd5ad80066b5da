//! Tenants, stores and API keys.

use super::{Failure, with_retry};
use crate::auth::{self, Role};
use crate::error::{ApiError, ApiResult};
use crate::input::Time;
use crate::state::AppState;
use kopilka_domain::identity::slugify;
use kopilka_store::tenants::{self, ApiKey, Store, Tenant};
use kopilka_store::{Db, StoreError, new_id, now_s};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone)]
pub struct CreatedTenant {
    pub tenant_id: String,
    pub slug: String,
    pub api_key: String,
}

/// Create a tenant with its programme (from a template) and a first admin key.
pub async fn create_tenant(db: &Db, name: &str, slug: Option<&str>, template: &str) -> ApiResult<CreatedTenant> {
    let program = super::templates::template(template)
        .ok_or_else(|| ApiError::field("template", format!("must be one of {}", super::templates::NAMES.join(", "))))?;
    let t = NewTenant { name, slug, template, program, admin_key: true, owner: None, actor: "cli" };
    let c = create_tenant_with(db, t).await?;
    Ok(CreatedTenant { tenant_id: c.tenant_id, slug: c.slug, api_key: c.api_key.unwrap_or_default() })
}

/// What a new tenant starts with.
pub struct NewTenant<'a> {
    pub name: &'a str,
    pub slug: Option<&'a str>,
    /// The template's name, for the audit record.
    pub template: &'a str,
    /// The first programme version (a template, possibly with its time zone or language
    /// changed by the first-run setup page).
    pub program: kopilka_domain::program::Program,
    /// Make an admin API key (shown once).
    pub admin_key: bool,
    /// The first staff account, an owner (the web console's logins).
    pub owner: Option<NewOwner>,
    /// Who is creating it, for the audit log ("cli", "setup").
    pub actor: &'a str,
}

pub struct NewOwner {
    /// Lower-cased and checked by the caller.
    pub email: String,
    /// An argon2 PHC string, or None: the owner sets a password through a login link.
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CreatedTenantWith {
    pub tenant_id: String,
    pub slug: String,
    pub api_key: Option<String>,
    pub owner_id: Option<String>,
}

/// Create a tenant, its first programme version, and optionally an admin key and an
/// owner account, in one transaction.
pub async fn create_tenant_with(db: &Db, t: NewTenant<'_>) -> ApiResult<CreatedTenantWith> {
    let name = t.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::field("name", "must be 1 to 200 characters"));
    }
    let explicit = t.slug.is_some();
    let base = match t.slug {
        Some(s) => {
            let ok = !s.is_empty()
                && s.len() <= 63
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !s.starts_with('-')
                && !s.ends_with('-');
            if !ok {
                return Err(ApiError::field("slug", "must be 1 to 63 lower-case Latin letters, digits and inner hyphens"));
            }
            s.to_owned()
        }
        None => slugify(name),
    };
    let t = &t;
    with_retry(|attempt| {
        let base = base.clone();
        async move {
            let slug = if attempt == 0 || explicit { base.clone() } else { format!("{base}-{}", attempt + 1) };
            let now = now_s();
            let tenant = Tenant { id: new_id(), slug: slug.clone(), name: name.to_owned(), created_at: now };
            let mut tx = db.begin().await?;
            if explicit && tenants::tenant_by_slug(tx.conn(), &slug).await?.is_some() {
                return Err(Failure::Api(ApiError::conflict("slug_taken", format!("slug {slug} is already used"))));
            }
            tenants::insert_tenant(tx.conn(), &tenant).await?;
            super::program::insert_initial(tx.conn(), &tenant.id, &t.program, now).await?;
            let mut api_key = None;
            if t.admin_key {
                let key = auth::new_key();
                let k = ApiKey {
                    tenant_id: tenant.id.clone(),
                    id: new_id(),
                    role: "admin".into(),
                    store_id: None,
                    till_id: None,
                    label: Some("initial admin key".into()),
                    expires_at: None,
                    revoked_at: None,
                    created_at: now,
                };
                tenants::insert_key(tx.conn(), &k, &auth::hash_key(&key)).await?;
                api_key = Some(key);
            }
            let mut owner_id = None;
            if let Some(o) = &t.owner {
                let user = kopilka_store::web::StaffUser {
                    tenant_id: tenant.id.clone(),
                    id: new_id(),
                    email: o.email.clone(),
                    name: None,
                    password_hash: o.password_hash.clone(),
                    role: "owner".into(),
                    disabled_at: None,
                    created_at: now,
                };
                kopilka_store::web::insert_staff(tx.conn(), &user).await?;
                tenants::audit(
                    tx.conn(),
                    &tenant.id,
                    &tenants::Audit {
                        actor: t.actor,
                        action: "staff.create",
                        object_type: "staff",
                        object_id: &user.id,
                        details: &json!({"role": "owner"}),
                        at: now,
                    },
                )
                .await?;
                owner_id = Some(user.id);
            }
            tenants::audit(
                tx.conn(),
                &tenant.id,
                &tenants::Audit {
                    actor: t.actor,
                    action: "tenant.create",
                    object_type: "tenant",
                    object_id: &tenant.id,
                    details: &json!({"template": t.template}),
                    at: now,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(CreatedTenantWith { tenant_id: tenant.id, slug, api_key, owner_id })
        }
    })
    .await
}

/// Create a key for a tenant directly (CLI and demo).
pub async fn create_key_direct(
    db: &Db,
    tenant: &str,
    role: Role,
    store_id: Option<&str>,
    till_id: Option<&str>,
    label: &str,
) -> ApiResult<(String, String)> {
    let key = auth::new_key();
    let now = now_s();
    let k = ApiKey {
        tenant_id: tenant.to_owned(),
        id: new_id(),
        role: role.as_str().into(),
        store_id: store_id.map(str::to_owned),
        till_id: till_id.map(str::to_owned),
        label: Some(label.to_owned()),
        expires_at: None,
        revoked_at: None,
        created_at: now,
    };
    let mut tx = db.begin().await?;
    tenants::insert_key(tx.conn(), &k, &auth::hash_key(&key)).await?;
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor: "cli",
            action: "api_key.create",
            object_type: "api_key",
            object_id: &k.id,
            details: &json!({"role": k.role, "store_id": k.store_id}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((k.id, key))
}

/// A coordinate, kept as the text of the number that was sent and shown as that number
/// (the one decimal the API takes; never money).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinate(pub String);

impl Serialize for Coordinate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::from_str::<serde_json::Number>(&self.0) {
            Ok(n) => n.serialize(s),
            Err(_) => s.serialize_str(&self.0),
        }
    }
}

/// A store as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreView {
    pub id: String,
    pub code: String,
    pub name: String,
    pub time_zone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<Coordinate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<Coordinate>,
    pub created_at: Time,
}

impl From<&Store> for StoreView {
    fn from(s: &Store) -> Self {
        StoreView {
            id: s.id.clone(),
            code: s.code.clone(),
            name: s.name.clone(),
            time_zone: s.time_zone.clone(),
            lat: s.lat.clone().map(Coordinate),
            lon: s.lon.clone().map(Coordinate),
            created_at: Time(s.created_at),
        }
    }
}

/// The stores of a tenant.
#[derive(Debug, Clone, Serialize)]
pub struct StoreList {
    pub stores: Vec<StoreView>,
}

pub async fn list_stores(state: &AppState, tenant: &str) -> ApiResult<StoreList> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    Ok(StoreList { stores: tenants::list_stores(&mut c, tenant).await?.iter().map(StoreView::from).collect() })
}

pub async fn get_store(state: &AppState, tenant: &str, id: &str) -> ApiResult<StoreView> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let store = tenants::store_by_id(&mut c, tenant, id).await?.ok_or_else(|| ApiError::not_found("store"))?;
    Ok(StoreView::from(&store))
}

pub struct NewStore {
    pub code: String,
    pub name: String,
    pub time_zone: Option<String>,
    pub lat: Option<String>,
    pub lon: Option<String>,
}

pub async fn create_store(state: &AppState, tenant: &str, actor: &str, s: NewStore) -> ApiResult<StoreView> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let (_, program) = super::program::current(state, &mut c, tenant).await?;
    drop(c);
    let store = Store {
        id: new_id(),
        code: s.code,
        name: s.name,
        time_zone: s.time_zone.unwrap_or_else(|| program.time_zone.clone()),
        lat: s.lat,
        lon: s.lon,
        created_at: now_s(),
    };
    let mut tx = state.db.begin().await?;
    match tenants::insert_store(tx.conn(), tenant, &store).await {
        Err(StoreError::Unique(_)) => {
            return Err(ApiError::conflict("store_exists", format!("a store with code {} already exists", store.code)));
        }
        other => other?,
    }
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor,
            action: "store.create",
            object_type: "store",
            object_id: &store.id,
            details: &json!({"code": store.code}),
            at: store.created_at,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StoreView::from(&store))
}

/// An API key as the API shows it; the secret only in the answer that creates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyView {
    pub id: String,
    pub role: String,
    pub store_id: Option<String>,
    pub till_id: Option<String>,
    pub label: Option<String>,
    pub expires_at: Option<Time>,
    pub revoked_at: Option<Time>,
    pub created_at: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        KeyView {
            id: k.id.clone(),
            role: k.role.clone(),
            store_id: k.store_id.clone(),
            till_id: k.till_id.clone(),
            label: k.label.clone(),
            expires_at: k.expires_at.map(Time),
            revoked_at: k.revoked_at.map(Time),
            created_at: Time(k.created_at),
            key: None,
        }
    }
}

/// The API keys of a tenant.
#[derive(Debug, Clone, Serialize)]
pub struct KeyList {
    pub api_keys: Vec<KeyView>,
}

pub async fn list_keys(state: &AppState, tenant: &str) -> ApiResult<KeyList> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    Ok(KeyList { api_keys: tenants::list_keys(&mut c, tenant).await?.iter().map(KeyView::from).collect() })
}

/// The answer to a revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub id: String,
    pub revoked: bool,
}

pub struct NewKey {
    pub role: Role,
    pub store_id: Option<String>,
    pub till_id: Option<String>,
    pub expires_at: Option<i64>,
    pub label: Option<String>,
}

pub async fn create_key(state: &AppState, tenant: &str, actor: &str, k: NewKey) -> ApiResult<KeyView> {
    let mut tx = state.db.begin().await?;
    if let Some(store) = &k.store_id
        && tenants::store_by_id(tx.conn(), tenant, store).await?.is_none()
    {
        return Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, "store_not_found", "no such store"));
    }
    let key = auth::new_key();
    let now = now_s();
    let row = ApiKey {
        tenant_id: tenant.to_owned(),
        id: new_id(),
        role: k.role.as_str().into(),
        store_id: k.store_id,
        till_id: k.till_id,
        label: k.label,
        expires_at: k.expires_at,
        revoked_at: None,
        created_at: now,
    };
    tenants::insert_key(tx.conn(), &row, &auth::hash_key(&key)).await?;
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor,
            action: "api_key.create",
            object_type: "api_key",
            object_id: &row.id,
            details: &json!({"role": row.role, "store_id": row.store_id, "till_id": row.till_id}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(KeyView { key: Some(key), ..KeyView::from(&row) })
}

pub async fn revoke_key(state: &AppState, tenant: &str, actor: &str, id: &str) -> ApiResult<Revoked> {
    let now = now_s();
    let mut tx = state.db.begin().await?;
    if !tenants::revoke_key(tx.conn(), tenant, id, now).await? {
        return Err(ApiError::not_found("API key"));
    }
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit { actor, action: "api_key.revoke", object_type: "api_key", object_id: id, details: &json!({}), at: now },
    )
    .await?;
    tx.commit().await?;
    state.forget_keys();
    Ok(Revoked { id: id.to_owned(), revoked: true })
}
