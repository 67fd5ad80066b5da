//! Why a campaign did not apply, in words a cashier understands (English and Russian).

use crate::plural::pick;
use crate::program::Lang;

/// One reason a campaign did not apply. `code()` is stable for machines; `text()` is for
/// people, in the programme's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `more` thousandths of a quantity are missing (`whole`: counted units).
    NeedsQuantity {
        more_milli: i128,
        whole: bool,
        what: What,
    },
    NeedsAmount {
        more_minor: i128,
        what: What,
    },
    NeedsReceiptTotal {
        more_minor: i128,
    },
    TierOnly {
        tiers: Vec<String>,
    },
    SegmentOnly {
        tag: String,
    },
    AttributeOnly {
        name: String,
    },
    EnrolledTooRecently {
        days_left: i64,
    },
    EnrolmentOfferOver {
        max_days: i64,
    },
    BirthdayOnly,
    BirthdayUnknown,
    NotThisStore,
    WeekdaysOnly {
        days: Vec<u8>,
    },
    HoursOnly {
        from: String,
        to: String,
    },
    FirstPurchaseOnly,
    MemberOnly,
    /// The CEL escape hatch's own text.
    Custom {
        text: String,
    },
    /// Starts later: the local date and weekday (1 = Monday), and how many days ahead.
    Starts {
        date: String,
        weekday: u8,
        days_ahead: i64,
    },
    BudgetSpent,
    MemberLimitReached,
    NotCombinable {
        with: String,
    },
    NothingQualifies,
    CouponExpired {
        code: String,
    },
    CouponNotYetValid {
        code: String,
    },
    CouponUsedUp {
        code: String,
    },
    CouponMemberLimit {
        code: String,
    },
    CouponNotForMember {
        code: String,
    },
    CouponNeedsMember {
        code: String,
    },
    CouponInactive {
        code: String,
    },
}

/// The lines a basket condition is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct What {
    pub categories: Vec<String>,
    pub skus: Vec<String>,
}

const WEEKDAYS_EN: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const WEEKDAYS_RU: [&str; 7] = ["понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"];
/// Accusative ("в субботу").
const WEEKDAYS_RU_ACC: [&str; 7] = ["понедельник", "вторник", "среду", "четверг", "пятницу", "субботу", "воскресенье"];

/// Money for people: 15000 RUB minor → "150.00 RUB" / "150,00 ₽".
pub fn money(minor: i128, currency: &str, lang: Lang) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.abs();
    match lang {
        Lang::En => format!("{sign}{}.{:02} {currency}", m / 100, m % 100),
        Lang::Ru => {
            let cur = if currency == "RUB" { "₽" } else { currency };
            format!("{sign}{},{:02} {cur}", m / 100, m % 100)
        }
    }
}

fn quantity(milli: i128, whole: bool, lang: Lang) -> String {
    if whole {
        return (milli / 1000).to_string();
    }
    let s = format!("{}.{:03}", milli / 1000, milli % 1000);
    if lang == Lang::Ru { s.replace('.', ",") } else { s }
}

impl What {
    fn text(&self, lang: Lang) -> String {
        let mut parts = Vec::new();
        if !self.categories.is_empty() {
            let list = self.categories.join(", ");
            parts.push(match (lang, self.categories.len()) {
                (Lang::En, 1) => format!("in category {list}"),
                (Lang::En, _) => format!("in categories {list}"),
                (Lang::Ru, 1) => format!("из категории {list}"),
                (Lang::Ru, _) => format!("из категорий {list}"),
            });
        }
        if !self.skus.is_empty() {
            let list = self.skus.join(", ");
            parts.push(match lang {
                Lang::En => format!("of {list}"),
                Lang::Ru => format!("из списка {list}"),
            });
        }
        let or = if lang == Lang::En { " or " } else { " или " };
        parts.join(or)
    }
}

