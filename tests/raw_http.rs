//! HTTP answers read straight off a socket, for tests that need what a client
//! library hides: several requests on one kept-alive connection, an answer written
//! before a connection is closed, the exact head.

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

/// One HTTP answer: its status, its head (status line and headers, as sent) and its
/// body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct RawAnswer {
    /// The status code.
    pub status: u16,
    /// Status line and headers, without the blank line.
    pub head: String,
    /// The body as JSON, or `Null`.
    pub body: Value,
}

impl RawAnswer {
    /// The error body's `error.code`, or `<no code>`.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<no code>")
    }

    /// Parses one whole answer (head, blank line, body).
    ///
    /// # Panics
    /// On bytes that are not an HTTP answer.
    pub fn parse(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        Self {
            status,
            head: head.to_owned(),
            body: serde_json::from_str(body).unwrap_or(Value::Null),
        }
    }
}

/// Reads one answer with a `Content-Length` body (or none) from `stream`, leaving
/// the connection open for the next.
///
/// # Panics
/// When no whole answer comes within [`crate::WAIT`] or the connection closes first.
pub async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> RawAnswer {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return RawAnswer::parse(&buf[..end + 4 + length]);
            }
        }
        let n = tokio::time::timeout(crate::WAIT, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("readable");
        assert!(
            n > 0,
            "closed before a whole answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}
