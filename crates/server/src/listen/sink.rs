//! A listener's socket as a fan-out writer holds it, and the I/O of its turn in a pass: one
//! vectored write of everything it is due, and the reading of what it sent (WebSocket
//! commands through the one command path, pings, a close). What the turn comes to is decided
//! in [`super::turn`], without I/O.
//!
//! A listener costs a socket and a few dozen bytes here: no task, no buffer, no protocol
//! object. What a WebSocket listener sends is read when its writer passes by, through the
//! readiness the runtime already tracks, so a quiet socket costs no system call.

use super::turn::{self, Own, Turn};
use crate::commands::Close;
use crate::origin::live::{LiveSpace, Reply, Unseen, refused_event};
use bytes::Bytes;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Duration;
use stentor_gate::capacity::Slot;
use stentor_hub::wsframe::{self, ClientFrame};
use stentor_hub::wsframe::{MAX_WS_MESSAGE, close};
use stentor_hub::{Position, Snapshot};
use stentor_space::UserId;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Most slices in one vectored write (the unfinished frame, personal bytes, 64 frames).
const MAX_SLICES: usize = 66;
/// Reads of one socket per pass: a client that floods cannot hold its shard.
const MAX_READS: usize = 4;
/// Bytes of its own (answers, pongs, refusals) a listener may have waiting; one that does not
/// read them is let go.
pub const MAX_OUT: usize = 64 * 1024;

/// What an admitted connection holds for as long as it lasts: its slot in the listener budget
/// (none on stage), and for a platform moderator listening unseen, its mark off the count.
#[derive(Default)]
pub struct Place {
    /// The listener budget's slot.
    pub slot: Option<Slot>,
    /// Not counted among the listeners while this is held.
    pub unseen: Option<Unseen>,
}

/// A listener's socket as a shard holds it.
pub struct Sink {
    pub(super) stream: TcpStream,
    pos: Position,
    pub(super) user: Option<UserId>,
    pub(super) place: Place,
    /// Rarely needed state, allocated only when needed.
    extra: Option<Box<Extra>>,
}

#[derive(Default)]
struct Extra {
    /// Frames for this listener alone (answers, refusals, a close), sent between shared ones;
    /// at most [`MAX_OUT`] bytes.
    out: Vec<u8>,
    /// The start of a client frame that has not fully arrived.
    input: Vec<u8>,
    /// Set once a close frame is queued: the socket is dropped when it has gone out.
    closing: Option<u16>,
    /// Set when `out` would have grown past its bound: the listener does not read.
    overflow: bool,
    /// Commands (and pings) this listener may still send, by GCRA; once a listener has sent
    /// one, it keeps this (and so its `Extra`, some 200 bytes).
    rate: Option<crate::commands::Rate>,
}

impl Sink {
    /// A listener positioned at frame `next` of its feed; `input` is anything it already sent.
    /// Fails only if the runtime cannot take the socket back (the connection is then dropped).
    pub fn new(
        stream: TcpStream,
        next: u64,
        user: Option<UserId>,
        place: Place,
        input: &[u8],
    ) -> io::Result<Self> {
        dead_peer_timeout(&stream);
        let mut sink = Self {
            stream: fresh_registration(stream)?,
            pos: Position::at(next),
            user,
            place,
            extra: None,
        };
        if !input.is_empty() {
            sink.extra().input.extend_from_slice(input);
        }
        Ok(sink)
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Queues bytes for this listener alone; past [`MAX_OUT`] waiting, the listener is marked
    /// as one that does not read (and let go).
    pub(super) fn queue(&mut self, frame: &[u8]) {
        let extra = self.extra();
        if extra.out.len() + frame.len() > MAX_OUT {
            extra.overflow = true;
        } else {
            extra.out.extend_from_slice(frame);
        }
    }

    /// Whether a close has been queued for it.
    pub(super) fn is_closing(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| e.closing.is_some())
    }

    /// What it has of its own, as its turn is decided.
    fn own(&self) -> Own {
        self.extra.as_ref().map_or(Own::default(), |e| Own {
            overflow: e.overflow,
            closing: e.closing,
            waiting: !e.out.is_empty(),
        })
    }

