//! The moderation log's durable form: entries appended in order with their hashes, and the
//! state derived from them in the same transaction (the restrictions in force, the notices
//! waiting), so that the derived state never runs ahead of or behind the log.

use super::{Columns, Pool, Store, StoreError};
use stentor_moderation::log::{Entry, Event};

/// A restriction as the derived state holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    /// The decision (its sequence number).
    pub decision: u64,
    /// What it applies to: `post`, `account`, `space`, `clip`.
    pub subject_kind: String,
    /// Its id.
    pub subject_id: String,
    /// The account affected.
    pub affected: u64,
    /// The action (API name).
    pub action: String,
    /// When it ends (Unix ms); none: until reversed.
    pub ends_at_ms: Option<i64>,
    /// Whether it was reversed.
    pub reversed: bool,
    /// The countries it applies in (ISO codes); empty: everywhere.
    pub scope: Vec<String>,
    /// The reason shown (a label's text).
    pub reason: String,
}

/// Brings a subject's derived state (`$1` kind, `$2` id, `$4` the id as a number) up to what
/// is in force at `$3`:
/// a post's removal, demotion and label, an account's suspension, a Space's demotion. A
/// statement that does not concern the subject's kind changes no row. A post's columns hold
/// what applies everywhere; `scoped` marks one with a restriction limited to some countries,
/// which its views look up for the viewer's country.
const SUBJECT_STATE: [&str; 3] = [
    "UPDATE posts SET \
       removed = EXISTS (SELECT 1 FROM restrictions r WHERE r.subject_kind = $1 \
         AND r.subject_id = $2 AND r.action = 'remove' AND NOT r.reversed AND r.scope = '' \
         AND (r.ends_at_ms IS NULL OR r.ends_at_ms > $3)), \
       scoped = EXISTS (SELECT 1 FROM restrictions r WHERE r.subject_kind = $1 \
         AND r.subject_id = $2 AND NOT r.reversed AND r.scope <> '' \
         AND (r.ends_at_ms IS NULL OR r.ends_at_ms > $3)), \
       restricted = EXISTS (SELECT 1 FROM restrictions r WHERE r.subject_kind = $1 \
         AND r.subject_id = $2 AND r.action = 'restrict_interaction' AND NOT r.reversed \
         AND (r.ends_at_ms IS NULL OR r.ends_at_ms > $3)), \
       demoted = EXISTS (SELECT 1 FROM restrictions r WHERE r.subject_kind = $1 \
         AND r.subject_id = $2 AND r.action = 'demote' AND NOT r.reversed \
         AND (r.ends_at_ms IS NULL OR r.ends_at_ms > $3)), \
       label = (SELECT r.reason FROM restrictions r WHERE r.subject_kind = $1 \
         AND r.subject_id = $2 AND r.action = 'label' AND NOT r.reversed AND r.scope = '' \
         AND (r.ends_at_ms IS NULL OR r.ends_at_ms > $3) ORDER BY r.decision DESC LIMIT 1) \
     WHERE $1 = 'post' AND id = $4",
    "UPDATE users SET suspended_until = (SELECT MAX(COALESCE(r.ends_at_ms, 9223372036854775807)) \
       FROM restrictions r WHERE r.subject_kind = $1 AND r.subject_id = $2 \
       AND r.action = 'suspend_account' AND NOT r.reversed \
       AND (r.ends_at_ms IS NULL OR r.ends_at_ms > $3)) \
     WHERE $1 = 'account' AND id = $4",
    "UPDATE spaces SET demoted = EXISTS (SELECT 1 FROM restrictions r WHERE r.subject_kind = $1 \
       AND r.subject_id = $2 AND r.action = 'demote' AND NOT r.reversed \
       AND (r.ends_at_ms IS NULL OR r.ends_at_ms > $3)) \
     WHERE $1 = 'space' AND id = $2 AND $4 = $4", // (every statement takes the same four)
];

/// An inbox entry about a moderation event: `$1` the account, `$2` its group, `$3` the kind,
/// `$4` the time, `$5` the log entry it is about.
const TELL: &str = "INSERT INTO notifications \
     (user_id, group_key, kind, count, at_ms, read, log_seq) \
     VALUES ($1, $2, $3, 1, $4, FALSE, $5) \
     ON CONFLICT (user_id, group_key) DO UPDATE SET at_ms = excluded.at_ms, read = FALSE";

