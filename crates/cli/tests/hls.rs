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

/// nginx with a cache in front of `upstream`, on a port of its own; stopped when dropped.
struct Nginx {
    child: std::process::Child,
    dir: std::path::PathBuf,
    base: String,
}

impl Nginx {
    fn start(upstream: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("stentor-test-nginx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("cache")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let upstream = upstream.trim_start_matches("http://");
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               proxy_cache_path {d}/cache keys_zone=hls:4m inactive=60s use_temp_path=off;\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
                 proxy_pass http://{upstream};\n      proxy_http_version 1.1;\n\
                 proxy_cache hls;\n      proxy_cache_key $uri$is_args$args;\n\
                 proxy_cache_lock on;\n      proxy_cache_lock_timeout 8s;\n      proxy_cache_lock_age 8s;\n\
                 add_header X-Cache-Status $upstream_cache_status;\n    }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = std::process::Command::new("nginx")
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-p")
            .arg(&dir)
            .args(["-g", "daemon off;"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx runs (.ci/run installs it)");
        Self {
            child,
            dir,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM, not KILL: the master stops its workers before it exits.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// LL-HLS requests the server has answered so far.
async fn hls_requests(server: &TestServer) -> u64 {
    let text = server.metrics().await;
    ["stentor_hls_playlists_total ", "stentor_hls_files_total "]
        .iter()
        .map(|name| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nginx; run by .ci/run"]
async fn behind_nginx_a_crowd_of_players_costs_the_server_what_one_does() {
    let server = server("hls-nginx").await;
    let (host, space) = live_space(&server, "hls_cache", "Cached").await;
    let speaker = speak_tone(&host, &space, 440.0, 20.0);
    let cache = Nginx::start(&server.base);
    let base = format!("{}/spaces/{space}", cache.base);
    let client = reqwest::Client::new();
    for _ in 0..50 {
        if client
            .get(format!("{base}/live.m3u8"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = hls_requests(&server).await;
    let started = Instant::now();
    // 40 players through the cache for 6 s: every part listed after the last one, then a
    // blocking reload for the next.
    let players = (0..40).map(|_| {
        // A request the cache holds longer than this is a failure, not a hang.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let base = base.clone();
        tokio::spawn(async move {
            let text = client
                .get(format!("{base}/live.m3u8"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let mut playlist = Playlist::parse(&text).check();
            let mut last = playlist.last_part().unwrap();
            let mut frames = Vec::new();
            let mut first = true;
            while started.elapsed() < Duration::from_secs(6) {
                let mut wanted: Vec<(u64, u32)> = playlist
                    .segments
                    .iter()
                    .flat_map(|s| (0..s.parts.len() as u32).map(move |p| (s.msn, p)))
                    .filter(|p| *p > last)
                    .collect();
                if first {
                    wanted = vec![last];
                    first = false;
                }
                for (msn, part) in wanted {
                    let r = client
                        .get(format!("{base}/hls/{msn}.{part}.m4s"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    let (time, n) = packets(&r.bytes().await.unwrap());
                    frames.push((time / 960, n.len() as u64));
                    last = (msn, part);
                }
                let (m, p) = playlist.next_part();
                let url = format!("{base}/live.m3u8?_HLS_msn={m}&_HLS_part={p}&_HLS_skip=YES");
                let text = client.get(url).send().await.unwrap().text().await.unwrap();
                playlist = Playlist::parse(&text).check();
            }
            frames
        })
    });
    let mut parts_seen = 0;
    for got in futures_util::future::join_all(players).await {
        let got = got.unwrap();
        // Every part after the first, without a gap.
        for w in got.windows(2) {
            assert_eq!(w[1].0, w[0].0 + w[0].1, "a player missed frames: {got:?}");
        }
        parts_seen = parts_seen.max(got.len());
    }
    let asked = hls_requests(&server).await - before;
    eprintln!("40 players, {parts_seen} parts each: {asked} requests reached the server");
    assert!(parts_seen >= 20, "{parts_seen} parts in 6 s");
    // One player alone asks about two requests a part (a reload and the part); behind the
    // cache the crowd costs about that, not forty times it.
    assert!(
        asked <= 3 * parts_seen as u64 + 10,
        "{asked} requests reached the server for {parts_seen} parts"
    );
    speaker.abort();
}
