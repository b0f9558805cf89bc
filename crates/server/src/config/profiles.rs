//! `[profiles.NAME]` tables into [`switchyard_runtime::Profile`]s.

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard_runtime::{ProcessSpec, Profile, ProfileSpec};

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
                "the profile named `echo` is the built-in echo and must have kind \"echo\"; give a process profile another name",
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
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    match file.kind {
        KindFile::Echo => {
            for (set, name) in [
                (file.command.is_some(), "command"),
                (file.env.is_some(), "env"),
                (file.cwd.is_some(), "cwd"),
            ] {
                if set {
                    return Err(invalid(
                        origin,
                        &format!("{key}.{name}"),
                        "an echo profile runs in-process and takes no command, env or cwd; remove the key or use kind \"process\"",
                    ));
                }
            }
            Ok(Profile {
                description: description.or_else(|| Profile::echo().description),
                spec: ProfileSpec::Echo {
                    delay: Duration::from_millis(file.delay_ms.unwrap_or(0)),
                },
            })
        }
        KindFile::Process => {
            if file.delay_ms.is_some() {
                return Err(invalid(
                    origin,
                    &format!("{key}.delay_ms"),
                    "only echo profiles take a delay; remove the key",
                ));
            }
            let Some(command) = file.command else {
                return Err(ConfigError::MissingKey {
                    origin: origin.clone(),
                    key: format!("{key}.command"),
                    hint: "a process profile needs its program and arguments, e.g. command = [\"/bin/sh\"]".to_owned(),
                });
            };
            check_command(origin, &format!("{key}.command"), &command)?;
            let env = file.env.unwrap_or_default();
            for (name, value) in &env {
                check_env(origin, &format!("{key}.env"), name, value)?;
            }
            Ok(Profile {
                description,
                spec: ProfileSpec::Process(ProcessSpec {
                    command,
                    env,
                    cwd: file.cwd.map(|cwd| ctx.resolve(&cwd)),
                }),
            })
        }
    }
}

/// Profile names are what clients send: 1 to 64 characters of `A-Z a-z 0-9 . _ -`,
/// not starting with `.`.
fn check_name(origin: &Origin, key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            origin,
            key,
            "a profile name is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'",
        ))
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
