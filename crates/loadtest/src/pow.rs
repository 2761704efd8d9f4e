//! The client's side of the proof of work a server under attack asks for a ticket
//! (docs/protocol.md): find a nonce such that SHA-256 of `challenge:nonce` starts with the
//! asked number of zero bits.

use sha2::{Digest, Sha256};

/// The first nonce (counting from 0) that does the work; servers ask for at most 30 bits.
pub fn solve(challenge: &str, bits: u8) -> u64 {
    let bits = u32::from(bits.min(32));
    let prefix = Sha256::new()
        .chain_update(challenge.as_bytes())
        .chain_update(b":");
    (0u64..)
        .find(|nonce| {
            let hash = prefix
                .clone()
                .chain_update(nonce.to_string().as_bytes())
                .finalize();
            let first = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
            first.leading_zeros() >= bits
        })
        .expect("a nonce is found long before u64 runs out")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_found_gives_a_hash_with_the_zero_bits_asked_for() {
        for bits in [0, 4, 10] {
            let nonce = solve("abc.def", bits);
            let hash = Sha256::digest(format!("abc.def:{nonce}").as_bytes());
            let zeros = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]).leading_zeros();
            assert!(zeros >= u32::from(bits), "{bits} bits: {zeros}");
            // And no smaller nonce would do.
            let earlier = (0..nonce).any(|n| {
                let h = Sha256::digest(format!("abc.def:{n}").as_bytes());
                u32::from_be_bytes([h[0], h[1], h[2], h[3]]).leading_zeros() >= u32::from(bits)
            });
            assert!(!earlier);
        }
    }
}
