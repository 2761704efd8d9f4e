//! Trust and safety over HTTP: a notice acknowledged, a moderator's decision with its
//! statement of reasons delivered to the affected account and the outcome to the notifier, an
//! appeal decided by another moderator that reverses the decision at once, a suspension, a
//! label, restricted interaction; the Transparency Database payloads valid and without personal data, the report equal
//! to what the log holds, the log's chain unbroken.

mod common;

use common::{TestServer, signed_up};
use reqwest::Method;
use serde_json::{Value, json};
use stentor::client::Api;
use stentor_moderation::log::{Event, verify};

async fn call(api: &Api, method: Method, path: &str, body: Option<Value>) -> Value {
    api.call(method, path, body)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e:#}"))
}

async fn refused(api: &Api, method: Method, path: &str, body: Option<Value>) -> String {
    match api.call(method, path, body).await {
        Ok(v) => panic!("{path} answered {v}"),
        Err(e) => e.to_string(),
    }
}

fn kinds(inbox: &Value) -> Vec<(String, Option<u64>)> {
    inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let id = i["statement_id"].as_u64().or(i["report_id"].as_u64());
            (i["kind"].as_str().unwrap().to_owned(), id)
        })
        .collect()
}

fn decision(subject: Value, action: &str, report: Option<u64>) -> Value {
    json!({
        "subject": subject, "action": action, "category": "scams_and_fraud",
        "ground": "incompatible", "contractual_ground": "Terms §4.2: no scams",
        "explanation": "The post promises money back for a payment to a stranger.",
        "facts": "Reported by a listener; the link leads to a payment page.",
        "territorial_scope": ["DE", "FR"], "report": report,
    })
}

