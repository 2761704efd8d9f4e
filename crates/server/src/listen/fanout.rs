//! Sharded listener writers: a shard task owns many listeners' sockets and, each time its feed
//! wakes it, sends each one everything it is behind in one vectored write of shared frames.
//!
//! A listener costs a socket and a few dozen bytes here: no task, no buffer, no protocol
//! object. What a WebSocket listener sends (commands, pings, a close) is read when its shard
//! passes by, through the readiness the runtime already tracks, so a quiet socket costs no
//! system call. People on stage are not here: they have a full connection (routes/ws.rs), and
//! a listener invited on stage is handed over to one.

use crate::commands::Close;
use crate::origin::live::{Audience, LiveSpace, Reply, refused_event};
use crate::overload::Overload;
use bytes::Bytes;
use parking_lot::Mutex;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stentor_gate::capacity::Slot;
use stentor_hub::wsframe::{self, ClientFrame};
use stentor_hub::wsframe::{MAX_WS_MESSAGE, close};
use stentor_hub::{Feed, Position, Snapshot, Stagger};
use stentor_space::UserId;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// Most slices in one vectored write (the unfinished frame, personal bytes, 64 frames).
const MAX_SLICES: usize = 66;
/// Listeners served between two yields to the runtime, so accepts and the mixer never wait
/// behind a long pass.
const YIELD_EVERY: usize = 256;
/// Reads of one socket per pass: a client that floods cannot hold its shard.
const MAX_READS: usize = 4;
/// Bytes of its own (answers, pongs, refusals) a listener may have waiting; one that does not
/// read them is let go.
pub const MAX_OUT: usize = 64 * 1024;
/// Refusals and answers waiting for a shard's listeners; past it they are dropped.
const PERSONAL_QUEUE: usize = 256;
/// How long a writer with no listener left waits for a new one before it ends.
const SHARD_LINGER: Duration = Duration::from_secs(5);
/// A pass runs at least this often when the feed is quiet (a lobby before the start): events
/// and what listeners send are dealt with then. Longer than the longest cadence, so that
/// while audio flows it never adds a write of its own.
const IDLE_PASS: Duration = Duration::from_secs(1);

/// Which framing a fan-out sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket frames; the listener may send commands.
    WebSocket,
    /// Ogg pages after an HTTP response; anything the listener sends is ignored.
    Ogg,
}

