//! [`BackendUrl`]: where the backend is, parsed once.
//!
//! The URL is the user's own (a flag or `SWITCHYARD_URL`), so it may be shown back to
//! them; it may not carry credentials, which belong in the token, so showing it never
//! shows a secret.

use std::fmt;

use http::Uri;
use http::uri::{Authority, Scheme};

use crate::error::ClientError;

/// The backend a client talks to when nothing else is said.
pub const DEFAULT_BACKEND_URL: &str = "http://127.0.0.1:7700";

/// A backend's base URL: `http(s)://host[:port][/prefix]`. A URL without a scheme
/// is taken as `http://`. `Display` shows it as parsed (no credentials can be in it).
#[derive(Clone, PartialEq, Eq)]
pub struct BackendUrl {
    /// `https://`: the client speaks TLS (and WSS) to the backend.
    pub(crate) https: bool,
    /// The host to resolve, without IPv6 brackets.
    pub(crate) host: String,
    /// The port, 80 (443 for `https://`) when the URL has none.
    pub(crate) port: u16,
    /// `host[:port]` as written, for the `Host` header and absolute URIs.
    pub(crate) authority: Authority,
    /// The path prefix, no trailing slash.
    pub(crate) prefix: String,
}

impl BackendUrl {
    /// Parses `url`; one without a scheme is taken as `http://`. Refused, as
    /// [`ClientError::InvalidUrl`]: another scheme, a URL without a host, credentials
    /// in the URL, a query or a fragment.
    ///
    /// ```
    /// use switchyard_client::BackendUrl;
    ///
    /// let url = BackendUrl::parse("127.0.0.1:7700").unwrap();
    /// assert_eq!(url.to_string(), "http://127.0.0.1:7700");
    /// assert!(BackendUrl::parse("https://switchyard.example/prefix").unwrap().is_https());
    ///
    /// let refused = BackendUrl::parse("http://alice:s3cret@127.0.0.1:7700").unwrap_err();
    /// assert_eq!(refused.code(), "invalid_backend_url");
    /// assert!(!refused.to_string().contains("s3cret"));
    /// assert!(BackendUrl::parse("ftp://127.0.0.1").is_err());
    /// assert!(BackendUrl::parse("http://127.0.0.1:7700/?token=x").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            reason: reason.to_owned(),
        };
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(invalid("the backend URL is empty"));
        }
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("http://{trimmed}")
        };
        if with_scheme.contains('#') {
            return Err(invalid("the backend URL may not have a fragment"));
        }
        let uri: Uri = with_scheme
            .parse()
            .map_err(|_| invalid("the backend URL is not a valid URL"))?;
        let parts = uri.into_parts();
        let https = match parts.scheme {
            Some(scheme) if scheme == Scheme::HTTP => false,
            Some(scheme) if scheme == Scheme::HTTPS => true,
            _ => {
                return Err(invalid(
                    "the backend URL must start with http:// or https://",
                ));
            }
        };
        let Some(authority) = parts.authority else {
            return Err(invalid("the backend URL has no host"));
        };
        if authority.as_str().contains('@') {
            return Err(invalid(
                "the backend URL may not carry credentials; put the token in \
                 SWITCHYARD_TOKEN or a --token-file",
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid("the backend URL has no host"));
        }
        let prefix = match &parts.path_and_query {
            Some(pq) if pq.query().is_some() => {
                return Err(invalid("the backend URL may not have a query"));
            }
            Some(pq) => pq.path().trim_end_matches('/').to_owned(),
            None => String::new(),
        };
        // A port that is there must be one: `host:99999` is not `host` on port 80.
        let after_host = authority.as_str().rsplit(']').next().unwrap_or_default();
        let port = match authority.port_u16() {
            Some(0) => None,
            Some(port) => Some(port),
            None if after_host.contains(':') => None,
            None => Some(if https { 443 } else { 80 }),
        }
        .ok_or_else(|| invalid("the backend URL's port must be a number from 1 to 65535"))?;
        Ok(Self {
            https,
            host,
            port,
            authority,
            prefix,
        })
    }

    /// Whether the backend is reached over TLS (`https://`).
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The host name (or address) the backend's certificate must be valid for.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// The origin-form request target: the prefix, `path`, and `?query` when given.
    pub(crate) fn target(&self, path: &str, query: Option<&str>) -> String {
        match query {
            Some(query) if !query.is_empty() => format!("{}{path}?{query}", self.prefix),
            _ => format!("{}{path}", self.prefix),
        }
    }

    /// The absolute-form URI for `path` and `query`, as the pooled client needs it.
    pub(crate) fn uri(&self, path: &str, query: Option<&str>) -> Result<Uri, ClientError> {
        Uri::builder()
            .scheme(self.scheme())
            .authority(self.authority.clone())
            .path_and_query(self.target(path, query))
            .build()
            .map_err(|_| ClientError::Protocol {
                status: None,
                reason: "could not build a valid request URI".into(),
            })
    }
}

