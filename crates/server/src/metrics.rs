//! Prometheus metrics (OpenMetrics text at `/metrics`): joins, rejections by reason,
//! listeners, frames late and skipped, mixer tick duration and speaker-to-mix delay.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label with one value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// Why (a short snake_case word).
    pub reason: &'static str,
}

/// A transport label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Transport {
    /// `ws` or `ogg`.
    pub transport: &'static str,
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    /// Media connections opened, by transport.
    pub joins: Family<Transport, Counter>,
    /// Requests and connections refused, by reason.
    pub rejections: Family<Reason, Counter>,
    /// Connections closed by the server for bad input, by reason.
    pub closes: Family<Reason, Counter>,
    /// Listeners attached to a hub (set when scraped).
    pub listeners: Gauge,
    /// Packets accepted from speakers.
    pub packets_in: Counter,
    /// Packets dropped because a mixer queue was full.
    pub packets_dropped: Counter,
    /// Listener joins that waited their turn under their address's or network's join rate.
    pub joins_paced: Counter,
    /// Events not put in a ring because its room for events was full.
    pub events_refused: Counter,
    /// Mixer ticks that ran more than a frame late.
    pub ticks_late: Counter,
    /// Times a listener fell behind the ring and skipped to live.
    pub listener_skips: Counter,
    /// Speaker frames concealed because they were missing at their tick.
    pub concealed: Counter,
    /// Speaker packets that came after their tick and were dropped.
    pub late: Counter,
    /// HTTP connections open (API, pages, WebSocket handshakes not yet handed over).
    pub http_connections: Gauge,
    /// Fan-out writer tasks running (each serves up to a shard of listeners).
    pub writers: Gauge,
    /// Milliseconds between writer wake-ups (the fan-out cadence) of the largest Space.
    pub cadence_ms: Gauge,
    /// What is shed for overload: 0 nothing, 1 the API, 2 new joins too, 3 listeners too.
    pub shed_level: Gauge,
    /// 1 while new tickets cost a proof of work.
    pub under_attack: Gauge,
    /// Mean lag of the runtime's timers over the last measurement, milliseconds.
    pub loop_lag_ms: Gauge,
    /// Connections open that are not listeners' audio streams (set when scraped).
    pub connections_open: Gauge,
    /// Addresses and networks whose request rate is being tracked (set when scraped).
    pub rate_tracked: Gauge,
    /// Time to mix and encode one tick, in seconds.
    pub tick_seconds: Histogram,
    /// From a speaker's packet arriving to the mix that carries it being published, seconds.
    pub speaker_to_mix_seconds: Histogram,
    /// Envelopes (mix frames, events) this node published on the bus as a Space's origin.
    pub bus_published: Counter,
    /// Envelopes dropped because a Space's uplink queue was full (the bus too slow).
    pub bus_queue_full: Counter,
    /// Envelopes not published because this node did not (surely) hold the Space's lease.
    pub bus_not_owner: Counter,
    /// Leases of Spaces taken, lost or given up by this node.
    pub lease_changes: Counter,
    /// Mix frames this edge took from the bus into its hubs.
    pub bus_received: Counter,
    /// Mix frames this edge never received (gaps in the origin's numbering).
    pub bus_missed: Counter,
    /// Messages on a media subject that could not be read.
    pub bus_unreadable: Counter,
    /// Drops of the bus's subscriptions that could not keep up (set when scraped).
    pub bus_slow: Gauge,
    /// From an origin publishing a mix frame to this edge receiving it, seconds (across
    /// machines, as far as their clocks agree).
    pub bus_delay_seconds: Histogram,
    /// Listeners' commands this edge forwarded to origins.
    pub commands_forwarded: Counter,
    /// Snapshots this edge asked for that no origin answered.
    pub snapshots_failed: Counter,
    /// Times this edge, cut off from the bus, sent a Space's listeners elsewhere.
    pub bus_cut_off: Counter,
    /// Snapshots this origin answered.
    pub snapshots_served: Counter,
    /// Mixer ticks skipped after a stall of the process (never mixed; a gap for listeners).
    pub ticks_skipped: Counter,
    /// LL-HLS playlist requests answered (blocking or not): what a cache in front lets through.
    pub hls_playlists: Counter,
    /// LL-HLS init segments, parts and segments answered.
    pub hls_files: Counter,
    /// Recordings stopped by an error (a full disk).
    pub recordings_failed: Counter,
    /// Bytes written to recordings (set at each scrape from the writer's count).
    pub recording_bytes: Gauge,
    /// Recording records dropped because the disk was slower than the mixers.
    pub recording_dropped: Gauge,
    /// Live alerts and reminders sent by this node (set at each scrape).
    pub alerts_sent: Gauge,
    /// From a command being queued to its outcome (waiting its turn, carried out, stored),
    /// seconds.
    pub command_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Self {
            joins: Family::default(),
            rejections: Family::default(),
            closes: Family::default(),
            listeners: Gauge::default(),
            packets_in: Counter::default(),
            packets_dropped: Counter::default(),
            events_refused: Counter::default(),
            joins_paced: Counter::default(),
            ticks_late: Counter::default(),
            listener_skips: Counter::default(),
            concealed: Counter::default(),
            cadence_ms: Gauge::default(),
            writers: Gauge::default(),
            http_connections: Gauge::default(),
            late: Counter::default(),
            shed_level: Gauge::default(),
            under_attack: Gauge::default(),
            loop_lag_ms: Gauge::default(),
            connections_open: Gauge::default(),
            rate_tracked: Gauge::default(),
            tick_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 12)),
            speaker_to_mix_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 10)),
            command_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 14)),
            bus_published: Counter::default(),
            bus_queue_full: Counter::default(),
            bus_not_owner: Counter::default(),
            lease_changes: Counter::default(),
            bus_received: Counter::default(),
            bus_missed: Counter::default(),
            bus_unreadable: Counter::default(),
            bus_slow: Gauge::default(),
            bus_delay_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 14)),
            commands_forwarded: Counter::default(),
            snapshots_failed: Counter::default(),
            bus_cut_off: Counter::default(),
            snapshots_served: Counter::default(),
            ticks_skipped: Counter::default(),
            hls_playlists: Counter::default(),
            hls_files: Counter::default(),
            recordings_failed: Counter::default(),
            recording_bytes: Gauge::default(),
            recording_dropped: Gauge::default(),
            alerts_sent: Gauge::default(),
            registry: Registry::default(),
        };
        let mut registry = Registry::with_prefix("stentor");
        registry.register("joins", "Media connections opened", m.joins.clone());
        registry.register(
            "http_connections",
            "HTTP connections open",
            m.http_connections.clone(),
        );
        registry.register(
            "fanout_writers",
            "Fan-out writer tasks running",
            m.writers.clone(),
        );
        registry.register(
            "rejections",
            "Requests refused, by reason",
            m.rejections.clone(),
        );
        registry.register(
            "closes",
            "Connections closed for bad input, by reason",
            m.closes.clone(),
        );
        registry.register(
            "listeners",
            "Listeners attached to a hub",
            m.listeners.clone(),
        );
        registry.register(
            "packets_in",
            "Speaker packets accepted",
            m.packets_in.clone(),
        );
        registry.register(
            "packets_dropped",
            "Speaker packets dropped (mixer queue full)",
            m.packets_dropped.clone(),
        );
        registry.register(
            "joins_paced",
            "Listener joins that waited their turn under their address's or network's join rate",
            m.joins_paced.clone(),
        );
        registry.register(
            "events_refused",
            "Events kept out of a ring whose room for events was full (audio keeps its place)",
            m.events_refused.clone(),
        );
        registry.register(
            "mixer_ticks_late",
            "Mixer ticks more than a frame late",
            m.ticks_late.clone(),
        );
        registry.register(
            "listener_skips",
            "Listeners that fell behind and skipped to live",
            m.listener_skips.clone(),
        );
        registry.register(
            "cadence_ms",
            "Milliseconds between fan-out writer wake-ups",
            m.cadence_ms.clone(),
        );
        registry.register(
            "frames_concealed",
            "Speaker frames concealed (missing at their tick)",
            m.concealed.clone(),
        );
        registry.register(
            "packets_late",
            "Speaker packets that came after their tick",
            m.late.clone(),
        );
        registry.register(
            "shed_level",
            "What is shed for overload (0 nothing, 1 API, 2 joins, 3 listeners)",
            m.shed_level.clone(),
        );
        registry.register(
            "under_attack",
            "1 while new tickets cost a proof of work",
            m.under_attack.clone(),
        );
        registry.register(
            "loop_lag_ms",
            "Mean lag of the runtime's timers, milliseconds",
            m.loop_lag_ms.clone(),
        );
        registry.register(
            "connections_open",
            "Connections open that are not listeners' audio streams",
            m.connections_open.clone(),
        );
        registry.register(
            "rate_tracked",
            "Addresses and networks whose request rate is tracked",
            m.rate_tracked.clone(),
        );
        registry.register(
            "mixer_tick_seconds",
            "Time to mix and encode one tick",
            m.tick_seconds.clone(),
        );
        registry.register(
            "bus_published",
            "Envelopes published on the bus as a Space's origin",
            m.bus_published.clone(),
        );
        registry.register(
            "bus_queue_full",
            "Envelopes dropped because a Space's uplink queue was full",
            m.bus_queue_full.clone(),
        );
        registry.register(
            "bus_not_owner",
            "Envelopes not published because this node did not hold the Space's lease",
            m.bus_not_owner.clone(),
        );
        registry.register(
            "lease_changes",
            "Leases of Spaces taken, lost or given up by this node",
            m.lease_changes.clone(),
        );
        registry.register(
            "bus_received",
            "Mix frames this edge took from the bus",
            m.bus_received.clone(),
        );
        registry.register(
            "bus_missed",
            "Mix frames this edge never received from the bus",
            m.bus_missed.clone(),
        );
        registry.register(
            "bus_unreadable",
            "Messages on a media subject that could not be read",
            m.bus_unreadable.clone(),
        );
        registry.register(
            "bus_slow_consumer",
            "Drops of bus subscriptions that could not keep up",
            m.bus_slow.clone(),
        );
        registry.register(
            "bus_delay_seconds",
            "From an origin publishing a mix frame to this edge receiving it",
            m.bus_delay_seconds.clone(),
        );
        registry.register(
            "commands_forwarded",
            "Listeners' commands this edge forwarded to origins",
            m.commands_forwarded.clone(),
        );
        registry.register(
            "snapshots_failed",
            "Snapshots this edge asked for that no origin answered",
            m.snapshots_failed.clone(),
        );
        registry.register(
            "bus_cut_off",
            "Times this edge, cut off from the bus, sent a Space's listeners elsewhere",
            m.bus_cut_off.clone(),
        );
        registry.register(
            "snapshots_served",
            "Snapshots this origin answered",
            m.snapshots_served.clone(),
        );
        registry.register(
            "ticks_skipped",
            "Mixer ticks skipped after a stall of the process (a gap for listeners)",
            m.ticks_skipped.clone(),
        );
        registry.register(
            "hls_playlists",
            "LL-HLS playlist requests answered (blocking or not)",
            m.hls_playlists.clone(),
        );
        registry.register(
            "hls_files",
            "LL-HLS init segments, parts and segments answered",
            m.hls_files.clone(),
        );
        registry.register(
            "recordings_failed",
            "Recordings stopped by an error (a full disk)",
            m.recordings_failed.clone(),
        );
        registry.register(
            "recording_bytes",
            "Bytes written to recordings since the start",
            m.recording_bytes.clone(),
        );
        registry.register(
            "recording_dropped",
            "Recording records dropped because the disk was slower than the mixers",
            m.recording_dropped.clone(),
        );
        registry.register(
            "alerts_sent",
            "Live alerts and reminders sent by this node since the start",
            m.alerts_sent.clone(),
        );
        registry.register(
            "command_seconds",
            "From a command queued to its outcome: its turn, carried out, stored",
            m.command_seconds.clone(),
        );
        registry.register(
            "speaker_to_mix_seconds",
            "From a speaker packet arriving to its mix being published",
            m.speaker_to_mix_seconds.clone(),
        );
        Self { registry, ..m }
    }
}

impl Metrics {
    /// Counts a refusal.
    pub fn reject(&self, reason: &'static str) {
        self.rejections.get_or_create(&Reason { reason }).inc();
    }

    /// Counts a close for bad input.
    pub fn close(&self, reason: &'static str) {
        self.closes.get_or_create(&Reason { reason }).inc();
    }

    /// Counts a join.
    pub fn join(&self, transport: &'static str) {
        self.joins.get_or_create(&Transport { transport }).inc();
    }
}

impl Metrics {
    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        text
    }
}
