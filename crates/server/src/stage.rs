//! The full WebSocket connection of someone on stage (a handful per Space): their audio in,
//! the other speakers' packets forwarded, events, and a new ticket when their role changes.

use crate::commands::{self, Close};
use crate::listen::wiring::HandOver;
use crate::origin::LiveSpace;
use crate::origin::live::{Notice, SpaceView, refused_event};
use crate::shutdown::going_away;
use crate::state::AppState;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::sync::Arc;
use stentor_hub::wsframe::{MAX_WS_MESSAGE, close};
use stentor_hub::{Read, Subscriber, wsframe};
use stentor_space::{Role, UserId};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role as WsRole, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes};

/// Most frames sent to a listener in one batch.
const MAX_BATCH: usize = 64;

/// The WebSocket of a full connection, with the whole protocol machinery: someone on stage
/// (a handful per Space), or anyone on the server's own TLS.
pub(crate) async fn stage_socket<S>(stream: S, read: Vec<u8>) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE))
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024);
    WebSocketStream::from_partially_read(stream, read, WsRole::Server, Some(config)).await
}

/// Takes over a listener's socket when they come on stage: what they were due first, then a
/// full connection that tells them their new role.
pub async fn hand_over(state: AppState, hand_over: HandOver) {
    let HandOver {
        space,
        user,
        mut stream,
        due,
    } = hand_over;
    if stream.write_all(&due).await.is_err() {
        return;
    }
    if space.is_edge() {
        // On stage now: the stage is served by the origin.
        let close = to_origin(&state, &space).await;
        let _ = stream.write_all(&close).await;
        return;
    }
    crate::listen::sink::dead_peer_timeout(&stream);
    let socket = stage_socket(stream, Vec::new()).await;
    let span = tracing::info_span!("ws", space = %space.id, user);
    Connection::new(state, space, user)
        .run(socket, Some(Role::Listener))
        .instrument(span)
        .await;
}

/// The close that sends someone on stage from an edge to the Space's origin (its address
/// in the reason), or, while no origin holds the Space, tells them to try again.
pub async fn to_origin(state: &AppState, space: &LiveSpace) -> bytes::Bytes {
    use stentor_hub::wsframe::{self, close};
    let origin = match state.spaces.cluster() {
        Some(cluster) => cluster.origin_of(&space.id).await,
        None => None,
    };
    state.metrics.close(close::label(close::REDIRECT));
    match origin {
        Some(url) => wsframe::close(close::REDIRECT, &url),
        None => wsframe::close(
            close::TRY_AGAIN_LATER,
            "the space's origin is not known yet; retry in 1 s",
        ),
    }
}

#[derive(Serialize)]
pub(crate) struct Hello<'a> {
    pub(crate) event: &'static str,
    pub(crate) user: UserId,
    pub(crate) role: Role,
    pub(crate) space: &'a SpaceView,
}

#[derive(Serialize)]
struct NewTicket {
    event: &'static str,
    ticket: String,
    role: Role,
}

pub(crate) struct Connection {
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
    pub(crate) fn new(state: AppState, space: Arc<LiveSpace>, user: UserId) -> Self {
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
    pub(crate) async fn run<S>(mut self, socket: WebSocketStream<S>, was: Option<Role>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (mut tx, mut rx) = socket.split();
        let mut notices = self.space.events();
        let mut shutdown = self.state.shutdown.clone();
        let mut forwarded = self.space.forwarded();
        self.set_role(self.role);
        // Claimed before the hello: a client that connects again once it has its hello is
        // then always the newer claim, and the older connection is the one let go.
        let claim = self.space.claim_stage(self.user);
        let hello = Hello {
            event: "hello",
            user: self.user,
            role: self.role,
            space: &self.space.view(),
        };
        let hello = Message::Text(serde_json::to_string(&hello).expect("serializes").into());
        if tx.send(hello).await.is_err() {
            self.space.release_stage(self.user, &claim);
            return;
        }
        if was.is_some_and(|was| was != self.role) {
            self.send_ticket();
        }
        let mut batch: Vec<Bytes> = Vec::with_capacity(MAX_BATCH);
        // Liveness: a ping every so often; nothing at all (a pong answers every ping) for
        // three of them and the client is gone.
        let deadlines = self.state.config.deadlines();
        let (every, silent_for) = (deadlines.ws_ping, deadlines.ws_silent());
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = tokio::time::Instant::now();
        let outcome: Result<(), Close> = loop {
            let step: Result<(), Close> = tokio::select! {
                incoming = rx.next() => match incoming {
                    None | Some(Ok(Message::Close(_))) => break Ok(()),
                    Some(Err(e)) if is_disconnect(&e) => break Ok(()),
                    Some(Err(e)) => break Err((close::PROTOCOL, e.to_string())),
                    Some(Ok(message)) => {
                        heard = tokio::time::Instant::now();
                        self.on_message(message).await
                    }
                },
                _ = ping.tick() => {
                    if heard.elapsed() >= silent_for {
                        // Nothing, not even a pong, for this long: the client is gone.
                        self.space.metrics.close("silent");
                        break Ok(());
                    }
                    self.out.push(Message::Ping(Bytes::new()));
                    Ok(())
                },
                () = going_away(&mut shutdown) => {
                    break Err((close::GOING_AWAY, "the server is shutting down".into()));
                },
                () = claim.notified() => {
                    break Err((close::REPLACED, "a newer connection of yours took this one's place".into()));
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
                    // The server stopping closes every feed: that is going away, not an end.
                    None if *self.state.shutdown.borrow() => {
                        break Err((close::GOING_AWAY, "the server is shutting down".into()));
                    }
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
        self.space.release_stage(self.user, &claim);
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
