//! API tests, each run on SQLite and on PostgreSQL.

mod helpers;
mod worked_example;
