//! The listeners of each Space, by transport: a fan-out hands each new listener to the least
//! loaded of its writer tasks ([`super::shard`]), starting one when all are full. People on
//! stage are not here: they have a full connection (`crate::stage`), and a listener invited
//! on stage is handed over to one through the composition root.

use super::shard::Shard;
use super::sink::Sink;
use super::wiring::{Transport, Wiring};
use crate::origin::live::LiveSpace;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use stentor_hub::Feed;
use tokio::sync::mpsc;

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
        let shard = Shard::new(
            self.feed.clone(),
            self.transport,
            rx,
            load.clone(),
            wiring.clone(),
            space.clone(),
        );
        wiring.tasks.spawn(shard.run());
        shards.push(ShardHandle { tx, load });
    }

    /// Writer tasks running.
    pub fn shards(&self) -> usize {
        self.shards.lock().len()
    }
}
