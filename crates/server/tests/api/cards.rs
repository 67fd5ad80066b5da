//! Cards and passes (docs/api.md, "Cards and passes"), on both databases: card codes
//! decoded by independent readers, signed passes verified by openssl, the Apple pass web
//! service end to end with pushes recorded by a local receiver, Google Wallet JWTs checked
//! by PyJWT and the official LoyaltyObject schema, the public links, the card design.

#[path = "../../../cards/tests/readers/mod.rs"]
pub mod readers;

use crate::helpers::{Backend, TestApp, assert_error, assert_field_error};
use kopilka_cards::gwallet::ServiceAccount;
use kopilka_cards::sign::{DevChain, PassSigner, dev_chain};
use kopilka_server::Config;
use kopilka_server::services::cards::{CardsConfig, GoogleAccount};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};

pub const PUBLIC_URL: &str = "https://cards.example";
pub const ISSUER_ID: &str = "3388000000012345678";

/// One development chain per test binary (RSA key generation is slow in debug builds).
pub fn chain() -> &'static DevChain {
    static C: OnceLock<DevChain> = OnceLock::new();
    C.get_or_init(|| dev_chain("pass.dev.kopilka", "DEVTEAM123").expect("dev chain"))
}

/// A Google service-account key file whose key is the dev chain's (its certificate then
/// carries the public key PyJWT verifies with).
pub fn service_account_json() -> String {
    json!({
        "type": "service_account",
        "client_email": "kopilka-test@kopilka-dev.iam.gserviceaccount.com",
        "private_key_id": "test-key-1",
        "private_key": chain().key_pem,
    })
    .to_string()
}

/// A request a local receiver recorded.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub http2: bool,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A local stand-in for APNs, the Google Wallet REST API (and its token endpoint) and the
/// SMS provider: it records every request and answers 200 (`/token` with an access token,
/// a GET of a loyalty object with 404 until one was written).
pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let s = seen.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let s = s.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                let seen = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                    http2: parts.version == axum::http::Version::HTTP_2,
                };
                let is_token = seen.path == "/token";
                s.lock().unwrap().push(seen);
                if is_token {
                    axum::Json(json!({"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"}))
                } else {
                    axum::Json(json!({}))
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, seen }
    }

    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

pub fn cards_config(rx: &Receiver) -> CardsConfig {
    let c = chain();
    CardsConfig {
        public_url: PUBLIC_URL.into(),
        apple: Some(PassSigner::from_pem(&c.cert_pem, &c.key_pem, &c.wwdr_pem).expect("signer")),
        google: Some(GoogleAccount {
            issuer_id: ISSUER_ID.into(),
            account: ServiceAccount::from_json(&service_account_json()).expect("service account"),
        }),
        apns_url: rx.url.clone(),
        google_api_url: rx.url.clone(),
        sms_url: Some(format!("{}/sms", rx.url)),
        sms_token: Some("sms-secret".into()),
        smtp_addr: None,
        smtp_from: "cards@kopilka.test".into(),
    }
}

/// A test app whose wallet keys are the dev chain and whose adapters point at a receiver.
pub async fn cards_app(backend: Backend) -> (TestApp, Receiver) {
    let rx = Receiver::start().await;
    let config = Config { worker: false, cards: Arc::new(cards_config(&rx)), ..Config::default() };
    (TestApp::with_config(backend, config).await, rx)
}

/// `both_cards!(name, |app, rx| async move { ... })`: like `both!`, with a receiver.
#[macro_export]
macro_rules! both_cards {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let (app, rx) = $crate::cards::cards_app($crate::helpers::Backend::Sqlite).await;
                ($body)(app, rx).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let (app, rx) = $crate::cards::cards_app($crate::helpers::Backend::Postgres).await;
                ($body)(app, rx).await;
            }
        }
    };
}

impl TestApp {
    /// GET raw bytes: (status, headers, body).
    pub async fn get_bytes(&self, key: &str, path: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut r = self.client.get(format!("{}{path}", self.url));
        if !key.is_empty() {
            r = r.bearer_auth(key);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let body = resp.bytes().await.expect("body").to_vec();
        assert!(status < 500, "{path} answered {status}: {}", String::from_utf8_lossy(&body));
        (status, h, body)
    }

    /// Send to the Apple web service: (status, body).
    pub async fn apple(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Vec<u8>) {
        let mut r = self.client.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            r = r.header("authorization", format!("ApplePass {t}"));
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_string());
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.bytes().await.expect("body").to_vec();
        assert!(status < 500, "{path} answered {status}");
        (status, body)
    }
}

