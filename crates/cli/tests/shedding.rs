//! Under measured overload the server sheds by priority: the API first, then new joins, and
//! never the stage; every refusal is a 503 with a Retry-After, counted by reason.

mod common;

use common::TestServer;
use futures_util::StreamExt;
use stentor_gate::shed::Signals;

/// Tells the server it is this overloaded (pressure = lag / 50 ms); the server here sheds
/// without waiting for the pressure to last. Its own measurements only lower the level after
/// it has been held for 3 s.
fn overload(server: &TestServer, pressure: f64) {
    server.state.overload.observe(Signals {
        loop_lag_ms: 50.0 * pressure,
        ..Signals::default()
    });
}

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_sheds_the_api_then_joins_but_never_the_stage_or_those_in() {
    let server = TestServer::start_with("shedding", |c| {
        c.admission.shed_sustain_ms = Some(0);
    })
    .await;
    let (host, _guest, space, _) = common::live_space_with_two_speakers(&server).await;
    let http = reqwest::Client::new();
    let base = &server.base;
    // A listener already in, before any overload.
    let listener = server.api();
    let ticket = listener.ticket(&space).await.unwrap();
    let (mut ws, _) = listener.connect(&space, &ticket.ticket).await.unwrap();
    let spare = listener.ticket(&space).await.unwrap();

    // Level 1: the API is shed; tickets, the stage's commands, health and metrics are not.
    overload(&server, 0.8);
    let api = http
        .get(format!("{base}/api/v1/spaces/{space}"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 503);
    assert!((1..=3).contains(&retry_after(&api)));
    assert!(api.text().await.unwrap().contains("overloaded"));
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    overload(&server, 0.8);
    listener
        .ticket(&space)
        .await
        .expect("joins are not shed yet");

    // Level 2: new joins are shed, at the door (anonymous ticket) and at the media door
    // (a ticket taken before); the host still gets a ticket and still commands.
    overload(&server, 1.2);
    let anon = http
        .post(format!("{base}/api/v1/spaces/{space}/tickets"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 503);
    assert!((2..=10).contains(&retry_after(&anon)));
    overload(&server, 1.2);
    let upgrade = listener.connect(&space, &spare.ticket).await;
    let err = upgrade.expect_err("a join while joins are shed");
    assert!(format!("{err:#}").contains("503"), "{err:#}");
    overload(&server, 1.2);
    let ogg = http
        .get(format!(
            "{base}/spaces/{space}/live.opus?ticket={}",
            spare.ticket
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ogg.status(), 503);
    overload(&server, 1.2);
    let host_ticket = host.ticket(&space).await.expect("the stage is never shed");
    host.connect(&space, &host_ticket.ticket)
        .await
        .expect("the host joins while joins are shed");
    host.command(&space, serde_json::json!({"cmd": "mute_all"}))
        .await
        .expect("the host's controls answer");

    // The listener already in still receives audio.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut audio = 0;
    while audio < 10 {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("audio keeps coming")
            .unwrap()
            .unwrap();
        if msg.is_binary() {
            audio += 1;
        }
    }
    let metrics = server.metrics().await;
    for line in [
        "stentor_rejections_total{reason=\"shed_api\"} 1",
        "stentor_rejections_total{reason=\"shed_joins\"} 3",
        "stentor_shed_level 2",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_last_level_the_newest_listeners_are_let_go_with_when_to_come_back() {
    let server = TestServer::start_with("shedding-listeners", |c| {
        c.admission.shed_sustain_ms = Some(0);
    })
    .await;
    let (host, _guest, space, _) = common::live_space_with_two_speakers(&server).await;
    let (mut host_ws, _) = host
        .connect(&space, &host.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    let anon = server.api();
    let mut listeners = Vec::new();
    for _ in 0..40 {
        let ticket = anon.ticket(&space).await.unwrap();
        listeners.push(anon.connect(&space, &ticket.ticket).await.unwrap().0);
    }
    // 5 % a second of 40: about one every half second.
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(2500);
    while tokio::time::Instant::now() < until {
        overload(&server, 1.6);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    overload(&server, 0.0);
    let mut shed = Vec::new();
    for ws in &mut listeners {
        // Whoever was let go has its close waiting behind some audio; the others go on
        // receiving audio.
        let until = tokio::time::Instant::now() + std::time::Duration::from_millis(150);
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, ws.next()).await {
            if let tokio_tungstenite::tungstenite::Message::Close(Some(frame)) = msg {
                shed.push((u16::from(frame.code), frame.reason.to_string()));
                break;
            }
        }
    }
    assert!((2..=10).contains(&shed.len()), "{} let go", shed.len());
    for (code, reason) in &shed {
        assert_eq!(*code, 1013);
        assert!(reason.contains("retry in"), "{reason}");
    }
    // The stage is never let go.
    host.command(&space, serde_json::json!({"cmd": "mute_all"}))
        .await
        .unwrap();
    let alive = tokio::time::timeout(std::time::Duration::from_secs(1), host_ws.next())
        .await
        .expect("the host's connection still carries events")
        .unwrap()
        .unwrap();
    assert!(!alive.is_close());
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(&format!(
            "stentor_closes_total{{reason=\"shed\"}} {}",
            shed.len()
        )),
        "{metrics}"
    );
    server.stop().await;
}
