//! Server configuration: one struct per subsystem, read from CLI flags, `STENTOR_*`
//! environment variables and a TOML file, in that order of precedence, then defaults.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything the server can be configured with. Every field is optional so that sources can
/// be layered; the accessors give the documented defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP listener.
    #[command(flatten)]
    #[serde(default)]
    pub http: HttpConfig,
    /// Durable state.
    #[command(flatten)]
    #[serde(default)]
    pub store: StoreConfig,
    /// Accounts and join tickets.
    #[command(flatten)]
    #[serde(default)]
    pub auth: AuthConfig,
    /// Audio.
    #[command(flatten)]
    #[serde(default)]
    pub media: MediaConfig,
    /// Admission: the waiting room, shedding, limits, under-attack mode.
    #[command(flatten)]
    #[serde(default)]
    pub admission: AdmissionConfig,
    /// What one account may do with Spaces, and how long unused ones stay loaded.
    #[command(flatten)]
    #[serde(default)]
    pub spaces: SpacesConfig,
    /// The node's part in a cluster.
    #[command(flatten)]
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Posts, timelines, likes, follows and alerts.
    #[command(flatten)]
    #[serde(default)]
    pub social: SocialConfig,
    /// Moderation: who administers, appeals, the Transparency Database.
    #[command(flatten)]
    #[serde(default)]
    pub moderation: ModerationConfig,
}

/// Moderation settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct ModerationConfig {
    /// The handle of the account that administers this server (grants the moderator role).
    #[arg(long, env = "STENTOR_ADMIN")]
    pub admin: Option<String>,
    /// Days an appeal against a decision stays open; never less than 183 (the DSA's six
    /// months) [default: 183].
    #[arg(long, env = "STENTOR_APPEAL_DAYS")]
    pub appeal_days: Option<u32>,
    /// The prefix of the platform unique identifiers (`puid`) sent to the Transparency
    /// Database: letters, digits, `-` and `_`, the same on every node [default: stentor].
    #[arg(long, env = "STENTOR_PUID_PREFIX")]
    pub puid_prefix: Option<String>,
    /// The Transparency Database's batch endpoint, e.g.
    /// `https://transparency.dsa.ec.europa.eu/api/v1/statements` (its sandbox first): every
    /// statement of reasons is submitted there, in batches of 100, retried until stored.
    /// Unset: nothing is submitted (the statements are still published at
    /// `/api/v1/transparency/statements`).
    #[arg(long, env = "STENTOR_TDB_URL")]
    pub tdb_url: Option<String>,
    /// The API token the Transparency Database issued to this platform (sent as a bearer
    /// token). Prefer the environment to the command line, where others can read it.
    #[arg(long, env = "STENTOR_TDB_TOKEN", hide_env_values = true)]
    pub tdb_token: Option<String>,
    /// A micro or small enterprise (DSA Art. 19): the duties of Art. 20 to 28 are off —
    /// no internal complaints (appeals), no priority for trusted flaggers, no submission
    /// to the Transparency Database. Notices and statements of reasons (Art. 16 and 17)
    /// stay [default: false].
    #[arg(long, env = "STENTOR_SMALL_ENTERPRISE")]
    pub small_enterprise: Option<bool>,
    /// The request header in which a trusted front end (a CDN, a proxy) gives the visitor's
    /// country as an ISO 3166 code, e.g. `CF-IPCountry`: with it, moderators may remove or
    /// label a post in some countries only. Unset: every restriction applies everywhere.
    #[arg(long, env = "STENTOR_COUNTRY_HEADER")]
    pub country_header: Option<String>,
}

