//! `[auth]`, `allowed_hosts` and the loopback rule of `switchyard serve`.

use std::time::Duration;

use switchyard_registry::{Role, RuntimeGrants, WorkerScope};

use super::support::{Dir, assert_names, no_env, serve_args};
use crate::auth::TokenHash;
use crate::config::{AuthSettings, ConfigError, ServeArgs, load_backend_settings};

/// A `token_sha256` value that must never be echoed (it might be a pasted token).
const PASTED: &str = "sy_Pasted-Token-Value-Do-Not-Echo";

fn hash_of(token: &str) -> String {
    TokenHash::of(token).to_hex()
}

/// A failed load: the directory (kept alive), the file and the error.
type Failure = Box<(Dir, std::path::PathBuf, ConfigError)>;

fn load(text: &str) -> Result<crate::config::BackendSettings, Failure> {
    let dir = Dir::new();
    dir.write("secrets/session.key", &"k".repeat(40));
    dir.write("secrets/short.key", "short");
    let path = dir.write("backend.toml", text);
    load_backend_settings(&serve_args(&path), &no_env).map_err(|e| Box::new((dir, path, e)))
}

fn load_err(text: &str) -> (Dir, std::path::PathBuf, ConfigError) {
    match load(text) {
        Ok(settings) => panic!("accepted: {settings:?}"),
        Err(err) => *err,
    }
}

#[test]
fn tokens_roles_grants_and_sessions_are_read() {
    let text = format!(
        "listen = \"0.0.0.0:7700\"\n\
         allowed_hosts = [\"Switchyard.Example.com\", \"10.0.0.5\", \"::1\"]\n\
         [auth]\n\
         session_key_file = \"secrets/session.key\"\n\
         session_ttl_s = 600\n\
         signed_out_file = \"var/signed-out\"\n\
         [[auth.token]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\nrole = \"operator\"\nruntimes = [\"local\", \"build-*\"]\n\
         [[auth.token]]\nname = \"bob@example.com\"\ntoken_sha256 = \"{}\"\nrole = \"viewer\"\nworkers = \"all\"\n\
         [[auth.token]]\nname = \"root\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\n",
        hash_of("a"),
        hash_of("b").to_ascii_uppercase(),
        hash_of("c"),
    );
    let settings = load(&text).map_err(|e| e.2).unwrap();
    assert_eq!(
        settings.allowed_hosts,
        ["switchyard.example.com", "10.0.0.5", "[::1]"]
    );
    let AuthSettings::Tokens(auth) = &settings.auth else {
        panic!("auth is on: {:?}", settings.auth);
    };
    assert!(settings.auth.is_on());
    assert_eq!(auth.session_ttl, Duration::from_secs(600));
    assert!(auth.session_key.is_some());
    assert!(
        auth.signed_out_file
            .as_ref()
            .is_some_and(|f| f.is_absolute() && f.ends_with("var/signed-out")),
        "resolved against the file's directory: {:?}",
        auth.signed_out_file
    );
    /// (name, token, role, runtimes granted, worker scope)
    type Expected<'a> = (&'a str, &'a str, Role, Option<Vec<&'a str>>, WorkerScope);
    let expected: [Expected<'_>; 3] = [
        (
            "alice",
            "a",
            Role::Operator,
            Some(vec!["local", "build-*"]),
            WorkerScope::Own,
        ),
        ("bob@example.com", "b", Role::Viewer, None, WorkerScope::All),
        ("root", "c", Role::Admin, None, WorkerScope::All),
    ];
    assert_eq!(auth.tokens.len(), expected.len());
    for (entry, (name, token, role, runtimes, workers)) in auth.tokens.iter().zip(expected) {
        assert_eq!(entry.name, name);
        assert_eq!(entry.hash, TokenHash::of(token), "{name}");
        assert_eq!(entry.role, role, "{name}");
        assert_eq!(entry.workers, workers, "{name}");
        match (runtimes, &entry.runtimes) {
            (None, RuntimeGrants::All) => {}
            (Some(globs), RuntimeGrants::Only(got)) => {
                let got: Vec<&str> = got.iter().map(|g| g.as_str()).collect();
                assert_eq!(got, globs, "{name}");
            }
            (want, got) => panic!("{name}: expected {want:?}, got {got:?}"),
        }
    }
    // Neither the hashes nor the key show in Debug output.
    let debug = format!("{settings:?}");
    for token in ["a", "b", "c"] {
        assert!(!debug.contains(&hash_of(token)[..16]), "{debug}");
    }
    assert!(!debug.contains("kkkk"), "{debug}");
}

