//! Typed helpers for the JSON API (bearer keys) and the error envelope's assertions.

use crate::app::App;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub admin: String,
}

impl App {
    /// A new tenant (retail template) with its admin key.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let t = kopilka_server::services::accounts::create_tenant(&self.state.db, name, None, "retail").await.expect("tenant");
        Tenant { id: t.tenant_id, slug: t.slug, admin: t.api_key }
    }

    /// Send a JSON request with a bearer key (none when `key` is empty): (status, body).
    /// An empty body is `null`, a body that is not JSON a string. Any status passes.
    pub async fn send(&self, method: reqwest::Method, key: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut r = self.client.request(method, format!("{}{path}", self.url));
        if !key.is_empty() {
            r = r.bearer_auth(key);
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_string());
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, v)
    }

    /// [`App::send`], asserting the server did not fail (no 5xx).
    pub async fn request(&self, method: reqwest::Method, key: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (status, v) = self.send(method, key, path, body).await;
        assert!(status < 500, "{path} answered {status}: {v}");
        (status, v)
    }

    /// Send a raw body (for parse errors).
    pub async fn post_raw(&self, key: &str, path: &str, body: &str) -> (u16, Value) {
        let resp = self.client.post(format!("{}{path}", self.url)).bearer_auth(key).body(body.to_owned()).send().await.expect("request");
        let status = resp.status().as_u16();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, key, path, None).await
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, key, path, Some(&body)).await
    }

    pub async fn put(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::PUT, key, path, Some(&body)).await
    }

    pub async fn delete(&self, key: &str, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, key, path, None).await
    }

    /// Create a store; returns its id.
    pub async fn store(&self, admin: &str, code: &str) -> String {
        let (s, v) = self.post(admin, "/api/v1/stores", json!({"code": code, "name": format!("Store {code}")})).await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().expect("store id").to_owned()
    }

    /// A pos key bound to a store (and a till when given).
    pub async fn pos_key(&self, admin: &str, store: &str, till: Option<&str>) -> String {
        let mut body = json!({"role": "pos", "store_id": store});
        if let Some(t) = till {
            body["till_id"] = json!(t);
        }
        let (s, v) = self.post(admin, "/api/v1/api-keys", body).await;
        assert_eq!(s, 201, "{v}");
        v["key"].as_str().expect("key").to_owned()
    }

    /// Create an API key of any shape; returns (id, key).
    pub async fn api_key(&self, admin: &str, body: Value) -> (String, String) {
        let (s, v) = self.post(admin, "/api/v1/api-keys", body).await;
        assert_eq!(s, 201, "{v}");
        (v["id"].as_str().expect("key id").to_owned(), v["key"].as_str().expect("key").to_owned())
    }

    /// Enrol a member; returns the full answer.
    pub async fn member(&self, key: &str, body: Value) -> Value {
        let (s, v) = self.post(key, "/api/v1/members", body).await;
        assert_eq!(s, 201, "{v}");
        v
    }

    /// Enrol a member and return only its id.
    pub async fn member_id(&self, key: &str, body: Value) -> String {
        self.member(key, body).await["id"].as_str().expect("member id").to_owned()
    }

    /// Give a member points by an admin adjustment.
    pub async fn give(&self, admin: &str, member: &str, points: i64) {
        let (s, v) = self.post(admin, &format!("/api/v1/members/{member}/adjustments"), json!({"points": points, "reason": "test"})).await;
        assert_eq!(s, 201, "{v}");
    }

    pub async fn balance(&self, key: &str, member: &str) -> Value {
        let (s, v) = self.get(key, &format!("/api/v1/members/{member}/balance")).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Every ledger entry of a member, newest first, following the cursor.
    pub async fn ledger_all(&self, key: &str, member: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = format!("/api/v1/members/{member}/ledger?limit=500");
        for _ in 0..100 {
            let (s, v) = self.get(key, &path).await;
            assert_eq!(s, 200, "{v}");
            out.extend(v["entries"].as_array().expect("entries").iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => path = format!("/api/v1/members/{member}/ledger?limit=500&cursor={c}"),
                None => return out,
            }
        }
        panic!("ledger cursor did not end");
    }

    /// Replace the programme (fields left out take their defaults).
    pub async fn program(&self, admin: &str, body: Value) -> Value {
        let (s, v) = self.put(admin, "/api/v1/program", body).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Check out a receipt and assert 200.
    pub async fn checkout(&self, key: &str, body: Value) -> Value {
        let (s, v) = self.post(key, "/api/v1/pos/checkout", body).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Run every due background job now.
    pub async fn run_jobs(&self) {
        kopilka_server::jobs::drain(&self.state).await.expect("jobs");
    }

    /// Rebuild every balance of a tenant from the ledger and assert no difference.
    pub async fn assert_ledger_consistent(&self, tenant: &Tenant) {
        let (s, v) = self.get(&tenant.admin, "/api/v1/admin/ledger-check").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["differences"], json!([]), "ledger rebuild found differences: {v}");
    }
}

/// Assert a non-2xx answer: its status, its code, and the error envelope of docs/api.md, "Errors"
/// `{"error": {"code", "message", "fields", "request_id"}}`.
#[track_caller]
pub fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    let (s, v) = got;
    assert_eq!(*s, status, "expected {status} {code}, got {s}: {v}");
    let e = &v["error"];
    assert_eq!(e["code"], code, "expected code {code}: {v}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "error message must be a non-empty string: {v}");
    assert!(e["fields"].is_object(), "error fields must be an object: {v}");
    assert!(e["request_id"].as_str().is_some_and(|m| !m.is_empty()), "error request_id must be a non-empty string: {v}");
    assert_eq!(v.as_object().map(|m| m.len()), Some(1), "the error body holds only \"error\": {v}");
}

/// Assert a 422 `validation_error` that names `field` in "fields".
#[track_caller]
pub fn assert_field_error(got: &(u16, Value), field: &str) {
    assert_error(got, 422, "validation_error");
    assert!(got.1["error"]["fields"].get(field).is_some(), "fields should name {field}: {}", got.1);
}
