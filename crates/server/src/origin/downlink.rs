//! A Space served from the cluster's bus (the edge role): its hub is fed with the origin's
//! mix frames and events instead of a mixer; its state is kept as the origin's snapshots
//! tell it (at the start, after each change of state, and every few seconds, so that a lost
//! event costs nothing lasting); its listeners' commands go to the origin, their reactions
//! counted here first, one message per window.

use crate::cluster::Cluster;
use crate::metrics::Metrics;
use crate::origin::uplink::{Forwarded, Outcome};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use stentor_bus::{BusError, Envelope, Snapshot, Subjects, Subscription};
use stentor_hub::Hub;
use stentor_space::{Command, UserId};
use stentor_space::{Lifecycle, Role};
use tokio::time::Instant;
use tracing::Instrument;

/// How long an edge waits for its origin's answer.
const ASK: Duration = Duration::from_secs(2);
/// How often an edge takes a fresh snapshot while nothing changes.
const REFRESH: Duration = Duration::from_secs(5);
/// How soon an edge asks again when no origin answered.
const RETRY: Duration = Duration::from_millis(500);
/// How often timed work runs (closing reaction windows).
const TICK: Duration = Duration::from_millis(100);
/// How long an edge that has lost its bus lets its listeners go without audio before it
/// sends them to another edge, rather than keeping them in silence: longer than a NATS
/// server's restart takes (when every edge is cut at once, moving helps nobody).
const CUT_OFF: Duration = Duration::from_secs(3);

/// A Space's state as its origin tells edges in a snapshot (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpaceState {
    /// Title.
    pub title: String,
    /// Announced start, Unix seconds.
    pub starts_at: Option<i64>,
    /// Lifecycle state.
    pub state: Lifecycle,
    /// Host user id.
    pub host: UserId,
    /// Stage members: (user, role, muted).
    pub stage: Vec<(UserId, Role, bool)>,
    /// Open invitations to speak.
    pub invited: Vec<UserId>,
    /// Who was removed.
    pub removed: Vec<UserId>,
    /// Handles of the stage.
    pub names: BTreeMap<UserId, String>,
    /// Where the origin's clients reach it (where the stage goes).
    pub origin: Option<String>,
    /// The slot (20 ms since the Unix epoch) of the origin's mix frame 0, once it went live:
    /// every node names the Space's LL-HLS parts on this timeline.
    #[serde(default)]
    pub timeline: Option<u64>,
    /// Whether the Space is recorded.
    #[serde(default = "on")]
    pub recording: bool,
}

fn on() -> bool {
    true
}

/// The state of Space `id` from its origin, if one answers (an edge loading a Space: no
/// read of the store).
pub async fn fetch(cluster: &Cluster, id: &str) -> Option<SpaceState> {
    let subjects = Subjects::new(&cluster.name, id).ok()?;
    let bytes = cluster
        .bus
        .request(&subjects.snapshot, Bytes::new(), ASK)
        .await
        .ok()?;
    let snapshot = Snapshot::decode(&bytes).ok()?;
    serde_json::from_slice(&snapshot.state).ok()
}

/// What the downlink asks of the Space it serves.
pub trait Mirror: Send + Sync + 'static {
    /// The server's metrics.
    fn metrics(&self) -> &Metrics;
    /// Takes the state of a snapshot (JSON); `false` if it cannot be read.
    fn mirror(&self, state: &[u8]) -> bool;
    /// Whether the Space has ended (here: the origin said so).
    fn ended(&self) -> bool;
    /// The origin said the Space ended.
    fn end(&self);
    /// An event of the origin for every connection (`to`: the user it concerns).
    fn relay(&self, to: Option<UserId>, json: &str);
    /// An event of the origin for the stage and user `to` only.
    fn relay_notice(&self, to: UserId, json: &str);
    /// The reactions of a window that closed here, if one did.
    fn poll_reactions(&self) -> Option<Vec<(String, u64)>>;
}

