//! A cheap LL-HLS listener: what a low-latency player asks for, on one keep-alive
//! connection from its own address — a blocking playlist reload for the next part (with a
//! delta skip), then that part — and each part's frames counted from its boxes (their slots
//! on the wall-clock timeline, so lateness is measured from the mixer's clock).

use crate::net::{connect_from, expect_status, read_head};
use anyhow::{Context, anyhow, bail};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Follows Space `space`'s live playlist until `end`, calling `on_frame` with the slot of
/// every frame of every part it gets.
pub(crate) async fn hls_listen(
    mut conn: Conn,
    host: &str,
    space: &str,
    end: Instant,
    mut on_frame: impl FnMut(u64),
) -> anyhow::Result<()> {
    let first = format!("/spaces/{space}/live.m3u8");
    let Some(playlist) = conn.get(host, &first, end).await? else {
        return Ok(());
    };
    // Start at the newest part listed, as a player does; then every part listed after the
    // last one fetched, in order, and a blocking reload for the one the hint names.
    let mut last = None;
    let mut wanted = vec![newest_part(&playlist)?];
    let mut next = hint(&playlist)?;
    loop {
        for (msn, part) in wanted.drain(..) {
            let path = format!("/spaces/{space}/hls/{msn}.{part}.m4s");
            let Some(body) = conn.get(host, &path, end).await? else {
                return Ok(());
            };
            let (slot, count) = frames(&body)?;
            for k in 0..count {
                on_frame(slot + k);
            }
            last = Some((msn, part));
        }
        let reload = format!(
            "/spaces/{space}/live.m3u8?_HLS_msn={}&_HLS_part={}&_HLS_skip=YES",
            next.0, next.1
        );
        let Some(playlist) = conn.get(host, &reload, end).await? else {
            return Ok(());
        };
        wanted = listed_parts(&playlist)?
            .into_iter()
            .filter(|p| last.is_none_or(|l| *p > l))
            .collect();
        next = hint(&playlist)?;
    }
}

/// A keep-alive connection from one source address, opened again when the server closes it
/// after a response (as a player does).
pub(crate) struct Conn {
    stream: Option<TcpStream>,
    buf: BytesMut,
    source: Option<std::net::Ipv4Addr>,
    addr: std::net::SocketAddr,
}

impl Conn {
    /// A connection from `source` to `addr`, opened now.
    pub(crate) async fn open(
        source: Option<std::net::Ipv4Addr>,
        addr: std::net::SocketAddr,
    ) -> anyhow::Result<Self> {
        let stream = connect_from(source, addr).await?;
        Ok(Self {
            stream: Some(stream),
            buf: BytesMut::with_capacity(16 * 1024),
            source,
            addr,
        })
    }

    /// One GET: the body of a 200 (`Content-Length` framed), or `None` if the run ended
    /// first.
    async fn get(&mut self, host: &str, path: &str, end: Instant) -> anyhow::Result<Option<Bytes>> {
        let stream = match self.stream.as_mut() {
            Some(stream) => stream,
            None => {
                self.buf.clear();
                self.stream
                    .insert(connect_from(self.source, self.addr).await?)
            }
        };
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let buf = &mut self.buf;
        let head = match read_head(stream, buf, end).await {
            Ok(head) => head,
            Err(_) if Instant::now() >= end => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut length = None;
        let mut close = false;
        for line in head.lines().skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.trim().eq_ignore_ascii_case("close");
            }
        }
        let length = length
            .ok_or_else(|| anyhow!("no content-length in {}", head.lines().next().unwrap_or("")))?;
        while buf.len() < length {
            match tokio::time::timeout_at(end, stream.read_buf(buf)).await {
                Err(_) => return Ok(None),
                Ok(Ok(0)) => bail!("closed in the middle of a body"),
                Ok(r) => {
                    r?;
                }
            }
        }
        let body = buf.split_to(length).freeze();
        expect_status(&head, "200").with_context(|| format!("GET {path}"))?;
        if buf.capacity() < 4 * 1024 {
            buf.reserve(16 * 1024);
        }
        if close {
            self.stream = None;
        }
        Ok(Some(body))
    }
}

/// The (msn, part) a playlist's `EXT-X-PRELOAD-HINT` names.
fn hint(playlist: &[u8]) -> anyhow::Result<(u64, u32)> {
    let text = std::str::from_utf8(playlist)?;
    let uri = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .ok_or_else(|| anyhow!("no preload hint: the stream ended"))?;
    part_name(uri.trim_end_matches('"'))
}

/// Every part a playlist lists, in order: (msn, part).
fn listed_parts(playlist: &[u8]) -> anyhow::Result<Vec<(u64, u32)>> {
    std::str::from_utf8(playlist)?
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"").nth(1)?.split('"').next())
        .map(part_name)
        .collect()
}

/// The newest part a playlist lists (where a player starts).
fn newest_part(playlist: &[u8]) -> anyhow::Result<(u64, u32)> {
    let text = std::str::from_utf8(playlist)?;
    let uri = text
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .find_map(|l| l.split("URI=\"").nth(1)?.split('"').next())
        .ok_or_else(|| anyhow!("no part listed"))?;
    part_name(uri)
}

fn part_name(uri: &str) -> anyhow::Result<(u64, u32)> {
    let stem = uri
        .strip_prefix("hls/")
        .and_then(|u| u.strip_suffix(".m4s"))
        .ok_or_else(|| anyhow!("a part named {uri}"))?;
    let (msn, part) = stem
        .split_once('.')
        .ok_or_else(|| anyhow!("a part named {uri}"))?;
    Ok((msn.parse()?, part.parse()?))
}

/// The slot of a part's first frame (its `tfdt` in 960-tick frames) and how many frames it
/// holds (its `trun`'s sample count).
fn frames(part: &[u8]) -> anyhow::Result<(u64, u64)> {
    let find = |kind: &[u8]| {
        part.windows(4)
            .position(|w| w == kind)
            .ok_or_else(|| anyhow!("no {} box", String::from_utf8_lossy(kind)))
    };
    let tfdt = find(b"tfdt")?;
    let mut b = part
        .get(tfdt + 4..)
        .ok_or_else(|| anyhow!("a short tfdt"))?;
    let version = b.get_u8();
    b.advance(3);
    let time = if version == 1 {
        b.get_u64()
    } else {
        u64::from(b.get_u32())
    };
    let trun = find(b"trun")?;
    let mut b = part
        .get(trun + 8..trun + 12)
        .ok_or_else(|| anyhow!("a short trun"))?;
    Ok((time / 960, u64::from(b.get_u32())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_says_where_its_frames_are_on_the_timeline() {
        let packets: Vec<Bytes> = (0..10).map(|_| Bytes::from_static(&[0xf8, 1, 2])).collect();
        let part = stentor_media::fmp4::fragment(3, 88_000_000_123, &packets);
        assert_eq!(frames(&part).unwrap(), (88_000_000_123, 10));
    }

    #[test]
    fn the_hint_and_the_newest_part_are_read_from_the_playlist() {
        let playlist = b"#EXTM3U\n#EXT-X-PART:DURATION=0.200,URI=\"hls/7.2.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PART:DURATION=0.200,URI=\"hls/7.3.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"hls/7.4.m4s\"\n";
        assert_eq!(newest_part(playlist).unwrap(), (7, 3));
        assert_eq!(listed_parts(playlist).unwrap(), vec![(7, 2), (7, 3)]);
        assert_eq!(hint(playlist).unwrap(), (7, 4));
    }
}
