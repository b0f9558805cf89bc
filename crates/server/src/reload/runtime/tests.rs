//! A standalone runtime's reload: which keys apply and which wait for a restart
//! (the plan, from table-driven cases), and the reloader applying a plan to a
//! running runtime server.

use std::sync::Arc;

use switchyard_e2e::certs::Ca;
use switchyard_runtime::RuntimeLimits;

use super::plan::{APPLIES, ProfileChanges, RESTART_ONLY, RuntimePlan, plan};
use super::{RuntimeConfigSource, RuntimeReloadReport};
use crate::config::tests::support::{Dir, env_of, runtime_args};
use crate::config::{
    ConfigError, Origin, RuntimeArgs, RuntimeSettings, TokenSource, load_runtime_settings,
    load_runtime_settings_sourced,
};

const BASE: &str = r#"
runtime_id = "rt"
display_name = "Runtime"
listen = "127.0.0.1:7701"
token_file = "rt.token"

[profiles.shell]
kind = "process"
command = ["/bin/sh"]

[profiles.slow]
kind = "echo"
delay_ms = 100
"#;

fn load_with(dir: &Dir, args: &RuntimeArgs, text: &str) -> RuntimeSettings {
    dir.write("runtime.toml", text);
    load_runtime_settings(args, &env_of(&[("RT_TOKEN", "token-from-env")]))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn load(dir: &Dir, text: &str) -> RuntimeSettings {
    load_with(dir, &runtime_args(&dir.path("runtime.toml")), text)
}

/// What a reload reads: the settings and where their tokens came from.
type Next = (RuntimeSettings, TokenSource);

fn load_next_with(dir: &Dir, args: &RuntimeArgs, text: &str) -> Next {
    dir.write("runtime.toml", text);
    load_runtime_settings_sourced(args, &env_of(&[("RT_TOKEN", "token-from-env")]))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn load_next(dir: &Dir, text: &str) -> Next {
    load_next_with(dir, &runtime_args(&dir.path("runtime.toml")), text)
}

fn plan_next(
    running: &RuntimeSettings,
    (next, tokens_from): Next,
) -> Result<RuntimePlan, ConfigError> {
    plan(running, next, &tokens_from)
}

/// A new directory with the token file and TLS files every case may name.
fn dir() -> Dir {
    let dir = Dir::new();
    dir.write("rt.token", "token-one\n");
    let ca = Ca::new("Runtime CA");
    let leaf = ca.server(&["localhost"]);
    dir.write("rt.crt", &leaf.cert_pem);
    dir.write("rt.key", &leaf.key_pem);
    dir.write("backends.crt", &Ca::new("Backends CA").pem());
    dir
}

/// One case: the running file, the next one, files written between the two loads,
/// and what the plan must say.
struct Case {
    what: &'static str,
    running: String,
    next: String,
    between: fn(&Dir),
    changed: &'static [&'static str],
    restart_required: &'static [&'static str],
}

fn nothing(_: &Dir) {}

fn case(
    what: &'static str,
    next: impl Into<String>,
    changed: &'static [&'static str],
    restart_required: &'static [&'static str],
) -> Case {
    Case {
        what,
        running: BASE.to_owned(),
        next: next.into(),
        between: nothing,
        changed,
        restart_required,
    }
}

fn run(case: &Case) -> RuntimePlan {
    let dir = dir();
    let running = load(&dir, &case.running);
    (case.between)(&dir);
    let next = load_next(&dir, &case.next);
    let planned = plan_next(&running, next).unwrap_or_else(|e| panic!("{}: {e}", case.what));
    assert_eq!(
        (
            planned.changed.as_slice(),
            planned.restart_required.as_slice()
        ),
        (case.changed, case.restart_required),
        "{}",
        case.what
    );
    planned
}

/// `BASE` with `line` added at the top level.
fn with(line: &str) -> String {
    format!("{line}\n{BASE}")
}

