//! What an origin answers an edge that starts serving a Space (sans-IO): the Space's state
//! as JSON and the tail of its mix, so that the edge's first listeners get audio at once.
//!
//! ```text
//! 0x01 'S' state_len:u32 state-json… { seq:u64 len:u16 opus-packet… }*     (big-endian)
//! ```

use crate::envelope::{EnvelopeError, MAX_PAYLOAD, VERSION};
use bytes::{Buf, BufMut, Bytes, BytesMut};

const SNAPSHOT: u8 = b'S';
/// Most frames of the mix a snapshot carries (5 s).
pub const MAX_TAIL: usize = 250;

/// A Space's state and the newest frames of its mix, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The state, as JSON (its fields are the server's; see docs/protocol.md).
    pub state: Bytes,
    /// Frames of the mix: (the mixer's tick number, the Opus packet).
    pub tail: Vec<(u64, Bytes)>,
}

impl Snapshot {
    /// The bytes on the wire.
    pub fn encode(&self) -> Bytes {
        let frames: usize = self.tail.iter().map(|(_, p)| 10 + p.len()).sum();
        let mut b = BytesMut::with_capacity(6 + self.state.len() + frames);
        b.put_u8(VERSION);
        b.put_u8(SNAPSHOT);
        b.put_u32(self.state.len() as u32);
        b.put_slice(&self.state);
        for (seq, packet) in &self.tail {
            b.put_u64(*seq);
            b.put_u16(packet.len() as u16);
            b.put_slice(packet);
        }
        b.freeze()
    }

    /// Reads a snapshot; the state and packets share `bytes`.
    pub fn decode(bytes: &Bytes) -> Result<Snapshot, EnvelopeError> {
        let short = || EnvelopeError::Short(bytes.len());
        if bytes.len() < 6 {
            return Err(short());
        }
        if bytes[0] != VERSION {
            return Err(EnvelopeError::Version(bytes[0]));
        }
        if bytes[1] != SNAPSHOT {
            return Err(EnvelopeError::Kind(bytes[1]));
        }
        let state_len = u32::from_be_bytes(bytes[2..6].try_into().expect("4")) as usize;
        if state_len > MAX_PAYLOAD {
            return Err(EnvelopeError::TooLarge(state_len));
        }
        let mut at = 6 + state_len;
        let state = bytes.get(6..at).ok_or_else(short)?;
        if std::str::from_utf8(state).is_err() {
            return Err(EnvelopeError::NotText);
        }
        let state = bytes.slice(6..at);
        let mut tail = Vec::new();
        while at < bytes.len() {
            let mut header = bytes.get(at..at + 10).ok_or_else(short)?;
            let seq = header.get_u64();
            let len = usize::from(header.get_u16());
            let end = at + 10 + len;
            if end > bytes.len() {
                return Err(short());
            }
            if tail.len() == MAX_TAIL {
                return Err(EnvelopeError::TooLarge(bytes.len()));
            }
            tail.push((seq, bytes.slice(at + 10..end)));
            at = end;
        }
        Ok(Snapshot { state, tail })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_snapshot_comes_back_as_it_went_and_a_cut_one_is_refused() {
        let snapshot = Snapshot {
            state: Bytes::from_static(br#"{"state":"live"}"#),
            tail: vec![
                (7, Bytes::from_static(&[0xfc, 1])),
                (8, Bytes::from_static(&[0xfc, 2, 3])),
            ],
        };
        let bytes = snapshot.encode();
        assert_eq!(Snapshot::decode(&bytes), Ok(snapshot));
        let cut = bytes.slice(..bytes.len() - 1);
        assert_eq!(Snapshot::decode(&cut), Err(EnvelopeError::Short(cut.len())));
        let empty = Snapshot {
            state: Bytes::from_static(b"{}"),
            tail: vec![],
        };
        assert_eq!(Snapshot::decode(&empty.encode()), Ok(empty));
        let audio = Bytes::from_static(b"\x01A");
        assert_eq!(Snapshot::decode(&audio), Err(EnvelopeError::Short(2)));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_are_refused_without_panic(data in proptest::collection::vec(any::<u8>(), 0..96)) {
            let mut bytes = vec![VERSION, SNAPSHOT];
            bytes.extend(data);
            let _ = Snapshot::decode(&Bytes::from(bytes));
        }
    }
}
