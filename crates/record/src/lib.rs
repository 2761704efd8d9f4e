//! stentor-record: a Space's recording as an append-only log of CRC-framed records.
//!
//! The log is what survives a crash: every mix frame is appended as it is made, the file is
//! synced at least once a second, and a torn tail (a record cut short by a kill or a full
//! disk) is found by its length or checksum and cut off when the file is opened again. The
//! format is in [`log`]; the thread that writes every Space's log is in [`writer`].

pub mod log;
pub mod replay;
pub mod storage;
pub mod writer;

pub use log::{LogError, Reader, Record, Timeline, encode};
pub use storage::{LocalDir, Storage};
pub use writer::{Recorder, Recording, RecordingState};
