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
