//! A live Space's uplink to the cluster's bus (the origin role): the mix and the events go on
//! a bounded queue without waiting, and a task of the Space's own publishes them on its media
//! subject while this node holds the Space's lease (taken, renewed and given up here). While
//! it holds the lease it also answers the edges: snapshots (the state and the tail of the
//! mix) and the commands of their listeners.

use crate::cluster::Cluster;
use crate::metrics::Metrics;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Instant;
use stentor_bus::{Bus, Envelope, Lease, Requests, Snapshot, Subjects};
use stentor_media::MixOutput;
use stentor_space::{Command, UserId};
use tokio::sync::{Notify, mpsc, watch};
use tracing::Instrument;

/// Envelopes waiting for the bus: 5 s of frames. Past it, the newest are dropped (counted):
/// the mixer never waits for the network.
const QUEUE: usize = 250;
/// Frames of the mix a snapshot carries: more than a new listener's burst, so an edge's
/// first listener starts with audio at once.
pub const TAIL_FRAMES: usize = 25;

/// What an edge forwards to a Space's origin on its commands subject (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Forwarded {
    /// A listener's command, answered with an [`Outcome`].
    Command {
        /// Who sent it (their ticket was checked by the edge).
        actor: UserId,
        /// What they asked.
        command: Command,
    },
    /// The reactions of one window at one edge, already capped per listener there; nobody
    /// waits for an answer.
    Reactions {
        /// (emoji, count).
        counts: Vec<(String, u64)>,
    },
}

/// How the origin answers a forwarded command (JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The HTTP status the refusal has on the origin (absent when carried out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it was refused (absent when carried out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// A future answer to a forwarded command.
pub type Answer = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// What the uplink asks of its Space to answer the edges.
pub trait Answers: Send + Sync + 'static {
    /// The Space's state, as the JSON of a snapshot.
    fn state_json(&self) -> String;
    /// Carries out what an edge forwarded; `None` when nobody waits for an answer.
    fn carry_out(&self, forwarded: Forwarded) -> Option<Answer>;
}

/// The sending end of a Space's uplink; dropping it ends the task, which gives the lease up.
pub struct Uplink {
    tx: mpsc::Sender<Envelope>,
    metrics: Arc<Metrics>,
    tail: Arc<Mutex<VecDeque<(u64, Bytes)>>>,
    held: watch::Receiver<bool>,
    stop: Arc<Notify>,
}

/// The task of an uplink, to be started once its Space exists.
pub struct Task {
    cluster: Cluster,
    space: String,
    subjects: Subjects,
    rx: mpsc::Receiver<Envelope>,
    metrics: Arc<Metrics>,
    tail: Arc<Mutex<VecDeque<(u64, Bytes)>>>,
    held: watch::Sender<bool>,
    stop: Arc<Notify>,
}

impl Uplink {
    /// The uplink of Space `space` and its task, or `None` (logged) if its id cannot name a
    /// subject.
    pub fn new(cluster: &Cluster, space: &str, metrics: Arc<Metrics>) -> Option<(Self, Task)> {
        let subjects = match Subjects::new(&cluster.name, space) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "this space cannot be published");
                return None;
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_FRAMES)));
        let (held, held_rx) = watch::channel(false);
        let stop = Arc::new(Notify::new());
        let task = Task {
            cluster: cluster.clone(),
            space: space.to_owned(),
            subjects,
            rx,
            metrics: metrics.clone(),
            tail: tail.clone(),
            held,
            stop: stop.clone(),
        };
        let uplink = Self {
            tx,
            metrics,
            tail,
            held: held_rx,
            stop,
        };
        Some((uplink, task))
    }

    /// Whether this node holds the Space's lease now.
    pub fn held(&self) -> bool {
        *self.held.borrow()
    }

    /// Waits up to `time` for this node to hold the Space's lease; whether it does.
    pub async fn held_within(&self, time: std::time::Duration) -> bool {
        let mut held = self.held.clone();
        matches!(
            tokio::time::timeout(time, held.wait_for(|h| *h)).await,
            Ok(Ok(_))
        )
    }

    /// Gives the lease up now (a clean stop of the node): a standby takes the Space at once
    /// instead of waiting for the lease to lapse.
    pub fn let_go(&self) {
        self.stop.notify_one();
    }

    /// A frame of the mix, for the edges.
    pub fn frame(&self, mix: &MixOutput) {
        {
            let mut tail = self.tail.lock();
            if tail.len() == TAIL_FRAMES {
                tail.pop_front();
            }
            tail.push_back((mix.seq, mix.packet.clone()));
        }
        self.send(Envelope::Audio {
            seq: mix.seq,
            sent_micros: crate::clock::unix_micros(),
            packet: mix.packet.clone(),
        });
    }

    /// An event for every listener, for the edges.
    pub fn event(&self, json: &str) {
        self.send(Envelope::Event(Bytes::copy_from_slice(json.as_bytes())));
    }

    /// An event for the stage and one user (a raised hand), for the edge that has them.
    pub fn notice(&self, to: UserId, json: &str) {
        self.send(Envelope::Notice {
            to,
            json: Bytes::copy_from_slice(json.as_bytes()),
        });
    }

    fn send(&self, envelope: Envelope) {
        if self.tx.try_send(envelope).is_err() {
            self.metrics.bus_queue_full.inc();
        }
    }
}

