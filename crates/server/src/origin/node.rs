//! This node in its cluster: it lists itself with its load every third of a lease (so
//! clients and `stentor cluster status` find it, and it leaves the list when it dies); an
//! origin also takes up the live Spaces nobody mixes (a standby taking over a dead origin's
//! Spaces), takes up a Space an edge asks for, and learns each Space's audience on the edges.

use crate::cluster::{Cluster, Role, role_name};
use crate::metrics::Metrics;
use crate::origin::registry::Spaces;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stentor_bus::NodeInfo;
use tokio::sync::watch;

/// Live Spaces a standby looks at per pass.
const OPEN_SPACES: u32 = 1_000;
/// An edge reads the node list once every this many passes.
const EDGE_READS_EVERY: u64 = 10;
/// How long an origin taking a Space up waits for its lease before answering.
const ADOPT_WAIT: Duration = Duration::from_secs(1);

/// What the node loop works with.
pub struct Node {
    /// The node's cluster.
    pub cluster: Cluster,
    /// The Spaces it has loaded.
    pub spaces: Arc<Spaces>,
    /// Most listeners it admits.
    pub capacity: usize,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
}

impl Node {
    /// Runs until the node stops, then takes it off the list and gives its leases up.
    pub async fn run(self, mut down: watch::Receiver<bool>) {
        let period = self.cluster.lease / 3;
        if self.cluster.role == Role::Origin {
            self.serve_adoptions(down.clone());
        }
        let mut passes: u64 = 0;
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = crate::shutdown::going_away(&mut down) => break,
            }
            if let Err(e) = self.cluster.nodes.put(&self.info(false)).await {
                tracing::warn!(error = %e, "could not list this node");
            }
            let slow = self
                .cluster
                .bus
                .stats()
                .dropped
                .load(std::sync::atomic::Ordering::Relaxed);
            self.metrics.bus_slow.set(slow as i64);
            // Reading the list costs a request per node: an origin (which sums the audiences)
            // reads it every pass, an edge (which only needs somewhere to send its listeners)
            // every few seconds, so that many edges do not make the bus's traffic grow with
            // the square of their number.
            passes += 1;
            if self.cluster.role == Role::Origin || passes % EDGE_READS_EVERY == 1 {
                match self.cluster.nodes.list().await {
                    Ok(nodes) => *self.cluster.known.write() = nodes,
                    Err(e) => tracing::warn!(error = %e, "could not read the node list"),
                }
            }
            if self.cluster.role == Role::Origin {
                self.count_audiences();
                self.take_up_orphans().await;
            }
        }
        self.leave().await;
    }

    /// This node as the list shows it: an origin lists the Spaces it holds the lease of, an
    /// edge those it serves.
    fn info(&self, leaving: bool) -> NodeInfo {
        let spaces: Vec<(String, u64)> = self
            .spaces
            .loaded()
            .iter()
            .filter(|s| s.is_edge() || s.owned())
            .map(|s| (s.id.clone(), s.hub.listeners() as u64))
            .collect();
        NodeInfo {
            name: self.cluster.node.clone(),
            role: role_name(self.cluster.role).into(),
            url: self.cluster.url.clone(),
            listeners: spaces.iter().map(|s| s.1).sum(),
            capacity: self.capacity as u64,
            spaces,
            leaving,
        }
    }

    /// Each Space's listeners on the edges, as they list them.
    fn count_audiences(&self) {
        let nodes = self.cluster.known.read().clone();
        let mut audiences: HashMap<&str, u64> = HashMap::new();
        for node in nodes.iter().filter(|n| n.role == "edge") {
            for (space, listeners) in &node.spaces {
                *audiences.entry(space).or_default() += listeners;
            }
        }
        for space in self.spaces.loaded() {
            let remote = audiences.get(space.id.as_str()).copied().unwrap_or(0);
            space.set_remote_listeners(remote as usize);
        }
    }

    /// Loads the live Spaces no node holds the lease of: their uplinks take the leases (one
    /// origin wins each; the others find it held).
    async fn take_up_orphans(&self) {
        let open = match self.spaces.store().open_spaces(OPEN_SPACES).await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for spaces nobody mixes");
                return;
            }
        };
        for (record, _) in open.into_iter().filter(|(r, _)| r.state == "live") {
            if self.spaces.if_loaded(&record.id).is_some() {
                continue;
            }
            if let Ok(None) = self.cluster.leases.holder(&record.id).await {
                tracing::info!(space = %record.id, "taking up a live space nobody mixes");
                if let Err(e) = self.spaces.get(&record.id).await {
                    tracing::warn!(space = %record.id, error = %e, "could not take the space up");
                }
            }
        }
    }

    /// Answers edges asking for a Space to be taken up (one origin of the cluster each).
    fn serve_adoptions(&self, mut down: watch::Receiver<bool>) {
        let (bus, spaces) = (self.cluster.bus.clone(), self.spaces.clone());
        let subject = stentor_bus::subject::adopt(&self.cluster.name);
        tokio::spawn(async move {
            let mut requests = match bus.serve_shared(&subject, "origins").await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot take up spaces for edges");
                    return;
                }
            };
            loop {
                let request = tokio::select! {
                    r = requests.next() => match r { Some(r) => r, None => return },
                    _ = crate::shutdown::going_away(&mut down) => return,
                };
                let spaces = spaces.clone();
                tokio::spawn(async move {
                    let id = String::from_utf8_lossy(&request.payload).into_owned();
                    let owned = match spaces.get(&id).await {
                        Ok(space) => space.owned_within(ADOPT_WAIT).await,
                        Err(_) => false,
                    };
                    let answer: &'static [u8] = if owned { b"ok" } else { b"no" };
                    let _ = request.respond(Bytes::from_static(answer)).await;
                });
            }
        });
    }

    /// Leaves the list and gives every lease up, waiting a little for them to go.
    async fn leave(&self) {
        let _ = self.cluster.nodes.put(&self.info(true)).await;
        for space in self.spaces.loaded() {
            space.let_go();
        }
        self.cluster.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.cluster.tasks.wait()).await;
        if let Err(e) = self.cluster.nodes.remove(&self.cluster.node).await {
            tracing::warn!(error = %e, "could not take this node off the list");
        }
        let _ = self.cluster.bus.flush().await;
    }
}