/// Decode an image of a format with the independent reader; None when the reader is
/// missing outside CI.
fn decode_bytes(format: &str, bytes: &[u8], svg: bool) -> Option<String> {
    if !readers::have(readers::reader_for(format)) || (svg && !readers::have("rsvg-convert")) {
        return None;
    }
    let dir = readers::temp_dir(&format!("api-{format}-{}", kopilka_store::new_id()));
    let png = dir.join("code.png");
    if svg {
        let s = dir.join("code.svg");
        std::fs::write(&s, bytes).expect("write");
        readers::svg_to_png(&s, &png);
    } else {
        std::fs::write(&png, bytes).expect("write");
    }
    let got = readers::decode(format, &png);
    let _ = std::fs::remove_dir_all(dir);
    Some(got.unwrap_or_else(|| panic!("{format} did not decode")))
}

both_cards!(card_codes_decode_in_every_format, |app: TestApp, _rx: Receiver| async move {
    let t = app.tenant("Codes Cafe").await;
    let m = app.member(&t.admin, json!({"phone": "+79120000001"})).await;
    let id = m["id"].as_str().unwrap();
    let card = m["card_number"].as_str().unwrap();
    let token = m["qr_token"].as_str().unwrap();
    for format in ["qr", "code128", "ean13", "pdf417", "aztec"] {
        let want = if format == "qr" { token } else { card };
        for (ext, ct) in [("png", "image/png"), ("svg", "image/svg+xml")] {
            let (s, h, body) = app.get_bytes(&t.admin, &format!("/api/v1/members/{id}/card.{ext}?format={format}"), &[]).await;
            assert_eq!(s, 200, "{format} {ext}");
            assert_eq!(h["content-type"], ct);
            assert_eq!(h["cache-control"], "no-store");
            if let Some(got) = decode_bytes(format, &body, ext == "svg") {
                assert_eq!(got, want, "{format} {ext}");
            }
        }
    }
    // The default format is QR.
    let (s, _, body) = app.get_bytes(&t.admin, &format!("/api/v1/members/{id}/card.png"), &[]).await;
    assert_eq!(s, 200);
    if let Some(got) = decode_bytes("qr", &body, false) {
        assert_eq!(got, token);
    }

    // Bad input: an unknown format or parameter, another tenant's member, a pos key
    // asking for the QR (it holds the token pos keys do not see).
    assert_field_error(&app.get(&t.admin, &format!("/api/v1/members/{id}/card.png?format=datamatrix")).await, "format");
    assert_field_error(&app.get(&t.admin, &format!("/api/v1/members/{id}/card.png?size=3")).await, "size");
    assert_error(&app.get(&t.admin, "/api/v1/members/nope/card.svg").await, 404, "member_not_found");
    let other = app.tenant("Other Cafe").await;
    assert_error(&app.get(&other.admin, &format!("/api/v1/members/{id}/card.png?format=code128")).await, 404, "member_not_found");
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    assert_error(&app.get(&pos, &format!("/api/v1/members/{id}/card.png?format=qr")).await, 403, "forbidden");
    let (s, _, _) = app.get_bytes(&pos, &format!("/api/v1/members/{id}/card.png?format=code128"), &[]).await;
    assert_eq!(s, 200);
    assert_error(&app.get("", &format!("/api/v1/members/{id}/card.png")).await, 401, "unauthorized");
});

