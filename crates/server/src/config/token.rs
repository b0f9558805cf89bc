//! Loading bearer tokens from files and environment variables. No function here puts
//! a token's text into an error.

use std::fs;
use std::path::Path;

use switchyard_transport::SecretToken;

use super::error::{ConfigError, Origin};

/// Reads the one token in `path` (already resolved), named by `key` in `origin`:
/// what a backend sends to a remote. Surrounding whitespace and blank lines are
/// ignored; a file with more than one token (a runtime's file during a rotation) is
/// [`ConfigError::TokenFileHoldsMany`], since the backend could not tell which one
/// the runtime accepts.
pub(crate) fn from_file(
    origin: &Origin,
    key: &str,
    path: &Path,
) -> Result<SecretToken, ConfigError> {
    let mut tokens = tokens_from_file(origin, key, path)?;
    if tokens.len() > 1 {
        return Err(ConfigError::TokenFileHoldsMany {
            origin: origin.clone(),
            key: key.to_owned(),
            path: path.to_path_buf(),
            count: tokens.len(),
        });
    }
    Ok(tokens.remove(0))
}

/// Reads the tokens in `path` (already resolved), named by `key` in `origin`: one
/// per line, surrounding whitespace trimmed, blank lines ignored; at least one.
/// What a runtime accepts: its file lists the old and the new token while a token
/// is rotated.
pub(crate) fn tokens_from_file(
    origin: &Origin,
    key: &str,
    path: &Path,
) -> Result<Vec<SecretToken>, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::TokenFileUnreadable {
        origin: origin.clone(),
        key: key.to_owned(),
        path: path.to_path_buf(),
        source,
    })?;
    let from = || format!("token file {}", path.display());
    let tokens = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| wrap(origin, key, line.to_owned(), from))
        .collect::<Result<Vec<_>, _>>()?;
    if tokens.is_empty() {
        return Err(ConfigError::TokenEmpty {
            origin: origin.clone(),
            key: key.to_owned(),
            from: from(),
        });
    }
    Ok(tokens)
}

/// Reads the token in environment variable `var`, named by `key` in `origin`.
pub(crate) fn from_env(
    origin: &Origin,
    key: &str,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SecretToken, ConfigError> {
    check_var_name(origin, key, var)?;
    let text = env(var).ok_or_else(|| ConfigError::TokenEnvUnset {
        origin: origin.clone(),
        key: key.to_owned(),
        var: var.to_owned(),
    })?;
    wrap(origin, key, text, || {
        format!("environment variable `{var}`")
    })
}

/// A token environment variable's name: letters, digits and `_`, not starting with a
/// digit. A value that is not such a name is not echoed, in case it is the token.
pub(crate) fn check_var_name(origin: &Origin, key: &str, var: &str) -> Result<(), ConfigError> {
    let ok = !var.is_empty()
        && !var.starts_with(|c: char| c.is_ascii_digit())
        && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            origin: origin.clone(),
            key: key.to_owned(),
            problem: "must be the name of an environment variable (letters, digits and '_'), not the token itself".to_owned(),
        })
    }
}

fn wrap(
    origin: &Origin,
    key: &str,
    text: String,
    from: impl Fn() -> String,
) -> Result<SecretToken, ConfigError> {
    let Some(token) = SecretToken::new(text) else {
        return Err(ConfigError::TokenEmpty {
            origin: origin.clone(),
            key: key.to_owned(),
            from: from(),
        });
    };
    if !token.expose().bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::TokenMalformed {
            origin: origin.clone(),
            key: key.to_owned(),
            from: from(),
        });
    }
    Ok(token)
}