#[test]
fn session_defaults_and_open_mode() {
    let text = format!(
        "[auth]\n[[auth.token]]\nname = \"a\"\ntoken_sha256 = \"{}\"\nrole = \"viewer\"\n",
        hash_of("a")
    );
    let settings = load(&text).map_err(|e| e.2).unwrap();
    let AuthSettings::Tokens(auth) = &settings.auth else {
        panic!("auth is on");
    };
    assert_eq!(auth.session_ttl, Duration::from_secs(43_200));
    assert!(auth.session_key.is_none(), "a random key per process");

    let open = load("listen = \"0.0.0.0:7700\"\n[auth]\nopen = true\n")
        .map_err(|e| e.2)
        .unwrap();
    assert!(matches!(open.auth, AuthSettings::Open));
    assert!(!open.auth.is_on());
    let off = load("[embedded]\n").map_err(|e| e.2).unwrap();
    assert!(matches!(off.auth, AuthSettings::Off));
}

#[test]
fn a_non_loopback_listen_needs_auth() {
    // (listen, [auth] table, accepted)
    let token = format!(
        "[auth]\n[[auth.token]]\nname = \"a\"\ntoken_sha256 = \"{}\"\nrole = \"viewer\"\n",
        hash_of("a")
    );
    let cases: &[(&str, &str, bool)] = &[
        ("127.0.0.1:7700", "", true),
        ("[::1]:7700", "", true),
        ("127.0.0.2:7700", "", true),
        ("0.0.0.0:7700", "", false),
        ("[::]:7700", "", false),
        ("10.0.0.5:7700", "", false),
        ("0.0.0.0:7700", "[auth]\nopen = true\n", true),
        ("10.0.0.5:7700", &token, true),
    ];
    for (listen, auth, accepted) in cases {
        let text = format!("listen = \"{listen}\"\n{auth}");
        match load(&text) {
            Ok(_) => assert!(accepted, "{listen} {auth:?} was accepted"),
            Err(failure) => {
                let (_d, path, err) = *failure;
                assert!(!accepted, "{listen} {auth:?}: {err}");
                assert!(matches!(err, ConfigError::OpenListen { .. }), "{err}");
                assert_names(&err, &path, "listen");
                assert!(err.to_string().contains("switchyard token"), "{err}");
            }
        }
    }
    // Without a file, the flag decides.
    for (listen, accepted) in [("0.0.0.0:7700", false), ("127.0.0.1:7700", true)] {
        let args = ServeArgs {
            config: None,
            listen: Some(listen.parse().unwrap()),
            ..ServeArgs::default()
        };
        let got = load_backend_settings(&args, &no_env);
        assert_eq!(got.is_ok(), accepted, "{listen}");
        if let Err(err) = got {
            assert_eq!(err.key(), Some("--listen"));
            assert_eq!(err.exit_code(), 2);
        }
    }
    // A flag overriding the file's loopback address is checked too.
    let dir = Dir::new();
    let path = dir.write("b.toml", "listen = \"127.0.0.1:7700\"\n");
    let args = ServeArgs {
        listen: Some("0.0.0.0:7700".parse().unwrap()),
        ..serve_args(&path)
    };
    let err = load_backend_settings(&args, &no_env).unwrap_err();
    assert_eq!(err.key(), Some("--listen"), "{err}");
}

/// One bad `[auth]` (or `allowed_hosts`) and the key its error must name.
fn check_error(text: &str, key: &str) {
    let (_d, path, err) = load_err(text);
    assert_names(&err, &path, key);
    let message = err.to_string();
    assert!(!message.contains(PASTED), "echoed: {message}");
    assert!(!message.contains(&hash_of("a")), "echoed a hash: {message}");
}