#[test]
fn keys_that_apply_are_planned_one_by_one() {
    let cases = [
        case("the same file", BASE, &[], &[]),
        case(
            "a display name",
            BASE.replace("\"Runtime\"", "\"Renamed\""),
            &["display_name"],
            &[],
        ),
        case(
            "max_workers",
            with("max_workers = 3"),
            &["max_workers"],
            &[],
        ),
        case(
            "max_ended_workers",
            with("max_ended_workers = 5"),
            &["max_ended_workers"],
            &[],
        ),
        case(
            "max_input_bytes",
            with("max_input_bytes = 10"),
            &["max_input_bytes"],
            &[],
        ),
        case(
            "max_body_bytes",
            with("max_body_bytes = 2048"),
            &["max_body_bytes"],
            &[],
        ),
        case(
            "transcript_page_max",
            with("transcript_page_max = 7"),
            &["transcript_page_max"],
            &[],
        ),
        case(
            "event_backlog",
            with("event_backlog = 16"),
            &["event_backlog"],
            &[],
        ),
        case(
            "input_queue",
            with("input_queue = 2"),
            &["input_queue"],
            &[],
        ),
        case(
            "subscriber_queue",
            with("subscriber_queue = 8"),
            &["subscriber_queue"],
            &[],
        ),
        case(
            "stop_grace_ms",
            with("stop_grace_ms = 0"),
            &["stop_grace_ms"],
            &[],
        ),
        case(
            "max_connections",
            with("max_connections = 5"),
            &["max_connections"],
            &[],
        ),
        case(
            "a default written out changes nothing",
            with("max_workers = 64\nstop_grace_ms = 5000"),
            &[],
            &[],
        ),
        case(
            "a profile added",
            format!("{BASE}\n[profiles.more]\nkind = \"echo\"\n"),
            &["profiles"],
            &[],
        ),
        case(
            "the token source switched to a variable",
            BASE.replace("token_file = \"rt.token\"", "token_env = \"RT_TOKEN\""),
            &["tokens"],
            &[],
        ),
        case(
            "several at once, in APPLIES order",
            with("max_connections = 5\nmax_workers = 1\ndisplay_name = \"X\"")
                .replace("display_name = \"Runtime\"\n", ""),
            &["display_name", "max_workers", "max_connections"],
            &[],
        ),
    ];
    for case in &cases {
        run(case);
    }
}

#[test]
fn token_files_are_compared_by_their_tokens() {
    let rewritten = |what, between, changed| Case {
        what,
        running: BASE.to_owned(),
        next: BASE.to_owned(),
        between,
        changed,
        restart_required: &[],
    };
    let cases = [
        rewritten(
            "the same token, spaced out",
            |dir| {
                dir.write("rt.token", "\n  token-one  \n\n");
            },
            &[],
        ),
        rewritten(
            "a second token added",
            |dir| {
                dir.write("rt.token", "token-one\ntoken-two\n");
            },
            &["tokens"],
        ),
        rewritten(
            "the token replaced",
            |dir| {
                dir.write("rt.token", "token-two\n");
            },
            &["tokens"],
        ),
    ];
    for case in &cases {
        let planned = run(case);
        if case.what == "a second token added" {
            let tokens: Vec<&str> = planned.applied.tokens.iter().map(|t| t.expose()).collect();
            assert_eq!(tokens, ["token-one", "token-two"], "in the file's order");
        }
    }
}

#[test]
fn profiles_are_added_changed_and_removed_by_name() {
    let next = BASE.replace("delay_ms = 100", "delay_ms = 200").replace(
        "[profiles.shell]\nkind = \"process\"\ncommand = [\"/bin/sh\"]\n",
        "[profiles.pty]\nkind = \"pty\"\ncommand = [\"/bin/sh\"]\n",
    );
    let planned = run(&case("profiles", next, &["profiles"], &[]));
    assert_eq!(
        planned.profiles,
        ProfileChanges {
            added: vec!["pty".into()],
            changed: vec!["slow".into()],
            removed: vec!["shell".into()],
        }
    );
    let names: Vec<&String> = planned.applied.runtime.profiles.keys().collect();
    assert_eq!(names, ["echo", "pty", "slow"], "the built-in echo stays");
}

