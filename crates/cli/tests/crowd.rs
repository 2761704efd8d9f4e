//! A crowd of real listeners on one server: 1 000 over the WebSocket and 1 000 over Ogg,
//! joining at 1 000 a second, every one of them receiving every frame of the demo Space in
//! time, counted by the load tester without decoding.

mod common;

use common::TestServer;
use stentor_loadtest::plan::parse_sources;
use stentor_loadtest::run::run;
use stentor_loadtest::{Plan, Profile, Transport};

/// The two tests measure timing with the machine's two cores: one at a time (side by side,
/// the 2 000 listeners' joins made the server shed the other test's status requests, and its
/// crowd, told no window, came at once).
static MACHINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn plan(base: &str, transport: Transport, sources: &str) -> Plan {
    Plan {
        url: base.to_owned(),
        space: "demo".into(),
        transport,
        listeners: 1000,
        profile: Profile::Ramp { per_second: 500.0 },
        hold_secs: 4.0,
        sources: parse_sources(sources).unwrap(),
        workers: 0,
        nodes: Vec::new(),
        fallback: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_listeners_get_every_frame_on_time() {
    let _machine = MACHINE.lock().await;
    let server = TestServer::start("crowd").await;
    let (space, host) = stentor::demo::prepare(&server.state).await.unwrap();
    stentor::demo::spawn_speaker(space, host);
    let (ws, ogg) = tokio::join!(
        run(
            plan(&server.base, Transport::Ws, "127.0.2.1-127.0.5.255"),
            1000.0,
            false
        ),
        run(
            plan(&server.base, Transport::Ogg, "127.0.6.1-127.0.9.255"),
            1000.0,
            false
        ),
    );
    for report in [ws.unwrap(), ogg.unwrap()] {
        assert_eq!(report.admitted, 1000, "{:?}", report.failures);
        assert_eq!(report.missed, 0);
        assert_eq!(report.stalls, 0);
        assert_eq!(report.on_time_share, 1.0, "{:?}", report.worst_late_ms);
        // Everyone heard at least the hold: 4 s of 50 frames a second.
        assert!(report.frames >= 1000 * 200, "{} frames", report.frames);
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("stentor_fanout_writers 2"),
        "one writer per transport for 1 000 listeners each:\n{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_crowd_spreads_its_joins_over_the_announced_window() {
    let _machine = MACHINE.lock().await;
    // 300 waiting, 100 joins a second taken comfortably: a window of 3 s.
    let server = TestServer::start_with("crowd-window", |c| {
        c.admission.lobby_joins_per_sec = Some(100);
    })
    .await;
    let (space, host) = stentor::demo::prepare(&server.state).await.unwrap();
    stentor::demo::spawn_speaker(space, host);
    let at_unix_ms = stentor_loadtest::worker::now_us() / 1000 + 10_500;
    let report = run(
        Plan {
            profile: Profile::Crowd {
                at_unix_ms,
                follow_window: true,
            },
            listeners: 300,
            hold_secs: 1.0,
            ..plan(&server.base, Transport::Ogg, "127.0.30.1-127.0.31.255")
        },
        1000.0,
        false,
    )
    .await
    .unwrap();
    assert_eq!(report.admitted, 300, "{:?}", report.failures);
    assert_eq!(report.on_time_share, 1.0);
    // Not all at the start: 99 % had audio only near the end of the window.
    let t99 = report.admitted_99_s.expect("99 % got audio");
    assert!((1.5..5.0).contains(&t99), "99 % after {t99} s");
    let joins_per_second: Vec<u64> = report.timeline.iter().map(|p| p.joins).collect();
    assert!(
        joins_per_second.iter().all(|j| *j < 250),
        "the crowd came at once: {joins_per_second:?}"
    );
    server.stop().await;
}
