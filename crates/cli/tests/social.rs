//! The social layer over HTTP: profiles, follows, posts, replies, reposts, likes (exact under
//! concurrent retries), blocks, live-alert choices, the home timeline with its live bar and
//! stable pages, the inbox, and live counts streamed to a post's viewers.

mod common;

use common::{TestServer, live_space, signed_up};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use stentor::client::Api;

async fn call(api: &Api, method: Method, path: &str, body: Option<Value>) -> Value {
    api.call(method, path, body)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e:#}"))
}

/// The status an API call was refused with.
async fn refused(api: &Api, method: Method, path: &str, body: Option<Value>) -> String {
    match api.call(method, path, body).await {
        Ok(v) => panic!("{path} answered {v}"),
        Err(e) => e.to_string(),
    }
}

/// The `post_counts` events about `post` a Space's listener receives until one carries
/// `likes` (or `within` passes): each as [likes, replies, reposts].
async fn announcement_counts(
    ws: &mut stentor::client::SpaceSocket,
    post: u64,
    likes: u64,
    within: Duration,
) -> Vec<[u64; 3]> {
    let until = tokio::time::Instant::now() + within;
    let mut heard = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, ws.next()).await {
        let tokio_tungstenite::tungstenite::Message::Text(text) = msg else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        if event["event"] == "post_counts" && event["post_id"] == post {
            let n = |k: &str| event[k].as_u64().unwrap();
            heard.push([n("like_count"), n("reply_count"), n("repost_count")]);
            if n("like_count") == likes {
                break;
            }
        }
    }
    heard
}

async fn post(api: &Api, text: &str) -> u64 {
    let v = call(api, Method::POST, "/posts", Some(json!({ "text": text }))).await;
    v["id"].as_u64().unwrap()
}

