//! How often listeners' writers wake: every frame for a small audience, in batches for a
//! large one, so that writes per second stay within what the machine can do.
//!
//! Fan-out costs writes, not bytes: a small write costs microseconds of CPU whatever its
//! size. With `n` listeners woken every `k` frames, the server makes `n × 50 / k` writes a
//! second; the policy picks the smallest `k` that keeps this within a budget, and raises it
//! further when writers fall behind (measured lag), so every listener still gets every frame
//! within a second plus the cadence.

use std::time::Duration;

/// The cadence policy (no I/O, no clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CadencePolicy {
    /// Writes per second the whole fan-out may make (default 40 000: well within the
    /// ~100 000 small writes a second this class of 2-core machine manages, leaving room for
    /// everything else).
    pub writes_per_sec: f64,
    /// The longest cadence, in frames (default 25: 500 ms).
    pub max_frames: u32,
}

impl Default for CadencePolicy {
    fn default() -> Self {
        Self {
            writes_per_sec: 40_000.0,
            max_frames: 25,
        }
    }
}

/// Frames per second of the mix.
const FRAMES_PER_SEC: f64 = 50.0;

impl CadencePolicy {
    /// Frames between wake-ups for `listeners` listeners, given the largest backlog (in
    /// frames) any of them had when it last read: writers more than a cadence behind double
    /// it.
    pub fn frames_per_wake(&self, listeners: usize, lag_frames: u64) -> u32 {
        let needed = (listeners as f64 * FRAMES_PER_SEC / self.writes_per_sec).ceil() as u32;
        let mut k = needed.clamp(1, self.max_frames.max(1));
        if lag_frames > 2 * u64::from(k) {
            k = (k * 2).min(self.max_frames.max(1));
        }
        k
    }

    /// The cadence as a duration.
    pub fn period(frames: u32) -> Duration {
        Duration::from_millis(20 * u64::from(frames))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_audience_gets_every_frame_at_once() {
        let p = CadencePolicy::default();
        assert_eq!(p.frames_per_wake(1, 0), 1);
        assert_eq!(p.frames_per_wake(800, 0), 1);
    }

    #[test]
    fn a_crowd_is_woken_in_batches_within_the_write_budget() {
        let p = CadencePolicy::default();
        for n in [1_000, 5_000, 10_000, 19_000] {
            let k = p.frames_per_wake(n, 0);
            let writes = n as f64 * 50.0 / f64::from(k);
            assert!(
                writes <= p.writes_per_sec,
                "{n} listeners: k {k}, {writes} writes/s"
            );
            assert!(CadencePolicy::period(k) <= Duration::from_millis(500));
        }
        assert_eq!(p.frames_per_wake(10_000, 0), 13);
    }

    #[test]
    fn lagging_writers_double_the_cadence_up_to_the_cap() {
        let p = CadencePolicy::default();
        assert_eq!(p.frames_per_wake(5_000, 0), 7);
        assert_eq!(p.frames_per_wake(5_000, 30), 14);
        assert_eq!(p.frames_per_wake(1_000_000, 1_000), 25);
    }
}
