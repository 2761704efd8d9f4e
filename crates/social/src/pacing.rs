//! How fast the live alerts of an account go out: never faster than configured, never faster
//! than the Space's waiting room lets people in, and not at all while the waiting room
//! already holds more than it can let in soon.
//!
//! An alert asks a person to come now. Sent to 88 million at once, it is the flash crowd that
//! takes a Space down; paced at the rate the waiting room admits, the crowd it makes arrives at
//! the pace the Space can take, and the people most likely to come are asked first.

use std::time::{Duration, Instant};

/// The alert pacer of one Space going live: a token bucket whose rate is the lower of the
/// configured rate and the waiting room's admission rate, checked on every call.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Alerts a second at most, whatever the waiting room admits.
    most_per_sec: u32,
    /// Seconds of admission the waiting room may hold before alerts pause.
    backlog_secs: u32,
    /// Alerts that may go now (fractional, so that slow rates still send).
    tokens: f64,
    /// When tokens were last added.
    last: Option<Instant>,
}

/// What the pacer allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Alerts that may be sent now.
    pub send: u32,
    /// The rate in force, alerts a second.
    pub rate: u32,
}

impl Pacer {
    /// A pacer sending at most `most_per_sec` alerts a second, pausing while the waiting room
    /// holds more than `backlog_secs` seconds of admissions.
    pub fn new(most_per_sec: u32, backlog_secs: u32) -> Self {
        Self {
            most_per_sec: most_per_sec.max(1),
            backlog_secs: backlog_secs.max(1),
            tokens: 0.0,
            last: None,
        }
    }

    /// How many alerts may go now, given the Space's admission rate (people a second let in
    /// from the waiting room; `None` when the Space has no waiting room open, as before it is
    /// live) and how many wait there. Tokens do not pile up past one second's worth, so a
    /// pause never turns into a burst.
    pub fn allow(&mut self, now: Instant, admits_per_sec: Option<u32>, waiting: u64) -> Allowance {
        let rate = match admits_per_sec {
            Some(admits) => self.most_per_sec.min(admits),
            None => self.most_per_sec,
        };
        let elapsed = self
            .last
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        self.last = Some(now);
        let cap = f64::from(rate.max(1));
        self.tokens = (self.tokens + elapsed.as_secs_f64() * f64::from(rate)).min(cap);
        if admits_per_sec.is_some() && waiting > u64::from(rate) * u64::from(self.backlog_secs) {
            return Allowance { send: 0, rate };
        }
        let send = self.tokens.floor() as u32;
        self.tokens -= f64::from(send);
        Allowance { send, rate }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends over `secs` seconds in steps of `step_ms`, with the waiting room as given.
    fn sent(pacer: &mut Pacer, secs: u64, step_ms: u64, admits: Option<u32>, waiting: u64) -> u64 {
        let t0 = Instant::now();
        let mut total = 0;
        for i in 0..=secs * 1000 / step_ms {
            total += u64::from(
                pacer
                    .allow(t0 + Duration::from_millis(i * step_ms), admits, waiting)
                    .send,
            );
        }
        total
    }

    #[test]
    fn the_configured_rate_holds_without_a_waiting_room() {
        let mut pacer = Pacer::new(1_000, 10);
        let n = sent(&mut pacer, 10, 7, None, 0);
        assert!((9_990..=10_000).contains(&n), "{n}");
    }

    #[test]
    fn the_waiting_room_sets_the_pace_when_it_admits_fewer() {
        let mut pacer = Pacer::new(10_000, 10);
        let n = sent(&mut pacer, 10, 20, Some(500), 0);
        assert!((4_990..=5_000).contains(&n), "{n}");
        assert_eq!(pacer.allow(Instant::now(), Some(500), 0).rate, 500);
    }

    #[test]
    fn alerts_pause_while_the_waiting_room_is_full_and_do_not_burst_after() {
        let mut pacer = Pacer::new(1_000, 5);
        assert_eq!(sent(&mut pacer, 10, 20, Some(200), 1_001), 0);
        // Back under the backlog: no more than a second's worth at once.
        let t = Instant::now() + Duration::from_secs(60);
        assert!(pacer.allow(t, Some(200), 0).send <= 200);
    }

    #[test]
    fn slow_rates_still_send() {
        let mut pacer = Pacer::new(3, 10);
        assert_eq!(sent(&mut pacer, 10, 100, None, 0), 30);
    }
}
