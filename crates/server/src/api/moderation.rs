//! Trust and safety over HTTP: notices (Art. 16), moderators' decisions with their statements
//! of reasons (Art. 17), appeals (Art. 20), the moderator role, and the transparency exports
//! — every one an entry of the moderation log, and every view read back from it.

use super::Json;
use crate::auth::Caller;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stentor_moderation::log::{Entry, Event};
use stentor_moderation::model::{
    Action, Appeal, AppealAnswer, Automation, Category, Decision, Ground, Notice, Outcome, Subject,
    SubjectKind,
};
use stentor_moderation::statement::{self, appeal_until};
use stentor_space::{Command, PLATFORM};
use stentor_store::User;

/// Longest explanation in a notice or an appeal, characters.
const MAX_TEXT: usize = 5_000;
/// Entries read from the log in one go for the exports.
const PAGE: u32 = 1_000;

fn now_ms() -> i64 {
    (unix_now() * 1000) as i64
}

/// Refuses an account whose suspension is in force (it can still read, see its statements
/// and appeal).
pub async fn not_suspended(state: &AppState, user: u64) -> Result<(), ApiError> {
    let now = (crate::clock::unix_now() * 1000) as i64;
    match state.store.account_standing(user).await? {
        Some((_, Some(until))) if until > now => Err(ApiError::Forbidden(
            "your account is suspended; see the statement in your notifications".into(),
        )),
        _ => Ok(()),
    }
}

/// The caller's role: `admin` (the configured handle), or what the account was granted.
pub async fn role(state: &AppState, me: &User) -> Result<Option<String>, ApiError> {
    if state.config.moderation.admin.as_deref() == Some(me.handle.as_str()) {
        return Ok(Some("admin".into()));
    }
    Ok(state
        .store
        .account_standing(me.id)
        .await?
        .and_then(|(role, _)| role))
}

/// The signed-in moderator (administrators moderate too).
async fn moderator(state: &AppState, caller: Caller) -> Result<User, ApiError> {
    let me = caller.required()?;
    match role(state, &me).await?.as_deref() {
        Some("moderator" | "admin") => Ok(me),
        _ => Err(ApiError::Forbidden("moderators only".into())),
    }
}

fn bad(what: impl Into<String>) -> ApiError {
    ApiError::BadRequest(what.into())
}

/// An entry's event, or a 500 when the log holds something unreadable.
fn event_of(entry: &Entry) -> Result<Event, ApiError> {
    entry
        .event()
        .map_err(|e| ApiError::Internal(format!("moderation log entry {}: {e}", entry.seq)))
}

/// The subject as a client names it.
#[derive(Deserialize)]
pub struct SubjectBody {
    kind: SubjectKind,
    id: String,
    /// For a Space: the moment in its recording, milliseconds from its start.
    at_ms: Option<u64>,
}

/// The subject as the log keeps it (an account by its number, whatever its handle becomes),
/// and the account it concerns (a post's author, a Space's host, the account itself).
async fn resolve(state: &AppState, s: &SubjectBody) -> Result<(Subject, u64, i64), ApiError> {
    let (id, owner, created_ms) = match s.kind {
        SubjectKind::Post => {
            let n: u64 = s.id.parse().map_err(|_| bad("a post's id is a number"))?;
            let post = state
                .store
                .post(n, 0)
                .await?
                .ok_or(ApiError::NotFound("post"))?;
            (n.to_string(), post.author_id, post.created_at * 1000)
        }
        SubjectKind::Account => {
            // By handle (`@` optional), or by number as the log names accounts.
            let handle = s.id.trim_start_matches('@');
            let mut found = state.store.profile(handle).await?;
            if found.is_none()
                && let Ok(n) = s.id.parse::<u64>()
                && let Some(user) = state.store.user(n).await?
            {
                found = state.store.profile(&user.handle).await?;
            }
            let p = found.ok_or(ApiError::NotFound("account"))?;
            (p.id.to_string(), p.id, p.created_at * 1000)
        }
        SubjectKind::Clip => {
            // A clip concerns the account that cut it.
            let clip = state
                .replays
                .as_ref()
                .ok_or(ApiError::NotFound("clip"))?
                .clip_info(&s.id)
                .await?;
            (clip.id, clip.by, clip.created_at as i64 * 1000)
        }
        SubjectKind::Space => {
            let space = state
                .store
                .space(&s.id)
                .await?
                .ok_or(ApiError::NotFound("space"))?;
            (s.id.clone(), space.host_id, space.created_at * 1000)
        }
    };
    Ok((
        Subject {
            kind: s.kind,
            id,
            at_ms: s.at_ms.filter(|_| s.kind == SubjectKind::Space),
        },
        owner,
        created_ms,
    ))
}

