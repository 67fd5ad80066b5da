//! A campaign as a marketer writes it (the admin API's JSON), and its validation.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The JSON body of `POST /api/v1/campaigns`. Stored as written (after normalisation);
/// [`super::Campaign::compile`] turns it into the form the engine evaluates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub code: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `active` or `paused`.
    #[serde(default)]
    pub status: Status,
    /// `receipt` (evaluated at the till) or `event` (evaluated on a member's action event).
    #[serde(default)]
    pub trigger: Trigger,
    /// For `trigger: event`: the event type (`review`, `survey`, `newsletter_subscribed`,
    /// `social_share`, `signup`, `birthday` or a custom type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Higher goes first. Ties go to the smaller code.
    #[serde(default = "d_priority")]
    pub priority: i64,
    /// An exclusive campaign applies alone: nothing of lower priority applies with it, and
    /// it does not apply when a campaign of higher priority already did.
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Clause>,
    /// The escape hatch: a CEL expression that must be true, with the reason shown when
    /// it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cel: Option<CelSpec>,
    pub effects: Vec<Effect>,
    #[serde(default)]
    pub budget: Budget,
    /// Personal offers: empty means every member (and anonymous receipts, where the
    /// effects allow).
    #[serde(default)]
    pub audience: Audience,
    /// Applies only when one of its coupons is presented.
    #[serde(default)]
    pub requires_coupon: bool,
}

fn d_priority() -> i64 {
    100
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Active,
    Paused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    #[default]
    Receipt,
    Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CelSpec {
    pub expression: String,
    /// Shown to the cashier when the expression is false: one text, or one per language.
    pub reason: Texts,
}

/// A text, or a text per language (`{"en": "...", "ru": "..."}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Texts {
    One(String),
    PerLang {
        #[serde(default)]
        en: Option<String>,
        #[serde(default)]
        ru: Option<String>,
    },
}

impl Texts {
    pub fn get(&self, lang: crate::program::Lang) -> String {
        match self {
            Texts::One(s) => s.clone(),
            Texts::PerLang { en, ru } => {
                let (first, second) = match lang {
                    crate::program::Lang::En => (en, ru),
                    crate::program::Lang::Ru => (ru, en),
                };
                first.clone().or_else(|| second.clone()).unwrap_or_default()
            }
        }
    }
}

/// Which lines something is about: lines whose category is one of `categories` or whose
/// sku is one of `skus`. Both empty means every line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<String>,
}

impl Selector {
    pub fn is_all(&self) -> bool {
        self.categories.is_empty() && self.skus.is_empty()
    }
}

/// A structured condition. Each one can say how far a receipt is from meeting it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Clause {
    /// At least `min` of the selected lines (an integer counts units; a decimal string
    /// such as "20.000" counts a measured quantity).
    MinQuantity {
        min: Value,
        #[serde(default)]
        categories: Vec<String>,
        #[serde(default)]
        skus: Vec<String>,
    },
    /// The selected lines total at least `min_minor` (line totals before discounts).
    MinAmount {
        min_minor: i64,
        #[serde(default)]
        categories: Vec<String>,
        #[serde(default)]
        skus: Vec<String>,
    },
    /// The receipt totals at least `min_minor` (before discounts).
    ReceiptTotal { min_minor: i64 },
    /// The receipt's tier is one of these codes.
    Tier { r#in: Vec<String> },
    /// The member carries this segment tag.
    Segment { tag: String },
    /// The member's attribute `name` equals one of `in`.
    Attribute { name: String, r#in: Vec<Value> },
    /// Days since the member enrolled, within [min, max].
    DaysSinceEnrolment {
        #[serde(default)]
        min: Option<i64>,
        #[serde(default)]
        max: Option<i64>,
    },
    /// From `days_before` the member's birthday to `days_after` it (in the store's time zone).
    Birthday {
        #[serde(default)]
        days_before: i64,
        #[serde(default)]
        days_after: i64,
    },
    /// At one of these stores (ids or codes).
    Store { r#in: Vec<String> },
    /// On one of these weekdays in the store's time zone: mon, tue, wed, thu, fri, sat, sun.
    Weekday { days: Vec<String> },
    /// Between `from` and `to` ("HH:MM", `to` exclusive; `from` > `to` spans midnight) in
    /// the store's time zone.
    TimeWindow { from: String, to: String },
    /// The member's first committed receipt.
    FirstPurchase {},
}

/// What a campaign does when it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// `percent_bp` off each selected discountable line.
    DiscountPercent {
        percent_bp: i64,
        #[serde(default)]
        target: Selector,
    },
    /// `amount_minor` off the selected discountable lines, spread by their net.
    DiscountFixed {
        amount_minor: i64,
        #[serde(default)]
        target: Selector,
    },
    /// Multiply the points the selected earning lines earn (20000 = double).
    PointsMultiplier {
        multiplier_bp: i64,
        #[serde(default)]
        target: Selector,
    },
    /// A fixed number of bonus points.
    BonusPoints {
        points: i64,
        #[serde(default)]
        target: Selector,
    },
    /// The `quantity` cheapest selected units are free.
    FreeItem {
        #[serde(default = "d_one")]
        quantity: i64,
        target: Selector,
    },
    /// Money back into the member's cashback wallet: `percent_bp` of the selected earning
    /// lines' payable money, or a fixed `amount_minor`.
    Cashback {
        #[serde(default)]
        percent_bp: Option<i64>,
        #[serde(default)]
        amount_minor: Option<i64>,
        #[serde(default)]
        target: Selector,
    },
    /// Buy `every` − 1 selected units, the `every`th is free; progress is kept per member.
    StampCard { every: i64, target: Selector },
}

fn d_one() -> i64 {
    1
}

impl Effect {
    pub fn target(&self) -> &Selector {
        match self {
            Effect::DiscountPercent { target, .. }
            | Effect::DiscountFixed { target, .. }
            | Effect::PointsMultiplier { target, .. }
            | Effect::BonusPoints { target, .. }
            | Effect::FreeItem { target, .. }
            | Effect::Cashback { target, .. }
            | Effect::StampCard { target, .. } => target,
        }
    }

    /// Effects that give points or money to a member need an identified member.
    pub fn needs_member(&self) -> bool {
        matches!(self, Effect::PointsMultiplier { .. } | Effect::BonusPoints { .. } | Effect::Cashback { .. } | Effect::StampCard { .. })
    }
}

/// Budget limits; `None` is unlimited. Points count multiplier extras and bonus points;
/// money counts discounts and cashback; uses count receipts (or events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub money_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_member_points: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_member_money_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_member_uses: Option<i64>,
}

impl Budget {
    pub fn is_limited(&self) -> bool {
        self.points.is_some() || self.money_minor.is_some() || self.uses.is_some() || self.has_per_member()
    }
    pub fn has_per_member(&self) -> bool {
        self.per_member_points.is_some() || self.per_member_money_minor.is_some() || self.per_member_uses.is_some()
    }
}

/// Who a personal offer is for: listed members, or members carrying one of the tags.
/// Both empty: everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segment_tags: Vec<String>,
}

impl Audience {
    pub fn is_everyone(&self) -> bool {
        self.member_ids.is_empty() && self.segment_tags.is_empty()
    }
}
