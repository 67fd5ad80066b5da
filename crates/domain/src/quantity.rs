//! Line quantities: counted units (integers) or measured quantities (thousandths).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A positive line quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// Counted units, sent as a JSON integer.
    Units(i64),
    /// A measured quantity in thousandths, sent as a decimal string with at most 3
    /// decimals ("35.27" is Milli(35270), "2.000" is Milli(2000)).
    Milli(i64),
}

impl Quantity {
    /// Parse a JSON value: a positive integer (≤ 10^12) or a decimal string with at most 3
    /// decimals whose value is > 0 and ≤ 10^12. Floats, zero, negatives, exponents,
    /// signs, spaces and more than 3 decimals are errors (a message for the field).
    pub fn from_json(v: &serde_json::Value) -> Result<Quantity, String> {
        const SHAPE: &str = "must be a positive integer or a decimal string with at most 3 decimals";
        let max = crate::INPUT_MAX;
        match v {
            serde_json::Value::Number(n) => {
                // A float (1.5, 1e3, 2.0) is rejected: only JSON integers count units.
                let Some(units) = n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)) else {
                    return Err("must be an integer; send measured quantities as a decimal string".into());
                };
                if units <= 0 {
                    Err("must be > 0".into())
                } else if units > max {
                    Err(format!("must be at most {max}"))
                } else {
                    Ok(Quantity::Units(units as i64))
                }
            }
            serde_json::Value::String(s) => {
                let (int_part, frac_part) = match s.split_once('.') {
                    Some((i, f)) => (i, Some(f)),
                    None => (s.as_str(), None),
                };
                let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
                if !digits(int_part) || frac_part.is_some_and(|f| !digits(f)) {
                    return Err(SHAPE.into());
                }
                let frac = frac_part.unwrap_or("");
                if frac.len() > 3 {
                    return Err("must have at most 3 decimals".into());
                }
                // Leading zeros are harmless; strip them so the length check bounds the value.
                let int_trimmed = int_part.trim_start_matches('0');
                if int_trimmed.len() > 13 {
                    return Err(format!("must be at most {max}"));
                }
                let int_value: i128 = if int_trimmed.is_empty() { 0 } else { int_trimmed.parse().map_err(|_| SHAPE.to_string())? };
                let frac_value: i128 = format!("{frac:0<3}").parse().map_err(|_| SHAPE.to_string())?;
                let milli = int_value * 1000 + frac_value;
                if milli <= 0 {
                    Err("must be > 0".into())
                } else if milli > max * 1000 {
                    Err(format!("must be at most {max}"))
                } else {
                    Ok(Quantity::Milli(milli as i64))
                }
            }
            _ => Err(SHAPE.into()),
        }
    }

    /// Parse the storage form written by [`Quantity::to_storage`]: ("units", n) or ("milli", n).
    pub fn from_storage(kind: &str, base: i64) -> Option<Quantity> {
        match kind {
            "units" => Some(Quantity::Units(base)),
            "milli" => Some(Quantity::Milli(base)),
            _ => None,
        }
    }

    pub fn to_storage(self) -> (&'static str, i64) {
        match self {
            Quantity::Units(n) => ("units", n),
            Quantity::Milli(n) => ("milli", n),
        }
    }

    /// The quantity in its base unit: units, or thousandths.
    pub fn base(self) -> i64 {
        match self {
            Quantity::Units(n) | Quantity::Milli(n) => n,
        }
    }

    pub fn is_measured(self) -> bool {
        matches!(self, Quantity::Milli(_))
    }

    /// The same kind of quantity with another base value.
    pub fn with_base(self, base: i64) -> Quantity {
        match self {
            Quantity::Units(_) => Quantity::Units(base),
            Quantity::Milli(_) => Quantity::Milli(base),
        }
    }

    /// JSON form: units as an integer; thousandths as a decimal string with trailing
    /// zeros trimmed ("35.27", "2", "0.5").
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Quantity::Units(n) => serde_json::Value::from(n),
            Quantity::Milli(m) => serde_json::Value::String(milli_to_string(m)),
        }
    }
}

/// Accepts exactly what [`Quantity::from_json`] accepts (floats are rejected).
impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Quantity::from_json(&v).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// "35.27" for 35270, "2" for 2000, "0.5" for 500.
fn milli_to_string(m: i64) -> String {
    let sign = if m < 0 { "-" } else { "" };
    let abs = m.unsigned_abs();
    let (int_part, frac) = (abs / 1000, abs % 1000);
    if frac == 0 {
        return format!("{sign}{int_part}");
    }
    let frac = format!("{frac:03}");
    format!("{sign}{int_part}.{}", frac.trim_end_matches('0'))
}
