//! The campaign engine: campaigns compiled once when saved, indexed by what can trigger
//! them, evaluated against a receipt (or an action event) into a plan of effects for
//! [`crate::receipt::calculate`], and the nearest misses with their reasons.

mod reason;
mod spec;

pub use reason::{Reason, What, money};
pub use spec::{Audience, Budget, CampaignSpec, CelSpec, Clause, Effect, Selector, Status, Texts, Trigger};

use crate::program::{FieldErrors, Lang, Program};
use crate::quantity::Quantity;
use crate::receipt::{LineInput, Op, PlannedCampaign};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// At most this many campaigns are listed in `not_applied`.
pub const MAX_MISSES: usize = 5;

/// A campaign ready to evaluate.
pub struct Campaign {
    pub id: String,
    pub spec: CampaignSpec,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    clauses: Vec<C>,
    cel: Option<(cel::Program, CelSpec)>,
    /// Index keys ("c:coffee", "s:SKU", "m:<member>", "cp:<campaign>"); empty: always.
    keys: Vec<String>,
    /// Each effect's target, compiled.
    targets: Vec<Sel>,
}

impl std::fmt::Debug for Campaign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Campaign").field("id", &self.id).field("code", &self.spec.code).finish()
    }
}

#[derive(Debug, Clone)]
struct Sel {
    cats: Vec<String>,
    skus: Vec<String>,
}

impl Sel {
    fn new(categories: &[String], skus: &[String]) -> Sel {
        let mut cats: Vec<String> = categories.iter().map(|c| c.to_lowercase()).collect();
        cats.sort();
        cats.dedup();
        let mut skus = skus.to_vec();
        skus.sort();
        skus.dedup();
        Sel { cats, skus }
    }
    fn from(s: &Selector) -> Sel {
        Sel::new(&s.categories, &s.skus)
    }
    fn is_all(&self) -> bool {
        self.cats.is_empty() && self.skus.is_empty()
    }
    fn matches(&self, line: &LineView) -> bool {
        self.is_all()
            || line.category.as_ref().is_some_and(|c| self.cats.binary_search(c).is_ok())
            || line.sku.as_ref().is_some_and(|s| self.skus.binary_search(s).is_ok())
    }
    fn what(&self) -> What {
        What { categories: self.cats.clone(), skus: self.skus.clone() }
    }
    fn keys(&self) -> Vec<String> {
        self.cats.iter().map(|c| format!("c:{c}")).chain(self.skus.iter().map(|s| format!("s:{s}"))).collect()
    }
}

#[derive(Debug, Clone)]
enum C {
    Qty { sel: Sel, min_milli: i128, whole: bool },
    Amount { sel: Sel, min: i128 },
    Total { min: i128 },
    Tier(Vec<String>),
    Segment(String),
    Attr { name: String, values: Vec<Value> },
    Enrol { min: Option<i64>, max: Option<i64> },
    Birthday { before: i64, after: i64 },
    Store(Vec<String>),
    Weekday(Vec<u8>),
    Time { from: u32, to: u32, text: (String, String) },
    First,
}

fn parse_time(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn weekday_no(s: &str) -> Option<u8> {
    let i = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].iter().position(|d| d.eq_ignore_ascii_case(s))?;
    Some(i as u8 + 1)
}

/// Parse an RFC 3339 time to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp())
}

const MAX: i64 = 1_000_000_000_000;

impl Campaign {
    /// Validate and compile a campaign. Every problem is reported by field path; a CEL
    /// expression that does not compile reports the compiler's message at `cel.expression`.
    pub fn compile(id: String, mut spec: CampaignSpec) -> Result<Campaign, FieldErrors> {
        let mut e = FieldErrors::new();
        let range = |e: &mut FieldErrors, path: String, v: i64, lo: i64, hi: i64| {
            if !(lo..=hi).contains(&v) {
                e.insert(path, format!("must be between {lo} and {hi}"));
            }
        };
        if spec.code.is_empty() || spec.code.len() > 64 || !spec.code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            e.insert("code".into(), "must be 1 to 64 letters, digits, '-' or '_'".into());
        }
        if spec.name.trim().is_empty() || spec.name.chars().count() > 200 {
            e.insert("name".into(), "must be 1 to 200 characters".into());
        }
        if spec.description.as_ref().is_some_and(|d| d.chars().count() > 2000) {
            e.insert("description".into(), "must be at most 2000 characters".into());
        }
        range(&mut e, "priority".into(), spec.priority, -1_000_000, 1_000_000);
        let starts_at = spec.starts_at.as_deref().map(|s| parse_rfc3339(s).ok_or("starts_at"));
        let ends_at = spec.ends_at.as_deref().map(|s| parse_rfc3339(s).ok_or("ends_at"));
        for r in [&starts_at, &ends_at].into_iter().flatten() {
            if let Err(path) = r {
                e.insert((*path).into(), "must be an RFC 3339 time".into());
            }
        }
        let (starts_at, ends_at) = (starts_at.and_then(Result::ok), ends_at.and_then(Result::ok));
        if let (Some(s), Some(t)) = (starts_at, ends_at)
            && s >= t
        {
            e.insert("ends_at".into(), "must be after starts_at".into());
        }

