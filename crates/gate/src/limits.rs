//! Per-address limits, decided without I/O: request rates per IP and per network (IPv4 /24,
//! IPv6 /64) by GCRA (`governor`), and open connections per IP, per network and in all.
//!
//! The defaults let a crowd behind one NAT in (hundreds of people on one address may all
//! ask for a ticket in the same second) and stop one machine or one network from taking the
//! server for itself.

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The limits; every one is configurable (`[admission]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Requests a second one address may make, sustained (default 20).
    pub ip_rate: u32,
    /// Requests one address may make at once before the rate applies (default 400).
    pub ip_burst: u32,
    /// Requests a second one network may make, sustained (default 200).
    pub net_rate: u32,
    /// Requests one network may make at once (default 4 000).
    pub net_burst: u32,
    /// Expensive requests (sign-in, sign-up, creating a Space) a second one address may make,
    /// sustained (default 2); they also count as requests.
    pub costly_rate: u32,
    /// Expensive requests one address may make at once (default 30).
    pub costly_burst: u32,
    /// Listener joins (a live stream, a WebSocket, an anonymous ticket) a second one address
    /// may make, sustained (default 100). Past it a join waits its turn in the door; a crowd
    /// behind one NAT is paced, not refused.
    pub join_ip_rate: u32,
    /// Listener joins one address may make at once (default 1 000).
    pub join_ip_burst: u32,
    /// Listener joins a second one network may make, sustained (default 1 000).
    pub join_net_rate: u32,
    /// Listener joins one network may make at once (default 10 000).
    pub join_net_burst: u32,
    /// The longest a join waits for its turn (default 10 s); one that would wait longer is
    /// told when to come back (429 + Retry-After).
    pub max_pace: Duration,
    /// Connections one address may hold open (default 2 000).
    pub ip_conns: u32,
    /// Connections one network may hold open (default 8 000).
    pub net_conns: u32,
    /// Connections the server holds open in all, listeners' audio streams aside (default
    /// 10 000; the server lowers it to half its file limit).
    pub conns: u32,
    /// How long a client may take to send a request head while few connections are open
    /// (default [`HEAD_TIMEOUT`]); it shrinks as the connections fill (see [`head_timeout`]).
    pub head_timeout: Duration,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            ip_rate: 20,
            ip_burst: 400,
            net_rate: 200,
            net_burst: 4_000,
            costly_rate: 2,
            costly_burst: 30,
            join_ip_rate: 100,
            join_ip_burst: 1_000,
            join_net_rate: 1_000,
            join_net_burst: 10_000,
            max_pace: Duration::from_secs(10),
            ip_conns: 2_000,
            net_conns: 8_000,
            conns: 10_000,
            head_timeout: HEAD_TIMEOUT,
        }
    }
}

/// How long a client may take to send a request head while few connections are open.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a new connection may take to send its request head, with `open` of `cap`
/// places taken: `full` while half or fewer are, then less and less, down to a tenth of it
/// when all are. A person's browser sends its head in milliseconds; a slow-loris attack
/// holds places for as little time as possible.
pub fn head_timeout(full: Duration, open: u32, cap: u32) -> Duration {
    let taken = f64::from(open) / f64::from(cap.max(1));
    let room = ((1.0 - taken) * 2.0).clamp(0.0, 1.0);
    full.mul_f64(0.1 + 0.9 * room)
}

/// Which limit refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One address.
    Ip,
    /// One network (/24 or /64).
    Network,
    /// The whole server.
    Server,
}

/// Why a request or connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many requests: try again after the wait.
    Rate {
        /// Whose rate.
        scope: Scope,
        /// When the next request would be let through.
        retry_after: Duration,
    },
    /// Too many connections open.
    Connections {
        /// Whose connections.
        scope: Scope,
    },
}

impl Refusal {
    /// The reason counted in `stentor_rejections_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Rate { scope, .. } => match scope {
                Scope::Ip => "rate_ip",
                Scope::Network => "rate_network",
                Scope::Server => "rate_server",
            },
            Refusal::Connections { scope } => match scope {
                Scope::Ip => "connections_ip",
                Scope::Network => "connections_network",
                Scope::Server => "connections_server",
            },
        }
    }

    /// Whole seconds to tell the client to wait (at least 1).
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Refusal::Rate { retry_after, .. } => retry_after.as_secs_f64().ceil().max(1.0) as u64,
            Refusal::Connections { .. } => 5,
        }
    }
}

/// The network an address belongs to, for network-wide limits: its /24 (IPv4) or /64 (IPv6).
/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) counts as IPv4.
pub fn network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
    }
}

type Keyed<C> =
    RateLimiter<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Open connections per address, per network and in all.
#[derive(Debug, Default)]
struct Open {
    ip: HashMap<IpAddr, u32>,
    net: HashMap<IpAddr, u32>,
    total: u32,
}