/// An edge's way to its Space's origin.
#[derive(Clone)]
pub struct Downlink {
    cluster: Cluster,
    subjects: Subjects,
    metrics: Arc<Metrics>,
}

/// Why a forwarded command did not come back carried out.
pub enum Forward {
    /// The origin refused it, with the HTTP status the refusal has there and its reason.
    Refused(u16, String),
    /// No origin answered in time.
    NoOrigin,
}

impl Downlink {
    /// The way to Space `space`'s origin, or `None` (logged) if its id cannot name a subject.
    pub fn new(cluster: &Cluster, space: &str, metrics: Arc<Metrics>) -> Option<Self> {
        match Subjects::new(&cluster.name, space) {
            Ok(subjects) => Some(Self {
                cluster: cluster.clone(),
                subjects,
                metrics,
            }),
            Err(e) => {
                tracing::error!(error = %e, "this space cannot be served from the bus");
                None
            }
        }
    }

    /// Starts feeding `hub` from the bus for `space`, while it lives.
    pub fn spawn(&self, hub: Hub, space: Weak<dyn Mirror>, id: &str) {
        let span = tracing::info_span!("downlink", space = %id);
        tokio::spawn(self.clone().run(hub, space).instrument(span));
    }

    /// Forwards a listener's command to the origin and waits for its outcome.
    pub async fn forward(&self, actor: UserId, command: Command) -> Result<(), Forward> {
        let json = serde_json::to_vec(&Forwarded::Command { actor, command }).expect("serializes");
        self.metrics.commands_forwarded.inc();
        let answer = self
            .cluster
            .bus
            .request(&self.subjects.commands, json.into(), ASK)
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(error = %e, "no origin for a forwarded command");
                return Err(Forward::NoOrigin);
            }
        };
        match serde_json::from_slice::<Outcome>(&answer) {
            Ok(Outcome { refused: None, .. }) => Ok(()),
            Ok(Outcome {
                refused: Some(reason),
                status,
            }) => Err(Forward::Refused(status.unwrap_or(409), reason)),
            Err(e) => Err(Forward::Refused(502, format!("unreadable answer: {e}"))),
        }
    }

    /// Asks the cluster's origins to take the Space up; whether one did.
    pub async fn adopt(&self) -> bool {
        let subject = stentor_bus::subject::adopt(&self.cluster.name);
        let id = Bytes::from(self.subjects.id.clone());
        match self.cluster.bus.request(&subject, id, ASK).await {
            Ok(answer) => answer.as_ref() == b"ok",
            Err(e) => {
                tracing::debug!(error = %e, "no origin took the space up");
                false
            }
        }
    }

    async fn snapshot(&self) -> Result<Snapshot, BusError> {
        let bytes = self
            .cluster
            .bus
            .request(&self.subjects.snapshot, Bytes::new(), ASK)
            .await?;
        Snapshot::decode(&bytes).map_err(|e| BusError::Io(format!("snapshot: {e}")))
    }

    async fn subscribe(&self, space: &Weak<dyn Mirror>) -> Option<Subscription> {
        loop {
            match self.cluster.bus.subscribe(&self.subjects.media).await {
                Ok(s) => return Some(s),
                Err(e) => tracing::warn!(error = %e, "cannot subscribe to the space's media"),
            }
            tokio::time::sleep(RETRY).await;
            space.upgrade()?;
        }
    }

    /// Subscribes first (so nothing published after the snapshot is missed), then keeps the
    /// hub fed and the state in step until the Space ends or goes from this node.
    async fn run(self, hub: Hub, space: Weak<dyn Mirror>) {
        let Some(mut media) = self.subscribe(&space).await else {
            return;
        };
        let mut feed = Feed {
            hub,
            last: None,
            at: Instant::now(),
            out: 0,
        };
        let mut refresh = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When the media subject last brought anything (or the downlink started).
        let mut heard = Instant::now();
        loop {
            tokio::select! {
                message = media.next() => {
                    let Some(bytes) = message else {
                        match self.subscribe(&space).await {
                            Some(s) => media = s,
                            None => break,
                        }
                        continue;
                    };
                    let Some(live) = space.upgrade() else { break };
                    heard = Instant::now();
                    match feed.take(&bytes, &*live) {
                        Change::None => {}
                        Change::State => refresh = Instant::now(),
                        Change::Ended => {
                            live.end();
                            break;
                        }
                    }
                }
                _ = tick.tick() => {
                    let Some(live) = space.upgrade() else { break };
                    if !self.cluster.bus.is_connected() {
                        if heard.elapsed() >= CUT_OFF {
                            self.send_listeners_away(&feed.hub, live.metrics());
                            return;
                        }
                        continue;
                    }
                    if let Some(counts) = live.poll_reactions() {
                        let json = serde_json::to_vec(&Forwarded::Reactions { counts })
                            .expect("serializes");
                        let _ = self.cluster.bus.publish(&self.subjects.commands, json.into()).await;
                    }
                    if Instant::now() < refresh {
                        continue;
                    }
                    match self.snapshot().await {
                        Ok(snapshot) => {
                            if !live.mirror(&snapshot.state) {
                                tracing::warn!("a snapshot's state could not be read");
                            }
                            for (seq, packet) in &snapshot.tail {
                                feed.frame(*seq, packet, live.metrics());
                            }
                            refresh = Instant::now() + REFRESH;
                            if live.ended() {
                                break;
                            }
                        }
                        Err(e) => {
                            live.metrics().snapshots_failed.inc();
                            tracing::debug!(error = %e, "no snapshot from the origin");
                            refresh = Instant::now() + RETRY;
                        }
                    }
                }
            }
        }
        feed.hub.close();
    }
}

