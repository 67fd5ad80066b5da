//! Migration from an existing programme: members from CSV with their card numbers,
//! contacts, consents and opening balances. Every row is validated; any rejected row
//! rejects the whole file (all-or-nothing), and the report names each bad row and why.
//!
//! Columns (header row required, any order, unknown columns rejected):
//! `card_number, external_id, phone, email, name, birthday, consent_personal_data,
//! consent_marketing, points, points_expires_at`. Every column is optional per row, but
//! a row needs at least one identifier (card_number, external_id, phone or email).

use super::Failure;
use super::ledger::{Book, Credit, EntryRef};
use super::members::NewMember;
use crate::error::{ApiError, ApiResult};
use kopilka_domain::identity::{is_valid_imported_card, normalize_email, normalize_phone};
use kopilka_store::members::{self, By};
use kopilka_store::{Db, now_s, tenants};
use serde::Serialize;
use std::collections::HashSet;

const COLUMNS: &[&str] = &[
    "card_number",
    "external_id",
    "phone",
    "email",
    "name",
    "birthday",
    "consent_personal_data",
    "consent_marketing",
    "points",
    "points_expires_at",
];

#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    /// 1-based data row number (the header is row 0).
    pub row: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub rows: usize,
    pub imported: usize,
    pub points_imported: i64,
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone)]
struct Row {
    member: NewMember,
    points: i64,
    expires_at: Option<i64>,
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "да" => Some(true),
        "0" | "false" | "no" | "n" | "нет" => Some(false),
        _ => None,
    }
}

fn parse_expiry(s: &str) -> Option<i64> {
    if let Some(t) = crate::input::parse_time(s) {
        return Some(t);
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc().timestamp())
}

fn parse_row(rec: &csv::StringRecord, header: &[String], now: i64) -> Result<Row, String> {
    if rec.iter().any(|f| f.contains('\0')) {
        return Err("a field holds a NUL character".into());
    }
    let get = |name: &str| header.iter().position(|h| h == name).and_then(|i| rec.get(i)).map(str::trim).filter(|s| !s.is_empty());
    let card = get("card_number").map(str::to_owned);
    if let Some(c) = &card
        && !is_valid_imported_card(c)
    {
        return Err(format!("card_number {c:?} must be 6 to 19 digits"));
    }
    let phone = get("phone").map(normalize_phone).transpose().map_err(|e| format!("phone: {e}"))?;
    let email = get("email").map(normalize_email).transpose().map_err(|e| format!("email: {e}"))?;
    let external_id = get("external_id").map(str::to_owned);
    if card.is_none() && phone.is_none() && email.is_none() && external_id.is_none() {
        return Err("needs at least one of card_number, external_id, phone, email".into());
    }
    let birthday = get("birthday").map(str::to_owned);
    if let Some(b) = &birthday
        && chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").is_err()
    {
        return Err(format!("birthday {b:?} must be YYYY-MM-DD"));
    }
    let mut consents = Vec::new();
    for (col, kind) in [("consent_personal_data", "personal_data"), ("consent_marketing", "marketing")] {
        if let Some(v) = get(col) {
            consents.push((kind.to_owned(), parse_bool(v).ok_or_else(|| format!("{col} must be true or false"))?));
        }
    }
    let points = match get("points") {
        None => 0,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=1_000_000_000_000).contains(n))
            .ok_or_else(|| format!("points {p:?} must be a whole number from 0 to 10^12"))?,
    };
    let expires_at = match get("points_expires_at") {
        None => None,
        Some(s) => {
            let t = parse_expiry(s).ok_or_else(|| format!("points_expires_at {s:?} must be YYYY-MM-DD or RFC 3339"))?;
            if t <= now {
                return Err(format!("points_expires_at {s} is already past"));
            }
            Some(t)
        }
    };
    let name = get("name").map(str::to_owned);
    Ok(Row {
        member: NewMember {
            external_id,
            email,
            phone,
            name,
            birthday,
            referral_code: None,
            consents,
            card_number: card,
            source: "import".into(),
        },
        points,
        expires_at,
    })
}

