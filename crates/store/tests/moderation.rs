//! The moderation log as the store keeps it, on each backend (SQLite always; PostgreSQL when
//! `STENTOR_TEST_DATABASE_URL` names a server): appended in one unbroken chain by writers at
//! once, an edit made behind the store's back found, and the state derived from it (the
//! restrictions in force, the notices waiting) moving with each entry.

#[allow(dead_code)]
mod backends;

use stentor_moderation::log::{Broken, Event, verify};
use stentor_moderation::model::{
    Action, Automation, Category, Decision, Ground, Notice, Subject, SubjectKind,
};
use stentor_store::Store;

fn subject(kind: SubjectKind, id: &str) -> Subject {
    Subject {
        kind,
        id: id.into(),
        at_ms: None,
    }
}

fn notice(id: &str, trusted: bool) -> Event {
    Event::Notice(Notice {
        subject: subject(SubjectKind::Post, id),
        category: Category::ScamsAndFraud,
        explanation: "a fake giveaway".into(),
        notifier: Some(1),
        contact: None,
        trusted,
    })
}

fn decision(id: &str, action: Action, notice: Option<u64>, ends_at_ms: Option<i64>) -> Event {
    Event::Decision(Decision {
        subject: subject(SubjectKind::Post, id),
        affected: 2,
        action,
        category: Category::ScamsAndFraud,
        ground: Ground::Incompatible,
        ground_reference: "Terms §4".into(),
        explanation: "asks for money".into(),
        facts: "reported".into(),
        territorial_scope: vec![],
        ends_at_ms,
        notice,
        trusted_notice: false,
        automated_detection: false,
        automated_decision: Automation::NotAutomated,
        content_at_ms: 0,
        moderator: 9,
    })
}

#[tokio::test]
async fn the_log_is_one_chain_and_the_state_follows_it() {
    for fresh in backends::fresh("modlog").await {
        let url = fresh.url();
        let store = Store::open(&url).await.unwrap();
        let n1 = store
            .moderation_append(10, &notice("1", false))
            .await
            .unwrap();
        let n2 = store
            .moderation_append(20, &notice("2", true))
            .await
            .unwrap();
        let n3 = store
            .moderation_append(30, &notice("3", false))
            .await
            .unwrap();
        assert_eq!((n1.seq, n2.seq, n3.seq), (1, 2, 3));
        // The trusted flagger's notice first, then the oldest.
        assert_eq!(store.open_notices(10).await.unwrap(), vec![2, 1, 3]);

        let d = store
            .moderation_append(40, &decision("2", Action::Remove, Some(2), None))
            .await
            .unwrap();
        let timed = store
            .moderation_append(50, &decision("3", Action::Label, None, Some(1_000)))
            .await
            .unwrap();
        assert_eq!(store.open_notices(10).await.unwrap(), vec![1, 3]);
        // Delivered with the decision: the statement to the affected account, the outcome to
        // the notifier.
        let told = |n: Vec<stentor_store::Notification>| {
            n.into_iter()
                .map(|n| (n.kind, n.log_seq))
                .collect::<Vec<_>>()
        };
        assert!(
            told(store.notifications(2, None, 10).await.unwrap())
                .contains(&("statement".into(), Some(d.seq)))
        );
        assert_eq!(
            told(store.notifications(1, None, 10).await.unwrap()),
            vec![("report_outcome".into(), Some(2))]
        );
        // A notice left without action leaves the queue, and its notifier is told too.
        store
            .moderation_append(
                55,
                &Event::Dismissal {
                    notice: n1.seq,
                    explanation: "no breach".into(),
                    moderator: 9,
                },
            )
            .await
            .unwrap();
        assert_eq!(store.open_notices(10).await.unwrap(), vec![3]);
        let mut told_1 = told(store.notifications(1, None, 10).await.unwrap());
        told_1.sort();
        assert_eq!(
            told_1,
            vec![
                ("report_outcome".into(), Some(1)),
                ("report_outcome".into(), Some(2))
            ]
        );
        let on = store
            .restrictions_on(SubjectKind::Post, "2", 60)
            .await
            .unwrap();
        assert_eq!(on.len(), 1);
        assert_eq!((on[0].decision, on[0].action.as_str()), (d.seq, "remove"));
        assert_eq!(
            store
                .restrictions_on(SubjectKind::Post, "3", 999)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .restrictions_on(SubjectKind::Post, "3", 1_000)
                .await
                .unwrap()
                .is_empty(),
            "ended"
        );
        store
            .moderation_append(
                70,
                &Event::Reversal {
                    decision: d.seq,
                    appeal: None,
                    moderator: 8,
                },
            )
            .await
            .unwrap();
        assert!(
            store
                .restrictions_on(SubjectKind::Post, "2", 80)
                .await
                .unwrap()
                .is_empty(),
            "reversed"
        );
        let history = store
            .moderation_history(SubjectKind::Post, "2")
            .await
            .unwrap();
        assert_eq!(
            history.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![n2.seq, d.seq]
        );
        assert_eq!(timed.seq, 5);

        // Eight writers at once: one chain, no gaps, nothing lost.
        let mut writers = Vec::new();
        for w in 0..8 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..10 {
                    store
                        .moderation_append(100 + i, &notice(&format!("w{w}-{i}"), false))
                        .await
                        .unwrap();
                }
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        let all = store.moderation_entries(0, 1000).await.unwrap();
        assert_eq!(all.len(), 7 + 80, "{}", fresh.backend());
        assert_eq!(verify(None, &all), Ok(()));
        assert_eq!(
            verify(
                Some(&all[9]),
                &store.moderation_entries(10, 1000).await.unwrap()
            ),
            Ok(())
        );

        // An entry edited in the database, behind the store's back, is found.
        let tampered = all[3].event.replace("remove", "label");
        assert_ne!(tampered, all[3].event);
        raw_update(&fresh.url(), all[3].seq, &tampered).await;
        let all = store.moderation_entries(0, 1000).await.unwrap();
        assert_eq!(
            verify(None, &all),
            Err(Broken::Edited(4)),
            "{}",
            fresh.backend()
        );
        store.close().await;
        fresh.remove().await;
    }
}

