//! LL-HLS framing of a Space's mix: Opus in fMP4 parts and segments, and the media playlist
//! with its blocking reloads, each made once and shared by every request.
//!
//! Frames are numbered on a timeline of 20 ms slots since the Unix epoch (`t = base + seq`,
//! the base anchored once by the mixer and handed to edges in the origin's snapshot), so
//! every node that serves a Space names the same part the same way and a cache in front of
//! several of them holds one copy. Segment `msn` holds slots `msn × S … msn × S + S − 1`,
//! part `p` of it `P` slots from `msn × S + p × P` (`S`, `P`: frames per segment and per
//! part). Parts and segments are immutable once published; the playlist is rendered once
//! per part, with and without a delta skip, and every waiter takes the same bytes.
//!
//! Framing runs only while someone asks: a Space nobody fetches HLS for pays for a copy of
//! its last few seconds of packets, no more. The first request starts framing from those,
//! so its playlist already lists a whole segment.

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use stentor_media::fmp4;
use tokio::sync::watch;

/// Settings of a Space's LL-HLS framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HlsConfig {
    /// 20 ms frames per part (default 10: 200 ms, the shortest Apple advises).
    pub part_frames: u32,
    /// Parts per segment (default 10: segments of 2 s).
    pub segment_parts: u32,
    /// Segments the playlist lists (default 15: 30 s).
    pub window_segments: usize,
    /// Newest segments whose parts are listed and kept (default 3).
    pub part_segments: usize,
    /// Frames without a request after which framing stops (default 3 000: a minute).
    pub idle_frames: u64,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            part_frames: 10,
            segment_parts: 10,
            window_segments: 15,
            part_segments: 3,
            idle_frames: 3_000,
        }
    }
}

impl HlsConfig {
    fn segment_frames(&self) -> u64 {
        u64::from(self.part_frames * self.segment_parts)
    }

    /// The longest part, in seconds (`PART-TARGET`).
    pub fn part_target(&self) -> f64 {
        f64::from(self.part_frames) * 0.02
    }

    /// The segment target duration, in whole seconds (`EXT-X-TARGETDURATION`).
    pub fn target_duration(&self) -> u64 {
        (self.segment_frames() * 20).div_ceil(1000)
    }

    /// How far from the live edge a delta update may skip, in seconds: six target durations,
    /// the least the HLS rules allow.
    pub fn skip_until(&self) -> f64 {
        6.0 * self.target_duration() as f64
    }
}

/// A published part: an fMP4 fragment of `P` frames.
#[derive(Debug, Clone)]
struct Part {
    bytes: Bytes,
    frames: u32,
}

/// A segment of the window: its parts while they are kept, its whole bytes once complete.
#[derive(Debug)]
struct Segment {
    msn: u64,
    /// The slot of its first frame.
    start: u64,
    parts: Vec<Part>,
    /// How many parts it had (also after they were let go).
    part_count: u32,
    frames: u32,
    whole: Option<Bytes>,
}

/// The playlist as rendered after the last part: whole and as a delta update.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The whole playlist.
    pub full: Bytes,
    /// The delta update (`_HLS_skip=YES`): older segments replaced by `EXT-X-SKIP`.
    pub delta: Bytes,
    /// An entity tag naming this version (`"<last msn>.<last part>"`, `e` at the end).
    pub etag: String,
}

/// Whether what a blocking request waits for is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// In the playlist (or the stream ended: nothing more will come).
    Ready,
    /// Not yet; it will be soon.
    Pending,
    /// More than two segments ahead of the live edge: a bad request (400).
    TooFar,
}

/// What a request for a part or a segment finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The bytes (immutable).
    Found(Bytes),
    /// The next part to be published (the preload hint): worth waiting for.
    Next,
    /// It left the window (410).
    Gone,
    /// Not in the window and not next (404).
    Missing,
}