        let event = spec.trigger == Trigger::Event;
        match (&spec.event_type, event) {
            (None, true) => {
                e.insert("event_type".into(), "is required when trigger is event".into());
            }
            (Some(_), false) => {
                e.insert("event_type".into(), "is only for trigger event".into());
            }
            (Some(t), true) if t.is_empty() || t.len() > 64 => {
                e.insert("event_type".into(), "must be 1 to 64 characters".into());
            }
            _ => {}
        }

        let mut clauses = Vec::new();
        if spec.conditions.len() > 50 {
            e.insert("conditions".into(), "at most 50 conditions".into());
        }
        for (i, c) in spec.conditions.iter().enumerate() {
            let p = |f: &str| format!("conditions[{i}].{f}");
            let basket =
                matches!(c, Clause::MinQuantity { .. } | Clause::MinAmount { .. } | Clause::ReceiptTotal { .. } | Clause::Store { .. });
            if event && basket {
                e.insert(format!("conditions[{i}]"), "basket and store conditions are for receipt campaigns".into());
            }
            let list_ok = |e: &mut FieldErrors, cats: &[String], skus: &[String]| {
                if cats.len() + skus.len() > 1000 || cats.iter().chain(skus).any(|s| s.is_empty() || s.chars().count() > 128) {
                    e.insert(p("categories"), "at most 1000 names of 1 to 128 characters".into());
                }
            };
            clauses.push(match c {
                Clause::MinQuantity { min, categories, skus } => {
                    list_ok(&mut e, categories, skus);
                    match Quantity::from_json(min) {
                        Ok(q) => C::Qty {
                            sel: Sel::new(categories, skus),
                            min_milli: i128::from(q.base()) * if q.is_measured() { 1 } else { 1000 },
                            whole: !q.is_measured(),
                        },
                        Err(m) => {
                            e.insert(p("min"), m);
                            continue;
                        }
                    }
                }
                Clause::MinAmount { min_minor, categories, skus } => {
                    list_ok(&mut e, categories, skus);
                    range(&mut e, p("min_minor"), *min_minor, 1, MAX);
                    C::Amount { sel: Sel::new(categories, skus), min: i128::from(*min_minor) }
                }
                Clause::ReceiptTotal { min_minor } => {
                    range(&mut e, p("min_minor"), *min_minor, 1, MAX);
                    C::Total { min: i128::from(*min_minor) }
                }
                Clause::Tier { r#in } => {
                    if r#in.is_empty() {
                        e.insert(p("in"), "must name at least one tier".into());
                    }
                    C::Tier(r#in.clone())
                }
                Clause::Segment { tag } => {
                    if tag.is_empty() || tag.chars().count() > 64 {
                        e.insert(p("tag"), "must be 1 to 64 characters".into());
                    }
                    C::Segment(tag.to_lowercase())
                }
                Clause::Attribute { name, r#in } => {
                    if name.is_empty() || name.len() > 64 {
                        e.insert(p("name"), "must be 1 to 64 characters".into());
                    }
                    if r#in.is_empty() {
                        e.insert(p("in"), "must list at least one value".into());
                    }
                    C::Attr { name: name.clone(), values: r#in.clone() }
                }
                Clause::DaysSinceEnrolment { min, max } => {
                    if min.is_none() && max.is_none() {
                        e.insert(p("min"), "min or max is required".into());
                    }
                    for (f, v) in [("min", min), ("max", max)] {
                        if let Some(v) = v {
                            range(&mut e, p(f), *v, 0, 36_500);
                        }
                    }
                    C::Enrol { min: *min, max: *max }
                }
                Clause::Birthday { days_before, days_after } => {
                    range(&mut e, p("days_before"), *days_before, 0, 31);
                    range(&mut e, p("days_after"), *days_after, 0, 31);
                    C::Birthday { before: *days_before, after: *days_after }
                }
                Clause::Store { r#in } => {
                    if r#in.is_empty() {
                        e.insert(p("in"), "must name at least one store".into());
                    }
                    C::Store(r#in.clone())
                }
                Clause::Weekday { days } => {
                    let parsed: Vec<Option<u8>> = days.iter().map(|d| weekday_no(d)).collect();
                    if days.is_empty() || parsed.iter().any(Option::is_none) {
                        e.insert(p("days"), "must list days among mon, tue, wed, thu, fri, sat, sun".into());
                    }
                    let mut d: Vec<u8> = parsed.into_iter().flatten().collect();
                    d.sort();
                    d.dedup();
                    C::Weekday(d)
                }
                Clause::TimeWindow { from, to } => match (parse_time(from), parse_time(to)) {
                    (Some(f), Some(t)) if f != t => C::Time { from: f, to: t, text: (from.clone(), to.clone()) },
                    _ => {
                        e.insert(p("from"), "from and to must be different times as HH:MM".into());
                        continue;
                    }
                },
                Clause::FirstPurchase {} => C::First,
            });
        }

