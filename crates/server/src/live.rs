//! A Space at runtime: its state machine behind a lock, its mixer task, its hub, and the
//! channels that carry events and forwarded packets to connections.

use crate::fanout::{Fanout, Transport};
use crate::lobby::{Lobby, RateWindow, Status};
use crate::metrics::Metrics;
use crate::mixer_task::{self, MixerInput};
use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
use stentor_hub::{Hub, HubConfig};
use stentor_media::MixerConfig;
use stentor_space::{Command, Event, Lifecycle, Refusal, Role, Space, UserId};
use stentor_store::{SpaceRecord, Store};
use tokio::sync::{broadcast, mpsc};
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
    /// The JSON text.
    pub text: Utf8Bytes,
}

/// One Space at runtime.
pub struct LiveSpace {
    /// Public id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Announced start, Unix seconds.
    pub starts_at: Option<i64>,
    /// Fan-out of the mix.
    pub hub: Hub,
    /// Writers of the WebSocket listeners.
    pub ws_fanout: Fanout,
    /// Writers of the Ogg listeners.
    pub ogg_fanout: Fanout,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    domain: Mutex<Space>,
    events: broadcast::Sender<Notice>,
    forward: broadcast::Sender<(UserId, Bytes)>,
    mixer: mpsc::Sender<MixerInput>,
    store: Store,
    /// Handles of the users this Space has seen, for display.
    names: Mutex<HashMap<UserId, String>>,
    /// Status requests per second: the waiting crowd.
    asks: Mutex<RateWindow<64>>,
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
    /// Listeners connected to this node.
    pub listeners: usize,
}

impl LiveSpace {
    /// Starts the runtime of a Space: spawns its mixer task (which runs while it is live).
    pub fn spawn(
        record: SpaceRecord,
        names: HashMap<UserId, String>,
        domain: Space,
        store: Store,
        mixer_config: MixerConfig,
        hub_config: HubConfig,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
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
        let (mixer, rx) = mpsc::channel(1024);
        let speakers: Vec<_> = domain.stage().map(|(user, m)| (user, m.muted)).collect();
        let live = domain.lifecycle() == Lifecycle::Live;
        let space = Arc::new(Self {
            id,
            title,
            starts_at,
            names: Mutex::new(names),
            asks: Mutex::new(RateWindow::default()),
            hub: hub.clone(),
            ws_fanout: Fanout::new(hub.ws.clone(), Transport::WebSocket, hub_config.per_writer),
            ogg_fanout: Fanout::new(hub.ogg.clone(), Transport::Ogg, hub_config.per_writer),
            metrics,
            domain: Mutex::new(domain),
            events: broadcast::channel(1024).0,
            forward: broadcast::channel(256).0,
            mixer,
            store,
        });
        mixer_task::spawn(&space.id, Arc::downgrade(&space), mixer_config, rx, hub);
        for (user, muted) in speakers {
            space.to_mixer(MixerInput::AddSpeaker(user));
            space.to_mixer(MixerInput::Mute(user, muted));
        }
        if live {
            space.to_mixer(MixerInput::Start);
        }
        space
    }

    /// Applies a participant's command, tells everyone what changed, and returns once the
    /// change is stored.
    pub async fn command(&self, actor: UserId, command: Command) -> Result<(), Refusal> {
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
            }
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
            | Event::Invited { user, .. } => Some(*user),
            _ => None,
        };
        self.notify(to, event);
        match event {
            Event::Started => self.to_mixer(MixerInput::Start),
            Event::Ended => self.to_mixer(MixerInput::Stop),
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
        let (store, id, now) = (&self.store, &self.id, crate::unix_now() as i64);
        match event {
            Event::Started => store.set_space_state(id, "live", now).await,
            Event::Ended => store.set_space_state(id, "ended", now).await,
            Event::RoleChanged { user, role } => {
                let stored = role.is_speaker().then(|| role_name(*role));
                store.set_role(id, *user, stored).await
            }
            Event::Removed { user } => {
                store.set_role(id, *user, None).await?;
                store.add_removed(id, *user).await
            }
            _ => Ok(()),
        }
    }

    /// Sends a JSON event to every connection of this Space.
    pub fn broadcast<T: Serialize>(&self, event: &T) {
        self.notify(None, event);
    }

    fn notify<T: Serialize>(&self, to: Option<UserId>, event: &T) {
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
        self.hub.publish_event(&text);
        let _ = self.events.send(Notice {
            to,
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
        if self.mixer.try_send(input).is_err() {
            self.metrics.packets_dropped.inc();
        }
        Ok(())
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
            listeners: self.hub.listeners(),
        }
    }

    /// What a client waiting for this Space is told at `now` (Unix seconds); counts the ask.
    pub fn status(&self, lobby: &Lobby, now: i64) -> Status {
        let state = self.with_domain(|d| d.lifecycle());
        let listeners = self.hub.listeners();
        lobby.status(state, self.starts_at, listeners, &mut self.asks.lock(), now)
    }

    /// Remembers a user's handle, so events and views about them can name them.
    pub fn remember_name(&self, user: UserId, handle: &str) {
        let mut names = self.names.lock();
        if names.get(&user).is_none_or(|h| h != handle) {
            names.insert(user, handle.to_owned());
        }
    }

    fn to_mixer(&self, input: MixerInput) {
        // Control inputs must not be lost: wait for room off the caller's thread if full.
        if let Err(mpsc::error::TrySendError::Full(input)) = self.mixer.try_send(input) {
            let mixer = self.mixer.clone();
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
