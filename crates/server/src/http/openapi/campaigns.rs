//! The campaign engine's part of the OpenAPI document (`http/campaigns.rs`): campaigns,
//! coupons, member segments and offers, the cashback wallet, action events, event types
//! and the product catalogue.

use super::*;

const VIEW: &str = "only admin, analyst and pos keys may do this";
const MEMBER_404: &str = "`member_not_found`: no such member";
const CAMPAIGN_404: &str = "`not_found`: no such campaign";

/// The reason codes a campaign that did not apply can carry.
const REASON_CODES: &[&str] = &[
    "needs_quantity",
    "needs_amount",
    "needs_receipt_total",
    "tier_only",
    "segment_only",
    "attribute_only",
    "enrolled_too_recently",
    "enrolment_offer_over",
    "birthday_only",
    "birthday_unknown",
    "not_this_store",
    "weekdays_only",
    "hours_only",
    "first_purchase_only",
    "member_only",
    "custom",
    "not_started",
    "budget_spent",
    "member_limit_reached",
    "not_combinable",
    "nothing_qualifies",
    "coupon_expired",
    "coupon_not_yet_valid",
    "coupon_used_up",
    "coupon_member_limit",
    "coupon_not_for_member",
    "coupon_needs_member",
    "coupon_inactive",
];

