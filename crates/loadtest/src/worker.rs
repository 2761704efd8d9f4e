//! One shard of listeners on one event loop: connect at the planned instant from the planned
//! source address, account for every frame, report progress and outcomes.

use crate::account::{Account, FRAME_US, Outcome};
pub use crate::net::RetryLater;
use crate::net::{connect_from, expect_status, read_head};
use crate::plan::{Shard, Transport};
use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use stentor_media::ogg::{PRE_SKIP, peek_page};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Width of a lateness bucket, microseconds.
pub const LATE_BUCKET_US: i64 = 50_000;
/// Lateness buckets; the last one holds everything from 1.55 s on.
pub const LATE_BUCKETS: usize = 32;

/// Progress of a shard, sent about once a second (every count since the start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// Listeners that have started to connect.
    pub joined: u64,
    /// Listeners receiving audio now.
    pub connected: u64,
    /// Listeners that failed.
    pub failed: u64,
    /// Times a listener was told to come back later (503 with Retry-After) and did.
    #[serde(default)]
    pub retries: u64,
    /// Frames received so far.
    pub frames: u64,
    /// Frames received so far by lateness, in buckets of [`LATE_BUCKET_US`]: how much later
    /// than the earliest delivery of a frame this shard has seen.
    pub late: [u64; LATE_BUCKETS],
}

struct Counters {
    joined: AtomicU64,
    retries: AtomicU64,
    connected: AtomicU64,
    failed: AtomicU64,
    frames: AtomicU64,
    late: [AtomicU64; LATE_BUCKETS],
    /// The smallest (arrival − media time) seen so far: the earliest delivery.
    base_us: AtomicI64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            joined: AtomicU64::default(),
            retries: AtomicU64::default(),
            connected: AtomicU64::default(),
            failed: AtomicU64::default(),
            frames: AtomicU64::default(),
            late: Default::default(),
            base_us: AtomicI64::new(i64::MAX),
        }
    }
}

impl Counters {
    fn tick(&self) -> Tick {
        Tick {
            joined: self.joined.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            frames: self.frames.load(Ordering::Relaxed),
            late: std::array::from_fn(|i| self.late[i].load(Ordering::Relaxed)),
        }
    }

    /// Counts a frame `seq` arriving at `now_us` in its lateness bucket. The earliest delivery
    /// is the running minimum, which settles within the first cadence of the run.
    fn on_frame(&self, seq: u64, now_us: i64) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        let offset = now_us - seq as i64 * FRAME_US;
        let base = self
            .base_us
            .fetch_min(offset, Ordering::Relaxed)
            .min(offset);
        let bucket = ((offset - base) / LATE_BUCKET_US) as usize;
        self.late[bucket.min(LATE_BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }
}

/// Microseconds since the Unix epoch: a clock every worker process shares.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Runs a shard to its end, calling `on_tick` about once a second; returns one outcome per
/// listener.
pub async fn run_shard(shard: Shard, mut on_tick: impl FnMut(Tick)) -> Vec<Outcome> {
    let plan = Arc::new(shard.plan.clone());
    let counters = Arc::new(Counters::default());
    let wait_ms = (shard.start_unix_ms - now_us() / 1000).max(0) as u64;
    let start = Instant::now() + Duration::from_millis(wait_ms);
    let end = start + plan.last_join(shard.start_unix_ms) + Duration::from_secs_f64(plan.hold_secs);
    let mut tasks = Vec::with_capacity(shard.count());
    for i in shard.listeners() {
        let plan = plan.clone();
        let counters = counters.clone();
        let at = start + plan.join_offset(i, shard.start_unix_ms);
        tasks.push(tokio::spawn(async move {
            // A waiting client joins at a moment of the window the server announces, and
            // stays as long as the others after it.
            let (at, end) = if plan.follows_window() {
                let window = announced_window(&plan, i, at).await;
                let at = at + window.mul_f64(crate::plan::unit(i, 3));
                (at, end.max(at + Duration::from_secs_f64(plan.hold_secs)))
            } else {
                (at, end)
            };
            tokio::time::sleep_until(at).await;
            counters.joined.fetch_add(1, Ordering::Relaxed);
            let mut account = Account::new(now_us());
            let mut node = plan.node(i, 0).to_owned();
            let mut moves = 0;
            let result = loop {
                match listen(&plan, &node, i, &mut account, end, &counters).await {
                    // Told to come back: wait as told (if the run lasts that long), then retry.
                    Err(e) if account.frames() == 0 => match e.downcast_ref::<RetryLater>() {
                        Some(RetryLater(secs))
                            if Instant::now() + Duration::from_secs(*secs) < end =>
                        {
                            account.on_retry();
                            counters.retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_secs(*secs)).await;
                        }
                        _ => break Err(e),
                    },
                    // Its node went away or sent it elsewhere: on to another while the run
                    // lasts (a few times at most, so a cluster that is down ends the run).
                    Err(e)
                        if may_move(&plan, &e)
                            && moves < MAX_MOVES
                            && Instant::now() + MOVE_MARGIN < end =>
                    {
                        moves += 1;
                        account.on_move();
                        node = match e.downcast_ref::<Moved>() {
                            Some(Moved(url)) => url.clone(),
                            None => plan.node(i, moves).to_owned(),
                        };
                    }
                    other => break other,
                }
            };
            if account.frames() > 0 {
                counters.connected.fetch_sub(1, Ordering::Relaxed);
            }
            let failure = result.err().map(|e| format!("{e:#}"));
            let outcome = account.outcome(failure);
            if outcome.failure.is_some() {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            outcome
        }));
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let all = futures_util::future::join_all(tasks);
    tokio::pin!(all);
    let outcomes = loop {
        tokio::select! {
            done = &mut all => break done,
            _ = ticker.tick() => on_tick(counters.tick()),
        }
    };
    on_tick(counters.tick());
    outcomes
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|e| Outcome {
                failure: Some(e.to_string()),
                ..Outcome::default()
            })
        })
        .collect()
}