/// Social layer settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct SocialConfig {
    /// Longest post, in characters, 1 to 10000 [default: 280].
    #[arg(long, env = "STENTOR_POST_MAX_CHARS", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub post_max_chars: Option<u32>,
    /// Accounts with this many followers or more are merged into timelines at read time;
    /// the posts of smaller ones are copied into each follower's timeline when written
    /// [default: 10000].
    #[arg(long, env = "STENTOR_FANOUT_MAX_FOLLOWERS")]
    pub fanout_max_followers: Option<u64>,
    /// Likes and follows waiting to be written, past which new ones are refused with 503
    /// [default: 16384].
    #[arg(long, env = "STENTOR_ENGAGEMENT_QUEUE")]
    pub engagement_queue: Option<u32>,
    /// Most likes or follows written in one transaction [default: 512].
    #[arg(long, env = "STENTOR_ENGAGEMENT_BATCH")]
    pub engagement_batch: Option<u32>,
    /// Live alerts sent a second at most, per Space; never more than its waiting room admits
    /// [default: 2000].
    #[arg(long, env = "STENTOR_ALERTS_PER_SEC")]
    pub alerts_per_sec: Option<u32>,
    /// Who push services may contact about this server's pushes: a `mailto:` or `https:`
    /// URL [default: mailto:admin@localhost].
    #[arg(long, env = "STENTOR_PUSH_CONTACT")]
    pub push_contact: Option<String>,
    /// The Web Push (VAPID) key, 32 bytes, the same file on every node of a cluster; it must
    /// exist [default: `vapid.key` in the data directory, made if missing].
    #[arg(long, env = "STENTOR_PUSH_KEY_FILE")]
    pub push_key_file: Option<PathBuf>,
    /// Accept push endpoints over plain http (for a push service on a test network only)
    /// [default: false].
    #[arg(long, env = "STENTOR_PUSH_ALLOW_HTTP")]
    pub push_allow_http: Option<bool>,
}

/// What a node does in a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A single node: admits, mixes and serves its Spaces; no bus.
    #[default]
    All,
    /// As `all`, and publishes each Space it mixes on the cluster's bus for edges, under a
    /// lease per Space; takes up the open Spaces no origin holds (a standby).
    Origin,
    /// Serves listeners of Spaces mixed by an origin, from the cluster's bus; forwards their
    /// commands to the origin and sends the stage there.
    Edge,
}

/// Cluster settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// What this node does: `all` (a single node, no bus), `origin` (mixes, and publishes
    /// its Spaces on NATS) or `edge` (serves listeners from NATS) [default: all].
    #[arg(long, env = "STENTOR_ROLE", value_enum)]
    pub role: Option<Role>,
    /// The cluster's NATS server, `nats://HOST:PORT` (2.9 or later, JetStream on); needed by
    /// every role but `all`.
    #[arg(long, env = "STENTOR_NATS")]
    pub nats: Option<String>,
    /// The cluster's name: its subjects and lease bucket are named after it, so that several
    /// clusters can share one NATS server [default: stentor].
    #[arg(long = "cluster", env = "STENTOR_CLUSTER")]
    pub name: Option<String>,
    /// This node's name in the cluster (who holds a lease) [default: the host's name and the
    /// bound address].
    #[arg(long, env = "STENTOR_NODE")]
    pub node: Option<String>,
    /// Milliseconds a Space's lease lasts after its last renewal: how soon a standby can take
    /// a dead origin's Space; the same on every node [default: 3000].
    #[arg(long, env = "STENTOR_LEASE_MS", value_parser = clap::value_parser!(u64).range(300..=60_000))]
    pub lease_ms: Option<u64>,
    /// Where clients reach this node, as the cluster tells them (`http://HOST:PORT`, or the
    /// `https://` name of a proxy in front) [default: http:// and the bound address].
    #[arg(long, env = "STENTOR_ADVERTISE")]
    pub advertise: Option<String>,
}

/// Space settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct SpacesConfig {
    /// Spaces one account may have scheduled (created, not yet live) at once [default: 10].
    #[arg(long, env = "STENTOR_SCHEDULED_PER_HOST")]
    pub scheduled_per_host: Option<u64>,
    /// Spaces one account may have live at once [default: 3].
    #[arg(long, env = "STENTOR_LIVE_PER_HOST")]
    pub live_per_host: Option<u64>,
    /// Seconds a loaded Space that nobody is connected to or asks for stays loaded; an
    /// ended one goes as soon as nobody is connected [default: 600].
    #[arg(long, env = "STENTOR_SPACE_IDLE_SECS")]
    pub idle_unload_secs: Option<u64>,
}

