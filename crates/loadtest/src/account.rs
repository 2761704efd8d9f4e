//! Per-listener accounting (no I/O, no clock): frames, gaps, lateness, stalls.

use serde::{Deserialize, Serialize};

/// Duration of one frame in microseconds.
pub const FRAME_US: i64 = 20_000;
/// A pause between two frames longer than this counts as a stall.
pub const STALL_US: i64 = 1_000_000;

/// What one listener saw; times are microseconds on a clock shared by all workers.
#[derive(Debug, Clone, Default)]
pub struct Account {
    started_us: i64,
    ticket_us: Option<i64>,
    first_audio_us: Option<i64>,
    frames: u64,
    missed: u64,
    last_seq: Option<u64>,
    last_arrival_us: i64,
    min_offset_us: i64,
    max_offset_us: i64,
    stalls: u64,
    retries: u64,
    moves: u64,
    longest_gap_us: i64,
}

/// The compact summary a worker reports for each listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Connected and received audio (`None`), or why not.
    pub failure: Option<String>,
    /// Time from the start of the join to the join ticket in hand (WebSocket), microseconds.
    #[serde(default)]
    pub ticket_us: Option<i64>,
    /// Time from the start of the join to the first audio frame, microseconds.
    pub first_audio_us: Option<i64>,
    /// When the first audio arrived, Unix microseconds.
    #[serde(default)]
    pub first_audio_at_us: Option<i64>,
    /// Frames received.
    pub frames: u64,
    /// Frames missing between the first and the last received.
    pub missed: u64,
    /// Smallest and largest (arrival − media time) seen, microseconds: the spread is the
    /// worst lateness of this listener; the smallest across all listeners is "on time".
    pub min_offset_us: i64,
    /// See `min_offset_us`.
    pub max_offset_us: i64,
    /// Pauses of more than a second between frames.
    pub stalls: u64,
    /// Times this listener was told to come back later and did, before it got in.
    #[serde(default)]
    pub retries: u64,
    /// Times this listener moved to another node after receiving audio (its node went away
    /// or sent it elsewhere).
    #[serde(default)]
    pub moves: u64,
    /// The longest time between two frames it received, microseconds: the gap in its audio.
    #[serde(default)]
    pub longest_gap_us: i64,
}

impl Account {
    /// Starts accounting for a listener whose connection began at `now_us`.
    pub fn new(now_us: i64) -> Self {
        Self {
            started_us: now_us,
            min_offset_us: i64::MAX,
            max_offset_us: i64::MIN,
            ..Self::default()
        }
    }

    /// Records a "come back later" followed.
    pub fn on_retry(&mut self) {
        self.retries += 1;
    }

    /// Records a move to another node after audio was received.
    pub fn on_move(&mut self) {
        self.moves += 1;
    }

    /// Records the join ticket arriving at `now_us`.
    pub fn on_ticket(&mut self, now_us: i64) {
        self.ticket_us = Some(now_us - self.started_us);
    }

    /// Records frame `seq` (media time `seq × 20 ms`) arriving at `now_us`.
    pub fn on_frame(&mut self, seq: u64, now_us: i64) {
        if self.first_audio_us.is_none() {
            self.first_audio_us = Some(now_us - self.started_us);
        } else {
            let gap = now_us - self.last_arrival_us;
            self.longest_gap_us = self.longest_gap_us.max(gap);
            if gap > STALL_US {
                self.stalls += 1;
            }
        }
        match self.last_seq {
            Some(last) if seq <= last => return, // duplicate or reordered: not new audio
            Some(last) => self.missed += seq - last - 1,
            None => {}
        }
        self.last_seq = Some(seq);
        self.last_arrival_us = now_us;
        self.frames += 1;
        let offset = now_us - seq as i64 * FRAME_US;
        self.min_offset_us = self.min_offset_us.min(offset);
        self.max_offset_us = self.max_offset_us.max(offset);
    }

    /// Frames received so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The summary; `failure` says why the listener ended early, if it did.
    pub fn outcome(&self, failure: Option<String>) -> Outcome {
        let failure = failure.or_else(|| (self.frames == 0).then(|| "no audio".to_owned()));
        Outcome {
            failure,
            ticket_us: self.ticket_us,
            first_audio_us: self.first_audio_us,
            first_audio_at_us: self.first_audio_us.map(|us| self.started_us + us),
            frames: self.frames,
            missed: self.missed,
            min_offset_us: self.min_offset_us,
            max_offset_us: self.max_offset_us,
            stalls: self.stalls,
            retries: self.retries,
            moves: self.moves,
            longest_gap_us: self.longest_gap_us,
        }
    }
}

impl Outcome {
    /// Whether this listener got every frame within `allowance_us` of its media time, given
    /// the earliest offset seen by anyone (`base_us`, "on time").
    pub fn on_time(&self, base_us: i64, allowance_us: i64) -> bool {
        self.failure.is_none() && self.missed == 0 && self.max_offset_us - base_us <= allowance_us
    }

    /// This listener's worst lateness against `base_us`, microseconds.
    pub fn worst_late_us(&self, base_us: i64) -> i64 {
        (self.max_offset_us - base_us).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_stream_is_on_time() {
        let mut a = Account::new(0);
        for seq in 100..200u64 {
            a.on_frame(seq, 5_000 + seq as i64 * FRAME_US);
        }
        let o = a.outcome(None);
        assert_eq!((o.frames, o.missed, o.stalls), (100, 0, 0));
        assert_eq!(o.first_audio_us, Some(5_000 + 100 * FRAME_US));
        assert!(o.on_time(o.min_offset_us, 0));
    }

    #[test]
    fn gaps_lateness_and_stalls_are_counted() {
        let mut a = Account::new(0);
        for seq in 0..10u64 {
            a.on_frame(seq, seq as i64 * FRAME_US);
        }
        a.on_frame(15, 15 * FRAME_US); // five missing
        a.on_frame(16, 16 * FRAME_US + 1_500_000); // 1.5 s late, after a stall
        a.on_frame(16, 16 * FRAME_US + 1_600_000); // duplicate
        let o = a.outcome(None);
        assert_eq!(o.missed, 5);
        assert_eq!(o.stalls, 1);
        assert_eq!(o.frames, 12);
        assert_eq!(o.worst_late_us(0), 1_500_000);
        assert!(!o.on_time(0, 1_000_000));
    }

    #[test]
    fn a_listener_without_audio_failed() {
        assert_eq!(
            Account::new(0).outcome(None).failure.as_deref(),
            Some("no audio")
        );
    }
}
