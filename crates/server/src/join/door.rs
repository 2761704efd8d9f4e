//! The media door: a fresh connection whose first request is a live Ogg stream
//! (`GET /spaces/{id}/live.opus`), a WebSocket upgrade (`GET /api/v1/spaces/{id}/ws`) or an
//! anonymous ticket request (`POST /api/v1/spaces/{id}/tickets`) is served off the HTTP
//! stack, so the response head and the first audio leave in one write and a listener's socket
//! goes straight to a fan-out shard. Every other connection goes to the HTTP server once its
//! request head is whole, with what the door read of it put back in front ([`Prefixed`]).

use crate::error::ApiError;
use crate::join::admit::admit_listener;
use crate::join::{admit, ws};
use crate::listen::sink::Sink;
use crate::listen::wiring::Transport;
use crate::prefixed::Prefixed;
use crate::state::AppState;
use serde::Deserialize;
use std::time::Duration;
use stentor_hub::Snapshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// HTTP connections kept open after a response, beyond which each one closes after its
/// response: a crowd fetching tickets must not spend the files its listeners need.
pub const KEEP_ALIVE_CONNECTIONS: i64 = 256;

/// Longest request head looked at; a larger one goes to the HTTP server.
const MAX_HEAD: usize = 4096;
/// What the request lines the door serves start with.
const PREFIXES: [&[u8]; 3] = [
    b"GET /spaces/",
    b"GET /api/v1/spaces/",
    b"POST /api/v1/spaces/",
];
/// The longest of [`PREFIXES`].
const LONGEST_PREFIX: usize = 20;

/// What the first request of a connection is.
#[derive(Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A live Ogg stream request, `head` bytes long.
    OggLive {
        /// Space id.
        space: String,
        /// The join ticket from the query, if any.
        ticket: Option<String>,
        /// Length of the request head.
        head: usize,
    },
    /// A WebSocket upgrade with valid handshake headers, `head` bytes long.
    WebSocket {
        /// Space id.
        space: String,
        /// The join ticket from the query, if any.
        ticket: Option<String>,
        /// Length of the request head.
        head: usize,
        /// The `Sec-WebSocket-Accept` value.
        accept: String,
    },
    /// A ticket request without credentials or body (an anonymous listener's).
    Ticket {
        /// Space id.
        space: String,
        /// Length of the request head.
        head: usize,
        /// Whether the client keeps the connection open after the response.
        keep_alive: bool,
        /// A proof of work sent with it (`?challenge=…&nonce=…`).
        work: Option<stentor_gate::pow::Work>,
    },
    /// Anything else: the HTTP server answers.
    Http,
}

#[derive(Deserialize)]
struct Query {
    ticket: Option<String>,
}

/// Parses a complete request head (no I/O): `None` while it is incomplete.
pub fn classify(bytes: &[u8]) -> Option<Sniffed> {
    let prefix = &bytes[..bytes.len().min(LONGEST_PREFIX)];
    if !PREFIXES
        .iter()
        .any(|p| p.starts_with(&prefix[..prefix.len().min(p.len())]))
    {
        return Some(Sniffed::Http);
    }
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return None,
        Err(_) => return Some(Sniffed::Http),
    };
    let Some(target) = request.path else {
        return Some(Sniffed::Http);
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let id = |prefix: &str, suffix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(str::to_owned)
    };
    if request.method == Some("POST") {
        return Some(anonymous_ticket(&request, path, query, head).unwrap_or(Sniffed::Http));
    }
    if request.method != Some("GET") {
        return Some(Sniffed::Http);
    }
    let Ok(query) = serde_urlencoded::from_str::<Query>(query) else {
        return Some(Sniffed::Http);
    };
    if let Some(space) = id("/spaces/", "/live.opus") {
        return Some(Sniffed::OggLive {
            space,
            ticket: query.ticket,
            head,
        });
    }
    if let Some(space) = id("/api/v1/spaces/", "/ws") {
        let headers = request.headers.iter().map(|h| (h.name, h.value));
        // A bad handshake is answered by the HTTP server, with the same error as ever.
        if let Ok(accept) = crate::join::ws::accept_key(headers) {
            return Some(Sniffed::WebSocket {
                space,
                ticket: query.ticket,
                head,
                accept,
            });
        }
    }
    Some(Sniffed::Http)
}

