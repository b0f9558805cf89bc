//! Where and how to reach one remote runtime: [`RemoteEndpoint`] as configured, and
//! [`ParsedEndpoint`], the checked form both clients are built from (the parsed
//! [`Base`] URL and the sensitive `Authorization` header).
//!
//! No error text and no `Debug` output here repeats the base URL or the token.

use std::fmt;
use std::time::Duration;

use http::Uri;
use http::header::HeaderValue;
use http::uri::{Authority, Scheme};

use crate::error::TransportError;
use crate::secret::SecretToken;

/// Where and how to reach one remote runtime. `Debug` shows neither the URL nor the
/// token.
#[derive(Clone)]
pub struct RemoteEndpoint {
    /// `http://host:port` with an optional path prefix, no trailing slash.
    pub base_url: String,
    /// The bearer token.
    pub token: SecretToken,
    /// Deadline for establishing a connection.
    pub connect_timeout: Duration,
    /// Deadline for a whole request, answer included.
    pub request_timeout: Duration,
}

impl fmt::Debug for RemoteEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteEndpoint")
            .field("base_url", &"[redacted]")
            .field("token", &self.token)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The parsed base URL: what to connect to and the path prefix (no trailing slash).
#[derive(Clone)]
pub(crate) struct Base {
    /// The host to resolve, without IPv6 brackets.
    pub(crate) host: String,
    /// The port, 80 when the URL has none.
    pub(crate) port: u16,
    /// `host[:port]` as written, for the `Host` header or an absolute URI.
    pub(crate) authority: Authority,
    /// The path prefix, no trailing slash.
    pub(crate) prefix: String,
}

impl Base {
    /// Parses `base_url`: an absolute `http://host[:port][/prefix]` URL without
    /// credentials or query; `https://` is [`TransportError::Unsupported`] for now.
    /// A host that is empty, also inside IPv6 brackets, is missing. Error texts
    /// never repeat the URL.
    ///
    /// TLS will change the scheme check here along with the REST client's connector.
    pub(crate) fn parse(base_url: &str) -> Result<Self, TransportError> {
        let unsupported = |what: &str| TransportError::Unsupported { what: what.into() };
        let not_http = "a base_url that is not an absolute http:// URL";
        let uri: Uri = base_url.trim().parse().map_err(|_| unsupported(not_http))?;
        let parts = uri.into_parts();
        match parts.scheme {
            Some(scheme) if scheme == Scheme::HTTP => {}
            Some(scheme) if scheme == Scheme::HTTPS => {
                return Err(unsupported("TLS to remote runtimes (https base_url)"));
            }
            _ => return Err(unsupported(not_http)),
        }
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
            host,
            port: authority.port_u16().unwrap_or(80),
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

    /// The absolute-form `http://` URI for `path` and `query`, as the REST client's
    /// pooled client needs it. (The events client opens its own connection and sends
    /// the origin form, [`Base::path_and_query`], for its `ws://` upgrade.)
    pub(crate) fn http_uri(&self, path: &str, query: Option<&str>) -> Result<Uri, TransportError> {
        Uri::builder()
            .scheme(Scheme::HTTP)
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
    /// Deadline for establishing a connection.
    pub(crate) connect_timeout: Duration,
    /// Deadline for a whole request, answer included.
    pub(crate) request_timeout: Duration,
}

impl ParsedEndpoint {
    /// Parses `endpoint`'s base URL under `hosts` (see [`Base::parse`]) and builds its
    /// `Authorization` header (see [`bearer`]). No error text repeats the URL or the
    /// token.
    pub(crate) fn new(endpoint: &RemoteEndpoint) -> Result<Self, TransportError> {
        Ok(Self {
            base: Base::parse(&endpoint.base_url)?,
            authorization: bearer(&endpoint.token)?,
            connect_timeout: endpoint.connect_timeout,
            request_timeout: endpoint.request_timeout,
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
            .field("request_timeout", &self.request_timeout);
        debug
    }
}
