//! Public pages for members' phones: the web card. Plain HTML with inline CSS, no
//! external scripts or fonts; works on a small screen.

use crate::error::ApiResult;
use crate::services::cards as svc;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Escape text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

pub fn page(title: &str, background: &str, foreground: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>{title}</title>
<style>
body{{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f6;color:#111827}}
main{{max-width:420px;margin:0 auto;padding:16px}}
.card{{background:{background};color:{foreground};border-radius:16px;padding:20px;box-shadow:0 4px 16px rgba(0,0,0,.15)}}
.card h1{{font-size:1.2rem;margin:0 0 12px}}
.row{{display:flex;justify-content:space-between;margin:8px 0}}
.big{{font-size:2rem;font-weight:700}}
.code{{background:#fff;border-radius:12px;padding:12px;margin-top:16px;text-align:center}}
.code img{{max-width:100%;height:auto}}
.buttons a{{display:block;text-align:center;margin:12px 0;padding:14px;border-radius:12px;background:#111827;color:#fff;text-decoration:none;font-weight:600}}
form label{{display:block;margin:12px 0 4px}} form input{{width:100%;box-sizing:border-box;padding:12px;font-size:1rem;border:1px solid #d1d5db;border-radius:8px}}
form button{{margin-top:16px;width:100%;padding:14px;font-size:1rem;border:0;border-radius:12px;background:{background};color:{foreground};font-weight:600}}
.error{{color:#b91c1c}} .muted{{color:#6b7280;font-size:.9rem}}
</style></head><body><main>{body}</main></body></html>"#
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html).into_response()
}

/// The member's web card: balance, tier, the code (refreshed every 20 seconds when the
/// QR rotates) and the wallet buttons.
pub async fn card_page(State(s): State<AppState>, Path((slug, token)): Path<(String, String)>) -> ApiResult<Response> {
    let (tenant, member) = svc::resolve_public(&s, &slug, &token).await?;
    let v = svc::view(&s, &tenant, &member).await?;
    let d = &v.design;
    let org = esc(d.organization_name.as_deref().unwrap_or(&v.tenant.name));
    let base = format!("/c/{}/{}", esc(&slug), esc(&token));
    let rotate = if d.qr_rotation && d.format() == kopilka_cards::Format::Qr {
        "<script>setInterval(function(){var i=document.getElementById('code');i.src=i.src.split('?')[0]+'?t='+Date.now();},20000);</script>"
    } else {
        ""
    };
    let name = if d.show_name {
        v.member
            .name
            .as_deref()
            .map(|n| format!("<div class=\"row\"><span>{}</span><span>{}</span></div>", esc(&d.labels.name), esc(n)))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let body = format!(
        r#"<div class="card"><h1>{org}</h1>
<div class="row"><span>{bl}</span><span class="big">{points}</span></div>
<div class="row"><span>{tl}</span><span>{tier}</span></div>{name}
<div class="row"><span>{cl}</span><span>{card}</span></div>
<div class="code"><img id="code" src="{base}/card.svg" alt="{card}"></div></div>
<div class="buttons"><a href="{base}/pass.pkpass">Add to Apple Wallet</a><a href="{base}/google-wallet">Save to Google Wallet</a></div>
<p class="muted">Show this code at the till.</p>{rotate}"#,
        bl = esc(&d.labels.balance),
        points = v.points,
        tl = esc(&d.labels.tier),
        tier = esc(v.tier_name.as_deref().unwrap_or("—")),
        cl = esc(&d.labels.card_number),
        card = esc(&v.member.card_number),
    );
    Ok(page(&org, &esc(&d.background_color), &esc(&d.foreground_color), &body))
}

// ---------------------------------------------------------------------------------------
// Enrolment by link: /join/{programme}
// ---------------------------------------------------------------------------------------

use crate::error::ApiError;
use crate::services::enrol;
use axum::Json;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use std::collections::BTreeMap;

pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/join/{slug}", get(join_page).post(join_submit))
        .route("/join/{slug}/poster.png", get(poster_png))
        .route("/join/{slug}/poster.pdf", get(poster_pdf))
        .route("/join/{slug}/confirm/{id}", get(confirm_page).post(confirm_submit))
}

/// Decode `application/x-www-form-urlencoded`.
pub fn parse_urlencoded(body: &[u8]) -> Option<BTreeMap<String, String>> {
    fn decode(s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).ok()?, 16).ok()?);
                    i += 2;
                }
                b'%' => return None,
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).ok().filter(|s| !s.contains('\0'))
    }
    let text = std::str::from_utf8(body).ok()?;
    let mut out = BTreeMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k)?, decode(v)?);
    }
    Some(out)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|h| h.to_str().ok()).is_some_and(|c| c.starts_with("application/json"))
}

