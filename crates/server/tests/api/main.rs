//! API tests, each run on SQLite and on PostgreSQL.

mod cards;
mod cards_auth;
mod cards_enrol;
mod contract;
mod fuzz_regressions;
mod helpers;
mod import;
mod ledger;
mod review;
mod worked_example;
mod worker;
