//! The sessions a node looked up lately, trusted for a minute, and the reads of the others
//! gathered into batches, so that a crowd's requests do not each cost a database read; and
//! the accounts' standing (role, suspension) looked up lately, likewise.

use std::collections::HashMap;
use stentor_store::{Store, User};
use tokio::sync::{mpsc, oneshot};

/// Sessions recently looked up, so that a signed-in client's requests do not each cost a
/// database read: an entry is trusted for [`SessionCache::TTL_SECS`], and signing out on this
/// node removes it at once (on another node of a cluster, a session signed out elsewhere
/// still works for at most that long).
#[derive(Default)]
pub struct SessionCache {
    entries: parking_lot::Mutex<HashMap<String, (User, i64)>>,
}

impl SessionCache {
    /// Seconds an entry is trusted.
    pub const TTL_SECS: i64 = 60;
    /// Entries held at most (then the cache starts over).
    pub const MOST: usize = 100_000;

    /// The user of the session whose token hashes to `hash`, if looked up lately.
    pub fn get(&self, hash: &str, now: i64) -> Option<User> {
        let entries = self.entries.lock();
        let (user, at) = entries.get(hash)?;
        (now - at < Self::TTL_SECS).then(|| user.clone())
    }

    /// Remembers a session looked up at `now`.
    pub fn put(&self, hash: String, user: User, now: i64) {
        let mut entries = self.entries.lock();
        if entries.len() >= Self::MOST {
            entries.clear();
        }
        entries.insert(hash, (user, now));
    }

    /// Forgets a session (signed out).
    pub fn forget(&self, hash: &str) {
        self.entries.lock().remove(hash);
    }

    /// Forgets every session of `user` (its standing changed: the next request reads it).
    pub fn forget_user(&self, user: u64) {
        self.entries.lock().retain(|_, (u, _)| u.id != user);
    }
}

/// Why a session could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Too many reads wait already: the request is refused at once.
    #[error("too many sessions are waiting to be read")]
    Busy,
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

type Answer = oneshot::Sender<Result<Option<User>, String>>;

/// Reads of sessions the cache did not have. One read at a time goes to the store alone;
/// under a crowd of first requests (a like burst from accounts the node has not seen), the
/// ones that arrive while [`SessionReader::IN_FLIGHT`] statements run wait and go together,
/// one statement for up to [`SessionReader::BATCH`], so that the database does one lookup
/// where it did hundreds.
#[derive(Clone)]
pub struct SessionReader {
    queue: mpsc::Sender<(String, Answer)>,
}

impl SessionReader {
    /// Reads waiting at most (past it, a request is answered 503).
    pub const BOUND: usize = 16_384;
    /// Sessions read in one statement at most.
    pub const BATCH: usize = 512;
    /// Statements running at once at most.
    pub const IN_FLIGHT: usize = 2;

    /// Starts the reader.
    pub fn start(store: Store) -> Self {
        let (queue, requests) = mpsc::channel(Self::BOUND);
        tokio::spawn(read(store, requests));
        Self { queue }
    }

    /// The user of the unexpired session whose token hashes to `hash`, if any.
    pub async fn user(&self, hash: String) -> Result<Option<User>, ReadError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .try_send((hash, done))
            .map_err(|_| ReadError::Busy)?;
        answer
            .await
            .map_err(|_| ReadError::Store("the session reader stopped".into()))?
            .map_err(ReadError::Store)
    }
}

/// Takes what has arrived, reads it in one statement (at most [`SessionReader::IN_FLIGHT`]
/// at a time), and answers each request.
async fn read(store: Store, mut requests: mpsc::Receiver<(String, Answer)>) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(SessionReader::IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(SessionReader::BATCH);
        if requests.recv_many(&mut batch, SessionReader::BATCH).await == 0 {
            return;
        }
        let store = store.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut hashes: Vec<String> = batch.iter().map(|(h, _)| h.clone()).collect();
            hashes.sort_unstable();
            hashes.dedup();
            let now = crate::clock::unix_now() as i64;
            match store.session_users(&hashes, now).await {
                Ok(found) => {
                    let found: HashMap<String, User> = found.into_iter().collect();
                    for (hash, answer) in batch {
                        let _ = answer.send(Ok(found.get(&hash).cloned()));
                    }
                }
                Err(e) => {
                    for (_, answer) in batch {
                        let _ = answer.send(Err(e.to_string()));
                    }
                }
            }
        });
    }
}

/// The sessions of a node: the cache in front, the batched reads behind it.
pub struct Sessions {
    cache: SessionCache,
    reader: SessionReader,
    /// Accounts' standing looked up lately: user → (role, suspended until (Unix ms), when read).
    standing: parking_lot::Mutex<HashMap<u64, Standing>>,
    store: Store,
}

/// An account's role and the end of its suspension, as read at a time (Unix seconds).
type Standing = (Option<String>, Option<i64>, i64);

impl Sessions {
    /// The cache, empty, with a reader on `store`.
    pub fn start(store: Store) -> Self {
        Self {
            cache: SessionCache::default(),
            reader: SessionReader::start(store.clone()),
            standing: Default::default(),
            store,
        }
    }

    /// An account's role and the end of its suspension (Unix ms): read at most once per
    /// [`SessionCache::TTL_SECS`] on this node (a change made here is seen at once, one made
    /// on another node within that time). `None` for no such account.
    pub async fn standing(
        &self,
        user: u64,
        now: i64,
    ) -> Result<Option<(Option<String>, Option<i64>)>, stentor_store::StoreError> {
        if let Some((role, until, at)) = self.standing.lock().get(&user)
            && now - at < SessionCache::TTL_SECS
        {
            return Ok(Some((role.clone(), *until)));
        }
        let read = self.store.account_standing(user).await?;
        if let Some((role, until)) = &read {
            let mut standing = self.standing.lock();
            if standing.len() >= SessionCache::MOST {
                standing.clear();
            }
            standing.insert(user, (role.clone(), *until, now));
        }
        Ok(read)
    }

    /// The user of the unexpired session whose token hashes to `hash`: from the cache when
    /// looked up in the last minute, else read (and then cached).
    pub async fn user(&self, hash: &str, now: i64) -> Result<Option<User>, ReadError> {
        if let Some(user) = self.cache.get(hash, now) {
            return Ok(Some(user));
        }
        let user = self.reader.user(hash.to_owned()).await?;
        if let Some(u) = &user {
            self.cache.put(hash.to_owned(), u.clone(), now);
        }
        Ok(user)
    }

    /// Forgets a session (signed out).
    pub fn forget(&self, hash: &str) {
        self.cache.forget(hash);
    }

    /// Forgets every session of `user` this node holds, and its standing.
    pub fn forget_user(&self, user: u64) {
        self.cache.forget_user(user);
        self.standing.lock().remove(&user);
    }
}
