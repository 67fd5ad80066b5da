//! Action events (FEATURES D2): a review, a survey, a newsletter subscription, a social
//! share, a signup, a birthday, a store visit, or a custom type with a JSON schema. Event
//! campaigns award bonus points for them, idempotently on the event id.

use super::ledger::{Book, Credit, EntryRef, balance_json};
use super::members::member_not_found;
use super::{Failure, with_retry};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::input::fmt_time;
use crate::state::AppState;
use kopilka_domain::campaign::{self as engine, Ctx, MemberFacts, Place, Reason};
use kopilka_store::campaigns::{self as store, ReceiptCampaign, Usage};
use kopilka_store::{StoreError, now_s, tenants};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Event types every tenant has.
pub const BUILTIN: &[&str] = &["review", "survey", "newsletter_subscribed", "social_share", "signup", "birthday", "store_visit"];

pub struct EventRequest {
    pub event_id: String,
    pub kind: String,
    pub data: Value,
    pub occurred_at: Option<i64>,
    pub hash: String,
}

/// Record an action event and award what its campaigns give. Answers (created, body):
/// a repeat of the same event answers the first answer with created = false.
pub async fn post(state: &AppState, auth: &Auth, member: &str, ev: EventRequest) -> ApiResult<(bool, Value)> {
    let tenant = auth.tenant_id.as_str();
    with_retry(|_| {
        let ev = &ev;
        async move {
            let mut tx = state.db.begin().await?;
            if let Some((m, hash, answer)) = store::action_event(tx.conn(), tenant, &ev.event_id).await? {
                if m != member || hash != ev.hash {
                    return Err(ApiError::conflict("event_conflict", "this event id was already used with a different body").into());
                }
                tx.rollback().await?;
                return Ok((false, serde_json::from_str(&answer)?));
            }
            let m = kopilka_store::members::by_id(tx.conn(), tenant, member).await?.ok_or_else(|| Failure::Api(member_not_found()))?;
            if !BUILTIN.contains(&ev.kind.as_str()) {
                let Some(schema) = store::event_type(tx.conn(), tenant, &ev.kind).await? else {
                    return Err(ApiError::rule(
                        "unknown_event_type",
                        format!("no event type {}; register it at /api/v1/event-types/{{type}}", ev.kind),
                    )
                    .into());
                };
                let schema: Value = serde_json::from_str(&schema)?;
                let mut errors = BTreeMap::new();
                kopilka_domain::schema::validate(&schema, &ev.data, "data", &mut errors);
                if !errors.is_empty() {
                    return Err(ApiError::fields(errors).into());
                }
            }
            let (_, program) = super::program::current(state, tx.conn(), tenant).await?;
            let now = now_s();
            let at = ev.occurred_at.unwrap_or(now);
            if at < now - program.offline_max_age_days * 86_400 || at > now + 300 {
                return Err(ApiError::rule(
                    "occurred_at_out_of_range",
                    format!("occurred_at must lie within the last {} days and at most 5 minutes ahead", program.offline_max_age_days),
                )
                .into());
            }
            let mut book = Book::open(&mut tx, tenant, member, &program, now).await?.ok_or_else(|| Failure::Api(member_not_found()))?;
            let (_, tier) = super::members::tier_now(tx.conn(), tenant, member, &program, at).await?;
            let set = super::campaigns::current(state, tx.conn(), tenant).await?;
            let facts = MemberFacts {
                id: m.id.clone(),
                tags: store::tags(tx.conn(), tenant, member).await?,
                attributes: match store::attributes(tx.conn(), tenant, member).await? {
                    Some(s) => serde_json::from_str(&s).unwrap_or_default(),
                    None => serde_json::Map::new(),
                },
                enrolled_at: m.created_at,
                birthday: m.birthday.as_deref().and_then(|b| chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").ok()),
                purchases: store::purchases(tx.conn(), tenant, member, None).await?,
                stamps: Default::default(),
            };
            let candidates = set.for_event(&ev.kind, at);
            let mut usage = std::collections::HashMap::new();
            let mut limited: Vec<&str> =
                candidates.iter().map(|&i| &set.campaigns[i]).filter(|k| k.spec.budget.is_limited()).map(|k| k.id.as_str()).collect();
            limited.sort();
            for id in limited {
                store::ensure_usage(tx.conn(), tenant, id, Some(member)).await?;
                let lock = tx.for_update();
                usage.insert(id.to_owned(), store::usage(tx.conn(), tenant, id, Some(member), lock).await?);
            }

            // Decide (no awaits while the context lives).
            let (applied, not_applied, awards) = {
                let local = chrono::DateTime::from_timestamp(at, 0).unwrap_or_default().with_timezone(&program.tz()).naive_local();
                let mut ctx = Ctx::new(&program, &[], Some(&facts), tier.as_deref(), Place { store_id: "", store_code: "", local, at });
                ctx.event = Some((ev.kind.as_str(), &ev.data));
                let (mut applied, mut misses, mut awards) = (Vec::new(), Vec::new(), Vec::new());
                let mut exclusive: Option<String> = None;
                for &i in &candidates {
                    let k = &set.campaigns[i];
                    let points: i64 =
                        k.spec.effects.iter().map(|f| if let engine::Effect::BonusPoints { points, .. } = f { *points } else { 0 }).sum();
                    let miss = match k.check(&ctx) {
                        Err(m) if m.distance.is_infinite() => continue,
                        Err(m) => Some(m),
                        Ok(()) => {
                            let b = &k.spec.budget;
                            let over = |u: &Usage, p: Option<i64>, uses: Option<i64>| {
                                p.is_some_and(|l| u.points + points > l) || uses.is_some_and(|l| u.uses + 1 > l)
                            };
                            let reason = match usage.get(&k.id) {
                                Some((t, _)) if over(t, b.points, b.uses) => Some(Reason::BudgetSpent),
                                Some((_, mine)) if over(mine, b.per_member_points, b.per_member_uses) => Some(Reason::MemberLimitReached),
                                _ => match &exclusive {
                                    Some(name) => Some(Reason::NotCombinable { with: name.clone() }),
                                    None if k.spec.exclusive && !awards.is_empty() => {
                                        Some(Reason::NotCombinable { with: applied_name(&applied) })
                                    }
                                    None => None,
                                },
                            };
                            reason.map(engine::Miss::one)
                        }
                    };
                    match miss {
                        Some(m) => misses.push((i, m)),
                        None => {
                            if k.spec.exclusive {
                                exclusive = Some(k.spec.name.clone());
                            }
                            applied.push(json!({"campaign_id": k.id, "code": k.spec.code, "name": k.spec.name, "points": points}));
                            awards.push((k.id.clone(), k.spec.code.clone(), points, k.spec.budget.is_limited()));
                        }
                    }
                }
                misses.sort_by(|a, b| a.1.distance.total_cmp(&b.1.distance).then(a.0.cmp(&b.0)));
                let not_applied: Vec<Value> = misses
                    .iter()
                    .filter(|(_, m)| !m.reasons.is_empty())
                    .take(engine::MAX_MISSES)
                    .map(|(i, m)| {
                        let k = &set.campaigns[*i];
                        json!({"campaign_id": k.id, "code": k.spec.code, "name": k.spec.name, "reason_code": m.reasons[0].code(),
                               "reason": m.text(program.language, &program.currency)})
                    })
                    .collect();
                (applied, not_applied, awards)
            };

            let pk = format!("event:{}", ev.event_id);
            let mut total = 0;
            for (campaign, code, points, limited) in &awards {
                let expires = book.expiry_for(now);
                book.credit(
                    &mut tx,
                    Credit {
                        source: "bonus",
                        ref_id: Some(&pk),
                        points: *points,
                        available_at: now,
                        expires_at: expires,
                        pays_debt: false,
                    },
                )
                .await?;
                let reason = format!("campaign {code}: {}", ev.kind);
                book.entry(
                    &mut tx,
                    "bonus",
                    *points,
                    at.min(now),
                    EntryRef { reason: Some(reason), ref_id: Some(pk.clone()), receipt_id: None },
                )
                .await?;
                book.balance.lifetime_earned += points;
                total += points;
                store::insert_receipt_campaign(
                    tx.conn(),
                    tenant,
                    &ReceiptCampaign {
                        receipt_pk: pk.clone(),
                        campaign_id: campaign.clone(),
                        member_id: member.to_owned(),
                        coupon_id: None,
                        points: *points,
                        money_minor: 0,
                        stamps_every: 0,
                        stamp_lines: "[]".into(),
                        status: "committed".into(),
                        created_at: now,
                        counted: *limited,
                    },
                )
                .await?;
                if *limited {
                    store::add_usage(tx.conn(), tenant, campaign, Some(member), Usage { points: *points, money_minor: 0, uses: 1 }).await?;
                }
            }
            let saved = book.save(&mut tx).await?;
            let answer = json!({
                "event_id": ev.event_id, "type": ev.kind, "member_id": member, "occurred_at": fmt_time(at),
                "points_awarded": total, "applied": applied, "not_applied": not_applied, "balance": balance_json(&saved),
            });
            store::insert_action_event(
                tx.conn(),
                tenant,
                &store::ActionEventRecord {
                    event_id: &ev.event_id,
                    member_id: member,
                    kind: &ev.kind,
                    body_hash: &ev.hash,
                    answer: &answer.to_string(),
                    occurred_at: at,
                    created_at: now,
                },
            )
            .await?;
            kopilka_store::members::insert_event(
                tx.conn(),
                tenant,
                member,
                "action_event",
                &json!({"event_id": ev.event_id, "type": ev.kind, "points": total}),
                at,
            )
            .await?;
            tx.commit().await?;
            Ok((true, answer))
        }
    })
    .await
}

fn applied_name(applied: &[Value]) -> String {
    applied.first().and_then(|a| a["name"].as_str()).unwrap_or_default().to_owned()
}

/// Register (or replace) a custom event type with its data schema.
pub async fn put_type(state: &AppState, auth: &Auth, kind: &str, schema: Value) -> ApiResult<Value> {
    if BUILTIN.contains(&kind) {
        return Err(ApiError::rule("builtin_event_type", format!("{kind} is a built-in event type")));
    }
    if kind.is_empty() || kind.len() > 64 || !kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(ApiError::field("type", "must be 1 to 64 lower-case letters, digits or '_'"));
    }
    let mut errors = BTreeMap::new();
    kopilka_domain::schema::check_schema(&schema, "schema", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let tenant = auth.tenant_id.as_str();
    with_retry(|_| {
        let schema = schema.clone();
        async move {
            let mut tx = state.db.begin().await?;
            let now = now_s();
            store::put_event_type(tx.conn(), tenant, kind, &schema.to_string(), now).await?;
            tenants::audit(
                tx.conn(),
                tenant,
                &tenants::Audit {
                    actor: &auth.actor(),
                    action: "event_type.put",
                    object_type: "event_type",
                    object_id: kind,
                    details: &json!({}),
                    at: now,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(json!({"type": kind, "schema": schema}))
        }
    })
    .await
}

pub async fn list_types(state: &AppState, auth: &Auth) -> ApiResult<Value> {
    let mut c = state.db.pool().acquire().await.map_err(StoreError::from)?;
    let custom: Vec<Value> = store::event_types(&mut c, &auth.tenant_id)
        .await?
        .into_iter()
        .map(|(t, s)| json!({"type": t, "schema": serde_json::from_str::<Value>(&s).unwrap_or(Value::Null)}))
        .collect();
    Ok(json!({"builtin": BUILTIN, "custom": custom}))
}
