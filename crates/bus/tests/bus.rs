//! The bus, in-process and over the real NATS server that `STENTOR_TEST_NATS_URL` names
//! (`.ci/run` sets it; on a machine without it the NATS runs are left out, with a message):
//! order kept, at most once for a reader that cannot keep up (counted, never holding the
//! publisher back), requests answered or refused with a reason.

use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use stentor_bus::{Bus, BusError, Envelope, Subjects};

const NATS_VAR: &str = "STENTOR_TEST_NATS_URL";

/// Every bus under test: in-process always, NATS when named (and then it must answer).
async fn buses() -> Vec<Bus> {
    let mut all = vec![Bus::local()];
    match std::env::var(NATS_VAR) {
        Ok(url) => all.push(
            Bus::nats(&url)
                .await
                .unwrap_or_else(|e| panic!("{NATS_VAR} is set but: {e}")),
        ),
        Err(_) => eprintln!("{NATS_VAR} is not set: only the in-process bus is tested"),
    }
    all
}

/// Subjects of a Space of this test run's own, so that runs side by side do not meet.
fn subjects(name: &str) -> Subjects {
    let cluster = format!("test-{}-{}", std::process::id(), rand_tag());
    Subjects::new(&cluster, name).unwrap()
}

fn rand_tag() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

#[tokio::test]
async fn audio_and_events_arrive_in_the_order_they_were_published() {
    for bus in buses().await {
        let s = subjects("order");
        let mut sub = bus.subscribe(&s.media).await.unwrap();
        bus.flush().await.unwrap();
        let mut sent = Vec::new();
        for seq in 0..200u64 {
            let envelope = if seq % 50 == 49 {
                Envelope::Event(Bytes::from(format!(r#"{{"event":"tick","at":{seq}}}"#)))
            } else {
                Envelope::Audio {
                    seq,
                    sent_micros: 1_000 + seq,
                    packet: Bytes::from(vec![seq as u8; 40]),
                }
            };
            bus.publish(&s.media, envelope.encode()).await.unwrap();
            sent.push(envelope);
        }
        bus.flush().await.unwrap();
        for want in &sent {
            let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .expect("every message arrives")
                .unwrap();
            assert_eq!(&Envelope::decode(&got).unwrap(), want, "{bus:?}");
        }
        assert!(bus.stats().published.load(Ordering::Relaxed) >= 200);
        assert!(bus.stats().received.load(Ordering::Relaxed) >= 200);
    }
}

#[tokio::test]
async fn a_reader_that_cannot_keep_up_loses_messages_and_holds_nobody_back() {
    for bus in buses().await {
        let s = subjects("slow");
        let mut slow = bus.subscribe(&s.media).await.unwrap();
        let mut keen = bus.subscribe(&s.media).await.unwrap();
        bus.flush().await.unwrap();
        // The keen reader reads everything as it comes; the slow one reads nothing yet.
        let total = 5_000u64;
        let got = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = got.clone();
        let reader = tokio::spawn(async move {
            let mut n = 0u64;
            while n < total {
                match tokio::time::timeout(Duration::from_secs(5), keen.next()).await {
                    Ok(Some(_)) => {
                        n += 1;
                        counted.store(n, Ordering::Relaxed);
                    }
                    _ => break,
                }
            }
            n
        });
        let started = Instant::now();
        for seq in 0..total {
            let frame = Envelope::Audio {
                seq,
                sent_micros: 0,
                packet: Bytes::from_static(&[0u8; 80]),
            };
            bus.publish(&s.media, frame.encode()).await.unwrap();
            if seq % 500 == 499 {
                // Paced as a mixer is, so that the keen reader keeps up: it is never more
                // than one burst behind (on a loaded machine a fixed pause was not always
                // enough); the slow reader is never waited for.
                let until = Instant::now() + Duration::from_secs(2);
                while got.load(Ordering::Relaxed) + 500 < seq + 1 && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        bus.flush().await.unwrap();
        let publishing = started.elapsed();
        assert_eq!(
            reader.await.unwrap(),
            total,
            "the keen reader got everything ({bus:?})"
        );
        assert!(
            publishing < Duration::from_secs(5),
            "publishing took {publishing:?}: the slow reader held it back ({bus:?})"
        );
        // The slow one holds at most its capacity; the rest was dropped and counted.
        let mut held = 0;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), slow.next()).await
        {
            held += 1;
        }
        assert!(held < total as usize, "{held} held of {total} ({bus:?})");
        let dropped = bus.stats().dropped.load(Ordering::Relaxed);
        assert!(dropped > 0, "drops are counted ({bus:?})");
    }
}

#[tokio::test]
async fn a_request_is_answered_and_one_nobody_serves_is_refused_with_a_reason() {
    for bus in buses().await {
        let s = subjects("request");
        // Nobody serves yet.
        match bus
            .request(
                &s.snapshot,
                Bytes::from_static(b"?"),
                Duration::from_secs(1),
            )
            .await
        {
            Err(BusError::NoResponders(subject)) => assert_eq!(subject, s.snapshot),
            other => panic!("{other:?} ({bus:?})"),
        }
        let mut requests = bus.serve(&s.snapshot).await.unwrap();
        bus.flush().await.unwrap();
        let server = tokio::spawn(async move {
            let request = requests.next().await.unwrap();
            let mut answer = b"state of ".to_vec();
            answer.extend_from_slice(&request.payload);
            request.respond(Bytes::from(answer)).await.unwrap();
            // The next one is never answered.
            requests.next().await
        });
        let answer = bus
            .request(
                &s.snapshot,
                Bytes::from_static(b"k3x9"),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(&answer[..], b"state of k3x9");
        let started = Instant::now();
        match bus
            .request(
                &s.snapshot,
                Bytes::from_static(b"late"),
                Duration::from_millis(300),
            )
            .await
        {
            Err(BusError::TimedOut(_)) => {}
            other => panic!("{other:?} ({bus:?})"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        server.abort();
    }
}

#[tokio::test]
async fn a_nats_server_that_is_not_there_is_a_clear_error() {
    match Bus::nats("nats://127.0.0.1:1").await {
        Err(e @ BusError::Connect { .. }) => {
            assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}