pub(super) fn ops() -> Vec<(&'static str, &'static str, Op)> {
    let id = || path_param("id", "campaign id");
    let member = || path_param("id", "member id");
    let cursor = || query("cursor", "`next_cursor` of the previous page", string());
    let csv = |d: &str| json!({"description": d, "content": {"text/csv": {"schema": {"type": "string"}}}});
    vec![
        // ------------------------------------------------------------------ campaigns
        (
            "/api/v1/campaigns",
            "post",
            Op::new("createCampaign", "campaigns", "Create a campaign")
                .describe(
                    "Audited. The conditions and the CEL expression compile when the campaign is saved: an expression \
                     that does not compile is 422 `validation_error` with the compiler's message at `cel.expression`. \
                     `code` is unique in the tenant, archived campaigns included.",
                )
                .json_body(r("CampaignInput"))
                .resp("201", ok("the campaign", r("Campaign")))
                .e400()
                .e403(ADMIN_ONLY)
                .e409("`campaign_exists`: another campaign has this code")
                .e422(VALIDATION),
        ),
        (
            "/api/v1/campaigns",
            "get",
            Op::new("listCampaigns", "campaigns", "List the campaigns")
                .param(query("archived", "true: also list the archived campaigns (by code)", json!({"type": "boolean", "default": false})))
                .resp("200", ok("the campaigns", r("CampaignList")))
                .e403(ADMIN_ANALYST)
                .e422("`validation_error`: a bad `archived` flag or an unknown query parameter"),
        ),
        (
            "/api/v1/campaigns/{id}",
            "get",
            Op::new("getCampaign", "campaigns", "Read a campaign, with its usage")
                .param(id())
                .resp("200", ok("the campaign", r("Campaign")))
                .e403(ADMIN_ANALYST)
                .e404(CAMPAIGN_404),
        ),
        (
            "/api/v1/campaigns/{id}",
            "put",
            Op::new("replaceCampaign", "campaigns", "Replace a campaign")
                .describe("Fields left out take their defaults; read-only fields are ignored. Compiles as on create.")
                .param(id())
                .json_body(r("CampaignInput"))
                .resp("200", ok("the campaign", r("Campaign")))
                .e400()
                .e403(ADMIN_ONLY)
                .e404(CAMPAIGN_404)
                .e409("`campaign_exists`: another campaign has this code")
                .e422(VALIDATION),
        ),
        (
            "/api/v1/campaigns/{id}",
            "delete",
            Op::new("archiveCampaign", "campaigns", "Archive a campaign")
                .describe("It stops applying; its history and usage stay. Archiving an archived campaign answers it unchanged.")
                .param(id())
                .resp("200", ok("the archived campaign", r("Campaign")))
                .e403(ADMIN_ONLY)
                .e404(CAMPAIGN_404),
        ),
        // ------------------------------------------------------------------ coupons
        (
            "/api/v1/campaigns/{id}/coupons",
            "post",
            Op::new("createCoupons", "coupons", "Create one named coupon, or generate N random ones")
                .describe(
                    "All or nothing. Generated codes are `prefix` + `length` symbols from \
                     ABCDEFGHJKMNPQRSTUVWXYZ23456789 (no 0/O, 1/I/L), drawn from a CSPRNG. Codes compare without case \
                     and surrounding spaces. A generated or personal coupon is single-use unless `max_uses` says \
                     otherwise; a shared code is unlimited unless `max_uses` says. Only campaigns with \
                     `requires_coupon` take coupons.",
                )
                .param(id())
                .json_body(r("CouponBatchInput"))
                .resp("201", ok("the coupons (at most the first 1000 are listed)", r("CouponBatch")))
                .e400()
                .e403(ADMIN_ONLY)
                .e404("`not_found` (no such campaign) or `member_not_found`")
                .e409("`coupon_exists`: a coupon with this code exists")
                .e422("`validation_error`, or `campaign_without_coupons` (the campaign does not require a coupon)"),
        ),
        (
            "/api/v1/campaigns/{id}/coupons",
            "get",
            Op::new("listCoupons", "coupons", "List a campaign's coupons, by code")
                .param(id())
                .param(limit(100, 1000))
                .param(cursor())
                .resp("200", ok("a page of coupons", r("CouponPage")))
                .e403(ADMIN_ANALYST)
                .e404(CAMPAIGN_404)
                .e422("`validation_error`: a bad `limit` or an unknown query parameter"),
        ),
        (
            "/api/v1/campaigns/{id}/coupons/import",
            "post",
            Op::new("importCoupons", "coupons", "Import coupons from CSV (all or nothing)")
                .describe(
                    "A header row naming `code` and optionally `member_id`, `max_uses`, `per_member_limit`, `uses`, \
                     `starts_at`, `expires_at`, `status` (active or disabled), in any order: the export's columns, so an \
                     export imports back as it was. Each code is 3 to 64 letters, digits, '-' or '_'. Without a \
                     `max_uses` column every coupon is single-use; with one, an empty cell is unlimited. Any bad row \
                     rejects the whole file with 422 `validation_error`, each row named in `fields` as `line N` (the \
                     header is line 1).",
                )
                .param(id())
                .body(json!({"required": true, "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}},
                }}))
                .resp("201", ok("everything was imported", r("CouponImport")))
                .e403(ADMIN_ONLY)
                .e404("`not_found` (no such campaign) or `member_not_found`")
                .e409("`coupon_exists`: a code in the file is taken")
                .e422("`validation_error` (bad header, bad rows, no rows) or `campaign_without_coupons`"),
        ),
        (
            "/api/v1/campaigns/{id}/coupons/export",
            "get",
            Op::new("exportCoupons", "coupons", "Export a campaign's coupons as CSV")
                .describe("Columns: code, member_id, max_uses, per_member_limit, uses, starts_at, expires_at, status. It imports back.")
                .param(id())
                .resp("200", csv("the coupons, by code"))
                .e403(ADMIN_ANALYST)
                .e404(CAMPAIGN_404),
        ),
        (
            "/api/v1/coupons/validate",
            "post",
            Op::new("validateCoupon", "coupons", "Say whether a coupon can be used now, and why not")
                .describe(
                    "Writes nothing. An unknown code answers `valid: false` with `coupon_not_found`; each key may try at \
                     most 20 unknown codes a minute, then every validation (and every receipt with coupons) of that key \
                     is 429 until the minute ends.",
                )
                .json_body(r("CouponValidateInput"))
                .resp("200", ok("the verdict", r("CouponValidation")))
                .e400()
                .e403(ADMIN_POS)
                .e404(MEMBER_404)
                .e422(VALIDATION)
                .resp("429", err("`rate_limited`: too many unknown codes from this key in the last minute")),
        ),
        (
            "/api/v1/coupons/{id}",
            "delete",
            Op::new("disableCoupon", "coupons", "Disable a coupon")
                .describe("It can no longer be used; receipts that used it keep it. Disabling a disabled coupon answers it unchanged.")
                .param(path_param("id", "coupon id"))
                .resp("200", ok("the coupon", r("Coupon")))
                .e403(ADMIN_ONLY)
                .e404("`not_found`: no such coupon"),
        ),
        // ------------------------------------------------------------------ members
        (
            "/api/v1/members/{id}/offers",
            "get",
            Op::new("getMemberOffers", "campaigns", "A member's personal offers, coupons and stamp cards")
                .describe(
                    "`offers`: live campaigns aimed at this member by id or by one of their segment tags. `coupons`: \
                     the member's own usable coupons. `stamp_cards`: progress on every live stamp card.",
                )
                .param(member())
                .resp("200", ok("what the member can see", r("MemberOffers")))
                .e403(VIEW)
                .e404(MEMBER_404),
        ),
        (
            "/api/v1/members/{id}/segments",
            "get",
            Op::new("getMemberSegments", "campaigns", "A member's segment tags and attributes")
                .param(member())
                .resp("200", ok("tags and attributes", r("MemberSegments")))
                .e403(ADMIN_ANALYST)
                .e404(MEMBER_404),
        ),
        (
            "/api/v1/members/{id}/segments",
            "put",
            Op::new("putMemberSegments", "campaigns", "Replace a member's segment tags (and attributes)")
                .describe(
                    "`tags`, when given, replaces the tags (left out, they stay); tags are lower-cased and deduplicated. `attributes`, \
                     when given, replaces the attributes; left out, they stay. Audited.",
                )
                .param(member())
                .json_body(r("MemberSegmentsInput"))
                .resp("200", ok("tags and attributes", r("MemberSegments")))
                .e400()
                .e403(ADMIN_ONLY)
                .e404(MEMBER_404)
                .e422(VALIDATION),
        ),
        (
            "/api/v1/members/{id}/wallet",
            "get",
            Op::new("getMemberWallet", "campaigns", "A member's cashback wallet and its newest entries")
                .param(member())
                .param(limit(50, 500))
                .resp("200", ok("the wallet", r("Wallet")))
                .e403(VIEW)
                .e404(MEMBER_404)
                .e422("`validation_error`: a bad `limit` or an unknown query parameter"),
        ),
        (
            "/api/v1/members/{id}/events",
            "post",
            Op::new("postMemberEvent", "events", "Record a member's action event and award its campaigns' bonus points")
                .describe(
                    "Event campaigns (`trigger: event`) of the event's type award bonus points (ledger kind `bonus`), \
                     within their budgets. Idempotent on `event_id`, tenant-wide: the same body again answers 200 with \
                     the first answer; another body is 409 `event_conflict`. A custom type's `data` is validated \
                     against its schema.",
                )
                .param(member())
                .json_body(r("EventInput"))
                .resp("201", ok("the event was recorded", r("EventAnswer")))
                .resp("200", ok("the same event again: the first answer", r("EventAnswer")))
                .e400()
                .e403(ADMIN_ONLY)
                .e404(MEMBER_404)
                .e409("`event_conflict`: the event_id was used with another body or member")
                .e422(
                    "`validation_error` (including `data` against a custom type's schema), `unknown_event_type` or \
                     `occurred_at_out_of_range`",
                ),
        ),
        // ------------------------------------------------------------------ event types, products
        (
            "/api/v1/event-types",
            "get",
            Op::new("listEventTypes", "events", "The built-in and custom action event types")
                .resp("200", ok("the event types", r("EventTypeList")))
                .e403(ADMIN_ANALYST),
        ),
        (
            "/api/v1/event-types/{type}",
            "put",
            Op::new("putEventType", "events", "Register or replace a custom event type with its data schema")
                .describe(
                    "The schema is a strict subset of JSON Schema: type (object, string, integer, boolean, array), \
                     properties, required, additionalProperties (boolean), enum, minimum, maximum, minLength, \
                     maxLength, items, maxItems, description, title. Anything else is refused.",
                )
                .param(path_param("type", "1 to 64 lower-case letters, digits or '_'; not a built-in type"))
                .json_body(r("EventTypeInput"))
                .resp("200", ok("the event type", r("EventType")))
                .e400()
                .e403(ADMIN_ONLY)
                .e422("`validation_error` (a bad type name or schema) or `builtin_event_type`"),
        ),
        (
            "/api/v1/products",
            "get",
            Op::new("listProducts", "campaigns", "The product catalogue, by sku")
                .param(limit(100, 1000))
                .param(cursor())
                .resp("200", ok("a page of products", r("ProductPage")))
                .e403(VIEW)
                .e422("`validation_error`: a bad `limit` or an unknown query parameter"),
        ),
        (
            "/api/v1/products",
            "put",
            Op::new("putProducts", "campaigns", "Add or replace catalogue products")
                .describe(
                    "Upserts by sku. A till line sent with a sku and no category takes the catalogue's category for \
                     campaign matching. Audited.",
                )
                .json_body(r("ProductsInput"))
                .resp("200", ok("how many were written", object(&["updated"], json!({"updated": int()}))))
                .e400()
                .e403(ADMIN_ONLY)
                .e422(VALIDATION),
        ),
    ]
}

