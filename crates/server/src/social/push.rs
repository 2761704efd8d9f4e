//! Web Push: the server's VAPID key (RFC 8292), messages encrypted for each browser
//! (RFC 8291) and sent to its push service (RFC 8030) with `TTL`, `Urgency` and `Topic` (a
//! newer message with the same topic replaces one not yet delivered), from a bounded queue by
//! a few senders at a time. A subscription its push service says is gone is forgotten.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use stentor_store::{PushSubscription, Store};
use tokio::sync::mpsc;
use web_push_native::jwt_simple::algorithms::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
};
use web_push_native::jwt_simple::claims::Claims;

/// Messages waiting to be sent, past which new ones are dropped (the inbox has them).
const QUEUE: usize = 10_000;
/// Messages in flight at once.
const SENDERS: usize = 16;
/// How long a push service may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A message for one browser.
pub struct Message {
    /// Where.
    pub to: PushSubscription,
    /// The JSON shown by the app's service worker.
    pub body: serde_json::Value,
    /// Messages with the same topic replace each other at the push service (≤ 32
    /// characters of the URL-safe base64 alphabet).
    pub topic: String,
    /// `very-low`, `low`, `normal` or `high`.
    pub urgency: &'static str,
    /// Seconds the push service keeps it for a browser that is offline.
    pub ttl: u32,
}

/// Counts, for metrics.
#[derive(Default)]
pub struct PushStats {
    /// Accepted by a push service.
    pub sent: AtomicU64,
    /// Refused or failed.
    pub failed: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// Pushes about one subject (the likes of a post, an account's new followers) at most once
/// in this long to its recipient: the inbox counts them all; a phone buzzes once a minute.
pub const EVERY: Duration = Duration::from_secs(60);
/// Subjects remembered for that at most (then the memory starts over).
const MOST_SUBJECTS: usize = 100_000;

/// The sender.
pub struct Pusher {
    key: ES256KeyPair,
    public: String,
    contact: String,
    insecure: bool,
    queue: mpsc::Sender<Message>,
    /// When each subject was last pushed.
    last: parking_lot::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Counts.
    pub stats: Arc<PushStats>,
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// Not an https URL (or, where allowed for tests, an http one).
    #[error("endpoint: an https URL of a push service")]
    Endpoint,
    /// The browser's key is not a P-256 point.
    #[error("keys.p256dh: the browser's P-256 public key, base64url")]
    Key,
    /// The authentication secret is not 16 bytes.
    #[error("keys.auth: 16 bytes, base64url")]
    Auth,
}

impl Pusher {
    /// The pusher with the key at `key_file` (made when `make` and missing), signing as
    /// `contact` (a `mailto:` or `https:` URL); `insecure` lets endpoints be plain http (tests).
    pub fn open(
        store: Store,
        key_file: &Path,
        make: bool,
        contact: String,
        insecure: bool,
    ) -> Result<Arc<Self>, crate::secrets::KeyError> {
        let raw = if make {
            crate::secrets::ticket_key(key_file)?
        } else {
            crate::secrets::shared_ticket_key(key_file)?
        };
        let key =
            ES256KeyPair::from_bytes(&raw).map_err(|_| crate::secrets::KeyError::Damaged {
                path: key_file.into(),
                len: raw.len(),
            })?;
        let public = URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed());
        let (queue, messages) = mpsc::channel(QUEUE);
        let stats = Arc::new(PushStats::default());
        let pusher = Arc::new(Self {
            key,
            public,
            contact,
            insecure,
            queue,
            last: parking_lot::Mutex::default(),
            stats: stats.clone(),
        });
        tokio::spawn(send_all(pusher.clone(), store, messages));
        Ok(pusher)
    }

