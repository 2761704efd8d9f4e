//! A Space costs only while it is used: an account has quotas of scheduled and live Spaces,
//! a Space nobody uses is unloaded, and what a Space is told (its title, its start) is checked.

mod common;

use common::TestServer;
use stentor::client::Api;

async fn post(api: &Api, path: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1{path}", api.base()))
        .bearer_auth(api.token().unwrap())
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_has_a_quota_of_scheduled_and_of_live_spaces() {
    let server = TestServer::start_with("costs-quota", |c| {
        c.spaces.scheduled_per_host = Some(2);
        c.spaces.live_per_host = Some(1);
    })
    .await;
    let api = common::signed_up(&server, "busy_host").await;
    let a = api.create_space("One").await.unwrap();
    let b = api.create_space("Two").await.unwrap();
    let third = post(&api, "/spaces", serde_json::json!({"title": "Three"})).await;
    assert_eq!(third.status(), 409);
    assert!(third.text().await.unwrap().contains("2 scheduled spaces"));
    api.command(&a, serde_json::json!({"cmd": "start"}))
        .await
        .unwrap();
    // A is live now, so there is room for another scheduled one, but not for a second live.
    api.create_space("Three").await.unwrap();
    let second_live = post(
        &api,
        &format!("/spaces/{b}/commands"),
        serde_json::json!({"cmd": "start"}),
    )
    .await;
    assert_eq!(second_live.status(), 409);
    assert!(second_live.text().await.unwrap().contains("1 live spaces"));
    api.command(&a, serde_json::json!({"cmd": "end"}))
        .await
        .unwrap();
    api.command(&b, serde_json::json!({"cmd": "start"}))
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn titles_and_start_times_are_checked() {
    let server = TestServer::start("costs-titles").await;
    let api = common::signed_up(&server, "careful_host").await;
    for title in [
        "line\nbreak",
        "nul\0byte",
        "evil\u{202E}txt.exe",
        "iso\u{2067}late",
        "   ",
    ] {
        let r = post(&api, "/spaces", serde_json::json!({"title": title})).await;
        assert_eq!(r.status(), 400, "{title:?}");
    }
    for starts_at in [i64::MAX, i64::MIN, 0] {
        let r = post(
            &api,
            "/spaces",
            serde_json::json!({"title": "When", "starts_at": starts_at}),
        )
        .await;
        assert_eq!(r.status(), 400, "{starts_at}");
    }
    let soon = stentor_server::unix_now() as i64 + 600;
    let r = post(
        &api,
        "/spaces",
        serde_json::json!({"title": "Soon 🎙", "starts_at": soon}),
    )
    .await;
    assert_eq!(r.status(), 201);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_of_a_space_not_in_memory_counts_against_the_rate() {
    let server = TestServer::start_with("costs-status", |c| {
        c.admission.ip_requests_per_sec = Some(1);
        c.admission.ip_request_burst = Some(3);
    })
    .await;
    let api = common::signed_up(&server, "status_host").await;
    let space = api.create_space("Polled").await.unwrap();
    let client = common::client_from("127.0.40.1");
    let status = |id: String| {
        let (client, base) = (client.clone(), server.base.clone());
        async move {
            client
                .get(format!("{base}/api/v1/spaces/{id}/status"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // A loaded Space's status is free: a crowd behind one address polls it.
    for _ in 0..10 {
        assert_eq!(status(space.clone()).await, 200);
    }
    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(status(format!("nosuch{i}")).await);
    }
    assert_eq!(answers, [404, 404, 404, 429, 429]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_space_nobody_uses_is_unloaded_and_comes_back_from_the_store() {
    let server = TestServer::start_with("costs-unload", |c| {
        c.spaces.idle_unload_secs = Some(0);
    })
    .await;
    let api = common::signed_up(&server, "idle_host").await;
    let space = api.create_space("Idle").await.unwrap();
    api.command(&space, serde_json::json!({"cmd": "start"}))
        .await
        .unwrap();
    let spaces = &server.state.spaces;
    // A listener holds it.
    let anon = server.api();
    let (ws, _) = anon
        .connect(&space, &anon.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    assert_eq!(spaces.unload_unused(), 0);
    assert!(spaces.if_loaded(&space).is_some());
    drop(ws);
    // Once the listener has gone (and its writer, a few seconds later), nobody uses it.
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while spaces.unload_unused() == 0 {
        assert!(tokio::time::Instant::now() < until, "still loaded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(spaces.if_loaded(&space).is_none());
    // Asked for again, it is loaded from the store, still live, and audible.
    let view = api.space(&space).await.unwrap();
    assert_eq!(view["state"], "live");
    let (mut ws, _) = anon
        .connect(&space, &anon.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    let audio = common::next_audio(&mut ws).await;
    assert!(audio.is_some(), "no audio after reload");
    server.stop().await;
}
