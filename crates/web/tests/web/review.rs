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
