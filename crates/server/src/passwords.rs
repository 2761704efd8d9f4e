//! Password hashing (argon2id) within a budget: a few threads of its own that keep their
//! memory, a bounded queue, a per-handle throttle and the same cost for unknown handles.

use crate::error::ApiError;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use stentor_gate::throttle;

/// Hashes a password with argon2id and a random salt (blocking: call off the async threads).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    hash_with(password, &mut Vec::new())
}

/// Checks a password against a stored hash (blocking).
pub fn verify_password(password: &str, hash: &str) -> bool {
    verify_with(password, hash, &mut Vec::new())
}

/// The most memory a stored hash may ask for, in argon2 blocks of 1 KiB: twice the default,
/// so that the budget of memory holds whatever is in the database.
const MAX_BLOCKS: usize = 2 * Params::DEFAULT_M_COST as usize;

/// The blocks of `memory` that a hash with `params` works in, grown once and then reused, so
/// a hashing thread holds its 19 MiB for good instead of asking the allocator each time.
fn blocks<'a>(memory: &'a mut Vec<Block>, params: &Params) -> Option<&'a mut [Block]> {
    let n = params.block_count();
    if n > MAX_BLOCKS {
        return None;
    }
    if memory.len() < n {
        memory.resize(n, Block::default());
    }
    Some(&mut memory[..n])
}

/// [`hash_password`] working in `memory`.
fn hash_with(password: &str, memory: &mut Vec<Block>) -> Result<String, ApiError> {
    let internal = |e: &dyn std::fmt::Display| ApiError::Internal(e.to_string());
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| internal(&e))?;
    let argon = Argon2::default();
    let params = argon.params().clone();
    let mut raw = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut raw)
        .map_err(|e| internal(&e))?;
    let memory = blocks(memory, &params).ok_or_else(|| internal(&"argon2 parameters"))?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| internal(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| internal(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// [`verify_password`] working in `memory`; the comparison takes the same time wherever the
/// outputs differ.
fn verify_with(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let mut check = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from)
            .ok()?;
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let mut raw = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut raw).ok()?;
        let memory = blocks(memory, &params)?;
        let argon = Argon2::new(algorithm, version, params);
        let output = Output::init_with(expected.len(), |out| {
            argon
                .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *memory)
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .ok()?;
        Some(output == expected)
    };
    check().unwrap_or(false)
}

/// Most hashes waiting for a hashing thread; past it callers are told to come back.
const MAX_WAITING: usize = 64;

/// Work for a hashing thread, given the thread's memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The budget of password hashing: each argon2id hash takes 19 MiB and tens of milliseconds
/// of a core, so they run on a few threads of their own (twice the cores), which keep their
/// memory from one hash to the next; a few dozen wait in a bounded queue and the rest are
/// told to come back (503 + Retry-After). Failed sign-ins are throttled per handle, and an
/// unknown handle costs the same hash as a known one, so the time of an answer does not tell
/// which handles exist.
pub struct Passwords {
    jobs: std::sync::mpsc::SyncSender<Job>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
    throttle: Mutex<throttle::Throttle>,
    /// A real hash of nothing anyone knows, checked against for handles that do not exist.
    dummy: String,
}

impl Passwords {
    /// A budget of `threads` hashes at once; the threads end when it is dropped.
    pub fn new(threads: usize, throttle: throttle::Policy) -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(MAX_WAITING);
        let queue = Arc::new(Mutex::new(queue));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..threads.max(1) {
            let (queue, running, peak) = (queue.clone(), running.clone(), peak.clone());
            let done = done.clone();
            std::thread::Builder::new()
                .name("stentor-hash".into())
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        let job = queue.lock().recv();
                        let Ok(job) = job else { return };
                        let now = running.fetch_add(1, Ordering::Relaxed) + 1;
                        peak.fetch_max(now, Ordering::Relaxed);
                        // Counted before the answer leaves, so a caller that has its answer
                        // sees its hash counted.
                        done.fetch_add(1, Ordering::Relaxed);
                        job(&mut memory);
                        running.fetch_sub(1, Ordering::Relaxed);
                    }
                })?;
        }
        let dummy = hash_password(&format!("{:x?}", rand::random::<[u8; 32]>()))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self {
            jobs,
            running,
            peak,
            done,
            throttle: Mutex::new(throttle::Throttle::new(throttle)),
            dummy,
        })
    }

    /// The default budget: twice the cores.
    pub fn for_this_machine() -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(2 * cores, throttle::Policy::default())
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move |memory| hash_with(&password, memory)).await?
    }

    /// Checks `password` for `handle` against its stored hash (`None`: no such account, which
    /// costs the same). Refused without hashing while the handle is throttled.
    pub async fn verify(
        &self,
        handle: &str,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        if let Err(wait) = self.throttle.lock().check(handle, Instant::now()) {
            return Err(ApiError::Throttled {
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.clone());
        let ok = self
            .run(move |memory| verify_with(&password, &hash, memory))
            .await?
            && known;
        let mut throttle = self.throttle.lock();
        if ok {
            throttle.succeeded(handle);
        } else {
            throttle.failed(handle, Instant::now());
        }
        Ok(ok)
    }

    /// Forgets handles that have not failed for a while (call now and then).
    pub fn forget_quiet(&self) {
        self.throttle.lock().forget_quiet(Instant::now());
    }

    /// Hashes running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    /// Hashes done so far (sign-ups, sign-ins, unknown handles alike).
    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// The most hashes that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Runs `work` on a hashing thread, or says to come back when too many wait.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = tx.send(work(memory));
        });
        self.jobs.try_send(job).map_err(|_| ApiError::Overloaded {
            reason: "hashing_busy",
            retry_after: 1 + rand::random::<u64>() % 3,
        })?;
        rx.await
            .map_err(|_| ApiError::Internal("a hashing thread stopped".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
        // Hashes made by the argon2 crate's own API verify too, and the other way round.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(&[1u8; 16]).unwrap();
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("correct horse", &theirs));
        let ours = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &ours)
                .is_ok()
        );
    }
}
