//! Reading request bodies: parse (400), then check shape field by field (422
//! `validation_error` naming every bad field). "Parse, don't validate": readers hand back
//! domain values or field errors, never half-checked JSON.

use crate::error::ApiError;
use chrono::{DateTime, SecondsFormat, Utc};
use kopilka_domain::INPUT_MAX;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Parse a body as a JSON object. Not JSON at all is 400; JSON that is not an object is
/// 422. `null` members are dropped (null means "left out").
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_json("the body is empty; send a JSON object"));
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_json(format!("the body is not JSON: {e}")))?
    };
    let m = match strip_nulls(v) {
        Value::Object(m) => m,
        _ => return Err(ApiError::field("$", "must be a JSON object")),
    };
    let mut nul = BTreeMap::new();
    for (k, v) in &m {
        find_nul(v, k, &mut nul);
    }
    if !nul.is_empty() {
        return Err(ApiError::fields(nul));
    }
    Ok(m)
}

/// Strings (and object keys) holding a NUL character: valid JSON, but no database text
/// can store one, so they are a validation error at their path.
fn find_nul(v: &Value, path: &str, out: &mut BTreeMap<String, String>) {
    const MSG: &str = "must not contain a NUL character";
    match v {
        Value::String(s) if s.contains('\0') => {
            out.insert(path.to_owned(), MSG.to_owned());
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                find_nul(x, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                let p = format!("{path}.{k}");
                if k.contains('\0') {
                    out.insert(p.clone(), MSG.to_owned());
                }
                find_nul(x, &p, out);
            }
        }
        _ => {}
    }
}

/// Drop object members whose value is null, recursively.
pub fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// Canonical JSON: object keys sorted, no whitespace. Equal bodies give equal strings.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&m[*k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// Format Unix seconds as RFC 3339 in UTC with whole seconds.
pub fn fmt_time(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time in a typed answer: Unix seconds, written as RFC 3339 in UTC with whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub i64);

impl serde::Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fmt_time(self.0))
    }
}

/// Read back from a stored answer (an idempotent replay).
impl<'de> serde::Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_time(&s).map(Time).ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s}")))
    }
}

pub fn fmt_time_opt(t: Option<i64>) -> Value {
    t.map(|t| Value::String(fmt_time(t))).unwrap_or(Value::Null)
}

/// Parse RFC 3339, truncating fractions of a second.
pub fn parse_time(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp())
}

/// Reads the members of one JSON object, collecting every field error and rejecting
/// members it was not asked for.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
    seen: Vec<&'static str>,
    pub errors: BTreeMap<String, String>,
}

impl<'a> Obj<'a> {
    pub fn new(map: &'a Map<String, Value>, prefix: &str) -> Self {
        Obj { map, prefix: prefix.to_owned(), seen: Vec::new(), errors: BTreeMap::new() }
    }

