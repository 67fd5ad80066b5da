//! Cards and passes (docs/api.md, "Cards and passes"): the card design, card codes as
//! images, Apple Wallet passes, Google Wallet save links, the public card links, and
//! keeping passes up to date (mark changed, push).
//!
//! Secrets are derived, not stored: each tenant has one random secret (in
//! `card_settings`), and a member's pass authentication token, public link tag and
//! rotating-code key are HMACs of it. The tenant's own wallet keys are stored as given,
//! never returned and never logged.

use crate::error::{ApiError, ApiResult};
use crate::services::notify;
use crate::state::AppState;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kopilka_cards::codes::{self, CodeError, Format};
use kopilka_cards::gwallet::{self, ServiceAccount};
use kopilka_cards::sign::PassSigner;
use kopilka_store::members::Member;
use kopilka_store::{Conn, StoreError, cards as store, ledger, members, now_s, tenants};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// Deployment-wide settings for cards: where the public pages live, the operator's wallet
/// keys and the adapters' endpoints. Read once at start (`from_env`).
#[derive(Debug, Clone)]
pub struct CardsConfig {
    /// The public base URL (scheme and host) that phones and wallets reach.
    pub public_url: String,
    /// The operator's Pass Type ID certificate, key and WWDR intermediate.
    pub apple: Option<PassSigner>,
    /// The operator's Google Wallet issuer and service account.
    pub google: Option<GoogleAccount>,
    /// APNs base URL (`https://api.push.apple.com`; a local receiver in tests).
    pub apns_url: String,
    /// Google Wallet REST base URL (`https://walletobjects.googleapis.com`).
    pub google_api_url: String,
    /// SMS provider adapter: POST JSON `{"to", "text"}` with a bearer token.
    pub sms_url: Option<String>,
    pub sms_token: Option<String>,
    /// SMTP relay `host:port` and the sender address.
    pub smtp_addr: Option<String>,
    pub smtp_from: String,
}

#[derive(Debug, Clone)]
pub struct GoogleAccount {
    pub issuer_id: String,
    pub account: ServiceAccount,
}

impl Default for CardsConfig {
    fn default() -> Self {
        CardsConfig {
            public_url: "http://127.0.0.1:8080".into(),
            apple: None,
            google: None,
            apns_url: "https://api.push.apple.com".into(),
            google_api_url: "https://walletobjects.googleapis.com".into(),
            sms_url: None,
            sms_token: None,
            smtp_addr: None,
            smtp_from: "kopilka@localhost".into(),
        }
    }
}

impl CardsConfig {
    /// From the environment (see docs/operations.md): `KOPILKA_PUBLIC_URL`,
    /// `KOPILKA_PASS_CERT` / `KOPILKA_PASS_KEY` / `KOPILKA_PASS_WWDR` (PEM files),
    /// `KOPILKA_GOOGLE_ISSUER_ID` / `KOPILKA_GOOGLE_SERVICE_ACCOUNT` (the JSON key file),
    /// `KOPILKA_APNS_URL`, `KOPILKA_GOOGLE_WALLET_URL`, `KOPILKA_SMS_URL` /
    /// `KOPILKA_SMS_TOKEN`, `KOPILKA_SMTP` (host:port) / `KOPILKA_SMTP_FROM`.
    pub fn from_env() -> anyhow::Result<CardsConfig> {
        use anyhow::Context;
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let read = |k: &str| -> anyhow::Result<Option<String>> {
            match var(k) {
                Some(path) => Ok(Some(std::fs::read_to_string(&path).with_context(|| format!("{k}: cannot read {path}"))?)),
                None => Ok(None),
            }
        };
        let mut c = CardsConfig::default();
        if let Some(u) = var("KOPILKA_PUBLIC_URL") {
            c.public_url = u.trim_end_matches('/').to_owned();
        }
        match (read("KOPILKA_PASS_CERT")?, read("KOPILKA_PASS_KEY")?, read("KOPILKA_PASS_WWDR")?) {
            (Some(cert), Some(key), Some(wwdr)) => {
                c.apple = Some(PassSigner::from_pem(&cert, &key, &wwdr).context("the pass certificate in KOPILKA_PASS_*")?);
            }
            (None, None, None) => {}
            _ => anyhow::bail!("set all three of KOPILKA_PASS_CERT, KOPILKA_PASS_KEY and KOPILKA_PASS_WWDR, or none"),
        }
        match (var("KOPILKA_GOOGLE_ISSUER_ID"), read("KOPILKA_GOOGLE_SERVICE_ACCOUNT")?) {
            (Some(issuer_id), Some(json)) => {
                let account = ServiceAccount::from_json(&json).context("KOPILKA_GOOGLE_SERVICE_ACCOUNT")?;
                c.google = Some(GoogleAccount { issuer_id, account });
            }
            (None, None) => {}
            _ => anyhow::bail!("set both KOPILKA_GOOGLE_ISSUER_ID and KOPILKA_GOOGLE_SERVICE_ACCOUNT, or neither"),
        }
        if let Some(u) = var("KOPILKA_APNS_URL") {
            c.apns_url = u.trim_end_matches('/').to_owned();
        }
        if let Some(u) = var("KOPILKA_GOOGLE_WALLET_URL") {
            c.google_api_url = u.trim_end_matches('/').to_owned();
        }
        c.sms_url = var("KOPILKA_SMS_URL");
        c.sms_token = var("KOPILKA_SMS_TOKEN");
        c.smtp_addr = var("KOPILKA_SMTP");
        if let Some(f) = var("KOPILKA_SMTP_FROM") {
            c.smtp_from = f;
        }
        Ok(c)
    }
}