#[derive(Debug, Default)]
struct State {
    /// Slot of seq 0: `t = base + seq`.
    base: Option<u64>,
    /// The slot of the last frame seen.
    last: Option<u64>,
    running: bool,
    /// The slot of the last request seen by the framer.
    asked_at: u64,
    pending: Vec<Bytes>,
    /// The last frames, kept while framing does not run: (slot, packet).
    recent: VecDeque<(u64, Bytes)>,
    segments: VecDeque<Segment>,
    ended: bool,
    rendered: Rendered,
    /// Parts published since the framing started.
    parts: u64,
}

/// The LL-HLS framing of one Space.
#[derive(Debug)]
pub struct Hls {
    config: HlsConfig,
    init: Bytes,
    state: Mutex<State>,
    asked: AtomicBool,
    /// Bumped when a part is published or the stream ends.
    version: watch::Sender<u64>,
}

/// The longest gap (in frames) filled with concealment; a longer one (or a step back) moves
/// the timeline's base instead.
const MAX_FILL: u64 = 500;

/// A frame that carries nothing: a decoder conceals it (a TOC byte and an empty frame).
fn concealed(like: &[u8]) -> Bytes {
    let toc = like.first().copied().unwrap_or(0xf8) & !0x03;
    Bytes::from(vec![toc])
}

impl Hls {
    /// Framing with `config`, not running until asked.
    pub fn new(config: HlsConfig) -> Self {
        Self {
            config,
            init: fmp4::init_segment(),
            state: Mutex::new(State::default()),
            asked: AtomicBool::new(false),
            version: watch::channel(0).0,
        }
    }

    /// Its settings.
    pub fn config(&self) -> &HlsConfig {
        &self.config
    }

    /// The init segment (immutable).
    pub fn init(&self) -> Bytes {
        self.init.clone()
    }

    /// Sets the timeline: seq 0 is slot `base` (20 ms slots since the Unix epoch). An edge
    /// takes its origin's; once set it stays.
    pub fn set_base(&self, base: u64) {
        self.state.lock().base.get_or_insert(base);
    }

    /// Anchors the timeline so that frame `seq` is the one of `wall` (the mixer, once).
    pub fn anchor(&self, seq: u64, wall: SystemTime) {
        let ms = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        self.set_base((ms / 20).saturating_sub(seq));
    }

    /// The timeline's base, once anchored.
    pub fn base(&self) -> Option<u64> {
        self.state.lock().base
    }

    /// Someone asked for the playlist or a part: framing starts (at the next segment
    /// boundary) or goes on.
    pub fn asked(&self) {
        self.asked.store(true, Ordering::Relaxed);
    }

    /// Whether framing runs now.
    pub fn running(&self) -> bool {
        self.state.lock().running
    }

    /// Takes frame `seq` of the mix (a reference to the mixer's bytes, not a copy).
    pub fn publish(&self, seq: u64, packet: Bytes) {
        let asked = self.asked.swap(false, Ordering::Relaxed);
        let mut s = self.state.lock();
        let Some(base) = s.base else { return };
        if s.ended {
            return;
        }
        let mut t = base + seq;
        if let Some(last) = s.last {
            if t <= last || t > last + MAX_FILL {
                // A jump (a new mixer behind the same hub): the timeline goes on unbroken.
                s.base = Some(last + 1 - seq);
                t = last + 1;
            } else {
                for missing in last + 1..t {
                    self.take(&mut s, missing, concealed(&packet));
                }
            }
        }
        self.take(&mut s, t, packet);
        if asked {
            s.asked_at = t;
        }
        let wanted = s.asked_at > 0 && t.saturating_sub(s.asked_at) <= self.config.idle_frames;
        if s.running && !wanted {
            // Nobody asked for a while: let it all go.
            let kept = State {
                base: s.base,
                last: s.last,
                ended: s.ended,
                recent: std::mem::take(&mut s.recent),
                ..State::default()
            };
            *s = kept;
        } else if !s.running && wanted {
            self.start(&mut s);
        }
    }