both_cards!(pass_is_signed_and_shows_balance_without_name, |app: TestApp, _rx: Receiver| async move {
    let t = app.tenant("Pass Cafe").await;
    let id = app.member_id(&t.admin, json!({"email": "anna@example.com", "name": "Anna Petrova"})).await;
    app.give(&t.admin, &id, 1234).await;
    let (s, h, body) = app.get_bytes(&t.admin, &format!("/api/v1/members/{id}/pass.pkpass"), &[]).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(h["content-type"], "application/vnd.apple.pkpass");
    assert!(h.contains_key("last-modified"));
    if !(readers::have("openssl") && readers::have("python3")) {
        return;
    }
    let pass = readers::verify_pkpass(&body).expect("a valid pass");
    assert_eq!(pass["serialNumber"], id.as_str());
    assert_eq!(pass["passTypeIdentifier"], "pass.dev.kopilka");
    assert_eq!(pass["teamIdentifier"], "DEVTEAM123");
    assert_eq!(pass["storeCard"]["primaryFields"][0]["value"], 1234);
    assert_eq!(pass["webServiceURL"], format!("{PUBLIC_URL}/wallet/apple/{}", t.slug));
    assert!(pass["authenticationToken"].as_str().is_some_and(|s| s.len() >= 16));
    let text = pass.to_string();
    assert!(!text.contains("Anna"), "no personal name unless the programme opts in: {text}");
    assert!(!text.contains("anna@"), "{text}");

    // The programme opts in to names, and changes its look.
    let (s, v) = app
        .put(
            &t.admin,
            "/api/v1/program/card",
            json!({"show_name": true, "background_color": "#aa0000", "barcode_format": "pdf417", "labels": {"balance": "Баллы"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, _, body) = app.get_bytes(&t.admin, &format!("/api/v1/members/{id}/pass.pkpass"), &[]).await;
    let pass = readers::verify_pkpass(&body).expect("a valid pass");
    assert!(pass.to_string().contains("Anna Petrova"));
    assert_eq!(pass["backgroundColor"], "rgb(170, 0, 0)");
    assert_eq!(pass["barcodes"][0]["format"], "PKBarcodeFormatPDF417");
    assert_eq!(pass["storeCard"]["primaryFields"][0]["label"], "Баллы");

    // A tampered copy fails verification.
    let bad = readers::tamper(&body, b"1234", b"9999");
    assert!(readers::verify_pkpass(&bad).is_err());
});

both_cards!(card_design_is_validated, |app: TestApp, _rx: Receiver| async move {
    let t = app.tenant("Design Cafe").await;
    let (s, v) = app.get(&t.admin, "/api/v1/program/card").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["barcode_format"], "qr");
    assert_eq!(v["show_name"], false);
    assert_field_error(&app.put(&t.admin, "/api/v1/program/card", json!({"background_color": "red"})).await, "background_color");
    assert_field_error(&app.put(&t.admin, "/api/v1/program/card", json!({"barcode_format": "upc"})).await, "barcode_format");
    let got = app.put(&t.admin, "/api/v1/program/card", json!({"colour": "#000000"})).await;
    assert_error(&got, 422, "validation_error");
    let got = app.put(&t.admin, "/api/v1/program/card", json!({"labels": {"balance": ""}})).await;
    assert_field_error(&got, "labels.balance");
    // A GET sent back is accepted (read-only parts ignored).
    let (_, v) = app.get(&t.admin, "/api/v1/program/card").await;
    let (s, back) = app.put(&t.admin, "/api/v1/program/card", v.clone()).await;
    assert_eq!(s, 200, "{back}");
    assert_eq!(back, v);

    // Images: PNG only.
    let png = kopilka_cards::image::solid_png(160, 50, [1, 2, 3]);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let (s, v) = app.put(&t.admin, "/api/v1/program/card/images/logo", json!({"png_base64": b64})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["width"], 160);
    assert_field_error(&app.put(&t.admin, "/api/v1/program/card/images/logo", json!({"png_base64": "aGVsbG8="})).await, "png_base64");
    // A PNG cut short is refused (it would break every pass).
    let cut = base64::engine::general_purpose::STANDARD.encode(&png[..png.len() / 2]);
    assert_field_error(&app.put(&t.admin, "/api/v1/program/card/images/logo", json!({"png_base64": cut})).await, "png_base64");
    assert_error(&app.put(&t.admin, "/api/v1/program/card/images/banner", json!({"png_base64": b64})).await, 404, "not_found");
    let (_, v) = app.get(&t.admin, "/api/v1/program/card").await;
    assert_eq!(v["images"]["logo"], true);
    let (s, _, body) = app.get_bytes("", &format!("/c/{}/logo.png", t.slug), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(body, png);

    // Only admins change the design.
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    assert_error(&app.put(&pos, "/api/v1/program/card", json!({})).await, 403, "forbidden");
});

/// Fetch the pass through the web service; Some(pass.json) on 200, None on 304.
async fn fetch_pass(app: &TestApp, path: &str, token: &str, since: Option<&str>) -> (Option<Value>, Option<String>) {
    let mut h = vec![("authorization", format!("ApplePass {token}"))];
    if let Some(s) = since {
        h.push(("if-modified-since", s.to_owned()));
    }
    let hr: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, headers, body) = app.get_bytes("", path, &hr).await;
    let lm = headers.get("last-modified").map(|v| v.to_str().unwrap().to_owned());
    match s {
        304 => (None, lm),
        200 => {
            let pass = if readers::have("openssl") { readers::verify_pkpass(&body).expect("valid pass") } else { Value::Null };
            (Some(pass), lm)
        }
        other => panic!("pass fetch answered {other}"),
    }
}

both_cards!(apple_web_service_flow, |app: TestApp, rx: Receiver| async move {
    let t = app.tenant("Wallet Cafe").await;
    let id = app.member_id(&t.admin, json!({"phone": "+79120000002"})).await;
    app.give(&t.admin, &id, 100).await;
    let (_, _, body) = app.get_bytes(&t.admin, &format!("/api/v1/members/{id}/pass.pkpass"), &[]).await;
    let token = if readers::have("openssl") {
        readers::verify_pkpass(&body).expect("pass")["authenticationToken"].as_str().unwrap().to_owned()
    } else {
        return;
    };
    let base = format!("/wallet/apple/{}/v1", t.slug);
    let device = "a1b2c3d4e5f6device";
    let push = "0fa1e2d3c4b5a6978877665544332211ffeeddccbbaa99887766554433221100";
    let reg = format!("{base}/devices/{device}/registrations/pass.dev.kopilka/{id}");
    rx.take();

    // Register: wrong or missing token 401, first time 201, again 200.
    let (s, _) = app.apple(reqwest::Method::POST, &reg, Some("wrong-token-wrong-token"), Some(json!({"pushToken": push}))).await;
    assert_eq!(s, 401);
    let (s, _) = app.apple(reqwest::Method::POST, &reg, None, Some(json!({"pushToken": push}))).await;
    assert_eq!(s, 401);
    let (s, _) = app.apple(reqwest::Method::POST, &reg, Some(&token), Some(json!({"pushToken": "not hex!"}))).await;
    assert_eq!(s, 422);
    let (s, _) = app.apple(reqwest::Method::POST, &reg, Some(&token), Some(json!({"pushToken": push}))).await;
    assert_eq!(s, 201);
    let (s, _) = app.apple(reqwest::Method::POST, &reg, Some(&token), Some(json!({"pushToken": push}))).await;
    assert_eq!(s, 200);
    // Another pass type or programme is unknown here.
    let (s, _) = app
        .apple(
            reqwest::Method::POST,
            &format!("{base}/devices/{device}/registrations/pass.other/{id}"),
            Some(&token),
            Some(json!({"pushToken": push})),
        )
        .await;
    assert_eq!(s, 404);

    // List: everything first, then nothing since the last tag.
    let list = format!("{base}/devices/{device}/registrations/pass.dev.kopilka");
    let (s, body) = app.apple(reqwest::Method::GET, &list, None, None).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["serialNumbers"], json!([id]));
    let tag = v["lastUpdated"].as_str().unwrap().to_owned();
    let (s, _) = app.apple(reqwest::Method::GET, &format!("{list}?passesUpdatedSince={tag}"), None, None).await;
    assert_eq!(s, 204);

    // The latest pass, then 304 for the same Last-Modified.
    let pass_path = format!("{base}/passes/pass.dev.kopilka/{id}");
    let (pass, lm) = fetch_pass(&app, &pass_path, &token, None).await;
    assert_eq!(pass.unwrap()["storeCard"]["primaryFields"][0]["value"], 100);
    let lm = lm.expect("Last-Modified");
    let (pass, _) = fetch_pass(&app, &pass_path, &token, Some(&lm)).await;
    assert!(pass.is_none(), "not modified");
    let (s, _) = app.apple(reqwest::Method::GET, &pass_path, Some("bad-token-bad-token"), None).await;
    assert_eq!(s, 401);

    // A balance change: the worker marks the pass updated and pushes to the device.
    app.give(&t.admin, &id, 50).await;
    app.run_jobs().await;
    let pushes: Vec<Seen> = rx.take().into_iter().filter(|s| s.path.starts_with("/3/device/")).collect();
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0].path, format!("/3/device/{push}"));
    assert_eq!(pushes[0].header("apns-topic"), Some("pass.dev.kopilka"));
    assert_eq!(pushes[0].header("apns-priority"), Some("5"));
    assert_eq!(pushes[0].body, "{}");
    assert!(pushes[0].http2, "APNs is spoken over HTTP/2");
    let (s, body) = app.apple(reqwest::Method::GET, &format!("{list}?passesUpdatedSince={tag}"), None, None).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["serialNumbers"], json!([id]));
    assert!(v["lastUpdated"].as_str().unwrap().parse::<i64>().unwrap() > tag.parse::<i64>().unwrap());
    let (pass, _) = fetch_pass(&app, &pass_path, &token, Some(&lm)).await;
    assert_eq!(pass.expect("modified")["storeCard"]["primaryFields"][0]["value"], 150);

    // Nothing changed: no push.
    app.run_jobs().await;
    assert!(rx.take().iter().all(|s| !s.path.starts_with("/3/device/")));

    // Log, then unregister: no more pushes.
    let (s, _) = app.apple(reqwest::Method::POST, &format!("{base}/log"), None, Some(json!({"logs": ["something failed"]}))).await;
    assert_eq!(s, 200);
    let (s, _) = app.apple(reqwest::Method::DELETE, &reg, Some("bad-token-bad-token"), None).await;
    assert_eq!(s, 401);
    let (s, _) = app.apple(reqwest::Method::DELETE, &reg, Some(&token), None).await;
    assert_eq!(s, 200);
    let (s, _) = app.apple(reqwest::Method::GET, &list, None, None).await;
    assert_eq!(s, 204);
    app.give(&t.admin, &id, 1).await;
    app.run_jobs().await;
    assert!(rx.take().iter().all(|s| !s.path.starts_with("/3/device/")));
});

