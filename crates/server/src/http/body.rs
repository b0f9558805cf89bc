//! Reading JSON request bodies under a size limit, without buffering past it.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use switchyard_protocol::ErrorCode;

use super::ApiError;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is over the limit of {limit} bytes"),
    )
}

/// Reads the whole body, refusing it with `413 payload_too_large` as soon as it is
/// known to exceed `limit`: from `Content-Length` before reading, or while reading.
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
    match Limited::new(body, limit as usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Err(_) => Err(ApiError::invalid_request(
            "the request body could not be read",
        )),
    }
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

/// Decodes a JSON body with a message that says what is wrong.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde's derived structs also accept arrays in field order; the API does not.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid_request("the body must be a JSON object"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_request(format!("the JSON body is not valid: {e}")))
}

/// Requests with a body must say `Content-Type: application/json` (or say nothing).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(v)
            if v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::invalid_request(
            "send the body as JSON with Content-Type: application/json",
        )),
    }
}
