//! The bare HTTP of the load generator's clients: a connection from a chosen source address,
//! a response head read into a reused buffer, its status checked (a "come back later" told
//! apart). No HTTP client machinery per listener.

use anyhow::bail;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// A server's "come back later": `503` or `429` with `Retry-After` (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("told to retry after {0} s")]
pub struct RetryLater(pub u64);

/// Checks a response head's status line against `expected` (e.g. `" 200"`); a `503` or `429`
/// with a `Retry-After` becomes [`RetryLater`], anything else an error naming the status.
pub(crate) fn expect_status(head: &str, expected: &str) -> anyhow::Result<()> {
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some(expected) {
        return Ok(());
    }
    if matches!(status.split_whitespace().nth(1), Some("503" | "429")) {
        let retry = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("retry-after")
                .then(|| value.trim().parse::<u64>().ok())?
        });
        if let Some(secs) = retry {
            return Err(RetryLater(secs).into());
        }
    }
    bail!("{status}")
}

/// Reads an HTTP response head into `buf` and returns it (without the blank line), leaving
/// what follows it in `buf`.
pub(crate) async fn read_head(
    stream: &mut TcpStream,
    buf: &mut bytes::BytesMut,
    end: Instant,
) -> anyhow::Result<String> {
    use bytes::Buf;
    use tokio::io::AsyncReadExt;
    loop {
        if tokio::time::timeout_at(end, stream.read_buf(buf)).await?? == 0 {
            bail!("closed before the response head");
        }
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..at]).into_owned();
            buf.advance(at + 4);
            return Ok(head);
        }
        if buf.len() > 16 * 1024 {
            bail!("response head too large");
        }
    }
}

/// Connects from a chosen loopback source address, so that many listeners do not share one
/// address's ephemeral ports.
pub(crate) async fn connect_from(
    source: Option<Ipv4Addr>,
    addr: SocketAddr,
) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
