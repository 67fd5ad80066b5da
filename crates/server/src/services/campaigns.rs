//! Campaigns and coupons as the admin API manages them, the tenant's compiled campaign
//! set (cached, reloaded when the tenant's campaign generation moves), member tags and
//! attributes, and the offers a member can see.

use super::{Failure, with_retry};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::input::Time;
use crate::input::{fmt_time, fmt_time_opt};
use crate::state::AppState;
use kopilka_domain::campaign::{Campaign, CampaignSet, CampaignSpec, parse_rfc3339};
use kopilka_store::campaigns::{self as store, CampaignRow, Coupon, Usage};
use kopilka_store::{Conn, StoreError, new_id, now_s, tenants};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The tenant's compiled campaigns, from the cache when the generation has not moved.
pub async fn current(state: &AppState, c: &mut Conn, tenant: &str) -> ApiResult<Arc<CampaignSet>> {
    let generation = store::generation(c, tenant).await?;
    if let Some((g, set)) = state.campaigns.lock().expect("campaigns").get(tenant)
        && *g == generation
    {
        return Ok(set.clone());
    }
    let mut compiled = Vec::new();
    for row in store::campaigns(c, tenant, false).await? {
        let spec: CampaignSpec = serde_json::from_str(&row.spec).map_err(ApiError::internal)?;
        match Campaign::compile(row.id.clone(), spec) {
            Ok(campaign) => compiled.push(Arc::new(campaign)),
            Err(e) => tracing::warn!(campaign = %row.id, errors = ?e, "stored campaign does not compile; skipped"),
        }
    }
    let set = Arc::new(CampaignSet::new(compiled));
    state.campaigns.lock().expect("campaigns").insert(tenant.to_owned(), (generation, set.clone()));
    Ok(set)
}

/// Parse a campaign body: unknown fields and wrong types are field errors; read-only
/// fields (id, usage, times) are ignored; then the domain validates and compiles it.
pub fn parse(mut body: Map<String, Value>) -> ApiResult<CampaignSpec> {
    for k in ["id", "usage", "created_at", "updated_at", "archived", "coupons"] {
        body.remove(k);
    }
    let spec: CampaignSpec = crate::input::typed(body)?;
    // Compile now, so that every error comes back before anything is written.
    let compiled = Campaign::compile(String::new(), spec).map_err(ApiError::fields)?;
    Ok(compiled.spec)
}

/// What a campaign has given so far, over all its receipts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageView {
    pub points: i64,
    pub money_minor: i64,
    pub uses: i64,
}

/// A campaign as the API shows it: its spec as written, with its id, state and usage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignView {
    pub id: String,
    #[serde(flatten)]
    pub spec: CampaignSpec,
    pub archived: bool,
    pub created_at: Time,
    pub updated_at: Time,
    pub usage: UsageView,
}

/// The campaigns of a tenant.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignList {
    pub campaigns: Vec<CampaignView>,
}

fn view(row: &CampaignRow, usage: Usage) -> ApiResult<CampaignView> {
    Ok(CampaignView {
        id: row.id.clone(),
        spec: serde_json::from_str(&row.spec).map_err(ApiError::internal)?,
        archived: row.archived,
        created_at: Time(row.created_at),
        updated_at: Time(row.updated_at),
        usage: UsageView { points: usage.points, money_minor: usage.money_minor, uses: usage.uses },
    })
}

fn code_taken() -> ApiError {
    ApiError::conflict("campaign_exists", "another campaign has this code")
}