        let cel = match &spec.cel {
            None => None,
            Some(c) => {
                if c.expression.len() > 4000 {
                    e.insert("cel.expression".into(), "must be at most 4000 characters".into());
                    None
                } else {
                    match compile_cel(&c.expression) {
                        Ok(p) => Some((p, c.clone())),
                        Err(m) => {
                            e.insert("cel.expression".into(), m);
                            None
                        }
                    }
                }
            }
        };
        if spec.cel.as_ref().is_some_and(|c| c.reason.get(Lang::En).trim().is_empty()) {
            e.insert("cel.reason".into(), "is required: it is what the cashier sees when the expression is false".into());
        }

        if spec.effects.is_empty() || spec.effects.len() > 10 {
            e.insert("effects".into(), "must hold 1 to 10 effects".into());
        }
        let stamp = spec.effects.iter().any(|f| matches!(f, Effect::StampCard { .. }));
        if stamp && spec.effects.len() > 1 {
            e.insert("effects".into(), "a stamp card is the campaign's only effect".into());
        }
        for (i, f) in spec.effects.iter().enumerate() {
            let p = |x: &str| format!("effects[{i}].{x}");
            let t = f.target();
            if t.categories.len() + t.skus.len() > 1000
                || t.categories.iter().chain(&t.skus).any(|s| s.is_empty() || s.chars().count() > 128)
            {
                e.insert(p("target"), "at most 1000 names of 1 to 128 characters".into());
            }
            if event && !matches!(f, Effect::BonusPoints { .. }) {
                e.insert(format!("effects[{i}]"), "an event campaign awards bonus_points".into());
            }
            match f {
                Effect::DiscountPercent { percent_bp, .. } => range(&mut e, p("percent_bp"), *percent_bp, 1, 10_000),
                Effect::DiscountFixed { amount_minor, .. } => range(&mut e, p("amount_minor"), *amount_minor, 1, MAX),
                Effect::PointsMultiplier { multiplier_bp, .. } => range(&mut e, p("multiplier_bp"), *multiplier_bp, 10_001, 1_000_000),
                Effect::BonusPoints { points, .. } => range(&mut e, p("points"), *points, 1, MAX),
                Effect::FreeItem { quantity, target } => {
                    range(&mut e, p("quantity"), *quantity, 1, 1000);
                    if target.is_all() {
                        e.insert(p("target"), "must name categories or skus".into());
                    }
                }
                Effect::Cashback { percent_bp, amount_minor, .. } => match (percent_bp, amount_minor) {
                    (Some(bp), None) => range(&mut e, p("percent_bp"), *bp, 1, 10_000),
                    (None, Some(a)) => range(&mut e, p("amount_minor"), *a, 1, MAX),
                    _ => {
                        e.insert(p("percent_bp"), "give exactly one of percent_bp and amount_minor".into());
                    }
                },
                Effect::StampCard { every, target } => {
                    range(&mut e, p("every"), *every, 2, 1000);
                    if target.is_all() {
                        e.insert(p("target"), "must name categories or skus".into());
                    }
                }
            }
        }
        let b = &spec.budget;
        for (f, v) in [
            ("points", b.points),
            ("money_minor", b.money_minor),
            ("uses", b.uses),
            ("per_member_points", b.per_member_points),
            ("per_member_money_minor", b.per_member_money_minor),
            ("per_member_uses", b.per_member_uses),
        ] {
            if let Some(v) = v {
                range(&mut e, format!("budget.{f}"), v, 1, MAX);
            }
        }
        if spec.audience.member_ids.len() + spec.audience.segment_tags.len() > 10_000 {
            e.insert("audience".into(), "at most 10000 members and tags".into());
        }
        if stamp && spec.requires_coupon {
            e.insert("requires_coupon".into(), "a stamp card cannot require a coupon".into());
        }
        if event && spec.requires_coupon {
            e.insert("requires_coupon".into(), "is for receipt campaigns".into());
        }
        if !e.is_empty() {
            return Err(e);
        }

