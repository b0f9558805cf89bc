//! The HTTP/1.1 wire format of the REST client's exchanges, as pure functions over
//! buffers (the I/O is [`super::upstream`]'s): writing a request, reading an
//! answer's head with `httparse` (the parser hyper uses), and finding its body:
//! `Content-Length`, `chunked`, or until the connection closes.
//!
//! The client sends one request at a time per connection and reads exactly one
//! answer (after any `1xx`), so this is all of HTTP/1.1 it needs. Anything it does
//! not understand is [`Malformed`], never guessed at.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, StatusCode};

use switchyard_protocol::media::is_json;

/// Most bytes an answer's head may take.
pub(super) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Most header fields an answer's head may have.
const MAX_HEADERS: usize = 64;

/// Most bytes of a chunk-size line or of one trailer line.
const MAX_LINE_BYTES: usize = 4096;

/// An answer that is not HTTP/1.1 as this client reads it; the reason is fixed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed(pub(super) &'static str);

/// Appends the request to `out`: the request line, `fixed` (the endpoint's header
/// lines: `Host`, `Authorization`, each ending in CRLF), the body's
/// headers and the body. `target` is the origin-form path and query in pieces,
/// built from the base URL's path, validated ids and encoded queries, so it holds
/// no space or line break.
pub(super) fn write_request(
    out: &mut Vec<u8>,
    method: &Method,
    target: &[&str],
    fixed: &[u8],
    body: Option<&[u8]>,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    for piece in target {
        out.extend_from_slice(piece.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    out.extend_from_slice(fixed);
    match body {
        Some(body) => {
            out.extend_from_slice(b"content-type: application/json\r\ncontent-length: ");
            out.extend_from_slice(body.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body);
        }
        None if *method == Method::GET => out.extend_from_slice(b"\r\n"),
        None => out.extend_from_slice(b"content-length: 0\r\n\r\n"),
    }
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (`1xx`, `204`, `304`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the runtime closes the connection.
    UntilClose,
}

/// What an answer's head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    /// The status.
    pub(super) status: StatusCode,
    /// Its `Content-Type` is `application/json`.
    pub(super) json: bool,
    /// How its body is delimited.
    pub(super) framing: Framing,
    /// The connection may carry another exchange afterwards.
    pub(super) keep_alive: bool,
    /// Bytes the head took, its blank line included.
    pub(super) len: usize,
}

/// Parses the answer's head at the start of `buf`: `None` while it is incomplete.
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<Head>, Malformed> {
    // Left uninitialised: httparse writes the fields it finds and hands back only
    // those (filling 64 empty ones first cost more than parsing a small answer).
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(Malformed("the answer's head is too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Malformed("the answer has too many header fields"));
        }
        Err(_) => return Err(Malformed("the answer is not valid HTTP/1.1")),
    };
    let code = response.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| Malformed("the answer's status is not valid"))?;
    let http11 = response.version == Some(1);
    let mut json = false;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = !http11;
    for header in response.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-type") {
            json = is_json(header.value);
        } else if name.eq_ignore_ascii_case("content-length") {
            let value = parse_length(header.value)?;
            if length.is_some_and(|l| l != value) {
                return Err(Malformed(
                    "the answer has conflicting Content-Length fields",
                ));
            }
            length = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only `chunked`, as the last (and only) coding: this client asks for
            // no other and could not decode one.
            let codings = tokens(header.value);
            if chunked || codings.len() != 1 || !codings[0].eq_ignore_ascii_case(b"chunked") {
                return Err(Malformed(
                    "the answer uses a transfer coding other than chunked",
                ));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in tokens(header.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    close = false;
                }
            }
        }
    }
    let framing = if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if chunked {
        // A length beside chunked is ignored, and the connection not trusted
        // again (RFC 9112, 6.3).
        if length.is_some() {
            close = true;
        }
        Framing::Chunked
    } else if let Some(length) = length {
        Framing::Length(length)
    } else {
        close = true;
        Framing::UntilClose
    };
    Ok(Some(Head {
        status,
        json,
        framing,
        keep_alive: !close,
        len,
    }))
}

/// A `Content-Length` value: digits only.
fn parse_length(value: &[u8]) -> Result<u64, Malformed> {
    let value = value.trim_ascii();
    let bad = Malformed("the answer's Content-Length is not a number");
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(bad)
}

