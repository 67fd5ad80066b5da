//! Enrolment by link, on both databases: the form at /join/{programme}, the code by SMS
//! (a local receiver) or by email (an in-test SMTP sink), attempt limits, then the member
//! with a card and its wallet buttons; and the printable poster.

use crate::both_cards;
use crate::cards::{PUBLIC_URL, Receiver, cards_config, readers};
use crate::helpers::{TestApp, assert_error};
use kopilka_server::Config;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A minimal SMTP server that accepts everything and keeps each message's text.
pub struct SmtpSink {
    pub addr: String,
    pub messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        let m = messages.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let m = m.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    let _ = w.write_all(b"220 sink ready\r\n").await;
                    let mut data = false;
                    let mut msg = String::new();
                    for _ in 0..10_000 {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            break;
                        }
                        if data {
                            if line == ".\r\n" {
                                data = false;
                                m.lock().unwrap().push(std::mem::take(&mut msg));
                                let _ = w.write_all(b"250 queued\r\n").await;
                            } else {
                                msg.push_str(&line);
                            }
                            continue;
                        }
                        let cmd = line.to_ascii_uppercase();
                        let reply: &[u8] = if cmd.starts_with("DATA") {
                            data = true;
                            b"354 go on\r\n"
                        } else if cmd.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 ok\r\n"
                        };
                        let _ = w.write_all(reply).await;
                    }
                });
            }
        });
        SmtpSink { addr, messages }
    }
}

impl TestApp {
    /// POST a browser form; (status, Location, body).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let body: String = form.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let resp = client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let loc = resp.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        assert!(status < 500, "{path}: {status} {text}");
        (status, loc, text)
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn sms_code(rx: &Receiver, to: &str) -> String {
    let seen = rx.take();
    let sms = seen.iter().rev().find(|s| s.path == "/sms").expect("an SMS was sent");
    let v: Value = serde_json::from_str(&sms.body).unwrap();
    assert_eq!(v["to"], to);
    v["text"].as_str().unwrap().chars().take(6).collect()
}

both_cards!(enrolment_by_sms_from_form_to_card, |app: TestApp, rx: Receiver| async move {
    let t = app.tenant("Join Cafe").await;
    let (s, h, body) = app.get_bytes("", &format!("/join/{}", t.slug), &[]).await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("name=\"phone\"") && html.contains("consent_personal_data") && html.contains("width=device-width"));
    let join = format!("/join/{}", t.slug);

    // The consent is required; a bad phone is named.
    let (s, _, page) = app.post_form(&join, &[("phone", "+79120000021"), ("name", "Vera")]).await;
    assert_eq!(s, 422);
    assert!(page.contains("consent"), "{page}");
    let (s, _, page) = app.post_form(&join, &[("phone", "12"), ("consent_personal_data", "on")]).await;
    assert_eq!(s, 422, "{page}");
    rx.take();

    let (s, loc, _) = app
        .post_form(
            &join,
            &[
                ("name", "Vera <b>"),
                ("phone", "8 912 000-00-21"),
                ("birthday", "1990-05-17"),
                ("consent_personal_data", "on"),
                ("consent_marketing", "on"),
            ],
        )
        .await;
    assert_eq!(s, 303);
    let confirm = loc.expect("Location");
    assert!(confirm.starts_with(&format!("{join}/confirm/")), "{confirm}");
    assert!(!confirm.contains("912"), "no personal data in URLs");
    let code = sms_code(&rx, "+79120000021");
    let (s, _, body) = app.get_bytes("", &confirm, &[]).await;
    assert_eq!(s, 200);
    assert!(String::from_utf8(body).unwrap().contains("one-time-code"));

    // A wrong code, then the right one: a member with a card.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, _, page) = app.post_form(&confirm, &[("code", wrong)]).await;
    assert_eq!(s, 422);
    assert!(page.contains("4 tries left"), "{page}");
    let (s, loc, _) = app.post_form(&confirm, &[("code", &code)]).await;
    assert_eq!(s, 303);
    let card = loc.expect("card page");
    assert!(card.starts_with(&format!("/c/{}/", t.slug)), "{card}");
    let (s, _, body) = app.get_bytes("", &card, &[]).await;
    assert_eq!(s, 200);
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("Add to Apple Wallet") && html.contains("Save to Google Wallet"), "{html}");
    let (s, _, _) = app.get_bytes("", &format!("{card}/pass.pkpass"), &[]).await;
    assert_eq!(s, 200);
    // Confirming again shows the same card.
    let (s, loc, _) = app.post_form(&confirm, &[("code", &code)]).await;
    assert_eq!((s, loc.as_deref()), (303, Some(card.as_str())));

