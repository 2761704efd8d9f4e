//! stentor-hub: each mixed frame is framed once per transport, kept in a ring of shared
//! buffers, and read by every listener through its own cursor.
//!
//! The cost per listener is a cursor and a wake-up, never an encode or a copy of the audio:
//! frames are [`bytes::Bytes`], so handing one to a thousand writers is a thousand reference
//! count increments. A listener that falls behind the ring skips to live and is counted.

pub mod cadence;
mod feed;
pub mod hls;
mod ring;
mod space_hub;
pub mod writer;
pub mod wsframe;

pub use cadence::{CadencePolicy, Stagger};
pub use feed::{Feed, Subscriber};
pub use hls::{Availability, Hls, HlsConfig, Lookup, Rendered};
pub use ring::{Cursor, Read, Ring};
pub use space_hub::{Hub, HubConfig, WS_AUDIO, ws_audio_frame};
pub use writer::{Position, Snapshot};
