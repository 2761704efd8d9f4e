//! Bad input costs only the connection that sent it: each gets a clear error, and the Space
//! and everyone else go on.

mod common;

use common::{TestServer, close_of, live_space_with_two_speakers};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use stentor::client::{Api, SpaceSocket, publish_frame};
use stentor::listen::record;
use stentor_gate::ticket::Ticket;
use stentor_server::unix_now;
use stentor_space::Role;
use tokio_tungstenite::tungstenite::{self, Message};

/// The HTTP status of a refused WebSocket handshake.
async fn refused_status(url: String) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.headers()["content-type"], "application/problem+json");
            resp.status().as_u16()
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

fn ws_url(server: &TestServer, space: &str, ticket: &str) -> String {
    format!(
        "{}/api/v1/spaces/{space}/ws?ticket={ticket}",
        server.base.replacen("http", "ws", 1)
    )
}

async fn listener(api: &Api, space: &str) -> SpaceSocket {
    let ticket = api.ticket(space).await.unwrap();
    api.connect(space, &ticket.ticket).await.unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_the_connection_that_sent_it() {
    let server = TestServer::start("bad-input").await;
    let (host, guest, space, guest_id) = live_space_with_two_speakers(&server).await;

    // A healthy speaker keeps publishing throughout.
    let speaker = {
        let (host, space) = (host.clone(), space.clone());
        tokio::spawn(async move {
            let ticket = host.ticket(&space).await.unwrap();
            let (mut ws, _) = host.connect(&space, &ticket.ticket).await.unwrap();
            stentor::speak::publish(&mut ws, &stentor::speak::Source::Tone(440.0), Some(6.0))
                .await
                .unwrap();
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A listener who tries to publish is refused with a policy violation.
    let anon = server.api();
    let mut ws = listener(&anon, &space).await;
    ws.send(Message::Binary(publish_frame(0, &[0xf8, 0xff, 0xfe])))
        .await
        .unwrap();
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("only speakers"), "{reason}");

    // A speaker sending a malformed Opus packet is closed with 1007.
    let ticket = guest.ticket(&space).await.unwrap();
    let (mut ws, _) = guest.connect(&space, &ticket.ticket).await.unwrap();
    ws.send(Message::Binary(publish_frame(0, &[0x03, 0xff])))
        .await
        .unwrap();
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, 1007, "{reason}");
    assert!(reason.contains("opus"), "{reason}");

    // An oversized message is refused.
    let mut ws = listener(&anon, &space).await;
    ws.send(Message::Binary(vec![1u8; 64 * 1024].into()))
        .await
        .unwrap();
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, 1009, "{reason}");

    // A malformed WebSocket frame (a reserved opcode) is a protocol error.
    let mut ws = listener(&anon, &space).await;
    {
        use tokio::io::AsyncWriteExt;
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_mut() else {
            unreachable!()
        };
        tcp.write_all(&[0x83, 0x80, 0, 0, 0, 0]).await.unwrap();
    }
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, 1002, "{reason}");

    // A binary message of an unknown kind, then an unknown command.
    let mut ws = listener(&anon, &space).await;
    ws.send(Message::Binary(vec![0x7f, 0, 0, 0, 0, 0].into()))
        .await
        .unwrap();
    assert_eq!(close_of(&mut ws).await.0, 1003);
    let mut ws = listener(&anon, &space).await;
    ws.send(Message::Text(r#"{"cmd":"self_destruct"}"#.into()))
        .await
        .unwrap();
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, 1007);
    assert!(reason.contains("unknown command"), "{reason}");

    // A command from the wrong role is refused with a reason; the connection stays open.
    let mut ws = listener(&anon, &space).await;
    ws.send(Message::Text(r#"{"cmd":"mute_all"}"#.into()))
        .await
        .unwrap();
    let refused = loop {
        if let Some(Ok(Message::Text(t))) = ws.next().await {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            if v["event"] == "refused" {
                break v;
            }
        }
    };
    assert!(
        refused["reason"].as_str().unwrap().contains("may not"),
        "{refused}"
    );
    ws.send(Message::Ping(vec![1].into())).await.unwrap();

    // Forged, expired and foreign tickets get 401 before any upgrade.
    assert_eq!(
        refused_status(ws_url(&server, &space, "forged.ticket")).await,
        401
    );
    let key = &server.state.tickets;
    let expired = key.sign(&Ticket {
        space: space.clone(),
        user: 5,
        role: Role::Listener,
        exp: unix_now() - 1,
        unseen: false,
    });
    assert_eq!(refused_status(ws_url(&server, &space, &expired)).await, 401);
    let elsewhere = key.sign(&Ticket {
        space: "other".into(),
        user: 5,
        role: Role::Listener,
        exp: unix_now() + 60,
        unseen: false,
    });
    assert_eq!(
        refused_status(ws_url(&server, &space, &elsewhere)).await,
        401
    );

    // A removed user is disconnected, and their old ticket no longer opens the Space.
    let old_ticket = guest.ticket(&space).await.unwrap();
    let (mut guest_ws, _) = guest.connect(&space, &old_ticket.ticket).await.unwrap();
    host.command(
        &space,
        serde_json::json!({"cmd": "remove", "user": guest_id}),
    )
    .await
    .unwrap();
    assert_eq!(close_of(&mut guest_ws).await.0, 4003);
    assert_eq!(
        refused_status(ws_url(&server, &space, &old_ticket.ticket)).await,
        403
    );
    assert!(guest.ticket(&space).await.is_err());

    // Malformed HTTP input: problem+json, nothing else affected.
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/api/v1/accounts", server.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let host_ticket = host.ticket(&space).await.unwrap();
    let resp = http
        .put(format!(
            "{}/api/v1/spaces/{space}/source?ticket={}",
            server.base, host_ticket.ticket
        ))
        .body(vec![0u8; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("Ogg"),
        "{problem}"
    );

    // Through all of this the Space went on: a new listener hears continuous audio.
    let rec = record(&server.api(), &space, 50).await.unwrap();
    assert_eq!(rec.gaps(), 0);

    // Every refusal was counted by reason.
    let metrics = server.metrics().await;
    for line in [
        r#"stentor_closes_total{reason="policy"} 1"#,
        r#"stentor_closes_total{reason="invalid"} 2"#,
        r#"stentor_closes_total{reason="unsupported"} 1"#,
        r#"stentor_closes_total{reason="removed"} 1"#,
        r#"stentor_closes_total{reason="protocol"} 1"#,
        r#"stentor_closes_total{reason="too_big"} 1"#,
        r#"stentor_rejections_total{reason="ticket_invalid"} 1"#,
        r#"stentor_rejections_total{reason="ticket_expired"} 1"#,
        r#"stentor_rejections_total{reason="ticket_wrong_space"} 1"#,
        r#"stentor_rejections_total{reason="removed"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    speaker.await.unwrap();
    server.stop().await;
}
