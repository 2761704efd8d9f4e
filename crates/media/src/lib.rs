//! stentor-media: Opus, jitter buffer, mixer, level meter, Ogg pages and fMP4 boxes, without any I/O.
//!
//! Everything here is sans-IO: no sockets, no threads, no clock. Callers pass packets and
//! `now` in and take frames and events out, so every behaviour can be tested by hand-driven
//! time and runs the same way every time.
//!
//! Audio format throughout: Opus, 48 kHz, mono, 20 ms frames ([`FRAME_SAMPLES`] samples).

pub mod fmp4;
pub mod jitter;
pub mod level;
pub mod mixer;
pub mod ogg;
pub mod opus;
pub mod signal;

pub use jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
pub use level::LevelMeter;
pub use mixer::{MixOutput, Mixer, MixerConfig, SpeakerId};
pub use opus::{Decoder, Encoder, OpusError};

/// Sample rate of every stream, in Hz.
pub const SAMPLE_RATE: u32 = 48_000;
/// Duration of one frame, in milliseconds.
pub const FRAME_MS: u64 = 20;
/// Samples in one mono 20 ms frame at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
/// Largest Opus packet accepted from a peer (RFC 6716 allows 1275 bytes per frame).
pub const MAX_PACKET_BYTES: usize = 1275;