impl fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme(), self.authority, self.prefix)
    }
}

impl fmt::Debug for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackendUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, u16, &str, &str), &str>) {
        match (BackendUrl::parse(input), expected) {
            (Ok(url), Ok((host, port, prefix, shown))) => {
                assert_eq!(url.host, host, "{input}");
                assert_eq!(url.port, port, "{input}");
                assert_eq!(url.prefix, prefix, "{input}");
                assert_eq!(url.to_string(), shown, "{input}");
            }
            (Err(error), Err(fragment)) => {
                assert_eq!(error.code(), "invalid_backend_url", "{input}");
                assert!(
                    error.to_string().contains(fragment),
                    "{input}: {error} lacks {fragment:?}"
                );
            }
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parses_what_users_type() {
        check(
            DEFAULT_BACKEND_URL,
            Ok(("127.0.0.1", 7700, "", "http://127.0.0.1:7700")),
        );
        check(
            "127.0.0.1:7700",
            Ok(("127.0.0.1", 7700, "", "http://127.0.0.1:7700")),
        );
        check(
            "http://example.test/switchyard/",
            Ok((
                "example.test",
                80,
                "/switchyard",
                "http://example.test/switchyard",
            )),
        );
        check("http://[::1]:9", Ok(("::1", 9, "", "http://[::1]:9")));
        check(
            " localhost:1 ",
            Ok(("localhost", 1, "", "http://localhost:1")),
        );
        check(
            "https://example.test",
            Ok(("example.test", 443, "", "https://example.test")),
        );
        check(
            "https://localhost:7443/sy/",
            Ok(("localhost", 7443, "/sy", "https://localhost:7443/sy")),
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        check("", Err("empty"));
        check(
            "ftp://example.test",
            Err("must start with http:// or https://"),
        );
        check(
            "https://user:pw@example.test",
            Err("may not carry credentials"),
        );
        check(
            "http://user:pw@example.test",
            Err("may not carry credentials"),
        );
        check("http://example.test/?x=1", Err("may not have a query"));
        check("http://", Err("not a valid URL"));
        check("http://exa mple", Err("not a valid URL"));
        // A port that is not one is not the scheme's default port.
        check(
            "127.0.0.1:99999",
            Err("port must be a number from 1 to 65535"),
        );
        check("http://[::1]:70000", Err("port must be a number"));
        check("http://localhost:0", Err("port must be a number"));
        check("http://localhost:", Err("port must be a number"));
    }

    #[test]
    fn credentials_are_never_repeated() {
        let error = BackendUrl::parse("http://alice:s3cret@example.test").unwrap_err();
        assert!(!error.to_string().contains("s3cret"));
        assert!(!format!("{error:?}").contains("s3cret"));
    }

    #[test]
    fn targets_keep_the_prefix() {
        let url = BackendUrl::parse("http://h:1/p/").unwrap();
        assert_eq!(url.target("/api/runtimes", None), "/p/api/runtimes");
        assert_eq!(url.target("/api/x", Some("a=1")), "/p/api/x?a=1");
        assert_eq!(url.target("/api/x", Some("")), "/p/api/x");
        assert_eq!(
            url.uri("/api/x", Some("a=1")).unwrap().to_string(),
            "http://h:1/p/api/x?a=1"
        );
        let url = BackendUrl::parse("https://h:2/p").unwrap();
        assert!(url.is_https());
        assert_eq!(
            url.uri("/api/x", None).unwrap().to_string(),
            "https://h:2/p/api/x"
        );
    }
}
