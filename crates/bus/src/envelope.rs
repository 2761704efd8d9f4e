//! The envelope of what an origin publishes for a live Space (sans-IO): each encoded frame
//! of the mix with its sequence number and when it left the origin, and each event of the
//! Space, on one subject so that they arrive in the order they were sent.
//!
//! ```text
//! audio:  0x01 'A' seq:u64 sent_micros:u64 opus-packet…      (big-endian)
//! event:  0x01 'E' json…                                   (for every listener)
//! notice: 0x01 'N' to:u64 json…                            (for the stage and user `to`)
//! ```
//!
//! The first byte is the envelope's version; a reader refuses a version it does not know
//! rather than guess.

use bytes::{BufMut, Bytes, BytesMut};

/// The version of the envelope this build writes and reads.
pub const VERSION: u8 = 1;
/// Most bytes of one envelope's payload (an Opus packet of the mix is at most about 160
/// bytes at 64 kbit/s; an event is small JSON).
pub const MAX_PAYLOAD: usize = 64 * 1024;

const AUDIO: u8 = b'A';
const EVENT: u8 = b'E';
const NOTICE: u8 = b'N';
const AUDIO_HEADER: usize = 2 + 8 + 8;

/// One message of a Space's media subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// A frame of the mix.
    Audio {
        /// The mixer's tick number (20 ms each).
        seq: u64,
        /// When the origin published it, in microseconds since the Unix epoch (to measure the
        /// bus's delay; clocks of different machines differ by what NTP leaves).
        sent_micros: u64,
        /// The Opus packet.
        packet: Bytes,
    },
    /// An event of the Space, as the JSON every listener receives.
    Event(Bytes),
    /// An event only the stage and the user it concerns receive (a raised hand): an edge
    /// gives it to that user's connection, if it has it.
    Notice {
        /// The user it concerns.
        to: u64,
        /// The JSON event.
        json: Bytes,
    },
}

/// An envelope that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Fewer bytes than its header needs.
    #[error("envelope of {0} bytes is too short")]
    Short(usize),
    /// A version this build does not read.
    #[error("envelope version {0} is not {VERSION}")]
    Version(u8),
    /// Neither audio nor an event.
    #[error("unknown envelope kind {0:#04x}")]
    Kind(u8),
    /// A payload over [`MAX_PAYLOAD`].
    #[error("envelope payload of {0} bytes is over the limit")]
    TooLarge(usize),
    /// An event that is not UTF-8.
    #[error("event is not UTF-8")]
    NotText,
}

impl Envelope {
    /// The bytes on the wire.
    pub fn encode(&self) -> Bytes {
        match self {
            Envelope::Audio {
                seq,
                sent_micros,
                packet,
            } => {
                let mut b = BytesMut::with_capacity(AUDIO_HEADER + packet.len());
                b.put_u8(VERSION);
                b.put_u8(AUDIO);
                b.put_u64(*seq);
                b.put_u64(*sent_micros);
                b.put_slice(packet);
                b.freeze()
            }
            Envelope::Event(json) => {
                let mut b = BytesMut::with_capacity(2 + json.len());
                b.put_u8(VERSION);
                b.put_u8(EVENT);
                b.put_slice(json);
                b.freeze()
            }
            Envelope::Notice { to, json } => {
                let mut b = BytesMut::with_capacity(10 + json.len());
                b.put_u8(VERSION);
                b.put_u8(NOTICE);
                b.put_u64(*to);
                b.put_slice(json);
                b.freeze()
            }
        }
    }