#[test]
fn every_auth_mistake_names_its_key() {
    let a = hash_of("a");
    let entry = |name: &str, hash: &str, rest: &str| {
        format!(
            "[[auth.token]]\nname = \"{name}\"\ntoken_sha256 = \"{hash}\"\nrole = \"viewer\"\n{rest}"
        )
    };
    let ok = entry("a", &a, "");
    let cases: Vec<(String, &str)> = vec![
        ("[auth]\n".into(), "auth.token"),
        ("[auth]\nopen = false\n".into(), "auth.token"),
        (format!("[auth]\nopen = true\n{ok}"), "auth.open"),
        (
            "[auth]\nopen = true\nsession_ttl_s = 5\n".into(),
            "auth.open",
        ),
        (format!("[auth]\nbogus = 1\n{ok}"), "auth.bogus"),
        (
            format!("[auth]\n{}", entry("a", &a, "colour = \"red\"\n")),
            "auth.token[0].colour",
        ),
        (
            format!("[auth]\n{}", entry("a", PASTED, "")),
            "auth.token[0].token_sha256",
        ),
        (
            format!("[auth]\n{}", entry("a", &"z".repeat(64), "")),
            "auth.token[0].token_sha256",
        ),
        (
            format!("[auth]\n{ok}{}", entry("b", &a, "")),
            "auth.token[1].token_sha256",
        ),
        (
            format!("[auth]\n{ok}{}", entry("a", &hash_of("b"), "")),
            "auth.token[1].name",
        ),
        (
            format!("[auth]\n{}", entry("", &a, "")),
            "auth.token[0].name",
        ),
        (
            format!("[auth]\n{}", entry("al ice", &a, "")),
            "auth.token[0].name",
        ),
        // Names audit lines give callers and owners that are no token's.
        (
            format!("[auth]\n{}", entry("-", &a, "")),
            "auth.token[0].name",
        ),
        (
            format!("[auth]\n{}", entry("anonymous", &a, "")),
            "auth.token[0].name",
        ),
        (
            format!(
                "[auth]\n[[auth.token]]\nname = \"a\"\ntoken_sha256 = \"{a}\"\nrole = \"root\"\n"
            ),
            "auth.token[0].role",
        ),
        (
            "[auth]\n[[auth.token]]\nname = \"a\"\nrole = \"viewer\"\n".to_owned(),
            "auth.token[0].token_sha256",
        ),
        (
            format!("[auth]\n[[auth.token]]\nname = \"a\"\ntoken_sha256 = \"{a}\"\n"),
            "auth.token[0].role",
        ),
        (
            format!("[auth]\n{}", entry("a", &a, "runtimes = []\n")),
            "auth.token[0].runtimes",
        ),
        (
            format!(
                "[auth]\n{}",
                entry("a", &a, "runtimes = [\"ok\", \"a/b\"]\n")
            ),
            "auth.token[0].runtimes[1]",
        ),
        (
            format!("[auth]\n{}", entry("a", &a, "workers = \"some\"\n")),
            "auth.token[0].workers",
        ),
        (
            format!(
                "[auth]\n[[auth.token]]\nname = \"a\"\ntoken_sha256 = \"{a}\"\nrole = \"admin\"\nworkers = \"own\"\n"
            ),
            "auth.token[0].workers",
        ),
        (
            format!("[auth]\nsession_ttl_s = 0\n{ok}"),
            "auth.session_ttl_s",
        ),
        (
            format!("[auth]\nsession_ttl_s = 99999999\n{ok}"),
            "auth.session_ttl_s",
        ),
        (
            format!("[auth]\nsession_key_file = \"secrets/short.key\"\n{ok}"),
            "auth.session_key_file",
        ),
        (
            format!("[auth]\nsession_key_file = \"secrets/missing.key\"\n{ok}"),
            "auth.session_key_file",
        ),
        (
            format!("[auth]\nsigned_out_file = \"var/signed-out\"\n{ok}"),
            "auth.signed_out_file",
        ),
        (
            "[auth]\nopen = true\nsigned_out_file = \"var/signed-out\"\n".into(),
            "auth.open",
        ),
        (
            "allowed_hosts = [\"ok.example\", \"h:1\"]\n".into(),
            "allowed_hosts[1]",
        ),
        (
            "allowed_hosts = [\"*.example\"]\n".into(),
            "allowed_hosts[0]",
        ),
        (
            "allowed_hosts = [\"http://h\"]\n".into(),
            "allowed_hosts[0]",
        ),
    ];
    for (text, key) in &cases {
        check_error(text, key);
    }
}
