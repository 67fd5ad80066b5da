//! Adapters to the outside: APNs pushes for Wallet passes, Google Wallet object updates,
//! SMS (a provider's HTTP API) and email (SMTP). Each takes its endpoint from
//! [`CardsConfig`](super::cards::CardsConfig), so tests point them at local receivers.
//! Nothing personal is logged here: callers log tenant and member ids only.

use super::cards::GoogleAccount;
use serde_json::{Value, json};
use std::time::Duration;

fn client(http2_only: bool) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(10)).connect_timeout(Duration::from_secs(5));
    if http2_only {
        b = b.http2_prior_knowledge();
    }
    b.build().map_err(|e| e.to_string())
}

/// An empty push to a device that holds a pass: Wallet then asks the web service which
/// passes changed. APNs speaks HTTP/2 only; the topic is the pass type identifier.
pub async fn apns_push(base_url: &str, topic: &str, push_token: &str) -> Result<(), String> {
    if !push_token.bytes().all(|b| b.is_ascii_hexdigit()) || push_token.len() > 200 {
        return Err("push token is not hex".into());
    }
    let resp = client(true)?
        .post(format!("{base_url}/3/device/{push_token}"))
        .header("apns-topic", topic)
        .header("apns-push-type", "background")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .map_err(|e| format!("APNs request: {e}"))?;
    if resp.status().is_success() { Ok(()) } else { Err(format!("APNs answered {}", resp.status())) }
}

/// Update (or create) a loyalty object through the Wallet REST API, with an OAuth access
/// token obtained by the service account's signed assertion.
pub async fn google_update_object(base_url: &str, g: &GoogleAccount, object: &Value) -> Result<(), String> {
    let token = google_access_token(base_url, g).await?;
    let id = object["id"].as_str().unwrap_or_default();
    let c = client(false)?;
    let url = format!("{base_url}/walletobjects/v1/loyaltyObject/{id}");
    let resp = c.put(&url).bearer_auth(&token).json(object).send().await.map_err(|e| format!("Wallet API: {e}"))?;
    if resp.status().as_u16() == 404 {
        let resp = c
            .post(format!("{base_url}/walletobjects/v1/loyaltyObject"))
            .bearer_auth(&token)
            .json(object)
            .send()
            .await
            .map_err(|e| format!("Wallet API: {e}"))?;
        return if resp.status().is_success() { Ok(()) } else { Err(format!("Wallet API answered {}", resp.status())) };
    }
    if resp.status().is_success() { Ok(()) } else { Err(format!("Wallet API answered {}", resp.status())) }
}

/// OAuth 2 JWT-bearer grant. The token endpoint is `{base_url}/token` when the base URL is
/// not Google's (a local receiver), else Google's own.
async fn google_access_token(base_url: &str, g: &GoogleAccount) -> Result<String, String> {
    let token_url =
        if base_url.contains("googleapis.com") { "https://oauth2.googleapis.com/token".to_owned() } else { format!("{base_url}/token") };
    let now = kopilka_store::now_s();
    let claims = json!({
        "iss": g.account.client_email,
        "scope": "https://www.googleapis.com/auth/wallet_object.issuer",
        "aud": token_url,
        "iat": now,
        "exp": now + 3600,
    });
    let assertion = kopilka_cards::gwallet::sign_rs256(&claims, g.account.key(), &g.account.private_key_id);
    let body = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
    let resp = client(false)?
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("token request: {e}"))?;
    let v: Value = resp.json().await.map_err(|e| format!("token answer: {e}"))?;
    v["access_token"].as_str().map(str::to_owned).ok_or_else(|| "no access_token in the answer".into())
}

/// Send a text message through the SMS provider's HTTP API: POST `{"to", "text"}` with
/// `Authorization: Bearer <token>`.
pub async fn send_sms(url: &str, token: Option<&str>, to: &str, text: &str) -> Result<(), String> {
    let mut r = client(false)?.post(url).json(&json!({"to": to, "text": text}));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.map_err(|e| format!("SMS request: {e}"))?;
    if resp.status().is_success() { Ok(()) } else { Err(format!("SMS provider answered {}", resp.status())) }
}

/// Send a plain-text email through an SMTP relay (EHLO, MAIL, RCPT, DATA). The relay is
/// the deployment's own (it handles TLS and delivery onward).
pub async fn send_email(addr: &str, from: &str, to: &str, subject: &str, text: &str) -> Result<(), String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let bad = |s: &str| s.contains(['\r', '\n', '<', '>']);
    if bad(from) || bad(to) || bad(subject) {
        return Err("bad address or subject".into());
    }
    let stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| "SMTP connect timed out".to_owned())?
        .map_err(|e| format!("SMTP connect: {e}"))?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<u16, String> {
        let mut code = 0;
        for _ in 0..100 {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut line))
                .await
                .map_err(|_| "SMTP timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("SMTP closed".into());
            }
            code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(code);
            }
        }
        Ok(code)
    }
    let expect = |got: u16, want: u16, step: &str| if got == want { Ok(()) } else { Err(format!("SMTP {step}: {got}")) };
    expect(reply(&mut r).await?, 220, "greeting")?;
    let body: String =
        text.replace("\r\n", "\n").lines().map(|l| if l.starts_with('.') { format!(".{l}\r\n") } else { format!("{l}\r\n") }).collect();
    let steps: [(String, u16, &str); 5] = [
        ("EHLO kopilka\r\n".into(), 250, "EHLO"),
        (format!("MAIL FROM:<{from}>\r\n"), 250, "MAIL"),
        (format!("RCPT TO:<{to}>\r\n"), 250, "RCPT"),
        ("DATA\r\n".into(), 354, "DATA"),
        (
            format!(
                "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}.\r\n"
            ),
            250,
            "message",
        ),
    ];
    for (cmd, want, step) in steps {
        w.write_all(cmd.as_bytes()).await.map_err(|e| e.to_string())?;
        expect(reply(&mut r).await?, want, step)?;
    }
    let _ = w.write_all(b"QUIT\r\n").await;
    Ok(())
}