/// The home timeline of `api` once the fan-out jobs have run: waits until it holds `n` posts.
async fn timeline_with(api: &Api, n: usize) -> Value {
    for _ in 0..60 {
        let v = call(api, Method::GET, "/timeline?limit=100", None).await;
        if v["items"].as_array().unwrap().len() >= n {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the timeline never held {n} posts");
}

#[tokio::test]
async fn the_social_layer_over_http() {
    let server = TestServer::start("social").await;
    let alice = signed_up(&server, "alice").await;
    let bob = signed_up(&server, "bob").await;
    let carol = signed_up(&server, "carol").await;

    // Profiles.
    let me = call(
        &alice,
        Method::PATCH,
        "/me/profile",
        Some(json!({"display_name": "Alice A.", "bio": "hosts\nthings"})),
    )
    .await;
    assert_eq!(me["display_name"], "Alice A.");
    let long = "x".repeat(51);
    let e = refused(
        &alice,
        Method::PATCH,
        "/me/profile",
        Some(json!({"display_name": long})),
    )
    .await;
    assert!(e.contains("400"), "{e}");

    // An avatar: any PNG, JPEG or WebP becomes a 256 px square PNG, served immutable.
    let mut png = Vec::new();
    image::RgbImage::from_pixel(640, 480, image::Rgb([200, 40, 90]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let http = reqwest::Client::new();
    let token = alice.token().unwrap().to_owned();
    let put = http
        .put(format!("{}/api/v1/me/avatar", server.base))
        .bearer_auth(&token)
        .body(png)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let url = put.json::<Value>().await.unwrap()["avatar_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = http
        .get(format!("{}{url}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert!(
        got.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let stored = image::load_from_memory(&got.bytes().await.unwrap()).unwrap();
    assert_eq!((stored.width(), stored.height()), (256, 256));
    let bad = http
        .put(format!("{}/api/v1/me/avatar", server.base))
        .bearer_auth(&token)
        .body("not an image")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let p = call(&bob, Method::GET, "/users/alice", None).await;
    assert_eq!(p["avatar_url"].as_str(), Some(url.as_str()));

    // Follows: idempotent, counted once, never of oneself.
    let f = call(&bob, Method::POST, "/users/alice/follow", None).await;
    assert_eq!(
        (f["following"].as_bool(), f["changed"].as_bool()),
        (Some(true), Some(true))
    );
    let f = call(&bob, Method::POST, "/users/alice/follow", None).await;
    assert_eq!(
        (f["changed"].as_bool(), f["followers_count"].as_u64()),
        (Some(false), Some(1))
    );
    call(&carol, Method::POST, "/users/alice/follow", None).await;
    assert!(
        refused(&alice, Method::POST, "/users/alice/follow", None)
            .await
            .contains("400")
    );
    assert!(
        refused(&alice, Method::POST, "/users/nobody/follow", None)
            .await
            .contains("404")
    );
    let p = call(&bob, Method::GET, "/users/alice", None).await;
    assert_eq!(
        (p["followers_count"].as_u64(), p["following_count"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(p["relation"]["following"], true);
    assert_eq!(p["live_space"], Value::Null);
    let list = call(&alice, Method::GET, "/users/alice/followers", None).await;
    let handles: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["handle"].as_str().unwrap())
        .collect();
    assert_eq!(handles, ["carol", "bob"]);

    // Posts: the length limit counts characters; the followers' timelines get them.
    assert!(
        refused(
            &alice,
            Method::POST,
            "/posts",
            Some(json!({"text": "é".repeat(281)}))
        )
        .await
        .contains("400")
    );
    let hello = post(&alice, &"é".repeat(280)).await;
    let t = timeline_with(&bob, 1).await;
    assert_eq!(t["items"][0]["id"].as_u64(), Some(hello));
    assert_eq!(t["items"][0]["author"]["display_name"], "Alice A.");

    // Likes: 3 accounts, each retrying 10 times at once: 3 likes.
    let dave = signed_up(&server, "dave").await;
    let mut tries = Vec::new();
    for api in [&bob, &carol, &dave] {
        for _ in 0..10 {
            let api = api.clone();
            tries.push(tokio::spawn(async move {
                api.call(Method::POST, &format!("/posts/{hello}/like"), None)
                    .await
                    .unwrap()
            }));
        }
    }
    let mut changed = 0;
    for t in tries {
        changed += usize::from(t.await.unwrap()["changed"] == true);
    }
    assert_eq!(changed, 3, "one like per account changed anything");
    let p = call(&bob, Method::GET, &format!("/posts/{hello}"), None).await;
    assert_eq!(
        (p["like_count"].as_u64(), p["liked"].as_bool()),
        (Some(3), Some(true))
    );
    let u = call(&dave, Method::DELETE, &format!("/posts/{hello}/like"), None).await;
    assert_eq!(
        (u["changed"].as_bool(), u["like_count"].as_u64()),
        (Some(true), Some(2))
    );
    let u = call(&dave, Method::DELETE, &format!("/posts/{hello}/like"), None).await;
    assert_eq!(
        (u["changed"].as_bool(), u["like_count"].as_u64()),
        (Some(false), Some(2))
    );
    assert!(
        refused(&dave, Method::POST, "/posts/999999/like", None)
            .await
            .contains("404")
    );

    // Replies and reposts.
    let reply = call(
        &carol,
        Method::POST,
        "/posts",
        Some(json!({"text": "welcome", "reply_to": hello})),
    )
    .await;
    assert_eq!(reply["reply_to"].as_u64(), Some(hello));
    let r = call(&bob, Method::POST, &format!("/posts/{hello}/repost"), None).await;
    assert_eq!(
        (r["changed"].as_bool(), r["repost_count"].as_u64()),
        (Some(true), Some(1))
    );
    let r = call(&bob, Method::POST, &format!("/posts/{hello}/repost"), None).await;
    assert_eq!(
        (r["changed"].as_bool(), r["repost_count"].as_u64()),
        (Some(false), Some(1))
    );
    let p = call(&alice, Method::GET, &format!("/posts/{hello}"), None).await;
    assert_eq!(
        (p["reply_count"].as_u64(), p["repost_count"].as_u64()),
        (Some(1), Some(1))
    );
    let replies = call(
        &alice,
        Method::GET,
        &format!("/posts/{hello}/replies"),
        None,
    )
    .await;
    assert_eq!(replies["items"][0]["text"], "welcome");

    // The inbox: grouped, latest first, unread until marked.
    let inbox = call(&alice, Method::GET, "/notifications", None).await;
    let kinds: Vec<&str> = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["repost", "reply", "like", "follow"]);
    let like = &inbox["items"][2];
    assert_eq!(
        (like["count"].as_u64(), like["others"].as_u64()),
        (Some(3), Some(2))
    );
    assert!(like["actor"]["handle"].as_str().is_some());
    assert_eq!(inbox["unread"].as_u64(), Some(4));
    let read = call(&alice, Method::POST, "/notifications/read", Some(json!({}))).await;
    assert_eq!(read["unread"].as_u64(), Some(0));

    // Blocks: no follow, reply or like across one; the follows end.
    call(&alice, Method::POST, "/users/carol/block", None).await;
    for (method, path, body) in [
        (Method::POST, "/users/alice/follow".to_string(), None),
        (Method::POST, format!("/posts/{hello}/like"), None),
        (
            Method::POST,
            "/posts".to_string(),
            Some(json!({"text": "hey", "reply_to": hello})),
        ),
    ] {
        let e = refused(&carol, method, &path, body).await;
        assert!(e.contains("403"), "{path}: {e}");
    }
    let p = call(&alice, Method::GET, "/users/alice", None).await;
    assert_eq!(
        p["followers_count"].as_u64(),
        Some(1),
        "carol's follow ended"
    );

    // Live alerts: as the account chooses.
    call(
        &alice,
        Method::PATCH,
        "/me/profile",
        Some(json!({"alerts_from": "mutuals"})),
    )
    .await;
    let e = refused(
        &bob,
        Method::PUT,
        "/users/alice/alerts",
        Some(json!({"on": true})),
    )
    .await;
    assert!(e.contains("403") && e.contains("follows back"), "{e}");
    call(&alice, Method::POST, "/users/bob/follow", None).await;
    call(
        &bob,
        Method::PUT,
        "/users/alice/alerts",
        Some(json!({"on": true})),
    )
    .await;
    call(
        &alice,
        Method::PATCH,
        "/me/profile",
        Some(json!({"alerts_from": "nobody"})),
    )
    .await;
    let e = refused(
        &bob,
        Method::PUT,
        "/users/alice/alerts",
        Some(json!({"on": true})),
    )
    .await;
    assert!(e.contains("403"), "{e}");
    assert!(
        refused(
            &dave,
            Method::PUT,
            "/users/alice/alerts",
            Some(json!({"on": true}))
        )
        .await
        .contains("409")
    );

    // Pages of the timeline: each post once, in order, while new ones arrive on top.
    let mut written = vec![hello];
    for i in 0..7 {
        written.push(post(&alice, &format!("post {i}")).await);
    }
    timeline_with(&bob, 9).await; // 8 of alice's and bob's repost
    let mut seen = Vec::new();
    let mut path = "/timeline?limit=3".to_string();
    loop {
        let page = call(&bob, Method::GET, &path, None).await;
        for item in page["items"].as_array().unwrap() {
            if item["repost_of"].is_null() {
                seen.push(item["id"].as_u64().unwrap());
            }
        }
        post(&alice, "arrives meanwhile").await;
        match page["next"].as_str() {
            Some(next) => path = format!("/timeline?limit=3&before={next}"),
            None => break,
        }
    }
    written.reverse();
    assert_eq!(seen, written);

    // A live Space: on the profile, in the followers' live bar, as a card on a post.
    let (host, space) = live_space(&server, "erin", "Town hall").await;
    call(&bob, Method::POST, "/users/erin/follow", None).await;
    let p = call(&bob, Method::GET, "/users/erin", None).await;
    assert_eq!(p["live_space"].as_str(), Some(space.as_str()));
    let t = call(&bob, Method::GET, "/timeline", None).await;
    assert_eq!(t["live"][0]["id"].as_str(), Some(space.as_str()));
    assert_eq!(t["live"][0]["host_handle"], "erin");
    let text = format!("join us {}/s/{space}", server.base);
    let card = call(&host, Method::POST, "/posts", Some(json!({"text": text}))).await;
    assert_eq!(card["space"]["title"], "Town hall");
    assert_eq!(card["space"]["state"], "live");

    // Live counts: a viewer's stream tells of a like within the window.
    let id = card["id"].as_u64().unwrap();
    // And the Space's listeners hear of the announcement's counts over the Space's events.
    let ticket = carol.ticket(&space).await.unwrap();
    let (mut listener, _) = carol.connect(&space, &ticket.ticket).await.unwrap();
    let resp = reqwest::get(format!("{}/api/v1/posts/live?ids={id}", server.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    call(&bob, Method::POST, &format!("/posts/{id}/like"), None).await;
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("\"like_count\":1") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "stream: {text}");
    assert!(text.contains("event: counts"), "{text}");
    let heard = announcement_counts(&mut listener, id, 1, Duration::from_secs(5)).await;
    assert_eq!(heard.last().map(|c| c[0]), Some(1), "{heard:?}");
    // A burst of likes and a reply: one event per window, however many, the last exact.
    let started = tokio::time::Instant::now();
    for api in [&alice, &carol] {
        call(api, Method::POST, &format!("/posts/{id}/like"), None).await;
    }
    call(
        &bob,
        Method::POST,
        "/posts",
        Some(json!({"text": "coming", "reply_to": id})),
    )
    .await;
    let heard = announcement_counts(&mut listener, id, 3, Duration::from_secs(5)).await;
    let windows = started.elapsed().as_secs_f64().ceil() as usize + 1;
    assert_eq!(heard.last(), Some(&[3, 1, 0]), "{heard:?}");
    assert!(
        heard.len() <= windows,
        "{} events in {windows} windows",
        heard.len()
    );
    assert!(
        refused(&bob, Method::GET, "/posts/live?ids=", None)
            .await
            .contains("400")
    );
    server.stop().await;
}