        // Normalise: categories compare case-insensitively.
        for f in &mut spec.effects {
            let t = match f {
                Effect::DiscountPercent { target, .. }
                | Effect::DiscountFixed { target, .. }
                | Effect::PointsMultiplier { target, .. }
                | Effect::BonusPoints { target, .. }
                | Effect::FreeItem { target, .. }
                | Effect::Cashback { target, .. }
                | Effect::StampCard { target, .. } => target,
            };
            for c in &mut t.categories {
                *c = c.to_lowercase();
            }
        }
        for t in &mut spec.audience.segment_tags {
            *t = t.to_lowercase();
        }
        let targets = spec.effects.iter().map(|f| Sel::from(f.target())).collect();
        let mut c = Campaign { id, spec, starts_at, ends_at, clauses, cel, keys: Vec::new(), targets };
        c.keys = c.index_keys();
        Ok(c)
    }

    /// What can trigger this campaign: its coupons; else its listed members; else the lines
    /// its first basket condition needs; else the lines every effect targets. Nothing of
    /// these: evaluated on every receipt.
    fn index_keys(&self) -> Vec<String> {
        if self.spec.requires_coupon {
            return vec![format!("cp:{}", self.id)];
        }
        if !self.spec.audience.member_ids.is_empty() && self.spec.audience.segment_tags.is_empty() {
            return self.spec.audience.member_ids.iter().map(|m| format!("m:{m}")).collect();
        }
        for c in &self.clauses {
            if let C::Qty { sel, .. } | C::Amount { sel, .. } = c
                && !sel.is_all()
            {
                return sel.keys();
            }
        }
        if self.spec.effects.iter().all(|f| !f.target().is_all()) {
            let mut keys: Vec<String> = self.spec.effects.iter().flat_map(|f| Sel::from(f.target()).keys()).collect();
            keys.sort();
            keys.dedup();
            return keys;
        }
        Vec::new()
    }

    pub fn code(&self) -> &str {
        &self.spec.code
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Active at `at` (status active and within its dates).
    pub fn is_live(&self, at: i64) -> bool {
        self.spec.status == Status::Active && self.starts_at.is_none_or(|s| s <= at) && self.ends_at.is_none_or(|t| at < t)
    }

    pub fn stamp_every(&self) -> Option<(i64, &Selector)> {
        self.spec.effects.iter().find_map(|f| match f {
            Effect::StampCard { every, target } => Some((*every, target)),
            _ => None,
        })
    }
}

fn compile_cel(src: &str) -> Result<cel::Program, String> {
    // The parser is third-party code: a panic on odd input must not take the request down.
    match std::panic::catch_unwind(|| cel::Program::compile(src)) {
        Ok(Ok(p)) if cel_depth(p.expression()) > MAX_CEL_DEPTH => {
            Err(format!("is nested too deeply (at most {MAX_CEL_DEPTH} levels of operators, calls and brackets)"))
        }
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(format!("does not compile: {e}")),
        Err(_) => Err("does not compile".into()),
    }
}

/// The interpreter recurses once per level of the expression tree, and a chain such as
/// `1 + 1 + … + 1` nests without brackets: deeper trees could overflow a worker's stack
/// (which aborts the process) at every till call.
const MAX_CEL_DEPTH: usize = 100;

/// The depth of an expression tree, walked without recursion.
fn cel_depth(root: &cel::IdedExpr) -> usize {
    use cel::common::ast::Expr;
    let mut deepest = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        let children: Vec<&cel::IdedExpr> = match &e.expr {
            Expr::Call(c) => c.target.iter().map(|t| &**t).chain(&c.args).collect(),
            Expr::Comprehension(c) => vec![&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result],
            Expr::List(l) => l.elements.iter().collect(),
            Expr::Map(m) => cel_entries(&m.entries),
            Expr::Struct(s) => cel_entries(&s.entries),
            Expr::Select(s) => vec![&*s.operand],
            Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => Vec::new(),
        };
        stack.extend(children.into_iter().map(|c| (c, d + 1)));
    }
    deepest
}

fn cel_entries(v: &[cel::common::ast::IdedEntryExpr]) -> Vec<&cel::IdedExpr> {
    use cel::common::ast::EntryExpr;
    v.iter()
        .flat_map(|x| match &x.expr {
            EntryExpr::StructField(f) => vec![&f.value],
            EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
        })
        .collect()
}

/// What the engine knows about the member.
#[derive(Debug, Clone, Default)]
pub struct MemberFacts {
    pub id: String,
    pub tags: Vec<String>,
    pub attributes: serde_json::Map<String, Value>,
    pub enrolled_at: i64,
    pub birthday: Option<NaiveDate>,
    /// Committed receipts before this one.
    pub purchases: i64,
    /// Stamp progress per stamp-card campaign id.
    pub stamps: HashMap<String, i64>,
}

/// A line as the engine sees it.
#[derive(Debug, Clone)]
pub struct LineView {
    pub category: Option<String>,
    pub sku: Option<String>,
    pub milli: i128,
    pub counted: bool,
    pub total: i128,
    pub discountable: bool,
}

/// Everything a campaign may look at.
pub struct Ctx<'a> {
    pub program: &'a Program,
    pub lines: Vec<LineView>,
    pub total: i128,
    pub member: Option<&'a MemberFacts>,
    pub tier: Option<&'a str>,
    pub store_id: &'a str,
    pub store_code: &'a str,
    /// Local time of the receipt (or event) in the store's (or programme's) time zone.
    pub local: NaiveDateTime,
    pub at: i64,
    /// Campaign ids for which a valid coupon was presented.
    pub coupons: HashSet<String>,
    /// For event campaigns: the event type and its data.
    pub event: Option<(&'a str, &'a Value)>,
    cel: std::cell::OnceCell<Option<cel::Context<'static, 'static>>>,
    /// Per category and per sku: (quantity in thousandths, amount, the lines).
    by_cat: HashMap<String, (i128, i128, Vec<usize>)>,
    by_sku: HashMap<String, (i128, i128, Vec<usize>)>,
}

