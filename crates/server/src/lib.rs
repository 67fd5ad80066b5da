//! Kopilka's server: use cases (`services`), the HTTP API (`http`) and the background
//! worker (`jobs`).

pub mod auth;
pub mod error;
pub mod http;
pub mod input;
pub mod jobs;
pub mod ratelimit;
pub mod services;
pub mod state;

pub use state::{AppState, Config};

use std::net::SocketAddr;

/// Install the Prometheus recorder once per process; later calls reuse it.
pub fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|_| handle)
        })
        .clone()
}

/// Serve the API on `listener` (and run the worker when configured) until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_with(listener, state, axum::Router::new(), shutdown).await
}

/// [`serve`] with more routes merged into the API's router (the web UI).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: axum::Router<AppState>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let worker = state.config.worker.then(|| tokio::spawn(jobs::run(state.clone(), shutdown.clone())));
    let app = http::router_with(state, extra);
    let mut rx = shutdown.clone();
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await;
    if let Some(w) = worker {
        let _ = w.await;
    }
    result
}
