//! Join tickets: short-lived signed tokens carrying Space, user, role and expiry, verified
//! with a key in memory and no database read.
//!
//! Format: `base64url(json payload) "." base64url(HMAC-SHA256(key, payload))`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use stentor_space::{Role, UserId};

/// What a ticket grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The Space it opens.
    pub space: String,
    /// The holder.
    pub user: UserId,
    /// The holder's role when it was issued.
    pub role: Role,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// A platform moderator listening in: not in the count of listeners.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unseen: bool,
}

/// Why a ticket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// Not a ticket, or its signature does not match.
    #[error("invalid ticket")]
    Invalid,
    /// The ticket has expired.
    #[error("expired ticket")]
    Expired,
    /// The ticket is for another Space.
    #[error("ticket is for another space")]
    WrongSpace,
    /// Its holder signed out after it was issued.
    #[error("the ticket was revoked: sign in again")]
    Revoked,
}

/// Tickets of users who signed out, refused until they would have expired anyway: a ticket is
/// checked without a database, so signing out must reach the tickets already handed out.
///
/// Drive it so: [`Revocations::revoke`] at sign-out, [`Revocations::check`] with every
/// ticket verified, [`Revocations::forget_expired`] now and then.
#[derive(Debug, Default)]
pub struct Revocations {
    /// User → when they signed out (Unix seconds).
    since: std::collections::HashMap<UserId, u64>,
}

impl Revocations {
    /// Every ticket of `user` issued before `now` is refused from now on.
    pub fn revoke(&mut self, user: UserId, now: u64) {
        self.since.insert(user, now);
    }

    /// Whether `ticket` (valid for `ttl` seconds from its issue) still stands.
    pub fn check(&self, ticket: &Ticket, ttl: u64) -> Result<(), TicketError> {
        let issued = ticket.exp.saturating_sub(ttl);
        match self.since.get(&ticket.user) {
            // Seconds are the grain: a ticket issued in the second of the sign-out stands, so
            // that signing in again at once works.
            Some(&out) if issued < out => Err(TicketError::Revoked),
            _ => Ok(()),
        }
    }

    /// Forgets sign-outs older than any ticket still valid at `now`.
    pub fn forget_expired(&mut self, now: u64, ttl: u64) {
        self.since.retain(|_, out| out.saturating_add(ttl) >= now);
    }

    /// Users remembered.
    pub fn len(&self) -> usize {
        self.since.len()
    }

    /// Whether nobody is remembered.
    pub fn is_empty(&self) -> bool {
        self.since.is_empty()
    }
}

/// Signs and verifies tickets with one secret key.
#[derive(Clone)]
pub struct TicketKey {
    key: [u8; 32],
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(..)")
    }
}

impl TicketKey {
    /// A key from 32 secret bytes.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// A fresh random key.
    pub fn random() -> Self {
        Self::new(rand::random())
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// Signs a ticket.
    pub fn sign(&self, ticket: &Ticket) -> String {
        self.seal(b"", ticket)
    }

    /// Signs any payload in the same format, its MAC taken over `domain` then the JSON (so
    /// that one kind of token cannot pass for another).
    pub fn seal<T: Serialize>(&self, domain: &[u8], value: &T) -> String {
        let payload = serde_json::to_vec(value).expect("a token payload serializes");
        let mut mac = self.mac();
        mac.update(domain);
        mac.update(&payload);
        let sig = mac.finalize().into_bytes();
        format!("{}.{}", B64.encode(&payload), B64.encode(sig))
    }

    /// The payload of a token [`TicketKey::seal`]ed with `domain`, if its signature holds.
    pub fn open<T: serde::de::DeserializeOwned>(&self, domain: &[u8], token: &str) -> Option<T> {
        let (payload, sig) = token.split_once('.')?;
        let payload = B64.decode(payload).ok()?;
        let sig = B64.decode(sig).ok()?;
        let mut mac = self.mac();
        mac.update(domain);
        mac.update(&payload);
        mac.verify_slice(&sig).ok()?;
        serde_json::from_slice(&payload).ok()
    }

    /// Verifies a ticket for `space` at `now` (Unix seconds).
    pub fn verify(&self, token: &str, space: &str, now: u64) -> Result<Ticket, TicketError> {
        let ticket: Ticket = self.open(b"", token).ok_or(TicketError::Invalid)?;
        if ticket.exp <= now {
            return Err(TicketError::Expired);
        }
        if ticket.space != space {
            return Err(TicketError::WrongSpace);
        }
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_out_revokes_the_tickets_issued_before_it_until_they_expire() {
        let ticket = |user, exp| Ticket {
            space: "s".into(),
            user,
            role: Role::Speaker,
            exp,
            unseen: false,
        };
        let mut r = Revocations::default();
        // Issued at 1 000, valid 300 s.
        let old = ticket(7, 1_300);
        r.check(&old, 300).unwrap();
        r.revoke(7, 1_100);
        assert_eq!(r.check(&old, 300), Err(TicketError::Revoked));
        // Someone else's, and one issued after signing in again, stand.
        r.check(&ticket(8, 1_300), 300).unwrap();
        r.check(&ticket(7, 1_500), 300).unwrap();
        r.forget_expired(1_300, 300);
        assert_eq!(r.len(), 1, "still within a ticket's life");
        r.forget_expired(1_401, 300);
        assert!(r.is_empty());
    }

    fn ticket() -> Ticket {
        Ticket {
            space: "s".into(),
            user: 7,
            role: Role::Speaker,
            exp: 100,
            unseen: false,
        }
    }

    #[test]
    fn a_signed_ticket_verifies_until_it_expires() {
        let key = TicketKey::random();
        let token = key.sign(&ticket());
        assert_eq!(key.verify(&token, "s", 99), Ok(ticket()));
        assert_eq!(key.verify(&token, "s", 100), Err(TicketError::Expired));
        assert_eq!(
            key.verify(&token, "other", 99),
            Err(TicketError::WrongSpace)
        );
    }

    #[test]
    fn forged_tickets_are_invalid() {
        let key = TicketKey::random();
        let token = key.sign(&ticket());
        let other = TicketKey::random().sign(&ticket());
        assert_eq!(key.verify(&other, "s", 1), Err(TicketError::Invalid));
        // Raise the role in the payload but keep the signature.
        let (_, sig) = token.split_once('.').unwrap();
        let mut forged = ticket();
        forged.role = Role::Host;
        let payload = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            key.verify(&format!("{payload}.{sig}"), "s", 1),
            Err(TicketError::Invalid)
        );
        for junk in ["", ".", "abc", "a.b.c", "!!!.???"] {
            assert_eq!(key.verify(junk, "s", 1), Err(TicketError::Invalid));
        }
    }
}