    pub(super) fn close_with(&mut self, code: u16, reason: &str) {
        let extra = self.extra();
        if extra.closing.is_none() {
            extra.out.extend_from_slice(&wsframe::close(code, reason));
            extra.closing = Some(code);
        }
    }
}

/// How long what is sent to a media connection may stay unacknowledged (or unsent, the
/// peer's window shut) before the kernel ends the connection: a listener whose machine has
/// gone, with no FIN, costs a socket for this long, not for TCP's quarter of an hour.
pub const DEAD_PEER: Duration = Duration::from_secs(30);

/// Sets [`DEAD_PEER`] on a media connection's socket (`TCP_USER_TIMEOUT`, Linux).
pub fn dead_peer_timeout(stream: &TcpStream) {
    #[cfg(target_os = "linux")]
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(DEAD_PEER)) {
        tracing::debug!(error = %e, "could not set TCP_USER_TIMEOUT");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
}

/// The same socket registered anew with the runtime. Whoever read from it before (the HTTP
/// server, the handshake) left a waker in its registration, and that waker keeps the finished
/// task's whole memory alive for as long as the socket lives; a shard never registers one.
fn fresh_registration(stream: TcpStream) -> io::Result<TcpStream> {
    TcpStream::from_std(stream.into_std()?)
}