#[tokio::test]
async fn notices_decisions_statements_appeals_and_transparency() {
    let server = TestServer::start_with("trust-safety", |c| {
        c.moderation.admin = Some("root".into());
    })
    .await;
    let root = signed_up(&server, "root").await;
    let mod_a = signed_up(&server, "mod_a").await;
    let mod_b = signed_up(&server, "mod_b").await;
    let author = signed_up(&server, "author").await;
    let reporter = signed_up(&server, "reporter").await;
    for m in ["mod_a", "mod_b"] {
        call(
            &root,
            Method::POST,
            "/moderators",
            Some(json!({"handle": m})),
        )
        .await;
    }
    let e = refused(
        &author,
        Method::POST,
        "/moderators",
        Some(json!({"handle": "author"})),
    )
    .await;
    assert!(e.contains("403"), "{e}");

    // A notice: acknowledged; refused without good faith, or anonymous without contact.
    let post = call(
        &author,
        Method::POST,
        "/posts",
        Some(json!({"text": "Send 100, get 1000 back!"})),
    )
    .await;
    let post_id = post["id"].as_u64().unwrap().to_string();
    let subject = json!({"kind": "post", "id": post_id});
    let report = |good_faith: bool| {
        json!({"subject": subject, "category": "scams_and_fraud",
               "explanation": "A classic advance-fee scam.", "good_faith": good_faith})
    };
    let e = refused(&reporter, Method::POST, "/reports", Some(report(false))).await;
    assert!(e.contains("400") && e.contains("good faith"), "{e}");
    let e = refused(&server.api(), Method::POST, "/reports", Some(report(true))).await;
    assert!(e.contains("400") && e.contains("contact"), "{e}");
    let ack = call(&reporter, Method::POST, "/reports", Some(report(true))).await;
    assert_eq!(ack["status"], "received");
    let report_id = ack["id"].as_u64().unwrap();
    let e = refused(&author, Method::GET, "/moderation/queue", None).await;
    assert!(e.contains("403"), "{e}");
    let queue = call(&mod_a, Method::GET, "/moderation/queue", None).await;
    assert_eq!(queue[0]["id"].as_u64(), Some(report_id));

    // A removal: the statement carries every Art. 17(3) item and reaches the author; the
    // reporter hears of the outcome; the post is gone for everyone but its author.
    let decided = call(
        &mod_a,
        Method::POST,
        "/moderation/decisions",
        Some(decision(subject.clone(), "remove", Some(report_id))),
    )
    .await;
    let statement_id = decided["id"].as_u64().unwrap();
    let s = &decided["statement"];
    assert_eq!(s["restriction"]["action"], "remove");
    assert_eq!(s["restriction"]["territorial_scope"], json!(["DE", "FR"]));
    assert_eq!(s["facts"]["source"], "notice");
    assert_eq!(s["automation"]["decision"], "not_automated");
    assert_eq!(s["ground"]["kind"], "incompatible");
    assert_eq!(s["ground"]["contractual_ground"], "Terms §4.2: no scams");
    assert_eq!(s["redress"]["appeal_open"], true);
    assert!(
        s["redress"]["out_of_court"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert!(
        kinds(&call(&author, Method::GET, "/notifications", None).await)
            .contains(&("statement".into(), Some(statement_id)))
    );
    assert!(
        kinds(&call(&reporter, Method::GET, "/notifications", None).await)
            .contains(&("report_outcome".into(), Some(report_id)))
    );
    let path = format!("/posts/{post_id}");
    assert!(
        refused(&reporter, Method::GET, &path, None)
            .await
            .contains("404")
    );
    assert_eq!(
        call(&author, Method::GET, &path, None).await["removed"],
        true
    );
    let e = refused(
        &mod_a,
        Method::POST,
        "/moderation/decisions",
        Some(decision(subject.clone(), "remove", Some(report_id))),
    )
    .await;
    assert!(e.contains("409"), "a report is answered once: {e}");

    // The appeal: from the statement's page, decided by another moderator; a reversal
    // restores the post at once.
    let page = format!("/statements/{statement_id}");
    assert!(
        refused(&reporter, Method::GET, &page, None)
            .await
            .contains("404")
    );
    assert_eq!(
        call(&author, Method::GET, &page, None).await["can_appeal"],
        true
    );
    let appeal = call(
        &author,
        Method::POST,
        &format!("{page}/appeal"),
        Some(json!({"text": "It was a joke among friends."})),
    )
    .await;
    let appeal_id = appeal["id"].as_u64().unwrap();
    let e = refused(
        &author,
        Method::POST,
        &format!("{page}/appeal"),
        Some(json!({"text": "again"})),
    )
    .await;
    assert!(e.contains("409"), "{e}");
    let answer = json!({"outcome": "reversed", "explanation": "Read in context, it is a joke."});
    let e = refused(
        &mod_a,
        Method::POST,
        &format!("/appeals/{appeal_id}/decision"),
        Some(answer.clone()),
    )
    .await;
    assert!(e.contains("403") && e.contains("another moderator"), "{e}");
    call(
        &mod_b,
        Method::POST,
        &format!("/appeals/{appeal_id}/decision"),
        Some(answer),
    )
    .await;
    assert!(call(&reporter, Method::GET, &path, None).await["removed"].is_null());
    let shown = call(&author, Method::GET, &page, None).await;
    assert_eq!(shown["standing"], "reversed");
    assert_eq!(shown["appeals"][0]["outcome"], "reversed");
    assert_eq!(shown["can_appeal"], false);
    assert!(
        kinds(&call(&author, Method::GET, "/notifications", None).await)
            .contains(&("appeal_answer".into(), Some(statement_id)))
    );

    // A label, shown on the post with its reason; a suspension that stops posting but not
    // reading one's statement.
    call(
        &mod_b,
        Method::POST,
        "/moderation/decisions",
        Some(decision(subject.clone(), "label", None)),
    )
    .await;
    let labelled = call(&reporter, Method::GET, &path, None).await;
    assert!(
        labelled["label"]
            .as_str()
            .unwrap()
            .contains("promises money"),
        "{labelled}"
    );
    // Interaction restricted: no like, reply or repost; the post stays readable.
    call(
        &mod_b,
        Method::POST,
        "/moderation/decisions",
        Some(decision(subject.clone(), "restrict_interaction", None)),
    )
    .await;
    let e = refused(&reporter, Method::POST, &format!("{path}/like"), None).await;
    assert!(e.contains("403"), "{e}");
    let e = refused(
        &reporter,
        Method::POST,
        "/posts",
        Some(json!({"text": "re", "reply_to": post["id"]})),
    )
    .await;
    assert!(e.contains("403") && e.contains("restricted"), "{e}");
    let e = refused(&reporter, Method::POST, &format!("{path}/repost"), None).await;
    assert!(e.contains("403"), "{e}");
    assert_eq!(
        call(&reporter, Method::GET, &path, None).await["like_count"],
        0
    );
    let e = refused(
        &mod_b,
        Method::POST,
        "/moderation/decisions",
        Some(decision(subject.clone(), "demote", None)),
    )
    .await;
    assert!(e.contains("400"), "{e}");
    let suspended = call(
        &mod_b,
        Method::POST,
        "/moderation/decisions",
        Some(decision(
            json!({"kind": "account", "id": "author"}),
            "suspend_account",
            None,
        )),
    )
    .await;
    let e = refused(
        &author,
        Method::POST,
        "/posts",
        Some(json!({"text": "hello"})),
    )
    .await;
    assert!(e.contains("403") && e.contains("suspended"), "{e}");
    let page = format!("/statements/{}", suspended["id"]);
    assert_eq!(
        call(&author, Method::GET, &page, None).await["restriction"]["action"],
        "suspend_account"
    );
    let e = refused(
        &mod_a,
        Method::POST,
        "/moderation/decisions",
        Some(decision(
            json!({"kind": "post", "id": post_id}),
            "suspend_account",
            None,
        )),
    )
    .await;
    assert!(e.contains("400"), "{e}");

    // The Transparency Database payloads: one per decision, valid, no personal data.
    let all = call(&server.api(), Method::GET, "/transparency/statements", None).await;
    let statements = all["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 4);
    for s in statements {
        assert_eq!(stentor_moderation::tdb::validate(s), vec![], "{s}");
        let text = s.to_string();
        for private in [
            "author",
            "reporter",
            "mod_a",
            "mod_b",
            "moderator",
            "affected",
        ] {
            assert!(!text.contains(private), "{private} in {text}");
        }
    }
    assert_eq!(
        statements[0]["puid"],
        format!("stentor-decision-{statement_id}")
    );

    // The report equals what the log holds, counted here directly.
    let entries = server
        .state
        .store
        .moderation_entries(0, 1000)
        .await
        .unwrap();
    assert_eq!(verify(None, &entries), Ok(()));
    let (mut notices, mut decisions, mut appeals, mut reversals) = (0, 0, 0, 0);
    for e in &entries {
        match e.event().unwrap() {
            Event::Notice(_) => notices += 1,
            Event::Decision(_) => decisions += 1,
            Event::Appeal(_) => appeals += 1,
            Event::Reversal { .. } => reversals += 1,
            _ => {}
        }
    }
    let report = call(&server.api(), Method::GET, "/transparency/report", None).await;
    let rows = report["rows"].as_array().unwrap();
    let sum = |k: &str| rows.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        (
            sum("notices"),
            sum("decisions"),
            sum("appeals"),
            sum("reversals")
        ),
        (notices, decisions, appeals, reversals)
    );
    assert_eq!((notices, decisions, appeals, reversals), (1, 4, 1, 1));
    let row = rows
        .iter()
        .find(|r| r["category"] == "scams_and_fraud" && r["ground"] == "incompatible")
        .unwrap();
    assert_eq!(row["by_action"]["remove"], 1);
    assert_eq!(row["by_action"]["label"], 1);
    assert_eq!(row["by_action"]["suspend_account"], 1);
    assert_eq!(row["by_action"]["restrict_interaction"], 1);
    let csv = reqwest::get(format!(
        "{}/api/v1/transparency/report?format=csv",
        server.base
    ))
    .await
    .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    assert!(csv.lines().count() >= 2, "{csv}");
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .contains(",scams_and_fraud,incompatible,1,4,"),
        "{csv}"
    );
    server.stop().await;
}
