//! The mixer task of a Space: a 20 ms tick on a monotonic clock that never accumulates
//! lateness, feeding the hub.

use crate::metrics::Metrics;
use bytes::Bytes;
use serde::Serialize;
use std::sync::Weak;
use std::time::{Duration, Instant};
use stentor_hub::Hub;
use stentor_media::{FRAME_MS, Mixer, MixerConfig};
use stentor_space::UserId;
use tokio::sync::mpsc;
use tracing::Instrument;

/// What the rest of the server tells a mixer.
#[derive(Debug)]
pub enum MixerInput {
    /// Start ticking (the Space went live).
    Start,
    /// Stop for good (the Space ended).
    Stop,
    /// A speaker joined the stage.
    AddSpeaker(UserId),
    /// A speaker left the stage.
    RemoveSpeaker(UserId),
    /// A speaker was muted (true) or unmuted.
    Mute(UserId, bool),
    /// A packet from a speaker.
    Packet {
        /// The speaker.
        user: UserId,
        /// Their sequence number.
        seq: u32,
        /// The Opus packet.
        packet: Bytes,
        /// When it arrived.
        arrived: Instant,
    },
}

/// What a mixer task tells the Space it mixes for, as it ticks.
pub trait Hooks: Send + Sync + 'static {
    /// The server's metrics.
    fn metrics(&self) -> &Metrics;
    /// A JSON event for every connection of the Space.
    fn broadcast_json(&self, json: &str);
    /// Every 100 ms: time to send timed events that are due (closed reaction windows).
    fn poll_timed(&self);
    /// A frame of the mix went to the hub (an origin also sends it to its edges).
    fn mixed(&self, mix: &stentor_media::MixOutput);
    /// The speakers' levels (dBFS) at frame `seq`, every 100 ms.
    fn levels(&self, seq: u64, levels: &[(stentor_space::UserId, f32)]);
    /// The Space's count of listeners, told every second (edges' included, moderators
    /// listening unseen left out).
    fn listeners(&self) -> usize;
}

const FRAME: Duration = Duration::from_millis(FRAME_MS);
/// How far behind the tick may fall before the clock is re-anchored instead of catching up.
const MAX_CATCH_UP: u32 = 10;

#[derive(Serialize)]
struct Levels {
    event: &'static str,
    levels: Vec<(UserId, f32)>,
}

#[derive(Serialize)]
struct Listeners {
    event: &'static str,
    count: usize,
}

/// Spawns the mixer task; it ends on [`MixerInput::Stop`] or when the Space is dropped.
pub fn spawn(
    id: &str,
    space: Weak<dyn Hooks>,
    config: MixerConfig,
    rx: mpsc::Receiver<MixerInput>,
    hub: Hub,
) {
    tokio::spawn(
        async move {
            let mixer = match Mixer::new(config) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "mixer could not start");
                    return;
                }
            };
            run(space, mixer, rx, &hub).await;
            hub.close();
        }
        .instrument(tracing::info_span!("mixer", space = %id)),
    );
}

async fn run(
    space: Weak<dyn Hooks>,
    mut mixer: Mixer,
    mut rx: mpsc::Receiver<MixerInput>,
    hub: &Hub,
) {
    // Wait to go live, keeping the speaker set up to date meanwhile.
    loop {
        match rx.recv().await {
            None | Some(MixerInput::Stop) => return,
            Some(MixerInput::Start) => break,
            Some(other) => apply(&mut mixer, other),
        }
    }
    let mut origin = tokio::time::Instant::now();
    let mut counted = mixer.jitter_stats();
    let mut ticks: u32 = 0;
    loop {
        let deadline = origin + FRAME * ticks;
        tokio::select! {
            biased;
            input = rx.recv() => match input {
                None | Some(MixerInput::Stop) => return,
                Some(input) => apply(&mut mixer, input),
            },
            _ = tokio::time::sleep_until(deadline) => {
                let started = std::time::Instant::now();
                let mix = match mixer.tick() {
                    Ok(mix) => mix,
                    Err(e) => {
                        tracing::error!(error = %e, "mixer tick failed");
                        return;
                    }
                };
                if ticks == 0 {
                    // The LL-HLS timeline: this frame's slot in wall-clock time (once).
                    hub.hls.anchor(mix.seq, std::time::SystemTime::now());
                }
                hub.publish(&mix);
                ticks += 1;
                let Some(space) = space.upgrade() else { return };
                space.mixed(&mix);
                let published = std::time::Instant::now();
                let metrics = space.metrics();
                metrics.tick_seconds.observe((published - started).as_secs_f64());
                if let Some(arrived) = mix.oldest_arrival {
                    metrics.speaker_to_mix_seconds.observe((published - arrived).as_secs_f64());
                }
                let behind = tokio::time::Instant::now().saturating_duration_since(deadline);
                if behind > FRAME {
                    metrics.ticks_late.inc();
                }
                if behind > FRAME * MAX_CATCH_UP {
                    // A stall (suspended process, overloaded machine): resume from now rather
                    // than sending a burst of catch-up frames, and skip the ticks never mixed
                    // so that the sequence stays in step with the clock (a gap, not a lag).
                    // The next tick is now: `behind` after this one's slot.
                    let skipped = ((behind.as_micros() / FRAME.as_micros()) as u64).saturating_sub(1);
                    mixer.skip(skipped);
                    metrics.ticks_skipped.inc_by(skipped);
                    origin = tokio::time::Instant::now();
                    ticks = 0;
                }
                if mix.seq % 5 == 0 {
                    let levels = Levels { event: "levels", levels: mixer.levels().collect() };
                    space.broadcast_json(&serde_json::to_string(&levels).expect("serializes"));
                    space.levels(mix.seq, &levels.levels);
                    space.poll_timed();
                }
                if mix.seq % 50 == 0 {
                    // Per-speaker counters restart when speakers change; count only growth.
                    let now = mixer.jitter_stats();
                    metrics.concealed.inc_by(now.concealed.saturating_sub(counted.concealed));
                    metrics.late.inc_by(now.late.saturating_sub(counted.late));
                    counted = now;
                    metrics.cadence_ms.set(i64::from(hub.cadence_frames()) * 20);
                    let count = Listeners { event: "listeners", count: space.listeners() };
                    space.broadcast_json(&serde_json::to_string(&count).expect("serializes"));
                }
            }
        }
    }
}

fn apply(mixer: &mut Mixer, input: MixerInput) {
    match input {
        MixerInput::AddSpeaker(user) => {
            if let Err(e) = mixer.add_speaker(user) {
                tracing::error!(error = %e, "could not add a speaker to the mixer");
            }
        }
        MixerInput::RemoveSpeaker(user) => mixer.remove_speaker(user),
        MixerInput::Mute(user, muted) => mixer.set_muted(user, muted),
        MixerInput::Packet {
            user,
            seq,
            packet,
            arrived,
        } => {
            let _ = mixer.push(user, seq, packet, arrived);
        }
        MixerInput::Start | MixerInput::Stop => {}
    }
}