impl Reason {
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NeedsQuantity { .. } => "needs_quantity",
            Reason::NeedsAmount { .. } => "needs_amount",
            Reason::NeedsReceiptTotal { .. } => "needs_receipt_total",
            Reason::TierOnly { .. } => "tier_only",
            Reason::SegmentOnly { .. } => "segment_only",
            Reason::AttributeOnly { .. } => "attribute_only",
            Reason::EnrolledTooRecently { .. } => "enrolled_too_recently",
            Reason::EnrolmentOfferOver { .. } => "enrolment_offer_over",
            Reason::BirthdayOnly => "birthday_only",
            Reason::BirthdayUnknown => "birthday_unknown",
            Reason::NotThisStore => "not_this_store",
            Reason::WeekdaysOnly { .. } => "weekdays_only",
            Reason::HoursOnly { .. } => "hours_only",
            Reason::FirstPurchaseOnly => "first_purchase_only",
            Reason::MemberOnly => "member_only",
            Reason::Custom { .. } => "custom",
            Reason::Starts { .. } => "not_started",
            Reason::BudgetSpent => "budget_spent",
            Reason::MemberLimitReached => "member_limit_reached",
            Reason::NotCombinable { .. } => "not_combinable",
            Reason::NothingQualifies => "nothing_qualifies",
            Reason::CouponExpired { .. } => "coupon_expired",
            Reason::CouponNotYetValid { .. } => "coupon_not_yet_valid",
            Reason::CouponUsedUp { .. } => "coupon_used_up",
            Reason::CouponMemberLimit { .. } => "coupon_member_limit",
            Reason::CouponNotForMember { .. } => "coupon_not_for_member",
            Reason::CouponNeedsMember { .. } => "coupon_needs_member",
            Reason::CouponInactive { .. } => "coupon_inactive",
        }
    }

    pub fn text(&self, lang: Lang, currency: &str) -> String {
        use Lang::{En, Ru};
        match (self, lang) {
            (Reason::NeedsQuantity { more_milli, whole: true, what }, En) => {
                let n = more_milli / 1000;
                format!("needs {n} more {} {}", pick(En, n, ["item", "items", "items"]), what.text(En))
            }
            (Reason::NeedsQuantity { more_milli, whole: true, what }, Ru) => {
                let n = more_milli / 1000;
                format!("нужно ещё {n} {} {}", pick(Ru, n, ["товар", "товара", "товаров"]), what.text(Ru))
            }
            (Reason::NeedsQuantity { more_milli, whole: false, what }, En) => {
                format!("needs {} more {}", quantity(*more_milli, false, En), what.text(En))
            }
            (Reason::NeedsQuantity { more_milli, whole: false, what }, Ru) => {
                format!("нужно ещё {} {}", quantity(*more_milli, false, Ru), what.text(Ru))
            }
            (Reason::NeedsAmount { more_minor, what }, En) => format!("needs {} more {}", money(*more_minor, currency, En), what.text(En)),
            (Reason::NeedsAmount { more_minor, what }, Ru) => {
                format!("нужно ещё на {} {}", money(*more_minor, currency, Ru), what.text(Ru))
            }
            (Reason::NeedsReceiptTotal { more_minor }, En) => format!("needs {} more on the receipt", money(*more_minor, currency, En)),
            (Reason::NeedsReceiptTotal { more_minor }, Ru) => format!("нужно ещё на {} в чеке", money(*more_minor, currency, Ru)),
            (Reason::TierOnly { tiers }, En) => format!("{} tier only", tiers.join(" or ")),
            (Reason::TierOnly { tiers }, Ru) => format!("только для уровня {}", tiers.join(" или ")),
            (Reason::SegmentOnly { tag }, En) => format!("members in segment \"{tag}\" only"),
            (Reason::SegmentOnly { tag }, Ru) => format!("только для участников сегмента «{tag}»"),
            (Reason::AttributeOnly { name }, En) => format!("only for members with a matching {name}"),
            (Reason::AttributeOnly { name }, Ru) => format!("только для участников с подходящим полем {name}"),
            (Reason::EnrolledTooRecently { days_left }, En) => {
                format!("available to this member in {days_left} {}", pick(En, (*days_left).into(), ["day", "days", "days"]))
            }
            (Reason::EnrolledTooRecently { days_left }, Ru) => {
                format!("станет доступно участнику через {days_left} {}", pick(Ru, (*days_left).into(), ["день", "дня", "дней"]))
            }
            (Reason::EnrolmentOfferOver { max_days }, En) => {
                format!("only in the first {max_days} {} after joining", pick(En, (*max_days).into(), ["day", "days", "days"]))
            }
            (Reason::EnrolmentOfferOver { max_days }, Ru) => {
                format!("только в первые {max_days} {} после регистрации", pick(Ru, (*max_days).into(), ["день", "дня", "дней"]))
            }
            (Reason::BirthdayOnly, En) => "only around the member's birthday".into(),
            (Reason::BirthdayOnly, Ru) => "только в дни рождения участника".into(),
            (Reason::BirthdayUnknown, En) => "the member's birthday is not known".into(),
            (Reason::BirthdayUnknown, Ru) => "день рождения участника не указан".into(),
            (Reason::NotThisStore, En) => "not valid at this store".into(),
            (Reason::NotThisStore, Ru) => "не действует в этом магазине".into(),
            (Reason::WeekdaysOnly { days }, En) => {
                format!("only on {}", days.iter().map(|d| WEEKDAYS_EN[(*d as usize - 1) % 7]).collect::<Vec<_>>().join(", "))
            }
            (Reason::WeekdaysOnly { days }, Ru) => {
                format!("только в дни: {}", days.iter().map(|d| WEEKDAYS_RU[(*d as usize - 1) % 7]).collect::<Vec<_>>().join(", "))
            }
            (Reason::HoursOnly { from, to }, En) => format!("only from {from} to {to}"),
            (Reason::HoursOnly { from, to }, Ru) => format!("только с {from} до {to}"),
            (Reason::FirstPurchaseOnly, En) => "first purchase only".into(),
            (Reason::FirstPurchaseOnly, Ru) => "только на первую покупку".into(),
            (Reason::MemberOnly, En) => "needs a loyalty card".into(),
            (Reason::MemberOnly, Ru) => "нужна карта лояльности".into(),
            (Reason::Custom { text }, _) => text.clone(),
            (Reason::Starts { date, weekday, days_ahead }, En) => {
                if *days_ahead < 7 {
                    format!("starts {}", WEEKDAYS_EN[(*weekday as usize - 1) % 7])
                } else {
                    format!("starts on {date}")
                }
            }
            (Reason::Starts { date, weekday, days_ahead }, Ru) => {
                if *days_ahead < 7 {
                    let d = (*weekday as usize - 1) % 7;
                    let pre = if d == 1 { "во" } else { "в" };
                    format!("начнётся {pre} {}", WEEKDAYS_RU_ACC[d])
                } else {
                    format!("начнётся {date}")
                }
            }
            (Reason::BudgetSpent, En) => "budget spent".into(),
            (Reason::BudgetSpent, Ru) => "бюджет акции исчерпан".into(),
            (Reason::MemberLimitReached, En) => "this member has reached the offer's limit".into(),
            (Reason::MemberLimitReached, Ru) => "участник уже использовал лимит акции".into(),
            (Reason::NotCombinable { with }, En) => format!("does not combine with \"{with}\""),
            (Reason::NotCombinable { with }, Ru) => format!("не суммируется с акцией «{with}»"),
            (Reason::NothingQualifies, En) => "nothing on this receipt qualifies".into(),
            (Reason::NothingQualifies, Ru) => "в чеке нет подходящих товаров".into(),
            (Reason::CouponExpired { code }, En) => format!("coupon {code} has expired"),
            (Reason::CouponExpired { code }, Ru) => format!("срок действия купона {code} истёк"),
            (Reason::CouponNotYetValid { code }, En) => format!("coupon {code} is not valid yet"),
            (Reason::CouponNotYetValid { code }, Ru) => format!("купон {code} ещё не действует"),
            (Reason::CouponUsedUp { code }, En) => format!("coupon {code} has been used up"),
            (Reason::CouponUsedUp { code }, Ru) => format!("купон {code} уже использован"),
            (Reason::CouponMemberLimit { code }, En) => format!("this member has already used coupon {code}"),
            (Reason::CouponMemberLimit { code }, Ru) => format!("участник уже использовал купон {code}"),
            (Reason::CouponNotForMember { code }, En) => format!("coupon {code} belongs to another member"),
            (Reason::CouponNotForMember { code }, Ru) => format!("купон {code} выдан другому участнику"),
            (Reason::CouponNeedsMember { code }, En) => format!("coupon {code} needs the member's loyalty card"),
            (Reason::CouponNeedsMember { code }, Ru) => format!("для купона {code} нужна карта участника"),
            (Reason::CouponInactive { code }, En) => format!("coupon {code} is not active"),
            (Reason::CouponInactive { code }, Ru) => format!("купон {code} не активен"),
        }
    }
}
