//! Every kind of configuration error names the file and the key.

use super::support::{Dir, SECRET, assert_names, env_of, no_env, runtime_args, serve_args};
use crate::config::{ConfigError, load_backend_settings, load_runtime_settings};

fn runtime_err(text: &str) -> (Dir, std::path::PathBuf, ConfigError) {
    let dir = Dir::new();
    let path = dir.write("runtime.toml", text);
    let err = load_runtime_settings(&runtime_args(&path), &no_env).unwrap_err();
    (dir, path, err)
}

fn backend_err(text: &str) -> (Dir, std::path::PathBuf, ConfigError) {
    let dir = Dir::new();
    dir.write("secrets/t.token", SECRET);
    let path = dir.write("backend.toml", text);
    let env = env_of(&[("T", SECRET)]);
    let err = load_backend_settings(&serve_args(&path), &env).unwrap_err();
    (dir, path, err)
}

#[test]
fn unknown_top_level_key() {
    let (_d, path, err) = runtime_err("runtime_id = \"a\"\nlisen = \"127.0.0.1:1\"\n");
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
    assert_names(&err, &path, "lisen");
    let message = err.to_string();
    assert!(message.contains("line 2"), "{message}");
    assert!(
        message.contains("`listen`"),
        "expected keys listed: {message}"
    );
}

#[test]
fn unknown_key_in_remote() {
    let (_d, path, err) = backend_err(
        "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://h:1\"\ntoken_env = \"T\"\n\n\
         [[remote]]\nruntime_id = \"b\"\nbase_url = \"http://h:2\"\ntokn = \"T\"\n",
    );
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
    assert_names(&err, &path, "remote[1].tokn");
}

#[test]
fn unknown_key_in_profile() {
    let (_d, path, err) =
        runtime_err("[profiles.shell]\nkind = \"process\"\ncommand = [\"sh\"]\nargs = []\n");
    assert_names(&err, &path, "profiles.shell.args");
}

#[test]
fn unknown_key_in_embedded_profile() {
    let (_d, path, err) = backend_err("[embedded.profiles.e]\nkind = \"echo\"\ncolour = \"red\"\n");
    assert_names(&err, &path, "embedded.profiles.e.colour");
}

#[test]
fn syntax_error_names_file_and_line() {
    let (_d, path, err) = runtime_err("runtime_id = \"a\"\nlisten = \n");
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    assert_eq!(err.file(), Some(path.as_path()));
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn wrong_type_names_key_without_echoing_strings() {
    let (_d, path, err) = runtime_err(&format!("max_workers = \"{SECRET}\"\n"));
    assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err}");
    assert_names(&err, &path, "max_workers");
}

#[test]
fn unknown_profile_kind() {
    let (_d, path, err) = runtime_err("[profiles.x]\nkind = \"docker\"\n");
    assert_names(&err, &path, "profiles.x.kind");
}

#[test]
fn missing_profile_kind() {
    let (_d, path, err) = runtime_err("[profiles.x]\ncommand = [\"sh\"]\n");
    assert!(matches!(err, ConfigError::MissingKey { .. }), "{err}");
    assert_names(&err, &path, "profiles.x.kind");
}

#[test]
fn missing_remote_base_url() {
    let (_d, path, err) = backend_err("[[remote]]\nruntime_id = \"a\"\ntoken_env = \"T\"\n");
    assert!(matches!(err, ConfigError::MissingKey { .. }), "{err}");
    assert_names(&err, &path, "remote[0].base_url");
}

#[test]
fn invalid_runtime_ids() {
    for bad in ["", ".hidden", "has space", &"x".repeat(65)] {
        let (_d, path, err) = runtime_err(&format!("runtime_id = {bad:?}\n"));
        assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err}");
        assert_names(&err, &path, "runtime_id");
    }
    let (_d, path, err) = backend_err("[embedded]\nruntime_id = \"a/b\"\n");
    assert_names(&err, &path, "embedded.runtime_id");
    let (_d, path, err) = backend_err(
        "[[remote]]\nruntime_id = \"é\"\nbase_url = \"http://h:1\"\ntoken_env = \"T\"\n",
    );
    assert_names(&err, &path, "remote[0].runtime_id");
}

