//! `switchyard serve`: defaults, embedded and remote runtimes, origins, redaction.

use std::time::Duration;

use super::support::{Dir, SECRET, assert_names, env_of, no_env, runtime_args, serve_args};
use crate::config::{ConfigError, ServeArgs, load_backend_settings, load_runtime_settings};

#[test]
fn defaults_without_config() {
    let s = load_backend_settings(&ServeArgs::default(), &no_env).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:7700");
    assert!(s.allowed_origins.is_empty());
    assert_eq!(s.max_body_bytes, 1024 * 1024);
    assert_eq!(s.health_interval, Duration::from_millis(5000));
    assert!(s.remotes.is_empty());
    let embedded = s.embedded.unwrap();
    assert_eq!(embedded.runtime.runtime_id.as_str(), "local");
    assert_eq!(embedded.runtime.display_name, "This machine");
    assert!(embedded.data_dir.is_none());
    let names: Vec<_> = embedded.runtime.profiles.keys().collect();
    assert_eq!(names, ["echo"]);
}

#[test]
fn listen_flag_overrides() {
    let args = ServeArgs {
        config: None,
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServeArgs::default()
    };
    let s = load_backend_settings(&args, &no_env).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:0");

    let dir = Dir::new();
    let path = dir.write("b.toml", "listen = \"127.0.0.1:9999\"\n[embedded]\n");
    let s = load_backend_settings(&serve_args(&path), &no_env).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:9999");
    let args = ServeArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..serve_args(&path)
    };
    let s = load_backend_settings(&args, &no_env).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:0");
}

#[test]
fn file_without_embedded_has_no_embedded_runtime() {
    let dir = Dir::new();
    dir.write("secrets/r.token", SECRET);
    let path = dir.write(
        "b.toml",
        "[[remote]]\nruntime_id = \"r\"\nbase_url = \"HTTP://R.example:8443/sy/\"\ntoken_file = \"secrets/r.token\"\ninsecure_http = true\n",
    );
    let s = load_backend_settings(&serve_args(&path), &no_env).unwrap();
    assert!(s.embedded.is_none());
    let remote = &s.remotes[0];
    assert_eq!(remote.base_url, "http://r.example:8443/sy");
    assert_eq!(remote.display_name, "r");
    assert_eq!(remote.token.expose(), SECRET);
    assert_eq!(remote.connect_timeout, Duration::from_millis(2000));
    assert_eq!(remote.request_timeout, Duration::from_millis(5000));
    assert_eq!(remote.stream_idle_timeout, Duration::from_millis(15000));
    assert!(remote.insecure_http, "plain HTTP off loopback, allowed");
    assert!(remote.tls.is_none());
}

#[test]
fn embedded_defaults_and_limits() {
    let dir = Dir::new();
    let path = dir.write(
        "b.toml",
        "max_body_bytes = 2048\nhealth_interval_ms = 250\n\
         allowed_origins = [\"http://localhost:5173/\", \"http://LOCALHOST:5173\", \"https://ui.example\"]\n\
         [embedded]\nmax_workers = 2\n",
    );
    let s = load_backend_settings(&serve_args(&path), &no_env).unwrap();
    assert_eq!(s.max_body_bytes, 2048);
    assert_eq!(s.health_interval, Duration::from_millis(250));
    assert_eq!(
        s.allowed_origins,
        ["http://localhost:5173", "https://ui.example"]
    );
    let embedded = s.embedded.unwrap();
    assert_eq!(embedded.runtime.runtime_id.as_str(), "local");
    assert_eq!(embedded.runtime.display_name, "This machine");
    assert_eq!(embedded.runtime.limits.max_workers, 2);
    assert!(embedded.data_dir.is_none());
}

