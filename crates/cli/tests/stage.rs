//! Life on stage: speakers hear each other's packets untouched, listeners see who speaks,
//! reactions arrive aggregated, a lobby listener hears the start, and a promoted listener
//! gets a new ticket and may publish.

mod common;

use common::{TestServer, live_space_with_two_speakers};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use stentor::client::{SpaceSocket, publish_frame, send_packet};
use stentor_media::signal::Tone;
use stentor_media::{Encoder, FRAME_SAMPLES};
use tokio_tungstenite::tungstenite::Message;

/// Reads from a socket until `pred` matches a JSON event or a binary message, within 5 s.
async fn until(ws: &mut SpaceSocket, mut pred: impl FnMut(&Message) -> bool) -> Message {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let msg = ws.next().await.expect("open").expect("no error");
            if pred(&msg) {
                return msg;
            }
        }
    })
    .await
    .expect("in time")
}

fn event(msg: &Message, name: &str) -> Option<serde_json::Value> {
    let Message::Text(t) = msg else { return None };
    let v: serde_json::Value = serde_json::from_str(t.as_str()).ok()?;
    (v["event"] == name).then_some(v)
}

fn tone_packets(hz: f32, n: usize) -> Vec<Vec<u8>> {
    let mut enc = Encoder::new(32_000).unwrap();
    let mut tone = Tone::new(hz, 0.3);
    (0..n)
        .map(|_| {
            let mut pcm = [0f32; FRAME_SAMPLES];
            tone.fill(&mut pcm);
            enc.encode(&pcm).unwrap().to_vec()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speakers_hear_each_other_untouched_and_listeners_see_who_speaks() {
    let server = TestServer::start("stage-forward").await;
    let (host, guest, space, guest_id) = live_space_with_two_speakers(&server).await;
    let (mut host_ws, _) = host
        .connect(&space, &host.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    let (mut guest_ws, _) = guest
        .connect(&space, &guest.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    let anon = server.api();
    let (mut listener, _) = anon
        .connect(&space, &anon.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();

    let packets = tone_packets(1000.0, 25);
    for (seq, p) in packets.iter().enumerate() {
        send_packet(&mut guest_ws, seq as u32, p).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The host receives the guest's first packet byte for byte, with the guest's id and seq.
    let forwarded = until(
        &mut host_ws,
        |m| matches!(m, Message::Binary(b) if b[0] == 0x03),
    )
    .await;
    let Message::Binary(b) = forwarded else {
        unreachable!()
    };
    assert_eq!(u64::from_be_bytes(b[1..9].try_into().unwrap()), guest_id);
    assert_eq!(u32::from_be_bytes(b[9..13].try_into().unwrap()), 0);
    assert_eq!(&b[13..], &packets[0][..]);

    // A listener sees the guest speaking in a levels event.
    let levels = until(&mut listener, |m| {
        event(m, "levels").is_some_and(|v| {
            v["levels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l[0] == guest_id && l[1].as_f64().unwrap() > -45.0)
        })
    })
    .await;
    assert!(event(&levels, "levels").is_some());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_taps_arrive_as_one_reactions_event() {
    let server = TestServer::start("stage-reactions").await;
    let (host, _guest, space, _) = live_space_with_two_speakers(&server).await;
    let anon = server.api();
    let mut tappers = Vec::new();
    for _ in 0..40 {
        let (ws, _) = anon
            .connect(&space, &anon.ticket(&space).await.unwrap().ticket)
            .await
            .unwrap();
        tappers.push(ws);
    }
    let (mut watcher, _) = host
        .connect(&space, &host.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    for ws in &mut tappers {
        // Within a connection's burst of messages (30): a person tapping fast.
        for _ in 0..25 {
            ws.send(Message::Text(r#"{"cmd":"react","emoji":"👏"}"#.into()))
                .await
                .unwrap();
        }
    }
    // Taps are counted with a cap of 5 per tapper per window (40 tappers: 200 per window;
    // the burst may straddle two windows), in a few events: one per 500 ms window, not one
    // per tap.
    let mut events = 0;
    let mut total = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2500);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, watcher.next()).await {
        if let Some(v) = event(&msg, "reactions") {
            events += 1;
            assert_eq!(v["counts"][0][0], "👏");
            total += v["counts"][0][1].as_u64().unwrap();
        }
    }
    assert!(
        (200..=400).contains(&total),
        "{total} taps counted in {events} events"
    );
    assert!(
        (1..=4).contains(&events),
        "{events} reaction events for 1000 taps"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_waiting_in_the_lobby_hears_the_start_at_once() {
    let server = TestServer::start("stage-lobby").await;
    let mut host = server.api();
    host.sign_up("lobby_host", "password-1").await.unwrap();
    let space = host.create_space("Soon").await.unwrap();
    let anon = server.api();
    let (mut listener, hello) = anon
        .connect(&space, &anon.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    assert_eq!(hello["space"]["state"], "scheduled");

    host.command(&space, serde_json::json!({"cmd": "start"}))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (mut talker, _) = host
        .connect(&space, &host.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    let sender = tokio::spawn(async move {
        for (seq, p) in tone_packets(440.0, 100).iter().enumerate() {
            if send_packet(&mut talker, seq as u32, p).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    until(&mut listener, |m| event(m, "started").is_some()).await;
    until(
        &mut listener,
        |m| matches!(m, Message::Binary(b) if b[0] == 0x02),
    )
    .await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "first audio after {waited:?}"
    );
    sender.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_listener_gets_a_new_ticket_and_may_publish() {
    let server = TestServer::start("stage-approve").await;
    let (host, _guest, space, _) = live_space_with_two_speakers(&server).await;
    let mut carol = server.api();
    let carol_id = carol.sign_up("carol", "password-3").await.unwrap();
    let ticket = carol.ticket(&space).await.unwrap();
    assert_eq!(ticket.role, "listener");
    let (mut ws, _) = carol.connect(&space, &ticket.ticket).await.unwrap();
    ws.send(Message::Text(r#"{"cmd":"request_to_speak"}"#.into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let view = host.space(&space).await.unwrap();
    assert!(
        view["hands"].as_array().unwrap().contains(&carol_id.into()),
        "{view}"
    );
    host.command(
        &space,
        serde_json::json!({"cmd": "approve", "user": carol_id}),
    )
    .await
    .unwrap();
    let msg = until(&mut ws, |m| event(m, "ticket").is_some()).await;
    let new = event(&msg, "ticket").unwrap();
    assert_eq!(new["role"], "speaker");
    // The new ticket opens the Space as a speaker, and publishing is accepted.
    let (mut ws2, hello) = carol
        .connect(&space, new["ticket"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(hello["role"], "speaker");
    ws2.send(Message::Binary(publish_frame(
        0,
        &tone_packets(500.0, 1)[0],
    )))
    .await
    .unwrap();
    ws2.send(Message::Ping(vec![].into())).await.unwrap();
    until(&mut ws2, |m| matches!(m, Message::Pong(_))).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_host_ends_the_space_everyone_is_told_and_the_streams_end() {
    let server = TestServer::start("stage-end").await;
    let (host, _guest, space, _) = live_space_with_two_speakers(&server).await;
    let anon = server.api();
    let (mut listener, _) = anon
        .connect(&space, &anon.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    let ogg = reqwest::get(format!("{}/spaces/{space}/live.opus", server.base))
        .await
        .unwrap();
    host.command(&space, serde_json::json!({"cmd": "end"}))
        .await
        .unwrap();
    until(&mut listener, |m| event(m, "ended").is_some()).await;
    let close = until(&mut listener, |m| matches!(m, Message::Close(_))).await;
    let Message::Close(Some(frame)) = close else {
        panic!("{close:?}")
    };
    assert_eq!(u16::from(frame.code), 1000);
    // The Ogg body ends instead of hanging.
    tokio::time::timeout(Duration::from_secs(5), ogg.bytes())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(host.space(&space).await.unwrap()["state"], "ended");
    assert!(
        anon.ticket(&space).await.is_err(),
        "an ended space issues no tickets"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_anonymous_listening_off_only_accounts_get_in() {
    let server =
        TestServer::start_with("stage-no-anon", |c| c.auth.allow_anonymous = Some(false)).await;
    let (_host, guest, space, _) = live_space_with_two_speakers(&server).await;
    let err = server.api().ticket(&space).await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
    let resp = reqwest::get(format!("{}/spaces/{space}/live.opus", server.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let ticket = guest.ticket(&space).await.unwrap();
    let resp = reqwest::get(format!(
        "{}/spaces/{space}/live.opus?ticket={}",
        server.base, ticket.ticket
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_in_flight_when_the_space_ends_do_not_get_a_speaker_thrown_out() {
    let server = TestServer::start("stage-end").await;
    let (host, guest, space, _) = live_space_with_two_speakers(&server).await;
    let ticket = guest.ticket(&space).await.unwrap();
    let (mut ws, _) = guest.connect(&space, &ticket.ticket).await.unwrap();
    let mut encoder = Encoder::new(32_000).unwrap();
    let mut tone = Tone::new(440.0, 0.3);
    let mut frame = [0f32; FRAME_SAMPLES];
    host.command(&space, serde_json::json!({"cmd": "end"}))
        .await
        .unwrap();
    // The speaker has not heard of the end yet and goes on sending.
    for seq in 0..10u32 {
        tone.fill(&mut frame);
        let p = encoder.encode(&frame).unwrap();
        send_packet(&mut ws, seq, p).await.unwrap();
    }
    // The end arrives, and the packets sent after it close nothing.
    let mut ended = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(msg) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Some(Ok(Message::Text(t))) => ended |= t.contains(r#""event":"ended""#),
            Some(Ok(Message::Close(frame))) => panic!("the speaker was closed: {frame:?}"),
            Some(Ok(_)) => {}
            other => panic!("the socket failed: {other:?}"),
        }
    }
    assert!(ended, "no ended event");
    server.stop().await;
}
