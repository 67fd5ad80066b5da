//! Member identity rules: card numbers (EAN-13 check digit), phones (E.164), emails,
//! masking for pos keys.

/// The EAN-13 check digit for 12 leading digits.
pub fn ean13_check_digit(first12: &[u8; 12]) -> u8 {
    // Weights 1, 3, 1, 3, ... from the left for the 12 data digits.
    let sum: u32 = first12.iter().enumerate().map(|(i, &d)| u32::from(d) * if i % 2 == 0 { 1 } else { 3 }).sum();
    ((10 - sum % 10) % 10) as u8
}

/// A 13-digit card number starting with '2' built from 11 random digits given as the
/// argument (each 0..=9) plus the check digit: "2" + 11 digits + check.
pub fn card_number_from_digits(random11: &[u8; 11]) -> String {
    let mut first12 = [0u8; 12];
    first12[0] = 2;
    for (slot, &d) in first12[1..].iter_mut().zip(random11) {
        *slot = d % 10;
    }
    let check = ean13_check_digit(&first12);
    first12.iter().chain(std::iter::once(&check)).map(|&d| char::from(b'0' + d)).collect()
}

/// True for a valid 13-digit card number (correct EAN-13 check digit).
pub fn is_valid_ean13(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len() != 13 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut first12 = [0u8; 12];
    for (slot, b) in first12.iter_mut().zip(bytes) {
        *slot = b - b'0';
    }
    ean13_check_digit(&first12) == bytes[12] - b'0'
}

/// An imported card number: 6 to 19 ASCII digits.
pub fn is_valid_imported_card(s: &str) -> bool {
    (6..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// Normalise a phone to E.164. Spaces, dashes, dots and parentheses are ignored. A number
/// with a leading '+' keeps its country code. Without '+': 11 digits starting with 8 or 7
/// are Russian (8 912 345-67-89 and 7 912... become +79123456789); 10 digits are Russian
/// without the trunk prefix (+7 then the digits). The result is '+' and 8 to 15 digits,
/// not starting with 0; anything else is an error message.
pub fn normalize_phone(s: &str) -> Result<String, String> {
    const SHAPE: &str = "must be a phone number, e.g. +79123456789";
    let compact: String = s.trim().chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    let (plus, digits) = match compact.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, compact.as_str()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SHAPE.into());
    }
    let e164_digits = if plus {
        digits.to_string()
    } else if digits.len() == 11 && (digits.starts_with('8') || digits.starts_with('7')) {
        format!("7{}", &digits[1..])
    } else if digits.len() == 10 {
        format!("7{digits}")
    } else {
        return Err("must start with + and the country code, or be a Russian number".into());
    };
    if !(8..=15).contains(&e164_digits.len()) || e164_digits.starts_with('0') {
        return Err(SHAPE.into());
    }
    Ok(format!("+{e164_digits}"))
}

/// Lower-case and trim an email; it must have exactly one '@' with a non-empty local part
/// and a domain containing a dot, no spaces, at most 254 chars.
pub fn normalize_email(s: &str) -> Result<String, String> {
    let email = s.trim().to_lowercase();
    let valid = email.chars().count() <= 254
        && !email.chars().any(char::is_whitespace)
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty() && !domain.contains('@') && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            }
            None => false,
        };
    if valid { Ok(email) } else { Err("must be an email address, e.g. ivan@example.com".into()) }
}

/// "+79123456789" -> "+7******6789": keep '+', the first digit and the last 4 digits.
pub fn mask_phone(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        // Too short to show anything without showing most of it.
        return format!("+{}", "*".repeat(digits.len()));
    }
    let last4: String = digits[digits.len() - 4..].iter().collect();
    format!("+{}{}{last4}", digits[0], "*".repeat(digits.len() - 5))
}

/// "ivan@example.com" -> "i***@example.com".
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// Slug from a tenant name: lower-case, Russian Cyrillic transliterated to Latin
/// (а→a, б→b, ..., ж→zh, х→kh, ц→ts, ч→ch, ш→sh, щ→shch, ы→y, ъ/ь dropped, э→e, ю→yu,
/// я→ya, ё→e, й→y), other runs of non [a-z0-9] become one '-', trimmed of '-', at most 63
/// chars; empty becomes "tenant".
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    let mut pending_dash = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        let latin: &str = match c {
            'a'..='z' | '0'..='9' => {
                if pending_dash && !slug.is_empty() {
                    slug.push('-');
                }
                pending_dash = false;
                slug.push(c);
                continue;
            }
            'ъ' | 'ь' => continue,
            _ => transliterate(c).unwrap_or(""),
        };
        if latin.is_empty() {
            pending_dash = true;
            continue;
        }
        if pending_dash && !slug.is_empty() {
            slug.push('-');
        }
        pending_dash = false;
        slug.push_str(latin);
    }
    // Everything pushed is ASCII, so byte truncation is safe.
    slug.truncate(63);
    let slug = slug.trim_matches('-');
    if slug.is_empty() { "tenant".into() } else { slug.into() }
}

/// Russian Cyrillic (lower case) to Latin, as in passports' simplified style.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'д' => "d",
        'е' | 'ё' | 'э' => "e",
        'ж' => "zh",
        'з' => "z",
        'и' => "i",
        'й' | 'ы' => "y",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' => "u",
        'ф' => "f",
        'х' => "kh",
        'ц' => "ts",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "shch",
        'ю' => "yu",
        'я' => "ya",
        _ => return None,
    })
}
