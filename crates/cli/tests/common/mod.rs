//! Helpers shared by the end-to-end tests: a real server on port 0, and audio analysis.
#![allow(dead_code)]

pub mod hls;

use futures_util::StreamExt;
use std::path::PathBuf;
use std::time::Duration;
use stentor::client::Api;
use stentor::client::SpaceSocket;
use stentor_media::{Decoder, FRAME_SAMPLES};
use stentor_server::{AppState, Config, Server};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

/// A server running in this process.
pub struct TestServer {
    pub base: String,
    pub state: AppState,
    pub data_dir: PathBuf,
    /// The self-signed certificate the server ends TLS with, when it does (PEM).
    pub ca: Option<Vec<u8>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with a fresh data directory.
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, |_| {}).await
    }

    /// Starts a server with a fresh data directory and adjusted settings.
    pub async fn start_with(name: &str, adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir =
            std::env::temp_dir().join(format!("stentor-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let mut config = Config::default();
        adjust(&mut config);
        Self::start_config(data_dir, config).await
    }

    /// Starts a server that ends TLS itself, with a self-signed certificate for 127.0.0.1
    /// and localhost made here.
    pub async fn start_tls(name: &str, adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir =
            std::env::temp_dir().join(format!("stentor-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir).unwrap();
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let made = rcgen::generate_simple_self_signed(names).expect("a certificate is made");
        let (cert, key) = (data_dir.join("cert.pem"), data_dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let mut config = Config::default();
        config.http.tls_cert = Some(cert);
        config.http.tls_key = Some(key);
        adjust(&mut config);
        let mut server = Self::start_config(data_dir, config).await;
        server.ca = Some(made.cert.pem().into_bytes());
        server
    }

    /// Starts a server on an existing data directory.
    pub async fn start_in(data_dir: PathBuf) -> Self {
        Self::start_config(data_dir, Config::default()).await
    }

    /// Starts a server on an existing data directory with adjusted settings.
    pub async fn start_in_with(data_dir: PathBuf, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::default();
        adjust(&mut config);
        Self::start_config(data_dir, config).await
    }

    async fn start_config(data_dir: PathBuf, mut config: Config) -> Self {
        config.http.bind = Some("127.0.0.1:0".parse().unwrap());
        config.store.data_dir = Some(data_dir.clone());
        let server = Server::bind(config).await.expect("server binds");
        let base = server.base_url();
        let state = server.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            base,
            state,
            data_dir,
            ca: None,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has closed its store.
    pub async fn stop(mut self) -> PathBuf {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task.take().unwrap())
            .await;
        self.data_dir.clone()
    }

    pub fn api(&self) -> Api {
        match &self.ca {
            Some(ca) => Api::trusting(&self.base, ca).expect("the certificate is usable"),
            None => Api::new(&self.base),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        let host = self.base.split_once("://").expect("a URL").1;
        host.parse().expect("an address")
    }

    /// Asserts that the metrics hold `line` (say `stentor_closes_total{reason="silent"} 1`),
    /// showing the counters of that name if they do not.
    pub async fn assert_metric(&self, line: &str) {
        let metrics = self.metrics().await;
        let name = line.split(['{', ' ']).next().unwrap_or(line);
        assert!(
            metrics.contains(line),
            "no `{line}` in:\n{}",
            metrics
                .lines()
                .filter(|l| l.starts_with(name))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// The server's metrics text.
    pub async fn metrics(&self) -> String {
        let resp = self
            .api()
            .http()
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        resp.text().await.unwrap()
    }
}

/// Waits for the server to close the socket and returns the close code and reason.
pub async fn close_of(ws: &mut SpaceSocket) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("closed in time");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (frame.code.into(), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) | None => return (1005, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return (1006, e.to_string()),
        }
    }
}

/// A signed-in host with a live Space, and a second user on stage as a speaker.
pub async fn live_space_with_two_speakers(server: &TestServer) -> (Api, Api, String, u64) {
    let (host, space) = live_space(server, "host_one", "Two tones").await;
    let (guest, guest_id) = invited_on_stage(server, &host, &space, "guest_two").await;
    (host, guest, space, guest_id)
}

/// A new account `handle` (password `password-1`), signed in.
pub async fn signed_up(server: &TestServer, handle: &str) -> Api {
    let mut api = server.api();
    api.sign_up(handle, "password-1").await.unwrap();
    api
}

/// A new account `handle` whom `host` invites to the stage of `space` and who accepts: the
/// guest signed in, and their id.
pub async fn invited_on_stage(
    server: &TestServer,
    host: &Api,
    space: &str,
    handle: &str,
) -> (Api, u64) {
    let mut guest = server.api();
    let id = guest.sign_up(handle, "password-2").await.unwrap();
    host.command(space, serde_json::json!({"cmd": "invite", "user": id}))
        .await
        .unwrap();
    guest
        .command(space, serde_json::json!({"cmd": "accept_invite"}))
        .await
        .unwrap();
    (guest, id)
}

/// An HTTP client whose connections come from loopback address `ip`.
pub fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// `speaker` (on stage in `space`) publishing a tone of `hz` for `seconds` over a WebSocket of
/// its own, in a task.
pub fn speak_tone(
    speaker: &Api,
    space: &str,
    hz: f32,
    seconds: f64,
) -> tokio::task::JoinHandle<()> {
    let (speaker, space) = (speaker.clone(), space.to_owned());
    tokio::spawn(async move {
        let ticket = speaker.ticket(&space).await.unwrap();
        let (mut ws, _) = speaker.connect(&space, &ticket.ticket).await.unwrap();
        stentor::speak::publish(&mut ws, &stentor::speak::Source::Tone(hz), Some(seconds))
            .await
            .unwrap();
    })
}

/// Asserts that `samples` carry a tone of `hz`, clearly above a frequency nowhere near it.
pub fn assert_tone(samples: &[f32], hz: f32, who: &str) {
    use stentor_media::signal::goertzel_power;
    let (power, off) = (goertzel_power(samples, hz), goertzel_power(samples, 700.0));
    assert!(power > 0.01, "{who}: {hz} Hz at {power}");
    assert!(off < power / 100.0, "{who}: 700 Hz at {off} beside {power}");
}

/// Decodes Opus packets in order into one signal.
pub fn decode(packets: impl IntoIterator<Item = impl AsRef<[u8]>>) -> Vec<f32> {
    let mut dec = Decoder::new().unwrap();
    let mut out = Vec::new();
    let mut pcm = [0f32; FRAME_SAMPLES];
    for p in packets {
        dec.decode(p.as_ref(), &mut pcm)
            .expect("the server sends valid opus");
        out.extend_from_slice(&pcm);
    }
    out
}

/// A signed-up host `handle` with a live Space titled `title`: the set-up most tests start
/// from.
pub async fn live_space(server: &TestServer, handle: &str, title: &str) -> (Api, String) {
    let host = signed_up(server, handle).await;
    let space = host.create_space(title).await.unwrap();
    host.command(&space, serde_json::json!({"cmd": "start"}))
        .await
        .unwrap();
    (host, space)
}

/// The next mix frame a WebSocket listener receives (its sequence number), within 5 s.
pub async fn next_audio(ws: &mut SpaceSocket) -> Option<u64> {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, ws.next()).await {
        if let Message::Binary(data) = msg
            && let Some((seq, _)) = stentor::client::parse_mix_frame(&data)
        {
            return Some(seq);
        }
    }
    None
}

/// A raw TCP connection from loopback address `ip` to the server.
pub async fn connect_from(ip: &str, server: &TestServer) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(ip.parse().unwrap(), 0))
        .unwrap();
    let addr = server.addr();
    socket.connect(addr).await.unwrap()
}

/// Starts `stentor demo` in a process of its own on `data`; the child and its base URL.
pub fn demo_process(data: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stentor"))
        .args(["demo", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("stentor listening on ")
                .or_else(|| l.trim().strip_prefix("open in a browser:").map(str::trim))
                .map(|u| u.trim_end_matches("/s/demo").to_owned())
        })
        .expect("the binary prints its address");
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}
