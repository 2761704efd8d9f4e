//! Mouth-to-listener latency through a server, measured with audio markers: a speaker sends
//! silence with a loud 20 ms burst every few frames, a WebSocket listener decodes the mix and
//! notes when each burst arrives. On loopback this is the server's latency from a speaker's
//! frame arriving to the mixed frame leaving for a listener.

use crate::client::{Api, parse_mix_frame, send_packet};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stentor_media::signal::{Tone, rms};
use stentor_media::{Decoder, Encoder, FRAME_MS, FRAME_SAMPLES};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

/// Measured latencies, sorted.
#[derive(Debug, Clone, Default)]
pub struct LatencyReport {
    /// One per marker that arrived.
    pub samples: Vec<Duration>,
    /// Markers sent.
    pub sent: usize,
}

impl LatencyReport {
    /// The `q` quantile (0 to 1), nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::MAX;
        }
        let rank = ((q * self.samples.len() as f64).ceil() as usize).clamp(1, self.samples.len());
        self.samples[rank - 1]
    }
}

/// Sends markers for `seconds` as the signed-in `speaker` (who must be on stage in `space`),
/// one every `every` frames, while `background` other listeners also receive the mix.
pub async fn measure(
    speaker: &Api,
    space: &str,
    seconds: f64,
    every: u32,
    background: usize,
) -> anyhow::Result<LatencyReport> {
    let anon = Api::new(speaker.base());
    let mut others = Vec::new();
    for _ in 0..background {
        let ticket = anon.ticket(space).await?;
        let (mut ws, _) = anon.connect(space, &ticket.ticket).await?;
        others.push(tokio::spawn(async move {
            while let Some(Ok(_)) = ws.next().await {}
        }));
    }
    let ticket = anon.ticket(space).await?;
    let (mut listener, _) = anon.connect(space, &ticket.ticket).await?;
    let ticket = speaker.ticket(space).await?;
    let (mut talker, _) = speaker.connect(space, &ticket.ticket).await?;

    let sent_at: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let frames = (seconds * 1000.0 / FRAME_MS as f64) as u32;
    let sending = {
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let mut encoder = Encoder::new(48_000)?;
            let mut tone = Tone::new(1000.0, 0.5);
            let start = tokio::time::Instant::now();
            for seq in 0..frames {
                let mut pcm = [0f32; FRAME_SAMPLES];
                if seq % every == every / 2 {
                    tone.fill(&mut pcm);
                }
                let packet = encoder.encode(&pcm)?.to_vec();
                tokio::time::sleep_until(start + Duration::from_millis(FRAME_MS) * seq).await;
                if seq % every == every / 2 {
                    sent_at.lock().await.push(Instant::now());
                }
                send_packet(&mut talker, seq, &packet).await?;
                while let Some(Some(_)) = futures_util::FutureExt::now_or_never(talker.next()) {}
            }
            anyhow::Ok(())
        })
    };

    let mut onsets = Vec::new();
    let mut decoder = Decoder::new()?;
    let mut pcm = [0f32; FRAME_SAMPLES];
    let mut loud = false;
    let end = tokio::time::Instant::now() + Duration::from_secs_f64(seconds + 0.5);
    while let Ok(Some(msg)) = tokio::time::timeout_at(end, listener.next()).await {
        if let Message::Binary(data) = msg? {
            let now = Instant::now();
            let Some((_, packet)) = parse_mix_frame(&data) else {
                continue;
            };
            decoder.decode(packet, &mut pcm)?;
            let is_loud = rms(&pcm) > 0.05;
            if is_loud && !loud {
                onsets.push(now);
            }
            loud = is_loud;
        }
    }
    sending.await??;
    for o in others {
        o.abort();
    }
    let sent = sent_at.lock().await.clone();
    // Each onset belongs to the last marker sent before it.
    let mut samples: Vec<Duration> = onsets
        .iter()
        .filter_map(|onset| {
            let sent = sent.iter().rev().find(|s| *s <= onset)?;
            Some(onset.duration_since(*sent))
        })
        .collect();
    samples.sort();
    Ok(LatencyReport {
        samples,
        sent: sent.len(),
    })
}
