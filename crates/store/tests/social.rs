//! The social layer's rules as the store keeps them, on each backend (SQLite always;
//! PostgreSQL when `STENTOR_TEST_DATABASE_URL` names a server): follows and blocks, exact
//! counts under concurrent and repeated likes, timelines fanned out and merged, notifications
//! grouped, jobs leased once.

#[allow(dead_code)]
mod backends;

use stentor_store::{NewPost, PostFilter, Store, StoreError};

/// Runs `check` on a fresh store of every backend.
macro_rules! on_every_backend {
    ($name:literal, $check:ident) => {
        for fresh in backends::fresh($name).await {
            let store = Store::open(&fresh.url()).await.unwrap();
            $check(&store).await;
            store.close().await;
            fresh.remove().await;
        }
    };
}

async fn users(store: &Store, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            store
                .create_user(&format!("u{i}"), "h", 1)
                .await
                .unwrap()
                .id,
        );
    }
    ids
}

async fn post(store: &Store, author: u64, text: &str) -> u64 {
    let new = NewPost {
        text,
        ..NewPost::default()
    };
    store
        .create_post(author, new, 10, true)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn follows_count_once_and_blocks_stand_between() {
    on_every_backend!(
        "social_follows",
        follows_count_once_and_blocks_stand_between_on
    );
}

async fn follows_count_once_and_blocks_stand_between_on(store: &Store) {
    let u = users(store, 4).await;
    let (a, b, c, d) = (u[0], u[1], u[2], u[3]);
    // Repeated within a batch and across batches: one follow.
    let made = store
        .apply_follows(&[(b, a), (c, a), (b, a), (a, a)], 5, 100)
        .await
        .unwrap();
    assert_eq!(
        made,
        [true, true, false, false],
        "a repeat and a self-follow change nothing"
    );
    assert_eq!(
        store.apply_follows(&[(b, a)], 6, 100).await.unwrap(),
        [false]
    );
    assert_eq!(
        store.apply_follows(&[(b, 999_999)], 6, 100).await.unwrap(),
        [false]
    );
    let pa = store.profile("u0").await.unwrap().unwrap();
    assert_eq!((pa.followers, pa.following), (2, 0));
    assert_eq!(store.profile("u1").await.unwrap().unwrap().following, 1);
    // One notification for both follows, latest follower named.
    let inbox = store.notifications(a, None, 10).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!((inbox[0].kind.as_str(), inbox[0].count), ("follow", 2));
    assert_eq!(inbox[0].actor_id, Some(c));
    // A block ends the follows either way and refuses new ones.
    store.apply_follows(&[(a, d)], 7, 100).await.unwrap();
    store.block(d, a, 8).await.unwrap();
    assert!(store.blocked_between(a, d).await.unwrap());
    assert_eq!(
        store.apply_follows(&[(a, d)], 9, 100).await.unwrap(),
        [false]
    );
    assert_eq!(store.profile("u3").await.unwrap().unwrap().followers, 0);
    assert_eq!(store.profile("u0").await.unwrap().unwrap().following, 0);
    let rel = store.relation(a, d).await.unwrap();
    assert!(rel.blocked_by && !rel.blocking && !rel.following);
    store.unblock(d, a).await.unwrap();
    assert_eq!(
        store.apply_follows(&[(a, d)], 9, 100).await.unwrap(),
        [true]
    );
    // Unfollow, twice: once.
    assert_eq!(
        store.apply_unfollows(&[(b, a), (b, a)]).await.unwrap(),
        [true, false]
    );
    assert_eq!(store.profile("u0").await.unwrap().unwrap().followers, 1);
    // Lists, newest first, paged.
    let followers = store.follow_list(a, true, None, 10).await.unwrap();
    assert_eq!(followers.iter().map(|f| f.1).collect::<Vec<_>>(), [c]);
    let following = store.follow_list(a, false, None, 10).await.unwrap();
    assert_eq!(following.iter().map(|f| f.1).collect::<Vec<_>>(), [d]);
}

#[tokio::test]
async fn likes_are_exact_under_concurrent_retries() {
    on_every_backend!("social_likes", likes_are_exact_under_concurrent_retries_on);
}

async fn likes_are_exact_under_concurrent_retries_on(store: &Store) {
    let u = users(store, 41).await;
    let author = u[0];
    let p = post(store, author, "hello").await;
    // Eight writers, each sending every like of its share twice over, in batches that
    // overlap the other writers' shares: each of the 40 likers counts once.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        let likers: Vec<u64> = u[1..].to_vec();
        tasks.push(tokio::spawn(async move {
            for chunk in likers.chunks(7).skip(w % 3) {
                let batch: Vec<(u64, u64)> = chunk.iter().chain(chunk).map(|l| (p, *l)).collect();
                store.apply_likes(&batch, 20).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Every liker at least once, whatever the skips.
    let all: Vec<(u64, u64)> = u[1..].iter().map(|l| (p, *l)).collect();
    let again = store.apply_likes(&all, 21).await.unwrap();
    assert!(
        again.iter().all(|(made, _)| !made),
        "all were liked already"
    );
    assert_eq!(again[0].1, Some(40));
    assert_eq!(store.recount_likes(p).await.unwrap(), 40);
    assert_eq!(store.post(p, 0).await.unwrap().unwrap().likes, 40);
    // The author's own like counts but is not news to the author.
    store.apply_likes(&[(p, author)], 22).await.unwrap();
    let inbox = store.notifications(author, None, 10).await.unwrap();
    assert_eq!((inbox[0].kind.as_str(), inbox[0].count), ("like", 40));
    // Unlikes: each once.
    let gone = store
        .apply_unlikes(&[(p, u[1]), (p, u[1]), (p, author)], 23)
        .await
        .unwrap();
    assert_eq!(
        gone.iter().map(|g| g.0).collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(gone[0].1, Some(39));
    assert_eq!(store.recount_likes(p).await.unwrap(), 39);
    // A like of a post that does not exist changes nothing.
    assert_eq!(
        store.apply_likes(&[(999_999, u[1])], 24).await.unwrap(),
        [(false, None)]
    );
    // The viewer sees its own like.
    assert!(store.post(p, u[2]).await.unwrap().unwrap().liked);
    assert!(!store.post(p, u[1]).await.unwrap().unwrap().liked);
}

#[tokio::test]
async fn notifications_group_while_unread_and_start_again_once_read() {
    on_every_backend!("social_inbox", notifications_group_on);
}

async fn notifications_group_on(store: &Store) {
    let u = users(store, 5).await;
    let p = post(store, u[0], "x").await;
    store
        .apply_likes(&[(p, u[1]), (p, u[2])], 30)
        .await
        .unwrap();
    store.apply_likes(&[(p, u[3])], 31).await.unwrap();
    assert_eq!(store.unread(u[0]).await.unwrap(), 1);
    let n = &store.notifications(u[0], None, 10).await.unwrap()[0];
    assert_eq!(
        (n.count, n.actor_handle.as_deref(), n.read),
        (3, Some("u3"), false)
    );
    assert_eq!(store.mark_read(u[0], None).await.unwrap(), 1);
    assert_eq!(store.unread(u[0]).await.unwrap(), 0);
    store.apply_likes(&[(p, u[4])], 32).await.unwrap();
    let n = &store.notifications(u[0], None, 10).await.unwrap()[0];
    assert_eq!((n.count, n.read), (1, false), "a read group starts again");
    // Replies and reposts are entries of their own; the parent's counts move.
    let reply = NewPost {
        text: "re",
        reply_to: Some(p),
        ..NewPost::default()
    };
    let r = store
        .create_post(u[1], reply, 40, true)
        .await
        .unwrap()
        .unwrap();
    let repost = NewPost {
        repost_of: Some(p),
        ..NewPost::default()
    };
    store
        .create_post(u[2], repost, 41, true)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store.create_post(u[2], repost, 42, true).await,
        Err(StoreError::Conflict("repost"))
    ));
    let missing = NewPost {
        text: "re",
        reply_to: Some(999_999),
        ..NewPost::default()
    };
    assert_eq!(
        store.create_post(u[1], missing, 43, true).await.unwrap(),
        None
    );
    let row = store.post(p, u[2]).await.unwrap().unwrap();
    assert_eq!((row.replies, row.reposts, row.reposted), (1, 1, true));
    let kinds: Vec<String> = store
        .notifications(u[0], None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.kind)
        .collect();
    assert_eq!(kinds, ["repost", "reply", "like"]);
    let replies = store
        .post_page(PostFilter::Replies(p), 0, None, 10)
        .await
        .unwrap();
    assert_eq!(replies.iter().map(|r| r.id).collect::<Vec<_>>(), [r]);
    assert!(store.delete_repost(u[2], p).await.unwrap());
    assert!(!store.delete_repost(u[2], p).await.unwrap());
    assert_eq!(store.post(p, 0).await.unwrap().unwrap().reposts, 0);
}

/// The home timeline as the server puts it together, one page.
async fn page(store: &Store, user: u64, before: Option<u64>, threshold: u64) -> Vec<u64> {
    let lists = store
        .timeline_ids(user, before, 3, threshold)
        .await
        .unwrap();
    let ids = stentor_social::timeline::merge(&lists, 3);
    store.timeline_visible(user, &ids).await.unwrap()
}

#[tokio::test]
async fn timelines_fan_out_small_accounts_and_merge_large_ones() {
    on_every_backend!("social_timeline", timelines_on);
}

async fn timelines_on(store: &Store) {
    let u = users(store, 4).await;
    let (reader, small, large, other) = (u[0], u[1], u[2], u[3]);
    // `large` has 2 followers: with a threshold of 2 it is merged at read time.
    store
        .apply_follows(&[(reader, small), (reader, large), (other, large)], 1, 2)
        .await
        .unwrap();
    let mut expected = Vec::new();
    for i in 0..4 {
        expected.push(post(store, small, &format!("s{i}")).await);
        let new = NewPost {
            text: "L",
            ..NewPost::default()
        };
        expected.push(
            store
                .create_post(large, new, 10, false)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    post(store, other, "not followed").await;
    // The fan-out jobs: leased once, carried out, gone.
    let jobs = store.claim_jobs(100, 160, 100).await.unwrap();
    assert_eq!(jobs.len(), 5, "one per fanned-out post");
    assert!(
        store.claim_jobs(100, 160, 100).await.unwrap().is_empty(),
        "leased"
    );
    for job in &jobs[..4] {
        assert_eq!(
            store.run_fanout(job).await.unwrap(),
            1,
            "into the reader's timeline"
        );
    }
    // A job whose lease ran out is taken again.
    let again = store.claim_jobs(161, 220, 100).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    store.run_fanout(&again[0]).await.unwrap();
    assert_eq!(store.jobs_waiting().await.unwrap(), 0);
    // Pages of 3, newest first, each post once, while new posts arrive at the top.
    expected.reverse();
    let mut seen: Vec<u64> = Vec::new();
    let mut before = None;
    loop {
        let p = page(store, reader, before, 2).await;
        seen.extend(&p);
        if p.len() < 3 {
            break;
        }
        before = p.last().copied();
        post(store, small, "later").await;
    }
    assert_eq!(seen, expected);
    // Muted: gone from the timeline; unfollowed: gone too.
    store.set_mute(reader, large, true, 50).await.unwrap();
    let top = page(store, reader, Some(expected[0] + 1), 2).await;
    assert!(
        top.iter()
            .all(|id| expected.iter().position(|e| e == id).unwrap() % 2 == 1)
    );
    store.set_mute(reader, large, false, 51).await.unwrap();
    store.apply_unfollows(&[(reader, small)]).await.unwrap();
    let top = page(store, reader, Some(expected[0] + 1), 2).await;
    assert!(
        top.iter()
            .all(|id| expected.iter().position(|e| e == id).unwrap() % 2 == 0)
    );
    // A new follower of a small account gets its latest posts at once.
    store.apply_follows(&[(other, small)], 60, 2).await.unwrap();
    assert!(!page(store, other, None, 2).await.is_empty());
}

#[tokio::test]
async fn alert_campaigns_send_each_alert_once_across_workers() {
    on_every_backend!("social_alerts", alerts_on);
}

async fn alerts_on(store: &Store) {
    let u = users(store, 61).await;
    let host = u[0];
    let follows: Vec<(u64, u64)> = u[1..].iter().map(|f| (*f, host)).collect();
    store.apply_follows(&follows, 1, 100).await.unwrap();
    store.record_listens(&[(u[60], host)], 9).await.unwrap();
    let space = stentor_store::SpaceRecord {
        id: "sp".into(),
        host_id: host,
        title: "t".into(),
        state: "scheduled".into(),
        starts_at: None,
        created_at: 1,
    };
    store.create_space(&space).await.unwrap();
    store.set_space_state("sp", "live", 2).await.unwrap();
    let jobs = store.claim_jobs(3, 60, 10).await.unwrap();
    assert_eq!(
        (jobs.len(), jobs[0].kind.as_str(), jobs[0].subject.as_str()),
        (1, "alert", "sp:live")
    );
    let campaign = store.list_campaign("sp", "live", 3).await.unwrap().unwrap();
    assert_eq!(campaign.total, 60);
    // Listed once: asking again lists nobody twice.
    assert_eq!(
        store
            .list_campaign("sp", "live", 4)
            .await
            .unwrap()
            .unwrap()
            .total,
        60
    );
    // The likeliest first.
    assert_eq!(store.send_alerts(&campaign, 1, 10).await.unwrap(), [u[60]]);
    // Three workers at once, seven at a time: each of the rest once.
    let mut workers = Vec::new();
    for _ in 0..3 {
        let (store, campaign) = (store.clone(), campaign.clone());
        workers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let sent = store.send_alerts(&campaign, 7, 11).await.unwrap();
                if sent.is_empty() {
                    return got;
                }
                got.extend(sent);
            }
        }));
    }
    let mut all = vec![u[60]];
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all.sort_unstable();
    let mut expected = u[1..].to_vec();
    expected.sort_unstable();
    assert_eq!(all, expected, "every follower once");
    assert_eq!(store.alerts_left(&campaign).await.unwrap(), 0);
    let inbox = store.notifications(u[5], None, 10).await.unwrap();
    assert_eq!(
        (inbox[0].kind.as_str(), inbox[0].space_id.as_deref()),
        ("live", Some("sp"))
    );
    // An ended Space lists no new campaign.
    store.set_space_state("sp", "ended", 20).await.unwrap();
    assert!(
        store
            .list_campaign("sp", "start", 21)
            .await
            .unwrap()
            .is_none()
    );
}
