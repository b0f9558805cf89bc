//! HTTP answers read straight off a socket, for tests that need what a client
//! library hides: several requests on one kept-alive connection, an answer written
//! before a connection is closed, the exact head, the bytes that follow the answer
//! to a `HEAD`.

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

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
    /// How many bytes of body came (none for the answer to a `HEAD`).
    pub body_len: usize,
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
            body_len: bytes.len() - head.len() - 4,
        }
    }

    /// The header fields as sent, in order, names in lower case.
    pub fn fields(&self) -> Vec<(String, String)> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            })
            .collect()
    }

    /// The value of the first field named `name` (any case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// The request line and head of `method path` to `addr`: `Host` is the address
/// unless `headers` name one.
fn request_head(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("host: {addr}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// `GET path` with `headers` on a new connection (kept alive, as a client's would
/// be), read as it came: head, and a body of its `Content-Length`.
///
/// # Panics
/// When no whole answer comes within [`crate::WAIT`].
pub async fn get(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> RawAnswer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(request_head(addr, "GET", path, headers).as_bytes())
        .await
        .expect("writable");
    read_answer(&mut stream).await
}

/// `HEAD path` with `headers`, then `GET then` on the same connection (pipelined,
/// the second asking to close it), read off the wire to the end: the `HEAD`'s
/// answer is every byte up to its blank line, and the `GET`'s answer must begin
/// right after it. So a `HEAD` answered with any byte of body fails here, whatever
/// its `Content-Length` says.
///
/// # Panics
/// When anything but the second answer follows the first's head, or the answers
/// do not come within [`crate::WAIT`].
pub async fn head_then_get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    then: &str,
) -> (RawAnswer, RawAnswer) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut requests = request_head(addr, "HEAD", path, headers);
    requests.push_str(&request_head(addr, "GET", then, &[("connection", "close")]));
    stream
        .write_all(requests.as_bytes())
        .await
        .expect("writable");
    let mut bytes = Vec::new();
    tokio::time::timeout(crate::WAIT, stream.read_to_end(&mut bytes))
        .await
        .expect("both answers in time")
        .expect("readable");
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {:?}", String::from_utf8_lossy(&bytes)))
        + 4;
    let (first, rest) = bytes.split_at(end);
    assert!(
        rest.starts_with(b"HTTP/1.1 "),
        "HEAD {path}: the bytes after the answer's head are not the next answer (a body?): {:?}",
        String::from_utf8_lossy(rest)
    );
    (RawAnswer::parse(first), RawAnswer::parse(rest))
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

/// The fields a `HEAD`'s answer shares with its `GET`'s: all but `date` and
/// `x-request-id` (new for every answer) and, for a body that changes between calls
/// (`volatile`), `content-length`.
pub fn comparable(answer: &RawAnswer, volatile: bool) -> Vec<(String, String)> {
    answer
        .fields()
        .into_iter()
        .filter(|(name, _)| {
            name != "date" && name != "x-request-id" && !(volatile && name == "content-length")
        })
        .collect()
}

/// Asks `HEAD path`, then `GET path`, with `headers`, and checks that the `HEAD`'s
/// answer is the head of the `GET`'s (RFC 9110 §9.3.2): the same status and fields,
/// the `Content-Length` of the body the `GET` got, and no byte of body (`then` is
/// asked after the `HEAD` on its connection to prove that, see [`head_then_get`]).
/// For a `volatile` body the two lengths need only be close. Returns the `HEAD`'s
/// answer.
///
/// # Panics
/// When they differ; `what` names the case.
pub async fn assert_head_is_get_head(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    (then, volatile): (&str, bool),
    what: &str,
) -> RawAnswer {
    let (head, _) = head_then_get(addr, path, headers, then).await;
    let get = get(addr, path, headers).await;
    assert_eq!(
        head.status, get.status,
        "{what}: HEAD answered\n{}\nGET answered\n{}",
        head.head, get.head
    );
    assert_eq!(
        comparable(&head, volatile),
        comparable(&get, volatile),
        "{what}: the fields differ"
    );
    assert_eq!(head.body_len, 0, "{what}");
    let length = |a: &RawAnswer| -> Option<usize> {
        a.header("content-length")
            .map(|v| v.parse().expect("a length"))
    };
    if get.body_len > 0 {
        assert_eq!(
            length(&get),
            Some(get.body_len),
            "{what}: the GET's own length"
        );
        let of_head = length(&head).unwrap_or_else(|| panic!("{what}: no Content-Length"));
        if volatile {
            assert!(
                of_head.abs_diff(get.body_len) * 2 < get.body_len,
                "{what}: the HEAD says {of_head} bytes, the GET sent {}",
                get.body_len
            );
        } else {
            assert_eq!(of_head, get.body_len, "{what}");
        }
    }
    head
}

/// Answers every connection on `listener` with `answer`, written after the request's
/// first bytes and followed by a close (or with nothing, the connection held open
/// for 30 s, when `None`): a peer that is not a Switchyard backend, or one that says
/// nothing. Runs until the test's runtime ends.
pub fn serve_canned(listener: tokio::net::TcpListener, answer: Option<&'static [u8]>) {
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = tcp.read(&mut buffer).await;
                match answer {
                    Some(answer) => {
                        let _ = tcp.write_all(answer).await;
                        let _ = tcp.shutdown().await;
                    }
                    None => tokio::time::sleep(std::time::Duration::from_secs(30)).await,
                }
            });
        }
    });
}
