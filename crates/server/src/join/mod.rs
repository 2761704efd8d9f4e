//! How a listener (or someone on stage) gets in: the door that reads a fresh connection's
//! first request ([`door`]), admission ([`admit`]), and the WebSocket opening ([`ws`]).

pub mod admit;
pub mod door;
pub mod ws;
