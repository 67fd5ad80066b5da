//! Member handlers.

use super::{Params, limit_param, only_params};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::input::{Obj, check, parse_object};
use crate::services::members::{self as svc, Adjustment, NewMember, Transfer};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kopilka_domain::identity::{normalize_email, normalize_phone};
use kopilka_store::members::By;
use serde_json::Value;

fn birthday_ok(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .is_ok_and(|d| d <= chrono::Utc::now().date_naive() && d.format("%Y-%m-%d").to_string() == s)
}

pub async fn create(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<(StatusCode, Json<svc::MemberView>)> {
    auth.require(&[Role::Admin, Role::Pos])?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let external_id = o.str("external_id", 128);
    let email = o.str("email", 254).and_then(|e| match normalize_email(&e) {
        Ok(e) => Some(e),
        Err(m) => {
            o.err("email", m);
            None
        }
    });
    let phone = o.str("phone", 32).and_then(|p| match normalize_phone(&p) {
        Ok(p) => Some(p),
        Err(m) => {
            o.err("phone", m);
            None
        }
    });
    let name = o.str("name", 200);
    let birthday = o.str("birthday", 10);
    if let Some(b) = &birthday
        && !birthday_ok(b)
    {
        o.err("birthday", "must be a past date as YYYY-MM-DD");
    }
    let referral_code = o.str("referral_code", 64);
    // Read-only fields of a member that a client may send back are ignored.
    for key in ["id", "card_number", "qr_token", "created_at"] {
        o.ignore(key);
    }
    let mut consents = Vec::new();
    if let Some(m) = o.object("consents") {
        let mut c = Obj::new(m, "consents");
        for key in m.keys() {
            let k: &'static str = match key.as_str() {
                "personal_data" => "personal_data",
                "marketing" => "marketing",
                "sms" => "sms",
                "email" => "email",
                "push" => "push",
                _ => continue,
            };
            if let Some(b) = c.bool(k) {
                consents.push((k.to_owned(), b));
            }
        }
        let errs = c.finish();
        o.absorb(errs);
    }
    check(o)?;
    let source = format!("api:{}", auth.role.as_str());
    let m = NewMember { external_id, email, phone, name, birthday, referral_code, consents, card_number: None, source };
    svc::create(&s, &auth, m).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub async fn lookup(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<svc::MemberView>> {
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let card = o.str("card_number", 19);
    let phone = o.str("phone", 32);
    let email = o.str("email", 254);
    let external = o.str("external_id", 128);
    let qr = o.str("qr_token", 128);
    let given = ["card_number", "phone", "email", "external_id", "qr_token"].iter().filter(|k| body.contains_key(**k)).count();
    if given != 1 {
        o.err("$", "send exactly one of card_number, phone, email, external_id, qr_token");
    }
    let (by, value) = match (card, phone, email, external, qr) {
        (Some(v), ..) => (By::Card, v),
        (_, Some(p), ..) => match normalize_phone(&p) {
            Ok(p) => (By::Phone, p),
            Err(m) => {
                o.err("phone", m);
                (By::Phone, p)
            }
        },
        (_, _, Some(e), ..) => (By::Email, e.trim().to_lowercase()),
        (_, _, _, Some(x), _) => (By::External, x),
        (_, _, _, _, Some(q)) => (By::QrToken, q),
        _ => (By::Id, String::new()),
    };
    check(o)?;
    if auth.role == Role::Pos
        && !s.limiter.allow(&format!("lookup:{}", auth.key_id), s.config.pos_lookups_per_minute, 60, kopilka_store::now_s())
    {
        return Err(ApiError::rate_limited());
    }
    svc::lookup(&s, &auth, by, &value).await.map(Json)
}

pub async fn get(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<svc::MemberView>> {
    svc::get(&s, &auth, &id).await.map(Json)
}

pub async fn list(State(s): State<AppState>, auth: Auth, q: Params) -> ApiResult<Json<svc::MemberPage>> {
    auth.require(&[Role::Admin, Role::Analyst])?;
    only_params(&q, &["limit", "cursor"])?;
    let limit = limit_param(&q, 100, 1000)?;
    svc::list(&s, &auth, q.get("cursor").map(String::as_str), limit).await.map(Json)
}

pub async fn balance(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<svc::BalanceView>> {
    svc::balance(&s, &auth, &id).await.map(Json)
}

pub async fn ledger(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, q: Params) -> ApiResult<Json<svc::LedgerPage>> {
    auth.require(&[Role::Admin, Role::Analyst])?;
    only_params(&q, &["limit", "cursor"])?;
    let limit = limit_param(&q, 50, 500)?;
    svc::ledger_page(&s, &auth, &id, limit, q.get("cursor").map(String::as_str)).await.map(Json)
}

pub async fn history(State(s): State<AppState>, auth: Auth, Path(id): Path<String>, q: Params) -> ApiResult<Json<svc::History>> {
    auth.require(&[Role::Admin, Role::Analyst])?;
    only_params(&q, &["limit"])?;
    let limit = limit_param(&q, 100, 1000)?;
    svc::history(&s, &auth, &id, limit).await.map(Json)
}

pub async fn adjust(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<svc::AdjustmentAnswer>)> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let points = o.req_int("points", i64::MIN, i64::MAX);
    if points == Some(0) {
        o.err("points", "must not be 0");
    }
    let reason = o.req_str("reason", 500).filter(|r| !r.trim().is_empty());
    if body.get("reason").and_then(Value::as_str).is_some_and(|r| r.trim().is_empty()) {
        o.err("reason", "must say why");
    }
    let adjustment_id = o.str("adjustment_id", 128);
    check(o)?;
    let a = Adjustment { points: points.unwrap_or(0), reason: reason.unwrap_or_default(), adjustment_id, body: Value::Object(body) };
    svc::adjust(&s, &auth, &id, a).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub async fn transfer(
    State(s): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<svc::TransferAnswer>)> {
    auth.admin()?;
    let body = parse_object(&body)?;
    let mut o = Obj::new(&body, "");
    let to = o.req_str("to_member_id", 64);
    let points = o.req_int("points", 1, i64::MAX);
    let transfer_id = o.req_str("transfer_id", 128);
    check(o)?;
    let t = Transfer {
        to_member_id: to.unwrap_or_default(),
        points: points.unwrap_or(0),
        transfer_id: transfer_id.unwrap_or_default(),
        body: Value::Object(body),
    };
    svc::transfer(&s, &auth, &id, t).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub async fn import(State(s): State<AppState>, auth: Auth, body: Bytes) -> ApiResult<Json<Value>> {
    auth.admin()?;
    let report = crate::services::import::import_csv(&s.db, &auth.tenant_id, &auth.actor(), &body, None).await?;
    if report.rejected.is_empty() {
        Ok(Json(serde_json::to_value(&report)?))
    } else {
        let mut e = ApiError::rule("import_rejected", format!("{} rows were rejected; nothing was imported", report.rejected.len()));
        for r in report.rejected.iter().take(100) {
            e.fields.insert(format!("row {}", r.row), r.reason.clone());
        }
        Err(e)
    }
}
