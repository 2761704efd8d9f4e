//! Recordings: every mix frame of a live Space in its log, the host's switch, and what a
//! kill -9 leaves: a log that reads and plays, missing at most the last second.

mod common;

use common::{TestServer, assert_tone, decode, live_space, speak_tone};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;
use stentor::client::Api;
use stentor_record::{Record, Timeline, writer::read};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_holds_the_mix_and_who_spoke_and_the_host_can_turn_it_off() {
    let server = TestServer::start("recording-switch").await;
    let (host, space) = live_space(&server, "rec_host", "Recorded").await;
    let host_id = host.space(&space).await.unwrap()["host"].as_u64().unwrap();
    let speaker = speak_tone(&host, &space, 440.0, 6.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    host.command(&space, serde_json::json!({"cmd": "record", "on": false}))
        .await
        .unwrap();
    assert_eq!(host.space(&space).await.unwrap()["recording"], false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    host.command(&space, serde_json::json!({"cmd": "record", "on": true}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    host.command(&space, serde_json::json!({"cmd": "end"}))
        .await
        .unwrap();
    speaker.abort();
    let path = server
        .data_dir
        .join("recordings")
        .join(format!("{space}.srec"));
    // The end closes the log (synced) at once.
    let mut records = Vec::new();
    for _ in 0..50 {
        records = read(&path).unwrap_or_default();
        if records
            .iter()
            .filter(|r| matches!(r, Record::Stop { .. }))
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let starts = records
        .iter()
        .filter(|r| matches!(r, Record::Start { .. }))
        .count();
    let stops = records
        .iter()
        .filter(|r| matches!(r, Record::Stop { .. }))
        .count();
    assert_eq!((starts, stops), (2, 2), "on, off, on, end");
    let timeline = Timeline::from_records(records);
    assert_eq!(timeline.title, "Recorded");
    // About 4 s recorded of the 5 s live (1 s off).
    let seconds = timeline.seconds();
    assert!((3.5..4.6).contains(&seconds), "{seconds} s recorded");
    assert_eq!(timeline.missing, 0);
    assert!(
        timeline
            .levels
            .iter()
            .any(|(_, heard)| heard.iter().any(|(u, level)| *u == host_id && *level > 10)),
        "the host is heard in the timeline"
    );
    let samples = decode(&timeline.packets);
    assert_tone(&samples[25_000..], 440.0, "the recording");
    server
        .assert_metric("stentor_recordings_failed_total 0")
        .await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_loses_at_most_the_last_second_and_the_log_plays() {
    let data = std::env::temp_dir().join(format!("stentor-test-kill9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut child, base) = common::demo_process(&data);
    let api = Api::new(&base);
    let ticket = api.ticket("demo").await.unwrap();
    let (mut ws, _) = api.connect("demo", &ticket.ticket).await.unwrap();
    // What a listener heard, frame by frame, for 4 s.
    let mut heard = BTreeMap::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, ws.next()).await {
        if let Message::Binary(data) = msg
            && let Some((seq, packet)) = stentor::client::parse_mix_frame(&data)
        {
            heard.insert(seq, packet.to_vec());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let last_heard = *heard.keys().last().unwrap();
    let path = data.join("recordings").join("demo.srec");
    let records = read(&path).expect("the log reads after a kill");
    let audio: BTreeMap<u64, Vec<u8>> = records
        .iter()
        .filter_map(|r| match r {
            Record::Audio { seq, packet } => Some((*seq, packet.to_vec())),
            _ => None,
        })
        .collect();
    let last_logged = *audio.keys().last().expect("frames were logged");
    assert!(
        last_logged + 50 >= last_heard,
        "logged up to {last_logged}, heard up to {last_heard}: more than 1 s lost"
    );
    // Every frame the listener heard is in the log, the same bytes, up to the last second.
    let mut compared = 0;
    for (seq, packet) in heard.range(..=last_logged) {
        assert_eq!(audio.get(seq), Some(packet), "frame {seq}");
        compared += 1;
    }
    assert!(compared >= 150, "{compared} frames compared");
    let samples = decode(audio.values());
    assert!(stentor_media::signal::rms(&samples) > 0.02, "the log plays");

    // A restart cuts whatever torn tail there is and appends after it.
    let size = std::fs::metadata(&path).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, &[40, 0, 0, 0, 9, 9, 9]).unwrap();
    drop(f);
    let (mut child, _) = common::demo_process(&data);
    let mut grown = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(records) = read(&path)
            && records
                .iter()
                .filter(|r| matches!(r, Record::Start { .. }))
                .count()
                == 2
            && std::fs::metadata(&path).unwrap().len() > size + 1_000
        {
            grown = true;
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        grown,
        "the restarted server goes on recording after the cut tail"
    );
    let _ = std::fs::remove_dir_all(&data);
}

/// A tmpfs of a few KiB mounted for the test, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(kib: u32) -> Self {
        let dir = std::env::temp_dir().join(format!("stentor-small-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "mounting a tmpfs needs root (CI runs this test as root)"
        );
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a file the server still holds open must not keep the mount behind.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "mounts a tmpfs (root); run by .ci/run"]
async fn a_full_disk_stops_the_recording_and_the_space_goes_on() {
    let disk = SmallDisk::mount(64);
    // Leave about 24 KiB: a few seconds of recording.
    std::fs::write(disk.0.join("ballast"), vec![1u8; 40 * 1024]).unwrap();
    let dir = disk.0.join("recordings");
    let server = TestServer::start_with("recording-full", |c| {
        c.media.recordings_dir = Some(dir.clone());
    })
    .await;
    let (host, space) = live_space(&server, "full_host", "Full disk").await;
    let speaker = speak_tone(&host, &space, 440.0, 30.0);
    let listener = common::signed_up(&server, "full_listener").await;
    let lt = listener.ticket(&space).await.unwrap();
    let (mut lws, _) = listener.connect(&space, &lt.ticket).await.unwrap();
    // Everyone is told when the disk fills.
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    let reason = loop {
        let msg = tokio::time::timeout_at(until, lws.next())
            .await
            .expect("the recording fails within 20 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg {
            let event: serde_json::Value = serde_json::from_str(&text).unwrap();
            if event["event"] == "recording_failed" {
                break event["reason"].as_str().unwrap().to_owned();
            }
        }
    };
    assert!(reason.contains("disk is full"), "{reason}");
    // The listener still hears the tone afterwards, every frame.
    let mut packets = Vec::new();
    let mut seqs = Vec::new();
    while packets.len() < 100 {
        let msg = tokio::time::timeout(Duration::from_secs(2), lws.next())
            .await
            .expect("audio goes on")
            .unwrap()
            .unwrap();
        if let Message::Binary(data) = msg
            && let Some((seq, packet)) = stentor::client::parse_mix_frame(&data)
        {
            seqs.push(seq);
            packets.push(packet.to_vec());
        }
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "no frame lost");
    assert_tone(&decode(&packets), 440.0, "a listener after the disk filled");
    assert_eq!(host.space(&space).await.unwrap()["state"], "live");
    server
        .assert_metric("stentor_recordings_failed_total 1")
        .await;
    // What was written before the disk filled reads back.
    let records = read(&dir.join(format!("{space}.srec"))).unwrap();
    assert!(records.len() > 100, "{} records kept", records.len());
    speaker.abort();
    drop(server);
}

/// Opus packets of an Ogg/Opus file (after its two header packets).
fn ogg_packets(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut reader = stentor_media::ogg::OggReader::new();
    reader.feed(bytes);
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        out.push(p.data.to_vec());
    }
    assert!(out[0].starts_with(b"OpusHead") && out[1].starts_with(b"OpusTags"));
    out.split_off(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_trim_delete_and_clips() {
    let server = TestServer::start("recording-replay").await;
    let (host, space) = live_space(&server, "replay_host", "Replayed").await;
    let speaker = speak_tone(&host, &space, 440.0, 8.0);
    let http = reqwest::Client::new();
    let authed = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", server.base))
            .bearer_auth(host.token().unwrap())
    };
    tokio::time::sleep(Duration::from_secs(4)).await;

    // A clip of the last 30 s (here: all 4 s so far), permanent, with a page.
    let made = authed(
        reqwest::Method::POST,
        &format!("/api/v1/spaces/{space}/clips"),
    )
    .json(&serde_json::json!({"seconds": 30}))
    .send()
    .await
    .unwrap();
    assert_eq!(made.status(), 201);
    let clip: serde_json::Value = made.json().await.unwrap();
    let seconds = clip["seconds"].as_f64().unwrap();
    assert!((2.5..5.0).contains(&seconds), "a clip of {seconds} s");
    assert_eq!(clip["title"], "Replayed");
    let page = clip["page"].as_str().unwrap();
    assert_eq!(
        http.get(format!("{}{page}", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let audio = http
        .get(format!("{}{}", server.base, clip["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(audio.headers()["content-type"], "audio/ogg");
    let packets = ogg_packets(&audio.bytes().await.unwrap());
    assert_tone(&decode(&packets)[25_000..], 440.0, "the clip");
    // Out of range, and past the per-user limit (3 a minute).
    let bad = authed(
        reqwest::Method::POST,
        &format!("/api/v1/spaces/{space}/clips"),
    )
    .json(&serde_json::json!({"seconds": 10}))
    .send()
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = authed(
            reqwest::Method::POST,
            &format!("/api/v1/spaces/{space}/clips"),
        )
        .json(&serde_json::json!({"seconds": 60}))
        .send()
        .await
        .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![201, 201, 429]);
    let anonymous = http
        .post(format!("{}/api/v1/spaces/{space}/clips", server.base))
        .json(&serde_json::json!({"seconds": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // The replay is there after the end.
    let early = http
        .get(format!("{}/spaces/{space}/recording.ogg", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 409);
    tokio::time::sleep(Duration::from_secs(1)).await;
    host.command(&space, serde_json::json!({"cmd": "end"}))
        .await
        .unwrap();
    speaker.abort();
    let describe = || async {
        let r = http
            .get(format!("{}/api/v1/spaces/{space}/recording", server.base))
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap_or_default(),
        )
    };
    let (status, view) = describe().await;
    assert_eq!(status, 200, "{view}");
    let duration = view["duration_secs"].as_f64().unwrap();
    assert!((4.0..6.5).contains(&duration), "{view}");
    let turns = view["turns"].as_array().unwrap();
    assert!(
        turns
            .iter()
            .any(|t| t["name"] == "replay_host" && t["to"].as_f64().unwrap() > 3.0),
        "the host spoke: {view}"
    );
    let file = http
        .get(format!("{}/spaces/{space}/recording.ogg", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    let whole = file.bytes().await.unwrap();
    let packets = ogg_packets(&whole);
    assert!((packets.len() as f64 * 0.02 - duration).abs() < 0.05);
    assert_tone(&decode(&packets)[25_000..150_000], 440.0, "the replay");
    // Seekable: a range is answered with that range.
    let range = http
        .get(format!("{}/spaces/{space}/recording.ogg", server.base))
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().await.unwrap(), whole.slice(1000..2000));
    // And as HLS VOD.
    let vod = http
        .get(format!("{}/spaces/{space}/replay.m3u8", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        vod.contains("#EXT-X-PLAYLIST-TYPE:VOD") && vod.ends_with("#EXT-X-ENDLIST\n"),
        "{vod}"
    );
    let segment = http
        .get(format!("{}/spaces/{space}/replay/0.m4s", server.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(common::hls::packets(&segment).1.len(), 100);

    // Only the host trims; the replay then starts later.
    let listener = common::signed_up(&server, "replay_listener").await;
    let refused = http
        .patch(format!("{}/api/v1/spaces/{space}/recording", server.base))
        .bearer_auth(listener.token().unwrap())
        .json(&serde_json::json!({"trim_start_secs": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let trimmed = authed(
        reqwest::Method::PATCH,
        &format!("/api/v1/spaces/{space}/recording"),
    )
    .json(&serde_json::json!({"trim_start_secs": 1.0}))
    .send()
    .await
    .unwrap();
    assert_eq!(trimmed.status(), 204);
    let (_, view) = describe().await;
    assert!(
        (view["duration_secs"].as_f64().unwrap() - (duration - 1.0)).abs() < 0.03,
        "{view}"
    );
    assert_eq!(view["trimmed_secs"], 1.0);
    let shorter = http
        .get(format!("{}/spaces/{space}/recording.ogg", server.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(ogg_packets(&shorter).len(), packets.len() - 50);

    // The host deletes it; the clips stay.
    let deleted = authed(
        reqwest::Method::DELETE,
        &format!("/api/v1/spaces/{space}/recording"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(describe().await.0, 404);
    let gone = http
        .get(format!("{}/spaces/{space}/recording.ogg", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let kept = http
        .get(format!("{}{}", server.base, clip["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), 200);
}
