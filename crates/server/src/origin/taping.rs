//! A live Space's recording on its origin: opened at the first frame mixed while recording
//! is on, every mix frame and the speakers' levels appended, stopped at the end or when the
//! host turns it off; a recording that fails (a full disk) is told to the Space once, and the
//! Space goes on.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;
use stentor_media::MixOutput;
use stentor_record::{Record, Recorder, Recording, RecordingState};
use stentor_space::UserId;

/// Levels below this (dBFS) are silence: not part of who spoke when.
const HEARD_DB: f32 = -50.0;

/// One Space's recording, if its node records.
pub struct Taping {
    recorder: Option<Recorder>,
    name: String,
    /// Whether the Space is recorded now (its host's switch), read every tick.
    on: AtomicBool,
    current: Mutex<Current>,
}

#[derive(Default)]
struct Current {
    recording: Option<Recording>,
    last_seq: u64,
    told: bool,
}

/// What the Space should tell its participants about its recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Told {
    /// The recording stopped by itself: why.
    Failed(String),
}

impl Taping {
    /// The recording of Space `id` made by `recorder` (none: this node does not record).
    pub fn new(recorder: Option<Recorder>, id: &str, on: bool) -> Self {
        Self {
            recorder,
            name: id.to_owned(),
            on: AtomicBool::new(on),
            current: Mutex::new(Current::default()),
        }
    }

    /// The host turned the recording on or off (it follows at the next frame).
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// A frame was mixed. Returns what to tell, once, when the recording failed.
    pub fn frame(&self, title: &str, mix: &MixOutput) -> Option<Told> {
        let recorder = self.recorder.as_ref()?;
        let on = self.on.load(Ordering::Relaxed);
        let mut c = self.current.lock();
        c.last_seq = mix.seq;
        if !on {
            if let Some(rec) = c.recording.take() {
                rec.append(&Record::Stop { seq: mix.seq });
                rec.stop();
            }
            return None;
        }
        if c.recording.is_none() && !c.told {
            let rec = recorder.open(&self.name);
            let wall_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            rec.append(&Record::Start {
                seq: mix.seq,
                wall_ms,
                title: title.to_owned(),
            });
            c.recording = Some(rec);
        }
        let rec = c.recording.as_ref()?;
        rec.append(&Record::Audio {
            seq: mix.seq,
            packet: mix.packet.clone(),
        });
        if let RecordingState::Failed(why) = rec.state() {
            c.recording = None;
            c.told = true;
            return Some(Told::Failed(why));
        }
        None
    }

    /// The speakers' levels at frame `seq`, in dBFS.
    pub fn levels(&self, seq: u64, levels: &[(UserId, f32)]) {
        let c = self.current.lock();
        let Some(rec) = c.recording.as_ref() else {
            return;
        };
        let heard: Vec<(u64, u8)> = levels
            .iter()
            .filter(|(_, db)| *db > HEARD_DB)
            .map(|(user, db)| (*user, ((db - HEARD_DB) * 2.0).clamp(1.0, 100.0) as u8))
            .collect();
        rec.append(&Record::Levels { seq, levels: heard });
    }

    /// The Space ended: the recording is closed.
    pub fn stop(&self) {
        let mut c = self.current.lock();
        let seq = c.last_seq;
        if let Some(rec) = c.recording.take() {
            rec.append(&Record::Stop { seq });
            rec.stop();
        }
    }
}
