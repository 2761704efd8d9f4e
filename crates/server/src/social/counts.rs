//! The counts of the posts people are looking at, refreshed once a second with one query per
//! node (whatever the number of viewers, and whichever node wrote the likes), and handed to
//! each viewer's stream when they change.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use stentor_store::Store;
use tokio::sync::watch;

/// How often the counts are read.
pub const WINDOW: Duration = Duration::from_secs(1);
/// Most posts watched at once on one node; past it, new viewers get no live counts.
pub const MOST_WATCHED: usize = 10_000;

/// A post's likes, replies and reposts.
pub type Counts = [u64; 3];

/// The watched posts and their latest counts.
pub struct LiveCounts {
    /// Post → how many viewers watch it.
    watched: Mutex<HashMap<u64, u32>>,
    /// The latest counts of the watched posts.
    latest: watch::Sender<Arc<HashMap<u64, Counts>>>,
}

impl Default for LiveCounts {
    fn default() -> Self {
        Self {
            watched: Mutex::default(),
            latest: watch::Sender::new(Arc::default()),
        }
    }
}

/// A viewer's interest in some posts; dropping it ends the interest.
pub struct Watch {
    counts: Arc<LiveCounts>,
    posts: Vec<u64>,
    /// Changes of the latest counts.
    pub changes: watch::Receiver<Arc<HashMap<u64, Counts>>>,
}

impl Watch {
    /// The posts watched.
    pub fn posts(&self) -> &[u64] {
        &self.posts
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watched = self.counts.watched.lock();
        for post in &self.posts {
            if let Some(n) = watched.get_mut(post) {
                *n -= 1;
                if *n == 0 {
                    watched.remove(post);
                }
            }
        }
    }
}

impl LiveCounts {
    /// Watches `posts`; `None` when this node watches as many posts as it may.
    pub fn watch(self: &Arc<Self>, posts: Vec<u64>) -> Option<Watch> {
        let mut watched = self.watched.lock();
        let new = posts.iter().filter(|p| !watched.contains_key(p)).count();
        if watched.len() + new > MOST_WATCHED {
            return None;
        }
        for post in &posts {
            *watched.entry(*post).or_default() += 1;
        }
        Some(Watch {
            counts: self.clone(),
            posts,
            changes: self.latest.subscribe(),
        })
    }

    fn watched(&self) -> Vec<u64> {
        self.watched.lock().keys().copied().collect()
    }
}

/// Reads the counts of the watched posts every [`WINDOW`] until shutdown.
pub async fn refresh(counts: Arc<LiveCounts>, store: Store, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(WINDOW);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        let posts = counts.watched();
        if posts.is_empty() {
            continue;
        }
        match store.post_counts(&posts).await {
            Ok(rows) => {
                let fresh: HashMap<u64, Counts> = rows.into_iter().collect();
                counts.latest.send_if_modified(|old| {
                    let changed = **old != fresh;
                    if changed {
                        *old = Arc::new(fresh);
                    }
                    changed
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the watched posts' counts"),
        }
    }
}
