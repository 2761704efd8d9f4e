//! The server's own TLS: pages over HTTP/2 chosen by ALPN, `Secure` cookies, a speaker and
//! listeners over `wss://` and `https://` hearing a known tone, a stalled or garbled handshake
//! closed without harm to anyone else, and the stop telling TLS listeners 1001.

mod common;

use common::{TestServer, assert_tone, close_of, decode, live_space};
use futures_util::StreamExt;
use std::time::Duration;
use stentor::listen::record;
use stentor_media::FRAME_SAMPLES;
use stentor_media::ogg::OggReader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_pages_come_by_http2_and_listeners_hear_the_speaker() {
    let server = TestServer::start_tls("tls-h2", |_| {}).await;
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let http = server.api().http().clone();

    let page = http.get(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.version(), reqwest::Version::HTTP_2, "ALPN chose h2");

    // The session cookie of an HTTPS sign-up is Secure.
    let signed_up = http
        .post(format!("{}/api/v1/accounts", server.base))
        .json(&serde_json::json!({"handle": "tls_cookie", "password": "password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), 201);
    let cookie = signed_up.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // A speaker publishes 440 Hz over wss://.
    let (host, space) = live_space(&server, "tls_host", "Over TLS").await;
    let speaker = common::speak_tone(&host, &space, 440.0, 6.0);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A WebSocket listener over wss:// hears it, every frame.
    let frames = 150;
    let ws_listener = {
        let (api, space) = (server.api(), space.clone());
        tokio::spawn(async move { record(&api, &space, frames).await.unwrap() })
    };
    // An Ogg listener over HTTP/2 hears it too.
    let ogg = http
        .get(format!("{}/spaces/{space}/live.opus", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ogg.status(), 200);
    assert_eq!(ogg.version(), reqwest::Version::HTTP_2);
    assert_eq!(ogg.headers()["content-type"], "audio/ogg");
    let mut body = ogg.bytes_stream();
    let (mut reader, mut packets) = (OggReader::new(), Vec::new());
    while packets.len() < frames + 2 {
        reader.feed(&body.next().await.unwrap().unwrap());
        while let Some(p) = reader.next_packet().unwrap() {
            packets.push(p);
        }
    }
    assert!(packets[0].data.starts_with(b"OpusHead"));
    let audio = &packets[2..];
    for pair in audio.windows(2) {
        assert_eq!(pair[1].granule, pair[0].granule + FRAME_SAMPLES as u64);
    }
    assert_tone(
        &decode(audio.iter().map(|p| &p.data))[FRAME_SAMPLES * 10..],
        440.0,
        "ogg over h2",
    );

    let rec = ws_listener.await.unwrap();
    assert_eq!(rec.gaps(), 0, "the wss listener missed frames");
    let heard = decode(rec.frames.iter().map(|(_, p)| p));
    assert_tone(&heard[FRAME_SAMPLES * 10..], 440.0, "wss");
    speaker.await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_or_garbled_handshake_is_closed_and_costs_nobody_else() {
    let server = TestServer::start_tls("tls-stall", |c| {
        c.admission.head_timeout_ms = Some(1_000);
    })
    .await;
    let (_host, space) = live_space(&server, "tls_stall", "Stalled").await;
    let anon = server.api();
    let (mut ws, _) = anon
        .connect(&space, &anon.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();

    // Connected, and then nothing: closed when the head deadline passes.
    let mut stalled = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf))
        .await
        .expect("closed by the server in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "nothing is answered to a client that said nothing");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Plain HTTP at a TLS port: refused by the handshake, the connection closed.
    let mut plain = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer))
        .await
        .expect("closed in time");
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "no page without TLS");

    // The listener went on hearing the Space through both.
    for _ in 0..10 {
        assert!(common::next_audio(&mut ws).await.is_some());
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"stentor_closes_total{reason="tls_handshake"} 1"#),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_tells_tls_listeners_going_away() {
    let server = TestServer::start_tls("tls-stop", |_| {}).await;
    let (_host, space) = live_space(&server, "tls_stopper", "Stopping").await;
    let anon = server.api();
    let (mut ws, _) = anon
        .connect(&space, &anon.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    assert!(common::next_audio(&mut ws).await.is_some());
    let stopping = tokio::spawn(server.stop());
    let (code, _) = close_of(&mut ws).await;
    assert_eq!(code, 1001);
    stopping.await.unwrap();
}

#[tokio::test]
async fn plain_http_cookies_are_not_secure_unless_a_trusted_proxy_says_https() {
    let server = TestServer::start_with("tls-proxy-cookie", |c| {
        c.http.trusted_proxies = Some(vec!["127.0.0.0/8".parse().unwrap()]);
    })
    .await;
    let sign_up = |handle: &'static str, proto: Option<&'static str>| {
        let url = format!("{}/api/v1/accounts", server.base);
        async move {
            let mut request = reqwest::Client::new()
                .post(url)
                .json(&serde_json::json!({"handle": handle, "password": "password-1"}));
            if let Some(proto) = proto {
                request = request.header("x-forwarded-proto", proto);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 201);
            response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert!(!sign_up("plain_one", None).await.contains("Secure"));
    assert!(!sign_up("plain_two", Some("http")).await.contains("Secure"));
    assert!(sign_up("proxied", Some("https")).await.contains("; Secure"));
    server.stop().await;
}
