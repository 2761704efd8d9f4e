//! `stentor demo`: the server plus a live Space `demo` with a synthetic speaker.

use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use stentor_media::signal::Tone;
use stentor_media::{Encoder, FRAME_MS, FRAME_SAMPLES};
use stentor_server::{AppState, LiveSpace, unix_now};
use stentor_space::{Command, Lifecycle, UserId};
use stentor_store::SpaceRecord;

/// Id of the demo Space.
pub const DEMO_SPACE: &str = "demo";
const DEMO_HOST: &str = "demo_host";

/// Makes sure the demo Space exists and is live; returns it and its host.
pub async fn prepare(state: &AppState) -> anyhow::Result<(Arc<LiveSpace>, UserId)> {
    let now = unix_now() as i64;
    let host = match state.store.user_with_hash(DEMO_HOST).await? {
        Some((user, _)) => user,
        // "!" is not a valid argon2 hash: nobody can sign in as the demo host.
        None => state.store.create_user(DEMO_HOST, "!", now).await?,
    };
    match state.store.space(DEMO_SPACE).await? {
        None => {
            let record = SpaceRecord {
                id: DEMO_SPACE.into(),
                host_id: host.id,
                title: "stentor demo".into(),
                state: "scheduled".into(),
                starts_at: None,
                created_at: now,
            };
            state.spaces.create(record).await?;
        }
        Some(r) if r.state == "ended" => {
            state
                .store
                .set_space_state(DEMO_SPACE, "scheduled", now)
                .await?;
        }
        Some(_) => {}
    }
    let space = state
        .spaces
        .get(DEMO_SPACE)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if space.with_domain(|d| d.lifecycle()) == Lifecycle::Scheduled {
        space
            .run_command(host.id, Command::Start)
            .await
            .context("starting the demo")?;
    }
    Ok((space, host.id))
}

/// A short melody with a speech-like envelope: notes of 300 ms with 100 ms pauses.
struct Melody {
    tone: Tone,
    frame: u64,
}

const NOTES: [f32; 6] = [440.0, 554.37, 659.25, 880.0, 659.25, 554.37];
const FRAMES_PER_NOTE: u64 = 20;
const SOUNDING_FRAMES: u64 = 15;

impl Melody {
    fn fill(&mut self, pcm: &mut [f32; FRAME_SAMPLES]) {
        let note = (self.frame / FRAMES_PER_NOTE) as usize % NOTES.len();
        let within = self.frame % FRAMES_PER_NOTE;
        self.tone.set_frequency(NOTES[note]);
        self.tone.fill(pcm);
        let gain = if within < SOUNDING_FRAMES {
            // Rise over 2 frames, fall over the last 5.
            let rise = ((within + 1) as f32 / 2.0).min(1.0);
            let fall = ((SOUNDING_FRAMES - within) as f32 / 5.0).min(1.0);
            rise.min(fall)
        } else {
            0.0
        };
        pcm.iter_mut().for_each(|s| *s *= gain);
        self.frame += 1;
    }
}

/// Publishes the melody as `user` every 20 ms until the Space stops accepting it.
pub fn spawn_speaker(space: Arc<LiveSpace>, user: UserId) {
    tokio::spawn(async move {
        let mut encoder = match Encoder::new(48_000) {
            Ok(e) => e,
            Err(e) => return tracing::error!(error = %e, "demo speaker"),
        };
        let mut melody = Melody {
            tone: Tone::new(NOTES[0], 0.3),
            frame: 0,
        };
        let start = tokio::time::Instant::now();
        let frame = Duration::from_millis(FRAME_MS);
        for seq in 0u32.. {
            tokio::time::sleep_until(start + frame * seq).await;
            let mut pcm = [0f32; FRAME_SAMPLES];
            melody.fill(&mut pcm);
            let Ok(packet) = encoder.encode(&pcm) else {
                return;
            };
            let packet = bytes::Bytes::copy_from_slice(packet);
            if space
                .ingest(user, seq, packet, std::time::Instant::now())
                .is_err()
            {
                tracing::info!("demo speaker stops: the space no longer takes its audio");
                return;
            }
        }
    });
}
