//! API tests, each run on SQLite and on PostgreSQL.

mod campaigns_admin;
mod campaigns_docs;
mod campaigns_review;
mod campaigns_till;
mod cards;
mod cards_auth;
mod cards_enrol;
mod cards_review;
mod checkout_batch;
mod contract;
mod fuzz_regressions;
mod golden;
mod group_commit;
mod helpers;
mod import;
mod ledger;
mod review;
mod rewards;
mod strict_bodies;
mod worked_example;
mod worker;