/// The fields of a form or of a JSON object of strings and booleans.
fn fields(headers: &HeaderMap, body: &[u8]) -> ApiResult<BTreeMap<String, String>> {
    if is_json(headers) {
        let o = crate::input::parse_object(body)?;
        let mut out = BTreeMap::new();
        for (k, v) in o {
            let s = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(ApiError::field(k, "must be a string or a boolean")),
            };
            out.insert(k, s);
        }
        Ok(out)
    } else {
        parse_urlencoded(body).ok_or_else(|| ApiError::bad_json("the form could not be read"))
    }
}

fn join_form(slug: &str, org: &str, values: &BTreeMap<String, String>, errors: &BTreeMap<String, String>) -> String {
    let v = |k: &str| esc(values.get(k).map(String::as_str).unwrap_or(""));
    let e = |k: &str| errors.get(k).map(|m| format!("<div class=\"error\">{}</div>", esc(m))).unwrap_or_default();
    let checked = |k: &str| if values.get(k).is_some_and(|x| x == "on" || x == "true") { " checked" } else { "" };
    let general = errors.get("_").map(|m| format!("<p class=\"error\">{}</p>", esc(m))).unwrap_or_default();
    format!(
        r#"<div class="card"><h1>{org}</h1><p>Get the loyalty card on your phone.</p></div>{general}
<form method="post" action="/join/{slug}">
<label for="name">Name</label><input id="name" name="name" autocomplete="name" value="{name}">{en}
<label for="phone">Phone</label><input id="phone" name="phone" type="tel" autocomplete="tel" value="{phone}">{ep}
<label for="email">or email</label><input id="email" name="email" type="email" autocomplete="email" value="{email}">{ee}
<label for="birthday">Birthday (optional)</label><input id="birthday" name="birthday" type="date" value="{birthday}">{eb}
<label><input type="checkbox" name="consent_personal_data"{c1}> I agree that {org} keeps my details for the loyalty programme</label>{ec}
<label><input type="checkbox" name="consent_marketing"{c2}> Send me offers</label>
<button type="submit">Send me a code</button></form>"#,
        slug = esc(slug),
        name = v("name"),
        en = e("name"),
        phone = v("phone"),
        ep = e("phone"),
        email = v("email"),
        ee = e("email"),
        birthday = v("birthday"),
        eb = e("birthday"),
        c1 = checked("consent_personal_data"),
        ec = e("consent_personal_data"),
        c2 = checked("consent_marketing"),
    )
}

pub async fn join_page(State(s): State<AppState>, Path(slug): Path<String>) -> ApiResult<Response> {
    let (_, org, d) = enrol::programme(&s, &slug).await?;
    let body = join_form(&slug, &esc(&org), &BTreeMap::new(), &BTreeMap::new());
    Ok(page(&esc(&org), &esc(&d.background_color), &esc(&d.foreground_color), &body))
}

fn status(mut r: Response, code: StatusCode) -> Response {
    *r.status_mut() = code;
    r
}

pub async fn join_submit(State(s): State<AppState>, Path(slug): Path<String>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let (tenant, org, d) = enrol::programme(&s, &slug).await?;
    let json = is_json(&headers);
    let values = fields(&headers, &body)?;
    let html_err = |errors: BTreeMap<String, String>, code: StatusCode| {
        let body = join_form(&slug, &esc(&org), &values, &errors);
        status(page(&esc(&org), &esc(&d.background_color), &esc(&d.foreground_color), &body), code)
    };
    let form = match enrol::parse_form(&values) {
        Ok(f) => f,
        Err(errs) if json => return Err(ApiError::fields(errs)),
        Err(errs) => return Ok(html_err(errs, StatusCode::UNPROCESSABLE_ENTITY)),
    };
    match enrol::start(&s, &tenant, &org, form).await {
        Ok(v) => {
            let id = v["enrolment_id"].as_str().unwrap_or_default().to_owned();
            let confirm = format!("/join/{slug}/confirm/{id}");
            if json {
                let mut v = v;
                v["confirm_url"] = serde_json::Value::String(format!("{}{confirm}", s.config.cards.public_url));
                Ok((StatusCode::CREATED, Json(v)).into_response())
            } else {
                Ok((StatusCode::SEE_OTHER, [(header::LOCATION, confirm)]).into_response())
            }
        }
        Err(e) if json => Err(e),
        Err(e) if e.status.is_client_error() => {
            let mut errs = BTreeMap::new();
            errs.insert("_".to_owned(), e.message.clone());
            Ok(html_err(errs, e.status))
        }
        Err(e) => Err(e),
    }
}

