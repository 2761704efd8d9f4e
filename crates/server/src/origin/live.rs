//! A Space at runtime: its state machine behind a lock, its mixer task (or, on an edge, its
//! downlink from the origin), its hub, and the channels that carry events and forwarded
//! packets to connections.

use crate::cluster::Cluster;
use crate::metrics::Metrics;
use crate::origin::downlink::{Downlink, Forward, Mirror, SpaceState};
use crate::origin::mixer::{self, MixerInput};
use crate::origin::taping::{Taping, Told};
use crate::origin::uplink::{Answer, Answers, Forwarded, Outcome, Uplink};
use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
use stentor_gate::lobby::{Lobby, RateWindow, Status};
use stentor_hub::{Hub, HubConfig};
use stentor_media::MixerConfig;
use stentor_space::{Command, Event, Lifecycle, Limits, Refusal, Role, Space, UserId};
use stentor_store::{SpaceRecord, Store};
use tokio::sync::{broadcast, mpsc, oneshot};
use tungstenite::Utf8Bytes;

/// First byte of a WebSocket binary message carrying a speaker's packet (client to server).
pub const WS_PUBLISH: u8 = 0x01;
/// First byte of a WebSocket binary message carrying another speaker's packet, forwarded.
pub const WS_FORWARD: u8 = 0x03;

/// Why a speaker's packet was refused; the connection that sent it is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The sender is not a speaker of this Space.
    #[error("only speakers of a live space may publish")]
    NotASpeaker,
    /// The packet is not a valid 20 ms Opus packet.
    #[error("invalid opus packet: {0}")]
    Invalid(#[from] stentor_media::OpusError),
}

/// A JSON event for the connections of a Space, with the user it concerns, if any.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The user whose state changed (role, mute, removal), so their connection can react.
    pub to: Option<UserId>,
    /// Who is told.
    pub audience: Audience,
    /// The JSON text.
    pub text: Utf8Bytes,
}

/// Who an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every connection: it also rides in the hub's ring, beside the audio.
    Everyone,
    /// The stage (who moderates) and the user it concerns; never in the ring. Raised and
    /// lowered hands: what a crowd can change, only those who act on it see.
    StageAndSubject,
}

/// Why a command was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The Space refused it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Too many commands are waiting in this Space; try again.
    #[error("the space is busy; try again in a moment")]
    Busy,
    /// The change could not be stored; it is in force on this node until a restart.
    #[error("the change could not be stored: {0}")]
    Store(String),
    /// The host has as many live Spaces as one account may.
    #[error("you host {0} live spaces already: end one first")]
    LiveQuota(u64),
    /// The Space's origin refused it (this node is an edge): the HTTP status it has there.
    #[error("{reason}")]
    Remote {
        /// The status on the origin.
        status: u16,
        /// Why.
        reason: String,
    },
    /// No origin answered for the Space (this node is an edge); try again.
    #[error("the space's origin does not answer; try again in a moment")]
    NoOrigin,
    /// The host and the person who would go on stage block one another.
    #[error("the host and this account block one another: no speaking in the host's spaces")]
    Blocked,
}

impl From<CommandError> for crate::error::ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Refused(r) => Self::Refused(r),
            CommandError::Busy => Self::Overloaded {
                reason: "commands_busy",
                retry_after: 1,
            },
            CommandError::Store(detail) => Self::Internal(detail),
            quota @ CommandError::LiveQuota(_) => Self::Conflict(quota.to_string()),
            blocked @ CommandError::Blocked => Self::Forbidden(blocked.to_string()),
            CommandError::Remote { status, reason } => match status {
                400 => Self::BadRequest(reason),
                403 => Self::Forbidden(reason),
                410 => Self::Gone,
                503 => Self::Overloaded {
                    reason: "commands_busy",
                    retry_after: 1,
                },
                _ if (400..500).contains(&status) => Self::Conflict(reason),
                _ => Self::Internal(reason),
            },
            CommandError::NoOrigin => Self::Overloaded {
                reason: "no_origin",
                retry_after: 1,
            },
        }
    }
}

