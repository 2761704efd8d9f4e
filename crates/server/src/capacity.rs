//! How many media connections this process can hold, and the slots that count them.
//!
//! A process may open only so many files; each listener is one socket. The server raises its
//! soft file limit to the hard limit at start, keeps a reserve for the database, the
//! listener socket and speakers, and refuses listeners beyond the rest with 503 and a
//! Retry-After, rather than failing in accept().

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Files kept for everything that is not a listener (store, logs, the people on stage, API
/// calls); people on stage are not counted against the listener budget.
pub const RESERVED_FILES: u64 = 512;

/// The listener budget of this process.
#[derive(Debug)]
pub struct Capacity {
    max: usize,
    open: AtomicUsize,
}

/// One counted media connection; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    capacity: Arc<Capacity>,
}

impl Capacity {
    /// A budget of `max` listeners.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: AtomicUsize::new(0),
        })
    }

    /// Raises the soft file limit as far as allowed and returns the listener budget it
    /// leaves, or `configured` if that is smaller.
    pub fn from_file_limit(configured: Option<usize>) -> (Arc<Self>, u64) {
        let files = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "could not read or raise the file limit");
                rlimit::getrlimit(rlimit::Resource::NOFILE)
                    .map(|(soft, _)| soft)
                    .unwrap_or(1024)
            }
        };
        let budget = files.saturating_sub(RESERVED_FILES) as usize;
        let max = configured.map_or(budget, |c| c.min(budget));
        (Self::new(max), files)
    }

    /// A place for a listener, or `None` when the budget is spent.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(Slot {
            capacity: self.clone(),
        })
    }

    /// Media connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The listener budget.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.capacity.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_beyond_the_budget_are_refused_and_slots_come_back() {
        let cap = Capacity::new(2);
        let a = cap.try_acquire().unwrap();
        let _b = cap.try_acquire().unwrap();
        assert!(cap.try_acquire().is_none());
        assert_eq!(cap.open(), 2);
        drop(a);
        assert_eq!(cap.open(), 1);
        assert!(cap.try_acquire().is_some());
    }

    #[test]
    fn the_file_limit_is_raised_and_leaves_a_budget() {
        let (cap, files) = Capacity::from_file_limit(None);
        assert!(files >= 1024);
        assert_eq!(cap.max() as u64, files - RESERVED_FILES);
        let (small, _) = Capacity::from_file_limit(Some(10));
        assert_eq!(small.max(), 10);
    }
}
