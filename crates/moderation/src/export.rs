//! Submitting statements to the Transparency Database (DSA Art. 24(5)): batches of at most
//! [`BATCH`] for `POST /api/v1/statements`, what each answer means for each statement in the
//! batch, and how long to wait before trying again. The `puid` makes a submission idempotent:
//! a statement the database already holds (answered `422` with `existing_puids`) counts as
//! sent, so a retry after a lost answer, or two nodes sending the same one, does no harm.

use serde_json::{Value, json};
use std::time::Duration;

/// Statements in one request (the database's limit).
pub const BATCH: usize = 100;
/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The body of a batch: `{"statements": [payload, …]}`.
pub fn body(payloads: &[Value]) -> Value {
    debug_assert!(payloads.len() <= BATCH);
    json!({ "statements": payloads })
}

/// What an answer means for a batch whose statements carry `puids`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// All of them are in the database now.
    Accepted,
    /// The database holds these already (they count as sent); the others of the batch were
    /// not stored and go again in the next batch.
    Existing(Vec<String>),
    /// The database refused statements as invalid: `(index in the batch, reason)`. They are
    /// not sent again (they would be refused again); the others go in the next batch.
    Invalid(Vec<(usize, String)>),
    /// Try the whole batch again later (a server error, too many requests, no answer).
    Retry(String),
    /// The endpoint refuses this platform (a wrong or expired token): nothing is sent until
    /// the operator fixes it, and it is tried again after the longest wait.
    Unauthorized(String),
}

/// Reads the answer (`status` and `body`) to a batch of `count` statements with `puids`.
pub fn answer(status: u16, body: &[u8], puids: &[String]) -> Answer {
    let text = || {
        String::from_utf8_lossy(body)
            .chars()
            .take(300)
            .collect::<String>()
    };
    match status {
        200..=299 => Answer::Accepted,
        401 | 403 => Answer::Unauthorized(format!("{status}: {}", text())),
        422 => {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return Answer::Retry(format!("422 without a JSON body: {}", text()));
            };
            let errors = &v["errors"];
            if let Some(existing) = errors["existing_puids"].as_array() {
                let existing: Vec<String> = existing
                    .iter()
                    .filter_map(|p| p.as_str())
                    .filter(|p| puids.iter().any(|q| q == p))
                    .map(str::to_owned)
                    .collect();
                if !existing.is_empty() {
                    return Answer::Existing(existing);
                }
            }
            // Field errors name the statement: `statements.3.decision_facts` (batches) or
            // `statement_3` as some versions did.
            let mut invalid: Vec<(usize, String)> = Vec::new();
            if let Some(map) = errors.as_object() {
                for (key, why) in map {
                    let index = key
                        .strip_prefix("statements.")
                        .and_then(|rest| rest.split('.').next())
                        .or_else(|| key.strip_prefix("statement_"))
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|&n| n < puids.len());
                    if let Some(n) = index {
                        let why = match why {
                            Value::Array(items) => items
                                .iter()
                                .filter_map(|i| i.as_str())
                                .collect::<Vec<_>>()
                                .join("; "),
                            other => other.to_string(),
                        };
                        match invalid.iter_mut().find(|(i, _)| *i == n) {
                            Some((_, reasons)) => {
                                reasons.push_str("; ");
                                reasons.push_str(&format!("{key}: {why}"));
                            }
                            None => invalid.push((n, format!("{key}: {why}"))),
                        }
                    }
                }
            }
            if invalid.is_empty() {
                // Refused as a whole without naming a statement: all of them are invalid as
                // far as anyone can tell; the operator reads the reason.
                let why = v["message"].as_str().map_or_else(text, str::to_owned);
                Answer::Invalid((0..puids.len()).map(|i| (i, why.clone())).collect())
            } else {
                invalid.sort_by_key(|(i, _)| *i);
                Answer::Invalid(invalid)
            }
        }
        _ => Answer::Retry(format!("{status}: {}", text())),
    }
}

/// The wait before try number `failures + 1` (after `failures` failures in a row).
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn puids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("stentor-decision-{i}")).collect()
    }

    #[test]
    fn a_success_sends_them_all() {
        assert_eq!(
            answer(201, b"{\"statements\":[]}", &puids(3)),
            Answer::Accepted
        );
    }

    #[test]
    fn statements_the_database_holds_count_as_sent() {
        let body = br#"{"message":"The platform identifier(s) given are not all unique within this platform.",
            "errors":{"puid":["not unique"],"existing_puids":["stentor-decision-1","someone-else-9"]}}"#;
        assert_eq!(
            answer(422, body, &puids(3)),
            Answer::Existing(vec!["stentor-decision-1".into()])
        );
    }

    #[test]
    fn field_errors_name_the_statements_refused() {
        let body = br#"{"message":"invalid","errors":{
            "statements.2.decision_facts":["The decision facts field is required."],
            "statements.0.category":["The selected category is invalid."],
            "statements.2.puid":["bad"]}}"#;
        assert_eq!(
            answer(422, body, &puids(3)),
            Answer::Invalid(vec![
                (
                    0,
                    "statements.0.category: The selected category is invalid.".into()
                ),
                (
                    2,
                    "statements.2.decision_facts: The decision facts field is required.; \
                     statements.2.puid: bad"
                        .into()
                ),
            ])
        );
    }

    #[test]
    fn a_refusal_naming_nobody_refuses_the_batch() {
        let body = br#"{"message":"The statements field must have at most 100 items.","errors":{"statements":["too many"]}}"#;
        match answer(422, body, &puids(2)) {
            Answer::Invalid(all) => {
                assert_eq!(all.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_errors_and_throttling_are_tried_again_and_a_bad_token_waits() {
        assert!(matches!(answer(503, b"busy", &puids(1)), Answer::Retry(_)));
        assert!(matches!(answer(429, b"", &puids(1)), Answer::Retry(_)));
        assert!(matches!(
            answer(422, b"<html>", &puids(1)),
            Answer::Retry(_)
        ));
        assert!(matches!(
            answer(401, b"", &puids(1)),
            Answer::Unauthorized(_)
        ));
    }

    #[test]
    fn the_wait_doubles_up_to_five_minutes() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(9), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
    }

    #[test]
    fn a_batch_is_the_statements_array() {
        let b = body(&[json!({"puid": "a"})]);
        assert_eq!(b["statements"][0]["puid"], "a");
    }
}