/// A ticket request the door may answer: no credentials (those are the HTTP server's to
/// check), no body.
fn anonymous_ticket(
    request: &httparse::Request,
    path: &str,
    query: &str,
    head: usize,
) -> Option<Sniffed> {
    // A malformed query is the HTTP server's to answer.
    let work = serde_urlencoded::from_str::<crate::join::admit::WorkQuery>(query)
        .ok()?
        .work();
    let space = path
        .strip_prefix("/api/v1/spaces/")?
        .strip_suffix("/tickets")
        .filter(|id| !id.is_empty() && !id.contains('/'))?;
    let mut keep_alive = request.version == Some(1);
    for h in request.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "cookie" | "authorization" | "transfer-encoding" | "expect" => return None,
            "content-length" if h.value != b"0" => return None,
            "connection" => {
                let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                if value.split(',').any(|t| t.trim() == "close") {
                    keep_alive = false;
                }
            }
            _ => {}
        }
    }
    Some(Sniffed::Ticket {
        space: space.to_owned(),
        head,
        keep_alive,
        work,
    })
}

/// Why a connection has no request head to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoHead {
    /// The client closed the connection (or it failed).
    Gone,
    /// The client did not send its head in the time allowed.
    TooSlow,
}

/// Reads the first request head of a connection, as far as needed to tell what it is: the
/// bytes read and what they are. A slow client holds a connection and a buffer until
/// `timeout`, never the CPU: the task sleeps until bytes arrive.
pub async fn sniff(tcp: &mut TcpStream, timeout: Duration) -> Result<(Sniffed, Vec<u8>), NoHead> {
    // On the heap: the connection's task would otherwise carry it for its whole life.
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf[len..])).await {
            Ok(Ok(n)) if n > 0 => len += n,
            Ok(_) => return Err(NoHead::Gone),
            Err(_) => return Err(NoHead::TooSlow),
        }
        let sniffed = match classify(&buf[..len]) {
            // The HTTP server gets whole heads: a slow client waits here, in a small buffer,
            // rather than in the HTTP server's larger ones.
            Some(Sniffed::Http) if len < buf.len() && !head_complete(&buf[..len]) => continue,
            Some(sniffed) => sniffed,
            None if len == buf.len() => Sniffed::Http,
            None => continue,
        };
        buf.truncate(len);
        return Ok((sniffed, buf));
    }
}

/// Whether `bytes` hold a whole request head (or something the HTTP server will refuse).
fn head_complete(bytes: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    !matches!(
        httparse::Request::new(&mut headers).parse(bytes),
        Ok(httparse::Status::Partial)
    )
}