    /// Keeps frame `t` among the recent ones, and frames it if framing runs.
    fn take(&self, s: &mut State, t: u64, packet: Bytes) {
        s.last = Some(t);
        if s.recent.len() >= self.recent_frames() {
            s.recent.pop_front();
        }
        s.recent.push_back((t, packet.clone()));
        if s.running {
            self.push(s, t, packet);
        }
    }

    /// Frames kept while nobody asks, so that framing starts with a whole segment or more.
    fn recent_frames(&self) -> usize {
        (self.config.segment_frames() * 5 / 2) as usize
    }

    /// Starts framing from the first segment boundary among the recent frames (or at the
    /// next boundary, if none is there yet).
    fn start(&self, s: &mut State) {
        let seg = self.config.segment_frames();
        let Some(from) = s.recent.iter().position(|(t, _)| t.is_multiple_of(seg)) else {
            return;
        };
        s.running = true;
        let recent: Vec<(u64, Bytes)> = s.recent.iter().skip(from).cloned().collect();
        for (t, packet) in recent {
            self.push(s, t, packet);
        }
    }

    fn push(&self, s: &mut State, t: u64, packet: Bytes) {
        s.pending.push(packet);
        let part_frames = u64::from(self.config.part_frames);
        if !(t + 1).is_multiple_of(part_frames) {
            return;
        }
        let first = t + 1 - s.pending.len() as u64;
        self.close_part(s, first);
    }

    /// Publishes the pending frames, the first at slot `first`, as a part.
    fn close_part(&self, s: &mut State, first: u64) {
        if s.pending.is_empty() {
            return;
        }
        let seg_frames = self.config.segment_frames();
        let msn = first / seg_frames;
        let sequence = (first / u64::from(self.config.part_frames)) as u32;
        let bytes = fmp4::fragment(sequence, first, &s.pending);
        let frames = s.pending.len() as u32;
        s.pending.clear();
        if s.segments.back().is_none_or(|seg| seg.msn != msn) {
            s.segments.push_back(Segment {
                msn,
                start: first,
                parts: Vec::new(),
                part_count: 0,
                frames: 0,
                whole: None,
            });
        }
        let seg = s.segments.back_mut().expect("just pushed");
        seg.parts.push(Part { bytes, frames });
        seg.part_count += 1;
        seg.frames += frames;
        if u64::from(seg.frames) >= seg_frames || s.ended {
            seal(seg);
        }
        s.parts += 1;
        self.trim(s);
        s.rendered = self.render(s);
        self.version.send_modify(|v| *v += 1);
    }

    /// Keeps the window: whole segments for its length, parts for the newest few.
    fn trim(&self, s: &mut State) {
        while s.segments.len() > self.config.window_segments {
            s.segments.pop_front();
        }
        let keep_parts = self.config.part_segments;
        let n = s.segments.len();
        for seg in s.segments.iter_mut().take(n.saturating_sub(keep_parts)) {
            if seg.whole.is_some() {
                seg.parts = Vec::new();
            }
        }
    }

    /// The stream ended (the Space did): the open part and segment are closed and the
    /// playlist says it is over. `finished` false: stopped without an end (this node no
    /// longer serves the Space), the playlist stays as it was.
    pub fn end(&self, finished: bool) {
        let mut s = self.state.lock();
        if s.ended {
            return;
        }
        if finished
            && s.running
            && let Some(last) = s.last
        {
            let first = last + 1 - s.pending.len() as u64;
            s.ended = true;
            self.close_part(&mut s, first);
            if let Some(seg) = s.segments.back_mut() {
                seal(seg);
            }
            s.rendered = self.render(&s);
        }
        s.ended = true;
        drop(s);
        self.version.send_modify(|v| *v += 1);
    }

    /// The playlist as last rendered (empty before the first part).
    pub fn playlist(&self) -> Rendered {
        self.state.lock().rendered.clone()
    }

