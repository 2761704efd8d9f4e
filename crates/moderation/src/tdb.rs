//! The Commission's Transparency Database: the rules a statement of reasons must meet to be
//! accepted (`POST /api/v1/statement`, batches of up to [`BATCH`] at `/api/v1/statements`),
//! written from the database's published request validation, so that stentor refuses to
//! send what the database would refuse.

use crate::model::{Category, EUROPEAN_COUNTRIES};
use serde_json::Value;

/// Statements in one batch at most.
pub const BATCH: usize = 100;

/// One rule a payload breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field.
    pub field: String,
    /// The rule, as the database names it (`required`, `max:500`, `in`, `date_format:Y-m-d`, …).
    pub rule: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

/// The visibility restrictions.
pub const VISIBILITIES: &[&str] = &[
    "DECISION_VISIBILITY_CONTENT_REMOVED",
    "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
];
/// The monetary restrictions.
pub const MONETARIES: &[&str] = &[
    "DECISION_MONETARY_SUSPENSION",
    "DECISION_MONETARY_TERMINATION",
    "DECISION_MONETARY_OTHER",
];
/// The service restrictions.
pub const PROVISIONS: &[&str] = &[
    "DECISION_PROVISION_PARTIAL_SUSPENSION",
    "DECISION_PROVISION_TOTAL_SUSPENSION",
    "DECISION_PROVISION_PARTIAL_TERMINATION",
    "DECISION_PROVISION_TOTAL_TERMINATION",
];
/// The account restrictions.
pub const ACCOUNTS: &[&str] = &["DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"];
/// The account types.
pub const ACCOUNT_TYPES: &[&str] = &["ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"];
/// The grounds.
pub const GROUNDS: &[&str] = &[
    "DECISION_GROUND_ILLEGAL_CONTENT",
    "DECISION_GROUND_INCOMPATIBLE_CONTENT",
];
/// The content types.
pub const CONTENT_TYPES: &[&str] = &[
    "CONTENT_TYPE_APP",
    "CONTENT_TYPE_AUDIO",
    "CONTENT_TYPE_IMAGE",
    "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA",
    "CONTENT_TYPE_TEXT",
    "CONTENT_TYPE_VIDEO",
    "CONTENT_TYPE_OTHER",
];
/// The sources.
pub const SOURCE_TYPES: &[&str] = &[
    "SOURCE_ARTICLE_16",
    "SOURCE_TRUSTED_FLAGGER",
    "SOURCE_TYPE_OTHER_NOTIFICATION",
    "SOURCE_VOLUNTARY",
];
/// Whether the content was found by automated means.
pub const AUTOMATED_DETECTIONS: &[&str] = &["Yes", "No"];
/// How automated the decision was.
pub const AUTOMATED_DECISIONS: &[&str] = &[
    "AUTOMATED_DECISION_FULLY",
    "AUTOMATED_DECISION_PARTIALLY",
    "AUTOMATED_DECISION_NOT_AUTOMATED",
];

/// The end dates of each kind of restriction.
pub const END_DATES: &[&str] = &[
    "end_date_account_restriction",
    "end_date_monetary_restriction",
    "end_date_service_restriction",
    "end_date_visibility_restriction",
];