pub async fn create(state: &AppState, auth: &Auth, spec: CampaignSpec) -> ApiResult<CampaignView> {
    let tenant = auth.tenant_id.as_str();
    let out = with_retry(|_| {
        let spec = spec.clone();
        async move {
            let mut tx = state.db.begin().await?;
            let now = now_s();
            let row = CampaignRow {
                id: new_id(),
                code: spec.code.clone(),
                spec: serde_json::to_string(&spec)?,
                archived: false,
                created_at: now,
                updated_at: now,
            };
            match store::insert_campaign(tx.conn(), tenant, &row).await {
                Err(StoreError::Unique(_)) => return Err(Failure::Api(code_taken())),
                r => r?,
            }
            store::bump_generation(tx.conn(), tenant).await?;
            tenants::audit(
                tx.conn(),
                tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "campaign.create",
                    object_type: "campaign",
                    object_id: &row.id,
                    details: &json!({"code": row.code}),
                    at: now,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(view(&row, Usage::default())?)
        }
    })
    .await?;
    Ok(out)
}

pub async fn update(state: &AppState, auth: &Auth, id: &str, spec: CampaignSpec) -> ApiResult<CampaignView> {
    let tenant = auth.tenant_id.as_str();
    with_retry(|_| {
        let spec = spec.clone();
        async move {
            let mut tx = state.db.begin().await?;
            let mut row = store::campaign(tx.conn(), tenant, id).await?.ok_or_else(|| Failure::Api(ApiError::not_found("campaign")))?;
            let now = now_s();
            row.code = spec.code.clone();
            row.spec = serde_json::to_string(&spec)?;
            row.updated_at = now;
            match store::update_campaign(tx.conn(), tenant, &row).await {
                Err(StoreError::Unique(_)) => return Err(Failure::Api(code_taken())),
                r => r?,
            }
            store::bump_generation(tx.conn(), tenant).await?;
            tenants::audit(
                tx.conn(),
                tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "campaign.update",
                    object_type: "campaign",
                    object_id: id,
                    details: &json!({"code": row.code}),
                    at: now,
                },
            )
            .await?;
            let usage = store::totals_from_receipts(tx.conn(), tenant, id).await?;
            tx.commit().await?;
            Ok(view(&row, usage)?)
        }
    })
    .await
}

/// Archive: the campaign stops applying; its history stays.
pub async fn archive(state: &AppState, auth: &Auth, id: &str) -> ApiResult<CampaignView> {
    let tenant = auth.tenant_id.as_str();
    with_retry(|_| async move {
        let mut tx = state.db.begin().await?;
        let mut row = store::campaign(tx.conn(), tenant, id).await?.ok_or_else(|| Failure::Api(ApiError::not_found("campaign")))?;
        let now = now_s();
        if !row.archived {
            row.archived = true;
            row.updated_at = now;
            store::update_campaign(tx.conn(), tenant, &row).await?;
            store::bump_generation(tx.conn(), tenant).await?;
            tenants::audit(
                tx.conn(),
                tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "campaign.archive",
                    object_type: "campaign",
                    object_id: id,
                    details: &json!({}),
                    at: now,
                },
            )
            .await?;
        }
        let usage = store::totals_from_receipts(tx.conn(), tenant, id).await?;
        tx.commit().await?;
        Ok(view(&row, usage)?)
    })
    .await
}

pub async fn get(state: &AppState, auth: &Auth, id: &str) -> ApiResult<CampaignView> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let row = store::campaign(&mut c, &auth.tenant_id, id).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    let usage = store::totals_from_receipts(&mut c, &auth.tenant_id, id).await?;
    view(&row, usage)
}

pub async fn list(state: &AppState, auth: &Auth, archived: bool) -> ApiResult<CampaignList> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let mut out = Vec::new();
    for row in store::campaigns(&mut c, &auth.tenant_id, archived).await? {
        let usage = store::totals_from_receipts(&mut c, &auth.tenant_id, &row.id).await?;
        out.push(view(&row, usage)?);
    }
    Ok(CampaignList { campaigns: out })
}

// ---------------------------------------------------------------- coupons

/// Alphabet for generated codes: no 0/O, 1/I/L, so codes read aloud and typed survive.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A random code: `len` characters, 31 symbols each (12 characters ≈ 59 bits).
pub fn generate_code(prefix: &str, len: usize) -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    let body: String = (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("{prefix}{body}")
}

/// Codes compare without case and surrounding spaces.
pub fn normalize_code(s: &str) -> String {
    s.trim().to_uppercase()
}