/// `POST /api/v1/reports`: a notice.
#[derive(Deserialize)]
pub struct ReportBody {
    subject: SubjectBody,
    category: String,
    explanation: String,
    good_faith: bool,
    /// The notifier's name and email, needed when not signed in.
    contact: Option<String>,
}

/// The acknowledgement of a notice.
#[derive(Serialize)]
pub struct Acknowledgement {
    id: u64,
    status: &'static str,
    received_at: i64,
}

/// `POST /api/v1/reports`: anyone may report a post, an account, a Space (at a moment of
/// it) or a clip; acknowledged at once, and the notifier is told the outcome.
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ReportBody>,
) -> Result<(StatusCode, Json<Acknowledgement>), ApiError> {
    let category = Category::parse(&body.category).ok_or_else(|| bad("unknown category"))?;
    if !body.good_faith {
        return Err(bad(
            "a notice needs the statement that it is made in good faith",
        ));
    }
    let explanation = body.explanation.trim();
    if explanation.is_empty() || explanation.chars().count() > MAX_TEXT {
        return Err(bad(format!(
            "explain the notice in 1 to {MAX_TEXT} characters"
        )));
    }
    let contact = body.contact.filter(|c| !c.trim().is_empty());
    if caller.0.is_none() && contact.is_none() {
        return Err(bad("sign in, or give your name and email as contact"));
    }
    if contact.as_ref().is_some_and(|c| c.chars().count() > 500) {
        return Err(bad("contact: at most 500 characters"));
    }
    let (mut subject, _, _) = resolve(&state, &body.subject).await?;
    // A live Space reported without a moment: now, as far into it as it has gone.
    if subject.kind == SubjectKind::Space
        && subject.at_ms.is_none()
        && let Some(space) = state.store.space(&subject.id).await?
        && space.state == "live"
        && let Some(started) = state.store.space_started_at(&subject.id).await?
    {
        subject.at_ms = Some((now_ms() - started * 1000).max(0) as u64);
    }
    // Trusted flaggers (Art. 22) come first, a duty a small enterprise does not have.
    let trusted = match &caller.0 {
        Some(me) if !state.config.small_enterprise() => {
            role(&state, me).await?.as_deref() == Some("trusted_flagger")
        }
        _ => false,
    };
    let at = now_ms();
    let entry = state
        .store
        .moderation_append(
            at,
            &Event::Notice(Notice {
                subject,
                category,
                explanation: explanation.to_owned(),
                notifier: caller.0.map(|u| u.id),
                contact,
                trusted,
            }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Acknowledgement {
            id: entry.seq,
            status: "received",
            received_at: at,
        }),
    ))
}

/// An entry of the log as moderators see it (everything, moderators included).
#[derive(Serialize)]
pub struct EntryView {
    id: u64,
    at: i64,
    event: Value,
    hash: String,
}

fn entry_view(e: &Entry) -> EntryView {
    EntryView {
        id: e.seq,
        at: e.at_ms,
        event: serde_json::from_str(&e.event).unwrap_or(Value::Null),
        hash: e.hash.clone(),
    }
}

