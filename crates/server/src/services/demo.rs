//! `kopilka demo`: a demo tenant with a year of history, so a newcomer sees tiers,
//! expiring points and refunds at once.

use super::accounts;
use super::pos::{self, MemberRef, Mode, PosRequest};
use super::refund::{self, RefundRequest};
use crate::auth::{Auth, Role};
use crate::error::ApiResult;
use crate::state::AppState;
use kopilka_domain::quantity::Quantity;
use kopilka_domain::receipt::{LineInput, RedeemRequest};
use kopilka_store::{members, now_s, tenants};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub const SLUG: &str = "demo";

pub struct Demo {
    pub tenant_id: String,
    pub created: bool,
    pub admin_key: String,
    pub pos_key: String,
    pub members: usize,
    pub receipts: usize,
    pub refunds: usize,
}

const CATALOG: &[(&str, &str, &str, i64)] = &[
    ("MILK-1", "Milk 1 l", "dairy", 8900),
    ("BREAD", "Rye bread", "bakery", 6500),
    ("COFFEE", "Coffee beans 250 g", "coffee", 54900),
    ("CHEESE", "Cheese 200 g", "dairy", 32900),
    ("APPLES", "Apples", "fruit", 14900),
    ("WINE", "Red wine", "alcohol", 89900),
    ("CIG", "Cigarettes", "tobacco", 25000),
    ("TEA", "Green tea", "tea", 19900),
    ("CHOC", "Chocolate", "sweets", 12900),
];

/// Create the demo tenant unless it exists; always make a fresh admin and pos key.
pub async fn run(state: &AppState, members_n: usize, receipts_n: usize) -> ApiResult<Demo> {
    let existing = {
        let mut c = state.db.pool().acquire().await.map_err(kopilka_store::StoreError::from)?;
        tenants::tenant_by_slug(&mut c, SLUG).await?
    };
    let (tenant_id, created) = match existing {
        Some(t) => (t.id, false),
        None => (accounts::create_tenant(&state.db, "Demo Market", Some(SLUG), "retail").await?.tenant_id, true),
    };
    let admin =
        Auth { tenant_id: tenant_id.clone(), key_id: "demo".into(), role: Role::Admin, store_id: None, till_id: None, expires_at: None };
    let mut out = Demo {
        tenant_id: tenant_id.clone(),
        created,
        admin_key: String::new(),
        pos_key: String::new(),
        members: 0,
        receipts: 0,
        refunds: 0,
    };
    if created {
        populate(state, &admin, members_n, receipts_n, &mut out).await?;
    }
    let stores = {
        let mut c = state.db.pool().acquire().await.map_err(kopilka_store::StoreError::from)?;
        tenants::list_stores(&mut c, &tenant_id).await?
    };
    out.admin_key = accounts::create_key_direct(&state.db, &tenant_id, Role::Admin, None, None, "demo admin").await?.1;
    let store = stores.first().map(|s| s.id.as_str());
    out.pos_key = accounts::create_key_direct(&state.db, &tenant_id, Role::Pos, store, Some("T1"), "demo till").await?.1;
    Ok(out)
}

