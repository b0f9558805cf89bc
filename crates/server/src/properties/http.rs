//! Request decoders and validators.

use std::time::Duration;

use ::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use ::http::{HeaderMap, HeaderValue, Uri};
use proptest::prelude::*;
use proptest::sample::select;
use switchyard_protocol::arbitrary::{create_worker_request, json_value, resize_request};
use switchyard_protocol::{CreateWorkerRequest, ErrorCode, InputRequest, ResizeRequest};
use switchyard_transport::SecretToken;

use crate::auth::session::{Clock, SessionCodec, SessionError, SessionKey, cookie_values};
use crate::auth::token::TokenHash;
use crate::backend_api::browser::{AllowedHosts, RequestOrigin};
use crate::http::auth::check_bearer;
use crate::http::body::decode_json;
use crate::http::query::Query;

/// Query strings built from the names routes take, odd names, and any bytes.
fn query_string() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        select(vec![
            "after",
            "limit",
            "status",
            "cursor",
            "interactive",
            "snapshot"
        ])
        .prop_map(str::to_owned),
        "[a-z%&=+;]{0,6}",
    ];
    let value = prop_oneof![
        "[0-9]{0,22}",
        select(vec![
            "true", "false", "running", "-1", "1.5", "%FF", "%00", "+"
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    proptest::collection::vec((name, value), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn header(name: ::http::HeaderName, value: &str) -> Option<HeaderMap> {
    let value = HeaderValue::from_str(value).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    Some(headers)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Only allowed names, each once; every value read back as given; typed values
    /// parse or are `invalid_request`.
    #[test]
    fn query_strings_are_checked_and_read_back(query in query_string()) {
        let allowed = ["after", "limit", "status", "cursor"];
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        let valid = names.iter().all(|n| allowed.contains(n))
            && names.iter().enumerate().all(|(i, n)| !names[..i].contains(n));
        match Query::parse(Some(&query), &allowed) {
            Ok(q) => {
                prop_assert!(valid, "{}", query);
                for (name, value) in &pairs {
                    prop_assert_eq!(q.get(name), Some(value.as_str()));
                }
                match q.parse_as::<u64>("limit", "a whole number") {
                    Ok(limit) => prop_assert_eq!(
                        limit,
                        q.get("limit").map(|v| v.parse::<u64>().unwrap())
                    ),
                    Err(e) => prop_assert_eq!(e.detail.code, ErrorCode::InvalidRequest),
                }
            }
            Err(e) => {
                prop_assert!(!valid, "{}", query);
                prop_assert_eq!(e.detail.code, ErrorCode::InvalidRequest);
            }
        }
    }

    /// Bodies: any JSON is a request or `400 invalid_request`; arrays never count as
    /// objects; valid bodies decode to themselves.
    #[test]
    fn json_bodies_decode_or_are_invalid_requests(
        value in json_value(),
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        create in create_worker_request(),
        resize in resize_request(),
    ) {
        for input in [value.to_string().into_bytes(), bytes] {
            for result in [
                decode_json::<CreateWorkerRequest>(&input).err(),
                decode_json::<InputRequest>(&input).err(),
                decode_json::<ResizeRequest>(&input).err(),
            ]
            .into_iter()
            .flatten()
            {
                prop_assert_eq!(result.detail.code, ErrorCode::InvalidRequest);
            }
        }
        let encoded = serde_json::to_vec(&create).unwrap();
        prop_assert_eq!(decode_json::<CreateWorkerRequest>(&encoded).unwrap(), create.clone());
        prop_assert_eq!(decode_json::<ResizeRequest>(&serde_json::to_vec(&resize).unwrap()).unwrap(), resize);
        let as_array = serde_json::to_vec(&[&create.profile]).unwrap();
        prop_assert!(decode_json::<InputRequest>(&as_array).is_err());
    }

    /// `Authorization`: exactly `Bearer <the token>` (scheme in any case, spaces
    /// around the token) passes; anything else is `401 unauthorized`.
    #[test]
    fn bearer_headers_pass_only_with_the_token(
        token in "[A-Za-z0-9._~+/-]{8,40}",
        scheme in select(vec!["Bearer", "bearer", "BEARER", "Basic", "Token", ""]),
        presented in prop_oneof!["[A-Za-z0-9._~+/-]{0,40}", any::<String>()],
        spaces in " {0,2}",
    ) {
        let expected = SecretToken::new(token.clone()).unwrap();
        let good = format!("{scheme} {spaces}{token}{spaces}");
        if let Some(headers) = header(AUTHORIZATION, &good) {
            let ok = check_bearer(&headers, std::slice::from_ref(&expected)).is_ok();
            prop_assert_eq!(ok, scheme.eq_ignore_ascii_case("bearer"), "{}", good);
        }
        if let Some(headers) = header(AUTHORIZATION, &format!("Bearer {presented}")) {
            let result = check_bearer(&headers, std::slice::from_ref(&expected));
            prop_assert_eq!(result.is_ok(), presented.trim() == token);
            if let Err(e) = result {
                prop_assert_eq!(e.detail.code, ErrorCode::Unauthorized);
                prop_assert!(!e.detail.message.contains(&token));
            }
        }
        prop_assert!(check_bearer(&HeaderMap::new(), std::slice::from_ref(&expected)).is_err());
        prop_assert!(check_bearer(&HeaderMap::new(), &[]).is_ok());
    }

    /// Session cookies: what the codec issues verifies (for its TTL) under its own
    /// key only; any edit, and any other string, is refused without a panic.
    #[test]
    fn session_cookies_verify_only_as_issued(
        name in "[A-Za-z0-9._@-]{1,64}",
        token in "[ -~]{1,40}",
        key in proptest::collection::vec(any::<u8>(), 32..48),
        other_key in proptest::collection::vec(any::<u8>(), 32..48),
        ttl in 1u64..100_000,
        at in any::<prop::sample::Index>(),
        junk in any::<String>(),
    ) {
        let clock = Clock::manual(1_800_000_000);
        let codec = |key: &[u8]| {
            SessionCodec::new(SessionKey::new(key.to_vec()).unwrap(), Duration::from_secs(ttl), clock.clone())
        };
        let cookie = codec(&key).issue(&name, &TokenHash::of(&token));
        let claims = codec(&key).verify(&cookie).unwrap();
        prop_assert_eq!(&claims.name, &name);
        if other_key != key {
            prop_assert_eq!(codec(&other_key).verify(&cookie).unwrap_err(), SessionError::Invalid);
        }
        // Any one character changed.
        let mut bytes = cookie.clone().into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(bytes).unwrap();
        if edited != cookie {
            prop_assert!(codec(&key).verify(&edited).is_err(), "{}", edited);
        }
        prop_assert!(codec(&key).verify(&junk).is_err());
        // Found in a Cookie header among others, and expired after its TTL.
        let headers = header(COOKIE, &format!("a=b; switchyard_session={cookie}; c=d")).unwrap();
        prop_assert_eq!(cookie_values(&headers).collect::<Vec<_>>(), vec![cookie.as_str()]);
        clock.advance(Duration::from_secs(ttl));
        prop_assert_eq!(codec(&key).verify(&cookie).unwrap_err(), SessionError::Expired);
    }

    /// Token hashes: 64 hex digits in any case, nothing else.
    #[test]
    fn token_hashes_are_exactly_64_hex_digits(text in prop_oneof!["[0-9a-fA-F]{60,68}", any::<String>()]) {
        let valid = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
        let parsed = TokenHash::from_hex(&text);
        prop_assert_eq!(parsed.is_ok(), valid);
        if let Ok(hash) = parsed {
            prop_assert_eq!(hash.to_hex(), text.to_ascii_lowercase());
        }
    }

    /// `Host`: an allowed name with any port, in any case, passes; any other value is
    /// `403 host_not_allowed`, never a panic.
    #[test]
    fn hosts_pass_by_name_only(
        name in select(vec!["localhost", "127.0.0.1", "[::1]", "switchyard.example"]),
        port in proptest::option::of(any::<u16>()),
        upper in any::<bool>(),
        other in prop_oneof!["[a-z0-9.:\\[\\]-]{0,30}", any::<String>()],
    ) {
        let hosts = AllowedHosts::new(&["Switchyard.Example".to_owned()], "127.0.0.1:7700".parse().unwrap());
        let uri = Uri::from_static("/api/runtimes");
        let mut host = port.map_or(name.to_owned(), |p| format!("{name}:{p}"));
        if upper {
            host = host.to_ascii_uppercase();
        }
        let headers = header(HOST, &host).unwrap();
        prop_assert_eq!(hosts.check(&uri, &headers), Ok(host.as_str()));
        if let Some(headers) = header(HOST, &other) {
            let allowed_name = |h: &str| {
                let h = h.trim().to_ascii_lowercase();
                let bare = if h.starts_with('[') {
                    h.split_inclusive(']').next().unwrap_or(&h).to_owned()
                } else {
                    h.rsplit_once(':').map_or(h.as_str(), |(n, _)| n).to_owned()
                };
                hosts.names().contains(&bare.trim_end_matches('.').to_owned())
            };
            match hosts.check(&uri, &headers) {
                Ok(_) => prop_assert!(allowed_name(&other), "{}", other),
                Err(e) => prop_assert_eq!(e.detail.code, ErrorCode::HostNotAllowed),
            }
        }
    }

    /// `Origin`: the backend's own origin, a listed one, or foreign; never a panic.
    #[test]
    fn origins_are_classified(origin in prop_oneof![
        select(vec!["http://localhost:7700", "https://LOCALHOST:7700/", "http://app.example", "null", ""])
            .prop_map(str::to_owned),
        any::<String>(),
    ]) {
        let allowed = ["http://app.example".to_owned()];
        if let Some(headers) = header(ORIGIN, &origin) {
            let class = RequestOrigin::of(&headers, "localhost:7700", &allowed);
            let normal = origin.trim().trim_end_matches('/').to_ascii_lowercase();
            let expected_own = normal == "http://localhost:7700" || normal == "https://localhost:7700";
            prop_assert_eq!(class == RequestOrigin::Own, expected_own, "{}", origin);
            prop_assert_eq!(
                matches!(class, RequestOrigin::Allowed(_)),
                !expected_own && normal == "http://app.example"
            );
        }
    }
}
