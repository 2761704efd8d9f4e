//! An LL-HLS media playlist read back and checked against the rules of RFC 8216bis and
//! Apple's low-latency additions, and fMP4 fragments taken apart into their Opus packets.

use mp4_atom::{Any, Decode};
use std::io::Cursor;

/// One segment of a playlist, whole or still growing.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub msn: u64,
    /// Milliseconds since the Unix epoch (EXT-X-PROGRAM-DATE-TIME).
    pub date_ms: i64,
    /// (duration, uri) of each part listed.
    pub parts: Vec<(f64, String)>,
    /// EXTINF and URI, once whole.
    pub whole: Option<(f64, String)>,
}

/// A media playlist, read.
#[derive(Debug, Clone, Default)]
pub struct Playlist {
    pub version: u32,
    pub target: u64,
    pub part_target: f64,
    pub part_hold_back: f64,
    pub can_skip_until: f64,
    pub blocking: bool,
    pub media_sequence: u64,
    pub map: Option<String>,
    pub skipped: u64,
    pub segments: Vec<Segment>,
    pub preload_hint: Option<String>,
    pub ended: bool,
}

fn attr<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    list.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.trim_matches('"'))
    })
}

fn date_ms(text: &str) -> i64 {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("EXT-X-PROGRAM-DATE-TIME {text}: {e}"));
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Playlist {
    /// Reads `text`, failing on anything a player would not take.
    pub fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("#EXTM3U"),
            "a playlist starts with #EXTM3U"
        );
        let mut p = Playlist::default();
        let mut open: Option<Segment> = None;
        let mut pending_extinf: Option<f64> = None;
        for line in lines {
            let (tag, value) = line.split_once(':').unwrap_or((line, ""));
            match tag {
                "#EXT-X-VERSION" => p.version = value.parse().unwrap(),
                "#EXT-X-TARGETDURATION" => p.target = value.parse().unwrap(),
                "#EXT-X-PART-INF" => {
                    p.part_target = attr(value, "PART-TARGET").unwrap().parse().unwrap()
                }
                "#EXT-X-SERVER-CONTROL" => {
                    p.blocking = attr(value, "CAN-BLOCK-RELOAD") == Some("YES");
                    p.part_hold_back = attr(value, "PART-HOLD-BACK").unwrap().parse().unwrap();
                    p.can_skip_until =
                        attr(value, "CAN-SKIP-UNTIL").map_or(0.0, |v| v.parse().unwrap());
                }
                "#EXT-X-MEDIA-SEQUENCE" => p.media_sequence = value.parse().unwrap(),
                "#EXT-X-MAP" => p.map = attr(value, "URI").map(str::to_owned),
                "#EXT-X-SKIP" => {
                    p.skipped = attr(value, "SKIPPED-SEGMENTS").unwrap().parse().unwrap()
                }
                "#EXT-X-PROGRAM-DATE-TIME" => {
                    assert!(open.is_none(), "a date inside a segment");
                    let msn = p.media_sequence + p.skipped + p.segments.len() as u64;
                    open = Some(Segment {
                        msn,
                        date_ms: date_ms(value),
                        parts: vec![],
                        whole: None,
                    });
                }
                "#EXT-X-PART" => {
                    let seg = open.as_mut().expect("a part after its segment's date");
                    let d: f64 = attr(value, "DURATION").unwrap().parse().unwrap();
                    assert_eq!(
                        attr(value, "INDEPENDENT"),
                        Some("YES"),
                        "audio parts are independent"
                    );
                    seg.parts.push((d, attr(value, "URI").unwrap().to_owned()));
                }
                "#EXTINF" => pending_extinf = Some(value.trim_end_matches(',').parse().unwrap()),
                "#EXT-X-PRELOAD-HINT" => {
                    assert_eq!(attr(value, "TYPE"), Some("PART"));
                    assert!(p.preload_hint.is_none(), "one preload hint");
                    p.preload_hint = attr(value, "URI").map(str::to_owned);
                }
                "#EXT-X-ENDLIST" => p.ended = true,
                _ if !line.starts_with('#') && !line.is_empty() => {
                    let d = pending_extinf.take().expect("a URI after its EXTINF");
                    let mut seg = open.take().expect("every segment has a date");
                    seg.whole = Some((d, line.to_owned()));
                    p.segments.push(seg);
                }
                _ if line.is_empty() => {}
                other => panic!("unknown tag {other}"),
            }
        }
        if let Some(seg) = open {
            p.segments.push(seg);
        }
        p
    }

    /// Checks every rule a low-latency player relies on; returns the playlist.
    pub fn check(self) -> Self {
        let p = &self;
        assert!(p.version >= 9, "EXT-X-SKIP needs version 9");
        assert!(p.target > 0 && p.part_target > 0.0);
        assert!(p.blocking, "CAN-BLOCK-RELOAD=YES");
        assert!(
            p.part_hold_back >= 3.0 * p.part_target - 1e-9,
            "PART-HOLD-BACK {} < 3 × {}",
            p.part_hold_back,
            p.part_target
        );
        assert!(
            p.can_skip_until >= 6.0 * p.target as f64,
            "CAN-SKIP-UNTIL ≥ 6 × target"
        );
        assert_eq!(p.map.as_deref(), Some("hls/init.mp4"));
        assert!(!p.segments.is_empty());
        for (i, seg) in p.segments.iter().enumerate() {
            let msn = p.media_sequence + p.skipped + i as u64;
            assert_eq!(seg.msn, msn, "no gap in the media sequence");
            for (n, (d, uri)) in seg.parts.iter().enumerate() {
                assert!(
                    *d <= p.part_target + 1e-9,
                    "part {uri} of {d} s > PART-TARGET {}",
                    p.part_target
                );
                assert_eq!(uri, &format!("hls/{msn}.{n}.m4s"));
            }
            if let Some((d, uri)) = &seg.whole {
                assert!(
                    d.round() as u64 <= p.target,
                    "EXTINF {d} > target {}",
                    p.target
                );
                assert_eq!(uri, &format!("hls/{msn}.m4s"));
                if !seg.parts.is_empty() {
                    let sum: f64 = seg.parts.iter().map(|(d, _)| d).sum();
                    assert!(
                        (sum - d).abs() < 0.002,
                        "parts of {msn} add up to {sum}, EXTINF {d}"
                    );
                }
                if let Some(next) = p.segments.get(i + 1) {
                    let gap = next.date_ms - seg.date_ms - (d * 1000.0).round() as i64;
                    assert!(
                        gap.abs() <= 1,
                        "dates of {msn} and the next leave a gap of {gap} ms"
                    );
                }
            } else {
                assert_eq!(i, p.segments.len() - 1, "only the last segment may be open");
            }
        }
        // Parts are listed for the newest segments only, without a hole.
        let first_with_parts = p.segments.iter().position(|s| !s.parts.is_empty());
        if let Some(first) = first_with_parts {
            assert!(
                p.segments[first..]
                    .iter()
                    .all(|s| !s.parts.is_empty() || s.whole.is_none())
            );
        }
        if p.ended {
            assert!(p.preload_hint.is_none());
        } else {
            let last = p.segments.last().unwrap();
            let expected = match &last.whole {
                Some(_) => format!("hls/{}.0.m4s", last.msn + 1),
                None => format!("hls/{}.{}.m4s", last.msn, last.parts.len()),
            };
            assert_eq!(
                p.preload_hint.as_deref(),
                Some(expected.as_str()),
                "the hint names the next part"
            );
        }
        self
    }

    /// The newest part listed: (msn, part).
    pub fn last_part(&self) -> Option<(u64, u32)> {
        let last = self.segments.last()?;
        match (&last.whole, last.parts.len()) {
            (None, 0) => None,
            (_, n) if n > 0 => Some((last.msn, n as u32 - 1)),
            _ => None,
        }
    }

    /// The next part (what the preload hint names): (msn, part).
    pub fn next_part(&self) -> (u64, u32) {
        let hint = self
            .preload_hint
            .as_deref()
            .expect("a live playlist has a hint");
        let stem = hint
            .strip_prefix("hls/")
            .unwrap()
            .strip_suffix(".m4s")
            .unwrap();
        let (msn, part) = stem.split_once('.').unwrap();
        (msn.parse().unwrap(), part.parse().unwrap())
    }
}

/// The Opus packets of an fMP4 fragment (or of several, one after the other), and the decode
/// time of its first sample.
pub fn packets(fragment: &[u8]) -> (u64, Vec<Vec<u8>>) {
    let mut buf = Cursor::new(fragment);
    let mut out = Vec::new();
    let mut first = None;
    while (buf.position() as usize) < fragment.len() {
        let start = buf.position() as usize;
        let Any::Moof(moof) = Any::decode(&mut buf).expect("a moof") else {
            panic!("not a moof")
        };
        let Any::Mdat(_) = Any::decode(&mut buf).expect("an mdat") else {
            panic!("not an mdat")
        };
        let traf = &moof.traf[0];
        first.get_or_insert(traf.tfdt.as_ref().expect("a tfdt").base_media_decode_time);
        let trun = &traf.trun[0];
        let mut at = start + trun.data_offset.expect("a data offset") as usize;
        for i in 0..trun.samples.len() {
            let size = trun.samples.get(i).unwrap().size.unwrap() as usize;
            out.push(fragment[at..at + size].to_vec());
            at += size;
        }
    }
    (first.unwrap_or(0), out)
}
