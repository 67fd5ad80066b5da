//! The card design: colours, texts, the code's format, the member's name on the card,
//! the rotating QR, and the logo and strip images, with a preview drawn from the saved
//! design. Everything goes through `services::cards`, as the API's `/program/card` does
//! (wallet keys stay in the API).
//!
//! Owners and marketers edit; analysts read; cashiers see nothing.

use super::programme::field_message;
use crate::form::{Fields, Form};
use crate::staff::{Perm, Staff};
use crate::{Ctx, Page, WebResult, WebState};
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kopilka_server::services::cards;
use kopilka_store::StoreError;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/card", get(show).post(save))
        .route("/admin/card/images/{kind}", post(upload))
        .route("/admin/card/images/{kind}/delete", post(remove))
}

/// The images the console manages (the API also takes an `icon`).
const KINDS: [&str; 2] = ["logo", "strip"];

const FORMATS: [&str; 5] = ["qr", "code128", "ean13", "pdf417", "aztec"];

#[derive(Template, WebTemplate)]
#[template(path = "admin/card.html")]
struct CardTpl {
    page: Page,
    form: Fields,
    error: Option<String>,
    can_edit: bool,
    formats: Vec<&'static str>,
    /// The saved design, for the preview.
    saved: Fields,
    /// (kind, the stored PNG as base64 when there is one, its upload error).
    images: Vec<(&'static str, Option<String>, String)>,
    tenant_name: String,
}

fn values_of(d: &Value) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    for k in ["organization_name", "description", "background_color", "foreground_color", "label_color", "barcode_format"] {
        v.insert(k.to_owned(), d[k].as_str().unwrap_or_default().to_owned());
    }
    for k in ["balance", "tier", "card_number", "name"] {
        v.insert(format!("labels.{k}"), d["labels"][k].as_str().unwrap_or_default().to_owned());
    }
    for k in ["show_name", "qr_rotation"] {
        if d[k].as_bool().unwrap_or(false) {
            v.insert(k.to_owned(), "on".to_owned());
        }
    }
    v
}

fn json_of(f: &Form) -> Map<String, Value> {
    let mut m = Map::new();
    let org = f.get("organization_name");
    m.insert("organization_name".into(), org.map(|o| json!(o)).unwrap_or(Value::Null));
    for k in ["description", "background_color", "foreground_color", "label_color", "barcode_format"] {
        m.insert(k.into(), json!(f.get(k).unwrap_or_default()));
    }
    let mut labels = Map::new();
    for k in ["balance", "tier", "card_number", "name"] {
        labels.insert(k.into(), json!(f.get(&format!("labels.{k}")).unwrap_or_default()));
    }
    m.insert("labels".into(), Value::Object(labels));
    for k in ["show_name", "qr_rotation"] {
        m.insert(k.into(), json!(f.checked(k)));
    }
    m
}

async fn render(
    st: &WebState,
    ctx: &Ctx,
    staff: &Staff,
    form: Option<Fields>,
    error: Option<String>,
    image_error: Option<(&str, String)>,
) -> WebResult<CardTpl> {
    let tenant = &staff.tenant.id;
    let d = cards::get_design(&st.app, tenant).await?;
    let saved = values_of(&d);
    let mut images = Vec::new();
    let mut c = st.app.db.pool().acquire().await.map_err(StoreError::from)?;
    for kind in KINDS {
        let png = kopilka_store::cards::image(&mut c, tenant, kind).await?;
        let err = image_error.as_ref().filter(|(k, _)| *k == kind).map(|(_, e)| e.clone()).unwrap_or_default();
        images.push((kind, png, err));
    }
    Ok(CardTpl {
        page: super::page(ctx, staff, "card", "admin.card.title"),
        form: form.unwrap_or_else(|| Fields::new(saved.clone(), BTreeMap::new())),
        error,
        can_edit: staff.can(Perm::OffersEdit),
        formats: FORMATS.to_vec(),
        saved: Fields::new(saved, BTreeMap::new()),
        images,
        tenant_name: staff.tenant.name.clone(),
    })
}

async fn show(State(st): State<WebState>, ctx: Ctx, staff: Staff) -> WebResult<CardTpl> {
    staff.require(Perm::OffersView)?;
    render(&st, &ctx, &staff, None, None, None).await
}

async fn save(State(st): State<WebState>, ctx: Ctx, staff: Staff, f: Form) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    let t = ctx.t;
    match cards::put_design(&st.app, &staff.tenant.id, &staff.actor(), json_of(&f)).await {
        Ok(_) => {
            let mut tpl = render(&st, &ctx, &staff, None, None, None).await?;
            tpl.page.notice = Some(t.m("admin.card.saved").to_owned());
            Ok(tpl.into_response())
        }
        Err(e) if e.status.is_client_error() => {
            let mut errors = BTreeMap::new();
            for (path, msg) in &e.fields {
                let msg = match msg.as_str() {
                    "must be a colour #rrggbb" => t.m("admin.card.colour_invalid").to_owned(),
                    "must be 1 to 64 characters" => t.m("admin.card.text_invalid").to_owned(),
                    m if m.starts_with("must be one of") => t.m("admin.programme.choose").to_owned(),
                    m => field_message(path, m, t, ""),
                };
                errors.insert(path.clone(), msg);
            }
            let general = if errors.is_empty() { e.message } else { t.m("admin.programme.fix_fields").to_owned() };
            let tpl = render(&st, &ctx, &staff, Some(Fields::new(f.0.clone(), errors)), Some(general), None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

fn kind_of(kind: &str) -> WebResult<&'static str> {
    KINDS.into_iter().find(|k| *k == kind).ok_or_else(crate::WebError::not_found)
}

/// Upload an image: the form carries the PNG as base64 (the page's script reads the
/// chosen file into the field, so the form posts with its CSRF token like any other).
async fn upload(State(st): State<WebState>, ctx: Ctx, staff: Staff, Path(kind): Path<String>, f: Form) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    let kind = kind_of(&kind)?;
    let t = ctx.t;
    let b64 = f.get("png_base64").unwrap_or_default();
    let problem = if b64.is_empty() {
        Some(t.m("admin.card.image_missing").to_owned())
    } else {
        match cards::put_image(&st.app, &staff.tenant.id, &staff.actor(), kind, b64).await {
            Ok(_) => None,
            Err(e) if e.status.is_client_error() => Some(t.m("admin.card.image_invalid").to_owned()),
            Err(e) => return Err(e.into()),
        }
    };
    match problem {
        None => Ok(Redirect::to("/admin/card").into_response()),
        Some(p) => {
            let tpl = render(&st, &ctx, &staff, None, None, Some((kind, p))).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, tpl).into_response())
        }
    }
}

async fn remove(State(st): State<WebState>, staff: Staff, Path(kind): Path<String>) -> WebResult<Response> {
    staff.require(Perm::OffersEdit)?;
    let kind = kind_of(&kind)?;
    match cards::delete_image(&st.app, &staff.tenant.id, kind).await {
        Ok(()) => {}
        // Already gone: nothing to do.
        Err(e) if e.status == StatusCode::NOT_FOUND => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Redirect::to("/admin/card").into_response())
}
