//! HTML form bodies (`application/x-www-form-urlencoded`).

use crate::WebError;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use std::collections::BTreeMap;

/// Decode a form body; None when it is not valid form encoding or UTF-8.
pub fn parse(body: &[u8]) -> Option<BTreeMap<String, String>> {
    kopilka_server::http::public::parse_urlencoded(body)
}

/// A submitted form: field name → value (the last one wins). The CSRF field has already
/// been checked by [`crate::csrf::guard`] and is removed.
#[derive(Debug, Default)]
pub struct Form(pub BTreeMap<String, String>);

impl Form {
    /// A field's value, trimmed; None when missing or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// A field's value as given (untrimmed, empty when missing): passwords.
    pub fn raw(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or("")
    }

    pub fn checked(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|v| v == "on" || v == "true" || v == "1")
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = WebError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), 1024 * 1024)
            .await
            .map_err(|_| WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "common.error.bad_request"))?;
        let mut fields = parse(&bytes).ok_or_else(|| WebError::new(StatusCode::BAD_REQUEST, "common.error.bad_request"))?;
        fields.remove(crate::csrf::FIELD);
        Ok(Form(fields))
    }
}

/// A form as typed and what is wrong with it, field by field, for showing it again:
/// templates call `form.v("name")` for a value and `form.e("name")` for its message.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    pub values: BTreeMap<String, String>,
    pub errors: BTreeMap<String, String>,
}

impl Fields {
    pub fn new(values: BTreeMap<String, String>, errors: BTreeMap<String, String>) -> Fields {
        Fields { values, errors }
    }

    /// The value of a field ("" when absent).
    pub fn v(&self, k: &str) -> String {
        self.values.get(k).cloned().unwrap_or_default()
    }

    /// The message of a field ("" when it is fine).
    pub fn e(&self, k: &str) -> String {
        self.errors.get(k).cloned().unwrap_or_default()
    }

    /// Whether a field holds this value (a selected option).
    pub fn is(&self, k: &str, value: &str) -> bool {
        self.values.get(k).is_some_and(|v| v == value)
    }
}
