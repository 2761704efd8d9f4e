//! The composition root: every start-up step in order ([`Server::bind`]), the accept loop
//! and the graceful stop ([`Server::run`]).

use crate::cluster::Cluster;
use crate::config::Config;
use crate::config::Role;
use crate::error::ApiError;
use crate::join::door;
use crate::listen::fanout::Audiences;
use crate::listen::wiring::{HAND_OVERS, HandOver, Wiring};
use crate::origin::live::Making;
use crate::origin::registry::Spaces;
use crate::prefixed::Prefixed;
use crate::state::AppState;
use crate::{api, config, metrics, overload, passwords, secrets};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use stentor_gate::ticket::TicketKey;
use stentor_gate::{capacity, limits};
use stentor_hub::HubConfig;
use stentor_media::MixerConfig;
use stentor_store::Store;
use tokio::net::TcpListener;

/// An error starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] stentor_store::StoreError),
    /// The ticket key could not be read or made.
    #[error(transparent)]
    Key(#[from] secrets::KeyError),
    /// The TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The cluster's bus could not be joined.
    #[error(transparent)]
    Bus(#[from] stentor_bus::BusError),
    /// The address could not be bound, or a file could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Clips one user may make per minute.
const CLIPS_PER_MINUTE: u32 = 3;
/// How often recordings past their retention are looked for.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Records the recording writer may hold in its queue (about a minute of 1 000 Spaces).
const RECORD_QUEUE: usize = 65_536;

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    /// Set when the server ends TLS itself.
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    hand_overs: tokio::sync::mpsc::Receiver<HandOver>,
}

impl Server {
    /// Opens the store, loads the ticket key and binds the listener: every startup step, in
    /// order, in one place.
    pub async fn bind(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let tls = match (&config.http.tls_cert, &config.http.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        let data_dir = config.data_dir();
        let tickets = load_ticket_key(&data_dir, config.auth.ticket_key_file.as_deref())?;
        let store = match &config.store.database_url {
            Some(url) => Store::connect(url, config.store.database_pool).await?,
            None => Store::open_dir(&data_dir).await?,
        };
        tracing::info!(backend = store.backend(), "store open");
        let mixer = MixerConfig {
            bitrate: config.bitrate(),
            ..MixerConfig::default()
        };
        let metrics = Arc::new(metrics::Metrics::default());
        let listener = listen(config.bind(), config.backlog())?;
        let cluster = join_cluster(&config, listener.local_addr()?).await?;
        let replays = match config.replays_dir() {
            Some(dir) => {
                let storage = Arc::new(stentor_record::LocalDir::new(&dir)?);
                let replays = Arc::new(crate::replay::Replays::new(
                    dir,
                    storage,
                    config.recording_retention(),
                    CLIPS_PER_MINUTE,
                ));
                let sweeping = replays.clone();
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(SWEEP_EVERY);
                    loop {
                        every.tick().await;
                        let replays = sweeping.clone();
                        let _ = tokio::task::spawn_blocking(move || replays.sweep()).await;
                    }
                });
                Some(replays)
            }
            None => None,
        };
        let recorder = match config.recordings_dir() {
            Some(dir) => Some(stentor_record::Recorder::start(dir, RECORD_QUEUE)?),
            None => None,
        };
        let spaces = Arc::new(Spaces::new(Making {
            recorder,
            store: store.clone(),
            mixer,
            hub: HubConfig {
                per_writer: config.listeners_per_writer(),
                cadence: config.cadence(),
                hls: config.hls(),
                ..HubConfig::default()
            },
            metrics: metrics.clone(),
            rules: config.space_rules(),
            cluster,
        }));
        let files = raise_file_limit();
        let capacity = capacity::Capacity::for_files(files, config.http.max_listeners);
        tracing::info!(
            addr = %listener.local_addr()?,
            files,
            listeners = capacity.max(),
            tls = tls.is_some(),
            "listening; the file limit allows this many listeners"
        );
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let overload = Arc::new(overload::Overload::new(
            config.shed_limits(),
            metrics.clone(),
        ));
        if config.under_attack() {
            overload.force_attack_mode(true);
        }
        let mut caps = config.caps();
        if config.admission.connections.is_none() {
            // Half the files for connections that are not (yet) listeners.
            caps.conns = caps.conns.min(u32::try_from(files / 2).unwrap_or(u32::MAX));
        }
        let gate = limits::Gate::new(caps);
        let proofs = Arc::new(config.proofs());
        let passwords = passwords::Passwords::for_this_machine()?;
        let tasks = tokio_util::task::TaskTracker::new();
        let (stage, hand_overs) = tokio::sync::mpsc::channel(HAND_OVERS);
        let wiring = Wiring {
            tasks: tasks.clone(),
            shutdown: shutdown_rx.clone(),
            overload: overload.clone(),
            quota: config.command_quota(),
            stage,
        };
        let audiences = Arc::new(Audiences::new(wiring, config.listeners_per_writer()));
        let pusher = crate::social::push::Pusher::open(
            store.clone(),
            &config.push_key_path(),
            config.social.push_key_file.is_none(),
            config.push_contact(),
            config.social.push_allow_http.unwrap_or(false),
        )?;
        let social = Arc::new(crate::social::Social::start(
            &store,
            &config,
            admission_probe(spaces.clone(), config.lobby()),
            live_here(spaces.clone()),
            pusher,
            Arc::new(stentor_record::LocalDir::new(data_dir.join("avatars"))?),
            shutdown_rx.clone(),
        ));
        let sessions = Arc::new(crate::sessions::Sessions::start(store.clone()));
        Ok(Self {
            listener,
            tls,
            shutdown,
            hand_overs,
            state: AppState {
                store,
                spaces,
                audiences,
                tickets,
                revocations: Arc::default(),
                sessions,
                config: Arc::new(config),
                metrics,
                capacity,
                overload,
                gate,
                proofs,
                passwords: Arc::new(passwords),
                shutdown: shutdown_rx,
                tasks,
                social,
                replays,
                reports: Arc::default(),
            },
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The URL of the bound address: `https://` when the server ends TLS itself.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// The handlers' shared state (for the demo and tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then tells every connection to go away (WebSocket
    /// close 1001, end of the Ogg streams) and waits for them to finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let store = self.state.store.clone();
        let spaces = self.state.spaces.clone();
        let going_away = self.shutdown;
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = going_away.send(true);
            for space in spaces.loaded() {
                space.hub.close();
            }
        };
        let state = self.state;
        let app = api::router(state.clone());
        if let Some(addr) = state.config.http.metrics_bind {
            let listener = TcpListener::bind(addr).await?;
            tracing::info!(%addr, "metrics served here");
            let (router, mut down) = (api::metrics_router(state.clone()), state.shutdown.clone());
            tokio::spawn(async move {
                let stop = async move { crate::shutdown::going_away(&mut down).await };
                if let Err(e) = axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::warn!(error = %e, "the metrics address stopped");
                }
            });
        }
        // Listeners called on stage leave their writer for a full connection.
        let (stage_state, mut hand_overs) = (state.clone(), self.hand_overs);
        tokio::spawn(async move {
            while let Some(hand_over) = hand_overs.recv().await {
                let task = crate::stage::hand_over(stage_state.clone(), hand_over);
                stage_state.tasks.spawn(task);
            }
        });
        let spaces = state.spaces.clone();
        tokio::spawn(overload::watch(
            state.overload.clone(),
            move || {
                spaces
                    .loaded()
                    .iter()
                    .map(|s| s.hub.writers_late_ms())
                    .fold(0.0, f64::max)
            },
            state.config.under_attack(),
            state.config.data_dir().join(overload::ATTACK_FLAG),
            state.shutdown.clone(),
        ));
        match (
            &state.config.moderation.tdb_url,
            state.config.small_enterprise(),
        ) {
            (Some(url), false) => {
                let endpoint = crate::transparency::Endpoint {
                    url: url.clone(),
                    token: state.config.moderation.tdb_token.clone(),
                };
                tokio::spawn(crate::transparency::run(
                    state.store.clone(),
                    state.config.platform(),
                    endpoint,
                    state.shutdown.clone(),
                ));
            }
            (Some(_), true) => tracing::warn!(
                "a small enterprise (Art. 19) submits nothing to the Transparency Database:                  tdb_url is ignored"
            ),
            (None, _) => {}
        }
        let node = state.spaces.cluster().cloned().map(|cluster| {
            let node = crate::origin::node::Node {
                cluster,
                spaces: state.spaces.clone(),
                capacity: state.capacity.max(),
                metrics: state.metrics.clone(),
            };
            tokio::spawn(node.run(state.shutdown.clone()))
        });
        let (gate, passwords) = (state.gate.clone(), state.passwords.clone());
        let registry = state.spaces.clone();
        let (revocations, ttl) = (state.revocations.clone(), state.config.ticket_ttl_secs());
        let mut down = state.shutdown.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        gate.forget_quiet();
                        passwords.forget_quiet();
                        revocations.lock().forget_expired(crate::clock::unix_now(), ttl);
                        let unloaded = registry.unload_unused();
                        if unloaded > 0 {
                            tracing::debug!(unloaded, "unloaded spaces nobody uses");
                        }
                    }
                    _ = down.changed() => return,
                }
            }
        });
        let mut shutdown = std::pin::pin!(shutdown);
        // The accept loop does nothing but accept: each connection is looked at in its own
        // task, so a crowd arriving never waits behind one slow client or the fan-out.
        loop {
            let (tcp, peer) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of files or memory for a moment: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let proxies = state.config.trusted_proxies();
            let from_proxy = proxies
                .iter()
                .any(|n| n.contains(&peer.ip().to_canonical()));
            let permit = if from_proxy {
                state.gate.connect_proxy()
            } else {
                state.gate.connect(peer.ip())
            };
            let permit = match permit {
                Ok(permit) => permit,
                Err(refusal) => {
                    state.metrics.reject(refusal.reason());
                    // Answered without reading: costs one write and the close.
                    let _ = tcp.try_write(&ApiError::Limited(refusal).to_http1());
                    continue;
                }
            };
            // Audio is many small writes: never let Nagle's algorithm hold one back.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            let (app, task_state, tls) = (app.clone(), state.clone(), self.tls.clone());
            state.tasks.spawn(async move {
                // Held while the connection is not a listener (head, API, the stage).
                let _permit = permit;
                match tls {
                    Some(tls) => serve_tls(task_state, app, tcp, peer, tls).await,
                    None => serve(task_state, app, tcp, peer).await,
                }
            });
        }
        drop(self.listener);
        drop(app);
        // Requests in flight finish and fan-out writers send every listener its close; each
        // connection's task ends when it is done.
        state.tasks.close();
        if tokio::time::timeout(std::time::Duration::from_secs(5), state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = state.tasks.len(),
                "connections still open 5 s after the shutdown"
            );
        }
        // The node leaves its cluster's list and gives its leases up.
        if let Some(node) = node {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(4), node).await;
        }
        // A connection still held by a request that did not finish must not keep the
        // process alive.
        if tokio::time::timeout(std::time::Duration::from_secs(5), store.close())
            .await
            .is_err()
        {
            tracing::warn!("the store did not close within 5 s");
        }
        Ok(())
    }
}

