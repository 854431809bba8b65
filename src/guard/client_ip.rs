//! Who the client is: the peer, unless the peer is a trusted proxy; then the right-most
//! address in `X-Forwarded-For` (or `Forwarded`) that is not itself a trusted proxy.
//!
//! Everything left of that address was written by the client and is ignored, so a client
//! cannot pick its own identity by sending the header itself.

use std::net::IpAddr;

use hyper::header::{HeaderMap, FORWARDED};
use ipnet::IpNet;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = if headers.contains_key(X_FORWARDED_FOR) {
        hops(headers, X_FORWARDED_FOR, parse_plain)
    } else {
        hops(headers, FORWARDED.as_str(), parse_forwarded)
    };
    // Right to left: the first hop no trusted proxy vouches for is the client.
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(&ip) => continue,
            Some(ip) => return ip,
            // An unreadable hop: nothing to its left can be believed.
            None => return peer,
        }
    }
    peer
}

/// Every comma-separated element of every instance of the header, in order.
fn hops(headers: &HeaderMap, name: &str, parse: fn(&str) -> Option<IpAddr>) -> Vec<Option<IpAddr>> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
        .map(|element| parse(element.trim()).map(|ip| ip.to_canonical()))
        .collect()
}

fn parse_plain(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// RFC 7239: `for=192.0.2.60;proto=http`, `for="[2001:db8::17]:4711"`.
fn parse_forwarded(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("for")
            .then_some(v.trim().trim_matches('"'))
    })?;
    let bare = value
        .strip_prefix('[')
        .map_or(value, |v| v.split(']').next().unwrap_or(v));
    parse_plain(bare)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_claim_another_address() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
    }

    #[test]
    fn trusted_proxies_name_the_rightmost_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.9"));
        let split = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.7"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &split, &trusted),
            ip("203.0.113.7")
        );
        let garbage = headers(&[("x-forwarded-for", "1.1.1.1, nonsense")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &garbage, &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers(&[]), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn forwarded_header() {
        let trusted: Vec<IpNet> = vec!["10.0.0.1/32".parse().unwrap()];
        let h = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::17]:4711\";proto=https",
        )]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("2001:db8::17"));
        let h = headers(&[("forwarded", "proto=https;for=192.0.2.60")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("192.0.2.60"));
    }
}