/// A code a person may choose: 3 to 64 letters, digits, '-' or '_'.
pub fn code_ok(s: &str) -> bool {
    (3..=64).contains(&s.chars().count()) && s.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

pub struct CouponBatch {
    /// One named code (shared or personal), or `generate` random ones.
    pub code: Option<String>,
    pub generate: Option<i64>,
    pub prefix: String,
    pub length: usize,
    pub member_ids: Vec<String>,
    pub max_uses: Option<i64>,
    pub per_member_limit: Option<i64>,
    pub starts_at: Option<i64>,
    pub expires_at: Option<i64>,
}

pub fn coupon_json(k: &Coupon) -> Value {
    json!({
        "id": k.id, "campaign_id": k.campaign_id, "code": k.code, "member_id": k.member_id,
        "max_uses": k.max_uses, "per_member_limit": k.per_member_limit, "uses": k.uses,
        "starts_at": fmt_time_opt(k.starts_at), "expires_at": fmt_time_opt(k.expires_at),
        "status": k.status, "batch": k.batch, "created_at": fmt_time(k.created_at),
    })
}

/// The campaign, which must exist (404) and take coupons (422 `campaign_without_coupons`).
async fn taking_coupons(tx: &mut kopilka_store::Tx, tenant: &str, campaign: &str) -> Result<CampaignSpec, Failure> {
    let row = store::campaign(tx.conn(), tenant, campaign).await?.ok_or_else(|| Failure::Api(ApiError::not_found("campaign")))?;
    let spec: CampaignSpec = serde_json::from_str(&row.spec)?;
    if !spec.requires_coupon {
        return Err(ApiError::rule("campaign_without_coupons", "this campaign does not take coupons (requires_coupon is false)").into());
    }
    Ok(spec)
}

/// Create coupons for a campaign, all or nothing. Generated codes that collide with an
/// existing code are drawn again.
pub async fn create_coupons(state: &AppState, auth: &Auth, campaign: &str, b: CouponBatch) -> ApiResult<Value> {
    let tenant = auth.tenant_id.as_str();
    with_retry(|attempt| {
        let b = &b;
        async move {
            let mut tx = state.db.begin().await?;
            taking_coupons(&mut tx, tenant, campaign).await?;
            for m in &b.member_ids {
                if kopilka_store::members::by_id(tx.conn(), tenant, m).await?.is_none() {
                    return Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, "member_not_found", format!("no member {m}")).into());
                }
            }
            let now = now_s();
            let batch = new_id();
            let n = b.generate.unwrap_or(1) as usize;
            // A longer code after a collision makes a second one vanishingly unlikely.
            let len = b.length + attempt as usize;
            let coupons: Vec<Coupon> = (0..n)
                .map(|i| Coupon {
                    id: new_id(),
                    campaign_id: campaign.to_owned(),
                    code: match &b.code {
                        Some(c) => c.clone(),
                        None => generate_code(&b.prefix, len),
                    },
                    member_id: b.member_ids.get(i).cloned(),
                    max_uses: b.max_uses,
                    per_member_limit: b.per_member_limit,
                    uses: 0,
                    starts_at: b.starts_at,
                    expires_at: b.expires_at,
                    status: "active".into(),
                    batch: Some(batch.clone()),
                    created_at: now,
                })
                .collect();
            match store::insert_coupons(tx.conn(), tenant, &coupons).await {
                Err(StoreError::Unique(_)) if b.code.is_some() => {
                    return Err(ApiError::conflict("coupon_exists", "a coupon with this code already exists").into());
                }
                r => r?,
            }
            tenants::audit(
                tx.conn(),
                tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "coupons.create",
                    object_type: "campaign",
                    object_id: campaign,
                    details: &json!({"count": n, "batch": batch}),
                    at: now,
                },
            )
            .await?;
            tx.commit().await?;
            let listed: Vec<Value> = coupons.iter().take(1000).map(coupon_json).collect();
            Ok(json!({"campaign_id": campaign, "batch": batch, "created": n, "coupons": listed}))
        }
    })
    .await
}

/// One row of an imported CSV.
pub struct ImportedCoupon {
    pub code: String,
    pub member_id: Option<String>,
    pub max_uses: Option<i64>,
    pub per_member_limit: Option<i64>,
    pub uses: i64,
    pub starts_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub status: String,
}

/// The columns of a coupon CSV: those the export writes.
const CSV_COLUMNS: &[&str] = &["code", "member_id", "max_uses", "per_member_limit", "uses", "starts_at", "expires_at", "status"];

