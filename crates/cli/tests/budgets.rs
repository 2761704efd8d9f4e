//! Expensive work has a budget: password hashes run a few at a time whatever the crowd, a
//! handle that keeps failing waits, and an unknown handle costs what a known one does.

mod common;

use common::{TestServer, client_from};
use std::time::Duration;

async fn sign_in(client: &reqwest::Client, server: &TestServer, handle: &str, pw: &str) -> u16 {
    client
        .post(format!("{}/api/v1/sessions", server.base))
        .json(&serde_json::json!({"handle": handle, "password": pw}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eighty_concurrent_wrong_sign_ins_are_all_answered_and_hash_a_few_at_a_time() {
    let server = TestServer::start("budget-hashing").await;
    server.api().sign_up("victim", "password-1").await.unwrap();
    let client = client_from("127.0.20.1");
    let tries = (0..80).map(|i| {
        let (client, server) = (client.clone(), &server);
        async move { sign_in(&client, server, "victim", &format!("wrong-{i}")).await }
    });
    let answers = futures_util::future::join_all(tries).await;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for status in &answers {
        *by_status.entry(*status).or_default() += 1;
    }
    assert!(
        answers.iter().all(|s| [401, 429, 503].contains(s)),
        "{by_status:?}"
    );
    assert!(by_status.contains_key(&401), "{by_status:?}");
    let cores = std::thread::available_parallelism().unwrap().get();
    let peak = server.state.passwords.peak();
    assert!(peak <= 2 * cores, "{peak} hashes ran at once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_that_keeps_failing_waits_from_any_address_and_the_right_password_still_works_after()
 {
    let server = TestServer::start("budget-throttle").await;
    server.api().sign_up("alice", "password-1").await.unwrap();
    // Five mistakes are free; the sixth makes the next try wait.
    for i in 0..6 {
        let client = client_from(&format!("127.0.21.{}", i + 1));
        assert_eq!(sign_in(&client, &server, "alice", "wrong-pw").await, 401);
    }
    // The seventh, from yet another address and right, is not checked at all.
    let other = client_from("127.0.22.1");
    let response = other
        .post(format!("{}/api/v1/sessions", server.base))
        .json(&serde_json::json!({"handle": "alice", "password": "password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Another account is not held up.
    assert_eq!(sign_in(&other, &server, "nobody", "password-1").await, 401);
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(sign_in(&other, &server, "alice", "password-1").await, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_handle_costs_the_same_hash_and_answer_as_a_wrong_password() {
    let server = TestServer::start("budget-timing").await;
    server.api().sign_up("known", "password-1").await.unwrap();
    let client = client_from("127.0.23.1");
    let passwords = &server.state.passwords;
    let answer = |handle: &'static str| {
        let (client, server) = (&client, &server);
        async move {
            let before = passwords.done();
            let response = client
                .post(format!("{}/api/v1/sessions", server.base))
                .json(&serde_json::json!({"handle": handle, "password": "wrong-pw-1"}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body["detail"].clone(), passwords.done() - before)
        }
    };
    let wrong = answer("known").await;
    let unknown = answer("unknown").await;
    // The same status, the same words, and the same work: one argon2id hash each, so the
    // time of the answer does not tell which handles exist.
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong, unknown);
    assert_eq!(unknown.2, 1);
    server.stop().await;
}
