//! A Space's recording over HTTP: the replay as an Ogg/Opus file (range requests, so
//! players seek) and as HLS VOD, who spoke when, the host's trim and delete; clips of a live
//! Space's last seconds and their files.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::replay::{Replays, VOD_FRAMES};
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use stentor_moderation::model::SubjectKind;
use stentor_record::replay;
use stentor_space::Lifecycle;
use tower::ServiceExt;

/// How long a replay's derived files may be cached (they change on a trim).
const REPLAY_CACHE: &str = "public, max-age=60";

fn replays(state: &AppState) -> Result<&Arc<Replays>, ApiError> {
    state
        .replays
        .as_ref()
        .ok_or(ApiError::NotFound("recording"))
}

/// Space `id`, which must have ended for its replay to be served, and not have been ended or
/// removed by a moderation decision in force.
async fn ended(
    state: &AppState,
    id: &str,
) -> Result<Arc<crate::origin::live::LiveSpace>, ApiError> {
    let space = state.spaces.get(id).await?;
    if space.with_domain(|d| d.lifecycle()) != Lifecycle::Ended {
        return Err(ApiError::Conflict(
            "the replay is ready when the space has ended".into(),
        ));
    }
    withheld(state, SubjectKind::Space, id, &["end_space", "remove"]).await?;
    Ok(space)
}

/// Refuses a subject that a moderation decision in force (one of `actions`) took down.
async fn withheld(
    state: &AppState,
    kind: SubjectKind,
    id: &str,
    actions: &[&str],
) -> Result<(), ApiError> {
    let now = (crate::clock::unix_now() * 1000) as i64;
    let restrictions = state.store.restrictions_on(kind, id, now).await?;
    if restrictions
        .iter()
        .any(|r| actions.contains(&r.action.as_str()))
    {
        return Err(ApiError::NotFound(
            "recording (withheld by a moderation decision)",
        ));
    }
    Ok(())
}

/// Serves stored object `key` (a file: with ranges and conditional requests).
async fn object(
    replays: &Replays,
    key: &str,
    mime: &'static str,
    cache: &'static str,
    request: Request,
) -> Result<Response, ApiError> {
    let response = match replays.storage().local_path(key) {
        Some(path) => {
            tower_http::services::ServeFile::new_with_mime(path, &mime.parse().expect("a mime"))
                .oneshot(request)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .into_response()
        }
        None => {
            let storage = replays.storage().clone();
            let k = key.to_owned();
            let bytes = tokio::task::spawn_blocking(move || storage.get(&k))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .ok_or(ApiError::NotFound("file"))?;
            ([(header::CONTENT_TYPE, mime)], bytes).into_response()
        }
    };
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::NotFound("file"));
    }
    let mut response = response;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}

/// `GET /spaces/{id}/recording.ogg`: the replay, a whole Ogg/Opus file (ranges allowed).
pub async fn ogg(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let replays = replays(&state)?;
    ended(&state, &id).await?;
    let key = replays.ogg(&id).await?;
    object(replays, &key, "audio/ogg", REPLAY_CACHE, request).await
}

/// `GET /spaces/{id}/replay.m3u8`: the replay as HLS VOD (segments of 2 s).
pub async fn vod_playlist(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let replays = replays(&state)?;
    ended(&state, &id).await?;
    let timeline = replays.timeline(&id).await?;
    let text = replay::vod_playlist(timeline.packets.len(), VOD_FRAMES, |i| {
        if i == usize::MAX {
            "replay/init.mp4".into()
        } else {
            format!("replay/{i}.m4s")
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, REPLAY_CACHE),
        ],
        text,
    )
        .into_response())
}

/// `GET /spaces/{id}/replay/{init.mp4 | N.m4s}`: the VOD rendition's files.
pub async fn vod_file(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let replays = replays(&state)?;
    ended(&state, &id).await?;
    let bytes = if name == "init.mp4" {
        stentor_media::fmp4::init_segment()
    } else {
        let index: usize = name
            .strip_suffix(".m4s")
            .and_then(|n| n.parse().ok())
            .ok_or(ApiError::NotFound("replay file"))?;
        let timeline = replays.timeline(&id).await?;
        replay::vod_segment(&timeline.packets, VOD_FRAMES, index)
            .ok_or(ApiError::NotFound("replay file"))?
    };
    Ok((
        [
            (header::CONTENT_TYPE, "audio/mp4"),
            (header::CACHE_CONTROL, REPLAY_CACHE),
        ],
        bytes,
    )
        .into_response())
}

/// A speaker's turn in the replay.
#[derive(Debug, Serialize)]
pub struct TurnView {
    user: u64,
    name: Option<String>,
    from: f64,
    to: f64,
}