// ---------------------------------------------------------------------------------------
// Design
// ---------------------------------------------------------------------------------------

/// The card design of a programme, with its defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Design {
    pub organization_name: Option<String>,
    pub description: String,
    pub background_color: String,
    pub foreground_color: String,
    pub label_color: String,
    pub labels: Labels,
    /// The code on the pass and the web card: `qr`, `code128`, `ean13`, `pdf417`, `aztec`.
    pub barcode_format: String,
    /// Show the member's name on the pass (off by default: privacy).
    pub show_name: bool,
    /// Rotate the QR token every 30 seconds.
    pub qr_rotation: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Labels {
    pub balance: String,
    pub tier: String,
    pub card_number: String,
    pub name: String,
}

impl Default for Labels {
    fn default() -> Self {
        Labels { balance: "Points".into(), tier: "Tier".into(), card_number: "Card".into(), name: "Name".into() }
    }
}

impl Default for Design {
    fn default() -> Self {
        Design {
            organization_name: None,
            description: "Loyalty card".into(),
            background_color: "#1f2937".into(),
            foreground_color: "#ffffff".into(),
            label_color: "#d1d5db".into(),
            labels: Labels::default(),
            barcode_format: "qr".into(),
            show_name: false,
            qr_rotation: false,
        }
    }
}

impl Design {
    /// Parse a PUT body: unknown fields and bad values are field errors.
    pub fn parse(body: &serde_json::Map<String, Value>) -> ApiResult<Design> {
        let d: Design = crate::input::typed(body.clone())?;
        let mut errs = std::collections::BTreeMap::new();
        for (k, v) in
            [("background_color", &d.background_color), ("foreground_color", &d.foreground_color), ("label_color", &d.label_color)]
        {
            if kopilka_cards::image::parse_hex_color(v).is_none() {
                errs.insert(k.to_owned(), "must be a colour #rrggbb".to_owned());
            }
        }
        if Format::parse(&d.barcode_format).is_none() {
            errs.insert("barcode_format".into(), "must be one of qr, code128, ean13, pdf417, aztec".into());
        }
        let texts = [
            ("description", Some(&d.description)),
            ("organization_name", d.organization_name.as_ref()),
            ("labels.balance", Some(&d.labels.balance)),
            ("labels.tier", Some(&d.labels.tier)),
            ("labels.card_number", Some(&d.labels.card_number)),
            ("labels.name", Some(&d.labels.name)),
        ];
        for (k, v) in texts {
            if let Some(v) = v
                && (v.trim().is_empty() || v.chars().count() > 64)
            {
                errs.insert(k.to_owned(), "must be 1 to 64 characters".to_owned());
            }
        }
        if errs.is_empty() { Ok(d) } else { Err(ApiError::fields(errs)) }
    }

    pub fn format(&self) -> Format {
        Format::parse(&self.barcode_format).unwrap_or(Format::Qr)
    }
}

/// The tenant's card settings, created with a fresh secret on first use.
pub async fn settings(c: &mut Conn, tenant: &str) -> ApiResult<(Vec<u8>, Design, i64)> {
    let s = match store::settings(c, tenant).await? {
        Some(s) => s,
        None => {
            let mut secret = [0u8; 32];
            rand::fill(&mut secret);
            let design = serde_json::to_string(&Design::default())?;
            store::ensure_settings(c, tenant, &hex::encode(secret), &design, now_s()).await?;
            store::settings(c, tenant).await?.ok_or_else(|| ApiError::internal("card settings vanished"))?
        }
    };
    let secret = hex::decode(&s.secret).map_err(ApiError::internal)?;
    let design: Design = serde_json::from_str(&s.design)?;
    Ok((secret, design, s.updated_at))
}

