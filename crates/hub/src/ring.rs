//! The frame ring and listener cursors (no I/O, no locks).

use bytes::Bytes;

/// The last `capacity` frames of a stream, numbered from 0 as they were pushed.
#[derive(Debug)]
pub struct Ring {
    slots: Box<[Bytes]>,
    /// Number of the next frame to be pushed.
    head: u64,
}

/// A listener's position in a [`Ring`]: the number of the next frame it will read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    next: u64,
}

/// The outcome of a [`Ring::read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Read {
    /// Frames appended to the output.
    pub frames: usize,
    /// Frames the cursor had fallen behind by and skipped to stay live.
    pub skipped: u64,
}

impl Ring {
    /// A ring that keeps `capacity` frames (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: vec![Bytes::new(); capacity.max(1)].into_boxed_slice(),
            head: 0,
        }
    }

    /// Appends a frame and returns its number.
    pub fn push(&mut self, frame: Bytes) -> u64 {
        let n = self.head;
        let len = self.slots.len() as u64;
        self.slots[(n % len) as usize] = frame;
        self.head += 1;
        n
    }

    /// Frames it keeps.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Number of the next frame to be pushed.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Number of the oldest frame still held.
    pub fn tail(&self) -> u64 {
        self.head.saturating_sub(self.slots.len() as u64)
    }

    /// Every frame held, oldest first, with the number of the first.
    pub fn frames(&self) -> (u64, impl Iterator<Item = &Bytes>) {
        let len = self.slots.len() as u64;
        let tail = self.tail();
        (
            tail,
            (tail..self.head).map(move |n| &self.slots[(n % len) as usize]),
        )
    }

    /// A cursor for a new listener, `burst` frames behind live so audio starts at once.
    pub fn join(&self, burst: usize) -> Cursor {
        Cursor {
            next: self.head.saturating_sub(burst as u64).max(self.tail()),
        }
    }

    /// Appends to `out` every frame from the cursor to the head, at most `max`, and moves
    /// the cursor. A cursor older than the tail first skips to `live_burst` frames behind
    /// live, so a slow listener catches up instead of growing memory.
    pub fn read(
        &self,
        cursor: &mut Cursor,
        out: &mut Vec<Bytes>,
        max: usize,
        live_burst: usize,
    ) -> Read {
        let mut read = Read::default();
        if cursor.next < self.tail() {
            let live = self.join(live_burst);
            read.skipped = live.next - cursor.next;
            *cursor = live;
        }
        let len = self.slots.len() as u64;
        while cursor.next < self.head && read.frames < max {
            out.push(self.slots[(cursor.next % len) as usize].clone());
            cursor.next += 1;
            read.frames += 1;
        }
        read
    }
}

impl Cursor {
    /// Number of the next frame this cursor reads.
    pub fn position(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_with(n: u8, capacity: usize) -> Ring {
        let mut r = Ring::new(capacity);
        for i in 0..n {
            r.push(Bytes::from(vec![i]));
        }
        r
    }

    fn bytes(frames: &[Bytes]) -> Vec<u8> {
        frames.iter().map(|b| b[0]).collect()
    }

    #[test]
    fn a_new_listener_gets_a_short_burst_then_live_frames() {
        let mut r = ring_with(10, 8);
        let mut c = r.join(3);
        let mut out = Vec::new();
        assert_eq!(r.read(&mut c, &mut out, 100, 3).frames, 3);
        assert_eq!(bytes(&out), [7, 8, 9]);
        r.push(Bytes::from_static(&[10]));
        out.clear();
        r.read(&mut c, &mut out, 100, 3);
        assert_eq!(bytes(&out), [10]);
    }

    #[test]
    fn a_listener_who_falls_behind_skips_to_live_and_is_counted() {
        let mut r = ring_with(4, 8);
        let mut c = r.join(0);
        for i in 4..30 {
            r.push(Bytes::from(vec![i]));
        }
        let mut out = Vec::new();
        let read = r.read(&mut c, &mut out, 100, 2);
        assert_eq!(read.skipped, 24);
        assert_eq!(bytes(&out), [28, 29]);
    }

    #[test]
    fn memory_is_the_ring_whatever_the_listeners_do() {
        let mut r = Ring::new(4);
        for i in 0..10_000u32 {
            r.push(Bytes::from(i.to_be_bytes().to_vec()));
        }
        assert_eq!(r.slots.len(), 4);
        assert_eq!(r.tail(), 9_996);
    }

    #[test]
    fn reads_are_capped_and_resume_where_they_stopped() {
        let r = ring_with(10, 16);
        let mut c = r.join(10);
        let mut out = Vec::new();
        assert_eq!(r.read(&mut c, &mut out, 4, 0).frames, 4);
        assert_eq!(r.read(&mut c, &mut out, 100, 0).frames, 6);
        assert_eq!(bytes(&out), (0..10).collect::<Vec<u8>>());
    }
}
