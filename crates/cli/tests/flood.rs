//! One bounded command path: a listener that floods commands is closed with 1008, a crowd
//! that sends commands at its allowance costs nobody audio (events never take audio's place
//! in the ring), a client that never reads what it is sent is let go, and a raised hand comes
//! down when its owner leaves.

mod common;

use common::{TestServer, close_of, live_space};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use stentor::client::parse_mix_frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_flood_closes_the_flooder_and_costs_another_listener_no_frame() {
    let server = TestServer::start("flood-commands").await;
    let (_host, space) = live_space(&server, "host_f", "Flood").await;
    let anon = server.api();
    let ticket = |api: &stentor::client::Api| {
        let (api, space) = (api.clone(), space.clone());
        async move { api.ticket(&space).await.unwrap().ticket }
    };
    let (mut victim, _) = anon.connect(&space, &ticket(&anon).await).await.unwrap();
    // The flooder: request and cancel as fast as the socket takes them.
    let (mut flooder, _) = anon.connect(&space, &ticket(&anon).await).await.unwrap();
    let flood = tokio::spawn(async move {
        let mut sent = 0u32;
        for i in 0..40_000u32 {
            let cmd = if i % 2 == 0 {
                "request_to_speak"
            } else {
                "cancel_request"
            };
            let text = format!(r#"{{"cmd":"{cmd}"}}"#);
            if flooder.send(Message::Text(text.into())).await.is_err() {
                break;
            }
            sent += 1;
        }
        (sent, close_of(&mut flooder).await)
    });
    // A crowd within its allowance at the same time: 40 listeners raising and lowering hands.
    let mut crowd = Vec::new();
    for _ in 0..40 {
        let (ws, _) = anon.connect(&space, &ticket(&anon).await).await.unwrap();
        crowd.push(ws);
    }
    let crowd = tokio::spawn(async move {
        for round in 0..25 {
            for ws in &mut crowd {
                let cmd = if round % 2 == 0 {
                    "request_to_speak"
                } else {
                    "cancel_request"
                };
                let _ = ws
                    .send(Message::Text(format!(r#"{{"cmd":"{cmd}"}}"#).into()))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        crowd
    });
    // The victim hears every frame for 3 s.
    let mut seqs = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, victim.next()).await {
        if let Message::Binary(data) = msg
            && let Some((seq, _)) = parse_mix_frame(&data)
        {
            seqs.push(seq);
        }
    }
    let (sent, (code, reason)) = flood.await.unwrap();
    assert_eq!(code, 1008, "{reason} after {sent} commands");
    let crowd = crowd.await.unwrap();
    assert!(seqs.len() > 120, "{} frames in 3 s", seqs.len());
    let missed: u64 = seqs.windows(2).map(|w| w[1] - w[0] - 1).sum();
    assert_eq!(missed, 0, "the victim missed {missed} frames");
    drop(crowd);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinger_that_never_reads_is_let_go() {
    // An allowance so large that only the bound on what waits for it can stop it.
    let server = TestServer::start_with("flood-pinger", |c| {
        c.admission.commands_per_sec = Some(1_000_000);
        c.admission.command_burst = Some(1_000_000);
    })
    .await;
    let (host, space) = live_space(&server, "host_p", "Flood").await;
    let ticket = server.api().ticket(&space).await.unwrap().ticket;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket
        .connect(server.base.trim_start_matches("http://").parse().unwrap())
        .await
        .unwrap();
    let head = format!(
        "GET /api/v1/spaces/{space}/ws?ticket={ticket} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // A masked ping with 100 bytes of payload, again and again, and never a read.
    let mut ping = vec![0x89, 0x80 | 100, 1, 2, 3, 4];
    ping.extend((0..100u8).map(|i| i ^ [1, 2, 3, 4][usize::from(i) % 4]));
    let mut sent = 0usize;
    let gone = loop {
        match tokio::time::timeout(Duration::from_secs(5), tcp.write_all(&ping)).await {
            Ok(Ok(())) => sent += ping.len(),
            Ok(Err(_)) => break true,
            Err(_) => break false,
        }
        if sent > 64 * 1024 * 1024 {
            break false;
        }
    };
    // Either the server reset the connection while we wrote, or it stopped reading and
    // closed: a read sees the end (after what it had sent).
    let closed = gone || {
        let mut sink = vec![0u8; 1 << 16];
        let end = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(end, tcp.read(&mut sink)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(_)) => continue,
                Err(_) => break false,
            }
        }
    };
    assert!(closed, "still connected after {sent} bytes of pings");
    assert!(
        sent < 8 * 1024 * 1024,
        "{sent} bytes of pings taken before letting go"
    );
    server
        .assert_metric(r#"stentor_closes_total{reason="not_reading"} 1"#)
        .await;
    drop(host);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_hand_comes_down_when_its_owner_leaves() {
    let server = TestServer::start("flood-hands").await;
    let (host, space) = live_space(&server, "host_h", "Flood").await;
    let anon = server.api();
    let (mut ws, hello) = anon
        .connect(&space, &anon.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    let me = hello["user"].as_u64().unwrap();
    ws.send(Message::Text(r#"{"cmd":"request_to_speak"}"#.into()))
        .await
        .unwrap();
    // The listener hears its own hand go up (hands reach only the stage and their owner).
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, ws.next()).await else {
            panic!("no hand_raised for the listener");
        };
        if let Message::Text(t) = msg
            && t.contains("hand_raised")
        {
            break;
        }
    }
    let hands = |v: serde_json::Value| v["hands"].as_array().unwrap().clone();
    assert_eq!(hands(host.space(&space).await.unwrap()), [me]);
    drop(ws);
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while !hands(host.space(&space).await.unwrap()).is_empty() {
        assert!(tokio::time::Instant::now() < until, "the hand stayed up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}