    // The member, as the API sees it.
    let (s, m) = app.post(&t.admin, "/api/v1/members/lookup", json!({"phone": "+79120000021"})).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["name"], "Vera <b>");
    assert_eq!(m["birthday"], "1990-05-17");
    assert!(m["card_number"].as_str().is_some_and(|c| c.len() == 13));
    assert!(m.to_string().contains("personal_data"), "consents are recorded: {m}");
    // The form again for the same phone: already a member.
    let (s, _, page) = app.post_form(&join, &[("phone", "+79120000021"), ("consent_personal_data", "on")]).await;
    assert_eq!(s, 409, "{page}");
    // Unknown programme.
    assert_error(&app.get("", "/join/no-such-programme").await, 404, "not_found");
});

both_cards!(enrolment_by_email_with_attempt_limits, |app: TestApp, _rx: Receiver| async move {
    // A second app with an SMTP sink (the first one's receiver stays for SMS).
    let sink = SmtpSink::start().await;
    let rx = Receiver::start().await;
    let mut config = cards_config(&rx);
    config.sms_url = None;
    config.smtp_addr = Some(sink.addr.clone());
    let app = TestApp::with_config(app.backend, Config { worker: false, cards: Arc::new(config), ..Config::default() }).await;
    let t = app.tenant("Mail Cafe").await;
    let join = format!("/join/{}", t.slug);
    let code_from_mail = |n: usize| -> String {
        let msgs = sink.messages.lock().unwrap().clone();
        assert_eq!(msgs.len(), n, "{msgs:?}");
        let m = msgs.last().unwrap();
        assert!(m.contains("To: <gleb@example.com>"), "{m}");
        let body = m.split("\r\n\r\n").nth(1).unwrap();
        body.chars().take(6).collect()
    };
    let start = |app: &TestApp| {
        let join = join.clone();
        let app_url = app.url.clone();
        async move {
            let (s, v) = TestApp::post_json_raw(&app_url, &join, json!({"email": "Gleb@Example.com", "consent_personal_data": true})).await;
            assert_eq!(s, 201, "{v}");
            assert_eq!(v["channel"], "email");
            assert_eq!(v["to"], "g***@example.com");
            v["confirm_url"].as_str().unwrap().strip_prefix(PUBLIC_URL).unwrap().to_owned()
        }
    };
    let confirm = start(&app).await;
    let code = code_from_mail(1);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..5).rev() {
        let (s, v) = TestApp::post_json_raw(&app.url, &confirm, json!({"code": wrong})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("otp_invalid")), "{v}");
        assert_eq!(v["error"]["fields"]["code"], format!("{left} tries left"));
    }
    let (s, v) = TestApp::post_json_raw(&app.url, &confirm, json!({"code": wrong})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("enrolment_expired")), "{v}");
    // Out of tries: even the right code no longer works.
    let (s, v) = TestApp::post_json_raw(&app.url, &confirm, json!({"code": code})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("enrolment_expired")), "{v}");

    // Start again: the right code enrols.
    let confirm = start(&app).await;
    let code = code_from_mail(2);
    let (s, v) = TestApp::post_json_raw(&app.url, &confirm, json!({"code": code})).await;
    assert_eq!(s, 200, "{v}");
    let page = v["page_url"].as_str().unwrap().strip_prefix(PUBLIC_URL).unwrap().to_owned();
    let (s, _, _) = app.get_bytes("", &page, &[]).await;
    assert_eq!(s, 200);
    let (s, m) = app.post(&t.admin, "/api/v1/members/lookup", json!({"email": "gleb@example.com"})).await;
    assert_eq!((s, m["id"].as_str()), (200, v["member_id"].as_str()));
    // An unknown field is named.
    let (s, v) =
        TestApp::post_json_raw(&app.url, &join, json!({"email": "other@example.com", "consent_personal_data": true, "extra": "x"})).await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["fields"]["extra"].is_string());
});

