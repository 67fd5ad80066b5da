//! Shared server state: the database, small caches and limiters.

use crate::auth::Auth;
use kopilka_domain::program::Program;
use kopilka_store::Db;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Config {
    /// Member lookups per minute for one pos key.
    pub pos_lookups_per_minute: u32,
    /// Run the background worker inside `serve`.
    pub worker: bool,
    /// Cards and passes: public URL, wallet keys, adapters.
    pub cards: std::sync::Arc<crate::services::cards::CardsConfig>,
    /// How checkouts, reserves and refunds are batched into shared transactions.
    pub group: crate::services::group_commit::GroupConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config { pos_lookups_per_minute: 60, worker: true, cards: Default::default(), group: Default::default() }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub config: Config,
    pub key_cache: Mutex<HashMap<String, (Instant, Option<Auth>)>>,
    pub programs: Mutex<HashMap<String, (i64, Arc<Program>)>>,
    /// Compiled campaign sets by tenant, with the generation they were loaded at.
    pub campaigns: Mutex<HashMap<String, (i64, Arc<kopilka_domain::campaign::CampaignSet>)>>,
    pub limiter: crate::ratelimit::Limiter,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The till's write lanes, started on first use (they need the runtime).
    group: std::sync::OnceLock<crate::services::group_commit::GroupCommit>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(db: Db, config: Config, metrics: Option<metrics_exporter_prometheus::PrometheusHandle>) -> Self {
        AppState(Arc::new(Inner {
            db,
            config,
            key_cache: Mutex::new(HashMap::new()),
            programs: Mutex::new(HashMap::new()),
            campaigns: Mutex::new(HashMap::new()),
            limiter: crate::ratelimit::Limiter::default(),
            metrics,
            group: std::sync::OnceLock::new(),
        }))
    }

    /// The till's write lanes (group commit).
    pub fn group(&self) -> &crate::services::group_commit::GroupCommit {
        self.group.get_or_init(|| crate::services::group_commit::GroupCommit::start(&self.db, self.config.group))
    }

    /// Forget cached keys of a tenant (after a revocation).
    pub fn forget_keys(&self) {
        self.key_cache.lock().expect("key cache").clear();
    }
}
