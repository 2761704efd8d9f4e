//! The metrics tell how loaded the server is, and so how to hurt it: with a token they are
//! for its bearer only, and they can be moved to an address of their own.

mod common;

use common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_metrics_are_for_its_bearer_only() {
    let server = TestServer::start_with("metrics-token", |c| {
        c.http.metrics_token = Some("s3cret-scrape".into());
    })
    .await;
    let url = format!("{}/metrics", server.base);
    let client = reqwest::Client::new();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 404);
    let wrong = client.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), 404);
    let right = client
        .get(&url)
        .bearer_auth("s3cret-scrape")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("stentor_shed_level"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_can_have_an_address_of_their_own() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = TestServer::start_with("metrics-bind", |c| {
        c.http.metrics_bind = Some(format!("127.0.0.1:{port}").parse().unwrap());
    })
    .await;
    let main = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
    let own = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert!(own.text().await.unwrap().contains("stentor_joins"));
    server.stop().await;
}
