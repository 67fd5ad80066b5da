//! The member portal over HTTP: code login through a real SMS adapter (a local receiver),
//! its rate limits, and that a member sees only their own data in their own programme.

use crate::both;
use crate::helpers::*;
use kopilka_server::Config;
use kopilka_server::services::cards::CardsConfig;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A local SMS provider: keeps every message it is sent.
#[derive(Clone, Default)]
pub struct Sms {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Value>>>,
}

impl Sms {
    pub async fn start() -> Sms {
        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let s = seen.clone();
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                axum::Json(json!({}))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sms { url, seen }
    }

    /// The 6-digit code of the last message to `to`.
    pub fn code_for(&self, to: &str) -> String {
        let seen = self.seen.lock().unwrap();
        let m = seen.iter().rev().find(|m| m["to"] == to).unwrap_or_else(|| panic!("no SMS to {to}: {seen:?}"));
        m["text"].as_str().unwrap().chars().take(6).collect()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// A test app whose SMS adapter points at a local receiver.
pub async fn app_with_sms(backend: Backend, change: impl FnOnce(&mut kopilka_web::WebConfig)) -> (TestApp, Sms) {
    let sms = Sms::start().await;
    let cards = CardsConfig { sms_url: Some(sms.url.clone()), ..CardsConfig::default() };
    let app = TestApp::with_config(backend, Config { worker: false, cards: Arc::new(cards), ..Config::default() }, change).await;
    (app, sms)
}

/// Log a browser in to `/m/{slug}` with the code sent to `phone`.
pub async fn member_login(b: &mut Browser, sms: &Sms, slug: &str, phone: &str) {
    b.get(&format!("/m/{slug}/login")).await.assert_status(200);
    b.post(&format!("/m/{slug}/login"), &[("contact", phone)]).await.assert_status(200).assert_contains("6-digit code");
    let code = sms.code_for(phone);
    let p = b.post(&format!("/m/{slug}/login/code"), &[("contact", phone), ("code", &code)]).await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some(format!("/m/{slug}").as_str()));
}

both!(a_member_sees_only_their_own_card_and_programme, |b0: TestApp| async move {
    let (app, sms) = app_with_sms(b0.backend, |_| {}).await;
    drop(b0);
    let a = app.tenant("Shop A").await;
    let other = app.tenant("Shop B").await;
    let store = app.store(&a, "S1").await;
    let store_b = app.store(&other, "S1").await;
    let me = app.member(&a, json!({"phone": "+79990000001", "name": "Anna"})).await;
    let neighbour = app.member(&a, json!({"phone": "+79990000002", "name": "Boris"})).await;
    // The same phone in another programme.
    let twin = app.member(&other, json!({"phone": "+79990000001", "name": "Anna B"})).await;
    let line = |id: &str, store: &str, m: &Value| json!({"receipt_id": id, "store_id": store, "member": {"member_id": m["id"]}, "items": [{"sku": "A", "quantity": 1, "unit_price_minor": 100000}]});
    app.checkout(&a, line("MINE-1", &store, &me)).await;
    app.checkout(&a, line("THEIRS-1", &store, &neighbour)).await;
    app.checkout(&other, line("TWIN-1", &store_b, &twin)).await;

    let mut b = app.browser();
    // Logged out: the card sends to the login page, a POST is refused.
    let p = b.get(&format!("/m/{}", a.slug)).await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some(format!("/m/{}/login", a.slug).as_str()));
    member_login(&mut b, &sms, &a.slug, "+79990000001").await;
    // The SMS went to the member's phone; the URL never held it.
    assert!(sms.seen.lock().unwrap().iter().all(|m| m["text"].as_str().unwrap().contains("Shop A")));

    let card = b.get(&format!("/m/{}", a.slug)).await;
    card.assert_status(200)
        .assert_contains(me["card_number"].as_str().unwrap())
        .assert_lacks(neighbour["card_number"].as_str().unwrap())
        .assert_lacks(twin["card_number"].as_str().unwrap())
        .assert_contains("data-testid=\"balance\">100<");
    b.get(&format!("/m/{}/history", a.slug))
        .await
        .assert_status(200)
        .assert_contains("MINE-1")
        .assert_lacks("THEIRS-1")
        .assert_lacks("TWIN-1");
    let qr = b.get(&format!("/m/{}/card.svg", a.slug)).await;
    qr.assert_status(200);
    assert_eq!(qr.headers["content-type"], "image/svg+xml");
    b.get(&format!("/m/{}/offers", a.slug)).await.assert_status(200);
    b.get(&format!("/m/{}/rules", a.slug)).await.assert_status(200).assert_contains("for every");

    // The session is Shop A's: Shop B's portal does not know it.
    let p = b.get(&format!("/m/{}", other.slug)).await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some(format!("/m/{}/login", other.slug).as_str()));
    b.get(&format!("/m/{}/history", other.slug)).await.assert_status(303);
    b.post(&format!("/m/{}/consents", other.slug), &[("marketing", "on")]).await.assert_status(401);

    // Consents: the member changes theirs, recorded with the portal as source.
    b.get(&format!("/m/{}/consents", a.slug)).await.assert_status(200);
    b.post(&format!("/m/{}/consents", a.slug), &[("marketing", "on"), ("sms", "on")]).await.assert_status(200).assert_contains("Saved");
    let (_, m) = app.api(reqwest::Method::GET, &a.admin, &format!("/api/v1/members/{}", me["id"].as_str().unwrap()), None).await;
    assert_eq!(m["consents"]["marketing"]["granted"], true);
    assert_eq!(m["consents"]["marketing"]["source"], "portal");
    assert_eq!(m["consents"]["sms"]["granted"], true);
    let (_, n) = app.api(reqwest::Method::GET, &a.admin, &format!("/api/v1/members/{}", neighbour["id"].as_str().unwrap()), None).await;
    assert!(n["consents"].get("marketing").is_none_or(|c| c["granted"] == false));

