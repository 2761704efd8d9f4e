//! Recordings after the fact: the replay file (Ogg/Opus) and its HLS VOD rendition, who
//! spoke when, the host's trim and delete, clips of a live Space's last seconds, and the
//! retention sweep. Reads the logs the recorder wrote; keeps what it makes in a [`Storage`].

use crate::error::ApiError;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use stentor_record::replay;
use stentor_record::{Record, Storage, Timeline, writer};

/// Frames per segment of a replay's HLS rendition (2 s).
pub const VOD_FRAMES: usize = 100;
/// Clip lengths allowed, in seconds.
pub const CLIP_SECONDS: std::ops::RangeInclusive<u32> = 30..=120;
/// Audio kept in memory for replays being listened to (an hour of a Space is about 16 MB).
const CACHED_BYTES: usize = 256 << 20;

/// A clip, as stored beside its audio.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Clip {
    /// Its id.
    pub id: String,
    /// The Space it was cut from.
    pub space: String,
    /// The Space's title.
    pub title: String,
    /// Who made it.
    pub by: u64,
    /// Its length in seconds.
    pub seconds: f64,
    /// When, in Unix seconds.
    pub created_at: u64,
}

/// A recording laid out in memory: when its log was written, and its size in bytes.
type Cached = (SystemTime, Arc<Timeline>, usize);

/// The replays and clips of one node.
pub struct Replays {
    logs: PathBuf,
    storage: Arc<dyn Storage>,
    retention: Option<Duration>,
    cache: Mutex<HashMap<String, Cached>>,
    clips: DefaultKeyedRateLimiter<u64>,
    /// One replay file made at a time: a page whose listeners all press play at the end
    /// makes it once.
    making: tokio::sync::Mutex<()>,
}

/// Whether `id` can name a file: Space ids are made of these.
fn safe(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::NotFound("recording"))
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

impl Replays {
    /// Replays of the logs in `logs`, their products in `storage`; clips: `per_minute` per
    /// user.
    pub fn new(
        logs: PathBuf,
        storage: Arc<dyn Storage>,
        retention: Option<Duration>,
        per_minute: u32,
    ) -> Self {
        let per_minute = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        Self {
            logs,
            storage,
            retention,
            cache: Mutex::new(HashMap::new()),
            clips: RateLimiter::keyed(Quota::per_minute(per_minute)),
            making: tokio::sync::Mutex::new(()),
        }
    }

    /// The log of Space `id`.
    pub fn log(&self, id: &str) -> Result<PathBuf, ApiError> {
        safe(id)?;
        Ok(self
            .logs
            .join(format!("{id}.{}", stentor_record::writer::EXTENSION)))
    }

    fn modified(&self, id: &str) -> Result<SystemTime, ApiError> {
        let meta = std::fs::metadata(self.log(id)?).map_err(|_| ApiError::NotFound("recording"))?;
        meta.modified().map_err(internal)
    }

    /// The recording of Space `id` laid out (from memory while its log is unchanged).
    pub async fn timeline(self: &Arc<Self>, id: &str) -> Result<Arc<Timeline>, ApiError> {
        let modified = self.modified(id)?;
        if let Some((at, t, _)) = self.cache.lock().get(id)
            && *at == modified
        {
            return Ok(t.clone());
        }
        let path = self.log(id)?;
        let timeline = blocking(move || {
            let records = writer::read(&path).map_err(internal)?;
            Ok(Arc::new(Timeline::from_records(records)))
        })
        .await?;
        let size = timeline.packets.iter().map(|p| p.len() + 16).sum::<usize>();
        let mut cache = self.cache.lock();
        let held: usize = cache.values().map(|(_, _, n)| n).sum();
        if held + size > CACHED_BYTES {
            cache.clear();
        }
        cache.insert(id.to_owned(), (modified, timeline.clone(), size));
        Ok(timeline)
    }

    /// The replay of Space `id` as an Ogg/Opus file in storage (made again when the log
    /// changed since): its key.
    pub async fn ogg(self: &Arc<Self>, id: &str) -> Result<String, ApiError> {
        let key = format!("replays/{id}.ogg");
        let modified = self.modified(id)?;
        let fresh = || {
            self.storage
                .modified(&key)
                .map(|made| made.is_some_and(|made| made >= modified))
                .map_err(internal)
        };
        if fresh()? {
            return Ok(key);
        }
        let _one = self.making.lock().await;
        if fresh()? {
            return Ok(key);
        }
        let timeline = self.timeline(id).await?;
        let (storage, k) = (self.storage.clone(), key.clone());
        let serial = id
            .bytes()
            .fold(0x5245_504c_u32, |h, b| h.rotate_left(5) ^ u32::from(b));
        blocking(move || {
            let bytes = replay::ogg_file(&timeline.packets, &timeline.title, serial);
            storage.put(&k, &bytes).map_err(internal)
        })
        .await?;
        Ok(key)
    }

