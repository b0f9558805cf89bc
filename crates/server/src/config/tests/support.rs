//! Temporary config directories, a fake environment and assertions on errors.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::config::{ConfigError, RuntimeArgs, ServeArgs};

/// A token value that must never show up in messages or `Debug` output.
pub const SECRET: &str = "tok-3f9a-SECRET-value";

/// A temporary directory to write config and token files into.
pub struct Dir(TempDir);

impl Dir {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    /// `rel` inside the directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.path().join(rel)
    }

    /// Writes `text` to `rel`, creating parent directories; returns the path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }
}

/// A fake environment holding `pairs`.
pub fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

/// An empty environment.
pub fn no_env(_: &str) -> Option<String> {
    None
}

/// `switchyard runtime --config PATH`.
pub fn runtime_args(config: &Path) -> RuntimeArgs {
    RuntimeArgs {
        config: Some(config.to_path_buf()),
        ..RuntimeArgs::default()
    }
}

/// `switchyard serve --config PATH`.
pub fn serve_args(config: &Path) -> ServeArgs {
    ServeArgs {
        config: Some(config.to_path_buf()),
        ..ServeArgs::default()
    }
}

/// The error names `file` and `key`, in its accessors and its message, and never the
/// secret token.
pub fn assert_names(err: &ConfigError, file: &Path, key: &str) {
    let message = err.to_string();
    assert_eq!(err.file(), Some(file), "{message}");
    assert_eq!(err.key(), Some(key), "{message}");
    assert!(
        message.contains(&file.display().to_string()),
        "no file in: {message}"
    );
    assert!(
        message.contains(&format!("`{key}`")),
        "no key in: {message}"
    );
    assert!(!message.contains(SECRET), "token in: {message}");
    assert!(!format!("{err:?}").contains(SECRET), "token in Debug");
    assert_eq!(err.exit_code(), 2);
}
