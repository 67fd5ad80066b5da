//! The foundation every area relies on: sessions and their cookies, CSRF, login and its
//! rate limits, first-run setup, languages, assets.

use crate::both;
use crate::helpers::*;

both!(logged_out_admin_pages_send_to_the_login, |app: TestApp| async move {
    let mut b = app.browser();
    let p = b.get("/admin").await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some("/admin/login"));
    // A state-changing request without a session is refused, not redirected.
    b.get("/admin/login").await;
    b.post("/admin/password", &[("password", "xxxxxxxxxxxx"), ("password2", "xxxxxxxxxxxx")]).await.assert_status(401);
});

both!(csrf_is_checked_on_every_state_changing_request, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    app.staff(&t, "owner@shop.test", "owner", "a good password").await;
    let mut b = app.browser();
    // No token at all: refused before the password is looked at.
    b.get("/admin/login").await;
    let fields = vec![("email".to_owned(), "owner@shop.test".to_owned()), ("password".to_owned(), "a good password".to_owned())];
    b.post_raw("/admin/login", &fields).await.assert_status(403);
    // A wrong token.
    let mut wrong = fields.clone();
    wrong.push(("_csrf".into(), "0".repeat(64)));
    b.post_raw("/admin/login", &wrong).await.assert_status(403);
    // The token of another browser.
    let mut other = app.browser();
    other.get("/admin/login").await;
    let mut foreign = fields.clone();
    foreign.push(("_csrf".into(), other.csrf.clone().unwrap()));
    b.post_raw("/admin/login", &foreign).await.assert_status(403);
    // A request the browser marks cross-site is refused even with the right token.
    b.headers.push(("sec-fetch-site".into(), "cross-site".into()));
    b.post("/admin/login", &[("email", "owner@shop.test"), ("password", "wrong")]).await.assert_status(403);
    b.headers.clear();
    // The right token in htmx's header works as well as the form field.
    b.headers.push(("x-csrf-token".into(), b.csrf.clone().unwrap()));
    b.post_raw("/admin/login", &[("email".into(), "owner@shop.test".into()), ("password".into(), "wrong".into())]).await.assert_status(422);
    b.headers.clear();
    let ok = b.post("/admin/login", &[("email", "owner@shop.test"), ("password", "a good password")]).await;
    ok.assert_status(303);
    // The session starts with a new CSRF secret: the login page's token no longer works.
    let old = b.csrf.clone().unwrap();
    b.get("/admin").await.assert_status(200);
    assert_ne!(b.csrf.clone().unwrap(), old);
    let mut stale = vec![("password".to_owned(), "another good one".to_owned()), ("password2".to_owned(), "another good one".to_owned())];
    stale.push(("_csrf".into(), old));
    stale.push(("current".into(), "a good password".into()));
    b.post_raw("/admin/password", &stale).await.assert_status(403);
});

both!(session_cookies_are_http_only_lax_and_stored_hashed, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    app.staff(&t, "owner@shop.test", "owner", "a good password").await;
    let mut b = app.browser();
    b.get("/admin/login").await;
    let p = b.post("/admin/login", &[("email", "Owner@Shop.test "), ("password", "a good password")]).await;
    p.assert_status(303);
    let session = p.set_cookies.iter().find(|c| c.starts_with("kp_staff=")).expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    // Over plain http the cookie cannot be Secure (and so has no __Host- prefix).
    assert!(!session.contains("Secure"), "{session}");
    let token = b.cookies["kp_staff"].clone();
    let mut c = app.state.db.pool().acquire().await.unwrap();
    let hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM web_sessions").fetch_all(&mut *c).await.unwrap();
    assert_eq!(hashes, vec![kopilka_server::input::sha256_hex(&token)]);
    // Logging out deletes the session row and the cookie.
    drop(c);
    b.get("/admin").await.assert_status(200);
    b.post("/admin/logout", &[]).await.assert_status(303);
    assert!(!b.cookies.contains_key("kp_staff"));
    let mut c = app.state.db.pool().acquire().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions").fetch_one(&mut *c).await.unwrap();
    assert_eq!(n, 0);
    b.get("/admin").await.assert_status(303);
});

