//! Review of the cards work (issue 4): regressions for what an adversarial read found.

use crate::both_cards;
use crate::cards::Receiver;
use crate::helpers::TestApp;
use base64::Engine;
use serde_json::{Value, json};

fn sms_code(rx: &Receiver, to: &str) -> String {
    let seen = rx.take();
    let sms = seen.iter().rev().find(|s| s.path == "/sms").expect("an SMS was sent");
    let v: Value = serde_json::from_str(&sms.body).unwrap();
    assert_eq!(v["to"], to);
    v["text"].as_str().unwrap().chars().take(6).collect()
}

// The confirm URL (`/join/{programme}/confirm/{enrolment}`) sits in browser history and
// the enrolment id in the server's logs. Once the enrolment was confirmed, posting ANY
// code to it answered the member's public card link: the credential that shows the QR
// (the member's qr_token) and the wallet passes.
both_cards!(a_confirmed_enrolment_does_not_show_the_card_for_a_wrong_code, |app: TestApp, rx: Receiver| async move {
    let t = app.tenant("Review Join").await;
    rx.take();
    let (s, v) = app.post("", &format!("/join/{}", t.slug), json!({"phone": "+79120000091", "consent_personal_data": true})).await;
    assert_eq!(s, 201, "{v}");
    let confirm = v["confirm_url"].as_str().unwrap().strip_prefix(crate::cards::PUBLIC_URL).unwrap().to_owned();
    let code = sms_code(&rx, "+79120000091");
    let (s, v) = app.post("", &confirm, json!({"code": code})).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["page_url"].is_string());
    // The right code again: the same card.
    let (s, again) = app.post("", &confirm, json!({"code": code})).await;
    assert_eq!((s, &again["page_url"]), (200, &v["page_url"]));
    // A wrong code: no card link.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, leaked) = app.post("", &confirm, json!({"code": wrong})).await;
    assert_ne!(s, 200, "a wrong code answered the card: {leaked}");
    assert!(!leaked.to_string().contains("/c/"), "{leaked}");
});

// A pos key may not see a member's QR token (the QR image is 403 to it, the card links
// are admin and analyst only), yet the Google save link it may fetch carried the public
// card page (linksModuleData), whose card.png?format=qr is the token, so a till could
// satisfy `redeem.auth: qr` for any member it can look up.
both_cards!(a_pos_key_does_not_get_the_public_card_link_through_google_wallet, |app: TestApp, _rx: Receiver| async move {
    let t = app.tenant("Review Pos").await;
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    let id = app.member_id(&t.admin, json!({"phone": "+79120000092"})).await;
    let (s, links) = app.get(&t.admin, &format!("/api/v1/members/{id}/card-links")).await;
    assert_eq!(s, 200, "{links}");
    let page = links["page_url"].as_str().unwrap().to_owned();
    let (s, v) = app.get(&pos, &format!("/api/v1/members/{id}/google-wallet")).await;
    assert_eq!(s, 200, "{v}");
    let jwt = v["jwt"].as_str().unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap();
    let claims = String::from_utf8(claims).unwrap();
    assert!(!claims.contains(&page), "a pos key got the member's public card link: {claims}");
    // The admin's (and the member's own) save link still carries it.
    let (s, v) = app.get(&t.admin, &format!("/api/v1/members/{id}/google-wallet")).await;
    assert_eq!(s, 200, "{v}");
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v["jwt"].as_str().unwrap().split('.').nth(1).unwrap()).unwrap();
    assert!(String::from_utf8(claims).unwrap().contains(&page));
});

// "A design or image change changes every pass": deleting an uploaded image did not, so
// passes kept the old logo and devices were told (304) nothing changed.
both_cards!(deleting_a_card_image_changes_every_pass, |app: TestApp, _rx: Receiver| async move {
    let t = app.tenant("Review Images").await;
    let id = app.member_id(&t.admin, json!({"phone": "+79120000093"})).await;
    let png = base64::engine::general_purpose::STANDARD.encode(kopilka_cards::image::solid_png(20, 20, [200, 10, 10]));
    let (s, v) = app.put(&t.admin, "/api/v1/program/card/images/logo", json!({"png_base64": png})).await;
    assert_eq!(s, 200, "{v}");
    let path = format!("/api/v1/members/{id}/pass.pkpass");
    let (s, h1, _) = app.get_bytes(&t.admin, &path, &[]).await;
    assert_eq!(s, 200);
    let (s, _) = app.delete(&t.admin, "/api/v1/program/card/images/logo").await;
    assert_eq!(s, 204);
    let (s, h2, _) = app.get_bytes(&t.admin, &path, &[]).await;
    assert_eq!(s, 200);
    assert_ne!(h1["last-modified"], h2["last-modified"], "the pass lost its logo but shows as unchanged");
});

// A pass fetched between a balance change and the worker's refresh (a till or the admin
// downloading pass.pkpass, the member's own link, a save link) recorded the new balance
// as already shown, so the worker saw no change and never pushed to the member's phone:
// the pass on the device stayed on the old balance.
both_cards!(a_pass_fetched_before_the_worker_runs_does_not_swallow_the_push, |app: TestApp, rx: Receiver| async move {
    let t = app.tenant("Review Push").await;
    let id = app.member_id(&t.admin, json!({"phone": "+79120000094"})).await;
    app.give(&t.admin, &id, 100).await;
    let pass = format!("/api/v1/members/{id}/pass.pkpass");
    let (s, _, _) = app.get_bytes(&t.admin, &pass, &[]).await;
    assert_eq!(s, 200);
    let secret = {
        let mut c = app.state.db.pool().acquire().await.unwrap();
        let s = kopilka_store::cards::settings(&mut c, &t.id).await.unwrap().expect("card settings");
        (0..s.secret.len()).step_by(2).map(|i| u8::from_str_radix(&s.secret[i..i + 2], 16).unwrap()).collect::<Vec<u8>>()
    };
    let token = kopilka_server::services::cards::apple_token(&secret, &id);
    let push = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let reg = format!("/wallet/apple/{}/v1/devices/dev1/registrations/pass.dev.kopilka/{id}", t.slug);
    let (s, _) = app.apple(reqwest::Method::POST, &reg, Some(&token), Some(json!({"pushToken": push}))).await;
    assert_eq!(s, 201);
    app.run_jobs().await;
    rx.take();

    app.give(&t.admin, &id, 50).await;
    // Someone downloads the pass before the worker runs.
    let (s, _, _) = app.get_bytes(&t.admin, &pass, &[]).await;
    assert_eq!(s, 200);
    app.run_jobs().await;
    let pushes: Vec<_> = rx.take().into_iter().filter(|s| s.path == format!("/3/device/{push}")).collect();
    assert_eq!(pushes.len(), 1, "the registered device must hear of the new balance");
});

both_cards!(concurrent_code_sends_never_pass_the_limit, |app: TestApp, _rx: Receiver| async move {
    let t = app.tenant("Otp Flood").await;
    let store = app.store(&t.admin, "S1").await;
    let pos = app.pos_key(&t.admin, &store, Some("T1")).await;
    let m = app.member(&t.admin, json!({"phone": "8 912 000-00-77"})).await;
    let id = m["id"].as_str().unwrap().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (client, url, key, id) = (app.client.clone(), app.url.clone(), pos.clone(), id.clone());
        tasks.spawn(async move {
            let r = client
                .post(format!("{url}/api/v1/pos/otp"))
                .bearer_auth(key)
                .json(&json!({"member": {"member_id": id}}))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = tasks.join_next().await {
        statuses.push(s.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 7, "{statuses:?}");
});