/// HTTP listener settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "STENTOR_BIND")]
    pub bind: Option<SocketAddr>,
    /// Accept queue length, for crowds arriving at once [default: 4096; the kernel caps it
    /// at net.core.somaxconn].
    #[arg(long, env = "STENTOR_BACKLOG")]
    pub backlog: Option<u32>,
    /// Most listeners this process admits [default: what the file limit allows].
    #[arg(long, env = "STENTOR_MAX_LISTENERS")]
    pub max_listeners: Option<usize>,
    /// Most listeners one fan-out writer task serves [default: 1024; 1 gives a task per
    /// listener, for comparison].
    #[arg(long, env = "STENTOR_LISTENERS_PER_WRITER")]
    pub listeners_per_writer: Option<usize>,
    /// Writes per second the fan-out may make; the cadence stretches to stay within it
    /// [default: 40000, for a 2-core machine; about 20000 per core is a fair start].
    #[arg(long, env = "STENTOR_FANOUT_WRITES_PER_SEC")]
    pub fanout_writes_per_sec: Option<u32>,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` / `Forwarded` headers name the client,
    /// so that limits count clients, not the proxy; repeat or separate with commas
    /// [default: none, the headers are ignored].
    #[arg(
        long = "trusted-proxy",
        env = "STENTOR_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<ipnet::IpNet>>,
    /// Serve `/metrics` on this address instead of the main one (e.g. a private interface)
    /// [default: the main address, answering only loopback callers or the token's bearer].
    #[arg(long, env = "STENTOR_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// A secret that a caller of `/metrics` from anywhere must send as
    /// `Authorization: Bearer TOKEN` [default: none; then only loopback callers are answered].
    #[arg(long, env = "STENTOR_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Serve HTTPS (and HTTP/2 by ALPN) with this certificate chain, PEM; needs `tls_key`
    /// [default: none, plain HTTP].
    #[arg(long, env = "STENTOR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert`, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "STENTOR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Durable state settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory for the embedded database and keys [default: ./stentor-data].
    #[arg(long, env = "STENTOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL instead of the embedded one: `sqlite://PATH`, or
    /// `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE` for the state a cluster's nodes share.
    #[arg(long, env = "STENTOR_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most connections the server holds to its database [default: 4 for SQLite, 10 for
    /// PostgreSQL].
    #[arg(long, env = "STENTOR_DATABASE_POOL", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool: Option<u32>,
}

/// Account and ticket settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Let people listen without an account [default: true].
    #[arg(long, env = "STENTOR_ALLOW_ANONYMOUS")]
    pub allow_anonymous: Option<bool>,
    /// Lifetime of a join ticket in seconds [default: 300].
    #[arg(long, env = "STENTOR_TICKET_TTL")]
    pub ticket_ttl_secs: Option<u64>,
    /// The key that signs and verifies tickets, 32 bytes, the same file on every node of a
    /// cluster; it must exist [default: `ticket.key` in the data directory, made if missing].
    #[arg(long, env = "STENTOR_TICKET_KEY_FILE")]
    pub ticket_key_file: Option<PathBuf>,
}

/// Audio settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Bitrate of the listener mix in bit/s, 16000 to 64000 [default: 32000].
    #[arg(long, env = "STENTOR_BITRATE", value_parser = clap::value_parser!(u32).range(16_000..=64_000))]
    pub bitrate: Option<u32>,
    /// Length of an LL-HLS part in milliseconds, a multiple of 20 from 200 to 1000
    /// [default: 200].
    #[arg(long, env = "STENTOR_HLS_PART_MS", value_parser = clap::value_parser!(u32).range(200..=1000))]
    pub hls_part_ms: Option<u32>,
    /// LL-HLS parts per segment, 2 to 30 [default: 10: segments of 2 s].
    #[arg(long, env = "STENTOR_HLS_SEGMENT_PARTS", value_parser = clap::value_parser!(u32).range(2..=30))]
    pub hls_segment_parts: Option<u32>,
    /// Segments an LL-HLS playlist lists, 3 to 100 [default: 15].
    #[arg(long, env = "STENTOR_HLS_WINDOW_SEGMENTS", value_parser = clap::value_parser!(u32).range(3..=100))]
    pub hls_window_segments: Option<u32>,
    /// Record Spaces (each host may still turn their Space's recording off) [default: true].
    #[arg(long, env = "STENTOR_RECORD")]
    pub record: Option<bool>,
    /// Where recordings are kept [default: DATA_DIR/recordings].
    #[arg(long, env = "STENTOR_RECORDINGS_DIR")]
    pub recordings_dir: Option<PathBuf>,
    /// Days a recording and its clips are kept after they were last written; 0 keeps them
    /// for ever [default: 30].
    #[arg(long, env = "STENTOR_RECORDING_RETENTION_DAYS")]
    pub recording_retention_days: Option<u32>,
}

