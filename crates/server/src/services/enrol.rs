//! Enrolment by link: the public form at `/join/{programme}` (name, phone or email,
//! birthday, consents), a one-time code sent by SMS (phone first) or email, and on the
//! right code a new member with a card. The form waits in `enrolments` until confirmed;
//! only the code's HMAC is stored.

use super::cards::{self, conn};
use super::members::{self as msvc, NewMember};
use super::otp;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use kopilka_domain::identity::{normalize_email, normalize_phone};
use kopilka_store::{StoreError, cards as store, members, new_id, now_s, tenants};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const CODE_TTL_S: i64 = 600;
pub const MAX_ATTEMPTS: i64 = 5;
/// Enrolments started per contact in 15 minutes, and per programme per minute.
pub const PER_CONTACT_PER_15_MIN: u32 = 3;
pub const PER_PROGRAMME_PER_MIN: u32 = 60;

/// The form, checked.
#[derive(Debug, Clone)]
pub struct Form {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub birthday: Option<String>,
    pub marketing: bool,
}

/// Check the submitted fields; field errors by name.
pub fn parse_form(fields: &BTreeMap<String, String>) -> Result<Form, BTreeMap<String, String>> {
    let mut errs = BTreeMap::new();
    let get = |k: &str| fields.get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    for k in fields.keys() {
        if !["name", "phone", "email", "birthday", "consent_personal_data", "consent_marketing"].contains(&k.as_str()) {
            errs.insert(k.clone(), "unknown field".to_owned());
        }
    }
    let name = get("name");
    if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
        errs.insert("name".into(), "at most 100 characters".into());
    }
    let phone = get("phone").and_then(|p| match normalize_phone(&p) {
        Ok(p) => Some(p),
        Err(e) => {
            errs.insert("phone".into(), e);
            None
        }
    });
    let email = get("email").and_then(|e| match normalize_email(&e) {
        Ok(e) => Some(e),
        Err(m) => {
            errs.insert("email".into(), m);
            None
        }
    });
    if phone.is_none() && email.is_none() && !errs.contains_key("phone") && !errs.contains_key("email") {
        errs.insert("phone".into(), "enter a phone number or an email address".into());
    }
    let birthday = get("birthday");
    if let Some(b) = &birthday
        && !chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").is_ok_and(|d| d <= chrono::Utc::now().date_naive())
    {
        errs.insert("birthday".into(), "must be a date (YYYY-MM-DD) in the past".into());
    }
    let yes = |k: &str| get(k).is_some_and(|v| matches!(v.as_str(), "on" | "true" | "yes" | "1"));
    if !yes("consent_personal_data") {
        errs.insert("consent_personal_data".into(), "the programme needs your consent to keep your details".into());
    }
    if errs.is_empty() { Ok(Form { name, phone, email, birthday, marketing: yes("consent_marketing") }) } else { Err(errs) }
}

/// The programme of a slug: (tenant id, display name).
pub async fn programme(state: &AppState, slug: &str) -> ApiResult<(String, String, cards::Design)> {
    if slug.len() > 64 || slug.contains('\0') {
        return Err(ApiError::not_found("programme"));
    }
    let mut c = conn(state).await?;
    let t = tenants::tenant_by_slug(&mut c, slug).await?.ok_or_else(|| ApiError::not_found("programme"))?;
    let (_, design, _) = cards::settings(&mut c, &t.id).await?;
    let name = design.organization_name.clone().unwrap_or(t.name);
    Ok((t.id, name, design))
}