#[test]
fn the_embedded_table_takes_the_limit_keys_of_a_runtime_file() {
    let limits = "max_workers = 2\nmax_input_bytes = 3\nmax_body_bytes = 4\n\
                  transcript_page_max = 5\nevent_backlog = 6\ninput_queue = 7\n\
                  subscriber_queue = 8\nstop_grace_ms = 9\n";
    let dir = Dir::new();
    let runtime = dir.write("r.toml", limits);
    let backend = dir.write("b.toml", &format!("[embedded]\n{limits}"));
    let from_runtime = load_runtime_settings(&runtime_args(&runtime), &no_env)
        .unwrap()
        .runtime
        .limits;
    let from_embedded = load_backend_settings(&serve_args(&backend), &no_env)
        .unwrap()
        .embedded
        .unwrap()
        .runtime
        .limits;
    assert_eq!(from_embedded, from_runtime);
    assert_eq!(
        (from_embedded.max_workers, from_embedded.stop_grace),
        (2, Duration::from_millis(9))
    );

    // Both tables still refuse keys they do not take, and list the limit keys.
    let path = dir.write("bad.toml", "[embedded]\nmax_worker = 2\n");
    let err = load_backend_settings(&serve_args(&path), &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
    assert_names(&err, &path, "embedded.max_worker");
    assert!(err.to_string().contains("`max_workers`"), "{err}");
}

#[test]
fn debug_never_shows_tokens() {
    let dir = Dir::new();
    dir.write("t2.token", &format!("{SECRET}-2\n"));
    let path = dir.write(
        "b.toml",
        "[embedded]\n\
         [[remote]]\nruntime_id = \"a\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_env = \"A_TOKEN\"\n\
         [[remote]]\nruntime_id = \"b\"\nbase_url = \"http://127.0.0.1:2\"\ntoken_file = \"t2.token\"\n",
    );
    let env = env_of(&[("A_TOKEN", SECRET)]);
    let s = load_backend_settings(&serve_args(&path), &env).unwrap();
    assert_eq!(s.remotes[0].token.expose(), SECRET);
    let debug = format!("{s:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!format!("{s:#?}").contains(SECRET));
    assert!(debug.contains("redacted"), "{debug}");
}

#[test]
fn viewer_queue_and_event_backlog_are_read_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.toml");
    std::fs::write(
        &path,
        "viewer_queue = 8192\nevent_backlog = 100\n[embedded]\n",
    )
    .unwrap();
    let args = crate::config::ServeArgs {
        config: Some(path.clone()),
        ..Default::default()
    };
    let settings = crate::config::load_backend_settings(&args, &|_| None).unwrap();
    assert_eq!(settings.viewer_queue, 8192);
    assert_eq!(settings.event_backlog, 100);
    std::fs::write(&path, "viewer_queue = 0\n[embedded]\n").unwrap();
    let error = crate::config::load_backend_settings(&args, &|_| None).unwrap_err();
    assert!(error.to_string().contains("viewer_queue"), "{error}");
}

#[test]
fn max_connections_and_metrics_listen_are_read_and_validated() {
    let check = |text: &str, expected: Result<(usize, Option<&str>), &str>| {
        let dir = Dir::new();
        let path = dir.write("b.toml", text);
        match (load_backend_settings(&serve_args(&path), &no_env), expected) {
            (Ok(s), Ok((max, metrics))) => {
                assert_eq!(s.max_connections, max, "{text}");
                assert_eq!(
                    s.metrics_listen.map(|a| a.to_string()).as_deref(),
                    metrics,
                    "{text}"
                );
            }
            (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{text}: {e}"),
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    };
    check("[embedded]\n", Ok((10_000, None)));
    check("max_connections = 2\n[embedded]\n", Ok((2, None)));
    check(
        "metrics_listen = \"127.0.0.1:9700\"\n[embedded]\n",
        Ok((10_000, Some("127.0.0.1:9700"))),
    );
    check("max_connections = 0\n[embedded]\n", Err("max_connections"));
    check("max_connections = -1\n[embedded]\n", Err("max_connections"));
    check(
        "metrics_listen = \"localhost\"\n[embedded]\n",
        Err("metrics_listen"),
    );
    check(
        "listen = \"127.0.0.1:7700\"\nmetrics_listen = \"127.0.0.1:7700\"\n[embedded]\n",
        Err("metrics_listen"),
    );
    let defaults = crate::config::BackendSettings::defaults();
    assert_eq!(
        (defaults.max_connections, defaults.metrics_listen),
        (10_000, None)
    );
}

#[test]
fn drain_ms_defaults_to_none_and_allows_zero() {
    let check = |text: &str, expected: Result<Duration, &str>| {
        let dir = Dir::new();
        let path = dir.write("b.toml", text);
        match (load_backend_settings(&serve_args(&path), &no_env), expected) {
            (Ok(s), Ok(drain)) => assert_eq!(s.drain, drain, "{text}"),
            (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{e}"),
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    };
    check("[embedded]\n", Ok(Duration::ZERO));
    check("drain_ms = 0\n[embedded]\n", Ok(Duration::ZERO));
    check(
        "drain_ms = 2500\n[embedded]\n",
        Ok(Duration::from_millis(2500)),
    );
    check("drain_ms = -1\n[embedded]\n", Err("drain_ms"));
    check("drain_ms = \"2s\"\n[embedded]\n", Err("drain_ms"));
    assert_eq!(
        crate::config::BackendSettings::defaults().drain,
        Duration::ZERO
    );
}

#[test]
fn stream_idle_timeout_ms_is_read_per_remote_and_must_be_positive() {
    let dir = Dir::new();
    dir.write("r.token", SECRET);
    let file = |extra: &str| {
        format!(
            "[[remote]]\nruntime_id = \"r\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_file = \"r.token\"\n{extra}"
        )
    };
    let path = dir.write("b.toml", &file("stream_idle_timeout_ms = 3000\n"));
    let s = load_backend_settings(&serve_args(&path), &no_env).unwrap();
    assert_eq!(
        s.remotes[0].stream_idle_timeout,
        Duration::from_millis(3000)
    );
    let path = dir.write("b.toml", &file("stream_idle_timeout_ms = 0\n"));
    let error = load_backend_settings(&serve_args(&path), &no_env).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("remote[0].stream_idle_timeout_ms"),
        "{error}"
    );
}

/// The flags as clap reads them (the `cli` feature's).
#[cfg(feature = "cli")]
mod flags {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[test]
    fn clap_parses_the_contract_flags() {
        let cli = Cli::try_parse_from(["serve", "--config", "b.toml", "--listen", "127.0.0.1:0"])
            .unwrap();
        assert_eq!(cli.args.config.unwrap().to_str(), Some("b.toml"));
        assert_eq!(cli.args.listen.unwrap().to_string(), "127.0.0.1:0");
        assert!(Cli::try_parse_from(["serve", "--token-file", "x"]).is_err());
    }
}
