//! How a listener is served once admitted: the fan-out writers, each of which owns many
//! listeners' sockets and sends each one what it is due from the shared ring ([`fanout`]).

pub mod fanout;
