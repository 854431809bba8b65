//! Who the client is: the peer, unless the peer is a trusted proxy; then the right-most
//! address in the header the proxies write (`server.client_ip_header`: `X-Forwarded-For`
//! or `Forwarded`) that is not itself a trusted proxy.
//!
//! Everything left of that address was written by the client and is ignored, so a client
//! cannot pick its own identity by sending the header itself. Only the configured header is
//! read, and each element is parsed on its own: garbage a client prepends (even bytes that
//! are not text) cannot spoil the address the proxy appended.

use std::net::IpAddr;

use hyper::header::{HeaderMap, FORWARDED};
use ipnet::IpNet;

use crate::config::ClientIpHeader;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ClientIpHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = match header {
        ClientIpHeader::XForwardedFor => hops(headers, X_FORWARDED_FOR, parse_plain),
        ClientIpHeader::Forwarded => hops(headers, FORWARDED.as_str(), parse_forwarded),
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

/// A loopback or private address (RFC 1918, IPv6 unique local): where a reverse proxy
/// usually connects from.
pub fn is_local(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Every comma-separated element of every instance of the header, in order; an element
/// that is not an address (or not text) is `None`.
fn hops(headers: &HeaderMap, name: &str, parse: fn(&str) -> Option<IpAddr>) -> Vec<Option<IpAddr>> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|element| {
            let text = std::str::from_utf8(element).ok()?;
            parse(text.trim()).map(|ip| ip.to_canonical())
        })
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

    const XFF: ClientIpHeader = ClientIpHeader::XForwardedFor;

    #[test]
    fn untrusted_peers_cannot_claim_another_address() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &[], XFF),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn trusted_proxies_name_the_rightmost_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &trusted, XFF),
            ip("203.0.113.9")
        );
        let split = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.7"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &split, &trusted, XFF),
            ip("203.0.113.7")
        );
        let garbage = headers(&[("x-forwarded-for", "1.1.1.1, nonsense")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &garbage, &trusted, XFF),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers(&[]), &trusted, XFF),
            ip("10.0.0.1")
        );
        // Bytes that are not text, prepended by the client, do not hide what the proxy appended.
        let mut bytes = HeaderMap::new();
        bytes.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\x80junk, 203.0.113.60").unwrap(),
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &bytes, &trusted, XFF),
            ip("203.0.113.60")
        );
        // Only the configured header is read.
        let both = headers(&[
            ("x-forwarded-for", "203.0.113.1"),
            ("forwarded", "for=192.0.2.60"),
        ]);
        let fwd = ClientIpHeader::Forwarded;
        assert_eq!(
            client_ip(ip("10.0.0.1"), &both, &trusted, fwd),
            ip("192.0.2.60")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &both, &trusted, XFF),
            ip("203.0.113.1")
        );
    }

    #[test]
    fn forwarded_header() {
        let trusted: Vec<IpNet> = vec!["10.0.0.1/32".parse().unwrap()];
        let h = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::17]:4711\";proto=https",
        )]);
        let fwd = ClientIpHeader::Forwarded;
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &trusted, fwd),
            ip("2001:db8::17")
        );
        let h = headers(&[("forwarded", "proto=https;for=192.0.2.60")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &trusted, fwd),
            ip("192.0.2.60")
        );
    }
}
