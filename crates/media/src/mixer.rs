//! The per-Space mixer: one frame per active speaker each 20 ms tick, summed, limited and
//! encoded once for every listener.
//!
//! Driving contract: the shell owns one [`Mixer`] per live Space. It calls
//! [`Mixer::add_speaker`] / [`Mixer::remove_speaker`] / [`Mixer::set_muted`] as roles change,
//! [`Mixer::push`] for every packet a speaker sends (with the instant it arrived), and
//! [`Mixer::tick`] once per 20 ms on a clock that does not accumulate lateness. `tick` returns
//! the encoded mix and the speakers' levels; nothing here reads a clock or touches a socket.

use crate::FRAME_SAMPLES;
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout, Pushed};
use crate::level::LevelMeter;
use crate::opus::{Decoder, Encoder, OpusError, validate_packet};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::Instant;

/// Identifies a speaker within one Space.
pub type SpeakerId = u64;

/// Settings of a mixer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixerConfig {
    /// Bitrate of the encoded mix in bits per second (default 32 000).
    pub bitrate: u32,
    /// Jitter buffer settings for every speaker.
    pub jitter: JitterConfig,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            bitrate: 32_000,
            jitter: JitterConfig::default(),
        }
    }
}

/// Why a packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The sender is not a speaker of this mix.
    #[error("not a speaker")]
    NotASpeaker,
    /// The packet is not a valid 20 ms Opus packet.
    #[error(transparent)]
    Invalid(#[from] OpusError),
}

/// One tick of mixed audio.
#[derive(Debug, Clone)]
pub struct MixOutput {
    /// Tick number since the mixer was created (0, 1, 2, ...); its media time is `seq * 20 ms`.
    pub seq: u64,
    /// The encoded Opus packet of the mix.
    pub packet: Bytes,
    /// Speakers that contributed audio (a packet or concealment) to this tick.
    pub active: usize,
    /// Arrival instant of the earliest-arrived packet mixed in this tick, for latency metrics.
    pub oldest_arrival: Option<Instant>,
}

struct Channel {
    jitter: JitterBuffer<(Bytes, Instant)>,
    decoder: Decoder,
    meter: LevelMeter,
    muted: bool,
}

/// The mixer of one Space.
pub struct Mixer {
    config: MixerConfig,
    speakers: BTreeMap<SpeakerId, Channel>,
    encoder: Encoder,
    /// While nobody sounds: the encoder's last packet of silence, and whether it has settled
    /// (the same bytes twice running), after which it is sent again without encoding.
    settled: Option<(Bytes, bool)>,
    /// Frames the encoder ran for.
    encoded: u64,
    seq: u64,
    sum: [f32; FRAME_SAMPLES],
    pcm: [f32; FRAME_SAMPLES],
}

impl Mixer {
    /// A mixer with no speakers.
    pub fn new(config: MixerConfig) -> Result<Self, OpusError> {
        Ok(Self {
            config,
            speakers: BTreeMap::new(),
            encoder: Encoder::new(config.bitrate)?,
            settled: None,
            encoded: 0,
            seq: 0,
            sum: [0.0; FRAME_SAMPLES],
            pcm: [0.0; FRAME_SAMPLES],
        })
    }

    /// Adds a speaker (no effect if present).
    pub fn add_speaker(&mut self, id: SpeakerId) -> Result<(), OpusError> {
        if !self.speakers.contains_key(&id) {
            let channel = Channel {
                jitter: JitterBuffer::new(self.config.jitter),
                decoder: Decoder::new()?,
                meter: LevelMeter::default(),
                muted: false,
            };
            self.speakers.insert(id, channel);
        }
        Ok(())
    }

    /// Removes a speaker and drops what it had buffered.
    pub fn remove_speaker(&mut self, id: SpeakerId) {
        self.speakers.remove(&id);
    }

    /// Mutes or unmutes a speaker. A muted speaker's buffered audio is dropped at once, so
    /// the next tick no longer carries it.
    pub fn set_muted(&mut self, id: SpeakerId, muted: bool) {
        if let Some(ch) = self.speakers.get_mut(&id) {
            ch.muted = muted;
            if muted {
                ch.jitter.clear();
            }
        }
    }

    /// Whether `id` is a speaker of this mix.
    pub fn has_speaker(&self, id: SpeakerId) -> bool {
        self.speakers.contains_key(&id)
    }

    /// Takes one packet from a speaker. Packets from a muted speaker are accepted and dropped.
    pub fn push(
        &mut self,
        id: SpeakerId,
        seq: u32,
        packet: Bytes,
        arrived: Instant,
    ) -> Result<Pushed, PushError> {
        let ch = self.speakers.get_mut(&id).ok_or(PushError::NotASpeaker)?;
        validate_packet(&packet)?;
        if ch.muted {
            return Ok(Pushed::Late);
        }
        Ok(ch.jitter.push(seq, (packet, arrived)))
    }

