//! Spaces: create, list, look at, the waiting room's status, and commands over HTTP.

use super::Json;
use crate::auth::Caller;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::origin::live::SpaceView;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use stentor_space::Command;
use stentor_store::SpaceRecord;

/// A new Space.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSpace {
    title: String,
    /// Announced start, Unix seconds.
    #[serde(default)]
    starts_at: Option<i64>,
}

/// `POST /api/v1/spaces`: creates a scheduled Space hosted by the caller.
pub async fn create_space(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Caller,
    Json(new): Json<NewSpace>,
) -> Result<(StatusCode, Json<SpaceView>), ApiError> {
    let user = caller.required()?;
    state.gate.costly(peer.ip()).map_err(ApiError::Limited)?;
    let title = new.title.trim();
    if title.is_empty() || title.chars().count() > 120 {
        return Err(ApiError::BadRequest("title: 1 to 120 characters".into()));
    }
    let record = SpaceRecord {
        id: new_space_id(),
        host_id: user.id,
        title: title.to_owned(),
        state: "scheduled".into(),
        starts_at: new.starts_at,
        created_at: unix_now() as i64,
    };
    let space = state.spaces.create(record).await?;
    Ok((StatusCode::CREATED, Json(space.view())))
}

fn new_space_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let bytes: [u8; 10] = rand::random();
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A Space in a listing.
#[derive(Serialize)]
pub struct SpaceSummary {
    /// Public id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `scheduled` or `live`.
    pub state: String,
    /// Host user id.
    pub host: u64,
    /// Host handle.
    pub host_handle: Option<String>,
    /// Announced start, Unix seconds.
    pub starts_at: Option<i64>,
}

impl SpaceSummary {
    fn new(r: SpaceRecord, host_handle: Option<String>) -> Self {
        Self {
            id: r.id,
            title: r.title,
            state: r.state,
            host: r.host_id,
            host_handle,
            starts_at: r.starts_at,
        }
    }
}

/// `GET /api/v1/spaces`: Spaces that are scheduled or live.
pub async fn list_spaces(
    State(state): State<AppState>,
) -> Result<Json<Vec<SpaceSummary>>, ApiError> {
    let records = state.store.open_spaces(100).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|(r, handle)| SpaceSummary::new(r, Some(handle)))
            .collect(),
    ))
}

/// `GET /api/v1/me/spaces`: the Spaces the caller hosts, newest first.
pub async fn my_spaces(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SpaceSummary>>, ApiError> {
    let user = caller.required()?;
    let records = state.store.hosted_spaces(user.id, 100).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| SpaceSummary::new(r, Some(user.handle.clone())))
            .collect(),
    ))
}

/// `GET /api/v1/spaces/{id}`: one Space with its stage.
pub async fn get_space(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SpaceView>, ApiError> {
    Ok(Json(state.spaces.get(&id).await?.view()))
}

/// `GET /api/v1/spaces/{id}/status`: the waiting room's view of a Space, from memory (no
/// database read once the Space is loaded), cacheable for a second by any shared cache.
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let space = state.spaces.get(&id).await?;
    let status = space.status(&state.config.lobby(), unix_now() as i64);
    Ok((
        [(
            header::CACHE_CONTROL,
            "public, max-age=1, stale-while-revalidate=5",
        )],
        Json(status),
    )
        .into_response())
}

/// `POST /api/v1/spaces/{id}/commands`: a command as the signed-in caller (same commands as
/// over the WebSocket).
pub async fn command(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(command): Json<Command>,
) -> Result<StatusCode, ApiError> {
    let user = caller.required()?;
    let space = state.spaces.get(&id).await?;
    space.run_command(user.id, command).await?;
    Ok(StatusCode::NO_CONTENT)
}