/// Start an enrolment: store the form, send the code. Answers the enrolment id and the
/// masked contact the code went to.
pub async fn start(state: &AppState, tenant: &str, org: &str, form: Form) -> ApiResult<Value> {
    let now = now_s();
    let (channel, to) = otp::channel_for(state, form.phone.as_deref(), form.email.as_deref())
        .ok_or_else(|| ApiError::rule("otp_unavailable", "codes cannot be sent to that contact here; try the other one"))?;
    if !state.limiter.allow(&format!("enrol:{tenant}"), PER_PROGRAMME_PER_MIN, 60, now)
        || !state.limiter.allow(&format!("enrol:{tenant}:{to}"), PER_CONTACT_PER_15_MIN, 900, now)
    {
        return Err(ApiError::rate_limited());
    }
    let mut tx = state.db.begin().await?;
    // Already a member with this contact: say so rather than make a second card.
    for (by, v) in [(members::By::Phone, &form.phone), (members::By::Email, &form.email)] {
        if let Some(v) = v
            && members::find(tx.conn(), tenant, by, v).await?.is_some()
        {
            return Err(ApiError::conflict("member_exists", "this contact already has a card; ask at the till"));
        }
    }
    let (secret, _, _) = cards::settings(tx.conn(), tenant).await?;
    let id = new_id();
    let code = otp::new_code();
    let stored =
        json!({"name": form.name, "phone": form.phone, "email": form.email, "birthday": form.birthday, "marketing": form.marketing});
    store::insert_enrolment(
        tx.conn(),
        tenant,
        &store::Enrolment {
            id: id.clone(),
            form: stored.to_string(),
            channel: channel.into(),
            code_hash: otp::hash_with(&secret, &id, &code),
            attempts: 0,
            expires_at: now + CODE_TTL_S,
            member_id: None,
            created_at: now,
        },
    )
    .await?;
    tx.commit().await?;
    let text = format!("{code} is your code to join {org}. It expires in 10 minutes.");
    if let Err(e) = otp::deliver(state, channel, &to, &format!("{org}: your code"), &text).await {
        // Undelivered: the enrolment goes, so the failed request leaves nothing behind.
        let mut c = conn(state).await?;
        store::delete_enrolment(&mut c, tenant, &id).await?;
        return Err(e);
    }
    tracing::info!(tenant.id = %tenant, enrolment.id = %id, channel, "enrolment code sent");
    let masked = if channel == "sms" { kopilka_domain::identity::mask_phone(&to) } else { kopilka_domain::identity::mask_email(&to) };
    Ok(json!({"enrolment_id": id, "channel": channel, "to": masked}))
}

pub enum Confirmed {
    /// The member and their public card token.
    Member { member_id: String, token: String },
    /// Wrong code; attempts left.
    Wrong { left: i64 },
    /// Expired or out of attempts: start again.
    Over,
}

/// Check the code; on the right one, create the member (with its consents) and answer
/// the card. A second confirmation of the same enrolment answers the same member.
pub async fn confirm(state: &AppState, tenant: &str, id: &str, code: &str) -> ApiResult<Confirmed> {
    let now = now_s();
    let code = code.trim();
    super::with_retry(|_| async move {
        let mut tx = state.db.begin().await?;
        store::lock_enrolment(&mut tx, tenant, id).await?;
        let Some(e) = store::enrolment(tx.conn(), tenant, id).await? else {
            return Err(ApiError::not_found("enrolment").into());
        };
        let (secret, _, _) = cards::settings(tx.conn(), tenant).await?;
        // A confirmed enrolment shows its card again, but only for its code: the confirm
        // URL (browser history) and the enrolment id (logs) are not credentials.
        if e.attempts >= MAX_ATTEMPTS || (e.member_id.is_none() && e.expires_at <= now) {
            tx.rollback().await?;
            return Ok(Confirmed::Over);
        }
        if code.len() != 6 || !cards::same(&e.code_hash, &otp::hash_with(&secret, &e.id, code)) {
            // The attempt is recorded: that is what bounds guessing.
            store::enrolment_attempt(tx.conn(), tenant, id).await?;
            tx.commit().await?;
            let left = MAX_ATTEMPTS - e.attempts - 1;
            return Ok(if left > 0 { Confirmed::Wrong { left } } else { Confirmed::Over });
        }
        if let Some(m) = &e.member_id {
            tx.rollback().await?;
            return Ok(Confirmed::Member { member_id: m.clone(), token: cards::public_token(&secret, m) });
        }
        let f: Value = serde_json::from_str(&e.form)?;
        let s = |k: &str| f[k].as_str().map(str::to_owned);
        let mut consents = vec![("personal_data".to_owned(), true)];
        consents.push(("marketing".to_owned(), f["marketing"].as_bool().unwrap_or(false)));
        let nm = NewMember {
            external_id: None,
            email: s("email"),
            phone: s("phone"),
            name: s("name"),
            birthday: s("birthday"),
            referral_code: None,
            consents,
            card_number: None,
            source: "enrolment".into(),
        };
        let member = msvc::insert(&mut tx, tenant, &nm, now).await?;
        if !store::enrolment_done(tx.conn(), tenant, id, &member.id).await? {
            return Err(StoreError::Corrupt("enrolment changed under its row lock".into()).into());
        }
        tenants::audit(
            tx.conn(),
            tenant,
            &tenants::Audit {
                actor: "enrolment",
                action: "member.create",
                object_type: "member",
                object_id: &member.id,
                details: &json!({"channel": e.channel}),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(tenant.id = %tenant, member.id = %member.id, "member enrolled by link");
        Ok(Confirmed::Member { token: cards::public_token(&secret, &member.id), member_id: member.id })
    })
    .await
}