/// `GET /api/v1/moderation/queue`: the notices waiting, trusted flaggers' first.
pub async fn queue(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<EntryView>>, ApiError> {
    moderator(&state, caller).await?;
    let mut out = Vec::new();
    for seq in state.store.open_notices(100).await? {
        if let Some(e) = state.store.moderation_entry(seq).await? {
            out.push(entry_view(&e));
        }
    }
    Ok(Json(out))
}

/// `GET /api/v1/moderation/subjects/{kind}/{id}`: a subject's history from the log.
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<Vec<EntryView>>, ApiError> {
    moderator(&state, caller).await?;
    let kind: SubjectKind = serde_json::from_value(Value::String(kind))
        .map_err(|_| bad("kind: post, account, space or clip"))?;
    let entries = state.store.moderation_history(kind, &id).await?;
    Ok(Json(entries.iter().map(entry_view).collect()))
}

/// `POST /api/v1/moderation/decisions`.
#[derive(Deserialize)]
pub struct DecisionBody {
    subject: SubjectBody,
    action: String,
    category: String,
    ground: String,
    legal_ground: Option<String>,
    contractual_ground: Option<String>,
    explanation: String,
    facts: String,
    #[serde(default)]
    territorial_scope: Vec<String>,
    /// When the restriction ends, Unix ms.
    ends_at: Option<i64>,
    /// The notice it answers.
    report: Option<u64>,
    /// Whether the content was found by automated means.
    #[serde(default)]
    automated_detection: bool,
    /// For `mute_speaker` and `remove_speaker`: the speaker (handle or account number).
    speaker: Option<String>,
}

/// A decision taken, with its statement.
#[derive(Serialize)]
pub struct Decided {
    id: u64,
    statement: statement::Statement,
}

/// `POST /api/v1/moderation/decisions`: a moderator restricts a post or an account; the
/// statement of reasons reaches the affected account in the transaction that logs it.
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<DecisionBody>,
) -> Result<(StatusCode, Json<Decided>), ApiError> {
    let me = moderator(&state, caller).await?;
    let action = Action::parse(&body.action).ok_or_else(|| bad("unknown action"))?;
    let category = Category::parse(&body.category).ok_or_else(|| bad("unknown category"))?;
    let ground =
        Ground::parse(&body.ground).ok_or_else(|| bad("ground: illegal or incompatible"))?;
    let reference = match ground {
        Ground::Illegal => body.legal_ground,
        Ground::Incompatible => body.contractual_ground,
    }
    .unwrap_or_default();
    if !action.applies_to(body.subject.kind) {
        return Err(bad(format!(
            "{} does not apply to this kind of subject",
            action.as_str()
        )));
    }
    let (subject, mut affected, content_at_ms) = resolve(&state, &body.subject).await?;
    // In a live Space: the measure the Space carries out, on whom.
    let measure = match action {
        Action::MuteSpeaker | Action::RemoveSpeaker => {
            if body.ends_at.is_some() {
                return Err(bad(
                    "a speaker's mute or removal lasts as long as the Space: no ends_at",
                ));
            }
            let named = body
                .speaker
                .as_deref()
                .ok_or_else(|| bad("speaker: the handle of the speaker"))?;
            affected = account_named(&state, named).await?;
            Some(if action == Action::MuteSpeaker {
                Command::Mute { user: affected }
            } else {
                Command::Remove { user: affected }
            })
        }
        Action::EndSpace => Some(Command::End),
        _ => None,
    };
    let mut trusted_notice = false;
    if let Some(n) = body.report {
        let open = state.store.open_notices(10_000).await?;
        let entry = state
            .store
            .moderation_entry(n)
            .await?
            .ok_or(ApiError::NotFound("report"))?;
        let Event::Notice(notice) = event_of(&entry)? else {
            return Err(ApiError::NotFound("report"));
        };
        if !open.contains(&n) {
            return Err(ApiError::Conflict(
                "that report was already answered".into(),
            ));
        }
        if notice.subject.kind != subject.kind || notice.subject.id != subject.id {
            return Err(bad("the report is about another subject"));
        }
        trusted_notice = notice.trusted;
    }
    let decision = Decision {
        subject,
        affected,
        action,
        category,
        ground,
        ground_reference: reference,
        explanation: body.explanation,
        facts: body.facts,
        territorial_scope: body.territorial_scope,
        ends_at_ms: body.ends_at,
        notice: body.report,
        trusted_notice,
        automated_detection: body.automated_detection,
        automated_decision: Automation::NotAutomated,
        content_at_ms,
        moderator: me.id,
    };
    let at = now_ms();
    statement::check(&decision, at).map_err(|e| bad(e.to_string()))?;
    // A live measure first (the Space refuses one that does not apply: a listener "muted",
    // the host "removed", a Space already over), then the log with the statement.
    let space = match &measure {
        Some(command) => {
            let space = state.spaces.get(&decision.subject.id).await?;
            space.run_command(PLATFORM, command.clone()).await?;
            Some(space)
        }
        None => None,
    };
    let entry = match state
        .store
        .moderation_append(at, &Event::Decision(decision.clone()))
        .await
    {
        Ok(entry) => entry,
        Err(e) => {
            // Unlogged, a measure would have no statement: it is taken back where it can be.
            if let (Some(space), Some(Command::Mute { .. } | Command::Remove { .. })) =
                (&space, &measure)
            {
                let _ = space
                    .run_command(PLATFORM, Command::Lift { user: affected })
                    .await;
            }
            return Err(e.into());
        }
    };
    if action == Action::SuspendAccount {
        state.sessions.forget_user(affected);
    }
    let platform = state.config.platform();
    let statement = statement::statement(&platform, entry.seq, at, &decision, false, at);
    Ok((
        StatusCode::CREATED,
        Json(Decided {
            id: entry.seq,
            statement,
        }),
    ))
}

