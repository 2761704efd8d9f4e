//! The Transparency Database: the exporter submits every statement of reasons, in batches of up
//! to 100, to the configured endpoint, and records what became of each (sent, already there,
//! refused) so that nothing is sent twice by this node and nothing is lost; the rules of the
//! answers are in `stentor_moderation::export`. Every node may run it: the `puid` keeps two
//! nodes sending the same statement harmless. And the public transparency report's budget:
//! computed one at a time, kept until the log grows.

use std::sync::Arc;
use std::time::Duration;
use stentor_moderation::export::{self, Answer, BATCH, MAX_BACKOFF};
use stentor_moderation::log::Event;
use stentor_moderation::report::Row;
use stentor_moderation::statement::{Platform, tdb_payload};
use stentor_moderation::tdb::validate;
use stentor_store::{Export, Store};

/// How often the log is looked at when nothing was waiting.
const IDLE: Duration = Duration::from_secs(2);
/// Longest wait for one answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to submit.
#[derive(Clone)]
pub struct Endpoint {
    /// The batch endpoint (`…/api/v1/statements`).
    pub url: String,
    /// The platform's API token, if the endpoint wants one.
    pub token: Option<String>,
}

/// Submits until shutdown.
pub async fn run(
    store: Store,
    platform: Platform,
    endpoint: Endpoint,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("stentor/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the Transparency Database exporter cannot start");
            return;
        }
    };
    tracing::info!(url = %endpoint.url, "submitting statements of reasons to the Transparency Database");
    let mut failures = 0u32;
    loop {
        let wait = match once(&store, &platform, &endpoint, &client).await {
            Ok(Progress::Idle) => IDLE,
            Ok(Progress::Moved) => {
                failures = 0;
                Duration::ZERO
            }
            Ok(Progress::Locked(why)) => {
                tracing::error!(reason = %why, "the Transparency Database refuses this platform's token; waiting");
                MAX_BACKOFF
            }
            Err(why) => {
                let wait = export::backoff(failures);
                failures = failures.saturating_add(1);
                tracing::warn!(reason = %why, retry_in_ms = wait.as_millis() as u64, "statements not submitted; trying again");
                wait
            }
        };
        if wait.is_zero() {
            if *shutdown.borrow() {
                return;
            }
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// What one round did.
enum Progress {
    /// Nothing was waiting.
    Idle,
    /// Statements were recorded (more may wait).
    Moved,
    /// The endpoint refuses the platform.
    Locked(String),
}

/// Takes the oldest statements not yet submitted, submits them as one batch and records what
/// became of each; an error means: try again later.
async fn once(
    store: &Store,
    platform: &Platform,
    endpoint: &Endpoint,
    client: &reqwest::Client,
) -> Result<Progress, String> {
    let entries = store
        .tdb_pending(BATCH as u32)
        .await
        .map_err(|e| e.to_string())?;
    if entries.is_empty() {
        return Ok(Progress::Idle);
    }
    let now = (crate::clock::unix_now() * 1000) as i64;
    let record = |decision: u64, puid: &str, outcome: &str, detail: String| Export {
        decision,
        puid: puid.to_owned(),
        at_ms: now,
        outcome: outcome.to_owned(),
        detail,
    };
    // Statements this side already knows the database would refuse are recorded as such, not
    // sent (a decision logged by an older version, say).
    let mut refused = Vec::new();
    let mut batch = Vec::new();
    for entry in &entries {
        let Ok(Event::Decision(d)) = entry.event() else {
            refused.push(record(entry.seq, "", "invalid", "not a decision".into()));
            continue;
        };
        let payload = tdb_payload(platform, entry.seq, entry.at_ms, &d);
        let violations = validate(&payload);
        let puid = platform.puid(entry.seq);
        if violations.is_empty() {
            batch.push((entry.seq, puid, payload));
        } else {
            let why = violations
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            refused.push(record(entry.seq, &puid, "invalid", why));
        }
    }
    if !refused.is_empty() {
        store
            .tdb_record(&refused)
            .await
            .map_err(|e| e.to_string())?;
    }
    if batch.is_empty() {
        return Ok(Progress::Moved);
    }
    let payloads: Vec<_> = batch.iter().map(|(_, _, p)| p.clone()).collect();
    let puids: Vec<String> = batch.iter().map(|(_, puid, _)| puid.clone()).collect();
    let mut request = client.post(&endpoint.url).json(&export::body(&payloads));
    if let Some(token) = &endpoint.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    let done: Vec<Export> = match export::answer(status, &body, &puids) {
        Answer::Accepted => batch
            .iter()
            .map(|(seq, puid, _)| record(*seq, puid, "sent", String::new()))
            .collect(),
        Answer::Existing(existing) => batch
            .iter()
            .filter(|(_, puid, _)| existing.contains(puid))
            .map(|(seq, puid, _)| record(*seq, puid, "existing", String::new()))
            .collect(),
        Answer::Invalid(invalid) => invalid
            .into_iter()
            .map(|(i, why)| record(batch[i].0, &batch[i].1, "invalid", why))
            .collect(),
        Answer::Retry(why) => return Err(why),
        Answer::Unauthorized(why) => return Ok(Progress::Locked(why)),
    };
    for e in done.iter().filter(|e| e.outcome == "invalid") {
        tracing::error!(decision = e.decision, puid = %e.puid, reason = %e.detail, "the Transparency Database refused a statement");
    }
    store.tdb_record(&done).await.map_err(|e| e.to_string())?;
    Ok(Progress::Moved)
}

/// A report as kept: the log's head when it was computed, and its rows.
type Kept = (u64, Arc<Vec<Row>>);

/// The transparency report's budget: it is public and recomputed from the whole log, so one
/// computation runs at a time and its result is kept until the log grows.
pub struct Reports {
    /// Held while a report is computed.
    computing: tokio::sync::Semaphore,
    /// Reports computed lately, by period (from, to).
    kept: parking_lot::Mutex<std::collections::HashMap<(i64, i64), Kept>>,
}

/// Reports kept at once (periods asked for lately).
const KEPT: usize = 32;
/// Longest wait for the computation another request is running.
const WAIT_FOR_REPORT: Duration = Duration::from_secs(10);

impl Default for Reports {
    fn default() -> Self {
        Self {
            computing: tokio::sync::Semaphore::new(1),
            kept: Default::default(),
        }
    }
}

/// Why a report could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Another computation took too long to finish.
    #[error("the report is being computed; try again shortly")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] stentor_store::StoreError),
    /// The log holds an entry that cannot be read.
    #[error("moderation log entry {0}: {1}")]
    Unreadable(u64, String),
}

impl Reports {
    /// The report over `[from_ms, to_ms)` as the log stands now: kept while the log has not
    /// grown, otherwise computed (one at a time).
    pub async fn report(
        &self,
        store: &Store,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Arc<Vec<Row>>, ReportError> {
        let key = (from_ms, to_ms);
        let head = store.moderation_head().await?;
        if let Some((at, rows)) = self.kept.lock().get(&key)
            && *at == head
        {
            return Ok(rows.clone());
        }
        let _permit = tokio::time::timeout(WAIT_FOR_REPORT, self.computing.acquire())
            .await
            .map_err(|_| ReportError::Busy)?
            .expect("never closed");
        // Computed meanwhile by the request that held the permit?
        let head = store.moderation_head().await?;
        if let Some((at, rows)) = self.kept.lock().get(&key)
            && *at >= head
        {
            return Ok(rows.clone());
        }
        let mut log = Vec::new();
        let mut after = 0;
        loop {
            let page = store.moderation_entries(after, 1_000).await?;
            for e in &page {
                let event = e
                    .event()
                    .map_err(|err| ReportError::Unreadable(e.seq, err.to_string()))?;
                log.push((e.seq, e.at_ms, event));
            }
            match page.last() {
                Some(last) if page.len() == 1_000 && last.seq < head => after = last.seq,
                _ => break,
            }
        }
        let rows = Arc::new(stentor_moderation::report::report(&log, from_ms, to_ms));
        let mut kept = self.kept.lock();
        if kept.len() >= KEPT {
            kept.clear();
        }
        kept.insert(key, (head, rows.clone()));
        Ok(rows)
    }
}
