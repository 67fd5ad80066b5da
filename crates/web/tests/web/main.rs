//! Web UI tests over plain HTTP, each run on SQLite and on PostgreSQL.

mod admin;
mod campaigns;
mod card;
mod foundation;
mod helpers;
mod portal;
mod rewards;
mod till;
