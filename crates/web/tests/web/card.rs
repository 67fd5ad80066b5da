//! The admin console's card design: saved through the service (what the API shows),
//! validation next to the fields, images, roles, tenants and CSRF.

use crate::both;
use crate::helpers::*;
use serde_json::Value;

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

async fn design(app: &TestApp, t: &Tenant) -> Value {
    let (s, v) = app.api(reqwest::Method::GET, &t.admin, "/api/v1/program/card", None).await;
    assert_eq!(s, 200, "{v}");
    v
}

fn fields(bg: &str, rotate: bool) -> Vec<(&str, &str)> {
    let mut f = vec![
        ("background_color", bg),
        ("foreground_color", "#ffffff"),
        ("label_color", "#ffeeaa"),
        ("organization_name", "Coffee & Co"),
        ("description", "Coffee card"),
        ("labels.balance", "Beans"),
        ("labels.tier", "Level"),
        ("labels.card_number", "Card"),
        ("labels.name", "Name"),
        ("barcode_format", "qr"),
    ];
    if rotate {
        f.push(("qr_rotation", "on"));
    }
    f
}

both!(the_card_design_is_saved_and_shown, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let other = app.tenant("Other").await;
    let before_other = design(&app, &other).await;
    let mut b = app.logged_in(&t, "marketer@shop.test", "marketer").await;
    b.get("/admin/card").await.assert_status(200).assert_contains("data-testid=\"card-preview\"").assert_contains("/admin/card\"");
    let p = b.post("/admin/card", &fields("#123456", true)).await;
    p.assert_status(200).assert_contains("Beans").assert_contains("background: #123456");
    let d = design(&app, &t).await;
    assert_eq!(
        (d["background_color"].as_str(), d["labels"]["balance"].as_str(), d["qr_rotation"].as_bool()),
        (Some("#123456"), Some("Beans"), Some(true))
    );
    assert_eq!(d["organization_name"], "Coffee & Co");
    // A bad colour and an empty label: shown next to the fields, nothing written.
    let mut bad = fields("blue", false);
    bad.retain(|(k, _)| *k != "labels.tier");
    let p = b.post("/admin/card", &bad).await;
    p.assert_status(422);
    for f in ["background_color", "labels.tier"] {
        let e = &p.body[p.body.find(&format!("data-testid=\"error-{f}\"")).unwrap()..];
        assert!(e.find("</p>").unwrap() > 40, "no message for {f}: {}", &e[..200]);
    }
    let d = design(&app, &t).await;
    assert_eq!((d["background_color"].as_str(), d["qr_rotation"].as_bool()), (Some("#123456"), Some(true)));
    // Images: a PNG is taken, anything else is refused; removing works.
    b.post("/admin/card/images/logo", &[("png_base64", PNG)]).await.assert_status(303);
    assert_eq!(design(&app, &t).await["images"]["logo"], true);
    b.get("/admin/card").await.assert_contains("data:image/png;base64,");
    b.post("/admin/card/images/strip", &[("png_base64", "bm90IGEgcG5n")])
        .await
        .assert_status(422)
        .assert_contains("data-testid=\"error-image-strip\"");
    b.post("/admin/card/images/strip", &[]).await.assert_status(422);
    b.post("/admin/card/images/wallpaper", &[("png_base64", PNG)]).await.assert_status(404);
    assert_eq!(design(&app, &t).await["images"]["strip"], false);
    b.post("/admin/card/images/logo/delete", &[]).await.assert_status(303);
    assert_eq!(design(&app, &t).await["images"]["logo"], false);
    // The other tenant's card is as it was.
    assert_eq!(design(&app, &other).await, before_other);
});

both!(card_roles_and_csrf, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let before = design(&app, &t).await;
    let mut cashier = app.logged_in(&t, "cashier@shop.test", "cashier").await;
    cashier.get("/admin/card").await.assert_status(403);
    cashier.post("/admin/card", &fields("#000000", false)).await.assert_status(403);
    cashier.post("/admin/card/images/logo", &[("png_base64", PNG)]).await.assert_status(403);
    let mut analyst = app.logged_in(&t, "analyst@shop.test", "analyst").await;
    analyst.get("/admin/card").await.assert_status(200).assert_lacks("save-card").assert_contains("disabled");
    analyst.post("/admin/card", &fields("#000000", false)).await.assert_status(403);
    analyst.post("/admin/card/images/logo", &[("png_base64", PNG)]).await.assert_status(403);
    let mut owner = app.logged_in(&t, "owner@shop.test", "owner").await;
    owner.get("/admin/card").await;
    let raw: Vec<(String, String)> = fields("#000000", false).into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    owner.post_raw("/admin/card", &raw).await.assert_status(403);
    owner.post_raw("/admin/card/images/logo", &[("png_base64".into(), PNG.into())]).await.assert_status(403);
    assert_eq!(design(&app, &t).await, before);
});