/// Parse a coupon CSV: a header naming `code` and optionally `member_id`, `max_uses`,
/// `per_member_limit`, `uses`, `starts_at`, `expires_at`, `status` (the export's columns,
/// so that an export imports back as it was). Without a `max_uses` column a coupon is
/// single-use; with one, an empty cell is unlimited. Every bad row is reported; nothing is
/// written then.
pub fn parse_coupon_csv(body: &[u8]) -> ApiResult<Vec<ImportedCoupon>> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(body);
    let headers = rdr.headers().map_err(|e| ApiError::field("csv", e.to_string()))?.clone();
    let idx = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    for (i, h) in headers.iter().enumerate() {
        if !CSV_COLUMNS.iter().any(|k| h.eq_ignore_ascii_case(k)) {
            return Err(ApiError::field("csv", format!("unknown column {h}")));
        }
        if headers.iter().take(i).any(|o| o.eq_ignore_ascii_case(h)) {
            return Err(ApiError::field("csv", format!("column {h} appears twice")));
        }
    }
    let single_use = idx("max_uses").is_none();
    let Some(code_i) = idx("code") else {
        return Err(ApiError::field("csv", "a header with a code column is required"));
    };
    let mut out = Vec::new();
    let mut errors = std::collections::BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for (n, rec) in rdr.records().enumerate() {
        let line = n + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.insert(format!("line {line}"), e.to_string());
                continue;
            }
        };
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).filter(|s| !s.is_empty()).map(str::to_owned);
        let code = normalize_code(rec.get(code_i).unwrap_or(""));
        if !code_ok(&code) {
            errors.insert(format!("line {line}"), "code must be 3 to 64 letters, digits, '-' or '_'".into());
            continue;
        }
        if !seen.insert(code.clone()) {
            errors.insert(format!("line {line}"), format!("code {code} appears twice"));
            continue;
        }
        let int = |s: Option<String>| -> Result<Option<i64>, String> {
            s.map(|s| s.parse::<i64>().ok().filter(|v| (1..=1_000_000_000_000).contains(v)).ok_or(format!("{s} is not a positive integer")))
                .transpose()
        };
        let (max_uses, per_member_limit) = match (int(get(idx("max_uses"))), int(get(idx("per_member_limit")))) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                errors.insert(format!("line {line}"), e);
                continue;
            }
        };
        let time = |col: &str| -> Result<Option<i64>, String> {
            get(idx(col)).map(|s| crate::input::parse_time(&s).ok_or(format!("{col} {s} is not an RFC 3339 time"))).transpose()
        };
        let (starts_at, expires_at) = match (time("starts_at"), time("expires_at")) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                errors.insert(format!("line {line}"), e);
                continue;
            }
        };
        if let (Some(a), Some(b)) = (starts_at, expires_at)
            && a >= b
        {
            errors.insert(format!("line {line}"), "expires_at must be after starts_at".into());
            continue;
        }
        let uses = match get(idx("uses")).map(|s| s.parse::<i64>().ok().filter(|v| (0..=1_000_000_000_000).contains(v)).ok_or(s)) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(s)) => {
                errors.insert(format!("line {line}"), format!("uses {s} is not a non-negative integer"));
                continue;
            }
        };
        let status = match get(idx("status")).map(|s| s.to_lowercase()) {
            None => "active".to_owned(),
            Some(s) if s == "active" || s == "disabled" => s,
            Some(s) => {
                errors.insert(format!("line {line}"), format!("status {s} is not active or disabled"));
                continue;
            }
        };
        let max_uses = if single_use { Some(1) } else { max_uses };
        out.push(ImportedCoupon {
            code,
            member_id: get(idx("member_id")),
            max_uses,
            per_member_limit,
            uses,
            starts_at,
            expires_at,
            status,
        });
        if out.len() > 100_000 {
            return Err(ApiError::field("csv", "at most 100000 coupons per import"));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    if out.is_empty() {
        return Err(ApiError::field("csv", "no coupons in the file"));
    }
    Ok(out)
}

