//! The Spaces this node runs, loaded from the store on first use.

use crate::config::SpaceRules as Rules;
use crate::error::ApiError;
use crate::origin::downlink::SpaceState;
use crate::origin::live::{LiveSpace, Making, role_from_name};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use stentor_space::{Lifecycle, Limits, Role, Space};
use stentor_store::SpaceRecord;

/// Every Space this node has loaded.
pub struct Spaces {
    making: Making,
    loaded: Mutex<HashMap<String, Loaded>>,
    /// Loads under way, one per Space: a crowd arriving for a Space not loaded yet waits
    /// for one load (one read of the store, one snapshot from the origin), not one each.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A loaded Space, and when it was last asked for.
struct Loaded {
    space: Arc<LiveSpace>,
    used: Instant,
}

impl Spaces {
    /// An empty registry of Spaces made with `making`.
    pub fn new(making: Making) -> Self {
        Self {
            making,
            loaded: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
        }
    }

    /// The node's cluster, if it is an origin or an edge.
    pub fn cluster(&self) -> Option<&crate::cluster::Cluster> {
        self.making.cluster.as_ref()
    }

    /// The recording writer, where this node records.
    pub fn recorder(&self) -> Option<&stentor_record::Recorder> {
        self.making.recorder.as_ref()
    }

    /// The store Spaces are loaded from.
    pub fn store(&self) -> &stentor_store::Store {
        &self.making.store
    }

    /// What one account may do with Spaces.
    pub fn rules(&self) -> Rules {
        self.making.rules
    }

    /// The loaded Space `id`, marked as used now. An edge's Space whose listeners were sent
    /// away (its bus was cut) is dropped here, to be loaded afresh.
    fn use_loaded(&self, id: &str) -> Option<Arc<LiveSpace>> {
        let mut loaded = self.loaded.lock();
        let entry = loaded.get_mut(id)?;
        if entry.space.is_edge() && entry.space.hub.ws.close_reason().is_some() {
            loaded.remove(id);
            return None;
        }
        entry.used = Instant::now();
        Some(entry.space.clone())
    }

    /// Unloads the Spaces nobody holds (no connection, no request in flight) that have ended,
    /// or that nobody has asked for in the idle time: each costs a mixer task and memory
    /// for as long as it is loaded. One that is asked for again is loaded again from the store.
    pub fn unload_unused(&self) -> usize {
        let now = Instant::now();
        let idle = self.making.rules.idle_unload;
        let mut loaded = self.loaded.lock();
        let before = loaded.len();
        loaded.retain(|_, entry| {
            // The registry's own reference is the only one: nobody is connected here (and, on
            // an origin, nobody listens on an edge either).
            if Arc::strong_count(&entry.space) > 1 || entry.space.listeners() > 0 {
                entry.used = now;
                return true;
            }
            let ended = entry.space.with_domain(|d| d.lifecycle()) == Lifecycle::Ended;
            !ended && now.duration_since(entry.used) < idle
        });
        before - loaded.len()
    }

    /// The runtime of Space `id` if it is loaded (no store read).
    pub fn if_loaded(&self, id: &str) -> Option<Arc<LiveSpace>> {
        self.use_loaded(id)
    }

    /// The runtime of Space `id`, loading it if needed: on an edge from its origin's
    /// snapshot (no read of the store), otherwise, or when no origin answers, from the store.
    pub async fn get(&self, id: &str) -> Result<Arc<LiveSpace>, ApiError> {
        if let Some(space) = self.use_loaded(id) {
            return Ok(space);
        }
        let turn = self
            .loading
            .lock()
            .entry(id.to_owned())
            .or_default()
            .clone();
        let loaded = {
            let _one_at_a_time = turn.lock().await;
            match self.use_loaded(id) {
                // Loaded by the one before in line.
                Some(space) => Ok(space),
                None => self.load(id).await,
            }
        };
        let mut loading = self.loading.lock();
        // The last one out (the map's reference and this one's) takes the entry away.
        if Arc::strong_count(&turn) <= 2 {
            loading.remove(id);
        }
        loaded
    }

