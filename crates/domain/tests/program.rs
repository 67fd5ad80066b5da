//! Programme configuration: defaults, serde shape, normalisation and validation; tiers.

use kopilka_domain::program::{Expiry, Period, Program, RedeemAuth, Rounding, Tier, default_tiers};
use kopilka_domain::tiers::{next_tier, tier_for_spend};
use serde_json::json;

fn parse(v: serde_json::Value) -> Program {
    serde_json::from_value(v).expect("programme parses")
}

/// Normalise and return the field errors (paths only, sorted).
fn error_paths(v: serde_json::Value) -> Vec<String> {
    parse(v).normalize().expect_err("should be invalid").into_keys().collect()
}

#[test]
fn defaults_are_the_contracts() {
    let p = Program::default();
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        json!({
            "currency": "RUB",
            "time_zone": "UTC",
            "earn":   {"points_per_unit": 1, "unit_minor": 1000, "rounding": "floor"},
            "redeem": {"point_value_minor": 100, "max_share_bp": 5000, "min_balance": 0, "auth": "none", "hold_ttl_s": 900},
            "no_earn_categories": [],
            "no_discount_categories": ["tobacco"],
            "pending_days": 0,
            "expiry": {"policy": "never"},
            "tier_window_days": 365,
            "offline_max_age_days": 30,
            "tiers": [
                {"code": "bronze", "name": "Bronze", "min_spend_minor": 0,       "earn_multiplier_bp": 10000, "discount_bp": 0},
                {"code": "silver", "name": "Silver", "min_spend_minor": 1000000, "earn_multiplier_bp": 12500, "discount_bp": 0},
                {"code": "gold",   "name": "Gold",   "min_spend_minor": 5000000, "earn_multiplier_bp": 15000, "discount_bp": 0}
            ]
        })
    );
    assert_eq!(p.clone().normalize(), Ok(p));
}

#[test]
fn shapes_parse() {
    let p = parse(json!({
        "time_zone": "Europe/Moscow",
        "earn": {"rounding": "half_up"},
        "redeem": {"auth": "qr_or_otp"},
        "expiry": {"policy": "end_of_period", "period": "month", "periods": 1}
    }));
    assert_eq!(p.earn.rounding, Rounding::HalfUp);
    assert_eq!(p.earn.unit_minor, 1000);
    assert_eq!(p.redeem.auth, RedeemAuth::QrOrOtp);
    assert_eq!(p.expiry, Expiry::EndOfPeriod { period: Period::Month, periods: 1 });
    assert_eq!(p.tz(), chrono_tz::Europe::Moscow);
    assert_eq!(parse(json!({"expiry": {"policy": "rolling_days", "days": 90}})).expiry, Expiry::RollingDays { days: 90 });
    // Unknown fields are rejected at every level.
    assert!(serde_json::from_value::<Program>(json!({"colour": "red"})).is_err());
    assert!(serde_json::from_value::<Program>(json!({"earn": {"points": 1}})).is_err());
    assert!(serde_json::from_value::<Program>(json!({"expiry": {"policy": "never", "days": 1}})).is_err());
    assert!(serde_json::from_value::<Program>(json!({"expiry": {"policy": "rolling_days", "days": 1, "periods": 2}})).is_err());
    assert!(serde_json::from_value::<Program>(json!({"expiry": {"policy": "rolling_days"}})).is_err());
    assert!(serde_json::from_value::<Program>(json!({"expiry": {"policy": "weekly"}})).is_err());
    assert_eq!(parse(json!({"expiry": {"policy": "never"}})).expiry, Expiry::Never);
    assert_eq!(serde_json::to_value(Expiry::Never).unwrap(), json!({"policy": "never"}));
    assert_eq!(
        serde_json::to_value(Expiry::EndOfPeriod { period: Period::Year, periods: 2 }).unwrap(),
        json!({"policy": "end_of_period", "period": "year", "periods": 2})
    );
    assert!(serde_json::from_value::<Program>(json!({"tiers": [{"code": "x"}]})).is_err(), "min_spend_minor is required");
}

#[test]
fn normalize_fills_lowercases_and_sorts() {
    let p = parse(json!({
        "no_earn_categories": ["Gift_Cards"],
        "no_discount_categories": ["Tobacco", "АЛКОГОЛЬ"],
        "tiers": [
            {"code": "vip", "min_spend_minor": 900},
            {"code": "base", "name": "Base", "min_spend_minor": 0, "discount_bp": 300},
        ]
    }))
    .normalize()
    .unwrap();
    assert_eq!(p.no_earn_categories, vec!["gift_cards"]);
    assert_eq!(p.no_discount_categories, vec!["tobacco", "алкоголь"]);
    assert_eq!(
        p.tiers,
        vec![
            Tier { code: "base".into(), name: "Base".into(), min_spend_minor: 0, earn_multiplier_bp: 10000, discount_bp: 300 },
            Tier { code: "vip".into(), name: "vip".into(), min_spend_minor: 900, earn_multiplier_bp: 10000, discount_bp: 0 },
        ]
    );
    assert!(p.is_no_discount(Some("алкоголь")) && p.is_no_discount(Some("Алкоголь")) && p.is_no_discount(Some("TOBACCO")));
    assert!(!p.is_no_discount(None) && !p.is_no_discount(Some("music")));
    assert!(p.is_no_earn(Some("GIFT_CARDS")));
    // An empty tier list is allowed.
    assert_eq!(parse(json!({"tiers": []})).normalize().unwrap().tiers, vec![]);
}

