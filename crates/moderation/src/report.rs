//! The transparency report: per category and ground, over a period, the notices, the
//! decisions by type, the automated share, the median time from notice to decision, the
//! appeals, the reversals and the reversal rate — computed from the log alone.

use crate::log::Event;
use crate::model::{Action, Automation, Category, Ground};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One line of the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    /// The category (API name).
    pub category: String,
    /// `illegal`, `incompatible`, or empty for notices no decision answered.
    pub ground: String,
    /// Notices received.
    pub notices: u64,
    /// Decisions taken.
    pub decisions: u64,
    /// Decisions per action (API names).
    pub by_action: BTreeMap<String, u64>,
    /// Decisions taken by automated means, in part or fully.
    pub automated: u64,
    /// `automated / decisions` (0 without decisions).
    pub automated_share: f64,
    /// Median time from a notice to the decision on it, hours (none without such decisions).
    pub median_hours_to_decision: Option<f64>,
    /// Appeals made.
    pub appeals: u64,
    /// Decisions reversed.
    pub reversals: u64,
    /// `reversals / decisions` (0 without decisions).
    pub reversal_rate: f64,
}

/// The report over `[from_ms, to_ms)` from the whole log `entries` (sequence number, time,
/// event), in order: events in the period count; a decision's category and ground come from
/// the decision whenever it was taken.
pub fn report(entries: &[(u64, i64, Event)], from_ms: i64, to_ms: i64) -> Vec<Row> {
    let within = |at: i64| at >= from_ms && at < to_ms;
    let mut notices: HashMap<u64, (i64, Category)> = HashMap::new();
    let mut decisions: HashMap<u64, (Category, Ground)> = HashMap::new();
    let mut answered: HashMap<u64, Ground> = HashMap::new();
    for (seq, at, event) in entries {
        match event {
            Event::Notice(n) => {
                notices.insert(*seq, (*at, n.category));
            }
            Event::Decision(d) => {
                decisions.insert(*seq, (d.category, d.ground));
                if let Some(n) = d.notice {
                    answered.entry(n).or_insert(d.ground);
                }
            }
            _ => {}
        }
    }
    let mut rows: BTreeMap<(Category, Option<Ground>), Row> = BTreeMap::new();
    let mut waits: BTreeMap<(Category, Option<Ground>), Vec<i64>> = BTreeMap::new();
    for (seq, at, event) in entries {
        if !within(*at) {
            continue;
        }
        match event {
            Event::Notice(n) => {
                row(&mut rows, n.category, answered.get(seq).copied()).notices += 1;
            }
            Event::Decision(d) => {
                let r = row(&mut rows, d.category, Some(d.ground));
                r.decisions += 1;
                *r.by_action.entry(d.action.as_str().to_owned()).or_default() += 1;
                if d.automated_decision != Automation::NotAutomated {
                    r.automated += 1;
                }
                if let Some((noticed, _)) = d.notice.and_then(|n| notices.get(&n)) {
                    waits
                        .entry((d.category, Some(d.ground)))
                        .or_default()
                        .push(at - noticed);
                }
            }
            Event::Appeal(a) => {
                if let Some((c, g)) = decisions.get(&a.decision) {
                    row(&mut rows, *c, Some(*g)).appeals += 1;
                }
            }
            Event::Reversal { decision, .. } => {
                if let Some((c, g)) = decisions.get(decision) {
                    row(&mut rows, *c, Some(*g)).reversals += 1;
                }
            }
            _ => {}
        }
    }
    for (key, r) in &mut rows {
        let ratio = |n: u64| {
            if r.decisions == 0 {
                0.0
            } else {
                n as f64 / r.decisions as f64
            }
        };
        r.automated_share = ratio(r.automated);
        r.reversal_rate = ratio(r.reversals);
        if let Some(w) = waits.get_mut(key) {
            r.median_hours_to_decision = median(w).map(|ms| ms / 3_600_000.0);
        }
    }
    rows.into_values().collect()
}

fn row(
    rows: &mut BTreeMap<(Category, Option<Ground>), Row>,
    category: Category,
    ground: Option<Ground>,
) -> &mut Row {
    rows.entry((category, ground)).or_insert_with(|| Row {
        category: category.as_str().to_owned(),
        ground: ground.map_or("", Ground::as_str).to_owned(),
        by_action: Action::ALL
            .iter()
            .map(|a| (a.as_str().to_owned(), 0))
            .collect(),
        ..Row::default()
    })
}

/// The median (the mean of the middle two for an even count).
fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0
    })
}