#[test]
fn invalid_listen() {
    for bad in ["localhost:7701", "127.0.0.1", "1.2.3.4:99999", ""] {
        let (_d, path, err) = runtime_err(&format!("listen = {bad:?}\n"));
        assert_names(&err, &path, "listen");
    }
    let (_d, path, err) = backend_err("listen = \"nope\"\n[embedded]\n");
    assert_names(&err, &path, "listen");
}

#[test]
fn empty_command() {
    let (_d, path, err) = runtime_err("[profiles.p]\nkind = \"process\"\ncommand = []\n");
    assert_names(&err, &path, "profiles.p.command");
    let (_d, path, err) = runtime_err("[profiles.p]\nkind = \"process\"\ncommand = [\"\"]\n");
    assert_names(&err, &path, "profiles.p.command");
}

#[test]
fn process_profile_without_command() {
    let (_d, path, err) = runtime_err("[profiles.p]\nkind = \"process\"\n");
    assert!(matches!(err, ConfigError::MissingKey { .. }), "{err}");
    assert_names(&err, &path, "profiles.p.command");
}

#[test]
fn echo_profile_with_process_keys() {
    let (_d, path, err) = runtime_err("[profiles.e]\nkind = \"echo\"\ncommand = [\"sh\"]\n");
    assert_names(&err, &path, "profiles.e.command");
    let (_d, path, err) = runtime_err("[profiles.e]\nkind = \"echo\"\ncwd = \"/tmp\"\n");
    assert_names(&err, &path, "profiles.e.cwd");
    let (_d, path, err) =
        runtime_err("[profiles.p]\nkind = \"process\"\ncommand = [\"sh\"]\ndelay_ms = 5\n");
    assert_names(&err, &path, "profiles.p.delay_ms");
}

#[test]
fn pty_profile_errors_name_the_key() {
    for (text, key) in [
        ("[profiles.t]\nkind = \"pty\"\n", "profiles.t.command"),
        (
            "[profiles.t]\nkind = \"pty\"\ncommand = []\n",
            "profiles.t.command",
        ),
        (
            "[profiles.t]\nkind = \"pty\"\ncommand = [\"sh\"]\ncols = 0\n",
            "profiles.t.cols",
        ),
        (
            "[profiles.t]\nkind = \"pty\"\ncommand = [\"sh\"]\nrows = 1001\n",
            "profiles.t.rows",
        ),
        (
            "[profiles.t]\nkind = \"pty\"\ncommand = [\"sh\"]\ndelay_ms = 1\n",
            "profiles.t.delay_ms",
        ),
        (
            "[profiles.p]\nkind = \"process\"\ncommand = [\"sh\"]\ncols = 80\n",
            "profiles.p.cols",
        ),
        (
            "[profiles.e]\nkind = \"echo\"\nrows = 24\n",
            "profiles.e.rows",
        ),
        (
            "[profiles.e]\nkind = \"echo\"\nidle_timeout_s = 0\n",
            "profiles.e.idle_timeout_s",
        ),
        (
            "[profiles.t]\nkind = \"pty\"\ncommand = [\"sh\"]\nidle_timeout_s = -5\n",
            "profiles.t.idle_timeout_s",
        ),
        (
            "[profiles.t]\nkind = \"pty\"\ncommand = [\"sh\"]\ncols = 70000\n",
            "profiles.t.cols",
        ),
    ] {
        let (_d, path, err) = runtime_err(text);
        assert_names(&err, &path, key);
    }
}

#[test]
fn echo_name_must_be_echo_kind() {
    let (_d, path, err) = runtime_err("[profiles.echo]\nkind = \"process\"\ncommand = [\"cat\"]\n");
    assert_names(&err, &path, "profiles.echo.kind");
}

#[test]
fn bad_profile_name_and_env() {
    let (_d, path, err) = runtime_err("[profiles.\"a b\"]\nkind = \"echo\"\n");
    assert_names(&err, &path, "profiles.a b");
    let (_d, path, err) = runtime_err(
        "[profiles.p]\nkind = \"process\"\ncommand = [\"sh\"]\nenv = { \"A=B\" = \"x\" }\n",
    );
    assert_names(&err, &path, "profiles.p.env");
    let (_d, path, err) = runtime_err(
        "[profiles.p]\nkind = \"process\"\ncommand = [\"sh\"]\nenv = { \"\" = \"x\" }\n",
    );
    assert_names(&err, &path, "profiles.p.env");
}