both_cards!(poster_is_a_printable_qr_of_the_join_link, |app: TestApp, _rx: Receiver| async move {
    let t = app.tenant("Poster Cafe").await;
    let want = format!("{PUBLIC_URL}/join/{}", t.slug);
    let (s, h, png) = app.get_bytes("", &format!("/join/{}/poster.png", t.slug), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], "image/png");
    let dir = readers::temp_dir(&format!("poster-{}", kopilka_store::new_id()));
    if readers::have("zbarimg") {
        let f = dir.join("poster.png");
        std::fs::write(&f, &png).unwrap();
        assert_eq!(readers::decode("qr", &f).as_deref(), Some(want.as_str()));
    }
    let (s, h, pdf) = app.get_bytes("", &format!("/join/{}/poster.pdf", t.slug), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], "application/pdf");
    assert!(pdf.starts_with(b"%PDF-1.4") && pdf.ends_with(b"%%EOF\n"));
    if readers::have("pdftoppm") && readers::have("zbarimg") {
        let f = dir.join("poster.pdf");
        std::fs::write(&f, &pdf).unwrap();
        let st = std::process::Command::new("pdftoppm")
            .args(["-png", "-r", "100", "-singlefile"])
            .arg(&f)
            .arg(dir.join("page"))
            .status()
            .unwrap();
        assert!(st.success(), "pdftoppm reads the poster");
        assert_eq!(readers::decode("qr", &dir.join("page.png")).as_deref(), Some(want.as_str()));
    }
    let _ = std::fs::remove_dir_all(dir);
    assert_error(&app.get("", "/join/nope/poster.png").await, 404, "not_found");
});

impl TestApp {
    /// POST JSON without a key to an absolute base and path.
    pub async fn post_json_raw(base: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        assert!(status < 500, "{path}: {status} {v}");
        (status, v)
    }
}

both_cards!(unconfirmed_enrolments_are_forgotten, |app: TestApp, rx: Receiver| async move {
    let t = app.tenant("Forgetful Cafe").await;
    let join = format!("/join/{}", t.slug);
    let form = |phone: &'static str| [("phone", phone), ("name", "Nina"), ("consent_personal_data", "on")];
    // One enrolment left unconfirmed, one confirmed.
    let (s, _, _) = app.post_form(&join, &form("+79120000031")).await;
    assert_eq!(s, 303);
    let (s, loc, _) = app.post_form(&join, &form("+79120000032")).await;
    assert_eq!(s, 303);
    let code = sms_code(&rx, "+79120000032");
    let (s, _, _) = app.post_form(&loc.unwrap(), &[("code", &code)]).await;
    assert_eq!(s, 303);
    let count = |sql: &'static str| {
        let db = app.state.db.clone();
        let tenant = t.id.clone();
        async move {
            let r = sqlx::query(sql).bind(tenant).fetch_one(db.pool()).await.unwrap();
            sqlx::Row::try_get::<i64, _>(&r, 0).unwrap()
        }
    };
    const ALL: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM enrolments WHERE tenant_id = $1";
    assert_eq!(count(ALL).await, 2);
    // Nothing is due yet; two days on, only the unconfirmed one (with its contact) goes.
    let mut c = app.state.db.pool().acquire().await.unwrap();
    kopilka_store::cards::purge_expired(&mut c, &t.id, kopilka_store::now_s() - 86_400).await.unwrap();
    assert_eq!(count(ALL).await, 2);
    kopilka_store::cards::purge_expired(&mut c, &t.id, kopilka_store::now_s() + 2 * 86_400).await.unwrap();
    assert_eq!(count(ALL).await, 1);
    assert_eq!(count("SELECT CAST(COUNT(*) AS BIGINT) FROM enrolments WHERE tenant_id = $1 AND member_id IS NOT NULL").await, 1);
});