    /// Mixes and encodes one 20 ms frame.
    pub fn tick(&mut self) -> Result<MixOutput, OpusError> {
        self.sum.fill(0.0);
        let mut active = 0;
        let mut oldest_arrival: Option<Instant> = None;
        for ch in self.speakers.values_mut() {
            let played = match ch.jitter.pop() {
                Playout::Packet((packet, arrived)) => {
                    oldest_arrival = Some(oldest_arrival.map_or(arrived, |o| o.min(arrived)));
                    if ch.decoder.decode(&packet, &mut self.pcm).is_err() {
                        ch.decoder.conceal(&mut self.pcm);
                    }
                    true
                }
                Playout::Conceal => {
                    ch.decoder.conceal(&mut self.pcm);
                    true
                }
                Playout::Silent => false,
            };
            if played {
                active += 1;
                ch.meter.update(&self.pcm);
                for (s, x) in self.sum.iter_mut().zip(self.pcm.iter()) {
                    *s += x;
                }
            } else {
                ch.meter.update(&[]);
            }
        }
        let packet = if active == 0 {
            self.silent()?
        } else {
            self.settled = None;
            for s in &mut self.sum {
                *s = soft_limit(*s);
            }
            self.encode_sum()?
        };
        let seq = self.seq;
        self.seq += 1;
        Ok(MixOutput {
            seq,
            packet,
            active,
            oldest_arrival,
        })
    }

    /// A tick with nobody sounding: the encoder runs until its silence settles, then its last
    /// packet is sent again at no cost. The stream stays the one encoder's, so that listeners'
    /// decoders hear no seam when sound comes and goes.
    fn silent(&mut self) -> Result<Bytes, OpusError> {
        if let Some((packet, true)) = &self.settled {
            return Ok(packet.clone());
        }
        self.sum.fill(0.0);
        let packet = self.encode_sum()?;
        let same = self
            .settled
            .as_ref()
            .is_some_and(|(last, _)| *last == packet);
        self.settled = Some((packet.clone(), same));
        Ok(packet)
    }

    fn encode_sum(&mut self) -> Result<Bytes, OpusError> {
        self.encoded += 1;
        Ok(Bytes::copy_from_slice(self.encoder.encode(&self.sum)?))
    }

    /// Frames the encoder has run for (a tick with nobody sounding runs none once its
    /// silence has settled).
    pub fn encoded(&self) -> u64 {
        self.encoded
    }

    /// Jitter buffer counters of the current speakers, summed.
    pub fn jitter_stats(&self) -> JitterStats {
        self.speakers
            .values()
            .fold(JitterStats::default(), |mut sum, ch| {
                let s = ch.jitter.stats();
                sum.received += s.received;
                sum.late += s.late;
                sum.duplicate += s.duplicate;
                sum.concealed += s.concealed;
                sum.overflow_dropped += s.overflow_dropped;
                sum
            })
    }

    /// Each speaker's current level in dBFS, in speaker order.
    pub fn levels(&self) -> impl Iterator<Item = (SpeakerId, f32)> + '_ {
        self.speakers
            .iter()
            .map(|(id, ch)| (*id, ch.meter.level_db()))
    }

    /// The number of the next tick.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// Skips `frames` ticks that were never mixed (the process stalled): the sequence keeps
    /// counting 20 ms of wall-clock time, so that what listeners and the LL-HLS timeline see
    /// as a gap is one.
    pub fn skip(&mut self, frames: u64) {
        self.seq += frames;
    }
}