/// A subject's id as a row id (posts and accounts are numbered; -1 matches no row).
fn numeric(id: &str) -> i64 {
    id.parse().unwrap_or(-1)
}

/// How many times an append retries when another writer took its place in the chain.
const APPEND_TRIES: usize = 20;

const ENTRY_COLUMNS: &str = "SELECT seq, at_ms, event, prev, hash FROM moderation_log";

fn entry_from(row: &impl Columns) -> Entry {
    Entry {
        seq: row.int(0) as u64,
        at_ms: row.int(1),
        event: row.text(2),
        prev: row.text(3),
        hash: row.text(4),
    }
}

fn kind_of(event: &Event) -> &'static str {
    match event {
        Event::Notice(_) => "notice",
        Event::Dismissal { .. } => "dismissal",
        Event::Decision(_) => "decision",
        Event::Appeal(_) => "appeal",
        Event::AppealAnswer(_) => "appeal_answer",
        Event::Reversal { .. } => "reversal",
        Event::Note { .. } => "note",
    }
}

fn subject_kind(kind: stentor_moderation::model::SubjectKind) -> &'static str {
    use stentor_moderation::model::SubjectKind::*;
    match kind {
        Post => "post",
        Account => "account",
        Space => "space",
        Clip => "clip",
    }
}

/// Brings a subject (`$kind`, `$id`) up to what is in force at `$at`, on `$conn` (a
/// transaction of either backend): every statement of [`SUBJECT_STATE`].
macro_rules! up_to_date {
    ($conn:expr, $kind:expr, $id:expr, $at:expr) => {{
        let (kind, id) = ($kind, $id);
        for statement in SUBJECT_STATE {
            sqlx::query(statement)
                .bind(&kind)
                .bind(id)
                .bind($at)
                .bind(numeric(id))
                .execute($conn)
                .await?;
        }
    }};
}

/// Takes notice `$notice` off the queue on `$conn` and tells its notifier (if signed in)
/// that it was answered, at `$at`.
macro_rules! answer_notice {
    ($conn:expr, $notice:expr, $at:expr) => {{
        let notice: u64 = $notice;
        let notifier = sqlx::query("DELETE FROM open_notices WHERE notice = $1 RETURNING notifier")
            .bind(notice as i64)
            .fetch_optional($conn)
            .await?
            .and_then(|row| row.maybe_int(0));
        if let Some(user) = notifier {
            sqlx::query(TELL)
                .bind(user)
                .bind(format!("report-{notice}"))
                .bind("report_outcome")
                .bind($at)
                .bind(notice as i64)
                .execute($conn)
                .await?;
        }
    }};
}

impl Store {
    /// Appends `event` at `at_ms` after the newest entry, with the state derived from it, in
    /// one transaction; appends take turns (and one that still finds its place taken builds
    /// on the newer entry and tries again).
    pub async fn moderation_append(&self, at_ms: i64, event: &Event) -> Result<Entry, StoreError> {
        for _ in 0..APPEND_TRIES {
            match self.try_append(at_ms, event).await {
                Err(StoreError::Conflict(_)) => continue,
                outcome => return outcome,
            }
        }
        Err(StoreError::Conflict("moderation log"))
    }