/// Import a CSV file. `progress` is told (done, total) as rows are validated and written.
pub async fn import_csv(
    db: &Db,
    tenant: &str,
    actor: &str,
    data: &[u8],
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> ApiResult<Report> {
    let now = now_s();
    let mut rdr = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::All).from_reader(data);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| ApiError::field("csv", format!("cannot read the header: {e}")))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    for h in &header {
        if !COLUMNS.contains(&h.as_str()) {
            return Err(ApiError::field("csv", format!("unknown column {h:?}; columns are {}", COLUMNS.join(", "))));
        }
    }
    let mut report = Report::default();
    let mut rows = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (i, rec) in rdr.records().enumerate() {
        let n = i + 1;
        report.rows += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                report.rejected.push(Rejected { row: n, reason: format!("not valid CSV: {e}") });
                continue;
            }
        };
        match parse_row(&rec, &header, now) {
            Ok(row) => {
                let m = &row.member;
                let keys = [
                    m.card_number.as_ref().map(|c| format!("card:{c}")),
                    m.phone.as_ref().map(|p| format!("phone:{p}")),
                    m.email.as_ref().map(|e| format!("email:{e}")),
                    m.external_id.as_ref().map(|e| format!("external:{e}")),
                ];
                if let Some(dup) = keys.iter().flatten().find(|k| seen.contains(*k)) {
                    report.rejected.push(Rejected { row: n, reason: format!("{dup} repeats an earlier row of this file") });
                    continue;
                }
                seen.extend(keys.into_iter().flatten());
                rows.push((n, row));
            }
            Err(reason) => report.rejected.push(Rejected { row: n, reason }),
        }
    }
    if report.rows == 0 {
        return Err(ApiError::field("csv", "the file has no data rows"));
    }
    // Clashes with members already in the programme.
    {
        let mut c = db.pool().acquire().await.map_err(kopilka_store::StoreError::from)?;
        for (n, row) in &rows {
            let m = &row.member;
            let checks = [
                (By::Card, &m.card_number, "card_number"),
                (By::Phone, &m.phone, "phone"),
                (By::Email, &m.email, "email"),
                (By::External, &m.external_id, "external_id"),
            ];
            for (by, v, what) in checks {
                if let Some(v) = v
                    && members::find(&mut c, tenant, by, v).await?.is_some()
                {
                    report.rejected.push(Rejected { row: *n, reason: format!("a member with this {what} already exists") });
                    break;
                }
            }
            if let Some(p) = progress {
                p(*n, report.rows * 2);
            }
        }
    }
    if !report.rejected.is_empty() {
        report.rejected.sort_by_key(|r| r.row);
        return Ok(report);
    }
    let (_, program) = {
        let mut c = db.pool().acquire().await.map_err(kopilka_store::StoreError::from)?;
        super::program::load(&mut c, tenant).await?
    };
    // A clash on a generated card number or token is retried with fresh ones.
    let result: ApiResult<(usize, i64)> = super::with_retry(|_| async {
        let mut tx = db.begin().await?;
        let mut points_total = 0;
        for (i, (_, row)) in rows.iter().enumerate() {
            let member = super::members::insert(&mut tx, tenant, &row.member, now).await?;
            if row.points > 0 {
                let mut book = Book::open(&mut tx, tenant, &member.id, &program, now).await?.expect("member just inserted");
                let expires = row.expires_at.or_else(|| book.expiry_for(now));
                book.credit(
                    &mut tx,
                    Credit {
                        source: "import",
                        ref_id: Some(&member.id),
                        points: row.points,
                        available_at: now,
                        expires_at: expires,
                        pays_debt: false,
                    },
                )
                .await?;
                book.entry(
                    &mut tx,
                    "adjust",
                    row.points,
                    now,
                    EntryRef { reason: Some("opening balance (import)".into()), ..Default::default() },
                )
                .await?;
                book.save(&mut tx).await?;
                points_total += row.points;
            }
            if let Some(p) = progress {
                p(report.rows + i + 1, report.rows * 2);
            }
        }
        tenants::audit(
            tx.conn(),
            tenant,
            &tenants::Audit {
                actor,
                action: "members.import",
                object_type: "tenant",
                object_id: tenant,
                details: &serde_json::json!({"rows": rows.len(), "points": points_total}),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok::<_, Failure>((rows.len(), points_total))
    })
    .await;
    let (n, p) = result?;
    report.imported = n;
    report.points_imported = p;
    Ok(report)
}