    // A wrong code does not log in; an unknown member gets the same answer as a known one.
    let mut c = app.browser();
    c.get(&format!("/m/{}/login", a.slug)).await;
    let unknown = c.post(&format!("/m/{}/login", a.slug), &[("contact", "+79995550000")]).await;
    unknown.assert_status(200).assert_contains("6-digit code");
    c.post(&format!("/m/{}/login/code", a.slug), &[("contact", "+79995550000"), ("code", "123456")]).await.assert_status(422);
    c.post(&format!("/m/{}/login/code", a.slug), &[("contact", "+79990000002"), ("code", "000000")]).await.assert_status(422);
    assert!(!c.cookies.contains_key("kp_member"));
    // A code works once.
    let code = sms.code_for("+79990000001");
    c.post(&format!("/m/{}/login/code", a.slug), &[("contact", "+79990000001"), ("code", &code)]).await.assert_status(422);

    // Logging out ends the session.
    b.post(&format!("/m/{}/logout", a.slug), &[]).await.assert_status(303);
    b.get(&format!("/m/{}", a.slug)).await.assert_status(303);
    // An unknown programme is a 404.
    b.get("/m/no-such-programme/login").await.assert_status(404);
});

both!(code_requests_are_rate_limited_per_contact_and_address, |b0: TestApp| async move {
    let (app, sms) = app_with_sms(b0.backend, |c| {
        c.login_per_account = 3;
        c.login_per_ip = 6;
    })
    .await;
    drop(b0);
    let a = app.tenant("Shop A").await;
    app.member(&a, json!({"phone": "+79990000001"})).await;
    let mut b = app.browser();
    b.get(&format!("/m/{}/login", a.slug)).await;
    for _ in 0..3 {
        b.post(&format!("/m/{}/login", a.slug), &[("contact", "+79990000001")]).await.assert_status(200);
    }
    assert_eq!(sms.count(), 3);
    // The contact's window is full: no fourth code.
    b.post(&format!("/m/{}/login", a.slug), &[("contact", "+7 999 000-00-01")]).await.assert_status(429).assert_contains("15 minutes");
    assert_eq!(sms.count(), 3);
    // Other contacts from the same address count against the address: 6 in all.
    b.post(&format!("/m/{}/login", a.slug), &[("contact", "+79990000003")]).await.assert_status(200);
    b.post(&format!("/m/{}/login", a.slug), &[("contact", "+79990000004")]).await.assert_status(200);
    b.post(&format!("/m/{}/login", a.slug), &[("contact", "+79990000005")]).await.assert_status(429);
    // Malformed contacts are told so.
    let mut c = app.browser();
    c.get(&format!("/m/{}/login", a.slug)).await;
    c.post(&format!("/m/{}/login", a.slug), &[("contact", "not a phone")]).await.assert_status(422);
});

both!(wrong_codes_are_limited_and_codes_expire_with_use, |b0: TestApp| async move {
    let (app, sms) = app_with_sms(b0.backend, |c| c.login_per_account = 3).await;
    drop(b0);
    let a = app.tenant("Shop A").await;
    app.member(&a, json!({"phone": "+79990000001"})).await;
    let mut b = app.browser();
    b.get(&format!("/m/{}/login", a.slug)).await;
    b.post(&format!("/m/{}/login", a.slug), &[("contact", "+79990000001")]).await.assert_status(200);
    let code = sms.code_for("+79990000001");
    let wrong = if code == "111111" { "222222" } else { "111111" };
    for _ in 0..3 {
        b.post(&format!("/m/{}/login/code", a.slug), &[("contact", "+79990000001"), ("code", wrong)]).await.assert_status(422);
    }
    // Three wrong tries: even the right code waits now.
    b.post(&format!("/m/{}/login/code", a.slug), &[("contact", "+79990000001"), ("code", &code)]).await.assert_status(429);
});

both!(portal_forms_need_the_csrf_token, |b0: TestApp| async move {
    let (app, sms) = app_with_sms(b0.backend, |_| {}).await;
    drop(b0);
    let a = app.tenant("Shop A").await;
    app.member(&a, json!({"phone": "+79990000001"})).await;
    let mut b = app.browser();
    b.get(&format!("/m/{}/login", a.slug)).await;
    let no_token = vec![("contact".to_owned(), "+79990000001".to_owned())];
    b.post_raw(&format!("/m/{}/login", a.slug), &no_token).await.assert_status(403);
    assert_eq!(sms.count(), 0, "a refused request sends nothing");
    member_login(&mut b, &sms, &a.slug, "+79990000001").await;
    b.get(&format!("/m/{}/consents", a.slug)).await.assert_status(200);
    b.post_raw(&format!("/m/{}/consents", a.slug), &[("marketing".to_owned(), "on".to_owned())]).await.assert_status(403);
    b.post_raw(&format!("/m/{}/logout", a.slug), &[]).await.assert_status(403);
    let mut wrong = vec![("marketing".to_owned(), "on".to_owned())];
    wrong.push(("_csrf".into(), "0".repeat(64)));
    b.post_raw(&format!("/m/{}/consents", a.slug), &wrong).await.assert_status(403);
    // Still logged in, nothing changed.
    b.get(&format!("/m/{}", a.slug)).await.assert_status(200);
});