both!(secure_public_url_makes_host_prefixed_secure_cookies, |_app: TestApp| async move {
    let app = TestApp::with(_app.backend, |c| {
        *c = kopilka_web::WebConfig { setup_token: c.setup_token.clone(), ..kopilka_web::WebConfig::new("https://loyalty.example") }
    })
    .await;
    let mut b = app.browser();
    let p = b.get("/admin/login").await;
    let csrf = p.set_cookies.iter().find(|c| c.starts_with("__Host-kp_csrf=")).expect("csrf cookie");
    assert!(csrf.contains("Secure") && csrf.contains("HttpOnly") && csrf.contains("Path=/"), "{csrf}");
});

both!(login_is_rate_limited_per_account_and_per_address, |b0: TestApp| async move {
    let app = TestApp::with(b0.backend, |c| {
        c.login_per_account = 3;
        c.login_per_ip = 5;
    })
    .await;
    let t = app.tenant("Shop").await;
    app.staff(&t, "owner@shop.test", "owner", "a good password").await;
    let mut b = app.browser();
    b.get("/admin/login").await;
    for _ in 0..3 {
        b.post("/admin/login", &[("email", "owner@shop.test"), ("password", "wrong password")]).await.assert_status(422);
    }
    // The account's window is full: even the right password waits.
    b.post("/admin/login", &[("email", "owner@shop.test"), ("password", "a good password")]).await.assert_status(429).assert_contains("15");
    // Other accounts from the same address count against the address: 5 in all.
    b.post("/admin/login", &[("email", "x1@shop.test"), ("password", "p")]).await.assert_status(422);
    b.post("/admin/login", &[("email", "x2@shop.test"), ("password", "p")]).await.assert_status(429);
    b.post("/admin/login", &[("email", "x3@shop.test"), ("password", "p")]).await.assert_status(429);
});

both!(first_run_setup_creates_the_programme_and_its_owner_once, |app: TestApp| async move {
    let mut b = app.browser();
    b.get("/admin/login").await.assert_contains("/admin/setup");
    b.get("/admin/setup").await.assert_status(200);
    let good = [
        ("name", "Кофейня «Зерно»"),
        ("template", "cafe"),
        ("currency", "RUB"),
        ("time_zone", "Europe/Moscow"),
        ("language", "ru"),
        ("email", "owner@zerno.test"),
        ("password", "a good password"),
        ("password2", "a good password"),
    ];
    // A wrong code, a bad time zone and a short password: all said next to their fields.
    let mut bad: Vec<(&str, &str)> = good.to_vec();
    bad.push(("code", "nope"));
    bad.retain(|(k, _)| *k != "time_zone" && *k != "password" && *k != "password2");
    bad.extend([("time_zone", "Mars/Olympus"), ("password", "short"), ("password2", "short")]);
    let p = b.post("/admin/setup", &bad).await;
    p.assert_status(422)
        .assert_contains("This is not the setup code")
        .assert_contains("Enter a time zone such as Europe/Moscow")
        .assert_contains("at least 10");
    let mut c = app.state.db.pool().acquire().await.unwrap();
    let tenants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants").fetch_one(&mut *c).await.unwrap();
    assert_eq!(tenants, 0, "a failed setup writes nothing");
    drop(c);
    let mut ok: Vec<(&str, &str)> = good.to_vec();
    ok.push(("code", SETUP_CODE));
    let p = b.post("/admin/setup", &ok).await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some("/admin"));
    b.get("/admin").await.assert_status(200).assert_contains("owner@zerno.test").assert_contains("Кофейня «Зерно»");
    // The programme is the cafe template in the chosen zone and language.
    let mut c = app.state.db.pool().acquire().await.unwrap();
    let config: String = sqlx::query_scalar("SELECT config FROM programs").fetch_one(&mut *c).await.unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["time_zone"], "Europe/Moscow");
    assert_eq!(config["language"], "ru");
    assert_eq!(config["expiry"]["days"], 90);
    // Setup is closed now: for everyone.
    let mut other = app.browser();
    let p = other.get("/admin/setup").await;
    p.assert_status(303);
    other.get("/admin/login").await;
    ok.push(("name", "Another"));
    other.post("/admin/setup", &ok).await.assert_status(303);
    let tenants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants").fetch_one(&mut *c).await.unwrap();
    assert_eq!(tenants, 1);
});

