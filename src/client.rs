//! Where a request comes from. Behind a proxy (the ingress controller) every device shares the
//! proxy's address, so its `X-Forwarded-For` says who the client is; but anyone can write that
//! header, so it is believed only from `trusted_proxies`.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest address
/// in `X-Forwarded-For` that is not one (each proxy appends the address it heard from, so the
/// list is read from its end; what a client wrote at its start is not believed).
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return Some(ip),
            // Not an address: the hops after it are the only ones to believe.
            Err(_) => break,
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let from_proxy = ip("10.1.2.3");
        // No trusted proxy: the peer, whatever the header says.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &headers(&["198.51.100.1"]), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(from_proxy, &headers(&["198.51.100.1"]), &[]),
            from_proxy
        );
        // From the proxy: the nearest untrusted hop, read from the end.
        assert_eq!(
            client_ip(from_proxy, &headers(&["198.51.100.1"]), &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_ip(
                from_proxy,
                &headers(&["6.6.6.6, 198.51.100.1, 10.9.9.9"]),
                &trusted
            ),
            ip("198.51.100.1"),
            "a client's own claim at the start and a second proxy at the end"
        );
        assert_eq!(
            client_ip(from_proxy, &headers(&["6.6.6.6", "198.51.100.1"]), &trusted),
            ip("198.51.100.1"),
            "several headers are one list"
        );
        assert_eq!(
            client_ip(from_proxy, &headers(&["junk, 10.9.9.9"]), &trusted),
            ip("10.9.9.9")
        );
        assert_eq!(client_ip(from_proxy, &headers(&[]), &trusted), from_proxy);
        assert_eq!(client_ip(None, &headers(&[]), &trusted), None);
    }
}