/// The tenant's card settings if they were ever made (no write: safe in a read-only
/// transaction). Without them no card was shown, so no rotating token or code exists.
pub async fn settings_if_any(c: &mut Conn, tenant: &str) -> ApiResult<Option<(Vec<u8>, Design)>> {
    match store::settings(c, tenant).await? {
        None => Ok(None),
        Some(s) => Ok(Some((hex::decode(&s.secret).map_err(ApiError::internal)?, serde_json::from_str(&s.design)?))),
    }
}

pub async fn get_design(state: &AppState, tenant: &str) -> ApiResult<Value> {
    let mut c = conn(state).await?;
    let (_, d, _) = settings(&mut c, tenant).await?;
    let mut v = serde_json::to_value(&d)?;
    let mut images = serde_json::Map::new();
    for kind in IMAGE_KINDS {
        images.insert(kind.to_owned(), Value::Bool(store::image(&mut c, tenant, kind).await?.is_some()));
    }
    v["images"] = Value::Object(images);
    let apple = store::wallet_key(&mut c, tenant, "apple").await?.map(|(_, label)| label);
    let google = store::wallet_key(&mut c, tenant, "google").await?.map(|(_, label)| label);
    v["apple_certificate"] = json!(apple.map(|l| json!({"own": true, "pass_type_id": l})).unwrap_or(json!({"own": false})));
    v["google_account"] = json!(google.map(|l| json!({"own": true, "issuer_id": l})).unwrap_or(json!({"own": false})));
    Ok(v)
}

pub async fn put_design(state: &AppState, tenant: &str, actor: &str, mut body: serde_json::Map<String, Value>) -> ApiResult<Value> {
    // Read-only parts of a GET may be sent back.
    for k in ["images", "apple_certificate", "google_account"] {
        body.remove(k);
    }
    let d = Design::parse(&body)?;
    let mut tx = state.db.begin().await?;
    settings(tx.conn(), tenant).await?;
    let now = now_s();
    store::put_design(tx.conn(), tenant, &serde_json::to_string(&d)?, now).await?;
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit { actor, action: "card.design", object_type: "program", object_id: tenant, details: &json!({}), at: now },
    )
    .await?;
    tx.commit().await?;
    get_design(state, tenant).await
}

pub const IMAGE_KINDS: [&str; 3] = ["logo", "strip", "icon"];

/// Store a card image: a PNG (by its signature) of at most 1 MiB.
pub async fn put_image(state: &AppState, tenant: &str, actor: &str, kind: &str, png_b64: &str) -> ApiResult<Value> {
    if !IMAGE_KINDS.contains(&kind) {
        return Err(ApiError::not_found("image kind"));
    }
    let bytes = B64.decode(png_b64.trim()).map_err(|_| ApiError::field("png_base64", "must be base64"))?;
    if bytes.len() > 1024 * 1024 {
        return Err(ApiError::field("png_base64", "must be at most 1 MiB"));
    }
    let (w, h) = kopilka_cards::image::png_check(&bytes, 2000)
        .ok_or_else(|| ApiError::field("png_base64", "must be a whole PNG image of at most 2000×2000 pixels"))?;
    let mut tx = state.db.begin().await?;
    let now = now_s();
    settings(tx.conn(), tenant).await?;
    store::put_image(tx.conn(), tenant, kind, &B64.encode(&bytes), now).await?;
    // The design's time moves, so every pass shows as changed.
    let design = serde_json::to_string(&settings(tx.conn(), tenant).await?.1)?;
    store::put_design(tx.conn(), tenant, &design, now).await?;
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor,
            action: "card.image",
            object_type: "program",
            object_id: kind,
            details: &json!({"width": w, "height": h}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({"kind": kind, "width": w, "height": h}))
}

pub async fn delete_image(state: &AppState, tenant: &str, kind: &str) -> ApiResult<()> {
    if !IMAGE_KINDS.contains(&kind) {
        return Err(ApiError::not_found("image kind"));
    }
    let mut tx = state.db.begin().await?;
    if !store::delete_image(tx.conn(), tenant, kind).await? {
        return Err(ApiError::not_found("image"));
    }
    // As for an upload: the design's time moves, so every pass shows as changed.
    let design = serde_json::to_string(&settings(tx.conn(), tenant).await?.1)?;
    store::put_design(tx.conn(), tenant, &design, now_s()).await?;
    tx.commit().await?;
    Ok(())
}

