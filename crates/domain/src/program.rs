//! The programme configuration (docs/api.md, "The programme") with its defaults
//! and validation.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Field path (e.g. `tiers[1].min_spend_minor`) to a message saying what to fix.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    #[serde(default = "d_currency")]
    pub currency: String,
    #[serde(default = "d_utc")]
    pub time_zone: String,
    #[serde(default)]
    pub earn: Earn,
    #[serde(default)]
    pub redeem: Redeem,
    #[serde(default)]
    pub no_earn_categories: Vec<String>,
    #[serde(default = "d_no_discount")]
    pub no_discount_categories: Vec<String>,
    #[serde(default)]
    pub pending_days: i64,
    #[serde(default)]
    pub expiry: Expiry,
    #[serde(default = "d_365")]
    pub tier_window_days: i64,
    #[serde(default = "d_30")]
    pub offline_max_age_days: i64,
    #[serde(default = "default_tiers")]
    pub tiers: Vec<Tier>,
    /// The language of texts the programme produces for cashiers and members (campaign
    /// reasons): `en` or `ru`.
    #[serde(default, skip_serializing_if = "Lang::is_default")]
    pub language: Lang,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    En,
    Ru,
}

impl Lang {
    /// English is the default and is left out of the programme's JSON, so that a programme
    /// that never chose a language reads exactly as docs/api.md, "Configuration and defaults", shows.
    pub fn is_default(&self) -> bool {
        *self == Lang::En
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    Floor,
    HalfUp,
    Ceil,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Earn {
    #[serde(default = "d_1")]
    pub points_per_unit: i64,
    #[serde(default = "d_1000")]
    pub unit_minor: i64,
    #[serde(default = "d_floor")]
    pub rounding: Rounding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedeemAuth {
    None,
    Qr,
    QrOrOtp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    #[serde(default = "d_100")]
    pub point_value_minor: i64,
    #[serde(default = "d_5000")]
    pub max_share_bp: i64,
    #[serde(default)]
    pub min_balance: i64,
    #[serde(default = "d_auth")]
    pub auth: RedeemAuth,
    #[serde(default = "d_900")]
    pub hold_ttl_s: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Month,
    Year,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields, from = "ExpiryRepr")]
pub enum Expiry {
    #[default]
    Never,
    RollingDays {
        days: i64,
    },
    EndOfPeriod {
        period: Period,
        periods: i64,
    },
}

/// The same JSON shape as [`Expiry`]. serde ignores `deny_unknown_fields` on the unit variant
/// of an internally tagged enum, so `{"policy": "never", "days": 1}` would slip through;
/// an empty struct variant rejects it.
#[derive(Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
enum ExpiryRepr {
    Never {},
    RollingDays { days: i64 },
    EndOfPeriod { period: Period, periods: i64 },
}

impl From<ExpiryRepr> for Expiry {
    fn from(repr: ExpiryRepr) -> Self {
        match repr {
            ExpiryRepr::Never {} => Expiry::Never,
            ExpiryRepr::RollingDays { days } => Expiry::RollingDays { days },
            ExpiryRepr::EndOfPeriod { period, periods } => Expiry::EndOfPeriod { period, periods },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub code: String,
    /// Defaults to the code (filled in by [`Program::normalize`]).
    #[serde(default)]
    pub name: String,
    pub min_spend_minor: i64,
    #[serde(default = "d_10000")]
    pub earn_multiplier_bp: i64,
    #[serde(default)]
    pub discount_bp: i64,
}

fn d_currency() -> String {
    "RUB".into()
}
fn d_utc() -> String {
    "UTC".into()
}
fn d_no_discount() -> Vec<String> {
    vec!["tobacco".into()]
}
fn d_1() -> i64 {
    1
}
fn d_30() -> i64 {
    30
}
fn d_100() -> i64 {
    100
}
fn d_365() -> i64 {
    365
}
fn d_900() -> i64 {
    900
}
fn d_1000() -> i64 {
    1000
}
fn d_5000() -> i64 {
    5000
}
fn d_10000() -> i64 {
    10000
}
fn d_floor() -> Rounding {
    Rounding::Floor
}
fn d_auth() -> RedeemAuth {
    RedeemAuth::None
}

pub fn default_tiers() -> Vec<Tier> {
    let t = |code: &str, name: &str, min: i64, mult: i64| Tier {
        code: code.into(),
        name: name.into(),
        min_spend_minor: min,
        earn_multiplier_bp: mult,
        discount_bp: 0,
    };
    vec![t("bronze", "Bronze", 0, 10000), t("silver", "Silver", 1_000_000, 12500), t("gold", "Gold", 5_000_000, 15000)]
}

impl Default for Earn {
    fn default() -> Self {
        Earn { points_per_unit: 1, unit_minor: 1000, rounding: Rounding::Floor }
    }
}

impl Default for Redeem {
    fn default() -> Self {
        Redeem { point_value_minor: 100, max_share_bp: 5000, min_balance: 0, auth: RedeemAuth::None, hold_ttl_s: 900 }
    }
}

impl Default for Program {
    fn default() -> Self {
        serde_json::from_str("{}").expect("empty programme parses")
    }
}

impl Program {
    /// Fill derived defaults (tier name = code), lower-case category lists (categories
    /// compare case-insensitively), sort tiers by `min_spend_minor` ascending, and validate.
    ///
    /// Validation (every problem reported, keyed by field path):
    /// - currency: 3 upper-case ASCII letters;
    /// - time_zone: a name chrono-tz knows (e.g. "Europe/Moscow", "UTC");
    /// - earn.points_per_unit 0..=10^12, earn.unit_minor 1..=10^12;
    /// - redeem.point_value_minor 1..=10^12, max_share_bp 0..=10000, min_balance 0..=10^12,
    ///   hold_ttl_s 1..=86400;
    /// - pending_days 0..=3650; tier_window_days 1..=36500; offline_max_age_days 0..=36500;
    /// - expiry days / periods 1..=36500;
    /// - tiers: codes non-empty, at most 64 chars, unique; min_spend_minor 0..=10^12 and unique
    ///   ("two tiers with the same min_spend_minor"); earn_multiplier_bp 0..=1_000_000;
    ///   discount_bp 0..=10000; at most 50 tiers; the list may be empty.
    /// - category strings at most 100 chars.
    pub fn normalize(mut self) -> Result<Program, FieldErrors> {
        const MAX: i64 = 1_000_000_000_000;
        let mut errors = FieldErrors::new();
        let mut range = |path: &str, value: i64, lo: i64, hi: i64| {
            if !(lo..=hi).contains(&value) {
                errors.insert(path.to_string(), format!("must be between {lo} and {hi}"));
            }
        };
        range("earn.points_per_unit", self.earn.points_per_unit, 0, MAX);
        range("earn.unit_minor", self.earn.unit_minor, 1, MAX);
        range("redeem.point_value_minor", self.redeem.point_value_minor, 1, MAX);
        range("redeem.max_share_bp", self.redeem.max_share_bp, 0, 10_000);
        range("redeem.min_balance", self.redeem.min_balance, 0, MAX);
        range("redeem.hold_ttl_s", self.redeem.hold_ttl_s, 1, 86_400);
        range("pending_days", self.pending_days, 0, 3_650);
        range("tier_window_days", self.tier_window_days, 1, 36_500);
        range("offline_max_age_days", self.offline_max_age_days, 0, 36_500);
        match self.expiry {
            Expiry::Never => {}
            Expiry::RollingDays { days } => range("expiry.days", days, 1, 36_500),
            Expiry::EndOfPeriod { periods, .. } => range("expiry.periods", periods, 1, 36_500),
        }
        for (i, tier) in self.tiers.iter().enumerate() {
            range(&format!("tiers[{i}].min_spend_minor"), tier.min_spend_minor, 0, MAX);
            range(&format!("tiers[{i}].earn_multiplier_bp"), tier.earn_multiplier_bp, 0, 1_000_000);
            range(&format!("tiers[{i}].discount_bp"), tier.discount_bp, 0, 10_000);
        }

        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            errors.insert("currency".into(), "must be 3 upper-case letters (ISO 4217), e.g. RUB".into());
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            errors.insert("time_zone".into(), "must be an IANA time zone name, e.g. Europe/Moscow".into());
        }

        if self.tiers.len() > 50 {
            errors.insert("tiers".into(), "at most 50 tiers".into());
        }
        for (i, tier) in self.tiers.iter().enumerate() {
            let earlier = &self.tiers[..i];
            if tier.code.is_empty() {
                errors.insert(format!("tiers[{i}].code"), "is required".into());
            } else if tier.code.chars().count() > 64 {
                errors.insert(format!("tiers[{i}].code"), "must be at most 64 characters".into());
            } else if earlier.iter().any(|t| t.code == tier.code) {
                errors.insert(format!("tiers[{i}].code"), "two tiers with the same code".into());
            }
            let path = format!("tiers[{i}].min_spend_minor");
            if !errors.contains_key(&path) && earlier.iter().any(|t| t.min_spend_minor == tier.min_spend_minor) {
                errors.insert(path, "two tiers with the same min_spend_minor".into());
            }
        }

        for (field, list) in
            [("no_earn_categories", &mut self.no_earn_categories), ("no_discount_categories", &mut self.no_discount_categories)]
        {
            for (i, category) in list.iter_mut().enumerate() {
                if category.chars().count() > 100 {
                    errors.insert(format!("{field}[{i}]"), "must be at most 100 characters".into());
                }
                *category = category.to_lowercase();
            }
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        for tier in &mut self.tiers {
            if tier.name.is_empty() {
                tier.name = tier.code.clone();
            }
        }
        self.tiers.sort_by_key(|t| t.min_spend_minor);
        Ok(self)
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    pub fn is_no_earn(&self, category: Option<&str>) -> bool {
        category.is_some_and(|c| self.no_earn_categories.iter().any(|x| same_category(x, c)))
    }

    pub fn is_no_discount(&self, category: Option<&str>) -> bool {
        category.is_some_and(|c| self.no_discount_categories.iter().any(|x| same_category(x, c)))
    }
}

/// Categories compare case-insensitively, Cyrillic included ("Табак" = "табак").
pub fn same_category(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}
