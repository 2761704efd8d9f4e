//! A Space at runtime on the node that mixes it (its origin): the state machine behind a lock
//! with its command task ([`live`]), the mixer task ([`mixer`]), and the Spaces this node has
//! loaded ([`registry`]), its recording ([`taping`]); in a cluster, an origin's uplink to the bus under a lease
//! ([`uplink`]), an edge's downlink from it ([`downlink`]), and the node's own part: its
//! entry in the node list, a standby's taking up of Spaces nobody mixes ([`node`]).

pub mod downlink;
pub mod live;
pub mod mixer;
pub mod node;
pub mod registry;
pub mod taping;
pub mod uplink;

pub use live::LiveSpace;
