//! The OpenAPI 3 document (placeholder filled below).
use axum::Json;
use serde_json::Value;

pub async fn document() -> Json<Value> {
    Json(super::super::http::openapi::spec())
}

pub fn spec() -> Value {
    serde_json::json!({"openapi": "3.0.3", "info": {"title": "Kopilka", "version": "1"}, "paths": {}})
}
