//! The bus over NATS core messaging: a connection checked for what stentor needs of the
//! server, bounded subscriptions whose overflow the server's client reports as a slow
//! consumer (counted as dropped), and requests with a deadline.

use crate::{BusError, BusStats, SUBSCRIPTION_CAPACITY};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// The oldest nats-server stentor runs on: 2.9 has JetStream key-value buckets with
/// compare-and-set; per-key time-to-live (2.11) is not needed.
pub const MIN_VERSION: (u32, u32) = (2, 9);

/// Connects to `url`, counting slow-consumer drops into `stats`, and checks the server.
pub(crate) async fn connect(
    url: &str,
    name: &str,
    stats: Arc<BusStats>,
) -> Result<async_nats::Client, BusError> {
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .connection_timeout(Duration::from_secs(5))
        // A server cut off (a partition, not a closed socket) is noticed within a few
        // seconds: two pings unanswered end the connection, and the client reconnects.
        .ping_interval(Duration::from_secs(1))
        .event_callback(move |event| {
            let stats = stats.clone();
            async move {
                match event {
                    async_nats::Event::SlowConsumer(_) => BusStats::count(&stats.dropped),
                    other => tracing::info!(event = %other, "nats"),
                }
            }
        })
        .connect(url)
        .await
        .map_err(|e| BusError::Connect {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let info = client.server_info();
    if !version_at_least(&info.version, MIN_VERSION) {
        return Err(BusError::Unfit {
            url: url.to_owned(),
            missing: format!(
                "is version {}; stentor needs {}.{} or later",
                info.version, MIN_VERSION.0, MIN_VERSION.1
            ),
        });
    }
    if let Err(e) = async_nats::jetstream::new(client.clone())
        .query_account()
        .await
    {
        return Err(BusError::Unfit {
            url: url.to_owned(),
            missing: format!(
                "has no JetStream for this account ({e}; start it with -js): leases live in \
                 a key-value bucket"
            ),
        });
    }
    Ok(client)
}

/// Whether a server's version string (`2.9.25`, `2.10.0-beta.1`) is at least `min`.
fn version_at_least(version: &str, min: (u32, u32)) -> bool {
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= min
}

pub(crate) async fn request(
    client: &async_nats::Client,
    subject: &str,
    payload: Bytes,
    timeout: Duration,
) -> Result<Bytes, BusError> {
    let request = async_nats::Request::new()
        .payload(payload)
        .timeout(Some(timeout));
    match client.send_request(subject.to_owned(), request).await {
        Ok(message) => Ok(message.payload),
        Err(e) => Err(match e.kind() {
            async_nats::RequestErrorKind::NoResponders => {
                BusError::NoResponders(subject.to_owned())
            }
            async_nats::RequestErrorKind::TimedOut => BusError::TimedOut(subject.to_owned()),
            _ => BusError::Io(e.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_are_compared_by_major_and_minor() {
        assert!(version_at_least("2.9.25", (2, 9)));
        assert!(version_at_least("2.10.0-beta.1", (2, 9)));
        assert!(version_at_least("3.0.0", (2, 9)));
        assert!(!version_at_least("2.8.4", (2, 9)));
        assert!(!version_at_least("garbage", (2, 9)));
    }
}
