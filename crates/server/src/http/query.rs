//! Query-string parsing with typed errors (`400 invalid_request`, `400 invalid_id`).

use std::collections::HashMap;
use std::str::FromStr;

use super::ApiError;

/// The decoded parameters of a query string. Unknown parameters are rejected, as
/// unknown body fields are.
#[derive(Debug, Default)]
pub struct Query {
    pairs: HashMap<String, String>,
}

impl Query {
    /// Parses `query`, allowing only `allowed` names, each at most once.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut pairs = HashMap::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(ApiError::invalid_request(format!(
                    "unknown query parameter {name:?}; allowed: {}",
                    allowed.join(", ")
                )));
            }
            if pairs.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(ApiError::invalid_request(format!(
                    "query parameter {name:?} given twice"
                )));
            }
        }
        Ok(Self { pairs })
    }

    /// The raw value of `name`, if present. An empty value is a value (`?after=` is
    /// checked like any other `after`), not an absent parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.get(name).map(String::as_str)
    }

    /// The value of `name` parsed as `T`, with a message naming the parameter.
    pub fn parse_as<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::invalid_request(format!("query parameter {name:?} must be {what}"))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let q = Query::parse(Some("limit=5&after=w%2D1"), &["limit", "after"]).unwrap();
        assert_eq!(q.parse_as::<u32>("limit", "a number").unwrap(), Some(5));
        assert_eq!(q.get("after"), Some("w-1"));
        assert!(Query::parse(Some("nope=1"), &["limit"]).is_err());
        assert!(Query::parse(Some("limit=1&limit=2"), &["limit"]).is_err());
        let q = Query::parse(Some("limit=x"), &["limit"]).unwrap();
        assert!(q.parse_as::<u32>("limit", "a number").is_err());
        assert_eq!(Query::parse(None, &[]).unwrap().get("x"), None);
        let q = Query::parse(Some("after="), &["after", "limit"]).unwrap();
        assert_eq!(q.get("after"), Some(""));
        assert_eq!(q.get("limit"), None);
    }
}