#[test]
fn zero_limits() {
    let (_d, path, err) = runtime_err("max_workers = 0\n");
    assert_names(&err, &path, "max_workers");
    let (_d, path, err) = backend_err("[embedded]\nevent_backlog = 0\n");
    assert_names(&err, &path, "embedded.event_backlog");
    let (_d, path, err) = runtime_err("input_queue = -1\n");
    assert_names(&err, &path, "input_queue");
    let (_d, path, err) = backend_err(
        "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://h:1\"\ntoken_env = \"T\"\nrequest_timeout_ms = 0\n",
    );
    assert_names(&err, &path, "remote[0].request_timeout_ms");
}

/// Durations and sizes out of their range (a typo of a few digits) are refused
/// naming the key and the range, at both ends where there is one.
#[test]
fn out_of_range_durations_and_sizes() {
    let remote = "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://h:1\"\ntoken_env = \"T\"\n";
    let backend_cases = [
        (
            "drain_ms = 999999999999\n".to_owned(),
            "drain_ms",
            "from 0 to 3600000",
        ),
        (
            "health_interval_ms = 1\n".to_owned(),
            "health_interval_ms",
            "from 100 to 3600000",
        ),
        (
            "max_body_bytes = 99999999999999\n".to_owned(),
            "max_body_bytes",
            "from 1 to 1073741824",
        ),
        (
            format!("{remote}request_timeout_ms = 99999999999\n"),
            "remote[0].request_timeout_ms",
            "from 1 to 3600000",
        ),
        (
            format!("{remote}connect_timeout_ms = 3600001\n"),
            "remote[0].connect_timeout_ms",
            "from 1 to 3600000",
        ),
        (
            format!("{remote}stream_idle_timeout_ms = 9223372036854775807\n"),
            "remote[0].stream_idle_timeout_ms",
            "from 1 to 3600000",
        ),
        (
            "[embedded]\nstop_grace_ms = 3600001\n".to_owned(),
            "embedded.stop_grace_ms",
            "from 0 to 3600000",
        ),
    ];
    for (text, key, range) in backend_cases {
        let (_d, path, err) = backend_err(&text);
        assert_names(&err, &path, key);
        assert!(err.to_string().contains(range), "{key}: {err}");
    }
    let runtime_cases = [
        (
            "stop_grace_ms = 9223372036854775807\n",
            "stop_grace_ms",
            "from 0 to 3600000",
        ),
        (
            "max_input_bytes = 2097153\n",
            "max_input_bytes",
            "from 1 to 2097152",
        ),
        (
            "[profiles.slow]\nkind = \"echo\"\ndelay_ms = 3600001\n",
            "profiles.slow.delay_ms",
            "from 0 to 3600000",
        ),
        (
            "[profiles.idle]\nkind = \"echo\"\nidle_timeout_s = 2592001\n",
            "profiles.idle.idle_timeout_s",
            "from 1 to 2592000",
        ),
    ];
    for (text, key, range) in runtime_cases {
        let (_d, path, err) = runtime_err(text);
        assert_names(&err, &path, key);
        assert!(err.to_string().contains(range), "{key}: {err}");
    }
}

#[test]
fn bad_base_url() {
    for bad in [
        "127.0.0.1:7701",
        "ftp://badhost:1",
        "http://badhost",
        "http://u:pw@badhost:1",
        "http://badhost:1?x",
    ] {
        let (_d, path, err) = backend_err(&format!(
            "[[remote]]\nruntime_id = \"a\"\nbase_url = {bad:?}\ntoken_env = \"T\"\n"
        ));
        assert_names(&err, &path, "remote[0].base_url");
        let message = err.to_string();
        assert!(
            !message.contains("badhost") && !message.contains("127.0.0.1"),
            "URL echoed: {message}"
        );
    }
}

#[test]
fn bad_allowed_origin() {
    let (_d, path, err) = backend_err("allowed_origins = [\"http://ok:1\", \"*\"]\n[embedded]\n");
    assert_names(&err, &path, "allowed_origins[1]");
}

