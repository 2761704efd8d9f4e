//! stentor-loadtest: opens many listeners against a server and accounts for every frame
//! without decoding audio — sequence gaps, lateness against the frame's media time, time to
//! first audio, stalls — so that one machine can measure another's fan-out honestly.
//!
//! A run is split into shards, one per worker process (a process may hold only so many
//! sockets), each an event loop with small per-listener state; connections are spread over
//! many 127.0.0.x source addresses so ephemeral ports do not run out.

pub mod account;
pub mod attack;
mod hls;
mod net;
pub mod plan;
pub mod plot;
pub mod pow;
pub mod report;
pub mod requests;
pub mod run;
pub mod worker;

pub use account::{Account, Outcome};
pub use plan::{Plan, Profile, Transport};
pub use report::Report;