    async fn try_append(&self, at_ms: i64, event: &Event) -> Result<Entry, StoreError> {
        let subject = match event {
            Event::Notice(n) => Some(&n.subject),
            Event::Decision(d) => Some(&d.subject),
            Event::Note { subject, .. } => Some(subject),
            _ => None,
        };
        // Appends take turns: PostgreSQL's transaction-scoped advisory lock; on SQLite, a
        // write first, which takes the database's one write lock before the head is read.
        let lock = match &self.pool {
            Pool::Postgres(_) => "SELECT pg_advisory_xact_lock(7125)",
            Pool::Sqlite(_) => "DELETE FROM moderation_log WHERE seq < 0",
        };
        let outcome: Result<Entry, sqlx::Error> = on!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query(lock).execute(&mut *tx).await?;
                let head = sqlx::query(&format!("{ENTRY_COLUMNS} ORDER BY seq DESC LIMIT 1"))
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|row| entry_from(&row));
                let entry = Entry::next(head.as_ref(), at_ms, event);
                sqlx::query(
                    "INSERT INTO moderation_log \
                 (seq, at_ms, kind, subject_kind, subject_id, event, prev, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(entry.seq as i64)
                .bind(at_ms)
                .bind(kind_of(event))
                .bind(subject.map(|s| subject_kind(s.kind)))
                .bind(subject.map(|s| s.id.as_str()))
                .bind(&entry.event)
                .bind(&entry.prev)
                .bind(&entry.hash)
                .execute(&mut *tx)
                .await?;
                let seq = entry.seq as i64;
                match event {
                    Event::Notice(n) => {
                        sqlx::query(
                            "INSERT INTO open_notices (notice, notifier, trusted, at_ms) \
                         VALUES ($1, $2, $3, $4)",
                        )
                        .bind(seq)
                        .bind(n.notifier.map(|u| u as i64))
                        .bind(n.trusted)
                        .bind(at_ms)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Event::Dismissal { notice, .. } => answer_notice!(&mut *tx, *notice, at_ms),
                    Event::Decision(d) => {
                        sqlx::query(
                            "INSERT INTO restrictions (decision, subject_kind, subject_id, \
                         affected, action, ends_at_ms, reason, scope) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(seq)
                        .bind(subject_kind(d.subject.kind))
                        .bind(&d.subject.id)
                        .bind(d.affected as i64)
                        .bind(d.action.as_str())
                        .bind(d.ends_at_ms)
                        .bind(&d.explanation)
                        .bind(d.territorial_scope.join(","))
                        .execute(&mut *tx)
                        .await?;
                        up_to_date!(&mut *tx, subject_kind(d.subject.kind), &d.subject.id, at_ms);
                        // The statement reaches the affected account as the decision takes
                        // effect; the notifier hears of the outcome.
                        sqlx::query(TELL)
                            .bind(d.affected as i64)
                            .bind(format!("statement-{seq}"))
                            .bind("statement")
                            .bind(at_ms)
                            .bind(seq)
                            .execute(&mut *tx)
                            .await?;
                        if let Some(notice) = d.notice {
                            answer_notice!(&mut *tx, notice, at_ms);
                        }
                    }
                    Event::Reversal { decision, .. } => {
                        let subject = sqlx::query(
                            "UPDATE restrictions SET reversed = TRUE WHERE decision = $1 \
                         RETURNING subject_kind, subject_id",
                        )
                        .bind(*decision as i64)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if let Some(row) = subject {
                            up_to_date!(&mut *tx, row.text(0), &row.text(1), at_ms);
                        }
                    }
                    Event::AppealAnswer(a) => {
                        let affected =
                            sqlx::query("SELECT affected FROM restrictions WHERE decision = $1")
                                .bind(a.decision as i64)
                                .fetch_optional(&mut *tx)
                                .await?
                                .map(|row| row.int(0));
                        if let Some(user) = affected {
                            sqlx::query(TELL)
                                .bind(user)
                                .bind(format!("appeal-{}", a.appeal))
                                .bind("appeal_answer")
                                .bind(at_ms)
                                .bind(a.decision as i64)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    Event::Appeal(_) | Event::Note { .. } => {}
                }
                tx.commit().await?;
                Ok(entry)
            }
            .await
        });
        outcome.map_err(|e| {
            if retryable(&e) {
                StoreError::Conflict("moderation log")
            } else {
                StoreError::Database(e)
            }
        })
    }

    /// Entries after `after` (a sequence number; 0 from the start), at most `limit`, in order.
    pub async fn moderation_entries(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Entry>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(&format!(
                "{ENTRY_COLUMNS} WHERE seq > $1 ORDER BY seq LIMIT $2"
            ))
            .bind(after as i64)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(entry_from)
            .collect()
        }))
    }

    /// The subjects (kind, id) of the notices `notifier` made that wait for an answer.
    pub async fn open_notices_of(
        &self,
        notifier: u64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT l.subject_kind, l.subject_id FROM open_notices o \
                 JOIN moderation_log l ON l.seq = o.notice WHERE o.notifier = $1",
            )
            .bind(notifier as i64)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| (row.text(0), row.text(1)))
            .collect()
        }))
    }

    /// Decisions after `after`, in order, at most `limit` (the exports page through them).
    pub async fn moderation_decisions(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Entry>, StoreError> {
        self.moderation_of_kind("decision", after, limit).await
    }

    /// Entries of one kind (`decision`, `appeal`, `appeal_answer`, …) after `after`, in order,
    /// at most `limit`.
    pub async fn moderation_of_kind(
        &self,
        kind: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Entry>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(&format!(
                "{ENTRY_COLUMNS} WHERE kind = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ))
            .bind(kind)
            .bind(after as i64)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(entry_from)
            .collect()
        }))
    }

    /// The newest entry's sequence number (0 for an empty log).
    pub async fn moderation_head(&self) -> Result<u64, StoreError> {
        Ok(on!(self, |pool| {
            let head: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM moderation_log")
                .fetch_one(pool)
                .await?;
            head.unwrap_or(0) as u64
        }))
    }

    /// One entry.
    pub async fn moderation_entry(&self, seq: u64) -> Result<Option<Entry>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(&format!("{ENTRY_COLUMNS} WHERE seq = $1"))
                .bind(seq as i64)
                .fetch_optional(pool)
                .await?
                .map(|row| entry_from(&row))
        }))
    }

    /// The entries about a subject (notices, decisions, notes), oldest first.
    pub async fn moderation_history(
        &self,
        kind: stentor_moderation::model::SubjectKind,
        id: &str,
    ) -> Result<Vec<Entry>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(&format!(
                "{ENTRY_COLUMNS} WHERE subject_kind = $1 AND subject_id = $2 ORDER BY seq"
            ))
            .bind(subject_kind(kind))
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(entry_from)
            .collect()
        }))
    }

    /// The notices waiting for a decision, trusted flaggers' first, then the oldest.
    pub async fn open_notices(&self, limit: u32) -> Result<Vec<u64>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query("SELECT notice FROM open_notices ORDER BY trusted DESC, notice LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| row.int(0) as u64)
                .collect()
        }))
    }

    /// The restrictions on a subject in force at `now_ms` (neither reversed nor ended).
    pub async fn restrictions_on(
        &self,
        kind: stentor_moderation::model::SubjectKind,
        id: &str,
        now_ms: i64,
    ) -> Result<Vec<Restriction>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT decision, subject_kind, subject_id, affected, action, ends_at_ms, \
                 reversed, scope, reason FROM restrictions WHERE subject_kind = $1 AND subject_id = $2 \
                 AND NOT reversed AND (ends_at_ms IS NULL OR ends_at_ms > $3) ORDER BY decision",
            )
            .bind(subject_kind(kind))
            .bind(id)
            .bind(now_ms)
            .fetch_all(pool)
            .await?
            .iter()
            .map(restriction_from)
            .collect()
        }))
    }
}