impl Task {
    /// Starts the task; it answers for `space` while that lives.
    pub fn spawn(self, space: Weak<dyn Answers>) {
        let span = tracing::info_span!("uplink", space = %self.space);
        let tasks = self.cluster.tasks.clone();
        tasks.spawn(self.run(space).instrument(span));
    }

    /// Takes the lease, publishes and answers while holding it, renews it in time, takes it
    /// again if it was lost (and free again), and gives it up when the Space goes from this
    /// node.
    async fn run(mut self, space: Weak<dyn Answers>) {
        let cluster = self.cluster.clone();
        let retry = cluster.lease / 3;
        let mut lease: Option<Lease> = None;
        let mut serving: Option<(Requests, Requests)> = None;
        let mut next_try = tokio::time::Instant::now();
        let stop = self.stop.clone();
        loop {
            let due = lease
                .as_ref()
                .map_or(next_try, |l| l.clock.renew_at().into());
            self.held
                .send_if_modified(|h| std::mem::replace(h, lease.is_some()) != *h);
            tokio::select! {
                () = stop.notified() => break,
                envelope = self.rx.recv() => {
                    let Some(envelope) = envelope else { break };
                    self.publish(&lease, envelope).await;
                }
                request = next_request(&mut serving) => {
                    let Some(space) = space.upgrade() else { break };
                    match request {
                        Some((true, request)) => {
                            let snapshot = Snapshot {
                                state: space.state_json().into(),
                                tail: self.tail.lock().iter().cloned().collect(),
                            };
                            self.metrics.snapshots_served.inc();
                            let _ = request.respond(snapshot.encode()).await;
                        }
                        Some((false, request)) => answer_command(&*space, request),
                        // The bus closed the subscriptions: serve again.
                        None => serving = None,
                    }
                }
                () = tokio::time::sleep_until(due) => {
                    match lease.as_mut() {
                        Some(held) => match cluster.leases.renew(held).await {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::warn!("lost the lease of this space");
                                self.metrics.lease_changes.inc();
                                lease = None;
                                serving = None;
                                next_try = tokio::time::Instant::now() + retry;
                            }
                            // Try again soon; the clock stops publishing if it stays unreachable.
                            Err(e) => tracing::warn!(error = %e, "could not renew the lease"),
                        },
                        None => {
                            match cluster.leases.acquire(&self.space).await {
                                Ok(Some(taken)) => {
                                    tracing::info!("this node is the space's origin");
                                    self.metrics.lease_changes.inc();
                                    lease = Some(taken);
                                }
                                Ok(None) => tracing::debug!("another node holds the lease"),
                                Err(e) => tracing::warn!(error = %e, "could not take the lease"),
                            }
                            next_try = tokio::time::Instant::now() + retry;
                        }
                    }
                    if lease.is_some() && serving.is_none() {
                        serving = serve(&cluster.bus, &self.subjects).await;
                    }
                }
            }
        }
        drop(serving);
        if let Some(held) = lease {
            if let Err(e) = cluster.leases.release(held).await {
                tracing::warn!(error = %e, "could not give the lease up");
            }
            self.metrics.lease_changes.inc();
        }
    }

    async fn publish(&self, lease: &Option<Lease>, envelope: Envelope) {
        match lease {
            Some(l) if l.clock.holds(Instant::now()) => {
                match self
                    .cluster
                    .bus
                    .publish(&self.subjects.media, envelope.encode())
                    .await
                {
                    Ok(()) => {
                        self.metrics.bus_published.inc();
                    }
                    Err(e) => tracing::warn!(error = %e, "could not publish"),
                }
            }
            // Not (or no longer surely) the origin: publishing could make two.
            _ => {
                self.metrics.bus_not_owner.inc();
            }
        }
    }
}

/// Serves the snapshot and command subjects of a Space (logged and `None` on failure: the
/// next renewal tries again).
async fn serve(bus: &Bus, subjects: &Subjects) -> Option<(Requests, Requests)> {
    let snapshots = bus.serve(&subjects.snapshot).await;
    let commands = bus.serve(&subjects.commands).await;
    match (snapshots, commands) {
        (Ok(s), Ok(c)) => Some((s, c)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot answer the edges yet");
            None
        }
    }
}

/// The next request to answer (true: a snapshot, false: a command); pending while not
/// serving.
async fn next_request(
    serving: &mut Option<(Requests, Requests)>,
) -> Option<(bool, stentor_bus::Request)> {
    let Some((snapshots, commands)) = serving else {
        return std::future::pending().await;
    };
    tokio::select! {
        r = snapshots.next() => r.map(|r| (true, r)),
        r = commands.next() => r.map(|r| (false, r)),
    }
}

/// Carries out a forwarded command without holding up the uplink; its answer goes back
/// when the Space's command task has done it.
fn answer_command(space: &dyn Answers, request: stentor_bus::Request) {
    let outcome = match serde_json::from_slice::<Forwarded>(&request.payload) {
        Ok(forwarded) => space.carry_out(forwarded),
        Err(e) => Some(Box::pin(std::future::ready(Outcome {
            status: Some(400),
            refused: Some(format!("unreadable forwarded command: {e}")),
        })) as Answer),
    };
    if let Some(outcome) = outcome {
        tokio::spawn(async move {
            let outcome = outcome.await;
            let json = serde_json::to_vec(&outcome).expect("an outcome serializes");
            let _ = request.respond(json.into()).await;
        });
    }
}