#[test]
fn keys_the_process_cannot_change_keep_their_running_values_and_are_reported() {
    let planned = run(&case(
        "every restart-only key at once",
        with("data_dir = \"elsewhere\"")
            .replace("runtime_id = \"rt\"", "runtime_id = \"other\"")
            .replace("127.0.0.1:7701", "127.0.0.1:7799")
            + "\n[tls]\ncert_file = \"rt.crt\"\nkey_file = \"rt.key\"\n",
        &[],
        &["listen", "runtime_id", "data_dir", "tls"],
    ));
    let every: Vec<&str> = RESTART_ONLY.iter().map(|(key, _)| *key).collect();
    assert_eq!(
        planned.applied.runtime.display_name, "Runtime",
        "an explicit display name is not the id's"
    );
    assert_eq!(planned.restart_required, every, "all of RESTART_ONLY");
    let applied = &planned.applied;
    assert_eq!(applied.listen, "127.0.0.1:7701".parse().unwrap());
    assert_eq!(applied.runtime.runtime_id.as_str(), "rt");
    assert_eq!(applied.data_dir, None);
    assert!(applied.tls.is_none(), "turning TLS on waits for a restart");
    assert!(!planned.tls_reload);
}

#[test]
fn a_display_name_that_is_the_id_waits_with_the_id() {
    let no_name = BASE.replace("display_name = \"Runtime\"\n", "");
    let planned = run(&Case {
        what: "the id, and the display name that defaults to it",
        running: no_name.clone(),
        next: no_name.replace("runtime_id = \"rt\"", "runtime_id = \"other\""),
        between: nothing,
        changed: &[],
        restart_required: &["runtime_id"],
    });
    assert_eq!(planned.applied.runtime.display_name, "rt");
    run(&Case {
        what: "the id and an explicit display name",
        running: no_name.clone(),
        next: format!("display_name = \"Other\"\n{no_name}")
            .replace("runtime_id = \"rt\"", "runtime_id = \"other\""),
        between: nothing,
        changed: &["display_name"],
        restart_required: &["runtime_id"],
    });
}

#[test]
fn tls_files_are_read_again_but_tls_is_not_turned_on_or_off() {
    let tls = "\n[tls]\ncert_file = \"rt.crt\"\nkey_file = \"rt.key\"\n";
    let with_tls = format!("{BASE}{tls}");
    let kept = run(&Case {
        what: "TLS on, and still on",
        running: with_tls.clone(),
        next: with_tls.clone() + "client_ca_file = \"backends.crt\"\n",
        between: nothing,
        changed: &[],
        restart_required: &[],
    });
    assert!(kept.tls_reload);
    assert!(
        kept.applied
            .tls
            .as_ref()
            .is_some_and(|t| t.files.client_ca.is_some()),
        "the new files apply"
    );
    let off = run(&Case {
        what: "TLS taken out",
        running: with_tls,
        next: BASE.to_owned(),
        between: nothing,
        changed: &[],
        restart_required: &["tls"],
    });
    assert!(!off.tls_reload, "the running files are not read again");
    assert!(off.applied.tls.is_some(), "HTTPS stays until a restart");
}

#[test]
fn flags_keep_winning_over_the_file() {
    let dir = dir();
    let flag_token = dir.write("flag.token", "token-of-the-flag\n");
    let args = RuntimeArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        runtime_id: Some(switchyard_protocol::RuntimeId::new("from-flag").unwrap()),
        token_file: Some(flag_token.clone()),
        ..runtime_args(&dir.path("runtime.toml"))
    };
    let running = load_with(&dir, &args, BASE);
    // The file's listen, id and token change; the flags still name theirs.
    dir.write("rt.token", "token-two\n");
    let next = load_next_with(
        &dir,
        &args,
        &BASE
            .replace("127.0.0.1:7701", "127.0.0.1:7799")
            .replace("runtime_id = \"rt\"", "runtime_id = \"other\""),
    );
    let planned = plan_next(&running, next).unwrap();
    assert_eq!(planned.changed, Vec::<&str>::new());
    assert_eq!(planned.restart_required, Vec::<&str>::new());

    // The flag's token file is read again.
    std::fs::write(&flag_token, "token-of-the-flag\nanother\n").unwrap();
    let next = load_next_with(&dir, &args, BASE);
    let planned = plan_next(&running, next).unwrap();
    assert_eq!(planned.changed, ["tokens"]);
}

