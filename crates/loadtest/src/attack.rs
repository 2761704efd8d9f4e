//! Attacks and probes for benchmarks, on loopback only and bounded in time: forged tickets,
//! a ticket flood from one network, slow-loris connections, malformed WebSocket frames; and
//! the probe that measures, meanwhile, how fast a host's control answers and a new listener
//! hears audio.

use crate::net::{connect_from, read_head};
use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What to do to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// WebSocket upgrades with tickets that were never issued, as fast as possible.
    ForgedTickets,
    /// Anonymous ticket requests on kept-alive connections, as fast as possible.
    TicketFlood,
    /// Connections that send a request head a few bytes at a time and never finish it.
    Slowloris,
    /// WebSocket listeners (with real tickets) that send oversized and malformed frames.
    BadFrames,
    /// Not an attack: a host's command and a new listener's join, timed ten times a second.
    Probe,
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "forged-tickets" => Kind::ForgedTickets,
            "ticket-flood" => Kind::TicketFlood,
            "slowloris" => Kind::Slowloris,
            "bad-frames" => Kind::BadFrames,
            "probe" => Kind::Probe,
            other => {
                return Err(format!(
                    "{other}: one of forged-tickets, ticket-flood, slowloris, bad-frames, probe"
                ));
            }
        })
    }
}

/// One attack.
#[derive(Debug, Clone)]
pub struct Attack {
    /// The server (loopback only).
    pub url: String,
    /// The Space attacked (and joined by the probe).
    pub space: String,
    /// What to do.
    pub kind: Kind,
    /// For how long.
    pub seconds: f64,
    /// Connections (or loops) at once.
    pub connections: usize,
    /// Source addresses, loopback.
    pub sources: Vec<Ipv4Addr>,
}

/// What an attack or probe saw.
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    /// Requests, connections or frames sent.
    pub attempts: u64,
    /// How they were answered: an HTTP status, `closed` (by the server, no answer),
    /// `timeout` (nothing within 2 s), `error` (could not connect or send).
    pub answers: BTreeMap<String, u64>,
    /// Most connections held open at once (slow-loris).
    pub held_peak: usize,
    /// Probe: a host's command, milliseconds from request to answer, one per probe.
    pub control_ms: Vec<f64>,
    /// Probe: a new listener, milliseconds from asking for a ticket to the first audio.
    pub join_ms: Vec<f64>,
    /// Probe: `GET /healthz` on the host's kept-alive connection, right after its command:
    /// what any request costs at that moment, beside what the command costs.
    pub healthz_ms: Vec<f64>,
    /// Probe: the server's own account of the commands in the phase (its
    /// `stentor_command_seconds` histogram, queued to outcome), as the upper bounds in
    /// milliseconds of the buckets that hold the median and the 99th percentile.
    pub command_inside_ms: Option<[f64; 2]>,
}

#[derive(Default)]
struct Shared {
    attempts: AtomicU64,
    held: AtomicUsize,
    held_peak: AtomicUsize,
    answers: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn answer(&self, what: impl Into<String>) {
        *self
            .answers
            .lock()
            .expect("not poisoned")
            .entry(what.into())
            .or_default() += 1;
    }

    fn hold(&self) {
        let now = self.held.fetch_add(1, Ordering::Relaxed) + 1;
        self.held_peak.fetch_max(now, Ordering::Relaxed);
    }

