//! Notices (DSA Art. 16): a report acknowledged at once, the queue (trusted flaggers' first), a
//! subject's history, a notice dismissed with its reason, moderators' notes.

use super::{MAX_TEXT, SubjectBody, bad, moderator, now_ms, resolve, role};
use crate::api::Json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stentor_moderation::log::{Entry, Event};
use stentor_moderation::model::{Category, Notice, SubjectKind};

/// Reports one account may have waiting at once.
const MAX_OPEN_REPORTS: usize = 20;

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
    // One person's reports waiting are bounded, and a subject is reported once while it waits.
    if let Some(me) = &caller.0 {
        let open = state.store.open_notices_of(me.id).await?;
        let kind = serde_json::to_value(subject.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        if open.iter().any(|(k, id)| *k == kind && *id == subject.id) {
            return Err(ApiError::Conflict(
                "you reported this already; it waits for a moderator, and you will be told".into(),
            ));
        }
        if open.len() >= MAX_OPEN_REPORTS {
            return Err(ApiError::TooMany(format!(
                "{MAX_OPEN_REPORTS} of your reports wait for a moderator already; report again \
                 when some are answered"
            )));
        }
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