/// Whether another writer got there first: the same sequence number taken, or SQLite's
/// snapshot overtaken by a write (busy).
fn retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || matches!(db.code().as_deref(), Some("5" | "517" | "261" | "40001"))
        }
        _ => false,
    }
}

impl Store {
    /// Brings up to date the subjects of restrictions whose end has come by `now_ms` (their
    /// removal, label or suspension lifted); how many ended.
    pub async fn moderation_lapse(&self, now_ms: i64) -> Result<usize, StoreError> {
        Ok(on!(self, |pool| {
            let mut tx = pool.begin().await?;
            let ended = sqlx::query(
                "UPDATE restrictions SET lapsed = TRUE WHERE NOT lapsed \
                 AND ends_at_ms IS NOT NULL AND ends_at_ms <= $1 \
                 RETURNING subject_kind, subject_id",
            )
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await?;
            for row in &ended {
                up_to_date!(&mut *tx, row.text(0), &row.text(1), now_ms);
            }
            tx.commit().await?;
            ended.len()
        }))
    }

    /// An account's role (`admin`, `moderator`) and the end of its suspension (Unix ms), if
    /// any; `None` for no such account.
    pub async fn account_standing(
        &self,
        user: u64,
    ) -> Result<Option<(Option<String>, Option<i64>)>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query("SELECT role, suspended_until FROM users WHERE id = $1")
                .bind(user as i64)
                .fetch_optional(pool)
                .await?
                .map(|row| (row.maybe_text(0), row.maybe_int(1)))
        }))
    }

    /// Sets an account's role (`None`: none); whether the account exists.
    pub async fn set_role_of(&self, user: u64, role: Option<&str>) -> Result<bool, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role)
                .bind(user as i64)
                .execute(pool)
                .await?
                .rows_affected()
                == 1
        }))
    }
}