pub async fn import_coupons(state: &AppState, auth: &Auth, campaign: &str, rows: Vec<ImportedCoupon>) -> ApiResult<Value> {
    let tenant = auth.tenant_id.as_str();
    with_retry(|_| {
        let rows = &rows;
        async move {
            let mut tx = state.db.begin().await?;
            taking_coupons(&mut tx, tenant, campaign).await?;
            let now = now_s();
            let batch = new_id();
            let mut coupons = Vec::with_capacity(rows.len());
            for r in rows {
                if let Some(m) = &r.member_id
                    && kopilka_store::members::by_id(tx.conn(), tenant, m).await?.is_none()
                {
                    return Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, "member_not_found", format!("no member {m}")).into());
                }
                if store::coupon_by_code(tx.conn(), tenant, &r.code, "").await?.is_some() {
                    return Err(ApiError::conflict("coupon_exists", format!("coupon {} already exists", r.code)).into());
                }
                coupons.push(Coupon {
                    id: new_id(),
                    campaign_id: campaign.to_owned(),
                    code: r.code.clone(),
                    member_id: r.member_id.clone(),
                    max_uses: r.max_uses,
                    per_member_limit: r.per_member_limit,
                    uses: r.uses,
                    starts_at: r.starts_at,
                    expires_at: r.expires_at,
                    status: r.status.clone(),
                    batch: Some(batch.clone()),
                    created_at: now,
                });
            }
            store::insert_coupons(tx.conn(), tenant, &coupons).await?;
            tenants::audit(
                tx.conn(),
                tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "coupons.import",
                    object_type: "campaign",
                    object_id: campaign,
                    details: &json!({"count": coupons.len(), "batch": batch}),
                    at: now,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(json!({"campaign_id": campaign, "batch": batch, "created": coupons.len()}))
        }
    })
    .await
}

/// Every coupon of a campaign as CSV.
pub async fn export_coupons(state: &AppState, auth: &Auth, campaign: &str) -> ApiResult<String> {
    let tenant = auth.tenant_id.as_str();
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    store::campaign(&mut c, tenant, campaign).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| ApiError::internal(e);
    w.write_record(["code", "member_id", "max_uses", "per_member_limit", "uses", "starts_at", "expires_at", "status"]).map_err(csv_err)?;
    let mut after = String::new();
    loop {
        let page = store::coupons_of(&mut c, tenant, campaign, &after, 1000).await?;
        for k in &page {
            let t = |t: Option<i64>| t.map(fmt_time).unwrap_or_default();
            let n = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
            w.write_record([
                k.code.clone(),
                k.member_id.clone().unwrap_or_default(),
                n(k.max_uses),
                n(k.per_member_limit),
                k.uses.to_string(),
                t(k.starts_at),
                t(k.expires_at),
                k.status.clone(),
            ])
            .map_err(csv_err)?;
        }
        match page.last() {
            Some(k) if page.len() == 1000 => after = k.code.clone(),
            _ => break,
        }
    }
    String::from_utf8(w.into_inner().map_err(ApiError::internal)?).map_err(ApiError::internal)
}

pub async fn list_coupons(state: &AppState, auth: &Auth, campaign: &str, after: &str, limit: i64) -> ApiResult<Value> {
    let tenant = auth.tenant_id.as_str();
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    store::campaign(&mut c, tenant, campaign).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    let page = store::coupons_of(&mut c, tenant, campaign, after, limit).await?;
    let next = if page.len() as i64 == limit { page.last().map(|k| k.code.clone()) } else { None };
    Ok(json!({"coupons": page.iter().map(coupon_json).collect::<Vec<_>>(), "next_cursor": next}))
}

pub async fn disable_coupon(state: &AppState, auth: &Auth, id: &str) -> ApiResult<Value> {
    let tenant = auth.tenant_id.as_str();
    with_retry(|_| async move {
        let mut tx = state.db.begin().await?;
        let mut k = store::coupon_by_id(tx.conn(), tenant, id, "").await?.ok_or_else(|| Failure::Api(ApiError::not_found("coupon")))?;
        let now = now_s();
        if k.status != "disabled" {
            store::set_coupon_status(tx.conn(), tenant, id, "disabled").await?;
            tenants::audit(
                tx.conn(),
                tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "coupon.disable",
                    object_type: "coupon",
                    object_id: id,
                    details: &json!({}),
                    at: now,
                },
            )
            .await?;
            k.status = "disabled".into();
        }
        tx.commit().await?;
        Ok(coupon_json(&k))
    })
    .await
}

/// Brute-force guard: unknown codes a key may try per minute.
pub const UNKNOWN_CODES_PER_MINUTE: u32 = 20;