#[test]
fn remote_without_token_source() {
    let (_d, path, err) =
        backend_err("[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://h:1\"\n");
    assert!(matches!(err, ConfigError::MissingToken { .. }), "{err}");
    assert_names(&err, &path, "remote[0]");
}

#[test]
fn remote_with_both_token_sources() {
    let (_d, path, err) = backend_err(
        "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://h:1\"\ntoken_env = \"T\"\ntoken_file = \"secrets/t.token\"\n",
    );
    assert!(matches!(err, ConfigError::Conflict { .. }), "{err}");
    assert_names(&err, &path, "remote[0].token_env");
    assert!(err.to_string().contains("`remote[0].token_file`"), "{err}");
}

#[test]
fn runtime_with_both_token_sources() {
    let (_d, path, err) = runtime_err("token_file = \"t\"\ntoken_env = \"T\"\n");
    assert!(matches!(err, ConfigError::Conflict { .. }), "{err}");
    assert_names(&err, &path, "token_file");
}

#[test]
fn unreadable_token_file() {
    let (dir, path, err) = backend_err(
        "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://h:1\"\ntoken_file = \"secrets/missing.token\"\n",
    );
    assert!(
        matches!(err, ConfigError::TokenFileUnreadable { .. }),
        "{err}"
    );
    assert_names(&err, &path, "remote[0].token_file");
    let named = dir.path("secrets/missing.token").display().to_string();
    assert!(err.to_string().contains(&named), "{err}");
}

#[test]
fn empty_token_file() {
    let dir = Dir::new();
    dir.write("t.token", " \n");
    let path = dir.write("runtime.toml", "token_file = \"t.token\"\n");
    let err = load_runtime_settings(&runtime_args(&path), &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::TokenEmpty { .. }), "{err}");
    assert_names(&err, &path, "token_file");
}

#[test]
fn malformed_token_file() {
    for text in [
        format!("{SECRET} and more\n"),
        format!("{SECRET}\nsecond line\twith a tab\n"),
    ] {
        let dir = Dir::new();
        dir.write("t.token", &text);
        let path = dir.write("runtime.toml", "token_file = \"t.token\"\n");
        let err = load_runtime_settings(&runtime_args(&path), &no_env).unwrap_err();
        assert!(matches!(err, ConfigError::TokenMalformed { .. }), "{err}");
        assert_names(&err, &path, "token_file");
    }
}

/// A runtime accepts every token of its file (one per line, blank lines and
/// surrounding whitespace ignored), so that a token can be rotated.
#[test]
fn a_runtime_token_file_may_hold_several_tokens() {
    let dir = Dir::new();
    dir.write(
        "t.token",
        &format!("\n  {SECRET}-old \r\n\n{SECRET}-new\n\n"),
    );
    let path = dir.write("runtime.toml", "token_file = \"t.token\"\n");
    let settings = load_runtime_settings(&runtime_args(&path), &no_env).unwrap();
    let tokens: Vec<&str> = settings.tokens.iter().map(|t| t.expose()).collect();
    assert_eq!(
        tokens,
        [format!("{SECRET}-old"), format!("{SECRET}-new")],
        "in the file's order"
    );
    assert!(!format!("{settings:?}").contains(SECRET));
}

/// A backend sends one token: a remote's token file with two is refused, naming the
/// key, and the message (for the log and for an HTTP client) quotes neither token.
#[test]
fn a_backend_refuses_a_remote_token_file_with_several_tokens() {
    let dir = Dir::new();
    dir.write("two.token", &format!("{SECRET}-old\n{SECRET}-new\n"));
    dir.write("one.token", &format!("\n{SECRET}\n\n"));
    let path = dir.write(
        "backend.toml",
        "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_file = \"one.token\"\n\n\
         [[remote]]\nruntime_id = \"b\"\nbase_url = \"http://127.0.0.1:2\"\ntoken_file = \"two.token\"\n",
    );
    let err = load_backend_settings(&serve_args(&path), &no_env).unwrap_err();
    assert!(
        matches!(err, ConfigError::TokenFileHoldsMany { count: 2, .. }),
        "{err}"
    );
    assert_names(&err, &path, "remote[1].token_file");
    assert!(err.to_string().contains("exactly one"), "{err}");
    let client = err.client_message();
    assert!(client.contains("`remote[1].token_file`"), "{client}");
    assert!(
        !client.contains("two.token") && !client.contains(SECRET),
        "{client}"
    );

    // One token among blank lines is fine.
    dir.write("two.token", &format!("{SECRET}-new\n"));
    let settings = load_backend_settings(&serve_args(&path), &no_env).unwrap();
    assert_eq!(settings.remotes[0].token.expose(), SECRET);
    assert_eq!(settings.remotes[1].token.expose(), format!("{SECRET}-new"));
}

