//! The social layer's running parts: the writer that batches likes and follows, the job
//! worker (fan-out of posts into timelines, alert campaigns), and the live counts shown to a
//! post's viewers.

pub mod alerts;
pub mod counts;
pub mod engagement;
pub mod jobs;
pub mod push;

use std::sync::Arc;
use stentor_store::Store;

/// What the social routes share.
pub struct Social {
    /// Likes and follows, written in batches.
    pub engagement: engagement::Engagement,
    /// The counts of the posts being looked at, refreshed once a second.
    pub counts: Arc<counts::LiveCounts>,
    /// Alerts sent by this node.
    pub alerts_sent: Arc<std::sync::atomic::AtomicU64>,
    /// Web Push.
    pub push: Arc<push::Pusher>,
    /// Where uploaded avatars are kept.
    pub avatars: Arc<dyn stentor_record::Storage>,
}

impl Social {
    /// Starts the writer, the job worker, the counts watcher and the announcements' counts
    /// on the live Spaces' events; they end with `shutdown`.
    pub fn start(
        store: &Store,
        config: &crate::config::Config,
        probe: alerts::AdmissionProbe,
        live: counts::LiveHere,
        push: Arc<push::Pusher>,
        avatars: Arc<dyn stentor_record::Storage>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let engagement = engagement::Engagement::start(
            store.clone(),
            config.engagement_queue(),
            config.engagement_batch(),
            config.fanout_max_followers(),
        );
        let alerts_sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sending = alerts::Sending {
            store: store.clone(),
            probe,
            most_per_sec: config.alerts_per_sec(),
            sent: alerts_sent.clone(),
            push: push.clone(),
        };
        tokio::spawn(jobs::work(sending, shutdown.clone()));
        let counts = Arc::new(counts::LiveCounts::default());
        tokio::spawn(counts::refresh(
            counts.clone(),
            store.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(counts::announce(
            counts.clone(),
            store.clone(),
            live,
            shutdown,
        ));
        Self {
            engagement,
            counts,
            alerts_sent,
            push,
            avatars,
        }
    }
}
