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
/// (100.64/10), documentation or broadcast.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
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
/// (unless `allow_insecure`).
///
/// # Errors
/// The name does not resolve, or resolves to an internal address.
pub async fn resolve(url: &reqwest::Url, allow_insecure: bool) -> Result<(), String> {
    if allow_insecure {
        return Ok(());
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_urls_are_accepted_unless_insecure_ones_are_allowed() {
        assert!(check("https://hooks.example.com/settle", false).is_ok());
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