both!(login_links_work_once_and_lead_to_setting_a_password, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let user = kopilka_web::staff::create_staff(&app.state.db, &t.id, "test", "new@shop.test", kopilka_web::staff::StaffRole::Analyst)
        .await
        .unwrap();
    let url = kopilka_web::staff::create_login_link(&app.state.db, &app.url, &t.id, &user.id).await.unwrap();
    let path = url.strip_prefix(&app.url).unwrap().to_owned();
    let mut b = app.browser();
    // Opening the link spends nothing (mail scanners follow links).
    b.get(&path).await.assert_status(200);
    b.get(&path).await.assert_status(200);
    let p = b.post(&path, &[]).await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some("/admin/password"));
    b.get("/admin/password").await.assert_status(200);
    b.post("/admin/password", &[("password", "a new password"), ("password2", "a new passwort")]).await.assert_status(422);
    let p = b.post("/admin/password", &[("password", "a new password"), ("password2", "a new password")]).await;
    p.assert_status(303);
    // An analyst's first page is the dashboard.
    assert_eq!(p.location.as_deref(), Some("/admin"));
    // Spent: a second use fails.
    let mut other = app.browser();
    other.get(&path).await;
    other.post(&path, &[]).await.assert_status(422);
    // The password works.
    let mut third = app.browser();
    third.login("new@shop.test", "a new password").await;
});

both!(a_password_change_revokes_unused_login_links, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let id = app.staff(&t, "kept@shop.test", "marketer", "the old password").await;
    let url = kopilka_web::staff::create_login_link(&app.state.db, &app.url, &t.id, &id).await.unwrap();
    let path = url.strip_prefix(&app.url).unwrap().to_owned();
    // Another staff member's link is not touched.
    let other_id = app.staff(&t, "other@shop.test", "analyst", "another password").await;
    let other_url = kopilka_web::staff::create_login_link(&app.state.db, &app.url, &t.id, &other_id).await.unwrap();
    let other_path = other_url.strip_prefix(&app.url).unwrap().to_owned();

    let mut b = app.browser();
    b.login("kept@shop.test", "the old password").await;
    b.get("/admin/password").await.assert_status(200);
    let p = b
        .post("/admin/password", &[("current", "the old password"), ("password", "a new password"), ("password2", "a new password")])
        .await;
    p.assert_status(303);

    // The link sent before the change no longer logs in.
    let mut holder = app.browser();
    holder.get(&path).await.assert_status(200);
    holder.post(&path, &[]).await.assert_status(422);
    holder.get("/admin/password").await.assert_status(303);
    let mut c = app.state.db.pool().acquire().await.unwrap();
    let unused: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_links WHERE used_at IS NULL").fetch_one(&mut *c).await.unwrap();
    assert_eq!(unused, 1, "only the other account's link is left");
    let mut other = app.browser();
    other.get(&other_path).await.assert_status(200);
    other.post(&other_path, &[]).await.assert_status(303);
});

both!(language_follows_the_browser_and_the_switch, |app: TestApp| async move {
    let mut b = app.browser();
    b.accept_language = Some("ru-RU,ru;q=0.9,en;q=0.8".into());
    b.get("/admin/login").await.assert_contains("Вход в Копилку").assert_contains("lang=\"ru\"");
    let p = b.post("/lang", &[("lang", "en"), ("back", "/admin/login")]).await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some("/admin/login"));
    b.get("/admin/login").await.assert_contains("Log in to Kopilka").assert_contains("lang=\"en\"");
    // The switch never sends anyone off the site.
    let p = b.post("/lang", &[("lang", "ru"), ("back", "//evil.example/")]).await;
    assert_eq!(p.location.as_deref(), Some("/admin"));
});

both!(assets_are_served_with_cache_headers, |app: TestApp| async move {
    let mut b = app.browser();
    let page = b.get("/admin/login").await;
    let start = page.body.find("/assets/vendor/htmx/htmx.min.js?v=").expect("htmx linked");
    let url = &page.body[start..];
    let url = url[..url.find('"').unwrap()].to_owned();
    let p = b.get(&url).await;
    p.assert_status(200);
    assert_eq!(p.headers["cache-control"], "public, max-age=31536000, immutable");
    assert!(p.headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(p.body.contains("htmx"));
    let stale = b.get("/assets/vendor/htmx/htmx.min.js?v=old").await;
    assert_eq!(stale.headers["cache-control"], "public, max-age=300");
    b.get("/assets/nope.js").await.assert_status(404);
    // An unknown console page is an HTML 404 in the reader's language.
    let p = b.get("/admin/nope").await;
    p.assert_status(404).assert_contains("Not found");
    assert!(p.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    // Pages forbid framing and foreign scripts.
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(page.headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
});
