//! The reload plan: what a new configuration changes, against what runs.

use switchyard_e2e::certs::Ca;

use super::plan::{EmbeddedChange, Plan, RESTART_ONLY, RemoteChange, plan};
use crate::config::tests::support::{Dir, env_of, serve_args};
use crate::config::{BackendSettings, ConfigError, load_backend_settings};

const BASE: &str = r#"
[embedded]
runtime_id = "local"

[[remote]]
runtime_id = "a"
base_url = "http://127.0.0.1:7701"
token_file = "a.token"

[[remote]]
runtime_id = "b"
base_url = "http://127.0.0.1:7702"
token_env = "TOK_B"
"#;

fn load(dir: &Dir, text: &str) -> BackendSettings {
    let path = dir.write("backend.toml", text);
    load_backend_settings(&serve_args(&path), &env_of(&[("TOK_B", "token-of-b")]))
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `(embedded, ["id=keep" | "id=register", ...], restart_required)`.
fn summary(plan: &Plan) -> (&'static str, Vec<String>, Vec<&'static str>) {
    let embedded = match plan.embedded {
        EmbeddedChange::None => "none",
        EmbeddedChange::Keep => "keep",
        EmbeddedChange::Reconfigure(_) => "reconfigure",
        EmbeddedChange::Add(_) => "add",
        EmbeddedChange::Remove => "remove",
    };
    let remotes = plan
        .remotes
        .iter()
        .map(|change| match change {
            RemoteChange::Keep(id) => format!("{id}=keep"),
            RemoteChange::Register(settings) => format!("{}=register", settings.runtime_id),
        })
        .collect();
    (embedded, remotes, plan.restart_required.clone())
}

/// Plans the change from `running` to `next` (files written before each load by
/// `between`).
fn check(
    what: &str,
    running: &str,
    next: &str,
    between: impl FnOnce(&Dir),
    expected: (&str, &[&str], &[&str]),
) -> Plan {
    let dir = Dir::new();
    dir.write("a.token", "token-of-a\n");
    let running = load(&dir, running);
    between(&dir);
    let planned = plan(&running, load(&dir, next), Some(&dir.path("backend.toml")))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let (embedded, remotes, restart) = summary(&planned);
    assert_eq!(
        (embedded, remotes, restart),
        (
            expected.0,
            expected.1.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            expected.2.to_vec()
        ),
        "{what}"
    );
    planned
}

fn nothing(_: &Dir) {}

#[test]
fn remotes_are_kept_replaced_added_and_removed_by_comparing_every_setting() {
    let same: &[&str] = &["a=keep", "b=keep"];
    check("the same file", BASE, BASE, nothing, ("keep", same, &[]));
    check(
        "b's address",
        BASE,
        &BASE.replace("7702", "7712"),
        nothing,
        ("keep", &["a=keep", "b=register"], &[]),
    );
    check(
        "a's token file rewritten",
        BASE,
        BASE,
        |dir| {
            dir.write("a.token", "a-new-token\n");
        },
        ("keep", &["a=register", "b=keep"], &[]),
    );
    check(
        "a's token file rewritten with the same token",
        BASE,
        BASE,
        |dir| {
            dir.write("a.token", "token-of-a");
        },
        ("keep", same, &[]),
    );
    check(
        "b removed, c added",
        BASE,
        &format!(
            "{}\n[[remote]]\nruntime_id = \"c\"\nbase_url = \"http://127.0.0.1:7703\"\ntoken_file = \"a.token\"\n",
            BASE.split("[[remote]]\nruntime_id = \"b\"").next().unwrap()
        ),
        nothing,
        ("keep", &["a=keep", "c=register"], &[]),
    );
    check(
        "a display name",
        BASE,
        &BASE.replace(
            "runtime_id = \"a\"",
            "runtime_id = \"a\"\ndisplay_name = \"A\"",
        ),
        nothing,
        ("keep", &["a=register", "b=keep"], &[]),
    );
    check(
        "a timeout",
        BASE,
        &BASE.replace(
            "runtime_id = \"a\"",
            "runtime_id = \"a\"\nrequest_timeout_ms = 900",
        ),
        nothing,
        ("keep", &["a=register", "b=keep"], &[]),
    );
    let swapped = concat!(
        "[[remote]]\nruntime_id = \"b\"\nbase_url = \"http://127.0.0.1:7702\"\ntoken_env = \"TOK_B\"\n",
        "[[remote]]\nruntime_id = \"a\"\nbase_url = \"http://127.0.0.1:7701\"\ntoken_file = \"a.token\"\n",
        "[embedded]\nruntime_id = \"local\"\n"
    );
    check(
        "the same remotes in another order",
        BASE,
        swapped,
        nothing,
        ("keep", &["b=keep", "a=keep"], &[]),
    );
}

#[test]
fn a_remote_whose_tls_files_change_is_replaced() {
    let text = r#"
[[remote]]
runtime_id = "a"
base_url = "https://127.0.0.1:7701"
token_file = "a.token"
ca_file = "ca.crt"
client_cert_file = "client.crt"
client_key_file = "client.key"
"#;
    let ca = Ca::new("Runtimes CA");
    let write_all = |dir: &Dir, ca: &Ca, client: &str| {
        dir.write("ca.crt", &ca.pem());
        let leaf = ca.client(client);
        dir.write("client.crt", &leaf.cert_pem);
        dir.write("client.key", &leaf.key_pem);
    };
    let dir = Dir::new();
    dir.write("a.token", "token-of-a");
    write_all(&dir, &ca, "backend");
    let running = load(&dir, text);
    let again = load(&dir, text);
    let file = dir.path("backend.toml");
    let kinds = |next| summary(&plan(&running, next, Some(&file)).unwrap()).1;
    assert_eq!(kinds(again), ["a=keep"], "the same files");
    write_all(&dir, &ca, "backend-renewed");
    assert_eq!(
        kinds(load(&dir, text)),
        ["a=register"],
        "a new client certificate"
    );
    write_all(&dir, &Ca::new("Another CA"), "backend");
    assert_eq!(kinds(load(&dir, text)), ["a=register"], "another CA");
}

#[test]
fn the_embedded_runtime_is_added_removed_or_reconfigured_in_place() {
    let without = BASE.replace("[embedded]\nruntime_id = \"local\"\n", "");
    check(
        "removed",
        BASE,
        &without,
        nothing,
        ("remove", &["a=keep", "b=keep"], &[]),
    );
    let added = check(
        "added",
        &without,
        BASE,
        nothing,
        ("add", &["a=keep", "b=keep"], &[]),
    );
    assert!(added.applied.embedded.is_some());
    // Profiles, limits and the display name change in place: nothing waits.
    let with = |extra: &str| {
        BASE.replace(
            "runtime_id = \"local\"\n",
            &format!("runtime_id = \"local\"\n{extra}"),
        )
    };
    for (what, extra) in [
        (
            "a profile added",
            "[embedded.profiles.shell]\nkind = \"process\"\ncommand = [\"/bin/sh\"]\n",
        ),
        ("a limit", "max_workers = 3\n"),
        ("a display name", "display_name = \"Here\"\n"),
    ] {
        let changed = check(
            what,
            BASE,
            &with(extra),
            nothing,
            ("reconfigure", &["a=keep", "b=keep"], &[]),
        );
        match &changed.embedded {
            EmbeddedChange::Reconfigure(settings) => {
                assert_eq!(Some(settings), changed.applied.embedded.as_ref(), "{what}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    // A new id or data directory cannot apply to the running runtime.
    for (what, next) in [
        (
            "a new id",
            BASE.replace("runtime_id = \"local\"", "runtime_id = \"here\""),
        ),
        ("a data directory", with("data_dir = \"var/local\"\n")),
    ] {
        let kept = check(
            what,
            BASE,
            &next,
            nothing,
            ("keep", &["a=keep", "b=keep"], &["embedded"]),
        );
        let running = kept.applied.embedded.expect("still embedded");
        assert_eq!(
            (running.runtime.runtime_id.as_str(), running.data_dir),
            ("local", None),
            "{what}: the running settings stay"
        );
    }
    check(
        "neither",
        &without,
        &without,
        nothing,
        ("none", &["a=keep", "b=keep"], &[]),
    );
}

#[test]
fn keys_the_process_cannot_change_keep_their_running_values_and_are_reported() {
    let dir = Dir::new();
    dir.write("a.token", "token-of-a");
    let running = load(&dir, BASE);
    let next = load(
        &dir,
        &format!(
            "listen = \"127.0.0.1:7799\"\nmetrics_listen = \"127.0.0.1:9799\"\nmax_connections = 5\n\
             max_body_bytes = 10\nallowed_origins = [\"http://x.test\"]\nallowed_hosts = [\"x.test\"]\n\
             viewer_queue = 3\nevent_backlog = 4\ndrain_ms = 100\nhealth_interval_ms = 1234\n{BASE}"
        ),
    );
    let planned = plan(&running, next, Some(&dir.path("backend.toml"))).unwrap();
    let every_key_but_tls_and_embedded: Vec<&str> = RESTART_ONLY
        .iter()
        .map(|(key, _)| *key)
        .filter(|key| !["tls", "embedded", "auth.signed_out_file"].contains(key))
        .collect();
    assert_eq!(planned.restart_required, every_key_but_tls_and_embedded);
    assert_eq!(planned.restart_required, ["listen", "metrics_listen"]);
    let applied = &planned.applied;
    assert_eq!(
        (applied.listen, applied.metrics_listen),
        (running.listen, running.metrics_listen)
    );
    // The hub's sizes apply (to the event streams that open after the reload).
    assert_eq!((applied.viewer_queue, applied.event_backlog), (3, 4));
    assert_eq!(
        (
            applied.max_connections,
            applied.max_body_bytes,
            applied.drain
        ),
        (5, 10, std::time::Duration::from_millis(100)),
        "the limits apply"
    );
    assert_eq!(
        applied.health_interval,
        std::time::Duration::from_millis(1234),
        "the probes' interval applies"
    );
    assert_eq!(
        (&applied.allowed_origins, &applied.allowed_hosts),
        (
            &vec!["http://x.test".to_owned()],
            &vec!["x.test".to_owned()]
        ),
        "the browser defences apply"
    );
}

#[test]
fn the_limits_apply_both_ways_and_are_never_reported() {
    let dir = Dir::new();
    dir.write("a.token", "token-of-a");
    let limits = |connections: u32, body: u64, drain: u64| {
        format!(
            "max_connections = {connections}\nmax_body_bytes = {body}\ndrain_ms = {drain}\n{BASE}"
        )
    };
    let file = dir.path("backend.toml");
    let running = load(&dir, &limits(100, 4096, 2000));
    for (connections, body, drain) in [(5, 16, 0), (100_000, 1 << 24, 30_000), (100, 4096, 2000)] {
        let planned = plan(
            &running,
            load(&dir, &limits(connections, body, drain)),
            Some(&file),
        )
        .unwrap();
        assert_eq!(
            summary(&planned),
            ("keep", vec!["a=keep".into(), "b=keep".into()], vec![]),
            "{connections} {body} {drain}"
        );
        let applied = &planned.applied;
        assert_eq!(
            (
                applied.max_connections,
                applied.max_body_bytes,
                applied.drain
            ),
            (
                connections as usize,
                body,
                std::time::Duration::from_millis(drain)
            )
        );
    }
    // Without the keys: the defaults apply, as at start.
    let planned = plan(&running, load(&dir, BASE), Some(&file)).unwrap();
    assert!(planned.restart_required.is_empty());
    let defaults = BackendSettings::defaults();
    assert_eq!(
        (
            planned.applied.max_connections,
            planned.applied.max_body_bytes,
            planned.applied.drain
        ),
        (
            defaults.max_connections,
            defaults.max_body_bytes,
            defaults.drain
        )
    );
    for key in ["max_connections", "max_body_bytes", "drain_ms"] {
        assert!(
            RESTART_ONLY.iter().all(|(k, _)| *k != key),
            "{key} is not restart-only"
        );
    }
}

#[test]
fn what_the_running_process_cannot_accept_is_refused_naming_the_key() {
    let dir = Dir::new();
    dir.write("a.token", "token-of-a");
    let file = dir.path("backend.toml");
    // Serving every address with [auth] open; the new file drops [auth] and asks
    // for loopback, which needs a restart: meanwhile the old address is served.
    let running = load(
        &dir,
        &format!("listen = \"0.0.0.0:7700\"\n[auth]\nopen = true\n{BASE}"),
    );
    let next = load(&dir, BASE);
    match plan(&running, next, Some(&file)) {
        Err(error @ ConfigError::OpenListen { .. }) => {
            assert_eq!(error.key(), Some("auth"));
            assert_eq!(error.file(), Some(file.as_path()));
        }
        other => panic!("expected OpenListen, got {other:?}"),
    }
    // The embedded runtime keeps running as `local` until a restart: a remote may
    // not take that id meanwhile.
    let running = load(&dir, BASE);
    let next = load(
        &dir,
        &BASE
            .replace("runtime_id = \"local\"", "runtime_id = \"box\"")
            .replace("runtime_id = \"b\"", "runtime_id = \"local\""),
    );
    match plan(&running, next, Some(&file)) {
        Err(error @ ConfigError::DuplicateRuntimeId { .. }) => {
            assert_eq!(error.key(), Some("remote[1].runtime_id"));
            assert!(error.to_string().contains("until a restart"), "{error}");
        }
        other => panic!("expected DuplicateRuntimeId, got {other:?}"),
    }
}

#[test]
fn the_sign_out_file_waits_for_a_restart_whether_it_changes_or_goes() {
    let dir = Dir::new();
    dir.write("a.token", "token-of-a");
    dir.write("session.key", &"k".repeat(32));
    let with_file = |file: &str| {
        let file = if file.is_empty() {
            String::new()
        } else {
            format!("signed_out_file = \"{file}\"\n")
        };
        format!(
            "[auth]\nsession_key_file = \"session.key\"\n{file}\n[[auth.token]]\nname = \"alice\"\n\
             token_sha256 = \"{}\"\nrole = \"admin\"\n{BASE}",
            "ab".repeat(32)
        )
    };
    let running = load(&dir, &with_file("signed-out"));
    let file_of = |settings: &BackendSettings| match &settings.auth {
        crate::config::AuthSettings::Tokens(tokens) => tokens.signed_out_file.clone(),
        _ => None,
    };
    assert_eq!(file_of(&running), Some(dir.path("signed-out")));
    for (next, reported) in [("signed-out", false), ("elsewhere", true), ("", true)] {
        let planned = plan(&running, load(&dir, &with_file(next)), None).unwrap();
        assert_eq!(
            planned.restart_required.contains(&"auth.signed_out_file"),
            reported,
            "{next:?}"
        );
        assert_eq!(file_of(&planned.applied), file_of(&running), "{next:?}");
    }
}