/// Where the outcome of a submitted command goes.
#[derive(Debug)]
pub enum Reply {
    /// To a caller that waits for it (the stage, the HTTP API).
    Wait(oneshot::Sender<Result<(), CommandError>>),
    /// A refusal as a `refused` event to a listener's writer, bounded: when it is full, the
    /// refusal is dropped (the listener sends faster than it reads).
    Tell(mpsc::Sender<(UserId, Bytes)>),
    /// Nowhere (the server acting for someone who left).
    Drop,
}

/// Commands from the stage waiting per Space.
const STAGE_QUEUE: usize = 256;
/// Commands from the audience waiting per Space: room for a crowd's burst of reactions (each
/// connection may send 30 at once); past it, a command is refused as busy.
const AUDIENCE_QUEUE: usize = 4096;

struct Submitted {
    actor: UserId,
    command: Command,
    reply: Reply,
    /// When it was queued.
    at: Instant,
}

/// The JSON event that tells a client its command was refused: one format for everyone.
pub fn refused_event(reason: &dyn std::fmt::Display) -> String {
    serde_json::json!({"event": "refused", "reason": reason.to_string()}).to_string()
}

/// One Space at runtime.
pub struct LiveSpace {
    /// Its recording, where this node records it.
    taping: Taping,
    /// Public id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Announced start, Unix seconds.
    pub starts_at: Option<i64>,
    /// Fan-out of the mix.
    pub hub: Hub,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    domain: Mutex<Space>,
    events: broadcast::Sender<Notice>,
    forward: broadcast::Sender<(UserId, Bytes)>,
    /// The mixer (`None` on an edge, whose hub the downlink feeds).
    mixer: Option<mpsc::Sender<MixerInput>>,
    /// The one command path: the stage's queue is served before the audience's.
    stage_commands: mpsc::Sender<Submitted>,
    audience_commands: mpsc::Sender<Submitted>,
    store: Store,
    /// Handles of the users this Space has seen, for display.
    names: Mutex<HashMap<UserId, String>>,
    /// Status requests per second: the waiting crowd.
    asks: Mutex<RateWindow<64>>,
    /// Live Spaces one host may have at once.
    live_per_host: u64,
    /// The full connection of each person on stage: a newer one takes the older's place.
    claims: Mutex<HashMap<UserId, Arc<tokio::sync::Notify>>>,
    /// On an origin, where the mix and the events go for the edges.
    uplink: Option<Uplink>,
    /// On an edge, the way to the origin.
    downlink: Option<Downlink>,
    /// Where clients reach this node, in a cluster (told to edges in snapshots).
    url: Option<String>,
    /// Listeners of this Space on the cluster's edges (an origin learns it from the node
    /// list).
    remote_listeners: std::sync::atomic::AtomicUsize,
    /// Platform moderators listening unseen here (taken off the count).
    unseen: Arc<std::sync::atomic::AtomicUsize>,
}

/// A platform moderator's connection listening unseen: once active (when the connection
/// joins the audience, so that the count is never short in between), off the Space's count of
/// listeners while it is held.
pub struct Unseen {
    count: Arc<std::sync::atomic::AtomicUsize>,
    active: bool,
}