impl Downlink {
    /// Closes the hub's listeners with where to go: another edge of the cluster as last
    /// listed, or, if there is none, when to try again.
    fn send_listeners_away(&self, hub: &Hub, metrics: &Metrics) {
        use stentor_hub::wsframe::close;
        let elsewhere = self
            .cluster
            .known_edges()
            .into_iter()
            .find(|n| n.name != self.cluster.node);
        tracing::warn!(to = ?elsewhere.as_ref().map(|n| &n.url), "cut off from the bus: sending the listeners away");
        metrics.bus_cut_off.inc();
        match elsewhere {
            Some(edge) => hub.close_with(close::REDIRECT, &edge.url),
            None => hub.close_with(
                close::TRY_AGAIN_LATER,
                "this node lost the cluster's bus; retry in 2 s",
            ),
        }
    }
}

/// After this long without a frame, a frame numbered at or before the last one starts a
/// new stream (a standby origin took over and counts from 0) rather than being a repeat.
const SILENCE: Duration = Duration::from_secs(1);
/// Most frames a gap in the origin's numbering moves this edge's numbering on.
const MAX_GAP: u64 = 250;

/// The hub an edge feeds, the origin's newest frame it was given and when, and the edge's
/// own numbering of frames (which goes on through a change of origin, so that every
/// listener's stream stays one stream).
struct Feed {
    hub: Hub,
    last: Option<u64>,
    at: Instant,
    out: u64,
}

/// What a message of the media subject changed.
enum Change {
    /// Nothing of the Space's state.
    None,
    /// Its state: time for a fresh snapshot.
    State,
    /// It ended.
    Ended,
}

#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(borrow)]
    event: &'a str,
    user: Option<UserId>,
}

