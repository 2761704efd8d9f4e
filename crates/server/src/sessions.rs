//! The sessions a node looked up lately, trusted for a minute so that a signed-in client's
//! requests do not each cost a database read.

use stentor_store::User;

/// Sessions recently looked up, so that a signed-in client's requests do not each cost a
/// database read: an entry is trusted for [`SessionCache::TTL_SECS`], and signing out on this
/// node removes it at once (on another node of a cluster, a session signed out elsewhere
/// still works for at most that long).
#[derive(Default)]
pub struct SessionCache {
    entries: parking_lot::Mutex<std::collections::HashMap<String, (User, i64)>>,
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
}
