//! A Space's media over HTTP: the WebSocket upgrade, the live Ogg stream on a connection
//! that carried other requests (fresh ones are served by the door), and the Icecast-style
//! source (an HTTP PUT of Ogg/Opus into a speaker slot, e.g. from ffmpeg).

use crate::error::ApiError;
use crate::join::admit::{self, admit_listener};
use crate::join::ws;
use crate::prefixed::Prefixed;
use crate::state::AppState;
use crate::tls::TlsStream;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use stentor_media::FRAME_MS;
use stentor_media::ogg::{OggReader, parse_opus_head};
use stentor_space::Lifecycle;

/// The query of the WebSocket URL.
#[derive(Debug, Deserialize)]
pub struct TicketQuery {
    ticket: Option<String>,
}

impl TicketQuery {
    /// The ticket, if the query carries one.
    pub fn ticket(&self) -> Option<&str> {
        self.ticket.as_deref()
    }
}

/// `GET /api/v1/spaces/{id}/ws?ticket=T`: checks the ticket before upgrading, so nothing is
/// allocated for a connection without one. After the handshake a listener's socket goes to a
/// fan-out shard (hello and the first audio in one write); people on stage get a full
/// connection.
pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TicketQuery>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers().iter();
    let result = match ws::accept_key(headers.map(|(n, v)| (n.as_str(), v.as_bytes()))) {
        Ok(accept) => admit::admit_websocket(&state, &id, query.ticket())
            .await
            .map(|(user, space, place)| (user, space, place, accept)),
        Err(e) => Err(e),
    };
    admit::count(&state, "ws", &result);
    let (user, space, place, accept) = result?;
    let on_upgrade = hyper::upgrade::on(&mut request);
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => return tracing::debug!(error = %e, "the upgrade did not complete"),
        };
        let upgraded = match upgraded.downcast::<TokioIo<Prefixed>>() {
            Ok(parts) => {
                // What the door read and the HTTP server did not, then what it read ahead.
                let (stream, mut read) = parts.io.into_inner().into_parts();
                read.extend_from_slice(&parts.read_buf);
                return ws::open(state, space, user, stream, &read, place, &[]).await;
            }
            Err(upgraded) => upgraded,
        };
        match upgraded.downcast::<TokioIo<TlsStream>>() {
            Ok(parts) => {
                let stream = parts.io.into_inner();
                crate::listen::sink::dead_peer_timeout(stream.get_ref().0);
                ws::open_full(state, space, user, stream, &parts.read_buf, place).await;
            }
            Err(_) => tracing::error!("an upgraded connection is neither TCP nor TLS"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(e.to_string()))
}

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
    admit::count(&state, "ogg", &result);
    let (space, _user, mut place) = result?;
    let headers = space.hub.ogg_headers().clone();
    let subscriber = space.hub.ogg.subscribe();
    if let Some(unseen) = &mut place.unseen {
        unseen.activate();
    }
    // One page at a time from a reused batch: no allocation per wake-up.
    let state = (subscriber, Vec::with_capacity(MAX_BATCH), 0usize, place);
    let live = stream::unfold(state, |(mut sub, mut batch, mut at, place)| async move {
        if at == batch.len() {
            batch.clear();
            at = 0;
            while batch.is_empty() {
                sub.next_batch(&mut batch, MAX_BATCH).await?;
            }
        }
        let page = std::mem::take(&mut batch[at]);
        Some((page, (sub, batch, at + 1, place)))
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
    let (ticket, space) = admit::admit(&state, &id, query.ticket()).await?;
    let speaker = space
        .with_domain(|d| d.lifecycle() == Lifecycle::Live && d.role_of(ticket.user).is_speaker());
    if !speaker {
        return Err(ApiError::Forbidden(
            "only speakers of a live space may publish".into(),
        ));
    }
    if space.is_edge() {
        // The stage is served by the origin: the same request there.
        let origin = match state.spaces.cluster() {
            Some(cluster) => cluster.origin_of(&space.id).await,
            None => None,
        };
        let Some(origin) = origin else {
            return Err(ApiError::Overloaded {
                reason: "no_origin",
                retry_after: 1,
            });
        };
        let location = format!(
            "{origin}/api/v1/spaces/{id}/source?ticket={}",
            query.ticket().unwrap_or_default()
        );
        return Ok((
            axum::http::StatusCode::TEMPORARY_REDIRECT,
            [(axum::http::header::LOCATION, location)],
        )
            .into_response());
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
