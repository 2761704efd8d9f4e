//! A fan-out writer task (a shard): it owns many listeners' sockets and, each time its feed
//! wakes it, gives each one its turn (see [`super::sink`]): everything it is behind in one
//! vectored write of shared frames. It also carries events to the listeners they concern,
//! lets the newest go under overload, hands a listener called on stage to a full connection,
//! and ends when it has been empty for a while.

use super::sink::{Next, Reader, Sink, due_bytes, read_ignored, read_ws, write_due};
use super::turn::{self, Linger, Shedding};
use super::wiring::{HandOver, Transport, Wiring};
use crate::origin::live::{Audience, LiveSpace};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stentor_hub::wsframe::{self, MAX_WS_MESSAGE, close};
use stentor_hub::{Feed, Snapshot, Stagger};
use stentor_space::UserId;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// Listeners served between two yields to the runtime, so accepts and the mixer never wait
/// behind a long pass.
const YIELD_EVERY: usize = 256;
/// Refusals and answers waiting for a shard's listeners; past it they are dropped.
const PERSONAL_QUEUE: usize = 256;
/// How long a writer with no listener left waits for a new one before it ends.
const SHARD_LINGER: Duration = Duration::from_secs(5);
/// A pass runs at least this often when the feed is quiet (a lobby before the start): events
/// and what listeners send are dealt with then. Longer than the longest cadence, so that
/// while audio flows it never adds a write of its own.
const IDLE_PASS: Duration = Duration::from_secs(1);

/// Shards started so far by any fan-out: each gets its own phase of the cadence.
static SHARDS_STARTED: AtomicUsize = AtomicUsize::new(0);

/// A writer task and the listeners it owns.
pub(super) struct Shard {
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
    /// How many of the newest to let go while listeners are shed.
    shedding: Shedding,
    /// When an empty writer ends.
    linger: Linger,
}

impl Shard {
    /// A writer of `feed` for listeners sent on `rx`; `load` counts them for the fan-out.
    pub(super) fn new(
        feed: Feed,
        transport: Transport,
        rx: mpsc::UnboundedReceiver<Sink>,
        load: Arc<AtomicUsize>,
        wiring: Wiring,
        space: Arc<LiveSpace>,
    ) -> Self {
        let (personal_tx, personal_rx) = mpsc::channel(PERSONAL_QUEUE);
        let quota = wiring.quota;
        Self {
            feed,
            transport,
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
            shedding: Shedding::new(std::time::Instant::now()),
            linger: Linger::new(SHARD_LINGER),
        }
    }

    /// Serves its listeners until the Space ends, the server stops, or it has been empty
    /// for [`SHARD_LINGER`].
    pub(super) async fn run(mut self) {
        self.space.metrics.writers.inc();
        let mut ticks = self.feed.ticks();
        let mut notices = self.space.events();
        let mut shutdown = self.wiring.shutdown.clone();
        let mut idle = tokio::time::interval(IDLE_PASS);
        idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ws = self.transport == Transport::WebSocket;
        let mut taking = true;
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
                        let (code, reason) = self
                            .feed
                            .close_reason()
                            .unwrap_or((close::NORMAL, "the space has ended".into()));
                        self.close_all(code, &reason).await;
                        break;
                    }
                }
                _ = idle.tick() => self.pass().await,
            }
            if self
                .linger
                .over(std::time::Instant::now(), self.sinks.len())
            {
                // Take no one new (the fan-out starts another shard for them), serve whoever
                // was already on the way, then end: an idle writer would hold its Space for
                // ever.
                self.rx.close();
                taking = false;
                while let Ok(sink) = self.rx.try_recv() {
                    self.take(sink);
                }
                if self.sinks.is_empty() {
                    break;
                }
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
        let shed = self
            .wiring
            .overload
            .sheds(stentor_gate::shed::Class::Listener);
        let n = self
            .shedding
            .due(std::time::Instant::now(), shed, self.sinks.len());
        if n == 0 {
            return;
        }
        let sinks = &self.sinks;
        for i in turn::newest(n, sinks.len(), |i| sinks[i].is_closing()) {
            let retry = stentor_gate::shed::retry_after(
                stentor_gate::shed::Class::Listener,
                rand::random(),
            );
            match self.transport {
                Transport::WebSocket => self.sinks[i].close_with(
                    close::TRY_AGAIN_LATER,
                    &format!("the server is overloaded; retry in {retry} s"),
                ),
                Transport::Ogg => {
                    self.remove(i);
                    self.space
                        .metrics
                        .close(close::label(close::TRY_AGAIN_LATER));
                }
            }
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
            if self.sinks[i].user == Some(user) && !self.settle(i, user, removed, role) {
                continue;
            }
            i += 1;
        }
    }

    /// Brings listener `i` (of `user`, now `removed` or of `role`) in line: a removed one is
    /// closed, one called on stage handed over to a full connection. Whether it stays at `i`.
    fn settle(&mut self, i: usize, user: UserId, removed: bool, role: stentor_space::Role) -> bool {
        if removed && self.transport == Transport::Ogg {
            // The stream just ends; the ticket it came with is refused from now on.
            self.remove(i);
            self.space.metrics.close(close::label(close::REMOVED));
            false
        } else if removed {
            self.sinks[i].close_with(close::REMOVED, "removed from this space");
            true
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
            false
        } else {
            true
        }
    }

    /// Takes a listener in.
    fn take(&mut self, mut sink: Sink) {
        self.feed.attach(1);
        if let Some(unseen) = &mut sink.place.unseen {
            unseen.activate();
        }
        let user = sink.user;
        if let Some(user) = user {
            *self.users.entry(user).or_default() += 1;
        }
        self.sinks.push(sink);
        // A notice about this listener may have gone out between its admission and now
        // (removed, or called on stage): it was not here to be told, so look at its state (this
        // listener's alone: a crowd's joins cost no pass over the others).
        if let Some(user) = user {
            let (removed, role) = self
                .space
                .with_domain(|d| (d.is_removed(user), d.role_of(user)));
            self.settle(self.sinks.len() - 1, user, removed, role);
        }
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