/// Count one unknown code for this key; 429 once the minute's allowance is spent.
pub fn note_unknown_code(state: &AppState, auth: &Auth) -> ApiResult<()> {
    if state.limiter.allow(&format!("coupon-miss:{}", auth.key_id), UNKNOWN_CODES_PER_MINUTE, 60, now_s()) {
        Ok(())
    } else {
        Err(ApiError::rate_limited())
    }
}

/// Whether a coupon code is known to the key's limiter as spent (checked before lookups,
/// so that a blocked key learns nothing more).
pub fn unknown_codes_exhausted(state: &AppState, auth: &Auth) -> bool {
    state.limiter.peek(&format!("coupon-miss:{}", auth.key_id), UNKNOWN_CODES_PER_MINUTE, 60, now_s())
}

// ---------------------------------------------------------------- member tags, attributes

pub async fn set_segments(
    state: &AppState,
    auth: &Auth,
    member: &str,
    tags: Option<Vec<String>>,
    attributes: Option<Map<String, Value>>,
) -> ApiResult<Value> {
    let tenant = auth.tenant_id.as_str();
    with_retry(|_| {
        let (tags, attributes) = (tags.clone(), attributes.clone());
        async move {
            let mut tx = state.db.begin().await?;
            kopilka_store::members::by_id(tx.conn(), tenant, member)
                .await?
                .ok_or_else(|| Failure::Api(super::members::member_not_found()))?;
            if let Some(tags) = &tags {
                store::set_tags(tx.conn(), tenant, member, tags).await?;
            }
            if let Some(a) = &attributes {
                store::set_attributes(tx.conn(), tenant, member, &Value::Object(a.clone()).to_string()).await?;
            }
            let now = now_s();
            tenants::audit(
                tx.conn(),
                tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "member.segments",
                    object_type: "member",
                    object_id: member,
                    details: &json!({"tags": tags.as_ref().map(Vec::len)}),
                    at: now,
                },
            )
            .await?;
            let out = segments_json(tx.conn(), tenant, member).await?;
            tx.commit().await?;
            Ok(out)
        }
    })
    .await
}

async fn segments_json(c: &mut Conn, tenant: &str, member: &str) -> Result<Value, Failure> {
    let tags = store::tags(c, tenant, member).await?;
    let attributes: Value = match store::attributes(c, tenant, member).await? {
        Some(s) => serde_json::from_str(&s)?,
        None => json!({}),
    };
    Ok(json!({"member_id": member, "tags": tags, "attributes": attributes}))
}

pub async fn get_segments(state: &AppState, auth: &Auth, member: &str) -> ApiResult<Value> {
    let tenant = auth.tenant_id.as_str();
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    kopilka_store::members::by_id(&mut c, tenant, member).await?.ok_or_else(super::members::member_not_found)?;
    segments_json(&mut c, tenant, member).await.map_err(|e| match e {
        Failure::Api(a) => a,
        Failure::Store(s) => s.into(),
    })
}

// ---------------------------------------------------------------- a member's offers

/// What a member can see: personal offers aimed at them (by id or segment tag), their own
/// coupons, and their stamp cards' progress.
pub async fn member_offers(state: &AppState, auth: &Auth, member: &str) -> ApiResult<Value> {
    let tenant = auth.tenant_id.as_str();
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    kopilka_store::members::by_id(&mut c, tenant, member).await?.ok_or_else(super::members::member_not_found)?;
    let set = current(state, &mut c, tenant).await?;
    let tags = store::tags(&mut c, tenant, member).await?;
    let now = now_s();
    let active = |k: &Campaign| k.ends_at.is_none_or(|t| t > now) && k.spec.status == kopilka_domain::campaign::Status::Active;
    let aimed = |k: &Campaign| {
        let a = &k.spec.audience;
        a.member_ids.iter().any(|m| m == member) || tags.iter().any(|t| a.segment_tags.contains(t))
    };
    let mut offers = Vec::new();
    for k in &set.campaigns {
        if !k.spec.audience.is_everyone() && active(k) && aimed(k) {
            offers.push(offer_json(k));
        }
    }
    let mut coupons = Vec::new();
    for k in store::coupons_of_member(&mut c, tenant, member).await? {
        let used_up = k.max_uses.is_some_and(|m| k.uses >= m);
        // A coupon of an archived, paused or ended campaign cannot be used: not an offer.
        let Some(camp) = set.by_id(&k.campaign_id).filter(|camp| active(camp)) else { continue };
        if k.status == "active" && !used_up && k.expires_at.is_none_or(|t| t > now) {
            let mut v = coupon_json(&k);
            v["campaign"] = offer_json(camp);
            coupons.push(v);
        }
    }
    let progress = store::stamps_of(&mut c, tenant, member).await?;
    let mut stamp_cards = Vec::new();
    for k in &set.campaigns {
        // Stamp cards aimed at other members are theirs alone.
        if let Some((every, target)) = k.stamp_every()
            && k.is_live(now)
            && (k.spec.audience.is_everyone() || aimed(k))
        {
            let have = progress.iter().find(|(id, _)| *id == k.id).map(|(_, s)| *s).unwrap_or(0);
            stamp_cards.push(json!({"campaign_id": k.id, "code": k.spec.code, "name": k.spec.name, "every": every, "stamps": have,
                                    "to_free": (every - have).max(1), "target": target}));
        }
    }
    Ok(json!({"member_id": member, "offers": offers, "coupons": coupons, "stamp_cards": stamp_cards}))
}

