//! What a load test does: how many listeners, how they arrive, over which transport and from
//! which source addresses, split into shards for worker processes.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::time::Duration;

/// How listeners connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// The Space WebSocket (ticket, then upgrade); frames are `0x02` messages.
    Ws,
    /// An Ogg/Opus HTTP stream (stentor's `live.opus`, or any Icecast-compatible URL);
    /// frames are counted from granule positions.
    Ogg,
    /// LL-HLS: blocking playlist reloads and parts on one keep-alive connection, as a
    /// low-latency player asks (through a cache or straight at the server).
    Hls,
}

/// How listeners arrive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// A steady ramp of `per_second` joins.
    Ramp {
        /// Joins per second.
        per_second: f64,
    },
    /// Everyone at once.
    Spike,
    /// Everyone at a scheduled instant (Unix milliseconds), as a waiting crowd at a start.
    Crowd {
        /// When, in Unix milliseconds.
        at_unix_ms: i64,
        /// Whether each listener follows the join window the Space's status announces (it
        /// asks for the status twice in the ten seconds before the start, as a waiting
        /// client polls, then joins at a moment drawn from the window) or comes at once.
        #[serde(default)]
        follow_window: bool,
    },
}

/// A whole load test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// For `ws` and stentor's Ogg: the server's base URL, e.g. `http://127.0.0.1:8080`.
    /// For a foreign Ogg stream: its full URL.
    pub url: String,
    /// The Space id (empty for a foreign Ogg URL).
    pub space: String,
    /// The transport.
    pub transport: Transport,
    /// Listeners in all.
    pub listeners: usize,
    /// Arrival profile.
    pub profile: Profile,
    /// How long every listener stays after the last has joined, seconds.
    pub hold_secs: f64,
    /// Source addresses to spread connections over.
    pub sources: Vec<Ipv4Addr>,
    /// Worker processes (0: run in this process, for tests).
    pub workers: usize,
    /// In a cluster: the base URLs of the edges to spread listeners over (listener `i` starts
    /// on the `i`-th, round the list); a listener whose edge goes away moves to the next.
    /// Empty: everyone on `url`.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Where a listener whose node went away moves, in turn (empty: the next of `nodes`).
    #[serde(default)]
    pub fallback: Vec<String>,
}

/// One worker's part of a plan: every `stride`-th listener from `first`, all sharing one
/// start. Interleaved, so that every worker takes its share of the joins of every second.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shard {
    /// The plan.
    pub plan: Plan,
    /// First listener index of this shard.
    pub first: usize,
    /// Distance between two listeners of this shard (the number of shards).
    pub stride: usize,
    /// The run's start, Unix milliseconds (shared by every shard).
    pub start_unix_ms: i64,
}

impl Shard {
    /// The listeners of this shard, by index in the plan.
    pub fn listeners(&self) -> impl Iterator<Item = usize> + use<> {
        (self.first..self.plan.listeners).step_by(self.stride.max(1))
    }

    /// How many listeners this shard has.
    pub fn count(&self) -> usize {
        self.plan
            .listeners
            .saturating_sub(self.first)
            .div_ceil(self.stride.max(1))
    }
}

/// Worker processes for `listeners` when none are asked for: one per core, so that no
/// generator loop is what limits the joins, and at least one per 15 000 listeners (a
/// process's open files).
pub fn default_workers(listeners: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    listeners.div_ceil(15_000).max(cores).max(1)
}

impl Plan {
    /// The base URL listener `i` joins through after `moves` moves: its edge, round the
    /// list, or the plan's URL.
    pub fn node(&self, i: usize, moves: u64) -> &str {
        let list = if moves > 0 && !self.fallback.is_empty() {
            &self.fallback
        } else {
            &self.nodes
        };
        if list.is_empty() {
            return &self.url;
        }
        &list[(i + moves as usize) % list.len()]
    }

    /// When listener `i` joins, after the start of the run.
    pub fn join_offset(&self, i: usize, start_unix_ms: i64) -> Duration {
        match self.profile {
            Profile::Ramp { per_second } => {
                Duration::from_secs_f64(i as f64 / per_second.max(0.001))
            }
            Profile::Spike => Duration::ZERO,
            Profile::Crowd { at_unix_ms, .. } => {
                Duration::from_millis((at_unix_ms - start_unix_ms).max(0) as u64)
            }
        }
    }

    /// When the last listener joins, after the start.
    pub fn last_join(&self, start_unix_ms: i64) -> Duration {
        self.join_offset(self.listeners.saturating_sub(1), start_unix_ms)
    }

    /// Whether listeners follow the announced join window.
    pub fn follows_window(&self) -> bool {
        matches!(
            self.profile,
            Profile::Crowd {
                follow_window: true,
                ..
            }
        )
    }

