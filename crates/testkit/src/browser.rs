//! A small browser for the web UI: cookies kept, redirects not followed, the CSRF field
//! filled in from the last page.

use std::collections::BTreeMap;

/// An answer as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Page {
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", &self.body[..self.body.len().min(2000)]);
        self
    }

    #[track_caller]
    pub fn assert_contains(&self, text: &str) -> &Self {
        assert!(self.body.contains(text), "{text:?} not in: {}", &self.body[..self.body.len().min(4000)]);
        self
    }

    #[track_caller]
    pub fn assert_lacks(&self, text: &str) -> &Self {
        assert!(!self.body.contains(text), "{text:?} unexpectedly in the page");
        self
    }
}

/// A cookie-keeping client that does not follow redirects.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// The CSRF token of the last page that had a form.
    pub csrf: Option<String>,
    pub accept_language: Option<String>,
    /// Sent with every request (e.g. htmx's `X-CSRF-Token`, a browser's `Sec-Fetch-Site`).
    pub headers: Vec<(String, String)>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Browser { base: base.to_owned(), client, cookies: BTreeMap::new(), csrf: None, accept_language: None, headers: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let mut r = r.header("cookie", self.cookie_header());
        if let Some(l) = &self.accept_language {
            r = r.header("accept-language", l.clone());
        }
        for (k, v) in &self.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let set_cookies: Vec<String> = headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                let deleted = c.contains("Max-Age=0");
                if deleted || v.is_empty() {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let location = headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.text().await.unwrap_or_default();
        if let Some(t) = csrf_in(&body) {
            self.csrf = Some(t);
        }
        assert!(status < 500, "answered {status}: {body}");
        Page { status, location, headers, set_cookies, body }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self.client.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    /// POST a form with the CSRF token of the last page.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if let Some(t) = &self.csrf {
            all.push(("_csrf".into(), t.clone()));
        }
        self.post_raw(path, &all).await
    }

    /// POST exactly these fields (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(String, String)]) -> Page {
        let body = fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
        let r = self.client.post(format!("{}{path}", self.base)).header("content-type", "application/x-www-form-urlencoded").body(body);
        self.send(r).await
    }

    /// Log in with email and password; asserts it worked.
    pub async fn login(&mut self, email: &str, password: &str) {
        self.get("/admin/login").await.assert_status(200);
        let p = self.post("/admin/login", &[("email", email), ("password", password)]).await;
        assert_eq!(p.status, 303, "login failed: {}", p.body);
        // The new session has its own CSRF token: read it from the next page.
        let to = p.location.clone().expect("location");
        self.get(&to).await;
    }
}

fn csrf_in(body: &str) -> Option<String> {
    let marker = "name=\"_csrf\" value=\"";
    let i = body.find(marker)? + marker.len();
    let rest = &body[i..];
    Some(rest[..rest.find('"')?].to_owned())
}

pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
