//! The `stentor` command line: serve, demo, speak and listen, plus the small client library
//! they share with the end-to-end tests.

pub mod cli;
pub mod client;
pub mod cluster;
pub mod demo;
pub mod latency;
pub mod listen;
pub mod speak;
