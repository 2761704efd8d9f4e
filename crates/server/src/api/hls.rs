//! A Space's LL-HLS over HTTP: the media playlist with blocking reloads and delta updates,
//! the init segment, parts and segments, all served from the hub's shared bytes.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use std::time::Duration;
use stentor_hub::{Availability, Hls, Lookup};
use stentor_space::Lifecycle;

/// How immutable bytes are cached: for a year, never revalidated.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// How a playlist answered at once is cached: about a part.
const PLAYLIST_NOW: &str = "public, max-age=1";
/// How a blocking reload's answer is cached: its URL names what it waited for, so it stays
/// good for as long as a client would wait (three target durations).
const PLAYLIST_BLOCKED: &str = "public, max-age=6";
/// How long a request for the next part waits for it.
const PART_WAIT: Duration = Duration::from_secs(3);

/// The query of a playlist request (RFC 8216bis §6.2.5).
#[derive(Debug, Default, Deserialize)]
pub struct Reload {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<u32>,
    #[serde(rename = "_HLS_skip")]
    skip: Option<String>,
}

/// The Space's hub's HLS framing, marked as wanted; refused before it goes live.
async fn framing(state: &AppState, id: &str) -> Result<std::sync::Arc<Hls>, ApiError> {
    let space = state.spaces.get(id).await?;
    let lifecycle = space.with_domain(|d| d.lifecycle());
    let hls = space.hub.hls.clone();
    match lifecycle {
        Lifecycle::Scheduled => Err(ApiError::Conflict("the space is not live yet".into())),
        Lifecycle::Ended if hls.playlist().full.is_empty() => Err(ApiError::Gone),
        _ => {
            hls.asked();
            Ok(hls)
        }
    }
}

/// `GET /spaces/{id}/live.m3u8[?_HLS_msn=M[&_HLS_part=P]][&_HLS_skip=YES]`: the media
/// playlist. With `_HLS_msn` it is held until segment M (or its part P) is listed, at most
/// three target durations; every request held for the same part is answered by the same
/// publication with the same bytes.
pub async fn playlist(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(reload): Query<Reload>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if reload.part.is_some() && reload.msn.is_none() {
        return Err(ApiError::BadRequest("_HLS_part needs _HLS_msn".into()));
    }
    state.metrics.hls_playlists.inc();
    let hls = framing(&state, &id).await?;
    let hold = Duration::from_secs(3 * hls.config().target_duration());
    // Framing starts at a segment boundary: the first request may wait for the first part.
    match tokio::time::timeout(hold, hls.wait(reload.msn, reload.part)).await {
        Ok(Availability::Ready) => {}
        Ok(Availability::TooFar) => {
            return Err(ApiError::BadRequest(
                "_HLS_msn is more than two segments ahead of the live edge".into(),
            ));
        }
        Ok(Availability::Pending) | Err(_) => {
            return Err(ApiError::Overloaded {
                reason: "hls_not_ready",
                retry_after: 1,
            });
        }
    }
    let rendered = hls.playlist();
    let skip = reload
        .skip
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("YES") || s.eq_ignore_ascii_case("v2"));
    let body = if skip { rendered.delta } else { rendered.full };
    let cache = if reload.msn.is_some() {
        PLAYLIST_BLOCKED
    } else {
        PLAYLIST_NOW
    };
    let etag = if skip {
        format!("{}d\"", rendered.etag.trim_end_matches('"'))
    } else {
        rendered.etag
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(with_headers(
            StatusCode::NOT_MODIFIED,
            Bytes::new(),
            None,
            cache,
            Some(&etag),
        ));
    }
    Ok(with_headers(
        StatusCode::OK,
        body,
        Some("application/vnd.apple.mpegurl"),
        cache,
        Some(&etag),
    ))
}

/// `GET /spaces/{id}/hls/{name}`: `init.mp4`, a part `{msn}.{part}.m4s` or a segment
/// `{msn}.m4s`. The next part (the playlist's preload hint) is held until it is published;
/// one that left the window is 410, one that never was 404.
pub async fn file(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.metrics.hls_files.inc();
    let hls = framing(&state, &id).await?;
    if name == "init.mp4" {
        return Ok(media(hls.init()));
    }
    let stem = name
        .strip_suffix(".m4s")
        .ok_or(ApiError::NotFound("hls file"))?;
    let number = |s: &str| s.parse::<u64>().map_err(|_| ApiError::NotFound("hls file"));
    let found = match stem.split_once('.') {
        Some((msn, part)) => {
            let (msn, part) = (number(msn)?, number(part)?);
            let part = u32::try_from(part).map_err(|_| ApiError::NotFound("hls file"))?;
            match hls.part(msn, part) {
                Lookup::Next => {
                    let _ = tokio::time::timeout(PART_WAIT, hls.wait(Some(msn), Some(part))).await;
                    hls.part(msn, part)
                }
                other => other,
            }
        }
        None => hls.segment(number(stem)?),
    };
    match found {
        Lookup::Found(bytes) => Ok(media(bytes)),
        Lookup::Gone => Err(ApiError::LeftWindow("this part")),
        Lookup::Next | Lookup::Missing => Err(ApiError::NotFound("hls file")),
    }
}

/// Immutable fMP4 bytes.
fn media(bytes: Bytes) -> Response {
    with_headers(StatusCode::OK, bytes, Some("audio/mp4"), IMMUTABLE, None)
}

fn with_headers(
    status: StatusCode,
    body: Bytes,
    content_type: Option<&'static str>,
    cache: &'static str,
    etag: Option<&str>,
) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    if let Some(ct) = content_type {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(t).ok()) {
        h.insert(header::ETAG, tag);
    }
    response
}
