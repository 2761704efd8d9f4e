//! The statement of reasons (DSA Art. 17): what the affected account reads, with every item
//! of Art. 17(3), and the Transparency Database's payload made from the same decision without
//! personal data — both derived from the decision as the log holds it, so they cannot differ.

use crate::model::{Action, Decision, Ground, SubjectKind};
use crate::tdb::ymd;
use serde::Serialize;
use serde_json::{Value, json};

/// The shortest time an appeal stays open, days (Art. 20(1): at least six months).
pub const MIN_APPEAL_DAYS: u32 = 183;
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// The platform-wide settings a statement needs.
#[derive(Debug, Clone)]
pub struct Platform {
    /// The prefix of every `puid` (letters, digits, `-`, `_`): one per platform, stable.
    pub puid_prefix: String,
    /// Days an appeal stays open after the decision (never below [`MIN_APPEAL_DAYS`]).
    pub appeal_days: u32,
    /// Where the out-of-court dispute settlement bodies are listed for the person affected.
    pub out_of_court: String,
    /// Whether the platform handles internal complaints (appeals, Art. 20): a micro or small
    /// enterprise may not (Art. 19); the statement then says so.
    pub complaints: bool,
}

impl Default for Platform {
    fn default() -> Self {
        Self {
            puid_prefix: "stentor".into(),
            appeal_days: MIN_APPEAL_DAYS,
            out_of_court:
                "https://digital-strategy.ec.europa.eu/en/policies/dsa-out-court-dispute-settlement"
                    .into(),
            complaints: true,
        }
    }
}

impl Platform {
    /// Days an appeal is open: the setting, never less than the law's six months.
    pub fn appeal_days(&self) -> u32 {
        self.appeal_days.max(MIN_APPEAL_DAYS)
    }

    /// The stable Platform Unique Identifier of the decision logged as `seq`.
    pub fn puid(&self, seq: u64) -> String {
        let prefix: String = self
            .puid_prefix
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        format!("{prefix}-decision-{seq}")
    }
}

/// Where a decision came from (Art. 17(3)(b)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A notice (Art. 16).
    Notice,
    /// A notice from a trusted flagger (Art. 22).
    TrustedFlagger,
    /// The platform's own initiative.
    OwnInitiative,
}

impl Source {
    fn of(d: &Decision) -> Self {
        match (d.notice, d.trusted_notice) {
            (Some(_), true) => Source::TrustedFlagger,
            (Some(_), false) => Source::Notice,
            (None, _) => Source::OwnInitiative,
        }
    }

    fn tdb(self) -> &'static str {
        match self {
            Source::Notice => "SOURCE_ARTICLE_16",
            Source::TrustedFlagger => "SOURCE_TRUSTED_FLAGGER",
            Source::OwnInitiative => "SOURCE_VOLUNTARY",
        }
    }
}

/// Whether a decision still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// In effect.
    InEffect,
    /// Its duration ran out.
    Expired,
    /// Undone (after an appeal or by a moderator).
    Reversed,
}

/// The statement of reasons the affected account reads (Art. 17(3) (a)–(f)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    /// The decision's log sequence number.
    pub id: u64,
    /// The Platform Unique Identifier, as sent to the Transparency Database.
    pub puid: String,
    /// (a) The restriction.
    pub restriction: Restriction,
    /// (b) The facts and circumstances relied on, and where the decision came from.
    pub facts: Facts,
    /// (c) The use of automated means.
    pub automation: AutomationUse,
    /// (d) or (e): the legal or the contractual ground, with the explanation.
    pub ground: GroundStatement,
    /// (f) The redress open to the person affected.
    pub redress: Redress,
    /// Whether it still holds.
    pub standing: Standing,
}

/// (a) What is restricted, where and for how long.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restriction {
    /// The action, by its API name.
    pub action: &'static str,
    /// The restriction, in words.
    pub description: &'static str,
    /// What it applies to.
    pub subject: crate::model::Subject,
    /// Where it applies: country codes, or empty for everywhere.
    pub territorial_scope: Vec<String>,
    /// When it took effect (Unix ms).
    pub from_ms: i64,
    /// When it ends (Unix ms); none: until reversed.
    pub until_ms: Option<i64>,
}