#[test]
fn without_a_file_only_the_flags_sources_are_read_again() {
    let dir = dir();
    let flag_token = dir.write("flag.token", "token-one\n");
    let args = RuntimeArgs {
        token_file: Some(flag_token.clone()),
        ..RuntimeArgs::default()
    };
    let env = env_of(&[]);
    let running = load_runtime_settings(&args, &env).unwrap();
    let next = load_runtime_settings_sourced(&args, &env).unwrap();
    assert!(plan_next(&running, next).unwrap().changed.is_empty());
    std::fs::write(&flag_token, "token-two\n").unwrap();
    let next = load_runtime_settings_sourced(&args, &env).unwrap();
    assert_eq!(plan_next(&running, next).unwrap().changed, ["tokens"]);
}

#[test]
fn no_token_is_refused_while_the_runtime_listens_beyond_loopback() {
    let dir = dir();
    // Beyond loopback a token needs 16 characters or more.
    dir.write("long.token", "token-one-long-enough\n");
    let open = BASE
        .replace("127.0.0.1:7701", "0.0.0.0:7701")
        .replace("rt.token", "long.token");
    let running = load(&dir, &open);
    // The new file listens on loopback (so it loads), but the address in use is not.
    let next = load_next(&dir, &BASE.replace("token_file = \"rt.token\"\n", ""));
    assert!(next.0.tokens.is_empty());
    let file = dir.path("runtime.toml");
    let err = plan_next(&running, next).unwrap_err();
    assert!(matches!(err, ConfigError::InsecureListen { .. }), "{err}");
    assert_eq!(err.key(), Some("token_file"));
    assert_eq!(err.file(), Some(file.as_path()));
    assert!(err.to_string().contains("0.0.0.0:7701"), "{err}");

    // Nor a short one (`rt.token` holds 9 characters), named where it came from:
    // the file's `token_file` or `token_env`, the `--token-file` flag.
    let next = load_next(&dir, BASE);
    let err = plan_next(&running, next).unwrap_err();
    assert_eq!(err.key(), Some("token_file"), "{err}");
    assert!(err.to_string().contains("at least 16 characters"), "{err}");
    let from_env = BASE.replace("token_file = \"rt.token\"", "token_env = \"RT_TOKEN\"");
    let next = load_next(&dir, &from_env);
    assert_eq!(
        next.1,
        TokenSource {
            origin: Origin::file(&file),
            key: "token_env"
        }
    );
    let err = plan_next(&running, next).unwrap_err();
    assert_eq!(err.key(), Some("token_env"), "{err}");
    assert_eq!(err.file(), Some(file.as_path()));
    let flag_token = dir.write("flag.token", "short\n");
    let args = RuntimeArgs {
        token_file: Some(flag_token),
        ..runtime_args(&file)
    };
    let err = plan_next(&running, load_next_with(&dir, &args, BASE)).unwrap_err();
    assert_eq!(err.key(), Some("--token-file"), "{err}");
    assert_eq!(err.file(), None, "{err}");

    // On loopback a runtime may go without a token, as at start.
    let running = load(&dir, BASE);
    let next = load_next(&dir, &BASE.replace("token_file = \"rt.token\"\n", ""));
    assert_eq!(plan_next(&running, next).unwrap().changed, ["tokens"]);
}

