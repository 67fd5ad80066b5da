//! The OpenAPI 3.0.3 document served at `GET /api/v1/openapi.json`.
//!
//! Hand-built with `serde_json::json!` (no code generation crate, to keep compile time
//! down). It mirrors the handlers in `http/{admin,members,pos}.rs` and the answers the
//! services build: request bodies are strict (`additionalProperties: false`) where the
//! server rejects unknown fields, and response fields are `required` only when the server
//! always sends them. The unit tests below check that every route of `router()` is
//! documented and that every `$ref` resolves.

mod campaigns;
mod rewards;

use axum::Json;
use serde_json::{Map, Value, json};

/// Every amount or quantity in a request has a magnitude of at most 10^12.
const MAX: i64 = 1_000_000_000_000;
/// A measured quantity: a decimal string with at most 3 decimals, greater than zero (the
/// lookahead asks for a non-zero digit).
const DECIMAL: &str = "^(?=[0-9.]*[1-9])[0-9]+(\\.[0-9]{1,3})?$";

pub async fn document() -> Json<Value> {
    Json(spec())
}

/// The whole document.
pub fn spec() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Kopilka loyalty API",
            "version": "1.2",
            "description": "Loyalty programme API: programme configuration, stores, API keys, members and the till \
                (quote, reserve, checkout, cancel, refund). Money is an integer in minor units, points are integers, \
                floats are rejected in money and points. In request bodies `null` means the field was left out, and \
                an unknown field is 422 `validation_error`. Every non-2xx answer carries the error envelope \
                (`components/schemas/Error`).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [
            {"name": "program", "description": "Programme configuration"},
            {"name": "stores", "description": "Stores"},
            {"name": "api-keys", "description": "API keys"},
            {"name": "admin", "description": "Audit log and ledger check"},
            {"name": "members", "description": "Members, balances, ledgers, adjustments and transfers"},
            {"name": "pos", "description": "The till: quote, reserve, checkout, cancel, refund, receipts"},
            {"name": "rewards", "description": "Rewards catalogue: rewards, redemptions, fulfilment"},
            {"name": "campaigns", "description": "Campaigns, member segments and offers, the cashback wallet, the product catalogue"},
            {"name": "coupons", "description": "Coupons and promo codes: generate, import, export, validate, disable"},
            {"name": "events", "description": "Member action events and custom event types"},
            {"name": "cards", "description": "Card codes, wallet passes, the card design and one-time codes at the till"},
            {"name": "meta", "description": "Health, metrics and this document"},
        ],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer <api key>`. Keys belong to one tenant and have a role: \
                        admin, pos (bound to a store and optionally a till) or analyst (read-only).",
                }
            },
            "schemas": schemas(),
        },
    })
}

// ---------------------------------------------------------------------------------------
// Small schema builders.

fn int() -> Value {
    json!({"type": "integer", "format": "int64"})
}

fn int_range(min: i64, max: i64) -> Value {
    json!({"type": "integer", "format": "int64", "minimum": min, "maximum": max})
}

/// A non-empty string of at most `max` characters.
fn text(max: u64) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time", "description": "RFC 3339, UTC, whole seconds"})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

/// Keywords beside a `$ref` are ignored in OpenAPI 3.0, so a reference is wrapped in
/// `allOf` before anything is added to it.
fn wrap_ref(v: Value) -> Value {
    if v.get("$ref").is_some() { json!({"allOf": [v]}) } else { v }
}

/// `nullable` only adds null to a `type` in the same schema (OpenAPI 3.0.3), so it is
/// never put on a reference: nullable objects are written inline.
fn nullable(mut v: Value) -> Value {
    assert!(v.get("type").is_some(), "nullable needs a type beside it: {v}");
    v["nullable"] = Value::Bool(true);
    v
}

/// A schema that only `null` matches, in OpenAPI 3.0 terms.
fn null_only() -> Value {
    json!({"type": "object", "nullable": true, "enum": [null], "description": "null: left out"})
}

fn describe(v: Value, d: &str) -> Value {
    let mut v = wrap_ref(v);
    v["description"] = Value::String(d.to_owned());
    v
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// An object whose listed fields are always present (response bodies stay open for
/// additions).
fn object(required: &[&str], props: Value) -> Value {
    let mut o = json!({"type": "object", "properties": props});
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

/// A request object: unknown fields are 422 `validation_error`, and an optional field
/// may be sent as `null` (null means left out). `nullable` needs a `type` beside it, so a
/// reference or a choice of schemas gets null as one more branch of an `anyOf`.
fn strict(required: &[&str], mut props: Value) -> Value {
    for (name, p) in props.as_object_mut().expect("properties").iter_mut() {
        if required.contains(&name.as_str()) {
            continue;
        }
        if p.get("type").is_some() {
            p["nullable"] = Value::Bool(true);
            if let Some(Value::Array(e)) = p.get_mut("enum") {
                e.push(Value::Null);
            }
        } else if ["$ref", "allOf", "oneOf", "anyOf"].iter().any(|k| p.get(*k).is_some()) {
            let description = p.as_object_mut().and_then(|o| o.remove("description"));
            let mut choice = json!({"anyOf": [p.take(), null_only()]});
            if let Some(d) = description {
                choice["description"] = d;
            }
            *p = choice;
        }
    }
    let mut o = object(required, props);
    o["additionalProperties"] = Value::Bool(false);
    o
}

// ---------------------------------------------------------------------------------------
// Operations.

fn err(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": r("Error")}}})
}

fn ok(desc: &str, schema: Value) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": schema}}})
}

fn body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn path_param(name: &str, desc: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": desc, "schema": {"type": "string"}})
}

fn query(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": schema})
}

fn limit(default: i64, max: i64) -> Value {
    let mut s = int_range(1, max);
    s["default"] = json!(default);
    query("limit", "page size", s)
}

/// An operation. `responses` lists the answers that the handler can give; 401 is added
/// for authenticated operations, and `default` (the error envelope) for the rest: a 503
/// `retry` when the database is busy, and what no handler produces by design (405, 413,
/// 500).
struct Op {
    id: &'static str,
    summary: &'static str,
    description: &'static str,
    tag: &'static str,
    public: bool,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Vec<(&'static str, Value)>,
}

impl Op {
    fn new(id: &'static str, tag: &'static str, summary: &'static str) -> Op {
        Op { id, summary, description: "", tag, public: false, params: Vec::new(), body: None, responses: Vec::new() }
    }
    fn describe(mut self, d: &'static str) -> Op {
        self.description = d;
        self
    }
    fn public(mut self) -> Op {
        self.public = true;
        self
    }
    fn param(mut self, p: Value) -> Op {
        self.params.push(p);
        self
    }
    fn body(mut self, b: Value) -> Op {
        self.body = Some(b);
        self
    }
    fn json_body(self, schema: Value) -> Op {
        self.body(body(schema))
    }
    fn resp(mut self, status: &'static str, v: Value) -> Op {
        self.responses.push((status, v));
        self
    }
    fn e400(self) -> Op {
        self.resp("400", err("`invalid_json`: the body is empty or not JSON"))
    }
    fn e403(self, who: &str) -> Op {
        self.resp("403", err(&format!("`forbidden`: {who}")))
    }
    fn e404(self, what: &str) -> Op {
        self.resp("404", err(what))
    }
    fn e409(self, what: &str) -> Op {
        self.resp("409", err(what))
    }
    fn e422(self, what: &str) -> Op {
        self.resp("422", err(what))
    }

    fn build(self) -> Value {
        let mut responses = Map::new();
        for (status, v) in self.responses {
            responses.insert(status.to_owned(), v);
        }
        if !self.public {
            responses.insert("401".into(), err("`unauthorized`: missing, unknown, expired or revoked API key"));
        }
        responses.insert("default".into(), err("unexpected error: 503 `retry` (the database is busy; retry), 405, 413 or 500"));
        let mut op = json!({
            "operationId": self.id,
            "summary": self.summary,
            "tags": [self.tag],
            "responses": responses,
        });
        if !self.description.is_empty() {
            op["description"] = json!(self.description);
        }
        if !self.params.is_empty() {
            op["parameters"] = Value::Array(self.params);
        }
        if let Some(b) = self.body {
            op["requestBody"] = b;
        }
        if self.public {
            op["security"] = json!([]);
        }
        op
    }
}

const ADMIN_ONLY: &str = "only admin keys may do this";
const ADMIN_ANALYST: &str = "only admin and analyst keys may do this";
const ADMIN_POS: &str = "only admin and pos keys may do this";
const VALIDATION: &str = "`validation_error`: a field is missing, of the wrong type, out of range or unknown";

fn paths() -> Value {
    let ops: Vec<(&str, &str, Op)> =
        vec![("/api/v1/openapi.json", "get", openapi_op()), ("/healthz", "get", healthz_op()), ("/metrics", "get", metrics_op())]
            .into_iter()
            .chain(program_ops())
            .chain(store_ops())
            .chain(key_ops())
            .chain(admin_ops())
            .chain(member_ops())
            .chain(pos_ops())
            .chain(rewards::ops())
            .chain(campaigns::ops())
            .chain(card_ops())
            .collect();
    let mut paths = Map::new();
    for (path, method, op) in ops {
        let item = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        item[method] = op.build();
    }
    Value::Object(paths)
}

/// Cards and passes (docs/api.md "Cards and passes"); the routes of `http/cards.rs`.
fn card_ops() -> Vec<(&'static str, &'static str, Op)> {
    let id = || path_param("id", "member id");
    let format = || {
        query(
            "format",
            "the code: `qr` (the default; the current `qr_token`), or the card number as `code128`, `ean13`, `pdf417`, `aztec`",
            json!({"type": "string", "enum": ["qr", "code128", "ean13", "pdf417", "aztec"]}),
        )
    };
    let binary = |desc: &str, ct: &str| json!({"description": desc, "content": {ct: {"schema": {"type": "string", "format": "binary"}}}});
    let design = object(
        &[],
        json!({
            "organization_name": nullable(text(64)),
            "description": text(64),
            "background_color": describe(string(), "#rrggbb"),
            "foreground_color": describe(string(), "#rrggbb"),
            "label_color": describe(string(), "#rrggbb"),
            "labels": object(&[], json!({"balance": text(64), "tier": text(64), "card_number": text(64), "name": text(64)})),
            "barcode_format": {"type": "string", "enum": ["qr", "code128", "ean13", "pdf417", "aztec"]},
            "show_name": boolean(),
            "qr_rotation": boolean(),
        }),
    );
    let no_body = || json!({"description": "done"});
    vec![
        (
            "/api/v1/members/{id}/card.png",
            "get",
            Op::new("getCardPng", "cards", "The member's card code as PNG")
                .param(id())
                .param(format())
                .resp("200", binary("the code", "image/png"))
                .e403("a pos key asking for the QR (it holds the token pos keys do not see)")
                .e404("`member_not_found`")
                .e422("`validation_error`: an unknown format or query parameter; `format_not_available`: EAN-13 of a non-EAN-13 number"),
        ),
        (
            "/api/v1/members/{id}/card.svg",
            "get",
            Op::new("getCardSvg", "cards", "The member's card code as SVG")
                .param(id())
                .param(format())
                .resp("200", binary("the code", "image/svg+xml"))
                .e403("a pos key asking for the QR")
                .e404("`member_not_found`")
                .e422("`validation_error` or `format_not_available`"),
        ),
        (
            "/api/v1/members/{id}/pass.pkpass",
            "get",
            Op::new("getPass", "cards", "The member's Apple Wallet pass")
                .param(id())
                .resp("200", binary("a signed storeCard pass", "application/vnd.apple.pkpass"))
                .e404("`member_not_found`")
                .e422("`wallet_not_configured`: no pass certificate for this programme"),
        ),
        (
            "/api/v1/members/{id}/google-wallet",
            "get",
            Op::new("getGoogleWallet", "cards", "The member's Save to Google Wallet link")
                .param(id())
                .resp("200", ok("the link and its JWT", object(&["save_url", "jwt"], json!({"save_url": string(), "jwt": string()}))))
                .e404("`member_not_found`")
                .e422("`wallet_not_configured`: no Google account for this programme"),
        ),
        (
            "/api/v1/members/{id}/card-links",
            "get",
            Op::new("getCardLinks", "cards", "The member's public card links")
                .param(id())
                .resp(
                    "200",
                    ok(
                        "unguessable public links",
                        object(
                            &["page_url", "card_png_url", "card_svg_url", "pass_url", "google_wallet_url"],
                            json!({"page_url": string(), "card_png_url": string(), "card_svg_url": string(), "pass_url": string(), "google_wallet_url": string()}),
                        ),
                    ),
                )
                .e403(ADMIN_ANALYST)
                .e404("`member_not_found`"),
        ),
        (
            "/api/v1/program/card",
            "get",
            Op::new("getCardDesign", "cards", "The card design").resp("200", ok("the design, which images are set and whose wallet keys apply", design.clone())),
        ),
        (
            "/api/v1/program/card",
            "put",
            Op::new("putCardDesign", "cards", "Replace the card design")
                .json_body(design.clone())
                .resp("200", ok("the design", design))
                .e400()
                .e403(ADMIN_ONLY)
                .e422(VALIDATION),
        ),
        (
            "/api/v1/program/card/images/{kind}",
            "put",
            Op::new("putCardImage", "cards", "Set a card image (logo, strip, icon)")
                .param(path_param("kind", "`logo`, `strip` or `icon`"))
                .json_body(strict(&["png_base64"], json!({"png_base64": describe(string(), "a PNG, base64, at most 1 MiB and 2000×2000")})))
                .resp("200", ok("the image's size", object(&[], json!({"kind": string(), "width": int(), "height": int()}))))
                .e400()
                .e403(ADMIN_ONLY)
                .e404("`not_found`: an unknown kind")
                .e422(VALIDATION),
        ),
        (
            "/api/v1/program/card/images/{kind}",
            "delete",
            Op::new("deleteCardImage", "cards", "Remove a card image")
                .param(path_param("kind", "`logo`, `strip` or `icon`"))
                .resp("204", no_body())
                .e403(ADMIN_ONLY)
                .e404("`not_found`"),
        ),
        (
            "/api/v1/program/card/apple-certificate",
            "put",
            Op::new("putAppleCertificate", "cards", "The programme's own Pass Type ID certificate")
                .json_body(object(&["wwdr_pem"], json!({"cert_pem": string(), "key_pem": string(), "wwdr_pem": string(), "pkcs12_base64": string(), "password": string()})))
                .resp("200", ok("the certificate", object(&[], json!({"pass_type_id": string(), "team_id": string(), "expires_at": time()}))))
                .e400()
                .e403(ADMIN_ONLY)
                .e422("`validation_error`: not a certificate, a key of another certificate, expired, or no WWDR"),
        ),
        (
            "/api/v1/program/card/apple-certificate",
            "delete",
            Op::new("deleteAppleCertificate", "cards", "Go back to the operator's pass certificate").resp("204", no_body()).e403(ADMIN_ONLY).e404("`not_found`"),
        ),
        (
            "/api/v1/program/card/google-account",
            "put",
            Op::new("putGoogleAccount", "cards", "The programme's own Google Wallet issuer and service account")
                .json_body(strict(&["issuer_id", "service_account"], json!({"issuer_id": string(), "service_account": {"type": "object"}})))
                .resp("200", ok("the account", object(&[], json!({"issuer_id": string(), "client_email": string()}))))
                .e400()
                .e403(ADMIN_ONLY)
                .e422(VALIDATION),
        ),
        (
            "/api/v1/program/card/google-account",
            "delete",
            Op::new("deleteGoogleAccount", "cards", "Go back to the operator's Google account").resp("204", no_body()).e403(ADMIN_ONLY).e404("`not_found`"),
        ),
        (
            "/api/v1/pos/otp",
            "post",
            Op::new("sendOtp", "pos", "Send the member a one-time code (redeem.auth qr_or_otp)")
                .json_body(strict(&["member"], json!({"member": r("MemberRef"), "store_id": string(), "till_id": string()})))
                .resp(
                    "200",
                    ok("sent", object(&["member_id", "channel", "to", "expires_at"], json!({"member_id": string(), "channel": {"type": "string", "enum": ["sms", "email"]}, "to": string(), "expires_at": time()}))),
                )
                .e400()
                .e403(ADMIN_POS)
                .e404("`member_not_found`")
                .e422("`validation_error`, or `otp_unavailable`: no phone or email that codes can be sent to")
                .resp("429", err("`rate_limited`: too many codes for this member"))
                .resp("503", err("`otp_delivery_failed`: the SMS provider or mail relay did not take the message")),
        ),
    ]
}

fn openapi_op() -> Op {
    Op::new("getOpenApi", "meta", "This OpenAPI document").public().resp("200", ok("the OpenAPI 3.0.3 document", json!({"type": "object"})))
}

fn healthz_op() -> Op {
    Op::new("healthz", "meta", "Health check (database reachable)")
        .public()
        .resp("200", ok("healthy", r("Health")))
        .resp("503", ok("the database is unreachable", r("Health")))
}

fn metrics_op() -> Op {
    Op::new("metrics", "meta", "Prometheus metrics").public().resp(
        "200",
        json!({"description": "Prometheus text exposition format (empty when metrics are off)",
               "content": {"text/plain": {"schema": {"type": "string"}}}}),
    )
}

fn program_ops() -> Vec<(&'static str, &'static str, Op)> {
    vec![
        (
            "/api/v1/program",
            "get",
            Op::new("getProgram", "program", "Read the programme configuration").resp("200", ok("the current programme", r("Program"))),
        ),
        (
            "/api/v1/program",
            "put",
            Op::new("putProgram", "program", "Replace the programme configuration")
                .describe(
                    "Fields left out take their defaults. A PUT identical to the current programme makes no new version. \
                     `version` is read-only and ignored.",
                )
                .json_body(r("ProgramInput"))
                .resp("200", ok("the programme as stored, with its version", r("Program")))
                .e400()
                .e403(ADMIN_ONLY)
                .e422(
                    "`validation_error`, or `program_locked` (currency or redeem.point_value_minor changed after a receipt \
                     was committed)",
                ),
        ),
        (
            "/api/v1/program/templates",
            "get",
            Op::new("listProgramTemplates", "program", "List the programme templates").resp("200", ok("the templates", r("TemplateList"))),
        ),
    ]
}

fn store_ops() -> Vec<(&'static str, &'static str, Op)> {
    vec![
        (
            "/api/v1/stores",
            "post",
            Op::new("createStore", "stores", "Create a store")
                .json_body(r("StoreInput"))
                .resp("201", ok("the store", r("Store")))
                .e400()
                .e403(ADMIN_ONLY)
                .e409("`store_exists`: a store with this code exists")
                .e422(VALIDATION),
        ),
        ("/api/v1/stores", "get", Op::new("listStores", "stores", "List the stores").resp("200", ok("the stores", r("StoreList")))),
        (
            "/api/v1/stores/{id}",
            "get",
            Op::new("getStore", "stores", "Read a store")
                .param(path_param("id", "store id"))
                .resp("200", ok("the store", r("Store")))
                .e404("`not_found`: no such store"),
        ),
    ]
}

fn key_ops() -> Vec<(&'static str, &'static str, Op)> {
    vec![
        (
            "/api/v1/api-keys",
            "post",
            Op::new("createApiKey", "api-keys", "Create an API key")
                .describe("The key is shown once. Only pos keys take a store (required for them) or a till.")
                .json_body(r("ApiKeyInput"))
                .resp("201", ok("the key, with its secret", r("ApiKeyCreated")))
                .e400()
                .e403(ADMIN_ONLY)
                .e404("`store_not_found`: no such store")
                .e422(VALIDATION),
        ),
        (
            "/api/v1/api-keys",
            "get",
            Op::new("listApiKeys", "api-keys", "List the API keys")
                .resp("200", ok("the keys (never their secrets)", r("ApiKeyList")))
                .e403(ADMIN_ONLY),
        ),
        (
            "/api/v1/api-keys/{id}",
            "delete",
            Op::new("revokeApiKey", "api-keys", "Revoke an API key")
                .param(path_param("id", "API key id"))
                .resp("200", ok("the key is revoked", r("ApiKeyRevoked")))
                .e403(ADMIN_ONLY)
                .e404("`not_found`: no such API key"),
        ),
    ]
}

fn admin_ops() -> Vec<(&'static str, &'static str, Op)> {
    vec![
        (
            "/api/v1/audit",
            "get",
            Op::new("listAudit", "admin", "Read the audit log, newest first")
                .param(limit(100, 1000))
                .resp("200", ok("audit records", r("AuditList")))
                .e403(ADMIN_ANALYST)
                .e422("`validation_error`: a bad `limit` or an unknown query parameter"),
        ),
        (
            "/api/v1/admin/ledger-check",
            "get",
            Op::new("ledgerCheck", "admin", "Rebuild every balance from the ledger and report differences")
                .resp("200", ok("the report; any difference is a bug", r("LedgerCheck")))
                .e403(ADMIN_ANALYST),
        ),
    ]
}

fn member_ops() -> Vec<(&'static str, &'static str, Op)> {
    let id = || path_param("id", "member id");
    vec![
        (
            "/api/v1/members",
            "post",
            Op::new("createMember", "members", "Enrol a member")
                .describe("Answers the member unmasked with its `card_number` and `qr_token`, also to a pos key.")
                .json_body(r("MemberInput"))
                .resp("201", ok("the new member", r("MemberCreated")))
                .e400()
                .e403(ADMIN_POS)
                .e409("`member_exists`: the email, phone or external_id is already used")
                .e422(VALIDATION),
        ),
        (
            "/api/v1/members",
            "get",
            Op::new("listMembers", "members", "List members")
                .param(limit(100, 1000))
                .param(query("cursor", "`next_cursor` of the previous page", string()))
                .resp("200", ok("a page of members", r("MemberPage")))
                .e403(ADMIN_ANALYST)
                .e422("`validation_error`: a bad `limit` or an unknown query parameter"),
        ),
        (
            "/api/v1/members/import",
            "post",
            Op::new("importMembers", "members", "Import members from CSV (all or nothing)")
                .describe(
                    "Header row required, columns in any order: card_number, external_id, phone, email, name, birthday, \
                     consent_personal_data, consent_marketing, points, points_expires_at. Any rejected row rejects the \
                     whole file with 422 `import_rejected`, naming each row in `fields`.",
                )
                .body(json!({"required": true, "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}},
                }}))
                .resp("200", ok("everything was imported", r("ImportReport")))
                .e403(ADMIN_ONLY)
                .e409("`member_exists`: a member was enrolled with the same identifier meanwhile")
                .e422("`validation_error` (bad header, unknown column, no rows) or `import_rejected`"),
        ),
        (
            "/api/v1/members/lookup",
            "post",
            Op::new("lookupMember", "members", "Find a member by one identifier")
                .describe("Pos keys get phone and email masked and no qr_token or birthday, and are rate limited.")
                .json_body(r("LookupInput"))
                .resp("200", ok("the member", r("Member")))
                .e400()
                .e404("`member_not_found`")
                .e422("`validation_error`: not exactly one identifier, or a bad one")
                .resp("429", err("`rate_limited`: too many lookups by this pos key")),
        ),
        (
            "/api/v1/members/{id}",
            "get",
            Op::new("getMember", "members", "Read a member")
                .describe("Pos keys get phone and email masked and no qr_token or birthday.")
                .param(id())
                .resp("200", ok("the member", r("Member")))
                .e404("`not_found`: no such member"),
        ),
        (
            "/api/v1/members/{id}/balance",
            "get",
            Op::new("getMemberBalance", "members", "Read a member's balance")
                .param(id())
                .resp("200", ok("the balance", r("MemberBalance")))
                .e404("`not_found`: no such member"),
        ),
        (
            "/api/v1/members/{id}/ledger",
            "get",
            Op::new("getMemberLedger", "members", "Read a member's ledger, newest first")
                .param(id())
                .param(limit(50, 500))
                .param(query("cursor", "`next_cursor` of the previous page", json!({"type": "string", "pattern": "^0*[1-9][0-9]{0,17}$"})))
                .resp("200", ok("a page of ledger entries", r("LedgerPage")))
                .e403(ADMIN_ANALYST)
                .e404("`not_found`: no such member")
                .e422("`validation_error`: a bad `limit` or `cursor`, or an unknown query parameter"),
        ),
        (
            "/api/v1/members/{id}/history",
            "get",
            Op::new("getMemberHistory", "members", "Read a member's history events (enrolment, tier changes)")
                .param(id())
                .param(limit(100, 1000))
                .resp("200", ok("events", r("HistoryList")))
                .e403(ADMIN_ANALYST)
                .e404("`not_found`: no such member")
                .e422("`validation_error`: a bad `limit` or an unknown query parameter"),
        ),
        (
            "/api/v1/members/{id}/adjustments",
            "post",
            Op::new("createAdjustment", "members", "Adjust a member's points")
                .describe("Audited. Idempotent on `adjustment_id`, tenant-wide.")
                .param(id())
                .json_body(r("AdjustmentInput"))
                .resp("201", ok("the adjustment", r("Adjustment")))
                .e400()
                .e403(ADMIN_ONLY)
                .e404("`not_found`: no such member")
                .e409("`adjustment_conflict`: the adjustment_id was used with another body")
                .e422("`validation_error`, or `insufficient_points` (the balance would go below zero)"),
        ),
        (
            "/api/v1/members/{id}/transfers",
            "post",
            Op::new("createTransfer", "members", "Transfer points to another member")
                .describe("Moves available points; they keep their lots' expiry. Idempotent on `transfer_id`.")
                .param(id())
                .json_body(r("TransferInput"))
                .resp("201", ok("the transfer", r("Transfer")))
                .e400()
                .e403(ADMIN_ONLY)
                .e404("`not_found` (no such member) or `member_not_found` (no such recipient)")
                .e409("`transfer_conflict`: the transfer_id was used with another body")
                .e422("`validation_error`, or `insufficient_points`"),
        ),
    ]
}

fn pos_ops() -> Vec<(&'static str, &'static str, Op)> {
    let receipt_op = |id: &'static str, summary: &'static str, description: &'static str, ok_desc: &'static str| {
        Op::new(id, "pos", summary)
            .describe(description)
            .json_body(r("PosRequest"))
            .resp("200", ok(ok_desc, r("ReceiptAnswer")))
            .e400()
            .resp("403", err("`forbidden` (only admin and pos keys) or `store_mismatch` (the key is bound to another store or till)"))
            .e404("`store_not_found` or `member_not_found`")
            .e409("`receipt_conflict`: the ids were used with another body, or the receipt is committed")
            .e422(
                "`validation_error`, `occurred_at_out_of_range`, `member_required`, `coupon_not_found`, \
                 `redeem_auth_required`, `insufficient_points`, `redeem_limit_exceeded` or `insufficient_wallet`",
            )
            .resp("429", err("`rate_limited`: too many unknown coupon codes from this key in the last minute"))
    };
    vec![
        (
            "/api/v1/pos/quote",
            "post",
            receipt_op(
                "quote",
                "Quote a receipt (computes, writes nothing)",
                "`status` is `quoted`; `balance` is what the balance will be after checkout.",
                "the computed receipt",
            ),
        ),
        (
            "/api/v1/pos/reserve",
            "post",
            receipt_op(
                "reserve",
                "Reserve: compute and hold the points to be spent",
                "`status` is `held`, with `hold_id` and `expires_at`. The same reserve again returns the same hold.",
                "the held receipt",
            ),
        ),
        (
            "/api/v1/pos/checkout",
            "post",
            receipt_op(
                "checkout",
                "Check out (commit) a receipt",
                "Idempotent on (store, till_id, receipt_id): the same body again returns the same answer. Commits a \
                 reserved receipt with the same body.",
                "the committed receipt",
            ),
        ),
        (
            "/api/v1/pos/cancel",
            "post",
            Op::new("cancel", "pos", "Cancel a receipt: release a hold, or void a committed receipt")
                .json_body(r("CancelRequest"))
                .resp("200", ok("the hold is released or the receipt is cancelled", r("CancelAnswer")))
                .e400()
                .resp("403", err("`forbidden` (only admin and pos keys) or `store_mismatch`"))
                .e404("`not_found` (no such receipt) or `member_not_found`")
                .e409("`cancel_not_possible`: part of it was refunded, or the earned points were spent; use a refund")
                .e422(VALIDATION),
        ),
        (
            "/api/v1/pos/refund",
            "post",
            Op::new("refund", "pos", "Refund lines of a committed receipt")
                .describe("Idempotent on (store, refund_id). Leaving `items` out refunds everything that is left.")
                .json_body(r("RefundRequest"))
                .resp("200", ok("the refund", r("RefundAnswer")))
                .e400()
                .resp("403", err("`forbidden` (only admin and pos keys) or `store_mismatch`"))
                .e404("`store_not_found`, `not_found` (no such receipt) or `member_not_found`")
                .e409("`refund_conflict` (refund_id used with another body) or `receipt_not_refundable` (held or cancelled)")
                .e422(
                    "`validation_error`, `occurred_at_out_of_range`, `line_not_found`, `ambiguous_line` or \
                     `refund_exceeds_purchase`",
                ),
        ),
        (
            "/api/v1/pos/receipts/{receipt_id}",
            "get",
            Op::new("getReceipt", "pos", "Read a receipt: its stored answer, refunds and status")
                .param(path_param("receipt_id", "the till's receipt id"))
                .param(query("till_id", "the receipt's till (default empty; a till-bound pos key implies it)", string()))
                .param(query("store_id", "the receipt's store: required for admin and analyst keys", string()))
                .resp("200", ok("the receipt", r("ReceiptRead")))
                .resp("403", err("`store_mismatch`: the key is bound to another store or till"))
                .e404("`not_found`: no such receipt")
                .e422("`validation_error`: `store_id` missing for an unbound key, or an unknown query parameter"),
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// Schemas.

fn schemas() -> Value {
    let mut s = Map::new();
    for part in
        [common_schemas(), program_schemas(), account_schemas(), member_schemas(), pos_schemas(), rewards::schemas(), campaigns::schemas()]
    {
        if let Value::Object(m) = part {
            s.extend(m);
        }
    }
    Value::Object(s)
}

fn common_schemas() -> Value {
    json!({
        "Error": {
            "type": "object",
            "description": "The envelope of every non-2xx answer.",
            "required": ["error"],
            "properties": {
                "error": object(&["code", "message", "fields", "request_id"], json!({
                    "code": describe(string(), "stable snake_case code, e.g. validation_error"),
                    "message": describe(string(), "human text"),
                    "fields": {
                        "type": "object",
                        "description": "field path to what is wrong with it (for validation_error)",
                        "additionalProperties": {"type": "string"},
                    },
                    "request_id": describe(string(), "also in the x-request-id header"),
                })),
            },
        },
        "Health": object(&["status"], json!({"status": {"type": "string", "enum": ["ok", "unavailable"]}})),
        "Balance": balance(),
        "Quantity": {
            "description": "A positive integer (counted units) or a decimal string with at most 3 decimals (a measured quantity).",
            "oneOf": [
                int_range(1, MAX),
                {"type": "string", "pattern": DECIMAL},
            ],
        },
    })
}

/// A member's balance after an operation (inline where it may be null).
fn balance() -> Value {
    describe(
        object(
            &["points", "held", "pending", "debt"],
            json!({
                "points": describe(int(), "available points, held points included"),
                "held": int(),
                "pending": int(),
                "debt": int(),
            }),
        ),
        "A member's balance after the operation.",
    )
}

fn program_schemas() -> Value {
    let tier_in = strict(
        &["code", "min_spend_minor"],
        json!({
            "code": text(64),
            "name": describe(string(), "defaults to the code"),
            "min_spend_minor": int_range(0, MAX),
            "earn_multiplier_bp": int_range(0, 1_000_000),
            "discount_bp": int_range(0, 10_000),
        }),
    );
    let expiry_in = json!({
        "oneOf": [
            strict(&["policy"], json!({"policy": {"type": "string", "enum": ["never"]}})),
            strict(&["policy", "days"], json!({"policy": {"type": "string", "enum": ["rolling_days"]}, "days": int_range(1, 36_500)})),
            strict(&["policy", "period", "periods"], json!({
                "policy": {"type": "string", "enum": ["end_of_period"]},
                "period": {"type": "string", "enum": ["month", "year"]},
                "periods": int_range(1, 36_500),
            })),
        ],
    });
    let categories_in = json!({"type": "array", "items": {"type": "string", "maxLength": 100}});
    let program_in = strict(
        &[],
        json!({
            "version": {"readOnly": true, "description": "read-only; ignored"},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217, default RUB"},
            "time_zone": describe(string(), "IANA time zone, default UTC"),
            "earn": strict(&[], json!({
                "points_per_unit": int_range(0, MAX),
                "unit_minor": int_range(1, MAX),
                "rounding": {"type": "string", "enum": ["floor", "half_up", "ceil"]},
            })),
            "redeem": strict(&[], json!({
                "point_value_minor": int_range(1, MAX),
                "max_share_bp": int_range(0, 10_000),
                "min_balance": int_range(0, MAX),
                "auth": {"type": "string", "enum": ["none", "qr", "qr_or_otp"]},
                "hold_ttl_s": int_range(1, 86_400),
            })),
            "no_earn_categories": categories_in.clone(),
            "no_discount_categories": categories_in,
            "pending_days": int_range(0, 3_650),
            "expiry": expiry_in,
            "tier_window_days": int_range(1, 36_500),
            "offline_max_age_days": int_range(0, 36_500),
            "tiers": {"type": "array", "maxItems": 50, "items": tier_in, "description": "codes and min_spend_minor must be unique"},
        }),
    );

    let tier = object(
        &["code", "name", "min_spend_minor", "earn_multiplier_bp", "discount_bp"],
        json!({
            "code": string(), "name": string(), "min_spend_minor": int(), "earn_multiplier_bp": int(), "discount_bp": int(),
        }),
    );
    let expiry = object(
        &["policy"],
        json!({
            "policy": {"type": "string", "enum": ["never", "rolling_days", "end_of_period"]},
            "days": int(),
            "period": {"type": "string", "enum": ["month", "year"]},
            "periods": int(),
        }),
    );
    let config = object(
        &[
            "currency",
            "time_zone",
            "earn",
            "redeem",
            "no_earn_categories",
            "no_discount_categories",
            "pending_days",
            "expiry",
            "tier_window_days",
            "offline_max_age_days",
            "tiers",
        ],
        json!({
            "currency": string(),
            "time_zone": string(),
            "earn": object(&["points_per_unit", "unit_minor", "rounding"], json!({
                "points_per_unit": int(), "unit_minor": int(),
                "rounding": {"type": "string", "enum": ["floor", "half_up", "ceil"]},
            })),
            "redeem": object(&["point_value_minor", "max_share_bp", "min_balance", "auth", "hold_ttl_s"], json!({
                "point_value_minor": int(), "max_share_bp": int(), "min_balance": int(),
                "auth": {"type": "string", "enum": ["none", "qr", "qr_or_otp"]}, "hold_ttl_s": int(),
            })),
            "no_earn_categories": array(string()),
            "no_discount_categories": array(string()),
            "pending_days": int(),
            "expiry": expiry,
            "tier_window_days": int(),
            "offline_max_age_days": int(),
            "tiers": array(tier),
        }),
    );
    json!({
        "ProgramInput": describe(program_in, "A programme; fields left out take the defaults."),
        "ProgramConfig": config,
        "Program": {"allOf": [r("ProgramConfig"), object(&["version"], json!({"version": int()}))]},
        "TemplateList": object(&["templates"], json!({"templates": array(object(&["name", "program"], json!({
            "name": {"type": "string", "enum": ["retail", "discount", "cafe", "fuel", "travel", "entertainment"]},
            "program": r("ProgramConfig"),
        })))})),
    })
}

fn account_schemas() -> Value {
    json!({
        "StoreInput": strict(&["code", "name"], json!({
            "code": text(64),
            "name": text(200),
            "time_zone": describe(text(64), "IANA time zone; defaults to the programme's"),
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "lon": {"type": "number", "minimum": -180, "maximum": 180},
            "id": {"readOnly": true, "description": "read-only; ignored"},
            "created_at": {"readOnly": true, "description": "read-only; ignored"},
        })),
        "Store": object(&["id", "code", "name", "time_zone", "created_at"], json!({
            "id": string(),
            "code": string(),
            "name": string(),
            "time_zone": string(),
            "lat": describe(json!({"type": "number"}), "the latitude, the number as sent"),
            "lon": describe(json!({"type": "number"}), "the longitude, the number as sent"),
            "created_at": time(),
        })),
        "StoreList": object(&["stores"], json!({"stores": array(r("Store"))})),
        "ApiKeyInput": strict(&["role"], json!({
            "role": {"type": "string", "enum": ["admin", "pos", "analyst"]},
            "store_id": describe(text(64), "required for a pos key; only pos keys take it"),
            "till_id": describe(text(64), "only pos keys take it"),
            "expires_at": describe(time(), "must be in the future"),
            "label": text(200),
        })),
        "ApiKey": object(&["id", "role", "store_id", "till_id", "label", "expires_at", "revoked_at", "created_at"], json!({
            "id": string(),
            "role": {"type": "string", "enum": ["admin", "pos", "analyst"]},
            "store_id": nullable(string()),
            "till_id": nullable(string()),
            "label": nullable(string()),
            "expires_at": nullable(time()),
            "revoked_at": nullable(time()),
            "created_at": time(),
        })),
        "ApiKeyCreated": {"allOf": [r("ApiKey"), object(&["key"], json!({"key": describe(string(), "the secret; shown once")}))]},
        "ApiKeyList": object(&["api_keys"], json!({"api_keys": array(r("ApiKey"))})),
        "ApiKeyRevoked": object(&["id", "revoked"], json!({"id": string(), "revoked": boolean()})),
        "AuditList": object(&["entries"], json!({"entries": array(object(
            &["id", "actor", "action", "object_type", "object_id", "details", "created_at"],
            json!({
                "id": string(), "actor": string(), "action": string(), "object_type": string(), "object_id": string(),
                "details": {"type": "object"}, "created_at": time(),
            }),
        ))})),
        "LedgerCheck": object(&["members_checked", "differences"], json!({
            "members_checked": int(),
            "differences": array(object(&["tenant_id", "member_id", "what", "stored", "rebuilt"], json!({
                "tenant_id": string(), "member_id": string(), "what": string(), "stored": int(), "rebuilt": int(),
            }))),
        })),
    })
}

/// A phone number as a request may send it: E.164, or a national Russian number with the
/// spaces, dashes, dots and brackets people write (`8 912 345-67-89`); the server
/// normalises it to E.164 (`identity::normalize_phone`) and answers 422 when it cannot.
pub(crate) const PHONE_IN: &str = "^\\s*\\+?[0-9 ().-]*[0-9][0-9 ().-]*\\s*$";

fn phone() -> Value {
    json!({
        "type": "string",
        "maxLength": 32,
        "pattern": PHONE_IN,
        "description": "E.164, e.g. +79123456789; a number without a country code is taken as Russian",
    })
}

fn member_schemas() -> Value {
    let consents_in = strict(
        &[],
        json!({
            "personal_data": boolean(), "marketing": boolean(), "sms": boolean(), "email": boolean(), "push": boolean(),
        }),
    );
    json!({
        "MemberInput": strict(&[], json!({
            "external_id": text(128),
            "email": {"type": "string", "format": "email", "minLength": 1, "maxLength": 254},
            "phone": phone(),
            "name": text(200),
            "birthday": {"type": "string", "format": "date", "maxLength": 10, "description": "a past date, YYYY-MM-DD"},
            "referral_code": text(64),
            "consents": consents_in,
            "id": {"readOnly": true, "description": "read-only; ignored"},
            "card_number": {"readOnly": true, "description": "read-only; ignored (a new member gets a fresh one)"},
            "qr_token": {"readOnly": true, "description": "read-only; ignored (a new member gets a fresh one)"},
            "created_at": {"readOnly": true, "description": "read-only; ignored"},
        })),
        "Member": object(
            &["id", "card_number", "external_id", "name", "phone", "email", "referral_code", "consents", "created_at"],
            json!({
                "id": string(),
                "card_number": string(),
                "external_id": nullable(string()),
                "name": nullable(string()),
                "phone": nullable(describe(string(), "masked for pos keys")),
                "email": nullable(describe(string(), "masked for pos keys")),
                "referral_code": nullable(string()),
                "consents": {
                    "type": "object",
                    "additionalProperties": object(&["granted", "source", "recorded_at"], json!({
                        "granted": boolean(), "source": string(), "recorded_at": time(),
                    })),
                },
                "created_at": time(),
                "qr_token": describe(string(), "left out for pos keys"),
                "birthday": nullable(describe(string(), "YYYY-MM-DD; left out for pos keys")),
            }),
        ),
        "MemberCreated": {"allOf": [r("Member"), object(&["qr_token"], json!({
            "qr_token": string(),
            "birthday": nullable(describe(string(), "left out for pos keys")),
        }))]},
        "MemberPage": object(&["members", "next_cursor"], json!({
            "members": array(r("Member")),
            "next_cursor": nullable(string()),
        })),
        "LookupInput": {
            "type": "object",
            "description": "Exactly one identifier.",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": false,
            "properties": {
                "card_number": text(19),
                "phone": phone(),
                "email": text(254),
                "external_id": text(128),
                "qr_token": text(128),
            },
        },
        "MemberBalance": object(
            &[
                "member_id", "points", "held", "pending", "debt", "available", "tier", "tier_spend_minor", "next_tier",
                "lifetime_earned", "expiring",
            ],
            json!({
                "member_id": string(),
                "points": describe(int(), "held points included"),
                "held": int(),
                "pending": int(),
                "debt": int(),
                "available": int(),
                "tier": nullable(string()),
                "tier_spend_minor": int(),
                "next_tier": nullable(object(&["code", "name", "spend_needed_minor"], json!({
                    "code": string(), "name": string(), "spend_needed_minor": int(),
                }))),
                "lifetime_earned": int(),
                "expiring": array(object(&["points", "expires_at"], json!({"points": int(), "expires_at": time()}))),
            }),
        ),
        "LedgerEntry": object(&["id", "kind", "points", "created_at", "occurred_at"], json!({
            "id": string(),
            "kind": {"type": "string", "enum": [
                "earn", "redeem", "reverse_earn", "return_redeem", "expire", "adjust", "transfer_in", "transfer_out", "bonus",
            ]},
            "points": int(),
            "created_at": time(),
            "occurred_at": time(),
            "receipt_id": string(),
            "reason": string(),
        })),
        "LedgerPage": object(&["entries", "next_cursor"], json!({
            "entries": array(r("LedgerEntry")),
            "next_cursor": nullable(string()),
        })),
        "HistoryList": object(&["events"], json!({"events": array(describe(
            object(&["id", "kind", "occurred_at"], json!({"id": string(), "kind": string(), "occurred_at": time()})),
            "`enrolled` (with `source`) or `tier_changed` (with `from`, `to`, `direction`, `tier_spend_minor`)",
        ))})),
        "AdjustmentInput": strict(&["points", "reason"], json!({
            "points": {"type": "integer", "format": "int64", "minimum": -MAX, "maximum": MAX, "not": {"enum": [0]},
                       "description": "not 0; negative removes points"},
            "reason": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S"},
            "adjustment_id": text(128),
        })),
        "Adjustment": object(
            &["id", "adjustment_id", "member_id", "points", "reason", "actor", "created_at", "balance"],
            json!({
                "id": string(),
                "adjustment_id": nullable(string()),
                "member_id": string(),
                "points": int(),
                "reason": string(),
                "actor": string(),
                "created_at": time(),
                "balance": r("Balance"),
            }),
        ),
        "TransferInput": strict(&["to_member_id", "points", "transfer_id"], json!({
            "to_member_id": text(64),
            "points": int_range(1, MAX),
            "transfer_id": text(128),
        })),
        "Transfer": object(
            &["id", "transfer_id", "from_member_id", "to_member_id", "points", "created_at", "balance"],
            json!({
                "id": string(),
                "transfer_id": string(),
                "from_member_id": string(),
                "to_member_id": string(),
                "points": int(),
                "created_at": time(),
                "balance": describe(r("Balance"), "the sender's balance"),
            }),
        ),
        "ImportReport": object(&["rows", "imported", "points_imported", "rejected"], json!({
            "rows": int(),
            "imported": int(),
            "points_imported": int(),
            "rejected": array(object(&["row", "reason"], json!({"row": int(), "reason": string()}))),
        })),
    })
}

fn pos_schemas() -> Value {
    let item = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["quantity"],
        "anyOf": [{"required": ["unit_price_minor"]}, {"required": ["total_minor"]}],
        "properties": {
            "line_no": describe(int_range(1, MAX), "defaults to the line's position from 1; unique"),
            "sku": text(128),
            "name": text(256),
            "category": text(100),
            "quantity": r("Quantity"),
            "unit_price_minor": int_range(0, MAX),
            "total_minor": describe(int_range(0, MAX), "the till's authoritative line total"),
            "discount": boolean(),
            "earn": boolean(),
        },
    });
    let refund_item = json!({
        "type": "object",
        "additionalProperties": false,
        "anyOf": [{"required": ["line_no"]}, {"required": ["sku"]}],
        "properties": {
            "line_no": int_range(1, MAX),
            "sku": text(128),
            "quantity": describe(r("Quantity"), "left out: the rest of the line"),
        },
    });
    let split = json!({"oneOf": [
        object(&["quantity", "unit_price_minor"], json!({"quantity": int(), "unit_price_minor": int()})),
        object(&["quantity", "total_minor"], json!({"quantity": {"type": "string", "pattern": DECIMAL}, "total_minor": int()})),
    ]});
    let line = object(
        &[
            "line_no",
            "sku",
            "quantity",
            "total_minor",
            "discount_minor",
            "redeemed_minor",
            "points_redeemed",
            "payable_minor",
            "points_earned",
            "fiscal_splits",
        ],
        json!({
            "line_no": int(),
            "sku": nullable(string()),
            "quantity": r("Quantity"),
            "total_minor": int(),
            "discount_minor": int(),
            "redeemed_minor": int(),
            "points_redeemed": int(),
            "payable_minor": int(),
            "points_earned": int(),
            "fiscal_splits": array(split),
            "wallet_minor": describe(int(), "cashback wallet money spent on this line; left out when 0"),
            "cashback_minor": describe(int(), "cashback this line earned; left out when 0"),
        }),
    );
    json!({
        "MemberRef": {
            "type": "object",
            "description": "Exactly one identifier.",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": false,
            "properties": {
                "card_number": text(19),
                "phone": phone(),
                "member_id": text(64),
                "qr_token": text(128),
            },
        },
        "PosItem": item,
        "RedeemPoints": {
            "description": "Points to spend: an integer, or \"max\".",
            "oneOf": [int_range(0, MAX), {"type": "string", "enum": ["max"]}],
        },
        "PosRequest": strict(&["receipt_id", "items"], json!({
            "receipt_id": text(128),
            "till_id": {"type": "string", "maxLength": 64, "description": "default \"\" (or the key's till)"},
            "store_id": describe(text(64), "required for admin keys; a pos key implies its store"),
            "member": describe(r("MemberRef"), "left out: an anonymous receipt"),
            "items": {"type": "array", "minItems": 1, "maxItems": 1000, "items": r("PosItem")},
            "redeem_points": r("RedeemPoints"),
            "redeem_wallet_minor": describe(
                json!({"oneOf": [int_range(0, MAX), {"type": "string", "enum": ["max"]}]}),
                "cashback wallet money to spend: an integer in minor units, or \"max\"; needs an identified member",
            ),
            "coupons": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 64},
                "description": "coupon codes (case and surrounding spaces ignored); at most one per campaign",
            },
            "occurred_at": describe(time(), "defaults to now; must lie in the offline window"),
            "otp": text(16),
        })),
        "ReceiptLine": line,
        "ReceiptAnswer": object(
            &[
                "receipt_id", "till_id", "store_id", "member_id", "status", "tier", "program_version", "total_minor",
                "discount_minor", "points_redeemed", "redeemed_minor", "payable_minor", "points_earned", "points_pending",
                "balance", "lines", "applied", "not_applied",
            ],
            json!({
                "receipt_id": string(),
                "till_id": string(),
                "store_id": string(),
                "member_id": nullable(describe(string(), "null on an anonymous receipt")),
                "status": {"type": "string", "enum": ["quoted", "held", "committed", "cancelled", "partially_refunded", "refunded"]},
                "tier": nullable(string()),
                "program_version": int(),
                "total_minor": int(),
                "discount_minor": int(),
                "points_redeemed": int(),
                "redeemed_minor": int(),
                "payable_minor": int(),
                "points_earned": int(),
                "points_pending": int(),
                "balance": nullable(describe(balance(), "null on an anonymous receipt")),
                "lines": array(r("ReceiptLine")),
                "applied": array(campaigns::applied_entry()),
                "not_applied": describe(
                    array(campaigns::not_applied_entry()),
                    "the nearest misses, at most 5, closest to applying first",
                ),
                "wallet_minor": describe(int(), "cashback wallet money spent; left out when 0"),
                "cashback_minor": describe(int(), "cashback earned into the wallet; left out when 0"),
                "wallet": describe(campaigns::wallet_state(), "the member's cashback wallet after checkout, when it moved"),
                "hold_id": describe(string(), "reserved receipts"),
                "expires_at": describe(time(), "when the hold ends (held receipts)"),
            }),
        ),
        "ReceiptRead": {"allOf": [r("ReceiptAnswer"), object(&["refunds", "occurred_at"], json!({
            "refunds": array(r("RefundAnswer")),
            "occurred_at": time(),
        }))]},
        "CancelRequest": strict(&["receipt_id"], json!({
            "receipt_id": text(128),
            "till_id": {"type": "string", "maxLength": 64},
            "store_id": describe(text(64), "required for admin keys"),
        })),
        "CancelAnswer": object(&["receipt_id", "till_id", "store_id", "member_id", "status"], json!({
            "receipt_id": string(),
            "till_id": string(),
            "store_id": string(),
            "member_id": nullable(string()),
            "status": {"type": "string", "enum": ["released", "cancelled"]},
            "balance": nullable(describe(balance(), "null on an anonymous receipt; left out when it was already cancelled")),
            "wallet": describe(campaigns::wallet_state(), "the cashback wallet after the void, when it moved"),
        })),
        "RefundItem": refund_item,
        "RefundRequest": strict(&["receipt_id", "refund_id"], json!({
            "receipt_id": text(128),
            "till_id": {"type": "string", "maxLength": 64, "description": "the original receipt's till"},
            "original_store_id": describe(text(64), "the original receipt's store; defaults to the refunding store"),
            "store_id": describe(text(64), "the refunding store: required for admin keys"),
            "refund_id": text(128),
            "items": {"type": "array", "minItems": 1, "items": r("RefundItem"), "description": "left out: everything left"},
            "occurred_at": time(),
        })),
        "RefundAnswer": object(
            &[
                "refund_id", "receipt_id", "store_id", "occurred_at", "refund_minor", "withheld_minor", "points_reversed",
                "points_returned", "debt_added", "lines", "balance",
            ],
            json!({
                "refund_id": string(),
                "receipt_id": string(),
                "store_id": string(),
                "occurred_at": time(),
                "refund_minor": int(),
                "withheld_minor": int(),
                "points_reversed": int(),
                "points_returned": int(),
                "debt_added": int(),
                "lines": array(object(&["line_no", "quantity", "refund_minor", "withheld_minor"], json!({
                    "line_no": int(),
                    "quantity": r("Quantity"),
                    "refund_minor": int(),
                    "withheld_minor": int(),
                }))),
                "balance": nullable(describe(balance(), "null on an anonymous receipt")),
                "wallet_returned_minor": describe(int(), "cashback wallet money given back; with `wallet`"),
                "cashback_reversed_minor": describe(int(), "cashback taken back from the wallet; with `wallet`"),
                "wallet": describe(campaigns::wallet_state(), "the cashback wallet after the refund, when the receipt used it"),
            }),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    const METHODS: &[&str] = &["get", "post", "put", "delete", "patch", "head", "options", "trace"];

    /// Read a string literal starting at `s` (after leading whitespace): (contents, rest).
    fn literal(s: &str) -> (&str, &str) {
        let s = s.trim_start();
        assert!(s.starts_with('"'), "expected a string literal at {:?}", &s[..s.len().min(40)]);
        let end = s[1..].find('"').expect("closed literal") + 1;
        (&s[1..end], &s[end + 1..])
    }

    /// The text of a call's arguments up to its closing parenthesis (`s` starts just after
    /// the opening one).
    fn args(s: &str) -> &str {
        let mut depth = 1;
        let mut in_str = false;
        for (i, c) in s.char_indices() {
            match c {
                '"' => in_str = !in_str,
                '(' if !in_str => depth += 1,
                ')' if !in_str => {
                    depth -= 1;
                    if depth == 0 {
                        return &s[..i];
                    }
                }
                _ => {}
            }
        }
        panic!("unbalanced call: {s}")
    }

    /// Method names called at the top level of a method router expression, e.g.
    /// `get(admin::get_program).put(admin::put_program)` gives get and put.
    fn methods(expr: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut depth = 0;
        let mut ident = String::new();
        for c in expr.chars() {
            match c {
                '(' => {
                    if depth == 0 {
                        let name = ident.rsplit("::").next().unwrap_or("");
                        if METHODS.contains(&name) {
                            out.push(name.to_owned());
                        }
                    }
                    depth += 1;
                    ident.clear();
                }
                ')' => {
                    depth -= 1;
                    ident.clear();
                }
                c if c.is_ascii_alphanumeric() || c == '_' || c == ':' => ident.push(c),
                c if c.is_whitespace() => {}
                _ => ident.clear(),
            }
        }
        out
    }

    /// Every (METHOD, path) that `router()` in mod.rs declares, with `.nest` prefixes applied.
    fn router_routes() -> BTreeSet<(String, String)> {
        let src: String = include_str!("mod.rs").lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let start = src.find("pub fn router_with(").expect("router_with() in mod.rs");
        let body = &src[start..start + src[start..].find("\n}\n").expect("end of router_with()")];

        // `.nest("/prefix", name)`: the routes of the `let name = ...;` statement get the prefix.
        let mut prefixes: BTreeMap<String, String> = BTreeMap::new();
        for (i, _) in body.match_indices(".nest(") {
            let a = args(&body[i + ".nest(".len()..]);
            let (prefix, rest) = literal(a);
            let name = rest.trim_start().trim_start_matches(',').trim();
            prefixes.insert(name.to_owned(), prefix.to_owned());
        }

        let mut routes = BTreeSet::new();
        // The cards routes merged into `api` (http/cards.rs `api_routes`).
        let cards = include_str!("cards.rs");
        let start = cards.find("pub fn api_routes(").expect("api_routes() in cards.rs");
        let cards_body = &cards[start..start + cards[start..].find("\n}\n").expect("end of api_routes()")];
        for (i, _) in cards_body.match_indices(".route(") {
            let (path, rest) = literal(args(&cards_body[i + ".route(".len()..]));
            for m in methods(rest.trim_start().strip_prefix(',').expect("route(path, methods)")) {
                routes.insert((m.to_uppercase(), format!("/api/v1{path}")));
            }
        }
        for (i, _) in body.match_indices(".route(") {
            let a = args(&body[i + ".route(".len()..]);
            let (path, rest) = literal(a);
            let expr = rest.trim_start().strip_prefix(',').expect("route(path, methods)");
            let found = methods(expr);
            assert!(!found.is_empty(), "no method in route {path}: {expr}");
            // The statement this call belongs to: the last `let` before it, unless a `;`
            // ended that statement first.
            let before = &body[..i];
            let prefix = before
                .rfind("let ")
                .filter(|l| !before[*l..].contains(';'))
                .and_then(|l| {
                    let name: String = before[l + 4..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    prefixes.get(&name).cloned()
                })
                .unwrap_or_default();
            for m in found {
                routes.insert((m.to_uppercase(), format!("{prefix}{path}")));
            }
        }
        routes
    }

    fn documented(doc: &Value) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                assert!(METHODS.contains(&method.as_str()), "{path}: {method} is not an HTTP method");
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
        out
    }

    #[test]
    fn openapi_router_parser_reads_chained_methods() {
        assert_eq!(methods(" get(admin::get_program).put(admin::put_program)"), ["get", "put"]);
        assert_eq!(methods(" axum::routing::post(f).get(g)"), ["post", "get"]);
        assert_eq!(methods(" delete(a::b(c))"), ["delete"]);
    }

    #[test]
    fn openapi_documents_every_route_of_the_router() {
        let routes = router_routes();
        assert!(routes.len() >= 30, "the router parser found too few routes: {routes:?}");
        assert!(routes.contains(&("GET".into(), "/api/v1/openapi.json".into())));
        assert!(routes.contains(&("PUT".into(), "/api/v1/program".into())));
        assert!(routes.contains(&("GET".into(), "/healthz".into())));
        let doc = spec();
        let documented = documented(&doc);
        let missing: Vec<_> = routes.difference(&documented).collect();
        assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
        let stale: Vec<_> = documented.difference(&routes).collect();
        assert!(stale.is_empty(), "documented operations that router() does not serve: {stale:?}");
    }

    fn walk<'a>(v: &'a Value, at: String, f: &mut dyn FnMut(&str, &'a Value)) {
        f(&at, v);
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, format!("{at}/{k}"), f)),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(x, format!("{at}/{i}"), f)),
            _ => {}
        }
    }

    #[test]
    fn openapi_refs_resolve_and_every_schema_is_used() {
        let doc = spec();
        let mut refs = BTreeSet::new();
        walk(&doc, String::new(), &mut |at, v| {
            if let Some(m) = v.as_object()
                && let Some(r) = m.get("$ref")
            {
                let r = r.as_str().unwrap_or_else(|| panic!("{at}: $ref is not a string"));
                assert!(r.starts_with("#/components/"), "{at}: $ref {r} does not point into components");
                assert!(doc.pointer(&r[1..]).is_some(), "{at}: $ref {r} does not resolve");
                assert_eq!(m.len(), 1, "{at}: keywords beside a $ref are ignored in OpenAPI 3.0");
                refs.insert(r.to_owned());
            }
        });
        assert!(refs.contains("#/components/schemas/Error"));
        for name in doc["components"]["schemas"].as_object().expect("schemas").keys() {
            assert!(refs.contains(&format!("#/components/schemas/{name}")), "schema {name} is never used");
        }
    }

    /// The phone pattern takes every way of writing a number that the server normalises.
    #[test]
    fn the_phone_pattern_takes_what_the_server_takes() {
        let re = regex::Regex::new(PHONE_IN).expect("the pattern compiles");
        for p in ["8 912 345-67-89", "+79123456789", "+7 (912) 345-67-89", "9123456789", " 8.912.345.67.89 ", "+44 20 7946 0958"] {
            assert!(kopilka_domain::identity::normalize_phone(p).is_ok(), "the server takes {p}");
            assert!(re.is_match(p), "the pattern refuses {p:?}, which the server takes");
        }
        for p in ["", "abc", "+", "phone: 123"] {
            assert!(!re.is_match(p), "the pattern takes {p:?}");
        }
    }

    /// The till's one-time code request names its member as every till request does.
    #[test]
    fn the_otp_member_is_a_member_reference() {
        let doc = spec();
        let schema = &doc["paths"]["/api/v1/pos/otp"]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(schema["properties"]["member"], json!({"$ref": "#/components/schemas/MemberRef"}), "{schema}");
    }

    #[test]
    fn openapi_document_structure() {
        let doc = spec();
        assert_eq!(doc["openapi"], "3.0.3");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
        assert_eq!(doc["security"], json!([{"bearer": []}]));
        let paths = doc["paths"].as_object().expect("paths");
        assert!(!paths.is_empty());
        let mut ids = BTreeSet::new();
        let mut public = BTreeSet::new();
        let declared_tags: BTreeSet<&str> = doc["tags"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();
        for (path, item) in paths {
            assert!(path.starts_with('/'), "{path}");
            let params: Vec<&str> = path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
            for (method, op) in item.as_object().expect("path item") {
                let at = format!("{method} {path}");
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{at}: operationId"));
                assert!(ids.insert(id.to_owned()), "{at}: operationId {id} is used twice");
                assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{at}: summary");
                assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{at}: tags");
                for tag in op["tags"].as_array().into_iter().flatten() {
                    assert!(tag.as_str().is_some_and(|t| declared_tags.contains(t)), "{at}: tag {tag} is not declared");
                }
                let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{at}: responses"));
                assert!(responses.keys().any(|k| k.starts_with('2')), "{at}: no 2xx answer");
                for (status, r) in responses {
                    assert!(r["description"].is_string(), "{at} {status}: description");
                    if status.starts_with('4') {
                        assert_eq!(r["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error", "{at} {status}");
                    }
                }
                if op.get("security") == Some(&json!([])) {
                    public.insert(path.clone());
                } else {
                    assert!(responses.contains_key("401"), "{at}: an authenticated operation answers 401");
                }
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                for p in &params {
                    assert!(declared.contains(p), "{at}: path parameter {p} is not declared");
                }
                assert_eq!(declared.len(), params.len(), "{at}: stray path parameters");
                for p in op["parameters"].as_array().into_iter().flatten() {
                    assert!(p["schema"].is_object() && p["name"].is_string(), "{at}: parameter {p}");
                    if p["in"] == "path" {
                        assert_eq!(p["required"], true, "{at}: path parameters are required");
                    }
                }
            }
        }
        let expected: BTreeSet<String> = ["/api/v1/openapi.json", "/healthz", "/metrics"].into_iter().map(String::from).collect();
        assert_eq!(public, expected, "only these operations are public");

        // Every `required` field is a declared property, and integers are int64.
        walk(&doc, String::new(), &mut |at, v| {
            if let Some(req) = v.get("required").and_then(Value::as_array) {
                if let Some(props) = v.get("properties").and_then(Value::as_object) {
                    for f in req {
                        assert!(props.contains_key(f.as_str().unwrap_or("")), "{at}: required {f} is not a property");
                    }
                } else {
                    assert!(at.contains("anyOf") || at.contains("allOf"), "{at}: required without properties");
                }
            }
            if v.get("type") == Some(&json!("integer")) {
                assert_eq!(v["format"], "int64", "{at}: integers are int64");
            }
        });
    }
}
