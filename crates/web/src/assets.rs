//! Static assets: everything under `crates/web/assets/`, compiled into the binary and
//! served at `/assets/{path}`. Pages link them as `/assets/{path}?v={hash}` (see
//! [`url`]); a request with the current hash may be cached for a year (`immutable`),
//! others for five minutes, and every answer carries an ETag.

use crate::WebState;
use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::LazyLock;

struct Asset {
    bytes: &'static [u8],
    /// The first 16 hex digits of the SHA-256 of the bytes.
    hash: String,
}

static TABLE: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    crate::embedded::ASSETS
        .iter()
        .map(|(path, bytes)| (*path, Asset { bytes, hash: hex::encode(Sha256::digest(bytes))[..16].to_owned() }))
        .collect()
});

/// The URL of an asset, e.g. `url("vendor/htmx/htmx.min.js")`. An unknown path is a bug
/// (a test renders every page); it still gives a URL, which answers 404.
pub fn url(path: &str) -> String {
    match TABLE.get(path) {
        Some(a) => format!("/assets/{path}?v={}", a.hash),
        None => {
            tracing::warn!(path, "unknown asset");
            format!("/assets/{path}")
        }
    }
}

pub fn routes() -> Router<WebState> {
    Router::new().route("/assets/{*path}", get(serve))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "text/plain; charset=utf-8",
    }
}

async fn serve(Path(path): Path<String>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    // Licence files are served too (they travel with the code they cover).
    let Some(a) = TABLE.get(path.as_str()) else { return StatusCode::NOT_FOUND.into_response() };
    let etag = format!("\"{}\"", a.hash);
    let current = query.as_deref().and_then(|q| q.strip_prefix("v=")) == Some(a.hash.as_str());
    let cache = if current { "public, max-age=31536000, immutable" } else { "public, max-age=300" };
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex etag"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&path)));
    (h, a.bytes).into_response()
}