#[test]
fn unset_and_empty_token_env() {
    let (_d, path, err) = backend_err(
        "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://h:1\"\ntoken_env = \"UNSET_VAR\"\n",
    );
    assert!(matches!(err, ConfigError::TokenEnvUnset { .. }), "{err}");
    assert_names(&err, &path, "remote[0].token_env");
    assert!(err.to_string().contains("`UNSET_VAR`"), "{err}");

    let dir = Dir::new();
    let path = dir.write("runtime.toml", "token_env = \"EMPTY\"\n");
    let env = env_of(&[("EMPTY", "  ")]);
    let err = load_runtime_settings(&runtime_args(&path), &env).unwrap_err();
    assert!(matches!(err, ConfigError::TokenEmpty { .. }), "{err}");
    assert_names(&err, &path, "token_env");
}

#[test]
fn token_env_holding_a_token_is_not_echoed() {
    let (_d, path, err) = runtime_err(&format!("token_env = \"{SECRET}\"\n"));
    assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err}");
    assert_names(&err, &path, "token_env");
}

#[test]
fn duplicate_runtime_ids() {
    let remote = |id: &str, port: u16| {
        format!(
            "[[remote]]\nruntime_id = \"{id}\"\nbase_url = \"http://localhost:{port}\"\ntoken_env = \"T\"\n"
        )
    };
    let (_d, path, err) = backend_err(&format!("[embedded]\n{}", remote("local", 1)));
    assert!(
        matches!(err, ConfigError::DuplicateRuntimeId { .. }),
        "{err}"
    );
    assert_names(&err, &path, "remote[0].runtime_id");
    assert!(err.to_string().contains("`embedded.runtime_id`"), "{err}");

    let (_d, path, err) = backend_err(&format!(
        "{}{}{}",
        remote("a", 1),
        remote("b", 2),
        remote("a", 3)
    ));
    assert_names(&err, &path, "remote[2].runtime_id");
    assert!(err.to_string().contains("`remote[0].runtime_id`"), "{err}");
}

#[test]
fn no_runtimes_at_all_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:7700\"\n").unwrap();
    let args = crate::config::ServeArgs {
        config: Some(path),
        ..Default::default()
    };
    let settings = crate::config::load_backend_settings(&args, &|_| None).unwrap();
    assert!(settings.embedded.is_none());
    assert!(settings.remotes.is_empty());
}

#[test]
fn unreadable_config_file() {
    let dir = Dir::new();
    let path = dir.path("missing.toml");
    let err = load_runtime_settings(&runtime_args(&path), &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::ReadFile { .. }), "{err}");
    assert_eq!(err.file(), Some(path.as_path()));
    assert!(err.to_string().contains(&path.display().to_string()));
    let err = load_backend_settings(&serve_args(&path), &no_env).unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn missing_remote_runtime_id_says_what_to_add() {
    let (_d, path, err) = backend_err("[[remote]]\nbase_url = \"http://h:1\"\ntoken_env = \"T\"\n");
    assert_names(&err, &path, "remote[0].runtime_id");
    assert!(err.to_string().contains("runtime_id = \""), "{err}");
}

