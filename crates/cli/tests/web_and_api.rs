//! The web app is served from the binary, and the API endpoints it uses behave.

mod common;

use common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_and_its_assets_are_served_with_their_types() {
    let server = TestServer::start("web-assets").await;
    for path in ["/", "/s/demo", "/signin", "/signup", "/new"] {
        let resp = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(resp.headers().contains_key("content-security-policy"));
        assert!(resp.text().await.unwrap().contains("/assets/app.js"));
    }
    for (name, mime) in [
        ("app.js", "text/javascript"),
        ("space.js", "text/javascript"),
        ("playback-worklet.js", "text/javascript"),
        ("style.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let resp = reqwest::get(format!("{}/assets/{name}", server.base))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(mime),
            "{name}"
        );
    }
    let missing = reqwest::get(format!("{}/assets/../Cargo.toml", server.base))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cookie_is_signed_out_but_a_bad_bearer_token_is_refused() {
    let server = TestServer::start("web-session").await;
    let http = reqwest::Client::new();
    let me = |cookie: Option<&str>, bearer: Option<&str>| {
        let mut req = http.get(format!("{}/api/v1/me", server.base));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("stentor_session={c}"));
        }
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send()
    };
    let anonymous = me(None, None).await.unwrap();
    assert_eq!(anonymous.status(), 200);
    assert_eq!(anonymous.text().await.unwrap(), "null");
    let stale = me(Some("deadbeef"), None).await.unwrap();
    assert_eq!(stale.text().await.unwrap(), "null");
    assert_eq!(me(None, Some("deadbeef")).await.unwrap().status(), 401);

    let mut alice = server.api();
    let id = alice.sign_up("alice_w", "password-1").await.unwrap();
    let space = alice.create_space("Mine").await.unwrap();
    let mine: serde_json::Value = http
        .get(format!("{}/api/v1/me/spaces", server.base))
        .bearer_auth(alice.token().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine[0]["id"], space.as_str());
    assert_eq!(mine[0]["host_handle"], "alice_w");
    let found: serde_json::Value = reqwest::get(format!("{}/api/v1/users/alice_w", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["id"], id);
    let view = alice.space(&space).await.unwrap();
    assert_eq!(view["names"][id.to_string()], "alice_w");
    server.stop().await;
}

/// Sends `request` on `tcp` and reads one response with a `content-length` body.
async fn exchange(tcp: &mut tokio::net::TcpStream, request: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a whole response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("a content-length");
            if body.len() >= length {
                return (head.to_owned(), body.to_owned());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_tickets_come_from_the_door_and_the_connection_goes_on() {
    let server = TestServer::start("web-door-ticket").await;
    let mut alice = server.api();
    alice.sign_up("alice_d", "password-1").await.unwrap();
    let space = alice.create_space("Door").await.unwrap();
    // Loaded, as a Space is once anyone has looked at it.
    alice.space(&space).await.unwrap();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let post = format!(
        "POST /api/v1/spaces/{space}/tickets HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    );
    let (head, body) = exchange(&mut tcp, &post).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ticket = server
        .state
        .tickets
        .verify(
            view["ticket"].as_str().unwrap(),
            &space,
            stentor_server::unix_now(),
        )
        .unwrap();
    assert_eq!(view["user"], ticket.user);
    assert_eq!(view["role"], "listener");
    assert!(ticket.user >= 1 << 52, "an anonymous id");
    // The same connection goes on with the HTTP server.
    let (head, body) = exchange(&mut tcp, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "ok\n");
    // What the door does not grant, the HTTP server answers as ever.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let missing =
        "POST /api/v1/spaces/nope/tickets HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    let (head, body) = exchange(&mut tcp, missing).await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(body.contains("space not found"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_room_status_is_small_cacheable_and_counts_the_crowd() {
    // 3 000 waiting clients, here all behind the test's one address.
    let server = TestServer::start_with("web-status", |c| {
        c.admission.ip_request_burst = Some(10_000);
        c.admission.network_request_burst = Some(10_000);
    })
    .await;
    let mut alice = server.api();
    alice.sign_up("alice_s", "password-1").await.unwrap();
    let space = alice.create_space("Soon").await.unwrap();
    let url = format!("{}/api/v1/spaces/{space}/status", server.base);
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=1, stale-while-revalidate=5"
    );
    let status: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status["state"], "scheduled");
    assert_eq!(status["listeners"], 0);
    let now = status["now"].as_i64().unwrap();
    assert!((now - stentor_server::unix_now() as i64).abs() <= 1);
    assert!(status["poll_secs"].as_u64().unwrap() >= 1);
    // A crowd asking: 3 000 asks within a second or two, as 3 000 waiting clients would.
    // A server that finds itself overloaded may shed some (503): those are not counted.
    use futures_util::StreamExt;
    let http = reqwest::Client::new();
    let statuses: Vec<u16> = futures_util::stream::iter(0..3_000)
        .map(|_| async { http.get(&url).send().await.unwrap().status().as_u16() })
        .buffer_unordered(8)
        .collect()
        .await;
    let answered = statuses.iter().filter(|s| **s == 200).count() as u64;
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503));
    assert!(answered >= 2_000, "{answered} of 3 000 answered");
    // Counted once the second they fell in is over.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let status: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let waiting = status["waiting"].as_u64().unwrap();
    assert!(waiting >= answered, "{status}");
    assert_eq!(status["join_window_secs"], waiting.div_ceil(2_000));
    alice
        .command(&space, serde_json::json!({"cmd": "start"}))
        .await
        .unwrap();
    let status: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(status["state"], "live");
    server.stop().await;
}