    /// The public key browsers subscribe with (`applicationServerKey`), base64url.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// Checks a subscription a browser sent.
    pub fn check(&self, sub: &PushSubscription) -> Result<(), SubscriptionError> {
        let uri: axum::http::Uri = sub
            .endpoint
            .parse()
            .map_err(|_| SubscriptionError::Endpoint)?;
        let scheme_ok = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => self.insecure,
            _ => false,
        };
        if !scheme_ok || uri.host().is_none() || sub.endpoint.len() > 1024 {
            return Err(SubscriptionError::Endpoint);
        }
        let key = URL_SAFE_NO_PAD
            .decode(sub.p256dh.trim_end_matches('='))
            .map_err(|_| SubscriptionError::Key)?;
        web_push_native::p256::PublicKey::from_sec1_bytes(&key)
            .map_err(|_| SubscriptionError::Key)?;
        let auth = URL_SAFE_NO_PAD
            .decode(sub.auth.trim_end_matches('='))
            .map_err(|_| SubscriptionError::Auth)?;
        if auth.len() != 16 {
            return Err(SubscriptionError::Auth);
        }
        Ok(())
    }

    /// Whether a push about `subject` is due (none in the last [`EVERY`]); if so, it counts
    /// as pushed now.
    pub fn due(&self, subject: &str) -> bool {
        let now = std::time::Instant::now();
        let mut last = self.last.lock();
        if last
            .get(subject)
            .is_some_and(|at| now.duration_since(*at) < EVERY)
        {
            return false;
        }
        if last.len() >= MOST_SUBJECTS {
            last.clear();
        }
        last.insert(subject.to_owned(), now);
        true
    }

    /// Queues a message; dropped (and counted) when the queue is full.
    pub fn push(&self, message: Message) {
        if self.queue.try_send(message).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The VAPID `Authorization` header for `endpoint`: a JWT for its origin (with the port
    /// when it is not the default one), valid 12 hours, and the public key.
    fn vapid(&self, endpoint: &axum::http::Uri) -> Option<String> {
        let host = endpoint.host()?;
        let scheme = endpoint.scheme_str()?;
        let origin = match endpoint.port_u16() {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        let claims = Claims::create(Duration::from_secs(12 * 3600).into())
            .with_audience(origin)
            .with_subject(&self.contact);
        let token = self.key.sign(claims).ok()?;
        Some(format!("vapid t={token}, k={}", self.public))
    }

    /// Encrypts and sends one message; `Ok(false)` when the subscription is gone.
    async fn send(&self, client: &reqwest::Client, m: &Message) -> Result<bool, String> {
        let endpoint: axum::http::Uri = m.to.endpoint.parse().map_err(|e| format!("{e}"))?;
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s.trim_end_matches('='));
        let ua_public = decode(&m.to.p256dh)
            .ok()
            .and_then(|k| web_push_native::p256::PublicKey::from_sec1_bytes(&k).ok())
            .ok_or("a bad browser key")?;
        let auth = decode(&m.to.auth).map_err(|e| e.to_string())?;
        if auth.len() != 16 {
            return Err("a bad authentication secret".into());
        }
        let auth = web_push_native::Auth::clone_from_slice(&auth);
        let request = web_push_native::WebPushBuilder::new(endpoint.clone(), ua_public, auth)
            .with_valid_duration(Duration::from_secs(u64::from(m.ttl)))
            .build(m.body.to_string())
            .map_err(|e| e.to_string())?;
        let vapid = self
            .vapid(&endpoint)
            .ok_or("cannot sign for this endpoint")?;
        let (parts, body) = request.into_parts();
        let response = client
            .post(&m.to.endpoint)
            .headers(parts.headers)
            .header("authorization", vapid)
            .header("urgency", m.urgency)
            .header("topic", &m.topic)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            404 | 410 => Ok(false),
            status => Err(format!("the push service answered {status}")),
        }
    }
}

/// Sends the queued messages, [`SENDERS`] at a time.
async fn send_all(pusher: Arc<Pusher>, store: Store, mut messages: mpsc::Receiver<Message>) {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("an HTTP client with default settings");
    let slots = Arc::new(tokio::sync::Semaphore::new(SENDERS));
    while let Some(message) = messages.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (pusher, client, store) = (pusher.clone(), client.clone(), store.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match pusher.send(&client, &message).await {
                Ok(true) => {
                    pusher.stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {
                    pusher.stats.failed.fetch_add(1, Ordering::Relaxed);
                    let _ = store.remove_push_subscription(&message.to.endpoint).await;
                }
                Err(e) => {
                    pusher.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "a push was not delivered");
                }
            }
        });
    }
}

/// Queues the message of a notification to every subscription of its recipients.
pub async fn notify_all(
    pusher: &Pusher,
    store: &Store,
    users: &[u64],
    body: &serde_json::Value,
    topic: &str,
    urgency: &'static str,
    ttl: u32,
) {
    for chunk in users.chunks(1000) {
        match store.push_subscriptions(chunk).await {
            Ok(subs) => {
                for to in subs {
                    pusher.push(Message {
                        to,
                        body: body.clone(),
                        topic: topic.to_owned(),
                        urgency,
                        ttl,
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read push subscriptions"),
        }
    }
}

/// Pushes an event of the inbox (`follow`, `like`, `reply`, `repost`) to `user`'s browsers,
/// at most once a minute per `subject` (its Topic too, so that a newer one replaces one not
/// yet delivered), in a task of its own.
pub fn notify_event(
    pusher: &Arc<Pusher>,
    store: &Store,
    user: u64,
    subject: String,
    body: serde_json::Value,
) {
    if !pusher.due(&format!("{user}:{subject}")) {
        return;
    }
    let (pusher, store) = (pusher.clone(), store.clone());
    tokio::spawn(async move {
        notify_all(&pusher, &store, &[user], &body, &subject, "normal", 3600).await;
    });
}
