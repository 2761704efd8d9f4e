//! Per-address limits on a real server: an address past its request rate gets 429 with a
//! Retry-After, a crowd's joins behind one address are paced instead, one past its connection
//! cap gets 503, a client that does not send its request head in time is closed; other
//! addresses notice nothing.

mod common;

use common::{TestServer, client_from, connect_from};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Everything the server sends until it closes (or 5 s pass).
async fn read_all(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_past_its_rate_gets_429_and_others_carry_on() {
    let server = TestServer::start_with("limits-rate", |c| {
        c.admission.ip_requests_per_sec = Some(1);
        c.admission.ip_request_burst = Some(5);
    })
    .await;
    let (_host, space) = common::live_space(&server, "host_l", "Limits").await;
    let url = format!("{}/api/v1/spaces/{space}", server.base);
    let greedy = client_from("127.0.10.1");
    for _ in 0..5 {
        assert_eq!(greedy.get(&url).send().await.unwrap().status(), 200);
    }
    let refused = greedy.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry, 1);
    assert!(refused.text().await.unwrap().contains("too many requests"));
    // A listener's join has rates of its own, and past them it waits its turn rather than
    // being refused: through the HTTP server (this ticket request has a body and comes on a
    // connection that carried others, so the door leaves it to the HTTP server) ...
    let ticket = greedy
        .post(format!("{url}/tickets"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(ticket.status(), 200);
    // ... and at the door (a fresh connection: an anonymous ticket, a live stream).
    let joiner = client_from("127.0.10.1");
    let ticket = joiner.post(format!("{url}/tickets")).send().await.unwrap();
    assert_eq!(ticket.status(), 200);
    let joiner = client_from("127.0.10.1");
    let ogg = joiner
        .get(format!("{}/spaces/{space}/live.opus", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ogg.status(), 200);
    drop(ogg);
    // The waiting room's status is for crowds behind one address: never limited.
    let status = greedy.get(format!("{url}/status")).send().await.unwrap();
    assert_eq!(status.status(), 200);
    // Health and metrics are the operator's: never limited.
    assert_eq!(
        greedy
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Another address is not this one.
    let other = client_from("127.0.11.1");
    assert_eq!(other.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(
        other
            .post(format!("{url}/tickets"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // After a second the greedy address may ask again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(greedy.get(&url).send().await.unwrap().status(), 200);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"stentor_rejections_total{reason="rate_ip"} 1"#),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_past_its_connection_cap_gets_503_at_once() {
    let server = TestServer::start_with("limits-conns", |c| {
        c.admission.ip_connections = Some(3);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.12.1", &server).await);
    }
    let mut fourth = connect_from("127.0.12.1", &server).await;
    let answer = read_all(&mut fourth).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 5"), "{answer}");
    assert!(answer.contains("too many connections from your address"));
    // Another address of the same network is not capped by this address's cap.
    let ok = client_from("127.0.12.2")
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Closing one frees a place.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = connect_from("127.0.12.1", &server).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_all(&mut again).await.starts_with("HTTP/1.1 200"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_send_its_head_in_time_is_closed() {
    let server = TestServer::start_with("limits-slow", |c| {
        c.admission.head_timeout_ms = Some(400);
    })
    .await;
    let started = Instant::now();
    // One sends nothing, one trickles a head a byte at a time, one starts a head for the
    // door and stops.
    let mut silent = connect_from("127.0.13.1", &server).await;
    let mut trickle = connect_from("127.0.13.2", &server).await;
    let mut partial = connect_from("127.0.13.3", &server).await;
    partial
        .write_all(b"GET /spaces/x/live.opus HTTP/1.1\r\nhost:")
        .await
        .unwrap();
    let trickler = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n" {
            if trickle.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        read_all(&mut trickle).await
    });
    for tcp in [&mut silent, &mut partial] {
        assert_eq!(read_all(tcp).await, "", "closed without an answer");
    }
    let trickled = trickler.await.unwrap();
    assert!(!trickled.contains("200 OK"), "{trickled}");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // Meanwhile a prompt client is served.
    let ok = client_from("127.0.13.4")
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"stentor_closes_total{reason="head_timeout"} 3"#),
        "{metrics}"
    );
    // A kept-alive connection left idle is closed in the same time.
    let mut idle = connect_from("127.0.13.5", &server).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_all(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let idled = started.elapsed();
    assert!(idled < Duration::from_secs(3), "idle for {idled:?}");
    let open: u32 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("stentor_connections_open "))
        .and_then(|v| v.trim().parse().ok())
        .expect("stentor_connections_open is shown");
    assert!(open <= 2, "the slow ones are gone, {open} open");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_behind_one_address_is_paced_into_the_space_not_refused() {
    let server = TestServer::start_with("limits-pace", |c| {
        c.admission.join_ip_per_sec = Some(20);
        c.admission.join_ip_burst = Some(20);
    })
    .await;
    let (_host, space) = common::live_space(&server, "host_nat", "Campus").await;
    // 50 people behind one address open the stream in the same instant: 20 at once, the
    // other 30 over about a second and a half, every one of them let in.
    let started = Instant::now();
    let joins = (0..50).map(|_| {
        let server = &server;
        let space = space.clone();
        async move {
            let mut tcp = connect_from("127.0.13.1", server).await;
            let head = format!("GET /spaces/{space}/live.opus HTTP/1.1\r\nHost: x\r\n\r\n");
            tcp.write_all(head.as_bytes()).await.unwrap();
            let mut first = [0u8; 12];
            tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut first))
                .await
                .expect("answered in time")
                .unwrap();
            (String::from_utf8_lossy(&first).into_owned(), tcp)
        }
    });
    let answers = futures_util::future::join_all(joins).await;
    let took = started.elapsed();
    for (status, _) in &answers {
        assert_eq!(status, "HTTP/1.1 200", "a join was refused");
    }
    assert!(took >= Duration::from_millis(1_200), "not paced: {took:?}");
    let metrics = server.metrics().await;
    let paced: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("stentor_joins_paced_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(paced >= 25, "{paced} joins paced");
    assert!(!metrics.contains(r#"reason="rate_ip""#), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_limits_count_the_clients_it_names() {
    let server = TestServer::start_with("limits-proxy", |c| {
        c.admission.ip_requests_per_sec = Some(1);
        c.admission.ip_request_burst = Some(2);
        c.admission.ip_connections = Some(2);
        c.http.trusted_proxies = Some(vec!["127.0.14.0/24".parse().unwrap()]);
    })
    .await;
    let url = format!("{}/api/v1/spaces", server.base);
    let proxy = client_from("127.0.14.1");
    let get = |client: &reqwest::Client, xff: &str| {
        client.get(&url).header("x-forwarded-for", xff).send()
    };
    // Two clients behind the proxy, each with its own rate.
    for _ in 0..2 {
        assert_eq!(get(&proxy, "203.0.113.7").await.unwrap().status(), 200);
    }
    assert_eq!(get(&proxy, "203.0.113.7").await.unwrap().status(), 429);
    assert_eq!(get(&proxy, "203.0.113.8").await.unwrap().status(), 200);
    // The proxy's connections count only against the server's cap, not its address's.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.14.1", &server).await);
    }
    assert_eq!(
        get(&client_from("127.0.14.1"), "203.0.113.9")
            .await
            .unwrap()
            .status(),
        200
    );
    drop(held);
    // From anyone else, the header is the client's to forge, and changes nothing.
    let direct = client_from("127.0.15.1");
    for i in 0..2 {
        let forged = format!("198.51.100.{i}");
        assert_eq!(get(&direct, &forged).await.unwrap().status(), 200);
    }
    assert_eq!(get(&direct, "198.51.100.99").await.unwrap().status(), 429);
    server.stop().await;
}