/// A listener's socket as a shard holds it.
pub struct Sink {
    stream: TcpStream,
    pos: Position,
    user: Option<UserId>,
    _slot: Option<Slot>,
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
        slot: Option<Slot>,
        input: &[u8],
    ) -> io::Result<Self> {
        dead_peer_timeout(&stream);
        let mut sink = Self {
            stream: fresh_registration(stream)?,
            pos: Position::at(next),
            user,
            _slot: slot,
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
    fn queue(&mut self, frame: &[u8]) {
        let extra = self.extra();
        if extra.out.len() + frame.len() > MAX_OUT {
            extra.overflow = true;
        } else {
            extra.out.extend_from_slice(frame);
        }
    }

    fn close_with(&mut self, code: u16, reason: &str) {
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

/// What the fan-out needs of the server around it, given once by the composition root.
#[derive(Clone)]
pub struct Wiring {
    /// Where writer tasks are spawned (and their end awaited at shutdown).
    pub tasks: tokio_util::task::TaskTracker,
    /// Becomes true when the server shuts down.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Measured overload: whether listeners are shed.
    pub overload: Arc<Overload>,
    /// Commands (and pings) a listener may send.
    pub quota: governor::Quota,
    /// Where a listener called on stage goes, with their socket (see [`HandOver`]).
    pub stage: mpsc::Sender<HandOver>,
}

/// A listener's socket on its way to a full connection on stage, with the bytes it was due.
pub struct HandOver {
    /// The Space.
    pub space: Arc<LiveSpace>,
    /// The listener, now on stage.
    pub user: UserId,
    /// The socket.
    pub stream: TcpStream,
    /// What the listener was due when it left its writer.
    pub due: Vec<u8>,
}

/// Hand-overs to the stage waiting at once; past it the socket is closed (the client
/// reconnects with its new role).
pub const HAND_OVERS: usize = 64;

/// The writers of one Space's listeners, one fan-out per transport.
pub struct SpaceAudience {
    /// WebSocket listeners.
    pub ws: Fanout,
    /// Ogg listeners.
    pub ogg: Fanout,
    space: std::sync::Weak<LiveSpace>,
}

/// The audiences of every Space this node serves.
pub struct Audiences {
    wiring: Wiring,
    per_shard: usize,
    map: Mutex<std::collections::HashMap<String, Arc<SpaceAudience>>>,
}

impl Audiences {
    /// No audience yet; writers serve at most `per_shard` listeners each.
    pub fn new(wiring: Wiring, per_shard: usize) -> Self {
        Self {
            wiring,
            per_shard,
            map: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The audience of `space`, made when its first listener comes.
    pub fn of(&self, space: &Arc<LiveSpace>) -> Arc<SpaceAudience> {
        let mut map = self.map.lock();
        if let Some(a) = map.get(&space.id).filter(|a| a.space.strong_count() > 0) {
            return a.clone();
        }
        // Spaces gone from this node leave their audiences behind: forget those now.
        map.retain(|_, a| a.space.strong_count() > 0);
        let audience = Arc::new(SpaceAudience {
            ws: Fanout::new(space.hub.ws.clone(), Transport::WebSocket, self.per_shard),
            ogg: Fanout::new(space.hub.ogg.clone(), Transport::Ogg, self.per_shard),
            space: Arc::downgrade(space),
        });
        map.insert(space.id.clone(), audience.clone());
        audience
    }

    /// Hands a listener to the writers of its transport in `space`.
    pub fn add(&self, space: &Arc<LiveSpace>, transport: Transport, sink: Sink) {
        let audience = self.of(space);
        let fanout = match transport {
            Transport::WebSocket => &audience.ws,
            Transport::Ogg => &audience.ogg,
        };
        fanout.add(sink, &self.wiring, space);
    }
}

/// The shards of one feed.
pub struct Fanout {
    feed: Feed,
    transport: Transport,
    per_shard: usize,
    shards: Mutex<Vec<ShardHandle>>,
}

struct ShardHandle {
    tx: mpsc::UnboundedSender<Sink>,
    load: Arc<AtomicUsize>,
}

/// Shards started so far by any fan-out: each gets its own phase of the cadence.
static SHARDS_STARTED: AtomicUsize = AtomicUsize::new(0);

impl Fanout {
    /// Fan-out of `feed`, at most `per_shard` listeners per writer task (1 gives a task per
    /// listener).
    pub fn new(feed: Feed, transport: Transport, per_shard: usize) -> Self {
        Self {
            feed,
            transport,
            per_shard: per_shard.max(1),
            shards: Mutex::new(Vec::new()),
        }
    }

    /// Hands a listener to the least loaded shard with room, starting one if none has.
    pub fn add(&self, sink: Sink, wiring: &Wiring, space: &Arc<LiveSpace>) {
        let mut shards = self.shards.lock();
        shards.retain(|s| !s.tx.is_closed());
        let best = shards
            .iter()
            .filter(|s| s.load.load(Ordering::Relaxed) < self.per_shard)
            .min_by_key(|s| s.load.load(Ordering::Relaxed));
        let sink = match best {
            Some(shard) => {
                shard.load.fetch_add(1, Ordering::Relaxed);
                match shard.tx.send(sink) {
                    Ok(()) => return,
                    Err(e) => {
                        shard.load.fetch_sub(1, Ordering::Relaxed);
                        e.0
                    }
                }
            }
            None => sink,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let load = Arc::new(AtomicUsize::new(1));
        let _ = tx.send(sink);
        let shard = Shard::new(self, rx, load.clone(), wiring.clone(), space.clone());
        wiring.tasks.spawn(shard.run());
        shards.push(ShardHandle { tx, load });
    }

    /// Writer tasks running.
    pub fn shards(&self) -> usize {
        self.shards.lock().len()
    }
}

/// What a pass decided for one listener.
enum Next {
    Keep,
    /// The socket is gone or closed; the label says why, for metrics.
    Drop(&'static str),
}

struct Shard {
    feed: Feed,
    transport: Transport,
    sinks: Vec<Sink>,
    load: Arc<AtomicUsize>,
    rx: mpsc::UnboundedReceiver<Sink>,
    personal_tx: mpsc::Sender<(UserId, Bytes)>,
    personal_rx: mpsc::Receiver<(UserId, Bytes)>,
    /// Connections per signed user in this shard: notices for anyone else are passed over
    /// without a look at the sockets.
    users: std::collections::HashMap<UserId, u32>,
    /// Commands a listener may send.
    quota: governor::Quota,
    snap: Snapshot,
    scratch: Vec<u8>,
    stagger: Stagger,
    wiring: Wiring,
    space: Arc<LiveSpace>,
    /// When the last pass ran, and the fraction of a listener owed to shedding since.
    last_pass: tokio::time::Instant,
    shed_credit: f64,
}

impl Shard {
    fn new(
        fanout: &Fanout,
        rx: mpsc::UnboundedReceiver<Sink>,
        load: Arc<AtomicUsize>,
        wiring: Wiring,
        space: Arc<LiveSpace>,
    ) -> Self {
        let (personal_tx, personal_rx) = mpsc::channel(PERSONAL_QUEUE);
        let quota = wiring.quota;
        Self {
            feed: fanout.feed.clone(),
            transport: fanout.transport,
            sinks: Vec::new(),
            load,
            rx,
            personal_tx,
            personal_rx,
            users: std::collections::HashMap::new(),
            quota,
            snap: Snapshot::default(),
            scratch: vec![0; MAX_WS_MESSAGE + 64],
            stagger: Stagger::nth(SHARDS_STARTED.fetch_add(1, Ordering::Relaxed)),
            wiring,
            space,
            last_pass: tokio::time::Instant::now(),
            shed_credit: 0.0,
        }
    }

    async fn run(mut self) {
        self.space.metrics.writers.inc();
        let mut ticks = self.feed.ticks();
        let mut notices = self.space.events();
        let mut shutdown = self.wiring.shutdown.clone();
        let mut idle = tokio::time::interval(IDLE_PASS);
        idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ws = self.transport == Transport::WebSocket;
        let (mut empty_since, mut taking) = (None, true);
        loop {
            tokio::select! {
                biased;
                () = crate::shutdown::going_away(&mut shutdown) => {
                    self.close_all(close::GOING_AWAY, "the server is shutting down").await;
                    break;
                }
                sink = self.rx.recv(), if taking => match sink {
                    Some(sink) => self.take(sink),
                    None => break,
                },
                Some((user, frame)) = self.personal_rx.recv() => self.tell(user, &frame),
                notice = notices.recv() => match notice {
                    Ok(notice) => if let Some(user) = notice.to
                        && self.users.contains_key(&user)
                    {
                        if ws && notice.audience == Audience::StageAndSubject {
                            self.tell(user, &wsframe::text(&notice.text));
                        }
                        self.on_notice_to(user);
                    },
                    // Notices were missed: what matters of them (removals, moves on stage)
                    // is state, so look at it again for everyone here.
                    Err(RecvError::Lagged(_)) => {
                        let users: Vec<UserId> = self.users.keys().copied().collect();
                        for user in users {
                            self.on_notice_to(user);
                        }
                    }
                    Err(RecvError::Closed) => break,
                },
                changed = ticks.changed() => {
                    // While frames flow, the idle pass has nothing to add.
                    idle.reset();
                    let ended = changed.is_err() || self.feed.is_closed();
                    let n = *ticks.borrow_and_update();
                    let every = self.feed.wake_every();
                    if let Some(late) = self.stagger.due_late(n, every) {
                        // A listener up to date at its last pass is this far behind now: the
                        // cadence, plus how late this writer is (never a slow listener's doing).
                        self.feed.note_lag(u64::from(every) + late);
                        self.pass().await;
                    } else if ended {
                        self.pass().await;
                    }
                    if ended {
                        self.close_all(close::NORMAL, "the space has ended").await;
                        break;
                    }
                }
                _ = idle.tick() => self.pass().await,
            }
            if self.sinks.is_empty() {
                let since = *empty_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= SHARD_LINGER {
                    // Take no one new (the fan-out starts another shard for them), serve
                    // whoever was already on the way, then end: an idle writer would hold
                    // its Space for ever.
                    self.rx.close();
                    taking = false;
                    while let Ok(sink) = self.rx.try_recv() {
                        self.take(sink);
                    }
                    if self.sinks.is_empty() {
                        break;
                    }
                }
            } else {
                empty_since = None;
            }
        }
        self.feed.detach(self.sinks.len());
        self.load.fetch_sub(self.sinks.len(), Ordering::Relaxed);
        self.rx.close();
        self.space.metrics.writers.dec();
    }

    /// At the last level of overload, lets the newest few listeners go (a share a second):
    /// a WebSocket listener gets close 1013 with when to come back, an Ogg stream ends.
    fn shed_newest(&mut self) {
        let now = tokio::time::Instant::now();
        let elapsed = now - self.last_pass;
        self.last_pass = now;
        if !self
            .wiring
            .overload
            .sheds(stentor_gate::shed::Class::Listener)
        {
            self.shed_credit = 0.0;
            return;
        }
        let n =
            stentor_gate::shed::listeners_to_shed(self.sinks.len(), elapsed, &mut self.shed_credit);
        let mut shed = 0;
        // The newest are at the end (removals swap a few out of order).
        for i in (0..self.sinks.len()).rev() {
            if shed == n {
                break;
            }
            let retry = stentor_gate::shed::retry_after(
                stentor_gate::shed::Class::Listener,
                rand::random(),
            );
            match self.transport {
                Transport::WebSocket => {
                    let sink = &mut self.sinks[i];
                    if sink.extra.as_ref().is_some_and(|e| e.closing.is_some()) {
                        continue;
                    }
                    sink.close_with(
                        close::TRY_AGAIN_LATER,
                        &format!("the server is overloaded; retry in {retry} s"),
                    );
                }
                Transport::Ogg => {
                    self.remove(i);
                    self.space
                        .metrics
                        .close(close::label(close::TRY_AGAIN_LATER));
                }
            }
            shed += 1;
        }
    }

    /// One pass over every listener: read what it sent, write what it is due.
    async fn pass(&mut self) {
        self.shed_newest();
        self.feed.snapshot(&mut self.snap);
        let burst = self.feed.burst() as u64;
        let mut i = 0;
        let mut served = 0;
        while i < self.sinks.len() {
            let next = {
                let sink = &mut self.sinks[i];
                let next = match self.transport {
                    Transport::WebSocket => {
                        let mut ctx = Reader {
                            scratch: &mut self.scratch,
                            space: &self.space,
                            personal: &self.personal_tx,
                            quota: self.quota,
                        };
                        read_ws(sink, &mut ctx)
                    }
                    Transport::Ogg => read_ignored(sink, &mut self.scratch),
                };
                match next {
                    Next::Keep => write_due(sink, &self.snap, burst, &self.space),
                    gone => gone,
                }
            };
            match next {
                Next::Keep => i += 1,
                Next::Drop(why) => {
                    let sink = self.remove(i);
                    self.space.metrics.close(why);
                    if let Some(user) = sink.user {
                        crate::commands::lower_hand_of_the_gone(&self.space, user);
                    }
                }
            }
            served += 1;
            if served % YIELD_EVERY == 0 {
                tokio::task::yield_now().await;
            }
        }
    }

    /// A change concerning `user`: a removal closes their sockets, a move on stage hands them
    /// to a full connection.
    fn on_notice_to(&mut self, user: UserId) {
        let (removed, role) = self
            .space
            .with_domain(|d| (d.is_removed(user), d.role_of(user)));
        let mut i = 0;
        while i < self.sinks.len() {
            if self.sinks[i].user != Some(user) {
                i += 1;
                continue;
            }
            if removed && self.transport == Transport::Ogg {
                // The stream just ends; the ticket it came with is refused from now on.
                self.remove(i);
                self.space.metrics.close(close::label(close::REMOVED));
            } else if removed {
                self.sinks[i].close_with(close::REMOVED, "removed from this space");
                i += 1;
            } else if role.is_speaker() && self.transport == Transport::WebSocket {
                let sink = self.remove(i);
                self.feed.snapshot(&mut self.snap);
                let due = due_bytes(&sink, &self.snap);
                let hand_over = HandOver {
                    space: self.space.clone(),
                    user,
                    stream: sink.stream,
                    due,
                };
                // A full queue of hand-overs drops this one: the client reconnects.
                let _ = self.wiring.stage.try_send(hand_over);
            } else {
                i += 1;
            }
        }
    }

    /// Takes a listener in.
    fn take(&mut self, sink: Sink) {
        self.feed.attach(1);
        if let Some(user) = sink.user {
            *self.users.entry(user).or_default() += 1;
        }
        self.sinks.push(sink);
    }

    /// Takes listener `i` out of the shard.
    fn remove(&mut self, i: usize) -> Sink {
        let sink = self.sinks.swap_remove(i);
        self.feed.detach(1);
        self.load.fetch_sub(1, Ordering::Relaxed);
        if let Some(user) = sink.user
            && let std::collections::hash_map::Entry::Occupied(mut e) = self.users.entry(user)
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        sink
    }

    /// Queues `frame` for every connection of `user` in this shard.
    fn tell(&mut self, user: UserId, frame: &[u8]) {
        if !self.users.contains_key(&user) {
            return;
        }
        for sink in self.sinks.iter_mut().filter(|s| s.user == Some(user)) {
            sink.queue(frame);
        }
    }

    /// Sends every listener a close (WebSocket) or ends its stream (Ogg), best effort.
    async fn close_all(&mut self, code: u16, reason: &str) {
        self.feed.snapshot(&mut self.snap);
        let frame = wsframe::close(code, reason);
        let mut sinks = std::mem::take(&mut self.sinks);
        for sink in &mut sinks {
            if self.transport == Transport::WebSocket {
                sink.queue(&frame);
            }
            let due = due_bytes(sink, &self.snap);
            // A listener whose socket is full gets what fits; nobody waits for one.
            let _ = sink.stream.try_write(&due);
            let _ = sink.stream.shutdown().await;
        }
        for _ in &sinks {
            self.space.metrics.close(close::label(code));
        }
        self.feed.detach(sinks.len());
        self.load.fetch_sub(sinks.len(), Ordering::Relaxed);
        self.users.clear();
    }
}

/// Everything a listener is due right now, as one buffer (for the rare hand-over or close).
fn due_bytes(sink: &Sink, snap: &Snapshot) -> Vec<u8> {
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

/// Writes what the listener is due in one vectored write; a full socket waits for the next
/// pass (and skips to live if it falls out of the ring).
fn write_due(sink: &mut Sink, snap: &Snapshot, burst: u64, space: &LiveSpace) -> Next {
    if sink.extra.as_ref().is_some_and(|e| e.overflow) {
        // It sends and does not read: nothing more can reach it in order, not even a close.
        return Next::Drop("not_reading");
    }
    let closing = sink.extra.as_ref().and_then(|e| e.closing);
    if closing.is_none() && sink.pos.catch_up(snap, burst) > 0 {
        space.metrics.listener_skips.inc();
    }
    let empty = Snapshot::default();
    // After a close frame nothing else may follow.
    let frames = if closing.is_some() { &empty } else { snap };
    let extra: &[u8] = sink.extra.as_ref().map_or(&[], |e| &e.out);
    if !sink.pos.is_due(frames) && extra.is_empty() {
        return match closing {
            Some(code) => Next::Drop(close::label(code)),
            None => Next::Keep,
        };
    }
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
fn read_ignored(sink: &mut Sink, scratch: &mut [u8]) -> Next {
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
struct Reader<'a> {
    scratch: &'a mut [u8],
    space: &'a Arc<LiveSpace>,
    personal: &'a mpsc::Sender<(UserId, Bytes)>,
    quota: governor::Quota,
}

/// Reads and acts on what a WebSocket listener sent.
fn read_ws(sink: &mut Sink, ctx: &mut Reader) -> Next {
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

#[cfg(test)]
mod tests {
    use super::*;
    use stentor_hub::CadencePolicy;

    #[test]
    fn the_idle_pass_never_comes_between_two_wake_ups() {
        let longest = CadencePolicy::period(CadencePolicy::default().max_frames);
        assert!(IDLE_PASS > longest, "{IDLE_PASS:?} vs {longest:?}");
    }
}