/// (b) The facts, and the source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Facts {
    /// The facts and circumstances.
    pub facts: String,
    /// A notice, a trusted flagger's notice, or own initiative.
    pub source: Source,
    /// The category.
    pub category: &'static str,
}

/// (c) Automation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutomationUse {
    /// Whether the content was found by automated means.
    pub detection: bool,
    /// Whether the decision was automated: not, partially, fully.
    pub decision: crate::model::Automation,
}

/// (d) The legal ground, or (e) the contractual ground, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GroundStatement {
    /// Illegal content.
    Illegal {
        /// The law relied on.
        legal_ground: String,
        /// Why the content is illegal under it.
        explanation: String,
    },
    /// Incompatible with the terms.
    Incompatible {
        /// The term relied on.
        contractual_ground: String,
        /// Why the content is incompatible with it.
        explanation: String,
    },
}

/// (f) Redress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redress {
    /// Whether this platform takes internal complaints (appeals) at all.
    pub internal_complaint: bool,
    /// The internal complaint (an appeal), open until this time (Unix ms), free.
    pub appeal_until_ms: i64,
    /// Whether an appeal can still be made at the time the statement was read.
    pub appeal_open: bool,
    /// Out-of-court dispute settlement (Art. 21): where the certified bodies are listed.
    pub out_of_court: String,
    /// Judicial redress.
    pub court: &'static str,
}

/// When an appeal against a decision taken at `decided_ms` closes.
pub fn appeal_until(platform: &Platform, decided_ms: i64) -> i64 {
    decided_ms + i64::from(platform.appeal_days()) * DAY_MS
}

/// The statement of the decision logged as `seq` at `decided_ms`, read at `now_ms`;
/// `reversed`: whether it has been undone since.
pub fn statement(
    platform: &Platform,
    seq: u64,
    decided_ms: i64,
    d: &Decision,
    reversed: bool,
    now_ms: i64,
) -> Statement {
    let until = appeal_until(platform, decided_ms);
    let standing = if reversed {
        Standing::Reversed
    } else if d.ends_at_ms.is_some_and(|end| end <= now_ms) {
        Standing::Expired
    } else {
        Standing::InEffect
    };
    Statement {
        id: seq,
        puid: platform.puid(seq),
        restriction: Restriction {
            action: d.action.as_str(),
            description: d.action.describe(),
            subject: d.subject.clone(),
            territorial_scope: d.territorial_scope.clone(),
            from_ms: decided_ms,
            until_ms: d.ends_at_ms,
        },
        facts: Facts {
            facts: d.facts.clone(),
            source: Source::of(d),
            category: d.category.as_str(),
        },
        automation: AutomationUse {
            detection: d.automated_detection,
            decision: d.automated_decision,
        },
        ground: match d.ground {
            Ground::Illegal => GroundStatement::Illegal {
                legal_ground: d.ground_reference.clone(),
                explanation: d.explanation.clone(),
            },
            Ground::Incompatible => GroundStatement::Incompatible {
                contractual_ground: d.ground_reference.clone(),
                explanation: d.explanation.clone(),
            },
        },
        redress: Redress {
            internal_complaint: platform.complaints,
            appeal_until_ms: until,
            appeal_open: platform.complaints && !reversed && now_ms < until,
            out_of_court: platform.out_of_court.clone(),
            court: "You can also take this decision to a court under the law of your country.",
        },
        standing,
    }
}

