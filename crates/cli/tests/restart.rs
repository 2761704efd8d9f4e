//! A restart keeps accounts, Spaces, roles and removals, in the embedded SQLite file and in
//! PostgreSQL (when `STENTOR_TEST_DATABASE_URL` names a server: `.ci/run` sets it).

mod common;

use common::{TestServer, live_space_with_two_speakers};
use stentor_server::Config;
use stentor_store::testing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_spaces_and_roles_survive_a_restart() {
    survive_a_restart("restart", "sqlite", |_| {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_accounts_spaces_and_roles_survive_a_restart() {
    let Ok(admin) = std::env::var(testing::DATABASE_URL_VAR) else {
        // Not named: this machine has no PostgreSQL to test against (the store's own suite
        // says the same); CI names one, and there a server it cannot use fails the test.
        eprintln!(
            "{} is not set: the PostgreSQL run is left out",
            testing::DATABASE_URL_VAR
        );
        return;
    };
    let tag = format!("restart_{}", std::process::id());
    let url = testing::fresh_postgres(&admin, &tag)
        .await
        .expect("the PostgreSQL server named for tests can be used");
    survive_a_restart("restart-pg", "postgres", |c| {
        c.store.database_url = Some(url.clone());
        c.store.database_pool = Some(3);
    })
    .await;
    testing::drop_postgres(&admin, &tag).await.unwrap();
}

/// Accounts, a live Space with two on stage and a removal, then a restart of the server on
/// the same store (set by `store`, of `backend`).
async fn survive_a_restart(name: &str, backend: &str, store: impl Fn(&mut Config)) {
    let server = TestServer::start_with(name, &store).await;
    assert_eq!(server.state.store.backend(), backend);
    let (host, _guest, space, guest_id) = live_space_with_two_speakers(&server).await;
    host.command(&space, serde_json::json!({"cmd": "remove", "user": 999}))
        .await
        .unwrap();
    let data_dir = server.stop().await;

    let server = TestServer::start_in_with(data_dir, &store).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_tells_connected_listeners_and_does_not_wait_for_them() {
    let server = TestServer::start("shutdown").await;
    let (host, _guest, space, _) = live_space_with_two_speakers(&server).await;
    let (mut speaker, _) = host
        .connect(&space, &host.ticket(&space).await.unwrap().ticket)
        .await
        .unwrap();
    let ogg = reqwest::get(format!("{}/spaces/{space}/live.opus", server.base))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(
        started.elapsed().as_secs_f64() < 2.0,
        "stop took {:?}",
        started.elapsed()
    );
    assert_eq!(common::close_of(&mut speaker).await.0, 1001);
    assert!(ogg.bytes().await.is_ok(), "the ogg stream ends cleanly");
}
