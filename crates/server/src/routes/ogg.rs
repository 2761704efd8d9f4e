//! Ogg/Opus over HTTP: the continuous live stream for any player, and the Icecast-style
//! source (an HTTP PUT of an Ogg/Opus stream into a speaker slot, e.g. from ffmpeg).

use crate::AppState;
use crate::error::ApiError;
use crate::live::LiveSpace;
use crate::routes::ws::TicketQuery;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use stentor_gate::capacity::Slot;
use stentor_media::FRAME_MS;
use stentor_media::ogg::{OggReader, parse_opus_head};
use stentor_space::{Lifecycle, UserId};

/// Most pages handed to the HTTP body in one batch.
const MAX_BATCH: usize = 64;

/// `GET /spaces/{id}/live.opus` on a connection that already carried other requests (a fresh
/// connection is served by the door, `crate::door`): header pages, then the live pages.
pub async fn live(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TicketQuery>,
) -> Result<Response, ApiError> {
    let result = admit_listener(&state, &id, query.ticket()).await;
    super::count(&state, "ogg", &result);
    let (space, _user, slot) = result?;
    let headers = space.hub.ogg_headers().clone();
    let subscriber = space.hub.ogg.subscribe();
    // One page at a time from a reused batch: no allocation per wake-up.
    let state = (subscriber, Vec::with_capacity(MAX_BATCH), 0usize, slot);
    let live = stream::unfold(state, |(mut sub, mut batch, mut at, slot)| async move {
        if at == batch.len() {
            batch.clear();
            at = 0;
            while batch.is_empty() {
                sub.next_batch(&mut batch, MAX_BATCH).await?;
            }
        }
        let page = std::mem::take(&mut batch[at]);
        Some((page, (sub, batch, at + 1, slot)))
    });
    let body = stream::iter(headers)
        .chain(live)
        .map(Ok::<Bytes, Infallible>);
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/ogg"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// Admits an Ogg listener: a ticket, or nothing where anonymous listening is on (players
/// cannot fetch tickets, so there the URL alone will do); then a slot in the budget.
pub async fn admit_listener(
    state: &AppState,
    id: &str,
    ticket: Option<&str>,
) -> Result<(Arc<LiveSpace>, Option<UserId>, Option<Slot>), ApiError> {
    let (space, user) = if ticket.is_none() && state.config.allow_anonymous() {
        let space = state.spaces.get(id).await?;
        if space.with_domain(|d| d.lifecycle()) == Lifecycle::Ended {
            return Err(ApiError::Gone);
        }
        (space, None)
    } else {
        let (ticket, space) = super::admit(state, id, ticket).await?;
        (space, Some(ticket.user))
    };
    let slot = super::slot(state, &space, user)?;
    Ok((space, user, slot))
}

/// `PUT /api/v1/spaces/{id}/source?ticket=T`: an Ogg/Opus stream (mono or stereo, 20 ms
/// packets) published as the ticket holder, who must be a speaker. Packets are paced to real
/// time, so a source that sends pages of a second or more is smoothed out. A source that
/// sends no packet for the source idle time (`admission.source_idle_ms`) is ended.
pub async fn source(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TicketQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let (ticket, space) = super::admit(&state, &id, query.ticket()).await?;
    let speaker = space
        .with_domain(|d| d.lifecycle() == Lifecycle::Live && d.role_of(ticket.user).is_speaker());
    if !speaker {
        return Err(ApiError::Forbidden(
            "only speakers of a live space may publish".into(),
        ));
    }
    let mut reader = OggReader::new();
    let mut chunks = body.into_data_stream();
    let mut headers_seen = 0;
    let mut seq: u32 = 0;
    let start = tokio::time::Instant::now();
    let idle = state.config.deadlines().source_idle;
    let mut heard = start;
    loop {
        let Ok(chunk) = tokio::time::timeout_at(heard + idle, chunks.next()).await else {
            return Err(ApiError::TimedOut(format!(
                "no audio for {} ms: the source is ended",
                idle.as_millis()
            )));
        };
        let Some(chunk) = chunk else { break };
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the body: {e}")))?;
        reader.feed(&chunk);
        while let Some(packet) = reader
            .next_packet()
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
        {
            heard = tokio::time::Instant::now();
            match headers_seen {
                0 => {
                    parse_opus_head(&packet.data)
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                    headers_seen = 1;
                }
                1 => {
                    if !packet.data.starts_with(b"OpusTags") {
                        return Err(ApiError::BadRequest("second packet is not OpusTags".into()));
                    }
                    headers_seen = 2;
                }
                _ => {
                    let due = start + Duration::from_millis(FRAME_MS) * seq;
                    tokio::time::sleep_until(due).await;
                    space
                        .ingest(ticket.user, seq, packet.data, std::time::Instant::now())
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                    seq = seq.wrapping_add(1);
                }
            }
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
