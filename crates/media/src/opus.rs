//! Safe wrappers around the reference libopus encoder and decoder (mono, 48 kHz, 20 ms).

use crate::{FRAME_SAMPLES, MAX_PACKET_BYTES, SAMPLE_RATE};
#[allow(clippy::unsafe_removed_from_name)]
// `ffi` is the conventional name; the calls stay in unsafe blocks.
use unsafe_libopus as ffi;

/// An error from the Opus codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpusError {
    /// The codec could not be created with the given settings.
    #[error("opus codec could not be created (code {0})")]
    Create(i32),
    /// The packet is empty, too large or not a valid Opus packet.
    #[error("invalid opus packet")]
    InvalidPacket,
    /// The packet decodes to something other than one 20 ms frame.
    #[error("opus packet holds {0} samples, expected {FRAME_SAMPLES} (20 ms)")]
    WrongDuration(i32),
    /// The encoder or decoder reported an internal error.
    #[error("opus codec error (code {0})")]
    Codec(i32),
}

/// Checks that `packet` is a well-formed Opus packet holding exactly one 20 ms frame at 48 kHz.
///
/// This is the gate for every packet a peer sends: it parses the TOC and frame lengths
/// without decoding, so it is cheap enough to run on the ingest path.
pub fn validate_packet(packet: &[u8]) -> Result<(), OpusError> {
    if packet.is_empty() || packet.len() > MAX_PACKET_BYTES {
        return Err(OpusError::InvalidPacket);
    }
    let mut toc = 0u8;
    let mut frames = [std::ptr::null::<u8>(); 48];
    let mut sizes = [0i16; 48];
    let mut payload_offset = 0i32;
    // SAFETY: the pointers are to live local buffers of the sizes libopus documents (48 frames).
    let count = unsafe {
        ffi::opus_packet_parse(
            packet.as_ptr(),
            packet.len() as i32,
            &mut toc,
            frames.as_mut_ptr(),
            sizes.as_mut_ptr(),
            &mut payload_offset,
        )
    };
    if count <= 0 {
        return Err(OpusError::InvalidPacket);
    }
    // SAFETY: `packet` is a live slice and its length is passed alongside.
    let samples = unsafe {
        ffi::opus_packet_get_nb_samples(packet.as_ptr(), packet.len() as i32, SAMPLE_RATE as i32)
    };
    if samples != FRAME_SAMPLES as i32 {
        return Err(OpusError::WrongDuration(samples));
    }
    Ok(())
}

/// An Opus encoder for mono 48 kHz audio in 20 ms frames.
pub struct Encoder {
    raw: *mut ffi::OpusEncoder,
    out: Box<[u8; MAX_PACKET_BYTES]>,
}

// SAFETY: the encoder state is plain memory owned by this value and only touched through &mut.
unsafe impl Send for Encoder {}

impl Encoder {
    /// Creates an encoder tuned for speech and music at `bitrate` bits per second.
    pub fn new(bitrate: u32) -> Result<Self, OpusError> {
        let mut err = 0i32;
        // SAFETY: plain constructor call with valid arguments and an out-pointer to a local.
        let raw = unsafe {
            ffi::opus_encoder_create(SAMPLE_RATE as i32, 1, ffi::OPUS_APPLICATION_AUDIO, &mut err)
        };
        if raw.is_null() || err != ffi::OPUS_OK {
            return Err(OpusError::Create(err));
        }
        let enc = Self {
            raw,
            out: Box::new([0; MAX_PACKET_BYTES]),
        };
        // SAFETY: `raw` is a live encoder; the request takes one i32 argument.
        let rc = unsafe {
            ffi::opus_encoder_ctl!(enc.raw, ffi::OPUS_SET_BITRATE_REQUEST, bitrate as i32)
        };
        if rc != ffi::OPUS_OK {
            return Err(OpusError::Create(rc));
        }
        Ok(enc)
    }

    /// Encodes one 20 ms frame of samples in [-1, 1] and returns the packet bytes.
    pub fn encode(&mut self, pcm: &[f32; FRAME_SAMPLES]) -> Result<&[u8], OpusError> {
        // SAFETY: `pcm` holds exactly one frame and `out` is MAX_PACKET_BYTES long.
        let n = unsafe {
            ffi::opus_encode_float(
                self.raw,
                pcm.as_ptr(),
                FRAME_SAMPLES as i32,
                self.out.as_mut_ptr(),
                MAX_PACKET_BYTES as i32,
            )
        };
        if n <= 0 {
            return Err(OpusError::Codec(n));
        }
        Ok(&self.out[..n as usize])
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: `raw` came from opus_encoder_create and is destroyed once.
        unsafe { ffi::opus_encoder_destroy(self.raw) }
    }
}

/// An Opus decoder for mono 48 kHz audio in 20 ms frames, with packet-loss concealment.
pub struct Decoder {
    raw: *mut ffi::OpusDecoder,
    /// RMS of the last frame produced, to sanity-check concealment against.
    last_rms: f32,
}

// SAFETY: the decoder state is plain memory owned by this value and only touched through &mut.
unsafe impl Send for Decoder {}

impl Decoder {
    /// Creates a decoder.
    pub fn new() -> Result<Self, OpusError> {
        let mut err = 0i32;
        // SAFETY: plain constructor call with valid arguments and an out-pointer to a local.
        let raw = unsafe { ffi::opus_decoder_create(SAMPLE_RATE as i32, 1, &mut err) };
        if raw.is_null() || err != ffi::OPUS_OK {
            return Err(OpusError::Create(err));
        }
        Ok(Self { raw, last_rms: 0.0 })
    }

