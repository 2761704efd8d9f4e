//! The recording log's format: a magic header, then records of
//! `length (u32 LE) · CRC-32 of the payload (u32 LE) · payload`, the payload a kind byte and
//! its fields (big-endian integers).

use bytes::{Buf, BufMut, Bytes};
use std::io::{self, Read};

/// The first bytes of every recording log.
pub const MAGIC: &[u8; 8] = b"STENREC1";
/// The largest payload a record may have: an Opus packet with room to spare.
pub const MAX_PAYLOAD: usize = 16 * 1024;

/// One record of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Recording (re)started: mix frame `seq` was made at `wall_ms` (Unix milliseconds).
    Start {
        /// Mix sequence of the next frame.
        seq: u64,
        /// When, in milliseconds since the Unix epoch.
        wall_ms: u64,
        /// The Space's title then.
        title: String,
    },
    /// A frame of the mix.
    Audio {
        /// Its mix sequence.
        seq: u64,
        /// The Opus packet (20 ms).
        packet: Bytes,
    },
    /// Who was heard at frame `seq`: (user, level 0–100) of each speaker above silence.
    Levels {
        /// The mix sequence they were measured at.
        seq: u64,
        /// Speakers and their levels.
        levels: Vec<(u64, u8)>,
    },
    /// Recording stopped here (the Space ended, or the host turned it off).
    Stop {
        /// The mix sequence of the last frame.
        seq: u64,
    },
    /// The host trimmed the start: the replay begins `frames` frames (20 ms each) into the
    /// laid-out recording. The last trim in a log is the one in force.
    Trim {
        /// Frames cut from the start.
        frames: u64,
    },
}

const START: u8 = b'S';
const AUDIO: u8 = b'A';
const LEVELS: u8 = b'L';
const STOP: u8 = b'E';
const TRIM: u8 = b'T';

/// Why a log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file does not start with the magic bytes.
    #[error("not a stentor recording (no STENREC1 header)")]
    NotARecording,
    /// A record's length, checksum or fields are wrong at this offset.
    #[error("a damaged record at byte {0}")]
    Damaged(u64),
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Appends `record`, framed, to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 8]);
    match record {
        Record::Start {
            seq,
            wall_ms,
            title,
        } => {
            out.put_u8(START);
            out.put_u64(*seq);
            out.put_u64(*wall_ms);
            let title = &title.as_bytes()[..title.len().min(1024)];
            out.put_u16(title.len() as u16);
            out.put_slice(title);
        }
        Record::Audio { seq, packet } => {
            out.put_u8(AUDIO);
            out.put_u64(*seq);
            out.put_slice(&packet[..packet.len().min(MAX_PAYLOAD - 9)]);
        }
        Record::Levels { seq, levels } => {
            out.put_u8(LEVELS);
            out.put_u64(*seq);
            let levels = &levels[..levels.len().min(255)];
            out.put_u8(levels.len() as u8);
            for (user, level) in levels {
                out.put_u64(*user);
                out.put_u8(*level);
            }
        }
        Record::Stop { seq } => {
            out.put_u8(STOP);
            out.put_u64(*seq);
        }
        Record::Trim { frames } => {
            out.put_u8(TRIM);
            out.put_u64(*frames);
        }
    }
    let payload = &out[at + 8..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
}

fn decode(mut payload: Bytes) -> Option<Record> {
    if payload.is_empty() {
        return None;
    }
    let kind = payload.get_u8();
    let record = match kind {
        START if payload.len() >= 18 => {
            let seq = payload.get_u64();
            let wall_ms = payload.get_u64();
            let n = payload.get_u16() as usize;
            if payload.len() != n {
                return None;
            }
            let title = String::from_utf8_lossy(&payload).into_owned();
            Record::Start {
                seq,
                wall_ms,
                title,
            }
        }
        AUDIO if payload.len() >= 8 => {
            let seq = payload.get_u64();
            Record::Audio {
                seq,
                packet: payload,
            }
        }
        LEVELS if payload.len() >= 9 => {
            let seq = payload.get_u64();
            let n = payload.get_u8() as usize;
            if payload.len() != n * 9 {
                return None;
            }
            let levels = (0..n)
                .map(|_| (payload.get_u64(), payload.get_u8()))
                .collect();
            Record::Levels { seq, levels }
        }
        STOP if payload.len() == 8 => Record::Stop {
            seq: payload.get_u64(),
        },
        TRIM if payload.len() == 8 => Record::Trim {
            frames: payload.get_u64(),
        },
        _ => return None,
    };
    Some(record)
}

