//! Russian and English: message catalogues, the reader's language, and money, numbers and
//! dates formatted for it.
//!
//! Catalogues are the files `crates/web/i18n/<area>.<lang>.txt` (`common`, `admin`, and
//! each further area its own), embedded at build time by listing the folder. A line is
//! `key = text`; `#` starts a comment; `{name}` in a text is a placeholder. Keys are
//! global and start with their area (`admin.members.title`). A missing Russian text
//! falls back to English, a missing key shows the key; a test checks that every key used
//! in a template exists in both languages.
//!
//! A text that counts something has one line per plural form, `key[one]`, `key[other]` in
//! English and `key[one]`, `key[few]`, `key[many]` in Russian (the CLDR categories of
//! whole numbers, `kopilka_domain::plural`), and is filled by [`Tr::p`] with the count as
//! `{n}`: 1 балл, 2 балла, 5 баллов, 21 балл.
//!
//! The language is the `kp_lang` cookie (set by the switch, `POST /lang`), else the best
//! of `ru`/`en` in `Accept-Language`, else English.

use axum::http::HeaderMap;
pub use kopilka_domain::program::Lang;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::LazyLock;

use crate::embedded;

/// The cookie that remembers the reader's choice.
pub const LANG_COOKIE: &str = "kp_lang";

/// key → [English, Russian].
type Catalogue = HashMap<&'static str, [Option<&'static str>; 2]>;

fn idx(lang: Lang) -> usize {
    match lang {
        Lang::En => 0,
        Lang::Ru => 1,
    }
}

/// Parse every embedded catalogue. A malformed line or a key defined twice is a bug in
/// the catalogue files; the test `catalogues_parse` reports it.
pub fn parse_catalogues() -> Result<Catalogue, String> {
    let mut out: Catalogue = HashMap::new();
    for (file, text) in embedded::CATALOGUES {
        let mut parts = file.split('.');
        let (Some(_area), Some(lang), Some("txt"), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(format!("{file}: catalogue files are named <area>.<en|ru>.txt"));
        };
        let lang = match lang {
            "en" => Lang::En,
            "ru" => Lang::Ru,
            other => return Err(format!("{file}: unknown language {other}")),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else { return Err(format!("{file}:{}: expected key = text", n + 1)) };
            let (k, v) = (k.trim(), v.trim());
            if let Some((_, form)) = k.strip_suffix(']').and_then(|k| k.split_once('['))
                && !["one", "few", "many", "other"].contains(&form)
            {
                return Err(format!("{file}:{}: {k}: a plural form is one of [one], [few], [many], [other]", n + 1));
            }
            let slot = &mut out.entry(k).or_insert([None, None])[idx(lang)];
            if slot.is_some() {
                return Err(format!("{file}:{}: {k} is defined twice", n + 1));
            }
            *slot = Some(v);
        }
    }
    Ok(out)
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| parse_catalogues().unwrap_or_else(|e| panic!("message catalogue: {e}")));

/// The reader's language from the cookie, then `Accept-Language`.
pub fn lang_from_headers(headers: &HeaderMap) -> Lang {
    if let Some(v) = crate::session::cookie(headers, LANG_COOKIE) {
        match v {
            "ru" => return Lang::Ru,
            "en" => return Lang::En,
            _ => {}
        }
    }
    let Some(accept) = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|h| h.to_str().ok()) else { return Lang::En };
    let mut best: Option<(u32, Lang)> = None;
    for item in accept.split(',').take(32) {
        let mut it = item.split(';');
        let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .find_map(|p| p.trim().strip_prefix("q=").map(str::to_owned))
            .and_then(|q| q.parse::<f32>().ok())
            .map(|q| (q.clamp(0.0, 1.0) * 1000.0) as u32)
            .unwrap_or(1000);
        let lang = match tag.split('-').next() {
            Some("ru") => Lang::Ru,
            Some("en") => Lang::En,
            _ => continue,
        };
        if q > 0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l).unwrap_or(Lang::En)
}

/// A text with its `{name}` placeholders replaced.
fn fill(text: &str, args: &[(&str, &dyn Display)]) -> String {
    let mut s = text.to_owned();
    for (name, value) in args {
        s = s.replace(&format!("{{{name}}}"), &value.to_string());
    }
    s
}

