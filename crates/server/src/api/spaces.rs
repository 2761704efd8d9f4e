//! Spaces: create, list, look at, the waiting room's status, and commands over HTTP.

use super::Json;
use crate::auth::Caller;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::origin::live::SpaceView;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Path, Query, State};
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
    super::moderation::not_suspended(&state, user.id).await?;
    state.gate.costly(peer.ip()).map_err(ApiError::Limited)?;
    let title = check_title(&new.title)?;
    let now = unix_now() as i64;
    if let Some(at) = new.starts_at
        && !(now - MAX_PAST_START..=now + MAX_FUTURE_START).contains(&at)
    {
        return Err(ApiError::BadRequest(
            "starts_at: Unix seconds, from an hour ago to a year ahead".into(),
        ));
    }
    let quota = state.spaces.rules().scheduled_per_host;
    if state.store.count_hosted(user.id, "scheduled").await? >= quota {
        return Err(ApiError::Conflict(format!(
            "you have {quota} scheduled spaces already: start or end one first"
        )));
    }
    let record = SpaceRecord {
        id: new_space_id(),
        host_id: user.id,
        title,
        state: "scheduled".into(),
        starts_at: new.starts_at,
        created_at: now,
    };
    let space = state.spaces.create(record).await?;
    Ok((StatusCode::CREATED, Json(space.view())))
}

/// How far back an announced start may be, in seconds.
const MAX_PAST_START: i64 = 3600;
/// How far ahead an announced start may be, in seconds.
const MAX_FUTURE_START: i64 = 366 * 24 * 3600;

/// A title as shown everywhere: 1 to 120 characters once trimmed, on one line, with no
/// control characters and no bidirectional overrides or isolates (which can make a title
/// read as something else in a listing).
fn check_title(title: &str) -> Result<String, ApiError> {
    let title = title.trim();
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if title.is_empty() || title.chars().count() > 120 {
        return Err(ApiError::BadRequest("title: 1 to 120 characters".into()));
    }
    if title.chars().any(|c| c.is_control() || bidi(c)) {
        return Err(ApiError::BadRequest(
            "title: one line, without control characters or bidirectional overrides".into(),
        ));
    }
    Ok(title.to_owned())
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
    /// Listening now, as far as this node knows (live Spaces it serves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listeners: Option<usize>,
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
            listeners: None,
        }
    }
}

/// How the lists of Spaces are ordered (docs/recommendations.md states it for everyone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Live: the most listened first (then the newest); scheduled: the soonest first.
    #[default]
    Listeners,
    /// Newest first, whatever the audience: chronological.
    Newest,
}

/// `GET /api/v1/spaces` query.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    order: Order,
}

/// `GET /api/v1/spaces[?order=listeners|newest]`: Spaces that are scheduled or live, but not
/// those a moderation decision demoted, in the order asked for.
pub async fn list_spaces(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<SpaceSummary>>, ApiError> {
    let records = state.store.open_spaces(100).await?;
    let here: std::collections::HashMap<String, usize> = state
        .spaces
        .loaded()
        .iter()
        .map(|s| (s.id.clone(), s.listeners()))
        .collect();
    let mut list: Vec<SpaceSummary> = records
        .into_iter()
        .map(|(r, handle)| {
            let mut summary = SpaceSummary::new(r, Some(handle));
            if summary.state == "live" {
                summary.listeners = Some(here.get(&summary.id).copied().unwrap_or(0));
            }
            summary
        })
        .collect();
    // The store gives the newest first; a stable sort keeps that among equals.
    if q.order == Order::Listeners {
        list.sort_by_key(|s| match s.state.as_str() {
            "live" => (0, std::cmp::Reverse(s.listeners.unwrap_or(0)), 0),
            _ => (1, std::cmp::Reverse(0), s.starts_at.unwrap_or(i64::MAX)),
        });
    }
    Ok(Json(list))
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // A Space not in memory costs a database read: that, unlike the status itself, counts
    // against the caller's request rate.
    let space = match state.spaces.if_loaded(&id) {
        Some(space) => space,
        None => {
            state.gate.request(peer.ip()).map_err(ApiError::Limited)?;
            state.spaces.get(&id).await?
        }
    };
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

/// One node a client can join a Space through.
#[derive(Serialize)]
struct EdgeView {
    name: String,
    url: String,
    listeners: u64,
    capacity: u64,
}

/// `GET /api/v1/spaces/{id}/edges`: where to join. In a cluster, the edges with the most
/// room first and the Space's origin (where the stage goes); on a single node, no edges: stay
/// here. Read from the node list this node keeps (no request to the bus).
pub async fn edges(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (origin, edges) = match state.spaces.cluster() {
        Some(cluster) => (
            cluster.known_origin(&id),
            cluster
                .known_edges()
                .into_iter()
                .map(|n| EdgeView {
                    name: n.name,
                    url: n.url,
                    listeners: n.listeners,
                    capacity: n.capacity,
                })
                .collect(),
        ),
        None => (None, Vec::new()),
    };
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=1")],
        Json(serde_json::json!({ "origin": origin, "edges": edges })),
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

/// A reminder on or off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderChange {
    on: bool,
}

/// `GET /api/v1/spaces/{id}/reminder`: whether the caller asked to be reminded.
pub async fn reminder(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let user = caller.required()?;
    let on = state.store.has_reminder(&id, user.id).await?;
    Ok(axum::Json(serde_json::json!({ "on": on })))
}

/// `PUT /api/v1/spaces/{id}/reminder`: "remind me" on a scheduled Space: an alert 30
/// minutes before its announced start and one at the start.
pub async fn set_reminder(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    Json(change): Json<ReminderChange>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let user = caller.required()?;
    let space = state
        .store
        .space(&id)
        .await?
        .ok_or(ApiError::NotFound("space"))?;
    if change.on && space.state != "scheduled" {
        return Err(ApiError::Conflict(
            "reminders are for spaces that have not started".into(),
        ));
    }
    state
        .store
        .set_reminder(&id, user.id, change.on, unix_now() as i64)
        .await?;
    Ok(axum::Json(serde_json::json!({ "on": change.on })))
}