/// The address a request whose head is at the start of `read` comes from: `peer`, or behind
/// a trusted proxy, the client its forwarding headers name.
pub fn client_ip(state: &AppState, peer: std::net::IpAddr, read: &[u8]) -> std::net::IpAddr {
    let proxies = state.config.trusted_proxies();
    if proxies.is_empty() {
        return peer.to_canonical();
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if request.parse(read).is_err() {
        return peer.to_canonical();
    }
    let headers = request.headers.iter().map(|h| (h.name, h.value));
    stentor_gate::proxy::client_ip(peer, proxies, headers)
}

/// Waits for a listener join's turn under its address's and network's join rates: a crowd
/// behind one NAT is paced, not refused. A join that would wait past the longest pace, and
/// one still waiting when the server stops, is refused with when to come back.
pub async fn pace_join(state: &AppState, ip: std::net::IpAddr) -> Result<(), ApiError> {
    let mut waited = Duration::ZERO;
    let mut down = state.shutdown.clone();
    loop {
        let refusal = match state.gate.join(ip) {
            Ok(()) => {
                if !waited.is_zero() {
                    state.metrics.joins_paced.inc();
                }
                return Ok(());
            }
            Err(refusal) => refusal,
        };
        let Some(wait) = state.gate.pace(refusal, waited) else {
            return Err(ApiError::Limited(refusal));
        };
        // Spread the waiting crowd, so that it does not ask again all in the same instant.
        let wait = wait.mul_f64(1.0 + rand::random::<f64>() / 2.0);
        tokio::select! {
            () = tokio::time::sleep(wait) => waited += wait,
            () = crate::shutdown::going_away(&mut down) => {
                return Err(ApiError::Unavailable { retry_after: 5 });
            }
        }
    }
}

/// Answers `error` on a connection the door read a request head from, and closes it.
pub async fn refuse(mut tcp: TcpStream, error: &ApiError) {
    let _ = tcp.write_all(&error.to_http1()).await;
    let _ = tcp.shutdown().await;
}

/// Serves a WebSocket upgrade found by [`sniff`]: the ticket is checked before anything is
/// answered; then the 101, the hello and the first audio go out in one write.
pub async fn websocket(
    state: &AppState,
    tcp: TcpStream,
    space: String,
    ticket: Option<String>,
    after_head: &[u8],
    accept: String,
) {
    let result = admit::admit_websocket(state, &space, ticket.as_deref()).await;
    crate::join::admit::count(state, "ws", &result);
    match result {
        Ok((user, space, place)) => {
            let head = ws::switching_protocols(&accept);
            ws::open(state.clone(), space, user, tcp, after_head, place, &head).await;
        }
        Err(e) => refuse(tcp, &e).await,
    }
}

/// An anonymous ticket request as [`sniff`] found it: what was read (the head is its first
/// `head` bytes), and what the head said.
#[derive(Debug)]
pub struct Ticket {
    /// Space id.
    pub space: String,
    /// The bytes read from the connection.
    pub read: Vec<u8>,
    /// Length of the request head.
    pub head: usize,
    /// Whether the client keeps the connection open after the response.
    pub keep_alive: bool,
    /// A proof of work sent with it.
    pub work: Option<stentor_gate::pow::Work>,
}

/// Answers an anonymous ticket request found by [`sniff`] off the HTTP stack: a crowd about
/// to listen asks for one ticket each, on a fresh connection, from `ip`. Returns the
/// connection when the HTTP server should carry on with it: with the request put back when
/// the door does not grant the ticket (the server answers then, refusals and Spaces not yet
/// loaded included), or with what followed the head after the response when the client keeps
/// it open. Past its rates, shed, or asked for work, the caller is answered here.
pub async fn ticket(
    state: &AppState,
    mut tcp: TcpStream,
    ip: std::net::IpAddr,
    request: Ticket,
) -> Option<Prefixed> {
    let Ticket {
        space,
        mut read,
        head,
        keep_alive,
        work,
    } = request;
    let Some(live) = state.spaces.if_loaded(&space) else {
        return Some(Prefixed::new(read, tcp));
    };
    if let Err(e) = pace_join(state, ip).await {
        state.metrics.reject(e.reason());
        refuse(tcp, &e).await;
        return None;
    }
    let view = match admit::grant(state, &live, &space, None, work.as_ref(), false) {
        Ok(view) => view,
        // Shed, or asked for work, here: at the cheapest point there is.
        Err(e @ (ApiError::Overloaded { .. } | ApiError::WorkRequired(_))) => {
            state.metrics.reject(e.reason());
            refuse(tcp, &e).await;
            return None;
        }
        // The HTTP server answers the rest; it counts the request again, as its own.
        Err(_) => return Some(Prefixed::new(read, tcp)),
    };
    let keep_alive = keep_alive && state.metrics.http_connections.get() <= KEEP_ALIVE_CONNECTIONS;
    let body = serde_json::to_vec(&view).expect("a ticket serializes");
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n",
        body.len(),
        if keep_alive {
            ""
        } else {
            "connection: close\r\n"
        }
    )
    .into_bytes();
    response.extend_from_slice(&body);
    tcp.write_all(&response).await.ok()?;
    if keep_alive {
        read.drain(..head);
        return Some(Prefixed::new(read, tcp));
    }
    let _ = tcp.shutdown().await;
    None
}

/// The response head of a live stream: its length is the connection's.
const OGG_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: audio/ogg\r\ncache-control: no-cache, no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n";

