//! Per-speaker jitter buffer: reorders packets by sequence number and plays them out one per
//! mixer tick, asking for concealment when a packet is missing.
//!
//! Driving contract: the shell calls [`JitterBuffer::push`] for every packet as it arrives and
//! [`JitterBuffer::pop`] exactly once per 20 ms mixer tick. The buffer never reads a clock: its
//! notion of time is the count of `pop` calls.
//!
//! The delay adapts: it starts at `target_frames`, grows by a frame each time a packet comes
//! too late (playout waits a tick instead of skipping the missing packet while fewer than the
//! target are held), and shrinks by a frame after `shrink_after` quiet ticks, dropping one
//! frame when more than needed are held. On a clean network it settles at `min_frames`.

use std::collections::BTreeMap;

/// Settings of a jitter buffer, counted in 20 ms frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Frames buffered before playout starts (default 1, 20 ms): the initial delay traded
    /// for tolerance of network jitter; it grows by itself when packets come late.
    pub target_frames: u32,
    /// Smallest target the delay adapts down to (default 1).
    pub min_frames: u32,
    /// Largest target the delay adapts up to (default 10, 200 ms).
    pub max_target_frames: u32,
    /// Ticks without a late packet after which the target shrinks by one (default 500, 10 s).
    pub shrink_after: u32,
    /// Most frames held; beyond this the oldest are dropped and playout skips ahead
    /// (default 25, 500 ms), so a burst after a network stall cannot build up delay.
    pub max_frames: u32,
    /// Consecutive missing frames after which the speaker counts as silent and playout waits
    /// to re-buffer (default 10, 200 ms).
    pub idle_after_missing: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            target_frames: 1,
            min_frames: 1,
            max_target_frames: 10,
            shrink_after: 500,
            max_frames: 25,
            idle_after_missing: 10,
        }
    }
}

/// What a speaker contributes to one mixer tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout<T> {
    /// The packet due at this tick.
    Packet(T),
    /// The packet due at this tick is missing: conceal it.
    Conceal,
    /// The speaker is not sending: contribute nothing.
    Silent,
}

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Stored for playout.
    Stored,
    /// Arrived after its playout time and was dropped.
    Late,
    /// Already held: dropped.
    Duplicate,
}

/// Counters of a jitter buffer, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets stored.
    pub received: u64,
    /// Packets dropped because they came after their playout time.
    pub late: u64,
    /// Packets dropped because they were already held.
    pub duplicate: u64,
    /// Ticks concealed because the packet was missing.
    pub concealed: u64,
    /// Packets dropped to keep the buffer within `max_frames`, or to shrink the delay.
    pub overflow_dropped: u64,
}

/// A jitter buffer holding items of type `T` (usually packet bytes) by sequence number.
#[derive(Debug)]
pub struct JitterBuffer<T> {
    config: JitterConfig,
    held: BTreeMap<u64, T>,
    /// Last raw sequence number seen and its extended (unwrapped) value.
    last: Option<(u32, u64)>,
    /// Extended sequence number due at the next pop, while playing.
    next: Option<u64>,
    /// Extended sequence number below which packets count as late, while not playing.
    floor: Option<u64>,
    /// Pops since the first packet of a new talk spurt arrived, while buffering.
    waited: u32,
    missing_run: u32,
    /// Current adaptive target depth, in frames.
    target: u32,
    /// Ticks since the last late packet.
    quiet: u32,
    stats: JitterStats,
}

impl<T> JitterBuffer<T> {
    /// An empty buffer.
    pub fn new(config: JitterConfig) -> Self {
        Self {
            config,
            held: BTreeMap::new(),
            last: None,
            next: None,
            floor: None,
            waited: 0,
            missing_run: 0,
            target: config
                .target_frames
                .clamp(config.min_frames.max(1), config.max_target_frames.max(1)),
            quiet: 0,
            stats: JitterStats::default(),
        }
    }