/// Limits a sample to (-1, 1) without a hard clip: linear up to 0.8, then a tanh knee.
fn soft_limit(x: f32) -> f32 {
    const KNEE: f32 = 0.8;
    let a = x.abs();
    if a <= KNEE {
        x
    } else {
        let over = (a - KNEE) / (1.0 - KNEE);
        x.signum() * (KNEE + (1.0 - KNEE) * over.tanh())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Tone, goertzel_power};

    struct Talker {
        tone: Tone,
        enc: Encoder,
        seq: u32,
    }

    impl Talker {
        fn new(hz: f32) -> Self {
            Self {
                tone: Tone::new(hz, 0.3),
                enc: Encoder::new(48_000).unwrap(),
                seq: 0,
            }
        }
        fn next(&mut self) -> (u32, Bytes) {
            let mut pcm = [0f32; FRAME_SAMPLES];
            self.tone.fill(&mut pcm);
            self.seq += 1;
            (
                self.seq,
                Bytes::copy_from_slice(self.enc.encode(&pcm).unwrap()),
            )
        }
    }

    /// Runs `ticks` ticks with both talkers sending, muting speaker 2 at `mute_at`, and
    /// returns the decoded mix.
    fn run(ticks: usize, mute_at: Option<usize>) -> Vec<f32> {
        let now = Instant::now();
        let mut mixer = Mixer::new(MixerConfig::default()).unwrap();
        mixer.add_speaker(1).unwrap();
        mixer.add_speaker(2).unwrap();
        let (mut a, mut b) = (Talker::new(440.0), Talker::new(1000.0));
        let mut dec = Decoder::new().unwrap();
        let mut out = Vec::new();
        let mut pcm = [0f32; FRAME_SAMPLES];
        for t in 0..ticks {
            if Some(t) == mute_at {
                mixer.set_muted(2, true);
            }
            let (sa, pa) = a.next();
            let (sb, pb) = b.next();
            mixer.push(1, sa, pa, now).unwrap();
            mixer.push(2, sb, pb, now).unwrap();
            let mix = mixer.tick().unwrap();
            assert_eq!(mix.seq, t as u64);
            dec.decode(&mix.packet, &mut pcm).unwrap();
            out.extend_from_slice(&pcm);
        }
        out
    }

    #[test]
    fn an_empty_stage_costs_no_encode_and_sounds_silent_then_speech_is_encoded() {
        let now = Instant::now();
        let mut mixer = Mixer::new(MixerConfig::default()).unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut pcm = [0f32; FRAME_SAMPLES];
        for _ in 0..100 {
            let mix = mixer.tick().unwrap();
            assert_eq!(mix.active, 0);
            dec.decode(&mix.packet, &mut pcm).unwrap();
            assert!(pcm.iter().all(|x| x.abs() < 1e-4), "not silent");
        }
        let settling = mixer.encoded();
        assert!(
            settling <= 5,
            "silence encoded {settling} times in 100 ticks"
        );
        // A speaker on stage who sends nothing costs nothing either.
        mixer.add_speaker(1).unwrap();
        mixer.tick().unwrap();
        assert_eq!(mixer.encoded(), settling);
        // Speech is encoded, and decodes as the tone it is.
        let mut talker = Talker::new(440.0);
        let mut out = Vec::new();
        for _ in 0..50 {
            let (seq, packet) = talker.next();
            mixer.push(1, seq, packet, now).unwrap();
            let mix = mixer.tick().unwrap();
            dec.decode(&mix.packet, &mut pcm).unwrap();
            out.extend_from_slice(&pcm);
        }
        assert!(mixer.encoded() >= 40, "{}", mixer.encoded());
        let tail = &out[out.len() - 9600..];
        assert!(goertzel_power(tail, 440.0) > 100.0 * goertzel_power(tail, 1000.0));
        // The speaker stops: the mix fades to silence without a seam (no click where the
        // encoder stops running), and soon costs nothing again.
        let peak = tail.iter().fold(0f32, |m, x| m.max(x.abs()));
        let mut after = Vec::new();
        let mut at_60 = 0;
        for i in 0..100 {
            if i == 60 {
                at_60 = mixer.encoded();
            }
            let mix = mixer.tick().unwrap();
            dec.decode(&mix.packet, &mut pcm).unwrap();
            after.extend_from_slice(&pcm);
        }
        let loudest = after.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(
            loudest <= peak * 1.05,
            "a click of {loudest} after speech of {peak}"
        );
        assert!(
            after[after.len() / 2..].iter().all(|x| x.abs() < 1e-3),
            "not silent"
        );
        assert_eq!(mixer.encoded(), at_60, "silence still encoded once settled");
    }

    #[test]
    fn both_speakers_are_heard_at_equal_level() {
        let out = run(100, None);
        let tail = &out[out.len() / 2..];
        let p440 = goertzel_power(tail, 440.0);
        let p1000 = goertzel_power(tail, 1000.0);
        let ratio_db = 10.0 * (p440 / p1000).log10();
        assert!(ratio_db.abs() < 3.0, "440 vs 1000: {ratio_db} dB");
        assert!(p440 > 0.01, "{p440}");
    }

    #[test]
    fn muted_speaker_is_absent_from_the_mix_within_a_few_ticks() {
        let out = run(100, Some(50));
        // Opus delay is a few ms; allow 3 ticks (60 ms) after the mute, then measure.
        let after = &out[53 * FRAME_SAMPLES..];
        let p440 = goertzel_power(after, 440.0);
        let p1000 = goertzel_power(after, 1000.0);
        assert!(p440 > 0.01, "{p440}");
        assert!(
            p1000 < p440 / 1000.0,
            "1000 Hz still there: {p1000} vs {p440}"
        );
    }

    #[test]
    fn the_limiter_keeps_a_loud_sum_inside_full_scale() {
        for x in [-10.0f32, -1.0, -0.5, 0.0, 0.5, 0.9, 1.5, 10.0] {
            let y = soft_limit(x);
            assert!(y.abs() <= 1.0);
            assert_eq!(y.signum(), x.signum());
        }
        assert_eq!(soft_limit(0.5), 0.5);
    }

    #[test]
    fn packets_from_non_speakers_and_garbage_are_refused() {
        let mut mixer = Mixer::new(MixerConfig::default()).unwrap();
        let now = Instant::now();
        assert_eq!(
            mixer.push(7, 0, Bytes::from_static(&[0xf8, 0xff, 0xfe]), now),
            Err(PushError::NotASpeaker)
        );
        mixer.add_speaker(7).unwrap();
        assert!(matches!(
            mixer.push(7, 0, Bytes::new(), now),
            Err(PushError::Invalid(_))
        ));
    }
}