    /// Loads Space `id`: on an edge from its origin's snapshot, otherwise (or when no origin
    /// answers) from the store.
    async fn load(&self, id: &str) -> Result<Arc<LiveSpace>, ApiError> {
        if let Some(cluster) = self.making.cluster.as_ref().filter(|c| c.is_edge())
            && let Some(state) = crate::origin::downlink::fetch(cluster, id).await
        {
            return Ok(self.load_described(id, state));
        }
        let store = &self.making.store;
        let record = store.space(id).await?.ok_or(ApiError::NotFound("space"))?;
        let roles = store.roles(id).await?;
        let muted = store.muted(id).await?;
        let invited = store.invited(id).await?;
        let removed = store.removed(id).await?;
        let host = (record.host_id, Role::Host);
        let stage = roles
            .into_iter()
            .filter_map(|(user, role)| Some((user, role_from_name(&role)?)))
            .chain(std::iter::once(host))
            .map(|(user, role)| (user, role, muted.contains(&user)));
        let mut domain = Space::restore(
            record.host_id,
            Limits::default(),
            lifecycle(&record.state),
            stage,
            invited,
            removed,
        );
        domain.restore_held(store.held(id).await?);
        domain.set_recording(store.recording(id).await?);
        let mut names = HashMap::new();
        for (user, _) in domain.stage() {
            if let Some(u) = store.user(user).await? {
                names.insert(user, u.handle);
            }
        }
        Ok(self.insert(record, domain, names))
    }

    /// Loads Space `id` as its origin described it.
    fn load_described(&self, id: &str, state: SpaceState) -> Arc<LiveSpace> {
        let lifecycle = state.state;
        let timeline = state.timeline;
        let recording = state.recording;
        let record = SpaceRecord {
            id: id.to_owned(),
            host_id: state.host,
            title: state.title,
            state: match lifecycle {
                Lifecycle::Live => "live",
                Lifecycle::Ended => "ended",
                Lifecycle::Scheduled => "scheduled",
            }
            .into(),
            starts_at: state.starts_at,
            created_at: 0,
        };
        let mut domain = Space::restore(
            state.host,
            Limits::default(),
            lifecycle,
            state.stage,
            state.invited,
            state.removed,
        );
        domain.set_recording(recording);
        let space = self.insert(record, domain, state.names.into_iter().collect());
        if let Some(base) = timeline {
            space.hub.hls.set_base(base);
        }
        space
    }

    /// Creates a new Space in the store and loads it.
    pub async fn create(&self, record: SpaceRecord) -> Result<Arc<LiveSpace>, ApiError> {
        let store = &self.making.store;
        store.create_space(&record).await?;
        let domain = Space::new(record.host_id, Limits::default());
        let names = store
            .user(record.host_id)
            .await?
            .map(|u| (u.id, u.handle))
            .into_iter()
            .collect();
        Ok(self.insert(record, domain, names))
    }

    fn insert(
        &self,
        record: SpaceRecord,
        domain: Space,
        names: HashMap<u64, String>,
    ) -> Arc<LiveSpace> {
        let mut loaded = self.loaded.lock();
        if let Some(existing) = loaded.get(&record.id) {
            return existing.space.clone();
        }
        let id = record.id.clone();
        let space = LiveSpace::spawn(record, names, domain, &self.making);
        let used = Instant::now();
        loaded.insert(
            id,
            Loaded {
                space: space.clone(),
                used,
            },
        );
        space
    }

    /// Every loaded Space.
    pub fn loaded(&self) -> Vec<Arc<LiveSpace>> {
        self.loaded
            .lock()
            .values()
            .map(|e| e.space.clone())
            .collect()
    }
}

fn lifecycle(state: &str) -> Lifecycle {
    match state {
        "live" => Lifecycle::Live,
        "ended" => Lifecycle::Ended,
        _ => Lifecycle::Scheduled,
    }
}
