//! Every phase of a connection has a deadline: a half-sent request body and a source that
//! goes silent are closed in their time, so that even with the server's connection cap
//! scaled down, they lock nobody out.

mod common;

use common::{TestServer, connect_from};
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Everything the server sends until it closes, or `None` if it keeps the connection open
/// past `within`.
async fn answer_within(tcp: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    tokio::time::timeout(within, tcp.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_half_sent_bodies_are_closed_in_their_time_and_lock_nobody_out() {
    let server = TestServer::start_with("deadline-body", |c| {
        c.admission.connections = Some(60);
        c.admission.body_timeout_ms = Some(500);
    })
    .await;
    let (host, space) = common::live_space(&server, "host_d", "Deadlines").await;
    // The host's kept-alive connection goes, so that the 60 take every place there is.
    drop(host);
    while server.state.gate.open() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut slow = Vec::new();
    for i in 0..60 {
        let mut tcp = connect_from(&format!("127.0.30.{}", i + 1), &server).await;
        tcp.write_all(
            b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
        slow.push(tcp);
    }
    // Every place is taken (the last accept may still be on its way).
    let full = Instant::now() + Duration::from_secs(2);
    while server.state.gate.open() < 60 && Instant::now() < full {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(server.state.gate.open(), 60);
    let started = Instant::now();
    for tcp in &mut slow {
        let answer = answer_within(tcp, Duration::from_secs(3))
            .await
            .expect("a half-sent body is answered and closed");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("did not arrive in time"), "{answer}");
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    // Their places are free again: a listener gets in.
    let response = reqwest::get(format!("{}/spaces/{space}/live.opus", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_sends_its_headers_and_then_nothing_is_ended() {
    let server = TestServer::start_with("deadline-source", |c| {
        c.admission.source_idle_ms = Some(500);
    })
    .await;
    let (host, space) = common::live_space(&server, "host_s", "Silent source").await;
    let ticket = host.ticket(&space).await.unwrap().ticket;
    let live = server.state.spaces.get(&space).await.unwrap();
    let mut tcp = connect_from("127.0.31.1", &server).await;
    let head = format!(
        "PUT /api/v1/spaces/{space}/source?ticket={ticket} HTTP/1.1\r\nHost: x\r\n\
         content-type: audio/ogg\r\ncontent-length: 10000000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    for page in live.hub.ogg_headers() {
        tcp.write_all(page).await.unwrap();
    }
    let started = Instant::now();
    let answer = answer_within(&mut tcp, Duration::from_secs(5))
        .await
        .expect("a silent source is ended");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_on_stage_who_answers_no_ping_is_let_go_and_one_who_answers_stays() {
    let server = TestServer::start_with("deadline-ping", |c| {
        c.admission.ws_ping_ms = Some(200);
    })
    .await;
    let (host, space) = common::live_space(&server, "host_p", "Pings").await;
    let (guest, _) = common::invited_on_stage(&server, &host, &space, "guest_p").await;
    // Both on stage: the host reads all along (tungstenite answers each ping with a pong
    // as it reads), the guest reads nothing after its hello, so it answers no ping.
    let ticket = host.ticket(&space).await.unwrap().ticket;
    let (mut reader, _) = host.connect(&space, &ticket).await.unwrap();
    let ticket = guest.ticket(&space).await.unwrap().ticket;
    let (mut silent, _) = guest.connect(&space, &ticket).await.unwrap();
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        if let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_millis(50), reader.next()).await
        {
            assert!(!message.is_close(), "the host, who answers, is kept");
            pings += usize::from(message.is_ping());
        }
    }
    assert!(pings >= 5, "pings every 200 ms, got {pings} in 1.5 s");
    // The silent one was let go after three pings: what it reads now ends in a close.
    // (A kept connection would go on sending pings: the wait is bounded.)
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    let closed = loop {
        match tokio::time::timeout_at(until, silent.next()).await {
            Ok(Some(Ok(m))) if !m.is_close() => continue,
            Ok(_) => break true,
            Err(_) => break false,
        }
    };
    assert!(closed, "a client that answers no ping is let go");
    server
        .assert_metric(r#"stentor_closes_total{reason="silent"} 1"#)
        .await;
    server.stop().await;
}