/// The limits in force, shared by the accept loop, the door and the API.
pub struct Gate<C: Clock + Clone = DefaultClock> {
    caps: Caps,
    clock: C,
    ip_rate: Keyed<C>,
    net_rate: Keyed<C>,
    costly_rate: Keyed<C>,
    join_ip: Keyed<C>,
    join_net: Keyed<C>,
    open: Mutex<Open>,
}

impl<C: Clock + Clone> std::fmt::Debug for Gate<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

/// One counted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit<C: Clock + Clone = DefaultClock> {
    gate: Arc<Gate<C>>,
    /// The address it counts against (none for a trusted proxy's: it carries many clients).
    ip: Option<IpAddr>,
}

fn quota(rate: u32, burst: u32) -> Quota {
    let nz = |n: u32| NonZeroU32::new(n.max(1)).expect("at least 1");
    Quota::per_second(nz(rate)).allow_burst(nz(burst.max(rate)))
}

impl Gate<DefaultClock> {
    /// A gate with `caps`, on the system's clock.
    pub fn new(caps: Caps) -> Arc<Self> {
        Self::with_clock(caps, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Gate<C> {
    /// A gate with `caps` on `clock` (tests drive a fake one by hand).
    pub fn with_clock(caps: Caps, clock: C) -> Arc<Self> {
        let keyed =
            |rate, burst| RateLimiter::dashmap_with_clock(quota(rate, burst), clock.clone());
        Arc::new(Self {
            caps,
            ip_rate: keyed(caps.ip_rate, caps.ip_burst),
            net_rate: keyed(caps.net_rate, caps.net_burst),
            costly_rate: keyed(caps.costly_rate, caps.costly_burst),
            join_ip: keyed(caps.join_ip_rate, caps.join_ip_burst),
            join_net: keyed(caps.join_net_rate, caps.join_net_burst),
            clock,
            open: Mutex::new(Open::default()),
        })
    }

    /// The limits in force.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Counts a request from `ip` against its address's and its network's rates.
    pub fn request(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.check_both(&self.ip_rate, &self.net_rate, ip)
    }

    /// Counts `ip` against an address's rate, then its network's.
    fn check_both(&self, by_ip: &Keyed<C>, by_net: &Keyed<C>, ip: IpAddr) -> Result<(), Refusal> {
        let ip = ip.to_canonical();
        let wait = |scope, not_until: governor::NotUntil<C::Instant>| Refusal::Rate {
            scope,
            retry_after: not_until.wait_time_from(self.clock.now()),
        };
        by_ip.check_key(&ip).map_err(|n| wait(Scope::Ip, n))?;
        by_net
            .check_key(&network(ip))
            .map_err(|n| wait(Scope::Network, n))
    }

    /// Counts a listener's join from `ip` against its address's and network's join rates.
    /// Past them the refusal says how long until the join would be let through: the door
    /// waits that long (see [`Gate::pace`]) rather than refusing.
    pub fn join(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.check_both(&self.join_ip, &self.join_net, ip)
    }

    /// What to do with a join that [`Gate::join`] refused after it has waited `waited`: wait
    /// this long and ask again, or (past the longest pace) refuse it.
    pub fn pace(&self, refusal: Refusal, waited: Duration) -> Option<Duration> {
        match refusal {
            Refusal::Rate { retry_after, .. } if waited + retry_after <= self.caps.max_pace => {
                Some(retry_after.max(Duration::from_millis(1)))
            }
            _ => None,
        }
    }

    /// Counts an expensive request (a password to hash, a Space to make) from `ip` against
    /// its address's strict rate for those. Requests of a crowd behind one address are paced;
    /// these are not, since nobody needs many of them.
    pub fn costly(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = ip.to_canonical();
        self.costly_rate.check_key(&ip).map_err(|n| Refusal::Rate {
            scope: Scope::Ip,
            retry_after: n.wait_time_from(self.clock.now()),
        })
    }

    /// Opens a counted connection from `ip`, unless its address or its network holds as many
    /// as allowed.
    pub fn connect(self: &Arc<Self>, ip: IpAddr) -> Result<Permit<C>, Refusal> {
        let ip = ip.to_canonical();
        let net = network(ip);
        let mut open = self.open.lock();
        if open.total >= self.caps.conns {
            return Err(Refusal::Connections {
                scope: Scope::Server,
            });
        }
        if open.ip.get(&ip).copied().unwrap_or(0) >= self.caps.ip_conns {
            return Err(Refusal::Connections { scope: Scope::Ip });
        }
        if open.net.get(&net).copied().unwrap_or(0) >= self.caps.net_conns {
            return Err(Refusal::Connections {
                scope: Scope::Network,
            });
        }
        *open.ip.entry(ip).or_default() += 1;
        *open.net.entry(net).or_default() += 1;
        open.total += 1;
        Ok(Permit {
            gate: self.clone(),
            ip: Some(ip),
        })
    }

    /// Opens a connection from a trusted reverse proxy: it carries many clients, so it counts
    /// only against the server's cap (its clients' requests are counted by their addresses).
    pub fn connect_proxy(self: &Arc<Self>) -> Result<Permit<C>, Refusal> {
        let mut open = self.open.lock();
        if open.total >= self.caps.conns {
            return Err(Refusal::Connections {
                scope: Scope::Server,
            });
        }
        open.total += 1;
        Ok(Permit {
            gate: self.clone(),
            ip: None,
        })
    }

    /// Connections open in all (listeners' audio streams aside).
    pub fn open(&self) -> u32 {
        self.open.lock().total
    }

    /// How long a connection opened now may take to send its request head.
    pub fn head_timeout(&self) -> Duration {
        head_timeout(self.caps.head_timeout, self.open(), self.caps.conns)
    }

    /// Connections open from `ip`'s address and network.
    pub fn open_from(&self, ip: IpAddr) -> (u32, u32) {
        let ip = ip.to_canonical();
        let open = self.open.lock();
        (
            open.ip.get(&ip).copied().unwrap_or(0),
            open.net.get(&network(ip)).copied().unwrap_or(0),
        )
    }

    /// Forgets the rates of addresses that have been quiet long enough to be back at a full
    /// burst, so the tables hold only who is asking now.
    pub fn forget_quiet(&self) {
        for rate in [
            &self.ip_rate,
            &self.net_rate,
            &self.costly_rate,
            &self.join_ip,
            &self.join_net,
        ] {
            rate.retain_recent();
            rate.shrink_to_fit();
        }
    }

    /// Addresses and networks with a rate remembered.
    pub fn remembered(&self) -> usize {
        self.ip_rate.len()
            + self.net_rate.len()
            + self.costly_rate.len()
            + self.join_ip.len()
            + self.join_net.len()
    }
}

impl<C: Clock + Clone> Drop for Permit<C> {
    fn drop(&mut self) {
        let mut guard = self.gate.open.lock();
        let open = &mut *guard;
        open.total -= 1;
        let Some(ip) = self.ip else { return };
        for (map, key) in [(&mut open.ip, ip), (&mut open.net, network(ip))] {
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn caps() -> Caps {
        Caps {
            ip_rate: 2,
            ip_burst: 4,
            net_rate: 5,
            net_burst: 10,
            costly_rate: 1,
            costly_burst: 2,
            join_ip_rate: 10,
            join_ip_burst: 20,
            join_net_rate: 20,
            join_net_burst: 30,
            max_pace: Duration::from_secs(1),
            ip_conns: 3,
            net_conns: 5,
            conns: 7,
            head_timeout: HEAD_TIMEOUT,
        }
    }

    #[test]
    fn networks_are_slash_24_and_slash_64() {
        assert_eq!(network(ip("192.0.2.77")), ip("192.0.2.0"));
        assert_eq!(network(ip("::ffff:192.0.2.77")), ip("192.0.2.0"));
        assert_eq!(
            network(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
    }

    #[test]
    fn an_address_gets_its_burst_then_its_rate() {
        let clock = FakeRelativeClock::default();
        let gate = Gate::with_clock(caps(), clock.clone());
        for _ in 0..4 {
            gate.request(ip("192.0.2.1")).unwrap();
        }
        let refused = gate.request(ip("192.0.2.1")).unwrap_err();
        let Refusal::Rate { scope, retry_after } = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(scope, Scope::Ip);
        assert_eq!(retry_after, Duration::from_millis(500), "2 a second");
        assert_eq!(refused.retry_after_secs(), 1);
        assert_eq!(refused.reason(), "rate_ip");
        // Another address of the same network is not this one.
        gate.request(ip("192.0.2.2")).unwrap();
        clock.advance(Duration::from_millis(500));
        gate.request(ip("192.0.2.1")).unwrap();
        assert!(gate.request(ip("192.0.2.1")).is_err());
    }

    #[test]
    fn a_network_of_many_addresses_is_held_to_its_own_rate() {
        let clock = FakeRelativeClock::default();
        let gate = Gate::with_clock(caps(), clock.clone());
        // Ten addresses of one /24, one request each: the network's burst.
        for host in 1..=10 {
            gate.request(ip(&format!("198.51.100.{host}"))).unwrap();
        }
        let refused = gate.request(ip("198.51.100.11")).unwrap_err();
        assert!(matches!(
            refused,
            Refusal::Rate {
                scope: Scope::Network,
                ..
            }
        ));
        // Elsewhere nobody notices.
        gate.request(ip("203.0.113.1")).unwrap();
        clock.advance(Duration::from_millis(200));
        gate.request(ip("198.51.100.11")).unwrap();
    }

    #[test]
    fn connections_are_capped_per_address_and_network_and_freed_on_drop() {
        let gate = Gate::with_clock(caps(), FakeRelativeClock::default());
        let a: Vec<_> = (0..3)
            .map(|_| gate.connect(ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(
            gate.connect(ip("192.0.2.1")).unwrap_err(),
            Refusal::Connections { scope: Scope::Ip }
        );
        let b: Vec<_> = (0..2)
            .map(|_| gate.connect(ip("192.0.2.2")).unwrap())
            .collect();
        assert_eq!(
            gate.connect(ip("192.0.2.3")).unwrap_err(),
            Refusal::Connections {
                scope: Scope::Network
            }
        );
        assert_eq!(gate.open_from(ip("192.0.2.1")), (3, 5));
        drop(a);
        assert_eq!(gate.open_from(ip("192.0.2.1")), (0, 2));
        gate.connect(ip("192.0.2.3")).unwrap();
        drop(b);
        assert!(gate.open.lock().ip.is_empty() && gate.open.lock().net.is_empty());
    }

    #[test]
    fn the_server_caps_connections_in_all_and_heads_come_faster_as_it_fills() {
        let gate = Gate::with_clock(caps(), FakeRelativeClock::default());
        assert_eq!(gate.head_timeout(), HEAD_TIMEOUT);
        let open: Vec<_> = (1..=7)
            .map(|host| gate.connect(ip(&format!("10.0.{host}.1"))).unwrap())
            .collect();
        assert_eq!(gate.open(), 7);
        let refused = gate.connect(ip("10.9.9.9")).unwrap_err();
        assert_eq!(refused.reason(), "connections_server");
        assert_eq!(gate.head_timeout(), Duration::from_secs(1));
        drop(open);
        assert_eq!(gate.open(), 0);
        // Half full or less: the full time; then down in a line to a tenth.
        let full = HEAD_TIMEOUT;
        assert_eq!(head_timeout(full, 500, 1000), full);
        assert_eq!(head_timeout(full, 750, 1000), Duration::from_millis(5_500));
        assert_eq!(head_timeout(full, 2000, 1000), Duration::from_secs(1));
    }

    #[test]
    fn expensive_requests_have_a_strict_rate_of_their_own() {
        let clock = FakeRelativeClock::default();
        let gate = Gate::with_clock(caps(), clock.clone());
        gate.costly(ip("192.0.2.1")).unwrap();
        gate.costly(ip("192.0.2.1")).unwrap();
        let refused = gate.costly(ip("192.0.2.1")).unwrap_err();
        assert_eq!(refused.reason(), "rate_ip");
        assert_eq!(refused.retry_after_secs(), 1);
        gate.costly(ip("192.0.2.2")).unwrap();
        // Ordinary requests are not held up by it.
        gate.request(ip("192.0.2.1")).unwrap();
        clock.advance(Duration::from_secs(1));
        gate.costly(ip("192.0.2.1")).unwrap();
    }

    #[test]
    fn a_crowd_behind_one_address_is_paced_up_to_the_longest_wait_then_told_to_come_back() {
        let clock = FakeRelativeClock::default();
        let gate = Gate::with_clock(caps(), clock.clone());
        let nat = ip("192.0.2.1");
        for _ in 0..20 {
            gate.join(nat).unwrap();
        }
        // The 21st waits a tenth of a second (10 a second), then gets in.
        let refused = gate.join(nat).unwrap_err();
        let wait = gate.pace(refused, Duration::ZERO).unwrap();
        assert_eq!(wait, Duration::from_millis(100));
        clock.advance(wait);
        gate.join(nat).unwrap();
        // One that has already waited nearly the longest pace is told to come back instead.
        let refused = gate.join(nat).unwrap_err();
        assert_eq!(gate.pace(refused, Duration::from_millis(950)), None);
        // Joins have their own rates: ordinary requests are not spent by them.
        gate.request(nat).unwrap();
        // Connection refusals are never paced.
        let full = Refusal::Connections {
            scope: Scope::Server,
        };
        assert_eq!(gate.pace(full, Duration::ZERO), None);
    }

    #[test]
    fn quiet_addresses_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let gate = Gate::with_clock(caps(), clock.clone());
        for host in 1..=50 {
            let _ = gate.request(ip(&format!("10.0.{host}.1")));
        }
        assert_eq!(gate.remembered(), 100);
        for host in 1..=5 {
            let _ = gate.join(ip(&format!("10.0.{host}.1")));
        }
        assert_eq!(gate.remembered(), 110);
        clock.advance(Duration::from_secs(10));
        gate.forget_quiet();
        assert_eq!(gate.remembered(), 0);
    }
}
