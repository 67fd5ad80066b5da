//! Table tests for member identity rules: EAN-13, phones, emails, masking, slugs.

use kopilka_domain::identity::*;

#[test]
fn ean13_check_digits_of_real_barcodes() {
    fn digits12(s: &str) -> [u8; 12] {
        let mut out = [0u8; 12];
        for (slot, b) in out.iter_mut().zip(s.bytes()) {
            *slot = b - b'0';
        }
        out
    }
    for (code, check) in
        [("4006381333931", 1), ("5901234123457", 7), ("4600682000136", 6), ("9780306406157", 7), ("2000000123455", 5), ("0000000000000", 0)]
    {
        assert_eq!(ean13_check_digit(&digits12(code)), check, "{code}");
        assert!(is_valid_ean13(code), "{code}");
    }
}

#[test]
fn invalid_ean13() {
    for code in ["4006381333932", "5901234123450", "400638133393", "40063813339311", "400638133393a", "", " 4006381333931"] {
        assert!(!is_valid_ean13(code), "{code:?}");
    }
}

#[test]
fn card_numbers_start_with_2_and_carry_the_check_digit() {
    assert_eq!(card_number_from_digits(&[0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]), "2000000123455");
    assert_eq!(card_number_from_digits(&[0; 11]), "2000000000008");
    let card = card_number_from_digits(&[9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 9]);
    assert_eq!(card.len(), 13);
    assert!(card.starts_with("298765432109"));
    assert!(is_valid_ean13(&card));
}

#[test]
fn imported_cards() {
    assert!(is_valid_imported_card("123456"));
    assert!(is_valid_imported_card("1234567890123456789"));
    assert!(!is_valid_imported_card("12345"));
    assert!(!is_valid_imported_card("12345678901234567890"));
    assert!(!is_valid_imported_card("12345a"));
}

#[test]
fn phones_normalise_to_e164() {
    for (input, expected) in [
        ("8 912 345-67-89", "+79123456789"),
        ("89123456789", "+79123456789"),
        ("7 912 345 67 89", "+79123456789"),
        ("+7 (912) 345-67-89", "+79123456789"),
        ("8(912)345.67.89", "+79123456789"),
        ("9123456789", "+79123456789"),
        ("  +79123456789  ", "+79123456789"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (212) 555-0100", "+12125550100"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ] {
        assert_eq!(normalize_phone(input).as_deref(), Ok(expected), "{input:?}");
    }
}

#[test]
fn bad_phones_are_rejected() {
    for input in [
        "",
        "   ",
        "+",
        "abc",
        "12345",
        "+1234567",
        "+1234567890123456",
        "+0123456789",
        "++79123456789",
        "8 912 345-67-8x",
        "+7 912 345 67 89 ext 1",
        "123456789012",
        "59123456789",
        "+7912345678+9",
        "8_912_345_67_89",
    ] {
        assert!(normalize_phone(input).is_err(), "{input:?} should be rejected");
    }
}

#[test]
fn emails() {
    assert_eq!(normalize_email(" Ivan@Example.COM ").as_deref(), Ok("ivan@example.com"));
    assert_eq!(normalize_email("a.b+c@mail.example.ru").as_deref(), Ok("a.b+c@mail.example.ru"));
    let long = format!("{}@example.com", "a".repeat(250));
    for bad in ["ivan", "@example.com", "ivan@", "ivan@example", "a@b@c.d", "iv an@example.com", "ivan@.com", "ivan@example.", &long] {
        assert!(normalize_email(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn masking_for_pos_keys() {
    assert_eq!(mask_phone("+79123456789"), "+7******6789");
    assert_eq!(mask_phone("+442079460958"), "+4*******0958");
    assert_eq!(mask_phone("+12345678"), "+1***5678");
    assert_eq!(mask_email("ivan@example.com"), "i***@example.com");
    assert_eq!(mask_email("i@example.com"), "i***@example.com");
    assert_eq!(mask_email("юля@пример.рф"), "ю***@пример.рф");
    assert_eq!(mask_email("not-an-email"), "***");
}

#[test]
fn slugs() {
    for (name, expected) in [
        ("Кофейня Ромашка", "kofeynya-romashka"),
        ("Щука и Ёжик", "shchuka-i-ezhik"),
        ("Объект №42", "obekt-42"),
        ("Хлеб, Цветы & Чай", "khleb-tsvety-chay"),
        ("Юла-Яхта", "yula-yakhta"),
        ("Coffee & Co.", "coffee-co"),
        ("  ACME  Shop  ", "acme-shop"),
        ("---", "tenant"),
        ("", "tenant"),
        ("日本", "tenant"),
    ] {
        assert_eq!(slugify(name), expected, "{name:?}");
    }
    assert_eq!(slugify(&"a".repeat(100)), "a".repeat(63));
    // Cut at 63 and never left ending with '-'.
    assert_eq!(slugify(&format!("{} b", "a".repeat(62))), "a".repeat(62));
}
