//! Proof of work for new tickets in under-attack mode: a server-signed challenge and a
//! hashcash-style check over SHA-256 (no I/O, no clock: `now` is an argument).
//!
//! The server hands out a challenge token; the client finds a `nonce` such that
//! `SHA-256(token ":" nonce)` (the nonce in decimal) starts with `bits` zero bits, and sends
//! both with its ticket request. Checking costs one hash and one HMAC; finding costs about
//! `2^bits` hashes. A solution buys one ticket: its challenge is spent.

use crate::ticket::TicketKey;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// What a challenge binds the work to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Random, so that no two challenges are alike.
    pub seed: String,
    /// The Space a ticket will be asked for.
    pub space: String,
    /// Leading zero bits the hash must have.
    pub bits: u8,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

/// Why a solution was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkError {
    /// Not a challenge of this server, or altered.
    #[error("invalid challenge")]
    Invalid,
    /// The challenge has expired: ask for a new one.
    #[error("expired challenge")]
    Expired,
    /// The challenge is for another Space.
    #[error("challenge is for another space")]
    WrongSpace,
    /// The hash does not have enough leading zero bits.
    #[error("not enough work")]
    NotEnough,
    /// This challenge was already used for a ticket.
    #[error("challenge already used")]
    Spent,
    /// Too many live challenges are spent to remember one more: try again shortly.
    #[error("too many challenges in flight")]
    Busy,
}

/// The MAC domain of challenges, apart from tickets' (whose payloads start with `{`).
const DOMAIN: &[u8] = b"pow\0";

/// Issues a challenge for a ticket to `space` with `bits` of difficulty, valid `ttl` seconds.
pub fn issue(key: &TicketKey, space: &str, bits: u8, now: u64, ttl: u64) -> String {
    let seed: [u8; 16] = rand::random();
    let challenge = Challenge {
        seed: seed.iter().map(|b| format!("{b:02x}")).collect(),
        space: space.to_owned(),
        bits,
        exp: now + ttl,
    };
    key.seal(DOMAIN, &challenge)
}

/// Checks a solution: the challenge is ours, alive, for `space`, and `nonce` does the work.
/// Does not spend it (see [`Spent`]).
pub fn check(
    key: &TicketKey,
    token: &str,
    nonce: u64,
    space: &str,
    now: u64,
) -> Result<Challenge, WorkError> {
    let challenge: Challenge = key.open(DOMAIN, token).ok_or(WorkError::Invalid)?;
    if challenge.exp <= now {
        return Err(WorkError::Expired);
    }
    if challenge.space != space {
        return Err(WorkError::WrongSpace);
    }
    if !meets(token, nonce, challenge.bits) {
        return Err(WorkError::NotEnough);
    }
    Ok(challenge)
}

/// Whether `SHA-256(token ":" nonce)` starts with at least `bits` zero bits.
pub fn meets(token: &str, nonce: u64, bits: u8) -> bool {
    let hash = Sha256::new()
        .chain_update(token.as_bytes())
        .chain_update(b":")
        .chain_update(nonce.to_string().as_bytes())
        .finalize();
    leading_zero_bits(&hash) >= u32::from(bits)
}

/// Zero bits at the start of `bytes`.
pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut n = 0;
    for b in bytes {
        if *b != 0 {
            return n + b.leading_zeros();
        }
        n += 8;
    }
    n
}

/// Finds a nonce for `token` (what a client does), trying at most `tries` of them.
pub fn solve(token: &str, bits: u8, tries: u64) -> Option<u64> {
    (0..tries).find(|&nonce| meets(token, nonce, bits))
}

/// Difficulty for a load `pressure` from 0 (none) to 1 (the most the server will ask):
/// `min` bits at no pressure, one more bit (twice the work) per step, `max` at full.
pub fn bits_for(pressure: f64, min: u8, max: u8) -> u8 {
    let span = f64::from(max.saturating_sub(min));
    min + (pressure.clamp(0.0, 1.0) * span).round() as u8
}

