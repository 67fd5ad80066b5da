//! Adversarial review: bugs found by probing the web UI, each with the test that showed it.

use crate::both;
use crate::helpers::*;

// The language switch's `back` with a tab went into the Location header as it was; a
// browser drops tabs from URLs, so `/<TAB>/evil.example` led to `//evil.example` (an open
// redirect). Another control character made the Location invalid: a 500.
both!(language_switch_back_refuses_control_characters, |app: TestApp| async move {
    let mut b = app.browser();
    b.get("/admin/login").await.assert_status(200);
    let p = b.post("/lang", &[("lang", "en"), ("back", "/\t/evil.example/")]).await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some("/admin"));
    let p = b.post("/lang", &[("lang", "en"), ("back", "/admin\u{1}")]).await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some("/admin"));
});

// An adjustment of a member id with a NUL character (from the path) reached PostgreSQL,
// which refuses NUL in text: a 500 instead of "not found".
both!(adjusting_a_member_id_with_nul_is_not_found, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let mut b = app.logged_in(&t, "owner@example.com", "owner").await;
    b.get("/admin/members").await;
    b.post("/admin/members/%00/adjust", &[("points", "5"), ("reason", "test")]).await.assert_status(404);
});

// docs/web.md: `kopilka staff login-link` gives an existing account a new link for a
// forgotten password. The link logged the person in, but the password page then asked
// for the current password, which they had forgotten: no way to set a new one.
both!(a_login_link_lets_a_person_who_forgot_the_password_set_a_new_one, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let id = app.staff(&t, "owner@shop.test", "owner", "the forgotten one").await;
    let url = kopilka_web::staff::create_login_link(&app.state.db, &app.url, &t.id, &id).await.unwrap();
    let path = url.strip_prefix(&app.url).unwrap().to_owned();
    let mut b = app.browser();
    b.get(&path).await.assert_status(200);
    let p = b.post(&path, &[]).await;
    p.assert_status(303);
    assert_eq!(p.location.as_deref(), Some("/admin/password"));
    b.get("/admin/password").await.assert_status(200);
    let p = b.post("/admin/password", &[("password", "a brand new password"), ("password2", "a brand new password")]).await;
    p.assert_status(303);
    let mut other = app.browser();
    other.login("owner@shop.test", "a brand new password").await;
    // A session from the password form (not the link) needs the current password again.
    other.get("/admin/password").await.assert_status(200);
    other.post("/admin/password", &[("password", "yet another password"), ("password2", "yet another password")]).await.assert_status(422);
});

// The password form checks the current password with no limit: a borrowed or stolen
// session could guess the account's password there without end, past the login's
// "10 attempts per account per 15 minutes" (docs/web.md).
both!(current_password_guesses_count_against_the_account_limit, |b0: TestApp| async move {
    let app = TestApp::with(b0.backend, |c| c.login_per_account = 3).await;
    let t = app.tenant("Shop").await;
    let mut b = app.logged_in(&t, "owner@shop.test", "owner").await;
    b.get("/admin/password").await.assert_status(200);
    for _ in 0..2 {
        b.post("/admin/password", &[("current", "a guess"), ("password", "a brand new password"), ("password2", "a brand new password")])
            .await
            .assert_status(422);
    }
    // The login counted once: the window is full now, even for the right password.
    let p = b
        .post(
            "/admin/password",
            &[("current", "a good password"), ("password", "a brand new password"), ("password2", "a brand new password")],
        )
        .await;
    p.assert_status(429);
    // Nothing changed: the old password still logs in once the window has room.
    let (_, hash) = {
        let mut c = app.state.db.pool().acquire().await.unwrap();
        let u = kopilka_store::web::staff_by_email_any_tenant(&mut c, "owner@shop.test", 1).await.unwrap().remove(0);
        (u.id, u.password_hash.unwrap())
    };
    assert!(kopilka_web::staff::verify_password("a good password", Some(&hash)).await);
});
