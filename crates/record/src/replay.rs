//! What a recording becomes for listeners after the fact: a seekable Ogg/Opus file, HLS VOD
//! segments, clips of its last seconds, and who spoke when (from the mixer's level meters).

use crate::log::Timeline;
use bytes::Bytes;
use stentor_media::ogg::{self, FLAG_EOS, PRE_SKIP, PageWriter};
use stentor_media::{FRAME_SAMPLES, fmp4};

/// Frames per Ogg page in a file: about a second, so that a player seeking by bisection
/// lands within a second of where it wants to be.
const FRAMES_PER_PAGE: usize = 50;
/// A level (1–100) from which a speaker counts as speaking (about −40 dBFS).
const SPEAKING: u8 = 20;
/// Silence shorter than this (in frames) does not end a turn.
const PAUSE_FRAMES: usize = 50;

/// `packets` (20 ms Opus frames) as a whole Ogg/Opus file titled `title`: header pages,
/// then pages of about a second with exact granule positions, the last marked end of stream.
pub fn ogg_file(packets: &[Bytes], title: &str, serial: u32) -> Vec<u8> {
    let mut writer = PageWriter::new(serial);
    let mut out = Vec::with_capacity(packets.iter().map(Bytes::len).sum::<usize>() + 4096);
    for page in ogg::opus_header_pages(&mut writer, title) {
        out.extend_from_slice(&page);
    }
    let mut at = 0;
    while at < packets.len() {
        // As many frames as fit the page's 255 lacing values, up to a second.
        let mut lacing = 0;
        let mut end = at;
        while end < packets.len() && end - at < FRAMES_PER_PAGE {
            let need = packets[end].len() / 255 + 1;
            if lacing + need > 255 {
                break;
            }
            lacing += need;
            end += 1;
        }
        let refs: Vec<&[u8]> = packets[at..end].iter().map(|p| p.as_ref()).collect();
        let granule = u64::from(PRE_SKIP) + (end * FRAME_SAMPLES) as u64;
        let flags = if end == packets.len() { FLAG_EOS } else { 0 };
        out.extend_from_slice(&writer.page(&refs, granule, flags));
        at = end;
    }
    out
}

/// The last `seconds` of `packets` (all of them if shorter).
pub fn last_seconds(packets: &[Bytes], seconds: u32) -> &[Bytes] {
    let n = (seconds as usize * 50).min(packets.len());
    &packets[packets.len() - n..]
}

/// Segment `index` of a VOD rendition cut into segments of `frames` frames: an fMP4
/// fragment (after the init segment of [`fmp4::init_segment`]); `None` past the end.
pub fn vod_segment(packets: &[Bytes], frames: usize, index: usize) -> Option<Bytes> {
    let start = index.checked_mul(frames)?;
    if start >= packets.len() {
        return None;
    }
    let end = (start + frames).min(packets.len());
    Some(fmp4::fragment(
        index as u32 + 1,
        start as u64,
        &packets[start..end],
    ))
}

/// The media playlist of a VOD rendition of `total` frames in segments of `frames`.
pub fn vod_playlist(total: usize, frames: usize, segment_uri: impl Fn(usize) -> String) -> String {
    let target = (frames as f64 * 0.02).ceil() as u64;
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-PLAYLIST-TYPE:VOD\n\
         #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{}\"\n",
        segment_uri(usize::MAX)
    );
    let mut at = 0;
    let mut index = 0;
    while at < total {
        let n = frames.min(total - at);
        out.push_str(&format!(
            "#EXTINF:{:.3},\n{}\n",
            n as f64 * 0.02,
            segment_uri(index)
        ));
        at += n;
        index += 1;
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// A stretch in which one speaker was heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// Who.
    pub user: u64,
    /// From, in seconds into the recording.
    pub from: f64,
    /// To, in seconds.
    pub to: f64,
}

