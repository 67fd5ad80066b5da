//! Kopilka's store: all SQL lives here, and every function takes the tenant id, so no
//! query can forget it. The same code runs on SQLite and PostgreSQL (see [`db`]).

pub mod affinity;
pub mod analytics;
pub mod batch;
pub mod campaigns;
pub mod cards;
pub mod db;
pub mod jobs;
pub mod ledger;
pub mod members;
pub mod migrate;
pub mod receipts;
pub mod rewards;
pub mod server;
pub mod tenants;
pub mod web;

pub use db::{Backend, Db, Kept, Result, StoreError, Tx};
pub use sqlx::AnyConnection as Conn;

/// Unix seconds now.
pub fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A new time-ordered id (UUIDv7, as text).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether any of these strings holds a NUL character. PostgreSQL text cannot hold one
/// (binding it is an error), so no stored row has one: a lookup by such a key finds
/// nothing, on either database. Input that would be written is refused before this.
pub fn has_nul(keys: &[&str]) -> bool {
    keys.iter().any(|k| k.contains('\0'))
}
