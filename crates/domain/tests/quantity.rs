//! Table tests for parsing and printing line quantities.

use kopilka_domain::quantity::Quantity;
use serde_json::json;

#[test]
fn accepted_quantities() {
    for (input, expected) in [
        (json!(1), Quantity::Units(1)),
        (json!(2), Quantity::Units(2)),
        (json!(1_000_000_000_000i64), Quantity::Units(1_000_000_000_000)),
        (json!("35.27"), Quantity::Milli(35270)),
        (json!("2.000"), Quantity::Milli(2000)),
        (json!("2"), Quantity::Milli(2000)),
        (json!("0.001"), Quantity::Milli(1)),
        (json!("0.5"), Quantity::Milli(500)),
        (json!("1000000000000"), Quantity::Milli(1_000_000_000_000_000)),
        (json!("1000000000000.000"), Quantity::Milli(1_000_000_000_000_000)),
    ] {
        assert_eq!(Quantity::from_json(&input), Ok(expected), "{input}");
    }
}

#[test]
fn rejected_quantities() {
    let floats: Vec<serde_json::Value> = ["1.5", "1.0", "1e3", "2E0"].iter().map(|s| serde_json::from_str(s).unwrap()).collect();
    let others = [
        json!(0),
        json!(-1),
        json!(1_000_000_000_001i64),
        json!(u64::MAX),
        json!("0"),
        json!("0.000"),
        json!("-1"),
        json!("+1"),
        json!("1.2345"),
        json!("1e3"),
        json!(" 1"),
        json!("1 "),
        json!(""),
        json!(".5"),
        json!("5."),
        json!("1,5"),
        json!("1.2.3"),
        json!("1000000000000.001"),
        json!("99999999999999999999"),
        json!(null),
        json!(true),
        json!([1]),
        json!({"value": 1}),
    ];
    for input in floats.iter().chain(others.iter()) {
        let got = Quantity::from_json(input);
        assert!(got.is_err(), "{input} should be rejected, got {got:?}");
    }
}

#[test]
fn printing() {
    for (q, expected) in [
        (Quantity::Units(2), json!(2)),
        (Quantity::Milli(35270), json!("35.27")),
        (Quantity::Milli(2000), json!("2")),
        (Quantity::Milli(500), json!("0.5")),
        (Quantity::Milli(1), json!("0.001")),
        (Quantity::Milli(1_000_000_000_000_000), json!("1000000000000")),
    ] {
        assert_eq!(q.to_json(), expected, "{q:?}");
        assert_eq!(serde_json::to_value(q).unwrap(), expected);
        // What is printed parses back to the same amount.
        assert_eq!(Quantity::from_json(&expected), Ok(q));
    }
}

#[test]
fn storage_round_trip() {
    for q in [Quantity::Units(3), Quantity::Milli(35270)] {
        let (kind, base) = q.to_storage();
        assert_eq!(Quantity::from_storage(kind, base), Some(q));
    }
    assert_eq!(Quantity::from_storage("litres", 1), None);
    assert_eq!(Quantity::Units(3).with_base(2), Quantity::Units(2));
    assert_eq!(Quantity::Milli(3).with_base(2), Quantity::Milli(2));
}

#[test]
fn deserialize_matches_from_json() {
    assert_eq!(serde_json::from_str::<Quantity>("2").unwrap(), Quantity::Units(2));
    assert_eq!(serde_json::from_str::<Quantity>("\"35.27\"").unwrap(), Quantity::Milli(35270));
    assert!(serde_json::from_str::<Quantity>("1.5").is_err());
    assert!(serde_json::from_str::<Quantity>("\"1.2345\"").is_err());
}
