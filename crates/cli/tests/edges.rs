//! A cluster on the real NATS and PostgreSQL that `.ci/run` names: an origin (its own
//! process), a standby origin and two edges. A listener on each edge decodes the speaker's
//! tone; a hand raised on an edge reaches the host on the origin; someone on stage who comes
//! to an edge is sent to the origin; the origin killed, the standby takes the Space up and
//! the listeners hear the speaker again on the connections they had; the end reaches every
//! edge.

mod common;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use stentor::client::{Api, SpaceSocket};
use stentor_media::signal::goertzel_power;
use stentor_server::config::Role;
use stentor_store::testing;
use tokio_tungstenite::tungstenite::Message;

/// The settings every node of the test's cluster shares.
#[derive(Clone)]
struct Shared {
    nats: String,
    database: String,
    key: std::path::PathBuf,
    cluster: String,
}

impl Shared {
    fn apply(&self, c: &mut stentor_server::Config, role: Role, node: &str) {
        c.cluster.role = Some(role);
        c.cluster.nats = Some(self.nats.clone());
        c.cluster.name = Some(self.cluster.clone());
        c.cluster.node = Some(node.to_owned());
        c.cluster.lease_ms = Some(1_000);
        c.store.database_url = Some(self.database.clone());
        c.auth.ticket_key_file = Some(self.key.clone());
    }
}

/// The origin in a process of its own, so that it can be killed.
struct OriginProcess {
    child: tokio::process::Child,
    base: String,
}