    /// Reads an envelope; the payload shares `bytes` (no copy).
    pub fn decode(bytes: &Bytes) -> Result<Envelope, EnvelopeError> {
        if bytes.len() < 2 {
            return Err(EnvelopeError::Short(bytes.len()));
        }
        if bytes[0] != VERSION {
            return Err(EnvelopeError::Version(bytes[0]));
        }
        let envelope = match bytes[1] {
            AUDIO => {
                if bytes.len() < AUDIO_HEADER {
                    return Err(EnvelopeError::Short(bytes.len()));
                }
                let word = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
                Envelope::Audio {
                    seq: word(2),
                    sent_micros: word(10),
                    packet: bytes.slice(AUDIO_HEADER..),
                }
            }
            EVENT => Envelope::Event(text(bytes.slice(2..))?),
            NOTICE => {
                if bytes.len() < 10 {
                    return Err(EnvelopeError::Short(bytes.len()));
                }
                let to = u64::from_be_bytes(bytes[2..10].try_into().expect("8"));
                Envelope::Notice {
                    to,
                    json: text(bytes.slice(10..))?,
                }
            }
            kind => return Err(EnvelopeError::Kind(kind)),
        };
        let payload = match &envelope {
            Envelope::Audio { packet, .. } => packet.len(),
            Envelope::Event(json) | Envelope::Notice { json, .. } => json.len(),
        };
        if payload > MAX_PAYLOAD {
            return Err(EnvelopeError::TooLarge(payload));
        }
        Ok(envelope)
    }
}

/// `json` if it is UTF-8.
fn text(json: Bytes) -> Result<Bytes, EnvelopeError> {
    match std::str::from_utf8(&json) {
        Ok(_) => Ok(json),
        Err(_) => Err(EnvelopeError::NotText),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn audio_and_events_come_back_as_they_went() {
        let audio = Envelope::Audio {
            seq: 1 << 40,
            sent_micros: 1_764_720_000_123_456,
            packet: Bytes::from_static(&[0xfc, 1, 2, 3]),
        };
        let bytes = audio.encode();
        assert_eq!(&bytes[..2], &[1, b'A']);
        assert_eq!(Envelope::decode(&bytes), Ok(audio));
        let event = Envelope::Event(Bytes::from_static(br#"{"event":"ended"}"#));
        assert_eq!(Envelope::decode(&event.encode()), Ok(event));
        let notice = Envelope::Notice {
            to: 42,
            json: Bytes::from_static(br#"{"event":"hand_raised","user":42}"#),
        };
        assert_eq!(Envelope::decode(&notice.encode()), Ok(notice));
    }

    #[test]
    fn what_cannot_be_read_is_refused_with_its_reason() {
        let b = |s: &'static [u8]| Bytes::from_static(s);
        assert_eq!(Envelope::decode(&b(b"")), Err(EnvelopeError::Short(0)));
        assert_eq!(
            Envelope::decode(&b(b"\x02A")),
            Err(EnvelopeError::Version(2))
        );
        assert_eq!(
            Envelope::decode(&b(b"\x01Z")),
            Err(EnvelopeError::Kind(b'Z'))
        );
        assert_eq!(
            Envelope::decode(&b(b"\x01A\0\0\0")),
            Err(EnvelopeError::Short(5))
        );
        assert_eq!(
            Envelope::decode(&b(b"\x01E\xff")),
            Err(EnvelopeError::NotText)
        );
        assert_eq!(
            Envelope::decode(&b(b"\x01N\0\0")),
            Err(EnvelopeError::Short(4))
        );
        let big = Envelope::Event(Bytes::from(vec![b' '; MAX_PAYLOAD + 1])).encode();
        assert_eq!(
            Envelope::decode(&big),
            Err(EnvelopeError::TooLarge(MAX_PAYLOAD + 1))
        );
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_are_refused_without_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Envelope::decode(&Bytes::from(data));
        }

        #[test]
        fn any_audio_round_trips(seq: u64, sent: u64, packet in proptest::collection::vec(any::<u8>(), 0..400)) {
            let audio = Envelope::Audio { seq, sent_micros: sent, packet: Bytes::from(packet) };
            prop_assert_eq!(Envelope::decode(&audio.encode()), Ok(audio));
        }
    }
}
