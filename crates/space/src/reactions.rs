//! Reaction aggregation: a million taps become one event per window.

use crate::UserId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The reactions a participant may send.
pub const REACTIONS: [&str; 8] = ["👏", "❤️", "😂", "😮", "😢", "🔥", "💯", "🙌"];

/// Counts reactions over fixed windows, with a per-user cap per window.
#[derive(Debug)]
pub struct ReactionWindow {
    length: Duration,
    per_user: u32,
    opened: Option<Instant>,
    counts: [u64; REACTIONS.len()],
    by_user: HashMap<UserId, u32>,
}

impl ReactionWindow {
    /// A window of `length`, accepting at most `per_user` reactions from one user in each.
    pub fn new(length: Duration, per_user: u32) -> Self {
        Self {
            length,
            per_user,
            opened: None,
            counts: [0; REACTIONS.len()],
            by_user: HashMap::new(),
        }
    }

    /// Counts one reaction; returns false if `emoji` is unknown. Reactions over the user's
    /// cap are dropped silently (they are counted as sent, not shown).
    pub fn add(&mut self, user: UserId, emoji: &str, now: Instant) -> bool {
        let Some(index) = REACTIONS.iter().position(|r| *r == emoji) else {
            return false;
        };
        let sent = self.by_user.entry(user).or_insert(0);
        if *sent < self.per_user {
            *sent += 1;
            self.counts[index] += 1;
            self.opened.get_or_insert(now);
        }
        true
    }

    /// Counts `n` reactions `emoji` gathered elsewhere (an edge, which capped them per user
    /// there); returns false if `emoji` is unknown.
    pub fn add_count(&mut self, emoji: &str, n: u64, now: Instant) -> bool {
        let Some(index) = REACTIONS.iter().position(|r| *r == emoji) else {
            return false;
        };
        if n > 0 {
            self.counts[index] = self.counts[index].saturating_add(n);
            self.opened.get_or_insert(now);
        }
        true
    }

    /// When the open window closes, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.opened.map(|t| t + self.length)
    }

    /// Closes the window if its time has come and returns its counts (non-zero only).
    pub fn poll(&mut self, now: Instant) -> Option<Vec<(String, u64)>> {
        if self.deadline()? > now {
            return None;
        }
        let counts = REACTIONS
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(e, n)| (e.to_string(), n))
            .collect();
        self.opened = None;
        self.counts = [0; REACTIONS.len()];
        self.by_user.clear();
        Some(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_taps_become_one_event_per_window() {
        let t0 = Instant::now();
        let mut w = ReactionWindow::new(Duration::from_millis(500), 5);
        for user in 0..100_000 {
            assert!(w.add(user, "👏", t0));
        }
        w.add(1, "🔥", t0);
        assert_eq!(w.poll(t0 + Duration::from_millis(499)), None);
        let counts = w.poll(t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(counts, vec![("👏".into(), 100_000), ("🔥".into(), 1)]);
        assert_eq!(w.poll(t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn one_user_cannot_flood_a_window() {
        let t0 = Instant::now();
        let mut w = ReactionWindow::new(Duration::from_secs(1), 5);
        for _ in 0..1000 {
            w.add(9, "❤️", t0);
        }
        assert!(!w.add(9, "not an emoji", t0));
        assert_eq!(w.poll(t0 + Duration::from_secs(1)).unwrap()[0].1, 5);
    }
}
