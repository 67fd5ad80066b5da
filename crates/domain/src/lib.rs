//! Kopilka's pure domain: money and points arithmetic, the programme configuration,
//! the receipt calculation, refund proportions, tiers, expiry dates and member identity
//! rules. Nothing here does IO; everything is integer maths (i128 inside) and is tested
//! with tables and property tests.

pub mod campaign;
pub mod expiry;
pub mod identity;
pub mod money;
pub mod plural;
pub mod program;
pub mod quantity;
pub mod receipt;
pub mod refund;
pub mod rewards;
pub mod schema;
pub mod tiers;

/// Largest magnitude of any amount or quantity in a request (10^12).
pub const INPUT_MAX: i128 = 1_000_000_000_000;
/// Largest magnitude of any computed amount (10^15); beyond it a request is rejected.
pub const COMPUTE_MAX: i128 = 1_000_000_000_000_000;
