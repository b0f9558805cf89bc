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
        ProfileSpec::Process(ProcessSpec::new(["/bin/sh"]))
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
    assert_eq!(s.tokens.len(), 1);
    assert_eq!(s.tokens[0].expose(), SECRET);
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

/// The contract's TLS section: the runtime's `[tls]` table and a remote's TLS keys,
/// with the files they name.
#[test]
fn contract_tls_examples_parse() {
    use switchyard_e2e::certs::Ca;

    let dir = Dir::new();
    let runtimes = Ca::new("Runtimes CA");
    let backends = Ca::new("Backends CA");
    let server = runtimes.server(&["build-1.internal"]);
    let client = backends.client("backend");
    dir.write("tls/runtime.crt", &server.cert_pem);
    dir.write("tls/runtime.key", &server.key_pem);
    dir.write("tls/backends.crt", &backends.pem());
    dir.write("tls/runtimes-ca.crt", &runtimes.pem());
    dir.write("tls/backend.crt", &client.cert_pem);
    dir.write("tls/backend.key", &client.key_pem);
    dir.write("secrets/build-1.token", &format!("{SECRET}\n"));

    let runtime = dir.write(
        "runtime.toml",
        r#"
token_file = "secrets/build-1.token"

[tls]
cert_file = "tls/runtime.crt"        # PEM: certificate chain
key_file = "tls/runtime.key"         # PEM: PKCS#8, PKCS#1 or SEC1 key
client_ca_file = "tls/backends.crt"  # optional: require a client certificate signed by this CA
"#,
    );
    let s = load_runtime_settings(&runtime_args(&runtime), &no_env).unwrap();
    let tls = s.tls.expect("[tls]");
    assert_eq!(tls.files.cert.path, dir.path("tls/runtime.crt"));
    assert_eq!(
        tls.files.client_ca.map(|f| f.path),
        Some(dir.path("tls/backends.crt"))
    );

    let backend = dir.write(
        "backend.toml",
        r#"
[[remote]]
runtime_id = "build-1"
token_file = "secrets/build-1.token"
base_url = "https://build-1.internal:7701"
ca_file = "tls/runtimes-ca.crt"       # trust anchors; without it, the system's roots
client_cert_file = "tls/backend.crt"  # with client_key_file: a client certificate (mTLS)
client_key_file = "tls/backend.key"
tls_server_name = "build-1.internal"  # the name to verify when base_url has an IP address
"#,
    );
    let s = load_backend_settings(&serve_args(&backend), &no_env).unwrap();
    let remote = &s.remotes[0];
    assert_eq!(remote.base_url, "https://build-1.internal:7701");
    let tls = remote.tls.as_ref().expect("TLS settings");
    assert_eq!(
        tls.server_name_override().as_deref(),
        Some("build-1.internal")
    );
    assert!(!remote.insecure_http);
}

/// Which file a README example is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Backend,
    Runtime,
}

/// Every ```toml block of README.md, in order.
fn readme_toml_blocks() -> Vec<&'static str> {
    const README: &str = include_str!("../../../../../README.md");
    README
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .collect()
}

#[test]
fn every_toml_example_in_the_readme_uses_only_keys_and_types_a_config_file_accepts() {
    use crate::config::file::{BackendFile, RuntimeFile};
    let kinds: Vec<(Kind, &str)> = readme_toml_blocks()
        .into_iter()
        .map(|block| {
            let backend = toml::from_str::<BackendFile>(block);
            let runtime = toml::from_str::<RuntimeFile>(block);
            match (backend, runtime) {
                (Ok(_), Err(_)) => (Kind::Backend, block),
                (Err(_), Ok(_)) => (Kind::Runtime, block),
                (Ok(_), Ok(_)) => panic!("both a backend and a runtime file:\n{block}"),
                (Err(b), Err(r)) => {
                    panic!(
                        "neither file accepts it:\n{block}\nas a backend: {b}\nas a runtime: {r}"
                    )
                }
            }
        })
        .collect();
    let expected = [
        Kind::Backend, // [auth]
        Kind::Runtime, // A standalone runtime
        Kind::Backend, // Backend configuration
        Kind::Runtime, // Across hosts: the runtime's [tls]
        Kind::Backend, // Across hosts: a remote over TLS
    ];
    assert_eq!(
        kinds.iter().map(|(kind, _)| *kind).collect::<Vec<_>>(),
        expected,
        "README's toml blocks changed: update this list"
    );
}