impl Unseen {
    /// Takes the connection off the count (now that it is on it); once.
    pub fn activate(&mut self) {
        if !self.active {
            self.active = true;
            self.count
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Drop for Unseen {
    fn drop(&mut self) {
        if self.active {
            self.count
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Summary of a Space for the API.
#[derive(Debug, Clone, Serialize)]
pub struct SpaceView {
    /// Public id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Lifecycle state.
    pub state: Lifecycle,
    /// Host user id.
    pub host: UserId,
    /// Announced start, Unix seconds.
    pub starts_at: Option<i64>,
    /// Handles of the host, the stage and raised hands, where known.
    pub names: BTreeMap<UserId, String>,
    /// Stage members: (user, role, muted).
    pub stage: Vec<(UserId, Role, bool)>,
    /// Raised hands.
    pub hands: Vec<UserId>,
    /// Speakers the platform's moderators hold muted.
    pub held: Vec<UserId>,
    /// Listeners connected to this node.
    pub listeners: usize,
    /// Whether the Space is recorded.
    pub recording: bool,
}

/// What every Space of a node is made with.
#[derive(Clone)]
pub struct Making {
    /// Durable state.
    pub store: Store,
    /// The mixer's settings.
    pub mixer: MixerConfig,
    /// The hub's settings.
    pub hub: HubConfig,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// What one account may do with Spaces.
    pub rules: crate::config::SpaceRules,
    /// The node's cluster, if it is an origin or an edge.
    pub cluster: Option<Cluster>,
    /// The recording writer, on a node that records (not an edge).
    pub recorder: Option<stentor_record::Recorder>,
}

impl LiveSpace {
    /// Starts the runtime of a Space: spawns its mixer task (which runs while it is live).
    pub fn spawn(
        record: SpaceRecord,
        names: HashMap<UserId, String>,
        domain: Space,
        making: &Making,
    ) -> Arc<Self> {
        let Making {
            store,
            mixer: mixer_config,
            hub: hub_config,
            metrics,
            rules,
            cluster,
            recorder,
        } = making.clone();
        let SpaceRecord {
            id,
            title,
            starts_at,
            ..
        } = record;
        let serial = id
            .bytes()
            .fold(0x5354_454e_u32, |h, b| h.rotate_left(5) ^ u32::from(b));
        let hub = Hub::new(hub_config, &title, serial);
        let edge = cluster.as_ref().filter(|c| c.is_edge());
        let downlink = edge.and_then(|c| Downlink::new(c, &id, metrics.clone()));
        let (mixer, rx) = match edge {
            Some(_) => (None, None),
            None => {
                let (tx, rx) = mpsc::channel(1024);
                (Some(tx), Some(rx))
            }
        };
        let (stage_commands, stage_rx) = mpsc::channel(STAGE_QUEUE);
        let (audience_commands, audience_rx) = mpsc::channel(AUDIENCE_QUEUE);
        let speakers: Vec<_> = domain.stage().map(|(user, m)| (user, m.muted)).collect();
        let live = domain.lifecycle() == Lifecycle::Live;
        let (uplink, uplink_task) = match cluster.as_ref().filter(|c| !c.is_edge()) {
            Some(c) => Uplink::new(c, &id, metrics.clone()).unzip(),
            None => (None, None),
        };
        let url = cluster.as_ref().map(|c| c.url.clone());
        let taping = Taping::new(recorder.filter(|_| edge.is_none()), &id, domain.recording());
        let space = Arc::new(Self {
            taping,
            id,
            title,
            starts_at,
            names: Mutex::new(names),
            asks: Mutex::new(RateWindow::default()),
            live_per_host: rules.live_per_host,
            claims: Mutex::new(HashMap::new()),
            uplink,
            downlink,
            url,
            remote_listeners: Default::default(),
            unseen: Default::default(),
            hub: hub.clone(),
            metrics,
            domain: Mutex::new(domain),
            events: broadcast::channel(1024).0,
            forward: broadcast::channel(256).0,
            mixer,
            stage_commands,
            audience_commands,
            store,
        });
        if let Some(task) = uplink_task {
            task.spawn(Arc::downgrade(&space) as std::sync::Weak<dyn Answers>);
        }
        match (rx, &space.downlink) {
            (Some(rx), _) => {
                let hooks: std::sync::Weak<dyn mixer::Hooks> = Arc::downgrade(&space) as _;
                mixer::spawn(&space.id, hooks, mixer_config, rx, hub);
            }
            (None, Some(downlink)) => {
                let mirror: std::sync::Weak<dyn Mirror> = Arc::downgrade(&space) as _;
                downlink.spawn(hub, mirror, &space.id);
            }
            // An edge that cannot name the Space on the bus has nothing to serve.
            (None, None) => hub.close(),
        }
        tokio::spawn(run_commands(Arc::downgrade(&space), stage_rx, audience_rx));
        for (user, muted) in speakers {
            space.to_mixer(MixerInput::AddSpeaker(user));
            space.to_mixer(MixerInput::Mute(user, muted));
        }
        if live {
            space.to_mixer(MixerInput::Start);
        }
        space
    }

    /// Queues a command; it is carried out in order with every other of this Space, and its
    /// outcome goes to `reply`. `stage` commands are served before the audience's.
    pub fn submit(
        &self,
        actor: UserId,
        command: Command,
        stage: bool,
        reply: Reply,
    ) -> Result<(), CommandError> {
        let queue = if stage {
            &self.stage_commands
        } else {
            &self.audience_commands
        };
        let submitted = Submitted {
            actor,
            command,
            reply,
            at: Instant::now(),
        };
        queue.try_send(submitted).map_err(|_| {
            self.metrics.reject("commands_busy");
            CommandError::Busy
        })
    }

    /// Carries out a command from the stage or the HTTP API and waits for the outcome.
    pub async fn run_command(&self, actor: UserId, command: Command) -> Result<(), CommandError> {
        let (tx, rx) = oneshot::channel();
        self.submit(actor, command, true, Reply::Wait(tx))?;
        rx.await.unwrap_or(Err(CommandError::Busy))
    }

    /// Applies a participant's command, tells everyone what changed, and returns once the
    /// change is stored. Only the command task calls it, so commands apply one at a time.
    async fn command(&self, actor: UserId, command: Command) -> Result<(), CommandError> {
        if let Some(downlink) = &self.downlink {
            return self.forward(downlink, actor, command).await;
        }
        if command == Command::Start {
            self.check_live_quota().await?;
        }
        // Nobody the host blocks, or who blocks the host, goes on its stage.
        let to_stage = match &command {
            Command::RequestToSpeak | Command::AcceptInvite => Some(actor),
            Command::Invite { user } | Command::Approve { user } | Command::Promote { user } => {
                Some(*user)
            }
            _ => None,
        };
        if let Some(user) = to_stage {
            let host = self.with_domain(|d| d.host());
            let blocked = self.store.blocked_between(host, user).await;
            if blocked.map_err(|e| CommandError::Store(e.to_string()))? {
                return Err(CommandError::Blocked);
            }
        }
        let now = Instant::now();
        let events: Vec<Event> = {
            let mut domain = self.domain.lock();
            domain.handle(actor, command, now)?;
            std::iter::from_fn(|| domain.poll_event(now)).collect()
        };
        for event in &events {
            self.apply(event);
        }
        for event in &events {
            if let Err(e) = self.persist(event).await {
                tracing::error!(space = %self.id, error = %e, "could not store a space change");
                return Err(CommandError::Store(e.to_string()));
            }
        }
        Ok(())
    }

    /// On an edge: counts a reaction here (sent on with the window's others), or has the
    /// origin carry the command out.
    async fn forward(
        &self,
        downlink: &Downlink,
        actor: UserId,
        command: Command,
    ) -> Result<(), CommandError> {
        if let Command::React { .. } = command {
            return Ok(self.domain.lock().handle(actor, command, Instant::now())?);
        }
        let mut outcome = downlink.forward(actor, command.clone()).await;
        if let Err(Forward::NoOrigin) = outcome {
            // Nobody mixes it yet (a Space made on an edge, or its origin gone): have an
            // origin take it up, and ask once more.
            if downlink.adopt().await {
                outcome = downlink.forward(actor, command).await;
            }
        }
        outcome.map_err(|e| match e {
            Forward::Refused(status, reason) => CommandError::Remote { status, reason },
            Forward::NoOrigin => CommandError::NoOrigin,
        })
    }

    /// Refuses to start a Space whose host hosts as many live ones as one account may.
    async fn check_live_quota(&self) -> Result<(), CommandError> {
        let host = self.with_domain(|d| d.host());
        let live = self
            .store
            .count_hosted(host, "live")
            .await
            .map_err(|e| CommandError::Store(e.to_string()))?;
        if live >= self.live_per_host {
            return Err(CommandError::LiveQuota(live));
        }
        Ok(())
    }

    /// Sends timed events (closed reaction windows) that are due.
    pub fn poll_timed(&self) {
        let now = Instant::now();
        let events: Vec<Event> = {
            let mut domain = self.domain.lock();
            std::iter::from_fn(|| domain.poll_event(now)).collect()
        };
        for event in &events {
            self.apply(event);
        }
    }

    /// Carries an event to every connection, then to the mixer.
    fn apply(&self, event: &Event) {
        let to = match event {
            Event::RoleChanged { user, .. }
            | Event::MuteChanged { user, .. }
            | Event::Removed { user }
            | Event::HandRaised { user }
            | Event::HandLowered { user }
            | Event::Held { user, .. }
            | Event::Readmitted { user }
            | Event::Invited { user, .. } => Some(*user),
            _ => None,
        };
        let audience = match event {
            Event::HandRaised { .. } | Event::HandLowered { .. } => Audience::StageAndSubject,
            _ => Audience::Everyone,
        };
        self.notify(to, audience, event);
        match event {
            Event::Started => self.to_mixer(MixerInput::Start),
            Event::Ended => {
                self.to_mixer(MixerInput::Stop);
                self.taping.stop();
            }
            Event::RecordingChanged { on } => self.taping.set_on(*on),
            Event::RoleChanged { user, role } if role.is_speaker() => {
                self.to_mixer(MixerInput::AddSpeaker(*user));
            }
            Event::RoleChanged { user, .. } | Event::Removed { user } => {
                self.to_mixer(MixerInput::RemoveSpeaker(*user));
            }
            Event::MuteChanged { user, muted, .. } => {
                self.to_mixer(MixerInput::Mute(*user, *muted));
            }
            _ => {}
        }
    }

    /// Stores what an event changed.
    async fn persist(&self, event: &Event) -> Result<(), stentor_store::StoreError> {
        let (store, id, now) = (&self.store, &self.id, crate::clock::unix_now() as i64);
        match event {
            Event::Started => store.set_space_state(id, "live", now).await,
            Event::Ended => store.set_space_state(id, "ended", now).await,
            Event::RoleChanged { user, role } => {
                let stored = role.is_speaker().then(|| role_name(*role));
                store.set_role(id, *user, stored).await
            }
            Event::Removed { user } => store.remove_participant(id, *user).await,
            Event::MuteChanged { user, muted, .. } => store.set_muted(id, *user, *muted).await,
            Event::Invited { user, .. } => store.set_invited(id, *user, true).await,
            Event::RecordingChanged { on } => store.set_recording(id, *on).await,
            Event::Held { user, held } => store.set_held(id, *user, *held).await,
            Event::Readmitted { user } => store.readmit(id, *user).await,
            _ => Ok(()),
        }
    }

    /// Sends a JSON event to every connection of this Space.
    pub fn broadcast<T: Serialize>(&self, event: &T) {
        self.notify(None, Audience::Everyone, event);
    }

    fn notify<T: Serialize>(&self, to: Option<UserId>, audience: Audience, event: &T) {
        let name = to.and_then(|u| self.names.lock().get(&u).cloned());
        let text = match name {
            // Events about a user carry their handle, so no client needs to look it up.
            Some(name) => {
                let mut value = serde_json::to_value(event).expect("events serialize");
                value["name"] = name.into();
                value.to_string()
            }
            None => serde_json::to_string(event).expect("events serialize"),
        };
        self.notify_text(to, audience, text);
    }

    fn notify_text(&self, to: Option<UserId>, audience: Audience, text: String) {
        if audience == Audience::Everyone {
            if !self.hub.publish_event(&text) {
                // The ring's room for events is full: audio keeps its place, listeners miss it.
                self.metrics.events_refused.inc();
            }
            if let Some(uplink) = &self.uplink {
                uplink.event(&text);
            }
        } else if let (Some(uplink), Some(to)) = (&self.uplink, to) {
            uplink.notice(to, &text);
        }
        let _ = self.events.send(Notice {
            to,
            audience,
            text: Utf8Bytes::from(text),
        });
    }

    /// Takes one packet from a speaker: checks it, forwards it to the other speakers and
    /// queues it for the mix. Packets from a muted speaker are dropped without error.
    pub fn ingest(
        &self,
        user: UserId,
        seq: u32,
        packet: Bytes,
        arrived: Instant,
    ) -> Result<(), IngestError> {
        let (speaker, live, publishing) = {
            let domain = self.domain.lock();
            (
                domain.role_of(user).is_speaker(),
                domain.lifecycle() == Lifecycle::Live,
                domain.may_publish(user),
            )
        };
        if !speaker {
            return Err(IngestError::NotASpeaker);
        }
        stentor_media::opus::validate_packet(&packet)?;
        // A speaker's packets still in flight when the Space ends (or sent before it starts)
        // are dropped, not held against the speaker.
        if !live || !publishing {
            return Ok(());
        }
        self.metrics.packets_in.inc();
        if self.forward.receiver_count() > 0 {
            let mut frame = BytesMut::with_capacity(13 + packet.len());
            frame.put_u8(WS_FORWARD);
            frame.put_u64(user);
            frame.put_u32(seq);
            frame.put_slice(&packet);
            let _ = self.forward.send((user, frame.freeze()));
        }
        let input = MixerInput::Packet {
            user,
            seq,
            packet,
            arrived,
        };
        let Some(mixer) = &self.mixer else {
            return Ok(());
        };
        if mixer.try_send(input).is_err() {
            self.metrics.packets_dropped.inc();
        }
        Ok(())
    }

    /// Claims the full connection of `user`: an older one is told to go (it is notified),
    /// and the returned notice tells this one when a newer one comes. A ticket thus serves
    /// one connection at a time, and a reconnecting client is never refused for the
    /// connection it lost.
    pub fn claim_stage(&self, user: UserId) -> Arc<tokio::sync::Notify> {
        let mine = Arc::new(tokio::sync::Notify::new());
        if let Some(older) = self.claims.lock().insert(user, mine.clone()) {
            older.notify_one();
        }
        mine
    }

    /// Gives up a claim when its connection ends (unless a newer one holds it now).
    pub fn release_stage(&self, user: UserId, claim: &Arc<tokio::sync::Notify>) {
        let mut claims = self.claims.lock();
        if claims.get(&user).is_some_and(|c| Arc::ptr_eq(c, claim)) {
            claims.remove(&user);
        }
    }

    /// A receiver of this Space's JSON events.
    pub fn events(&self) -> broadcast::Receiver<Notice> {
        self.events.subscribe()
    }

    /// A receiver of forwarded speaker packets (user, framed message).
    pub fn forwarded(&self) -> broadcast::Receiver<(UserId, Bytes)> {
        self.forward.subscribe()
    }

    /// Runs `f` on the Space state machine.
    pub fn with_domain<R>(&self, f: impl FnOnce(&Space) -> R) -> R {
        f(&self.domain.lock())
    }

    /// A summary for the API.
    pub fn view(&self) -> SpaceView {
        let domain = self.domain.lock();
        let stage: Vec<_> = domain.stage().map(|(u, m)| (u, m.role, m.muted)).collect();
        let hands: Vec<_> = domain.hands().collect();
        let names = self.names.lock();
        let names = stage
            .iter()
            .map(|s| s.0)
            .chain(hands.iter().copied())
            .filter_map(|u| Some((u, names.get(&u)?.clone())))
            .collect();
        SpaceView {
            id: self.id.clone(),
            title: self.title.clone(),
            state: domain.lifecycle(),
            host: domain.host(),
            starts_at: self.starts_at,
            names,
            stage,
            hands,
            held: domain.held().collect(),
            listeners: self.listeners(),
            recording: domain.recording(),
        }
    }

    /// Listeners of this Space: here, and on the cluster's edges as far as this origin knows.
    pub fn listeners(&self) -> usize {
        let unseen = self.unseen.load(std::sync::atomic::Ordering::Relaxed);
        (self.hub.listeners()
            + self
                .remote_listeners
                .load(std::sync::atomic::Ordering::Relaxed))
        .saturating_sub(unseen)
    }

    /// A mark for a moderator's connection listening unseen, to activate when it joins the
    /// audience; it counts for as long as it is held.
    pub fn unseen(&self) -> Unseen {
        Unseen {
            count: self.unseen.clone(),
            active: false,
        }
    }

    /// Listeners of this Space on the cluster's edges (the node list's sum, on an origin).
    pub fn set_remote_listeners(&self, n: usize) {
        self.remote_listeners
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether this node mixes the Space and sends its events: alone, or as the origin that
    /// holds its lease (not an edge).
    pub fn mixes_here(&self) -> bool {
        !self.is_edge() && self.uplink.as_ref().is_none_or(Uplink::held)
    }

    /// Sends a JSON text, as it is, to every connection of this Space.
    pub fn broadcast_text(&self, json: &str) {
        self.notify_text(None, Audience::Everyone, json.to_owned());
    }

    /// Whether this node serves the Space from an origin elsewhere.
    pub fn is_edge(&self) -> bool {
        self.downlink.is_some()
    }

    /// On an origin: gives the Space's lease up (a clean stop).
    pub fn let_go(&self) {
        if let Some(uplink) = &self.uplink {
            uplink.let_go();
        }
    }

    /// On an origin: whether this node holds the Space's lease now.
    pub fn owned(&self) -> bool {
        self.uplink.as_ref().is_some_and(Uplink::held)
    }

    /// On an origin: whether this node holds the Space's lease, waiting up to `time` for it.
    pub async fn owned_within(&self, time: std::time::Duration) -> bool {
        match &self.uplink {
            Some(uplink) => uplink.held_within(time).await,
            None => false,
        }
    }

    /// What a client waiting for this Space is told at `now` (Unix seconds); counts the ask.
    pub fn status(&self, lobby: &Lobby, now: i64) -> Status {
        let state = self.with_domain(|d| d.lifecycle());
        let listeners = self.hub.listeners();
        lobby.status(state, self.starts_at, listeners, &mut self.asks.lock(), now)
    }

    /// How many wait in this Space's waiting room now, as estimated from how often they ask
    /// (without counting as an ask).
    pub fn waiting(&self, now: i64) -> u64 {
        let poll = stentor_gate::lobby::poll_secs(stentor_space::Lifecycle::Live, None, now);
        stentor_gate::lobby::waiting(&mut self.asks.lock(), poll, now)
    }

    /// Remembers a user's handle, so events and views about them can name them.
    pub fn remember_name(&self, user: UserId, handle: &str) {
        let mut names = self.names.lock();
        if names.get(&user).is_none_or(|h| h != handle) {
            names.insert(user, handle.to_owned());
        }
    }

    fn to_mixer(&self, input: MixerInput) {
        let Some(mixer) = &self.mixer else { return };
        // Control inputs must not be lost: wait for room off the caller's thread if full.
        if let Err(mpsc::error::TrySendError::Full(input)) = mixer.try_send(input) {
            let mixer = mixer.clone();
            tokio::spawn(async move {
                let _ = mixer.send(input).await;
            });
        }
    }
}

/// The stored name of a role.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Listener => "listener",
        Role::Speaker => "speaker",
        Role::CoHost => "co_host",
        Role::Host => "host",
    }
}

/// A role from its stored name.
pub fn role_from_name(name: &str) -> Option<Role> {
    [Role::Listener, Role::Speaker, Role::CoHost, Role::Host]
        .into_iter()
        .find(|r| role_name(*r) == name)
}

/// The command task of a Space: one command at a time, the stage's first, until the Space is
/// dropped.
async fn run_commands(
    space: std::sync::Weak<LiveSpace>,
    mut stage: mpsc::Receiver<Submitted>,
    mut audience: mpsc::Receiver<Submitted>,
) {
    loop {
        let next = tokio::select! {
            biased;
            Some(s) = stage.recv() => s,
            Some(s) = audience.recv() => s,
            else => return,
        };
        let Some(live) = space.upgrade() else { return };
        let outcome = live.command(next.actor, next.command).await;
        live.metrics
            .command_seconds
            .observe(next.at.elapsed().as_secs_f64());
        match next.reply {
            Reply::Wait(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Tell(tx) => {
                if let Err(e) = outcome {
                    let frame = stentor_hub::wsframe::text(&refused_event(&e));
                    let _ = tx.try_send((next.actor, frame));
                }
            }
            Reply::Drop => {}
        }
    }
}

impl mixer::Hooks for LiveSpace {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn listeners(&self) -> usize {
        LiveSpace::listeners(self)
    }

    fn broadcast_json(&self, json: &str) {
        self.broadcast_text(json);
    }

    fn poll_timed(&self) {
        LiveSpace::poll_timed(self);
    }

    fn mixed(&self, mix: &stentor_media::MixOutput) {
        if let Some(uplink) = &self.uplink {
            uplink.frame(mix);
        }
        if let Some(Told::Failed(reason)) = self.taping.frame(&self.title, mix) {
            self.metrics.recordings_failed.inc();
            self.broadcast(&serde_json::json!({"event": "recording_failed", "reason": reason}));
        }
    }

    fn levels(&self, seq: u64, levels: &[(UserId, f32)]) {
        self.taping.levels(seq, levels);
    }
}

impl Answers for LiveSpace {
    fn state_json(&self) -> String {
        let state = {
            let domain = self.domain.lock();
            let names = self.names.lock();
            let stage: Vec<_> = domain.stage().map(|(u, m)| (u, m.role, m.muted)).collect();
            SpaceState {
                title: self.title.clone(),
                starts_at: self.starts_at,
                state: domain.lifecycle(),
                host: domain.host(),
                names: stage
                    .iter()
                    .filter_map(|s| Some((s.0, names.get(&s.0)?.clone())))
                    .collect(),
                stage,
                invited: domain.invited().collect(),
                removed: domain.removed().collect(),
                origin: self.url.clone(),
                timeline: self.hub.hls.base(),
                recording: domain.recording(),
            }
        };
        serde_json::to_string(&state).expect("a state serializes")
    }

    fn carry_out(&self, forwarded: Forwarded) -> Option<Answer> {
        match forwarded {
            Forwarded::Reactions { counts } => {
                let mut domain = self.domain.lock();
                domain.count_reactions(&counts, Instant::now());
                None
            }
            Forwarded::Command { actor, command } => {
                let (tx, rx) = oneshot::channel();
                let queued = self.submit(actor, command, false, Reply::Wait(tx));
                Some(Box::pin(async move {
                    let outcome = match queued {
                        Ok(()) => rx.await.unwrap_or(Err(CommandError::Busy)),
                        Err(e) => Err(e),
                    };
                    match outcome {
                        Ok(()) => Outcome::default(),
                        Err(e) => {
                            let reason = e.to_string();
                            let api = crate::error::ApiError::from(e);
                            Outcome {
                                status: Some(axum::http::StatusCode::from(&api).as_u16()),
                                refused: Some(reason),
                            }
                        }
                    }
                }))
            }
        }
    }
}

impl Mirror for LiveSpace {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn mirror(&self, state: &[u8]) -> bool {
        let Ok(state) = serde_json::from_slice::<SpaceState>(state) else {
            return false;
        };
        let newer = Space::restore(
            state.host,
            Limits::default(),
            state.state,
            state.stage,
            state.invited,
            state.removed,
        );
        let mut newer = newer;
        newer.set_recording(state.recording);
        self.domain.lock().resync(newer);
        if let Some(base) = state.timeline {
            self.hub.hls.set_base(base);
        }
        let mut names = self.names.lock();
        names.extend(state.names);
        true
    }

    fn ended(&self) -> bool {
        self.with_domain(|d| d.lifecycle()) == Lifecycle::Ended
    }

    fn end(&self) {
        let mut domain = self.domain.lock();
        let stage: Vec<_> = domain.stage().map(|(u, m)| (u, m.role, m.muted)).collect();
        let ended = Space::restore(
            domain.host(),
            domain.limits(),
            Lifecycle::Ended,
            stage,
            domain.invited().collect::<Vec<_>>(),
            domain.removed().collect::<Vec<_>>(),
        );
        domain.resync(ended);
    }

    fn relay(&self, to: Option<UserId>, json: &str) {
        self.notify_text(to, Audience::Everyone, json.to_owned());
    }

    fn relay_notice(&self, to: UserId, json: &str) {
        self.notify_text(Some(to), Audience::StageAndSubject, json.to_owned());
    }

    fn poll_reactions(&self) -> Option<Vec<(String, u64)>> {
        let mut domain = self.domain.lock();
        let now = Instant::now();
        let mut counts = None;
        while let Some(event) = domain.poll_event(now) {
            if let Event::Reactions { counts: c } = event {
                counts = Some(c);
            }
        }
        counts.filter(|c| !c.is_empty())
    }
}
