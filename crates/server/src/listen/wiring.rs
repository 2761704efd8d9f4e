//! What the fan-out needs of the server around it, given once by the composition root, and
//! what it gives back: a listener called on stage, with its socket.

use crate::origin::live::LiveSpace;
use crate::overload::Overload;
use std::sync::Arc;
use stentor_space::UserId;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Which framing a fan-out sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket frames; the listener may send commands.
    WebSocket,
    /// Ogg pages after an HTTP response; anything the listener sends is ignored.
    Ogg,
}

/// What the fan-out needs of the server around it, given once by the composition root.
#[derive(Clone)]
pub struct Wiring {
    /// Where writer tasks are spawned (and their end awaited at shutdown).
    pub tasks: tokio_util::task::TaskTracker,
    /// Becomes true when the server shuts down.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Measured overload: whether listeners are shed.
    pub overload: Arc<Overload>,
    /// Commands (and pings) a listener may send.
    pub quota: governor::Quota,
    /// Where a listener called on stage goes, with their socket (see [`HandOver`]).
    pub stage: mpsc::Sender<HandOver>,
}

/// A listener's socket on its way to a full connection on stage, with the bytes it was due.
pub struct HandOver {
    /// The Space.
    pub space: Arc<LiveSpace>,
    /// The listener, now on stage.
    pub user: UserId,
    /// The socket.
    pub stream: TcpStream,
    /// What the listener was due when it left its writer.
    pub due: Vec<u8>,
}

/// Hand-overs to the stage waiting at once; past it the socket is closed (the client
/// reconnects with its new role).
pub const HAND_OVERS: usize = 64;