    /// Whether segment `msn` (whole) or its part `part` is in the playlist.
    pub fn availability(&self, msn: Option<u64>, part: Option<u32>) -> Availability {
        let s = self.state.lock();
        if s.ended {
            return Availability::Ready;
        }
        let Some(last) = s.segments.back() else {
            return Availability::Pending;
        };
        let Some(msn) = msn else {
            return Availability::Ready;
        };
        let newest_whole = if last.whole.is_some() {
            Some(last.msn)
        } else {
            last.msn.checked_sub(1)
        };
        if msn > last.msn + 2 {
            return Availability::TooFar;
        }
        if newest_whole.is_some_and(|w| msn <= w) {
            return Availability::Ready;
        }
        match part {
            Some(p) if msn == last.msn && p < last.part_count => Availability::Ready,
            _ => Availability::Pending,
        }
    }

    /// Waits until `availability` says ready (or too far); the caller bounds the wait.
    pub async fn wait(&self, msn: Option<u64>, part: Option<u32>) -> Availability {
        let mut rx = self.version.subscribe();
        loop {
            match self.availability(msn, part) {
                Availability::Pending => {}
                other => return other,
            }
            if rx.changed().await.is_err() {
                return Availability::Ready;
            }
        }
    }

    /// Part `part` of segment `msn`.
    pub fn part(&self, msn: u64, part: u32) -> Lookup {
        let s = self.state.lock();
        match s.segments.iter().find(|seg| seg.msn == msn) {
            Some(seg) => match seg.parts.get(part as usize) {
                Some(p) => Lookup::Found(p.bytes.clone()),
                None if part < seg.part_count => Lookup::Gone,
                None if seg.whole.is_none() && part == seg.part_count && !s.ended => Lookup::Next,
                None => Lookup::Missing,
            },
            None => {
                let last = s.segments.back();
                let next_segment = last.is_some_and(|l| l.whole.is_some() && l.msn + 1 == msn);
                if next_segment && part == 0 && !s.ended {
                    Lookup::Next
                } else if s.segments.front().is_some_and(|f| msn < f.msn) {
                    Lookup::Gone
                } else {
                    Lookup::Missing
                }
            }
        }
    }

    /// Segment `msn`, whole.
    pub fn segment(&self, msn: u64) -> Lookup {
        let s = self.state.lock();
        match s.segments.iter().find(|seg| seg.msn == msn) {
            Some(Segment {
                whole: Some(bytes), ..
            }) => Lookup::Found(bytes.clone()),
            Some(_) => Lookup::Missing,
            None if s.segments.front().is_some_and(|f| msn < f.msn) => Lookup::Gone,
            None => Lookup::Missing,
        }
    }

    fn render(&self, s: &State) -> Rendered {
        let c = &self.config;
        let Some(front) = s.segments.front() else {
            return Rendered::default();
        };
        // The delta skips whole segments that start further than CAN-SKIP-UNTIL from the end.
        let end = s
            .segments
            .back()
            .map_or(0, |b| b.start + u64::from(b.frames));
        let skip_frames = (c.skip_until() * 50.0) as u64;
        let skipped = s
            .segments
            .iter()
            .take_while(|seg| seg.whole.is_some() && end - seg.start > skip_frames)
            .count();
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{}\n#EXT-X-PART-INF:PART-TARGET={:.3}\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},CAN-SKIP-UNTIL={:.1}\n\
             #EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-MAP:URI=\"hls/init.mp4\"\n",
            c.target_duration(),
            c.part_target(),
            3.0 * c.part_target(),
            c.skip_until(),
            front.msn,
        );
        let mut body = String::with_capacity(4096);
        let mut tail = String::new();
        for (i, seg) in s.segments.iter().enumerate() {
            let mut text = String::with_capacity(256);
            let _ = writeln!(text, "#EXT-X-PROGRAM-DATE-TIME:{}", date_time(seg.start));
            for (p, part) in seg.parts.iter().enumerate() {
                let _ = writeln!(
                    text,
                    "#EXT-X-PART:DURATION={:.3},URI=\"hls/{}.{}.m4s\",INDEPENDENT=YES",
                    f64::from(part.frames) * 0.02,
                    seg.msn,
                    p
                );
            }
            if seg.whole.is_some() {
                let _ = write!(
                    text,
                    "#EXTINF:{:.3},\nhls/{}.m4s\n",
                    f64::from(seg.frames) * 0.02,
                    seg.msn
                );
            }
            if i >= skipped {
                tail.push_str(&text);
            }
            body.push_str(&text);
        }
        let last = s.segments.back().expect("not empty");
        let mut end_tags = String::new();
        if s.ended {
            end_tags.push_str("#EXT-X-ENDLIST\n");
        } else {
            let (msn, part) = if last.whole.is_some() {
                (last.msn + 1, 0)
            } else {
                (last.msn, last.part_count)
            };
            let _ = writeln!(
                end_tags,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"hls/{msn}.{part}.m4s\""
            );
        }
        let full = [head.as_str(), &body, &end_tags].concat();
        let delta = if skipped == 0 {
            full.clone()
        } else {
            format!("{head}#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}\n{tail}{end_tags}")
        };
        Rendered {
            full: Bytes::from(full),
            delta: Bytes::from(delta),
            etag: format!(
                "\"{}.{}{}\"",
                last.msn,
                last.part_count,
                if s.ended { "e" } else { "" }
            ),
        }
    }
}

