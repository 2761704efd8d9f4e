//! A live Space's uplink to the cluster's bus (the origin role): the mix and the events go on
//! a bounded queue without waiting, and a task of the Space's own publishes them on its media
//! subject while this node holds the Space's lease (taken, renewed and given up here).

use crate::metrics::Metrics;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stentor_bus::{Bus, Envelope, Lease, Leases, Subjects};
use stentor_media::MixOutput;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Envelopes waiting for the bus: 5 s of frames. Past it, the newest are dropped (counted):
/// the mixer never waits for the network.
const QUEUE: usize = 250;

/// What a node of a cluster publishes with, given once by the composition root.
#[derive(Clone)]
pub struct Cluster {
    /// The cluster's name (its subjects are named after it).
    pub name: String,
    /// The bus to the other nodes.
    pub bus: Bus,
    /// The leases of Spaces.
    pub leases: Leases,
    /// How long a lease lasts after its last renewal.
    pub lease: Duration,
}

/// The sending end of a Space's uplink; dropping it ends the task, which gives the lease up.
pub struct Uplink {
    tx: mpsc::Sender<Envelope>,
    metrics: Arc<Metrics>,
}

impl Uplink {
    /// Starts the uplink of Space `space`, or `None` (logged) if its id cannot name a subject.
    pub fn spawn(cluster: &Cluster, space: &str, metrics: Arc<Metrics>) -> Option<Self> {
        let subjects = match Subjects::new(&cluster.name, space) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "this space cannot be published");
                return None;
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let span = tracing::info_span!("uplink", space = %space);
        tokio::spawn(
            run(
                cluster.clone(),
                space.to_owned(),
                subjects,
                rx,
                metrics.clone(),
            )
            .instrument(span),
        );
        Some(Self { tx, metrics })
    }

    /// A frame of the mix, for the edges.
    pub fn frame(&self, mix: &MixOutput) {
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

    fn send(&self, envelope: Envelope) {
        if self.tx.try_send(envelope).is_err() {
            self.metrics.bus_queue_full.inc();
        }
    }
}

/// Takes the lease, publishes while holding it, renews it in time, takes it again if it was
/// lost (and free again), and gives it up when the Space goes from this node.
async fn run(
    cluster: Cluster,
    space: String,
    subjects: Subjects,
    mut rx: mpsc::Receiver<Envelope>,
    metrics: Arc<Metrics>,
) {
    let retry = cluster.lease / 3;
    let mut lease: Option<Lease> = None;
    let mut next_try = tokio::time::Instant::now();
    loop {
        let due = lease
            .as_ref()
            .map_or(next_try, |l| l.clock.renew_at().into());
        tokio::select! {
            envelope = rx.recv() => {
                let Some(envelope) = envelope else { break };
                match &lease {
                    Some(l) if l.clock.holds(Instant::now()) => {
                        match cluster.bus.publish(&subjects.media, envelope.encode()).await {
                            Ok(()) => {
                                metrics.bus_published.inc();
                            }
                            Err(e) => tracing::warn!(error = %e, "could not publish"),
                        }
                    }
                    // Not (or no longer surely) the origin: publishing could make two.
                    _ => {
                        metrics.bus_not_owner.inc();
                    }
                }
            }
            () = tokio::time::sleep_until(due) => {
                match lease.as_mut() {
                    Some(held) => match cluster.leases.renew(held).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("lost the lease of this space");
                            metrics.lease_changes.inc();
                            lease = None;
                            next_try = tokio::time::Instant::now() + retry;
                        }
                        // Try again soon; the clock stops publishing if it stays unreachable.
                        Err(e) => tracing::warn!(error = %e, "could not renew the lease"),
                    },
                    None => {
                        match cluster.leases.acquire(&space).await {
                            Ok(Some(taken)) => {
                                tracing::info!("this node is the space's origin");
                                metrics.lease_changes.inc();
                                lease = Some(taken);
                            }
                            Ok(None) => tracing::debug!("another node holds the lease"),
                            Err(e) => tracing::warn!(error = %e, "could not take the lease"),
                        }
                        next_try = tokio::time::Instant::now() + retry;
                    }
                }
            }
        }
    }
    if let Some(held) = lease {
        if let Err(e) = cluster.leases.release(held).await {
            tracing::warn!(error = %e, "could not give the lease up");
        }
        metrics.lease_changes.inc();
    }
}
