//! The latency from a speaker's frame to the mixed frame reaching a listener stays bounded.
//! (The real measurement is bench/latency.sh; this only checks a generous bound.)

mod common;

use common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaker_to_listener_latency_is_bounded() {
    let server = TestServer::start("latency").await;
    let mut host = server.api();
    host.sign_up("latency_host", "password-1").await.unwrap();
    let space = host.create_space("latency").await.unwrap();
    host.command(&space, serde_json::json!({"cmd": "start"}))
        .await
        .unwrap();
    let report = stentor::latency::measure(&host, &space, 4.0, 10, 5)
        .await
        .unwrap();
    assert!(
        report.samples.len() + 1 >= report.sent,
        "{} of {} markers",
        report.samples.len(),
        report.sent
    );
    let p99 = report.quantile(0.99);
    println!(
        "p50 {:?} p99 {:?} all {:?}",
        report.quantile(0.5),
        p99,
        report.samples
    );
    assert!(p99.as_millis() <= 250, "p99 {p99:?}");
    server.stop().await;
}
