//! `switchyard runtime`: defaults, flag overrides, token precedence, paths, profiles.

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_protocol::RuntimeId;
use switchyard_runtime::{ProfileSpec, RuntimeLimits};

use super::support::{Dir, SECRET, assert_names, env_of, no_env, runtime_args};
use crate::config::{ConfigError, Origin, RuntimeArgs, load_runtime_settings};

#[test]
fn defaults_without_config() {
    let s = load_runtime_settings(&RuntimeArgs::default(), &no_env).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:7701");
    assert!(s.tokens.is_empty());
    assert!(s.data_dir.is_none());
    assert_eq!(s.runtime.runtime_id.as_str(), "local");
    assert_eq!(s.runtime.display_name, "local");
    assert_eq!(s.runtime.limits, RuntimeLimits::default());
    let names: Vec<_> = s.runtime.profiles.keys().collect();
    assert_eq!(names, ["echo"]);
}

#[test]
fn display_name_defaults_to_runtime_id() {
    let dir = Dir::new();
    let path = dir.write("r.toml", "runtime_id = \"gpu-2\"\n");
    let s = load_runtime_settings(&runtime_args(&path), &no_env).unwrap();
    assert_eq!(s.runtime.display_name, "gpu-2");
}

#[test]
fn flags_override_the_file() {
    let dir = Dir::new();
    dir.write("file.token", "from-file");
    let path = dir.write(
        "r.toml",
        "runtime_id = \"a\"\nlisten = \"127.0.0.1:9000\"\ndata_dir = \"d\"\ntoken_file = \"file.token\"\n",
    );
    let flag_token = dir.write("flag.token", "from-flag\n");
    let args = RuntimeArgs {
        config: Some(path),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        runtime_id: Some(RuntimeId::new("b").unwrap()),
        token_file: Some(flag_token),
        data_dir: Some(dir.path("elsewhere")),
        ..RuntimeArgs::default()
    };
    let s = load_runtime_settings(&args, &no_env).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:0");
    assert_eq!(s.runtime.runtime_id.as_str(), "b");
    assert_eq!(s.tokens[0].expose(), "from-flag");
    assert_eq!(s.data_dir, Some(dir.path("elsewhere")));
}

#[test]
fn token_precedence() {
    let dir = Dir::new();
    dir.write("file.token", "from-file");
    let flag = dir.write("flag.token", "from-flag");
    let env = env_of(&[
        ("SWITCHYARD_RUNTIME_TOKEN", "from-default-env"),
        ("MY_TOKEN", "from-env"),
    ]);
    let token = |config: &str, flag: Option<&Path>| {
        let path = dir.write("r.toml", config);
        let args = RuntimeArgs {
            token_file: flag.map(Path::to_path_buf),
            ..runtime_args(&path)
        };
        let s = load_runtime_settings(&args, &env).unwrap();
        s.tokens[0].expose().to_owned()
    };
    assert_eq!(
        token("token_file = \"file.token\"\n", Some(&flag)),
        "from-flag"
    );
    assert_eq!(
        token("token_env = \"MY_TOKEN\"\n", Some(&flag)),
        "from-flag"
    );
    assert_eq!(token("token_file = \"file.token\"\n", None), "from-file");
    assert_eq!(token("token_env = \"MY_TOKEN\"\n", None), "from-env");
    assert_eq!(token("", None), "from-default-env");
}

#[test]
fn empty_default_token_env_is_an_error() {
    let env = env_of(&[("SWITCHYARD_RUNTIME_TOKEN", "")]);
    let err = load_runtime_settings(&RuntimeArgs::default(), &env).unwrap_err();
    assert!(matches!(err, ConfigError::TokenEmpty { .. }), "{err}");
    assert_eq!(err.origin(), Some(&Origin::Environment));
    assert_eq!(err.key(), Some("SWITCHYARD_RUNTIME_TOKEN"));
}

#[test]
fn unreadable_token_file_flag() {
    let dir = Dir::new();
    let args = RuntimeArgs {
        token_file: Some(dir.path("nope.token")),
        ..RuntimeArgs::default()
    };
    let err = load_runtime_settings(&args, &no_env).unwrap_err();
    assert!(
        matches!(err, ConfigError::TokenFileUnreadable { .. }),
        "{err}"
    );
    assert_eq!(err.key(), Some("--token-file"));
    assert!(err.to_string().starts_with("command line: "), "{err}");
}

