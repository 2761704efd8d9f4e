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
        "report": report,
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
    let e = refused(&reporter, Method::POST, "/reports", Some(report(true))).await;
    assert!(e.contains("409") && e.contains("already"), "{e}");
    let mut scoped = decision(subject.clone(), "remove", Some(report_id));
    scoped["territorial_scope"] = json!(["DE", "FR"]);
    let e = refused(&mod_a, Method::POST, "/moderation/decisions", Some(scoped)).await;
    assert!(e.contains("400") && e.contains("everywhere"), "{e}");
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
    assert_eq!(s["restriction"]["territorial_scope"], json!([]));
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
        Some(decision(subject.clone(), "mute_speaker", None)),
    )
    .await;
    assert!(e.contains("400") && e.contains("does not apply"), "{e}");
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
    assert_eq!(all["next"], Value::Null);
    // A page at a time: the same statements, in the same order.
    let first = call(
        &server.api(),
        Method::GET,
        "/transparency/statements?limit=3",
        None,
    )
    .await;
    let next = first["next"].as_u64().expect("a next page");
    let rest = call(
        &server.api(),
        Method::GET,
        &format!("/transparency/statements?after={next}&limit=3"),
        None,
    )
    .await;
    let paged: Vec<&Value> = first["statements"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["statements"].as_array().unwrap())
        .collect();
    assert_eq!(paged, statements.iter().collect::<Vec<_>>());
    assert_eq!(rest["next"], Value::Null);

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