/// Rewrites an entry's event directly in the database.
async fn raw_update(url: &str, seq: u64, event: &str) {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("UPDATE moderation_log SET event = $1 WHERE seq = $2")
            .bind(event)
            .bind(seq as i64)
            .execute(&mut c)
            .await
            .unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("UPDATE moderation_log SET event = $1 WHERE seq = $2")
            .bind(event)
            .bind(seq as i64)
            .execute(&mut c)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn decisions_reach_the_post_and_the_account_and_reversals_and_ends_lift_them() {
    for fresh in backends::fresh("modstate").await {
        let store = Store::open(&fresh.url()).await.unwrap();
        let author = store.create_user("author", "h", 1).await.unwrap().id;
        let new = stentor_store::NewPost {
            text: "free money",
            ..stentor_store::NewPost::default()
        };
        let post = store
            .create_post(author, new, 1, false)
            .await
            .unwrap()
            .unwrap();
        let id = post.to_string();
        let shown = |row: Option<stentor_store::PostRow>| {
            let row = row.unwrap();
            (row.removed, row.label)
        };
        let label = store
            .moderation_append(10, &decision(&id, Action::Label, None, Some(500)))
            .await
            .unwrap();
        assert_eq!(
            shown(store.post(post, 0).await.unwrap()),
            (false, Some("asks for money".into()))
        );
        let removal = store
            .moderation_append(20, &decision(&id, Action::Remove, None, None))
            .await
            .unwrap();
        assert!(shown(store.post(post, 0).await.unwrap()).0, "removed");
        let page = store
            .post_page(stentor_store::PostFilter::Author(author), 0, None, 10)
            .await
            .unwrap();
        assert!(page.is_empty(), "a removed post is in no list");
        store
            .moderation_append(
                30,
                &Event::Reversal {
                    decision: removal.seq,
                    appeal: None,
                    moderator: 8,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            shown(store.post(post, 0).await.unwrap()),
            (false, Some("asks for money".into()))
        );
        // The label's end: lifted by the sweep, once.
        assert_eq!(store.moderation_lapse(499).await.unwrap(), 0);
        assert_eq!(store.moderation_lapse(500).await.unwrap(), 1);
        assert_eq!(store.moderation_lapse(600).await.unwrap(), 0);
        assert_eq!(shown(store.post(post, 0).await.unwrap()), (false, None));
        assert_eq!(label.seq, 1);

        // An account suspended, then reversed.
        let mut suspend = match decision("x", Action::SuspendAccount, None, None) {
            Event::Decision(d) => d,
            _ => unreachable!(),
        };
        suspend.subject = subject(SubjectKind::Account, &author.to_string());
        let s = store
            .moderation_append(40, &Event::Decision(suspend))
            .await
            .unwrap();
        assert_eq!(
            store.account_standing(author).await.unwrap(),
            Some((None, Some(i64::MAX)))
        );
        store
            .moderation_append(
                50,
                &Event::Reversal {
                    decision: s.seq,
                    appeal: None,
                    moderator: 8,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store.account_standing(author).await.unwrap(),
            Some((None, None))
        );
        assert!(store.set_role_of(author, Some("moderator")).await.unwrap());
        assert_eq!(
            store.account_standing(author).await.unwrap(),
            Some((Some("moderator".into()), None))
        );
        store.close().await;
        fresh.remove().await;
    }
}