fn offer_json(k: &Campaign) -> Value {
    json!({"campaign_id": k.id, "code": k.spec.code, "name": k.spec.name, "description": k.spec.description,
           "starts_at": k.starts_at.map(fmt_time), "ends_at": k.ends_at.map(fmt_time), "effects": k.spec.effects,
           "requires_coupon": k.spec.requires_coupon})
}

/// Parse an optional RFC 3339 field for coupon bodies.
pub fn time_field(v: Option<&Value>) -> Result<Option<i64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_rfc3339(s).map(Some).ok_or_else(|| "must be an RFC 3339 time".into()),
        Some(_) => Err("must be an RFC 3339 time".into()),
    }
}

// ---------------------------------------------------------------- wallet, products

/// The member's cashback wallet and its newest entries.
pub async fn wallet(state: &AppState, auth: &Auth, member: &str, limit: i64) -> ApiResult<Value> {
    let tenant = auth.tenant_id.as_str();
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    kopilka_store::members::by_id(&mut c, tenant, member).await?.ok_or_else(super::members::member_not_found)?;
    let w = store::wallet(&mut c, tenant, member).await?;
    let entries: Vec<Value> = store::wallet_entries(&mut c, tenant, member, i64::MAX, limit)
        .await?
        .iter()
        .map(|e| {
            json!({"id": e.id, "kind": e.kind, "amount_minor": e.amount_minor, "receipt_id": e.receipt_id, "reason": e.reason,
                   "occurred_at": fmt_time(e.occurred_at), "created_at": fmt_time(e.created_at)})
        })
        .collect();
    let mut v = super::offers::wallet_json(&w);
    v["member_id"] = Value::String(member.to_owned());
    v["entries"] = Value::Array(entries);
    Ok(v)
}

/// Upsert catalogue products: `[{"sku", "name"?, "category"?}]`.
pub async fn put_products(state: &AppState, auth: &Auth, products: Vec<(String, Option<String>, Option<String>)>) -> ApiResult<Value> {
    let tenant = auth.tenant_id.as_str();
    with_retry(|_| {
        let products = &products;
        async move {
            let mut tx = state.db.begin().await?;
            let now = now_s();
            for (sku, name, category) in products {
                store::put_product(tx.conn(), tenant, sku, name.as_deref(), category.as_deref(), now).await?;
            }
            tenants::audit(
                tx.conn(),
                tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "products.put",
                    object_type: "products",
                    object_id: "",
                    details: &json!({"count": products.len()}),
                    at: now,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(json!({"updated": products.len()}))
        }
    })
    .await
}

pub async fn list_products(state: &AppState, auth: &Auth, after: &str, limit: i64) -> ApiResult<Value> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let page = store::products(&mut c, &auth.tenant_id, after, limit).await?;
    let next = if page.len() as i64 == limit { page.last().map(|p| p.0.clone()) } else { None };
    let items: Vec<Value> = page.iter().map(|(s, n, c)| json!({"sku": s, "name": n, "category": c})).collect();
    Ok(json!({"products": items, "next_cursor": next}))
}
