//! `stentor speak`: publish a tone or a file to a Space in real time.

use crate::client::{Api, SpaceSocket, send_packet};
use anyhow::{Context, bail};
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use stentor_media::ogg::{OggReader, parse_opus_head};
use stentor_media::signal::Tone;
use stentor_media::{Encoder, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE};
use tokio_tungstenite::tungstenite::Message;

/// What to publish.
#[derive(Debug, Clone)]
pub enum Source {
    /// A sine tone at this frequency.
    Tone(f32),
    /// A WAV (any rate, mono or stereo) or Ogg/Opus (20 ms packets) file.
    File(PathBuf),
}

/// Packets of 20 ms Opus, from a tone or a file.
pub struct Packets {
    inner: Inner,
    encoder: Encoder,
}

enum Inner {
    Tone(Tone),
    Pcm(std::vec::IntoIter<f32>),
    Opus(std::vec::IntoIter<Vec<u8>>),
}

impl Packets {
    /// Opens a source at the given bitrate.
    pub fn open(source: &Source, bitrate: u32) -> anyhow::Result<Self> {
        let inner = match source {
            Source::Tone(hz) => Inner::Tone(Tone::new(*hz, 0.3)),
            Source::File(path) => match path.extension().and_then(|e| e.to_str()) {
                Some("wav") => Inner::Pcm(read_wav(path)?.into_iter()),
                Some("ogg" | "opus") => Inner::Opus(read_ogg(path)?.into_iter()),
                _ => bail!("{}: expected a .wav, .ogg or .opus file", path.display()),
            },
        };
        Ok(Self {
            inner,
            encoder: Encoder::new(bitrate)?,
        })
    }

    /// The next packet, or `None` at the end of a file.
    pub fn next_packet(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let mut pcm = [0f32; FRAME_SAMPLES];
        match &mut self.inner {
            Inner::Tone(t) => t.fill(&mut pcm),
            Inner::Pcm(samples) => {
                let mut n = 0;
                for (slot, s) in pcm.iter_mut().zip(samples.by_ref()) {
                    *slot = s;
                    n += 1;
                }
                if n == 0 {
                    return Ok(None);
                }
            }
            Inner::Opus(packets) => return Ok(packets.next()),
        }
        Ok(Some(self.encoder.encode(&pcm)?.to_vec()))
    }
}

/// Reads a WAV file as mono 48 kHz samples (downmixed and linearly resampled if needed).
pub fn read_wav(path: &Path) -> anyhow::Result<Vec<f32>> {
    let mut reader = hound::WavReader::open(path).with_context(|| format!("{}", path.display()))?;
    let spec = reader.spec();
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()?
        }
    };
    let channels = usize::from(spec.channels.max(1));
    let mono: Vec<f32> = interleaved
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / channels as f32)
        .collect();
    if spec.sample_rate == SAMPLE_RATE {
        return Ok(mono);
    }
    let ratio = f64::from(spec.sample_rate) / f64::from(SAMPLE_RATE);
    let out_len = (mono.len() as f64 / ratio) as usize;
    Ok((0..out_len)
        .map(|i| {
            let pos = i as f64 * ratio;
            let j = pos as usize;
            let frac = (pos - j as f64) as f32;
            let a = mono[j];
            let b = *mono.get(j + 1).unwrap_or(&a);
            a + (b - a) * frac
        })
        .collect())
}

/// Reads the audio packets of an Ogg/Opus file (they must be 20 ms each).
pub fn read_ogg(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let mut reader = OggReader::new();
    reader.feed(&bytes);
    let mut packets = Vec::new();
    while let Some(p) = reader.next_packet()? {
        packets.push(p.data.to_vec());
    }
    if packets.len() < 2 {
        bail!("{}: not an Ogg/Opus file", path.display());
    }
    parse_opus_head(&packets[0])?;
    let audio = packets.split_off(2);
    for p in &audio {
        stentor_media::opus::validate_packet(p).context("the file must hold 20 ms Opus packets")?;
    }
    Ok(audio)
}

/// Publishes `source` on an open speaker socket in real time for at most `seconds`.
pub async fn publish(
    ws: &mut SpaceSocket,
    source: &Source,
    seconds: Option<f64>,
) -> anyhow::Result<u32> {
    let mut packets = Packets::open(source, 48_000)?;
    let frame = Duration::from_millis(FRAME_MS);
    let limit = seconds.map(|s| (s * 1000.0 / FRAME_MS as f64) as u32);
    let start = tokio::time::Instant::now();
    let mut seq = 0u32;
    while limit.is_none_or(|l| seq < l) {
        let Some(packet) = packets.next_packet()? else {
            break;
        };
        tokio::time::sleep_until(start + frame * seq).await;
        send_packet(ws, seq, &packet).await?;
        seq += 1;
        // Drain what the server sent (events, forwarded audio) so its buffers never fill;
        // a close from the server ends publishing with its reason.
        while let Some(Some(msg)) = futures_util::FutureExt::now_or_never(ws.next()) {
            if let Message::Close(frame) = msg? {
                bail!("the server closed the connection: {frame:?}");
            }
        }
    }
    Ok(seq)
}

/// `stentor speak`: with the API signed in (a session token), takes a ticket and publishes.
pub async fn run(
    api: &Api,
    space: &str,
    source: Source,
    seconds: Option<f64>,
) -> anyhow::Result<()> {
    let ticket = api.ticket(space).await?;
    if !matches!(ticket.role.as_str(), "speaker" | "co_host" | "host") {
        bail!(
            "you are a {} in this space: only speakers can publish",
            ticket.role
        );
    }
    let (mut ws, _) = api.connect(space, &ticket.ticket).await?;
    eprintln!(
        "publishing to {space} as user {} ({})",
        ticket.user, ticket.role
    );
    let sent = publish(&mut ws, &source, seconds).await?;
    eprintln!("sent {sent} packets ({:.1} s)", f64::from(sent) * 0.02);
    Ok(())
}
