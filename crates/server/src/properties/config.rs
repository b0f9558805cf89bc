//! Both configuration files: any text is settings or a typed error naming the file
//! (exit status 2), never a panic; a valid runtime file reads back as written.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;
use switchyard_protocol::arbitrary::{id_string, text};
use switchyard_runtime::ProfileSpec;

use crate::config::{
    ConfigError, RuntimeArgs, ServeArgs, load_backend_settings, load_runtime_settings,
};

/// Lines a configuration file might have, right or wrong, in any order.
fn config_line() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "runtime_id = \"build-1\"",
            "runtime_id = \".bad\"",
            "display_name = \"\"",
            "listen = \"127.0.0.1:0\"",
            "listen = \"0.0.0.0:7700\"",
            "max_workers = 0",
            "max_workers = -1",
            "max_workers = \"x\"",
            "token_env = \"NOPE\"",
            "token_file = \"missing.token\"",
            "data_dir = \"data\"",
            "[profiles.sh]",
            "[profiles.echo]",
            "kind = \"process\"",
            "kind = \"pty\"",
            "kind = \"echo\"",
            "kind = \"rocket\"",
            "command = [\"/bin/sh\"]",
            "command = []",
            "cols = 0",
            "rows = 1001",
            "idle_timeout_s = 0",
            "[embedded]",
            "[[remote]]",
            "base_url = \"http://127.0.0.1:1\"",
            "base_url = \"http://10.0.0.1:1\"",
            "base_url = \"ftp://x\"",
            "[auth]",
            "[[auth.token]]",
            "role = \"admin\"",
            "token_sha256 = \"00\"",
            "[tls]",
            "cert_file = \"nope.pem\"",
            "allowed_origins = [\"http://x\"]",
            "bogus = 1",
            "[",
            "= 1",
            "\"unterminated",
        ])
        .prop_map(str::to_owned),
        text(30),
    ]
}

fn runtime_args(path: &Path) -> RuntimeArgs {
    RuntimeArgs {
        config: Some(path.to_path_buf()),
        ..RuntimeArgs::default()
    }
}

fn serve_args(path: &Path) -> ServeArgs {
    ServeArgs {
        config: Some(path.to_path_buf()),
        ..ServeArgs::default()
    }
}

/// The error is typed, names the file, and stops start-up with status 2.
fn check_error(error: &ConfigError, path: &Path) -> Result<(), TestCaseError> {
    prop_assert_eq!(error.exit_code(), 2, "{}", error);
    prop_assert_eq!(error.file(), Some(path), "{}", error);
    prop_assert!(error.to_string().contains(&path.display().to_string()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_file_is_settings_or_an_error_naming_it(
        lines in proptest::collection::vec(config_line(), 0..12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchyard.toml");
        std::fs::write(&path, lines.join("\n")).unwrap();
        let no_env = |_: &str| None;
        if let Err(error) = load_runtime_settings(&runtime_args(&path), &no_env) {
            check_error(&error, &path)?;
        }
        if let Err(error) = load_backend_settings(&serve_args(&path), &no_env) {
            check_error(&error, &path)?;
        }
    }
}

/// A profile as a test writes it: its kind and, for programs, its command.
#[derive(Debug, Clone)]
struct ProfileCase {
    kind: &'static str,
    command: Vec<String>,
    description: Option<String>,
    size: Option<(u16, u16)>,
}

fn profile_case() -> impl Strategy<Value = ProfileCase> {
    (
        select(vec!["echo", "process", "pty"]),
        // Arguments are any text but NUL, which no argv can carry (refused).
        proptest::collection::vec(text(12).prop_map(|a| a.replace('\0', "")), 0..3),
        proptest::option::of("[A-Za-z][ -~]{0,30}"),
        proptest::option::of((1u16..=1000, 1u16..=1000)),
    )
        .prop_map(|(kind, args, description, size)| ProfileCase {
            kind,
            command: std::iter::once("/bin/sh".to_owned()).chain(args).collect(),
            description,
            size: size.filter(|_| kind == "pty"),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_valid_runtime_file_reads_back_as_written(
        runtime_id in id_string(),
        display_name in "[A-Za-z0-9][ -~]{0,30}[A-Za-z0-9]",
        max_workers in 1u32..10_000,
        profiles in proptest::collection::btree_map("[a-z][a-z0-9_-]{0,15}", profile_case(), 0..4),
    ) {
        prop_assume!(!profiles.contains_key("echo"));
        // Written with the TOML crate, so any text is quoted as TOML wants.
        let mut table = toml::Table::new();
        table.insert("runtime_id".into(), runtime_id.clone().into());
        table.insert("display_name".into(), display_name.clone().into());
        table.insert("max_workers".into(), i64::from(max_workers).into());
        let mut profile_tables = toml::Table::new();
        for (name, case) in &profiles {
            let mut t = toml::Table::new();
            t.insert("kind".into(), case.kind.into());
            if case.kind != "echo" {
                t.insert("command".into(), toml::Value::Array(
                    case.command.iter().map(|a| a.clone().into()).collect(),
                ));
            }
            if let Some(description) = &case.description {
                t.insert("description".into(), description.clone().into());
            }
            if let Some((cols, rows)) = case.size {
                t.insert("cols".into(), i64::from(cols).into());
                t.insert("rows".into(), i64::from(rows).into());
            }
            profile_tables.insert(name.clone(), t.into());
        }
        table.insert("profiles".into(), profile_tables.into());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime.toml");
        std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();

        let settings = load_runtime_settings(&runtime_args(&path), &|_| None)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let runtime = settings.runtime;
        prop_assert_eq!(runtime.runtime_id.as_str(), runtime_id.as_str());
        prop_assert_eq!(runtime.display_name.as_str(), display_name.trim());
        prop_assert_eq!(runtime.limits.max_workers, max_workers);
        let mut expected: BTreeMap<&str, &str> =
            profiles.iter().map(|(n, c)| (n.as_str(), c.kind)).collect();
        expected.insert("echo", "echo");
        let got: BTreeMap<&str, &str> = runtime
            .profiles
            .iter()
            .map(|(name, profile)| {
                let kind = match &profile.spec {
                    ProfileSpec::Echo { .. } => "echo",
                    ProfileSpec::Process(_) => "process",
                    ProfileSpec::Pty(_) => "pty",
                    // A file names no custom driver (they are added in code).
                    _ => "custom",
                };
                (name.as_str(), kind)
            })
            .collect();
        prop_assert_eq!(got, expected);
        for (name, case) in &profiles {
            // A description reads back trimmed (without one, a kind may have its own).
            if let Some(description) = &case.description {
                prop_assert_eq!(
                    runtime.profiles[name].description.as_deref(),
                    Some(description.trim())
                );
            }
        }
    }
}