    /// Decodes one packet into `pcm`. The packet is validated first, so a malformed packet
    /// from a peer is an error, never undefined behaviour.
    pub fn decode(
        &mut self,
        packet: &[u8],
        pcm: &mut [f32; FRAME_SAMPLES],
    ) -> Result<(), OpusError> {
        validate_packet(packet)?;
        // SAFETY: the packet was validated; `pcm` has room for one full frame.
        let n = unsafe {
            ffi::opus_decode_float(
                self.raw,
                packet.as_ptr(),
                packet.len() as i32,
                pcm.as_mut_ptr(),
                FRAME_SAMPLES as i32,
                0,
            )
        };
        match n {
            n if n == FRAME_SAMPLES as i32 => {
                self.last_rms = crate::signal::rms(pcm);
                Ok(())
            }
            n if n < 0 => Err(OpusError::Codec(n)),
            n => Err(OpusError::WrongDuration(n)),
        }
    }

    /// Fills `pcm` with a concealment frame for a packet that never arrived.
    ///
    /// Concealment may never be louder than the audio it continues: the transpiled codec's
    /// concealment can diverge after near-silence (full-scale noise). Such a frame is replaced
    /// by silence and the decoder is reset, so the divergence cannot leak into the next frame.
    pub fn conceal(&mut self, pcm: &mut [f32; FRAME_SAMPLES]) {
        // SAFETY: a null packet asks libopus for packet-loss concealment of one frame.
        let n = unsafe {
            ffi::opus_decode_float(
                self.raw,
                std::ptr::null(),
                0,
                pcm.as_mut_ptr(),
                FRAME_SAMPLES as i32,
                0,
            )
        };
        let level = crate::signal::rms(pcm);
        if n != FRAME_SAMPLES as i32 || !level.is_finite() || level > 1.5 * self.last_rms + 1e-3 {
            pcm.fill(0.0);
            // SAFETY: `raw` is a live decoder; the reset request takes no argument.
            unsafe { ffi::opus_decoder_ctl_impl(self.raw, ffi::OPUS_RESET_STATE, ffi::varargs!()) };
            self.last_rms = 0.0;
        } else {
            self.last_rms = level;
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: `raw` came from opus_decoder_create and is destroyed once.
        unsafe { ffi::opus_decoder_destroy(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Tone, goertzel_power, rms};

    #[test]
    fn a_tone_survives_encode_and_decode() {
        let mut enc = Encoder::new(32_000).unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut tone = Tone::new(440.0, 0.5);
        let mut out = [0f32; FRAME_SAMPLES];
        let mut decoded = Vec::new();
        for _ in 0..50 {
            let mut pcm = [0f32; FRAME_SAMPLES];
            tone.fill(&mut pcm);
            let packet = enc.encode(&pcm).unwrap().to_vec();
            dec.decode(&packet, &mut out).unwrap();
            decoded.extend_from_slice(&out);
        }
        let tail = &decoded[decoded.len() / 2..];
        assert!(rms(tail) > 0.25, "rms {}", rms(tail));
        let at_440 = goertzel_power(tail, 440.0);
        let at_1000 = goertzel_power(tail, 1000.0);
        assert!(at_440 > 100.0 * at_1000, "440: {at_440}, 1000: {at_1000}");
    }

    #[test]
    fn malformed_packets_are_errors_not_crashes() {
        let mut dec = Decoder::new().unwrap();
        let mut out = [0f32; FRAME_SAMPLES];
        assert_eq!(dec.decode(&[], &mut out), Err(OpusError::InvalidPacket));
        assert!(dec.decode(&[0xff; 2000], &mut out).is_err());
        // Code 3 packet claiming 48 frames with no bytes behind it.
        assert!(dec.decode(&[0x03 | 0xf8, 0x30], &mut out).is_err());
        // A valid 10 ms CELT packet is refused: only 20 ms frames are accepted.
        assert_eq!(
            validate_packet(&[0xf0, 0x00, 0x00]),
            Err(OpusError::WrongDuration(480))
        );
    }

    #[test]
    fn concealment_after_silence_stays_silent_and_does_not_leak() {
        let mut enc = Encoder::new(48_000).unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut out = [0f32; FRAME_SAMPLES];
        let mut tone = Tone::new(1000.0, 0.5);
        for i in 0..30 {
            let mut pcm = [0f32; FRAME_SAMPLES];
            if i == 5 {
                tone.fill(&mut pcm);
            }
            let packet = enc.encode(&pcm).unwrap().to_vec();
            if i == 20 {
                dec.conceal(&mut out);
                assert!(
                    rms(&out) < 0.01,
                    "concealment after silence: rms {}",
                    rms(&out)
                );
            }
            dec.decode(&packet, &mut out).unwrap();
            if i >= 20 {
                assert!(
                    rms(&out) < 0.01,
                    "frame {i} after concealment: rms {}",
                    rms(&out)
                );
            }
        }
    }

    #[test]
    fn concealment_continues_a_tone_at_its_level() {
        let mut enc = Encoder::new(48_000).unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut out = [0f32; FRAME_SAMPLES];
        let mut tone = Tone::new(440.0, 0.5);
        for _ in 0..10 {
            let mut pcm = [0f32; FRAME_SAMPLES];
            tone.fill(&mut pcm);
            dec.decode(enc.encode(&pcm).unwrap(), &mut out).unwrap();
        }
        dec.conceal(&mut out);
        let level = rms(&out);
        assert!(level > 0.1 && level < 0.4, "concealed level {level}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1400)) {
            let mut dec = Decoder::new().unwrap();
            let mut out = [0f32; FRAME_SAMPLES];
            let _ = dec.decode(&bytes, &mut out);
        }
    }
}
