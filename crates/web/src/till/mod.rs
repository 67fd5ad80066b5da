//! The cashier terminal, `/till`: a browser tab on a shop's tablet that runs the
//! programme where no till integration exists.
//!
//! The cashier logs in with a till key (a `pos` API key). The key itself is never stored:
//! the session (`web_sessions.kind = till`) keeps the key's id as its subject, and every
//! request reads the key row again, so a revoked or expired key ends the session at once,
//! and the key's store and till binding applies to everything the terminal does. The
//! sale being built (member, lines, spend choice, last quote) lives in the session's
//! server-side data. Quote, reserve, checkout, cancel and refund go through the same
//! services as the API (`pos::parse`/`pos::run`, `refund::parse`/`refund::refund`) with
//! the key's [`Auth`], so the terminal behaves exactly like a till integration.

mod auth;
mod sale;

use crate::session::{self, TILL};
use crate::{Ctx, Page, WebError, WebState};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kopilka_domain::program::Program;
use kopilka_server::auth::{Auth, Role};
use kopilka_store::tenants::{self, ApiKey, Tenant};
use kopilka_store::web::Session;
use kopilka_store::{StoreError, now_s};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/till", get(sale::show))
        .route("/till/login", get(auth::login_page).post(auth::login_submit))
        .route("/till/logout", post(auth::logout))
        .route("/till/member", post(sale::find_member))
        .route("/till/member/clear", post(sale::clear_member))
        .route("/till/lines", post(sale::add_line))
        .route("/till/lines/{n}/remove", post(sale::remove_line))
        .route("/till/quote", post(sale::quote))
        .route("/till/reserve", post(sale::reserve))
        .route("/till/checkout", post(sale::checkout))
        .route("/till/cancel", post(sale::cancel))
        .route("/till/new", post(sale::new_sale))
        .route("/till/receipts/{id}", get(sale::receipt))
        .route("/till/refund", get(sale::refund_page).post(sale::refund_find))
        .route("/till/receipts/{id}/refund", get(sale::refund_form).post(sale::refund_submit))
}

/// The member of the sale, as the till found them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TillMember {
    /// `card`, `phone` or `qr`: how the member was identified (a QR proves presence for
    /// `redeem.auth`).
    pub by: String,
    pub value: String,
    pub id: String,
    pub card_number: String,
    pub name: Option<String>,
}

/// A receipt line as the cashier typed it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TillLine {
    pub sku: String,
    pub name: String,
    pub category: String,
    /// An integer (units) or a decimal with up to 3 places (a measured quantity).
    pub quantity: String,
    pub price_minor: i64,
}

/// The open sale, kept in the session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TillData {
    pub receipt_id: String,
    pub member: Option<TillMember>,
    pub lines: Vec<TillLine>,
    /// `none`, `all` or `some`.
    pub spend: String,
    pub spend_points: i64,
    /// A reserve is open for this body: it must stay as it is until checkout or cancel.
    pub reserved: bool,
    /// The last quote or reserve answer.
    pub quote: Option<serde_json::Value>,
}

impl TillData {
    /// A fresh sale with a new receipt id.
    pub fn fresh() -> TillData {
        TillData { receipt_id: new_receipt_id(), spend: "none".into(), ..TillData::default() }
    }
}

/// A receipt id a cashier can read out: `W` + date + 6 random hex digits.
pub fn new_receipt_id() -> String {
    let mut b = [0u8; 3];
    rand::fill(&mut b);
    let date = chrono::DateTime::from_timestamp(now_s(), 0).map(|t| t.format("%y%m%d").to_string()).unwrap_or_default();
    format!("W{date}-{}", hex::encode_upper(b))
}

/// The till of a request: its key (read again on every request), tenant and sale.
#[derive(Debug, Clone)]
pub struct Till {
    pub tenant: Tenant,
    pub key: ApiKey,
    pub session: Session,
    pub data: TillData,
    pub program: Arc<Program>,
}