    /// The storage products are kept in.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Trims the first `seconds` of Space `id`'s replay (from the start of the recording,
    /// not of the last trim).
    pub async fn trim(&self, id: &str, seconds: f64) -> Result<(), ApiError> {
        if !(0.0..=86_400.0).contains(&seconds) {
            return Err(ApiError::BadRequest(
                "trim_start_secs is 0 to 86 400".into(),
            ));
        }
        let path = self.log(id)?;
        self.modified(id)?;
        let frames = (seconds * 50.0).round() as u64;
        blocking(move || writer::append_closed(&path, &Record::Trim { frames }).map_err(internal))
            .await
    }

    /// Deletes Space `id`'s recording and its replay file (clips made from it stay).
    pub async fn delete(&self, id: &str) -> Result<(), ApiError> {
        let path = self.log(id)?;
        self.modified(id)?;
        self.cache.lock().remove(id);
        let storage = self.storage.clone();
        let key = format!("replays/{id}.ogg");
        blocking(move || {
            std::fs::remove_file(&path).map_err(internal)?;
            storage.delete(&key).map_err(internal)
        })
        .await
    }

    /// A clip of the last `seconds` of Space `id` (titled `title`) made by `user`.
    pub async fn clip(
        &self,
        id: &str,
        title: &str,
        user: u64,
        seconds: u32,
    ) -> Result<Clip, ApiError> {
        if !CLIP_SECONDS.contains(&seconds) {
            return Err(ApiError::BadRequest(format!(
                "a clip is {} to {} seconds",
                CLIP_SECONDS.start(),
                CLIP_SECONDS.end()
            )));
        }
        if let Err(not_until) = self.clips.check_key(&user) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return Err(ApiError::Throttled {
                retry_after: wait.as_secs().max(1),
            });
        }
        let path = self.log(id)?;
        if !path.exists() {
            return Err(ApiError::Conflict("this space is not recorded".into()));
        }
        let clip_id = clip_id();
        let storage = self.storage.clone();
        let (space, title) = (id.to_owned(), title.to_owned());
        blocking(move || {
            let records = writer::read(&path).map_err(internal)?;
            let timeline = Timeline::from_records(records);
            let packets = replay::last_seconds(&timeline.packets, seconds);
            if packets.is_empty() {
                return Err(ApiError::Conflict("nothing recorded yet".into()));
            }
            let serial = u32::from_le_bytes(clip_id.as_bytes()[..4].try_into().expect("4"));
            let bytes = replay::ogg_file(packets, &title, serial);
            storage
                .put(&format!("clips/{clip_id}.ogg"), &bytes)
                .map_err(internal)?;
            let clip = Clip {
                id: clip_id.clone(),
                space,
                title,
                by: user,
                seconds: packets.len() as f64 * 0.02,
                created_at: crate::clock::unix_now(),
            };
            let json = serde_json::to_vec(&clip).map_err(internal)?;
            storage
                .put(&format!("clips/{clip_id}.json"), &json)
                .map_err(internal)?;
            Ok(clip)
        })
        .await
    }

    /// The clip `id`, if there is one.
    pub async fn clip_info(&self, id: &str) -> Result<Clip, ApiError> {
        safe(id)?;
        let storage = self.storage.clone();
        let key = format!("clips/{id}.json");
        let bytes = blocking(move || storage.get(&key).map_err(internal))
            .await?
            .ok_or(ApiError::NotFound("clip"))?;
        serde_json::from_slice(&bytes).map_err(internal)
    }

    /// Removes recordings, replay files and clips not written for longer than the retention
    /// (run now and then); how many files went.
    pub fn sweep(&self) -> usize {
        let Some(keep) = self.retention else { return 0 };
        let Some(cutoff) = SystemTime::now().checked_sub(keep) else {
            return 0;
        };
        let mut removed = 0;
        let dirs = [
            self.logs.clone(),
            self.logs.join("replays"),
            self.logs.join("clips"),
        ];
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m < cutoff);
                if old && entry.path().is_file() && std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "recordings past their retention removed");
        }
        removed
    }
}

/// A new clip id: 12 characters of `a-z 0-9`.
fn clip_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
