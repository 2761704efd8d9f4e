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
    /// Spaces announced by a post made on this node since their announcements were last
    /// looked up (looked up again at once, not after [`ANNOUNCEMENTS_REREAD`]).
    announced: Mutex<std::collections::HashSet<String>>,
}

impl Default for LiveCounts {
    fn default() -> Self {
        Self {
            watched: Mutex::default(),
            latest: watch::Sender::new(Arc::default()),
            announced: Mutex::default(),
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

    /// A post announcing Space `space` was made here: if it is live on this node, its
    /// announcements are looked up again within a window.
    pub fn announced(&self, space: &str) {
        let mut announced = self.announced.lock();
        if announced.len() < MOST_WATCHED {
            announced.insert(space.to_owned());
        }
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

/// A live Space mixed on this node, as the announcements' counts need it.
pub trait SpaceEvents: Send + Sync {
    /// The Space's id.
    fn id(&self) -> &str;
    /// Its host, whose posts announce it.
    fn host(&self) -> u64;
    /// Sends a JSON event to everyone in the Space (here and on the cluster's edges).
    fn broadcast(&self, json: &str);
}

/// The live Spaces this node mixes (on an edge, none: the origin sends their events).
pub type LiveHere = Arc<dyn Fn() -> Vec<Arc<dyn SpaceEvents>> + Send + Sync>;

/// Posts announcing one Space that are followed at most.
pub const ANNOUNCEMENTS: u32 = 4;
/// How often the posts announcing a live Space are looked up again (a post made on another
/// node after the start is followed from then on; one made on this node, at once).
pub const ANNOUNCEMENTS_REREAD: Duration = Duration::from_secs(30);

/// The event that carries an announcement's counts.
pub fn post_counts_event(post: u64, counts: Counts) -> String {
    serde_json::json!({
        "event": "post_counts", "post_id": post,
        "like_count": counts[0], "reply_count": counts[1], "repost_count": counts[2],
    })
    .to_string()
}

/// How often an announcement's counts are sent again when they have not changed, so that a
/// listener who joins later learns them.
pub const ANNOUNCEMENTS_REPEAT: Duration = Duration::from_secs(5);

/// One live Space whose announcements are followed.
struct Announced {
    space: Arc<dyn SpaceEvents>,
    watch: Option<Watch>,
    /// The counts last sent, per post, and when.
    sent: HashMap<u64, (Counts, tokio::time::Instant)>,
    read_at: tokio::time::Instant,
}

/// Sends the counts of the posts announcing each live Space mixed here to that Space's
/// listeners over its events: one `post_counts` event per post when they change, at most
/// once per [`WINDOW`] whatever the number of likes (the reactions' path, aggregated as
/// reactions are), and every [`ANNOUNCEMENTS_REPEAT`] when they do not, whatever the number
/// of listeners.
pub async fn announce(
    counts: Arc<LiveCounts>,
    store: Store,
    live: LiveHere,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = counts.latest.subscribe();
    let mut every = tokio::time::interval(WINDOW);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut followed: HashMap<String, Announced> = HashMap::new();
    loop {
        tokio::select! {
            _ = every.tick() => follow_live(&counts, &store, &live, &mut followed).await,
            changed = changes.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let latest = changes.borrow_and_update().clone();
        send_due(&mut followed, &latest, tokio::time::Instant::now());
    }
}

/// Sends each followed announcement's counts that changed, or were last sent
/// [`ANNOUNCEMENTS_REPEAT`] ago.
fn send_due(
    followed: &mut HashMap<String, Announced>,
    latest: &HashMap<u64, Counts>,
    now: tokio::time::Instant,
) {
    for announced in followed.values_mut() {
        let Some(watch) = &announced.watch else {
            continue;
        };
        for post in watch.posts() {
            let Some(counts) = latest.get(post) else {
                continue;
            };
            let due = announced.sent.get(post).is_none_or(|(sent, at)| {
                sent != counts || now.duration_since(*at) >= ANNOUNCEMENTS_REPEAT
            });
            if due {
                announced
                    .space
                    .broadcast(&post_counts_event(*post, *counts));
                announced.sent.insert(*post, (*counts, now));
            }
        }
    }
}

/// Follows the live Spaces mixed here (and no others), looking their announcements up on
/// the first sight and every [`ANNOUNCEMENTS_REREAD`].
async fn follow_live(
    counts: &Arc<LiveCounts>,
    store: &Store,
    live: &LiveHere,
    followed: &mut HashMap<String, Announced>,
) {
    let spaces = live();
    followed.retain(|id, _| spaces.iter().any(|s| s.id() == id));
    let fresh = std::mem::take(&mut *counts.announced.lock());
    let now = tokio::time::Instant::now();
    for space in spaces {
        let due = fresh.contains(space.id())
            || followed
                .get(space.id())
                .is_none_or(|a| now.duration_since(a.read_at) >= ANNOUNCEMENTS_REREAD);
        if let Some(announced) = followed.get_mut(space.id()) {
            // The Space as loaded now (unloaded and loaded again, it is another).
            announced.space = space.clone();
        }
        if !due {
            continue;
        }
        let posts = match store
            .announcements(space.id(), space.host(), ANNOUNCEMENTS)
            .await
        {
            Ok(posts) => posts,
            Err(e) => {
                tracing::warn!(space = space.id(), error = %e, "cannot read a Space's announcements");
                continue;
            }
        };
        let entry = followed
            .entry(space.id().to_owned())
            .or_insert_with(|| Announced {
                space: space.clone(),
                watch: None,
                sent: HashMap::new(),
                read_at: now,
            });
        entry.read_at = now;
        if entry.watch.as_ref().map(Watch::posts) != Some(posts.as_slice()) {
            // The new watch first, so that posts in both are never left unwatched.
            let watch = (!posts.is_empty()).then(|| counts.watch(posts)).flatten();
            entry.watch = watch;
        }
    }
}
