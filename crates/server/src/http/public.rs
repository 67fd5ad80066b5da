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