impl Feed {
    /// Takes one message of the media subject.
    fn take(&mut self, bytes: &Bytes, space: &dyn Mirror) -> Change {
        let metrics = space.metrics();
        match Envelope::decode(bytes) {
            Ok(Envelope::Audio {
                seq,
                sent_micros,
                packet,
            }) => {
                let now = crate::clock::unix_micros();
                metrics
                    .bus_delay_seconds
                    .observe(now.saturating_sub(sent_micros) as f64 / 1e6);
                self.frame(seq, &packet, metrics);
                Change::None
            }
            Ok(Envelope::Event(json)) => {
                let text = std::str::from_utf8(&json).expect("checked by decode");
                let kind = serde_json::from_str::<Kind>(text).ok();
                space.relay(kind.as_ref().and_then(|k| k.user), text);
                match kind.map(|k| k.event) {
                    Some("ended") => Change::Ended,
                    Some("started" | "role_changed" | "mute_changed" | "removed" | "invited") => {
                        Change::State
                    }
                    _ => Change::None,
                }
            }
            Ok(Envelope::Notice { to, json }) => {
                space.relay_notice(to, std::str::from_utf8(&json).expect("checked by decode"));
                Change::None
            }
            Err(e) => {
                metrics.bus_unreadable.inc();
                tracing::warn!(error = %e, "an unreadable message on the media subject");
                Change::None
            }
        }
    }

    /// Publishes the origin's frame `seq` unless it is a repeat (a snapshot's tail
    /// overlapping what came live), counting the frames that never came.
    fn frame(&mut self, seq: u64, packet: &Bytes, metrics: &Metrics) {
        let now = Instant::now();
        // Numbered on by the time that passed (at most `MAX_GAP`), never by a new origin's
        // count: a listener's stream stays in step with the clock.
        let passed = (now.duration_since(self.at).as_millis() as u64 / 20).clamp(1, MAX_GAP);
        self.out = match self.last {
            None => seq,
            Some(last) if seq > last => {
                let gap = seq - last - 1;
                metrics.bus_missed.inc_by(gap.min(1_000));
                self.out + (gap + 1).min(passed)
            }
            Some(_) if now.duration_since(self.at) < SILENCE => return,
            Some(_) => self.out + passed,
        };
        metrics.bus_received.inc();
        self.hub.publish_frame(self.out, packet);
        if self.out.is_multiple_of(50) {
            metrics
                .cadence_ms
                .set(i64::from(self.hub.cadence_frames()) * 20);
        }
        self.last = Some(seq);
        self.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stentor_hub::{HubConfig, Snapshot as Frames, wsframe};

    fn published(hub: &Hub) -> Vec<u64> {
        let mut snap = Frames::default();
        hub.ws.snapshot(&mut snap);
        (snap.start()..snap.head())
            .filter_map(|n| snap.get(n))
            .map(|f| {
                let p = wsframe::payload(f);
                u64::from_be_bytes(p[1..9].try_into().unwrap())
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_edge_numbers_on_through_gaps_repeats_and_a_new_origin_counting_from_zero() {
        let hub = Hub::new(HubConfig::default(), "t", 1);
        let metrics = Metrics::default();
        let mut feed = Feed {
            hub: hub.clone(),
            last: None,
            at: Instant::now(),
            out: 0,
        };
        let step = |ms| tokio::time::advance(Duration::from_millis(ms));
        for seq in [500, 501] {
            feed.frame(seq, &Bytes::from_static(&[0xf8]), &metrics);
            step(20).await;
        }
        // Two frames lost on the way, then a snapshot's tail repeating what came.
        step(40).await;
        feed.frame(504, &Bytes::from_static(&[0xf8]), &metrics);
        feed.frame(503, &Bytes::from_static(&[0xf8]), &metrics);
        feed.frame(504, &Bytes::from_static(&[0xf8]), &metrics);
        // The origin dies; after the lease's time a standby starts from 0.
        step(3_000).await;
        feed.frame(0, &Bytes::from_static(&[0xf8]), &metrics);
        step(20).await;
        feed.frame(1, &Bytes::from_static(&[0xf8]), &metrics);
        assert_eq!(published(&hub), [500, 501, 504, 654, 655]);
        assert_eq!(metrics.bus_missed.get(), 2);
        assert_eq!(metrics.bus_received.get(), 5);
    }
}