/// Serves one connection: reads its first request head (in the time the gate allows), then
/// hands it to the door (media, anonymous tickets) or to the HTTP server.
async fn serve(
    state: AppState,
    app: axum::Router,
    mut tcp: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let timeout = state.gate.head_timeout();
    let mut down = state.shutdown.clone();
    let sniffed = tokio::select! {
        sniffed = door::sniff(&mut tcp, timeout) => sniffed,
        // A connection that has not said what it wants when the server stops has nothing
        // to finish.
        () = crate::shutdown::going_away(&mut down) => return,
    };
    let (sniffed, read) = match sniffed {
        Ok(head) => head,
        Err(door::NoHead::Gone) => return,
        Err(door::NoHead::TooSlow) => return state.metrics.close("head_timeout"),
    };
    // A listener's join the door answers waits its turn under the caller's join rates here;
    // what it hands to the HTTP server (anything else, and a ticket it does not grant) is
    // counted against the request rates there.
    let door_answers = matches!(
        sniffed,
        door::Sniffed::OggLive { .. } | door::Sniffed::WebSocket { .. }
    );
    let client = door::client_ip(&state, peer.ip(), &read);
    if door_answers && let Err(e) = door::pace_join(&state, client).await {
        state.metrics.reject(e.reason());
        return door::refuse(tcp, &e).await;
    }
    match sniffed {
        door::Sniffed::OggLive { space, ticket, .. } => {
            door::ogg_live(&state, tcp, space, ticket).await;
        }
        door::Sniffed::WebSocket {
            space,
            ticket,
            head,
            accept,
        } => door::websocket(&state, tcp, space, ticket, &read[head..], accept).await,
        door::Sniffed::Ticket {
            space,
            head,
            keep_alive,
            work,
        } => {
            let ticket = door::Ticket {
                space,
                read,
                head,
                keep_alive,
                work,
            };
            if let Some(io) = door::ticket(&state, tcp, client, ticket).await {
                serve_http(&state, app, io, peer, timeout, false).await;
            }
        }
        door::Sniffed::Http => {
            let io = Prefixed::new(read, tcp);
            serve_http(&state, app, io, peer, timeout, false).await;
        }
    }
}

