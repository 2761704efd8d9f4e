//! A Space's WebSocket opening: the handshake checked off the HTTP stack, then a listener's
//! socket to a fan-out writer (hello and the first audio in one write), or a full connection
//! for someone on stage.

use crate::error::ApiError;
use crate::listen::sink::Place;
use crate::listen::sink::Sink;
use crate::listen::wiring::Transport;
use crate::origin::LiveSpace;
use crate::stage::{Connection, Hello, stage_socket};
use crate::state::AppState;
use std::sync::Arc;
use stentor_hub::{Snapshot, wsframe};
use stentor_space::{Role, UserId};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::Instrument;

/// Checks the headers of an upgrade request (RFC 6455 4.2.1) and returns the
/// `Sec-WebSocket-Accept` value.
pub fn accept_key<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<String, ApiError> {
    let (mut upgrade, mut connection, mut version, mut key) = (false, false, false, None);
    let has_token = |value: &[u8], token: &str| {
        std::str::from_utf8(value)
            .unwrap_or_default()
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token(value, "websocket");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            version = value == b"13";
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            key = Some(value);
        }
    }
    if !connection || !upgrade {
        return Err(ApiError::BadRequest(
            "this is a WebSocket endpoint: upgrade the connection".into(),
        ));
    }
    if !version {
        return Err(ApiError::BadRequest(
            "Sec-WebSocket-Version must be 13".into(),
        ));
    }
    let key = key.ok_or_else(|| ApiError::BadRequest("Sec-WebSocket-Key is missing".into()))?;
    Ok(tungstenite::handshake::derive_accept_key(key))
}

/// The response head that completes a handshake, for connections served off the HTTP stack.
pub fn switching_protocols(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// Serves an admitted WebSocket: a full connection for someone on stage, a fan-out shard for
/// a listener. `head` (the handshake's response, when the HTTP stack did not send it) goes
/// out first, in the same write as the hello and the first audio.
pub async fn open(
    state: AppState,
    space: Arc<LiveSpace>,
    user: UserId,
    mut stream: TcpStream,
    read: &[u8],
    place: Place,
    head: &[u8],
) {
    let span = tracing::info_span!("ws", space = %space.id, user);
    let role = space.with_domain(|d| d.role_of(user));
    if role.is_speaker() && space.is_edge() {
        let mut out = head.to_vec();
        out.extend_from_slice(&crate::stage::to_origin(&state, &space).await);
        let _ = stream.write_all(&out).await;
    } else if role.is_speaker() {
        if stream.write_all(head).await.is_err() {
            return;
        }
        crate::listen::sink::dead_peer_timeout(&stream);
        let socket = stage_socket(stream, read.to_vec()).await;
        Connection::new(state, space, user)
            .run(socket, None)
            .instrument(span)
            .await;
        drop(place);
    } else {
        // A listener: hello and the burst of recent audio in one write, then a writer.
        async move {
            let hello = Hello {
                event: "hello",
                user,
                role: Role::Listener,
                space: &space.view(),
            };
            let mut first = head.to_vec();
            first.extend_from_slice(&wsframe::text(
                &serde_json::to_string(&hello).expect("serializes"),
            ));
            let mut snap = Snapshot::default();
            space.hub.ws.snapshot(&mut snap);
            let burst = space.hub.ws.burst() as u64;
            // Recent audio only: the hello already reflects the events before it.
            for n in snap.head().saturating_sub(burst).max(snap.start())..snap.head() {
                if let Some(frame) = snap.get(n).filter(|f| !wsframe::is_text(f)) {
                    first.extend_from_slice(frame);
                }
            }
            if stream.write_all(&first).await.is_err() {
                return;
            }
            match Sink::new(stream, snap.head(), Some(user), place, read) {
                Ok(sink) => state.audiences.add(&space, Transport::WebSocket, sink),
                Err(e) => tracing::warn!(error = %e, "could not hand a listener to a writer"),
            }
        }
        .instrument(span)
        .await;
    }
}

/// Serves an admitted WebSocket on a stream the fan-out writers cannot write to (the server's
/// own TLS): a full connection for everyone, listeners included. It costs a task per
/// listener; a crowd is better served with TLS ended in front (docs/operations.md).
pub async fn open_full<S>(
    state: AppState,
    space: Arc<LiveSpace>,
    user: UserId,
    stream: S,
    read: &[u8],
    place: Place,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let span = tracing::info_span!("ws", space = %space.id, user);
    if space.is_edge() && space.with_domain(|d| d.role_of(user)).is_speaker() {
        let mut stream = stream;
        let _ = stream
            .write_all(&crate::stage::to_origin(&state, &space).await)
            .await;
        return;
    }
    let socket = stage_socket(stream, read.to_vec()).await;
    let mut place = place;
    if let Some(unseen) = &mut place.unseen {
        unseen.activate();
    }
    Connection::new(state, space, user)
        .run(socket, None)
        .instrument(span)
        .await;
    drop(place);
}
