//! The WebSocket of a Space: commands and events as JSON text, audio as binary messages.
//! One endpoint for every role; the join ticket says who is connecting.

use crate::AppState;
use crate::commands::{self, Close};
use crate::error::ApiError;
use crate::fanout::Sink;
use crate::live::{LiveSpace, Notice, refused_event};
use crate::prefixed::Prefixed;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use stentor_hub::{Read, Snapshot, Subscriber, wsframe};
use stentor_space::{Role, UserId};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role as WsRole, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes};

type Socket = WebSocketStream<TcpStream>;

pub use stentor_hub::wsframe::{MAX_WS_MESSAGE, close};

/// Most frames sent to a listener in one batch.
const MAX_BATCH: usize = 64;

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
    let result = match accept_key(headers.map(|(n, v)| (n.as_str(), v.as_bytes()))) {
        Ok(accept) => admit(&state, &id, query.ticket())
            .await
            .map(|(user, space, slot)| (user, space, slot, accept)),
        Err(e) => Err(e),
    };
    super::count(&state, "ws", &result);
    let (user, space, slot, accept) = result?;
    let on_upgrade = hyper::upgrade::on(&mut request);
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        match on_upgrade.await.map(|u| u.downcast::<TokioIo<Prefixed>>()) {
            Ok(Ok(parts)) => {
                // What the door read and the HTTP server did not, then what it read ahead.
                let (stream, mut read) = parts.io.into_inner().into_parts();
                read.extend_from_slice(&parts.read_buf);
                open(state, space, user, stream, &read, slot, &[]).await;
            }
            Ok(Err(_)) => tracing::error!("an upgraded connection is not a TCP stream"),
            Err(e) => tracing::debug!(error = %e, "the upgrade did not complete"),
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

/// Admits a WebSocket: a valid ticket, then a place in the budget (always for the stage).
pub async fn admit(
    state: &AppState,
    space: &str,
    ticket: Option<&str>,
) -> Result<(UserId, Arc<LiveSpace>, Option<stentor_gate::capacity::Slot>), ApiError> {
    let (ticket, space) = super::admit(state, space, ticket).await?;
    let slot = super::slot(state, &space, Some(ticket.user))?;
    Ok((ticket.user, space, slot))
}

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
    slot: Option<stentor_gate::capacity::Slot>,
    head: &[u8],
) {
    let span = tracing::info_span!("ws", space = %space.id, user);
    let role = space.with_domain(|d| d.role_of(user));
    if role.is_speaker() {
        if stream.write_all(head).await.is_err() {
            return;
        }
        let socket = stage_socket(stream, read.to_vec()).await;
        Connection::new(state, space, user)
            .run(socket, None)
            .instrument(span)
            .await;
        drop(slot);
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
            match Sink::new(stream, snap.head(), Some(user), slot, read) {
                Ok(sink) => space.ws_fanout.add(sink, &state, &space),
                Err(e) => tracing::warn!(error = %e, "could not hand a listener to a writer"),
            }
        }
        .instrument(span)
        .await;
    }
}

/// The WebSocket of someone on stage (a handful per Space), with the full protocol machinery.
async fn stage_socket(stream: TcpStream, read: Vec<u8>) -> Socket {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024);
    WebSocketStream::from_partially_read(stream, read, WsRole::Server, Some(config)).await
}

/// Takes over a listener's socket when they come on stage: what they were due first, then a
/// full connection that tells them their new role.
pub async fn hand_over(
    state: AppState,
    space: Arc<LiveSpace>,
    user: UserId,
    mut stream: TcpStream,
    due: Vec<u8>,
) {
    if stream.write_all(&due).await.is_err() {
        return;
    }
    let socket = stage_socket(stream, Vec::new()).await;
    let span = tracing::info_span!("ws", space = %space.id, user);
    Connection::new(state, space, user)
        .run(socket, Some(Role::Listener))
        .instrument(span)
        .await;
}

#[derive(Serialize)]
struct Hello<'a> {
    event: &'static str,
    user: UserId,
    role: Role,
    space: &'a crate::live::SpaceView,
}

#[derive(Serialize)]
struct NewTicket {
    event: &'static str,
    ticket: String,
    role: Role,
}

struct Connection {
    state: AppState,
    space: Arc<LiveSpace>,
    user: UserId,
    role: Role,
    audio: Option<Subscriber>,
    /// Messages due to the client, sent together after each event; reused.
    out: Vec<Message>,
    /// Commands and pings the client may still send.
    rate: commands::Rate,
}

impl Connection {
    fn new(state: AppState, space: Arc<LiveSpace>, user: UserId) -> Self {
        let rate = commands::Rate::new(state.config.command_quota());
        let role = space.with_domain(|d| d.role_of(user));
        Self {
            state,
            space,
            user,
            role,
            audio: None,
            out: Vec::with_capacity(MAX_BATCH),
            rate,
        }
    }