/// Serves a connection of the server's own TLS: the handshake (in the time a request head
/// gets), then HTTP/2 or HTTP/1.1 as the client chose by ALPN. The door's fast paths need the
/// plain socket, so everything here goes through the HTTP server.
async fn serve_tls(
    state: AppState,
    app: axum::Router,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: tokio_rustls::TlsAcceptor,
) {
    let timeout = state.gate.head_timeout();
    let mut down = state.shutdown.clone();
    let handshake = tokio::select! {
        done = tokio::time::timeout(timeout, tls.accept(tcp)) => done,
        () = crate::shutdown::going_away(&mut down) => return,
    };
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return state.metrics.close("tls_handshake");
        }
        Err(_) => return state.metrics.close("head_timeout"),
    };
    if stream.get_ref().1.alpn_protocol() == Some(crate::tls::H2) {
        serve_h2(&state, app, stream, peer, timeout).await;
    } else {
        serve_http(&state, app, stream, peer, timeout, true).await;
    }
}

/// The service every HTTP connection's requests go to: the router, with the caller's address
/// (behind a trusted proxy, the client it names) as `ConnectInfo<SocketAddr>` and
/// [`crate::tls::Https`] when the request came over HTTPS. Counts the requests in `seen`.
fn requests(
    state: &AppState,
    app: axum::Router,
    peer: SocketAddr,
    tls: bool,
    seen: Arc<std::sync::atomic::AtomicU64>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone
+ Send
+ 'static {
    let proxies: Arc<[ipnet::IpNet]> = state.config.trusted_proxies().into();
    hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let from_proxy = proxies
            .iter()
            .any(|n| n.contains(&peer.ip().to_canonical()));
        let headers = || {
            request
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
        };
        let client = stentor_gate::proxy::client_ip(peer.ip(), &proxies, headers());
        let https = crate::tls::is_https(tls, from_proxy, headers());
        let extensions = request.extensions_mut();
        extensions.insert(axum::extract::ConnectInfo(SocketAddr::new(
            client,
            peer.port(),
        )));
        if https {
            extensions.insert(crate::tls::Https);
        }
        tower::ServiceExt::oneshot(app.clone(), request)
    })
}

