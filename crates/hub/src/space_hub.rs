//! The hub of one Space: the mix framed once for each transport.

use crate::cadence::CadencePolicy;
use crate::feed::Feed;
use crate::hls::{Hls, HlsConfig};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use stentor_media::ogg::{self, PageWriter};
use stentor_media::{FRAME_SAMPLES, MixOutput};

/// First byte of a WebSocket binary message carrying a frame of the mix.
pub const WS_AUDIO: u8 = 0x02;

/// Settings of a Space's hub.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HubConfig {
    /// Frames kept in each ring (default 250: 5 s).
    pub ring_frames: usize,
    /// Frames a new listener receives at once (default 10: 200 ms).
    pub burst_frames: usize,
    /// Events the WebSocket ring keeps beside its audio frames (default 250): events never
    /// take audio's place, and past this many in the ring, new ones are refused.
    pub event_frames: usize,
    /// How often writers wake, by audience size.
    pub cadence: CadencePolicy,
    /// Most listeners one writer task serves (default 1024; 1 gives a task per listener).
    pub per_writer: usize,
    /// LL-HLS parts, segments and playlist window.
    pub hls: HlsConfig,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            ring_frames: 250,
            burst_frames: 10,
            event_frames: 250,
            cadence: CadencePolicy::default(),
            per_writer: 1024,
            hls: HlsConfig::default(),
        }
    }
}

/// Frames one mix packet as a whole WebSocket frame (header included, so the same bytes go
/// to every listener): a binary message of kind, mix sequence, Opus packet.
pub fn ws_audio_frame(seq: u64, packet: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(9 + packet.len());
    b.put_u8(WS_AUDIO);
    b.put_u64(seq);
    b.put_slice(packet);
    crate::wsframe::binary(b.freeze())
}

/// The feeds of one Space, one per transport, fed by its mixer.
#[derive(Debug, Clone)]
pub struct Hub {
    /// Whole WebSocket frames: audio (see [`ws_audio_frame`]) and the Space's events as text.
    pub ws: Feed,
    /// Ogg pages, one 20 ms packet each.
    pub ogg: Feed,
    /// LL-HLS: fMP4 parts and segments, and the playlist (framed while someone asks).
    pub hls: Arc<Hls>,
    ogg_headers: [Bytes; 2],
    serial: u32,
    cadence: CadencePolicy,
    /// How many frames late the writers ran, at the last cadence check.
    last_late: Arc<AtomicU64>,
}

impl Hub {
    /// A hub for a Space titled `title`; `serial` is its Ogg stream serial number.
    pub fn new(config: HubConfig, title: &str, serial: u32) -> Self {
        let mut writer = PageWriter::new(serial);
        let ogg_headers = ogg::opus_header_pages(&mut writer, title);
        Self {
            ws: Feed::with_events(config.ring_frames, config.burst_frames, config.event_frames),
            ogg: Feed::new(config.ring_frames, config.burst_frames),
            hls: Arc::new(Hls::new(config.hls)),
            ogg_headers,
            serial,
            cadence: config.cadence,
            last_late: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Frames one tick of the mix for every transport and publishes it.
    pub fn publish(&self, mix: &MixOutput) {
        self.publish_frame(mix.seq, &mix.packet);
    }

    /// Frames one encoded frame of the mix, tick `seq`, for every transport and publishes
    /// it: the mixer's output here, or an origin's from the bus on an edge.
    pub fn publish_frame(&self, seq: u64, packet: &Bytes) {
        if seq.is_multiple_of(50) {
            self.adapt_cadence();
        }
        self.ws.publish(ws_audio_frame(seq, packet));
        self.ogg.publish(self.ogg_page(seq, packet));
        self.hls.publish(seq, packet.clone());
    }

    /// Publishes an event of the Space to every WebSocket listener, in order with the audio;
    /// it leaves with the next batch of audio (or the writers' idle pass), never on its own.
    /// Refused (false) when the ring's room for events is full: events never push audio out.
    pub fn publish_event(&self, json: &str) -> bool {
        self.ws.publish_along(crate::wsframe::text(json))
    }

    /// Re-evaluates how often writers wake, from the audience and how far behind they were.
    fn adapt_cadence(&self) {
        let lag = self.ws.take_max_lag().max(self.ogg.take_max_lag());
        let late = lag.saturating_sub(u64::from(self.cadence_frames()));
        self.last_late.store(late, Ordering::Relaxed);
        let every = self.cadence.frames_per_wake(self.listeners(), lag);
        self.ws.set_wake_every(every);
        self.ogg.set_wake_every(every);
    }

    /// How late the writers ran at the last check (once a second), in milliseconds: 0 while
    /// the server keeps up.
    pub fn writers_late_ms(&self) -> f64 {
        self.last_late.load(Ordering::Relaxed) as f64 * 20.0
    }

    /// Frames between writer wake-ups now.
    pub fn cadence_frames(&self) -> u32 {
        self.ws.wake_every()
    }

    /// The header pages every Ogg listener receives first.
    pub fn ogg_headers(&self) -> &[Bytes; 2] {
        &self.ogg_headers
    }

    /// Ends every feed.
    pub fn close(&self) {
        self.ws.close();
        self.ogg.close();
        self.hls.end(true);
    }

    /// Ends every feed for a reason other than the Space's end: WebSocket listeners are
    /// closed with `code` and `reason` (say, where to go instead).
    pub fn close_with(&self, code: u16, reason: &str) {
        self.ws.close_with(code, reason);
        self.ogg.close_with(code, reason);
        self.hls.end(false);
    }

    /// Listeners attached to any transport.
    pub fn listeners(&self) -> usize {
        self.ws.subscribers() + self.ogg.subscribers()
    }

    fn ogg_page(&self, seq: u64, packet: &[u8]) -> Bytes {
        // Page numbers follow the mix sequence after the two header pages, and the granule is
        // the end of this frame, so every listener gets the same bytes whenever it joined.
        let mut writer = PageWriter::new(self.serial);
        writer.set_sequence((seq + 2) as u32);
        let granule = u64::from(ogg::PRE_SKIP) + (seq + 1) * FRAME_SAMPLES as u64;
        writer.page(&[packet], granule, 0)
    }
}