impl Till {
    /// The key's permissions, exactly as the API gives them to it.
    pub fn auth(&self) -> Auth {
        Auth {
            tenant_id: self.tenant.id.clone(),
            key_id: self.key.id.clone(),
            role: Role::Pos,
            store_id: self.key.store_id.clone(),
            till_id: self.key.till_id.clone(),
            expires_at: self.key.expires_at,
        }
    }

    /// The (store, till) every receipt of this terminal is posted under.
    pub fn place(&self) -> (String, String) {
        (self.key.store_id.clone().unwrap_or_default(), self.key.till_id.clone().unwrap_or_default())
    }

    /// Save the sale.
    pub async fn save(&self, st: &WebState, data: &TillData) -> Result<(), WebError> {
        session::set_data(
            st,
            &self.session,
            &serde_json::to_value(data).map_err(|e| WebError::from(kopilka_server::error::ApiError::internal(e)))?,
        )
        .await?;
        Ok(())
    }
}

/// A key that may run a till: a live `pos` key.
pub fn usable(k: &ApiKey, now: i64) -> bool {
    k.role == "pos" && k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now) && k.store_id.is_some()
}

pub enum NoTill {
    Login,
    Error(WebError),
}

impl IntoResponse for NoTill {
    fn into_response(self) -> Response {
        match self {
            NoTill::Login => Redirect::to("/till/login").into_response(),
            NoTill::Error(e) => e.into_response(),
        }
    }
}

impl FromRequestParts<WebState> for Till {
    type Rejection = NoTill;

    async fn from_request_parts(parts: &mut Parts, st: &WebState) -> Result<Self, Self::Rejection> {
        let missing = || {
            if parts.method == Method::GET {
                NoTill::Login
            } else {
                NoTill::Error(WebError::new(StatusCode::UNAUTHORIZED, "common.error.login"))
            }
        };
        let err = |e: WebError| NoTill::Error(e);
        let Some(s) = session::current(st, &TILL, &parts.headers).await.map_err(|e| err(e.into()))? else { return Err(missing()) };
        let mut c = st.app.db.pool().acquire().await.map_err(|e| err(StoreError::from(e).into()))?;
        let key = tenants::list_keys(&mut c, &s.tenant_id).await.map_err(|e| err(e.into()))?.into_iter().find(|k| k.id == s.subject_id);
        let tenant = tenants::tenant_by_id(&mut c, &s.tenant_id).await.map_err(|e| err(e.into()))?;
        let (Some(key), Some(tenant)) = (key.filter(|k| usable(k, now_s())), tenant) else {
            // Revoked or expired: the session goes with it.
            drop(c);
            let mut tx = st.app.db.begin().await.map_err(|e| err(e.into()))?;
            kopilka_store::web::delete_session(tx.conn(), &s.tenant_id, &s.id).await.map_err(|e| err(e.into()))?;
            tx.commit().await.map_err(|e| err(e.into()))?;
            return Err(missing());
        };
        let (_, program) = kopilka_server::services::program::current(&st.app, &mut c, &tenant.id).await.map_err(|e| err(e.into()))?;
        let data: TillData =
            serde_json::from_str(&s.data).ok().filter(|d: &TillData| !d.receipt_id.is_empty()).unwrap_or_else(TillData::fresh);
        Ok(Till { tenant, key, session: s, data, program })
    }
}

/// The frame of a till page.
pub fn page(ctx: &Ctx, title_key: &str) -> Page {
    Page::new(ctx, "till", ctx.t.m(title_key))
}

/// The terminal's top bar, in every till template as `bar`.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Logged in: the programme, store and till.
    pub place: Option<String>,
}

impl Bar {
    pub fn of(t: &Till, store_name: &str) -> Bar {
        let till = t.key.till_id.as_deref().map(|x| format!(" · {x}")).unwrap_or_default();
        Bar { place: Some(format!("{} · {store_name}{till}", t.tenant.name)) }
    }
}
