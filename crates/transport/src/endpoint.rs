//! Where and how to reach one remote runtime: [`RemoteEndpoint`] as configured, and
//! [`ParsedEndpoint`], the checked form both clients are built from (the parsed
//! [`Base`] URL, the sensitive `Authorization` header, and TLS for an `https` URL).
//!
//! No error text and no `Debug` output here repeats the base URL or the token.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use http::header::HeaderValue;
use http::uri::{Authority, Scheme};

use crate::error::TransportError;
use crate::secret::SecretToken;
use crate::tls::{ClientTls, TlsLog, TlsTarget};

/// Where and how to reach one remote runtime. `Debug` shows neither the URL nor the
/// token.
#[derive(Clone)]
pub struct RemoteEndpoint {
    /// How the operator's log lines name this runtime (its runtime id); never its
    /// address.
    pub label: String,
    /// `http://host:port` or `https://host:port` with an optional path prefix, no
    /// trailing slash.
    pub base_url: String,
    /// The bearer token.
    pub token: SecretToken,
    /// Deadline for establishing a connection.
    pub connect_timeout: Duration,
    /// Deadline for a whole request, answer included.
    pub request_timeout: Duration,
    /// TLS settings: required for an `https` base URL, refused for an `http` one.
    pub tls: Option<ClientTls>,
}

impl RemoteEndpoint {
    /// A plain-HTTP endpoint (add [`RemoteEndpoint::tls`] for `https`), labelled
    /// `remote` in logs.
    pub fn new(
        base_url: impl Into<String>,
        token: SecretToken,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        Self {
            label: "remote".to_owned(),
            base_url: base_url.into(),
            token,
            connect_timeout,
            request_timeout,
            tls: None,
        }
    }

    /// The same endpoint with `tls`.
    pub fn with_tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The same endpoint, called `label` in logs.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
}

impl fmt::Debug for RemoteEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteEndpoint")
            .field("label", &self.label)
            .field("base_url", &"[redacted]")
            .field("token", &self.token)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The parsed base URL: what to connect to and the path prefix (no trailing slash).
#[derive(Clone)]
pub(crate) struct Base {
    /// `https`: TLS on every connection.
    pub(crate) tls: bool,
    /// The host to resolve, without IPv6 brackets.
    pub(crate) host: String,
    /// The port; 80 (http) or 443 (https) when the URL has none.
    pub(crate) port: u16,
    /// `host[:port]` as written, for the `Host` header or an absolute URI.
    pub(crate) authority: Authority,
    /// The path prefix, no trailing slash.
    pub(crate) prefix: String,
}

impl Base {
    /// Parses `base_url`: an absolute `http://` or `https://host[:port][/prefix]`
    /// URL without credentials or query. A host that is empty, also inside IPv6
    /// brackets, is missing. Error texts never repeat the URL.
    pub(crate) fn parse(base_url: &str) -> Result<Self, TransportError> {
        let unsupported = |what: &str| TransportError::Unsupported { what: what.into() };
        let not_http = "a base_url that is not an absolute http:// or https:// URL";
        let uri: Uri = base_url.trim().parse().map_err(|_| unsupported(not_http))?;
        let parts = uri.into_parts();
        let tls = match parts.scheme {
            Some(scheme) if scheme == Scheme::HTTP => false,
            Some(scheme) if scheme == Scheme::HTTPS => true,
            _ => return Err(unsupported(not_http)),
        };
        let Some(authority) = parts.authority else {
            return Err(unsupported("a base_url without a host"));
        };
        if authority.as_str().contains('@') {
            return Err(unsupported("credentials inside base_url"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(unsupported("a base_url without a host"));
        }
        let prefix = match &parts.path_and_query {
            Some(pq) if pq.query().is_some() => {
                return Err(unsupported("a query string in base_url"));
            }
            Some(pq) => pq.path().trim_end_matches('/').to_owned(),
            None => String::new(),
        };
        Ok(Self {
            tls,
            host,
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority,
            prefix,
        })
    }

    /// The origin-form request target: the prefix, `path`, and `?query` when given.
    pub(crate) fn path_and_query(&self, path: &str, query: Option<&str>) -> String {
        match query {
            Some(query) => format!("{}{path}?{query}", self.prefix),
            None => format!("{}{path}", self.prefix),
        }
    }

    /// The absolute-form `http://` or `https://` URI for `path` and `query`, as the
    /// REST client's pooled client needs it (the scheme keeps plain and TLS
    /// connections apart in its pool). The events client opens its own connection
    /// and sends the origin form, [`Base::path_and_query`], for its upgrade.
    pub(crate) fn http_uri(&self, path: &str, query: Option<&str>) -> Result<Uri, TransportError> {
        Uri::builder()
            .scheme(if self.tls {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            })
            .authority(self.authority.clone())
            .path_and_query(self.path_and_query(path, query))
            .build()
            .map_err(|_| TransportError::Protocol {
                reason: "could not build a valid request URI".into(),
            })
    }
}

/// `Bearer <token>` as an `Authorization` header value, marked sensitive (hyper then
/// keeps it out of its own debug output). The error text does not repeat the token.
pub(crate) fn bearer(token: &SecretToken) -> Result<HeaderValue, TransportError> {
    let mut authorization =
        HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
            TransportError::Unsupported {
                what: "a token with characters not allowed in an HTTP header".into(),
            }
        })?;
    authorization.set_sensitive(true);
    Ok(authorization)
}