/// Serves a live Ogg stream request found by [`sniff`].
pub async fn ogg_live(state: &AppState, mut tcp: TcpStream, space: String, ticket: Option<String>) {
    let result = admit_listener(state, &space, ticket.as_deref()).await;
    crate::join::admit::count(state, "ogg", &result);
    let (space, user, place) = match result {
        Ok(admitted) => admitted,
        Err(e) => return refuse(tcp, &e).await,
    };
    let mut first = OGG_HEAD.to_vec();
    for page in space.hub.ogg_headers() {
        first.extend_from_slice(page);
    }
    let mut snap = Snapshot::default();
    space.hub.ogg.snapshot(&mut snap);
    let burst = space.hub.ogg.burst() as u64;
    for n in snap.head().saturating_sub(burst).max(snap.start())..snap.head() {
        if let Some(page) = snap.get(n) {
            first.extend_from_slice(page);
        }
    }
    if tcp.write_all(&first).await.is_err() {
        return;
    }
    match Sink::new(tcp, snap.head(), user, place, &[]) {
        Ok(sink) => state.audiences.add(&space, Transport::Ogg, sink),
        Err(e) => tracing::warn!(error = %e, "could not hand a listener to a writer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_stream_requests_are_recognised_with_their_ticket() {
        let req = b"GET /spaces/abc/live.opus?ticket=t.1 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(
            classify(req),
            Some(Sniffed::OggLive {
                space: "abc".into(),
                ticket: Some("t.1".into()),
                head: req.len()
            })
        );
        let anon = b"GET /spaces/abc/live.opus HTTP/1.1\r\n\r\n";
        assert!(matches!(
            classify(anon),
            Some(Sniffed::OggLive { ticket: None, .. })
        ));
    }

    #[test]
    fn websocket_upgrades_are_recognised_with_their_accept_key() {
        let req = b"GET /api/v1/spaces/abc/ws?ticket=t.2 HTTP/1.1\r\nHost: x\r\n\
            Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
            Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        assert_eq!(
            classify(req),
            Some(Sniffed::WebSocket {
                space: "abc".into(),
                ticket: Some("t.2".into()),
                head: req.len(),
                // The example of RFC 6455 1.3.
                accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
            })
        );
    }

    #[test]
    fn everything_else_goes_to_the_http_server() {
        for req in [
            &b"GET /api/v1/spaces HTTP/1.1\r\n\r\n"[..],
            b"POST /spaces/abc/live.opus HTTP/1.1\r\n\r\n",
            b"GET /spaces/a/b/live.opus HTTP/1.1\r\n\r\n",
            b"GET /spaces//live.opus HTTP/1.1\r\n\r\n",
            b"GET /spaces/abc/live.opus HTTP/1.1\r\nbad header\r\n\r\n",
            b"GET /api/v1/spaces/abc/ws?ticket=t HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /api/v1/spaces/abc HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01",
        ] {
            assert_eq!(classify(req), Some(Sniffed::Http), "{req:?}");
        }
    }

    #[test]
    fn anonymous_ticket_requests_are_recognised() {
        let req = b"POST /api/v1/spaces/abc/tickets HTTP/1.1\r\nHost: x\r\n\
            Content-Length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(
            classify(req),
            Some(Sniffed::Ticket {
                space: "abc".into(),
                head: req.len(),
                keep_alive: false,
                work: None,
            })
        );
        let solved = b"POST /api/v1/spaces/abc/tickets?challenge=c.d&nonce=42 HTTP/1.1\r\n\r\n";
        assert!(matches!(
            classify(solved),
            Some(Sniffed::Ticket { work: Some(w), .. }) if w.challenge == "c.d" && w.nonce == 42
        ));
        let garbled = b"POST /api/v1/spaces/abc/tickets?nonce=x HTTP/1.1\r\n\r\n";
        assert_eq!(classify(garbled), Some(Sniffed::Http));
        let kept = b"POST /api/v1/spaces/abc/tickets HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(
            classify(kept),
            Some(Sniffed::Ticket {
                keep_alive: true,
                ..
            })
        ));
        let old = b"POST /api/v1/spaces/abc/tickets HTTP/1.0\r\n\r\n";
        assert!(matches!(
            classify(old),
            Some(Sniffed::Ticket {
                keep_alive: false,
                ..
            })
        ));
        // Credentials and bodies are the HTTP server's to deal with.
        for req in [
            &b"POST /api/v1/spaces/abc/tickets HTTP/1.1\r\nCookie: stentor_session=x\r\n\r\n"[..],
            b"POST /api/v1/spaces/abc/tickets HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n",
            b"POST /api/v1/spaces/abc/tickets HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            b"POST /api/v1/spaces/abc/tickets HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /api/v1/spaces/abc/commands HTTP/1.1\r\n\r\n",
            b"POST /api/v1/spaces/a/b/tickets HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(classify(req), Some(Sniffed::Http), "{req:?}");
        }
    }

    #[test]
    fn a_head_is_complete_at_its_blank_line_or_when_it_cannot_be_one() {
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n{\"body\""));
        assert!(
            head_complete(b"\x16\x03\x01 not http\r\n"),
            "the HTTP server refuses it"
        );
    }

    #[test]
    fn an_incomplete_head_waits() {
        assert_eq!(classify(b"GET /spa"), None);
        assert_eq!(
            classify(b"GET /spaces/abc/live.opus HTTP/1.1\r\nHost"),
            None
        );
    }
}
