//! A burst of API requests, each as its own account (a like burst on one post, timeline
//! reads): open-loop at a set rate over many keep-alive connections from many loopback
//! addresses, each request's latency counted from the moment it was due (so a server that
//! falls behind is charged for the queue it makes, not hidden by it).

use crate::net::{connect_from, read_head};
use anyhow::Context;
use bytes::{Buf, BytesMut};
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

/// What to send.
#[derive(Debug, Clone)]
pub struct Burst {
    /// The server.
    pub addr: SocketAddr,
    /// `POST`, `GET`, `DELETE`.
    pub method: String,
    /// The path; `{i}` becomes the request's number.
    pub path: String,
    /// The bearer token; `{i}` becomes the request's number.
    pub token: String,
    /// Requests (numbered `first..first + count`).
    pub first: u64,
    /// How many.
    pub count: u64,
    /// Requests a second, all connections together.
    pub rate: f64,
    /// Keep-alive connections.
    pub connections: usize,
    /// Source addresses: connection `c` takes the `(257 c mod n)`th, so that consecutive
    /// connections come from different /24 networks of a large range.
    pub sources: Vec<Ipv4Addr>,
    /// How long one request may take.
    pub timeout: Duration,
}

/// What a burst measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BurstReport {
    /// Requests sent.
    pub sent: u64,
    /// Answered 2xx.
    pub ok: u64,
    /// Answered `"changed":true` (a like or follow made by this request).
    pub changed: u64,
    /// Answered 429 or 503 (told to come back later).
    pub retry_later: u64,
    /// Failed otherwise (another status, a timeout, a closed connection).
    pub failed: u64,
    /// From the first request due to the last answer, seconds.
    pub seconds: f64,
    /// Answers a second over the run.
    pub per_sec: f64,
    /// Latency from due time to answer, milliseconds: p50, p90, p99, p99.9, max.
    pub latency_ms: [f64; 5],
    /// The first failures, for the record.
    pub errors: Vec<String>,
}

/// One connection's share: requests `c, c + C, c + 2C, ...`.
async fn connection(
    burst: &Burst,
    c: usize,
    start: Instant,
) -> (Vec<f64>, u64, u64, u64, u64, Vec<String>) {
    let (mut lat, mut ok, mut changed, mut later, mut failed) = (Vec::new(), 0, 0, 0, 0);
    let mut errors = Vec::new();
    // A stride of 257 puts consecutive connections in different /24s of a large range, as
    // a crowd comes from many networks.
    let source = burst
        .sources
        .get((c * 257) % burst.sources.len().max(1))
        .copied();
    let mut stream = None;
    let mut buf = BytesMut::with_capacity(4096);
    let step = burst.connections as u64;
    let mut k = c as u64;
    while k < burst.count {
        let i = burst.first + k;
        let due = start + Duration::from_secs_f64(k as f64 / burst.rate);
        tokio::time::sleep_until(due).await;
        let result = async {
            if stream.is_none() {
                stream = Some(connect_from(source, burst.addr).await?);
                buf.clear();
            }
            let s = stream.as_mut().context("a connection")?;
            let path = burst.path.replace("{i}", &i.to_string());
            let token = burst.token.replace("{i}", &i.to_string());
            let request = format!(
                "{} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n",
                burst.method
            );
            s.write_all(request.as_bytes()).await?;
            let end = Instant::now() + burst.timeout;
            let head = read_head(s, &mut buf, end).await?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < length {
                use tokio::io::AsyncReadExt;
                if tokio::time::timeout_at(end, s.read_buf(&mut buf)).await?? == 0 {
                    anyhow::bail!("closed in the body");
                }
            }
            let body = String::from_utf8_lossy(&buf[..length]).into_owned();
            buf.advance(length);
            if head.to_ascii_lowercase().contains("connection: close") {
                stream = None;
            }
            Ok::<_, anyhow::Error>((head, body))
        }
        .await;
        let took = due.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok((head, body)) => {
                let status = head.split_whitespace().nth(1).unwrap_or("");
                if status.starts_with('2') {
                    ok += 1;
                    lat.push(took);
                    if body.contains("\"changed\":true") {
                        changed += 1;
                    }
                } else if status == "429" || status == "503" {
                    later += 1;
                } else {
                    failed += 1;
                    if errors.len() < 5 {
                        errors.push(format!("{status}: {body}"));
                    }
                }
            }
            Err(e) => {
                failed += 1;
                stream = None;
                if errors.len() < 5 {
                    errors.push(e.to_string());
                }
            }
        }
        k += step;
    }
    (lat, ok, changed, later, failed, errors)
}

/// Runs a burst to the end.
pub async fn run(burst: Burst) -> BurstReport {
    let start = Instant::now() + Duration::from_millis(200);
    let burst = std::sync::Arc::new(burst);
    let mut tasks = Vec::new();
    for c in 0..burst.connections {
        let burst = burst.clone();
        tasks.push(tokio::spawn(
            async move { connection(&burst, c, start).await },
        ));
    }
    let mut report = BurstReport::default();
    let mut lat = Vec::new();
    for t in tasks {
        let Ok((l, ok, changed, later, failed, errors)) = t.await else {
            continue;
        };
        lat.extend(l);
        report.ok += ok;
        report.changed += changed;
        report.retry_later += later;
        report.failed += failed;
        for e in errors {
            if report.errors.len() < 10 {
                report.errors.push(e);
            }
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    report.sent = burst.count;
    report.per_sec = report.ok as f64 / report.seconds.max(1e-9);
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p).round() as usize]
        }
    };
    report.latency_ms = [q(0.5), q(0.9), q(0.99), q(0.999), q(1.0)];
    report
}