/// A campaign entry in `applied` of a receipt answer.
pub(super) fn applied_entry() -> Value {
    object(
        &["campaign_id", "code", "name", "discount_minor", "points", "cashback_minor"],
        json!({
            "campaign_id": string(),
            "code": string(),
            "name": string(),
            "discount_minor": describe(int(), "money the campaign took off the receipt"),
            "points": describe(int(), "extra points: multiplier extras and bonus points"),
            "cashback_minor": describe(int(), "money into the member's cashback wallet"),
            "free_units": describe(int(), "free items and stamp-card free units, when any"),
            "coupon": describe(string(), "the coupon code that unlocked it"),
            "stamps": describe(
                object(&["every", "before", "added", "free_units", "after"], json!({
                    "every": int(), "before": int(), "added": int(), "free_units": int(), "after": int(),
                })),
                "stamp cards: the member's progress before and after this receipt",
            ),
        }),
    )
}

/// A campaign entry in `not_applied`: why it did not apply, for a cashier.
pub(super) fn not_applied_entry() -> Value {
    object(
        &["campaign_id", "code", "name", "reason_code", "reason"],
        json!({
            "campaign_id": string(),
            "code": string(),
            "name": string(),
            "reason_code": {"type": "string", "enum": REASON_CODES},
            "reason": describe(string(), "in the programme's language, e.g. \"needs 2 more items in category coffee\""),
        }),
    )
}

