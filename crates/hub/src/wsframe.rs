//! WebSocket frames on the wire: the server's (unmasked, so one copy serves every listener)
//! built once, and the client's (masked) parsed without a per-connection protocol object.

use bytes::Bytes;
use std::io::Cursor;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::{Frame, FrameHeader};

/// Largest WebSocket message accepted from a client.
pub const MAX_WS_MESSAGE: usize = 16 * 1024;

/// Close codes used by the server (RFC 6455 and application range).
pub mod close {
    /// The Space ended, or the client went away.
    pub const NORMAL: u16 = 1000;
    /// The client broke the WebSocket protocol or sent a message too large.
    pub const PROTOCOL: u16 = 1002;
    /// A message of a kind the server does not accept.
    pub const UNSUPPORTED: u16 = 1003;
    /// A message whose content is invalid (bad Opus, bad JSON, unknown command).
    pub const INVALID: u16 = 1007;
    /// The client did something its role does not allow (a listener publishing).
    pub const POLICY: u16 = 1008;
    /// A message larger than the server accepts.
    pub const TOO_BIG: u16 = 1009;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The participant was removed from the Space.
    pub const REMOVED: u16 = 4003;
    /// A newer connection of the same person to the same Space took this one's place.
    pub const REPLACED: u16 = 4004;
    /// The server is overloaded and lets this listener go: come back after the seconds in
    /// the reason (RFC 6455's registry: Try Again Later).
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// This node is an edge and the connection belongs on the Space's origin, whose address
    /// is the reason: connect there with the same ticket.
    pub const REDIRECT: u16 = 4307;

    /// A metrics label for a close code.
    pub fn label(code: u16) -> &'static str {
        match code {
            NORMAL => "ended",
            GOING_AWAY => "shutdown",
            PROTOCOL => "protocol",
            UNSUPPORTED => "unsupported",
            INVALID => "invalid",
            POLICY => "policy",
            TOO_BIG => "too_big",
            REMOVED => "removed",
            REPLACED => "replaced",
            TRY_AGAIN_LATER => "shed",
            REDIRECT => "redirect",
            _ => "other",
        }
    }
}

/// A complete server frame: header and payload, ready for the socket.
fn frame(frame: Frame) -> Bytes {
    let mut out = Vec::with_capacity(frame.len());
    frame
        .format(&mut out)
        .expect("writing to a Vec cannot fail");
    out.into()
}

/// A binary message as one unfragmented frame.
pub fn binary(payload: impl Into<Bytes>) -> Bytes {
    frame(Frame::message(payload, OpCode::Data(Data::Binary), true))
}

/// A text message as one unfragmented frame.
pub fn text(text: &str) -> Bytes {
    frame(Frame::message(
        Bytes::copy_from_slice(text.as_bytes()),
        OpCode::Data(Data::Text),
        true,
    ))
}

/// A close frame with a code and a reason (cut to the 123 bytes a control frame allows).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    frame(Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..end].into(),
    })))
}

/// The answer to a ping.
pub fn pong(payload: Bytes) -> Bytes {
    frame(Frame::pong(payload))
}

/// Whether a frame made here is a text message.
pub fn is_text(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x0f == 0x1)
}

/// The payload of a frame made here (its header is 2, 4 or 10 bytes: server frames are
/// never masked).
pub fn payload(frame: &Bytes) -> Bytes {
    let header = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        Some(_) => 2,
        None => return Bytes::new(),
    };
    frame.slice(header.min(frame.len())..)
}

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// A text message (not yet checked to be UTF-8).
    Text(Vec<u8>),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping, to be answered with its payload.
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// The client closes the connection.
    Close,
}

/// Why a client's bytes are not an acceptable WebSocket frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The bytes break RFC 6455 (reserved opcode or bits, an unmasked client frame, …).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The message is larger than the server accepts.
    #[error("message too big ({0} bytes)")]
    TooBig(u64),
    /// A fragmented message: the messages a listener sends are small and never need it.
    #[error("fragmented messages are not accepted")]
    Fragmented,
}

impl FrameError {
    /// The close code this error is answered with.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::Protocol(_) => 1002,
            FrameError::TooBig(_) => 1009,
            FrameError::Fragmented => 1003,
        }
    }
}

