//! A small, strict subset of JSON Schema for custom action-event data: `type` (object,
//! string, integer, boolean, array), `properties`, `required`, `additionalProperties`
//! (boolean), `enum`, `minimum`, `maximum`, `minLength`, `maxLength`, `items`,
//! `maxItems`, `description`. A schema using anything else is refused when it is saved, so
//! that nothing is silently ignored.

use serde_json::Value;
use std::collections::BTreeMap;

const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "items",
    "maxItems",
    "description",
    "title",
];

/// Check that a schema uses only the supported keywords, well formed. Errors by path.
pub fn check_schema(schema: &Value, path: &str, errors: &mut BTreeMap<String, String>) {
    let Some(m) = schema.as_object() else {
        errors.insert(path.into(), "a schema must be an object".into());
        return;
    };
    for (k, v) in m {
        let p = format!("{path}.{k}");
        match k.as_str() {
            "type" => {
                if !matches!(v.as_str(), Some("object" | "string" | "integer" | "boolean" | "array")) {
                    errors.insert(p, "must be object, string, integer, boolean or array".into());
                }
            }
            "properties" => match v.as_object() {
                Some(props) => {
                    for (name, s) in props {
                        check_schema(s, &format!("{p}.{name}"), errors);
                    }
                }
                None => {
                    errors.insert(p, "must be an object of schemas".into());
                }
            },
            "required" => {
                if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    errors.insert(p, "must be a list of property names".into());
                }
            }
            "additionalProperties" => {
                if !v.is_boolean() {
                    errors.insert(p, "must be true or false".into());
                }
            }
            "enum" => {
                if !v.is_array() {
                    errors.insert(p, "must be a list".into());
                }
            }
            "minimum" | "maximum" | "minLength" | "maxLength" | "maxItems" => {
                if !(v.is_i64() || v.is_u64()) {
                    errors.insert(p, "must be an integer".into());
                }
            }
            "items" => check_schema(v, &p, errors),
            "description" | "title" => {}
            _ => {
                errors.insert(p, format!("unsupported keyword (supported: {})", KEYWORDS.join(", ")));
            }
        }
    }
}

/// Validate a value against a (checked) schema. Errors by path.
pub fn validate(schema: &Value, value: &Value, path: &str, errors: &mut BTreeMap<String, String>) {
    let Some(s) = schema.as_object() else { return };
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            _ => true,
        };
        if !ok {
            errors.insert(path.into(), format!("must be {t}"));
            return;
        }
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        errors.insert(path.into(), "is not one of the allowed values".into());
    }
    if let Some(n) = value.as_i64() {
        if s.get("minimum").and_then(Value::as_i64).is_some_and(|m| n < m) {
            errors.insert(path.into(), format!("must be at least {}", s["minimum"]));
        }
        if s.get("maximum").and_then(Value::as_i64).is_some_and(|m| n > m) {
            errors.insert(path.into(), format!("must be at most {}", s["maximum"]));
        }
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as i64;
        if s.get("minLength").and_then(Value::as_i64).is_some_and(|m| len < m) {
            errors.insert(path.into(), format!("must be at least {} characters", s["minLength"]));
        }
        if s.get("maxLength").and_then(Value::as_i64).is_some_and(|m| len > m) {
            errors.insert(path.into(), format!("must be at most {} characters", s["maxLength"]));
        }
    }
    if let Some(items) = value.as_array() {
        if s.get("maxItems").and_then(Value::as_i64).is_some_and(|m| items.len() as i64 > m) {
            errors.insert(path.into(), format!("must hold at most {} items", s["maxItems"]));
        }
        if let Some(item_schema) = s.get("items") {
            for (i, v) in items.iter().enumerate() {
                validate(item_schema, v, &format!("{path}[{i}]"), errors);
            }
        }
    }
    if let Some(obj) = value.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for name in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !obj.contains_key(name) {
                errors.insert(format!("{path}.{name}"), "is required".into());
            }
        }
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(ps, v, &format!("{path}.{k}"), errors),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.insert(format!("{path}.{k}"), "is not an allowed property".into());
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validates_the_subset() {
        let schema = json!({"type": "object", "required": ["stars"], "additionalProperties": false,
                            "properties": {"stars": {"type": "integer", "minimum": 1, "maximum": 5}, "text": {"type": "string", "maxLength": 10}}});
        let mut e = BTreeMap::new();
        check_schema(&schema, "schema", &mut e);
        assert!(e.is_empty(), "{e:?}");
        validate(&schema, &json!({"stars": 5}), "data", &mut e);
        assert!(e.is_empty());
        validate(&schema, &json!({"stars": 6, "text": "far too long text", "x": 1}), "data", &mut e);
        assert_eq!(e.len(), 3, "{e:?}");
        let mut e = BTreeMap::new();
        validate(&schema, &json!({}), "data", &mut e);
        assert_eq!(e.get("data.stars").map(String::as_str), Some("is required"));
        let mut e = BTreeMap::new();
        check_schema(&json!({"type": "object", "pattern": "x"}), "schema", &mut e);
        assert!(e.contains_key("schema.pattern"));
    }
}