/// The cashback wallet's state.
pub(super) fn wallet_state() -> Value {
    object(
        &["balance_minor", "held_minor", "debt_minor", "available_minor"],
        json!({
            "balance_minor": int(),
            "held_minor": describe(int(), "held by reserved receipts"),
            "debt_minor": describe(int(), "cashback taken back after it was spent; later cashback pays it first"),
            "available_minor": describe(int(), "balance − held, at least 0"),
        }),
    )
}

/// Category and sku names (input).
fn names() -> Value {
    json!({"type": "array", "maxItems": 1000, "items": {"type": "string", "minLength": 1, "maxLength": 128}})
}

fn selector_in() -> Value {
    describe(
        strict(&[], json!({"categories": names(), "skus": names()})),
        "lines whose category is one of `categories` or whose sku is one of `skus`; both empty: every line",
    )
}

fn selector_out() -> Value {
    object(&[], json!({"categories": array(string()), "skus": array(string())}))
}

/// One variant of a `type`-tagged union.
fn variant(tag: &str, required: &[&str], mut props: Value) -> Value {
    props["type"] = json!({"type": "string", "enum": [tag]});
    let mut req = vec!["type"];
    req.extend_from_slice(required);
    strict(&req, props)
}

fn clause_in() -> Value {
    let time_of_day = json!({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"});
    json!({
        "description": "A structured condition; each can say how far a receipt is from meeting it.",
        "oneOf": [
            variant("min_quantity", &["min"], json!({
                "min": describe(r("Quantity"), "an integer counts units; a decimal string counts a measured quantity"),
                "categories": names(), "skus": names(),
            })),
            variant("min_amount", &["min_minor"], json!({
                "min_minor": describe(int_range(1, MAX), "line totals before discounts"),
                "categories": names(), "skus": names(),
            })),
            variant("receipt_total", &["min_minor"], json!({"min_minor": int_range(1, MAX)})),
            variant("tier", &["in"], json!({"in": {"type": "array", "minItems": 1, "items": string()}})),
            variant("segment", &["tag"], json!({"tag": text(64)})),
            variant("attribute", &["name", "in"], json!({
                "name": {"type": "string", "minLength": 1, "maxLength": 64},
                "in": {"type": "array", "minItems": 1, "items": {}},
            })),
            describe(
                variant("days_since_enrolment", &[], json!({"min": int_range(0, 36_500), "max": int_range(0, 36_500)})),
                "at least one of min and max",
            ),
            variant("birthday", &[], json!({"days_before": int_range(0, 31), "days_after": int_range(0, 31)})),
            variant("store", &["in"], json!({"in": {"type": "array", "minItems": 1, "items": string(), "description": "store ids or codes"}})),
            variant("weekday", &["days"], json!({"days": {"type": "array", "minItems": 1, "items": {
                "type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            }}})),
            describe(
                variant("time_window", &["from", "to"], json!({"from": time_of_day.clone(), "to": time_of_day})),
                "HH:MM in the store's time zone, `to` exclusive; from > to spans midnight; from ≠ to",
            ),
            variant("first_purchase", &[], json!({})),
        ],
    })
}

fn effect_in() -> Value {
    let target = selector_in;
    let named_target = || describe(object(&[], json!({"categories": names(), "skus": names()})), "must name categories or skus");
    let named = |mut v: Value| {
        v["properties"]["target"] = named_target();
        v["properties"]["target"]["additionalProperties"] = Value::Bool(false);
        v
    };
    json!({
        "description": "What a campaign does when it applies.",
        "oneOf": [
            variant("discount_percent", &["percent_bp"], json!({"percent_bp": int_range(1, 10_000), "target": target()})),
            variant("discount_fixed", &["amount_minor"], json!({"amount_minor": int_range(1, MAX), "target": target()})),
            variant("points_multiplier", &["multiplier_bp"], json!({
                "multiplier_bp": describe(int_range(10_001, 1_000_000), "20000 = double points"), "target": target(),
            })),
            variant("bonus_points", &["points"], json!({"points": int_range(1, MAX), "target": target()})),
            named(variant("free_item", &["target"], json!({"quantity": int_range(1, 1000), "target": {}}))),
            variant("cashback", &["percent_bp"], json!({"percent_bp": int_range(1, 10_000), "target": target()})),
            variant("cashback", &["amount_minor"], json!({"amount_minor": int_range(1, MAX), "target": target()})),
            describe(
                named(variant("stamp_card", &["every", "target"], json!({"every": int_range(2, 1000), "target": {}}))),
                "the campaign's only effect; cannot require a coupon",
            ),
        ],
    })
}

pub(super) fn schemas() -> Value {
    let ro = || json!({"readOnly": true, "description": "read-only; ignored"});
    let texts_in = json!({
        "description": "one text, or a text per language",
        "oneOf": [
            {"type": "string", "minLength": 1, "pattern": "\\S"},
            {"type": "object", "additionalProperties": false, "minProperties": 1, "properties": {
                "en": {"type": "string", "nullable": true}, "ru": {"type": "string", "nullable": true},
            }},
        ],
    });
    let texts_out = json!({"oneOf": [
        string(),
        object(&[], json!({"en": nullable(string()), "ru": nullable(string())})),
    ]});
    let budget_props = |v: fn() -> Value| {
        json!({
            "points": v(), "money_minor": v(), "uses": v(),
            "per_member_points": v(), "per_member_money_minor": v(), "per_member_uses": v(),
        })
    };
    let limit_in = || int_range(1, MAX);
    let campaign_in = strict(
        &["code", "name", "effects"],
        json!({
            "code": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
            "description": {"type": "string", "maxLength": 2000},
            "status": describe(json!({"type": "string", "enum": ["active", "paused"]}), "defaults to active"),
            "trigger": describe(
                json!({"type": "string", "enum": ["receipt", "event"]}),
                "receipt (evaluated at the till, the default) or event (on a member's action event)",
            ),
            "event_type": describe(text(64), "required for, and only for, trigger event"),
            "priority": describe(int_range(-1_000_000, 1_000_000), "higher goes first; ties to the smaller code; default 100"),
            "exclusive": describe(boolean(), "applies alone"),
            "starts_at": time(),
            "ends_at": describe(time(), "after starts_at"),
            "conditions": {"type": "array", "maxItems": 50, "items": clause_in()},
            "cel": strict(&["expression", "reason"], json!({
                "expression": describe(json!({"type": "string", "maxLength": 4000}), "a CEL expression that must be true"),
                "reason": describe(texts_in, "what the cashier sees when the expression is false"),
            })),
            "effects": {"type": "array", "minItems": 1, "maxItems": 10, "items": effect_in()},
            "budget": describe(
                strict(&[], budget_props(limit_in)),
                "left out: unlimited. Points count multiplier extras and bonus points; money counts discounts and \
                 cashback; uses count receipts or events",
            ),
            "audience": describe(
                strict(&[], json!({
                    "member_ids": array(string()),
                    "segment_tags": array(text(64)),
                })),
                "personal offers: listed members or members with one of the tags; both empty: everyone",
            ),
            "requires_coupon": describe(boolean(), "applies only when one of its coupons is presented (receipt campaigns)"),
            "id": ro(),
            "usage": ro(),
            "archived": ro(),
            "created_at": ro(),
            "updated_at": ro(),
            "coupons": ro(),
        }),
    );
    let coupon_props = json!({
        "id": string(),
        "campaign_id": string(),
        "code": describe(string(), "upper-case"),
        "member_id": nullable(describe(string(), "a personal coupon's member")),
        "max_uses": nullable(describe(int(), "null: unlimited")),
        "per_member_limit": nullable(int()),
        "uses": int(),
        "starts_at": nullable(time()),
        "expires_at": nullable(time()),
        "status": {"type": "string", "enum": ["active", "disabled"]},
        "batch": nullable(string()),
        "created_at": time(),
    });
    let coupon_required = [
        "id",
        "campaign_id",
        "code",
        "member_id",
        "max_uses",
        "per_member_limit",
        "uses",
        "starts_at",
        "expires_at",
        "status",
        "batch",
        "created_at",
    ];
    let offer = object(
        &["campaign_id", "code", "name", "description", "starts_at", "ends_at", "effects", "requires_coupon"],
        json!({
            "campaign_id": string(),
            "code": string(),
            "name": string(),
            "description": nullable(string()),
            "starts_at": nullable(time()),
            "ends_at": nullable(time()),
            "effects": array(json!({"type": "object"})),
            "requires_coupon": boolean(),
        }),
    );
    let mut member_coupon_props = coupon_props.clone();
    member_coupon_props["campaign"] = describe(offer.clone(), "the coupon's campaign, when it is live");
    let no_limit_out = || nullable(int());
    json!({
        "CampaignInput": campaign_in,
        "Campaign": object(
            &[
                "id", "code", "name", "status", "trigger", "priority", "exclusive", "conditions", "effects", "budget",
                "audience", "requires_coupon", "archived", "created_at", "updated_at", "usage",
            ],
            json!({
                "id": string(),
                "code": string(),
                "name": string(),
                "description": string(),
                "status": {"type": "string", "enum": ["active", "paused"]},
                "trigger": {"type": "string", "enum": ["receipt", "event"]},
                "event_type": string(),
                "priority": int(),
                "exclusive": boolean(),
                "starts_at": time(),
                "ends_at": time(),
                "conditions": array(object(&["type"], json!({"type": string()}))),
                "cel": object(&["expression", "reason"], json!({"expression": string(), "reason": texts_out})),
                "effects": array(object(&["type"], json!({"type": string(), "target": selector_out()}))),
                "budget": object(&[], budget_props(no_limit_out)),
                "audience": object(&[], json!({"member_ids": array(string()), "segment_tags": array(string())})),
                "requires_coupon": boolean(),
                "archived": boolean(),
                "created_at": time(),
                "updated_at": time(),
                "usage": describe(
                    object(&["points", "money_minor", "uses"], json!({"points": int(), "money_minor": int(), "uses": int()})),
                    "what committed receipts and events took from it",
                ),
            }),
        ),
        "CampaignList": object(&["campaigns"], json!({"campaigns": array(r("Campaign"))})),
        "CouponBatchInput": strict(&[], json!({
            "code": describe(
                json!({"type": "string", "pattern": "^\\s*[A-Za-z0-9_-]{3,64}\\s*$"}),
                "one named code (shared, or personal with member_id); give either code or generate",
            ),
            "generate": describe(int_range(1, 100_000), "this many random codes"),
            "prefix": describe(json!({"type": "string", "maxLength": 16, "pattern": "^[A-Za-z0-9_-]*$"}), "generated codes start with it"),
            "length": describe(int_range(8, 32), "random symbols per generated code; default 12 (about 59 bits)"),
            "member_id": describe(text(64), "a personal coupon: only this member may use it"),
            "member_ids": describe(array(text(64)), "personal generated coupons: one member per coupon, as many as generate"),
            "max_uses": int_range(1, MAX),
            "per_member_limit": int_range(1, MAX),
            "starts_at": time(),
            "expires_at": describe(time(), "after starts_at"),
        })),
        "Coupon": object(&coupon_required, coupon_props),
        "CouponBatch": object(&["campaign_id", "batch", "created", "coupons"], json!({
            "campaign_id": string(),
            "batch": string(),
            "created": int(),
            "coupons": array(r("Coupon")),
        })),
        "CouponPage": object(&["coupons", "next_cursor"], json!({
            "coupons": array(r("Coupon")),
            "next_cursor": nullable(string()),
        })),
        "CouponImport": object(&["campaign_id", "batch", "created"], json!({
            "campaign_id": string(), "batch": string(), "created": int(),
        })),
        "CouponValidateInput": strict(&["code"], json!({
            "code": text(64),
            "member_id": describe(text(64), "check the coupon for this member (personal coupons, per-member limits)"),
        })),
        "CouponValidation": object(&["code", "valid"], json!({
            "code": string(),
            "valid": boolean(),
            "reason_code": describe(
                json!({"type": "string", "enum": [
                    "coupon_not_found", "coupon_inactive", "coupon_expired", "coupon_not_yet_valid", "coupon_used_up",
                    "coupon_needs_member", "coupon_not_for_member", "coupon_member_limit",
                ]}),
                "why it is not valid",
            ),
            "reason": describe(string(), "why it is not valid, in the programme's language"),
            "coupon_id": string(),
            "campaign_id": string(),
            "campaign_name": nullable(string()),
            "uses": int(),
            "max_uses": nullable(int()),
            "expires_at": nullable(time()),
        })),
        "MemberOffers": object(&["member_id", "offers", "coupons", "stamp_cards"], json!({
            "member_id": string(),
            "offers": array(offer),
            "coupons": array(object(&coupon_required, member_coupon_props)),
            "stamp_cards": array(object(&["campaign_id", "code", "name", "every", "stamps", "to_free", "target"], json!({
                "campaign_id": string(),
                "code": string(),
                "name": string(),
                "every": int(),
                "stamps": describe(int(), "stamps collected towards the next free unit"),
                "to_free": describe(int(), "units still to buy before one is free"),
                "target": selector_out(),
            }))),
        })),
        "MemberSegmentsInput": strict(&[], json!({
            "tags": {"type": "array", "maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 64}},
            "attributes": {"type": "object", "maxProperties": 100, "description": "at most 16 KiB as JSON"},
            "member_id": ro(),
        })),
        "MemberSegments": object(&["member_id", "tags", "attributes"], json!({
            "member_id": string(),
            "tags": array(string()),
            "attributes": {"type": "object"},
        })),
        "Wallet": {"allOf": [wallet_state(), object(&["member_id", "entries"], json!({
            "member_id": string(),
            "entries": array(object(&["id", "kind", "amount_minor", "receipt_id", "reason", "occurred_at", "created_at"], json!({
                "id": string(),
                "kind": {"type": "string", "enum": ["cashback", "spend", "return_spend", "reverse_cashback", "adjust"]},
                "amount_minor": int(),
                "receipt_id": nullable(string()),
                "reason": nullable(string()),
                "occurred_at": time(),
                "created_at": time(),
            }))),
        }))]},
        "EventInput": strict(&["event_id", "type"], json!({
            "event_id": describe(text(128), "the idempotency key, tenant-wide"),
            "type": describe(
                text(64),
                "review, survey, newsletter_subscribed, social_share, signup, birthday, store_visit, or a registered custom type",
            ),
            "data": {"type": "object", "description": "a custom type's data, checked against its schema; at most 64 KiB"},
            "occurred_at": describe(time(), "defaults to now; must lie in the offline window"),
        })),
        "EventAnswer": object(
            &["event_id", "type", "member_id", "occurred_at", "points_awarded", "applied", "not_applied", "balance"],
            json!({
                "event_id": string(),
                "type": string(),
                "member_id": string(),
                "occurred_at": time(),
                "points_awarded": int(),
                "applied": array(object(&["campaign_id", "code", "name", "points"], json!({
                    "campaign_id": string(), "code": string(), "name": string(), "points": int(),
                }))),
                "not_applied": array(not_applied_entry()),
                "balance": r("Balance"),
            }),
        ),
        "EventTypeInput": strict(&["schema"], json!({
            "schema": {"type": "object", "description": "the JSON Schema subset the type's data must match"},
            "type": ro(),
        })),
        "EventType": object(&["type", "schema"], json!({"type": string(), "schema": {"type": "object"}})),
        "EventTypeList": object(&["builtin", "custom"], json!({
            "builtin": array(string()),
            "custom": array(r("EventType")),
        })),
        "ProductsInput": strict(&["products"], json!({
            "products": {"type": "array", "maxItems": 10_000, "items": strict(&["sku"], json!({
                "sku": text(128),
                "name": text(256),
                "category": describe(text(100), "lower-cased"),
            }))},
        })),
        "ProductPage": object(&["products", "next_cursor"], json!({
            "products": array(object(&["sku", "name", "category"], json!({
                "sku": string(), "name": nullable(string()), "category": nullable(string()),
            }))),
            "next_cursor": nullable(string()),
        })),
    })
}
