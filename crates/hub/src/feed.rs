//! A ring shared between one publisher and many subscribers, with wake-ups.

use crate::ring::{Cursor, Read, Ring};
use crate::writer::Snapshot;
use bytes::Bytes;
use parking_lot::RwLock;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use tokio::sync::watch;

/// One stream of frames (one transport's framing of one Space's mix).
#[derive(Debug, Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ring: RwLock<Ring>,
    /// Numbers of the events still in the ring, oldest first, and how many it may hold.
    events: parking_lot::Mutex<VecDeque<u64>>,
    event_room: usize,
    head: watch::Sender<u64>,
    /// Timed frames published so far, sent on every one (for staggered writers).
    ticks: watch::Sender<u64>,
    burst: usize,
    closed: AtomicBool,
    /// Why it was closed, when not because the stream ended: a close code and its reason.
    close_reason: parking_lot::Mutex<Option<(u16, String)>>,
    /// Subscribers are woken once every this many frames (the cadence).
    wake_every: AtomicU32,
    /// The largest backlog a subscriber had when it read, since it was last taken.
    max_lag: AtomicU64,
    /// Listeners attached, whoever writes to them.
    listeners: AtomicUsize,
    /// Frames published that count toward the cadence.
    timed: AtomicU64,
}

impl Feed {
    /// A feed keeping `capacity` frames, giving new subscribers `burst` frames at once.
    pub fn new(capacity: usize, burst: usize) -> Self {
        Self::with_events(capacity, burst, 0)
    }