/// Admission settings: how the crowd is let in and how overload is met.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Listeners per second the waiting room spreads a crowd's joins at; the join window it
    /// announces is the waiting crowd over this [default: 2000].
    #[arg(long, env = "STENTOR_LOBBY_JOINS_PER_SEC")]
    pub lobby_joins_per_sec: Option<u32>,
    /// Milliseconds overload must last before anything is shed [default: 1000].
    #[arg(long, env = "STENTOR_SHED_SUSTAIN_MS")]
    pub shed_sustain_ms: Option<u64>,
    /// Start in under-attack mode: every new ticket costs a proof of work, whatever the load
    /// [default: false; the mode also turns itself on after sustained overload].
    #[arg(long, env = "STENTOR_UNDER_ATTACK")]
    pub under_attack: Option<bool>,
    /// Requests a second one address may make, sustained [default: 20].
    #[arg(long, env = "STENTOR_IP_REQUESTS_PER_SEC")]
    pub ip_requests_per_sec: Option<u32>,
    /// Requests one address may make at once before its rate applies [default: 400, so a crowd behind one NAT gets in].
    #[arg(long, env = "STENTOR_IP_REQUEST_BURST")]
    pub ip_request_burst: Option<u32>,
    /// Requests a second one network (IPv4 /24, IPv6 /64) may make, sustained [default: 200].
    #[arg(long, env = "STENTOR_NETWORK_REQUESTS_PER_SEC")]
    pub network_requests_per_sec: Option<u32>,
    /// Requests one network may make at once [default: 4000].
    #[arg(long, env = "STENTOR_NETWORK_REQUEST_BURST")]
    pub network_request_burst: Option<u32>,
    /// Expensive requests (sign-in, sign-up, creating a Space) a second one address may make
    /// [default: 2].
    #[arg(long, env = "STENTOR_COSTLY_REQUESTS_PER_SEC")]
    pub costly_requests_per_sec: Option<u32>,
    /// Expensive requests one address may make at once [default: 30].
    #[arg(long, env = "STENTOR_COSTLY_REQUEST_BURST")]
    pub costly_request_burst: Option<u32>,
    /// Listener joins a second one address may make, sustained; past it a join waits its
    /// turn in the door instead of being refused [default: 100].
    #[arg(long, env = "STENTOR_JOIN_IP_PER_SEC")]
    pub join_ip_per_sec: Option<u32>,
    /// Listener joins one address may make at once [default: 1000].
    #[arg(long, env = "STENTOR_JOIN_IP_BURST")]
    pub join_ip_burst: Option<u32>,
    /// Listener joins a second one network (IPv4 /24, IPv6 /64) may make [default: 1000].
    #[arg(long, env = "STENTOR_JOIN_NETWORK_PER_SEC")]
    pub join_network_per_sec: Option<u32>,
    /// Listener joins one network may make at once [default: 10000].
    #[arg(long, env = "STENTOR_JOIN_NETWORK_BURST")]
    pub join_network_burst: Option<u32>,
    /// Milliseconds a join may wait for its turn before it is told to come back (429)
    /// [default: 10000].
    #[arg(long, env = "STENTOR_JOIN_MAX_WAIT_MS")]
    pub join_max_wait_ms: Option<u64>,
    /// Connections one address may hold open besides its listeners' audio streams [default: 2000].
    #[arg(long, env = "STENTOR_IP_CONNECTIONS")]
    pub ip_connections: Option<u32>,
    /// Connections one network may hold open besides its listeners' audio streams [default: 8000].
    #[arg(long, env = "STENTOR_NETWORK_CONNECTIONS")]
    pub network_connections: Option<u32>,
    /// Connections held open in all besides listeners' audio streams [default: half the
    /// file limit, at most 10000]; as they fill, clients get less time to send a request head.
    #[arg(long, env = "STENTOR_CONNECTIONS")]
    pub connections: Option<u32>,
    /// Milliseconds a client may take to send a request head while few connections are
    /// open [default: 10000]; down to a tenth of it as they fill (against slow-loris attacks).
    #[arg(long, env = "STENTOR_HEAD_TIMEOUT_MS")]
    pub head_timeout_ms: Option<u64>,
    /// Messages (commands, pings) a second one WebSocket connection may send, sustained;
    /// past it, the connection is closed with 1008 [default: 10].
    #[arg(long, env = "STENTOR_COMMANDS_PER_SEC")]
    pub commands_per_sec: Option<u32>,
    /// Messages one WebSocket connection may send at once [default: 30].
    #[arg(long, env = "STENTOR_COMMAND_BURST")]
    pub command_burst: Option<u32>,
    /// Milliseconds a request body may take before its minimum rate applies [default: 10000].
    #[arg(long, env = "STENTOR_BODY_TIMEOUT_MS")]
    pub body_timeout_ms: Option<u64>,
    /// Bytes a second a request body must average after that [default: 1024].
    #[arg(long, env = "STENTOR_BODY_MIN_RATE")]
    pub body_min_rate: Option<u32>,
    /// Milliseconds a source (an HTTP PUT of Ogg) may send no audio before it is ended
    /// [default: 5000].
    #[arg(long, env = "STENTOR_SOURCE_IDLE_MS")]
    pub source_idle_ms: Option<u64>,
    /// Milliseconds between the server's pings to a full WebSocket connection (someone on
    /// stage); one that sends nothing, not even a pong, for three of them is let go
    /// [default: 15000].
    #[arg(long, env = "STENTOR_WS_PING_MS", value_parser = clap::value_parser!(u64).range(100..))]
    pub ws_ping_ms: Option<u64>,
    /// Proof of work asked for a new listener's ticket in under-attack mode, in leading zero
    /// bits of SHA-256, with no load [default: 12; about 4 000 hashes].
    #[arg(long, env = "STENTOR_POW_MIN_BITS", value_parser = clap::value_parser!(u8).range(1..=30))]
    pub pow_min_bits: Option<u8>,
    /// The same at the most load [default: 16; about 65 000 hashes].
    #[arg(long, env = "STENTOR_POW_MAX_BITS", value_parser = clap::value_parser!(u8).range(1..=30))]
    pub pow_max_bits: Option<u8>,
}