#[test]
fn relative_paths_in_file_resolve_against_its_directory() {
    let dir = Dir::new();
    dir.write("conf/secrets/t.token", SECRET);
    let path = dir.write(
        "conf/r.toml",
        "token_file = \"secrets/t.token\"\ndata_dir = \"var/data\"\n\
         [profiles.p]\nkind = \"process\"\ncommand = [\"sh\"]\ncwd = \"work\"\n\
         [profiles.q]\nkind = \"process\"\ncommand = [\"sh\"]\ncwd = \"/abs\"\n",
    );
    let s = load_runtime_settings(&runtime_args(&path), &no_env).unwrap();
    assert_eq!(s.tokens.len(), 1);
    assert_eq!(s.tokens[0].expose(), SECRET);
    assert_eq!(s.data_dir, Some(dir.path("conf/var/data")));
    let cwd = |name: &str| match &s.runtime.profiles[name].spec {
        ProfileSpec::Process(p) => p.cwd.clone(),
        ProfileSpec::Pty(p) => p.cwd.clone(),
        _ => panic!("not a process"),
    };
    assert_eq!(cwd("p"), Some(dir.path("conf/work")));
    assert_eq!(cwd("q"), Some(PathBuf::from("/abs")));
}

#[test]
fn relative_flag_paths_resolve_against_current_directory() {
    let args = RuntimeArgs {
        data_dir: Some(PathBuf::from("rel/data")),
        ..RuntimeArgs::default()
    };
    let s = load_runtime_settings(&args, &no_env).unwrap();
    let expected = std::env::current_dir().unwrap().join("rel/data");
    assert_eq!(s.data_dir, Some(expected));
}

