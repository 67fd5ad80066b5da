//! Typed bodies are strict: wherever an object is expected (the programme, a campaign, the
//! card design and every object inside them), a JSON array, a string or a number is a 422
//! `validation_error` naming the field, and nothing changes. serde's derive would read a
//! struct from an array by position, so `"redeem": []` used to reset the redemption rules.

use crate::both;
use crate::helpers::*;
use serde_json::{Value, json};

/// JSON pointers of every object below the root of `v`.
fn object_pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if !at.is_empty() {
                out.push(at.to_owned());
            }
            for (k, x) in m {
                object_pointers(x, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                object_pointers(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// `/tiers/0/name` as the API names fields: `tiers[0].name`.
fn field_name(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// What a client might send instead of the object at `pointer`: nothing in an array, its
/// values by position, a string and a number. A per-language text (`cel.reason`) may also be
/// one plain string, so no string is sent there.
fn replacements(pointer: &str, object: &Value) -> Vec<Value> {
    let positional: Vec<Value> = object.as_object().expect("an object").values().cloned().collect();
    let mut out = vec![json!([]), Value::Array(positional), json!(1)];
    if pointer != "/cel/reason" {
        out.push(json!("x"));
    }
    out
}

/// Send every replacement of every object field of `good` with `send`, and check each is
/// refused at that field with nothing changed (`read` gives the state to compare).
async fn refuses_non_objects<S, SF, R, RF>(good: &Value, mut send: S, read: R)
where
    S: FnMut(Value) -> SF,
    SF: std::future::Future<Output = (u16, Value)>,
    R: Fn() -> RF,
    RF: std::future::Future<Output = Value>,
{
    let mut pointers = Vec::new();
    object_pointers(good, "", &mut pointers);
    assert!(!pointers.is_empty(), "the body should hold objects to replace: {good}");
    let before = read().await;
    for p in &pointers {
        let object = good.pointer(p).expect("pointer").clone();
        for bad in replacements(p, &object) {
            let mut body = good.clone();
            *body.pointer_mut(p).expect("pointer") = bad.clone();
            let (s, v) = send(body).await;
            let field = field_name(p);
            assert_eq!((s, v["error"]["code"].as_str()), (422, Some("validation_error")), "{field} = {bad}: {v}");
            let fields = v["error"]["fields"].as_object().expect("fields");
            // Inside an effect or a condition (an enum tagged by its `type`) serde buffers the
            // object, so its own errors name the effect (`effects[0]`, "expected struct
            // Selector") rather than the member; everywhere else the member itself.
            let named = fields.keys().any(|k| k.starts_with(&field) || (field.starts_with(k.as_str()) && k.ends_with(']')));
            assert!(named, "{field} = {bad}: the error should name {field}: {v}");
            assert_eq!(read().await, before, "{field} = {bad} changed something");
        }
    }
}

both!(program_fields_that_are_objects_refuse_arrays_strings_and_numbers, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let (s, mut program) = app.get(&t.admin, "/api/v1/program").await;
    assert_eq!(s, 200);
    program.as_object_mut().unwrap().remove("version");
    // The programme as read back is a valid body (nothing is refused before the swaps).
    let (s, v) = app.put(&t.admin, "/api/v1/program", program.clone()).await;
    assert_eq!(s, 200, "{v}");
    for f in ["redeem", "expiry", "tiers"] {
        assert!(program.get(f).is_some(), "the programme should have {f}: {program}");
    }
    refuses_non_objects(&program, |b| app.put(&t.admin, "/api/v1/program", b), || async { app.get(&t.admin, "/api/v1/program").await.1 })
        .await;
    // The case that was found: an empty array used to reset the redemption rules.
    let mut body = program.clone();
    body["redeem"] = json!([]);
    let (s, v) = app.put(&t.admin, "/api/v1/program", body).await;
    assert_eq!((s, v["error"]["fields"]["redeem"].as_str()), (422, Some("must be a JSON object")), "{v}");
});

both!(campaign_fields_that_are_objects_refuse_arrays_strings_and_numbers, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let campaign = json!({
        "code": "FULL", "name": "Every object", "priority": 100,
        "conditions": [{"type": "min_amount", "min_minor": 100, "categories": ["dairy"]}, {"type": "tier", "in": ["gold"]}],
        "cel": {"expression": "receipt.total_minor >= 0", "reason": {"en": "never", "ru": "никогда"}},
        "effects": [{"type": "discount_percent", "percent_bp": 500, "target": {"categories": ["dairy"]}},
                    {"type": "bonus_points", "points": 10, "target": {"skus": ["MILK"]}}],
        "budget": {"points": 100000, "uses": 10},
        "audience": {"segment_tags": ["vip"]}
    });
    let (s, v) = app.post(&t.admin, "/api/v1/campaigns", campaign.clone()).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/campaigns/{id}");
    let list = || async { app.get(&t.admin, "/api/v1/campaigns").await.1 };
    // Updates refuse them and keep the campaign as it was.
    refuses_non_objects(&campaign, |b| app.put(&t.admin, &path, b), list).await;
    // Creation refuses them and creates nothing.
    let mut n = 0;
    refuses_non_objects(
        &campaign,
        |mut b| {
            n += 1;
            b["code"] = json!(format!("NEW{n}"));
            app.post(&t.admin, "/api/v1/campaigns", b)
        },
        list,
    )
    .await;
    let mut body = campaign.clone();
    body["budget"] = json!([1, 2]);
    let (s, v) = app.put(&t.admin, &path, body).await;
    assert_eq!((s, v["error"]["fields"]["budget"].as_str()), (422, Some("must be a JSON object")), "{v}");
});

both!(the_card_design_refuses_non_objects_for_its_labels, |app: TestApp| async move {
    let t = app.tenant("Shop").await;
    let design = json!({"description": "Shop card", "background_color": "#112233", "foreground_color": "#ffffff",
        "label_color": "#eeeeee", "labels": {"balance": "Баллы", "tier": "Уровень", "card_number": "Карта", "name": "Имя"},
        "barcode_format": "qr"});
    let (s, v) = app.put(&t.admin, "/api/v1/program/card", design.clone()).await;
    assert_eq!(s, 200, "{v}");
    let read = || async { app.get(&t.admin, "/api/v1/program/card").await.1 };
    refuses_non_objects(&design, |b| app.put(&t.admin, "/api/v1/program/card", b), read).await;
});