/// What a reload tells its HTTP client names the key and the configuration file but
/// no secret reference and nothing quoted from the file.
#[test]
fn client_messages_hold_no_secret_reference() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_file = \"hidden-dir/none.token\"\n",
            &["hidden-dir", "none.token"],
        ),
        (
            "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_env = \"HIDDEN_VAR\"\n",
            &["HIDDEN_VAR"],
        ),
        (
            "[auth]\nsession_key_file = \"hidden-dir/session.key\"\n\n[[auth.token]]\nname = \"a\"\n\
             token_sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n\
             role = \"admin\"\n",
            &["hidden-dir", "session.key"],
        ),
        (
            "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://10.9.8.7:1\ntoken_env = \"T\"\n",
            &["10.9.8.7"],
        ),
        (
            "[tls]\ncert_file = \"hidden-dir/cert.pem\"\nkey_file = \"hidden-dir/key.pem\"\n",
            &["hidden-dir", "cert.pem", "key.pem"],
        ),
        (
            "[[remote]]\nruntime_id = \"a\"\nbase_url = \"https://127.0.0.1:1\"\ntoken_env = \"T\"\n\
             ca_file = \"hidden-dir/ca.pem\"\n",
            &["hidden-dir", "ca.pem"],
        ),
    ];
    for (text, hidden) in cases {
        let (_d, path, err) = backend_err(text);
        let message = err.client_message();
        assert!(message.contains(&path.display().to_string()), "{message}");
        for secret in *hidden {
            assert!(!message.contains(secret), "{message}");
        }
    }
}

/// A bad `listen` in the file stops start-up (and a reload) even when `--listen`
/// overrides it.
#[test]
fn a_bad_listen_in_the_file_is_an_error_under_the_flag_too() {
    let dir = Dir::new();
    let path = dir.write("backend.toml", "listen = \"notanaddr\"\n");
    let mut args = serve_args(&path);
    args.listen = Some("127.0.0.1:0".parse().unwrap());
    let err = load_backend_settings(&args, &no_env).unwrap_err();
    assert_names(&err, &path, "listen");

    let path = dir.write(
        "runtime.toml",
        "runtime_id = \"a\"\nlisten = \"notanaddr\"\n",
    );
    let mut args = runtime_args(&path);
    args.listen = Some("127.0.0.1:0".parse().unwrap());
    let err = load_runtime_settings(&args, &no_env).unwrap_err();
    assert_names(&err, &path, "listen");
}

/// One error of every kind, in the order of [`pinned`].
fn one_of_each() -> Vec<ConfigError> {
    use std::io;
    use std::path::PathBuf;

    use crate::config::Origin;

    let origin = || Origin::file("backend.toml");
    let key = || "remote[0].base_url".to_owned();
    let path = || PathBuf::from("secrets/t.token");
    let io = || io::Error::from(io::ErrorKind::NotFound);
    let listen = "0.0.0.0:7700".parse().unwrap();
    vec![
        ConfigError::ReadFile {
            path: path(),
            source: io(),
        },
        ConfigError::Syntax {
            origin: origin(),
            message: "expected a value".into(),
        },
        ConfigError::UnknownKey {
            origin: origin(),
            key: key(),
            expected: "`listen`".into(),
        },
        ConfigError::MissingKey {
            origin: origin(),
            key: key(),
            hint: "add it".into(),
        },
        ConfigError::InvalidValue {
            origin: Origin::Code,
            key: key(),
            problem: "not a URL".into(),
        },
        ConfigError::Conflict {
            origin: origin(),
            key: key(),
            other: "remote[0].token_file".into(),
        },
        ConfigError::MissingToken {
            origin: origin(),
            key: "remote[0]".into(),
        },
        ConfigError::TokenFileUnreadable {
            origin: origin(),
            key: key(),
            path: path(),
            source: io(),
        },
        ConfigError::TokenEnvUnset {
            origin: Origin::Environment,
            key: key(),
            var: "T".into(),
        },
        ConfigError::TokenEmpty {
            origin: origin(),
            key: key(),
            from: "token file t.token".into(),
        },
        ConfigError::TokenMalformed {
            origin: origin(),
            key: key(),
            from: "token file t.token".into(),
        },
        ConfigError::TokenFileHoldsMany {
            origin: origin(),
            key: key(),
            path: path(),
            count: 2,
        },
        ConfigError::DuplicateRuntimeId {
            origin: origin(),
            key: key(),
            id: "a".into(),
            first: "remote[0].runtime_id".into(),
        },
        ConfigError::SessionKeyUnreadable {
            origin: origin(),
            key: key(),
            path: path(),
            source: io(),
        },
        ConfigError::TlsFileUnreadable {
            origin: Origin::CommandLine,
            key: key(),
            path: path(),
            source: io(),
        },
        ConfigError::TlsFileInvalid {
            origin: origin(),
            key: key(),
            path: path(),
            problem: "no certificate".into(),
        },
        ConfigError::TlsKeyMismatch {
            origin: origin(),
            key: key(),
            other: "tls.key_file".into(),
            files: Box::new([path(), path()]),
        },
        ConfigError::OpenListen {
            origin: origin(),
            key: key(),
            listen,
        },
        ConfigError::InsecureRemote {
            origin: origin(),
            key: key(),
            insecure: "remote[0].insecure_http".into(),
        },
        ConfigError::InsecureListen {
            origin: origin(),
            key: key(),
            listen,
        },
    ]
}

