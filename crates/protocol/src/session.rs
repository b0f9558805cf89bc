//! Backend sessions: roles, and what `/api/session` takes and answers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a token's holder may do. Each role includes the ones before it.
///
/// Exhaustive on purpose: the contract fixes the three roles ([`Role::ALL`]), and
/// every check must decide each.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Lists, reads details and transcripts, watches events.
    Viewer,
    /// Also creates, sends input, resizes, cancels, stops and deletes.
    Operator,
    /// Also reaches the admin routes.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The lowercase name used in configuration and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

/// `POST /api/session`: the token to trade for a session cookie. `Debug` hides it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// A bearer token from the backend's `[[auth.token]]` entries.
    pub token: String,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginRequest { token: [redacted] }")
    }
}

/// `GET` and `POST /api/session`: who the credentials are, and whether the backend
/// authenticates at all.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The identity's name (the token's `name`; `anonymous` without auth).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// `false` without `[auth]` tokens (everyone is the anonymous admin, there is no
    /// session to end).
    pub auth: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_and_names() {
        let info = SessionInfo {
            name: "alice".into(),
            role: Role::Operator,
            auth: true,
        };
        assert_eq!(
            serde_json::to_value(&info).unwrap(),
            json!({"name":"alice","role":"operator","auth":true})
        );
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        let login: LoginRequest = serde_json::from_str(r#"{"token":"sy_secret"}"#).unwrap();
        assert!(!format!("{login:?}").contains("sy_secret"));
        assert!(serde_json::from_str::<LoginRequest>(r#"{"token":"t","x":1}"#).is_err());
    }
}