    fn release(&self) {
        self.held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One turn of one attack loop.
struct Turn<'a> {
    attack: &'a Attack,
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    end: Instant,
    /// Which loop.
    i: usize,
    shared: &'a Shared,
}

/// The status code of a response head, or what happened instead.
fn status_of(head: anyhow::Result<String>) -> String {
    match head {
        Ok(head) => head
            .split_whitespace()
            .nth(1)
            .unwrap_or("garbled")
            .to_owned(),
        Err(e) if format!("{e:#}").contains("closed") => "closed".into(),
        Err(e) if e.downcast_ref::<crate::net::RetryLater>().is_some() => {
            "told to retry later".into()
        }
        Err(e) if e.downcast_ref::<tokio::time::error::Elapsed>().is_some() => "timeout".into(),
        Err(_) => "error".into(),
    }
}

/// Runs `attack` until its time is up.
pub async fn run(attack: Attack) -> anyhow::Result<Tally> {
    let url: reqwest::Url = attack.url.parse().context("the url")?;
    let host = url.host_str().ok_or_else(|| anyhow!("no host"))?.to_owned();
    let addr: SocketAddr =
        tokio::net::lookup_host((host.as_str(), url.port_or_known_default().unwrap_or(80)))
            .await?
            .next()
            .ok_or_else(|| anyhow!("cannot resolve {host}"))?;
    if !addr.ip().is_loopback() {
        bail!("attacks target loopback addresses only, not {addr}");
    }
    if attack.kind == Kind::Probe {
        return probe(&attack, addr).await;
    }
    // Slow-loris holds a socket per connection.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let end = Instant::now() + Duration::from_secs_f64(attack.seconds);
    let shared = Arc::new(Shared::default());
    let attack = Arc::new(attack);
    let mut loops = Vec::new();
    let loops_n = attack.connections.max(1);
    for i in 0..loops_n {
        let (attack, shared) = (attack.clone(), shared.clone());
        loops.push(tokio::spawn(async move {
            // Each turn from another of the sources, as a botnet's machines take turns.
            for round in 0.. {
                if Instant::now() >= end {
                    break;
                }
                let n = attack.sources.len().max(1);
                let turn = Turn {
                    attack: &attack,
                    addr,
                    source: (!attack.sources.is_empty())
                        .then(|| attack.sources[(i + round * loops_n) % n]),
                    end,
                    i,
                    shared: &shared,
                };
                let result = match attack.kind {
                    Kind::ForgedTickets => forged_ticket(&turn).await,
                    Kind::TicketFlood => ticket_flood(&turn).await,
                    Kind::Slowloris => slowloris(&turn).await,
                    Kind::BadFrames => bad_frames(&turn).await,
                    Kind::Probe => unreachable!("handled above"),
                };
                if result.is_err() {
                    shared.answer("error");
                    // Out of ports or refused at once: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }));
    }
    for l in loops {
        let _ = l.await;
    }
    Ok(Tally {
        attempts: shared.attempts.load(Ordering::Relaxed),
        answers: shared.answers.lock().expect("not poisoned").clone(),
        held_peak: shared.held_peak.load(Ordering::Relaxed),
        ..Tally::default()
    })
}

/// The status of the response to a request, within 2 s, its body read (by its
/// `content-length`) so that the connection can carry the next request.
async fn answer_of(stream: &mut TcpStream, buf: &mut bytes::BytesMut) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    let response = async {
        let head = read_head(stream, buf, deadline).await?;
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while buf.len() < length {
            if stream.read_buf(buf).await? == 0 {
                bail!("closed in the body");
            }
        }
        bytes::Buf::advance(buf, length);
        Ok(head)
    };
    status_of(
        tokio::time::timeout_at(deadline, response)
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r),
    )
}

fn upgrade_request(host: SocketAddr, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

async fn forged_ticket(t: &Turn<'_>) -> anyhow::Result<()> {
    let Turn {
        attack,
        addr,
        source,
        shared,
        ..
    } = *t;
    let n = shared.attempts.fetch_add(1, Ordering::Relaxed);
    let mut stream = connect_from(source, addr).await?;
    // Shaped like a ticket (payload "." signature), signed by nobody.
    let path = format!(
        "/api/v1/spaces/{}/ws?ticket=eyJzcGFjZSI6ImZvcmdlZCJ9.{n:032x}",
        attack.space
    );
    stream
        .write_all(upgrade_request(addr, &path).as_bytes())
        .await?;
    let mut buf = bytes::BytesMut::with_capacity(1024);
    shared.answer(answer_of(&mut stream, &mut buf).await);
    Ok(())
}

async fn ticket_flood(t: &Turn<'_>) -> anyhow::Result<()> {
    let Turn {
        attack,
        addr,
        source,
        end,
        shared,
        ..
    } = *t;
    let mut stream = connect_from(source, addr).await?;
    let request = format!(
        "POST /api/v1/spaces/{}/tickets HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n",
        attack.space
    );
    let mut buf = bytes::BytesMut::with_capacity(4096);
    // As many requests as the connection takes, one after another.
    while Instant::now() < end {
        shared.attempts.fetch_add(1, Ordering::Relaxed);
        if stream.write_all(request.as_bytes()).await.is_err() {
            shared.answer("closed");
            return Ok(());
        }
        let status = answer_of(&mut stream, &mut buf).await;
        let closes = !status.starts_with('2');
        shared.answer(status);
        if closes {
            return Ok(());
        }
    }
    Ok(())
}

async fn slowloris(t: &Turn<'_>) -> anyhow::Result<()> {
    let Turn {
        attack,
        addr,
        source,
        end,
        i,
        shared,
    } = *t;
    shared.attempts.fetch_add(1, Ordering::Relaxed);
    let mut stream = connect_from(source, addr).await?;
    shared.hold();
    // Half hold the door (a media request never finished), half the HTTP server.
    let start = if i.is_multiple_of(2) {
        format!("GET /spaces/{}/live.opus HTTP/1.1\r\nHost: ", attack.space)
    } else {
        "GET / HTTP/1.1\r\nHost: ".to_owned()
    };
    let mut result = stream.write_all(start.as_bytes()).await;
    let mut scratch = [0u8; 512];
    while result.is_ok() && Instant::now() < end {
        // A byte every 2 s, and notice when the server closes.
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut scratch)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {
                shared.answer("answered");
                break;
            }
            Err(_) => result = stream.write_all(b"x").await,
        }
    }
    shared.release();
    if Instant::now() < end {
        shared.answer("closed");
    }
    Ok(())
}

/// A masked client frame (RFC 6455 5.2) with `opcode` and `payload`, length as declared.
fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// The bad frames sent in turn: what each is, and its bytes.
fn bad_frame(n: usize) -> (&'static str, Vec<u8>) {
    let name = [
        "length 2^62",
        "unmasked",
        "1 MiB message",
        "text not UTF-8",
        "reserved opcode",
        "control frame of 200 bytes",
    ][n % 6];
    (name, bad_frame_bytes(n % 6))
}

fn bad_frame_bytes(kind: usize) -> Vec<u8> {
    match kind {
        // Declares 2^62 bytes.
        0 => {
            let mut f = vec![0x82, 0x80 | 127];
            f.extend_from_slice(&(1u64 << 62).to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 0]);
            f
        }
        // Unmasked (clients must mask).
        1 => frame(0x1, br#"{"cmd":"react","emoji":"\u{1f44f}"}"#, false),
        // One MiB of binary, far past the listener's message size.
        2 => frame(0x2, &vec![0u8; 1 << 20], true),
        // Text that is not UTF-8.
        3 => frame(0x1, &[0xff, 0xfe, 0xfd], true),
        // A reserved opcode.
        4 => frame(0x3, b"??", true),
        // A control frame longer than 125 bytes.
        _ => {
            let mut f = frame(0x9, &[0u8; 200], true);
            f[0] = 0x89;
            f
        }
    }
}

async fn bad_frames(t: &Turn<'_>) -> anyhow::Result<()> {
    let Turn {
        attack,
        addr,
        source,
        end,
        i,
        shared,
    } = *t;
    let ticket = match anonymous_ticket(attack, addr, source, end).await {
        Ok(t) => t,
        Err(e) => {
            shared.answer(format!("ticket {}", status_of(Err(e))));
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(());
        }
    };
    let mut stream = connect_from(source, addr).await?;
    let path = format!("/api/v1/spaces/{}/ws?ticket={ticket}", attack.space);
    stream
        .write_all(upgrade_request(addr, &path).as_bytes())
        .await?;
    let mut buf = bytes::BytesMut::with_capacity(8192);
    let status = answer_of(&mut stream, &mut buf).await;
    if status != "101" {
        shared.answer(format!("upgrade {status}"));
        return Ok(());
    }
    let n = shared.attempts.fetch_add(1, Ordering::Relaxed) as usize + i;
    let (name, bytes) = bad_frame(n);
    let _ = stream.write_all(&bytes).await;
    // The server must close the connection: read (and drop the audio) until it does.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut scratch = vec![0u8; 16 * 1024];
    let outcome = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut scratch)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break "closed",
            Ok(Ok(_)) => {}
            Err(_) => break "not closed within 2 s",
        }
    };
    shared.answer(format!("{name}: {outcome}"));
    Ok(())
}

