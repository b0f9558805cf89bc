//! The one media type of every body on both surfaces: JSON.

/// `application/json`, as sent in `Content-Type`.
pub const JSON: &str = "application/json";

/// True when a `Content-Type` value names JSON: `application/json` in any letter
/// case, with or without parameters (`; charset=utf-8`) and white space around it.
pub fn is_json(content_type: &[u8]) -> bool {
    let media_type = match content_type.iter().position(|&b| b == b';') {
        Some(end) => &content_type[..end],
        None => content_type,
    };
    media_type
        .trim_ascii()
        .eq_ignore_ascii_case(JSON.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        for (value, json) in [
            (&b"application/json"[..], true),
            (b"application/json; charset=utf-8", true),
            (b"Application/JSON;charset=UTF-8", true),
            (b"application/json ;x=y", true),
            (b" application/json ", true),
            (b"", false),
            (b"text/html", false),
            (b"application/jsonp", false),
            (b"application/json-seq", false),
            (b"text/plain; application/json", false),
            (b"application/jso", false),
            (b"application/ json", false),
        ] {
            assert_eq!(is_json(value), json, "{}", String::from_utf8_lossy(value));
        }
    }
}