fn confirm_form(slug: &str, id: &str, org: &str, error: Option<&str>) -> String {
    let err = error.map(|m| format!("<p class=\"error\">{}</p>", esc(m))).unwrap_or_default();
    format!(
        r#"<div class="card"><h1>{org}</h1><p>We sent you a 6-digit code.</p></div>{err}
<form method="post" action="/join/{slug}/confirm/{id}">
<label for="code">Code</label><input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6">
<button type="submit">Get my card</button></form>"#,
        slug = esc(slug),
        id = esc(id),
    )
}

pub async fn confirm_page(State(s): State<AppState>, Path((slug, id)): Path<(String, String)>) -> ApiResult<Response> {
    let (_, org, d) = enrol::programme(&s, &slug).await?;
    Ok(page(&esc(&org), &esc(&d.background_color), &esc(&d.foreground_color), &confirm_form(&slug, &id, &esc(&org), None)))
}

pub async fn confirm_submit(
    State(s): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (tenant, org, d) = enrol::programme(&s, &slug).await?;
    let json = is_json(&headers);
    let values = fields(&headers, &body)?;
    if let Some(k) = values.keys().find(|k| k.as_str() != "code") {
        return Err(ApiError::field(k.clone(), "unknown field"));
    }
    let code = values.get("code").cloned().unwrap_or_default();
    let out = enrol::confirm(&s, &tenant, &id, &code).await?;
    let html = |msg: &str, code: StatusCode| {
        status(
            page(&esc(&org), &esc(&d.background_color), &esc(&d.foreground_color), &confirm_form(&slug, &id, &esc(&org), Some(msg))),
            code,
        )
    };
    match out {
        enrol::Confirmed::Member { member_id, token } => {
            let card = format!("/c/{slug}/{token}");
            if json {
                let base = format!("{}{card}", s.config.cards.public_url);
                Ok(Json(serde_json::json!({
                    "member_id": member_id,
                    "page_url": base,
                    "pass_url": format!("{base}/pass.pkpass"),
                    "google_wallet_url": format!("{base}/google-wallet"),
                }))
                .into_response())
            } else {
                Ok((StatusCode::SEE_OTHER, [(header::LOCATION, card)]).into_response())
            }
        }
        enrol::Confirmed::Wrong { left } => {
            let msg = format!("That code is not right; {left} tries left.");
            if json {
                let mut e = ApiError::rule("otp_invalid", msg);
                e.fields.insert("code".into(), format!("{left} tries left"));
                Err(e)
            } else {
                Ok(html(&msg, StatusCode::UNPROCESSABLE_ENTITY))
            }
        }
        enrol::Confirmed::Over => {
            let msg = "This code has expired or had too many tries; please fill in the form again.";
            if json { Err(ApiError::rule("enrolment_expired", msg)) } else { Ok(html(msg, StatusCode::UNPROCESSABLE_ENTITY)) }
        }
    }
}

pub async fn poster_png(State(s): State<AppState>, Path(slug): Path<String>) -> ApiResult<Response> {
    enrol::programme(&s, &slug).await?;
    let url = format!("{}/join/{slug}", s.config.cards.public_url);
    let png = kopilka_cards::poster::png(&url).map_err(svc::code_error)?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

pub async fn poster_pdf(State(s): State<AppState>, Path(slug): Path<String>) -> ApiResult<Response> {
    let (_, org, _) = enrol::programme(&s, &slug).await?;
    let url = format!("{}/join/{slug}", s.config.cards.public_url);
    let heading = if org.is_ascii() { format!("Join {org}") } else { "Join our loyalty programme".to_owned() };
    let pdf = kopilka_cards::poster::pdf(&url, &heading).map_err(svc::code_error)?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf).into_response())
}