    /// A feed keeping `capacity` frames of the stream and up to `event_room` events beside
    /// them: events never take the place of the stream's frames, whatever their rate.
    pub fn with_events(capacity: usize, burst: usize, event_room: usize) -> Self {
        let (head, _) = watch::channel(0);
        let (ticks, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                ring: RwLock::new(Ring::new(capacity + event_room)),
                events: parking_lot::Mutex::new(VecDeque::with_capacity(event_room)),
                event_room,
                head,
                ticks,
                burst,
                closed: AtomicBool::new(false),
                close_reason: parking_lot::Mutex::new(None),
                wake_every: AtomicU32::new(1),
                max_lag: AtomicU64::new(0),
                listeners: AtomicUsize::new(0),
                timed: AtomicU64::new(0),
            }),
        }
    }

    /// Publishes a frame of the stream; subscribers are woken when a cadence's worth of
    /// frames has gathered.
    pub fn publish(&self, frame: Bytes) {
        let head = self.push(frame);
        let n = self.inner.timed.fetch_add(1, Ordering::Relaxed) + 1;
        self.inner.ticks.send_replace(n);
        let every = u64::from(self.inner.wake_every.load(Ordering::Relaxed).max(1));
        if n.is_multiple_of(every) {
            self.inner.head.send_replace(head);
        }
    }

    /// Adds an entry in order with the stream that does not count toward the cadence (an
    /// event): it leaves with the next wake-up, so it costs no write of its own. Refused
    /// (false) when the ring holds as many events as it has room for beside the stream.
    pub fn publish_along(&self, frame: Bytes) -> bool {
        let mut ring = self.inner.ring.write();
        let mut events = self.inner.events.lock();
        // The ring after this push keeps frames from here on.
        let tail = (ring.head() + 1).saturating_sub(ring.capacity() as u64);
        while events.front().is_some_and(|n| *n < tail) {
            events.pop_front();
        }
        if events.len() >= self.inner.event_room {
            return false;
        }
        events.push_back(ring.push(frame));
        true
    }

    fn push(&self, frame: Bytes) -> u64 {
        let mut ring = self.inner.ring.write();
        ring.push(frame);
        ring.head()
    }

    /// Sets the cadence: subscribers wake once every `frames` frames.
    pub fn set_wake_every(&self, frames: u32) {
        self.inner
            .wake_every
            .store(frames.max(1), Ordering::Relaxed);
    }

    /// The cadence in frames.
    pub fn wake_every(&self) -> u32 {
        self.inner.wake_every.load(Ordering::Relaxed)
    }

    /// The largest backlog (frames) writers reported with [`Feed::note_lag`] since the last
    /// call.
    pub fn take_max_lag(&self) -> u64 {
        self.inner.max_lag.swap(0, Ordering::Relaxed)
    }

    /// Ends the feed: subscribers drain what is left, then see the end.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.head.send_modify(|_| {});
        self.inner.ticks.send_modify(|_| {});
    }

    /// Ends the feed for a reason other than the stream's end (this node lets its
    /// listeners go): WebSocket listeners are closed with `code` and `reason`.
    pub fn close_with(&self, code: u16, reason: &str) {
        *self.inner.close_reason.lock() = Some((code, reason.to_owned()));
        self.close();
    }

    /// The code and reason given to [`Feed::close_with`], if it was.
    pub fn close_reason(&self) -> Option<(u16, String)> {
        self.inner.close_reason.lock().clone()
    }

    /// Whether [`Feed::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// A new subscriber positioned a short burst behind live.
    pub fn subscribe(&self) -> Subscriber {
        let cursor = self.inner.ring.read().join(self.inner.burst);
        self.attach(1);
        Subscriber {
            feed: self.clone(),
            cursor,
            head: self.inner.head.subscribe(),
        }
    }

    /// Number of listeners currently attached.
    pub fn subscribers(&self) -> usize {
        self.inner.listeners.load(Ordering::Relaxed)
    }

    /// Counts `n` listeners in (a writer that serves listeners without a [`Subscriber`]).
    pub fn attach(&self, n: usize) {
        self.inner.listeners.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` listeners out.
    pub fn detach(&self, n: usize) {
        self.inner.listeners.fetch_sub(n, Ordering::Relaxed);
    }

    /// The count of timed frames published, updated on every one: a writer that serves many
    /// listeners passes when its [`crate::Stagger`] says so.
    pub fn ticks(&self) -> watch::Receiver<u64> {
        self.inner.ticks.subscribe()
    }

    /// Copies the whole ring (shared buffers: a reference count each) into `snap`.
    pub fn snapshot(&self, snap: &mut Snapshot) {
        let ring = self.inner.ring.read();
        let (start, frames) = ring.frames();
        snap.fill(start, frames.cloned());
    }

    /// Frames a new listener gets at once.
    pub fn burst(&self) -> usize {
        self.inner.burst
    }

    /// Records how many frames behind a writer's listeners were when it passed (the cadence
    /// plus the writer's own lateness).
    pub fn note_lag(&self, frames: u64) {
        self.inner.max_lag.fetch_max(frames, Ordering::Relaxed);
    }

    /// Number of the next frame to be published.
    pub fn head(&self) -> u64 {
        *self.inner.head.borrow()
    }
}

/// A listener's view of a [`Feed`].
#[derive(Debug)]
pub struct Subscriber {
    feed: Feed,
    cursor: Cursor,
    head: watch::Receiver<u64>,
}

impl Subscriber {
    /// Appends what is available now (up to `max` frames) without waiting.
    pub fn read_now(&mut self, out: &mut Vec<Bytes>, max: usize) -> Read {
        let ring = self.feed.inner.ring.read();
        ring.read(&mut self.cursor, out, max, self.feed.inner.burst)
    }

    /// Waits until frames are available, then appends them (up to `max`). Returns `None`
    /// when the feed is gone.
    pub async fn next_batch(&mut self, out: &mut Vec<Bytes>, max: usize) -> Option<Read> {
        loop {
            let read = self.read_now(out, max);
            if read.frames > 0 || read.skipped > 0 {
                return Some(read);
            }
            if self.feed.is_closed() {
                return None;
            }
            self.head.changed().await.ok()?;
        }
    }

    /// The subscriber's cursor position.
    pub fn position(&self) -> u64 {
        self.cursor.position()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.feed.detach(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_events_never_takes_the_place_of_the_stream() {
        let feed = Feed::with_events(10, 0, 3);
        let mut refused = 0;
        for n in 0..100u8 {
            feed.publish(Bytes::from(vec![n]));
            for _ in 0..50 {
                if !feed.publish_along(Bytes::from_static(b"event")) {
                    refused += 1;
                }
            }
            let mut snap = Snapshot::default();
            feed.snapshot(&mut snap);
            let audio = (snap.start()..snap.head())
                .filter(|i| snap.get(*i).is_some_and(|f| f.len() == 1))
                .count();
            assert_eq!(audio, usize::from(n + 1).min(10), "after frame {n}");
        }
        assert!(refused > 4_000, "{refused}");
        // Once the events have left the ring, there is room for new ones.
        for n in 0..13u8 {
            feed.publish(Bytes::from(vec![n]));
        }
        assert!(feed.publish_along(Bytes::from_static(b"event")));
    }

    #[tokio::test]
    async fn subscribers_wake_when_a_frame_is_published() {
        let feed = Feed::new(16, 2);
        let mut sub = feed.subscribe();
        let publisher = feed.clone();
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            sub.next_batch(&mut out, 10).await.unwrap();
            out
        });
        tokio::task::yield_now().await;
        publisher.publish(Bytes::from_static(b"x"));
        assert_eq!(task.await.unwrap(), vec![Bytes::from_static(b"x")]);
    }

    #[tokio::test]
    async fn with_a_cadence_subscribers_wake_once_per_batch() {
        let feed = Feed::new(64, 0);
        feed.set_wake_every(5);
        let mut sub = feed.subscribe();
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            sub.next_batch(&mut out, 64).await.unwrap().frames
        });
        // Let the reader catch up and wait.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        for i in 0..4u8 {
            feed.publish(Bytes::from(vec![i]));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !reader.is_finished(),
            "woken before a cadence's worth had gathered"
        );
        feed.publish(Bytes::from_static(&[4]));
        assert_eq!(reader.await.unwrap(), 5);
    }

    #[tokio::test]
    async fn events_ride_along_with_the_next_wake_up() {
        let feed = Feed::with_events(64, 0, 8);
        feed.set_wake_every(2);
        let mut ticks = feed.ticks();
        feed.publish(Bytes::from_static(b"a1"));
        assert_eq!(*ticks.borrow_and_update(), 1);
        for _ in 0..5 {
            assert!(feed.publish_along(Bytes::from_static(b"event")));
        }
        assert!(!ticks.has_changed().unwrap(), "an event woke the writers");
        feed.publish(Bytes::from_static(b"a2"));
        assert_eq!(*ticks.borrow_and_update(), 2);
        let mut snap = crate::writer::Snapshot::default();
        feed.snapshot(&mut snap);
        assert_eq!(snap.head(), 7);
    }

    #[tokio::test]
    async fn closing_a_feed_ends_its_subscribers_after_they_drain() {
        let feed = Feed::new(16, 2);
        let mut sub = feed.subscribe();
        feed.publish(Bytes::from_static(b"last"));
        feed.close();
        let mut out = Vec::new();
        assert!(sub.next_batch(&mut out, 10).await.is_some());
        assert!(sub.next_batch(&mut out, 10).await.is_none());
    }
}
