//! Alert campaigns: when a Space goes live (or is about to start), its alerts go out from the
//! durable queue at the pace its waiting room admits, the likeliest listeners first, and a
//! worker that dies leaves the rest to another after its lease.

use std::sync::Arc;
use std::time::Duration;
use stentor_social::pacing::Pacer;
use stentor_store::{Job, Store};

/// How a Space's waiting room admits, for pacing its alerts: people let in a second (`None`
/// when the Space does not admit yet), and how many wait now.
pub type AdmissionProbe = Arc<dyn Fn(&str) -> (Option<u32>, u64) + Send + Sync>;

/// How long a job taken from the queue is the taker's (a campaign renews it while it runs).
pub const LEASE_SECS: i64 = 30;
/// How often the pacer is asked for an allowance.
const TICK: Duration = Duration::from_millis(100);
/// Seconds of admissions the waiting room may hold before alerts pause.
const BACKLOG_SECS: u32 = 10;
/// How often the lease is renewed and the Space looked at.
const RENEW: Duration = Duration::from_secs(5);

/// What the campaigns are sent with.
#[derive(Clone)]
pub struct Sending {
    /// The store.
    pub store: Store,
    /// The waiting rooms.
    pub probe: AdmissionProbe,
    /// Alerts a second at most, whatever the waiting room admits.
    pub most_per_sec: u32,
    /// Alerts sent, for metrics.
    pub sent: Arc<std::sync::atomic::AtomicU64>,
    /// Web Push to the recipients who subscribed.
    pub push: Arc<super::push::Pusher>,
}

/// Carries out an `alert` job (subject `SPACE:KIND`) until every alert is sent, the Space
/// has ended, or the server shuts down (the lease then runs out and another worker goes on).
pub async fn run(sending: Sending, job: Job, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let store = &sending.store;
    let Some((space, kind)) = job.subject.rsplit_once(':') else {
        let _ = store.finish_job(job.id).await;
        return;
    };
    let now = crate::clock::unix_now() as i64;
    let campaign = match store.list_campaign(space, kind, now).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            let _ = store.finish_job(job.id).await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, space, kind, "cannot list an alert campaign");
            let _ = store.retry_job(job.id, now + 5).await;
            return;
        }
    };
    tracing::info!(space, kind, recipients = campaign.total, "alerts going out");
    let title = store.space(space).await.ok().flatten().map(|s| s.title);
    let host = store
        .user(campaign.host_id)
        .await
        .ok()
        .flatten()
        .map(|u| u.handle);
    let (notice, topic) = if kind == "live" {
        ("live", format!("live-{space}"))
    } else {
        ("reminder", format!("remind-{space}"))
    };
    let body = serde_json::json!({
        "kind": notice,
        "when": kind,
        "space_id": space,
        "title": title,
        "host_handle": host,
        "url": format!("/s/{space}"),
    });
    // Asked to come now: high urgency, worthless after a few minutes; the early reminder
    // can wait its half hour.
    let (urgency, ttl) = if kind == "soon" {
        ("normal", 1800)
    } else {
        ("high", 300)
    };
    // The reminder half an hour ahead asks nobody to come now: not tied to the waiting room.
    let paced = kind != "soon";
    let mut pacer = Pacer::new(sending.most_per_sec, BACKLOG_SECS);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let (admits, waiting) = if paced {
            (sending.probe)(space)
        } else {
            (None, 0)
        };
        let allowance = pacer.allow(std::time::Instant::now(), admits, waiting);
        if allowance.send > 0 {
            let now_ms = (crate::clock::unix_micros() / 1000) as i64;
            match store.send_alerts(&campaign, allowance.send, now_ms).await {
                Ok(sent) => {
                    sending
                        .sent
                        .fetch_add(sent.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    super::push::notify_all(
                        &sending.push,
                        store,
                        &sent,
                        &body,
                        &topic,
                        urgency,
                        ttl,
                    )
                    .await;
                    if (sent.len() as u32) < allowance.send {
                        tracing::info!(space, kind, "every alert sent");
                        let _ = store.finish_job(job.id).await;
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, space, kind, "cannot send alerts"),
            }
        }
        if renewed.elapsed() >= RENEW {
            renewed = tokio::time::Instant::now();
            let now = crate::clock::unix_now() as i64;
            let _ = store.renew_job(job.id, now + LEASE_SECS).await;
            if let Ok(Some(s)) = store.space(space).await
                && s.state == "ended"
            {
                tracing::info!(space, kind, "the space ended: its alerts stop");
                let _ = store.finish_job(job.id).await;
                return;
            }
        }
    }
}
