//! The nodes of a cluster and their load, in a NATS key-value bucket: each node puts its
//! entry again every third of the bucket's `max_age`, so a node that dies leaves the list
//! within that time. Clients ask it where to join (the least loaded edge) and where a
//! Space's origin is.

use crate::{Bus, BusError};
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a node says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its name in the cluster (what its leases hold).
    pub name: String,
    /// `origin` or `edge`.
    pub role: String,
    /// Where clients reach it: `http://HOST:PORT` or `https://…`.
    pub url: String,
    /// Listeners connected to it now.
    pub listeners: u64,
    /// Most listeners it admits.
    pub capacity: u64,
    /// The Spaces it has loaded, with their listeners on this node.
    pub spaces: Vec<(String, u64)>,
    /// Whether it is leaving (a clean stop): clients should not be sent to it.
    #[serde(default)]
    pub leaving: bool,
}

/// The bucket the nodes of cluster `cluster` list themselves in.
pub fn bucket(cluster: &str) -> String {
    format!("{cluster}_nodes")
}

/// The list of a cluster's nodes.
#[derive(Clone)]
pub struct Nodes {
    kv: kv::Store,
}

impl Nodes {
    /// The node list in `bucket` of the NATS server behind `bus`; an entry lasts `ttl` after
    /// it was last put. The bucket is made if missing.
    pub async fn open(bus: &Bus, bucket: &str, ttl: Duration) -> Result<Self, BusError> {
        let description = "stentor: the nodes of a cluster and their load";
        let (kv, _) = crate::bucket(bus, bucket, description, ttl).await?;
        Ok(Self { kv })
    }

    /// The node list in `bucket` if it exists (a reader that must not make one).
    pub async fn open_existing(bus: &Bus, bucket: &str) -> Result<Option<Self>, BusError> {
        Ok(crate::existing_bucket(bus, bucket)
            .await?
            .map(|(kv, _)| Self { kv }))
    }

    /// Puts (or refreshes) this node's entry.
    pub async fn put(&self, node: &NodeInfo) -> Result<(), BusError> {
        let value = serde_json::to_vec(node).expect("a node serializes");
        self.kv
            .put(key(&node.name), value.into())
            .await
            .map(|_| ())
            .map_err(|e| BusError::Io(format!("listing node {}: {e}", node.name)))
    }

    /// Takes this node's entry out at once (a clean stop).
    pub async fn remove(&self, name: &str) -> Result<(), BusError> {
        self.kv
            .delete(key(name))
            .await
            .map_err(|e| BusError::Io(format!("unlisting node {name}: {e}")))
    }

    /// The node called `name`, if it is listed.
    pub async fn get(&self, name: &str) -> Result<Option<NodeInfo>, BusError> {
        let entry = self
            .kv
            .entry(key(name))
            .await
            .map_err(|e| BusError::Io(e.to_string()))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| serde_json::from_slice(&e.value).ok()))
    }

    /// Every listed node, by name.
    pub async fn list(&self) -> Result<Vec<NodeInfo>, BusError> {
        let mut keys = match self.kv.keys().await {
            Ok(keys) => keys,
            Err(e) => return Err(BusError::Io(format!("listing nodes: {e}"))),
        };
        let mut names = Vec::new();
        while let Some(k) = keys.next().await {
            match k {
                Ok(k) => names.push(k),
                Err(e) => return Err(BusError::Io(format!("listing nodes: {e}"))),
            }
        }
        let mut nodes = Vec::new();
        for name in names {
            if let Some(node) = self.get(name.trim_start_matches("node.")).await? {
                nodes.push(node);
            }
        }
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(nodes)
    }
}

/// The key of a node: its name made safe for a key (`/` and `:` are not allowed in keys).
fn key(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_=.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("node.{safe}")
}

/// The least loaded edge that is not leaving, by share of its capacity in use; `None` when
/// there is none.
pub fn least_loaded(nodes: &[NodeInfo]) -> Option<&NodeInfo> {
    nodes
        .iter()
        .filter(|n| n.role == "edge" && !n.leaving)
        .min_by(|a, b| {
            let share = |n: &NodeInfo| n.listeners as f64 / n.capacity.max(1) as f64;
            share(a).total_cmp(&share(b)).then(a.name.cmp(&b.name))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, role: &str, listeners: u64, capacity: u64) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            role: role.into(),
            url: format!("http://{name}"),
            listeners,
            capacity,
            spaces: vec![],
            leaving: false,
        }
    }

    #[test]
    fn clients_go_to_the_edge_with_the_most_room_and_never_to_one_leaving() {
        let mut nodes = vec![
            node("o", "origin", 0, 100),
            node("a", "edge", 500, 1000),
            node("b", "edge", 300, 400),
            node("c", "edge", 100, 1000),
        ];
        assert_eq!(least_loaded(&nodes).unwrap().name, "c");
        nodes[3].leaving = true;
        assert_eq!(least_loaded(&nodes).unwrap().name, "a");
        assert!(least_loaded(&nodes[..1]).is_none());
    }

    #[test]
    fn node_names_become_keys() {
        assert_eq!(key("box/127.0.0.1:8080"), "node.box_127.0.0.1_8080");
    }
}
