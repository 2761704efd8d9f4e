//! Statements of reasons as the affected account reads them, appeals (Art. 20) and their
//! answers by another moderator; a reversal lifts the restriction at once.

use super::{MAX_TEXT, PAGE, bad, event_of, moderator, now_ms, role};
use crate::api::Json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stentor_moderation::log::{Entry, Event};
use stentor_moderation::model::{Action, Appeal, AppealAnswer, Decision, Outcome};
use stentor_moderation::statement::{self, appeal_until};

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
                super::decisions::lift(&state, &found.decision.subject.id, found.decision.affected)
                    .await;
            }
            _ => {}
        }
    }
    Ok(Json(
        serde_json::json!({"id": id, "decision": appeal.decision, "outcome": body.outcome}),
    ))
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

/// Every entry of `kind`, in order.
async fn of_kind(state: &AppState, kind: &str) -> Result<Vec<(u64, i64, Event)>, ApiError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.moderation_of_kind(kind, after, PAGE).await?;
        for e in &page {
            out.push((e.seq, e.at_ms, event_of(e)?));
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.seq,
            _ => return Ok(out),
        }
    }
}

/// `GET /api/v1/moderation/appeals`: the appeals waiting, oldest first.
pub async fn waiting_appeals(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<WaitingAppeal>>, ApiError> {
    let me = moderator(&state, caller).await?;
    // The appeals and the answers only (the log's kind index), then each waiting one's
    // decision.
    let answered: std::collections::HashSet<u64> = of_kind(&state, "appeal_answer")
        .await?
        .into_iter()
        .filter_map(|(_, _, event)| match event {
            Event::AppealAnswer(a) => Some(a.appeal),
            _ => None,
        })
        .collect();
    let mut waiting: Vec<WaitingAppeal> = Vec::new();
    for (seq, at, event) in of_kind(&state, "appeal").await? {
        let Event::Appeal(a) = event else { continue };
        if answered.contains(&seq) {
            continue;
        }
        let Some(entry) = state.store.moderation_entry(a.decision).await? else {
            continue;
        };
        if let Event::Decision(d) = event_of(&entry)? {
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
    Ok(Json(waiting))
}