    pub fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() { key.to_owned() } else { format!("{}.{key}", self.prefix) }
    }

    pub fn err(&mut self, key: &str, msg: impl Into<String>) {
        let p = self.path(key);
        self.errors.entry(p).or_insert_with(|| msg.into());
    }

    /// Ignore a member if present (read-only fields sent back).
    pub fn ignore(&mut self, key: &'static str) {
        self.seen.push(key);
    }

    pub fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.seen.push(key);
        self.map.get(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A string of 1..=max chars (empty is an error).
    pub fn str(&mut self, key: &'static str, max: usize) -> Option<String> {
        self.string(key, max, false)
    }

    /// A string of 0..=max chars.
    pub fn str_or_empty(&mut self, key: &'static str, max: usize) -> Option<String> {
        self.string(key, max, true)
    }

    fn string(&mut self, key: &'static str, max: usize, allow_empty: bool) -> Option<String> {
        let problem = match self.raw(key)? {
            Value::String(s) if s.is_empty() && !allow_empty => "must not be empty".to_owned(),
            Value::String(s) if s.chars().count() > max => format!("must be at most {max} characters"),
            Value::String(s) => return Some(s.clone()),
            _ => "must be a string".to_owned(),
        };
        self.err(key, problem);
        None
    }

    pub fn req_str(&mut self, key: &'static str, max: usize) -> Option<String> {
        if !self.has(key) {
            self.seen.push(key);
            self.err(key, "is required");
            return None;
        }
        self.str(key, max)
    }

    /// An integer in [min, max]; floats and strings are errors.
    pub fn int(&mut self, key: &'static str, min: i64, max: i64) -> Option<i64> {
        let v = self.raw(key)?;
        match int_value(v, min, max) {
            Ok(n) => Some(n),
            Err(m) => {
                self.err(key, m);
                None
            }
        }
    }

    pub fn req_int(&mut self, key: &'static str, min: i64, max: i64) -> Option<i64> {
        if !self.has(key) {
            self.seen.push(key);
            self.err(key, "is required");
            return None;
        }
        self.int(key, min, max)
    }

    pub fn bool(&mut self, key: &'static str) -> Option<bool> {
        match self.raw(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.err(key, "must be true or false");
                None
            }
        }
    }

    pub fn time(&mut self, key: &'static str) -> Option<i64> {
        let s = self.str(key, 64)?;
        match parse_time(&s) {
            Some(t) => Some(t),
            None => {
                self.err(key, "must be an RFC 3339 time, e.g. 2026-11-20T10:00:00Z");
                None
            }
        }
    }

    pub fn object(&mut self, key: &'static str) -> Option<&'a Map<String, Value>> {
        match self.raw(key)? {
            Value::Object(m) => Some(m),
            _ => {
                self.err(key, "must be an object");
                None
            }
        }
    }

    pub fn array(&mut self, key: &'static str) -> Option<&'a Vec<Value>> {
        match self.raw(key)? {
            Value::Array(a) => Some(a),
            _ => {
                self.err(key, "must be an array");
                None
            }
        }
    }

    /// Report members that were not read as unknown, and merge another reader's errors.
    pub fn finish(mut self) -> BTreeMap<String, String> {
        let unknown: Vec<String> = self.map.keys().filter(|k| !self.seen.contains(&k.as_str())).cloned().collect();
        for k in unknown {
            let p = self.path(&k);
            self.errors.entry(p).or_insert_with(|| "unknown field".into());
        }
        self.errors
    }

    pub fn absorb(&mut self, other: BTreeMap<String, String>) {
        for (k, v) in other {
            self.errors.entry(k).or_insert(v);
        }
    }
}

/// An integer JSON number within [min, max] (and within ±10^12).
pub fn int_value(v: &Value, min: i64, max: i64) -> Result<i64, String> {
    let min = min.max(-(INPUT_MAX as i64));
    let max = max.min(INPUT_MAX as i64);
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) if i < min => Err(format!("must be at least {min}")),
            Some(i) if i > max => Err(format!("must be at most {max}")),
            Some(i) => Ok(i),
            None if n.is_f64() => Err("must be an integer (floats are not accepted)".into()),
            None => Err(format!("must be at most {max}")),
        },
        _ => Err("must be an integer".into()),
    }
}

/// Read a typed body (the programme, a campaign, the card design) from a JSON object.
///
/// serde reports a wrong type or an unknown field at its path (422 naming it). One thing
/// it does not refuse: its derive reads a struct from a JSON array by position, so
/// `"redeem": []` would reset the redemption rules to their defaults and `"budget": [1, 2]`
/// would set the first two budget fields. So the value read is written back to JSON and
/// compared with the body: wherever the typed value is an object and the body held
/// anything else, the body is refused at that path.
pub fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(body: Map<String, Value>) -> Result<T, ApiError> {
    let body = Value::Object(body);
    let value: T = serde_path_to_error::deserialize(&body).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        // An unknown field is reported at its own path, not at its parent's.
        let unknown = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()).map(str::to_owned);
        let path = match (path.as_str(), unknown) {
            ("." | "", Some(f)) => f,
            (p, Some(f)) => format!("{p}.{f}"),
            ("." | "", None) => "$".to_owned(),
            (p, None) => p.to_owned(),
        };
        let msg = if msg.contains("floating point") { format!("must be an integer (floats are not accepted): {msg}") } else { msg };
        ApiError::field(path, msg)
    })?;
    let read = serde_json::to_value(&value).map_err(ApiError::internal)?;
    let mut errors = BTreeMap::new();
    objects_where_objects_are_read(&body, &read, "", &mut errors);
    if errors.is_empty() { Ok(value) } else { Err(ApiError::fields(errors)) }
}

/// Every path where `read` (the typed value as JSON) is an object and `sent` is not.
fn objects_where_objects_are_read(sent: &Value, read: &Value, path: &str, out: &mut BTreeMap<String, String>) {
    match (sent, read) {
        (Value::Object(s), Value::Object(r)) => {
            for (k, sv) in s {
                if let Some(rv) = r.get(k) {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    objects_where_objects_are_read(sv, rv, &p, out);
                }
            }
        }
        (Value::Array(s), Value::Array(r)) => {
            for (i, (sv, rv)) in s.iter().zip(r).enumerate() {
                objects_where_objects_are_read(sv, rv, &format!("{path}[{i}]"), out);
            }
        }
        (_, Value::Object(_)) => {
            out.insert(if path.is_empty() { "$".to_owned() } else { path.to_owned() }, "must be a JSON object".to_owned());
        }
        _ => {}
    }
}

/// Finish a reader; any error becomes a 422.
pub fn check(obj: Obj<'_>) -> Result<(), ApiError> {
    let errors = obj.finish();
    if errors.is_empty() { Ok(()) } else { Err(ApiError::fields(errors)) }
}
