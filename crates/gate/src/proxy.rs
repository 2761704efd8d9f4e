//! The client's address behind reverse proxies the operator trusts: from `X-Forwarded-For`
//! or `Forwarded` (RFC 7239) when, and only when, the connection comes from one of them.

use ipnet::IpNet;
use std::net::IpAddr;

/// The address a request comes from: `peer` itself unless it is a trusted proxy; behind
/// trusted proxies, the nearest address in the forwarding chain that is not one of them
/// (read from the right, since only the entries the trusted proxies appended can be
/// believed). A chain that names no such address, or a garbled one, leaves `peer`.
pub fn client_ip<'a>(
    peer: IpAddr,
    trusted: &[IpNet],
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    for (name, value) in headers {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            chain.extend(value.split(',').filter_map(|a| parse_addr(a.trim())));
        } else if name.eq_ignore_ascii_case("forwarded") {
            for element in value.split(',') {
                for pair in element.split(';') {
                    if let Some((k, v)) = pair.trim().split_once('=')
                        && k.trim().eq_ignore_ascii_case("for")
                        && let Some(ip) = parse_addr(v.trim().trim_matches('"'))
                    {
                        chain.push(ip);
                    }
                }
            }
        }
    }
    chain
        .into_iter()
        .rev()
        .map(|ip| ip.to_canonical())
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`,
/// `2001:db8::1`.
fn parse_addr(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sock) = s.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    s.strip_prefix('[')?.split_once(']')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn forwarding_headers_count_only_from_a_trusted_proxy() {
        let xff = [("X-Forwarded-For", &b"203.0.113.7"[..])];
        // Straight from a client: the header is the client's to forge, and is ignored.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &nets(&["10.0.0.0/8"]), xff),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("10.1.2.3"), &[], xff), ip("10.1.2.3"));
        // Through the proxy: the client it names.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &nets(&["10.0.0.0/8"]), xff),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn the_chain_is_read_from_the_right_past_trusted_proxies_only() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        // A client that forged a first entry: the proxies appended the real one after it.
        let forged = [("x-forwarded-for", &b"1.2.3.4, 203.0.113.9, 10.0.0.5"[..])];
        assert_eq!(
            client_ip(ip("10.0.0.1"), &trusted, forged),
            ip("203.0.113.9")
        );
        let rfc = [(
            "Forwarded",
            &br#"for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711""#[..],
        )];
        assert_eq!(
            client_ip(ip("10.0.0.1"), &trusted, rfc),
            ip("2001:db8:cafe::17")
        );
        // Only proxies in the chain, or garbage: the peer itself.
        let all_proxies = [("X-Forwarded-For", &b"10.0.0.7, 10.0.0.8"[..])];
        assert_eq!(
            client_ip(ip("10.0.0.1"), &trusted, all_proxies),
            ip("10.0.0.1")
        );
        let garbage = [("X-Forwarded-For", &b"not an address"[..])];
        assert_eq!(client_ip(ip("10.0.0.1"), &trusted, garbage), ip("10.0.0.1"));
        // IPv4 written as IPv6 is IPv4.
        let mapped = [("X-Forwarded-For", &b"::ffff:203.0.113.4"[..])];
        assert_eq!(
            client_ip(ip("10.0.0.1"), &trusted, mapped),
            ip("203.0.113.4")
        );
    }
}
