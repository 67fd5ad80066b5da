//! One-time codes: `POST /api/v1/pos/otp` sends a member a code (SMS first, else email)
//! that a checkout carries in `otp` under `redeem.auth: qr_or_otp`. Codes are 6 digits,
//! live 5 minutes, are stored only as an HMAC, and pay once.

use super::cards;
use super::notify;
use super::pos::MemberRef;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::StatusCode;
use kopilka_domain::identity::{mask_email, mask_phone};
use kopilka_store::members::{self, By, Member};
use kopilka_store::{Conn, cards as store, new_id, now_s, tenants};
use serde_json::{Value, json};

pub const OTP_TTL_S: i64 = 300;
/// Codes sent to one member per 15 minutes.
pub const OTP_SENDS_PER_15_MIN: i64 = 5;

/// The stored form of a code: HMAC of the tenant's card secret over its id and digits.
pub async fn code_hash(c: &mut Conn, tenant: &str, id: &str, code: &str) -> ApiResult<String> {
    let secret = cards::settings_if_any(c, tenant).await?.map(|s| s.0).unwrap_or_default();
    Ok(hash_with(&secret, id, code))
}

pub fn hash_with(secret: &[u8], id: &str, code: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"otp:");
    mac.update(id.as_bytes());
    mac.update(b":");
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn new_code() -> String {
    format!("{:06}", rand::random::<u32>() % 1_000_000)
}

/// Where a code goes: ("sms", phone) when the member has a phone and SMS is set up, else
/// ("email", address) when email is set up.
pub fn channel_for(state: &AppState, phone: Option<&str>, email: Option<&str>) -> Option<(&'static str, String)> {
    let c = &state.config.cards;
    match (phone, email) {
        (Some(p), _) if c.sms_url.is_some() => Some(("sms", p.to_owned())),
        (_, Some(e)) if c.smtp_addr.is_some() => Some(("email", e.to_owned())),
        _ => None,
    }
}

/// Send a text through the channel's adapter.
pub async fn deliver(state: &AppState, channel: &str, to: &str, subject: &str, text: &str) -> ApiResult<()> {
    let c = &state.config.cards;
    let r = match channel {
        "sms" => notify::send_sms(c.sms_url.as_deref().unwrap_or_default(), c.sms_token.as_deref(), to, text).await,
        _ => notify::send_email(c.smtp_addr.as_deref().unwrap_or_default(), &c.smtp_from, to, subject, text).await,
    };
    r.map_err(|e| {
        tracing::warn!(channel, error = %e, "one-time code delivery failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "otp_delivery_failed", "the code could not be sent; try again shortly")
    })
}

async fn find(c: &mut Conn, tenant: &str, r: &MemberRef, now: i64) -> ApiResult<Member> {
    let m = match r {
        MemberRef::Card(v) => members::find(c, tenant, By::Card, v).await?,
        MemberRef::Phone(v) => members::find(c, tenant, By::Phone, v).await?,
        MemberRef::Id(v) => members::by_id(c, tenant, v).await?,
        MemberRef::QrToken(v) => cards::find_by_qr(c, tenant, v, now).await?.map(|(m, _)| m),
    };
    m.ok_or_else(super::members::member_not_found)
}

/// `POST /api/v1/pos/otp`: send the member a code for `redeem.auth: qr_or_otp`.
pub async fn send_pos(state: &AppState, tenant: &str, member: &MemberRef) -> ApiResult<Value> {
    let now = now_s();
    let mut tx = state.db.begin().await?;
    let m = find(tx.conn(), tenant, member, now).await?;
    let (channel, to) = channel_for(state, m.phone.as_deref(), m.email.as_deref())
        .ok_or_else(|| ApiError::rule("otp_unavailable", "the member has no phone or email that codes can be sent to here"))?;
    // Count under the member's balance lock, so that concurrent sends cannot pass the limit.
    kopilka_store::ledger::lock_balance(&mut tx, tenant, &m.id).await?;
    if store::otp_count_since(tx.conn(), tenant, &m.id, "pos", now - 900).await? >= OTP_SENDS_PER_15_MIN {
        return Err(ApiError::rate_limited());
    }
    let id = new_id();
    let code = new_code();
    let (secret, design, _) = cards::settings(tx.conn(), tenant).await?;
    store::insert_otp(
        tx.conn(),
        tenant,
        &store::Otp {
            id: id.clone(),
            member_id: m.id.clone(),
            purpose: "pos".into(),
            code_hash: hash_with(&secret, &id, &code),
            attempts: 0,
            expires_at: now + OTP_TTL_S,
            used_at: None,
            created_at: now,
        },
    )
    .await?;
    let org = match design.organization_name {
        Some(o) => o,
        None => tenants::tenant_by_id(tx.conn(), tenant).await?.map(|t| t.name).unwrap_or_default(),
    };
    tx.commit().await?;
    let text = format!("{code} is your {org} code to spend points. It expires in 5 minutes.");
    if let Err(e) = deliver(state, channel, &to, &format!("{org}: your code"), &text).await {
        // Undelivered: the code goes, so the failed request leaves nothing behind.
        let mut c = cards::conn(state).await?;
        store::delete_otp(&mut c, tenant, &id).await?;
        return Err(e);
    }
    tracing::info!(tenant.id = %tenant, member.id = %m.id, channel, "one-time code sent");
    let masked = if channel == "sms" { mask_phone(&to) } else { mask_email(&to) };
    Ok(json!({"member_id": m.id, "channel": channel, "to": masked, "expires_at": crate::input::fmt_time(now + OTP_TTL_S)}))
}
