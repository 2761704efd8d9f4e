//! Under-attack mode: a new listener's ticket costs a proof of work (a server-signed
//! challenge, solved by the client and good for one ticket); people on stage and listeners
//! already in are not asked; the operator turns it on with a file in the data directory.

mod common;

use common::TestServer;
use std::time::Duration;
use stentor_loadtest::plan::parse_sources;
use stentor_loadtest::{Plan, Profile, Transport};

async fn anonymous_ticket(base: &str, space: &str, query: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/spaces/{space}/tickets{query}"))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_attack_a_new_ticket_costs_a_proof_of_work() {
    let server = TestServer::start_with("under-attack", |c| {
        c.admission.under_attack = Some(true);
        c.admission.pow_min_bits = Some(8);
        c.admission.pow_max_bits = Some(8);
    })
    .await;
    let (host, _guest, space, _) = common::live_space_with_two_speakers(&server).await;
    let base = &server.base;

    let (status, asked) = anonymous_ticket(base, &space, "").await;
    assert_eq!(status, 401, "{asked}");
    assert_eq!(asked["bits"], 8);
    assert!(asked["detail"].as_str().unwrap().contains("proof of work"));
    let challenge = asked["challenge"].as_str().unwrap();
    let nonce = stentor_loadtest::pow::solve(challenge, 8);
    let work = format!("?challenge={challenge}&nonce={nonce}");
    let (status, granted) = anonymous_ticket(base, &space, &work).await;
    assert_eq!(status, 200, "{granted}");
    assert!(granted["ticket"].is_string());
    // One solution, one ticket.
    let (status, again) = anonymous_ticket(base, &space, &work).await;
    assert_eq!(status, 401);
    assert!(again["detail"].as_str().unwrap().contains("already used"));
    // A wrong nonce (every one before the first solution is) gets a fresh challenge.
    let (_, fresh) = anonymous_ticket(base, &space, "").await;
    let challenge = fresh["challenge"].as_str().unwrap();
    let first = stentor_loadtest::pow::solve(challenge, 8);
    if first > 0 {
        let (status, refused) = anonymous_ticket(
            base,
            &space,
            &format!("?challenge={challenge}&nonce={}", first - 1),
        )
        .await;
        assert_eq!(status, 401);
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("not enough work")
        );
        assert_ne!(refused["challenge"], fresh["challenge"]);
    }

    // The stage is never asked.
    host.ticket(&space).await.expect("the host needs no work");

    // The load generator solves what it is asked and gets in.
    let report = stentor_loadtest::run::run(
        Plan {
            url: base.clone(),
            space: space.clone(),
            transport: Transport::Ws,
            listeners: 20,
            profile: Profile::Ramp { per_second: 50.0 },
            hold_secs: 1.0,
            sources: parse_sources("127.0.20.1-127.0.20.20").unwrap(),
            workers: 0,
            nodes: Vec::new(),
            fallback: Vec::new(),
        },
        1000.0,
        false,
    )
    .await
    .unwrap();
    assert_eq!(report.admitted, 20, "{:?}", report.failures);
    let metrics = server.metrics().await;
    assert!(metrics.contains("stentor_under_attack 1"), "{metrics}");
    assert!(
        metrics.contains(r#"stentor_rejections_total{reason="pow_required"}"#),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_turns_under_attack_mode_on_and_off_with_a_file() {
    let server = TestServer::start("under-attack-flag").await;
    let (_host, _guest, space, _) = common::live_space_with_two_speakers(&server).await;
    assert_eq!(anonymous_ticket(&server.base, &space, "").await.0, 200);
    let flag = server.data_dir.join("under-attack");
    std::fs::write(&flag, "").unwrap();
    let mut status = 200;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = anonymous_ticket(&server.base, &space, "").await.0;
        if status == 401 {
            break;
        }
    }
    assert_eq!(status, 401, "the flag was not noticed within 3 s");
    std::fs::remove_file(&flag).unwrap();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = anonymous_ticket(&server.base, &space, "").await.0;
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "the flag's removal was not noticed within 3 s");
    server.stop().await;
}
