//! The thread that writes every Space's recording log: a bounded queue in, one file per
//! Space, synced at least once a second. Nothing waits on the disk: a full queue drops the
//! record (counted), and a write that fails (a full disk) stops that recording cleanly while
//! the Space goes on.

use crate::log::{MAGIC, Reader, Record, encode};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// How often every open log is flushed and synced to disk.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
/// The file name ending of a recording log.
pub const EXTENSION: &str = "srec";

/// Where a recording stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingState {
    /// Frames are being written.
    Recording,
    /// Stopped on purpose.
    Stopped,
    /// Stopped by an error (a full disk, a missing directory): the reason.
    Failed(String),
}

#[derive(Debug)]
struct Shared {
    state: Mutex<RecordingState>,
    dropped: AtomicU64,
}

impl Shared {
    fn fail(&self, why: String) {
        let mut state = self.state.lock();
        if *state == RecordingState::Recording {
            tracing::error!(reason = %why, "a recording stopped");
            *state = RecordingState::Failed(why);
        }
    }
}

enum Job {
    Open(u64, PathBuf, Arc<Shared>),
    Append(u64, Vec<u8>),
    Close(u64),
}

/// Counters of the writer, for metrics.
#[derive(Debug, Default)]
pub struct RecorderStats {
    /// Bytes written to recording logs.
    pub bytes: AtomicU64,
    /// Records dropped because the queue was full (the disk was slower than the mixers).
    pub dropped: AtomicU64,
    /// Recordings stopped by an error.
    pub failed: AtomicU64,
    /// Syncs of a log to disk.
    pub syncs: AtomicU64,
}

/// The recording writer of a node: one thread, one bounded queue.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: SyncSender<Job>,
    dir: PathBuf,
    next: Arc<AtomicU64>,
    stats: Arc<RecorderStats>,
}

/// One Space's recording, as its mixer appends to it. Dropping it closes the log.
#[derive(Debug)]
pub struct Recording {
    key: u64,
    tx: SyncSender<Job>,
    shared: Arc<Shared>,
    stats: Arc<RecorderStats>,
    path: PathBuf,
    buf: Mutex<Vec<u8>>,
}

impl Recorder {
    /// Starts the writer thread for logs in `dir` with a queue of `queue` records. Its
    /// first work is to cut the torn tails a crash left in `dir` (records queue meanwhile).
    pub fn start(dir: PathBuf, queue: usize) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = sync_channel(queue.max(1));
        let stats = Arc::new(RecorderStats::default());
        let thread_stats = stats.clone();
        let recover = dir.clone();
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                recover_dir(&recover);
                write_loop(rx, &thread_stats)
            })?;
        Ok(Self {
            tx,
            dir,
            next: Arc::new(AtomicU64::new(1)),
            stats,
        })
    }

    /// The writer's counters.
    pub fn stats(&self) -> &RecorderStats {
        &self.stats
    }

    /// Where the log named `name` is.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.{EXTENSION}"))
    }

    /// Opens (or reopens, after its torn tail is cut) the log named `name` for appending.
    pub fn open(&self, name: &str) -> Recording {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            state: Mutex::new(RecordingState::Recording),
            dropped: AtomicU64::new(0),
        });
        let path = self.path(name);
        if self
            .tx
            .try_send(Job::Open(key, path.clone(), shared.clone()))
            .is_err()
        {
            shared.fail("the recorder is overloaded".into());
        }
        Recording {
            key,
            tx: self.tx.clone(),
            shared,
            stats: self.stats.clone(),
            path,
            buf: Mutex::new(Vec::with_capacity(256)),
        }
    }
}

impl Recording {
    /// Appends a record; never waits. A full queue drops it (counted).
    pub fn append(&self, record: &Record) {
        if *self.shared.state.lock() != RecordingState::Recording {
            return;
        }
        let mut buf = self.buf.lock();
        buf.clear();
        encode(record, &mut buf);
        match self.tx.try_send(Job::Append(self.key, buf.clone())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => self.shared.fail("the recorder stopped".into()),
        }
    }

    /// Where it stands.
    pub fn state(&self) -> RecordingState {
        self.shared.state.lock().clone()
    }

