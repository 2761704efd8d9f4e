//! stentor-server: the HTTP API, accounts, join tickets and the WebSocket and Ogg transports,
//! wiring the Space state machine, the mixer and the hub together.
//!
//! `Server::bind(config).await?` then `.run(shutdown).await`; nothing is global, so tests run
//! real servers on port 0 in-process.
//!
//! The modules, from the top down (each imports only those below it):
//! - [`server`]: the composition root — start-up in order, the accept loop, the stop;
//! - [`api`]: the HTTP routes, one module per resource;
//! - [`join`]: how a listener gets in (the door, admission, the WebSocket opening);
//! - [`stage`]: the full connection of someone on stage;
//! - [`state`]: what every handler shares;
//! - [`listen`]: how a listener is served (the fan-out writers);
//! - [`commands`]: the one command path of a Space's WebSocket;
//! - [`origin`]: a Space at runtime — its state machine, command task, mixer task and hub;
//! - at the bottom: [`config`], [`error`], [`metrics`], [`overload`], [`passwords`],
//!   [`deadline`], [`prefixed`], [`secrets`], [`tls`], [`clock`], [`shutdown`].

pub mod api;
pub mod auth;
pub mod clock;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod deadline;
pub mod error;
pub mod join;
pub mod listen;
pub mod metrics;
pub mod origin;
pub mod overload;
pub mod passwords;
pub mod prefixed;
pub mod replay;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod shutdown;
pub mod social;
pub mod stage;
pub mod state;
pub mod tls;
pub mod transparency;

pub use clock::unix_now;
pub use config::Config;
pub use origin::LiveSpace;
pub use server::{Server, StartError};
pub use shutdown::shutdown_signal;
pub use state::AppState;