/// Where and when a receipt (or an event) happens: the store, and the time both in the
/// store's own zone and as Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub store_id: &'a str,
    pub store_code: &'a str,
    pub local: NaiveDateTime,
    pub at: i64,
}

impl<'a> Ctx<'a> {
    pub fn new(
        program: &'a Program,
        lines: &[LineInput],
        member: Option<&'a MemberFacts>,
        tier: Option<&'a str>,
        place: Place<'a>,
    ) -> Ctx<'a> {
        let Place { store_id, store_code, local, at } = place;
        let views: Vec<LineView> = lines
            .iter()
            .map(|l| LineView {
                category: l.category.as_ref().map(|c| c.to_lowercase()),
                sku: l.sku.clone(),
                milli: match l.quantity {
                    Quantity::Units(q) => i128::from(q) * 1000,
                    Quantity::Milli(m) => i128::from(m),
                },
                counted: !l.quantity.is_measured(),
                total: crate::receipt::line_total(l).map(i128::from).unwrap_or(0),
                discountable: l.discount && !program.is_no_discount(l.category.as_deref()),
            })
            .collect();
        let mut by_cat: HashMap<String, (i128, i128, Vec<usize>)> = HashMap::new();
        let mut by_sku: HashMap<String, (i128, i128, Vec<usize>)> = HashMap::new();
        for (i, v) in views.iter().enumerate() {
            if let Some(c) = &v.category {
                let e = by_cat.entry(c.clone()).or_default();
                e.0 += v.milli;
                e.1 += v.total;
                e.2.push(i);
            }
            if let Some(sku) = &v.sku {
                let e = by_sku.entry(sku.clone()).or_default();
                e.0 += v.milli;
                e.1 += v.total;
                e.2.push(i);
            }
        }
        let total = views.iter().map(|v| v.total).sum();
        Ctx {
            program,
            lines: views,
            total,
            member,
            tier,
            store_id,
            store_code,
            local,
            at,
            coupons: HashSet::new(),
            event: None,
            cel: std::cell::OnceCell::new(),
            by_cat,
            by_sku,
        }
    }

    /// (quantity in thousandths, amount) of the selected lines.
    fn sum(&self, sel: &Sel) -> (i128, i128) {
        if sel.is_all() {
            return (self.lines.iter().map(|l| l.milli).sum(), self.total);
        }
        if sel.skus.is_empty() {
            return sel.cats.iter().filter_map(|c| self.by_cat.get(c)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        }
        if sel.cats.is_empty() {
            return sel.skus.iter().filter_map(|s| self.by_sku.get(s)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        }
        self.lines.iter().filter(|l| sel.matches(l)).fold((0, 0), |a, l| (a.0 + l.milli, a.1 + l.total))
    }

    /// Which lines a selector selects, from the per-category and per-sku line lists.
    fn mask_of(&self, sel: &Sel) -> Vec<bool> {
        if sel.is_all() {
            return vec![true; self.lines.len()];
        }
        let mut mask = vec![false; self.lines.len()];
        for hit in sel.cats.iter().filter_map(|c| self.by_cat.get(c)).chain(sel.skus.iter().filter_map(|s| self.by_sku.get(s))) {
            for &i in &hit.2 {
                mask[i] = true;
            }
        }
        mask
    }

    fn cel_context(&self) -> Option<&cel::Context<'static, 'static>> {
        self.cel
            .get_or_init(|| {
                let mut ctx = cel::Context::default();
                let lines: Vec<Value> = self
                    .lines
                    .iter()
                    .map(|l| {
                        json!({"sku": l.sku, "category": l.category, "quantity_milli": l.milli as i64,
                               "counted": l.counted, "total_minor": l.total as i64})
                    })
                    .collect();
                let receipt =
                    json!({"total_minor": self.total as i64, "store_id": self.store_id, "store_code": self.store_code, "lines": lines});
                let member = self.member.map(|m| {
                    json!({"id": m.id, "tier": self.tier, "tags": m.tags, "attributes": m.attributes,
                           "days_since_enrolment": (self.at - m.enrolled_at).div_euclid(86_400), "purchases": m.purchases,
                           "birthday": m.birthday.map(|b| b.format("%Y-%m-%d").to_string())})
                });
                let now = json!({"weekday": self.local.weekday().number_from_monday(), "hour": self.local.hour(),
                                 "minute": self.local.minute(), "date": self.local.format("%Y-%m-%d").to_string()});
                let event = self.event.map(|(t, d)| json!({"type": t, "data": d}));
                for (name, v) in
                    [("receipt", receipt), ("member", member.unwrap_or(Value::Null)), ("now", now), ("event", event.unwrap_or(Value::Null))]
                {
                    ctx.add_variable(name, v).ok()?;
                }
                Some(ctx)
            })
            .as_ref()
    }

    fn local_minutes(&self) -> u32 {
        self.local.hour() * 60 + self.local.minute()
    }
}

/// Why a campaign missed, and how far it was from applying (smaller is nearer).
#[derive(Debug, Clone)]
pub struct Miss {
    pub reasons: Vec<Reason>,
    pub distance: f64,
}

impl Miss {
    pub fn one(reason: Reason) -> Miss {
        Miss { reasons: vec![reason], distance: 1.0 }
    }
    pub fn text(&self, lang: Lang, currency: &str) -> String {
        self.reasons.iter().map(|r| r.text(lang, currency)).collect::<Vec<_>>().join("; ")
    }
}

impl Campaign {
    /// Check the audience, the conditions and the CEL expression. All failing conditions
    /// are reported.
    pub fn check(&self, ctx: &Ctx<'_>) -> Result<(), Miss> {
        let mut reasons = Vec::new();
        let mut distance = 0.0;
        let mut miss = |r: Reason, d: f64| {
            // Several conditions may need the same thing (a member): say it once.
            if !reasons.contains(&r) {
                reasons.push(r);
                distance += d;
            }
        };
        let member = ctx.member;
        let a = &self.spec.audience;
        if !a.is_everyone() {
            let listed = member.is_some_and(|m| a.member_ids.contains(&m.id));
            let tagged = member.is_some_and(|m| m.tags.iter().any(|t| a.segment_tags.contains(t)));
            if !listed && !tagged {
                // A personal offer for someone else is not shown at all.
                return Err(Miss { reasons: Vec::new(), distance: f64::INFINITY });
            }
        }
        // Effects that give to a member, and per-member limits (which cannot be counted for
        // an anonymous receipt), need an identified member.
        let needs_member = self.spec.effects.iter().any(Effect::needs_member) || self.spec.budget.has_per_member();
        if needs_member && member.is_none() {
            miss(Reason::MemberOnly, 1.0);
        }
        for c in &self.clauses {
            match c {
                C::Qty { sel, min_milli, whole } => {
                    let (have, _) = ctx.sum(sel);
                    if have < *min_milli {
                        let more = if *whole { (min_milli - have + 999) / 1000 * 1000 } else { min_milli - have };
                        miss(
                            Reason::NeedsQuantity { more_milli: more, whole: *whole, what: sel.what() },
                            (min_milli - have) as f64 / *min_milli as f64,
                        );
                    }
                }
                C::Amount { sel, min } => {
                    let (_, have) = ctx.sum(sel);
                    if have < *min {
                        miss(Reason::NeedsAmount { more_minor: min - have, what: sel.what() }, (min - have) as f64 / *min as f64);
                    }
                }
                C::Total { min } => {
                    if ctx.total < *min {
                        miss(Reason::NeedsReceiptTotal { more_minor: min - ctx.total }, (min - ctx.total) as f64 / *min as f64);
                    }
                }
                C::Tier(tiers) => {
                    if !ctx.tier.is_some_and(|t| tiers.iter().any(|x| x == t)) {
                        miss(Reason::TierOnly { tiers: tiers.clone() }, 1.0);
                    }
                }
                C::Segment(tag) => {
                    if !member.is_some_and(|m| m.tags.contains(tag)) {
                        miss(Reason::SegmentOnly { tag: tag.clone() }, 1.0);
                    }
                }
                C::Attr { name, values } => {
                    if !member.and_then(|m| m.attributes.get(name)).is_some_and(|v| values.contains(v)) {
                        miss(Reason::AttributeOnly { name: name.clone() }, 1.0);
                    }
                }
                C::Enrol { min, max } => match member {
                    None => miss(Reason::MemberOnly, 1.0),
                    Some(m) => {
                        let days = (ctx.at - m.enrolled_at).div_euclid(86_400);
                        if let Some(lo) = min
                            && days < *lo
                        {
                            miss(Reason::EnrolledTooRecently { days_left: lo - days }, 1.0);
                        }
                        if let Some(hi) = max
                            && days > *hi
                        {
                            miss(Reason::EnrolmentOfferOver { max_days: *hi }, 1.0);
                        }
                    }
                },
                C::Birthday { before, after } => match member.and_then(|m| m.birthday) {
                    None => miss(if member.is_none() { Reason::MemberOnly } else { Reason::BirthdayUnknown }, 1.0),
                    Some(b) => {
                        if !near_birthday(b, ctx.local.date(), *before, *after) {
                            miss(Reason::BirthdayOnly, 1.0);
                        }
                    }
                },
                C::Store(stores) => {
                    if !stores.iter().any(|s| s == ctx.store_id || s == ctx.store_code) {
                        miss(Reason::NotThisStore, 1.0);
                    }
                }
                C::Weekday(days) => {
                    let today = ctx.local.weekday().number_from_monday() as u8;
                    if !days.contains(&today) {
                        miss(Reason::WeekdaysOnly { days: days.clone() }, 1.0);
                    }
                }
                C::Time { from, to, text } => {
                    let m = ctx.local_minutes();
                    let inside = if from < to { (*from..*to).contains(&m) } else { m >= *from || m < *to };
                    if !inside {
                        miss(Reason::HoursOnly { from: text.0.clone(), to: text.1.clone() }, 1.0);
                    }
                }
                C::First => match member {
                    None => miss(Reason::MemberOnly, 1.0),
                    Some(m) if m.purchases > 0 => miss(Reason::FirstPurchaseOnly, 1.0),
                    _ => {}
                },
            }
        }
        if let Some((program, spec)) = &self.cel {
            let ok = ctx.cel_context().is_some_and(|c| {
                matches!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(c))), Ok(Ok(cel::Value::Bool(true))))
            });
            if !ok {
                miss(Reason::Custom { text: spec.reason.get(ctx.program.language) }, 1.0);
            }
        }
        if let Some(s) = self.starts_at
            && ctx.at < s
        {
            let local = ctx.local + chrono::Duration::seconds(s - ctx.at);
            let days_ahead = (local.date() - ctx.local.date()).num_days();
            miss(
                Reason::Starts {
                    date: local.format("%Y-%m-%d").to_string(),
                    weekday: local.weekday().number_from_monday() as u8,
                    days_ahead,
                },
                1.0,
            );
        }
        if reasons.is_empty() { Ok(()) } else { Err(Miss { reasons, distance }) }
    }

    /// The campaign's effects resolved to the receipt's lines.
    pub fn ops(&self, ctx: &Ctx<'_>) -> Vec<Op> {
        self.spec
            .effects
            .iter()
            .zip(&self.targets)
            .map(|(f, sel)| {
                let mask = ctx.mask_of(sel);
                match f {
                    Effect::DiscountPercent { percent_bp, .. } => Op::DiscountPercent { bp: *percent_bp, mask },
                    Effect::DiscountFixed { amount_minor, .. } => Op::DiscountFixed { amount_minor: *amount_minor, mask },
                    Effect::PointsMultiplier { multiplier_bp, .. } => Op::Multiplier { bp: *multiplier_bp, mask },
                    Effect::BonusPoints { points, .. } => Op::Bonus { points: *points, mask },
                    Effect::FreeItem { quantity, .. } => Op::FreeUnits { units: *quantity, mask },
                    Effect::Cashback { percent_bp: Some(bp), .. } => Op::CashbackPercent { bp: *bp, mask },
                    Effect::Cashback { amount_minor, .. } => Op::CashbackFixed { amount_minor: amount_minor.unwrap_or(0), mask },
                    Effect::StampCard { every, .. } => {
                        let units = stamp_units(ctx, &mask);
                        let before = ctx.member.and_then(|m| m.stamps.get(&self.id).copied()).unwrap_or(0);
                        Op::FreeUnits { units: stamp_free(before, units, *every), mask }
                    }
                }
            })
            .collect()
    }
}