/// The translator handed to every template as `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    /// `en` or `ru`, for `<html lang>`.
    pub fn code(&self) -> &'static str {
        match self.lang {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// The text of a key in the reader's language (English when the Russian is missing,
    /// the key itself when both are).
    pub fn m(&self, key: &str) -> &'static str {
        match CATALOGUE.get_key_value(key) {
            Some((k, texts)) => texts[idx(self.lang)].or(texts[0]).unwrap_or(k),
            None => {
                tracing::warn!(key, "message key missing from the catalogues");
                "??"
            }
        }
    }

    /// A text with placeholders filled: `t.f(key, &[("n", &5)])`.
    pub fn f(&self, key: &str, args: &[(&str, &dyn Display)]) -> String {
        fill(self.m(key), args)
    }

    /// The text of a plural key for the count `n`, with `{n}` (grouped like [`Tr::num`]),
    /// `{nth}` (the ordinal: 21st) and `args` filled: `t.p("portal.rewards.price", 22, &[])`
    /// is "22 балла" in Russian.
    pub fn p(&self, key: &str, n: i64, args: &[(&str, &dyn Display)]) -> String {
        let (num, nth) = (self.num(n), kopilka_domain::plural::ordinal(self.lang, n));
        let mut all: Vec<(&str, &dyn Display)> = vec![("n", &num), ("nth", &nth)];
        all.extend_from_slice(args);
        fill(self.plural_text(key, n), &all)
    }

    /// [`Tr::p`] with the count alone (for templates).
    pub fn p1(&self, key: &str, n: impl Into<i64>) -> String {
        self.p(key, n.into(), &[])
    }

    fn plural_text(&self, key: &str, n: i64) -> &'static str {
        for lang in [self.lang, Lang::En] {
            let form = kopilka_domain::plural::cardinal(lang, n.into());
            for form in [form.name(), "other", "many"] {
                if let Some([en, ru]) = CATALOGUE.get(format!("{key}[{form}]").as_str()) {
                    let text = if lang == Lang::En { en } else { ru };
                    if let Some(text) = text {
                        return text;
                    }
                }
            }
        }
        tracing::warn!(key, "plural message key missing from the catalogues");
        "??"
    }

    /// Fill the placeholders of a key that counts nothing but names an ordinal: `{n}` and
    /// `{nth}` (1st, 2nd; 1-й in Russian, whose texts write their own case ending after `{n}`).
    pub fn ordinal(&self, key: &str, n: i64) -> String {
        let (num, nth) = (n.to_string(), kopilka_domain::plural::ordinal(self.lang, n));
        fill(self.m(key), &[("n", &num), ("nth", &nth)])
    }

    /// One placeholder (templates find this easier to call than [`Tr::f`]).
    pub fn f1(&self, key: &str, name: &str, value: impl Display) -> String {
        self.f(key, &[(name, &value)])
    }

    /// An integer with thousands grouped: `1 234 567` / `1,234,567`.
    pub fn num(&self, n: i64) -> String {
        let s = group(n.unsigned_abs(), self.sep());
        if n < 0 { format!("-{s}") } else { s }
    }

    fn sep(&self) -> &'static str {
        match self.lang {
            Lang::En => ",",
            Lang::Ru => "\u{a0}",
        }
    }

    /// Money in minor units of `currency`: `1 234,50 ₽` / `₽1,234.50`, `USD 1,234.50`.
    pub fn money(&self, minor: i64, currency: &str) -> String {
        let digits = minor_digits(currency);
        let scale = 10u64.pow(digits);
        let abs = minor.unsigned_abs();
        let (units, frac) = (abs / scale, abs % scale);
        let dec = match self.lang {
            Lang::En => ".",
            Lang::Ru => ",",
        };
        let mut amount = group(units, self.sep());
        if digits > 0 {
            amount = format!("{amount}{dec}{frac:0width$}", width = digits as usize);
        }
        let sign = if minor < 0 { "-" } else { "" };
        match (self.lang, symbol(currency)) {
            (Lang::Ru, Some(sym)) => format!("{sign}{amount}\u{a0}{sym}"),
            (Lang::Ru, None) => format!("{sign}{amount}\u{a0}{currency}"),
            (Lang::En, Some(sym)) => format!("{sign}{sym}{amount}"),
            (Lang::En, None) => format!("{sign}{currency}\u{a0}{amount}"),
        }
    }

    /// Money without the currency, for form fields and CSV: `1234.50`.
    pub fn plain_money(minor: i64, currency: &str) -> String {
        let digits = minor_digits(currency);
        if digits == 0 {
            return minor.to_string();
        }
        let scale = 10i64.pow(digits);
        let sign = if minor < 0 { "-" } else { "" };
        format!("{sign}{}.{:0width$}", (minor / scale).abs(), (minor % scale).abs(), width = digits as usize)
    }

    /// Basis points as a percentage: `12,5 %` / `12.5%`.
    pub fn percent_bp(&self, bp: i64) -> String {
        let whole = bp / 100;
        let frac = (bp % 100).abs();
        let num = if frac == 0 {
            whole.to_string()
        } else if frac % 10 == 0 {
            format!("{whole}{}{}", if self.lang == Lang::Ru { "," } else { "." }, frac / 10)
        } else {
            format!("{whole}{}{frac:02}", if self.lang == Lang::Ru { "," } else { "." })
        };
        match self.lang {
            Lang::En => format!("{num}%"),
            Lang::Ru => format!("{num}\u{a0}%"),
        }
    }

    /// A date in a time zone: `22.11.2026` / `Nov 22, 2026`.
    pub fn date(&self, unix_s: i64, tz: &str) -> String {
        let Some(t) = local(unix_s, tz) else { return String::new() };
        use chrono::Datelike;
        match self.lang {
            Lang::Ru => t.format("%d.%m.%Y").to_string(),
            Lang::En => format!("{} {}, {}", MONTHS_EN[t.month0() as usize], t.day(), t.year()),
        }
    }

    /// A date and time (24-hour) in a time zone: `22.11.2026 14:05` / `Nov 22, 2026 14:05`.
    pub fn datetime(&self, unix_s: i64, tz: &str) -> String {
        let Some(t) = local(unix_s, tz) else { return String::new() };
        format!("{} {}", self.date(unix_s, tz), t.format("%H:%M"))
    }
}

