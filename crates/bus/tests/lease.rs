//! Leases on the real NATS server that `STENTOR_TEST_NATS_URL` names: one holder at a
//! time, kept by renewals, taken over once the holder stops renewing, at once on release.

use std::time::{Duration, Instant};
use stentor_bus::{Bus, Leases};

#[tokio::test]
async fn one_node_holds_a_space_until_it_stops_renewing_then_another_takes_it() {
    let Ok(url) = std::env::var("STENTOR_TEST_NATS_URL") else {
        eprintln!("STENTOR_TEST_NATS_URL is not set: leases need NATS, left out");
        return;
    };
    let bus = Bus::nats(&url).await.unwrap();
    let bucket = format!("stentor_test_leases_{}", std::process::id());
    let ttl = Duration::from_secs(1);
    let a = Leases::open(&bus, &bucket, ttl, "node-a").await.unwrap();
    let b = Leases::open(&bus, &bucket, ttl, "node-b").await.unwrap();
    let space = "k3x9q2mzab";

    let mut lease = a.acquire(space).await.unwrap().expect("nobody held it");
    assert_eq!(a.holder(space).await.unwrap().as_deref(), Some("node-a"));
    // Renewed, it stays node-a's for longer than its time.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2_500) {
        assert!(b.acquire(space).await.unwrap().is_none(), "held by node-a");
        tokio::time::sleep_until(lease.clock.renew_at().into()).await;
        assert!(a.renew(&mut lease).await.unwrap(), "node-a keeps it");
        assert!(lease.clock.holds(Instant::now()));
    }
    // node-a stops renewing (it died): within a couple of lease times node-b takes it.
    let stopped = Instant::now();
    let mut taken = None;
    while stopped.elapsed() < Duration::from_secs(5) {
        if let Some(l) = b.acquire(space).await.unwrap() {
            taken = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken = taken.expect("node-b takes the lapsed lease");
    let waited = stopped.elapsed();
    assert!(
        waited >= ttl * 3 / 4,
        "taken after {waited:?}, before it lapsed"
    );
    assert_eq!(b.holder(space).await.unwrap().as_deref(), Some("node-b"));
    // node-a, back, cannot renew what it lost, and its clock had let go already.
    assert!(!a.renew(&mut lease).await.unwrap());
    assert!(!lease.clock.holds(Instant::now()));
    // A release hands it over at once.
    b.release(taken).await.unwrap();
    assert!(a.acquire(space).await.unwrap().is_some());

    // A node configured with another lease time is told, not let in to disagree.
    let other = Leases::open(&bus, &bucket, ttl * 2, "node-c").await;
    let err = other
        .err()
        .expect("a different lease time is refused")
        .to_string();
    assert!(err.contains("same lease time"), "{err}");

    let js = async_nats::jetstream::new(bus.nats_client().unwrap().clone());
    js.delete_key_value(&bucket).await.unwrap();
}