/// Selected counted units on discountable lines: what a stamp card counts.
pub fn stamp_units(ctx: &Ctx<'_>, mask: &[bool]) -> i64 {
    ctx.lines.iter().zip(mask).filter(|(l, m)| **m && l.counted && l.discountable).map(|(l, _)| (l.milli / 1000) as i64).sum()
}

/// Free units when a member with `before` stamps buys `units` more on a card of `every`.
pub fn stamp_free(before: i64, units: i64, every: i64) -> i64 {
    if every <= 0 { 0 } else { (before + units).max(0) / every }
}

fn near_birthday(b: NaiveDate, today: NaiveDate, before: i64, after: i64) -> bool {
    // The birthday in the years around today (29 February falls on 28 February).
    (-1..=1).any(|dy| {
        let y = today.year() + dy;
        let day = NaiveDate::from_ymd_opt(y, b.month(), b.day()).or_else(|| NaiveDate::from_ymd_opt(y, b.month(), b.day() - 1));
        day.is_some_and(|d| {
            let diff = (today - d).num_days();
            -before <= diff && diff <= after
        })
    })
}

/// The tenant's campaigns, indexed.
#[derive(Debug, Default)]
pub struct CampaignSet {
    pub campaigns: Vec<Arc<Campaign>>,
    /// What member facts any campaign can look at, so the till reads only those.
    pub needs: Needs,
    ids: HashMap<String, usize>,
    by_key: HashMap<String, Vec<u32>>,
    always: Vec<u32>,
    by_event: HashMap<String, Vec<u32>>,
}

