//! A restart keeps accounts, Spaces, roles and removals.

mod common;

use common::{TestServer, live_space_with_two_speakers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_spaces_and_roles_survive_a_restart() {
    let server = TestServer::start("restart").await;
    let (host, _guest, space, guest_id) = live_space_with_two_speakers(&server).await;
    host.command(&space, serde_json::json!({"cmd": "remove", "user": 999}))
        .await
        .unwrap();
    let data_dir = server.stop().await;

    let server = TestServer::start_in(data_dir).await;
    let mut host = server.api();
    host.sign_in("host_one", "password-1").await.unwrap();
    assert!(
        server
            .api()
            .sign_in("host_one", "wrong-password")
            .await
            .is_err()
    );
    let view = host.space(&space).await.unwrap();
    assert_eq!(view["state"], "live");
    let stage = view["stage"].as_array().unwrap();
    assert!(
        stage.iter().any(|m| m[0] == guest_id && m[1] == "speaker"),
        "{view}"
    );
    let live = server.state.spaces.get(&space).await.unwrap();
    assert!(live.with_domain(|d| d.is_removed(999)));
    server.stop().await;
}
