//! `stentor listen`: record what a WebSocket listener hears into an Ogg/Opus file.

use crate::client::{Api, parse_mix_frame};
use anyhow::bail;
use futures_util::StreamExt;
use std::path::Path;
use stentor_media::FRAME_SAMPLES;
use stentor_media::ogg::{self, FLAG_EOS, PageWriter};
use tokio_tungstenite::tungstenite::Message;

/// What a listener received.
#[derive(Debug, Default, Clone)]
pub struct Recording {
    /// Mix sequence number and Opus packet of each frame, in arrival order.
    pub frames: Vec<(u64, Vec<u8>)>,
    /// JSON events received, in order.
    pub events: Vec<serde_json::Value>,
}

impl Recording {
    /// Frames missing between the first and the last received (0 means continuous).
    pub fn gaps(&self) -> u64 {
        self.frames
            .windows(2)
            .map(|w| w[1].0.saturating_sub(w[0].0 + 1))
            .sum()
    }

    /// Writes the frames as an Ogg/Opus file that starts at granule 0.
    pub fn write_ogg(&self, path: &Path, title: &str) -> std::io::Result<()> {
        let mut writer = PageWriter::new(0x6c697374);
        let mut out = Vec::new();
        for page in ogg::opus_header_pages(&mut writer, title) {
            out.extend_from_slice(&page);
        }
        for (i, (_, packet)) in self.frames.iter().enumerate() {
            let granule = u64::from(ogg::PRE_SKIP) + (i as u64 + 1) * FRAME_SAMPLES as u64;
            let flags = if i + 1 == self.frames.len() {
                FLAG_EOS
            } else {
                0
            };
            out.extend_from_slice(&writer.page(&[packet], granule, flags));
        }
        std::fs::write(path, out)
    }
}

/// Listens on the WebSocket until `frames` mix frames have arrived.
pub async fn record(api: &Api, space: &str, frames: usize) -> anyhow::Result<Recording> {
    let ticket = api.ticket(space).await?;
    let (mut ws, hello) = api.connect(space, &ticket.ticket).await?;
    let mut rec = Recording {
        events: vec![hello],
        ..Recording::default()
    };
    while rec.frames.len() < frames {
        match ws.next().await {
            None => bail!(
                "the server closed the stream after {} frames",
                rec.frames.len()
            ),
            Some(msg) => match msg? {
                Message::Binary(data) => {
                    if let Some((seq, packet)) = parse_mix_frame(&data) {
                        rec.frames.push((seq, packet.to_vec()));
                    }
                }
                Message::Text(t) => rec.events.push(serde_json::from_str(t.as_str())?),
                Message::Close(frame) => bail!("closed by the server: {frame:?}"),
                _ => {}
            },
        }
    }
    Ok(rec)
}

/// `stentor listen`: records `seconds` of a Space into `out`.
pub async fn run(api: &Api, space: &str, seconds: f64, out: &Path) -> anyhow::Result<()> {
    let frames = (seconds * 50.0).ceil() as usize;
    let rec = record(api, space, frames).await?;
    rec.write_ogg(out, space)?;
    eprintln!(
        "wrote {} ({} frames, {:.1} s, {} missing)",
        out.display(),
        rec.frames.len(),
        rec.frames.len() as f64 * 0.02,
        rec.gaps()
    );
    Ok(())
}