    /// Stores a packet with its 32-bit sequence number (wrapping allowed).
    pub fn push(&mut self, seq: u32, item: T) -> Pushed {
        let ext = match self.last {
            None => u64::from(seq) + (1 << 32),
            Some((last_seq, last_ext)) => {
                let delta = seq.wrapping_sub(last_seq) as i32;
                last_ext.saturating_add_signed(i64::from(delta))
            }
        };
        let due = self.next.or(self.floor);
        if due.is_some_and(|due| ext + u64::from(self.config.max_frames) < due) {
            // Far behind what was played: the sender restarted its numbering (a reconnect),
            // so start over rather than dropping its packets as late.
            self.held.clear();
            self.reset_playout();
            self.floor = None;
            self.last = None;
            return self.push(seq, item);
        }
        if self.last.is_none_or(|(_, last_ext)| ext > last_ext) {
            self.last = Some((seq, ext));
        }
        if self.next.or(self.floor).is_some_and(|next| ext < next) {
            self.stats.late += 1;
            if self.next.is_some() {
                self.target = (self.target + 1).min(self.config.max_target_frames.max(1));
                self.quiet = 0;
            }
            return Pushed::Late;
        }
        if self.held.contains_key(&ext) {
            self.stats.duplicate += 1;
            return Pushed::Duplicate;
        }
        self.held.insert(ext, item);
        self.stats.received += 1;
        while self.held.len() > self.config.max_frames as usize {
            self.held.pop_first();
            self.stats.overflow_dropped += 1;
            if let (Some(next), Some((&first, _))) = (self.next, self.held.first_key_value()) {
                self.next = Some(next.max(first));
            }
        }
        Pushed::Stored
    }

    /// Takes what is due at this tick.
    pub fn pop(&mut self) -> Playout<T> {
        if self.next.is_none() {
            if self.held.is_empty() {
                return Playout::Silent;
            }
            self.waited += 1;
            if self.held.len() < self.target as usize && self.waited < self.target {
                return Playout::Silent;
            }
            let (&first, _) = self.held.first_key_value().expect("not empty");
            self.next = Some(first);
            self.missing_run = 0;
        }
        self.adapt();
        let next = self.next.expect("playing");
        if let Some(item) = self.held.remove(&next) {
            self.next = Some(next + 1);
            self.missing_run = 0;
            return Playout::Packet(item);
        }
        self.missing_run += 1;
        if self.held.is_empty() && self.missing_run > self.config.idle_after_missing {
            self.reset_playout();
            return Playout::Silent;
        }
        // Fewer than the target held: wait for the missing packet (the delay grows by a
        // frame); otherwise give it up.
        if self.held.len() >= self.target as usize || self.missing_run > self.target {
            self.next = Some(next + 1);
        }
        self.stats.concealed += 1;
        Playout::Conceal
    }

    /// Shrinks the target after a quiet spell, dropping a frame if more than needed are held.
    fn adapt(&mut self) {
        self.quiet += 1;
        if self.quiet < self.config.shrink_after {
            return;
        }
        self.quiet = 0;
        if self.target > self.config.min_frames.max(1) {
            self.target -= 1;
        }
        if self.held.len() > self.target as usize
            && let Some((first, _)) = self.held.pop_first()
        {
            self.stats.overflow_dropped += 1;
            if self.next == Some(first) {
                self.next = Some(first + 1);
            }
        }
    }

    /// The current adaptive target depth in frames.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// Drops everything held and waits for a new talk spurt (used when a speaker is muted).
    pub fn clear(&mut self) {
        self.held.clear();
        self.reset_playout();
    }

    /// Frames currently held.
    pub fn depth(&self) -> usize {
        self.held.len()
    }

    /// Whether playout is running (as opposed to waiting for packets).
    pub fn is_playing(&self) -> bool {
        self.next.is_some()
    }

    /// Counters since creation.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    fn reset_playout(&mut self) {
        self.floor = self.next.or(self.floor);
        self.next = None;
        self.waited = 0;
        self.missing_run = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer that starts two frames deep, so that waiting and reordering show.
    fn buffer() -> JitterBuffer<u32> {
        JitterBuffer::new(JitterConfig {
            target_frames: 2,
            ..JitterConfig::default()
        })
    }