/// A segment's whole bytes: its parts one after the other.
fn seal(seg: &mut Segment) {
    if seg.whole.is_some() {
        return;
    }
    let mut whole = BytesMut::with_capacity(seg.parts.iter().map(|p| p.bytes.len()).sum());
    for p in &seg.parts {
        whole.extend_from_slice(&p.bytes);
    }
    seg.whole = Some(whole.freeze());
}

/// Slot `t` (20 ms since the Unix epoch) as an ISO 8601 date and time in UTC, milliseconds.
fn date_time(t: u64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let at = time::OffsetDateTime::UNIX_EPOCH + Duration::from_millis(t * 20);
    at.format(FORMAT).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 88_000_000_000;

    fn hls() -> Hls {
        let h = Hls::new(HlsConfig::default());
        h.set_base(BASE);
        h
    }

    fn feed(h: &Hls, seqs: std::ops::Range<u64>) {
        for seq in seqs {
            if seq % 10 == 0 {
                h.asked();
            }
            h.publish(seq, Bytes::from(vec![0xf8, seq as u8, 7]));
        }
    }

    #[test]
    fn nothing_is_framed_until_someone_asks() {
        let h = hls();
        for seq in 0..300 {
            h.publish(seq, Bytes::from_static(&[0xf8, 1]));
        }
        assert!(!h.running());
        assert!(h.playlist().full.is_empty());
    }

    #[test]
    fn framing_starts_at_a_segment_boundary_and_parts_are_named_by_slot() {
        let h = hls();
        feed(&h, 0..150);
        assert!(h.running());
        // BASE is a segment boundary: segment BASE / 100 holds seq 0..100.
        let msn = BASE / 100;
        assert!(matches!(h.segment(msn), Lookup::Found(_)));
        assert!(matches!(h.part(msn + 1, 4), Lookup::Found(_)));
        assert_eq!(h.part(msn + 1, 5), Lookup::Next);
        assert_eq!(h.part(msn + 1, 6), Lookup::Missing);
        assert_eq!(h.segment(msn + 1), Lookup::Missing);
        let text = String::from_utf8(h.playlist().full.to_vec()).unwrap();
        assert!(text.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{msn}\n")));
        assert!(text.contains(&format!(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"hls/{}.5.m4s\"",
            msn + 1
        )));
        assert_eq!(h.playlist().etag, format!("\"{}.5\"", msn + 1));
    }

    #[test]
    fn a_segment_is_its_parts_and_old_ones_leave_the_window() {
        let h = hls();
        feed(&h, 0..2_000);
        let first = BASE / 100;
        assert_eq!(h.segment(first), Lookup::Gone);
        assert_eq!(h.part(first, 0), Lookup::Gone);
        let newest = first + 19;
        let Lookup::Found(whole) = h.segment(newest) else {
            panic!()
        };
        let parts: Vec<u8> = (0..10)
            .flat_map(|p| match h.part(newest, p) {
                Lookup::Found(b) => b.to_vec(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(whole.as_ref(), parts.as_slice());
        let text = String::from_utf8(h.playlist().full.to_vec()).unwrap();
        assert_eq!(text.matches("#EXTINF:2.000,").count(), 15);
        assert_eq!(text.matches("#EXT-X-PART:").count(), 30);
    }

    #[test]
    fn blocking_requests_are_ready_once_their_part_is_out() {
        let h = hls();
        feed(&h, 0..125);
        let msn = BASE / 100 + 1;
        assert_eq!(h.availability(Some(msn), Some(1)), Availability::Ready);
        assert_eq!(h.availability(Some(msn), Some(2)), Availability::Pending);
        assert_eq!(h.availability(Some(msn), None), Availability::Pending);
        assert_eq!(h.availability(Some(msn - 1), None), Availability::Ready);
        assert_eq!(h.availability(Some(msn + 3), None), Availability::TooFar);
        feed(&h, 125..130);
        assert_eq!(h.availability(Some(msn), Some(2)), Availability::Ready);
    }

    #[test]
    fn the_delta_update_skips_what_is_older_than_skip_until() {
        let h = hls();
        feed(&h, 0..3_000);
        let r = h.playlist();
        let delta = String::from_utf8(r.delta.to_vec()).unwrap();
        // 30 s listed, 12 s may not be skipped: segments starting 14 s or more back go.
        assert!(
            delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=9\n"),
            "{delta}"
        );
        assert_eq!(delta.matches("#EXTINF").count(), 6);
    }

    #[test]
    fn a_gap_is_concealed_and_a_jump_does_not_break_the_timeline() {
        let h = hls();
        feed(&h, 0..100);
        // Three frames lost: the part still has 10 frames.
        feed(&h, 103..110);
        let msn = BASE / 100;
        let Lookup::Found(part) = h.part(msn + 1, 0) else {
            panic!()
        };
        assert!(part.len() > 100);
        // A new mixer starting at 0: the slots go on.
        feed(&h, 0..10);
        assert!(matches!(h.part(msn + 1, 1), Lookup::Found(_)));
    }

    #[test]
    fn the_end_closes_the_open_segment_and_lists_the_end() {
        let h = hls();
        feed(&h, 0..135);
        h.end(true);
        let text = String::from_utf8(h.playlist().full.to_vec()).unwrap();
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        assert!(text.contains("#EXTINF:0.700,"));
        assert_eq!(
            h.availability(Some(BASE / 100 + 2), None),
            Availability::Ready
        );
    }

    #[test]
    fn program_date_time_is_the_slot_in_utc() {
        // 2026-12-03T00:00:00Z is 1 796 256 000 s after the epoch.
        assert_eq!(
            date_time(1_796_256_000 * 50 + 3),
            "2026-12-03T00:00:00.060Z"
        );
    }

    #[test]
    fn the_first_request_finds_a_whole_segment_from_the_recent_frames() {
        let h = hls();
        for seq in 0..430 {
            h.publish(seq, Bytes::from_static(&[0xf8, 1]));
        }
        h.asked();
        h.publish(430, Bytes::from_static(&[0xf8, 1]));
        assert!(h.running());
        // The last 5 s were kept: segments from slot 200 on are framed at once.
        let msn = BASE / 100;
        assert!(matches!(h.segment(msn + 2), Lookup::Found(_)));
        assert!(matches!(h.segment(msn + 3), Lookup::Found(_)));
        assert!(matches!(h.part(msn + 4, 2), Lookup::Found(_)));
        assert_eq!(h.part(msn + 4, 3), Lookup::Next);
        assert_eq!(h.segment(msn + 1), Lookup::Gone);
    }

    #[test]
    fn framing_stops_when_nobody_asks() {
        let h = hls();
        feed(&h, 0..200);
        for seq in 200..3_400 {
            h.publish(seq, Bytes::from_static(&[0xf8, 1]));
        }
        assert!(!h.running());
    }
}