/// The report as CSV: a header, then one line per row.
pub fn csv(rows: &[Row], from: &str, to: &str) -> String {
    let mut out = String::from("period_from,period_to,category,ground,notices,decisions");
    for a in Action::ALL {
        out.push(',');
        out.push_str(a.as_str());
    }
    out.push_str(
        ",automated,automated_share,median_hours_to_decision,appeals,reversals,reversal_rate\n",
    );
    for r in rows {
        let mut line = format!(
            "{from},{to},{},{},{},{}",
            r.category, r.ground, r.notices, r.decisions
        );
        for a in Action::ALL {
            line.push_str(&format!(",{}", r.by_action.get(a.as_str()).unwrap_or(&0)));
        }
        line.push_str(&format!(
            ",{},{:.4},{},{},{},{:.4}\n",
            r.automated,
            r.automated_share,
            r.median_hours_to_decision
                .map_or(String::new(), |h| format!("{h:.2}")),
            r.appeals,
            r.reversals,
            r.reversal_rate
        ));
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Appeal, Decision, Notice, Subject, SubjectKind};

    const HOUR: i64 = 3_600_000;

    fn notice(category: Category) -> Event {
        Event::Notice(Notice {
            subject: Subject {
                kind: SubjectKind::Post,
                id: "1".into(),
                at_ms: None,
            },
            category,
            explanation: "spam".into(),
            notifier: Some(1),
            contact: None,
            trusted: false,
        })
    }

    fn decision(action: Action, notice: Option<u64>, automated: Automation) -> Event {
        Event::Decision(Decision {
            subject: Subject {
                kind: SubjectKind::Post,
                id: "1".into(),
                at_ms: None,
            },
            affected: 2,
            action,
            category: Category::ScamsAndFraud,
            ground: Ground::Incompatible,
            ground_reference: "§4".into(),
            explanation: "x".into(),
            facts: "y".into(),
            territorial_scope: vec![],
            ends_at_ms: None,
            notice,
            trusted_notice: false,
            automated_detection: false,
            automated_decision: automated,
            content_at_ms: 0,
            moderator: 9,
        })
    }

    #[test]
    fn the_report_counts_what_the_log_holds() {
        let log = vec![
            (1, 0, notice(Category::ScamsAndFraud)),
            (2, 0, notice(Category::ScamsAndFraud)),
            (3, 0, notice(Category::Violence)),
            (
                4,
                2 * HOUR,
                decision(Action::Remove, Some(1), Automation::NotAutomated),
            ),
            (
                5,
                4 * HOUR,
                decision(Action::Label, Some(2), Automation::Partially),
            ),
            (
                6,
                5 * HOUR,
                decision(Action::Demote, None, Automation::NotAutomated),
            ),
            (
                7,
                6 * HOUR,
                Event::Appeal(Appeal {
                    decision: 4,
                    by: 2,
                    text: "not a scam".into(),
                }),
            ),
            (
                8,
                7 * HOUR,
                Event::Reversal {
                    decision: 4,
                    appeal: Some(7),
                    moderator: 10,
                },
            ),
            // After the period.
            (9, 100 * HOUR, notice(Category::Violence)),
        ];
        let rows = report(&log, 0, 50 * HOUR);
        assert_eq!(rows.len(), 2, "{rows:#?}");
        let scams = rows
            .iter()
            .find(|r| r.category == "scams_and_fraud")
            .unwrap();
        assert_eq!(scams.ground, "incompatible");
        assert_eq!(scams.notices, 2);
        assert_eq!(scams.decisions, 3);
        assert_eq!(scams.by_action["remove"], 1);
        assert_eq!(scams.by_action["label"], 1);
        assert_eq!(scams.by_action["demote"], 1);
        assert_eq!(scams.by_action["suspend_account"], 0);
        assert_eq!(scams.automated, 1);
        assert!((scams.automated_share - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(scams.median_hours_to_decision, Some(3.0));
        assert_eq!(scams.appeals, 1);
        assert_eq!(scams.reversals, 1);
        assert!((scams.reversal_rate - 1.0 / 3.0).abs() < 1e-9);
        let violence = rows.iter().find(|r| r.category == "violence").unwrap();
        assert_eq!((violence.notices, violence.decisions), (1, 0));
        assert_eq!(violence.ground, "");
        let text = csv(&rows, "2026-01-01", "2026-02-01");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("period_from,period_to,category,ground,notices"));
        assert!(
            lines.iter().any(|l| l
                .starts_with("2026-01-01,2026-02-01,scams_and_fraud,incompatible,2,3,1,1,0,1,")),
            "{text}"
        );
    }
}
