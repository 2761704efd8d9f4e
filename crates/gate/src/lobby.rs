//! The waiting room (no I/O, no clock): what a client waiting for a Space is told — its
//! state, when to ask again, and the window over which to spread its join — and the
//! estimate of how many are waiting, from how often they ask.

use serde::Serialize;
use stentor_space::Lifecycle;

/// The lobby's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lobby {
    /// Joins a second this server takes comfortably (default 2 000): the crowd is spread so
    /// as to arrive at about this rate.
    pub admit_per_sec: f64,
    /// The widest join window, seconds (default 60).
    pub max_window_secs: u64,
}

impl Default for Lobby {
    fn default() -> Self {
        Self {
            admit_per_sec: 2_000.0,
            max_window_secs: 60,
        }
    }
}

/// What `GET /api/v1/spaces/{id}/status` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `scheduled`, `live` or `ended`.
    pub state: Lifecycle,
    /// The announced start, Unix seconds.
    pub starts_at: Option<i64>,
    /// The server's clock, Unix seconds (so a client can count down without trusting its own).
    pub now: i64,
    /// Listeners receiving audio.
    pub listeners: usize,
    /// Clients waiting, as estimated from how often status is asked for.
    pub waiting: u64,
    /// Once the Space is live, each client joins at a random moment within this many
    /// seconds (uniformly), so that the crowd arrives at a rate the server takes.
    pub join_window_secs: u64,
    /// Ask again after this many seconds.
    pub poll_secs: u64,
}

impl Lobby {
    /// The status of a Space in `state`, with `listeners` in, at `now`; `asks` counts the
    /// requests for it (this one included), from which the waiting crowd is estimated.
    pub fn status<const N: usize>(
        &self,
        state: Lifecycle,
        starts_at: Option<i64>,
        listeners: usize,
        asks: &mut RateWindow<N>,
        now: i64,
    ) -> Status {
        asks.add(now);
        let poll_secs = poll_secs(state, starts_at, now);
        let waiting = waiting(asks, poll_secs, now);
        Status {
            state,
            starts_at,
            now,
            listeners,
            waiting,
            join_window_secs: self.window(waiting),
            poll_secs,
        }
    }

    /// The join window for a crowd of `waiting`: the crowd over the comfortable join rate,
    /// up to the widest window. Nobody waits when few are waiting.
    pub fn window(&self, waiting: u64) -> u64 {
        let secs = (waiting as f64 / self.admit_per_sec.max(1.0)).ceil() as u64;
        secs.min(self.max_window_secs)
    }
}

/// When to ask again: rarely while the start is far, every second as it nears, and
/// seldom once there is nothing more to wait for.
/// How often a waiting client asks for the status of a Space in `state`.
pub fn poll_secs(state: Lifecycle, starts_at: Option<i64>, now: i64) -> u64 {
    match state {
        Lifecycle::Scheduled => match starts_at {
            Some(at) => ((at - now) / 10).clamp(1, 30) as u64,
            None => 30,
        },
        Lifecycle::Live => 5,
        Lifecycle::Ended => 60,
    }
}

/// Requests counted per second over a sliding window of `N` seconds.
#[derive(Debug, Clone)]
pub struct RateWindow<const N: usize> {
    counts: [u64; N],
    /// The second the newest bucket counts.
    newest: i64,
}

impl<const N: usize> Default for RateWindow<N> {
    fn default() -> Self {
        Self {
            counts: [0; N],
            newest: 0,
        }
    }
}

impl<const N: usize> RateWindow<N> {
    fn roll(&mut self, now: i64) {
        if now <= self.newest {
            return;
        }
        let gap = (now - self.newest).min(N as i64) as usize;
        self.counts.rotate_left(gap);
        for c in &mut self.counts[N - gap..] {
            *c = 0;
        }
        self.newest = now;
    }

    /// Counts a request at second `now`.
    pub fn add(&mut self, now: i64) {
        self.roll(now);
        if now == self.newest {
            self.counts[N - 1] += 1;
        }
    }

    /// Requests in the last `secs` whole seconds before `now` (the current one not counted:
    /// it is not over).
    pub fn last(&mut self, secs: usize, now: i64) -> u64 {
        self.roll(now);
        let secs = secs.min(N - 1);
        self.counts[N - 1 - secs..N - 1].iter().sum()
    }
}

/// How many wait: each waiting client asks once per `poll_secs`, so the requests of the last
/// `poll_secs` seconds are about one per client. (Behind a shared cache the server sees only
/// the cache's requests; the estimate then counts caches, and the window stays narrow.)
pub fn waiting<const N: usize>(asks: &mut RateWindow<N>, poll_secs: u64, now: i64) -> u64 {
    asks.last(poll_secs.max(1) as usize, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_join_window_widens_with_the_crowd() {
        let lobby = Lobby::default();
        assert_eq!(lobby.window(0), 0);
        assert_eq!(lobby.window(500), 1);
        assert_eq!(lobby.window(15_000), 8);
        assert_eq!(lobby.window(1_000_000), 60);
    }

    #[test]
    fn clients_ask_more_often_as_the_start_nears() {
        let lobby = Lobby::default();
        let mut asks = RateWindow::<64>::default();
        let mut poll = |starts_at, now| {
            lobby
                .status(Lifecycle::Scheduled, starts_at, 0, &mut asks, now)
                .poll_secs
        };
        assert_eq!(poll(Some(10_000), 0), 30);
        assert_eq!(poll(Some(100), 50), 5);
        assert_eq!(poll(Some(100), 99), 1);
        assert_eq!(
            poll(Some(100), 160),
            1,
            "a late start is polled for every second"
        );
        assert_eq!(poll(None, 200), 30);
        let ended = lobby.status(Lifecycle::Ended, None, 0, &mut asks, 300);
        assert_eq!(ended.poll_secs, 60);
    }

    #[test]
    fn the_status_counts_the_waiting_crowd_and_serializes_as_documented() {
        let lobby = Lobby::default();
        let mut asks = RateWindow::<64>::default();
        // 4 000 clients polling every 5 s while live: 800 asks a second.
        for sec in 1_000..1_005 {
            for _ in 0..800 {
                asks.add(sec);
            }
        }
        let s = lobby.status(Lifecycle::Live, Some(1_000), 42, &mut asks, 1_005);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "state": "live", "starts_at": 1000, "now": 1005, "listeners": 42,
                "waiting": 4000, "join_window_secs": 2, "poll_secs": 5
            })
        );
    }

    #[test]
    fn requests_are_counted_over_a_sliding_window() {
        let mut w = RateWindow::<8>::default();
        for _ in 0..3 {
            w.add(100);
        }
        for _ in 0..5 {
            w.add(101);
        }
        w.add(102);
        // At 102: the last two whole seconds are 100 and 101.
        assert_eq!(w.last(2, 102), 8);
        assert_eq!(w.last(1, 102), 5);
        // Seconds roll out of the window.
        assert_eq!(w.last(2, 103), 6);
        assert_eq!(w.last(7, 200), 0);
        // A late request for a second already rolled past is not counted twice or lost
        // into the wrong second.
        w.add(150);
        assert_eq!(w.last(7, 200), 0);
    }

    #[test]
    fn the_waiting_crowd_is_one_ask_per_client_per_poll() {
        let mut w = RateWindow::<32>::default();
        // 3 000 clients polling every 5 s: 600 asks a second.
        for sec in 0..10 {
            for _ in 0..600 {
                w.add(sec);
            }
        }
        assert_eq!(waiting(&mut w, 5, 10), 3_000);
    }
}
