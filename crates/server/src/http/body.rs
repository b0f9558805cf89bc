//! Reading JSON request bodies under a size limit, without buffering past it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use switchyard_protocol::relay::plain_input_text;
use switchyard_protocol::{ErrorCode, InputRequest, media};

use super::ApiError;

/// The largest request body (`max_body_bytes`), shared: clones share one value,
/// which [`BodyLimit::replace`] changes for all of them at once (a reload of the backend or of a runtime). Each
/// request reads it once, when it reaches the handler, and keeps that limit to its
/// end (an event WebSocket for its whole session), so a reload applies to the
/// requests that start after it.
#[derive(Debug, Clone)]
pub struct BodyLimit(Arc<AtomicU64>);

impl BodyLimit {
    /// At most `bytes` per request body.
    pub fn new(bytes: u64) -> Self {
        Self(Arc::new(AtomicU64::new(bytes)))
    }

    /// At most `bytes` per request body from the next request on, in every clone.
    pub fn replace(&self, bytes: u64) {
        self.0.store(bytes, Ordering::Relaxed);
    }

    /// The limit now.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How long a request body may take to arrive, whole, once its head has: a client
/// that trickles a byte now and then cannot hold a connection (and a place under
/// `max_connections`) for longer, whoever it is (bodies are read before, say, a
/// sign-in's token is checked).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is over the limit of {limit} bytes"),
    )
}

/// Reads the whole body, refusing it with `413 payload_too_large` as soon as it is
/// known to exceed `limit`: from `Content-Length` before reading, or while reading;
/// and with `400 invalid_request` when it has not arrived whole within
/// [`BODY_TIMEOUT`]. A body that arrives in one piece (a small JSON body nearly
/// always does) is handed on as it is, without a copy or a list of pieces.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let mut read = std::pin::pin!(read_whole(body, limit));
    // A small body nearly always came with the head: no deadline to set then.
    if let std::task::Poll::Ready(whole) = futures_util::poll!(read.as_mut()) {
        return whole;
    }
    switchyard_transport::deadline::within(BODY_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::invalid_request(format!(
                "the request body did not arrive within {} s; send it whole, at once",
                BODY_TIMEOUT.as_secs()
            )))
        })
}

/// The body's bytes, at most `limit` of them (see [`read_limited`]).
async fn read_whole(mut body: Incoming, limit: u64) -> Result<Bytes, ApiError> {
    let unreadable = || ApiError::invalid_request("the request body could not be read");
    let mut first = Bytes::new();
    let mut more: Option<BytesMut> = None;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| unreadable())?.into_data() else {
            continue; // trailers: nothing to keep
        };
        total = total.saturating_add(data.len() as u64);
        if total > limit {
            return Err(too_large(limit));
        }
        if let Some(more) = &mut more {
            more.extend_from_slice(&data);
        } else if first.is_empty() {
            first = data;
        } else {
            let mut joined = BytesMut::with_capacity(first.len() + data.len());
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&data);
            more = Some(joined);
        }
    }
    Ok(more.map_or(first, BytesMut::freeze))
}

/// Reads and decodes a JSON body. Unknown fields are rejected by the target type.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
) -> Result<T, ApiError> {
    check_content_type(headers)?;
    let bytes = read_limited(headers, body, limit).await?;
    decode_json(&bytes)
}

/// [`read_json`] for an input request: a body written plainly (see
/// [`plain_input_text`]) gives its text without serde, any other is decoded as
/// [`read_json`] does, so both give the same text or the same error.
pub async fn read_input(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
) -> Result<InputRequest, ApiError> {
    check_content_type(headers)?;
    let bytes = read_limited(headers, body, limit).await?;
    if let Some(text) = plain_input_text(&bytes) {
        return Ok(InputRequest {
            text: text.to_owned(),
        });
    }
    decode_json(&bytes)
}

/// Decodes a JSON body with a message that says what is wrong.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde's derived structs also accept arrays in field order; the API does not.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid_request("the body must be a JSON object"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_request(format!("the JSON body is not valid: {e}")))
}

/// A request with a body must say `Content-Type: application/json` (parameters
/// such as `; charset=utf-8` aside); any other type, or none, is
/// `415 unsupported_media_type`. An empty body with no type goes on to be refused as
/// not a JSON object.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let json = match (types.next(), types.next()) {
        (Some(value), None) => media::is_json(value.as_bytes()),
        (None, _) => !has_body(headers),
        // Two: which one a reader takes is anyone's guess (no browser sends two).
        (Some(_), Some(_)) => false,
    };
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        ))
    }
}

/// True when the request carries a body: a `Content-Length` above zero, or any
/// `Transfer-Encoding` (a chunked body counts even if it turns out empty).
pub fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|len| len > 0)
}
