//! How many media connections this process can hold, and the slots that count them.
//!
//! A process may open only so many files; each listener is one socket. The server raises its
//! soft file limit to the hard limit at start (the shell's part), keeps a reserve for the
//! database, the listener socket and speakers, and refuses listeners beyond the rest with 503
//! and a Retry-After, rather than failing in accept().

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

    /// The listener budget that a file limit of `files` leaves, or `configured` if that is
    /// smaller.
    pub fn for_files(files: u64, configured: Option<usize>) -> Arc<Self> {
        let budget = files.saturating_sub(RESERVED_FILES) as usize;
        Self::new(configured.map_or(budget, |c| c.min(budget)))
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
    fn the_file_limit_leaves_a_budget_past_the_reserve() {
        let cap = Capacity::for_files(20_000, None);
        assert_eq!(cap.max() as u64, 20_000 - RESERVED_FILES);
        assert_eq!(Capacity::for_files(20_000, Some(10)).max(), 10);
        assert_eq!(Capacity::for_files(100, None).max(), 0);
    }
}
