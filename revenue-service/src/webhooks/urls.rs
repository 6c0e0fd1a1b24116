//! Which webhook URLs are accepted (SPEC §11.5): `https` only, and no
//! private, loopback, link-local or otherwise internal address (a literal
//! one, or one a host name resolves to), unless
//! `WEBHOOK_ALLOW_INSECURE_URLS=true`. Checked at registration and again
//! before each attempt (a name may resolve elsewhere later).

use std::net::IpAddr;

/// The longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2_048;

/// Whether `ip` is an address a webhook must not reach: loopback, private
/// (RFC 1918, unique-local), link-local, unspecified, multicast, shared
/// (100.64/10), benchmarking (198.18/15), IETF (192.0.0/24), reserved
/// (240/4), documentation or broadcast; for IPv6 also the IPv4 address a
/// mapped, compatible, NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address
/// carries.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && c == 0)
                || a >= 240
                || a == 0
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                let [h1, h2] = hi.to_be_bytes();
                let [l1, l2] = lo.to_be_bytes();
                std::net::Ipv4Addr::new(h1, h2, l1, l2)
            };
            let carried = if let Some(v4) = v6.to_ipv4_mapped() {
                Some(v4)
            } else if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                // IPv4-compatible ::a.b.c.d.
                Some(embedded(s[6], s[7]))
            } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                Some(embedded(s[6], s[7]))
            } else if s[0] == 0x2002 {
                Some(embedded(s[1], s[2]))
            } else {
                None
            };
            if let Some(v4) = carried {
                return is_internal(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Checks a webhook URL's shape (not where it resolves: see [`resolve`]).
///
/// # Errors
/// Why it is refused (for the `url` field).
pub fn check(text: &str, allow_insecure: bool) -> Result<reqwest::Url, String> {
    if text.len() > MAX_URL_BYTES {
        return Err(format!("must be at most {MAX_URL_BYTES} bytes"));
    }
    let url = reqwest::Url::parse(text).map_err(|e| format!("is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => return Err("must be https".to_owned()),
        _ => return Err("must be an https URL".to_owned()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".to_owned());
    }
    let Some(host) = url.host_str() else {
        return Err("must name a host".to_owned());
    };
    if !allow_insecure {
        let internal = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => is_internal(ip),
            Err(_) => {
                let name = host.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
        };
        if internal {
            return Err("must not point to a private or loopback address".to_owned());
        }
    }
    Ok(url)
}

/// Resolves `url`'s host and checks none of its addresses is internal
/// (unless `allow_insecure`); the addresses to connect to, so that the
/// request goes where the check looked (no second lookup to rebind).
/// Empty when `allow_insecure`: the client resolves as it likes.
///
/// # Errors
/// The name does not resolve, or resolves to an internal address.
pub async fn resolve(
    url: &reqwest::Url,
    allow_insecure: bool,
) -> Result<Vec<std::net::SocketAddr>, String> {
    if allow_insecure {
        return Ok(Vec::new());
    }
    let host = url.host_str().ok_or("must name a host")?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<_> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("does not resolve: {e}"))?
        .collect();
    if addresses.is_empty() {
        return Err("does not resolve".to_owned());
    }
    if addresses.iter().any(|a| is_internal(a.ip())) {
        return Err("resolves to a private or loopback address".to_owned());
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_urls_are_accepted_unless_insecure_ones_are_allowed() {
        assert!(check("https://hooks.example.com/settle", false).is_ok());
        assert!(check("https://203.0.114.7/settle", false).is_ok());
        assert!(check("https://[2606:4700::1111]/settle", false).is_ok());
        for refused in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://192.168.0.1/",
            "https://172.16.5.4/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:c0a8:0101::1]/",
            "https://[::10.0.0.1]/",
            "https://198.18.0.5/",
            "https://240.0.0.1/",
            "https://localhost/",
            "https://api.localhost./",
            "https://user:pw@hooks.example.com/",
            "not a url",
        ] {
            assert!(check(refused, false).is_err(), "{refused}");
        }
        assert!(check("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check("ftp://127.0.0.1/", true).is_err());
    }
}
