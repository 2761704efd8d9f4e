//! stentor-gate: admission without I/O — who may come in, when, and at what cost. Every node
//! that serves listeners admits them with these pieces; the server only wires them to sockets
//! and the clock.
//!
//! - [`limits`]: per-address and per-network request and join rates (GCRA) and connection caps;
//! - [`shed`]: load shedding by measured pressure and priority;
//! - [`lobby`]: the waiting room's status and join window;
//! - [`pow`]: proof of work asked of new listeners under attack;
//! - [`proxy`]: the client's address behind trusted reverse proxies;
//! - [`ticket`]: signed join tickets, verified without a database;
//! - [`capacity`]: the listener budget the file limit leaves;
//! - [`throttle`]: sign-in throttling per handle.

pub mod capacity;
pub mod limits;
pub mod lobby;
pub mod pow;
pub mod proxy;
pub mod shed;
pub mod throttle;
pub mod ticket;