/// A client's solution, sent with its ticket request (`?challenge=TOKEN&nonce=N`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Work {
    /// The challenge token as the server issued it.
    pub challenge: String,
    /// The nonce found.
    pub nonce: u64,
}

/// Asked of a client that sent no solution, or one that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Required {
    /// A fresh challenge to solve.
    pub challenge: String,
    /// Its difficulty.
    pub bits: u8,
    /// What was wrong with the solution sent, if one was.
    pub why: Option<WorkError>,
}

/// The server's side of proof of work: difficulty by load, challenges issued and spent.
#[derive(Debug)]
pub struct Proofs {
    /// Difficulty with no load (default 12 bits: about 4 000 hashes).
    pub min_bits: u8,
    /// Difficulty at the most load (default 16 bits: about 65 000 hashes).
    pub max_bits: u8,
    /// Seconds a challenge stays valid (default 60).
    pub ttl: u64,
    spent: Mutex<Spent>,
}

impl Default for Proofs {
    fn default() -> Self {
        Self::new(12, 16)
    }
}

impl Proofs {
    /// Difficulty from `min_bits` to `max_bits` as pressure goes from 0 to 2.
    pub fn new(min_bits: u8, max_bits: u8) -> Self {
        Self {
            min_bits,
            max_bits: max_bits.max(min_bits),
            ttl: 60,
            spent: Mutex::new(Spent::new(1 << 20)),
        }
    }

    /// Lets a ticket for `space` through if `work` solves a live challenge of ours not used
    /// before; otherwise says what to solve, harder the higher the `pressure`.
    pub fn demand(
        &self,
        key: &TicketKey,
        space: &str,
        pressure: f64,
        work: Option<&Work>,
        now: u64,
    ) -> Result<(), Required> {
        let why = match work {
            None => None,
            Some(w) => match check(key, &w.challenge, w.nonce, space, now) {
                Ok(challenge) => match self.spent.lock().spend(&challenge, now) {
                    Ok(()) => return Ok(()),
                    Err(e) => Some(e),
                },
                Err(e) => Some(e),
            },
        };
        let bits = bits_for(pressure / 2.0, self.min_bits, self.max_bits);
        Err(Required {
            challenge: issue(key, space, bits, now, self.ttl),
            bits,
            why,
        })
    }
}

/// Challenges already used, remembered until they expire, so one solution buys one ticket.
/// Bounded: when full of live challenges it refuses (the client retries) rather than grow.
#[derive(Debug)]
pub struct Spent {
    seen: HashMap<String, u64>,
    cap: usize,
}

impl Spent {
    /// Remembers at most `cap` live challenges.
    pub fn new(cap: usize) -> Self {
        Self {
            seen: HashMap::new(),
            cap,
        }
    }

    /// Marks `challenge` used at `now`; fails if it already was.
    pub fn spend(&mut self, challenge: &Challenge, now: u64) -> Result<(), WorkError> {
        if self.seen.contains_key(&challenge.seed) {
            return Err(WorkError::Spent);
        }
        if self.seen.len() >= self.cap {
            self.seen.retain(|_, exp| *exp > now);
            if self.seen.len() >= self.cap {
                return Err(WorkError::Busy);
            }
        }
        self.seen.insert(challenge.seed.clone(), challenge.exp);
        Ok(())
    }