/// What a pass decided for one listener.
pub(super) enum Next {
    Keep,
    /// The socket is gone or closed; the label says why, for metrics.
    Drop(&'static str),
}

/// Everything a listener is due right now, as one buffer (for the rare hand-over or close).
pub(super) fn due_bytes(sink: &Sink, snap: &Snapshot) -> Vec<u8> {
    let extra = sink.extra.as_ref().map_or(&[][..], |e| &e.out);
    let mut pos = sink.pos.clone();
    let mut out = Vec::new();
    loop {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let x = if out.is_empty() { extra } else { &[] };
        let n = pos.slices(snap, x, &mut slices);
        if n == 0 {
            return out;
        }
        let before = out.len();
        for s in &slices[..n] {
            out.extend_from_slice(s);
        }
        pos.advance(snap, x.len(), out.len() - before);
    }
}

/// Writes what the listener is due in one vectored write, as [`turn::turn`] decides; a full
/// socket waits for the next pass (and skips to live if it falls out of the ring).
pub(super) fn write_due(sink: &mut Sink, snap: &Snapshot, burst: u64, space: &LiveSpace) -> Next {
    let (frames, skipped) = match turn::turn(sink.own(), &mut sink.pos, snap, burst) {
        (Turn::Drop(why), _) => return Next::Drop(why),
        (Turn::Idle, _) => return Next::Keep,
        (Turn::Write { frames }, skipped) => (frames, skipped),
    };
    if skipped > 0 {
        space.metrics.listener_skips.inc();
    }
    let empty = Snapshot::default();
    let frames = if frames { snap } else { &empty };
    let extra: &[u8] = sink.extra.as_ref().map_or(&[], |e| &e.out);
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let n = sink.pos.slices(frames, extra, &mut slices);
    let extra_len = extra.len();
    // sendmsg, not writev: a socket needs none of what the file path of writev does (the
    // position lock, the file permission hook), and at tens of thousands of writes a second
    // that shows.
    let sent = sink.stream.try_io(Interest::WRITABLE, || {
        socket2::SockRef::from(&sink.stream).send_vectored(&slices[..n])
    });
    match sent {
        Ok(written) => {
            let done = sink.pos.advance(frames, extra_len, written);
            if let Some(extra) = sink.extra.as_mut() {
                extra.out.drain(..done);
                if extra.out.is_empty()
                    && extra.input.is_empty()
                    && extra.closing.is_none()
                    && extra.rate.is_none()
                {
                    sink.extra = None;
                }
            }
            Next::Keep
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Next::Keep,
        Err(_) => Next::Drop("gone"),
    }
}

/// Drains what an Ogg listener sent (players send nothing after the request) and notices
/// when it has gone.
pub(super) fn read_ignored(sink: &mut Sink, scratch: &mut [u8]) -> Next {
    for _ in 0..MAX_READS {
        match sink.stream.try_read(scratch) {
            Ok(0) => return Next::Drop("gone"),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return Next::Drop("gone"),
        }
    }
    Next::Keep
}

/// What a shard lends the reading of one listener.
pub(super) struct Reader<'a> {
    pub(super) scratch: &'a mut [u8],
    pub(super) space: &'a Arc<LiveSpace>,
    pub(super) personal: &'a mpsc::Sender<(UserId, Bytes)>,
    pub(super) quota: governor::Quota,
}

/// Reads and acts on what a WebSocket listener sent.
pub(super) fn read_ws(sink: &mut Sink, ctx: &mut Reader) -> Next {
    if sink.extra.as_ref().is_some_and(|e| e.closing.is_some()) {
        return read_ignored(sink, ctx.scratch);
    }
    if sink.extra.as_ref().is_some_and(|e| !e.input.is_empty()) {
        // Bytes left over from the handshake or an earlier pass come first.
        let pending = std::mem::take(&mut sink.extra().input);
        if let Err((code, reason)) = consume(sink, &pending, ctx) {
            sink.close_with(code, &reason);
            return Next::Keep;
        }
    }
    for _ in 0..MAX_READS {
        let n = match sink.stream.try_read(ctx.scratch) {
            Ok(0) => return Next::Drop("gone"),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return Next::Drop("gone"),
        };
        let mut pending = std::mem::take(&mut sink.extra().input);
        pending.extend_from_slice(&ctx.scratch[..n]);
        if let Err((code, reason)) = consume(sink, &pending, ctx) {
            sink.close_with(code, &reason);
            break;
        }
        if sink
            .extra
            .as_ref()
            .is_some_and(|e| e.closing.is_some() || e.overflow)
        {
            break;
        }
    }
    Next::Keep
}

/// Parses whole frames from `bytes`, acts on each, and keeps an incomplete tail for later.
fn consume(sink: &mut Sink, mut bytes: &[u8], ctx: &mut Reader) -> Result<(), Close> {
    loop {
        match wsframe::parse_client(bytes, MAX_WS_MESSAGE) {
            Ok(Some((frame, used))) => {
                bytes = &bytes[used..];
                on_frame(sink, frame, ctx)?;
                if sink.extra.as_ref().is_some_and(|e| e.closing.is_some()) {
                    return Ok(());
                }
            }
            Ok(None) => {
                if !bytes.is_empty() {
                    sink.extra().input.extend_from_slice(bytes);
                }
                return Ok(());
            }
            Err(e) => return Err((e.close_code(), e.to_string())),
        }
    }
}

/// One frame from a listener, through the same command path as the stage's.
fn on_frame(sink: &mut Sink, frame: ClientFrame, ctx: &mut Reader) -> Result<(), Close> {
    let user = sink.user.unwrap_or_default();
    if matches!(frame, ClientFrame::Text(_) | ClientFrame::Ping(_)) {
        let quota = ctx.quota;
        sink.extra()
            .rate
            .get_or_insert_with(|| crate::commands::Rate::new(quota))
            .take()?;
    }
    match frame {
        ClientFrame::Text(text) => {
            let command = crate::commands::parse(&text)?;
            let reply = Reply::Tell(ctx.personal.clone());
            if let Err(e) = ctx.space.submit(user, command, false, reply) {
                sink.queue(wsframe::text(&refused_event(&e)).as_ref());
            }
            Ok(())
        }
        ClientFrame::Binary(data) => crate::commands::publish(ctx.space, user, data.into()),
        ClientFrame::Ping(payload) => {
            sink.queue(&wsframe::pong(payload.into()));
            Ok(())
        }
        ClientFrame::Pong => Ok(()),
        ClientFrame::Close => {
            sink.close_with(close::NORMAL, "");
            Ok(())
        }
    }
}
