//! A Space at runtime on the node that mixes it (its origin): the state machine behind a lock
//! with its command task ([`live`]), the mixer task ([`mixer`]), and the Spaces this node has
//! loaded ([`registry`]).

pub mod live;
pub mod mixer;
pub mod registry;

pub use live::LiveSpace;