    #[test]
    fn by_default_a_packet_plays_at_the_next_tick() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(7, 7);
        assert_eq!(jb.pop(), Playout::Packet(7));
    }

    #[test]
    fn playout_waits_for_the_target_depth_then_plays_in_order() {
        let mut jb = buffer();
        jb.push(10, 10);
        assert_eq!(jb.pop(), Playout::Silent);
        jb.push(12, 12);
        jb.push(11, 11);
        assert_eq!(jb.pop(), Playout::Packet(10));
        assert_eq!(jb.pop(), Playout::Packet(11));
        assert_eq!(jb.pop(), Playout::Packet(12));
    }

    #[test]
    fn a_lone_packet_plays_after_the_target_delay() {
        let mut jb = buffer();
        jb.push(1, 1);
        assert_eq!(jb.pop(), Playout::Silent);
        assert_eq!(jb.pop(), Playout::Packet(1));
    }

    #[test]
    fn a_packet_that_is_just_late_is_waited_for_not_dropped() {
        let mut jb = buffer();
        jb.push(0, 0);
        jb.push(1, 1);
        assert_eq!(jb.pop(), Playout::Packet(0));
        assert_eq!(jb.pop(), Playout::Packet(1));
        assert_eq!(jb.pop(), Playout::Conceal);
        jb.push(2, 2);
        jb.push(3, 3);
        assert_eq!(jb.pop(), Playout::Packet(2));
        assert_eq!(jb.pop(), Playout::Packet(3));
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn late_packets_raise_the_delay_and_quiet_lowers_it() {
        let mut jb = buffer();
        assert_eq!(jb.target(), 2);
        for seq in [0, 1, 3, 4] {
            jb.push(seq, seq);
        }
        for _ in 0..3 {
            jb.pop();
        }
        assert_eq!(jb.push(2, 2), Pushed::Late);
        assert_eq!(jb.target(), 3);
        // A steady stream one frame deeper than needed: after the quiet spell the target
        // falls back and the extra frame is dropped.
        for seq in 5..5 + 2 * 500 {
            jb.push(seq, seq);
            jb.pop();
        }
        assert_eq!(jb.target(), 1);
        assert!(jb.depth() <= 2, "depth {}", jb.depth());
    }

    #[test]
    fn a_missing_packet_is_concealed_and_a_late_one_dropped() {
        let mut jb = buffer();
        for seq in [1, 2, 4, 5] {
            jb.push(seq, seq);
        }
        assert_eq!(jb.pop(), Playout::Packet(1));
        assert_eq!(jb.pop(), Playout::Packet(2));
        assert_eq!(jb.pop(), Playout::Conceal);
        assert_eq!(jb.push(3, 3), Pushed::Late);
        assert_eq!(jb.pop(), Playout::Packet(4));
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().concealed, 1);
    }

    #[test]
    fn a_sender_that_restarts_its_numbering_is_heard_at_once() {
        let mut jb = buffer();
        for seq in 1000..1003 {
            jb.push(seq, seq);
        }
        for _ in 0..3 {
            jb.pop();
        }
        assert_eq!(jb.push(0, 0), Pushed::Stored);
        jb.push(1, 1);
        assert_eq!(jb.pop(), Playout::Packet(0));
        assert_eq!(jb.pop(), Playout::Packet(1));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut jb = buffer();
        for seq in [u32::MAX - 1, u32::MAX, 0, 1] {
            jb.push(seq, seq);
        }
        let played: Vec<_> = (0..4).map(|_| jb.pop()).collect();
        assert_eq!(
            played,
            [u32::MAX - 1, u32::MAX, 0, 1].map(Playout::Packet).to_vec()
        );
    }

    #[test]
    fn a_speaker_who_stops_goes_silent_after_a_short_concealment() {
        let mut jb = buffer();
        for seq in 0..3 {
            jb.push(seq, seq);
        }
        for _ in 0..3 {
            assert!(matches!(jb.pop(), Playout::Packet(_)));
        }
        for _ in 0..10 {
            assert_eq!(jb.pop(), Playout::Conceal);
        }
        assert_eq!(jb.pop(), Playout::Silent);
        assert!(!jb.is_playing());
    }

    #[test]
    fn a_burst_never_holds_more_than_max_frames() {
        let mut jb = buffer();
        for seq in 0..1000 {
            jb.push(seq, seq);
        }
        assert_eq!(jb.depth(), 25);
        assert_eq!(jb.pop(), Playout::Packet(975));
    }

    proptest::proptest! {
        #[test]
        fn every_packet_plays_at_most_once_and_in_order(
            // Reordered by up to 20 frames, duplicated and lost, but never restarted.
            jitter in proptest::collection::vec(0u32..20, 0..400),
            pops in proptest::collection::vec(proptest::bool::ANY, 0..400),
        ) {
            let mut jb = buffer();
            let mut played = Vec::new();
            let seqs: Vec<u32> = jitter.iter().enumerate().map(|(i, j)| i as u32 / 2 + j).collect();
            for (i, seq) in seqs.iter().enumerate() {
                jb.push(*seq, *seq);
                if pops.get(i).copied().unwrap_or(false)
                    && let Playout::Packet(p) = jb.pop()
                {
                    played.push(p);
                }
                proptest::prop_assert!(jb.depth() <= 25);
            }
            for _ in 0..300 {
                if let Playout::Packet(p) = jb.pop() { played.push(p); }
            }
            let mut sorted = played.clone();
            sorted.sort();
            sorted.dedup();
            proptest::prop_assert_eq!(sorted, played);
        }
    }
}