/// An integer, or a reference to one: templates hand fields over by reference.
pub trait Int {
    fn get(self) -> i64;
}

impl Int for i64 {
    fn get(self) -> i64 {
        self
    }
}

impl Int for &i64 {
    fn get(self) -> i64 {
        *self
    }
}

impl Int for &&i64 {
    fn get(self) -> i64 {
        **self
    }
}

/// Formatting for one programme: the reader's language with the programme's currency and
/// time zone. Templates call `fmt.money(x)`, `fmt.date(t)`, `fmt.points(n)`.
#[derive(Debug, Clone)]
pub struct Fmt {
    pub t: Tr,
    pub currency: String,
    pub tz: String,
}

impl Fmt {
    pub fn new(t: Tr, program: &kopilka_domain::program::Program) -> Fmt {
        Fmt { t, currency: program.currency.clone(), tz: program.time_zone.clone() }
    }

    pub fn money(&self, minor: impl Int) -> String {
        self.t.money(minor.get(), &self.currency)
    }

    pub fn points(&self, n: impl Int) -> String {
        self.t.num(n.get())
    }

    pub fn date(&self, unix_s: impl Int) -> String {
        self.t.date(unix_s.get(), &self.tz)
    }

    pub fn datetime(&self, unix_s: impl Int) -> String {
        self.t.datetime(unix_s.get(), &self.tz)
    }

    pub fn percent_bp(&self, bp: impl Int) -> String {
        self.t.percent_bp(bp.get())
    }

    /// The time zone's offset from UTC now, in seconds (for bucketing days).
    pub fn offset_s(&self, unix_s: i64) -> i64 {
        use chrono::Offset;
        let tz: chrono_tz::Tz = self.tz.parse().unwrap_or(chrono_tz::UTC);
        chrono::DateTime::from_timestamp(unix_s, 0).map(|t| t.with_timezone(&tz).offset().fix().local_minus_utc() as i64).unwrap_or(0)
    }
}