/// Whether python3 with PyJWT, jsonschema, cryptography and google-api-python-client is
/// here (in CI it must be).
fn check_jwt_tools() -> bool {
    if !readers::have("python3") {
        return false;
    }
    let ok = std::process::Command::new("python3")
        .args(["-c", "import jwt, jsonschema, googleapiclient, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("PyJWT, jsonschema, cryptography and google-api-python-client are required in CI");
        }
        eprintln!("SKIP: pip install pyjwt jsonschema cryptography google-api-python-client");
    }
    ok
}

/// Verify a save JWT with PyJWT and the discovery schemas; the claims.
fn check_jwt(jwt: &str) -> Option<Value> {
    if !check_jwt_tools() {
        return None;
    }
    let dir = readers::temp_dir(&format!("jwt-{}", kopilka_store::new_id()));
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, &chain().cert_pem).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/scripts/gwallet_check.py");
    let out = std::process::Command::new("python3").arg(script).arg(jwt).arg(&cert).output().expect("python3");
    let _ = std::fs::remove_dir_all(dir);
    assert!(out.status.success(), "JWT check failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("claims"))
}

both_cards!(google_wallet_jwt_verifies_and_updates_flow, |app: TestApp, rx: Receiver| async move {
    let t = app.tenant("Google Cafe").await;
    let id = app.member_id(&t.admin, json!({"phone": "+79120000003", "name": "Boris"})).await;
    app.give(&t.admin, &id, 70).await;
    let (s, v) = app.get(&t.admin, &format!("/api/v1/members/{id}/google-wallet")).await;
    assert_eq!(s, 200, "{v}");
    let jwt = v["jwt"].as_str().unwrap();
    assert_eq!(v["save_url"], format!("https://pay.google.com/gp/v/save/{jwt}"));
    if let Some(claims) = check_jwt(jwt) {
        let obj = &claims["payload"]["loyaltyObjects"][0];
        assert_eq!(obj["id"], format!("{ISSUER_ID}.{id}"));
        assert_eq!(obj["loyaltyPoints"]["balance"]["int"], 70);
        assert!(!claims.to_string().contains("Boris"), "no name by default");
        assert_eq!(claims["iss"], "kopilka-test@kopilka-dev.iam.gserviceaccount.com");
    }
    rx.take();
    // A balance change updates the object through the REST API.
    app.give(&t.admin, &id, 5).await;
    app.run_jobs().await;
    let seen = rx.take();
    let token = seen.iter().find(|s| s.path == "/token").expect("token request");
    assert!(token.body.contains("jwt-bearer"));
    let put = seen.iter().find(|s| s.method == "PUT").expect("object update");
    assert_eq!(put.path, format!("/walletobjects/v1/loyaltyObject/{ISSUER_ID}.{id}"));
    assert_eq!(put.header("authorization"), Some("Bearer ya29.test"));
    let body: Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(body["loyaltyPoints"]["balance"]["int"], 75);
    // The object sent is valid against the official schema too.
    if check_jwt_tools() {
        let dir = readers::temp_dir(&format!("obj-{}", kopilka_store::new_id()));
        std::fs::write(dir.join("o.json"), &put.body).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/scripts/gwallet_check.py");
        let out = std::process::Command::new("python3").arg(script).arg("--object").arg(dir.join("o.json")).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let _ = std::fs::remove_dir_all(dir);
    }
});

