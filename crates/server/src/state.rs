//! What every handler shares ([`AppState`]): the Spaces, their listeners' writers, the store,
//! the admission pieces and the configuration.

use crate::config::Config;
use crate::listen::fanout::Audiences;
use crate::metrics;
use crate::origin::registry::Spaces;
use crate::overload;
use crate::passwords::Passwords;
use std::sync::Arc;
use stentor_gate::ticket::{Revocations, Ticket, TicketKey};
use stentor_gate::{capacity, limits, pow};
use stentor_space::{Role, UserId};
use stentor_store::Store;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// Durable state.
    pub store: Store,
    /// The Spaces this node runs.
    pub spaces: Arc<Spaces>,
    /// The fan-out writers of their listeners.
    pub audiences: Arc<Audiences>,
    /// Join ticket key.
    pub tickets: TicketKey,
    /// Sessions recently looked up.
    pub sessions: Arc<crate::sessions::Sessions>,
    /// Tickets of users who signed out, refused until they expire.
    pub revocations: Arc<parking_lot::Mutex<Revocations>>,
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// The listener budget of this process.
    pub capacity: Arc<capacity::Capacity>,
    /// Measured overload and what is shed because of it.
    pub overload: Arc<overload::Overload>,
    /// Per-address and per-network limits.
    pub gate: Arc<limits::Gate>,
    /// Proof of work asked of new listeners in under-attack mode.
    pub proofs: Arc<pow::Proofs>,
    /// The budget of password hashing and the sign-in throttle.
    pub passwords: Arc<Passwords>,
    /// Becomes true when the server shuts down; long-lived connections watch it.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Every task that serves a connection (requests, listeners' writers, the stage): the
    /// server has stopped when all of them have ended, known from the tasks themselves.
    pub tasks: tokio_util::task::TaskTracker,
    /// The social layer's writer, job worker and live counts.
    pub social: Arc<crate::social::Social>,
    /// Replays and clips of the recordings this node made (none on an edge).
    pub replays: Option<Arc<crate::replay::Replays>>,
    /// The transparency reports lately computed, and the budget for computing one.
    pub reports: Arc<crate::transparency::Reports>,
}

impl AppState {
    /// A ticket for `user` in `space` with `role`, valid for the configured lifetime.
    pub fn issue_ticket(&self, space: &str, user: UserId, role: Role) -> Ticket {
        Ticket {
            space: space.to_owned(),
            user,
            role,
            exp: crate::clock::unix_now() + self.config.ticket_ttl_secs(),
            unseen: false,
        }
    }
}