async fn populate(state: &AppState, admin: &Auth, members_n: usize, receipts_n: usize, out: &mut Demo) -> ApiResult<()> {
    let mut rng = StdRng::seed_from_u64(2026);
    // The offline window covers the year of history; points expire after 300 days, so
    // the oldest have expired and some are about to.
    let program = super::program::parse(
        serde_json::json!({
            "time_zone": "Europe/Moscow",
            "offline_max_age_days": 400,
            "expiry": {"policy": "rolling_days", "days": 300},
            "tiers": [
                {"code": "bronze", "name": "Bronze", "min_spend_minor": 0},
                {"code": "silver", "name": "Silver", "min_spend_minor": 500000, "earn_multiplier_bp": 12500},
                {"code": "gold", "name": "Gold", "min_spend_minor": 1500000, "earn_multiplier_bp": 15000, "discount_bp": 300}
            ]
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    )?;
    super::program::put(state, &admin.tenant_id, "demo", program).await?;
    let mut store_ids = Vec::new();
    for (code, name) in [("MSK-1", "Moscow, Tverskaya 1"), ("SPB-1", "Saint Petersburg, Nevsky 10")] {
        let s = accounts::create_store(
            state,
            &admin.tenant_id,
            "demo",
            accounts::NewStore { code: code.into(), name: name.into(), time_zone: Some("Europe/Moscow".into()), lat: None, lon: None },
        )
        .await?;
        store_ids.push(s.id);
    }
    // Campaigns, so that receipts show what applied and what nearly did.
    for spec in [
        serde_json::json!({"code": "coffee-x2", "name": "Double points on coffee for gold members",
            "conditions": [{"type": "tier", "in": ["gold"]}],
            "effects": [{"type": "points_multiplier", "multiplier_bp": 20000, "target": {"categories": ["coffee"]}}]}),
        serde_json::json!({"code": "tea-stamps", "name": "The 6th green tea is free",
            "effects": [{"type": "stamp_card", "every": 6, "target": {"skus": ["TEA"]}}]}),
        serde_json::json!({"code": "dairy-3", "name": "10 % off dairy when you buy 3",
            "conditions": [{"type": "min_quantity", "categories": ["dairy"], "min": 3}],
            "effects": [{"type": "discount_percent", "percent_bp": 1000, "target": {"categories": ["dairy"]}}]}),
        serde_json::json!({"code": "silver-cashback", "name": "5 % cashback for silver members",
            "conditions": [{"type": "tier", "in": ["silver"]}, {"type": "receipt_total", "min_minor": 100000}],
            "effects": [{"type": "cashback", "percent_bp": 500}], "budget": {"money_minor": 2000000}}),
    ] {
        let spec = super::campaigns::parse(spec.as_object().cloned().unwrap_or_default())?;
        super::campaigns::create(state, admin, spec).await?;
    }
    let mut member_ids = Vec::new();
    for i in 0..members_n {
        let m = super::members::NewMember {
            external_id: Some(format!("DEMO-{i:05}")),
            email: Some(format!("member{i}@demo.example")),
            phone: Some(format!("+7900{:07}", i)),
            name: Some(format!("Demo Member {i}")),
            birthday: None,
            referral_code: None,
            consents: vec![("personal_data".into(), true), ("marketing".into(), i % 3 == 0)],
            card_number: None,
            source: "demo".into(),
        };
        let v = super::members::create(state, admin, m).await?;
        member_ids.push(v.id);
    }
    out.members = member_ids.len();
    // A few heavy buyers reach gold, many stay bronze.
    let now = now_s();
    let year = 360 * 86_400;
    let mut times: Vec<i64> = (0..receipts_n).map(|_| now - rng.random_range(600..year)).collect();
    times.sort_unstable();
    for (n, t) in times.into_iter().enumerate() {
        let heavy = rng.random_range(0..10) == 0;
        let member = if rng.random_range(0..10) == 0 {
            None
        } else if heavy {
            Some(member_ids[rng.random_range(0..member_ids.len().clamp(1, 20))].clone())
        } else {
            Some(member_ids[rng.random_range(0..member_ids.len())].clone())
        };
        let lines: Vec<LineInput> = (0..rng.random_range(1..6))
            .map(|i| {
                let (sku, name, cat, price) = CATALOG[rng.random_range(0..CATALOG.len())];
                LineInput {
                    line_no: i + 1,
                    sku: Some(sku.into()),
                    name: Some(name.into()),
                    category: Some(cat.into()),
                    quantity: Quantity::Units(rng.random_range(1..4)),
                    unit_price_minor: Some(price * if heavy { 3 } else { 1 }),
                    total_minor: None,
                    discount: true,
                    earn: true,
                }
            })
            .collect();
        let redeem = if member.is_some() && rng.random_range(0..6) == 0 { RedeemRequest::Max } else { RedeemRequest::None };
        let store_id = store_ids[n % store_ids.len()].clone();
        let receipt_id = format!("D-{n:06}");
        let req = PosRequest {
            receipt_id: receipt_id.clone(),
            till_id: "T1".into(),
            store_id: store_id.clone(),
            member: member.map(MemberRef::Id),
            lines,
            redeem,
            wallet: RedeemRequest::None,
            coupons: vec![],
            occurred_at: Some(t),
            otp: None,
            hash: format!("demo-{n}"),
        };
        pos::run(state, admin, req, Mode::Checkout).await?;
        out.receipts += 1;
        if rng.random_range(0..30) == 0 {
            let r = RefundRequest {
                receipt_id,
                till_id: "T1".into(),
                original_store_id: store_id.clone(),
                store_id,
                refund_id: format!("DR-{n:06}"),
                items: None,
                occurred_at: Some((t + 86_400).min(now)),
                hash: format!("demo-refund-{n}"),
            };
            refund::refund(state, admin, r).await?;
            out.refunds += 1;
        }
    }
    // Record everyone's tier as of now.
    let ids = {
        let mut c = state.db.pool().acquire().await.map_err(kopilka_store::StoreError::from)?;
        members::all_ids(&mut c, &admin.tenant_id).await?
    };
    for id in ids {
        crate::jobs::tiers::check_member(state, &admin.tenant_id, &id).await.map_err(crate::error::ApiError::internal)?;
    }
    Ok(())
}