/// A checked [`RemoteEndpoint`]: everything a client needs to reach the runtime.
#[derive(Clone)]
pub(crate) struct ParsedEndpoint {
    /// The parsed base URL.
    pub(crate) base: Base,
    /// `Bearer <token>`, marked sensitive.
    pub(crate) authorization: HeaderValue,
    /// The token, to keep out of log lines that repeat what the runtime wrote.
    pub(crate) token: SecretToken,
    /// Deadline for establishing a connection.
    pub(crate) connect_timeout: Duration,
    /// Deadline for a whole request, answer included.
    pub(crate) request_timeout: Duration,
    /// TLS for an `https` base URL.
    pub(crate) tls: Option<TlsTarget>,
    /// The operator's log of TLS failures, shared by the client's clones.
    pub(crate) tls_log: Arc<TlsLog>,
}

impl ParsedEndpoint {
    /// Parses `endpoint`'s base URL (see [`Base::parse`]), builds its
    /// `Authorization` header (see [`bearer`]) and its TLS target. An `https` URL
    /// needs [`RemoteEndpoint::tls`] and an `http` one must not have it. No error
    /// text repeats the URL or the token.
    pub(crate) fn new(endpoint: &RemoteEndpoint) -> Result<Self, TransportError> {
        let base = Base::parse(&endpoint.base_url)?;
        let tls = match (&endpoint.tls, base.tls) {
            (Some(tls), true) => Some(tls.target(&base.host).map_err(|_| {
                TransportError::Unsupported {
                    what: "a base_url host that is neither a DNS name nor an IP address (set tls_server_name)".into(),
                }
            })?),
            (None, false) => None,
            (None, true) => {
                return Err(TransportError::Unsupported {
                    what: "an https base_url without TLS settings".into(),
                });
            }
            (Some(_), false) => {
                return Err(TransportError::Unsupported {
                    what: "TLS settings for an http base_url".into(),
                });
            }
        };
        Ok(Self {
            authorization: bearer(&endpoint.token)?,
            token: endpoint.token.clone(),
            connect_timeout: endpoint.connect_timeout,
            request_timeout: endpoint.request_timeout,
            tls,
            tls_log: Arc::new(TlsLog::new(&endpoint.label)),
            base,
        })
    }

    /// Starts a client's `Debug` output as `name`: the base URL and the token as
    /// `[redacted]`, then the timeouts. The client adds its own fields and finishes.
    pub(crate) fn debug_struct<'a, 'b: 'a>(
        &self,
        f: &'a mut fmt::Formatter<'b>,
        name: &str,
    ) -> fmt::DebugStruct<'a, 'b> {
        let mut debug = f.debug_struct(name);
        debug
            .field("base_url", &"[redacted]")
            .field("token", &"[redacted]")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("tls", &self.tls.is_some());
        debug
    }
}
