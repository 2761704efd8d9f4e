//! stentor-bus: what carries a live Space between the nodes of a cluster.
//!
//! The origin of a Space publishes its mix and events on the Space's media subject
//! ([`Subjects`], [`Envelope`]); edges subscribe to the Spaces their listeners want and
//! ask the origin for a snapshot to start from, or to carry out a listener's command. Audio
//! is at most once (late audio is worthless): a subscriber that cannot keep up loses
//! messages, counted, and never holds the publisher back. The bus is in-process for a
//! single node and for tests ([`Bus::local`]), or NATS core messaging ([`Bus::nats`]).

pub mod envelope;
pub mod lease;
mod local;
mod nats;
pub mod nodes;
pub mod snapshot;
pub mod subject;

pub use envelope::{Envelope, EnvelopeError};
pub use lease::{Lease, LeaseClock, Leases};
pub use nodes::{NodeInfo, Nodes};
pub use snapshot::Snapshot;
pub use subject::{BadSpaceId, Subjects};

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The key-value bucket `name` of the NATS server behind `bus`, made (keeping one value per
/// key for `max_age`) if missing, and the `max_age` it has (another node may have made it).
pub(crate) async fn bucket(
    bus: &Bus,
    name: &str,
    description: &str,
    max_age: Duration,
) -> Result<(async_nats::jetstream::kv::Store, Duration), BusError> {
    let js = jetstream(bus, name)?;
    let config = async_nats::jetstream::kv::Config {
        bucket: name.to_owned(),
        description: description.to_owned(),
        history: 1,
        max_age,
        ..Default::default()
    };
    match js.create_key_value(config).await {
        Ok(kv) => Ok((kv, max_age)),
        Err(made) => {
            let kv = js
                .get_key_value(name)
                .await
                .map_err(|e| BusError::Io(format!("bucket {name}: {made}; {e}")))?;
            let status = kv
                .status()
                .await
                .map_err(|e| BusError::Io(format!("bucket {name}: {e}")))?;
            let theirs = status.info.config.max_age;
            Ok((kv, theirs))
        }
    }
}

/// The key-value bucket `name` if it exists (a reader that must not make one), and its
/// `max_age`.
pub(crate) async fn existing_bucket(
    bus: &Bus,
    name: &str,
) -> Result<Option<(async_nats::jetstream::kv::Store, Duration)>, BusError> {
    let js = jetstream(bus, name)?;
    let Ok(kv) = js.get_key_value(name).await else {
        return Ok(None);
    };
    let status = kv
        .status()
        .await
        .map_err(|e| BusError::Io(format!("bucket {name}: {e}")))?;
    Ok(Some((kv, status.info.config.max_age)))
}

fn jetstream(bus: &Bus, name: &str) -> Result<async_nats::jetstream::Context, BusError> {
    let client = bus
        .nats_client()
        .ok_or_else(|| BusError::Io(format!("the bucket {name} needs a NATS bus")))?;
    Ok(async_nats::jetstream::new(client.clone()))
}

/// Messages one subscription holds for its reader before new ones are dropped.
pub const SUBSCRIPTION_CAPACITY: usize = 1024;

/// What went wrong on the bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The NATS server could not be reached, or refused the connection.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server's address.
        url: String,
        /// Why.
        reason: String,
    },
    /// The NATS server lacks what stentor needs of it.
    #[error("the NATS server at {url} {missing}")]
    Unfit {
        /// The server's address.
        url: String,
        /// What it lacks.
        missing: String,
    },
    /// Nobody answers requests on the subject.
    #[error("no one answers on {0}")]
    NoResponders(String),
    /// No answer in time.
    #[error("no answer on {0} in time")]
    TimedOut(String),
    /// The connection failed while publishing, subscribing or asking.
    #[error("bus: {0}")]
    Io(String),
}

/// Counts of what went over the bus from this node, for `/metrics`.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Messages published.
    pub published: AtomicU64,
    /// Messages received by this node's subscriptions.
    pub received: AtomicU64,
    /// Drops because a subscription's reader was too slow: every message dropped on the
    /// in-process bus; over NATS, every slow-consumer report of the client (one report can
    /// stand for many messages).
    pub dropped: AtomicU64,
}

impl BusStats {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A bus: in-process or NATS.
#[derive(Clone)]
pub struct Bus {
    inner: Inner,
    stats: Arc<BusStats>,
}

#[derive(Clone)]
enum Inner {
    Local(Arc<local::Local>),
    Nats(async_nats::Client),
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            Inner::Local(_) => "Bus::Local",
            Inner::Nats(_) => "Bus::Nats",
        })
    }
}

impl Bus {
    /// A bus within this process.
    pub fn local() -> Self {
        Self {
            inner: Inner::Local(Arc::new(local::Local::default())),
            stats: Arc::default(),
        }
    }

    /// A bus over the NATS server at `url`, checked to be fit for stentor (see
    /// [`nats::MIN_VERSION`]).
    pub async fn nats(url: &str) -> Result<Self, BusError> {
        Self::nats_as(url, "stentor").await
    }

    /// As [`Bus::nats`], the connection named `name` on the server (its monitoring pages
    /// show each node's traffic under its name).
    pub async fn nats_as(url: &str, name: &str) -> Result<Self, BusError> {
        let stats = Arc::new(BusStats::default());
        let client = nats::connect(url, name, stats.clone()).await?;
        Ok(Self {
            inner: Inner::Nats(client),
            stats,
        })
    }

    /// Whether the bus is up: always in-process; over NATS, while the client is connected
    /// (it reconnects by itself when the server comes back).
    pub fn is_connected(&self) -> bool {
        match &self.inner {
            Inner::Local(_) => true,
            Inner::Nats(client) => {
                client.connection_state() == async_nats::connection::State::Connected
            }
        }
    }

