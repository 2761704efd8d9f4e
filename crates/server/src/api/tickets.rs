//! Join tickets over HTTP (the door answers anonymous ones on fresh connections itself).

use super::Json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::join::admit::{TicketView, WorkQuery, grant};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

/// `?unseen=true`: a platform moderator listening in.
#[derive(Debug, Default, Deserialize)]
pub struct UnseenQuery {
    #[serde(default)]
    unseen: bool,
}

/// `POST /api/v1/spaces/{id}/tickets`: a join ticket for the caller (or an anonymous listener);
/// `?unseen=true` for a platform moderator listening in.
/// The door answers an anonymous request for a loaded Space itself (door.rs), with
/// [`grant`] too.
pub async fn ticket(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(work): Query<WorkQuery>,
    Query(q): Query<UnseenQuery>,
    caller: Caller,
) -> Result<Json<TicketView>, ApiError> {
    let space = state.spaces.get(&id).await?;
    if q.unseen {
        let me = caller.0.as_ref().ok_or_else(|| {
            ApiError::Unauthorized("sign in as a moderator to listen unseen".into())
        })?;
        let role = crate::api::moderation::role(&state, me).await?;
        if !matches!(role.as_deref(), Some("moderator" | "admin")) {
            return Err(ApiError::Forbidden("moderators only".into()));
        }
    }
    let granted = grant(
        &state,
        &space,
        &id,
        caller.0.as_ref(),
        work.work().as_ref(),
        q.unseen,
    );
    if let Err(e @ (ApiError::Overloaded { .. } | ApiError::WorkRequired(_))) = &granted {
        state.metrics.reject(e.reason());
    }
    granted.map(Json)
}
