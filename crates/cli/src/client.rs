//! A small client of the stentor API and WebSocket, used by `speak`, `listen` and tests.

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An open WebSocket to a Space.
pub type SpaceSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A join ticket as the server issues it.
#[derive(Debug, Clone, Deserialize)]
pub struct TicketInfo {
    /// The signed ticket.
    pub ticket: String,
    /// Who it is for.
    pub user: u64,
    /// Their role.
    pub role: String,
}

/// The HTTP API of one server, optionally signed in.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    /// Set when the server's certificate is checked against a given authority.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Api {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            token: None,
            tls: None,
        }
    }

    /// A client of an `https://` server whose certificate is signed by the authority (or is
    /// the self-signed certificate) in `ca_pem`, instead of one the public roots know.
    pub fn trusting(base: &str, ca_pem: &[u8]) -> anyhow::Result<Self> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let mut http = reqwest::Client::builder().tls_built_in_root_certs(false);
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.context("reading the certificate authority")?;
            http = http.add_root_certificate(reqwest::Certificate::from_der(&cert)?);
            roots.add(cert)?;
        }
        if roots.is_empty() {
            bail!("no certificate in the certificate authority file");
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http: http.build()?,
            token: None,
            tls: Some(std::sync::Arc::new(tls)),
        })
    }

    /// The client of the command line: trusting `ca_file` when one is given.
    pub fn for_cli(base: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        match ca_file {
            None => Ok(Self::new(base)),
            Some(path) => {
                let pem = std::fs::read(path).with_context(|| {
                    format!("reading the certificate authority {}", path.display())
                })?;
                Self::trusting(base, &pem)
            }
        }
    }

    /// The HTTP client it calls the API with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The same client, signed in with a session token.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A JSON request to `/api/v1{path}` as this client's user: the answer's body, or an
    /// error carrying the status and the problem's detail.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("{path}: {status}: {detail}");
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// Creates an account and signs in as it; returns the user id.
    pub async fn sign_up(&mut self, handle: &str, password: &str) -> anyhow::Result<u64> {
        self.open_session("/accounts", handle, password).await
    }

    /// Signs in; returns the user id.
    pub async fn sign_in(&mut self, handle: &str, password: &str) -> anyhow::Result<u64> {
        self.open_session("/sessions", handle, password).await
    }

    /// Posts credentials to `path` and keeps the session token it answers with.
    async fn open_session(
        &mut self,
        path: &str,
        handle: &str,
        password: &str,
    ) -> anyhow::Result<u64> {
        let body = serde_json::json!({"handle": handle, "password": password});
        let v = self.call(reqwest::Method::POST, path, Some(body)).await?;
        self.token = v["token"].as_str().map(str::to_owned);
        v["user"]["id"].as_u64().context("no user id")
    }

    /// The session token, once signed in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Creates a Space; returns its id.
    pub async fn create_space(&self, title: &str) -> anyhow::Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/spaces",
                Some(serde_json::json!({"title": title})),
            )
            .await?;
        v["id"].as_str().map(str::to_owned).context("no space id")
    }

    /// A Space's public view.
    pub async fn space(&self, id: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, &format!("/spaces/{id}"), None)
            .await
    }

    /// Sends a command (`{"cmd": ...}`) as the signed-in user.
    pub async fn command(&self, space: &str, command: Value) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/spaces/{space}/commands"),
            Some(command),
        )
        .await
        .map(|_| ())
    }

    /// A join ticket for this client.
    pub async fn ticket(&self, space: &str) -> anyhow::Result<TicketInfo> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/spaces/{space}/tickets"),
                None,
            )
            .await?;
        Ok(serde_json::from_value(v)?)
    }

    /// Opens the Space's WebSocket with a ticket and reads the `hello` event. A node that
    /// sends the connection elsewhere (close 4307: an edge sending the stage to the Space's
    /// origin, or its listeners to another edge) is followed, with the same ticket.
    pub async fn connect(&self, space: &str, ticket: &str) -> anyhow::Result<(SpaceSocket, Value)> {
        let mut base = self.base.clone();
        for _ in 0..3 {
            match self.open_at(&base, space, ticket).await? {
                Opened::Hello(ws, hello) => return Ok((*ws, hello)),
                Opened::Elsewhere(url) => base = url,
            }
        }
        bail!("sent elsewhere three times in a row")
    }

    async fn open_at(&self, base: &str, space: &str, ticket: &str) -> anyhow::Result<Opened> {
        let url = format!(
            "{}/api/v1/spaces/{space}/ws?ticket={ticket}",
            base.replacen("http", "ws", 1)
        );
        // Small audio frames must leave at once: disable Nagle's algorithm.
        let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let (mut ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(url, None, true, connector)
                .await
                .context("websocket connect")?;
        while let Some(msg) = ws.next().await {
            match msg? {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str())?;
                    if v["event"] == "hello" {
                        return Ok(Opened::Hello(Box::new(ws), v));
                    }
                }
                Message::Close(Some(frame)) if u16::from(frame.code) == 4307 => {
                    return Ok(Opened::Elsewhere(frame.reason.to_string()));
                }
                _ => {}
            }
        }
        bail!("the server closed before saying hello")
    }
}

/// What opening a Space's WebSocket came to.
enum Opened {
    /// The connection, and its `hello`.
    Hello(Box<SpaceSocket>, Value),
    /// Sent to another node (its base URL).
    Elsewhere(String),
}

/// Frames one speaker packet for the WebSocket (`0x01`, sequence, Opus).
pub fn publish_frame(seq: u32, packet: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + packet.len());
    b.put_u8(0x01);
    b.put_u32(seq);
    b.put_slice(packet);
    b.freeze()
}

/// Parses a mix frame (`0x02`, sequence, Opus) from the WebSocket.
pub fn parse_mix_frame(data: &[u8]) -> Option<(u64, &[u8])> {
    if data.len() < 9 || data[0] != 0x02 {
        return None;
    }
    Some((u64::from_be_bytes(data[1..9].try_into().ok()?), &data[9..]))
}

/// Sends one packet on a speaker's socket.
pub async fn send_packet(ws: &mut SpaceSocket, seq: u32, packet: &[u8]) -> anyhow::Result<()> {
    ws.send(Message::Binary(publish_frame(seq, packet))).await?;
    Ok(())
}