/// The fields of `RuntimeLimits`, read from its `Debug` (it is `#[non_exhaustive]`,
/// so this crate cannot destructure it field by field).
fn limit_fields() -> Vec<String> {
    let debug = format!("{:?}", RuntimeLimits::default());
    let inner = debug
        .strip_prefix("RuntimeLimits { ")
        .and_then(|rest| rest.strip_suffix(" }"))
        .unwrap_or_else(|| panic!("not a struct's Debug: {debug}"));
    inner
        .split(", ")
        .map(|field| field.split(": ").next().unwrap().to_owned())
        .collect()
}

/// Every configurable limit is a key of `APPLIES`: a new field of `RuntimeLimits`
/// fails here until it is sorted in (or listed as not configurable).
#[test]
fn every_limit_applies_and_every_key_is_listed_once() {
    const NOT_CONFIGURABLE: &[&str] = &["snapshot_items"];
    let keys: Vec<&str> = APPLIES.iter().map(|k| k.key).collect();
    let fields = limit_fields();
    assert!(fields.len() >= 10, "{fields:?}");
    for field in &fields {
        if NOT_CONFIGURABLE.contains(&field.as_str()) {
            continue;
        }
        // A duration is configured in milliseconds.
        let key = match field.as_str() {
            "stop_grace" => "stop_grace_ms",
            other => other,
        };
        assert!(
            keys.contains(&key),
            "limit {field} is not in APPLIES as {key}"
        );
    }
    assert!(keys.contains(&"max_connections"));
    let mut all: Vec<&str> = keys.clone();
    all.extend(RESTART_ONLY.iter().map(|(k, _)| *k));
    let mut unique = all.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "a key in two lists: {all:?}");
}

// ---------------------------------------------------------------------------------
// The reloader on a running runtime server.
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_reload_applies_everything_or_nothing_to_a_running_server() {
    let dir = dir();
    let text = BASE.replace("127.0.0.1:7701", "127.0.0.1:0");
    let args = runtime_args(&dir.path("runtime.toml"));
    let settings = load_with(&dir, &args, &text);
    let running = crate::RuntimeServer::from_settings(settings)
        .start()
        .await
        .unwrap();
    let reloader = running.reloader(RuntimeConfigSource {
        args,
        env: Arc::new(|_| None),
    });

    // Nothing changed.
    assert_eq!(
        reloader.reload().await.unwrap(),
        RuntimeReloadReport::default()
    );

    // A profile, a limit and a second token.
    dir.write("rt.token", "token-one\ntoken-two\n");
    dir.write(
        "runtime.toml",
        &format!(
            "max_workers = 1\nmax_connections = 3\n{text}\n[profiles.more]\nkind = \"echo\"\n"
        ),
    );
    let report = reloader.reload().await.unwrap();
    assert_eq!(
        report.changed,
        ["tokens", "profiles", "max_workers", "max_connections"]
    );
    assert_eq!(report.profiles.added, ["more"]);
    assert!(running.runtime.config().profiles.contains_key("more"));
    assert_eq!(running.runtime.info().limits.max_workers, 1);
    assert_eq!(running.server.connections().max(), 3);
    assert_eq!(running.reload.tokens.current().len(), 2);

    // A broken token file, with a valid file that changes more: nothing applies.
    dir.write("rt.token", "token one with spaces\n");
    dir.write("runtime.toml", &format!("max_workers = 9\n{text}"));
    let err = reloader.reload().await.unwrap_err();
    assert!(matches!(err, ConfigError::TokenMalformed { .. }), "{err}");
    assert_eq!(err.key(), Some("token_file"));
    assert!(running.runtime.config().profiles.contains_key("more"));
    assert_eq!(running.runtime.info().limits.max_workers, 1);
    assert_eq!(running.reload.tokens.current().len(), 2);

    // Fixed: the same file applies.
    dir.write("rt.token", "token-two\n");
    let report = reloader.reload().await.unwrap();
    assert_eq!(
        report.changed,
        ["tokens", "profiles", "max_workers", "max_connections"]
    );
    assert_eq!(report.profiles.removed, ["more"]);
    assert_eq!(running.runtime.info().limits.max_workers, 9);
    running.shutdown().await;
}