/// What `GET /api/v1/spaces/{id}/recording` answers.
#[derive(Debug, Serialize)]
pub struct RecordingView {
    title: String,
    duration_secs: f64,
    started_at_ms: Option<u64>,
    trimmed_secs: f64,
    missing_frames: u64,
    turns: Vec<TurnView>,
    ogg: String,
    hls: String,
}

/// `GET /api/v1/spaces/{id}/recording`: the replay's length, start, trim and who spoke when.
pub async fn describe(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<RecordingView>, ApiError> {
    let replays = replays(&state)?;
    ended(&state, &id).await?;
    let timeline = replays.timeline(&id).await?;
    let mut names = std::collections::HashMap::new();
    let mut turns = Vec::new();
    for t in replay::turns(&timeline) {
        if let std::collections::hash_map::Entry::Vacant(e) = names.entry(t.user) {
            e.insert(state.store.user(t.user).await?.map(|u| u.handle));
        }
        turns.push(TurnView {
            user: t.user,
            name: names[&t.user].clone(),
            from: t.from,
            to: t.to,
        });
    }
    Ok(axum::Json(RecordingView {
        title: timeline.title.clone(),
        duration_secs: timeline.seconds(),
        started_at_ms: timeline.started_ms,
        trimmed_secs: timeline.trimmed as f64 * 0.02,
        missing_frames: timeline.missing,
        turns,
        ogg: format!("/spaces/{id}/recording.ogg"),
        hls: format!("/spaces/{id}/replay.m3u8"),
    }))
}

/// The body of `PATCH /api/v1/spaces/{id}/recording`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trim {
    trim_start_secs: f64,
}

async fn host_of_ended(state: &AppState, id: &str, caller: Caller) -> Result<(), ApiError> {
    let user = caller.required()?;
    let space = ended(state, id).await?;
    if space.with_domain(|d| d.host()) != user.id {
        return Err(ApiError::Forbidden(
            "only the host may change the recording".into(),
        ));
    }
    Ok(())
}

/// `PATCH /api/v1/spaces/{id}/recording` (host): the replay starts `trim_start_secs` into
/// the recording.
pub async fn trim(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    crate::api::Json(body): crate::api::Json<Trim>,
) -> Result<StatusCode, ApiError> {
    host_of_ended(&state, &id, caller).await?;
    replays(&state)?.trim(&id, body.trim_start_secs).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/spaces/{id}/recording` (host): the recording and its replay file go.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    host_of_ended(&state, &id, caller).await?;
    replays(&state)?.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /api/v1/spaces/{id}/clips`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipRequest {
    seconds: u32,
}

/// What a new clip's request answers.
#[derive(Debug, Serialize)]
pub struct ClipView {
    #[serde(flatten)]
    clip: crate::replay::Clip,
    url: String,
    page: String,
}

fn clip_view(clip: crate::replay::Clip) -> ClipView {
    ClipView {
        url: format!("/clips/{}.ogg", clip.id),
        page: format!("/c/{}", clip.id),
        clip,
    }
}

/// `POST /api/v1/spaces/{id}/clips {"seconds": N}`: the last N (30 to 120) seconds of a
/// live, recorded Space, as a permanent file; a few per user per minute.
pub async fn clip(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    crate::api::Json(body): crate::api::Json<ClipRequest>,
) -> Result<(StatusCode, axum::Json<ClipView>), ApiError> {
    let user = caller.required()?;
    let replays = replays(&state)?;
    let space = state.spaces.get(&id).await?;
    if space.with_domain(|d| d.lifecycle()) != Lifecycle::Live {
        return Err(ApiError::Conflict("clips are cut from a live space".into()));
    }
    if !space.with_domain(|d| d.recording()) {
        return Err(ApiError::Conflict("this space is not recorded".into()));
    }
    let clip = replays
        .clip(&id, &space.title, user.id, body.seconds)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(clip_view(clip))))
}

/// `GET /api/v1/clips/{id}`: a clip's description.
pub async fn clip_info(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ClipView>, ApiError> {
    let clip = replays(&state)?.clip_info(&id).await?;
    withheld(&state, SubjectKind::Clip, &id, &["remove"]).await?;
    Ok(axum::Json(clip_view(clip)))
}

/// `GET /clips/{id}.ogg`: a clip's audio (immutable).
pub async fn clip_file(
    State(state): State<AppState>,
    Path(file): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let replays = replays(&state)?;
    let id = file
        .strip_suffix(".ogg")
        .ok_or(ApiError::NotFound("clip"))?;
    replays.clip_info(id).await?;
    withheld(&state, SubjectKind::Clip, id, &["remove"]).await?;
    let key = format!("clips/{id}.ogg");
    object(
        replays,
        &key,
        "audio/ogg",
        "public, max-age=31536000, immutable",
        request,
    )
    .await
}
