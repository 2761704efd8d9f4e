//! Sign-in throttling per handle, decided without I/O: a few wrong passwords are free, then
//! each one makes the account wait twice as long (up to a cap) before the next try is even
//! checked; a right password clears it.
//!
//! Keyed by handle, so guessing one account's password from a thousand addresses is as slow
//! as from one. The wait is short and capped, so that nobody can lock a person out of their
//! account for long by failing on purpose.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The policy; the defaults suit people who mistype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Wrong passwords in a row that cost nothing (default 5).
    pub free: u32,
    /// The wait after the first one that is not free; it doubles with each next (default 1 s).
    pub first_wait: Duration,
    /// The longest wait (default 5 minutes).
    pub max_wait: Duration,
    /// Handles remembered at most; past it the oldest are forgotten (default 100 000).
    pub capacity: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            free: 5,
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(300),
            capacity: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// No try is checked before this.
    until: Instant,
    /// The last failure, to forget the quiet.
    last: Instant,
}

/// Failed sign-ins per handle.
///
/// Drive it so: [`check`](Self::check) before the password is hashed (a refusal costs no
/// hash), then [`failed`](Self::failed) or [`succeeded`](Self::succeeded) with the outcome.
#[derive(Debug, Default)]
pub struct Throttle {
    policy: Policy,
    failures: HashMap<String, Failures>,
}

impl Throttle {
    /// A throttle with `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            failures: HashMap::new(),
        }
    }

    /// Whether a try for `handle` may be checked at `now`; if not, how long to wait.
    pub fn check(&self, handle: &str, now: Instant) -> Result<(), Duration> {
        match self.failures.get(handle) {
            Some(f) if f.until > now => Err(f.until - now),
            _ => Ok(()),
        }
    }

    /// A wrong password for `handle` at `now`.
    pub fn failed(&mut self, handle: &str, now: Instant) {
        if self.failures.len() >= self.policy.capacity && !self.failures.contains_key(handle) {
            self.forget_oldest(now);
        }
        let p = self.policy;
        let f = self.failures.entry(handle.to_owned()).or_insert(Failures {
            count: 0,
            until: now,
            last: now,
        });
        f.count = f.count.saturating_add(1);
        f.last = now;
        if let Some(over) = f.count.checked_sub(p.free).filter(|n| *n > 0) {
            let wait = p
                .first_wait
                .saturating_mul(1u32 << (over - 1).min(20))
                .min(p.max_wait);
            f.until = now + wait;
        }
    }

    /// A right password for `handle`: its failures are forgotten.
    pub fn succeeded(&mut self, handle: &str) {
        self.failures.remove(handle);
    }

    /// Handles remembered.
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// Whether no handle is remembered.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }

    /// Forgets handles that have not failed for twice the longest wait: their count starts
    /// again from nothing.
    pub fn forget_quiet(&mut self, now: Instant) {
        let keep = self.policy.max_wait * 2;
        self.failures
            .retain(|_, f| now.saturating_duration_since(f.last) < keep);
    }

    fn forget_oldest(&mut self, now: Instant) {
        self.forget_quiet(now);
        if self.failures.len() >= self.policy.capacity {
            // Still full of recent failures: drop the tenth that failed longest ago.
            let mut lasts: Vec<Instant> = self.failures.values().map(|f| f.last).collect();
            let cut = lasts.len() / 10;
            lasts.select_nth_unstable(cut);
            let before = lasts[cut];
            self.failures.retain(|_, f| f.last > before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            free: 3,
            first_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(8),
            capacity: 10,
        }
    }

    #[test]
    fn a_few_mistakes_are_free_then_each_doubles_the_wait_up_to_the_cap() {
        let mut t = Throttle::new(policy());
        let t0 = Instant::now();
        for _ in 0..3 {
            t.check("alice", t0).unwrap();
            t.failed("alice", t0);
        }
        t.check("alice", t0).unwrap();
        let mut waits = Vec::new();
        let mut now = t0;
        for _ in 0..6 {
            t.failed("alice", now);
            let wait = t.check("alice", now).unwrap_err();
            waits.push(wait.as_secs());
            now += wait;
            t.check("alice", now).unwrap();
        }
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
        // Someone else is not held up by alice's attacker.
        t.check("bob", t0).unwrap();
    }

    #[test]
    fn the_right_password_clears_the_count() {
        let mut t = Throttle::new(policy());
        let now = Instant::now();
        for _ in 0..4 {
            t.failed("alice", now);
        }
        assert!(t.check("alice", now).is_err());
        t.succeeded("alice");
        t.check("alice", now).unwrap();
        assert!(t.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_quiet_first() {
        let mut t = Throttle::new(policy());
        let t0 = Instant::now();
        for i in 0..10 {
            t.failed(&format!("old{i}"), t0);
        }
        let later = t0 + Duration::from_secs(60);
        t.failed("new", later);
        assert_eq!(t.len(), 1, "the quiet ones made room");
        for i in 0..20 {
            t.failed(&format!("busy{i}"), later + Duration::from_millis(i));
        }
        assert!(t.len() <= 10, "{}", t.len());
        assert!(t.failures.contains_key("busy19"), "the newest stay");
    }
}
