//! `redeem.auth` (docs/api.md, "What spending needs: `redeem.auth`"): what spending points requires.
//!
//! - `none`: any identifier;
//! - `qr`: the member was identified by a QR token. With rotation on (the card design's
//!   `qr_rotation`), only a current rotating token counts, and each of its codes pays once;
//!   a static token (or a screenshot older than a minute) does not;
//! - `qr_or_otp`: as `qr`, or the one-time code `POST /api/v1/pos/otp` sent, carried in
//!   the checkout's `otp`. A code pays once.
//!
//! [`check`] decides without writing (a quote uses it as is); [`Proof::spend`] uses the QR
//! step or the code inside the reserve's or checkout's transaction, so a failed request
//! spends nothing.

use super::pos::{MemberRef, PosRequest};
use super::{Failure, Fallible};
use crate::error::ApiError;
use kopilka_domain::program::{Program, RedeemAuth};
use kopilka_store::members::Member;
use kopilka_store::{Conn, StoreError, cards as store};

/// Wrong one-time codes allowed per member in 15 minutes (in memory, per process).
pub const OTP_ATTEMPTS_PER_15_MIN: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// The programme asks for nothing.
    NotNeeded,
    /// A QR token that satisfies `qr` (`step` for a rotating code, spent on use).
    Qr { member: String, step: Option<i64> },
    /// A valid one-time code.
    Otp { id: String },
    /// Nothing that satisfies `auth`.
    Missing,
}

impl Proof {
    pub fn ok(&self) -> bool {
        *self != Proof::Missing
    }

    /// Use the proof: the rotating QR step or the one-time code pays only once.
    pub async fn spend(&self, c: &mut Conn, tenant: &str, now: i64) -> Fallible<()> {
        match self {
            Proof::Qr { member, step: Some(step) } => match store::spend_qr_step(c, tenant, member, *step, now).await {
                Ok(()) => Ok(()),
                // Another request spent this code first (the retry will see it spent).
                Err(StoreError::Unique(m)) => Err(Failure::Store(StoreError::Unique(m))),
                Err(e) => Err(e.into()),
            },
            Proof::Otp { id } => {
                if store::use_otp(c, tenant, id, now).await? {
                    Ok(())
                } else {
                    Err(Failure::Api(required()))
                }
            }
            _ => Ok(()),
        }
    }
}

pub fn required() -> ApiError {
    ApiError::rule("redeem_auth_required", "spending points needs the member's current QR code (or a one-time code)")
}

/// What the request proves about the member's presence, under the programme's `auth`.
pub async fn check(
    state: &crate::state::AppState,
    c: &mut Conn,
    tenant: &str,
    program: &Program,
    req: &PosRequest,
    member: Option<&Member>,
    now: i64,
) -> Fallible<Proof> {
    if program.redeem.auth == RedeemAuth::None {
        return Ok(Proof::NotNeeded);
    }
    let Some(member) = member else { return Ok(Proof::Missing) };
    if let Some(MemberRef::QrToken(token)) = &req.member {
        let rotation = super::cards::settings_if_any(c, tenant).await?.is_some_and(|(_, d)| d.qr_rotation);
        match super::cards::find_by_qr(c, tenant, token, now).await? {
            Some((m, Some(step))) if m.id == member.id && !store::qr_step_spent(c, tenant, &m.id, step).await? => {
                return Ok(Proof::Qr { member: m.id, step: Some(step) });
            }
            Some((m, None)) if m.id == member.id && !rotation => return Ok(Proof::Qr { member: m.id, step: None }),
            _ => {}
        }
    }
    if program.redeem.auth == RedeemAuth::QrOrOtp
        && let Some(code) = &req.otp
    {
        // Wrong codes are counted in memory, so a failed request still writes nothing.
        let key = format!("otp:{tenant}:{}", member.id);
        if state.limiter.used(&key, 900, now) >= OTP_ATTEMPTS_PER_15_MIN {
            return Err(Failure::Api(ApiError::rate_limited()));
        }
        if let Some(otp) = store::live_otp(c, tenant, &member.id, "pos", now).await?
            && super::cards::same(&otp.code_hash, &super::otp::code_hash(c, tenant, &otp.id, code).await?)
        {
            return Ok(Proof::Otp { id: otp.id });
        }
        state.limiter.allow(&key, u32::MAX, 900, now);
    }
    Ok(Proof::Missing)
}
