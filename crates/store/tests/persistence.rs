//! The store keeps accounts, Spaces, roles and removals across a reopen of the same file.

use stentor_store::{SpaceRecord, Store, StoreError};

#[tokio::test]
async fn accounts_and_spaces_survive_a_reopen() {
    let dir = std::env::temp_dir().join(format!("stentor-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let store = Store::open_dir(&dir).await.unwrap();
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
        store.close().await;
    }
    let store = Store::open_dir(&dir).await.unwrap();
    let (alice, hash) = store.user_with_hash("alice").await.unwrap().unwrap();
    assert_eq!(hash, "hash");
    assert_eq!(
        store.session_user("tokhash", 50).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.session_user("tokhash", 100).await.unwrap(), None);
    let space = store.space("s1").await.unwrap().unwrap();
    assert_eq!(space.state, "live");
    assert_eq!(space.host_id, alice.id);
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
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unsupported_database_url_is_a_clear_error() {
    let err = Store::open("postgres://localhost/test").await.unwrap_err();
    assert!(matches!(err, StoreError::Unsupported(_)));
    assert!(err.to_string().contains("sqlite://"), "{err}");
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
