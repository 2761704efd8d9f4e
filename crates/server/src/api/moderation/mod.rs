//! Trust and safety over HTTP: notices (Art. 16), moderators' decisions with their statements
//! of reasons (Art. 17), appeals (Art. 20), the moderator role, and the transparency exports
//! — every one an entry of the moderation log, and every view read back from it.

mod appeals;
mod decisions;
mod notices;
mod transparency;

pub use appeals::{appeal, decide_appeal, get_statement, waiting_appeals};
pub use decisions::decide;
pub use notices::{dismiss, history, note, queue, report};
pub use transparency::{exports, transparency_report, transparency_statements};

use super::Json;
use crate::auth::Caller;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use stentor_moderation::log::{Entry, Event};
use stentor_moderation::model::{Subject, SubjectKind};
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
    match state
        .sessions
        .standing(user, crate::clock::unix_now() as i64)
        .await?
    {
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
        .sessions
        .standing(me.id, unix_now() as i64)
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
    state.sessions.forget_user(p.id);
    Ok(StatusCode::NO_CONTENT)
}
