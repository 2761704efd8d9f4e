//! Moderators' decisions (Art. 17): checked, carried out (in a live Space by the Space itself,
//! as the platform), logged with the statement of reasons in one step.

use super::{SubjectBody, bad, event_of, moderator, now_ms, resolve};
use crate::api::Json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use stentor_moderation::log::Event;
use stentor_moderation::model::{Action, Automation, Category, Decision, Ground, SubjectKind};
use stentor_moderation::statement::{self};
use stentor_space::{Command, PLATFORM};

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
    // A restriction limited to some countries needs the visitors' countries (a trusted front
    // end's header), and applies to what the server can withhold by country: a post removed
    // or labelled. Anything else applies everywhere, and a statement naming countries would
    // not be true.
    if !body.territorial_scope.is_empty() {
        if state.config.moderation.country_header.is_none() {
            return Err(bad(
                "restrictions apply everywhere on this server, which does not tell its \
                 visitors' countries apart (--country-header): leave territorial_scope out",
            ));
        }
        if subject.kind != SubjectKind::Post || !matches!(action, Action::Remove | Action::Label) {
            return Err(bad(
                "territorial_scope: only removing or labelling a post can be limited to some \
                 countries; this applies everywhere",
            ));
        }
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

/// Lifts the platform's measure on `user` in Space `space` after a reversal: unmuted (they may
/// speak again) or let back in. A Space that is over has nothing left to lift.
pub(super) async fn lift(state: &AppState, space: &str, user: u64) {
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
