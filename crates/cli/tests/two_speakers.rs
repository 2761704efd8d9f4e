//! Two speakers publish 440 Hz and 1000 Hz; a WebSocket listener and an Ogg listener both hear
//! both tones at the expected level, with no missing frame.

mod common;

use common::{TestServer, decode, live_space_with_two_speakers};
use futures_util::StreamExt;
use stentor::listen::record;
use stentor::speak::{Source, publish};
use stentor_media::FRAME_SAMPLES;
use stentor_media::ogg::OggReader;
use stentor_media::signal::goertzel_power;

const FRAMES: usize = 300; // 6 s

fn assert_both_tones(samples: &[f32], who: &str) {
    let p440 = goertzel_power(samples, 440.0);
    let p1000 = goertzel_power(samples, 1000.0);
    let p700 = goertzel_power(samples, 700.0);
    // Each speaker sends amplitude 0.3: a power of about 0.3² / 4 = 0.0225.
    assert!(
        p440 > 0.01 && p1000 > 0.01,
        "{who}: 440 Hz {p440}, 1000 Hz {p1000}"
    );
    let ratio_db = 10.0 * (p440 / p1000).log10();
    assert!(
        ratio_db.abs() < 3.0,
        "{who}: 440 vs 1000 Hz differ by {ratio_db:.1} dB"
    );
    assert!(
        p700 < p440 / 100.0,
        "{who}: energy between the tones {p700}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_tones_reach_websocket_and_ogg_listeners_without_a_gap() {
    let server = TestServer::start("two-speakers").await;
    let (host, guest, space, _) = live_space_with_two_speakers(&server).await;
    let mut speakers = Vec::new();
    for (api, hz) in [(host, 440.0), (guest, 1000.0)] {
        let space = space.clone();
        speakers.push(tokio::spawn(async move {
            let ticket = api.ticket(&space).await.unwrap();
            let (mut ws, _) = api.connect(&space, &ticket.ticket).await.unwrap();
            publish(&mut ws, &Source::Tone(hz), Some(9.0))
                .await
                .unwrap();
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let ws_listener = {
        let (api, space) = (server.api(), space.clone());
        tokio::spawn(async move { record(&api, &space, FRAMES).await.unwrap() })
    };
    let ogg_url = format!("{}/spaces/{space}/live.opus", server.base);
    let ogg_listener = tokio::spawn(async move {
        let resp = reqwest::get(ogg_url).await.unwrap();
        assert_eq!(resp.headers()["content-type"], "audio/ogg");
        let mut body = resp.bytes_stream();
        let mut reader = OggReader::new();
        let mut packets = Vec::new();
        while packets.len() < FRAMES + 2 {
            reader.feed(&body.next().await.unwrap().unwrap());
            while let Some(p) = reader.next_packet().unwrap() {
                packets.push(p);
            }
        }
        packets
    });

    let rec = ws_listener.await.unwrap();
    assert_eq!(rec.gaps(), 0, "websocket listener missed frames");
    let ws_audio = decode(rec.frames.iter().map(|(_, p)| p));
    assert_both_tones(&ws_audio[FRAME_SAMPLES * 10..], "websocket");

    let packets = ogg_listener.await.unwrap();
    assert!(packets[0].data.starts_with(b"OpusHead"));
    assert!(packets[1].data.starts_with(b"OpusTags"));
    let audio = &packets[2..];
    for pair in audio.windows(2) {
        assert_eq!(
            pair[1].granule,
            pair[0].granule + FRAME_SAMPLES as u64,
            "ogg granule gap"
        );
    }
    let ogg_audio = decode(audio.iter().map(|p| &p.data));
    assert_both_tones(&ogg_audio[FRAME_SAMPLES * 10..], "ogg");

    for s in speakers {
        s.await.unwrap();
    }
    server.stop().await;
}