/// Parses one client frame from the front of `buf`: `Ok(None)` while it is incomplete,
/// otherwise the frame and the number of bytes it took. Payloads over `max` bytes are refused
/// from their header alone, before they are buffered.
pub fn parse_client(buf: &[u8], max: usize) -> Result<Option<(ClientFrame, usize)>, FrameError> {
    let mut cursor = Cursor::new(buf);
    let (header, len) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(e) => return Err(FrameError::Protocol(e.to_string())),
    };
    if header.rsv1 || header.rsv2 || header.rsv3 {
        return Err(FrameError::Protocol("reserved bits set".into()));
    }
    let Some(mask) = header.mask else {
        return Err(FrameError::Protocol("client frames must be masked".into()));
    };
    if let OpCode::Control(_) = header.opcode
        && (len > 125 || !header.is_final)
    {
        // RFC 6455 5.5: control frames are short and whole.
        return Err(FrameError::Protocol(
            "control frames carry at most 125 bytes and are never fragmented".into(),
        ));
    }
    if len > max as u64 {
        return Err(FrameError::TooBig(len));
    }
    let start = cursor.position() as usize;
    let end = start + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    let mut payload = buf[start..end].to_vec();
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
    let frame = match header.opcode {
        _ if !header.is_final => return Err(FrameError::Fragmented),
        OpCode::Data(Data::Continue) => return Err(FrameError::Fragmented),
        OpCode::Data(Data::Text) => ClientFrame::Text(payload),
        OpCode::Data(Data::Binary) => ClientFrame::Binary(payload),
        OpCode::Control(Control::Ping) => ClientFrame::Ping(payload),
        OpCode::Control(Control::Pong) => ClientFrame::Pong,
        OpCode::Control(Control::Close) => ClientFrame::Close,
        OpCode::Data(Data::Reserved(op)) | OpCode::Control(Control::Reserved(op)) => {
            return Err(FrameError::Protocol(format!("reserved opcode {op}")));
        }
    };
    Ok(Some((frame, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![first];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn a_long_or_fragmented_control_frame_is_a_protocol_error() {
        let long_ping = masked(0x89, &[0u8; 126]);
        let err = parse_client(&long_ping, 4096).unwrap_err();
        assert_eq!(err.close_code(), 1002);
        let split_ping = masked(0x09, b"x");
        assert_eq!(
            parse_client(&split_ping, 4096).unwrap_err().close_code(),
            1002
        );
        let ping = masked(0x89, &[0u8; 125]);
        assert!(matches!(
            parse_client(&ping, 4096),
            Ok(Some((ClientFrame::Ping(p), _))) if p.len() == 125
        ));
    }

    #[test]
    fn server_frames_carry_their_payload_after_a_plain_header() {
        for n in [0usize, 125, 126, 300, 70_000] {
            let body = vec![7u8; n];
            let f = binary(body.clone());
            assert_eq!(f[0], 0x82);
            assert_eq!(payload(&f), body);
            assert!(!is_text(&f));
        }
        let t = text("hello");
        assert!(is_text(&t));
        assert_eq!(&t[..], b"\x81\x05hello");
        assert_eq!(&close(1000, "bye")[..], b"\x88\x05\x03\xe8bye");
    }

    #[test]
    fn client_frames_are_unmasked_and_measured() {
        let mut bytes = masked(0x81, br#"{"cmd":"raise_hand"}"#);
        let n = bytes.len();
        bytes.extend(masked(0x89, b"p"));
        let (f, used) = parse_client(&bytes, 1024).unwrap().unwrap();
        assert_eq!(f, ClientFrame::Text(br#"{"cmd":"raise_hand"}"#.to_vec()));
        assert_eq!(used, n);
        let (f, _) = parse_client(&bytes[used..], 1024).unwrap().unwrap();
        assert_eq!(f, ClientFrame::Ping(b"p".to_vec()));
    }

    #[test]
    fn an_incomplete_frame_waits_for_more_bytes() {
        let bytes = masked(0x82, &[9; 300]);
        for cut in [0, 1, 3, 7, 299] {
            assert_eq!(parse_client(&bytes[..cut], 1024), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn bad_frames_get_the_right_close_code() {
        let reserved = parse_client(&[0x83, 0x80, 0, 0, 0, 0], 1024).unwrap_err();
        assert_eq!(reserved.close_code(), 1002);
        let unmasked = parse_client(&[0x81, 0x01, b'x'], 1024).unwrap_err();
        assert_eq!(unmasked.close_code(), 1002);
        // Refused from the header alone: the 64 KiB body never has to arrive.
        let mut big = masked(0x82, &[0; 200]);
        big.truncate(8);
        assert_eq!(parse_client(&big, 100), Err(FrameError::TooBig(200)));
        let fragment = parse_client(&masked(0x01, b"part"), 1024).unwrap_err();
        assert_eq!(fragment, FrameError::Fragmented);
    }
}