/// An anonymous listener's ticket, on a connection of its own.
async fn anonymous_ticket(
    attack: &Attack,
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    end: Instant,
) -> anyhow::Result<String> {
    crate::worker::fetch_ticket(&attack.space, source, addr, &addr.to_string(), end).await
}

/// Ten times a second (200 samples in 20 s, so that a p99 is not just the largest): a
/// host's command on a Space of its own (signed up for the purpose), timed
/// to its answer; and a new listener of `attack.space` from a fresh address, timed from its
/// ticket request to its first audio frame.
async fn probe(attack: &Attack, addr: SocketAddr) -> anyhow::Result<Tally> {
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let handle = format!("probe{}", std::process::id());
    let account: serde_json::Value = http
        .post(format!("{base}/api/v1/accounts"))
        .json(&serde_json::json!({"handle": handle, "password": "probe-password-1"}))
        .send()
        .await?
        .error_for_status()
        .context("signing up the probe's host")?
        .json()
        .await?;
    let token = account["token"]
        .as_str()
        .ok_or_else(|| anyhow!("no session token"))?
        .to_owned();
    let space: serde_json::Value = http
        .post(format!("{base}/api/v1/spaces"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"title": "Probe"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let own = space["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no space id"))?
        .to_owned();
    let command = |cmd: &'static str| {
        http.post(format!("{base}/api/v1/spaces/{own}/commands"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "cmd": cmd }))
            .send()
    };
    command("start").await?.error_for_status()?;
    let inside_before = command_buckets(&http, &base).await;
    let end = Instant::now() + Duration::from_secs_f64(attack.seconds);
    let mut tally = Tally::default();
    let mut every = tokio::time::interval(Duration::from_millis(100));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0usize;
    while Instant::now() < end {
        every.tick().await;
        let t = Instant::now();
        let answered = command("mute_all").await;
        tally.attempts += 1;
        match answered {
            Ok(r) if r.status().is_success() => {
                tally.control_ms.push(t.elapsed().as_secs_f64() * 1000.0)
            }
            Ok(r) => {
                *tally
                    .answers
                    .entry(format!("control {}", r.status().as_u16()))
                    .or_default() += 1
            }
            Err(_) => *tally.answers.entry("control error".into()).or_default() += 1,
        }
        let t = Instant::now();
        match http.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().is_success() => {
                tally.healthz_ms.push(t.elapsed().as_secs_f64() * 1000.0)
            }
            _ => *tally.answers.entry("healthz failed".into()).or_default() += 1,
        }
        let source = (!attack.sources.is_empty()).then(|| attack.sources[n % attack.sources.len()]);
        n += 1;
        match first_audio(attack, addr, source).await {
            Ok(ms) => tally.join_ms.push(ms),
            Err(e) => {
                *tally
                    .answers
                    .entry(format!("join {}", status_of(Err(e))))
                    .or_default() += 1
            }
        }
    }
    if let (Some(before), Some(after)) = (inside_before, command_buckets(&http, &base).await) {
        tally.command_inside_ms = quantile_bounds(&before, &after);
    }
    Ok(tally)
}