both_cards!(public_links_open_the_card, |app: TestApp, _rx: Receiver| async move {
    let t = app.tenant("Public Cafe").await;
    let id = app.member_id(&t.admin, json!({"phone": "+79120000004"})).await;
    app.give(&t.admin, &id, 42).await;
    let (s, links) = app.get(&t.admin, &format!("/api/v1/members/{id}/card-links")).await;
    assert_eq!(s, 200, "{links}");
    let page = links["page_url"].as_str().unwrap().strip_prefix(PUBLIC_URL).unwrap().to_owned();
    assert!(page.starts_with(&format!("/c/{}/", t.slug)));
    let (s, h, body) = app.get_bytes("", &page, &[]).await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("42") && html.contains("Add to Apple Wallet") && html.contains("Save to Google Wallet"), "{html}");
    assert!(html.contains("width=device-width"));
    for (suffix, ct) in
        [("/card.svg", "image/svg+xml"), ("/card.png?format=ean13", "image/png"), ("/pass.pkpass", "application/vnd.apple.pkpass")]
    {
        let (s, h, _) = app.get_bytes("", &format!("{page}{suffix}"), &[]).await;
        assert_eq!(s, 200, "{suffix}");
        assert_eq!(h["content-type"], ct);
    }
    let (s, v) = app.get("", &format!("{page}/google-wallet")).await;
    assert_eq!(s, 200);
    assert!(v["save_url"].as_str().unwrap().starts_with("https://pay.google.com/gp/v/save/"));
    // A guessed or altered link is a 404.
    let forged = format!("/c/{}/{id}.00000000000000000000000000000000", t.slug);
    assert_error(&app.get("", &forged).await, 404, "not_found");
    assert_error(&app.get("", &format!("{forged}/card.png")).await, 404, "not_found");
    let other = app.tenant("Other Public").await;
    let moved = page.replacen(&t.slug, &other.slug, 1);
    assert_error(&app.get("", &moved).await, 404, "not_found");
    let analyst = app.api_key(&t.admin, json!({"role": "analyst"})).await.1;
    let (s, _) = app.get(&analyst, &format!("/api/v1/members/{id}/card-links")).await;
    assert_eq!(s, 200);
});

