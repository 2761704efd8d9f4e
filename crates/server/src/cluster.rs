//! What a node of a cluster works with, given once by the composition root: its role, the
//! bus, the leases of Spaces, the node list, and its own name and address.

use std::time::Duration;
use stentor_bus::{Bus, Leases, NodeInfo, Nodes};

pub use crate::config::Role;

/// A node's place in its cluster.
#[derive(Clone)]
pub struct Cluster {
    /// `origin` or `edge` (never `all`: a single node has no cluster).
    pub role: Role,
    /// The cluster's name (its subjects and buckets are named after it).
    pub name: String,
    /// This node's name (what its leases and its entry in the node list hold).
    pub node: String,
    /// Where clients reach this node.
    pub url: String,
    /// The bus to the other nodes.
    pub bus: Bus,
    /// The leases of Spaces.
    pub leases: Leases,
    /// The cluster's nodes and their load.
    pub nodes: Nodes,
    /// How long a lease (and an entry of the node list) lasts after its last renewal.
    pub lease: Duration,
    /// The tasks that hold leases, waited for at a clean stop (so leases are given up).
    pub tasks: tokio_util::task::TaskTracker,
    /// The node list as last read (every third of a lease), so that telling a client where
    /// to go costs no request to NATS.
    pub known: std::sync::Arc<parking_lot::RwLock<Vec<NodeInfo>>>,
}

impl Cluster {
    /// Whether this node serves Spaces mixed elsewhere.
    pub fn is_edge(&self) -> bool {
        self.role == Role::Edge
    }

    /// The address of the node that mixes Space `space` now, if any holds its lease.
    pub async fn origin_of(&self, space: &str) -> Option<String> {
        if let Some(url) = self.known_origin(space) {
            return Some(url);
        }
        let holder = self.leases.holder(space).await.ok()??;
        Some(self.nodes.get(&holder).await.ok()??.url)
    }

    /// The address of the origin that listed Space `space` as its own at the last reading
    /// of the node list.
    pub fn known_origin(&self, space: &str) -> Option<String> {
        self.known
            .read()
            .iter()
            .find(|n| n.role == "origin" && !n.leaving && n.spaces.iter().any(|s| s.0 == space))
            .map(|n| n.url.clone())
    }

    /// The edges of the cluster at the last reading, the one with the most room first.
    pub fn known_edges(&self) -> Vec<NodeInfo> {
        let mut edges: Vec<NodeInfo> = self
            .known
            .read()
            .iter()
            .filter(|n| n.role == "edge" && !n.leaving)
            .cloned()
            .collect();
        let share = |n: &NodeInfo| n.listeners as f64 / n.capacity.max(1) as f64;
        edges.sort_by(|a, b| share(a).total_cmp(&share(b)).then(a.name.cmp(&b.name)));
        edges
    }
}

/// The role's name in the node list.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::All => "all",
        Role::Origin => "origin",
        Role::Edge => "edge",
    }
}
