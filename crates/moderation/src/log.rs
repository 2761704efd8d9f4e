//! The moderation log: every notice, decision, appeal, answer, reversal and note as one entry,
//! appended and never changed, each carrying the SHA-256 of the one before, so that an entry
//! edited, removed or put out of order is found by walking the chain.

use crate::model::{Appeal, AppealAnswer, Decision, Notice, Subject};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A notice (Art. 16).
    Notice(Notice),
    /// A notice looked at and left without action, with the reason told to the notifier.
    Dismissal {
        /// The notice (its sequence number).
        notice: u64,
        /// Why nothing was done.
        explanation: String,
        /// The moderator (kept out of every export).
        moderator: u64,
    },
    /// A decision, with its statement of reasons.
    Decision(Decision),
    /// An appeal against a decision.
    Appeal(Appeal),
    /// The answer to an appeal.
    AppealAnswer(AppealAnswer),
    /// A decision undone: after an appeal (`appeal`), or by a moderator on their own.
    Reversal {
        /// The decision undone.
        decision: u64,
        /// The appeal that led to it, if any.
        #[serde(default)]
        appeal: Option<u64>,
        /// The moderator (kept out of every export).
        moderator: u64,
    },
    /// A moderator's note on a subject (seen by moderators only).
    Note {
        /// What it is about.
        subject: Subject,
        /// The note.
        text: String,
        /// The moderator.
        moderator: u64,
    },
}

/// One entry of the log as it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its place: 1, 2, 3, … without gaps.
    pub seq: u64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// The event, as JSON text, exactly as hashed.
    pub event: String,
    /// The previous entry's hash (the first entry: [`GENESIS`]).
    pub prev: String,
    /// This entry's hash.
    pub hash: String,
}

/// What the first entry names as the hash before it.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of an entry from its parts.
pub fn hash(prev: &str, seq: u64, at_ms: i64, event: &str) -> String {
    let mut h = Sha256::new();
    for part in [prev, &seq.to_string(), &at_ms.to_string(), event] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

impl Entry {
    /// The entry that follows `prev` (none: the first) with `event` at `at_ms`.
    pub fn next(prev: Option<&Entry>, at_ms: i64, event: &Event) -> Entry {
        let (seq, prev) = match prev {
            Some(p) => (p.seq + 1, p.hash.clone()),
            None => (1, GENESIS.to_owned()),
        };
        let event = serde_json::to_string(event).expect("events serialize");
        Entry {
            hash: hash(&prev, seq, at_ms, &event),
            seq,
            at_ms,
            event,
            prev,
        }
    }

    /// The event.
    pub fn event(&self) -> Result<Event, serde_json::Error> {
        serde_json::from_str(&self.event)
    }
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    /// An entry's content does not match its hash: edited.
    #[error("entry {0} was changed after it was written")]
    Edited(u64),
    /// An entry does not follow the one before: one was removed or put in between.
    #[error("the entry before {0} is missing or not the one it was written after")]
    Unlinked(u64),
    /// Sequence numbers jump or repeat.
    #[error("entry {0} is out of sequence")]
    OutOfSequence(u64),
    /// An entry's event is not one the log knows.
    #[error("entry {0} holds no readable event")]
    Unreadable(u64),
}

/// Walks the chain from `after` (the entry before the first given, or none from the start)
/// and finds the first break.
pub fn verify(after: Option<&Entry>, entries: &[Entry]) -> Result<(), Broken> {
    let mut prev: Option<&Entry> = after;
    for e in entries {
        let (want_seq, want_prev) = match prev {
            Some(p) => (p.seq + 1, p.hash.as_str()),
            None => (1, GENESIS),
        };
        if e.seq != want_seq {
            return Err(Broken::OutOfSequence(e.seq));
        }
        if hash(&e.prev, e.seq, e.at_ms, &e.event) != e.hash {
            return Err(Broken::Edited(e.seq));
        }
        if e.prev != want_prev {
            return Err(Broken::Unlinked(e.seq));
        }
        if e.event().is_err() {
            return Err(Broken::Unreadable(e.seq));
        }
        prev = Some(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Category, SubjectKind};

    fn note(text: &str) -> Event {
        Event::Note {
            subject: Subject {
                kind: SubjectKind::Post,
                id: "1".into(),
                at_ms: None,
            },
            text: text.into(),
            moderator: 5,
        }
    }

    fn chain(n: usize) -> Vec<Entry> {
        let mut entries: Vec<Entry> = Vec::new();
        for i in 0..n {
            let e = Entry::next(entries.last(), 1_000 + i as i64, &note(&format!("n{i}")));
            entries.push(e);
        }
        entries
    }

    #[test]
    fn a_chain_as_written_verifies() {
        let entries = chain(5);
        assert_eq!(verify(None, &entries), Ok(()));
        assert_eq!(verify(Some(&entries[1]), &entries[2..]), Ok(()));
        assert_eq!(entries[0].prev, GENESIS);
        assert_eq!(entries[4].seq, 5);
    }

    #[test]
    fn an_edited_entry_is_found() {
        let mut entries = chain(5);
        entries[2].event = serde_json::to_string(&note("rewritten")).unwrap();
        assert_eq!(verify(None, &entries), Err(Broken::Edited(3)));
        // Rewriting its hash too breaks the link of the next one.
        let mut entries = chain(5);
        entries[2].event = serde_json::to_string(&note("rewritten")).unwrap();
        entries[2].hash = hash(&entries[2].prev, 3, entries[2].at_ms, &entries[2].event);
        assert_eq!(verify(None, &entries), Err(Broken::Unlinked(4)));
        // So does a changed time.
        let mut entries = chain(5);
        entries[1].at_ms += 1;
        assert_eq!(verify(None, &entries), Err(Broken::Edited(2)));
    }

    #[test]
    fn a_removed_or_reordered_entry_is_found() {
        let mut entries = chain(5);
        entries.remove(2);
        assert_eq!(verify(None, &entries), Err(Broken::OutOfSequence(4)));
        // Renumbered to hide the gap: the hash no longer matches.
        for e in &mut entries[2..] {
            e.seq -= 1;
        }
        assert_eq!(verify(None, &entries), Err(Broken::Edited(3)));
        let mut entries = chain(5);
        entries.swap(1, 2);
        assert_eq!(verify(None, &entries), Err(Broken::OutOfSequence(3)));
        // The last entry removed is not visible from the entries alone: the head (the
        // newest hash, kept apart) shows it.
        let entries = chain(5);
        assert_eq!(verify(None, &entries[..4]), Ok(()));
        assert_ne!(entries[3].hash, entries[4].hash);
    }

    #[test]
    fn events_read_back_as_written() {
        let notice = Event::Notice(Notice {
            subject: Subject {
                kind: SubjectKind::Space,
                id: "abc".into(),
                at_ms: Some(65_000),
            },
            category: Category::IllegalOrHarmfulSpeech,
            explanation: "threats at 1:05".into(),
            notifier: Some(12),
            contact: None,
            trusted: true,
        });
        let e = Entry::next(None, 5, &notice);
        assert_eq!(e.event().unwrap(), notice);
        assert!(e.event.contains("\"type\":\"notice\""), "{}", e.event);
    }
}