both_cards!(wallets_not_configured_is_a_clear_422, |app: TestApp, _rx: Receiver| async move {
    // An app without the operator's keys.
    let bare = TestApp::new(app.backend).await;
    let t = bare.tenant("Bare Cafe").await;
    let id = bare.member_id(&t.admin, json!({"phone": "+79120000005"})).await;
    assert_error(&bare.get(&t.admin, &format!("/api/v1/members/{id}/pass.pkpass")).await, 422, "wallet_not_configured");
    assert_error(&bare.get(&t.admin, &format!("/api/v1/members/{id}/google-wallet")).await, 422, "wallet_not_configured");
    // The tenant brings its own certificate and service account.
    let c = chain();
    let (s, v) = bare
        .put(
            &t.admin,
            "/api/v1/program/card/apple-certificate",
            json!({"cert_pem": c.cert_pem, "key_pem": c.key_pem, "wwdr_pem": c.wwdr_pem}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["pass_type_id"], "pass.dev.kopilka");
    let (s, _, body) = bare.get_bytes(&t.admin, &format!("/api/v1/members/{id}/pass.pkpass"), &[]).await;
    assert_eq!(s, 200);
    if readers::have("openssl") {
        readers::verify_pkpass(&body).expect("valid pass");
    }
    let (_, design) = bare.get(&t.admin, "/api/v1/program/card").await;
    assert_eq!(design["apple_certificate"], json!({"own": true, "pass_type_id": "pass.dev.kopilka"}));
    assert!(!design.to_string().contains("PRIVATE KEY"), "keys are never returned");
    let other = dev_chain("pass.dev.other", "T2").expect("chain");
    let got = bare
        .put(
            &t.admin,
            "/api/v1/program/card/apple-certificate",
            json!({"cert_pem": c.cert_pem, "key_pem": other.key_pem, "wwdr_pem": c.wwdr_pem}),
        )
        .await;
    assert_field_error(&got, "key_pem");
    let sa: Value = serde_json::from_str(&service_account_json()).unwrap();
    assert_field_error(
        &bare.put(&t.admin, "/api/v1/program/card/google-account", json!({"issuer_id": "abc", "service_account": sa})).await,
        "issuer_id",
    );
    let (s, v) = bare.put(&t.admin, "/api/v1/program/card/google-account", json!({"issuer_id": ISSUER_ID, "service_account": sa})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = bare.get(&t.admin, &format!("/api/v1/members/{id}/google-wallet")).await;
    assert_eq!(s, 200, "{v}");
    if let Some(claims) = check_jwt(v["jwt"].as_str().unwrap()) {
        assert_eq!(claims["payload"]["loyaltyObjects"][0]["id"], format!("{ISSUER_ID}.{id}"));
    }
    // The same certificate as PKCS #12, and a wrong password.
    if readers::have("openssl") {
        let dir = readers::temp_dir(&format!("p12-{}", kopilka_store::new_id()));
        std::fs::write(dir.join("c.pem"), &c.cert_pem).unwrap();
        std::fs::write(dir.join("k.pem"), &c.key_pem).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["pkcs12", "-export", "-passout", "pass:pw", "-inkey"])
            .arg(dir.join("k.pem"))
            .arg("-in")
            .arg(dir.join("c.pem"))
            .arg("-out")
            .arg(dir.join("c.p12"))
            .output()
            .unwrap();
        assert!(out.status.success());
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join("c.p12")).unwrap());
        let got = bare
            .put(
                &t.admin,
                "/api/v1/program/card/apple-certificate",
                json!({"pkcs12_base64": b64, "password": "nope", "wwdr_pem": c.wwdr_pem}),
            )
            .await;
        assert_field_error(&got, "pkcs12_base64");
        let (s, v) = bare
            .put(
                &t.admin,
                "/api/v1/program/card/apple-certificate",
                json!({"pkcs12_base64": b64, "password": "pw", "wwdr_pem": c.wwdr_pem}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["pass_type_id"], "pass.dev.kopilka");
        let _ = std::fs::remove_dir_all(dir);
    }
    let (s, _) = bare.delete(&t.admin, "/api/v1/program/card/apple-certificate").await;
    assert_eq!(s, 204);
    assert_error(&bare.get(&t.admin, &format!("/api/v1/members/{id}/pass.pkpass")).await, 422, "wallet_not_configured");
});

#[test]
fn apns_client_takes_the_pass_certificate_as_its_tls_identity() {
    let c = chain();
    let signer = PassSigner::from_pem(&c.cert_pem, &c.key_pem, &c.wwdr_pem).expect("signer");
    let id = signer.identity_der().expect("identity");
    assert!(kopilka_server::services::notify::apns_client(Some(id)).is_ok(), "an HTTP/2 TLS client with the identity");
    assert!(kopilka_server::services::notify::apns_client(Some((vec![1, 2, 3], vec![4, 5, 6]))).is_err());
}
