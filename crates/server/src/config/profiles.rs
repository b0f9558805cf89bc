//! `[profiles.NAME]` tables into [`switchyard_runtime::Profile`]s.

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard_protocol::{MAX_TERMINAL_SIDE, MIN_TERMINAL_SIDE};
use switchyard_runtime::{
    DEFAULT_PTY_COLS, DEFAULT_PTY_ROWS, ProcessSpec, Profile, ProfileSpec, PtySpec,
};

use super::error::{ConfigError, Origin};
use super::file::{KindFile, ProfileFile};
use super::parse::FileContext;

/// The built-in profile every runtime has.
pub(crate) const ECHO: &str = "echo";

/// Validates the profiles of one runtime; `prefix` is the key path of the profiles
/// table with its trailing dot (`profiles.` or `embedded.profiles.`). Adds the
/// built-in `echo` profile when it is not configured.
pub(crate) fn build(
    ctx: &FileContext,
    prefix: &str,
    raw: BTreeMap<String, ProfileFile>,
) -> Result<BTreeMap<String, Profile>, ConfigError> {
    let origin = ctx.origin();
    let mut profiles = BTreeMap::new();
    for (name, file) in raw {
        let key = format!("{prefix}{name}");
        check_name(&origin, &key, &name)?;
        let profile = build_one(ctx, &origin, &key, file)?;
        if name == ECHO && !matches!(profile.spec, ProfileSpec::Echo { .. }) {
            return Err(invalid(
                &origin,
                &format!("{key}.kind"),
                "the profile named `echo` is the built-in echo and must have kind \"echo\"; give a process or pty profile another name",
            ));
        }
        profiles.insert(name, profile);
    }
    profiles
        .entry(ECHO.to_owned())
        .or_insert_with(Profile::echo);
    Ok(profiles)
}

fn build_one(
    ctx: &FileContext,
    origin: &Origin,
    key: &str,
    file: ProfileFile,
) -> Result<Profile, ConfigError> {
    let description = file
        .description
        .clone()
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    let idle_timeout = match file.idle_timeout_s {
        None => None,
        Some(seconds) if !(1..=super::values::MAX_IDLE_SECONDS).contains(&seconds) => {
            return Err(invalid(
                origin,
                &format!("{key}.idle_timeout_s"),
                format!(
                    "must be from 1 to {} (seconds; 30 days); remove the key to never stop idle workers",
                    super::values::MAX_IDLE_SECONDS
                ),
            ));
        }
        Some(seconds) => Some(Duration::from_secs(seconds)),
    };
    let spec = match file.kind {
        KindFile::Echo => {
            refuse(
                origin,
                key,
                &file,
                &["command", "env", "cwd", "cols", "rows"],
                "an echo profile runs in-process and takes no command, env, cwd or terminal size; remove the key or use kind \"process\" or \"pty\"",
            )?;
            ProfileSpec::Echo {
                delay: super::values::millis_from(
                    origin,
                    &format!("{key}.delay_ms"),
                    file.delay_ms,
                    Duration::ZERO,
                    0,
                )?,
            }
        }
        KindFile::Process => {
            refuse(
                origin,
                key,
                &file,
                &["delay_ms"],
                "only echo profiles take a delay; remove the key",
            )?;
            refuse(
                origin,
                key,
                &file,
                &["cols", "rows"],
                "only pty profiles have a terminal size; remove the key or use kind \"pty\"",
            )?;
            let (command, env) = command_and_env(origin, key, file.command, file.env)?;
            let mut spec = ProcessSpec::new(command);
            spec.env = env;
            spec.cwd = file.cwd.map(|cwd| ctx.resolve(&cwd));
            ProfileSpec::Process(spec)
        }
        KindFile::Pty => {
            refuse(
                origin,
                key,
                &file,
                &["delay_ms"],
                "only echo profiles take a delay; remove the key",
            )?;
            let cols = side(origin, &format!("{key}.cols"), file.cols, DEFAULT_PTY_COLS)?;
            let rows = side(origin, &format!("{key}.rows"), file.rows, DEFAULT_PTY_ROWS)?;
            let (command, env) = command_and_env(origin, key, file.command, file.env)?;
            let mut spec = PtySpec::new(command);
            spec.env = env;
            spec.cwd = file.cwd.map(|cwd| ctx.resolve(&cwd));
            spec.cols = cols;
            spec.rows = rows;
            ProfileSpec::Pty(spec)
        }
    };
    let description = match spec {
        ProfileSpec::Echo { .. } => description.or_else(|| Profile::echo().description),
        _ => description,
    };
    let mut profile = Profile::new(spec);
    profile.description = description;
    profile.idle_timeout = idle_timeout;
    Ok(profile)
}

