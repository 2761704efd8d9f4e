//! Who owns a live Space in a cluster: a lease per Space in a NATS key-value bucket, taken
//! by create-if-absent, kept by compare-and-set renewals, and gone when its holder stops
//! renewing (the bucket's `max_age`: nats-server 2.9 has no per-key time-to-live).
//!
//! The timing is sans-IO ([`LeaseClock`]): a holder renews every third of the lease's
//! time and stops acting as the owner three quarters of the way through it when no renewal
//! got through, so it has let go before the key can expire and another node take it.

use crate::{Bus, BusError};
use async_nats::jetstream::kv;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// The timing of one held lease, with time given by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseClock {
    ttl: Duration,
    /// When the last renewal that the store confirmed was sent.
    renewed: Instant,
}

impl LeaseClock {
    /// A lease of `ttl` whose taking (or last renewal) was sent at `sent`.
    pub fn new(ttl: Duration, sent: Instant) -> Self {
        Self { ttl, renewed: sent }
    }

    /// A renewal sent at `sent` was confirmed.
    pub fn renewed(&mut self, sent: Instant) {
        self.renewed = self.renewed.max(sent);
    }

    /// When the next renewal is due.
    pub fn renew_at(&self) -> Instant {
        self.renewed + self.ttl / 3
    }

    /// Whether this node may still act as the owner at `now`: until three quarters of the
    /// lease's time after the last confirmed renewal was sent (the key lasts a whole `ttl`
    /// after that renewal reached the store, which was later still).
    pub fn holds(&self, now: Instant) -> bool {
        now < self.renewed + self.ttl * 3 / 4
    }
}

/// A lease this node holds.
#[derive(Debug, Clone)]
pub struct Lease {
    key: String,
    revision: u64,
    /// Its timing.
    pub clock: LeaseClock,
}

/// The leases of the Spaces of a cluster, in one key-value bucket.
#[derive(Clone)]
pub struct Leases {
    kv: kv::Store,
    ttl: Duration,
    node: String,
}

/// The bucket the leases of the Spaces of cluster `cluster` live in.
pub fn bucket(cluster: &str) -> String {
    format!("{cluster}_leases")
}

impl Leases {
    /// The leases in `bucket` of the NATS server behind `bus`, each lasting `ttl` after its
    /// last renewal, taken as `node`. The bucket is made if missing; one made by another
    /// node must keep leases as long (its `max_age`).
    pub async fn open(
        bus: &Bus,
        bucket: &str,
        ttl: Duration,
        node: &str,
    ) -> Result<Self, BusError> {
        let description = "stentor: which node owns each live Space";
        let (kv, theirs) = crate::bucket(bus, bucket, description, ttl).await?;
        // Made by another node: fine if its leases last as long as ours.
        if theirs != ttl {
            return Err(BusError::Io(format!(
                "lease bucket {bucket} keeps leases {theirs:?}, this node {ttl:?}: \
                 give every node the same lease time"
            )));
        }
        Ok(Self {
            kv,
            ttl,
            node: node.to_owned(),
        })
    }

    /// The leases in `bucket` if it exists, to read who holds what (never to take a lease:
    /// this reader has no node name).
    pub async fn open_existing(bus: &Bus, bucket: &str) -> Result<Option<Self>, BusError> {
        Ok(crate::existing_bucket(bus, bucket)
            .await?
            .map(|(kv, ttl)| Self {
                kv,
                ttl,
                node: String::new(),
            }))
    }

    /// Takes the lease of Space `space` if nobody holds it; `None` if another node does.
    pub async fn acquire(&self, space: &str) -> Result<Option<Lease>, BusError> {
        let key = key(space);
        let sent = Instant::now();
        match self.kv.create(&key, Bytes::from(self.node.clone())).await {
            Ok(revision) => Ok(Some(Lease {
                key,
                revision,
                clock: LeaseClock::new(self.ttl, sent),
            })),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(BusError::Io(format!("taking the lease of {space}: {e}"))),
        }
    }

    /// Renews `lease`; `false` if it was lost (expired and taken, or released), after which
    /// this node must stop acting as the owner.
    pub async fn renew(&self, lease: &mut Lease) -> Result<bool, BusError> {
        let sent = Instant::now();
        match self
            .kv
            .update(&lease.key, Bytes::from(self.node.clone()), lease.revision)
            .await
        {
            Ok(revision) => {
                lease.revision = revision;
                lease.clock.renewed(sent);
                Ok(true)
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(BusError::Io(format!(
                "renewing the lease {}: {e}",
                lease.key
            ))),
        }
    }

    /// Gives `lease` up at once (a clean stop), so that a standby need not wait it out.
    pub async fn release(&self, lease: Lease) -> Result<(), BusError> {
        self.kv
            .delete_expect_revision(&lease.key, Some(lease.revision))
            .await
            .map_err(|e| BusError::Io(format!("releasing the lease {}: {e}", lease.key)))
    }

    /// The node that holds Space `space`'s lease, if any.
    pub async fn holder(&self, space: &str) -> Result<Option<String>, BusError> {
        let entry = self
            .kv
            .entry(key(space))
            .await
            .map_err(|e| BusError::Io(e.to_string()))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| String::from_utf8_lossy(&e.value).into_owned()))
    }
}

fn key(space: &str) -> String {
    format!("space.{space}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_renews_at_a_third_and_lets_go_at_three_quarters() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(9);
        let mut clock = LeaseClock::new(ttl, t0);
        assert_eq!(clock.renew_at(), t0 + Duration::from_secs(3));
        assert!(clock.holds(t0 + Duration::from_millis(6_749)));
        assert!(!clock.holds(t0 + Duration::from_millis(6_750)));
        clock.renewed(t0 + Duration::from_secs(3));
        assert!(clock.holds(t0 + Duration::from_secs(9)));
        assert_eq!(clock.renew_at(), t0 + Duration::from_secs(6));
        // A confirmation that comes late for an older renewal does not move it back.
        clock.renewed(t0 + Duration::from_secs(1));
        assert_eq!(clock.renew_at(), t0 + Duration::from_secs(6));
    }
}