/// How many kinds of error there are: the arms of [`pinned`].
const KINDS: usize = 20;

/// Each kind's place in [`one_of_each`] and its code, written out so that a code
/// changed in `ConfigError::code` fails the test. A new kind does not compile here
/// until it is given a place (`KINDS`), an example and a code.
fn pinned(error: &ConfigError) -> (usize, &'static str) {
    match error {
        ConfigError::ReadFile { .. } => (0, "config_unreadable"),
        ConfigError::Syntax { .. } => (1, "invalid_toml"),
        ConfigError::UnknownKey { .. } => (2, "unknown_key"),
        ConfigError::MissingKey { .. } => (3, "missing_key"),
        ConfigError::InvalidValue { .. } => (4, "invalid_value"),
        ConfigError::Conflict { .. } => (5, "conflicting_keys"),
        ConfigError::MissingToken { .. } => (6, "missing_token"),
        ConfigError::TokenFileUnreadable { .. } => (7, "token_file_unreadable"),
        ConfigError::TokenEnvUnset { .. } => (8, "token_env_unset"),
        ConfigError::TokenEmpty { .. } => (9, "token_empty"),
        ConfigError::TokenMalformed { .. } => (10, "token_malformed"),
        ConfigError::TokenFileHoldsMany { .. } => (11, "token_file_holds_many"),
        ConfigError::DuplicateRuntimeId { .. } => (12, "duplicate_runtime_id"),
        ConfigError::SessionKeyUnreadable { .. } => (13, "session_key_unreadable"),
        ConfigError::TlsFileUnreadable { .. } => (14, "tls_file_unreadable"),
        ConfigError::TlsFileInvalid { .. } => (15, "tls_file_invalid"),
        ConfigError::TlsKeyMismatch { .. } => (16, "tls_key_mismatch"),
        ConfigError::OpenListen { .. } => (17, "open_listen"),
        ConfigError::InsecureRemote { .. } => (18, "insecure_remote"),
        ConfigError::InsecureListen { .. } => (19, "insecure_listen"),
    }
}

#[test]
fn every_kind_of_error_has_its_own_stable_code() {
    let errors = one_of_each();
    assert_eq!(errors.len(), KINDS, "one example of every kind");
    let mut codes = std::collections::HashSet::new();
    for (place, error) in errors.iter().enumerate() {
        let (expected_place, expected_code) = pinned(error);
        assert_eq!(place, expected_place, "{error:?} is out of place");
        assert_eq!(error.code(), expected_code, "{error:?}");
        assert!(
            !error.code().is_empty()
                && error
                    .code()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
            "snake_case: {}",
            error.code()
        );
        assert!(codes.insert(error.code()), "{} twice", error.code());
    }
}

#[test]
fn errors_read_from_files_carry_their_kinds_code() {
    let (_d, _, err) = runtime_err("runtime_id = \"a\"\nlisen = \"127.0.0.1:1\"\n");
    assert_eq!(err.code(), "unknown_key");
    let (_d, _, err) = runtime_err("runtime_id = \"a\"\nlisten = \n");
    assert_eq!(err.code(), "invalid_toml");
    let (_d, _, err) = backend_err(
        "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://h:1\"\ntoken_env = \"NOPE\"\n",
    );
    assert_eq!(err.code(), "token_env_unset", "{err}");
}