/// Checks a statement against the database's rules; every rule it breaks, none if it would be
/// accepted.
pub fn validate(statement: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(s) = statement.as_object() else {
        out.push(broken("statement", "object"));
        return out;
    };
    let mut check = Check { s, out: &mut out };

    // At least one of the four restrictions.
    let decisions = [
        "decision_visibility",
        "decision_monetary",
        "decision_provision",
        "decision_account",
    ];
    if decisions.iter().all(|f| !check.present(f)) {
        for f in decisions {
            check.fail(f, "required_without_all");
        }
    }
    check.array_in("decision_visibility", VISIBILITIES, false);
    let visibility_other = check.array_has("decision_visibility", "DECISION_VISIBILITY_OTHER");
    check.required_if("decision_visibility_other", visibility_other, 500);
    check.one_of("decision_monetary", MONETARIES, false);
    let monetary_other = check.is("decision_monetary", "DECISION_MONETARY_OTHER");
    check.required_if("decision_monetary_other", monetary_other, 500);
    check.one_of("decision_provision", PROVISIONS, false);
    check.one_of("decision_account", ACCOUNTS, false);
    check.one_of("account_type", ACCOUNT_TYPES, false);

    check.one_of("decision_ground", GROUNDS, true);
    let illegal = check.is("decision_ground", "DECISION_GROUND_ILLEGAL_CONTENT");
    let incompatible = check.is("decision_ground", "DECISION_GROUND_INCOMPATIBLE_CONTENT");
    check.required_if("illegal_content_legal_ground", illegal, 500);
    check.required_if("illegal_content_explanation", illegal, 2000);
    check.required_if("incompatible_content_ground", incompatible, 500);
    check.required_if("incompatible_content_explanation", incompatible, 2000);
    if incompatible {
        check.one_of("incompatible_content_illegal", AUTOMATED_DETECTIONS, false);
    }

    check.array_in("content_type", CONTENT_TYPES, true);
    let content_other = check.array_has("content_type", "CONTENT_TYPE_OTHER");
    check.required_if("content_type_other", content_other, 500);

    let categories: Vec<&str> = Category::ALL.iter().map(|c| c.tdb()).collect();
    check.one_of("category", &categories, true);
    check.array_in("category_addition", &categories, false);
    check.array_in("territorial_scope", EUROPEAN_COUNTRIES, false);

    check.date("content_date", true, (2000, 1, 1));
    check.date("application_date", true, (2020, 1, 1));
    for f in END_DATES {
        check.date(f, false, (0, 1, 1));
    }

    check.required_text("decision_facts", 5000);
    check.one_of("source_type", SOURCE_TYPES, true);
    if !check.is("source_type", "SOURCE_VOLUNTARY") {
        check.max("source_identity", 500);
    }
    check.one_of("automated_detection", AUTOMATED_DETECTIONS, true);
    check.one_of("automated_decision", AUTOMATED_DECISIONS, true);

    if check.required_text("puid", 500) {
        let puid = s["puid"].as_str().unwrap_or_default();
        if !puid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            check.fail("puid", "regex");
        }
    }
    out
}

fn broken(field: &str, rule: &str) -> Violation {
    Violation {
        field: field.to_owned(),
        rule: rule.to_owned(),
    }
}

struct Check<'a> {
    s: &'a serde_json::Map<String, Value>,
    out: &'a mut Vec<Violation>,
}

impl Check<'_> {
    fn fail(&mut self, field: &str, rule: &str) {
        self.out.push(broken(field, rule));
    }

    /// Present as the database's `required` means it: not missing, not null, not an empty
    /// or blank string, not an empty array.
    fn present(&self, field: &str) -> bool {
        match self.s.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::String(t)) => !t.trim().is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        }
    }

    fn is(&self, field: &str, value: &str) -> bool {
        self.s.get(field).and_then(Value::as_str) == Some(value)
    }

    fn array_has(&self, field: &str, value: &str) -> bool {
        self.s
            .get(field)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(value)))
    }

    /// A string of at most `max` characters when present.
    fn max(&mut self, field: &str, max: usize) {
        match self.s.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) => {
                if t.chars().count() > max {
                    self.fail(field, &format!("max:{max}"));
                }
            }
            Some(_) => self.fail(field, "string"),
        }
    }

    /// Required, a string of at most `max` characters; whether it was there.
    fn required_text(&mut self, field: &str, max: usize) -> bool {
        if !self.present(field) {
            self.fail(field, "required");
            return false;
        }
        let before = self.out.len();
        self.max(field, max);
        self.out.len() == before
    }

    /// Required when `when`, at most `max` characters; otherwise left out (the database
    /// excludes it).
    fn required_if(&mut self, field: &str, when: bool, max: usize) {
        if when {
            if self.present(field) {
                self.max(field, max);
            } else {
                self.fail(field, "required_if");
            }
        }
    }

    /// One of `allowed` (or null/missing unless `required`).
    fn one_of(&mut self, field: &str, allowed: &[&str], required: bool) {
        match self.s.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(field, "required");
                }
            }
            Some(Value::String(v)) if allowed.contains(&v.as_str()) => {}
            Some(Value::String(v)) if v.trim().is_empty() && required => {
                self.fail(field, "required");
            }
            Some(_) => self.fail(field, "in"),
        }
    }

    /// An array whose every element is one of `allowed` (or null/missing unless `required`;
    /// required means not empty).
    fn array_in(&mut self, field: &str, allowed: &[&str], required: bool) {
        match self.s.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(field, "required");
                }
            }
            Some(Value::Array(a)) => {
                if a.is_empty() && required {
                    self.fail(field, "required");
                } else if !a
                    .iter()
                    .all(|v| v.as_str().is_some_and(|v| allowed.contains(&v)))
                {
                    self.fail(field, "in");
                }
            }
            Some(_) => self.fail(field, "array"),
        }
    }

    /// A `Y-m-d` date from `after` (inclusive) to 2038-01-01 (inclusive).
    fn date(&mut self, field: &str, required: bool, after: (i32, u8, u8)) {
        let text = match self.s.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(field, "required");
                }
                return;
            }
            Some(Value::String(t)) => t,
            Some(_) => return self.fail(field, "date_format:Y-m-d"),
        };
        let Some(date) = parse_date(text) else {
            return self.fail(field, "date_format:Y-m-d");
        };
        let (y, m, d) = after;
        if (date.year(), u8::from(date.month()), date.day()) < (y, m, d) {
            self.fail(field, "after_or_equal");
        }
        if (date.year(), u8::from(date.month()), date.day()) > (2038, 1, 1) {
            self.fail(field, "before_or_equal");
        }
    }
}

