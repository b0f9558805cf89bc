//! The contract's two example files parse into the settings they describe.

use std::time::Duration;

use switchyard_runtime::{ProcessSpec, ProfileSpec};

use super::support::{Dir, SECRET, env_of, no_env, runtime_args, serve_args};
use crate::config::{load_backend_settings, load_runtime_settings};

const BACKEND_EXAMPLE: &str = r#"
listen = "127.0.0.1:7700"
allowed_origins = ["http://localhost:5173"]

[embedded]                      # omit the table for no embedded runtime
runtime_id = "local"
display_name = "This machine"
data_dir = "var/local"          # omit to keep it in memory

[embedded.profiles.shell]
kind = "process"
command = ["/bin/sh"]
description = "POSIX shell"

[[remote]]
runtime_id = "build-1"
display_name = "Build host 1"
base_url = "http://127.0.0.1:7701"
token_env = "BUILD1_TOKEN"      # or token_file = "secrets/build-1.token"
connect_timeout_ms = 2000
request_timeout_ms = 5000
"#;

const RUNTIME_EXAMPLE: &str = r#"
runtime_id = "build-1"
display_name = "Build host 1"
listen = "127.0.0.1:7701"
token_file = "secrets/build-1.token"   # or token_env = "..."
data_dir = "var/build-1"               # omit to keep it in memory
max_workers = 64                       # workers starting or running at once

[profiles.shell]
kind = "process"
command = ["/bin/sh"]
env = { LC_ALL = "C" }
"#;

#[test]
fn contract_backend_example_parses() {
    let dir = Dir::new();
    let path = dir.write("backend.toml", BACKEND_EXAMPLE);
    let env = env_of(&[("BUILD1_TOKEN", &format!("{SECRET}\n"))]);
    let s = load_backend_settings(&serve_args(&path), &env).unwrap();

    assert_eq!(s.listen.to_string(), "127.0.0.1:7700");
    assert_eq!(s.allowed_origins, ["http://localhost:5173"]);
    assert_eq!(s.max_body_bytes, 1024 * 1024);
    assert_eq!(s.health_interval, Duration::from_millis(5000));

    let embedded = s.embedded.as_ref().unwrap();
    assert_eq!(embedded.runtime.runtime_id.as_str(), "local");
    assert_eq!(embedded.runtime.display_name, "This machine");
    assert_eq!(
        embedded.data_dir.as_deref(),
        Some(dir.path("var/local").as_path())
    );
    let names: Vec<_> = embedded
        .runtime
        .profiles
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["echo", "shell"]);
    let shell = &embedded.runtime.profiles["shell"];
    assert_eq!(shell.description.as_deref(), Some("POSIX shell"));
    assert_eq!(
        shell.spec,
        ProfileSpec::Process(ProcessSpec {
            command: vec!["/bin/sh".into()],
            env: Default::default(),
            cwd: None,
        })
    );

    assert_eq!(s.remotes.len(), 1);
    let remote = &s.remotes[0];
    assert_eq!(remote.runtime_id.as_str(), "build-1");
    assert_eq!(remote.display_name, "Build host 1");
    assert_eq!(remote.base_url, "http://127.0.0.1:7701");
    assert_eq!(remote.token.expose(), SECRET);
    assert_eq!(remote.connect_timeout, Duration::from_millis(2000));
    assert_eq!(remote.request_timeout, Duration::from_millis(5000));
}

#[test]
fn contract_runtime_example_parses() {
    let dir = Dir::new();
    dir.write("secrets/build-1.token", &format!("{SECRET}\n"));
    let path = dir.write("runtime.toml", RUNTIME_EXAMPLE);
    let s = load_runtime_settings(&runtime_args(&path), &no_env).unwrap();

    assert_eq!(s.listen.to_string(), "127.0.0.1:7701");
    assert_eq!(s.token.as_ref().unwrap().expose(), SECRET);
    assert_eq!(
        s.data_dir.as_deref(),
        Some(dir.path("var/build-1").as_path())
    );
    assert_eq!(s.runtime.runtime_id.as_str(), "build-1");
    assert_eq!(s.runtime.display_name, "Build host 1");
    assert_eq!(s.runtime.limits.max_workers, 64);
    let ProfileSpec::Process(shell) = &s.runtime.profiles["shell"].spec else {
        panic!("shell is a process profile");
    };
    assert_eq!(shell.command, ["/bin/sh"]);
    assert_eq!(shell.env.get("LC_ALL").map(String::as_str), Some("C"));
    assert!(s.runtime.profiles.contains_key("echo"));
}
