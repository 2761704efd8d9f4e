//! The load tester's accounting against a server that drops and delays frames on purpose.

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stentor_loadtest::{Plan, Profile, Transport, plan::parse_sources, run::run};
use stentor_media::ogg::{self, PageWriter};

const FRAMES: u64 = 150;
const DROPPED: std::ops::Range<u64> = 50..55;
const STALL_BEFORE: u64 = 100;

/// The frames a faulty server sends: (seq, pause before it). With `faulty`, five frames are
/// never sent and the stream stops for 1.5 s before frame 100.
fn schedule(faulty: bool) -> impl Iterator<Item = (u64, Duration)> {
    (0..FRAMES)
        .filter(move |s| !faulty || !DROPPED.contains(s))
        .map(move |s| {
            let pause = if faulty && s == STALL_BEFORE {
                1500
            } else {
                20
            };
            (s, Duration::from_millis(pause))
        })
}

/// A "come back in a second" for the first `refuse` requests counted by `asked`.
fn refusal(asked: &AtomicUsize, refuse: usize) -> Option<Response> {
    (asked.fetch_add(1, Ordering::Relaxed) < refuse).then(|| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "full",
        )
            .into_response()
    })
}

async fn serve(faulty: bool) -> String {
    serve_refusing(faulty, 0).await
}

/// The test server; the first `refuse` ticket requests and the first `refuse` Ogg requests
/// are told to come back in a second.
async fn serve_refusing(faulty: bool, refuse: usize) -> String {
    let tickets = Arc::new(AtomicUsize::new(0));
    let streams = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/api/v1/spaces/x/tickets",
            post(move || async move {
                refusal(&tickets, refuse).unwrap_or_else(|| {
                    axum::Json(serde_json::json!({"ticket": "t"})).into_response()
                })
            }),
        )
        .route(
            "/api/v1/spaces/x/ws",
            get(move |ws: WebSocketUpgrade| async move {
                ws.on_upgrade(move |mut socket| async move {
                    for (seq, pause) in schedule(faulty) {
                        tokio::time::sleep(pause).await;
                        let mut b = BytesMut::new();
                        b.put_u8(0x02);
                        b.put_u64(seq);
                        b.put_slice(&[0xf8, 0xff, 0xfe]);
                        if socket.send(Message::Binary(b.freeze())).await.is_err() {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(30)).await;
                })
            }),
        )
        .route(
            "/spaces/x/live.opus",
            get(move || async move {
                refusal(&streams, refuse)
                    .unwrap_or_else(|| Body::from_stream(async_stream(faulty)).into_response())
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn async_stream(faulty: bool) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut w = PageWriter::new(7);
        for page in ogg::opus_header_pages(&mut w, "t") {
            let _ = tx.send(Ok(page)).await;
        }
        for (seq, pause) in schedule(faulty) {
            tokio::time::sleep(pause).await;
            let granule = u64::from(ogg::PRE_SKIP) + (seq + 1) * 960;
            if tx
                .send(Ok(w.page(&[&[0xf8, 0xff, 0xfe]], granule, 0)))
                .await
                .is_err()
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

fn plan(base: String, transport: Transport) -> Plan {
    Plan {
        url: base,
        space: "x".into(),
        transport,
        listeners: 3,
        profile: Profile::Spike,
        hold_secs: 5.0,
        sources: parse_sources("127.0.0.2-127.0.0.3").unwrap(),
        workers: 0,
        nodes: Vec::new(),
        fallback: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_delayed_frames_are_counted_on_both_transports() {
    for transport in [Transport::Ws, Transport::Ogg] {
        let report = run(plan(serve(true).await, transport), 1000.0, false)
            .await
            .unwrap();
        assert_eq!(report.admitted, 3, "{transport:?}: {report:?}");
        assert_eq!(
            report.missed,
            3 * (DROPPED.end - DROPPED.start),
            "{transport:?}"
        );
        assert!(
            report.stalls >= 3,
            "{transport:?}: {} stalls",
            report.stalls
        );
        assert!(
            report.worst_late_ms.p50 >= 1400.0,
            "{transport:?}: {:?}",
            report.worst_late_ms
        );
        assert_eq!(report.on_time_share, 0.0, "{transport:?}");
        // The second after the stall shows it.
        assert!(
            report.timeline.iter().any(|p| p.late_p99_ms >= 1400.0),
            "{transport:?}: {:?}",
            report.timeline
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stream_is_all_on_time() {
    for transport in [Transport::Ws, Transport::Ogg] {
        let report = run(plan(serve(false).await, transport), 1000.0, false)
            .await
            .unwrap();
        assert_eq!(report.admitted, 3);
        assert_eq!(report.missed, 0);
        assert_eq!(report.on_time_share, 1.0, "{transport:?}: {report:?}");
        assert!(
            report.timeline.iter().all(|p| p.on_time == 1.0),
            "{transport:?}: {:?}",
            report.timeline
        );
        assert!(
            report.first_audio_ms.p99 < 500.0,
            "{:?}",
            report.first_audio_ms
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_told_to_come_back_later_do_and_get_in() {
    for transport in [Transport::Ws, Transport::Ogg] {
        let report = run(
            plan(serve_refusing(false, 3).await, transport),
            1000.0,
            false,
        )
        .await
        .unwrap();
        assert_eq!(report.admitted, 3, "{transport:?}: {report:?}");
        assert_eq!(report.retries, 3, "{transport:?}");
        assert_eq!(report.admitted_after_retry, 3, "{transport:?}");
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        // A second's wait is in the time to first audio.
        assert!(
            report.first_audio_ms.p50 >= 1000.0,
            "{:?}",
            report.first_audio_ms
        );
        assert!(report.table().contains("told to come back later"));
    }
}