    /// The source address of listener `i`.
    pub fn source(&self, i: usize) -> Option<Ipv4Addr> {
        (!self.sources.is_empty()).then(|| self.sources[i % self.sources.len()])
    }

    /// Splits the plan into `max(workers, 1)` interleaved shards of nearly equal size.
    pub fn shards(&self, start_unix_ms: i64) -> Vec<Shard> {
        let n = self.workers.max(1).min(self.listeners.max(1));
        (0..n)
            .map(|w| Shard {
                plan: self.clone(),
                first: w,
                stride: n,
                start_unix_ms,
            })
            .collect()
    }
}

/// A number in [0, 1) drawn from listener `i` and `salt`, the same on every run: spreads
/// the moments listeners act at without a random number generator.
pub fn unit(i: usize, salt: u64) -> f64 {
    // SplitMix64's finaliser.
    let mut z = (i as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(salt.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether `ip` is in 10.99.0.0/16, the addresses of the veth pairs that bench/cluster.sh
/// gives the network namespace it makes (to cut one node from NATS for real).
pub fn in_namespace_net(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    (a, b) == (10, 99)
}

/// Parses `127.0.0.2-127.0.0.61` or a single address into the list of addresses.
pub fn parse_sources(spec: &str) -> Result<Vec<Ipv4Addr>, String> {
    let (a, b) = spec.split_once('-').unwrap_or((spec, spec));
    let a: Ipv4Addr = a.trim().parse().map_err(|e| format!("{a}: {e}"))?;
    let b: Ipv4Addr = b.trim().parse().map_err(|e| format!("{b}: {e}"))?;
    let (lo, hi) = (u32::from(a), u32::from(b));
    if hi < lo || hi - lo > 65_535 {
        return Err(format!("{spec}: not a usable range"));
    }
    let allowed = |ip: Ipv4Addr| ip.is_loopback() || in_namespace_net(ip);
    if !allowed(a) || !allowed(b) {
        return Err(format!(
            "{spec}: load tests use loopback source addresses only (or the 10.99.0.0/16 of \
             the network namespace a benchmark makes)"
        ));
    }
    Ok((lo..=hi).map(Ipv4Addr::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(listeners: usize, workers: usize, profile: Profile) -> Plan {
        Plan {
            url: "http://127.0.0.1:1".into(),
            space: "s".into(),
            transport: Transport::Ws,
            listeners,
            profile,
            hold_secs: 1.0,
            sources: parse_sources("127.0.0.2-127.0.0.4").unwrap(),
            workers,
            nodes: Vec::new(),
            fallback: Vec::new(),
        }
    }

    #[test]
    fn shards_cover_every_listener_once_and_share_every_second_of_a_ramp() {
        let p = plan(10, 3, Profile::Ramp { per_second: 5.0 });
        let shards = p.shards(0);
        let mut all: Vec<usize> = shards.iter().flat_map(Shard::listeners).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(
            shards.iter().map(Shard::count).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        // In the first second (listeners 0–4) every worker has joins to make.
        for s in &shards {
            assert!(
                s.listeners()
                    .any(|i| p.join_offset(i, 0).as_secs_f64() < 1.0)
            );
        }
        assert_eq!(plan(2, 8, Profile::Spike).shards(0).len(), 2);
    }

    #[test]
    fn profiles_place_joins_in_time() {
        let ramp = plan(100, 1, Profile::Ramp { per_second: 50.0 });
        assert_eq!(ramp.join_offset(50, 0), Duration::from_secs(1));
        assert_eq!(ramp.last_join(0), Duration::from_secs_f64(99.0 / 50.0));
        let crowd = plan(
            100,
            1,
            Profile::Crowd {
                at_unix_ms: 5_000,
                follow_window: false,
            },
        );
        assert_eq!(crowd.join_offset(7, 2_000), Duration::from_secs(3));
        assert_eq!(ramp.source(4), Some(Ipv4Addr::new(127, 0, 0, 3)));
    }

    #[test]
    fn unit_draws_spread_evenly_over_zero_to_one() {
        let draws: Vec<f64> = (0..10_000).map(|i| unit(i, 7)).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        for decile in 0..10 {
            let lo = f64::from(decile) / 10.0;
            let n = draws.iter().filter(|u| (lo..lo + 0.1).contains(*u)).count();
            assert!((900..1100).contains(&n), "decile {decile}: {n}");
        }
        assert_ne!(unit(1, 1), unit(1, 2));
    }

    #[test]
    fn only_loopback_sources_are_accepted() {
        assert_eq!(parse_sources("127.0.0.2-127.0.0.3").unwrap().len(), 2);
        assert!(parse_sources("10.0.0.1-10.0.0.2").is_err());
        assert_eq!(parse_sources("10.99.0.1").unwrap().len(), 1);
        assert!(parse_sources("127.0.0.9-127.0.0.2").is_err());
    }
}