/// The tenant's own Apple pass certificate (PEM), replacing the operator's for its passes.
pub async fn put_apple_certificate(
    state: &AppState,
    tenant: &str,
    actor: &str,
    cert_pem: &str,
    key_pem: &str,
    wwdr_pem: Option<&str>,
) -> ApiResult<Value> {
    let wwdr = match (wwdr_pem, &state.config.cards.apple) {
        (Some(w), _) => w.to_owned(),
        (None, _) => return Err(ApiError::field("wwdr_pem", "is required: Apple's WWDR intermediate certificate that issued this one")),
    };
    let signer = PassSigner::from_pem(cert_pem, key_pem, &wwdr).map_err(|e| match e {
        kopilka_cards::sign::SignError::BadKey => ApiError::field("key_pem", e.to_string()),
        kopilka_cards::sign::SignError::KeyMismatch => ApiError::field("key_pem", e.to_string()),
        _ => ApiError::field("cert_pem", e.to_string()),
    })?;
    if signer.not_after() <= now_s() {
        return Err(ApiError::field("cert_pem", "the certificate has expired"));
    }
    let material = json!({"cert_pem": cert_pem, "key_pem": key_pem, "wwdr_pem": wwdr}).to_string();
    let mut tx = state.db.begin().await?;
    let now = now_s();
    store::put_wallet_key(tx.conn(), tenant, "apple", &material, &signer.pass_type_id, now).await?;
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor,
            action: "card.apple_certificate",
            object_type: "program",
            object_id: &signer.pass_type_id,
            details: &json!({}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({"pass_type_id": signer.pass_type_id, "team_id": signer.team_id, "expires_at": crate::input::fmt_time(signer.not_after())}))
}

