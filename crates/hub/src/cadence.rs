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

/// When one of a feed's writers passes. Writers that all wrote on the same frame would
/// make one burst of writes per cadence, and everything else on the machine (accepts, new
/// listeners' first audio, the listeners' own reads) would wait behind it; each writer keeps
/// the cadence at its own phase instead, so the same writes are spread over the cadence.
/// No frame waits longer than one cadence either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stagger {
    phase: u32,
    /// The next frame count at which a pass is due.
    due: u64,
    /// The frame count at the last pass.
    last: u64,
}

impl Stagger {
    /// The `index`-th writer of a feed: phases are spread evenly whatever the cadence.
    pub fn nth(index: usize) -> Self {
        // The golden ratio's fractional part spreads any prefix of writers over [0, 2^32).
        let phase = (index as u64).wrapping_mul(0x9E37_79B9) as u32;
        Self {
            phase,
            due: 0,
            last: 0,
        }
    }

    /// Whether a pass is due now that `n` timed frames have been published, with a cadence
    /// of `every` frames; when it is, the next one is scheduled at this writer's phase.
    pub fn due(&mut self, n: u64, every: u32) -> bool {
        let every = u64::from(every.max(1));
        // A cadence that has just shortened must not leave a far-off pass scheduled.
        if n < self.due && n < self.last + every {
            return false;
        }
        let offset = (u64::from(self.phase) * every) >> 32;
        let aligned = n - n % every + offset;
        self.due = if aligned > n {
            aligned
        } else {
            aligned + every
        };
        self.last = n;
        true
    }

    /// Like [`Stagger::due`], and when due, how many frames later than scheduled the writer
    /// got to it: 0 while the server keeps up, more when it is too busy to run its writers on
    /// time (whatever any one listener's connection does).
    pub fn due_late(&mut self, n: u64, every: u32) -> Option<u64> {
        let scheduled = self.due;
        if !self.due(n, every) {
            return None;
        }
        Some(if scheduled == 0 {
            0
        } else {
            n.saturating_sub(scheduled)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame counts (1..=frames) at which `writer` passes.
    fn passes(writer: &mut Stagger, frames: u64, every: u32) -> Vec<u64> {
        (1..=frames).filter(|&n| writer.due(n, every)).collect()
    }

    #[test]
    fn a_writer_passes_once_per_cadence_and_no_frame_waits_longer() {
        for index in 0..20 {
            let mut w = Stagger::nth(index);
            let at = passes(&mut w, 500, 7);
            for pair in at.windows(2) {
                assert!(pair[1] - pair[0] <= 7, "writer {index}: {at:?}");
            }
            // Once in step, exactly one pass per cadence.
            assert!(at.windows(2).skip(1).all(|p| p[1] - p[0] == 7), "{at:?}");
        }
    }

    #[test]
    fn the_writers_of_a_feed_spread_their_passes_over_the_cadence() {
        let every = 10;
        let mut per_frame = [0u32; 10];
        for index in 0..20 {
            let mut w = Stagger::nth(index);
            for n in passes(&mut w, 100, every).into_iter().skip(1) {
                per_frame[(n % 10) as usize] += 1;
            }
        }
        // Twenty writers, ten phases: no frame carries more than a few writers' passes.
        let most = *per_frame.iter().max().unwrap();
        let least = *per_frame.iter().min().unwrap();
        assert!(most <= 3 * least.max(1), "{per_frame:?}");
        assert!(least > 0, "{per_frame:?}");
    }

    #[test]
    fn a_writer_that_runs_late_says_by_how_much() {
        let mut w = Stagger::nth(0);
        let mut late = Vec::new();
        for n in 1..=30 {
            if let Some(l) = w.due_late(n, 5) {
                late.push(l);
            }
        }
        assert!(late.iter().all(|l| *l == 0), "{late:?}");
        // The writer does not run for 12 frames: its next pass is 7 or more frames late.
        let n = (31..).find(|&n| w.due_late(n, 5).is_some()).unwrap();
        let l = w.due_late(n + 12, 5).unwrap();
        assert!(l >= 7, "{l}");
    }

    #[test]
    fn with_every_frame_a_writer_passes_on_every_frame() {
        let mut w = Stagger::nth(3);
        assert_eq!(passes(&mut w, 5, 1), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_shorter_cadence_takes_effect_at_once() {
        let mut w = Stagger::nth(5);
        let mut at = Vec::new();
        for n in 1..=60 {
            if w.due(n, 25) {
                at.push(n);
            }
        }
        let last = *at.last().unwrap();
        // From 61 the cadence is 2 frames: the next pass comes within 2 frames.
        let next = (61..100).find(|&n| w.due(n, 2)).unwrap();
        assert!(next - last <= 25 && next <= 62, "last {last}, next {next}");
    }

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
