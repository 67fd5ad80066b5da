//! The app served on port 0 over a fresh database, and the runner behind `both!`.

use crate::db::{Backend, TestDb};
use kopilka_server::{AppState, Config};
use kopilka_store::Db;
use kopilka_web::WebConfig;
use std::future::Future;

/// The web UI's first-run setup code in [`App::serve_web`].
pub const SETUP_CODE: &str = "test-setup-code";

/// The API (and the web UI, when served with [`App::serve_web`]) on `127.0.0.1:<free port>`
/// over a fresh [`TestDb`]. Dropping it stops the server and drops the database.
/// The request helpers are in `api.rs`.
pub struct App {
    pub url: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub backend: Backend,
    shutdown: tokio::sync::watch::Sender<bool>,
    // Last: dropped after the server was told to stop.
    db: TestDb,
}

impl App {
    /// The API alone.
    pub async fn serve_api(backend: Backend, config: Config) -> App {
        Self::start(backend, config, None::<fn(&mut WebConfig)>).await
    }

    /// The API and the web UI; the web settings start as `WebConfig::new(<app url>)` with
    /// the setup code [`SETUP_CODE`], then `change` edits them.
    pub async fn serve_web(backend: Backend, config: Config, change: impl FnOnce(&mut WebConfig)) -> App {
        Self::start(backend, config, Some(change)).await
    }

    async fn start(backend: Backend, config: Config, web: Option<impl FnOnce(&mut WebConfig)>) -> App {
        let db = TestDb::create(backend).await;
        let conn = Db::connect(db.url()).await.expect("connect");
        kopilka_store::migrate::run(&conn).await.expect("migrate");
        let state = AppState::new(conn, config, kopilka_server::metrics_handle());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let s = state.clone();
        match web {
            Some(change) => {
                let mut cfg = WebConfig::new(&url);
                cfg.setup_token = Some(SETUP_CODE.into());
                change(&mut cfg);
                let pages = kopilka_web::router(state.clone(), cfg);
                tokio::spawn(async move { kopilka_server::serve_with(listener, s, pages, rx).await.expect("serve") });
            }
            None => {
                tokio::spawn(async move { kopilka_server::serve(listener, s, rx).await.expect("serve") });
            }
        }
        App { url, client: reqwest::Client::new(), state, backend, shutdown: tx, db }
    }

    /// The test's database.
    pub fn db(&self) -> &TestDb {
        &self.db
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        // Mark the pool closed now (`close` does so before its future is polled), so it
        // opens no new connection: on SQLite one would create the file again after the
        // guard removed it. Connections in use end with the test's runtime.
        drop(self.state.db.pool().close());
    }
}

/// An app a `both!` test can be given: built for one backend.
pub trait TestBackendApp: Sized {
    fn start(backend: Backend) -> impl Future<Output = Self>;
}

/// The API alone, with the default settings and no background worker.
impl TestBackendApp for App {
    fn start(backend: Backend) -> impl Future<Output = Self> {
        App::serve_api(backend, Config { worker: false, ..Config::default() })
    }
}

/// Run `body` with an app `A` on `backend`, in a multi-threaded runtime of 4 workers
/// (what `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` builds). The app,
/// and with it the test's database, is dropped when the body ends or panics.
pub fn run<A, F, Fut>(backend: Backend, body: F)
where
    A: TestBackendApp,
    F: FnOnce(A) -> Fut,
    Fut: Future,
{
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("test runtime");
    rt.block_on(async move {
        let app = A::start(backend).await;
        body(app).await;
    });
}
