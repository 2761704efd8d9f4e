//! A ring shared between one publisher and many subscribers, with wake-ups.

use crate::ring::{Cursor, Read, Ring};
use bytes::Bytes;
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// One stream of frames (one transport's framing of one Space's mix).
#[derive(Debug, Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ring: RwLock<Ring>,
    head: watch::Sender<u64>,
    burst: usize,
    closed: AtomicBool,
}

impl Feed {
    /// A feed keeping `capacity` frames, giving new subscribers `burst` frames at once.
    pub fn new(capacity: usize, burst: usize) -> Self {
        let (head, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                ring: RwLock::new(Ring::new(capacity)),
                head,
                burst,
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Publishes a frame to every subscriber.
    pub fn publish(&self, frame: Bytes) {
        let head = {
            let mut ring = self.inner.ring.write();
            ring.push(frame);
            ring.head()
        };
        self.inner.head.send_replace(head);
    }

    /// Ends the feed: subscribers drain what is left, then see the end.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.head.send_modify(|_| {});
    }

    /// Whether [`Feed::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// A new subscriber positioned a short burst behind live.
    pub fn subscribe(&self) -> Subscriber {
        let cursor = self.inner.ring.read().join(self.inner.burst);
        Subscriber {
            feed: self.clone(),
            cursor,
            head: self.inner.head.subscribe(),
        }
    }

    /// Number of subscribers currently attached.
    pub fn subscribers(&self) -> usize {
        self.inner.head.receiver_count()
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

#[cfg(test)]
mod tests {
    use super::*;

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
