//! Join tickets over HTTP (the door answers anonymous ones on fresh connections itself).

use super::Json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::join::admit::{TicketView, WorkQuery, grant};
use crate::state::AppState;
use axum::extract::{Path, Query, State};

/// `POST /api/v1/spaces/{id}/tickets`: a join ticket for the caller (or an anonymous listener).
/// The door answers an anonymous request for a loaded Space itself (door.rs), with
/// [`grant`] too.
pub async fn ticket(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(work): Query<WorkQuery>,
    caller: Caller,
) -> Result<Json<TicketView>, ApiError> {
    let space = state.spaces.get(&id).await?;
    let granted = grant(&state, &space, &id, caller.0.as_ref(), work.work().as_ref());
    if let Err(e @ (ApiError::Overloaded { .. } | ApiError::WorkRequired(_))) = &granted {
        state.metrics.reject(e.reason());
    }
    granted.map(Json)
}