    /// What went over this bus from this node.
    pub fn stats(&self) -> &BusStats {
        &self.stats
    }

    /// The NATS client, when the bus is NATS (for its key-value store).
    pub fn nats_client(&self) -> Option<&async_nats::Client> {
        match &self.inner {
            Inner::Nats(client) => Some(client),
            Inner::Local(_) => None,
        }
    }

    /// Publishes `payload` on `subject`, at most once.
    pub async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        match &self.inner {
            Inner::Local(local) => local.publish(subject, payload, &self.stats),
            Inner::Nats(client) => client
                .publish(subject.to_owned(), payload)
                .await
                .map_err(|e| BusError::Io(e.to_string()))?,
        }
        BusStats::count(&self.stats.published);
        Ok(())
    }

    /// Subscribes to `subject`; messages come in the order they were published.
    pub async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        let inner = match &self.inner {
            Inner::Local(local) => SubscriptionInner::Local(local.subscribe(subject)),
            Inner::Nats(client) => SubscriptionInner::Nats(
                client
                    .subscribe(subject.to_owned())
                    .await
                    .map_err(|e| BusError::Io(e.to_string()))?,
            ),
        };
        Ok(Subscription {
            inner,
            stats: self.stats.clone(),
        })
    }

    /// Asks whoever serves `subject` and waits at most `timeout` for the answer.
    pub async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        match &self.inner {
            Inner::Local(local) => local.request(subject, payload, timeout).await,
            Inner::Nats(client) => nats::request(client, subject, payload, timeout).await,
        }
    }

    /// Serves requests on `subject`: each comes with the means to answer it.
    pub async fn serve(&self, subject: &str) -> Result<Requests, BusError> {
        let inner = match &self.inner {
            Inner::Local(local) => RequestsInner::Local(local.serve(subject)),
            Inner::Nats(client) => RequestsInner::Nats {
                subscriber: client
                    .subscribe(subject.to_owned())
                    .await
                    .map_err(|e| BusError::Io(e.to_string()))?,
                client: client.clone(),
            },
        };
        Ok(Requests { inner })
    }

    /// Serves requests on `subject` as one of the members of `group`: each request goes to
    /// one member only (NATS queue groups; in-process, to the first server).
    pub async fn serve_shared(&self, subject: &str, group: &str) -> Result<Requests, BusError> {
        let inner = match &self.inner {
            Inner::Local(local) => RequestsInner::Local(local.serve(subject)),
            Inner::Nats(client) => RequestsInner::Nats {
                subscriber: client
                    .queue_subscribe(subject.to_owned(), group.to_owned())
                    .await
                    .map_err(|e| BusError::Io(e.to_string()))?,
                client: client.clone(),
            },
        };
        Ok(Requests { inner })
    }

    /// Waits until what this node published has reached the server (NATS), so that a test
    /// or a stop knows it went.
    pub async fn flush(&self) -> Result<(), BusError> {
        match &self.inner {
            Inner::Local(_) => Ok(()),
            Inner::Nats(client) => client
                .flush()
                .await
                .map_err(|e| BusError::Io(e.to_string())),
        }
    }
}

/// Messages of one subject, in order; bounded (see [`SUBSCRIPTION_CAPACITY`]).
pub struct Subscription {
    inner: SubscriptionInner,
    stats: Arc<BusStats>,
}

enum SubscriptionInner {
    Local(tokio::sync::mpsc::Receiver<Bytes>),
    Nats(async_nats::Subscriber),
}

impl Subscription {
    /// The next message, or `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<Bytes> {
        use futures_util::StreamExt;
        let payload = match &mut self.inner {
            SubscriptionInner::Local(rx) => rx.recv().await,
            SubscriptionInner::Nats(sub) => sub.next().await.map(|m| m.payload),
        }?;
        BusStats::count(&self.stats.received);
        Some(payload)
    }
}

/// Requests on one subject, each with its answer to give.
pub struct Requests {
    inner: RequestsInner,
}

enum RequestsInner {
    Local(tokio::sync::mpsc::Receiver<(Bytes, tokio::sync::oneshot::Sender<Bytes>)>),
    Nats {
        subscriber: async_nats::Subscriber,
        client: async_nats::Client,
    },
}

/// A request and the means to answer it.
pub struct Request {
    /// What was asked.
    pub payload: Bytes,
    answer: Answer,
}

enum Answer {
    Local(tokio::sync::oneshot::Sender<Bytes>),
    Nats {
        client: async_nats::Client,
        reply: Option<async_nats::Subject>,
    },
}

impl Requests {
    /// The next request, or `None` once serving has ended.
    pub async fn next(&mut self) -> Option<Request> {
        use futures_util::StreamExt;
        match &mut self.inner {
            RequestsInner::Local(rx) => {
                let (payload, tx) = rx.recv().await?;
                Some(Request {
                    payload,
                    answer: Answer::Local(tx),
                })
            }
            RequestsInner::Nats { subscriber, client } => {
                let message = subscriber.next().await?;
                Some(Request {
                    payload: message.payload,
                    answer: Answer::Nats {
                        client: client.clone(),
                        reply: message.reply,
                    },
                })
            }
        }
    }
}

impl Request {
    /// Answers the request (a request nobody waits for any more is answered into the void).
    pub async fn respond(self, payload: Bytes) -> Result<(), BusError> {
        match self.answer {
            Answer::Local(tx) => {
                let _ = tx.send(payload);
                Ok(())
            }
            Answer::Nats {
                client,
                reply: Some(reply),
            } => client
                .publish(reply, payload)
                .await
                .map_err(|e| BusError::Io(e.to_string())),
            Answer::Nats { reply: None, .. } => Ok(()),
        }
    }
}
