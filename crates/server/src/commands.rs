//! The one command path of a Space's WebSocket, for listeners and the stage alike: how a
//! client's message is read, how often a connection may send one, and what it earns when it
//! is wrong. Commands themselves are carried out in order by the Space's command task
//! ([`LiveSpace::submit`]).

use crate::origin::live::{IngestError, LiveSpace, WS_PUBLISH};
use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::time::Instant;
use stentor_hub::wsframe::close;
use stentor_space::{Command, UserId};

/// A close code and reason for a client that broke the rules.
pub type Close = (u16, String);

/// A connection's allowance of commands (and pings), by GCRA: a burst, then a steady rate.
pub struct Rate<C: Clock + Clone = DefaultClock> {
    limiter: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
}

impl Rate<DefaultClock> {
    /// An allowance of `quota`, on the system's clock.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock(quota, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> Rate<C> {
    /// An allowance of `quota` on `clock` (tests drive a fake one by hand).
    pub fn with_clock(quota: Quota, clock: &C) -> Self {
        Self {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
        }
    }

    /// Takes one message from the allowance, or the close a flooding client earns.
    pub fn take(&mut self) -> Result<(), Close> {
        self.limiter.check().map_err(|_| {
            (
                close::POLICY,
                "too many messages: slow down (see docs/protocol.md)".to_owned(),
            )
        })
    }
}

/// A command from a client's text message, or the close a malformed one earns.
pub fn parse(text: &[u8]) -> Result<Command, Close> {
    serde_json::from_slice(text).map_err(|e| (close::INVALID, format!("unknown command: {e}")))
}

/// A binary message from a client: a `0x01` audio frame published as `user`, or the close
/// code and reason it earns.
pub fn publish(space: &LiveSpace, user: UserId, data: Bytes) -> Result<(), Close> {
    if data.len() < 6 || data[0] != WS_PUBLISH {
        return Err((
            close::UNSUPPORTED,
            "binary messages must be 0x01 audio frames".into(),
        ));
    }
    let seq = u32::from_be_bytes(data[1..5].try_into().expect("4 bytes"));
    space
        .ingest(user, seq, data.slice(5..), Instant::now())
        .map_err(|e| match e {
            IngestError::NotASpeaker => (close::POLICY, e.to_string()),
            _ => (close::INVALID, e.to_string()),
        })
}

/// A connection of `user` has gone: their raised hand, if any, comes down with it, so that
/// the moderators' list holds people who are there.
pub fn lower_hand_of_the_gone(space: &LiveSpace, user: UserId) {
    if space.with_domain(|d| d.has_hand(user)) {
        let _ = space.submit(
            user,
            Command::CancelRequest,
            false,
            crate::origin::live::Reply::Drop,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::num::NonZeroU32;
    use std::time::Duration;

    #[test]
    fn a_connection_gets_its_burst_then_its_rate_and_a_flood_is_closed_with_1008() {
        let clock = FakeRelativeClock::default();
        let quota = Quota::per_second(NonZeroU32::new(10).unwrap())
            .allow_burst(NonZeroU32::new(3).unwrap());
        let mut rate = Rate::with_clock(quota, &clock);
        for _ in 0..3 {
            rate.take().unwrap();
        }
        let (code, reason) = rate.take().unwrap_err();
        assert_eq!(code, 1008);
        assert!(reason.contains("too many"), "{reason}");
        clock.advance(Duration::from_millis(100));
        rate.take().unwrap();
        assert!(rate.take().is_err());
    }

    #[test]
    fn malformed_commands_are_invalid_data() {
        assert_eq!(
            parse(br#"{"cmd":"request_to_speak"}"#),
            Ok(Command::RequestToSpeak)
        );
        assert_eq!(parse(b"{\"cmd\":\"fly\"}").unwrap_err().0, 1007);
        assert_eq!(parse(b"\xff").unwrap_err().0, 1007);
    }
}