/// The Transparency Database payload of the decision logged as `seq` at `decided_ms`: no
/// personal data (no account, handle, notifier, moderator or content id beyond the `puid`).
pub fn tdb_payload(platform: &Platform, seq: u64, decided_ms: i64, d: &Decision) -> Value {
    let mut s = json!({
        "decision_ground": d.ground.tdb(),
        "category": d.category.tdb(),
        "content_type": content_type(d.subject.kind),
        "content_date": ymd(d.content_at_ms),
        "application_date": ymd(decided_ms),
        "decision_facts": d.facts,
        "source_type": Source::of(d).tdb(),
        "automated_detection": if d.automated_detection { "Yes" } else { "No" },
        "automated_decision": d.automated_decision.tdb(),
        "puid": platform.puid(seq),
    });
    let end = d.ends_at_ms.map(ymd);
    let (field, end_field) = match d.action {
        Action::RemoveSpeaker => ("decision_provision", "end_date_service_restriction"),
        Action::SuspendAccount => ("decision_account", "end_date_account_restriction"),
        _ => ("decision_visibility", "end_date_visibility_restriction"),
    };
    s[field] = if field == "decision_visibility" {
        json!([d.action.tdb()])
    } else {
        json!(d.action.tdb())
    };
    if d.action == Action::MuteSpeaker {
        s["decision_visibility_other"] = json!("A speaker muted in a live audio Space");
    }
    if let Some(end) = end {
        s[end_field] = json!(end);
    }
    if d.subject.kind == SubjectKind::Account {
        s["content_type_other"] = json!("Account");
    }
    if !d.territorial_scope.is_empty() {
        s["territorial_scope"] = json!(d.territorial_scope);
    }
    match d.ground {
        Ground::Illegal => {
            s["illegal_content_legal_ground"] = json!(d.ground_reference);
            s["illegal_content_explanation"] = json!(d.explanation);
        }
        Ground::Incompatible => {
            s["incompatible_content_ground"] = json!(d.ground_reference);
            s["incompatible_content_explanation"] = json!(d.explanation);
        }
    }
    s
}

fn content_type(kind: SubjectKind) -> Value {
    match kind {
        SubjectKind::Post => json!(["CONTENT_TYPE_TEXT"]),
        SubjectKind::Space | SubjectKind::Clip => json!(["CONTENT_TYPE_AUDIO"]),
        SubjectKind::Account => json!(["CONTENT_TYPE_OTHER"]),
    }
}

/// Why a decision cannot be taken as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The action does not apply to the subject.
    #[error("{0} does not apply to a {1}")]
    Inapplicable(&'static str, &'static str),
    /// A required text is missing.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A text is too long for the Transparency Database.
    #[error("{0} is longer than {1} characters")]
    TooLong(&'static str, usize),
    /// A country the Transparency Database does not know.
    #[error("{0} is not an EU or EEA country code")]
    Country(String),
    /// The end is not after the decision.
    #[error("the restriction must end after it starts")]
    EndsBeforeStart,
}

