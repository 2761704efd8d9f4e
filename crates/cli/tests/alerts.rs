//! Live alerts and reminders: a Space going live alerts its host's followers through the
//! durable queue at the pace its waiting room admits, those who listened to the host lately
//! first, each once; the host chooses who may have them; reminders go out at the start.

mod common;

use common::{TestServer, signed_up};
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use stentor_store::Store;

/// `n` accounts made straight in the store (no password hashing), with their ids.
async fn accounts(store: &Store, prefix: &str, n: usize) -> Vec<u64> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let user = store
            .create_user(&format!("{prefix}{i}"), "-", 1)
            .await
            .unwrap();
        ids.push(user.id);
    }
    ids
}

/// When `user` was told `space` is live (Unix ms), and how many such entries it has.
async fn live_alert(store: &Store, user: u64, space: &str) -> (Option<i64>, usize) {
    let inbox = store.notifications(user, None, 50).await.unwrap();
    let live: Vec<_> = inbox
        .iter()
        .filter(|n| n.kind == "live" && n.space_id.as_deref() == Some(space))
        .collect();
    (live.first().map(|n| n.at_ms), live.len())
}

#[tokio::test]
async fn live_alerts_go_out_at_the_waiting_rooms_pace_likeliest_first_once_each() {
    // The waiting room admits 100 a second: alerts may go no faster, whatever their own cap.
    let server = TestServer::start_with("alerts-pace", |c| {
        c.admission.lobby_joins_per_sec = Some(100);
        c.social.alerts_per_sec = Some(10_000);
    })
    .await;
    let store = server.state.store.clone();
    let host = signed_up(&server, "host").await;
    let host_id = store.user_with_hash("host").await.unwrap().unwrap().0.id;
    let followers = accounts(&store, "f", 400).await;
    let follows: Vec<(u64, u64)> = followers.iter().map(|f| (*f, host_id)).collect();
    store.apply_follows(&follows, 1, 10_000).await.unwrap();
    // Twenty of them listened to the host before; one turned its alerts off.
    let listeners: Vec<(u64, u64)> = followers[300..320].iter().map(|f| (*f, host_id)).collect();
    store.record_listens(&listeners, 5).await.unwrap();
    store
        .set_follow_alerts(followers[0], host_id, false)
        .await
        .unwrap();

    let space = host.create_space("Big one").await.unwrap();
    host.command(&space, json!({"cmd": "start"})).await.unwrap();
    let sent = server.state.social.alerts_sent.clone();
    let started = Instant::now();
    let mut first = None;
    while sent.load(Ordering::Relaxed) < 399 {
        if first.is_none() && sent.load(Ordering::Relaxed) > 0 {
            first = Some(Instant::now());
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "alerts stalled at {}",
            sent.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = first.unwrap().elapsed();
    // 399 at 100 a second: about 4 s from the first to the last, never much faster.
    assert!(
        took >= Duration::from_millis(3_300),
        "399 alerts in {took:?}"
    );
    assert!(took <= Duration::from_secs(8), "399 alerts in {took:?}");

    // Each follower once; the one who turned alerts off not at all; listeners first.
    let mut listener_latest = 0;
    let mut others_earliest = i64::MAX;
    for (i, f) in followers.iter().enumerate() {
        let (at, n) = live_alert(&store, *f, &space).await;
        if i == 0 {
            assert_eq!(n, 0, "alerts off");
            continue;
        }
        assert_eq!(n, 1, "follower {i}");
        assert_eq!(store.alerts_sent_to(&space, *f).await.unwrap(), 1);
        let at = at.unwrap();
        if (300..320).contains(&i) {
            listener_latest = listener_latest.max(at);
        } else {
            others_earliest = others_earliest.min(at);
        }
    }
    assert!(listener_latest <= others_earliest, "recent listeners first");
    assert_eq!(sent.load(Ordering::Relaxed), 399, "nothing sent twice");
    server.assert_metric("stentor_alerts_sent 399").await;
    server.stop().await;
}

#[tokio::test]
async fn the_host_chooses_who_gets_its_live_alerts_and_reminders_fire_at_the_start() {
    let server = TestServer::start("alerts-choice").await;
    let store = server.state.store.clone();
    let host = signed_up(&server, "choosy").await;
    let fan = signed_up(&server, "fan").await;
    let friend = signed_up(&server, "friend").await;
    for api in [&fan, &friend] {
        api.call(Method::POST, "/users/choosy/follow", None)
            .await
            .unwrap();
    }
    host.call(Method::POST, "/users/friend/follow", None)
        .await
        .unwrap();
    host.call(
        Method::PATCH,
        "/me/profile",
        Some(json!({"alerts_from": "mutuals"})),
    )
    .await
    .unwrap();
    let space = host.create_space("Mutuals only").await.unwrap();
    host.command(&space, json!({"cmd": "start"})).await.unwrap();
    let friend_id = store.user_with_hash("friend").await.unwrap().unwrap().0.id;
    let fan_id = store.user_with_hash("fan").await.unwrap().unwrap().0.id;
    let until = Instant::now() + Duration::from_secs(10);
    while live_alert(&store, friend_id, &space).await.1 == 0 {
        assert!(Instant::now() < until, "the mutual was never alerted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        live_alert(&store, fan_id, &space).await.1,
        0,
        "not a mutual"
    );
    let inbox = friend
        .call(Method::GET, "/notifications", None)
        .await
        .unwrap();
    let item = &inbox["items"][0];
    assert_eq!(
        (item["kind"].as_str(), item["space_id"].as_str()),
        (Some("live"), Some(space.as_str()))
    );
    assert_eq!(item["actor"]["handle"], "choosy");

    // "Remind me" on a Space starting in 3 s: a reminder at the start, to those who asked.
    let starts_at = stentor_server::clock::unix_now() as i64 + 3;
    let created = host
        .call(
            Method::POST,
            "/spaces",
            Some(json!({"title": "Later", "starts_at": starts_at})),
        )
        .await
        .unwrap();
    let later = created["id"].as_str().unwrap().to_owned();
    fan.call(
        Method::PUT,
        &format!("/spaces/{later}/reminder"),
        Some(json!({"on": true})),
    )
    .await
    .unwrap();
    let on = fan
        .call(Method::GET, &format!("/spaces/{later}/reminder"), None)
        .await
        .unwrap();
    assert_eq!(on["on"], true);
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let inbox = fan.call(Method::GET, "/notifications", None).await.unwrap();
        let reminder = inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "reminder" && i["space_id"].as_str() == Some(later.as_str()));
        if reminder {
            assert!(
                stentor_server::clock::unix_now() as i64 >= starts_at,
                "not before the start"
            );
            break;
        }
        assert!(Instant::now() < until, "no reminder");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let inbox = friend
        .call(Method::GET, "/notifications", None)
        .await
        .unwrap();
    assert!(
        !inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "reminder"),
        "only those who asked are reminded"
    );
    server.stop().await;
}