    /// Serves the connection; `was` is the role it had before a hand-over, if it had one (the
    /// client then gets a ticket for its new role).
    async fn run(mut self, socket: Socket, was: Option<Role>) {
        let (mut tx, mut rx) = socket.split();
        let mut notices = self.space.events();
        let mut shutdown = self.state.shutdown.clone();
        let mut forwarded = self.space.forwarded();
        self.set_role(self.role);
        let hello = Hello {
            event: "hello",
            user: self.user,
            role: self.role,
            space: &self.space.view(),
        };
        let hello = Message::Text(serde_json::to_string(&hello).expect("serializes").into());
        if tx.send(hello).await.is_err() {
            return;
        }
        if was.is_some_and(|was| was != self.role) {
            self.send_ticket();
        }
        let mut batch: Vec<Bytes> = Vec::with_capacity(MAX_BATCH);
        let outcome: Result<(), Close> = loop {
            let step: Result<(), Close> = tokio::select! {
                incoming = rx.next() => match incoming {
                    None | Some(Ok(Message::Close(_))) => break Ok(()),
                    Some(Err(e)) if is_disconnect(&e) => break Ok(()),
                    Some(Err(e)) => break Err((close::PROTOCOL, e.to_string())),
                    Some(Ok(message)) => self.on_message(message).await,
                },
                () = going_away(&mut shutdown) => {
                    break Err((close::GOING_AWAY, "the server is shutting down".into()));
                },
                notice = notices.recv() => match notice {
                    Ok(notice) => self.on_notice(notice),
                    Err(RecvError::Lagged(_)) => Ok(()),
                    Err(RecvError::Closed) => break Ok(()),
                },
                packet = forwarded.recv(), if self.role.is_speaker() => {
                    if let Ok((from, frame)) = packet && from != self.user {
                        self.out.push(Message::Binary(frame));
                    }
                    Ok(())
                },
                read = next_audio(&mut self.audio, &mut batch) => match read {
                    None => {
                        // The feed ended with the Space: deliver the events that came with it
                        // (`ended`) before the close.
                        while let Ok(notice) = notices.try_recv() {
                            let _ = self.on_notice(notice);
                        }
                        break Err((close::NORMAL, "the space has ended".into()));
                    }
                    Some(read) => {
                        if read.skipped > 0 {
                            self.space.metrics.listener_skips.inc();
                        }
                        // Events arrive on their own channel here: take the audio only.
                        self.out.extend(
                            batch
                                .drain(..)
                                .filter(|f| !wsframe::is_text(f))
                                .map(|f| Message::Binary(wsframe::payload(&f))),
                        );
                        Ok(())
                    }
                },
            };
            if let Err(close) = step {
                break Err(close);
            }
            // Everything due goes out in one flush; the buffers are reused, not reallocated.
            let mut sent = true;
            for m in self.out.drain(..) {
                if tx.feed(m).await.is_err() {
                    sent = false;
                    break;
                }
            }
            if !sent || tx.flush().await.is_err() {
                break Ok(());
            }
        };
        commands::lower_hand_of_the_gone(&self.space, self.user);
        if let Err((code, reason)) = outcome {
            tracing::debug!(code, %reason, "closing websocket");
            for m in self.out.drain(..) {
                let _ = tx.feed(m).await;
            }
            self.space.metrics.close(close::label(code));
            let reason = truncate(&reason, 123);
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: Utf8Bytes::from(reason),
            };
            let _ = tx.send(Message::Close(Some(frame))).await;
        }
    }

    /// A message from the client, through the same path as a listener's.
    async fn on_message(&mut self, message: Message) -> Result<(), Close> {
        if matches!(message, Message::Text(_) | Message::Ping(_)) {
            self.rate.take()?;
        }
        match message {
            Message::Binary(data) => commands::publish(&self.space, self.user, data),
            Message::Text(text) => {
                let command = commands::parse(text.as_bytes())?;
                if let Err(e) = self.space.run_command(self.user, command).await {
                    self.out.push(Message::Text(refused_event(&e).into()));
                }
                Ok(())
            }
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => Ok(()),
        }
    }

    fn on_notice(&mut self, notice: Notice) -> Result<(), Close> {
        self.out.push(Message::Text(notice.text));
        if notice.to == Some(self.user) {
            if self.space.with_domain(|d| d.is_removed(self.user)) {
                return Err((close::REMOVED, "removed from this space".into()));
            }
            let role = self.space.with_domain(|d| d.role_of(self.user));
            if role != self.role {
                self.set_role(role);
                self.send_ticket();
            }
        }
        Ok(())
    }

    /// A ticket for the connection's current role, to reconnect with.
    fn send_ticket(&mut self) {
        let ticket = self
            .state
            .issue_ticket(&self.space.id, self.user, self.role);
        let t = NewTicket {
            event: "ticket",
            ticket: self.state.tickets.sign(&ticket),
            role: self.role,
        };
        self.push_json(&t);
    }

    fn push_json<T: Serialize>(&mut self, value: &T) {
        let text = serde_json::to_string(value).expect("serializes");
        self.out.push(Message::Text(text.into()));
    }

    /// Speakers hear each other's forwarded packets; everyone else hears the mix.
    fn set_role(&mut self, role: Role) {
        self.role = role;
        if role.is_speaker() {
            self.audio = None;
        } else if self.audio.is_none() {
            self.audio = Some(self.space.hub.ws.subscribe());
        }
    }
}

/// Whether a read error is the peer going away rather than bad input.
fn is_disconnect(e: &tungstenite::Error) -> bool {
    use tungstenite::error::{Error, ProtocolError};
    matches!(
        e,
        Error::ConnectionClosed
            | Error::AlreadyClosed
            | Error::Io(_)
            | Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)
    )
}

/// Resolves when the server starts shutting down.
pub(crate) async fn going_away(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    if shutdown.wait_for(|down| *down).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn next_audio(audio: &mut Option<Subscriber>, out: &mut Vec<Bytes>) -> Option<Read> {
    match audio {
        Some(sub) => sub.next_batch(out, MAX_BATCH).await,
        None => std::future::pending().await,
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
