//! Reading a TOML file into its raw shape, turning serde's errors into
//! [`ConfigError`]s that name the file, the line and the dotted key.

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::error::{ConfigError, Origin};

/// A configuration file that was read: where it is and what relative paths in it
/// resolve against.
#[derive(Debug, Clone)]
pub(crate) struct FileContext {
    path: PathBuf,
    dir: PathBuf,
}

impl FileContext {
    /// The context of `path`: relative paths in it resolve against its directory.
    pub fn new(path: &Path) -> Self {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self {
            path: path.to_path_buf(),
            dir: absolute(&dir),
        }
    }

    /// The file as an error origin.
    pub fn origin(&self) -> Origin {
        Origin::file(&self.path)
    }

    /// `p` resolved against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

/// `p` resolved against the current directory (for paths given as flags).
pub(crate) fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(p),
        Err(_) => p.to_path_buf(),
    }
}

/// Reads and parses the file at `path`.
pub(crate) fn read_file<T: DeserializeOwned>(path: &Path) -> Result<(T, FileContext), ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let value = parse_text(path, &text)?;
    Ok((value, FileContext::new(path)))
}

/// Parses `text`, the contents of `path`.
pub(crate) fn parse_text<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|err| convert(path, text, &err))
}

fn convert(
    path: &Path,
    text: &str,
    err: &serde_path_to_error::Error<toml::de::Error>,
) -> ConfigError {
    let inner = err.inner();
    let origin = Origin::File {
        path: path.to_path_buf(),
        line: inner.span().map(|span| line_of(text, span.start)),
    };
    let at = err.path().to_string();
    let at = if at == "." { String::new() } else { at };
    let message = inner.message().trim().replace('\n', " ");

    if let Some((field, expected)) = quoted_prefix(&message, "unknown field `") {
        let expected = expected.trim_start_matches(", ");
        return ConfigError::UnknownKey {
            origin,
            key: with_leaf(&at, field),
            expected: if expected.starts_with("there are no") {
                "this table takes no keys".to_owned()
            } else {
                expected.to_owned()
            },
        };
    }
    if let Some((field, _)) = quoted_prefix(&message, "missing field `") {
        return ConfigError::MissingKey {
            origin,
            key: with_leaf(&at, field),
            hint: missing_hint(field).to_owned(),
        };
    }
    if at.is_empty() {
        return ConfigError::Syntax { origin, message };
    }
    ConfigError::InvalidValue {
        origin,
        key: at,
        problem: redact_string(&message),
    }
}

/// What to write for a required key that is missing.
fn missing_hint(field: &str) -> &'static str {
    match field {
        "kind" => "add kind = \"echo\" or kind = \"process\"",
        "runtime_id" => "add the runtime's id, e.g. runtime_id = \"build-1\"",
        "base_url" => "add the runtime's address, e.g. base_url = \"http://127.0.0.1:7701\"",
        "token_sha256" => "add the token's SHA-256; `switchyard token` prints the lines to paste",
        "role" => "add role = \"viewer\", \"operator\" or \"admin\"",
        "name" => "add the identity's name, e.g. name = \"alice\"",
        _ => "add it",
    }
}

/// Splits "PREFIXname` rest" into ("name", " rest").
fn quoted_prefix<'a>(message: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    message.strip_prefix(prefix)?.split_once('`')
}

/// `base.leaf`, unless `base` already ends with the leaf.
fn with_leaf(base: &str, leaf: &str) -> String {
    if base.is_empty() || base == leaf {
        leaf.to_owned()
    } else if base.ends_with(&format!(".{leaf}")) {
        base.to_owned()
    } else {
        format!("{base}.{leaf}")
    }
}

/// Drops the text of a mistyped string value from a serde message, so that a token
/// pasted into the wrong key is not echoed: `invalid type: string "x", expected u32`
/// becomes `invalid type: a string, expected u32`.
fn redact_string(message: &str) -> String {
    let Some(start) = message.find("string \"") else {
        return message.to_owned();
    };
    let Some(end) = message.rfind("\", expected") else {
        return message.to_owned();
    };
    if end < start {
        return message.to_owned();
    }
    format!("{}a string{}", &message[..start], &message[end + 1..])
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_mistyped_strings() {
        assert_eq!(
            redact_string("invalid type: string \"s3cret\", expected u32"),
            "invalid type: a string, expected u32"
        );
        assert_eq!(
            redact_string("invalid type: integer `3`"),
            "invalid type: integer `3`"
        );
    }

    #[test]
    fn joins_leaf_keys() {
        assert_eq!(with_leaf("", "x"), "x");
        assert_eq!(with_leaf("remote[0]", "tokn"), "remote[0].tokn");
        assert_eq!(with_leaf("remote[0].tokn", "tokn"), "remote[0].tokn");
    }

    #[test]
    fn counts_lines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