/// Who spoke when: each speaker's stretches above the speaking level, pauses shorter than a
/// second bridged, in order of start.
pub fn turns(timeline: &Timeline) -> Vec<Turn> {
    use std::collections::BTreeMap;
    // Per user: the open stretch (start, last frame heard).
    let mut open: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    let mut done = Vec::new();
    let close = |user: u64, (from, to): (usize, usize), done: &mut Vec<Turn>| {
        done.push(Turn {
            user,
            from: from as f64 * 0.02,
            to: (to + 5) as f64 * 0.02,
        });
    };
    for (at, levels) in &timeline.levels {
        for (user, level) in levels {
            if *level < SPEAKING {
                continue;
            }
            match open.get_mut(user) {
                Some((_, last)) if at - *last <= PAUSE_FRAMES => *last = *at,
                Some(stretch) => {
                    close(*user, *stretch, &mut done);
                    *stretch = (*at, *at);
                }
                None => {
                    open.insert(*user, (*at, *at));
                }
            }
        }
    }
    for (user, stretch) in open {
        close(user, stretch, &mut done);
    }
    let end = timeline.seconds();
    for t in &mut done {
        t.to = t.to.min(end);
    }
    done.sort_by(|a, b| a.from.total_cmp(&b.from));
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use stentor_media::ogg::OggReader;

    fn packets(n: usize) -> Vec<Bytes> {
        (0..n)
            .map(|i| Bytes::from(vec![0xf8, i as u8, 1, 2]))
            .collect()
    }

    #[test]
    fn the_ogg_file_holds_every_frame_with_exact_granules() {
        let p = packets(123);
        let file = ogg_file(&p, "Replay", 7);
        let mut reader = OggReader::new();
        reader.feed(&file);
        let mut got = Vec::new();
        while let Some(packet) = reader.next_packet().unwrap() {
            got.push(packet.data);
        }
        assert!(got[0].starts_with(b"OpusHead"));
        assert!(got[1].starts_with(b"OpusTags"));
        assert_eq!(&got[2..], &p[..]);
        // The last page ends the stream at the last frame's end.
        let last = file.windows(4).rposition(|w| w == b"OggS").unwrap();
        assert_eq!(file[last + 5], FLAG_EOS);
        let granule = u64::from_le_bytes(file[last + 6..last + 14].try_into().unwrap());
        assert_eq!(granule, 312 + 123 * 960);
    }

    #[test]
    fn a_vod_rendition_lists_every_segment_once() {
        let p = packets(250);
        let text = vod_playlist(250, 100, |i| {
            if i == usize::MAX {
                "init.mp4".into()
            } else {
                format!("{i}.m4s")
            }
        });
        assert!(text.contains(
            "#EXTINF:2.000,\n0.m4s\n#EXTINF:2.000,\n1.m4s\n#EXTINF:1.000,\n2.m4s\n#EXT-X-ENDLIST"
        ));
        assert!(vod_segment(&p, 100, 2).is_some());
        assert!(vod_segment(&p, 100, 3).is_none());
    }

    #[test]
    fn turns_bridge_short_pauses_and_split_long_ones() {
        let mut t = Timeline {
            packets: packets(1_000),
            ..Timeline::default()
        };
        // User 1 speaks from frame 0 to 100, pauses half a second, goes on to 200; pauses
        // four seconds; speaks again at 400.
        for at in (0..=200).step_by(5).filter(|a| !(100..125).contains(a)) {
            t.levels.push((at, vec![(1, 60)]));
        }
        t.levels.push((400, vec![(1, 60), (2, 5)]));
        let turns = turns(&t);
        assert_eq!(turns.len(), 2, "{turns:?}");
        assert_eq!(turns[0].user, 1);
        assert!(
            (turns[0].from - 0.0).abs() < 1e-9 && (turns[0].to - 4.1).abs() < 1e-9,
            "{turns:?}"
        );
        assert!((turns[1].from - 8.0).abs() < 1e-9);
    }
}