/// What one account may do with Spaces on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceRules {
    /// Spaces one host may have scheduled (not yet live) at once (default 10).
    pub scheduled_per_host: u64,
    /// Spaces one host may have live at once (default 3).
    pub live_per_host: u64,
    /// How long a loaded Space nobody uses stays loaded (default 10 minutes).
    pub idle_unload: std::time::Duration,
}

impl Default for SpaceRules {
    fn default() -> Self {
        Self {
            scheduled_per_host: 10,
            live_per_host: 3,
            idle_unload: std::time::Duration::from_secs(600),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid configuration in {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// `Struct { field: upper.field.or(lower.field), .. }` for every field named, which must be
/// all of them (the struct literal says so if one is missed).
macro_rules! layer {
    ($upper:expr, $lower:expr, $ty:ident { $($field:ident),* $(,)? }) => {{
        let (upper, lower) = ($upper, $lower);
        $ty { $($field: upper.$field.or(lower.$field)),* }
    }};
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })
    }

    /// Layers `self` (CLI and environment) over `lower` (a file): a value set here wins.
    pub fn over(self, lower: Self) -> Self {
        Self {
            http: layer!(
                self.http,
                lower.http,
                HttpConfig {
                    bind,
                    backlog,
                    max_listeners,
                    listeners_per_writer,
                    fanout_writes_per_sec,
                    trusted_proxies,
                    metrics_bind,
                    metrics_token,
                    tls_cert,
                    tls_key
                }
            ),
            store: layer!(
                self.store,
                lower.store,
                StoreConfig {
                    data_dir,
                    database_url,
                    database_pool
                }
            ),
            auth: layer!(
                self.auth,
                lower.auth,
                AuthConfig {
                    allow_anonymous,
                    ticket_ttl_secs,
                    ticket_key_file
                }
            ),
            media: layer!(
                self.media,
                lower.media,
                MediaConfig {
                    bitrate,
                    hls_part_ms,
                    hls_segment_parts,
                    hls_window_segments,
                    record,
                    recordings_dir,
                    recording_retention_days
                }
            ),
            cluster: layer!(
                self.cluster,
                lower.cluster,
                ClusterConfig {
                    role,
                    nats,
                    name,
                    node,
                    lease_ms,
                    advertise
                }
            ),
            admission: layer!(
                self.admission,
                lower.admission,
                AdmissionConfig {
                    lobby_joins_per_sec,
                    shed_sustain_ms,
                    under_attack,
                    ip_requests_per_sec,
                    ip_request_burst,
                    network_requests_per_sec,
                    network_request_burst,
                    costly_requests_per_sec,
                    costly_request_burst,
                    join_ip_per_sec,
                    join_ip_burst,
                    join_network_per_sec,
                    join_network_burst,
                    join_max_wait_ms,
                    ip_connections,
                    network_connections,
                    connections,
                    head_timeout_ms,
                    commands_per_sec,
                    command_burst,
                    body_timeout_ms,
                    body_min_rate,
                    source_idle_ms,
                    ws_ping_ms,
                    pow_min_bits,
                    pow_max_bits
                }
            ),
            spaces: layer!(
                self.spaces,
                lower.spaces,
                SpacesConfig {
                    scheduled_per_host,
                    live_per_host,
                    idle_unload_secs
                }
            ),
            social: layer!(
                self.social,
                lower.social,
                SocialConfig {
                    post_max_chars,
                    fanout_max_followers,
                    engagement_queue,
                    engagement_batch,
                    alerts_per_sec,
                    push_contact,
                    push_key_file,
                    push_allow_http
                }
            ),
            moderation: layer!(
                self.moderation,
                lower.moderation,
                ModerationConfig {
                    admin,
                    appeal_days,
                    puid_prefix,
                    tdb_url,
                    tdb_token,
                    small_enterprise,
                    country_header
                }
            ),
        }
    }

    /// Checks ranges that the file (unlike the CLI) does not check on parse.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(b) = self.media.bitrate
            && !(16_000..=64_000).contains(&b)
        {
            return Err(ConfigError::Invalid(format!(
                "media.bitrate {b} is outside 16000..=64000"
            )));
        }
        if self.http.tls_cert.is_some() != self.http.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "http.tls_cert and http.tls_key go together: give both or neither".into(),
            ));
        }
        match (self.role(), &self.cluster.nats) {
            (Role::All, Some(_)) => Err(ConfigError::Invalid(
                "cluster.nats is for a node of a cluster: give --role origin or edge too".into(),
            )),
            (Role::Origin | Role::Edge, None) => Err(ConfigError::Invalid(
                "--role origin and --role edge need the cluster's NATS server: \
                 --nats nats://HOST:PORT"
                    .into(),
            )),
            _ => stentor_bus::subject::check_name(&self.cluster_name())
                .map_err(|e| ConfigError::Invalid(format!("cluster.name: {e}"))),
        }
    }

    /// The cluster's name.
    pub fn cluster_name(&self) -> String {
        self.cluster
            .name
            .clone()
            .unwrap_or_else(|| stentor_bus::subject::DEFAULT_CLUSTER.to_owned())
    }

    /// The file tickets are signed with: the shared one given, or the data directory's.
    pub fn ticket_key_path(&self) -> std::path::PathBuf {
        self.auth
            .ticket_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir().join(crate::secrets::TICKET_KEY_FILE))
    }

    /// What this node does in a cluster.
    pub fn role(&self) -> Role {
        self.cluster.role.unwrap_or_default()
    }

    /// How long a Space's lease lasts after its last renewal.
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.cluster.lease_ms.unwrap_or(3_000))
    }

    /// Listen address.
    pub fn bind(&self) -> SocketAddr {
        self.http.bind.unwrap_or(([127, 0, 0, 1], 8080).into())
    }

    /// Reverse proxies whose forwarding headers are believed.
    pub fn trusted_proxies(&self) -> &[ipnet::IpNet] {
        self.http.trusted_proxies.as_deref().unwrap_or(&[])
    }

    /// Accept queue length.
    pub fn backlog(&self) -> u32 {
        self.http.backlog.unwrap_or(4096)
    }

    /// Listeners per fan-out writer task.
    pub fn listeners_per_writer(&self) -> usize {
        self.http.listeners_per_writer.unwrap_or(1024).max(1)
    }

    /// The fan-out's cadence policy.
    pub fn cadence(&self) -> stentor_hub::CadencePolicy {
        let default = stentor_hub::CadencePolicy::default();
        stentor_hub::CadencePolicy {
            writes_per_sec: self
                .http
                .fanout_writes_per_sec
                .map_or(default.writes_per_sec, |w| f64::from(w.max(1))),
            ..default
        }
    }

    /// Where recordings are written, if this node records (an edge never does: its origin
    /// records).
    pub fn recordings_dir(&self) -> Option<PathBuf> {
        let records = self.media.record.unwrap_or(true) && self.role() != Role::Edge;
        records.then(|| self.replays_dir()).flatten()
    }

    /// Where this node's recordings are read from for replays and clips (also when it no
    /// longer records); none on an edge.
    pub fn replays_dir(&self) -> Option<PathBuf> {
        (self.role() != Role::Edge).then(|| {
            self.media
                .recordings_dir
                .clone()
                .unwrap_or_else(|| self.data_dir().join("recordings"))
        })
    }

    /// How long recordings and clips are kept (`None`: for ever).
    pub fn recording_retention(&self) -> Option<std::time::Duration> {
        match self.media.recording_retention_days.unwrap_or(30) {
            0 => None,
            days => Some(std::time::Duration::from_secs(u64::from(days) * 86_400)),
        }
    }

    /// Longest post, in characters.
    pub fn post_max_chars(&self) -> usize {
        self.social.post_max_chars.unwrap_or(280).clamp(1, 10_000) as usize
    }

    /// Followers from which an account's posts are merged at read time, not fanned out.
    pub fn fanout_max_followers(&self) -> u64 {
        self.social.fanout_max_followers.unwrap_or(10_000)
    }

    /// Likes and follows that may wait to be written.
    pub fn engagement_queue(&self) -> usize {
        self.social.engagement_queue.unwrap_or(16_384).max(1) as usize
    }

    /// Likes or follows written in one transaction at most.
    pub fn engagement_batch(&self) -> usize {
        self.social.engagement_batch.unwrap_or(512).clamp(1, 10_000) as usize
    }

    /// Live alerts a second at most, per Space.
    pub fn alerts_per_sec(&self) -> u32 {
        self.social.alerts_per_sec.unwrap_or(2_000).max(1)
    }

    /// The Web Push key file: the shared one given, or the data directory's.
    pub fn push_key_path(&self) -> PathBuf {
        self.social
            .push_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir().join(crate::secrets::PUSH_KEY_FILE))
    }

    /// Who push services may contact.
    pub fn push_contact(&self) -> String {
        self.social
            .push_contact
            .clone()
            .unwrap_or_else(|| "mailto:admin@localhost".into())
    }

    /// Data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.store
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("stentor-data"))
    }

    /// Whether anonymous listeners are allowed.
    pub fn allow_anonymous(&self) -> bool {
        self.auth.allow_anonymous.unwrap_or(true)
    }

    /// Join ticket lifetime in seconds.
    pub fn ticket_ttl_secs(&self) -> u64 {
        self.auth.ticket_ttl_secs.unwrap_or(300)
    }

    /// Mix bitrate in bit/s.
    pub fn bitrate(&self) -> u32 {
        self.media.bitrate.unwrap_or(32_000)
    }

    /// LL-HLS parts, segments and window (a part length not a multiple of 20 ms is rounded
    /// down to one).
    pub fn hls(&self) -> stentor_hub::HlsConfig {
        let default = stentor_hub::HlsConfig::default();
        let m = &self.media;
        stentor_hub::HlsConfig {
            part_frames: m
                .hls_part_ms
                .map_or(default.part_frames, |ms| (ms / 20).clamp(10, 50)),
            segment_parts: m
                .hls_segment_parts
                .unwrap_or(default.segment_parts)
                .clamp(2, 30),
            window_segments: m
                .hls_window_segments
                .map_or(default.window_segments, |w| w.clamp(3, 100) as usize),
            ..default
        }
    }

    /// What statements of reasons are made with: the `puid` prefix, how long appeals stay
    /// open (never under six months).
    pub fn platform(&self) -> stentor_moderation::statement::Platform {
        let default = stentor_moderation::statement::Platform::default();
        stentor_moderation::statement::Platform {
            puid_prefix: self
                .moderation
                .puid_prefix
                .clone()
                .unwrap_or(default.puid_prefix),
            appeal_days: self
                .moderation
                .appeal_days
                .unwrap_or(default.appeal_days)
                .max(stentor_moderation::statement::MIN_APPEAL_DAYS),
            complaints: !self.small_enterprise(),
            ..default
        }
    }

    /// A micro or small enterprise, exempt from the DSA's Art. 20 to 28.
    pub fn small_enterprise(&self) -> bool {
        self.moderation.small_enterprise.unwrap_or(false)
    }

    /// The waiting room's policy.
    pub fn lobby(&self) -> stentor_gate::lobby::Lobby {
        let default = stentor_gate::lobby::Lobby::default();
        stentor_gate::lobby::Lobby {
            admit_per_sec: self
                .admission
                .lobby_joins_per_sec
                .map_or(default.admit_per_sec, |r| f64::from(r.max(1))),
            ..default
        }
    }

    /// The shedding policy's limits.
    pub fn shed_limits(&self) -> stentor_gate::shed::Limits {
        let default = stentor_gate::shed::Limits::default();
        stentor_gate::shed::Limits {
            sustain: self
                .admission
                .shed_sustain_ms
                .map_or(default.sustain, std::time::Duration::from_millis),
            ..default
        }
    }

    /// Per-address and per-network limits.
    pub fn caps(&self) -> stentor_gate::limits::Caps {
        let d = stentor_gate::limits::Caps::default();
        let a = &self.admission;
        stentor_gate::limits::Caps {
            ip_rate: a.ip_requests_per_sec.unwrap_or(d.ip_rate),
            ip_burst: a.ip_request_burst.unwrap_or(d.ip_burst),
            net_rate: a.network_requests_per_sec.unwrap_or(d.net_rate),
            net_burst: a.network_request_burst.unwrap_or(d.net_burst),
            costly_rate: a.costly_requests_per_sec.unwrap_or(d.costly_rate),
            costly_burst: a.costly_request_burst.unwrap_or(d.costly_burst),
            join_ip_rate: a.join_ip_per_sec.unwrap_or(d.join_ip_rate),
            join_ip_burst: a.join_ip_burst.unwrap_or(d.join_ip_burst),
            join_net_rate: a.join_network_per_sec.unwrap_or(d.join_net_rate),
            join_net_burst: a.join_network_burst.unwrap_or(d.join_net_burst),
            max_pace: a
                .join_max_wait_ms
                .map_or(d.max_pace, std::time::Duration::from_millis),
            ip_conns: a.ip_connections.unwrap_or(d.ip_conns),
            net_conns: a.network_connections.unwrap_or(d.net_conns),
            conns: a.connections.unwrap_or(d.conns),
            head_timeout: a
                .head_timeout_ms
                .map_or(d.head_timeout, std::time::Duration::from_millis),
        }
    }

    /// The messages one WebSocket connection may send: a burst, then a rate.
    pub fn command_quota(&self) -> governor::Quota {
        let nz = |n: u32| std::num::NonZeroU32::new(n.max(1)).expect("at least 1");
        let rate = self.admission.commands_per_sec.unwrap_or(10);
        let burst = self.admission.command_burst.unwrap_or(30).max(rate);
        governor::Quota::per_second(nz(rate)).allow_burst(nz(burst))
    }

    /// What one account may do with Spaces.
    pub fn space_rules(&self) -> SpaceRules {
        let d = SpaceRules::default();
        let s = &self.spaces;
        SpaceRules {
            scheduled_per_host: s.scheduled_per_host.unwrap_or(d.scheduled_per_host),
            live_per_host: s.live_per_host.unwrap_or(d.live_per_host),
            idle_unload: s
                .idle_unload_secs
                .map_or(d.idle_unload, std::time::Duration::from_secs),
        }
    }

    /// Deadlines of request bodies and sources.
    pub fn deadlines(&self) -> crate::deadline::Deadlines {
        let d = crate::deadline::Deadlines::default();
        let a = &self.admission;
        let ms = std::time::Duration::from_millis;
        crate::deadline::Deadlines {
            body_grace: a.body_timeout_ms.map_or(d.body_grace, ms),
            body_min_rate: a.body_min_rate.unwrap_or(d.body_min_rate),
            source_idle: a.source_idle_ms.map_or(d.source_idle, ms),
            ws_ping: a.ws_ping_ms.map_or(d.ws_ping, ms),
        }
    }

    /// Proof of work in under-attack mode.
    pub fn proofs(&self) -> stentor_gate::pow::Proofs {
        let d = stentor_gate::pow::Proofs::default();
        let min = self
            .admission
            .pow_min_bits
            .unwrap_or(d.min_bits)
            .clamp(1, 30);
        let max = self
            .admission
            .pow_max_bits
            .unwrap_or(d.max_bits)
            .clamp(1, 30);
        stentor_gate::pow::Proofs::new(min, max)
    }

    /// Whether the operator asked for under-attack mode from the start.
    pub fn under_attack(&self) -> bool {
        self.admission.under_attack.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn cli_beats_env_beats_file_beats_defaults() {
        let file: Config = toml::from_str(
            "[http]\nbind = \"127.0.0.1:9000\"\n[media]\nbitrate = 24000\n[auth]\nticket_ttl_secs = 60\n",
        )
        .unwrap();
        // SAFETY: this test is the only one in the crate touching these variables.
        unsafe {
            std::env::set_var("STENTOR_BITRATE", "48000");
            std::env::set_var("STENTOR_TICKET_TTL", "90");
        }
        let cli = Cli::parse_from(["x", "--ticket-ttl-secs", "120"]).config;
        let merged = cli.over(file);
        assert_eq!(merged.bind(), "127.0.0.1:9000".parse().unwrap()); // file
        assert_eq!(merged.bitrate(), 48_000); // env over file
        assert_eq!(merged.ticket_ttl_secs(), 120); // cli over env
        assert!(merged.allow_anonymous()); // default
        unsafe {
            std::env::remove_var("STENTOR_BITRATE");
            std::env::remove_var("STENTOR_TICKET_TTL");
        }
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_errors() {
        assert!(toml::from_str::<Config>("[http]\nport = 1\n").is_err());
        let c: Config = toml::from_str("[media]\nbitrate = 8000\n").unwrap();
        assert!(c.validate().is_err());
    }
}