#[test]
fn refuses_non_loopback_without_token() {
    let args = RuntimeArgs {
        listen: Some("0.0.0.0:7701".parse().unwrap()),
        ..RuntimeArgs::default()
    };
    let err = load_runtime_settings(&args, &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::InsecureListen { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("refusing to listen on 0.0.0.0:7701 without a token; set --token-file, token_file/token_env, or SWITCHYARD_RUNTIME_TOKEN"),
        "{message}"
    );
    assert_eq!(err.key(), Some("--listen"));

    let dir = Dir::new();
    let path = dir.write("r.toml", "listen = \"[::]:7701\"\n");
    let err = load_runtime_settings(&runtime_args(&path), &no_env).unwrap_err();
    assert_names(&err, &path, "listen");

    // With a token it is allowed; other loopback addresses need none.
    let env = env_of(&[("SWITCHYARD_RUNTIME_TOKEN", SECRET)]);
    assert!(load_runtime_settings(&args, &env).is_ok());
    let path = dir.write("r.toml", "listen = \"127.0.0.2:7701\"\n");
    assert!(load_runtime_settings(&runtime_args(&path), &no_env).is_ok());
    let path = dir.write("r.toml", "listen = \"[::1]:7701\"\n");
    assert!(load_runtime_settings(&runtime_args(&path), &no_env).is_ok());
}

/// Beyond loopback a token must be long enough not to be guessed; on loopback any
/// token will do.
#[test]
fn refuses_a_short_token_beyond_loopback() {
    let beyond = RuntimeArgs {
        listen: Some("0.0.0.0:7701".parse().unwrap()),
        ..RuntimeArgs::default()
    };
    let short = env_of(&[("SWITCHYARD_RUNTIME_TOKEN", "x")]);
    let err = load_runtime_settings(&beyond, &short).unwrap_err();
    assert_eq!(err.key(), Some("SWITCHYARD_RUNTIME_TOKEN"), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("at least 16 characters (one has 1)")
            && message.contains("switchyard token"),
        "{message}"
    );
    assert!(
        !message.contains("\"x\""),
        "the token is not quoted: {message}"
    );
    let sixteen = env_of(&[("SWITCHYARD_RUNTIME_TOKEN", "0123456789abcdef")]);
    assert!(load_runtime_settings(&beyond, &sixteen).is_ok());
    let on_loopback = RuntimeArgs::default();
    assert!(load_runtime_settings(&on_loopback, &short).is_ok());

    let dir = Dir::new();
    dir.write("t", "0123456789abcdef\nshort\n");
    let path = dir.write("r.toml", "listen = \"0.0.0.0:7701\"\ntoken_file = \"t\"\n");
    let err = load_runtime_settings(&runtime_args(&path), &no_env).unwrap_err();
    assert_names(&err, &path, "token_file");
}

#[test]
fn limits_and_echo_profiles() {
    let dir = Dir::new();
    let path = dir.write(
        "r.toml",
        "max_workers = 3\nmax_input_bytes = 10\nmax_body_bytes = 20\ntranscript_page_max = 5\n\
         event_backlog = 6\ninput_queue = 7\nsubscriber_queue = 8\nstop_grace_ms = 0\n\
         [profiles.echo]\nkind = \"echo\"\ndelay_ms = 50\n\
         [profiles.slow]\nkind = \"echo\"\ndelay_ms = 500\ndescription = \"Slow echo\"\n",
    );
    let s = load_runtime_settings(&runtime_args(&path), &no_env).unwrap();
    let l = s.runtime.limits;
    assert_eq!(
        (
            l.max_workers,
            l.max_input_bytes,
            l.max_body_bytes,
            l.transcript_page_max
        ),
        (3, 10, 20, 5)
    );
    assert_eq!(
        (l.event_backlog, l.input_queue, l.subscriber_queue),
        (6, 7, 8)
    );
    assert_eq!(l.stop_grace, Duration::ZERO);
    assert_eq!(l.snapshot_items, RuntimeLimits::default().snapshot_items);
    assert_eq!(
        s.runtime.profiles["echo"].spec,
        ProfileSpec::Echo {
            delay: Duration::from_millis(50)
        }
    );
    assert_eq!(
        s.runtime.profiles["slow"].description.as_deref(),
        Some("Slow echo")
    );
}

#[test]
fn debug_never_shows_the_token() {
    let env = env_of(&[("SWITCHYARD_RUNTIME_TOKEN", SECRET)]);
    let s = load_runtime_settings(&RuntimeArgs::default(), &env).unwrap();
    assert!(!format!("{s:?}").contains(SECRET));
}

#[test]
fn max_connections_defaults_and_must_be_positive() {
    let s = load_runtime_settings(&RuntimeArgs::default(), &no_env).unwrap();
    assert_eq!(s.max_connections, 10_000);
    let dir = Dir::new();
    let path = dir.write("r.toml", "max_connections = 5\n");
    let s = load_runtime_settings(&runtime_args(&path), &no_env).unwrap();
    assert_eq!(s.max_connections, 5);
    let path = dir.write("zero.toml", "max_connections = 0\n");
    let error = load_runtime_settings(&runtime_args(&path), &no_env).unwrap_err();
    assert!(error.to_string().contains("max_connections"), "{error}");
}

#[test]
fn pty_profiles_with_size_env_and_idle_timeout() {
    let dir = Dir::new();
    let path = dir.write(
        "r.toml",
        "[profiles.bash]\nkind = \"pty\"\ncommand = [\"/bin/bash\", \"--login\"]\n\
         cols = 120\nrows = 32\nenv = { TERM = \"xterm-256color\" }\ncwd = \"work\"\n\
         idle_timeout_s = 600\ndescription = \"Bash\"\n\
         [profiles.small]\nkind = \"pty\"\ncommand = [\"sh\"]\n\
         [profiles.idle-echo]\nkind = \"echo\"\nidle_timeout_s = 5\n",
    );
    let s = load_runtime_settings(&runtime_args(&path), &no_env).unwrap();
    let bash = &s.runtime.profiles["bash"];
    assert_eq!(bash.idle_timeout, Some(std::time::Duration::from_secs(600)));
    assert_eq!(bash.description.as_deref(), Some("Bash"));
    let ProfileSpec::Pty(spec) = &bash.spec else {
        panic!("a pty profile: {bash:?}");
    };
    assert_eq!(spec.command, ["/bin/bash", "--login"]);
    assert_eq!((spec.cols, spec.rows), (120, 32));
    assert_eq!(spec.env["TERM"], "xterm-256color");
    assert_eq!(spec.cwd, Some(dir.path("work")));
    let ProfileSpec::Pty(small) = &s.runtime.profiles["small"].spec else {
        panic!("a pty profile");
    };
    assert_eq!((small.cols, small.rows), (80, 24), "the default size");
    assert_eq!(s.runtime.profiles["small"].idle_timeout, None);
    assert_eq!(
        s.runtime.profiles["idle-echo"].idle_timeout,
        Some(std::time::Duration::from_secs(5))
    );
    let kinds: Vec<_> = s
        .runtime
        .profile_infos()
        .into_iter()
        .map(|p| (p.name, p.kind))
        .collect();
    assert!(kinds.contains(&("bash".into(), switchyard_protocol::ProfileKind::Pty)));
}

/// The flags as clap reads them (the `cli` feature's).
#[cfg(feature = "cli")]
mod flags {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RuntimeArgs,
    }

    #[test]
    fn clap_parses_the_contract_flags() {
        let cli = Cli::try_parse_from([
            "runtime",
            "--config",
            "r.toml",
            "--listen",
            "127.0.0.1:0",
            "--runtime-id",
            "build-1",
            "--token-file",
            "t.token",
            "--data-dir",
            "var",
        ])
        .unwrap();
        assert_eq!(cli.args.config, Some(PathBuf::from("r.toml")));
        assert_eq!(cli.args.listen.unwrap().to_string(), "127.0.0.1:0");
        assert_eq!(cli.args.runtime_id.unwrap().as_str(), "build-1");
        assert_eq!(cli.args.token_file, Some(PathBuf::from("t.token")));
        assert_eq!(cli.args.data_dir, Some(PathBuf::from("var")));

        let err = Cli::try_parse_from(["runtime", "--runtime-id", ".bad"])
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 2);
        let err = Cli::try_parse_from(["runtime", "--listen", "localhost"])
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 2);
    }
}