/// The cumulative buckets of the server's `stentor_command_seconds` histogram: (upper
/// bound in seconds, count), or `None` if `/metrics` cannot be read.
async fn command_buckets(http: &reqwest::Client, base: &str) -> Option<Vec<(f64, u64)>> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let buckets = text
        .lines()
        .filter_map(|line| line.strip_prefix("stentor_command_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    Some(buckets)
}

/// The upper bounds, in milliseconds, of the buckets holding the median and the 99th
/// percentile of what was counted between two readings of a cumulative histogram.
fn quantile_bounds(before: &[(f64, u64)], after: &[(f64, u64)]) -> Option<[f64; 2]> {
    let counts: Vec<(f64, u64)> = after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0, |b| b.1);
            (le, n.saturating_sub(was))
        })
        .collect();
    let total = counts.last()?.1;
    let bound = |q: f64| {
        let rank = (q * total as f64).ceil() as u64;
        counts.iter().find(|c| c.1 >= rank).map(|c| c.0 * 1000.0)
    };
    (total > 0).then(|| Some([bound(0.5)?, bound(0.99)?]))?
}

/// A new WebSocket listener: milliseconds from its ticket request to its first audio frame.
async fn first_audio(
    attack: &Attack,
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
) -> anyhow::Result<f64> {
    let t = Instant::now();
    let end = t + Duration::from_secs(5);
    let ticket = anonymous_ticket(attack, addr, source, end).await?;
    let mut stream = connect_from(source, addr).await?;
    let path = format!("/api/v1/spaces/{}/ws?ticket={ticket}", attack.space);
    stream
        .write_all(upgrade_request(addr, &path).as_bytes())
        .await?;
    let mut buf = bytes::BytesMut::with_capacity(8192);
    let head = read_head(&mut stream, &mut buf, end).await?;
    crate::net::expect_status(&head, "101")?;
    // Frames follow: the first binary one is audio (hello and events are text).
    loop {
        while buf.len() >= 2 {
            let opcode = buf[0] & 0x0f;
            let (len, at) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if opcode == 0x2 {
                return Ok(t.elapsed().as_secs_f64() * 1000.0);
            }
            if buf.len() < at + len {
                break;
            }
            bytes::Buf::advance(&mut buf, at + len);
        }
        if tokio::time::timeout_at(end, stream.read_buf(&mut buf)).await?? == 0 {
            bail!("closed before audio");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quantile_bounds;

    #[test]
    fn quantiles_come_from_what_was_counted_between_two_readings() {
        let before = [(0.001, 10), (0.002, 10), (0.004, 10), (f64::INFINITY, 10)];
        // 100 more: 60 within 1 ms, 39 within 2 ms, 1 within 4 ms.
        let after = [
            (0.001, 70),
            (0.002, 109),
            (0.004, 110),
            (f64::INFINITY, 110),
        ];
        assert_eq!(quantile_bounds(&before, &after), Some([1.0, 2.0]));
        let slow = [
            (0.001, 70),
            (0.002, 100),
            (0.004, 110),
            (f64::INFINITY, 110),
        ];
        assert_eq!(quantile_bounds(&before, &slow), Some([1.0, 4.0]));
        assert_eq!(quantile_bounds(&before, &before), None);
    }
}