/// Most times one listener moves to another node in a run.
const MAX_MOVES: u64 = 10;
/// A listener does not move when less than this is left of the run.
const MOVE_MARGIN: Duration = Duration::from_secs(1);

/// A node's "go there instead" (WebSocket close 4307 with the address as its reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sent to {0}")]
pub struct Moved(pub String);

/// Whether a listener that had audio and lost it moves on: when it was sent elsewhere, or
/// when the plan has nodes to move between.
fn may_move(plan: &crate::Plan, e: &anyhow::Error) -> bool {
    e.downcast_ref::<Moved>().is_some() || plan.nodes.len() > 1 || !plan.fallback.is_empty()
}

/// A URL, the server's address, and the host name and port to send.
async fn target(base: &str) -> anyhow::Result<(reqwest::Url, SocketAddr, String, u16)> {
    let url: reqwest::Url = base.parse().context("the url")?;
    let host = url
        .host_str()
        .ok_or_else(|| anyhow!("no host in {url}"))?
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {host}"))?;
    Ok((url, addr, host, port))
}

/// The join window listener `i` is told: it asks for the Space's status twice before `at`
/// (once in each of the two five-second stretches before it, as a client polling every
/// five seconds does) and keeps the last answer; none if every ask failed.
async fn announced_window(plan: &crate::Plan, i: usize, at: Instant) -> Duration {
    let mut window = Duration::ZERO;
    for (salt, before) in [(1, 10.0), (2, 5.0)] {
        let offset = Duration::from_secs_f64(before - 5.0 * crate::plan::unit(i, salt));
        tokio::time::sleep_until(at.checked_sub(offset).unwrap_or(at)).await;
        if let Ok(secs) = status_window(plan, i).await {
            window = Duration::from_secs(secs);
        }
    }
    window
}

/// Asks for the Space's status on a connection of its own; its `join_window_secs`.
async fn status_window(plan: &crate::Plan, i: usize) -> anyhow::Result<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_, addr, host, port) = target(plan.node(i, 0)).await?;
    let mut stream = connect_from(plan.source(i), addr).await?;
    let request = format!(
        "GET /api/v1/spaces/{}/status HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n",
        plan.space
    );
    stream.write_all(request.as_bytes()).await?;
    let end = Instant::now() + Duration::from_secs(5);
    let mut buf = bytes::BytesMut::with_capacity(1024);
    let head = read_head(&mut stream, &mut buf, end).await?;
    expect_status(&head, "200")?;
    while tokio::time::timeout_at(end, stream.read_buf(&mut buf)).await?? > 0 {}
    let status: serde_json::Value = serde_json::from_slice(&buf)?;
    status["join_window_secs"]
        .as_u64()
        .ok_or_else(|| anyhow!("no join window in the status"))
}

