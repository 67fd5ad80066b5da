//! Plural and ordinal forms of English and Russian, after the Unicode CLDR rules for
//! integers, so that a count reads right in both languages: 1 point, 2 points; 1 балл,
//! 2 балла, 5 баллов, 11 баллов, 21 балл, 22 балла.
//!
//! Texts choose a form by [`Plural`]: the message catalogues of the web pages write one
//! text per form (`key[one]`, `key[few]`, `key[many]`, `key[other]`), and the domain's own
//! messages call [`pick`].

use crate::program::Lang;

/// A CLDR plural category. For integers English uses `One` and `Other`; Russian uses
/// `One`, `Few` and `Many` (`Other` is its form for fractions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plural {
    One,
    Few,
    Many,
    Other,
}

impl Plural {
    /// The name a catalogue uses for this form: `one`, `few`, `many`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            Plural::One => "one",
            Plural::Few => "few",
            Plural::Many => "many",
            Plural::Other => "other",
        }
    }

    /// The forms a language needs for whole numbers, in the order a catalogue lists them.
    pub fn forms(lang: Lang) -> &'static [Plural] {
        match lang {
            Lang::En => &[Plural::One, Plural::Other],
            Lang::Ru => &[Plural::One, Plural::Few, Plural::Many],
        }
    }
}

/// The plural category of the whole number `n` (its sign does not matter).
pub fn cardinal(lang: Lang, n: i128) -> Plural {
    let n = n.unsigned_abs();
    match lang {
        Lang::En => {
            if n == 1 {
                Plural::One
            } else {
                Plural::Other
            }
        }
        Lang::Ru => {
            let (n10, n100) = (n % 10, n % 100);
            if n10 == 1 && n100 != 11 {
                Plural::One
            } else if (2..=4).contains(&n10) && !(12..=14).contains(&n100) {
                Plural::Few
            } else {
                Plural::Many
            }
        }
    }
}

/// One of three Russian forms (or, for English, `one` or `many` as singular and plural)
/// for `n`: `pick(Lang::Ru, 22, ["балл", "балла", "баллов"])` is `балла`.
pub fn pick(lang: Lang, n: i128, [one, few, many]: [&str; 3]) -> &str {
    match cardinal(lang, n) {
        Plural::One => one,
        Plural::Few => few,
        Plural::Many | Plural::Other => many,
    }
}

/// `n` as an ordinal: `1st`, `2nd`, `3rd`, `11th`, `21st` in English; `1-й`, `21-й` in
/// Russian (the masculine nominative; a text that needs another case writes its own
/// ending after `{n}`).
pub fn ordinal(lang: Lang, n: i64) -> String {
    match lang {
        Lang::En => {
            let (n10, n100) = (n.unsigned_abs() % 10, n.unsigned_abs() % 100);
            let suffix = match (n10, n100) {
                (1, x) if x != 11 => "st",
                (2, x) if x != 12 => "nd",
                (3, x) if x != 13 => "rd",
                _ => "th",
            };
            format!("{n}{suffix}")
        }
        Lang::Ru => format!("{n}-й"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lang: Lang, n: i128, expected: Plural) {
        assert_eq!(cardinal(lang, n), expected, "{lang:?} {n}");
    }

    #[test]
    fn english_cardinals() {
        for (n, p) in [
            (0, Plural::Other),
            (1, Plural::One),
            (2, Plural::Other),
            (5, Plural::Other),
            (11, Plural::Other),
            (21, Plural::Other),
            (22, Plural::Other),
            (-1, Plural::One),
        ] {
            check(Lang::En, n, p);
        }
    }

    #[test]
    fn russian_cardinals() {
        let table = [
            (0, Plural::Many),
            (1, Plural::One),
            (2, Plural::Few),
            (4, Plural::Few),
            (5, Plural::Many),
            (11, Plural::Many),
            (12, Plural::Many),
            (14, Plural::Many),
            (21, Plural::One),
            (22, Plural::Few),
            (25, Plural::Many),
            (101, Plural::One),
            (111, Plural::Many),
            (112, Plural::Many),
            (1_000_002, Plural::Few),
        ];
        for (n, p) in table {
            check(Lang::Ru, n, p);
        }
    }

    #[test]
    fn points_in_both_languages() {
        let words = |lang, n| {
            format!("{n} {}", pick(lang, n, if lang == Lang::Ru { ["балл", "балла", "баллов"] } else { ["point", "points", "points"] }))
        };
        let ru: Vec<String> = [1, 2, 5, 11, 21, 22].iter().map(|n| words(Lang::Ru, *n)).collect();
        assert_eq!(ru, ["1 балл", "2 балла", "5 баллов", "11 баллов", "21 балл", "22 балла"]);
        let en: Vec<String> = [1, 2, 5, 11, 21, 22].iter().map(|n| words(Lang::En, *n)).collect();
        assert_eq!(en, ["1 point", "2 points", "5 points", "11 points", "21 points", "22 points"]);
    }

    #[test]
    fn ordinals() {
        let en: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111].iter().map(|n| ordinal(Lang::En, *n)).collect();
        assert_eq!(en, ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th"]);
        assert_eq!(ordinal(Lang::Ru, 21), "21-й");
    }
}
