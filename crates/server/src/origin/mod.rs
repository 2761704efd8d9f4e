//! A Space at runtime on the node that mixes it (its origin): the state machine behind a lock
//! with its command task ([`live`]), the mixer task ([`mixer`]), and the Spaces this node has
//! loaded ([`registry`]); in a cluster, its uplink to the bus under a lease ([`uplink`]).

pub mod live;
pub mod mixer;
pub mod registry;
pub mod uplink;

pub use live::LiveSpace;