#[test]
fn validation_reports_every_field() {
    let table: Vec<(serde_json::Value, Vec<&str>)> = vec![
        (json!({"currency": "rub"}), vec!["currency"]),
        (json!({"currency": "RUBL"}), vec!["currency"]),
        (json!({"time_zone": "Mars/Olympus"}), vec!["time_zone"]),
        (json!({"earn": {"points_per_unit": -1, "unit_minor": 0}}), vec!["earn.points_per_unit", "earn.unit_minor"]),
        (
            json!({"redeem": {"point_value_minor": 0, "max_share_bp": 10001, "min_balance": -1, "hold_ttl_s": 0}}),
            vec!["redeem.hold_ttl_s", "redeem.max_share_bp", "redeem.min_balance", "redeem.point_value_minor"],
        ),
        (json!({"redeem": {"hold_ttl_s": 86401}}), vec!["redeem.hold_ttl_s"]),
        (
            json!({"pending_days": 3651, "tier_window_days": 0, "offline_max_age_days": 36501}),
            vec!["offline_max_age_days", "pending_days", "tier_window_days"],
        ),
        (json!({"expiry": {"policy": "rolling_days", "days": 0}}), vec!["expiry.days"]),
        (json!({"expiry": {"policy": "end_of_period", "period": "year", "periods": 36501}}), vec!["expiry.periods"]),
        (json!({"tiers": [{"code": "a", "min_spend_minor": 0}, {"code": "b", "min_spend_minor": 0}]}), vec!["tiers[1].min_spend_minor"]),
        (json!({"tiers": [{"code": "a", "min_spend_minor": 0}, {"code": "a", "min_spend_minor": 5}]}), vec!["tiers[1].code"]),
        (
            json!({"tiers": [
                {"code": "", "min_spend_minor": -1},
                {"code": "x".repeat(65), "min_spend_minor": 1_000_000_000_001i64, "earn_multiplier_bp": 1_000_001, "discount_bp": 10001}
            ]}),
            vec![
                "tiers[0].code",
                "tiers[0].min_spend_minor",
                "tiers[1].code",
                "tiers[1].discount_bp",
                "tiers[1].earn_multiplier_bp",
                "tiers[1].min_spend_minor",
            ],
        ),
        (json!({"no_discount_categories": ["ok", "c".repeat(101)]}), vec!["no_discount_categories[1]"]),
        (
            json!({"currency": "rub", "redeem": {"max_share_bp": -5}, "tiers": [{"code": "a", "min_spend_minor": 1}, {"code": "b", "min_spend_minor": 1}]}),
            vec!["currency", "redeem.max_share_bp", "tiers[1].min_spend_minor"],
        ),
    ];
    for (input, expected) in table {
        assert_eq!(error_paths(input.clone()), expected, "{input}");
    }
    let errors =
        parse(json!({"tiers": [{"code": "a", "min_spend_minor": 7}, {"code": "b", "min_spend_minor": 7}]})).normalize().unwrap_err();
    assert_eq!(errors["tiers[1].min_spend_minor"], "two tiers with the same min_spend_minor");

    let many: Vec<_> = (0..51).map(|i| json!({"code": format!("t{i}"), "min_spend_minor": i})).collect();
    assert_eq!(error_paths(json!({"tiers": many})), vec!["tiers"]);
    // Limits are inclusive.
    let edge = json!({
        "earn": {"points_per_unit": 0, "unit_minor": 1_000_000_000_000i64},
        "redeem": {"max_share_bp": 10000, "hold_ttl_s": 86400, "min_balance": 1_000_000_000_000i64},
        "pending_days": 3650, "offline_max_age_days": 0, "tier_window_days": 36500,
        "tiers": [{"code": "x".repeat(64), "min_spend_minor": 1_000_000_000_000i64, "earn_multiplier_bp": 1_000_000, "discount_bp": 10000}]
    });
    assert!(parse(edge).normalize().is_ok());
}

#[test]
fn tier_for_spend_table() {
    let tiers = default_tiers();
    let mut reversed = tiers.clone();
    reversed.reverse();
    for (spend, expected) in [
        (0, Some("bronze")),
        (999_999, Some("bronze")),
        (1_000_000, Some("silver")),
        (4_999_999, Some("silver")),
        (5_000_000, Some("gold")),
        (i64::MAX, Some("gold")),
    ] {
        assert_eq!(tier_for_spend(&tiers, spend).map(|t| t.code.as_str()), expected, "{spend}");
        assert_eq!(tier_for_spend(&reversed, spend).map(|t| t.code.as_str()), expected, "{spend} (any order)");
    }
    assert!(tier_for_spend(&[], 100).is_none());
    // Without a tier at 0, a small spend has no tier.
    assert!(tier_for_spend(&tiers[1..], 500).is_none());
    // A negative spend (more refunded than bought in the window) qualifies for nothing above 0.
    assert_eq!(tier_for_spend(&tiers, -1).map(|t| t.code.as_str()), None);
}

#[test]
fn next_tier_table() {
    let tiers = default_tiers();
    let next = |spend| next_tier(&tiers, spend).map(|(t, gap)| (t.code.clone(), gap));
    assert_eq!(next(0), Some(("silver".into(), 1_000_000)));
    assert_eq!(next(999_999), Some(("silver".into(), 1)));
    assert_eq!(next(1_000_000), Some(("gold".into(), 4_000_000)));
    assert_eq!(next(4_999_999), Some(("gold".into(), 1)));
    assert_eq!(next(5_000_000), None);
    assert_eq!(next_tier(&[], 0).map(|(t, _)| t.code.clone()), None);
}