    /// Records dropped on a full queue.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops recording: the log is flushed, synced and closed.
    pub fn stop(&self) {
        let mut state = self.shared.state.lock();
        if *state == RecordingState::Recording {
            *state = RecordingState::Stopped;
            // Blocking here is bounded by the queue draining; a stop is rare.
            let _ = self.tx.send(Job::Close(self.key));
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Open {
    file: BufWriter<File>,
    shared: Arc<Shared>,
    dirty: bool,
}

fn write_loop(rx: Receiver<Job>, stats: &RecorderStats) {
    let mut files: HashMap<u64, Open> = HashMap::new();
    let mut next_sync = Instant::now() + SYNC_EVERY;
    loop {
        let wait = next_sync.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Job::Open(key, path, shared)) => match open_log(&path) {
                Ok(file) => {
                    files.insert(
                        key,
                        Open {
                            file: BufWriter::with_capacity(64 * 1024, file),
                            shared,
                            dirty: false,
                        },
                    );
                }
                Err(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    shared.fail(format!("cannot open {}: {e}", path.display()));
                }
            },
            Ok(Job::Append(key, bytes)) => {
                if let Some(open) = files.get_mut(&key) {
                    match open.file.write_all(&bytes) {
                        Ok(()) => {
                            open.dirty = true;
                            stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        }
                        Err(e) => {
                            stats.failed.fetch_add(1, Ordering::Relaxed);
                            open.shared.fail(write_failure(&e));
                            files.remove(&key);
                        }
                    }
                }
            }
            Ok(Job::Close(key)) => {
                if let Some(mut open) = files.remove(&key)
                    && let Err(e) = sync(&mut open, stats)
                {
                    open.shared.fail(write_failure(&e));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                for open in files.values_mut() {
                    let _ = sync(open, stats);
                }
                return;
            }
        }
        if Instant::now() >= next_sync {
            files.retain(|_, open| match sync(open, stats) {
                Ok(()) => true,
                Err(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    open.shared.fail(write_failure(&e));
                    false
                }
            });
            next_sync = Instant::now() + SYNC_EVERY;
        }
    }
}

fn write_failure(e: &io::Error) -> String {
    if e.raw_os_error() == Some(28) {
        "the disk is full: recording stopped".into()
    } else {
        format!("writing the recording failed: {e}")
    }
}

fn sync(open: &mut Open, stats: &RecorderStats) -> io::Result<()> {
    if !open.dirty {
        return Ok(());
    }
    open.file.flush()?;
    open.file.get_ref().sync_data()?;
    open.dirty = false;
    stats.syncs.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Opens a log for appending: a new one gets its header; an existing one is read through
/// and cut after its last whole record, so that what follows is read after it.
fn open_log(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        file.write_all(MAGIC)?;
        file.sync_data()?;
        return Ok(file);
    }
    let valid = recover(&mut file)?;
    file.seek(SeekFrom::Start(valid))?;
    Ok(file)
}

/// Cuts a log's torn tail: the length of what is kept.
pub fn recover(file: &mut File) -> io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = match Reader::new(io::BufReader::new(&mut *file)) {
        Ok(reader) => reader,
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a stentor recording",
            ));
        }
    };
    while reader.next_record()?.is_some() {}
    let valid = reader.valid_len();
    let len = file.metadata()?.len();
    if valid < len {
        tracing::warn!(cut = len - valid, "a recording's torn tail was cut");
        file.set_len(valid)?;
        file.sync_data()?;
    }
    Ok(valid)
}

/// Cuts the torn tails of every log in `dir` (at a start, after a crash); logs it cannot
/// read are logged and left as they are.
pub fn recover_dir(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != EXTENSION) {
            continue;
        }
        let result = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .and_then(|mut f| recover(&mut f));
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "a recording could not be checked");
        }
    }
}

/// Appends `record` to the closed log at `path` (after its torn tail is cut) and syncs it:
/// what the host's trim adds after the end.
pub fn append_closed(path: &Path, record: &Record) -> io::Result<()> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let valid = recover(&mut file)?;
    file.seek(SeekFrom::Start(valid))?;
    let mut bytes = Vec::with_capacity(32);
    encode(record, &mut bytes);
    file.write_all(&bytes)?;
    file.sync_data()
}

/// Reads the whole log at `path` (its torn tail ignored).
pub fn read(path: &Path) -> Result<Vec<Record>, crate::LogError> {
    let file = File::open(path)?;
    let mut reader = Reader::new(io::BufReader::new(file))?;
    let mut out = Vec::new();
    while let Some(r) = reader.next_record()? {
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("stentor-rec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn wait_until(mut f: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < until, "timed out");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn appended_frames_are_on_disk_within_a_second_and_a_reopen_appends() {
        let d = dir("append");
        let recorder = Recorder::start(d.clone(), 1024).unwrap();
        let rec = recorder.open("s1");
        rec.append(&Record::Start {
            seq: 0,
            wall_ms: 1,
            title: "t".into(),
        });
        for seq in 0..50 {
            rec.append(&Record::Audio {
                seq,
                packet: Bytes::from_static(&[0xf8, 9]),
            });
        }
        // Synced within SYNC_EVERY, without a stop.
        wait_until(|| read(&recorder.path("s1")).is_ok_and(|r| r.len() == 51));
        rec.stop();
        // Half a record at the end, as a kill in the middle of a write leaves it.
        let mut f = OpenOptions::new()
            .append(true)
            .open(recorder.path("s1"))
            .unwrap();
        f.write_all(&[20, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let again = recorder.open("s1");
        again.append(&Record::Stop { seq: 49 });
        again.stop();
        wait_until(|| read(&recorder.path("s1")).is_ok_and(|r| r.len() == 52));
        assert_eq!(
            read(&recorder.path("s1")).unwrap().last(),
            Some(&Record::Stop { seq: 49 })
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_log_that_cannot_be_written_fails_cleanly() {
        let d = dir("fail");
        let recorder = Recorder::start(d.clone(), 16).unwrap();
        // A directory where the file should be: opening it fails.
        std::fs::create_dir_all(recorder.path("s2")).unwrap();
        let rec = recorder.open("s2");
        wait_until(|| matches!(rec.state(), RecordingState::Failed(_)));
        rec.append(&Record::Stop { seq: 0 });
        assert_eq!(recorder.stats().failed.load(Ordering::Relaxed), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_full_disk_stops_the_recording_not_the_caller() {
        let d = dir("full");
        let recorder = Recorder::start(d.clone(), 4096).unwrap();
        // /dev/full answers every write with ENOSPC, as a full disk does.
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink("/dev/full", recorder.path("s3")).unwrap();
        let rec = recorder.open("s3");
        for seq in 0..100_000 {
            rec.append(&Record::Audio {
                seq,
                packet: Bytes::from_static(&[0xf8; 80]),
            });
        }
        wait_until(|| rec.state() != RecordingState::Recording);
        assert!(
            matches!(rec.state(), RecordingState::Failed(_)),
            "{:?}",
            rec.state()
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