/// A decision about a live Space, on `speaker` when given.
fn live_decision(space: &str, action: &str, speaker: Option<&str>, report: Option<u64>) -> Value {
    json!({
        "subject": {"kind": "space", "id": space}, "action": action, "speaker": speaker,
        "category": "illegal_or_harmful_speech", "ground": "incompatible",
        "contractual_ground": "Terms §3.1: no harassment",
        "explanation": "The speaker insulted a listener by name, repeatedly.",
        "facts": "Reported live by a listener; heard by the moderator who joined.",
        "report": report,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_mute_remove_and_end_in_a_live_space_and_reversals_undo_it() {
    use common::{decode, live_space_with_two_speakers};
    use stentor_media::FRAME_SAMPLES;
    use stentor_media::signal::goertzel_power;
    use stentor_space::Lifecycle;

    let server = TestServer::start_with("trust-safety-live", |c| {
        c.moderation.admin = Some("root".into());
    })
    .await;
    let root = signed_up(&server, "root").await;
    let mod_a = signed_up(&server, "mod_a").await;
    let mod_b = signed_up(&server, "mod_b").await;
    for m in ["mod_a", "mod_b"] {
        call(
            &root,
            Method::POST,
            "/moderators",
            Some(json!({"handle": m})),
        )
        .await;
    }
    let (host, guest, space, guest_id) = live_space_with_two_speakers(&server).await;
    let live = server.state.spaces.get(&space).await.unwrap();
    let listener = signed_up(&server, "listener").await;

    // A moderator listens unseen: connected, not counted; nobody else may ask for that.
    let unseen_path = format!("/spaces/{space}/tickets?unseen=true");
    let e = refused(&listener, Method::POST, &unseen_path, None).await;
    assert!(e.contains("403"), "{e}");
    let t = call(&mod_a, Method::POST, &unseen_path, None).await;
    let (mod_ws, hello) = mod_a
        .connect(&space, t["ticket"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(hello["role"], "listener");
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while live.hub.listeners() == 0 {
        assert!(
            tokio::time::Instant::now() < until,
            "the moderator's socket was taken in"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(live.listeners(), 0, "an unseen moderator is not counted");
    let seen = call(
        &listener,
        Method::POST,
        &format!("/spaces/{space}/tickets"),
        None,
    )
    .await;
    let (listener_ws, _) = listener
        .connect(&space, seen["ticket"].as_str().unwrap())
        .await
        .unwrap();
    while live.hub.listeners() < 2 {
        assert!(
            tokio::time::Instant::now() < until,
            "the listener's socket was taken in"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(live.listeners(), 1, "a listener is");
    drop((mod_ws, listener_ws));
    while live.hub.listeners() > 0 {
        assert!(
            tokio::time::Instant::now() < until + std::time::Duration::from_secs(5),
            "both left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(live.listeners(), 0);

    // The host at 440 Hz, the guest at 1000 Hz; a listener records the mix.
    let host_speaker = common::speak_tone(&host, &space, 440.0, 6.0);
    let guest_speaker = {
        let (guest, space) = (guest.clone(), space.clone());
        tokio::spawn(async move {
            let ticket = guest.ticket(&space).await.unwrap();
            let (mut ws, _) = guest.connect(&space, &ticket.ticket).await.unwrap();
            // Ends when the guest is removed (the server closes the socket).
            let _ =
                stentor::speak::publish(&mut ws, &stentor::speak::Source::Tone(1000.0), Some(6.0))
                    .await;
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let recording = {
        let (api, space) = (server.api(), space.clone());
        tokio::spawn(async move { stentor::listen::record(&api, &space, 200).await.unwrap() })
    };
    let ack = call(
        &listener,
        Method::POST,
        "/reports",
        Some(json!({"subject": {"kind": "space", "id": space},
                    "category": "illegal_or_harmful_speech",
                    "explanation": "guest_two is insulting me by name.", "good_faith": true})),
    )
    .await;
    let report_id = ack["id"].as_u64().unwrap();
    // Reported live without a moment: the server notes how far into the Space it was.
    let queue = call(&mod_a, Method::GET, "/moderation/queue", None).await;
    let at = queue[0]["event"]["subject"]["at_ms"]
        .as_u64()
        .expect("the moment");
    assert!(at < 60_000, "{at} ms into the Space");
    // A note for the other moderators: in the subject's history, in no export.
    call(
        &mod_b,
        Method::POST,
        "/moderation/notes",
        Some(
            json!({"subject": {"kind": "space", "id": space}, "text": "Heard it too; a pattern."}),
        ),
    )
    .await;
    let history = call(
        &mod_a,
        Method::GET,
        &format!("/moderation/subjects/space/{space}"),
        None,
    )
    .await;
    assert!(history.to_string().contains("Heard it too"), "{history}");
    let e = refused(
        &listener,
        Method::POST,
        "/moderation/notes",
        Some(json!({"subject": {"kind": "space", "id": space}, "text": "me too"})),
    )
    .await;
    assert!(e.contains("403"), "{e}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    // Mute: held, so the speaker cannot unmute; their tone leaves the mix, the host's stays.
    let e = refused(
        &mod_a,
        Method::POST,
        "/moderation/decisions",
        Some(live_decision(&space, "mute_speaker", None, None)),
    )
    .await;
    assert!(e.contains("400") && e.contains("speaker"), "{e}");
    let muted = call(
        &mod_a,
        Method::POST,
        "/moderation/decisions",
        Some(live_decision(
            &space,
            "mute_speaker",
            Some("guest_two"),
            Some(report_id),
        )),
    )
    .await;
    let muted_at = live.hub.ogg.head();
    assert!(live.with_domain(|d| d.is_held(guest_id) && d.is_muted(guest_id)));
    let mute_statement = muted["id"].as_u64().unwrap();
    assert_eq!(muted["statement"]["restriction"]["action"], "mute_speaker");
    assert_eq!(muted["statement"]["facts"]["source"], "notice");
    let e = refused(
        &guest,
        Method::POST,
        &format!("/spaces/{space}/commands"),
        Some(json!({"cmd": "unmute_self"})),
    )
    .await;
    assert!(e.contains("403") && e.contains("moderators"), "{e}");

    let rec = recording.await.unwrap();
    let audio = decode(rec.frames.iter().map(|(_, p)| p));
    let first = rec.frames[0].0;
    let last = first + rec.frames.len() as u64;
    let power = |seq: u64, hz: f32| {
        let i = (seq - first) as usize;
        goertzel_power(&audio[i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES], hz)
    };
    let mean = |from: u64, to: u64, hz: f32| {
        (from..to).map(|s| power(s, hz)).sum::<f32>() / (to - from) as f32
    };
    assert!(
        muted_at > first + 20 && muted_at + 30 < last,
        "{first} {muted_at} {last}"
    );
    let before = mean(muted_at - 20, muted_at, 1000.0);
    assert!(
        before > 0.01,
        "the guest's 1000 Hz before the mute: {before}"
    );
    let after = mean(muted_at + 10, last, 1000.0);
    assert!(
        after < before / 100.0,
        "1000 Hz after the mute: {after} against {before}"
    );
    let host_after = mean(muted_at + 10, last, 440.0);
    assert!(
        host_after > 0.01,
        "the host's 440 Hz after the mute: {host_after}"
    );
    let db = |p: f32| 10.0 * p.max(1e-12).log10();
    println!(
        "moderators' mute: the speaker's 1000 Hz {:.1} dB before, {:.1} dB from 200 ms after; \
         the host's 440 Hz {:.1} dB after",
        db(before),
        db(after),
        db(host_after)
    );

    // Remove: the guest is out and cannot come back; their statement is in their inbox.
    let removed = call(
        &mod_a,
        Method::POST,
        "/moderation/decisions",
        Some(live_decision(
            &space,
            "remove_speaker",
            Some("guest_two"),
            None,
        )),
    )
    .await;
    let remove_statement = removed["id"].as_u64().unwrap();
    assert!(live.with_domain(|d| d.is_removed(guest_id)));
    tokio::time::timeout(std::time::Duration::from_secs(5), guest_speaker)
        .await
        .expect("the removed speaker's socket is closed")
        .unwrap();
    let e = guest.ticket(&space).await.unwrap_err().to_string();
    assert!(e.contains("403") || e.contains("removed"), "{e}");
    let e = refused(
        &mod_a,
        Method::POST,
        "/moderation/decisions",
        Some(live_decision(
            &space,
            "remove_speaker",
            Some("host_one"),
            None,
        )),
    )
    .await;
    assert!(e.contains("host"), "{e}");
    let inbox = call(&guest, Method::GET, "/notifications", None).await;
    let statements: Vec<u64> = kinds(&inbox)
        .into_iter()
        .filter(|(k, _)| k == "statement")
        .filter_map(|(_, id)| id)
        .collect();
    assert!(statements.contains(&mute_statement) && statements.contains(&remove_statement));
    let page = call(
        &guest,
        Method::GET,
        &format!("/statements/{remove_statement}"),
        None,
    )
    .await;
    assert_eq!(page["restriction"]["action"], "remove_speaker");
    assert_eq!(page["can_appeal"], true);

    // The guest appeals both; the moderator who decided may not answer; another reverses.
    let mut appeals = Vec::new();
    for s in [mute_statement, remove_statement] {
        let a = call(
            &guest,
            Method::POST,
            &format!("/statements/{s}/appeal"),
            Some(json!({"text": "I quoted the listener; I did not insult anyone."})),
        )
        .await;
        appeals.push(a["id"].as_u64().unwrap());
    }
    let answer = json!({"outcome": "reversed", "explanation": "The recording shows a quotation."});
    let e = refused(
        &mod_a,
        Method::POST,
        &format!("/appeals/{}/decision", appeals[1]),
        Some(answer.clone()),
    )
    .await;
    assert!(e.contains("403"), "{e}");
    for a in &appeals {
        call(
            &mod_b,
            Method::POST,
            &format!("/appeals/{a}/decision"),
            Some(answer.clone()),
        )
        .await;
    }
    assert!(live.with_domain(|d| !d.is_removed(guest_id) && !d.is_held(guest_id)));
    guest
        .ticket(&space)
        .await
        .expect("readmitted after the reversal");

    // End: the Space is over and its recording withheld, until a reversal brings it back.
    let ended = call(
        &mod_a,
        Method::POST,
        "/moderation/decisions",
        Some(live_decision(&space, "end_space", None, None)),
    )
    .await;
    assert_eq!(live.with_domain(|d| d.lifecycle()), Lifecycle::Ended);
    host_speaker.abort();
    let recording_path = format!("/spaces/{space}/recording");
    let e = refused(&listener, Method::GET, &recording_path, None).await;
    assert!(e.contains("404") && e.contains("moderation"), "{e}");
    let a = call(
        &host,
        Method::POST,
        &format!("/statements/{}/appeal", ended["id"]),
        Some(json!({"text": "The Space broke no rule."})),
    )
    .await;
    call(
        &mod_b,
        Method::POST,
        &format!("/appeals/{}/decision", a["id"]),
        Some(answer),
    )
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match listener.call(Method::GET, &recording_path, None).await {
            Ok(r) => {
                assert!(r["duration_secs"].as_f64().unwrap() > 2.0, "{r}");
                break;
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert!(!e.to_string().contains("moderation"), "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the recording after the reversal: {e:#}"),
        }
    }

    // The report counts what the log holds: three decisions, three reversals.
    let report = call(&server.api(), Method::GET, "/transparency/report", None).await;
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["category"] == "illegal_or_harmful_speech" && r["ground"] == "incompatible")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            row["notices"].as_u64(),
            row["decisions"].as_u64(),
            row["reversals"].as_u64()
        ),
        (Some(1), Some(3), Some(3)),
        "{row}"
    );
    assert_eq!(row["by_action"]["mute_speaker"], 1);
    assert_eq!(row["by_action"]["remove_speaker"], 1);
    assert_eq!(row["by_action"]["end_space"], 1);
    let exported = call(&server.api(), Method::GET, "/transparency/statements", None).await;
    assert!(!exported.to_string().contains("Heard it too"));
    server.stop().await;
}

/// A Transparency Database as its API behaves: bearer token, batches of at most 100, the
/// published field rules, `422` with `existing_puids` for a `puid` it holds (storing nothing of
/// that batch), field errors as `statements.N.field`; closed (`503`) until the test opens it.
#[derive(Default)]
struct Tdb {
    open: bool,
    calls: u32,
    refused_while_closed: u32,
    batch_sizes: Vec<usize>,
    stored: std::collections::HashMap<String, Value>,
    /// Answered as invalid (the database's own rules went further than ours, say).
    reject: Option<String>,
}

async fn tdb_receiver(
    tdb: std::sync::Arc<std::sync::Mutex<Tdb>>,
) -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, StatusCode};
    let app = axum::Router::new().route(
        "/api/v1/statements",
        axum::routing::post(
            move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                let tdb = tdb.clone();
                async move {
                    let mut t = tdb.lock().unwrap();
                    t.calls += 1;
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some("Bearer tdb-secret")
                    {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Unauthenticated."})));
                    }
                    if !t.open {
                        t.refused_while_closed += 1;
                        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"message": "maintenance"})));
                    }
                    let statements = body["statements"].as_array().cloned().unwrap_or_default();
                    assert!(!statements.is_empty() && statements.len() <= 100, "{}", statements.len());
                    t.batch_sizes.push(statements.len());
                    let mut errors = serde_json::Map::new();
                    for (i, s) in statements.iter().enumerate() {
                        for v in stentor_moderation::tdb::validate(s) {
                            errors.insert(format!("statements.{i}.{}", v.field), json!([v.rule]));
                        }
                        if Some(s["puid"].as_str().unwrap()) == t.reject.as_deref() {
                            errors.insert(format!("statements.{i}.decision_facts"), json!(["The decision facts are not acceptable."]));
                        }
                    }
                    if !errors.is_empty() {
                        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"message": "invalid", "errors": errors})));
                    }
                    let existing: Vec<&str> = statements
                        .iter()
                        .filter_map(|s| s["puid"].as_str())
                        .filter(|p| t.stored.contains_key(*p))
                        .collect();
                    if !existing.is_empty() {
                        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({
                            "message": "The platform identifier(s) given are not all unique within this platform.",
                            "errors": {"puid": ["not unique"], "existing_puids": existing},
                        })));
                    }
                    let mut out = Vec::new();
                    for s in statements {
                        let puid = s["puid"].as_str().unwrap().to_owned();
                        out.push(json!({"puid": puid, "uuid": format!("uuid-{}", t.stored.len())}));
                        t.stored.insert(puid, s);
                    }
                    (StatusCode::CREATED, axum::Json(json!({"statements": out})))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/api/v1/statements",
        listener.local_addr().unwrap()
    );
    (
        url,
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_reach_the_transparency_database_once_in_batches_through_failures() {
    let tdb = std::sync::Arc::new(std::sync::Mutex::new(Tdb::default()));
    let (url, receiver) = tdb_receiver(tdb.clone()).await;
    let server = TestServer::start_with("trust-safety-tdb", |c| {
        c.moderation.admin = Some("root".into());
        c.moderation.tdb_url = Some(url.clone());
        c.moderation.tdb_token = Some("tdb-secret".into());
    })
    .await;
    let root = signed_up(&server, "root").await;
    let author = signed_up(&server, "author").await;
    let post = call(
        &author,
        Method::POST,
        "/posts",
        Some(json!({"text": "Buy now!!!"})),
    )
    .await;
    let subject = json!({"kind": "post", "id": post["id"].as_u64().unwrap().to_string()});
    const DECISIONS: usize = 150;
    let mut ids = Vec::new();
    for _ in 0..DECISIONS {
        let d = call(
            &root,
            Method::POST,
            "/moderation/decisions",
            Some(decision(subject.clone(), "label", None)),
        )
        .await;
        ids.push(d["id"].as_u64().unwrap());
    }
    let puid = |seq: u64| format!("stentor-decision-{seq}");
    let closed_until = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while tdb.lock().unwrap().refused_while_closed < 2 {
        assert!(
            tokio::time::Instant::now() < closed_until,
            "the exporter did not try again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    {
        // One was submitted before and its answer lost; one the database will refuse.
        let mut t = tdb.lock().unwrap();
        t.stored.insert(puid(ids[7]), json!({"puid": puid(ids[7])}));
        t.reject = Some(puid(ids[120]));
        t.open = true;
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        let s = call(&root, Method::GET, "/moderation/exports", None).await;
        if s["pending"] == 0 {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "still pending: {s}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        (
            status["sent"].as_u64(),
            status["existing"].as_u64(),
            status["invalid"].as_u64()
        ),
        (Some(DECISIONS as u64 - 2), Some(1), Some(1)),
        "{status}"
    );
    assert_eq!(status["refused"][0]["puid"], puid(ids[120]));
    assert!(
        status["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("decision facts"),
        "{status}"
    );
    {
        let t = tdb.lock().unwrap();
        assert_eq!(
            t.stored.len(),
            DECISIONS - 1,
            "every statement but the refused one, once"
        );
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.stored.contains_key(&puid(*id)), i != 120, "decision {id}");
        }
        assert!(
            t.batch_sizes.iter().all(|&n| n <= 100),
            "{:?}",
            t.batch_sizes
        );
        assert_eq!(t.batch_sizes[0], 100, "{:?}", t.batch_sizes);
        // No personal data travelled: no handle, no account, no text of the post.
        for s in t.stored.values() {
            let text = s.to_string();
            for personal in ["root", "author", "Buy now"] {
                assert!(!text.contains(personal), "{personal} in {text}");
            }
        }
        println!(
            "{} statements: {} requests ({} refused while closed), batches {:?}",
            DECISIONS, t.calls, t.refused_while_closed, t.batch_sizes
        );
    }
    server.stop().await;
    receiver.abort();
}

#[tokio::test]
async fn a_small_enterprise_states_its_reasons_but_takes_no_appeals() {
    let server = TestServer::start_with("trust-safety-small", |c| {
        c.moderation.admin = Some("root".into());
        c.moderation.small_enterprise = Some(true);
    })
    .await;
    let root = signed_up(&server, "root").await;
    let author = signed_up(&server, "author").await;
    let post = call(
        &author,
        Method::POST,
        "/posts",
        Some(json!({"text": "Buy now!!!"})),
    )
    .await;
    let subject = json!({"kind": "post", "id": post["id"].as_u64().unwrap().to_string()});
    let d = call(
        &root,
        Method::POST,
        "/moderation/decisions",
        Some(decision(subject, "remove", None)),
    )
    .await;
    let page = call(
        &author,
        Method::GET,
        &format!("/statements/{}", d["id"]),
        None,
    )
    .await;
    assert_eq!(page["redress"]["internal_complaint"], false);
    assert_eq!(page["redress"]["appeal_open"], false);
    assert_eq!(page["can_appeal"], false);
    assert!(
        page["redress"]["out_of_court"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    let e = refused(
        &author,
        Method::POST,
        &format!("/statements/{}/appeal", d["id"]),
        Some(json!({"text": "It was a joke."})),
    )
    .await;
    assert!(e.contains("403") && e.contains("Art. 19"), "{e}");

    // One account's reports waiting are bounded (20): the 21st waits until some are answered.
    let busy = signed_up(&server, "busy_reporter").await;
    for i in 0..21 {
        let p = call(
            &author,
            Method::POST,
            "/posts",
            Some(json!({"text": format!("post {i}")})),
        )
        .await;
        let body = json!({"subject": {"kind": "post", "id": p["id"].as_u64().unwrap().to_string()},
                          "category": "scams_and_fraud", "explanation": "spam", "good_faith": true});
        match busy.call(Method::POST, "/reports", Some(body)).await {
            Ok(_) => assert!(i < 20, "report {i} taken"),
            Err(e) => {
                assert!(i == 20 && e.to_string().contains("429"), "report {i}: {e}");
            }
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demoted_content_leaves_discovery_but_not_followers_and_the_lists_state_their_order() {
    use common::live_space;
    let server = TestServer::start_with("trust-safety-demote", |c| {
        c.moderation.admin = Some("root".into());
    })
    .await;
    let root = signed_up(&server, "root").await;
    // Started a second apart (the store keeps seconds).
    let (_quiet_host, quiet) = live_space(&server, "quiet_host", "A quiet one").await;
    tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
    let (_loud_host, loud) = live_space(&server, "loud_host", "A crowded one").await;
    tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
    let (_new_host, newest) = live_space(&server, "new_host", "The newest").await;
    // Two listeners in the crowded Space, none elsewhere.
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let api = server.api();
        let ticket = api.ticket(&loud).await.unwrap();
        sockets.push(api.connect(&loud, &ticket.ticket).await.unwrap().0);
    }
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_listeners = call(&server.api(), Method::GET, "/spaces", None).await;
    assert_eq!(
        ids(&by_listeners),
        [loud.clone(), newest.clone(), quiet.clone()],
        "{by_listeners}"
    );
    assert_eq!(by_listeners[0]["listeners"], 2);
    let by_time = call(&server.api(), Method::GET, "/spaces?order=newest", None).await;
    assert_eq!(
        ids(&by_time),
        [newest.clone(), loud.clone(), quiet.clone()],
        "{by_time}"
    );

    // Demoting the crowded Space takes it out of both lists; a reversal puts it back.
    let mut d = decision(json!({"kind": "space", "id": loud}), "demote", None);
    d["category"] = json!("negative_effects_on_civic_discourse_or_elections");
    let demoted = call(&root, Method::POST, "/moderation/decisions", Some(d)).await;
    assert_eq!(demoted["statement"]["restriction"]["action"], "demote");
    for order in ["listeners", "newest"] {
        let list = call(
            &server.api(),
            Method::GET,
            &format!("/spaces?order={order}"),
            None,
        )
        .await;
        assert!(!ids(&list).contains(&loud), "{order}: {list}");
    }

    // A demoted reply: its author's followers (and the author) still see it, nobody else.
    let author = signed_up(&server, "replier").await;
    let follower = signed_up(&server, "follower").await;
    let stranger = signed_up(&server, "stranger").await;
    call(&follower, Method::POST, "/users/replier/follow", None).await;
    let post = call(
        &root,
        Method::POST,
        "/posts",
        Some(json!({"text": "What do you think?"})),
    )
    .await;
    let post_id = post["id"].as_u64().unwrap();
    let reply = call(
        &author,
        Method::POST,
        "/posts",
        Some(json!({"text": "Vote on the wrong day!", "reply_to": post_id})),
    )
    .await;
    let reply_id = reply["id"].as_u64().unwrap();
    let mut d = decision(
        json!({"kind": "post", "id": reply_id.to_string()}),
        "demote",
        None,
    );
    d["category"] = json!("negative_effects_on_civic_discourse_or_elections");
    let on_reply = call(&root, Method::POST, "/moderation/decisions", Some(d)).await;
    let sees = |api: &Api| {
        let (api, path) = (api.clone(), format!("/posts/{post_id}/replies"));
        async move {
            let page = call(&api, Method::GET, &path, None).await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["id"].as_u64() == Some(reply_id))
        }
    };
    assert!(sees(&follower).await && sees(&author).await);
    assert!(!sees(&stranger).await && !sees(&server.api()).await);
    // The reply itself is still there for anyone who has its link.
    call(&stranger, Method::GET, &format!("/posts/{reply_id}"), None).await;

    // Appeals reversed: both back in discovery.
    for (decided, by) in [(&demoted, &_loud_host), (&on_reply, &author)] {
        let a = call(
            by,
            Method::POST,
            &format!("/statements/{}/appeal", decided["id"]),
            Some(json!({"text": "Nothing wrong here."})),
        )
        .await;
        let mod_b = signed_up(&server, &format!("mod_{}", a["id"])).await;
        call(
            &root,
            Method::POST,
            "/moderators",
            Some(json!({"handle": format!("mod_{}", a["id"])})),
        )
        .await;
        call(
            &mod_b,
            Method::POST,
            &format!("/appeals/{}/decision", a["id"]),
            Some(json!({"outcome": "reversed", "explanation": "Within the rules."})),
        )
        .await;
    }
    assert!(ids(&call(&server.api(), Method::GET, "/spaces", None).await).contains(&loud));
    assert!(sees(&stranger).await);
    drop(sockets);
    server.stop().await;
}

#[tokio::test]
async fn a_removal_or_label_limited_to_some_countries_applies_there_only() {
    let server = TestServer::start_with("trust-safety-countries", |c| {
        c.moderation.admin = Some("root".into());
        c.moderation.country_header = Some("x-country".into());
    })
    .await;
    let root = signed_up(&server, "root").await;
    let author = signed_up(&server, "author").await;
    let mut posts = Vec::new();
    for text in [
        "An excerpt banned in one country",
        "A claim disputed in another",
    ] {
        let p = call(&author, Method::POST, "/posts", Some(json!({"text": text}))).await;
        posts.push(p["id"].as_u64().unwrap());
    }
    let scoped = |post: u64, action: &str, countries: Value| {
        let mut d = decision(
            json!({"kind": "post", "id": post.to_string()}),
            action,
            None,
        );
        d["ground"] = json!("illegal");
        d["legal_ground"] = json!("A national law on banned symbols");
        d["territorial_scope"] = countries;
        d
    };
    let removed = call(
        &root,
        Method::POST,
        "/moderation/decisions",
        Some(scoped(posts[0], "remove", json!(["DE"]))),
    )
    .await;
    assert_eq!(
        removed["statement"]["restriction"]["territorial_scope"],
        json!(["DE"])
    );
    call(
        &root,
        Method::POST,
        "/moderation/decisions",
        Some(scoped(posts[1], "label", json!(["FR"]))),
    )
    .await;
    // Only removing or labelling a post may be limited; the countries are EU/EEA ones.
    let e = refused(
        &root,
        Method::POST,
        "/moderation/decisions",
        Some(scoped(posts[1], "restrict_interaction", json!(["FR"]))),
    )
    .await;
    assert!(e.contains("400") && e.contains("territorial_scope"), "{e}");
    let e = refused(
        &root,
        Method::POST,
        "/moderation/decisions",
        Some(scoped(posts[1], "remove", json!(["US"]))),
    )
    .await;
    assert!(e.contains("400"), "{e}");

    let http = reqwest::Client::new();
    let get = |path: String, country: Option<&'static str>| {
        let mut request = http.get(format!("{}/api/v1{path}", server.base));
        if let Some(c) = country {
            request = request.header("x-country", c);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // The removal holds in Germany only; elsewhere, or where the country is not known, the
    // post is there.
    assert_eq!(get(format!("/posts/{}", posts[0]), Some("DE")).await.0, 404);
    assert_eq!(get(format!("/posts/{}", posts[0]), Some("de")).await.0, 404);
    assert_eq!(get(format!("/posts/{}", posts[0]), Some("FR")).await.0, 200);
    assert_eq!(get(format!("/posts/{}", posts[0]), None).await.0, 200);
    let listed = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect()
    };
    let in_de = get("/users/author/posts".into(), Some("DE")).await.1;
    assert!(!listed(&in_de).contains(&posts[0]) && listed(&in_de).contains(&posts[1]));
    let in_fr = get("/users/author/posts".into(), Some("FR")).await.1;
    assert!(listed(&in_fr).contains(&posts[0]));
    // The label shows in France only.
    let (_, fr) = get(format!("/posts/{}", posts[1]), Some("FR")).await;
    assert_eq!(
        fr["label"],
        "The post promises money back for a payment to a stranger."
    );
    let (_, de) = get(format!("/posts/{}", posts[1]), Some("DE")).await;
    assert_eq!(de["label"], Value::Null);
    // The payload for the Transparency Database names the country.
    let exported = call(&server.api(), Method::GET, "/transparency/statements", None).await;
    assert_eq!(
        exported["statements"][0]["territorial_scope"],
        json!(["DE"])
    );
    assert_eq!(
        stentor_moderation::tdb::validate(&exported["statements"][0]),
        vec![]
    );
    server.stop().await;
}
