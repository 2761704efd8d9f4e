//! The job worker: takes due jobs from the durable queue (leased, so that a worker that dies
//! leaves them to another after the lease) and carries them out: fan-outs here, alert
//! campaigns in tasks of their own (they last as long as their pace makes them).

use super::alerts::{self, LEASE_SECS, Sending};
use std::time::Duration;
use stentor_store::{Job, Store};

/// How often the queue is looked at when it was empty.
const IDLE: Duration = Duration::from_millis(500);
/// Jobs taken at once.
const TAKE: u32 = 16;

/// How often ended restrictions are lifted, seconds.
const LAPSE_EVERY_SECS: i64 = 30;

/// Works the queue until shutdown (and lifts ended moderation restrictions on the way).
pub async fn work(sending: Sending, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let store = sending.store.clone();
    let mut lapse_at = 0;
    loop {
        let now = crate::clock::unix_now() as i64;
        if now >= lapse_at {
            // Restrictions whose end has come are lifted from their subjects (every node
            // may do it; doing it twice changes nothing).
            lapse_at = now + LAPSE_EVERY_SECS;
            if let Err(e) = store.moderation_lapse(now * 1000).await {
                tracing::warn!(error = %e, "cannot lift ended restrictions");
            }
        }
        let jobs = match store.claim_jobs(now, now + LEASE_SECS, TAKE).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take jobs");
                Vec::new()
            }
        };
        for job in &jobs {
            if job.kind == "alert" {
                tokio::spawn(alerts::run(sending.clone(), job.clone(), shutdown.clone()));
            } else {
                run(&store, job, now).await;
            }
        }
        if jobs.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(IDLE) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn run(store: &Store, job: &Job, now: i64) {
    let done = match job.kind.as_str() {
        "fanout" => store.run_fanout(job).await.map(drop),
        other => {
            // A newer node's job: left for a node that knows it.
            tracing::debug!(kind = other, "job of an unknown kind left in the queue");
            Ok(())
        }
    };
    if let Err(e) = done {
        // Backs off: 2, 4, 8 ... seconds, at most an hour.
        let wait = 1_i64 << job.attempts.min(11);
        tracing::warn!(job = job.id, kind = %job.kind, error = %e, wait, "job failed");
        let _ = store.retry_job(job.id, now + wait.min(3600)).await;
    }
}