async fn listen(
    plan: &crate::Plan,
    node: &str,
    i: usize,
    account: &mut Account,
    end: Instant,
    counters: &Counters,
) -> anyhow::Result<()> {
    let (url, addr, host, port) = target(node).await?;
    let on_frame = |seq: u64, account: &mut Account| {
        if account.frames() == 0 {
            counters.connected.fetch_add(1, Ordering::Relaxed);
        }
        let now = now_us();
        account.on_frame(seq, now);
        counters.on_frame(seq, now);
    };
    match plan.transport {
        Transport::Ws => {
            let ticket = fetch_ticket(&plan.space, plan.source(i), addr, &host, end).await?;
            account.on_ticket(now_us());
            let stream = connect_from(plan.source(i), addr).await?;
            let path = format!("/api/v1/spaces/{}/ws?ticket={ticket}", plan.space);
            ws_listen(stream, &format!("{host}:{port}"), &path, end, |seq| {
                on_frame(seq, account)
            })
            .await
        }
        Transport::Hls => {
            let conn = crate::hls::Conn::open(plan.source(i), addr).await?;
            crate::hls::hls_listen(conn, &format!("{host}:{port}"), &plan.space, end, |seq| {
                on_frame(seq, account)
            })
            .await
        }
        Transport::Ogg => {
            let stream = connect_from(plan.source(i), addr).await?;
            let path = if plan.space.is_empty() {
                url.path().to_owned()
            } else {
                format!("/spaces/{}/live.opus", plan.space)
            };
            ogg_listen(stream, &format!("{host}:{port}"), &path, end, |seq| {
                on_frame(seq, account)
            })
            .await
        }
    }
}

/// Asks for a join ticket on a connection of its own (as a client arriving cold would), with
/// a bare request: no HTTP client machinery per listener in the load generator. A server
/// under attack asks for a proof of work first (401 with a challenge): solved, and asked again.
pub(crate) async fn fetch_ticket(
    space: &str,
    source: Option<Ipv4Addr>,
    addr: SocketAddr,
    host: &str,
    end: Instant,
) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut work = String::new();
    for _ in 0..3 {
        let mut stream = connect_from(source, addr).await?;
        let request = format!(
            "POST /api/v1/spaces/{space}/tickets{work} HTTP/1.1\r\nHost: {host}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = bytes::BytesMut::with_capacity(2048);
        let head = read_head(&mut stream, &mut buf, end).await?;
        let asked_for_work = head.split_whitespace().nth(1) == Some("401");
        if !asked_for_work {
            expect_status(&head, "200").context("ticket")?;
        }
        while tokio::time::timeout_at(end, stream.read_buf(&mut buf)).await?? > 0 {}
        let body: serde_json::Value =
            serde_json::from_slice(&buf).context("the ticket response")?;
        if asked_for_work {
            let (Some(challenge), Some(bits)) = (body["challenge"].as_str(), body["bits"].as_u64())
            else {
                bail!("401: {}", body["detail"]);
            };
            let nonce = crate::pow::solve(challenge, bits as u8);
            work = format!("?challenge={challenge}&nonce={nonce}");
            continue;
        }
        return body["ticket"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no ticket in the response"));
    }
    bail!("the proof of work was refused three times")
}

/// Reads what has arrived into `buf` (growing it when nearly full); `false` once the run is
/// over, an error if the server closed the stream.
async fn read_more(
    stream: &mut TcpStream,
    buf: &mut bytes::BytesMut,
    end: Instant,
) -> anyhow::Result<bool> {
    use tokio::io::AsyncReadExt;
    if buf.capacity() - buf.len() < 2048 {
        buf.reserve(8 * 1024);
    }
    match tokio::time::timeout_at(end, stream.read_buf(buf)).await {
        Err(_) => Ok(false),
        Ok(Ok(0)) => bail!("closed by the server"),
        Ok(r) => r.map(|_| true).map_err(Into::into),
    }
}

/// An Ogg listener on a bare socket: one request, a close-delimited body as Icecast and
/// stentor send it, pages counted in place in one reused buffer (no HTTP client machinery
/// per listener, so the generator stays cheaper than what it measures).
async fn ogg_listen(
    mut stream: TcpStream,
    host: &str,
    path: &str,
    end: Instant,
    mut on_frame: impl FnMut(u64),
) -> anyhow::Result<()> {
    use bytes::Buf;
    use tokio::io::AsyncWriteExt;
    // HTTP/1.0: the body is then close-delimited whatever serves it, never chunked.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = bytes::BytesMut::with_capacity(8 * 1024);
    let head = read_head(&mut stream, &mut buf, end).await?;
    expect_status(&head, "200")?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        bail!(
            "a chunked stream (this reader takes close-delimited streams, as players are served)"
        );
    }
    loop {
        while let Some(page) = peek_page(&buf)? {
            buf.advance(page.len);
            // Frames completed on this page end at its granule; 20 ms each at 48 kHz.
            let completed = page.packets_completed as u64;
            let end_samples = page.granule.saturating_sub(u64::from(PRE_SKIP));
            if completed == 0 || end_samples < 960 || page.granule == u64::MAX {
                continue;
            }
            let last = end_samples / 960 - 1;
            for seq in last.saturating_sub(completed - 1)..=last {
                on_frame(seq);
            }
        }
        if !read_more(&mut stream, &mut buf, end).await? {
            return Ok(());
        }
    }
}

