//! The programme configuration and its versions.

use super::{Failure, Fallible, with_retry};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use kopilka_domain::program::Program;
use kopilka_store::{Conn, tenants};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The tenant's current programme and its version. Every tenant has one from creation.
pub async fn current(state: &AppState, c: &mut Conn, tenant: &str) -> ApiResult<(i64, Arc<Program>)> {
    let version = tenants::program_max_version(c, tenant).await?;
    if let Some((v, p)) = state.programs.lock().expect("programs").get(tenant)
        && *v == version
    {
        return Ok((*v, p.clone()));
    }
    let (version, program) = load(c, tenant).await?;
    let program = Arc::new(program);
    state.programs.lock().expect("programs").insert(tenant.to_owned(), (version, program.clone()));
    Ok((version, program))
}

/// Load the newest programme version without the cache.
pub async fn load(c: &mut Conn, tenant: &str) -> ApiResult<(i64, Program)> {
    match tenants::current_program(c, tenant).await? {
        Some((v, json)) => Ok((v, serde_json::from_str(&json).map_err(ApiError::internal)?)),
        None => Ok((0, Program::default())),
    }
}

/// A specific version (receipts keep the version they were computed with).
pub async fn version(c: &mut Conn, tenant: &str, version: i64) -> ApiResult<Program> {
    match tenants::program_version(c, tenant, version).await? {
        Some(json) => serde_json::from_str(&json).map_err(ApiError::internal),
        None => Err(ApiError::internal(format!("programme version {version} missing"))),
    }
}

/// Parse a programme body: unknown fields and wrong types are field errors; read-only
/// `version` is ignored; then the domain validates the values.
pub fn parse(mut body: Map<String, Value>) -> ApiResult<Program> {
    body.remove("version");
    let program: Program = crate::input::typed(body)?;
    program.normalize().map_err(ApiError::fields)
}

/// A programme with its version, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Versioned {
    #[serde(flatten)]
    pub program: Program,
    pub version: i64,
}

pub fn versioned(version: i64, program: &Program) -> Versioned {
    Versioned { program: program.clone(), version }
}

/// Replace the programme. Identical content makes no new version; currency and point
/// value are locked once a receipt has been committed.
pub async fn put(state: &AppState, tenant: &str, actor: &str, program: Program) -> ApiResult<Versioned> {
    let out = with_retry(|_| {
        let program = program.clone();
        async move {
            let mut tx = state.db.begin().await?;
            tenants::lock_tenant(&mut tx, tenant, true).await?;
            let (version, old) = load(tx.conn(), tenant).await?;
            if version > 0 && old == program {
                return Ok::<_, Failure>(versioned(version, &old));
            }
            if version > 0
                && (old.currency != program.currency || old.redeem.point_value_minor != program.redeem.point_value_minor)
                && tenants::any_committed_receipt(tx.conn(), tenant).await?
            {
                return Err(ApiError::rule(
                    "program_locked",
                    "currency and redeem.point_value_minor cannot change once a receipt has been committed",
                )
                .into());
            }
            let now = kopilka_store::now_s();
            let json = serde_json::to_string(&program)?;
            tenants::insert_program(tx.conn(), tenant, version + 1, &json, now).await?;
            if old.tiers != program.tiers || old.tier_window_days != program.tier_window_days {
                // Every member's tier may have moved: record the changes.
                kopilka_store::jobs::enqueue(tx.conn(), tenant, "tier_all", tenant, now).await?;
            }
            tenants::audit(
                tx.conn(),
                tenant,
                &tenants::Audit {
                    actor,
                    action: "program.update",
                    object_type: "program",
                    object_id: &(version + 1).to_string(),
                    details: &serde_json::json!({"from_version": version}),
                    at: now,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(versioned(version + 1, &program))
        }
    })
    .await?;
    Ok(out)
}

/// Insert the first programme version of a new tenant inside its creating transaction.
pub async fn insert_initial(c: &mut Conn, tenant: &str, program: &Program, now: i64) -> Fallible<()> {
    tenants::insert_program(c, tenant, 1, &serde_json::to_string(program)?, now).await?;
    Ok(())
}