fn restriction_from(row: &impl Columns) -> Restriction {
    Restriction {
        decision: row.int(0) as u64,
        subject_kind: row.text(1),
        subject_id: row.text(2),
        affected: row.int(3) as u64,
        action: row.text(4),
        ends_at_ms: row.maybe_int(5),
        reversed: row.flag(6),
        scope: row
            .text(7)
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        reason: row.text(8),
    }
}

/// A statement's submission to the Transparency Database, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The decision (its sequence number).
    pub decision: u64,
    /// Its `puid`.
    pub puid: String,
    /// When it was recorded (Unix ms).
    pub at_ms: i64,
    /// `sent`, `existing` or `invalid`.
    pub outcome: String,
    /// Why it was refused, for `invalid`.
    pub detail: String,
}

/// How far the submissions have come.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportCounts {
    /// Stored by the database on submission.
    pub sent: u64,
    /// Already held by the database (a retry, or another node first).
    pub existing: u64,
    /// Refused as invalid.
    pub invalid: u64,
    /// Decisions not submitted yet.
    pub pending: u64,
}

impl Store {
    /// Decisions not yet submitted to the Transparency Database, oldest first, at most
    /// `limit`.
    pub async fn tdb_pending(&self, limit: u32) -> Result<Vec<Entry>, StoreError> {
        let sql = format!(
            "{ENTRY_COLUMNS} l WHERE l.kind = 'decision' AND NOT EXISTS \
             (SELECT 1 FROM tdb_exports e WHERE e.decision = l.seq) ORDER BY l.seq LIMIT $1"
        );
        Ok(on!(self, |pool| {
            sqlx::query(&sql)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
                .iter()
                .map(entry_from)
                .collect()
        }))
    }

    /// Records submissions (a decision recorded before keeps its first record).
    pub async fn tdb_record(&self, exports: &[Export]) -> Result<(), StoreError> {
        on!(self, |pool| {
            let mut tx = pool.begin().await?;
            for e in exports {
                sqlx::query(
                    "INSERT INTO tdb_exports (decision, puid, at_ms, outcome, detail) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (decision) DO NOTHING",
                )
                .bind(e.decision as i64)
                .bind(&e.puid)
                .bind(e.at_ms)
                .bind(&e.outcome)
                .bind(&e.detail)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Counts of the submissions, and the decisions still waiting.
    pub async fn tdb_counts(&self) -> Result<ExportCounts, StoreError> {
        Ok(on!(self, |pool| {
            let row = sqlx::query(
                "SELECT \
                   (SELECT COUNT(*) FROM tdb_exports WHERE outcome = 'sent'), \
                   (SELECT COUNT(*) FROM tdb_exports WHERE outcome = 'existing'), \
                   (SELECT COUNT(*) FROM tdb_exports WHERE outcome = 'invalid'), \
                   (SELECT COUNT(*) FROM moderation_log l WHERE l.kind = 'decision' AND NOT \
                      EXISTS (SELECT 1 FROM tdb_exports e WHERE e.decision = l.seq))",
            )
            .fetch_one(pool)
            .await?;
            ExportCounts {
                sent: row.int(0) as u64,
                existing: row.int(1) as u64,
                invalid: row.int(2) as u64,
                pending: row.int(3) as u64,
            }
        }))
    }

    /// Submissions refused as invalid, newest first, at most `limit`.
    pub async fn tdb_refused(&self, limit: u32) -> Result<Vec<Export>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT decision, puid, at_ms, outcome, detail FROM tdb_exports \
                 WHERE outcome = 'invalid' ORDER BY decision DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| Export {
                decision: row.int(0) as u64,
                puid: row.text(1),
                at_ms: row.int(2),
                outcome: row.text(3),
                detail: row.text(4),
            })
            .collect()
        }))
    }
}