/// A WebSocket listener that reads frames in place: one reused buffer per connection and no
/// allocation per frame, so that the load generator stays cheaper than the server it measures.
/// The handshake and the frame headers are tungstenite's; only audio frames are looked at.
async fn ws_listen(
    mut stream: TcpStream,
    host: &str,
    path: &str,
    end: Instant,
    mut on_frame: impl FnMut(u64),
) -> anyhow::Result<()> {
    use bytes::Buf;
    use tokio::io::AsyncWriteExt;
    use tungstenite::protocol::frame::FrameHeader;
    use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
    let key = tungstenite::handshake::client::generate_key();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = bytes::BytesMut::with_capacity(8 * 1024);
    let head = read_head(&mut stream, &mut buf, end).await?;
    expect_status(&head, "101")?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if !head.contains(&accept) {
        bail!("bad Sec-WebSocket-Accept");
    }
    loop {
        loop {
            let mut cursor = std::io::Cursor::new(&buf[..]);
            let Some((header, len)) = FrameHeader::parse(&mut cursor)? else {
                break;
            };
            let start = cursor.position() as usize;
            let total = start + len as usize;
            if buf.len() < total {
                break;
            }
            match header.opcode {
                OpCode::Data(Data::Binary) if len >= 9 && buf[start] == 0x02 => {
                    let seq = &buf[start + 1..start + 9];
                    on_frame(u64::from_be_bytes(seq.try_into().expect("8 bytes")));
                }
                OpCode::Control(Control::Close) => {
                    let payload = &buf[start..total];
                    let code = payload
                        .get(..2)
                        .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                    let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default());
                    if code == 4307 {
                        return Err(Moved(reason.into_owned()).into());
                    }
                    bail!("closed by the server: {code} {reason}");
                }
                _ => {}
            }
            buf.advance(total);
        }
        if !read_more(&mut stream, &mut buf, end).await? {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_503_with_retry_after_says_when_to_come_back() {
        assert!(expect_status("HTTP/1.1 200 OK\r\nx: y", "200").is_ok());
        let e = expect_status(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: x\r\nRetry-After: 7",
            "101",
        )
        .unwrap_err();
        assert_eq!(e.downcast_ref::<RetryLater>(), Some(&RetryLater(7)));
        let limited = expect_status("HTTP/1.1 429 Too Many Requests\r\nretry-after: 1", "200");
        assert_eq!(
            limited.unwrap_err().downcast_ref::<RetryLater>(),
            Some(&RetryLater(1))
        );
        let plain = expect_status("HTTP/1.1 503 Service Unavailable", "200").unwrap_err();
        assert!(plain.downcast_ref::<RetryLater>().is_none());
        assert!(format!("{plain}").contains("503"));
        let other = expect_status("HTTP/1.1 401 Unauthorized\r\nRetry-After: 1", "200");
        assert!(other.unwrap_err().downcast_ref::<RetryLater>().is_none());
    }
}
