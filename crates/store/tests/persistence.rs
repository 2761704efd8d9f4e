//! The store keeps accounts, Spaces, roles and removals across a reopen, on each backend
//! (SQLite always; PostgreSQL when `STENTOR_TEST_DATABASE_URL` names a server).

mod backends;

use stentor_store::{SpaceRecord, Store, StoreError};

#[tokio::test]
async fn accounts_and_spaces_survive_a_reopen() {
    for fresh in backends::fresh("reopen").await {
        accounts_and_spaces_survive_a_reopen_on(&fresh.url()).await;
        fresh.remove().await;
    }
}

async fn accounts_and_spaces_survive_a_reopen_on(url: &str) {
    {
        let store = Store::open(url).await.unwrap();
        let alice = store.create_user("alice", "hash", 1).await.unwrap();
        assert!(matches!(
            store.create_user("alice", "x", 2).await,
            Err(StoreError::Conflict("handle"))
        ));
        store
            .create_session("tokhash", alice.id, 100)
            .await
            .unwrap();
        let space = SpaceRecord {
            id: "s1".into(),
            host_id: alice.id,
            title: "Morning".into(),
            state: "scheduled".into(),
            starts_at: Some(50),
            created_at: 1,
        };
        store.create_space(&space).await.unwrap();
        assert_eq!(store.count_hosted(alice.id, "scheduled").await.unwrap(), 1);
        store.set_space_state("s1", "live", 10).await.unwrap();
        assert_eq!(store.count_hosted(alice.id, "scheduled").await.unwrap(), 0);
        assert_eq!(store.count_hosted(alice.id, "live").await.unwrap(), 1);
        store.set_role("s1", 7, Some("speaker")).await.unwrap();
        store.set_role("s1", 8, Some("speaker")).await.unwrap();
        store.set_role("s1", 8, None).await.unwrap();
        store.set_muted("s1", 7, true).await.unwrap();
        store.set_invited("s1", 10, true).await.unwrap();
        // A removal takes the role, the mute and the invitation with it, in one go.
        store.set_role("s1", 9, Some("speaker")).await.unwrap();
        store.set_muted("s1", 9, true).await.unwrap();
        store.set_invited("s1", 9, true).await.unwrap();
        store.remove_participant("s1", 9).await.unwrap();
        assert!(store.recording("s1").await.unwrap(), "recorded by default");
        store.set_recording("s1", false).await.unwrap();
        store.close().await;
    }
    let store = Store::open(url).await.unwrap();
    let (alice, hash) = store.user_with_hash("alice").await.unwrap().unwrap();
    assert_eq!(hash, "hash");
    assert_eq!(
        store.session_user("tokhash", 50).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.session_user("tokhash", 100).await.unwrap(), None);
    // Read in a batch: the known unexpired ones, each with its hash; unknown ones left out.
    let bob = store.create_user("bob", "h", 3).await.unwrap();
    store.create_session("bobhash", bob.id, 200).await.unwrap();
    let ask = ["tokhash", "bobhash", "nobody", "bobhash"].map(String::from);
    let mut found = store.session_users(&ask, 50).await.unwrap();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![
            ("bobhash".to_string(), bob.clone()),
            ("tokhash".to_string(), alice.clone())
        ]
    );
    assert_eq!(
        store.session_users(&ask, 150).await.unwrap(),
        vec![("bobhash".to_string(), bob)]
    );
    assert!(store.session_users(&[], 50).await.unwrap().is_empty());
    let space = store.space("s1").await.unwrap().unwrap();
    assert_eq!(space.state, "live");
    assert_eq!(space.host_id, alice.id);
    assert!(!store.recording("s1").await.unwrap());
    assert_eq!(
        store.roles("s1").await.unwrap(),
        vec![(7, "speaker".to_string())]
    );
    assert_eq!(store.removed("s1").await.unwrap(), vec![9]);
    assert_eq!(store.muted("s1").await.unwrap(), vec![7]);
    assert_eq!(store.invited("s1").await.unwrap(), vec![10]);
    // Back in the audience, a mute goes with the role; on stage, the invitation is spent.
    store.set_role("s1", 7, None).await.unwrap();
    assert!(store.muted("s1").await.unwrap().is_empty());
    store.set_role("s1", 10, Some("speaker")).await.unwrap();
    assert!(store.invited("s1").await.unwrap().is_empty());
    let open = store.open_spaces(10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].1, "alice");
    assert_eq!(store.hosted_spaces(alice.id, 10).await.unwrap().len(), 1);
    assert!(
        store
            .hosted_spaces(alice.id + 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}

#[tokio::test]
async fn each_backend_is_the_one_its_url_names_and_migrating_twice_changes_nothing() {
    for fresh in backends::fresh("backend").await {
        let first = Store::open(&fresh.url()).await.unwrap();
        assert_eq!(first.backend(), fresh.backend());
        first.create_user("bob", "hash", 1).await.unwrap();
        // A second node (or a restart) opening the same database finds it migrated.
        let second = Store::connect(&fresh.url(), Some(2)).await.unwrap();
        assert_eq!(
            second.user_with_hash("bob").await.unwrap().unwrap().1,
            "hash"
        );
        first.close().await;
        second.close().await;
        fresh.remove().await;
    }
}

#[tokio::test]
async fn an_unsupported_database_url_is_a_clear_error() {
    let err = Store::open("mysql://localhost/test").await.unwrap_err();
    assert!(matches!(err, StoreError::Unsupported(_)));
    assert!(err.to_string().contains("sqlite://"), "{err}");
    assert!(err.to_string().contains("postgres://"), "{err}");
}

#[tokio::test]
async fn a_postgres_server_that_cannot_be_reached_is_named_without_its_password() {
    let err = Store::open("postgres://someone:secret@127.0.0.1:1/stentor")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{text}");
    assert!(text.contains("127.0.0.1:1/stentor"), "{text}");
    assert!(!text.contains("secret"), "{text}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_and_its_journal_are_private_to_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("stentor-store-mode-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .map(|m| m.permissions().mode() & 0o777)
            .ok()
    };
    {
        let store = Store::open_dir(&dir).await.unwrap();
        store.create_user("alice", "hash", 1).await.unwrap();
        assert_eq!(mode("stentor.db"), Some(0o600));
        assert_eq!(
            mode("stentor.db-wal"),
            Some(0o600),
            "the journal holds the same data"
        );
        store.close().await;
    }
    // A database made loose by hand is tightened when it is opened again.
    std::fs::set_permissions(
        dir.join("stentor.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let _store = Store::open_dir(&dir).await.unwrap();
    assert_eq!(mode("stentor.db"), Some(0o600));
}
