//! The background worker: a loop that claims due jobs from the jobs table and runs them.
//! `kopilka serve` runs it in-process; `kopilka worker` runs it alone. Several workers
//! may run at once: a claimed job is leased, and every job is idempotent.

pub mod expiry;
pub mod tiers;

use crate::state::AppState;
use kopilka_store::{jobs, now_s, tenants};
use std::time::Duration;

/// How often the periodic jobs of each tenant run.
pub const SWEEP_EVERY_S: i64 = 60;
pub const TIER_SWEEP_EVERY_S: i64 = 3600;

/// Run until `shutdown` resolves.
pub async fn run(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    tracing::info!("worker started");
    let mut last_schedule = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = now_s();
        if now - last_schedule >= 10 {
            if let Err(e) = schedule_periodic(&state, now).await {
                tracing::warn!(error = %e, "could not schedule periodic jobs");
            }
            last_schedule = now;
        }
        let worked = match tick(&state).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "worker tick failed");
                0
            }
        };
        if worked == 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    tracing::info!("worker stopped");
}

/// Make sure every tenant has its periodic jobs queued.
async fn schedule_periodic(state: &AppState, now: i64) -> Result<(), kopilka_store::StoreError> {
    let mut c = state.db.pool().acquire().await?;
    for tenant in tenants::all_tenant_ids(&mut c).await? {
        jobs::ensure_periodic(&mut c, &tenant, "sweep", &tenant, now).await?;
        jobs::ensure_periodic(&mut c, &tenant, "tier_sweep", &tenant, now).await?;
    }
    Ok(())
}

/// Claim and run one batch of due jobs. Returns how many ran.
pub async fn tick(state: &AppState) -> Result<usize, kopilka_store::StoreError> {
    let now = now_s();
    let batch = jobs::claim(&state.db, now, 60, 32).await?;
    let n = batch.len();
    for job in batch {
        let result = match job.kind.as_str() {
            "tier" => tiers::check_member(state, &job.tenant_id, &job.key).await,
            "sweep" => expiry::sweep(state, &job.tenant_id).await,
            "tier_sweep" => tiers::sweep(state, &job.tenant_id, job.run_at - 3 * TIER_SWEEP_EVERY_S).await,
            "tier_all" => tiers::sweep_all(state, &job.tenant_id).await,
            other => Err(format!("unknown job kind {other}")),
        };
        let mut c = state.db.pool().acquire().await?;
        match result {
            Ok(()) => {
                metrics::counter!("kopilka_jobs_total", "kind" => job.kind.clone(), "ok" => "true").increment(1);
                match job.kind.as_str() {
                    "sweep" => jobs::reschedule(&mut c, &job, now_s() + SWEEP_EVERY_S).await?,
                    "tier_sweep" => jobs::reschedule(&mut c, &job, now_s() + TIER_SWEEP_EVERY_S).await?,
                    _ => jobs::complete(&mut c, &job).await?,
                }
            }
            Err(e) => {
                metrics::counter!("kopilka_jobs_total", "kind" => job.kind.clone(), "ok" => "false").increment(1);
                tracing::warn!(job.kind = %job.kind, tenant.id = %job.tenant_id, error = %e, "job failed; will retry");
                let backoff = 5 * (1 << job.attempts.min(8));
                jobs::fail(&mut c, &job, &e, now_s() + backoff).await?;
            }
        }
    }
    Ok(n)
}

/// Run every due job now, until none is left (tests and `kopilka worker --once`). A
/// one-off run makes each tenant's periodic sweeps due first, so that expiries, pending
/// releases, ended holds and tier changes are processed even when no looping worker
/// has ever queued them.
pub async fn drain(state: &AppState) -> Result<usize, kopilka_store::StoreError> {
    {
        let now = now_s();
        let mut c = state.db.pool().acquire().await?;
        for tenant in tenants::all_tenant_ids(&mut c).await? {
            for kind in ["sweep", "tier_sweep"] {
                // Queueing an existing job again makes it due now.
                jobs::enqueue(&mut c, &tenant, kind, &tenant, now).await?;
            }
        }
    }
    let mut total = 0;
    for _ in 0..1000 {
        let n = tick(state).await?;
        total += n;
        if n == 0 {
            break;
        }
    }
    Ok(total)
}