/// Serves a connection with the HTTP/1.1 server until it closes (or, on shutdown, once the
/// request in flight is answered).
async fn serve_http<I>(
    state: &AppState,
    app: axum::Router,
    io: I,
    peer: SocketAddr,
    head_timeout: std::time::Duration,
    tls: bool,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = requests(state, app, peer, tls, Arc::default());
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(head_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades();
    state.metrics.http_connections.inc();
    let mut conn = std::pin::pin!(conn);
    let mut down = state.shutdown.clone();
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = crate::shutdown::going_away(&mut down) => {
            // Finish the request in flight, then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    state.metrics.http_connections.dec();
    if let Err(e) = result {
        if e.is_timeout() {
            state.metrics.close("head_timeout");
        }
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Most requests one HTTP/2 connection carries at once.
pub const H2_STREAMS: u32 = 32;

/// Runs the streams of HTTP/2 connections as tasks of the server, so that stopping waits for
/// them as for every other connection.
#[derive(Clone)]
struct Tracked(tokio_util::task::TaskTracker);

impl<F> hyper::rt::Executor<F> for Tracked
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}

/// Serves an HTTP/2 connection until it closes: at most [`H2_STREAMS`] requests at once,
/// pinged when quiet and closed when the pings go unanswered, and told to go away (GOAWAY,
/// streams in flight finish) once no request has started for `idle` or the server stops.
async fn serve_h2<I>(
    state: &AppState,
    app: axum::Router,
    io: I,
    peer: SocketAddr,
    idle: std::time::Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let service = requests(state, app, peer, true, seen.clone());
    let mut builder = hyper::server::conn::http2::Builder::new(Tracked(state.tasks.clone()));
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(std::time::Duration::from_secs(20)))
        .keep_alive_timeout(std::time::Duration::from_secs(20))
        .max_concurrent_streams(H2_STREAMS)
        .max_header_list_size(16 * 1024);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    state.metrics.http_connections.inc();
    let mut conn = std::pin::pin!(conn);
    let mut down = state.shutdown.clone();
    let mut quiet = tokio::time::interval_at(tokio::time::Instant::now() + idle, idle);
    let mut last = 0;
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            _ = quiet.tick() => {
                let now = seen.load(std::sync::atomic::Ordering::Relaxed);
                if now == last {
                    conn.as_mut().graceful_shutdown();
                    break conn.await;
                }
                last = now;
            }
            () = crate::shutdown::going_away(&mut down) => {
                conn.as_mut().graceful_shutdown();
                break conn.await;
            }
        }
    };
    state.metrics.http_connections.dec();
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP/2 connection ended with an error");
    }
}

