//! The decisions of a fan-out writer, without I/O: what one listener's turn in a pass comes
//! to (let go, nothing due, a write, after a skip to live), how many of the newest to shed
//! under overload, and when a writer with nobody left ends. Time is given, never read, so
//! the tests drive it by hand.

use std::time::{Duration, Instant};
use stentor_hub::wsframe::close;
use stentor_hub::{Position, Snapshot};

/// What a listener has of its own, as a pass sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Own {
    /// Its own bytes would have grown past their bound: it sends and does not read.
    pub overflow: bool,
    /// The close code queued for it, if one is.
    pub closing: Option<u16>,
    /// Bytes of its own are waiting (answers, pongs, a close).
    pub waiting: bool,
}

/// What one listener's turn in a pass comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Let it go; the label says why (for metrics).
    Drop(&'static str),
    /// Nothing is due.
    Idle,
    /// Write what is due: the rest of an unfinished frame, its own bytes and, unless a close
    /// has been queued (nothing may follow a close), the shared frames from its position.
    Write {
        /// Whether the shared frames go too.
        frames: bool,
    },
}

/// Decides a listener's turn. A listener that fell out of the ring first skips to live
/// (keeping `burst` frames): the turn comes with the number of frames skipped.
pub fn turn(own: Own, pos: &mut Position, snap: &Snapshot, burst: u64) -> (Turn, u64) {
    if own.overflow {
        // Nothing more can reach it in order, not even a close.
        return (Turn::Drop("not_reading"), 0);
    }
    if let Some(code) = own.closing {
        let unfinished = pos.is_due(&Snapshot::default());
        let turn = if unfinished || own.waiting {
            Turn::Write { frames: false }
        } else {
            // The close has gone out: the socket goes.
            Turn::Drop(close::label(code))
        };
        return (turn, 0);
    }
    let skipped = pos.catch_up(snap, burst);
    let turn = if pos.is_due(snap) || own.waiting {
        Turn::Write { frames: true }
    } else {
        Turn::Idle
    };
    (turn, skipped)
}

/// How many of a writer's listeners to let go while listeners are shed: a share a second
/// (`stentor_gate::shed::LISTENERS_SHED_PER_SEC`), counted over the time between passes.
#[derive(Debug)]
pub struct Shedding {
    last: Instant,
    credit: f64,
}

impl Shedding {
    /// Counting from `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            last: now,
            credit: 0.0,
        }
    }

    /// At a pass at `now`: how many of `held` listeners to shed, if listeners are `shed`.
    pub fn due(&mut self, now: Instant, shed: bool, held: usize) -> usize {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        if !shed {
            self.credit = 0.0;
            return 0;
        }
        stentor_gate::shed::listeners_to_shed(held, elapsed, &mut self.credit)
    }
}

/// Which listeners to shed, by index, the last first: the `n` newest (listeners are kept in
/// order of arrival, give or take the few a removal moved) that are not `closing` already.
/// Taking them out in this order never moves one still to be taken.
pub fn newest(n: usize, held: usize, closing: impl Fn(usize) -> bool) -> Vec<usize> {
    (0..held).rev().filter(|&i| !closing(i)).take(n).collect()
}

/// When a writer with nobody left ends: once it has been empty for its linger time, so that
/// a listener reconnecting at once still finds it, but an idle writer does not hold its
/// Space for ever.
#[derive(Debug)]
pub struct Linger {
    after: Duration,
    since: Option<Instant>,
}

impl Linger {
    /// A writer that ends after `after` empty.
    pub fn new(after: Duration) -> Self {
        Self { after, since: None }
    }

