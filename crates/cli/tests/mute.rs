//! Muting a speaker removes their tone from the mix within 100 ms of mix time; unmuting
//! brings it back.

mod common;

use common::{TestServer, decode, live_space_with_two_speakers};
use futures_util::SinkExt;
use std::time::Duration;
use stentor::listen::record;
use stentor::speak::{Source, publish};
use stentor_media::FRAME_SAMPLES;
use stentor_media::signal::goertzel_power;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_speaker_leaves_the_mix_within_100_ms_and_comes_back_on_unmute() {
    let server = TestServer::start("mute").await;
    let (host, guest, space, guest_id) = live_space_with_two_speakers(&server).await;
    let live = server.state.spaces.get(&space).await.unwrap();

    let host_speaker = common::speak_tone(&host, &space, 440.0, 8.0);
    let guest_ticket = guest.ticket(&space).await.unwrap();
    let (mut guest_ws, _) = guest.connect(&space, &guest_ticket.ticket).await.unwrap();
    let (unmute_tx, mut unmute_rx) = tokio::sync::oneshot::channel::<()>();
    let guest_speaker = tokio::spawn(async move {
        // Publish 1000 Hz; when told, unmute oneself on the same socket and go on.
        publish(&mut guest_ws, &Source::Tone(1000.0), Some(3.5))
            .await
            .unwrap();
        let _ = (&mut unmute_rx).await;
        guest_ws
            .send(Message::Text(r#"{"cmd":"unmute_self"}"#.into()))
            .await
            .unwrap();
        publish(&mut guest_ws, &Source::Tone(1000.0), Some(3.0))
            .await
            .unwrap();
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = {
        let (api, space) = (server.api(), space.clone());
        tokio::spawn(async move { record(&api, &space, 300).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    host.command(&space, serde_json::json!({"cmd": "mute", "user": guest_id}))
        .await
        .unwrap();
    let muted_at = live.hub.ogg.head();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    unmute_tx.send(()).unwrap();
    // The unmute travels over the guest's socket; wait until the Space has applied it.
    let unmuted_at = loop {
        if !live.with_domain(|d| d.is_muted(guest_id)) {
            break live.hub.ogg.head();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };

    let rec = listener.await.unwrap();
    assert_eq!(rec.gaps(), 0);
    let audio = decode(rec.frames.iter().map(|(_, p)| p));
    let first_seq = rec.frames[0].0;
    let power_at = |seq: u64| {
        let i = (seq - first_seq) as usize;
        goertzel_power(&audio[i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES], 1000.0)
    };
    let before: f32 = (muted_at - 20..muted_at).map(power_at).sum::<f32>() / 20.0;
    assert!(before > 0.01, "1000 Hz before the mute: {before}");

    // Mix frames published after the mute was applied: the tone must be gone within 100 ms.
    let gone = (muted_at..unmuted_at)
        .find(|&s| (s..unmuted_at).all(|t| power_at(t) < before / 100.0))
        .expect("the tone never left the mix");
    let mute_ms = (gone - muted_at) * 20;
    println!("tone gone {mute_ms} ms of mix time after the mute");
    assert!(
        mute_ms <= 100,
        "tone still heard {mute_ms} ms after the mute"
    );

    let last = rec.frames.last().unwrap().0;
    let back = (unmuted_at..=last)
        .find(|&s| power_at(s) > before / 4.0)
        .expect("the tone never came back");
    let unmute_ms = (back - unmuted_at) * 20;
    println!("tone back {unmute_ms} ms of mix time after the unmute");
    assert!(
        unmute_ms <= 200,
        "tone back only {unmute_ms} ms after the unmute"
    );

    host_speaker.await.unwrap();
    guest_speaker.await.unwrap();
    server.stop().await;
}
