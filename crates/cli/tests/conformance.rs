//! Conformance with real players: ffmpeg decodes the live Ogg stream, ffprobe accepts what
//! `stentor listen` writes, and ffmpeg can publish as a speaker over HTTP PUT.
//!
//! These need ffmpeg and ffprobe on the PATH, so they are ignored by a plain `cargo test` and
//! run by `.ci/run` (which installs ffmpeg) with `--ignored`. Without ffmpeg they fail.

mod common;

use common::{TestServer, decode};
use std::process::Command;
use std::time::Duration;
use stentor::listen::record;
use stentor_media::signal::{goertzel_power, rms};

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install ffmpeg)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ffmpeg and ffprobe; run by .ci/run"]
async fn ffmpeg_decodes_the_live_stream_and_ffprobe_accepts_a_recording() {
    let server = TestServer::start("conformance-demo").await;
    let (space, host) = stentor::demo::prepare(&server.state).await.unwrap();
    stentor::demo::spawn_speaker(space, host);
    let url = format!("{}/spaces/demo/live.opus", server.base);

    let decoded = tokio::task::spawn_blocking(move || {
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-t", "5", "-i", &url])
            .args(["-f", "f32le", "-ac", "1", "-ar", "48000", "-"]))
    })
    .await
    .unwrap();
    assert!(
        decoded.stderr.is_empty(),
        "ffmpeg reported: {}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    let samples: Vec<f32> = decoded
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert!(
        samples.len() >= 48_000 * 49 / 10,
        "only {} samples",
        samples.len()
    );
    assert!(
        rms(&samples) > 0.02,
        "the demo is silent: rms {}",
        rms(&samples)
    );

    let out = server.data_dir.join("listen.ogg");
    stentor::listen::run(&server.api(), "demo", 3.0, &out)
        .await
        .unwrap();
    let path = out.to_str().unwrap().to_owned();
    let probe = run(Command::new("ffprobe").args([
        "-v",
        "error",
        "-show_entries",
        "format=format_name,duration:stream=codec_name,channels,sample_rate",
        "-of",
        "default=noprint_wrappers=1",
        &path,
    ]));
    let probe = String::from_utf8(probe.stdout).unwrap();
    for expected in [
        "codec_name=opus",
        "channels=1",
        "sample_rate=48000",
        "format_name=ogg",
    ] {
        assert!(probe.contains(expected), "ffprobe says:\n{probe}");
    }
    let full =
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i", &path, "-f", "null", "-"]));
    assert!(
        full.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
    server.stop().await;
}

/// Speaker packets the server has taken in so far.
async fn packets_in(server: &TestServer) -> u64 {
    server
        .metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("stentor_packets_in_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ffmpeg; run by .ci/run"]
async fn ffmpeg_publishes_as_a_speaker_over_http_put() {
    let server = TestServer::start("conformance-source").await;
    let mut host = server.api();
    host.sign_up("ffmpeg_host", "password-1").await.unwrap();
    let space = host.create_space("ffmpeg source").await.unwrap();
    host.command(&space, serde_json::json!({"cmd": "start"}))
        .await
        .unwrap();
    let ticket = host.ticket(&space).await.unwrap();
    let url = format!(
        "{}/api/v1/spaces/{space}/source?ticket={}",
        server.base, ticket.ticket
    );
    let ffmpeg = tokio::task::spawn_blocking(move || {
        run(Command::new("ffmpeg").args([
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=660:sample_rate=48000:duration=5",
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-frame_duration",
            "20",
            "-page_duration",
            "20000",
            "-f",
            "ogg",
            "-method",
            "PUT",
            &url,
        ]))
    });
    // Record once ffmpeg is publishing (it may take a while to start on a cold machine).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while packets_in(&server).await < 25 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ffmpeg never published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rec = record(&server.api(), &space, 100).await.unwrap();
    assert_eq!(rec.gaps(), 0);
    let audio = decode(rec.frames.iter().map(|(_, p)| p));
    let p660 = goertzel_power(&audio, 660.0);
    let p440 = goertzel_power(&audio, 440.0);
    // ffmpeg's sine has amplitude 1/8: a power of about 0.0039.
    assert!(
        p660 > 0.002 && p660 > 100.0 * p440,
        "660 Hz {p660}, 440 Hz {p440}"
    );
    ffmpeg.await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ffmpeg and ffprobe; run by .ci/run"]
async fn ffprobe_accepts_the_ll_hls_parts_and_ffmpeg_decodes_the_playlist() {
    let server = TestServer::start("conformance-hls").await;
    let (space, host) = stentor::demo::prepare(&server.state).await.unwrap();
    stentor::demo::spawn_speaker(space, host);
    let base = format!("{}/spaces/demo", server.base);
    let client = reqwest::Client::new();
    // ffmpeg reads whole segments only (not parts): it starts once one is listed.
    let playlist = loop {
        let text = client
            .get(format!("{base}/live.m3u8"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let playlist = common::hls::Playlist::parse(&text).check();
        if playlist
            .segments
            .iter()
            .filter(|s| s.whole.is_some())
            .count()
            >= 2
        {
            break playlist;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (msn, part) = playlist.last_part().unwrap();
    let init = client
        .get(format!("{base}/hls/init.mp4"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let part = client
        .get(format!("{base}/hls/{msn}.{part}.m4s"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let file = server.data_dir.join("part.mp4");
    std::fs::write(&file, [init.as_ref(), part.as_ref()].concat()).unwrap();
    let path = file.to_str().unwrap().to_owned();
    let probe = run(Command::new("ffprobe").args([
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,channels,sample_rate:packet=pts",
        "-of",
        "default=noprint_wrappers=1",
        &path,
    ]));
    assert!(
        probe.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let probe = String::from_utf8(probe.stdout).unwrap();
    for expected in ["codec_name=opus", "channels=1", "sample_rate=48000"] {
        assert!(probe.contains(expected), "ffprobe says:\n{probe}");
    }
    // Ten packets 960 ticks (20 ms at 48 kHz) apart.
    let pts: Vec<u64> = probe
        .lines()
        .filter_map(|l| l.strip_prefix("pts=")?.parse().ok())
        .collect();
    assert_eq!(pts.len(), 10, "{probe}");
    assert!(pts.windows(2).all(|w| w[1] - w[0] == 960), "{pts:?}");

    // ffmpeg follows the live playlist for 10 s of audio, without an error.
    let url = format!("{base}/live.m3u8");
    let decoded = tokio::task::spawn_blocking(move || {
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i", &url, "-t", "10"])
            .args(["-f", "f32le", "-ac", "1", "-ar", "48000", "-"]))
    })
    .await
    .unwrap();
    assert!(
        decoded.stderr.is_empty(),
        "ffmpeg reported: {}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    let samples: Vec<f32> = decoded
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert!(
        samples.len() >= 48_000 * 99 / 10,
        "only {} samples",
        samples.len()
    );
    assert!(
        rms(&samples) > 0.02,
        "the demo over HLS is silent: rms {}",
        rms(&samples)
    );
    server.stop().await;
}
