//! Moderation lasts: a host's mute and an open invitation survive a restart, a removal ends
//! every stream of the removed person (the Ogg one too) and refuses their next ticket, and a
//! change that cannot be stored fails the command instead of answering 204.

mod common;

use common::{TestServer, live_space_with_two_speakers};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_mute_and_an_open_invitation_survive_a_restart() {
    let server = TestServer::start("moderation-restart").await;
    let (host, _guest, space, guest_id) = live_space_with_two_speakers(&server).await;
    host.command(&space, serde_json::json!({"cmd": "mute", "user": guest_id}))
        .await
        .unwrap();
    let mut third = server.api();
    let third_id = third.sign_up("third_one", "password-3").await.unwrap();
    host.command(
        &space,
        serde_json::json!({"cmd": "invite", "user": third_id}),
    )
    .await
    .unwrap();
    let data_dir = server.stop().await;

    let server = TestServer::start_in(data_dir).await;
    let mut host = server.api();
    host.sign_in("host_one", "password-1").await.unwrap();
    let view = host.space(&space).await.unwrap();
    let guest = view["stage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m[0] == guest_id)
        .cloned()
        .expect("the guest is still on stage");
    assert_eq!(guest[2], true, "the host's mute was lost: {view}");
    let live = server.state.spaces.get(&space).await.unwrap();
    assert!(live.with_domain(|d| d.is_muted(guest_id)));
    // The invitation is still open: the invitee can take it.
    let mut third = server.api();
    third.sign_in("third_one", "password-3").await.unwrap();
    third
        .command(&space, serde_json::json!({"cmd": "accept_invite"}))
        .await
        .unwrap();
    let view = host.space(&space).await.unwrap();
    assert!(
        view["stage"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m[0] == third_id),
        "{view}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_ends_the_removed_persons_ogg_stream_and_refuses_their_next_ticket() {
    let server = TestServer::start("moderation-remove").await;
    let (host, space) = common::live_space(&server, "host_r", "Removals").await;
    let mut heckler = server.api();
    let heckler_id = heckler.sign_up("heckler", "password-2").await.unwrap();
    let ticket = heckler.ticket(&space).await.unwrap().ticket;
    let mut ogg = reqwest::get(format!(
        "{}/spaces/{space}/live.opus?ticket={ticket}",
        server.base
    ))
    .await
    .unwrap();
    assert_eq!(ogg.status(), 200);
    assert!(ogg.chunk().await.unwrap().is_some());
    host.command(
        &space,
        serde_json::json!({"cmd": "remove", "user": heckler_id}),
    )
    .await
    .unwrap();
    // The stream ends (what was on its way drains first).
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = ogg.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the removed listener's Ogg stream goes on");
    // Neither the old ticket nor a new one lets them back in.
    let again = reqwest::get(format!(
        "{}/spaces/{space}/live.opus?ticket={ticket}",
        server.base
    ))
    .await
    .unwrap();
    assert_eq!(again.status(), 403);
    assert!(heckler.ticket(&space).await.is_err());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_cannot_be_stored_fails_the_command_with_a_problem() {
    let server = TestServer::start("moderation-store").await;
    let (host, _guest, space, guest_id) = live_space_with_two_speakers(&server).await;
    // The host is signed in (their session was read before); now the database goes away.
    let live = server.state.spaces.get(&space).await.unwrap();
    server.state.store.close().await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/spaces/{space}/commands", server.base))
        .bearer_auth(host.token().unwrap())
        .json(&serde_json::json!({"cmd": "mute", "user": guest_id}))
        .send()
        .await
        .unwrap();
    // The session itself cannot be read either: the answer is a problem, never a 204.
    assert!(response.status().is_server_error(), "{}", response.status());
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    // Through the command path itself (as the stage sends it), the storage error is the
    // outcome, not a silent success.
    let outcome = live
        .run_command(
            live.with_domain(|d| d.host()),
            stentor_space::Command::MoveToListener { user: guest_id },
        )
        .await;
    assert!(
        matches!(
            outcome,
            Err(stentor_server::origin::live::CommandError::Store(_))
        ),
        "{outcome:?}"
    );
    drop(live);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_revokes_the_tickets_handed_out_before() {
    let server = TestServer::start("moderation-signout").await;
    let (host, space) = common::live_space(&server, "host_so", "Sign out").await;
    let ticket = host.ticket(&space).await.unwrap().ticket;
    // Sign-out happens a second or more after the ticket was issued.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let response = reqwest::Client::new()
        .delete(format!("{}/api/v1/sessions", server.base))
        .bearer_auth(host.token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let err = server.api().connect(&space, &ticket).await.unwrap_err();
    assert!(format!("{err:#}").contains("401"), "{err:#}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_ticket_serves_one_connection_at_a_time_and_the_newest_wins() {
    let server = TestServer::start("moderation-claims").await;
    let (host, space) = common::live_space(&server, "host_cl", "Claims").await;
    let ticket = host.ticket(&space).await.unwrap().ticket;
    let (mut first, _) = host.connect(&space, &ticket).await.unwrap();
    let (mut second, hello) = host.connect(&space, &ticket).await.unwrap();
    assert_eq!(hello["role"], "host");
    let (code, reason) = common::close_of(&mut first).await;
    assert_eq!(code, 4004, "{reason}");
    // The newest goes on: it is still the host's connection.
    host.command(&space, serde_json::json!({"cmd": "mute_self"}))
        .await
        .unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        use futures_util::StreamExt;
        let msg = tokio::time::timeout_at(until, second.next()).await.unwrap();
        if let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) = msg
            && t.contains("mute_changed")
        {
            break;
        }
    }
    server.stop().await;
}
