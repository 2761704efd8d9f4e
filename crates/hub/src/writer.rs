//! What a listener still has to receive, as I/O slices over shared frames: one vectored write
//! sends everything it is behind, and a short write resumes mid-frame (no I/O here).

use bytes::{Buf, Bytes};
use std::io::IoSlice;

/// The frames of a ring at one moment, shared by every listener a writer serves.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Number of `frames[0]`.
    start: u64,
    frames: Vec<Bytes>,
}

impl Snapshot {
    /// Replaces the contents with `frames`, the first numbered `start` (buffers are reused).
    pub fn fill(&mut self, start: u64, frames: impl Iterator<Item = Bytes>) {
        self.start = start;
        self.frames.clear();
        self.frames.extend(frames);
    }

    /// Number of the oldest frame held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Number of the next frame to come.
    pub fn head(&self) -> u64 {
        self.start + self.frames.len() as u64
    }

    /// The frame numbered `n`, if held.
    pub fn get(&self, n: u64) -> Option<&Bytes> {
        let i = n.checked_sub(self.start)?;
        self.frames.get(usize::try_from(i).ok()?)
    }
}

/// A listener's place in the stream: the next whole frame, and the rest of a frame a short
/// write left unfinished (frames must never be cut, so that rest is always sent first).
#[derive(Debug, Clone, Default)]
pub struct Position {
    next: u64,
    rest: Bytes,
}

impl Position {
    /// A position at frame `next`.
    pub fn at(next: u64) -> Self {
        Self {
            next,
            rest: Bytes::new(),
        }
    }

    /// Number of the next whole frame.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Whether anything is due: an unfinished frame, or frames past the position.
    pub fn is_due(&self, snap: &Snapshot) -> bool {
        !self.rest.is_empty() || self.next < snap.head()
    }

    /// A position older than the snapshot skips to `live_burst` frames behind its head, so a
    /// slow listener catches up instead of growing memory; returns the frames skipped.
    pub fn catch_up(&mut self, snap: &Snapshot, live_burst: u64) -> u64 {
        if self.next >= snap.start() {
            return 0;
        }
        let live = snap.head().saturating_sub(live_burst).max(snap.start());
        let skipped = live - self.next;
        self.next = live;
        skipped
    }

    /// Fills `out` with the slices to write and returns how many it used: the unfinished
    /// rest, then `extra` (bytes for this listener alone, put between whole frames), then as
    /// many frames as fit.
    pub fn slices<'a>(
        &'a self,
        snap: &'a Snapshot,
        extra: &'a [u8],
        out: &mut [IoSlice<'a>],
    ) -> usize {
        let mut used = 0;
        let mut put = |slice: &'a [u8]| {
            if used < out.len() && !slice.is_empty() {
                out[used] = IoSlice::new(slice);
                used += 1;
                true
            } else {
                false
            }
        };
        put(&self.rest);
        put(extra);
        let mut n = self.next;
        while let Some(frame) = snap.get(n) {
            if !put(frame) {
                break;
            }
            n += 1;
        }
        used
    }

    /// Moves past `written` bytes of what [`Position::slices`] offered with the same
    /// `snap` (a slice is never empty, so a frame of 0 bytes cannot be offered); returns how many bytes of `extra` were among them.
    pub fn advance(&mut self, snap: &Snapshot, extra_len: usize, written: usize) -> usize {
        let mut left = written;
        let from_rest = left.min(self.rest.len());
        self.rest.advance(from_rest);
        left -= from_rest;
        if !self.rest.is_empty() {
            return 0;
        }
        let from_extra = left.min(extra_len);
        left -= from_extra;
        if from_extra < extra_len {
            return from_extra;
        }
        while left > 0 {
            let frame = snap
                .get(self.next)
                .expect("only offered frames are written");
            self.next += 1;
            if left < frame.len() {
                self.rest = frame.slice(left..);
                break;
            }
            left -= frame.len();
        }
        from_extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(start: u64, frames: &[&'static [u8]]) -> Snapshot {
        let mut s = Snapshot::default();
        s.fill(start, frames.iter().map(|f| Bytes::from_static(f)));
        s
    }

    fn offered(pos: &mut Position, snap: &Snapshot, extra: &[u8], max: usize) -> Vec<u8> {
        pos.catch_up(snap, 1);
        let mut out = vec![IoSlice::new(&[]); max];
        let n = pos.slices(snap, extra, &mut out);
        out[..n].iter().flat_map(|s| s.to_vec()).collect()
    }

    #[test]
    fn everything_behind_goes_in_one_write() {
        let s = snap(10, &[b"aa", b"bbb", b"c"]);
        let mut p = Position::at(10);
        assert_eq!(offered(&mut p, &s, b"", 64), b"aabbbc");
        assert_eq!(p.advance(&s, 0, 6), 0);
        assert_eq!(p.next(), 13);
        assert!(!p.is_due(&s));
    }

    #[test]
    fn a_short_write_resumes_mid_frame_and_never_cuts_one() {
        let s = snap(0, &[b"aaaa", b"bbbb"]);
        let mut p = Position::at(0);
        p.advance(&s, 0, 5);
        assert_eq!(p.next(), 2);
        assert_eq!(offered(&mut p, &s, b"", 64), b"bbb");
        // The listener then fell far behind: its unfinished frame still goes first.
        let later = snap(100, &[b"x", b"y", b"z"]);
        assert_eq!(offered(&mut p, &later, b"", 64), b"bbbz");
    }

    #[test]
    fn personal_bytes_go_between_whole_frames() {
        let s = snap(0, &[b"aa", b"bb"]);
        let mut p = Position::at(0);
        p.advance(&s, 0, 1);
        assert_eq!(offered(&mut p, &s, b"PP", 64), b"aPPbb");
        assert_eq!(offered(&mut p, &s, b"PP", 2), b"aPP");
        // Written up to the middle of the personal bytes: one of them is done.
        assert_eq!(p.advance(&s, 2, 2), 1);
        assert_eq!(offered(&mut p, &s, b"P", 64), b"Pbb");
        assert_eq!(p.advance(&s, 1, 3), 1);
        assert!(!p.is_due(&s));
    }

    #[test]
    fn a_listener_out_of_the_ring_skips_to_live_and_reads_are_capped() {
        let s = snap(50, &[b"1", b"2", b"3", b"4"]);
        let mut p = Position::at(3);
        assert_eq!(p.catch_up(&s, 2), 49);
        assert_eq!(p.next(), 52);
        assert_eq!(p.catch_up(&s, 2), 0);
        let mut p = Position::at(50);
        assert_eq!(offered(&mut p, &s, b"", 3), b"123");
        // Offering writes nothing: all four frames are still due.
        assert_eq!(p.next(), 50);
        assert!(p.is_due(&s));
    }
}