/// Refuses `keys` of `file` that are set, with `problem` as the reason.
fn refuse(
    origin: &Origin,
    key: &str,
    file: &ProfileFile,
    keys: &[&str],
    problem: &str,
) -> Result<(), ConfigError> {
    for name in keys {
        let set = match *name {
            "command" => file.command.is_some(),
            "env" => file.env.is_some(),
            "cwd" => file.cwd.is_some(),
            "cols" => file.cols.is_some(),
            "rows" => file.rows.is_some(),
            "delay_ms" => file.delay_ms.is_some(),
            _ => false,
        };
        if set {
            return Err(invalid(origin, &format!("{key}.{name}"), problem));
        }
    }
    Ok(())
}

/// The command (required, checked) and environment (checked) of a process or pty
/// profile.
fn command_and_env(
    origin: &Origin,
    key: &str,
    command: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
) -> Result<(Vec<String>, BTreeMap<String, String>), ConfigError> {
    let Some(command) = command else {
        return Err(ConfigError::MissingKey {
            origin: origin.clone(),
            key: format!("{key}.command"),
            hint: "a process or pty profile needs its program and arguments, e.g. command = [\"/bin/sh\"]".to_owned(),
        });
    };
    check_command(origin, &format!("{key}.command"), &command)?;
    let env = env.unwrap_or_default();
    for (name, value) in &env {
        check_env(origin, &format!("{key}.env"), name, value)?;
    }
    Ok((command, env))
}

/// A terminal side: 1 to 1000, `default` when absent.
fn side(origin: &Origin, key: &str, value: Option<u16>, default: u16) -> Result<u16, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if (MIN_TERMINAL_SIDE..=MAX_TERMINAL_SIDE).contains(&n) => Ok(n),
        Some(_) => Err(invalid(
            origin,
            key,
            format!("must be {MIN_TERMINAL_SIDE} to {MAX_TERMINAL_SIDE} (cells)"),
        )),
    }
}

/// Profile names are what clients send: 1 to 64 characters of `A-Z a-z 0-9 . _ -`,
/// not starting with `.`.
/// What is wrong with a profile's name or kind, if anything: the rule for files and
/// for profiles added in code alike.
pub(crate) fn profile_problem(name: &str, profile: &Profile) -> Option<&'static str> {
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid_name {
        return Some(
            "a profile name is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'",
        );
    }
    if name == ECHO && !matches!(profile.spec, ProfileSpec::Echo { .. }) {
        return Some(
            "the profile named `echo` is the built-in echo and must have kind \"echo\"; give a process or pty profile another name",
        );
    }
    None
}

fn check_name(origin: &Origin, key: &str, name: &str) -> Result<(), ConfigError> {
    match profile_problem(name, &Profile::echo()) {
        None => Ok(()),
        Some(problem) => Err(invalid(origin, key, problem)),
    }
}

fn check_command(origin: &Origin, key: &str, command: &[String]) -> Result<(), ConfigError> {
    match command.first() {
        None => Err(invalid(
            origin,
            key,
            "must not be empty; give the program and its arguments, e.g. [\"/bin/sh\"]",
        )),
        Some(program) if program.trim().is_empty() => Err(invalid(
            origin,
            key,
            "the program (first element) must not be empty",
        )),
        Some(_) if command.iter().any(|arg| arg.contains('\0')) => Err(invalid(
            origin,
            key,
            "arguments must not contain NUL characters",
        )),
        Some(_) => Ok(()),
    }
}

fn check_env(origin: &Origin, key: &str, name: &str, value: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(invalid(
            origin,
            key,
            format!("variable name {name:?} must be non-empty and contain no '=' or NUL"),
        ));
    }
    if value.contains('\0') {
        return Err(invalid(
            origin,
            &format!("{key}.{name}"),
            "the value must not contain NUL characters",
        ));
    }
    Ok(())
}

fn invalid(origin: &Origin, key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        origin: origin.clone(),
        key: key.to_owned(),
        problem: problem.into(),
    }
}
