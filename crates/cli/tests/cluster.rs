//! A node of a cluster: an origin publishes the mix and the events of each Space it mixes on
//! the real NATS server that `STENTOR_TEST_NATS_URL` names (`.ci/run` sets it), under the
//! Space's lease; what a subscriber of the bus decodes is what the speaker sent.

mod common;

use common::{TestServer, assert_tone, decode, live_space};
use std::time::Duration;
use stentor_bus::{Bus, Envelope, Leases, Subjects};
use stentor_media::FRAME_SAMPLES;
use stentor_server::config::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_publishes_its_mix_and_events_on_the_bus_under_the_spaces_lease() {
    let Ok(nats) = std::env::var("STENTOR_TEST_NATS_URL") else {
        eprintln!("STENTOR_TEST_NATS_URL is not set: the cluster test is left out");
        return;
    };
    let node = format!("origin-test-{}", std::process::id());
    // A cluster of this run's own on the shared NATS server.
    let cluster = format!("test-origin-{}", std::process::id());
    let server = TestServer::start_with("cluster-origin", |c| {
        c.cluster.role = Some(Role::Origin);
        c.cluster.nats = Some(nats.clone());
        c.cluster.node = Some(node.clone());
        c.cluster.name = Some(cluster.clone());
        c.cluster.lease_ms = Some(1_000);
    })
    .await;
    let (host, space) = live_space(&server, "origin_host", "On the bus").await;
    let bus = Bus::nats(&nats).await.unwrap();
    let mut media = bus
        .subscribe(&Subjects::new(&cluster, &space).unwrap().media)
        .await
        .unwrap();
    bus.flush().await.unwrap();

    // The host speaks 440 Hz for 3 s.
    let speaker = common::speak_tone(&host, &space, 440.0, 3.0);
    // 100 frames in a row off the bus, in order, carrying the tone.
    let mut frames: Vec<(u64, bytes::Bytes)> = Vec::new();
    let mut events = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while frames.len() < 100 {
        let message = tokio::time::timeout_at(until, media.next())
            .await
            .unwrap_or_else(|_| panic!("{} frames of the mix on the bus in 10 s", frames.len()))
            .unwrap();
        match Envelope::decode(&message).unwrap() {
            Envelope::Audio { seq, packet, .. } => frames.push((seq, packet)),
            Envelope::Event(_) => events += 1,
            Envelope::Notice { .. } => {}
        }
    }
    for pair in frames.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "frames in order, none missing");
    }
    assert!(
        events > 0,
        "events (levels, listeners) ride beside the audio"
    );
    // The speaker's first packets reach the mix a little after the bus's first frames.
    let heard = decode(frames.iter().map(|(_, p)| p));
    assert_tone(&heard[FRAME_SAMPLES * 50..], 440.0, "the bus");
    speaker.await.unwrap();

    // The Space's lease is this node's.
    let bucket = stentor_bus::lease::bucket(&cluster);
    let leases = Leases::open(&bus, &bucket, Duration::from_millis(1_000), "observer")
        .await
        .unwrap();
    assert_eq!(leases.holder(&space).await.unwrap(), Some(node.clone()));

    // The end goes to the edges too.
    host.command(&space, serde_json::json!({"cmd": "end"}))
        .await
        .unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let ended = loop {
        let message = tokio::time::timeout_at(until, media.next())
            .await
            .expect("the end is published")
            .unwrap();
        if let Envelope::Event(json) = Envelope::decode(&message).unwrap()
            && std::str::from_utf8(&json).unwrap().contains(r#""ended""#)
        {
            break json;
        }
    };
    assert!(!ended.is_empty());
    server.stop().await;
    let js = async_nats::jetstream::new(bus.nats_client().unwrap().clone());
    let _ = js.delete_key_value(&bucket).await;
}

#[tokio::test]
async fn an_origin_without_nats_does_not_start() {
    let mut config = stentor_server::Config::default();
    config.cluster.role = Some(Role::Origin);
    let err = stentor_server::Server::bind(config).await.err().unwrap();
    assert!(err.to_string().contains("--nats"), "{err}");
}
