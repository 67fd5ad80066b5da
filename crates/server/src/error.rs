//! The one error type of the HTTP edge.
//!
//! Every non-2xx answer has the same envelope: `{"error": {"code", "message", "fields",
//! "request_id"}}`. Business rules produce their own stable codes; shape problems are
//! `validation_error` with the offending fields. A 500 is opaque to the client and logged
//! once with its cause; it is always a bug.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kopilka_store::StoreError;
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), fields: BTreeMap::new() }
    }

    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing, unknown, expired or revoked API key")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn store_mismatch(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "store_mismatch", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A business rule (422 with the rule's own code).
    pub fn rule(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// A shape problem in one field.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        let path = path.into();
        let message = message.into();
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_error", format!("{path}: {message}"));
        e.fields.insert(path, message);
        e
    }

    pub fn fields(fields: BTreeMap<String, String>) -> Self {
        let message = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("; ");
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, code: "validation_error", message, fields }
    }

    pub fn rate_limited() -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests; slow down and retry later")
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Retry(m) => {
                let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "retry", "the database is busy; retry the request");
                tracing::warn!(error = %m, "transaction gave up after retries");
                e.fields.clear();
                e
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::internal(e)
    }
}

tokio::task_local! {
    /// The current request's id, for error bodies.
    pub static REQUEST_ID: String;
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = REQUEST_ID.try_with(|id| id.clone()).unwrap_or_default();
        let body = serde_json::json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "fields": self.fields,
                "request_id": request_id,
            }
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        resp
    }
}
