//! Bearer-token checks, in constant time.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use switchyard_protocol::ErrorCode;
use switchyard_transport::SecretToken;

use super::ApiError;

/// Checks `Authorization: Bearer <token>` against `expected`; `None` means auth is off.
pub fn check_bearer(headers: &HeaderMap, expected: Option<&SecretToken>) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match presented {
        Some(token) if expected.matches(token) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the bearer token is not valid for this server",
        )),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "send Authorization: Bearer <token>",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_rules() {
        let token = SecretToken::new("t0k").unwrap();
        assert!(check_bearer(&HeaderMap::new(), None).is_ok());
        assert!(check_bearer(&headers("Bearer t0k"), Some(&token)).is_ok());
        assert!(check_bearer(&headers("bearer t0k"), Some(&token)).is_ok());
        for bad in ["Bearer t0", "Basic t0k", "t0k", "Bearer "] {
            let err = check_bearer(&headers(bad), Some(&token)).unwrap_err();
            assert_eq!(err.detail.code, ErrorCode::Unauthorized);
            assert!(!err.detail.message.contains("t0k"));
        }
        assert!(check_bearer(&HeaderMap::new(), Some(&token)).is_err());
    }
}