impl CampaignSet {
    pub fn new(mut campaigns: Vec<Arc<Campaign>>) -> CampaignSet {
        // Application order: priority descending, then code.
        campaigns.sort_by(|a, b| b.spec.priority.cmp(&a.spec.priority).then_with(|| a.spec.code.cmp(&b.spec.code)));
        let ids = campaigns.iter().enumerate().map(|(i, c)| (c.id.clone(), i)).collect();
        let mut set = CampaignSet { campaigns, ids, ..CampaignSet::default() };
        for (i, c) in set.campaigns.iter().enumerate() {
            let i = i as u32;
            let cel = c.cel.is_some();
            set.needs.tags |= cel || !c.spec.audience.segment_tags.is_empty() || c.clauses.iter().any(|x| matches!(x, C::Segment(_)));
            set.needs.attributes |= cel || c.clauses.iter().any(|x| matches!(x, C::Attr { .. }));
            set.needs.purchases |= cel || c.clauses.iter().any(|x| matches!(x, C::First));
            set.needs.stamps |= c.stamp_every().is_some();
            if c.spec.trigger == Trigger::Event {
                set.by_event.entry(c.spec.event_type.clone().unwrap_or_default()).or_default().push(i);
            } else if c.keys.is_empty() {
                set.always.push(i);
            } else {
                for k in &c.keys {
                    set.by_key.entry(k.clone()).or_default().push(i);
                }
            }
        }
        set
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<Campaign>> {
        self.ids.get(id).map(|&i| &self.campaigns[i])
    }

    /// Receipt campaigns this receipt can trigger, in application order, not ended and not
    /// paused (campaigns that start later are included: they are near misses).
    pub fn candidates(&self, ctx: &Ctx<'_>) -> Vec<usize> {
        let mut hit: Vec<u32> = self.always.clone();
        let mut look = |k: &str| {
            if let Some(v) = self.by_key.get(k) {
                hit.extend_from_slice(v);
            }
        };
        for c in ctx.by_cat.keys() {
            look(&format!("c:{c}"));
        }
        for s in ctx.by_sku.keys() {
            look(&format!("s:{s}"));
        }
        if let Some(m) = ctx.member {
            look(&format!("m:{}", m.id));
        }
        for c in &ctx.coupons {
            look(&format!("cp:{c}"));
        }
        hit.sort_unstable();
        hit.dedup();
        hit.into_iter()
            .map(|i| i as usize)
            .filter(|&i| {
                let c = &self.campaigns[i];
                c.spec.status == Status::Active && c.ends_at.is_none_or(|t| ctx.at < t)
            })
            .collect()
    }

    /// Event campaigns for an event type, live at the event's time, in application order.
    pub fn for_event(&self, event_type: &str, at: i64) -> Vec<usize> {
        self.by_event
            .get(event_type)
            .map(|v| v.iter().map(|&i| i as usize).filter(|&i| self.campaigns[i].is_live(at)).collect())
            .unwrap_or_default()
    }
}

/// Member facts that some campaign of a set can look at.
#[derive(Debug, Default, Clone, Copy)]
pub struct Needs {
    pub tags: bool,
    pub attributes: bool,
    pub purchases: bool,
    pub stamps: bool,
}

/// The engine's verdict on a receipt before budgets: what applies, and what missed.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Indexes into the set's campaigns, in application order, with their ops.
    pub plan: Vec<PlannedCampaign>,
    /// Misses, nearest first (all of them; the caller lists at most [`MAX_MISSES`]).
    pub misses: Vec<(usize, Miss)>,
}

