//! The social layer's running parts: the writer that batches likes and follows, the job
//! worker (fan-out of posts into timelines), and the live counts shown to a post's viewers.

pub mod counts;
pub mod engagement;
pub mod jobs;

use std::sync::Arc;
use stentor_store::Store;

/// What the social routes share.
pub struct Social {
    /// Likes and follows, written in batches.
    pub engagement: engagement::Engagement,
    /// The counts of the posts being looked at, refreshed once a second.
    pub counts: Arc<counts::LiveCounts>,
}

impl Social {
    /// Starts the writer, the job worker and the counts watcher; they end with `shutdown`.
    pub fn start(
        store: &Store,
        config: &crate::config::Config,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let engagement = engagement::Engagement::start(
            store.clone(),
            config.engagement_queue(),
            config.engagement_batch(),
            config.fanout_max_followers(),
        );
        tokio::spawn(jobs::work(store.clone(), shutdown.clone()));
        let counts = Arc::new(counts::LiveCounts::default());
        tokio::spawn(counts::refresh(counts.clone(), store.clone(), shutdown));
        Self { engagement, counts }
    }
}