/// `POST /api/v1/moderation/reports/{id}/dismiss`.
#[derive(Deserialize)]
pub struct DismissBody {
    explanation: String,
}

/// `POST /api/v1/moderation/reports/{id}/dismiss`: a notice looked at and left without
/// action; the notifier is told why.
pub async fn dismiss(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Json(body): Json<DismissBody>,
) -> Result<StatusCode, ApiError> {
    let me = moderator(&state, caller).await?;
    if body.explanation.trim().is_empty() {
        return Err(bad("say why nothing is done"));
    }
    if !state.store.open_notices(10_000).await?.contains(&id) {
        return Err(ApiError::NotFound("open report"));
    }
    state
        .store
        .moderation_append(
            now_ms(),
            &Event::Dismissal {
                notice: id,
                explanation: body.explanation,
                moderator: me.id,
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/moderation/notes`.
#[derive(Deserialize)]
pub struct NoteBody {
    subject: SubjectBody,
    text: String,
}

/// `POST /api/v1/moderation/notes`: a moderator's note on a subject, for the other moderators
/// (in its history, never in an export).
pub async fn note(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NoteBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let me = moderator(&state, caller).await?;
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Err(bad(format!("a note is 1 to {MAX_TEXT} characters")));
    }
    let (subject, _, _) = resolve(&state, &body.subject).await?;
    let entry = state
        .store
        .moderation_append(
            now_ms(),
            &Event::Note {
                subject,
                text: text.to_owned(),
                moderator: me.id,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": entry.seq})),
    ))
}

/// A decision from the log, with whether it was reversed and its appeals.
struct Found {
    entry: Entry,
    decision: Decision,
    reversed: bool,
    /// Appeals: (entry, appeal, answer).
    appeals: Vec<(u64, Appeal, Option<AppealAnswer>)>,
}

/// Reads decision `id` and what followed it from the log.
async fn find_decision(state: &AppState, id: u64) -> Result<Found, ApiError> {
    let entry = state
        .store
        .moderation_entry(id)
        .await?
        .ok_or(ApiError::NotFound("statement"))?;
    let Event::Decision(decision) = event_of(&entry)? else {
        return Err(ApiError::NotFound("statement"));
    };
    let mut found = Found {
        entry,
        decision,
        reversed: false,
        appeals: Vec::new(),
    };
    let mut after = id;
    loop {
        let page = state.store.moderation_entries(after, PAGE).await?;
        for e in &page {
            match event_of(e)? {
                Event::Reversal { decision, .. } if decision == id => found.reversed = true,
                Event::Appeal(a) if a.decision == id => found.appeals.push((e.seq, a, None)),
                Event::AppealAnswer(a) if a.decision == id => {
                    if let Some(slot) = found.appeals.iter_mut().find(|(s, ..)| *s == a.appeal) {
                        slot.2 = Some(a);
                    }
                }
                _ => {}
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.seq,
            _ => break,
        }
    }
    Ok(found)
}

/// An appeal as its author and moderators see it.
#[derive(Serialize)]
struct AppealView {
    id: u64,
    text: String,
    outcome: Option<Outcome>,
    explanation: Option<String>,
}

/// The statement page's content.
#[derive(Serialize)]
pub struct StatementPage {
    #[serde(flatten)]
    statement: statement::Statement,
    appeals: Vec<AppealView>,
    /// Whether the caller may appeal now.
    can_appeal: bool,
}

/// `GET /api/v1/statements/{id}`: the statement of reasons, for the affected account (and
/// moderators).
pub async fn get_statement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<StatementPage>, ApiError> {
    let me = caller.required()?;
    let found = find_decision(&state, id).await?;
    let is_mod = matches!(
        role(&state, &me).await?.as_deref(),
        Some("moderator" | "admin")
    );
    if found.decision.affected != me.id && !is_mod {
        return Err(ApiError::NotFound("statement"));
    }
    let now = now_ms();
    let platform = state.config.platform();
    let statement = statement::statement(
        &platform,
        id,
        found.entry.at_ms,
        &found.decision,
        found.reversed,
        now,
    );
    let pending = found.appeals.iter().any(|(_, _, answer)| answer.is_none());
    let can_appeal = found.decision.affected == me.id && statement.redress.appeal_open && !pending;
    Ok(Json(StatementPage {
        statement,
        appeals: found
            .appeals
            .into_iter()
            .map(|(seq, a, answer)| AppealView {
                id: seq,
                text: a.text,
                outcome: answer.as_ref().map(|x| x.outcome),
                explanation: answer.map(|x| x.explanation),
            })
            .collect(),
        can_appeal,
    }))
}

/// `POST /api/v1/statements/{id}/appeal`.
#[derive(Deserialize)]
pub struct AppealBody {
    text: String,
}

/// `POST /api/v1/statements/{id}/appeal`: the affected account appeals, free, within the
/// appeal window; one appeal at a time.
pub async fn appeal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Json(body): Json<AppealBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let me = caller.required()?;
    let found = find_decision(&state, id).await?;
    if found.decision.affected != me.id {
        return Err(ApiError::NotFound("statement"));
    }
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Err(bad(format!("say why, in 1 to {MAX_TEXT} characters")));
    }
    if state.config.small_enterprise() {
        return Err(ApiError::Forbidden(
            "this platform takes no internal complaints (a small enterprise, DSA Art. 19):              see the statement for out-of-court settlement and the courts"
                .into(),
        ));
    }
    let now = now_ms();
    if found.reversed {
        return Err(ApiError::Conflict(
            "this decision was already reversed".into(),
        ));
    }
    if now >= appeal_until(&state.config.platform(), found.entry.at_ms) {
        return Err(ApiError::Forbidden("the time to appeal has passed".into()));
    }
    if found.appeals.iter().any(|(_, _, answer)| answer.is_none()) {
        return Err(ApiError::Conflict("an appeal is already waiting".into()));
    }
    let entry = state
        .store
        .moderation_append(
            now,
            &Event::Appeal(Appeal {
                decision: id,
                by: me.id,
                text: text.to_owned(),
            }),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": entry.seq, "decision": id, "status": "received"})),
    ))
}

/// `POST /api/v1/appeals/{id}/decision`.
#[derive(Deserialize)]
pub struct AppealDecisionBody {
    outcome: Outcome,
    explanation: String,
}

/// `POST /api/v1/appeals/{id}/decision`: a moderator other than the one who decided
/// answers; a reversal undoes the restriction at once, in the same step.
pub async fn decide_appeal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
    Json(body): Json<AppealDecisionBody>,
) -> Result<Json<Value>, ApiError> {
    let me = moderator(&state, caller).await?;
    let entry = state
        .store
        .moderation_entry(id)
        .await?
        .ok_or(ApiError::NotFound("appeal"))?;
    let Event::Appeal(appeal) = event_of(&entry)? else {
        return Err(ApiError::NotFound("appeal"));
    };
    let found = find_decision(&state, appeal.decision).await?;
    if found.decision.moderator == me.id {
        return Err(ApiError::Forbidden(
            "an appeal is decided by another moderator than the one who decided".into(),
        ));
    }
    if found
        .appeals
        .iter()
        .any(|(seq, _, answer)| *seq == id && answer.is_some())
    {
        return Err(ApiError::Conflict(
            "this appeal was already answered".into(),
        ));
    }
    if body.explanation.trim().is_empty() {
        return Err(bad("give the reasons for the answer"));
    }
    let now = now_ms();
    state
        .store
        .moderation_append(
            now,
            &Event::AppealAnswer(AppealAnswer {
                appeal: id,
                decision: appeal.decision,
                outcome: body.outcome,
                explanation: body.explanation,
                moderator: me.id,
            }),
        )
        .await?;
    if body.outcome == Outcome::Reversed && !found.reversed {
        state
            .store
            .moderation_append(
                now,
                &Event::Reversal {
                    decision: appeal.decision,
                    appeal: Some(id),
                    moderator: me.id,
                },
            )
            .await?;
        match found.decision.action {
            Action::SuspendAccount => state.sessions.forget_user(found.decision.affected),
            Action::MuteSpeaker | Action::RemoveSpeaker => {
                lift(&state, &found.decision.subject.id, found.decision.affected).await;
            }
            _ => {}
        }
    }
    Ok(Json(
        serde_json::json!({"id": id, "decision": appeal.decision, "outcome": body.outcome}),
    ))
}

/// Lifts the platform's measure on `user` in Space `space` after a reversal: unmuted (they may
/// speak again) or let back in. A Space that is over has nothing left to lift.
async fn lift(state: &AppState, space: &str, user: u64) {
    let outcome = match state.spaces.get(space).await {
        Ok(space) => space
            .run_command(PLATFORM, Command::Lift { user })
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = outcome {
        tracing::debug!(space, user, error = %e, "nothing to lift after a reversal");
    }
}

/// The account named by handle (`@` optional) or number.
async fn account_named(state: &AppState, named: &str) -> Result<u64, ApiError> {
    let handle = named.trim_start_matches('@');
    if let Some(p) = state.store.profile(handle).await? {
        return Ok(p.id);
    }
    if let Ok(n) = named.parse::<u64>()
        && state.store.user(n).await?.is_some()
    {
        return Ok(n);
    }
    Err(ApiError::NotFound("account"))
}

/// An appeal waiting for an answer.
#[derive(Serialize)]
pub struct WaitingAppeal {
    id: u64,
    decision: u64,
    action: &'static str,
    category: &'static str,
    text: String,
    at: i64,
    /// The caller took the decision (so another moderator answers).
    mine: bool,
}

/// `GET /api/v1/moderation/appeals`: the appeals waiting, oldest first.
pub async fn waiting_appeals(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<WaitingAppeal>>, ApiError> {
    let me = moderator(&state, caller).await?;
    let log = whole_log(&state).await?;
    let mut decisions = std::collections::HashMap::new();
    let mut waiting: Vec<WaitingAppeal> = Vec::new();
    for (seq, at, event) in log {
        match event {
            Event::Decision(d) => {
                decisions.insert(seq, d);
            }
            Event::Appeal(a) => {
                if let Some(d) = decisions.get(&a.decision) {
                    waiting.push(WaitingAppeal {
                        id: seq,
                        decision: a.decision,
                        action: d.action.as_str(),
                        category: d.category.as_str(),
                        text: a.text,
                        at,
                        mine: d.moderator == me.id,
                    });
                }
            }
            Event::AppealAnswer(a) => waiting.retain(|w| w.id != a.appeal),
            _ => {}
        }
    }
    Ok(Json(waiting))
}

/// `POST /api/v1/moderators`.
#[derive(Deserialize)]
pub struct GrantBody {
    handle: String,
    /// `moderator` (default) or `trusted_flagger`.
    role: Option<String>,
}

/// `POST /api/v1/moderators`: an administrator grants the moderator (or trusted flagger)
/// role.
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<GrantBody>,
) -> Result<StatusCode, ApiError> {
    let me = caller.required()?;
    if role(&state, &me).await?.as_deref() != Some("admin") {
        return Err(ApiError::Forbidden("administrators only".into()));
    }
    let granted = body.role.as_deref().unwrap_or("moderator");
    if !matches!(granted, "moderator" | "trusted_flagger") {
        return Err(bad("role: moderator or trusted_flagger"));
    }
    let p = state
        .store
        .profile(body.handle.trim_start_matches('@'))
        .await?
        .ok_or(ApiError::NotFound("account"))?;
    state.store.set_role_of(p.id, Some(granted)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads the whole log, in order (for the exports; the log grows by decisions, not by
/// listeners).
async fn whole_log(state: &AppState) -> Result<Vec<(u64, i64, Event)>, ApiError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.moderation_entries(after, PAGE).await?;
        for e in &page {
            out.push((e.seq, e.at_ms, event_of(e)?));
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.seq,
            _ => return Ok(out),
        }
    }
}

/// `GET /api/v1/transparency/statements` query.
#[derive(Deserialize)]
pub struct StatementsQuery {
    /// After this decision (the `next` of the page before) [default: from the first].
    after: Option<u64>,
    /// At most this many, 1 to 1000 [default: 1000].
    limit: Option<u32>,
}

/// `GET /api/v1/transparency/statements`: the statements as the Transparency Database takes
/// them, without personal data, `puid` stable, a page at a time, oldest first.
pub async fn transparency_statements(
    State(state): State<AppState>,
    Query(q): Query<StatementsQuery>,
) -> Result<Json<Value>, ApiError> {
    let platform = state.config.platform();
    let limit = q.limit.unwrap_or(PAGE).clamp(1, PAGE);
    let entries = state
        .store
        .moderation_decisions(q.after.unwrap_or(0), limit)
        .await?;
    let mut statements = Vec::with_capacity(entries.len());
    for e in &entries {
        if let Event::Decision(d) = event_of(e)? {
            statements.push(statement::tdb_payload(&platform, e.seq, e.at_ms, &d));
        }
    }
    let next = entries
        .last()
        .filter(|_| entries.len() == limit as usize)
        .map(|e| e.seq);
    Ok(Json(
        serde_json::json!({ "statements": statements, "next": next }),
    ))
}

/// `GET /api/v1/transparency/report` query.
#[derive(Deserialize)]
pub struct ReportQuery {
    /// From this day (`Y-m-d`, UTC), inclusive [default: the first of this month].
    from: Option<String>,
    /// To this day, exclusive [default: tomorrow].
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

fn day_ms(text: &str) -> Result<i64, ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).map_err(|_| bad("dates are YYYY-MM-DD"))?;
    Ok(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// `GET /api/v1/transparency/report`: per category and ground over a period, recomputed from
/// the log: notices, decisions by type, automated share, median time to decision, appeals,
/// reversals and their rate; JSON or CSV.
pub async fn transparency_report(
    State(state): State<AppState>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let today = stentor_moderation::tdb::ymd(now);
    let from = q.from.unwrap_or_else(|| format!("{}-01", &today[..7]));
    let to =
        q.to.unwrap_or_else(|| stentor_moderation::tdb::ymd(now + 86_400_000));
    let (from_ms, to_ms) = (day_ms(&from)?, day_ms(&to)?);
    if to_ms <= from_ms {
        return Err(bad("the period ends before it starts"));
    }
    let rows = state
        .reports
        .report(&state.store, from_ms, to_ms)
        .await
        .map_err(|e| match e {
            crate::transparency::ReportError::Busy => ApiError::Overloaded {
                reason: "report_busy",
                retry_after: 5,
            },
            crate::transparency::ReportError::Store(e) => e.into(),
            e @ crate::transparency::ReportError::Unreadable(..) => {
                ApiError::Internal(e.to_string())
            }
        })?;
    let rows: &[stentor_moderation::report::Row] = &rows;
    match q.format.as_deref() {
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"transparency-report.csv\"",
                ),
            ],
            stentor_moderation::report::csv(rows, &from, &to),
        )
            .into_response()),
        None | Some("json") => Ok(axum::Json(serde_json::json!({
            "from": from, "to": to, "rows": rows,
        }))
        .into_response()),
        Some(_) => Err(bad("format: json or csv")),
    }
}

/// `GET /api/v1/moderation/exports`: how far the submission to the Transparency Database has
/// come, and the statements it refused with the reasons.
pub async fn exports(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    moderator(&state, caller).await?;
    let counts = state.store.tdb_counts().await?;
    let refused = state.store.tdb_refused(100).await?;
    Ok(Json(serde_json::json!({
        "endpoint": state.config.moderation.tdb_url.as_ref().filter(|_| !state.config.small_enterprise()),
        "sent": counts.sent,
        "existing": counts.existing,
        "invalid": counts.invalid,
        "pending": counts.pending,
        "refused": refused.iter().map(|e| serde_json::json!({
            "decision": e.decision, "puid": e.puid, "at": e.at_ms, "reason": e.detail,
        })).collect::<Vec<_>>(),
    })))
}
