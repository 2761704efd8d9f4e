//! LL-HLS end to end: a speaker's tone through the mixer into fMP4 parts, read the way a
//! low-latency player reads them (blocking reloads that follow the preload hint), every
//! playlist checked against the rules, the parts decoded back into the tone.

mod common;

use common::hls::{Playlist, packets};
use common::{TestServer, assert_tone, decode, live_space, speak_tone};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// Parts of 200 ms, segments of 1 s, 8 s listed: a short window so that parts leave it
/// within the test.
async fn server(name: &str) -> TestServer {
    TestServer::start_with(name, |c| {
        c.media.hls_segment_parts = Some(5);
        c.media.hls_window_segments = Some(8);
    })
    .await
}

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_following_blocking_reloads_gets_every_part_of_the_tone_on_time() {
    let server = server("hls-follow").await;
    let (host, space) = live_space(&server, "hls_host", "Parts").await;
    let speaker = speak_tone(&host, &space, 440.0, 14.0);
    let client = reqwest::Client::new();
    let base = format!("{}/spaces/{space}", server.base);

    // The first request starts the framing and waits for its first part.
    let first = get(&client, &format!("{base}/live.m3u8")).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(first.headers()["cache-control"], "public, max-age=1");
    let mut playlist = Playlist::parse(&first.text().await.unwrap()).check();

    let init = get(&client, &format!("{base}/hls/init.mp4")).await;
    assert_eq!(
        init.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(init.bytes().await.unwrap().starts_with(&[0, 0, 0]));

    let mut audio = Vec::new();
    let mut next_time = None;
    let mut waits = Vec::new();
    let mut sequence = playlist.media_sequence;
    let mut first_part = None;
    let (mut msn, mut part) = playlist.last_part().expect("a part is listed");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        // The part listed last, fetched and decoded; then a blocking reload for the next.
        let url = format!("{base}/hls/{msn}.{part}.m4s");
        let response = get(&client, &url).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let (time, frames) = packets(&response.bytes().await.unwrap());
        assert_eq!(frames.len(), 10, "a part is 200 ms");
        if let Some(expected) = next_time {
            assert_eq!(time, expected, "parts follow each other without a gap");
        }
        next_time = Some(time + 10 * 960);
        first_part.get_or_insert((msn, part));
        audio.extend(frames);

        let (want_msn, want_part) = playlist.next_part();
        let asked = Instant::now();
        let url = format!("{base}/live.m3u8?_HLS_msn={want_msn}&_HLS_part={want_part}");
        let response = get(&client, &url).await;
        waits.push(asked.elapsed());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "public, max-age=6");
        playlist = Playlist::parse(&response.text().await.unwrap()).check();
        assert!(
            playlist.media_sequence >= sequence,
            "the media sequence never goes back"
        );
        sequence = playlist.media_sequence;
        (msn, part) = playlist.last_part().unwrap();
        assert_eq!(
            (msn, part),
            (want_msn, want_part),
            "the answer lists the part asked for"
        );
    }
    assert!(audio.len() >= 450, "{} frames in 10 s", audio.len());
    // Blocking reloads are answered when the part is out: about one part's time apart.
    waits.sort();
    let median = waits[waits.len() / 2];
    assert!(
        median < Duration::from_millis(260),
        "median wait {median:?}"
    );
    assert!(
        *waits.last().unwrap() < Duration::from_millis(600),
        "longest wait {:?}",
        waits.last()
    );
    let samples = decode(&audio);
    assert_tone(&samples[48_000..], 440.0, "the LL-HLS player");

    // A part that left the window is gone; one far ahead was never there.
    let (old_msn, old_part) = first_part.unwrap();
    let gone = get(&client, &format!("{base}/hls/{old_msn}.{old_part}.m4s")).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    let gone = get(&client, &format!("{base}/hls/{old_msn}.m4s")).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    let far = get(&client, &format!("{base}/hls/{}.0.m4s", msn + 10)).await;
    assert_eq!(far.status(), StatusCode::NOT_FOUND);
    let too_far = get(&client, &format!("{base}/live.m3u8?_HLS_msn={}", msn + 10)).await;
    assert_eq!(too_far.status(), StatusCode::BAD_REQUEST);
    let no_msn = get(&client, &format!("{base}/live.m3u8?_HLS_part=1")).await;
    assert_eq!(no_msn.status(), StatusCode::BAD_REQUEST);

    // A whole segment is its parts, and decodes as well.
    let whole = playlist
        .segments
        .iter()
        .rev()
        .find(|s| s.whole.is_some())
        .unwrap();
    let bytes = get(&client, &format!("{base}/hls/{}.m4s", whole.msn))
        .await
        .bytes()
        .await
        .unwrap();
    let (_, frames) = packets(&bytes);
    assert_eq!(frames.len(), 50);

    // The preload hint is held until it is published.
    let hint = playlist.preload_hint.clone().unwrap();
    let asked = Instant::now();
    let hinted = get(&client, &format!("{base}/{hint}")).await;
    assert_eq!(hinted.status(), StatusCode::OK);
    assert!(asked.elapsed() < Duration::from_millis(600));

    speaker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_updates_etags_and_refusals() {
    let server = server("hls-delta").await;
    let client = reqwest::Client::new();

    // Not live yet: refused, nothing framed.
    let host = common::signed_up(&server, "hls_delta").await;
    let space = host.create_space("Soon").await.unwrap();
    let base = format!("{}/spaces/{space}", server.base);
    let early = get(&client, &format!("{base}/live.m3u8")).await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    let missing = get(&client, &format!("{}/spaces/nope/live.m3u8", server.base)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    host.command(&space, serde_json::json!({"cmd": "start"}))
        .await
        .unwrap();
    let speaker = speak_tone(&host, &space, 440.0, 12.0);
    // Eight seconds listed, six may not be skipped: after the window fills, a delta skips.
    let mut playlist = Playlist::parse(
        &get(&client, &format!("{base}/live.m3u8"))
            .await
            .text()
            .await
            .unwrap(),
    );
    let until = Instant::now() + Duration::from_secs(9);
    while Instant::now() < until {
        let (m, p) = playlist.next_part();
        let text = get(
            &client,
            &format!("{base}/live.m3u8?_HLS_msn={m}&_HLS_part={p}"),
        )
        .await
        .text()
        .await
        .unwrap();
        playlist = Playlist::parse(&text).check();
    }
    assert!(
        playlist
            .segments
            .iter()
            .filter(|s| s.whole.is_some())
            .count()
            >= 7
    );
    let (m, p) = playlist.next_part();
    let url = format!("{base}/live.m3u8?_HLS_msn={m}&_HLS_part={p}&_HLS_skip=YES");
    let response = get(&client, &url).await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let delta = Playlist::parse(&response.text().await.unwrap()).check();
    assert!(
        delta.skipped >= 1,
        "segments older than CAN-SKIP-UNTIL are skipped"
    );
    let full = Playlist::parse(
        &get(&client, &format!("{base}/live.m3u8"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(delta.media_sequence, full.media_sequence);
    let kept = &full.segments[delta.skipped as usize..];
    assert_eq!(
        &delta.segments[..kept.len().min(delta.segments.len()) - 1],
        &kept[..kept.len().min(delta.segments.len()) - 1]
    );

    // The same version again: 304.
    let again = client
        .get(format!(
            "{base}/live.m3u8?_HLS_msn={m}&_HLS_part={p}&_HLS_skip=YES"
        ))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert!(
        again.status() == StatusCode::NOT_MODIFIED || again.headers()["etag"] != etag.as_str(),
        "an unchanged playlist is 304"
    );

    // The end: the open segment is closed and the playlist says so.
    host.command(&space, serde_json::json!({"cmd": "end"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ended = Playlist::parse(
        &get(&client, &format!("{base}/live.m3u8"))
            .await
            .text()
            .await
            .unwrap(),
    )
    .check();
    assert!(ended.ended);
    speaker.abort();
}