    /// Challenges remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_asks_for_work_checks_it_and_takes_it_once() {
        let key = TicketKey::random();
        let proofs = Proofs::new(6, 10);
        let asked = proofs.demand(&key, "s", 0.0, None, 1_000).unwrap_err();
        assert_eq!((asked.bits, asked.why), (6, None));
        let harder = proofs.demand(&key, "s", 2.0, None, 1_000).unwrap_err();
        assert_eq!(harder.bits, 10, "the most work at the most load");
        let nonce = solve(&asked.challenge, asked.bits, 1 << 20).unwrap();
        let work = Work {
            challenge: asked.challenge,
            nonce,
        };
        assert_eq!(proofs.demand(&key, "s", 0.0, Some(&work), 1_001), Ok(()));
        let again = proofs
            .demand(&key, "s", 0.0, Some(&work), 1_002)
            .unwrap_err();
        assert_eq!(again.why, Some(WorkError::Spent));
        let lazy = Work {
            nonce: (0..).find(|&n| !meets(&harder.challenge, n, 10)).unwrap(),
            challenge: harder.challenge,
        };
        let refused = proofs
            .demand(&key, "s", 0.0, Some(&lazy), 1_002)
            .unwrap_err();
        assert!(refused.why.is_some());
    }

    #[test]
    fn a_solved_challenge_checks_out_and_buys_one_ticket() {
        let key = TicketKey::random();
        let token = issue(&key, "s", 8, 1_000, 60);
        let nonce = solve(&token, 8, 1 << 20).expect("8 bits take about 256 tries");
        let challenge = check(&key, &token, nonce, "s", 1_010).unwrap();
        assert_eq!(challenge.bits, 8);
        let mut spent = Spent::new(10);
        assert_eq!(spent.spend(&challenge, 1_010), Ok(()));
        assert_eq!(spent.spend(&challenge, 1_011), Err(WorkError::Spent));
    }

    #[test]
    fn too_little_work_an_old_or_foreign_challenge_is_refused() {
        let key = TicketKey::random();
        let token = issue(&key, "s", 12, 1_000, 60);
        let nonce = solve(&token, 12, 1 << 24).unwrap();
        let lazy = (0..).find(|&n| !meets(&token, n, 12)).unwrap();
        assert_eq!(
            check(&key, &token, lazy, "s", 1_000),
            Err(WorkError::NotEnough)
        );
        assert_eq!(
            check(&key, &token, nonce, "s", 1_060),
            Err(WorkError::Expired)
        );
        assert_eq!(
            check(&key, &token, nonce, "t", 1_000),
            Err(WorkError::WrongSpace)
        );
        let other = TicketKey::random();
        assert_eq!(
            check(&other, &token, nonce, "s", 1_000),
            Err(WorkError::Invalid)
        );
        // A ticket is not a challenge, though both are signed with the same key.
        let ticket = key.sign(&crate::ticket::Ticket {
            space: "s".into(),
            user: 1,
            role: stentor_space::Role::Listener,
            exp: 2_000,
            unseen: false,
        });
        assert_eq!(check(&key, &ticket, 0, "s", 1_000), Err(WorkError::Invalid));
    }

    #[test]
    fn lowering_the_difficulty_in_the_token_breaks_its_signature() {
        let key = TicketKey::random();
        let token = issue(&key, "s", 20, 1_000, 60);
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let (payload, sig) = token.split_once('.').unwrap();
        let json = String::from_utf8(B64.decode(payload).unwrap()).unwrap();
        assert!(json.contains("\"bits\":20"), "{json}");
        let easy = B64.encode(json.replace("\"bits\":20", "\"bits\":1"));
        assert_eq!(
            check(&key, &format!("{easy}.{sig}"), 0, "s", 1_000),
            Err(WorkError::Invalid)
        );
    }

    #[test]
    fn leading_zero_bits_are_counted_across_bytes() {
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x00, 0x10]), 11);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn difficulty_grows_with_pressure() {
        assert_eq!(bits_for(0.0, 10, 20), 10);
        assert_eq!(bits_for(0.5, 10, 20), 15);
        assert_eq!(bits_for(3.0, 10, 20), 20);
        assert_eq!(bits_for(-1.0, 10, 20), 10);
    }

    #[test]
    fn the_spent_set_forgets_expired_challenges_and_stays_bounded() {
        let challenge = |seed: &str, exp| Challenge {
            seed: seed.into(),
            space: "s".into(),
            bits: 1,
            exp,
        };
        let mut spent = Spent::new(2);
        spent.spend(&challenge("a", 10), 0).unwrap();
        spent.spend(&challenge("b", 100), 0).unwrap();
        assert_eq!(spent.spend(&challenge("c", 100), 5), Err(WorkError::Busy));
        // Once "a" has expired, there is room again.
        assert_eq!(spent.spend(&challenge("c", 100), 10), Ok(()));
        assert_eq!(spent.len(), 2);
    }
}