/// The comma-separated tokens of a header value, trimmed, empty ones left out.
fn tokens(value: &[u8]) -> Vec<&[u8]> {
    value
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect()
}

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyError {
    /// It is malformed.
    Malformed(Malformed),
    /// It is longer than the limit.
    TooLarge,
}

impl From<Malformed> for BodyError {
    fn from(m: Malformed) -> Self {
        Self::Malformed(m)
    }
}

/// A `chunked` body being decoded: feed it what has arrived until it is complete.
#[derive(Debug, Default)]
pub(super) struct Chunked {
    /// The body so far.
    body: BytesMut,
    /// Bytes of data still due in the current chunk, then its CRLF.
    in_chunk: Option<u64>,
    /// The last chunk was read: trailer lines follow until a blank line.
    in_trailers: bool,
    /// Bytes of trailer lines read.
    trailer_bytes: usize,
}

impl Chunked {
    /// Consumes what it can of `buf`; the whole body once its end has been read,
    /// `None` while more is needed.
    pub(super) fn feed(
        &mut self,
        buf: &mut BytesMut,
        limit: usize,
    ) -> Result<Option<Bytes>, BodyError> {
        loop {
            if self.in_trailers {
                let Some(line) = take_line(buf)? else {
                    return Ok(None);
                };
                if line.is_empty() {
                    return Ok(Some(std::mem::take(&mut self.body).freeze()));
                }
                self.trailer_bytes += line.len() + 2;
                if self.trailer_bytes > MAX_HEAD_BYTES {
                    return Err(Malformed("a chunked body's trailer is too large").into());
                }
                continue;
            }
            match self.in_chunk {
                None => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(None);
                    };
                    let size = chunk_size(&line)?;
                    if size == 0 {
                        self.in_trailers = true;
                    } else {
                        if (self.body.len() as u64).saturating_add(size) > limit as u64 {
                            return Err(BodyError::TooLarge);
                        }
                        self.in_chunk = Some(size);
                    }
                }
                Some(0) => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Malformed("a chunk does not end where its size says").into());
                    }
                    buf.advance(2);
                    self.in_chunk = None;
                }
                Some(due) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(due).unwrap_or(usize::MAX).min(buf.len());
                    self.body.extend_from_slice(&buf[..n]);
                    buf.advance(n);
                    self.in_chunk = Some(due - n as u64);
                }
            }
        }
    }
}

/// Takes one CRLF-terminated line off the front of `buf` (without its CRLF);
/// `None` while it is incomplete.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, Malformed> {
    match memchr::memchr(b'\n', buf) {
        Some(at) if at > 0 && buf[at - 1] == b'\r' => {
            let mut line = buf.split_to(at + 1);
            line.truncate(at - 1);
            Ok(Some(line))
        }
        Some(_) => Err(Malformed("a chunked body has a line without CRLF")),
        None if buf.len() > MAX_LINE_BYTES => Err(Malformed("a chunked body has an overlong line")),
        None => Ok(None),
    }
}