/// Reads a log's records in order, stopping at the first damaged or incomplete one: what
/// comes before it is the recording, [`Reader::valid_len`] where it ends.
pub struct Reader<R> {
    inner: R,
    offset: u64,
    damaged: bool,
}

impl<R: Read> Reader<R> {
    /// A reader of the log in `inner`, its header checked.
    pub fn new(mut inner: R) -> Result<Self, LogError> {
        let mut magic = [0u8; 8];
        inner
            .read_exact(&mut magic)
            .map_err(|_| LogError::NotARecording)?;
        if &magic != MAGIC {
            return Err(LogError::NotARecording);
        }
        Ok(Self {
            inner,
            offset: MAGIC.len() as u64,
            damaged: false,
        })
    }

    /// The length of the log up to the end of the last whole record read.
    pub fn valid_len(&self) -> u64 {
        self.offset
    }

    /// Whether reading stopped at a damaged or torn record (rather than the clean end).
    pub fn damaged(&self) -> bool {
        self.damaged
    }

    /// The next record; `None` at the end or at a torn or damaged record.
    pub fn next_record(&mut self) -> Result<Option<Record>, io::Error> {
        if self.damaged {
            return Ok(None);
        }
        let mut head = [0u8; 8];
        match read_full(&mut self.inner, &mut head)? {
            0 => return Ok(None),
            8 => {}
            _ => {
                self.damaged = true;
                return Ok(None);
            }
        }
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_PAYLOAD {
            self.damaged = true;
            return Ok(None);
        }
        let mut payload = vec![0u8; len];
        if read_full(&mut self.inner, &mut payload)? != len || crc32fast::hash(&payload) != crc {
            self.damaged = true;
            return Ok(None);
        }
        let Some(record) = decode(Bytes::from(payload)) else {
            self.damaged = true;
            return Ok(None);
        };
        self.offset += 8 + len as u64;
        Ok(Some(record))
    }
}

/// Reads until `buf` is full or the input ends; how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A recording laid out on one timeline: every frame in order, gaps (a restart, a stop, a
/// lost frame) closed up, and who spoke when.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// The Opus packets, 20 ms each, in order.
    pub packets: Vec<Bytes>,
    /// (frame index in `packets`, speaker levels) every time levels were recorded.
    pub levels: Vec<(usize, Vec<(u64, u8)>)>,
    /// When the first frame was made, Unix milliseconds.
    pub started_ms: Option<u64>,
    /// The title at the start.
    pub title: String,
    /// Frames the log says were made but are not in it (lost before they were written).
    pub missing: u64,
    /// Frames the host trimmed from the start.
    pub trimmed: u64,
}

impl Timeline {
    /// Lays out the records of a log.
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> Self {
        let mut t = Timeline::default();
        let mut last: Option<u64> = None;
        let mut trim = 0;
        for record in records {
            match record {
                Record::Start { wall_ms, title, .. } => {
                    if t.started_ms.is_none() {
                        t.started_ms = Some(wall_ms);
                        t.title = title;
                    }
                    last = None;
                }
                Record::Audio { seq, packet } => {
                    if let Some(l) = last
                        && seq > l + 1
                    {
                        t.missing += (seq - l - 1).min(1_000);
                    }
                    if last.is_none_or(|l| seq > l) {
                        t.packets.push(packet);
                        last = Some(seq);
                    }
                }
                Record::Levels { levels, .. } => t.levels.push((t.packets.len(), levels)),
                Record::Stop { .. } => last = None,
                Record::Trim { frames } => trim = frames,
            }
        }
        let trim = (trim as usize).min(t.packets.len());
        if trim > 0 {
            t.packets.drain(..trim);
            t.levels.retain(|(at, _)| *at >= trim);
            for (at, _) in &mut t.levels {
                *at -= trim;
            }
            t.started_ms = t.started_ms.map(|ms| ms + trim as u64 * 20);
            t.trimmed = trim as u64;
        }
        t
    }

