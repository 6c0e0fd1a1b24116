//! The client IP (SPEC §4): the socket peer, or the first untrusted address
//! of `X-Forwarded-For` (read from the right) when the peer is a configured
//! trusted proxy. The header is never trusted otherwise.

use std::net::IpAddr;

/// Resolves the client address from the peer, the trusted proxies and the
/// `X-Forwarded-For` header values (in order of appearance).
pub fn resolve(peer: IpAddr, trusted: &[IpAddr], forwarded_for: &[&str]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .or_else(|| hops.first())
        .copied()
        .unwrap_or(peer)
}

/// The client IP of an actix request, with the peer defaulting to
/// 0.0.0.0 when unknown (only in in-process tests).
pub fn of_request(req: &actix_web::HttpRequest, trusted: &[IpAddr]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let headers: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    resolve(peer, trusted, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([255, 255, 255, 255]))
    }

    #[test]
    fn untrusted_peer_header_is_ignored() {
        assert_eq!(
            resolve(ip("203.0.113.9"), &[], &["1.2.3.4"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxy_yields_first_untrusted_from_the_right() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let got = resolve(
            ip("10.0.0.1"),
            &trusted,
            &["6.6.6.6, 198.51.100.7", "10.0.0.2"],
        );
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn trusted_proxy_without_header_is_the_client() {
        assert_eq!(
            resolve(ip("10.0.0.1"), &[ip("10.0.0.1")], &[]),
            ip("10.0.0.1")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), &[ip("10.0.0.1")], &["garbage"]),
            ip("10.0.0.1")
        );
    }
}