/// A `Y-m-d` date, exactly (four-digit year, two-digit month and day).
fn parse_date(text: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let exact = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
    exact
        .then(|| time::Date::parse(text, &format).ok())
        .flatten()
}

/// A day as the database writes dates: `Y-m-d` (UTC) of a Unix time in milliseconds.
pub fn ymd(unix_ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let date = at.date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A statement the database accepts, with every optional field it can carry.
    fn valid() -> Value {
        json!({
            "decision_visibility": ["DECISION_VISIBILITY_CONTENT_REMOVED"],
            "end_date_visibility_restriction": "2026-12-31",
            "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
            "incompatible_content_ground": "Terms §4.2",
            "incompatible_content_explanation": "A fake giveaway asking for payment.",
            "incompatible_content_illegal": "No",
            "content_type": ["CONTENT_TYPE_TEXT"],
            "category": "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
            "territorial_scope": ["DE", "FR"],
            "content_date": "2026-11-30",
            "application_date": "2026-12-01",
            "decision_facts": "Reported by a listener.",
            "source_type": "SOURCE_ARTICLE_16",
            "automated_detection": "No",
            "automated_decision": "AUTOMATED_DECISION_NOT_AUTOMATED",
            "account_type": "ACCOUNT_TYPE_PRIVATE",
            "puid": "stentor-decision-17",
        })
    }

    /// The fields changed (null: removed), and the field and rule that must be named.
    type Case = (Vec<(&'static str, Value)>, &'static str, &'static str);

    fn with(changes: &[(&str, Value)]) -> Value {
        let mut v = valid();
        for (k, change) in changes {
            if change.is_null() {
                v.as_object_mut().unwrap().remove(*k);
            } else {
                v[*k] = change.clone();
            }
        }
        v
    }

    #[test]
    fn each_rule_broken_alone_is_refused_by_name() {
        assert_eq!(validate(&valid()), vec![]);
        let long = |n: usize| json!("x".repeat(n));
        let none = Value::Null;
        let illegal = ("decision_ground", json!("DECISION_GROUND_ILLEGAL_CONTENT"));
        #[rustfmt::skip]
        let table: Vec<Case> = vec![
            (vec![("decision_visibility", none.clone())], "decision_visibility", "required_without_all"),
            (vec![("decision_visibility", json!([]))], "decision_account", "required_without_all"),
            (vec![("decision_visibility", json!(["DECISION_VISIBILITY_HIDDEN"]))], "decision_visibility", "in"),
            (vec![("decision_visibility", json!("DECISION_VISIBILITY_CONTENT_REMOVED"))], "decision_visibility", "array"),
            (vec![("decision_visibility", json!(["DECISION_VISIBILITY_OTHER"]))], "decision_visibility_other", "required_if"),
            (vec![("decision_visibility", json!(["DECISION_VISIBILITY_OTHER"])), ("decision_visibility_other", long(501))], "decision_visibility_other", "max:500"),
            (vec![("decision_monetary", json!("DECISION_MONETARY_FINE"))], "decision_monetary", "in"),
            (vec![("decision_monetary", json!("DECISION_MONETARY_OTHER"))], "decision_monetary_other", "required_if"),
            (vec![("decision_provision", json!("DECISION_PROVISION_SOME"))], "decision_provision", "in"),
            (vec![("decision_account", json!("DECISION_ACCOUNT_BANNED"))], "decision_account", "in"),
            (vec![("account_type", json!("ACCOUNT_TYPE_ROBOT"))], "account_type", "in"),
            (vec![("decision_ground", none.clone())], "decision_ground", "required"),
            (vec![("decision_ground", json!("DECISION_GROUND_DISLIKED"))], "decision_ground", "in"),
            (vec![("incompatible_content_ground", none.clone())], "incompatible_content_ground", "required_if"),
            (vec![("incompatible_content_ground", long(501))], "incompatible_content_ground", "max:500"),
            (vec![("incompatible_content_explanation", json!("  "))], "incompatible_content_explanation", "required_if"),
            (vec![("incompatible_content_explanation", long(2001))], "incompatible_content_explanation", "max:2000"),
            (vec![("incompatible_content_illegal", json!("Maybe"))], "incompatible_content_illegal", "in"),
            (vec![illegal.clone(), ("illegal_content_explanation", json!("why"))], "illegal_content_legal_ground", "required_if"),
            (vec![illegal.clone(), ("illegal_content_legal_ground", json!("§ 1"))], "illegal_content_explanation", "required_if"),
            (vec![illegal.clone(), ("illegal_content_legal_ground", long(501)), ("illegal_content_explanation", json!("why"))], "illegal_content_legal_ground", "max:500"),
            (vec![illegal, ("illegal_content_legal_ground", json!("§ 1")), ("illegal_content_explanation", long(2001))], "illegal_content_explanation", "max:2000"),
            (vec![("content_type", none.clone())], "content_type", "required"),
            (vec![("content_type", json!([]))], "content_type", "required"),
            (vec![("content_type", json!(["CONTENT_TYPE_PODCAST"]))], "content_type", "in"),
            (vec![("content_type", json!(["CONTENT_TYPE_OTHER"]))], "content_type_other", "required_if"),
            (vec![("category", none.clone())], "category", "required"),
            (vec![("category", json!("STATEMENT_CATEGORY_RUDENESS"))], "category", "in"),
            (vec![("category_addition", json!(["STATEMENT_CATEGORY_RUDENESS"]))], "category_addition", "in"),
            (vec![("territorial_scope", json!(["US"]))], "territorial_scope", "in"),
            (vec![("territorial_scope", json!("DE"))], "territorial_scope", "array"),
            (vec![("content_date", none.clone())], "content_date", "required"),
            (vec![("content_date", json!("30/11/2026"))], "content_date", "date_format:Y-m-d"),
            (vec![("content_date", json!("2026-02-30"))], "content_date", "date_format:Y-m-d"),
            (vec![("content_date", json!("1999-12-31"))], "content_date", "after_or_equal"),
            (vec![("application_date", none.clone())], "application_date", "required"),
            (vec![("application_date", json!("2026-12-01-10"))], "application_date", "date_format:Y-m-d"),
            (vec![("application_date", json!("2019-12-31"))], "application_date", "after_or_equal"),
            (vec![("application_date", json!("2038-01-02"))], "application_date", "before_or_equal"),
            (vec![("end_date_visibility_restriction", json!("2038-01-02"))], "end_date_visibility_restriction", "before_or_equal"),
            (vec![("end_date_account_restriction", json!("soon"))], "end_date_account_restriction", "date_format:Y-m-d"),
            (vec![("decision_facts", none.clone())], "decision_facts", "required"),
            (vec![("decision_facts", long(5001))], "decision_facts", "max:5000"),
            (vec![("source_type", none.clone())], "source_type", "required"),
            (vec![("source_type", json!("SOURCE_RUMOUR"))], "source_type", "in"),
            (vec![("source_identity", long(501))], "source_identity", "max:500"),
            (vec![("automated_detection", none.clone())], "automated_detection", "required"),
            (vec![("automated_detection", json!("yes"))], "automated_detection", "in"),
            (vec![("automated_decision", none.clone())], "automated_decision", "required"),
            (vec![("automated_decision", json!("Fully automated"))], "automated_decision", "in"),
            (vec![("puid", none.clone())], "puid", "required"),
            (vec![("puid", json!("has space"))], "puid", "regex"),
            (vec![("puid", json!("ü-1"))], "puid", "regex"),
            (vec![("puid", long(501))], "puid", "max:500"),
        ];
        for (changes, field, rule) in table {
            let statement = with(&changes);
            let found = validate(&statement);
            let want = Violation {
                field: field.into(),
                rule: rule.into(),
            };
            assert!(
                found.contains(&want),
                "{changes:?}: want {want}, got {found:?}"
            );
            // Alone: the other fields are still fine (the required_without_all rule names
            // each of the four).
            if rule != "required_without_all" {
                assert_eq!(found.len(), 1, "{changes:?}: {found:?}");
            }
        }
    }

    #[test]
    fn what_the_database_leaves_out_is_not_checked() {
        // A voluntary decision's source identity is excluded; an "other" text without
        // "other" chosen too.
        let v = with(&[
            ("source_type", json!("SOURCE_VOLUNTARY")),
            ("source_identity", json!("x".repeat(900))),
            ("decision_visibility_other", json!("x".repeat(900))),
            ("illegal_content_legal_ground", json!("x".repeat(900))),
        ]);
        assert_eq!(validate(&v), vec![]);
        assert_eq!(
            validate(&json!([1])),
            vec![Violation {
                field: "statement".into(),
                rule: "object".into()
            }]
        );
    }

    #[test]
    fn days_are_written_as_the_database_reads_them() {
        assert_eq!(ymd(0), "1970-01-01");
        assert_eq!(ymd(1_764_547_200_000), "2025-12-01");
        assert_eq!(ymd(1_764_547_199_999), "2025-11-30");
    }
}