/// A chunk-size line: hexadecimal digits, then optional `;extensions`.
fn chunk_size(line: &[u8]) -> Result<u64, Malformed> {
    let bad = Malformed("a chunked body has an invalid chunk size");
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad);
    }
    let digits = std::str::from_utf8(digits).map_err(|_| bad)?;
    u64::from_str_radix(digits, 16).map_err(|_| bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, Malformed> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn writes_requests_with_and_without_bodies() {
        let fixed = b"host: h\r\nauthorization: Bearer t\r\n";
        let cases: [(Method, Option<&[u8]>, &str); 3] = [
            (
                Method::GET,
                None,
                "GET /v1/x?a=1 HTTP/1.1\r\nhost: h\r\nauthorization: Bearer t\r\n\r\n",
            ),
            (
                Method::POST,
                None,
                "POST /v1/x?a=1 HTTP/1.1\r\nhost: h\r\nauthorization: Bearer t\r\ncontent-length: 0\r\n\r\n",
            ),
            (
                Method::POST,
                Some(b"{}"),
                "POST /v1/x?a=1 HTTP/1.1\r\nhost: h\r\nauthorization: Bearer t\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            ),
        ];
        for (method, body, expected) in cases {
            let mut out = Vec::new();
            write_request(&mut out, &method, &["/v1/", "x", "?a=1"], fixed, body);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn reads_heads() {
        let ok = |status: u16, json, framing, keep_alive| {
            Ok(Some((
                StatusCode::from_u16(status).unwrap(),
                json,
                framing,
                keep_alive,
            )))
        };
        let cases = [
            (
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n",
                ok(200, true, Framing::Length(12), true),
            ),
            (
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ok(404, false, Framing::Length(0), false),
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                ok(200, false, Framing::Chunked, true),
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
                ok(200, false, Framing::Chunked, false),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n",
                ok(200, true, Framing::UntilClose, false),
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                ok(204, false, Framing::Empty, true),
            ),
            (
                "HTTP/1.1 100 Continue\r\n\r\n",
                ok(100, false, Framing::Empty, true),
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n",
                ok(200, false, Framing::Length(2), false),
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n",
                ok(200, false, Framing::Length(2), true),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\nconnection: foo, Close\r\n\r\n",
                ok(200, false, Framing::Length(2), false),
            ),
            ("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n", Ok(None)),
            ("HTTP/1.1 2", Ok(None)),
            ("", Ok(None)),
            (
                "SSH-2.0-OpenSSH_9.2\r\n\r\n",
                Err(Malformed("the answer is not valid HTTP/1.1")),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n",
                Err(Malformed(
                    "the answer has conflicting Content-Length fields",
                )),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                Err(Malformed("the answer's Content-Length is not a number")),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
                Err(Malformed("the answer's Content-Length is not a number")),
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                Err(Malformed(
                    "the answer uses a transfer coding other than chunked",
                )),
            ),
        ];
        for (text, expected) in cases {
            let got = head(text).map(|h| h.map(|h| (h.status, h.json, h.framing, h.keep_alive)));
            assert_eq!(got, expected, "{text:?}");
            if let Ok(Some(h)) = head(text) {
                assert_eq!(h.len, text.len(), "{text:?}");
            }
        }
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(
            head(&huge),
            Err(Malformed("the answer's head is too large"))
        );
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("x{i}: y\r\n"))
            .collect();
        assert_eq!(
            head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")),
            Err(Malformed("the answer has too many header fields"))
        );
    }

    /// Feeds `wire` to a decoder in pieces of `step` bytes.
    fn decode(wire: &[u8], step: usize, limit: usize) -> (Result<Option<Bytes>, BodyError>, usize) {
        let mut chunked = Chunked::default();
        let mut buf = BytesMut::new();
        let mut fed = 0;
        loop {
            let take = step.min(wire.len() - fed);
            buf.extend_from_slice(&wire[fed..fed + take]);
            fed += take;
            match chunked.feed(&mut buf, limit) {
                Ok(None) if fed < wire.len() => continue,
                // What was not consumed: left in the buffer, or not fed yet.
                other => return (other, buf.len() + wire.len() - fed),
            }
        }
    }

    #[test]
    fn decodes_chunked_bodies_whatever_the_reads() {
        let wire = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, 64] {
            let (body, left) = decode(wire, step, 1024);
            assert_eq!(
                body,
                Ok(Some(Bytes::from_static(b"hello, world"))),
                "{step}"
            );
            assert_eq!(left, 4, "what follows the body stays: {step}");
        }
        let (body, _) = decode(b"0\r\n\r\n", 1, 1024);
        assert_eq!(body, Ok(Some(Bytes::new())));
    }

    #[test]
    fn refuses_malformed_or_oversized_chunked_bodies() {
        let cases: [(&[u8], BodyError); 6] = [
            (
                b"zz\r\n",
                Malformed("a chunked body has an invalid chunk size").into(),
            ),
            (
                b"\r\n",
                Malformed("a chunked body has an invalid chunk size").into(),
            ),
            (
                b"5\nhello",
                Malformed("a chunked body has a line without CRLF").into(),
            ),
            (
                b"5\r\nhelloXX",
                Malformed("a chunk does not end where its size says").into(),
            ),
            (
                b"ffffffffffffffff\r\n",
                Malformed("a chunked body has an invalid chunk size").into(),
            ),
            (b"400\r\n", BodyError::TooLarge),
        ];
        for (wire, expected) in cases {
            assert_eq!(decode(wire, 64, 1000).0, Err(expected), "{wire:?}");
        }
        let long = vec![b'1'; MAX_LINE_BYTES + 1];
        assert_eq!(
            decode(&long, 64, 1000).0,
            Err(Malformed("a chunked body has an overlong line").into())
        );
        // Incomplete: more is needed, nothing is wrong yet.
        assert_eq!(decode(b"5\r\nhel", 64, 1000).0, Ok(None));
    }
}
