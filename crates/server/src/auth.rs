//! API keys: 256-bit random secrets, stored only as SHA-256 hashes, looked up by hash.
//! Each key belongs to one tenant and has a role; pos keys are bound to a store and
//! optionally a till.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Pos,
    Analyst,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "pos" => Some(Role::Pos),
            "analyst" => Some(Role::Analyst),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Pos => "pos",
            Role::Analyst => "analyst",
        }
    }
}

/// The caller, as proven by its key.
#[derive(Debug, Clone)]
pub struct Auth {
    pub tenant_id: String,
    pub key_id: String,
    pub role: Role,
    pub store_id: Option<String>,
    pub till_id: Option<String>,
    pub expires_at: Option<i64>,
}

impl Auth {
    /// A staff member of the web console (crates/web), acting with the API permissions
    /// of their role; `pos` staff act for one store (the receipt's own, for a refund).
    pub fn for_staff(tenant_id: &str, staff_id: &str, role: Role, store_id: Option<String>) -> Auth {
        Auth {
            tenant_id: tenant_id.to_owned(),
            key_id: format!("{STAFF_PREFIX}{staff_id}"),
            role,
            store_id,
            till_id: None,
            expires_at: None,
        }
    }

    /// Actor name for audit records: `key:<api key id>` or `staff:<staff user id>`.
    pub fn actor(&self) -> String {
        if self.key_id.starts_with(STAFF_PREFIX) { self.key_id.clone() } else { format!("key:{}", self.key_id) }
    }

    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) { Ok(()) } else { Err(ApiError::forbidden(format!("a {} key may not do this", self.role.as_str()))) }
    }

    pub fn admin(&self) -> Result<(), ApiError> {
        self.require(&[Role::Admin])
    }

    /// Personal data is masked for pos keys.
    pub fn masked(&self) -> bool {
        self.role == Role::Pos
    }
}

/// The `key_id` prefix of a staff member's [`Auth`] (no API key id has it: those are UUIDs).
const STAFF_PREFIX: &str = "staff:";

/// A new API key: "kop_" and 64 hex digits (256 random bits).
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!("kop_{}", hex::encode(bytes))
}

pub fn hash_key(key: &str) -> String {
    crate::input::sha256_hex(key)
}

/// How long a verified key is trusted without asking the database again. Revocation in
/// this process drops the cached entry at once; other processes see it within this time.
const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header =
            parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|h| h.to_str().ok()).ok_or_else(ApiError::unauthorized)?;
        let token = header.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()).ok_or_else(ApiError::unauthorized)?;
        if token.len() > 200 {
            return Err(ApiError::unauthorized());
        }
        let hash = hash_key(token);
        let now = kopilka_store::now_s();
        let cached = state.key_cache.lock().expect("key cache").get(&hash).cloned();
        let auth = match cached {
            Some((at, auth)) if at.elapsed() < KEY_CACHE_TTL => auth,
            _ => {
                let mut c = state.db.pool().acquire().await.map_err(ApiError::internal)?;
                let key = kopilka_store::tenants::key_by_hash(&mut c, &hash).await?;
                let auth = key.filter(|k| k.revoked_at.is_none()).and_then(|k| {
                    Some(Auth {
                        role: Role::parse(&k.role)?,
                        tenant_id: k.tenant_id,
                        key_id: k.id,
                        store_id: k.store_id,
                        till_id: k.till_id,
                        expires_at: k.expires_at,
                    })
                });
                let mut cache = state.key_cache.lock().expect("key cache");
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(hash, (Instant::now(), auth.clone()));
                auth
            }
        };
        match auth {
            Some(a) if a.expires_at.is_none_or(|e| e > now) => Ok(a),
            _ => Err(ApiError::unauthorized()),
        }
    }
}
