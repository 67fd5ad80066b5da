//! A minimal HTTP/1.1 client for the load generator: one keep-alive connection per
//! client, hyper's connection-level API, no pool and no TLS. It costs the shared CPU as
//! little as a client can, since the benchmark's clients and server share the machine.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

/// What went wrong with a request that got no answer.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    auth: Option<HeaderValue>,
    send: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A client of `addr` sending `Authorization: Bearer key` (if any). Connects lazily.
    pub fn new(addr: SocketAddr, key: Option<&str>) -> Conn {
        let host = HeaderValue::from_str(&addr.to_string()).expect("an address is a valid header");
        let auth = key.map(|k| HeaderValue::from_str(&format!("Bearer {k}")).expect("a key is a valid header"));
        Conn { addr, host, auth, send: None }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Error> {
        if self.send.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (send, conn) = handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.send = Some(send);
        }
        Ok(self.send.as_mut().expect("connected above"))
    }

    /// Send one request and read the whole answer: (status, body). On an error the
    /// connection is dropped, and the next request opens a new one.
    pub async fn request(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<(u16, Bytes), Error> {
        let r = self.try_request(method, path, body).await;
        if r.is_err() {
            self.send = None;
        }
        r
    }

    async fn try_request(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<(u16, Bytes), Error> {
        let mut req = Request::builder().method(method).uri(path).header(HOST, self.host.clone());
        if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        let send = self.connect().await?;
        send.ready().await?;
        let resp = send.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// POST a JSON value and parse the JSON answer.
    pub async fn post_json(&mut self, path: &str, v: &serde_json::Value) -> Result<(u16, serde_json::Value), Error> {
        let (status, body) = self.request(Method::POST, path, Some(Bytes::from(serde_json::to_vec(v)?))).await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)))
    }

    pub async fn get(&mut self, path: &str) -> Result<(u16, Bytes), Error> {
        self.request(Method::GET, path, None).await
    }
}
