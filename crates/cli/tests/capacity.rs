//! Beyond its listener budget the server refuses listeners with 503 and a Retry-After,
//! never the people on stage, and a freed place is reused.

mod common;

use common::{TestServer, live_space_with_two_speakers};
use stentor::client::SpaceSocket;

async fn status_of(server: &TestServer, url: String) -> (u16, Option<u64>) {
    match tokio_tungstenite::connect_async(url.replacen("http", "ws", 1)).await {
        Ok(_) => panic!("admitted {url} ({})", server.base),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => (
            resp.status().as_u16(),
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse().ok()),
        ),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_beyond_the_budget_get_503_with_retry_after_but_speakers_get_in() {
    let server = TestServer::start_with("capacity", |c| c.http.max_listeners = Some(2)).await;
    let (host, _guest, space, _) = live_space_with_two_speakers(&server).await;
    let anon = server.api();
    let mut held: Vec<SpaceSocket> = Vec::new();
    for _ in 0..2 {
        let t = anon.ticket(&space).await.unwrap();
        held.push(anon.connect(&space, &t.ticket).await.unwrap().0);
    }
    let t = anon.ticket(&space).await.unwrap();
    let url = format!(
        "{}/api/v1/spaces/{space}/ws?ticket={}",
        server.base, t.ticket
    );
    let (status, retry) = status_of(&server, url.clone()).await;
    assert_eq!(status, 503);
    assert!(retry.is_some_and(|s| (2..10).contains(&s)), "{retry:?}");
    let ogg = reqwest::get(format!("{}/spaces/{space}/live.opus", server.base))
        .await
        .unwrap();
    assert_eq!(ogg.status(), 503);
    assert!(ogg.headers().contains_key("retry-after"));

    // The host is on stage: always admitted, even now.
    let ticket = host.ticket(&space).await.unwrap();
    let (_host_ws, hello) = host.connect(&space, &ticket.ticket).await.unwrap();
    assert_eq!(hello["role"], "host");

    // A listener leaves; the next one gets in once the server has noticed.
    drop(held.pop());
    let mut admitted = false;
    for _ in 0..50 {
        let t = anon.ticket(&space).await.unwrap();
        if let Ok((ws, _)) = anon.connect(&space, &t.ticket).await {
            held.push(ws);
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(admitted, "the freed place was not reused");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"stentor_rejections_total{reason="capacity"}"#),
        "{metrics}"
    );
    server.stop().await;
}