/// Decide which campaigns apply. `blocked` campaigns (budget spent, coupon invalid, …) are
/// reported as misses with the given reason and never applied.
pub fn evaluate(set: &CampaignSet, ctx: &Ctx<'_>, blocked: &HashMap<usize, Reason>) -> Verdict {
    let mut v = Verdict::default();
    let mut exclusive_applied: Option<usize> = None;
    for i in set.candidates(ctx) {
        let c = &set.campaigns[i];
        match c.check(ctx) {
            Err(m) if m.distance.is_infinite() => {}
            Err(m) => v.misses.push((i, m)),
            Ok(()) => {
                if let Some(r) = blocked.get(&i) {
                    v.misses.push((i, Miss { reasons: vec![r.clone()], distance: 0.5 }));
                } else if let Some(x) = exclusive_applied {
                    v.misses.push((i, Miss::one(Reason::NotCombinable { with: set.campaigns[x].spec.name.clone() })));
                } else if c.spec.exclusive && !v.plan.is_empty() {
                    let first = &set.campaigns[v.plan[0].index];
                    v.misses.push((i, Miss::one(Reason::NotCombinable { with: first.spec.name.clone() })));
                } else {
                    if c.spec.exclusive {
                        exclusive_applied = Some(i);
                    }
                    v.plan.push(PlannedCampaign { index: i, ops: c.ops(ctx) });
                }
            }
        }
    }
    v.misses.sort_by(|a, b| a.1.distance.total_cmp(&b.1.distance).then(a.0.cmp(&b.0)));
    v
}