/// Raises the soft file limit as far as the hard limit allows and returns it: each listener
/// is a socket.
fn raise_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    }
}

/// Binds with an accept queue sized for crowds (tokio's default is 1024).
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The ticket key lives in the data directory so tickets survive a restart.
/// The bus and the leases of an origin (`None` for a single node).
async fn join_cluster(
    config: &Config,
    bound: std::net::SocketAddr,
) -> Result<Option<Cluster>, StartError> {
    let (role @ (Role::Origin | Role::Edge), Some(url)) = (config.role(), &config.cluster.nats)
    else {
        return Ok(None);
    };
    let node = config.cluster.node.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "node".into());
        format!("{host}/{bound}")
    });
    let role_name = crate::cluster::role_name(role);
    let bus = stentor_bus::Bus::nats_as(url, &format!("stentor {role_name} {node}")).await?;
    let lease = config.lease();
    let name = config.cluster_name();
    let bucket = stentor_bus::lease::bucket(&name);
    let leases = stentor_bus::Leases::open(&bus, &bucket, lease, &node).await?;
    let nodes = stentor_bus::Nodes::open(&bus, &stentor_bus::nodes::bucket(&name), lease).await?;
    let advertised = config
        .cluster
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    tracing::info!(cluster = %name, %node, nats = %url, ?lease, role = role_name, url = %advertised, "a node of the cluster");
    Ok(Some(Cluster {
        role,
        name,
        node,
        url: advertised,
        bus,
        leases,
        nodes,
        lease,
        tasks: tokio_util::task::TaskTracker::new(),
        known: Arc::default(),
    }))
}

/// The key of tickets: the shared file given (`--ticket-key-file`), or the data directory's
/// own, made on first start.
fn load_ticket_key(data_dir: &Path, shared: Option<&Path>) -> Result<TicketKey, StartError> {
    secrets::private_dir(data_dir)?;
    let key = match shared {
        Some(path) => secrets::shared_ticket_key(path)?,
        None => secrets::ticket_key(&data_dir.join(secrets::TICKET_KEY_FILE))?,
    };
    Ok(TicketKey::new(key))
}

/// How the waiting room of a Space admits, for pacing its alerts: the lobby's rate on each
/// node that admits listeners (this one, or the cluster's edges), and the crowd waiting here
/// (a Space loaded elsewhere counts none).
/// The live Spaces this node mixes, for the counts of the posts announcing them.
fn live_here(spaces: Arc<Spaces>) -> crate::social::counts::LiveHere {
    Arc::new(move || {
        spaces
            .loaded()
            .into_iter()
            .filter(|s| {
                s.mixes_here() && s.with_domain(|d| d.lifecycle()) == stentor_space::Lifecycle::Live
            })
            .map(|s| {
                Arc::new(Announcing {
                    id: s.id.clone(),
                    host: s.with_domain(|d| d.host()),
                    space: Arc::downgrade(&s),
                }) as Arc<dyn crate::social::counts::SpaceEvents>
            })
            .collect()
    })
}

/// A live Space, as the announcements' counts see it: held weakly, so that following its
/// announcements never keeps a Space nobody uses loaded.
struct Announcing {
    id: String,
    host: u64,
    space: std::sync::Weak<crate::origin::live::LiveSpace>,
}

impl crate::social::counts::SpaceEvents for Announcing {
    fn id(&self) -> &str {
        &self.id
    }

    fn host(&self) -> u64 {
        self.host
    }

    fn broadcast(&self, json: &str) {
        if let Some(space) = self.space.upgrade() {
            space.broadcast_text(json);
        }
    }
}

fn admission_probe(
    spaces: Arc<Spaces>,
    lobby: stentor_gate::lobby::Lobby,
) -> crate::social::alerts::AdmissionProbe {
    Arc::new(move |id: &str| {
        let nodes = spaces.cluster().map_or(1, |c| c.known_edges().len().max(1)) as f64;
        let admits = (lobby.admit_per_sec * nodes) as u32;
        let waiting = spaces
            .if_loaded(id)
            .map_or(0, |s| s.waiting(crate::clock::unix_now() as i64));
        (Some(admits), waiting)
    })
}