/// The tenant's own Google Wallet issuer and service account.
pub async fn put_google_account(state: &AppState, tenant: &str, actor: &str, issuer_id: &str, account_json: &str) -> ApiResult<Value> {
    if issuer_id.is_empty() || !issuer_id.bytes().all(|b| b.is_ascii_digit()) || issuer_id.len() > 32 {
        return Err(ApiError::field("issuer_id", "must be the numeric Google Wallet issuer id"));
    }
    let sa = ServiceAccount::from_json(account_json).map_err(|e| ApiError::field("service_account", e.to_string()))?;
    let material = json!({"issuer_id": issuer_id, "service_account": account_json}).to_string();
    let mut tx = state.db.begin().await?;
    let now = now_s();
    store::put_wallet_key(tx.conn(), tenant, "google", &material, issuer_id, now).await?;
    tenants::audit(
        tx.conn(),
        tenant,
        &tenants::Audit {
            actor,
            action: "card.google_account",
            object_type: "program",
            object_id: issuer_id,
            details: &json!({}),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({"issuer_id": issuer_id, "client_email": sa.client_email}))
}

pub async fn delete_wallet_key(state: &AppState, tenant: &str, kind: &str) -> ApiResult<()> {
    let mut c = conn(state).await?;
    if !store::delete_wallet_key(&mut c, tenant, kind).await? {
        return Err(ApiError::not_found("key"));
    }
    Ok(())
}

/// The signer for a tenant's passes: its own certificate, else the operator's.
pub async fn apple_signer(state: &AppState, c: &mut Conn, tenant: &str) -> ApiResult<PassSigner> {
    if let Some((material, _)) = store::wallet_key(c, tenant, "apple").await? {
        let m: Value = serde_json::from_str(&material)?;
        let s = |k: &str| m[k].as_str().unwrap_or("").to_owned();
        return PassSigner::from_pem(&s("cert_pem"), &s("key_pem"), &s("wwdr_pem")).map_err(ApiError::internal);
    }
    state.config.cards.apple.clone().ok_or_else(|| {
        ApiError::rule(
            "wallet_not_configured",
            "Apple Wallet passes are not configured: the operator has no pass certificate and the programme none of its own",
        )
    })
}

/// The Google account for a tenant's links: its own, else the operator's.
pub async fn google_account(state: &AppState, c: &mut Conn, tenant: &str) -> ApiResult<GoogleAccount> {
    if let Some((material, _)) = store::wallet_key(c, tenant, "google").await? {
        let m: Value = serde_json::from_str(&material)?;
        let account = ServiceAccount::from_json(m["service_account"].as_str().unwrap_or("")).map_err(ApiError::internal)?;
        return Ok(GoogleAccount { issuer_id: m["issuer_id"].as_str().unwrap_or("").to_owned(), account });
    }
    state.config.cards.google.clone().ok_or_else(|| {
        ApiError::rule(
            "wallet_not_configured",
            "Google Wallet is not configured: the operator has no service account and the programme none of its own",
        )
    })
}

// ---------------------------------------------------------------------------------------
// Derived secrets
// ---------------------------------------------------------------------------------------

fn hmac_hex(secret: &[u8], purpose: &str, member: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.update(b":");
    mac.update(member.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Secret equality in constant time (for equal lengths; a length is no secret here).
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The pass's `authenticationToken` (Apple asks for at least 16 characters).
pub fn apple_token(secret: &[u8], member: &str) -> String {
    hmac_hex(secret, "apple", member)[..32].to_owned()
}

/// The unguessable public link token of a member's card: member id and a 128-bit tag.
pub fn public_token(secret: &[u8], member: &str) -> String {
    format!("{member}.{}", &hmac_hex(secret, "page", member)[..32])
}

/// The member a public link token names, if its tag is right.
pub fn member_of_public_token(secret: &[u8], token: &str) -> Option<String> {
    let (member, _) = token.split_once('.')?;
    same(&public_token(secret, member), token).then(|| member.to_owned())
}

/// The key of a member's rotating QR codes.
pub fn rotation_key(secret: &[u8], member: &str) -> Vec<u8> {
    hex::decode(hmac_hex(secret, "totp", member)).unwrap_or_default()
}

/// The prefix that marks a rotating QR token: `t1.<member id>.<code>`.
pub const ROTATING_PREFIX: &str = "t1.";

pub fn rotating_token(secret: &[u8], member: &str, now: i64) -> String {
    let code = kopilka_cards::totp::code(&rotation_key(secret, member), kopilka_cards::totp::step_at(now));
    format!("{ROTATING_PREFIX}{member}.{code}")
}

/// Split a rotating token into (member id, code).
pub fn parse_rotating(token: &str) -> Option<(&str, &str)> {
    token.strip_prefix(ROTATING_PREFIX)?.rsplit_once('.')
}

// ---------------------------------------------------------------------------------------
// A member's card
// ---------------------------------------------------------------------------------------

pub async fn conn(state: &AppState) -> ApiResult<sqlx::pool::PoolConnection<sqlx::Any>> {
    Ok(state.db.pool().acquire().await.map_err(StoreError::from)?)
}

/// What a card shows: the member, settled balance and tier as of now.
pub struct CardView {
    pub member: Member,
    pub tenant: tenants::Tenant,
    pub secret: Vec<u8>,
    pub design: Design,
    pub design_updated_at: i64,
    pub points: i64,
    pub tier_name: Option<String>,
}

impl CardView {
    /// A digest of everything a pass shows, to notice when it changes.
    pub fn fingerprint(&self) -> String {
        let name = if self.design.show_name { self.member.name.clone().unwrap_or_default() } else { String::new() };
        crate::input::sha256_hex(&format!("{}|{:?}|{}|{}", self.points, self.tier_name, self.design_updated_at, name))
    }
}

pub async fn view(state: &AppState, tenant: &str, member_id: &str) -> ApiResult<CardView> {
    let member = {
        let mut c = conn(state).await?;
        members::by_id(&mut c, tenant, member_id).await?.ok_or_else(crate::services::members::member_not_found)?
    };
    crate::services::members::settle_if_due(state, tenant, member_id).await?;
    let mut c = conn(state).await?;
    let t = tenants::tenant_by_id(&mut c, tenant).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let (secret, design, design_updated_at) = settings(&mut c, tenant).await?;
    let (_, program) = super::program::current(state, &mut c, tenant).await?;
    let b = ledger::balance(&mut c, tenant, member_id).await?.ok_or_else(crate::services::members::member_not_found)?;
    let (_, tier) = crate::services::members::tier_now(&mut c, tenant, member_id, &program, now_s()).await?;
    let tier_name = tier.and_then(|code| program.tiers.iter().find(|t| t.code == code).map(|t| t.name.clone()));
    Ok(CardView { member, tenant: t, secret, design, design_updated_at, points: (b.points - b.held).max(0), tier_name })
}

/// What a code of `format` holds for this member: the (current) QR token for QR, the card
/// number otherwise.
pub fn code_data(v: &CardView, format: Format, now: i64) -> String {
    if format == Format::Qr {
        if v.design.qr_rotation { rotating_token(&v.secret, &v.member.id, now) } else { v.member.qr_token.clone() }
    } else {
        v.member.card_number.clone()
    }
}

pub fn code_error(e: CodeError) -> ApiError {
    match e {
        CodeError::NotEan13 => ApiError::rule("format_not_available", "this card number is not an EAN-13 number; use code128"),
        CodeError::BadData => ApiError::rule("format_not_available", "this card cannot be printed in that format"),
    }
}

/// A card code image: (content type, bytes).
pub fn code_image(v: &CardView, format: Format, svg: bool, now: i64) -> ApiResult<(&'static str, Vec<u8>)> {
    let m = codes::encode(format, &code_data(v, format, now)).map_err(code_error)?;
    let scale = codes::default_scale(&m);
    Ok(if svg { ("image/svg+xml", codes::to_svg(&m, scale).into_bytes()) } else { ("image/png", codes::to_png(&m, scale)) })
}

fn rgb(hex: &str) -> String {
    let [r, g, b] = kopilka_cards::image::parse_hex_color(hex).unwrap_or([0, 0, 0]);
    format!("rgb({r}, {g}, {b})")
}

/// The web-service URL of a tenant's passes.
pub fn web_service_url(state: &AppState, slug: &str) -> String {
    format!("{}/wallet/apple/{slug}", state.config.cards.public_url)
}

/// pass.json for a member.
pub fn pass_json(state: &AppState, v: &CardView, signer: &PassSigner) -> Value {
    let d = &v.design;
    // Apple has no EAN-13 barcode: the pass then shows Code 128 of the same number.
    let format = match d.format() {
        Format::Ean13 => Format::Code128,
        f => f,
    };
    let barcode = json!({
        "format": format.apple().unwrap_or("PKBarcodeFormatCode128"),
        "message": v.member.card_number,
        "messageEncoding": "iso-8859-1",
        "altText": v.member.card_number,
    });
    let mut secondary = vec![json!({"key": "tier", "label": d.labels.tier, "value": v.tier_name.clone().unwrap_or_else(|| "—".into())})];
    if d.show_name
        && let Some(n) = &v.member.name
    {
        secondary.push(json!({"key": "name", "label": d.labels.name, "value": n}));
    }
    let org = d.organization_name.clone().unwrap_or_else(|| v.tenant.name.clone());
    json!({
        "formatVersion": 1,
        "passTypeIdentifier": signer.pass_type_id,
        "teamIdentifier": signer.team_id,
        "serialNumber": v.member.id,
        "organizationName": org,
        "description": d.description,
        "logoText": org,
        "authenticationToken": apple_token(&v.secret, &v.member.id),
        "webServiceURL": web_service_url(state, &v.tenant.slug),
        "backgroundColor": rgb(&d.background_color),
        "foregroundColor": rgb(&d.foreground_color),
        "labelColor": rgb(&d.label_color),
        "storeCard": {
            "primaryFields": [{"key": "balance", "label": d.labels.balance, "value": v.points, "changeMessage": "%@"}],
            "secondaryFields": secondary,
            "auxiliaryFields": [{"key": "card", "label": d.labels.card_number, "value": v.member.card_number}],
        },
        "barcodes": [barcode.clone()],
        "barcode": barcode,
    })
}

/// The images of a pass: the programme's, or plain ones in its colour.
async fn pass_images(c: &mut Conn, tenant: &str, d: &Design) -> ApiResult<Vec<(String, Vec<u8>)>> {
    let colour = kopilka_cards::image::parse_hex_color(&d.background_color).unwrap_or([31, 41, 55]);
    let mut out = Vec::new();
    for (kind, w, h) in [("icon", 29, 29), ("logo", 160, 50), ("strip", 375, 123)] {
        let bytes = match store::image(c, tenant, kind).await? {
            Some(b64) => Some(B64.decode(b64).map_err(ApiError::internal)?),
            None if kind == "strip" => None,
            None => Some(kopilka_cards::image::solid_png(w, h, colour)),
        };
        if let Some(b) = bytes {
            out.push((format!("{kind}.png"), b.clone()));
            out.push((format!("{kind}@2x.png"), b));
        }
    }
    Ok(out)
}

/// A member's signed pass and when it last changed (ms).
pub async fn pkpass(state: &AppState, tenant: &str, member_id: &str) -> ApiResult<(Vec<u8>, i64)> {
    let v = view(state, tenant, member_id).await?;
    let mut c = conn(state).await?;
    let signer = apple_signer(state, &mut c, tenant).await?;
    let (changed, updated_ms) = mark(&mut c, tenant, &v).await?;
    if changed {
        announce(state, &mut c, tenant, member_id, &v).await?;
    }
    let images = pass_images(&mut c, tenant, &v.design).await?;
    let bytes = kopilka_cards::pkpass::build(&pass_json(state, &v, &signer), &images, &signer).map_err(ApiError::internal)?;
    Ok((bytes, updated_ms))
}

/// Record what the member's pass shows now. (changed, last change in ms).
async fn mark(c: &mut Conn, tenant: &str, v: &CardView) -> ApiResult<(bool, i64)> {
    let fp = v.fingerprint();
    match store::pass_update(c, tenant, &v.member.id).await? {
        Some((old, at)) if old == fp => Ok((false, at)),
        prev => {
            // A later second than the previous change, so that HTTP dates (whole seconds,
            // If-Modified-Since) tell every change apart.
            let now_ms = now_ms().max(prev.as_ref().map(|p| (p.1.div_euclid(1000) + 1) * 1000).unwrap_or(0));
            store::put_pass_update(c, tenant, &v.member.id, &fp, now_ms).await?;
            Ok((prev.is_some(), now_ms))
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// After a member's points or tier may have changed (the worker's `tier` job, queued by
/// every checkout, void, refund, adjustment and transfer): when what the pass shows
/// changed, mark it updated, push to every registered device and update the Google
/// Wallet object. Adapter failures are logged (without personal data) and do not fail
/// the job: the device catches up at its next fetch.
pub async fn refresh(state: &AppState, tenant: &str, member_id: &str) -> ApiResult<()> {
    {
        let mut c = conn(state).await?;
        if store::pass_update(&mut c, tenant, member_id).await?.is_none() {
            return Ok(());
        }
    }
    let v = match view(state, tenant, member_id).await {
        Ok(v) => v,
        Err(e) if e.status == StatusCode::NOT_FOUND => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut c = conn(state).await?;
    // No pass or save link was ever made for this member: nothing to update.
    if store::pass_update(&mut c, tenant, member_id).await?.is_none() {
        return Ok(());
    }
    let (changed, _) = mark(&mut c, tenant, &v).await?;
    if !changed {
        return Ok(());
    }
    announce(state, &mut c, tenant, member_id, &v).await
}

/// Tell the member's wallets that the pass changed: an empty push to every registered
/// device and the Google object updated. Whoever first notices a change (the worker, or a
/// fetch of the pass or save link before it) announces it, since `mark` records it once.
async fn announce(state: &AppState, c: &mut Conn, tenant: &str, member_id: &str, v: &CardView) -> ApiResult<()> {
    let devices = store::push_tokens(c, tenant, member_id).await?;
    if !devices.is_empty() {
        let url = &state.config.cards.apns_url;
        let client = apple_signer(state, c, tenant)
            .await
            .map_err(|e| e.message)
            .and_then(|s| s.identity_der().map_err(|e| e.to_string()))
            .and_then(|id| notify::apns_client(Some(id)));
        match client {
            Ok(client) => {
                for (topic, token) in devices {
                    if let Err(e) = notify::apns_push(&client, url, &topic, &token).await {
                        tracing::warn!(tenant.id = %tenant, member.id = %member_id, error = %e, "APNs push failed");
                    }
                }
            }
            Err(e) => tracing::warn!(tenant.id = %tenant, error = %e, "no APNs client"),
        }
    }
    if let Ok(g) = google_account(state, c, tenant).await {
        let object = google_object(state, v, &g);
        if let Err(e) = notify::google_update_object(&state.config.cards.google_api_url, &g, &object).await {
            tracing::warn!(tenant.id = %tenant, member.id = %member_id, error = %e, "Google Wallet object update failed");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Google Wallet
// ---------------------------------------------------------------------------------------

pub fn google_class(state: &AppState, v: &CardView, g: &GoogleAccount) -> Value {
    let org = v.design.organization_name.clone().unwrap_or_else(|| v.tenant.name.clone());
    json!({
        "id": format!("{}.kopilka-{}", g.issuer_id, v.tenant.slug),
        "issuerName": org,
        "programName": v.design.description,
        "programLogo": {"sourceUri": {"uri": format!("{}/c/{}/logo.png", state.config.cards.public_url, v.tenant.slug)}},
        "hexBackgroundColor": v.design.background_color,
        "reviewStatus": "UNDER_REVIEW",
    })
}

/// Google's integer balance is 32-bit; larger balances go as text.
fn points_balance(points: i64) -> Value {
    if i32::try_from(points).is_ok() { json!({"int": points}) } else { json!({"string": points.to_string()}) }
}

pub fn google_object(state: &AppState, v: &CardView, g: &GoogleAccount) -> Value {
    let d = &v.design;
    let mut o = json!({
        "id": format!("{}.{}", g.issuer_id, v.member.id),
        "classId": format!("{}.kopilka-{}", g.issuer_id, v.tenant.slug),
        "state": "ACTIVE",
        "accountId": v.member.card_number,
        "loyaltyPoints": {"label": d.labels.balance, "balance": points_balance(v.points)},
        "barcode": {"type": d.format().google(), "value": v.member.card_number, "alternateText": v.member.card_number},
        "linksModuleData": {"uris": [{"uri": format!("{}/c/{}/{}", state.config.cards.public_url, v.tenant.slug, public_token(&v.secret, &v.member.id)), "description": "Card"}]},
    });
    if let Some(t) = &v.tier_name {
        o["secondaryLoyaltyPoints"] = json!({"label": d.labels.tier, "balance": {"string": t}});
    }
    if d.show_name
        && let Some(n) = &v.member.name
    {
        o["accountName"] = json!(n);
    }
    o
}

/// `{"save_url", "jwt"}` for a member. Without `with_link` the object leaves out the
/// member's public card link (`linksModuleData`): a pos key must not reach the card page,
/// whose QR is the token pos keys do not see.
pub async fn google_wallet(state: &AppState, tenant: &str, member_id: &str, with_link: bool) -> ApiResult<Value> {
    let v = view(state, tenant, member_id).await?;
    let mut c = conn(state).await?;
    let g = google_account(state, &mut c, tenant).await?;
    if mark(&mut c, tenant, &v).await?.0 {
        announce(state, &mut c, tenant, member_id, &v).await?;
    }
    let origins = vec![state.config.cards.public_url.clone()];
    let mut object = google_object(state, &v, &g);
    if !with_link && let Some(o) = object.as_object_mut() {
        o.remove("linksModuleData");
    }
    let jwt = gwallet::save_jwt(&g.account, &origins, &google_class(state, &v, &g), &object, now_s());
    Ok(json!({"save_url": gwallet::save_url(&jwt), "jwt": jwt}))
}

/// The public links of a member's card.
pub async fn links(state: &AppState, tenant: &str, member_id: &str) -> ApiResult<Value> {
    let v = view(state, tenant, member_id).await?;
    let base = format!("{}/c/{}/{}", state.config.cards.public_url, v.tenant.slug, public_token(&v.secret, &v.member.id));
    Ok(json!({
        "page_url": base,
        "card_png_url": format!("{base}/card.png"),
        "card_svg_url": format!("{base}/card.svg"),
        "pass_url": format!("{base}/pass.pkpass"),
        "google_wallet_url": format!("{base}/google-wallet"),
    }))
}

/// Resolve a public link: (tenant id, member id), or 404 for anything wrong.
pub async fn resolve_public(state: &AppState, slug: &str, token: &str) -> ApiResult<(String, String)> {
    let nf = || ApiError::not_found("card");
    if slug.len() > 64 || token.len() > 128 || slug.contains('\0') || token.contains('\0') {
        return Err(nf());
    }
    let mut c = conn(state).await?;
    let t = tenants::tenant_by_slug(&mut c, slug).await?.ok_or_else(nf)?;
    let (secret, _, _) = settings(&mut c, &t.id).await?;
    let member = member_of_public_token(&secret, token).ok_or_else(nf)?;
    members::by_id(&mut c, &t.id, &member).await?.ok_or_else(nf)?;
    Ok((t.id, member))
}

/// A tenant's logo for public pages (the Google class links to it).
pub async fn public_logo(state: &AppState, slug: &str) -> ApiResult<Vec<u8>> {
    let mut c = conn(state).await?;
    let t = tenants::tenant_by_slug(&mut c, slug).await?.ok_or_else(|| ApiError::not_found("programme"))?;
    let (_, d, _) = settings(&mut c, &t.id).await?;
    match store::image(&mut c, &t.id, "logo").await? {
        Some(b64) => B64.decode(b64).map_err(ApiError::internal),
        None => {
            Ok(kopilka_cards::image::solid_png(160, 50, kopilka_cards::image::parse_hex_color(&d.background_color).unwrap_or([0, 0, 0])))
        }
    }
}

pub type Shared = Arc<CardsConfig>;

/// Find a member by a QR token: the static `qr_token`, or a rotating token
/// (`t1.<member>.<code>`) whose code is current (±1 step). Answers the member and, for a
/// rotating token, the step its code belongs to.
pub async fn find_by_qr(c: &mut Conn, tenant: &str, token: &str, now: i64) -> ApiResult<Option<(Member, Option<i64>)>> {
    if let Some((member_id, code)) = parse_rotating(token) {
        let Some(m) = members::by_id(c, tenant, member_id).await? else { return Ok(None) };
        let Some((secret, _)) = settings_if_any(c, tenant).await? else { return Ok(None) };
        return Ok(kopilka_cards::totp::verify(&rotation_key(&secret, member_id), code, now).map(|step| (m, Some(step))));
    }
    Ok(members::find(c, tenant, members::By::QrToken, token).await?.map(|m| (m, None)))
}
