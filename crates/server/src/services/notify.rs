//! Adapters to the outside: APNs pushes for Wallet passes, Google Wallet object updates,
//! SMS (a provider's HTTP API) and email (SMTP). Each takes its endpoint from
//! [`CardsConfig`](super::cards::CardsConfig), so tests point them at local receivers.
//! Nothing personal is logged here: callers log tenant and member ids only.

use super::cards::GoogleAccount;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use std::time::Duration;

/// The adapters' HTTP client: hyper over rustls (ring), Mozilla's root certificates,
/// HTTP/1.1 and HTTP/2 by ALPN over TLS.
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Http {
    /// A client; `identity` = (certificate DER, PKCS #8 key DER) for TLS client
    /// authentication; `http2_only` for APNs (over plain HTTP to a local receiver it then
    /// speaks HTTP/2 directly).
    pub fn new(identity: Option<(Vec<u8>, Vec<u8>)>, http2_only: bool) -> Result<Http, String> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => {
                let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
                builder.with_client_auth_cert(vec![CertificateDer::from(cert)], key).map_err(|e| format!("TLS client identity: {e}"))?
            }
            None => builder.with_no_client_auth(),
        };
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config).https_or_http().enable_http1().enable_http2().build();
        let client = Client::builder(TokioExecutor::new()).http2_only(http2_only).build(connector);
        Ok(Http { client })
    }

    /// Send one request; (status, body), within 10 seconds.
    pub async fn send(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
        let mut req = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| format!("{e}"))?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes().to_vec();
            Ok::<_, String>((status, body))
        };
        tokio::time::timeout(Duration::from_secs(10), fut).await.map_err(|_| "timed out".to_owned())?
    }
}

/// A client for APNs: HTTP/2 only, authenticated by the Pass Type ID certificate.
pub fn apns_client(identity: Option<(Vec<u8>, Vec<u8>)>) -> Result<Http, String> {
    Http::new(identity, true)
}

/// An empty push to a device that holds a pass: Wallet then asks the web service which
/// passes changed. APNs speaks HTTP/2 only; the topic is the pass type identifier.
pub async fn apns_push(client: &Http, base_url: &str, topic: &str, push_token: &str) -> Result<(), String> {
    if !push_token.bytes().all(|b| b.is_ascii_hexdigit()) || push_token.len() > 200 {
        return Err("push token is not hex".into());
    }
    // A background push must go at priority 5.
    let headers = [("apns-topic", topic), ("apns-push-type", "background"), ("apns-priority", "5"), ("content-type", "application/json")];
    let (status, _) = client.send("POST", &format!("{base_url}/3/device/{push_token}"), &headers, b"{}".to_vec()).await?;
    if (200..300).contains(&status) { Ok(()) } else { Err(format!("APNs answered {status}")) }
}

/// Update (or create) a loyalty object through the Wallet REST API, with an OAuth access
/// token obtained by the service account's signed assertion.
pub async fn google_update_object(base_url: &str, g: &GoogleAccount, object: &Value) -> Result<(), String> {
    let http = Http::new(None, false)?;
    let token = google_access_token(&http, base_url, g).await?;
    let id = object["id"].as_str().unwrap_or_default();
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let body = object.to_string().into_bytes();
    let (status, _) = http.send("PUT", &format!("{base_url}/walletobjects/v1/loyaltyObject/{id}"), &headers, body.clone()).await?;
    let status = if status == 404 {
        // Not saved yet through the link: create it.
        http.send("POST", &format!("{base_url}/walletobjects/v1/loyaltyObject"), &headers, body).await?.0
    } else {
        status
    };
    if (200..300).contains(&status) { Ok(()) } else { Err(format!("Wallet API answered {status}")) }
}

/// OAuth 2 JWT-bearer grant. The token endpoint is `{base_url}/token` when the base URL is
/// not Google's (a local receiver), else Google's own.
async fn google_access_token(http: &Http, base_url: &str, g: &GoogleAccount) -> Result<String, String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    // Tokens live an hour; one per (endpoint, account) is kept for 50 minutes.
    static CACHE: Mutex<Option<HashMap<String, (String, i64)>>> = Mutex::new(None);
    let token_url =
        if base_url.contains("googleapis.com") { "https://oauth2.googleapis.com/token".to_owned() } else { format!("{base_url}/token") };
    let now = kopilka_store::now_s();
    let key = format!("{token_url} {}", g.account.client_email);
    let cached = CACHE.lock().expect("token cache").as_ref().and_then(|m| m.get(&key)).cloned();
    if let Some((t, until)) = cached
        && until > now
    {
        return Ok(t);
    }
    let token = fetch_google_token(http, &token_url, g, now).await?;
    let mut cache = CACHE.lock().expect("token cache");
    let map = cache.get_or_insert_with(HashMap::new);
    if map.len() > 1000 {
        map.clear();
    }
    map.insert(key, (token.clone(), now + 3000));
    Ok(token)
}

async fn fetch_google_token(http: &Http, token_url: &str, g: &GoogleAccount, now: i64) -> Result<String, String> {
    let claims = json!({
        "iss": g.account.client_email,
        "scope": "https://www.googleapis.com/auth/wallet_object.issuer",
        "aud": token_url,
        "iat": now,
        "exp": now + 3600,
    });
    let assertion = kopilka_cards::gwallet::sign_rs256(&claims, g.account.key(), &g.account.private_key_id);
    let body = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
    let (status, body) = http.send("POST", token_url, &[("content-type", "application/x-www-form-urlencoded")], body.into_bytes()).await?;
    if !(200..300).contains(&status) {
        return Err(format!("token endpoint answered {status}"));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| format!("token answer: {e}"))?;
    v["access_token"].as_str().map(str::to_owned).ok_or_else(|| "no access_token in the answer".into())
}

/// Send a text message through the SMS provider's HTTP API: POST `{"to", "text"}` with
/// `Authorization: Bearer <token>`.
pub async fn send_sms(url: &str, token: Option<&str>, to: &str, text: &str) -> Result<(), String> {
    let http = Http::new(None, false)?;
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let (status, _) = http.send("POST", url, &headers, json!({"to": to, "text": text}).to_string().into_bytes()).await?;
    if (200..300).contains(&status) { Ok(()) } else { Err(format!("SMS provider answered {status}")) }
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