    /// At `now`, holding `held` listeners: whether the writer has been empty long enough.
    pub fn over(&mut self, now: Instant, held: usize) -> bool {
        if held > 0 {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        now.saturating_duration_since(since) >= self.after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn snap(start: u64, frames: usize) -> Snapshot {
        let mut s = Snapshot::default();
        s.fill(start, (0..frames).map(|i| Bytes::from(vec![i as u8; 10])));
        s
    }

    #[test]
    fn a_listener_with_frames_due_writes_and_one_up_to_date_waits() {
        let s = snap(100, 5);
        let mut behind = Position::at(102);
        assert_eq!(
            turn(Own::default(), &mut behind, &s, 2),
            (Turn::Write { frames: true }, 0)
        );
        let mut live = Position::at(105);
        assert_eq!(turn(Own::default(), &mut live, &s, 2), (Turn::Idle, 0));
        // Its own bytes go even when no frame is due.
        let own = Own {
            waiting: true,
            ..Own::default()
        };
        assert_eq!(
            turn(own, &mut live, &s, 2),
            (Turn::Write { frames: true }, 0)
        );
    }

    #[test]
    fn a_listener_out_of_the_ring_skips_to_live_and_says_how_far() {
        let s = snap(100, 5);
        let mut lost = Position::at(40);
        let (t, skipped) = turn(Own::default(), &mut lost, &s, 2);
        assert_eq!(t, Turn::Write { frames: true });
        assert_eq!(skipped, 63, "from 40 to 103, two frames before the head");
        assert_eq!(lost.next(), 103);
    }

    #[test]
    fn one_that_does_not_read_is_let_go_before_anything_else() {
        let s = snap(100, 5);
        let own = Own {
            overflow: true,
            waiting: true,
            closing: Some(close::POLICY),
        };
        let mut pos = Position::at(40);
        assert_eq!(turn(own, &mut pos, &s, 2), (Turn::Drop("not_reading"), 0));
        assert_eq!(pos.next(), 40, "no skip is counted for it");
    }

    #[test]
    fn after_a_close_only_the_close_goes_then_the_socket() {
        let s = snap(100, 5);
        let closing = Own {
            closing: Some(close::TRY_AGAIN_LATER),
            waiting: true,
            ..Own::default()
        };
        let mut pos = Position::at(101);
        assert_eq!(
            turn(closing, &mut pos, &s, 2),
            (Turn::Write { frames: false }, 0)
        );
        let sent = Own {
            waiting: false,
            ..closing
        };
        assert_eq!(
            turn(sent, &mut pos, &s, 2),
            (Turn::Drop(close::label(close::TRY_AGAIN_LATER)), 0)
        );
    }

    #[test]
    fn an_unfinished_frame_still_goes_before_a_close() {
        let s = snap(0, 2);
        let mut pos = Position::at(0);
        // Half of the first frame was written: the rest must follow, whole, before the close.
        pos.advance(&s, 0, 5);
        let sent = Own {
            closing: Some(close::REMOVED),
            ..Own::default()
        };
        assert_eq!(
            turn(sent, &mut pos, &s, 2),
            (Turn::Write { frames: false }, 0)
        );
    }

    #[test]
    fn shedding_lets_a_share_a_second_go_and_forgets_when_it_stops() {
        let t0 = Instant::now();
        let mut shedding = Shedding::new(t0);
        let ms = Duration::from_millis;
        // 1 000 listeners, 5 % a second: 50 a second, one per 20 ms pass.
        let mut shed = 0;
        for pass in 1..=50 {
            shed += shedding.due(t0 + ms(20 * pass), true, 1000);
        }
        assert_eq!(shed, 50, "a second of passes");
        // A pass after a long pause counts at most a second.
        assert_eq!(shedding.due(t0 + ms(10_000), true, 1000), 50);
        // When shedding stops, the fraction owed is forgotten.
        assert_eq!(shedding.due(t0 + ms(10_010), true, 1000), 0);
        assert_eq!(shedding.due(t0 + ms(10_020), false, 1000), 0);
        assert_eq!(shedding.due(t0 + ms(10_030), true, 1000), 0);
        assert_eq!(shedding.due(t0 + ms(10_040), true, 1000), 1);
    }

    #[test]
    fn the_newest_go_first_and_those_closing_are_passed_over() {
        assert_eq!(newest(3, 10, |_| false), vec![9, 8, 7]);
        assert_eq!(newest(3, 10, |i| i == 8), vec![9, 7, 6]);
        assert_eq!(newest(5, 2, |_| false), vec![1, 0]);
        assert!(newest(0, 10, |_| false).is_empty());
    }

    #[test]
    fn an_empty_writer_ends_after_its_linger_and_a_newcomer_resets_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut linger = Linger::new(s(5));
        assert!(!linger.over(t0, 0));
        assert!(!linger.over(t0 + s(4), 0));
        // Someone came: the clock starts again when they are gone.
        assert!(!linger.over(t0 + s(4), 1));
        assert!(!linger.over(t0 + s(6), 0));
        assert!(!linger.over(t0 + s(10), 0));
        assert!(linger.over(t0 + s(11), 0));
    }
}