impl OriginProcess {
    async fn start(shared: &Shared, node: &str, dir: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join(format!("{node}.log"))).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stentor"))
            .args(["serve", "--role", "origin", "--lease-ms", "1000"])
            .args([
                "--nats",
                &shared.nats,
                "--cluster",
                &shared.cluster,
                "--node",
                node,
            ])
            .args(["--database-url", &shared.database, "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--ticket-key-file")
            .arg(&shared.key)
            .arg("--data-dir")
            .arg(dir.join(node))
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the stentor binary starts");
        let client = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(15);
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(
                Instant::now() < until,
                "the origin process answers within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, base }
    }
}

/// A listener signed up and connected through `server` (an edge).
async fn listener(server: &TestServer, handle: &str, space: &str) -> (Api, u64, SpaceSocket) {
    let mut api = server.api();
    let id = api.sign_up(handle, "password-1").await.unwrap();
    let ticket = api.ticket(space).await.unwrap();
    let (ws, hello) = api.connect(space, &ticket.ticket).await.unwrap();
    assert_eq!(hello["role"], "listener", "{hello}");
    (api, id, ws)
}

/// Whether `samples` carry `hz`, clearly above a frequency nowhere near it.
fn has_tone(samples: &[f32], hz: f32) -> bool {
    let (power, off) = (goertzel_power(samples, hz), goertzel_power(samples, 700.0));
    power > 0.01 && off < power / 100.0
}

/// Reads `ws` until a second of its audio (50 frames) carries `hz`; how long that took.
/// Text events on the way go to `events`.
async fn hear(
    ws: &mut SpaceSocket,
    hz: f32,
    within: Duration,
    events: &mut Vec<String>,
) -> Duration {
    let started = Instant::now();
    let mut window: Vec<Vec<u8>> = Vec::new();
    loop {
        let left = within.saturating_sub(started.elapsed());
        let message = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("{hz} Hz within {within:?}"))
            .expect("the connection stays open")
            .expect("the connection stays sound");
        match message {
            Message::Binary(data) => {
                if let Some((_, packet)) = stentor::client::parse_mix_frame(&data) {
                    window.push(packet.to_vec());
                }
            }
            Message::Text(text) => events.push(text.to_string()),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
        if window.len() == 50 {
            if has_tone(&common::decode(&window), hz) {
                return started.elapsed();
            }
            window.clear();
        }
    }
}

/// Waits until `ws` receives an event containing `needle`.
async fn event(ws: &mut SpaceSocket, needle: &str) -> String {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.contains(needle) => return text.to_string(),
            Ok(Some(Ok(_))) => {}
            other => panic!("no {needle} event: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edges_serve_the_origins_mix_forward_hands_and_keep_listeners_through_a_new_origin() {
    let (Ok(nats), Ok(admin)) = (
        std::env::var("STENTOR_TEST_NATS_URL"),
        std::env::var(testing::DATABASE_URL_VAR),
    ) else {
        eprintln!(
            "STENTOR_TEST_NATS_URL or {} is not set: the cluster test is left out",
            testing::DATABASE_URL_VAR
        );
        return;
    };
    let pid = std::process::id();
    let tag = format!("edges_{pid}");
    let database = testing::fresh_postgres(&admin, &tag)
        .await
        .expect("the PostgreSQL of STENTOR_TEST_DATABASE_URL answers");
    let dir = std::env::temp_dir().join(format!("stentor-test-edges-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("cluster.key");
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut bytes,
    )
    .unwrap();
    std::fs::write(&key, bytes).unwrap();
    let shared = Shared {
        nats: nats.clone(),
        database: database.clone(),
        key,
        cluster: format!("test-edges-{pid}"),
    };

    let mut origin = OriginProcess::start(&shared, "origin-a", &dir).await;
    let start = |name: &'static str, role: Role| {
        let shared = shared.clone();
        async move {
            TestServer::start_with(&format!("edges-{name}"), |c| shared.apply(c, role, name)).await
        }
    };
    let standby = start("origin-b", Role::Origin).await;
    let edge_one = start("edge-one", Role::Edge).await;
    let edge_two = start("edge-two", Role::Edge).await;

    // The host makes the Space on the origin and speaks there.
    let mut host = Api::new(&origin.base);
    let host_id = host.sign_up("edge_host", "password-1").await.unwrap();
    let space = host.create_space("Through the edges").await.unwrap();
    host.command(&space, serde_json::json!({"cmd": "start"}))
        .await
        .unwrap();
    let speaking = common::speak_tone(&host, &space, 440.0, 120.0);

    // A crowd asking an edge for tickets at once, before the edge has the Space: one load,
    // one snapshot from the origin (and the downlink's own first one), not one each.
    let http = reqwest::Client::new();
    let asks = (0..50).map(|_| {
        http.post(format!("{}/api/v1/spaces/{space}/tickets", edge_one.base))
            .send()
    });
    for answer in futures_util::future::join_all(asks).await {
        assert_eq!(answer.unwrap().status(), 200);
    }
    let metrics = http
        .get(format!("{}/metrics", origin.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let served: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("stentor_snapshots_served_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no snapshot count in\n{metrics}"));
    eprintln!("snapshots served: {served}");
    assert!(served <= 3, "{served} snapshots for one edge's crowd");

    // A listener on each edge hears the tone.
    let (_one_api, one_id, mut one) = listener(&edge_one, "edge_listener_one", &space).await;
    let (_two_api, _, mut two) = listener(&edge_two, "edge_listener_two", &space).await;
    let mut seen = Vec::new();
    hear(&mut one, 440.0, Duration::from_secs(10), &mut seen).await;
    hear(&mut two, 440.0, Duration::from_secs(10), &mut seen).await;

    // LL-HLS: the origin and both edges name the same parts and send the same bytes for
    // them, so that one cache in front of all three keeps one copy.
    let bases = [
        origin.base.clone(),
        edge_one.base.clone(),
        edge_two.base.clone(),
    ];
    let until = Instant::now() + Duration::from_secs(10);
    let common_segment = loop {
        let mut ranges = Vec::new();
        for base in &bases {
            let text = http
                .get(format!("{base}/spaces/{space}/live.m3u8"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let whole: Vec<u64> = text
                .lines()
                .filter_map(|l| l.strip_prefix("hls/")?.strip_suffix(".m4s")?.parse().ok())
                .collect();
            ranges.push((whole.first().copied(), whole.last().copied()));
        }
        let lowest = ranges.iter().filter_map(|r| r.0).max();
        let highest = ranges.iter().filter_map(|r| r.1).min();
        if ranges.iter().all(|r| r.1.is_some())
            && let (Some(lo), Some(hi)) = (lowest, highest)
            && lo <= hi
        {
            break hi;
        }
        assert!(
            Instant::now() < until,
            "no segment listed by every node: {ranges:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let mut copies = Vec::new();
    for base in &bases {
        let bytes = http
            .get(format!("{base}/spaces/{space}/hls/{common_segment}.m4s"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        copies.push(bytes);
    }
    assert!(
        copies[0].len() > 1000,
        "a segment of {} bytes",
        copies[0].len()
    );
    assert_eq!(
        copies[0], copies[1],
        "the origin and edge one differ on segment {common_segment}"
    );
    assert_eq!(
        copies[0], copies[2],
        "the origin and edge two differ on segment {common_segment}"
    );

    // `stentor cluster status` shows the four nodes, the Space's origin and its audience on
    // the edges (and so does the origin's count of listeners).
    let until = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = stentor::cluster::status(&nats, &shared.cluster)
            .await
            .unwrap();
        if status.nodes.len() == 4 && status.spaces.get(&space).is_some_and(|s| s.total == 2) {
            break status;
        }
        assert!(
            Instant::now() < until,
            "the cluster's status in 5 s: {}",
            status.table()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let listed = &status.spaces[&space];
    assert_eq!(
        listed.origin.as_deref(),
        Some("origin-a"),
        "{}",
        status.table()
    );
    assert_eq!(
        listed.listeners.get("edge-one"),
        Some(&1),
        "{}",
        status.table()
    );
    let roles: Vec<_> = status
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.role.as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            ("edge-one", "edge"),
            ("edge-two", "edge"),
            ("origin-a", "origin"),
            ("origin-b", "origin")
        ]
    );
    let until = Instant::now() + Duration::from_secs(5);
    while host.space(&space).await.unwrap()["listeners"] != 2 {
        assert!(
            Instant::now() < until,
            "the origin counts the edges' listeners"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A hand raised on an edge reaches the host, and its owner hears of it.
    one.send(Message::Text(r#"{"cmd":"request_to_speak"}"#.into()))
        .await
        .unwrap();
    event(&mut one, "hand_raised").await;
    let view = host.space(&space).await.unwrap();
    assert_eq!(view["hands"], serde_json::json!([one_id]), "{view}");

    // Someone on stage who comes to an edge is sent to the origin.
    let ticket = Api::new(&edge_one.base)
        .with_token(host.token().map(str::to_owned))
        .ticket(&space)
        .await
        .unwrap();
    let url = format!(
        "{}/api/v1/spaces/{space}/ws?ticket={}",
        edge_one.base.replace("http://", "ws://"),
        ticket.ticket
    );
    let (mut at_edge, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the stage's socket opens on an edge");
    let (code, reason) = common::close_of(&mut at_edge).await;
    assert_eq!((code, reason.as_str()), (4307, origin.base.as_str()));
    // A client of stentor's follows it there by itself.
    let (_, hello) = Api::new(&edge_one.base)
        .connect(&space, &ticket.ticket)
        .await
        .unwrap();
    assert_eq!(hello["role"], "host", "{hello}");

    // The origin dies; the standby takes the Space up, the host speaks again there (a new
    // tone), and the listeners hear it on the connections they had.
    origin.child.kill().await.unwrap();
    let killed = Instant::now();
    speaking.abort();
    let host_on_standby = Api::new(&standby.base).with_token(host.token().map(str::to_owned));
    let until = Instant::now() + Duration::from_secs(10);
    let speaking = loop {
        // The standby admits the stage once it holds the Space.
        if host_on_standby.ticket(&space).await.is_ok() {
            break common::speak_tone(&host_on_standby, &space, 660.0, 60.0);
        }
        assert!(Instant::now() < until, "the standby takes the space up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    hear(&mut one, 660.0, Duration::from_secs(15), &mut seen).await;
    hear(&mut two, 660.0, Duration::from_secs(15), &mut seen).await;
    eprintln!(
        "audio of the new origin on both edges {:?} after the kill",
        killed.elapsed()
    );
    let holder = standby
        .state
        .spaces
        .cluster()
        .unwrap()
        .leases
        .holder(&space)
        .await
        .unwrap();
    assert_eq!(holder.as_deref(), Some("origin-b"));

    // The end on the origin ends the Space on every edge.
    host_on_standby
        .command(&space, serde_json::json!({"cmd": "end"}))
        .await
        .unwrap();
    event(&mut one, r#""ended""#).await;
    event(&mut two, r#""ended""#).await;
    speaking.abort();
    let _ = host_id;

    for server in [edge_one, edge_two, standby] {
        server.stop().await;
    }
    let bus = stentor_bus::Bus::nats(&nats).await.unwrap();
    let js = async_nats::jetstream::new(bus.nats_client().unwrap().clone());
    for bucket in [
        stentor_bus::lease::bucket(&shared.cluster),
        stentor_bus::nodes::bucket(&shared.cluster),
    ] {
        let _ = js.delete_key_value(&bucket).await;
    }
    let _ = testing::drop_postgres(&admin, &tag).await;
    let _ = std::fs::remove_dir_all(&dir);
}
