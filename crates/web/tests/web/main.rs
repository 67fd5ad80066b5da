//! Web UI tests over plain HTTP, each run on SQLite and on PostgreSQL.

mod admin;
mod campaigns;
mod card;
mod foundation;
mod helpers;
mod portal;
mod review;
mod rewards;
mod till;
