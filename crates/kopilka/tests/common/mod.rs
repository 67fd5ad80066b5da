//! Helpers for the tests that run the real binary: a fresh database per test, and
//! `kopilka serve` as a child process on a free port.
#![allow(dead_code)]

pub use kopilka_testkit::{Backend, TestDb};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_kopilka");

/// Run `kopilka ARGS` on database `db` and wait for it.
pub fn kopilka(db: &str, args: &[&str]) -> Output {
    Command::new(BIN).args(args).env("KOPILKA_DATABASE_URL", db).env("KOPILKA_LOG", "warn").output().expect("run kopilka")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A running `kopilka serve`, killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Stop the process the hard way: `Child::kill` is SIGKILL on Unix, so nothing in
    /// the server gets to run (no flush, no graceful shutdown).
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill the server");
        self.child.wait().expect("reap the server");
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Start `kopilka serve` on `db` and wait until it answers `/healthz`.
pub async fn serve(db: &str) -> Server {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(BIN)
        .args(["serve", "--listen", &listen])
        .env("KOPILKA_DATABASE_URL", db)
        .env("KOPILKA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let server = Server { child, url: format!("http://{listen}") };
    for _ in 0..200 {
        if reqwest::get(format!("{}/healthz", server.url)).await.is_ok_and(|r| r.status().is_success()) {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("kopilka serve did not come up on {}", server.url);
}

/// A fresh database (`backend` is "sqlite" or "postgres"): a SQLite file under the temp
/// folder, or a new PostgreSQL database `<prefix>_<id>` (PostgreSQL must answer). The
/// kit's guard drops it when the test ends; `&db` passes where a URL is wanted.
pub async fn database(backend: &str, prefix: &str) -> TestDb {
    let backend = if backend == "sqlite" { Backend::Sqlite } else { Backend::Postgres };
    TestDb::create_named(backend, prefix).await
}
