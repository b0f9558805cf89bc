//! Checks for the two URL-shaped values: a remote's `base_url` and the backend's
//! `allowed_origins`. Problems are described without echoing the value, since a
//! mistyped URL may carry credentials.

use std::net::Ipv6Addr;

/// Normalizes `http(s)://host:port[/prefix]`: lower-case scheme and host, no trailing
/// slash.
pub(crate) fn base_url(value: &str) -> Result<String, &'static str> {
    let value = value.trim();
    let (scheme, rest) = split_scheme(value).ok_or(
        "must look like http://host:port or https://host:port, with an optional path prefix",
    )?;
    if scheme != "http" && scheme != "https" {
        return Err("the scheme must be http or https");
    }
    if rest.contains(['?', '#']) {
        return Err(
            "must not have a query or fragment; only an optional path prefix may follow host:port",
        );
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = authority_parts(authority)?;
    let port = port.ok_or("needs an explicit port, as in https://host:7701")?;
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the path prefix must be printable ASCII without spaces");
    }
    let path = path.trim_end_matches('/');
    Ok(format!("{scheme}://{host}:{port}{path}"))
}

/// Normalizes an allowed origin `scheme://host[:port]`: lower-case, no trailing slash.
pub(crate) fn origin(value: &str) -> Result<String, &'static str> {
    let value = value.trim();
    let (scheme, rest) = split_scheme(value).ok_or(
        "must look like scheme://host or scheme://host:port, e.g. http://localhost:5173 (no wildcards)",
    )?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err("an origin has no path, query or fragment; write scheme://host[:port]");
    }
    let (host, port) = authority_parts(rest)?;
    Ok(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// Normalizes an allowed host name: a DNS name, an IPv4 address or an IPv6 address
/// (bracketed or not), lower-case, without a port or a trailing dot.
pub(crate) fn host(value: &str) -> Result<String, &'static str> {
    let value = value.trim().trim_end_matches('.');
    if value.contains("://") || value.contains('/') {
        return Err("a host name has no scheme or path; write e.g. \"switchyard.example.com\"");
    }
    if let Ok(v6) = value.parse::<Ipv6Addr>() {
        return Ok(format!("[{v6}]"));
    }
    if value.starts_with('[') {
        let (host, port) = authority_parts(value)?;
        if port.is_some() {
            return Err("a host name has no port: every port of an allowed host is accepted");
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        return Ok(format!(
            "[{}]",
            bare.parse::<Ipv6Addr>()
                .map_err(|_| "has an invalid IPv6 address")?
        ));
    }
    if value.contains(':') {
        return Err("a host name has no port: every port of an allowed host is accepted");
    }
    if value.contains('*') {
        return Err("wildcards are not supported; list every host name clients use");
    }
    let (host, _) = authority_parts(value)?;
    Ok(host)
}

/// ("scheme", "rest") from "scheme://rest", the scheme lower-cased and checked.
fn split_scheme(value: &str) -> Option<(String, &str)> {
    let (scheme, rest) = value.split_once("://")?;
    let mut bytes = scheme.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (first_ok && rest_ok).then(|| (scheme.to_ascii_lowercase(), rest))
}

/// ("host", port) from "host[:port]" or "[v6][:port]"; host lower-cased.
fn authority_parts(authority: &str) -> Result<(String, Option<u16>), &'static str> {
    if authority.contains('@') {
        return Err(
            "must not contain user info (user:password@); tokens go in token_env or token_file",
        );
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or("has an unclosed '[' in the host")?;
        addr.parse::<Ipv6Addr>()
            .map_err(|_| "has an invalid IPv6 address in [brackets]")?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("has junk after the IPv6 address")?,
            ),
        };
        (format!("[{}]", addr.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !host_ok {
            return Err("has an invalid host; use a DNS name, an IPv4 address or [IPv6]");
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or("has an invalid port; use 1 to 65535")?,
        ),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_normalize() {
        assert_eq!(
            base_url("http://127.0.0.1:7701").unwrap(),
            "http://127.0.0.1:7701"
        );
        assert_eq!(
            base_url("HTTP://Build-1.example:443/").unwrap(),
            "http://build-1.example:443"
        );
        assert_eq!(
            base_url("http://h:1/switchyard/").unwrap(),
            "http://h:1/switchyard"
        );
        assert_eq!(base_url("http://[::1]:7701").unwrap(), "http://[::1]:7701");
        assert_eq!(
            base_url("HTTPS://Build-1.example:7701/").unwrap(),
            "https://build-1.example:7701"
        );
    }

    #[test]
    fn base_urls_reject() {
        for bad in [
            "127.0.0.1:7701",
            "https://h",
            "ftp://h:1",
            "http://h",
            "http://h:0",
            "http://h:99999",
            "http://user:pw@h:1",
            "http://h:1/?q=1",
            "http://h:1/#f",
            "http://:1",
            "http://[::1:1",
            "http://h h:1",
            "http://h:1/a b",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_normalize_and_reject() {
        let good = [
            ("Switchyard.Example.COM", "switchyard.example.com"),
            ("example.com.", "example.com"),
            ("10.0.0.5", "10.0.0.5"),
            ("::1", "[::1]"),
            ("[FD00::1]", "[fd00::1]"),
            ("[fd00:0::1]", "[fd00::1]"),
        ];
        for (value, expected) in good {
            assert_eq!(host(value).as_deref(), Ok(expected), "{value}");
        }
        for bad in [
            "",
            "example.com:7700",
            "[::1]:7700",
            "http://example.com",
            "example.com/x",
            "*.example.com",
            "a b",
            "[zz::1]",
        ] {
            assert!(host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_normalize_and_reject() {
        assert_eq!(
            origin("http://localhost:5173").unwrap(),
            "http://localhost:5173"
        );
        assert_eq!(
            origin("https://App.Example/").unwrap(),
            "https://app.example"
        );
        assert_eq!(origin("tauri://localhost").unwrap(), "tauri://localhost");
        for bad in [
            "*",
            "null",
            "localhost:5173",
            "http://h/path",
            "http://h:x",
            "http://",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }
}