const MONTHS_EN: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn local(unix_s: i64, tz: &str) -> Option<chrono::DateTime<chrono_tz::Tz>> {
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
    chrono::DateTime::from_timestamp(unix_s, 0).map(|t| t.with_timezone(&tz))
}

fn group(n: u64, sep: &str) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * sep.len());
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(ch);
    }
    out
}

/// Digits after the decimal point of a currency (ISO 4217; two unless listed).
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "PYG" | "XAF" | "XOF" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "LYD" | "IQD" => 3,
        _ => 2,
    }
}

fn symbol(currency: &str) -> Option<&'static str> {
    Some(match currency {
        "RUB" => "₽",
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "KZT" => "₸",
        "UAH" => "₴",
        "TRY" => "₺",
        "INR" => "₹",
        "CNY" | "JPY" => "¥",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_money(lang: Lang, minor: i64, currency: &str, expected: &str) {
        assert_eq!(Tr::new(lang).money(minor, currency).replace('\u{a0}', " "), expected);
    }

    #[test]
    fn money_for_the_locale() {
        check_money(Lang::Ru, 123450, "RUB", "1 234,50 ₽");
        check_money(Lang::En, 123450, "RUB", "₽1,234.50");
        check_money(Lang::En, 123450, "CHF", "CHF 1,234.50");
        check_money(Lang::Ru, -5, "RUB", "-0,05 ₽");
        check_money(Lang::En, 1234567, "JPY", "¥1,234,567");
        check_money(Lang::Ru, 0, "RUB", "0,00 ₽");
        check_money(Lang::En, 100_000_000_000_000, "RUB", "₽1,000,000,000,000.00");
        assert_eq!(Tr::plain_money(-123450, "RUB"), "-1234.50");
    }

    #[test]
    fn dates_in_the_programme_time_zone() {
        // 2026-11-21T22:30:00Z is already the 22nd in Moscow.
        let t = 1_795_300_200;
        assert_eq!(Tr::new(Lang::Ru).date(t, "Europe/Moscow"), "22.11.2026");
        assert_eq!(Tr::new(Lang::En).date(t, "Europe/Moscow"), "Nov 22, 2026");
        assert_eq!(Tr::new(Lang::En).date(t, "UTC"), "Nov 21, 2026");
        assert_eq!(Tr::new(Lang::Ru).datetime(t, "Europe/Moscow"), "22.11.2026 01:30");
    }

    #[test]
    fn numbers_and_percentages() {
        assert_eq!(Tr::new(Lang::En).num(-1234567), "-1,234,567");
        assert_eq!(Tr::new(Lang::Ru).num(999).as_str(), "999");
        assert_eq!(Tr::new(Lang::En).percent_bp(1250), "12.5%");
        assert_eq!(Tr::new(Lang::Ru).percent_bp(5000).replace('\u{a0}', " "), "50 %");
        assert_eq!(Tr::new(Lang::En).percent_bp(1234), "12.34%");
    }

    #[test]
    fn accept_language_picks_the_best_known() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(axum::http::header::ACCEPT_LANGUAGE, v.parse().unwrap());
            lang_from_headers(&m)
        };
        assert_eq!(h("ru-RU,ru;q=0.9,en-US;q=0.8"), Lang::Ru);
        assert_eq!(h("de-DE,en;q=0.5,ru;q=0.7"), Lang::Ru);
        assert_eq!(h("fr"), Lang::En);
        assert_eq!(h("en-GB"), Lang::En);
        let mut m = HeaderMap::new();
        m.insert(axum::http::header::ACCEPT_LANGUAGE, "en".parse().unwrap());
        m.insert(axum::http::header::COOKIE, "a=b; kp_lang=ru".parse().unwrap());
        assert_eq!(lang_from_headers(&m), Lang::Ru);
    }

    #[test]
    fn catalogues_parse_and_both_languages_have_every_key() {
        let c = parse_catalogues().unwrap();
        let mut missing: Vec<String> = c
            .iter()
            .filter(|(k, _)| !k.ends_with(']'))
            .filter_map(|(k, [en, ru])| match (en, ru) {
                (Some(_), Some(_)) => None,
                (None, _) => Some(format!("{k}: no English text")),
                (_, None) => Some(format!("{k}: no Russian text")),
            })
            .collect();
        missing.sort();
        assert!(missing.is_empty(), "{missing:#?}");
    }

    /// Every text that counts has every plural form of both languages, and no other.
    #[test]
    fn plural_keys_have_every_form_of_both_languages() {
        let c = parse_catalogues().unwrap();
        let bases: std::collections::BTreeSet<&str> =
            c.keys().filter_map(|k| k.strip_suffix(']')?.split_once('[').map(|(b, _)| b)).collect();
        assert!(bases.len() >= 10, "{bases:?}");
        let mut wrong = Vec::new();
        for base in bases {
            for lang in [Lang::En, Lang::Ru] {
                let needed: Vec<&str> = kopilka_domain::plural::Plural::forms(lang).iter().map(|f| f.name()).collect();
                let have: Vec<&str> = ["one", "few", "many", "other"]
                    .into_iter()
                    .filter(|f| c.get(format!("{base}[{f}]").as_str()).is_some_and(|t| t[idx(lang)].is_some()))
                    .collect();
                if have != needed {
                    wrong.push(format!("{base} ({lang:?}): has {have:?}, needs {needed:?}"));
                }
            }
            assert!(!c.contains_key(base), "{base} is both a plural and a plain key");
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn plural_forms_of_points_in_both_languages() {
        let (en, ru) = (Tr::new(Lang::En), Tr::new(Lang::Ru));
        let counts = [1, 2, 5, 11, 21, 22];
        let ru_texts: Vec<String> = counts.iter().map(|n| ru.p1("portal.rewards.price", *n)).collect();
        assert_eq!(ru_texts, ["1 балл", "2 балла", "5 баллов", "11 баллов", "21 балл", "22 балла"]);
        let en_texts: Vec<String> = counts.iter().map(|n| en.p1("portal.rewards.price", *n)).collect();
        assert_eq!(en_texts, ["1 point", "2 points", "5 points", "11 points", "21 points", "22 points"]);
        assert_eq!(ru.p1("portal.rewards.price", 1_234_561), "1\u{a0}234\u{a0}561 балл");
        assert_eq!(en.p("portal.card.expiring_row", 1, &[("date", &"1 May")]), "1 point on 1 May");
        assert_eq!(ru.p("portal.card.expiring_row", 22, &[("date", &"1 мая")]), "22 балла — 1 мая");
        assert_eq!(
            en.ordinal("portal.rules.expiry_years", 1),
            "Points expire on 1 January of the 1st year after the year in which they became available."
        );
        assert_eq!(en.ordinal("admin.campaigns.fx_stamps", 22), "stamp card, every 22nd free");
        assert_eq!(ru.ordinal("admin.campaigns.fx_stamps", 22), "штампы, каждый 22-й бесплатно");
    }

    /// Every `t.m("…")`, `t.f("…"` and `t.f1("…"` in a template or in the code names a key
    /// that exists, and every `t.p("…"`, `t.p1("…"` a plural key.
    #[test]
    fn every_key_used_exists() {
        let c = parse_catalogues().unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut unknown = Vec::new();
        let mut stack = vec![root.join("templates"), root.join("src")];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                for pat in [".m(\"", ".f(\"", ".f1(\"", ".ordinal(\"", ".p(\"", ".p1(\""] {
                    let plural = pat.starts_with(".p");
                    for (i, _) in text.match_indices(pat) {
                        let rest = &text[i + pat.len()..];
                        let key = &rest[..rest.find('"').unwrap()];
                        let found = if plural { c.contains_key(format!("{key}[one]").as_str()) } else { c.contains_key(key) };
                        if key.contains('.') && !key.contains(' ') && !found {
                            unknown.push(format!("{}: {key}", p.display()));
                        }
                    }
                }
            }
        }
        assert!(unknown.is_empty(), "{unknown:#?}");
    }
}
