//! How a listener is served once admitted: each Space's fan-out ([`fanout`]) hands listeners
//! to writer tasks ([`shard`]) that own many sockets each ([`sink`]) and send every one what
//! it is due from the shared ring, as decided without I/O in [`turn`]; [`wiring`] is what
//! they are given by the server around them.

pub mod fanout;
pub mod shard;
pub mod sink;
pub mod turn;
pub mod wiring;