/// Checks a decision before it is logged: the action fits the subject, the texts every
/// statement needs are there and within the database's limits, the scope names countries
/// it knows, the end comes after `now_ms`.
pub fn check(d: &Decision, now_ms: i64) -> Result<(), DecisionError> {
    let kind = match d.subject.kind {
        SubjectKind::Post => "post",
        SubjectKind::Account => "account",
        SubjectKind::Space => "space",
        SubjectKind::Clip => "clip",
    };
    if !d.action.applies_to(d.subject.kind) {
        return Err(DecisionError::Inapplicable(d.action.as_str(), kind));
    }
    let reference = match d.ground {
        Ground::Illegal => "legal_ground",
        Ground::Incompatible => "contractual_ground",
    };
    for (name, text, max) in [
        (reference, &d.ground_reference, 500),
        ("explanation", &d.explanation, 2000),
        ("facts", &d.facts, 5000),
    ] {
        if text.trim().is_empty() {
            return Err(DecisionError::Missing(name));
        }
        if text.chars().count() > max {
            return Err(DecisionError::TooLong(name, max));
        }
    }
    if let Some(c) = d
        .territorial_scope
        .iter()
        .find(|c| !crate::model::EUROPEAN_COUNTRIES.contains(&c.as_str()))
    {
        return Err(DecisionError::Country(c.clone()));
    }
    if d.ends_at_ms.is_some_and(|end| end <= now_ms) {
        return Err(DecisionError::EndsBeforeStart);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Automation, Category, Subject};
    use crate::tdb::validate;

    fn decision(action: Action, kind: SubjectKind, ground: Ground) -> Decision {
        Decision {
            subject: Subject {
                kind,
                id: "42".into(),
                at_ms: (kind == SubjectKind::Space).then_some(61_000),
            },
            affected: 7,
            action,
            category: Category::ScamsAndFraud,
            ground,
            ground_reference: "Terms §4.2 (no scams)".into(),
            explanation: "The post asks for payment to a fake giveaway.".into(),
            facts: "Reported by a listener; the link leads to a payment page.".into(),
            territorial_scope: vec![],
            ends_at_ms: Some(1_800_000_000_000),
            notice: Some(3),
            trusted_notice: false,
            automated_detection: false,
            automated_decision: Automation::NotAutomated,
            content_at_ms: 1_764_000_000_000,
            moderator: 99,
        }
    }

    /// Every action on every subject it applies to, on both grounds.
    fn every_decision() -> Vec<Decision> {
        let kinds = [
            SubjectKind::Post,
            SubjectKind::Account,
            SubjectKind::Space,
            SubjectKind::Clip,
        ];
        let mut all = Vec::new();
        for &action in Action::ALL {
            for kind in kinds {
                if action.applies_to(kind) {
                    for ground in [Ground::Illegal, Ground::Incompatible] {
                        all.push(decision(action, kind, ground));
                    }
                }
            }
        }
        all
    }

    #[test]
    fn every_decision_makes_a_statement_with_every_item_and_a_payload_the_database_accepts() {
        let platform = Platform::default();
        let decided = 1_765_000_000_000;
        for (i, d) in every_decision().iter().enumerate() {
            check(d, decided).unwrap();
            let s = statement(&platform, i as u64, decided, d, false, decided);
            assert_eq!(s.restriction.action, d.action.as_str());
            assert!(!s.restriction.description.is_empty());
            assert_eq!(s.restriction.until_ms, d.ends_at_ms);
            assert_eq!(s.facts.source, Source::Notice);
            assert_eq!(s.automation.decision, Automation::NotAutomated);
            assert!(matches!(
                (&s.ground, d.ground),
                (GroundStatement::Illegal { .. }, Ground::Illegal)
                    | (GroundStatement::Incompatible { .. }, Ground::Incompatible)
            ));
            assert!(s.redress.appeal_open);
            assert_eq!(s.redress.appeal_until_ms - decided, 183 * DAY_MS);
            assert_eq!(s.standing, Standing::InEffect);
            let payload = tdb_payload(&platform, i as u64, decided, d);
            assert_eq!(validate(&payload), vec![], "{payload}");
            let text = payload.to_string();
            assert!(
                !text.contains("\"affected\"") && !text.contains("99"),
                "{text}"
            );
        }
    }

    #[test]
    fn an_appeal_is_open_six_months_at_least_and_closes() {
        let platform = Platform {
            appeal_days: 20,
            ..Platform::default()
        };
        let d = decision(Action::Remove, SubjectKind::Post, Ground::Incompatible);
        let later = 1_000 + 184 * DAY_MS;
        let s = statement(&platform, 1, 1_000, &d, false, 1_000 + 182 * DAY_MS);
        assert!(s.redress.appeal_open, "20 days configured, 183 kept");
        let s = statement(&platform, 1, 1_000, &d, false, later);
        assert!(!s.redress.appeal_open);
        let s = statement(&platform, 1, 1_000, &d, true, 2_000);
        assert_eq!(s.standing, Standing::Reversed);
        assert!(!s.redress.appeal_open);
    }

    #[test]
    fn a_decision_that_cannot_make_a_full_statement_is_refused() {
        let now = 1_765_000_000_000;
        let mut d = decision(Action::SuspendAccount, SubjectKind::Post, Ground::Illegal);
        assert_eq!(
            check(&d, now),
            Err(DecisionError::Inapplicable("suspend_account", "post"))
        );
        d.subject.kind = SubjectKind::Account;
        d.facts = " ".into();
        assert_eq!(check(&d, now), Err(DecisionError::Missing("facts")));
        d.facts = "x".repeat(5001);
        assert_eq!(check(&d, now), Err(DecisionError::TooLong("facts", 5000)));
        d.facts = "ok".into();
        d.territorial_scope = vec!["US".into()];
        assert_eq!(check(&d, now), Err(DecisionError::Country("US".into())));
        d.territorial_scope = vec!["DE".into(), "FR".into()];
        d.ends_at_ms = Some(now);
        assert_eq!(check(&d, now), Err(DecisionError::EndsBeforeStart));
        d.ends_at_ms = None;
        assert_eq!(check(&d, now), Ok(()));
    }
}