    /// Its length in seconds.
    pub fn seconds(&self) -> f64 {
        self.packets.len() as f64 * 0.02
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn log(records: &[Record]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for r in records {
            encode(r, &mut out);
        }
        out
    }

    fn read_all(bytes: &[u8]) -> (Vec<Record>, u64, bool) {
        let mut reader = Reader::new(bytes).unwrap();
        let mut out = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            out.push(r);
        }
        (out, reader.valid_len(), reader.damaged())
    }

    fn sample() -> Vec<Record> {
        vec![
            Record::Start {
                seq: 0,
                wall_ms: 1_796_256_000_000,
                title: "Town hall".into(),
            },
            Record::Audio {
                seq: 0,
                packet: Bytes::from_static(&[0xf8, 1, 2, 3]),
            },
            Record::Levels {
                seq: 0,
                levels: vec![(7, 80), (9, 12)],
            },
            Record::Audio {
                seq: 1,
                packet: Bytes::from_static(&[0xf8, 4]),
            },
            Record::Stop { seq: 1 },
            Record::Trim { frames: 1 },
        ]
    }

    #[test]
    fn records_read_back_as_written() {
        let records = sample();
        let bytes = log(&records);
        let (read, len, damaged) = read_all(&bytes);
        assert_eq!(read, records);
        assert_eq!(len, bytes.len() as u64);
        assert!(!damaged);
    }

    #[test]
    fn a_torn_tail_is_cut_at_the_last_whole_record() {
        let records = sample();
        let bytes = log(&records);
        let whole = log(&records[..3]).len();
        for cut in whole + 1..log(&records[..4]).len() {
            let (read, len, damaged) = read_all(&bytes[..cut]);
            assert_eq!(read, records[..3]);
            assert_eq!(len, whole as u64);
            assert!(damaged);
        }
    }

    #[test]
    fn a_flipped_bit_stops_the_reading_there() {
        let records = sample();
        let mut bytes = log(&records);
        let second = log(&records[..1]).len();
        bytes[second + 12] ^= 0x10;
        let (read, len, _) = read_all(&bytes);
        assert_eq!(read, records[..1]);
        assert_eq!(len, second as u64);
    }

    #[test]
    fn not_a_recording_is_refused() {
        assert!(matches!(
            Reader::new(&b"OggS...."[..]),
            Err(LogError::NotARecording)
        ));
    }

    #[test]
    fn the_timeline_closes_up_restarts_and_counts_lost_frames() {
        let audio = |seq| Record::Audio {
            seq,
            packet: Bytes::from(vec![0xf8, seq as u8]),
        };
        let t = Timeline::from_records([
            Record::Start {
                seq: 0,
                wall_ms: 5,
                title: "a".into(),
            },
            audio(0),
            audio(1),
            audio(4),
            // A restarted server: a new mixer from 0.
            Record::Start {
                seq: 0,
                wall_ms: 9,
                title: "b".into(),
            },
            audio(0),
            audio(1),
        ]);
        assert_eq!(t.packets.len(), 5);
        assert_eq!(t.missing, 2);
        assert_eq!(t.started_ms, Some(5));
        assert_eq!(t.title, "a");
        let trimmed = Timeline::from_records([
            Record::Start {
                seq: 0,
                wall_ms: 1_000,
                title: "a".into(),
            },
            audio(0),
            Record::Levels {
                seq: 0,
                levels: vec![(1, 50)],
            },
            audio(1),
            Record::Levels {
                seq: 1,
                levels: vec![(2, 50)],
            },
            audio(2),
            Record::Trim { frames: 2 },
        ]);
        assert_eq!(trimmed.packets.len(), 1);
        assert_eq!(trimmed.levels, vec![(0, vec![(2, 50)])]);
        assert_eq!(trimmed.started_ms, Some(1_040));
    }

    proptest! {
        #[test]
        fn any_bytes_read_as_a_prefix_without_a_panic(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = log(&sample());
            bytes.extend_from_slice(&tail);
            let (read, len, _) = read_all(&bytes);
            prop_assert!(read.len() >= sample().len());
            prop_assert!(len as usize <= bytes.len());
        }
    }
}
