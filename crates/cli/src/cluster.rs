//! `stentor cluster status`: the nodes of a cluster, read from its NATS server: each node's
//! role, address and load, and each Space with its origin and its audience per node.

use std::collections::BTreeMap;
use stentor_bus::{Bus, Leases, NodeInfo, Nodes};

/// A cluster as its node list and leases show it.
#[derive(Debug, serde::Serialize)]
pub struct Status {
    /// The cluster's name.
    pub cluster: String,
    /// Its nodes, by name.
    pub nodes: Vec<NodeInfo>,
    /// Each Space listed by a node: its origin (the lease's holder) and listeners per node.
    pub spaces: BTreeMap<String, SpaceStatus>,
}

/// One Space across the cluster.
#[derive(Debug, Default, serde::Serialize)]
pub struct SpaceStatus {
    /// The node holding its lease, if any.
    pub origin: Option<String>,
    /// Listeners on each node serving it.
    pub listeners: BTreeMap<String, u64>,
    /// All its listeners.
    pub total: u64,
}

/// Reads the status of cluster `cluster` from the NATS server at `nats`.
pub async fn status(nats: &str, cluster: &str) -> anyhow::Result<Status> {
    let bus = Bus::nats(nats).await?;
    let list = match Nodes::open_existing(&bus, &stentor_bus::nodes::bucket(cluster)).await? {
        Some(nodes) => nodes.list().await?,
        None => Vec::new(),
    };
    let leases = Leases::open_existing(&bus, &stentor_bus::lease::bucket(cluster)).await?;
    let mut spaces: BTreeMap<String, SpaceStatus> = BTreeMap::new();
    for node in &list {
        for (space, listeners) in &node.spaces {
            let entry = spaces.entry(space.clone()).or_default();
            if node.role == "edge" || *listeners > 0 {
                entry.listeners.insert(node.name.clone(), *listeners);
            }
            entry.total += listeners;
        }
    }
    if let Some(leases) = &leases {
        for (space, entry) in spaces.iter_mut() {
            entry.origin = leases.holder(space).await?;
        }
    }
    Ok(Status {
        cluster: cluster.to_owned(),
        nodes: list,
        spaces,
    })
}

impl Status {
    /// A table for people.
    pub fn table(&self) -> String {
        let mut s = format!("cluster {}\n\nnodes\n", self.cluster);
        if self.nodes.is_empty() {
            s.push_str("  (none listed)\n");
        }
        for n in &self.nodes {
            s.push_str(&format!(
                "  {:<28} {:<7} {:<26} {:>7} / {:<7} listeners{}\n",
                n.name,
                n.role,
                n.url,
                n.listeners,
                n.capacity,
                if n.leaving { "  (leaving)" } else { "" }
            ));
        }
        s.push_str("\nspaces\n");
        if self.spaces.is_empty() {
            s.push_str("  (none)\n");
        }
        for (id, space) in &self.spaces {
            let per_node: Vec<String> = space
                .listeners
                .iter()
                .map(|(node, n)| format!("{node}: {n}"))
                .collect();
            s.push_str(&format!(
                "  {:<16} origin {:<28} {:>7} listeners  ({})\n",
                id,
                space.origin.as_deref().unwrap_or("none"),
                space.total,
                per_node.join(", ")
            ));
        }
        s
    }
}
