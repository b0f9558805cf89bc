//! `switchyard token`: a new client token from the OS's random source, and the
//! `[[auth.token]]` lines that let the backend accept it (they hold only its hash).
//!
//! Standard output is the token on the first line, a blank line, then the
//! configuration lines. With `--token-file FILE` the token goes into that new file
//! (mode 0600) instead, and standard output holds only the configuration lines, ready
//! to append to the backend's config.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use switchyard_registry::{Role, RuntimeGlob, WorkerScope};

use crate::auth::{TokenHash, token, valid_name};
use crate::commands::client::Failure;

/// Flags of `switchyard token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The identity's name: in audit lines, `GET /api/session` and as workers' owner
    /// [default: the role and the first 8 hex digits of the token's SHA-256, as
    /// viewer-5b0f3a1c]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// viewer, operator or admin
    #[arg(long, default_value = "admin", value_parser = parse_role, value_name = "ROLE")]
    pub role: Role,
    /// A runtime id or pattern (`build-*`) the token may use; repeat for more; all when
    /// absent
    #[arg(long = "runtime", value_name = "ID_OR_GLOB")]
    pub runtimes: Vec<String>,
    /// own (only the workers it creates) or all; viewers and operators default to own
    #[arg(long, value_parser = parse_scope, value_name = "SCOPE")]
    pub workers: Option<WorkerScope>,
    /// Write the token into this new file (mode 0600) instead of standard output
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

fn parse_role(value: &str) -> Result<Role, String> {
    value
        .parse()
        .map_err(|()| "expected viewer, operator or admin".to_owned())
}

fn parse_scope(value: &str) -> Result<WorkerScope, String> {
    match value {
        "own" => Ok(WorkerScope::Own),
        "all" => Ok(WorkerScope::All),
        _ => Err("expected own or all".to_owned()),
    }
}

/// The name of a token made without `--name`: its role, so that it suggests no
/// other, and the first 8 hex digits of its hash, so that two such tokens are two
/// identities (a name is also its workers' owner: a viewer named `admin` would
/// reach, with `workers = "own"`, the workers an `admin` token created) and the
/// config lines can be matched to the token.
fn default_name(role: Role, hash: &TokenHash) -> String {
    format!("{role}-{}", &hash.to_hex()[..8])
}

/// The `[[auth.token]]` lines for a token with `hash`.
pub fn config_lines(args: &TokenArgs, hash: &TokenHash) -> String {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => default_name(args.role, hash),
    };
    let mut lines = format!(
        "[[auth.token]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{}\"\n",
        hash.to_hex(),
        args.role
    );
    if !args.runtimes.is_empty() {
        let list: Vec<String> = args.runtimes.iter().map(|r| format!("\"{r}\"")).collect();
        lines.push_str(&format!("runtimes = [{}]\n", list.join(", ")));
    }
    if let Some(scope) = args.workers {
        lines.push_str(&format!("workers = \"{}\"\n", scope.as_str()));
    }
    lines
}

/// Checks the flags the way the configuration will; a usage error (exit status 2).
fn check(args: &TokenArgs) -> Result<(), Failure> {
    if args.name.as_deref().is_some_and(|name| !valid_name(name)) {
        return Err(Failure::usage(
            "invalid_name",
            "--name must be 1 to 64 of A-Z a-z 0-9 . _ - @, and not \"-\" or \"anonymous\"",
        ));
    }
    for runtime in &args.runtimes {
        RuntimeGlob::new(runtime).map_err(|e| {
            Failure::usage("invalid_runtime", format!("--runtime {runtime:?}: {e}"))
        })?;
    }
    if args.role == Role::Admin && args.workers == Some(WorkerScope::Own) {
        return Err(Failure::usage(
            "invalid_workers",
            "an admin reaches every worker; drop --workers own or use --role operator",
        ));
    }
    Ok(())
}

/// Runs the subcommand; returns the exit status. Errors print as the client
/// commands' do, `error: <code>: <message>`: 2 for bad flags (`invalid_name`,
/// `invalid_runtime`, `invalid_workers`), 1 when the token cannot be made
/// (`random_source_failed`) or written (`token_file_failed`, `output_failed`).
pub fn run(args: TokenArgs) -> u8 {
    match make(&args) {
        Ok(()) => 0,
        Err(failure) => failure.report(),
    }
}

fn make(args: &TokenArgs) -> Result<(), Failure> {
    check(args)?;
    let token = token::generate().map_err(|error| {
        Failure::new(
            "random_source_failed",
            format!("could not read the OS's random source: {error}"),
        )
    })?;
    let lines = config_lines(args, &TokenHash::of(&token));
    let mut out = std::io::stdout().lock();
    let written = match &args.token_file {
        Some(path) => {
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| writeln!(f, "{token}"));
            if let Err(error) = file {
                let hint = match error.kind() {
                    std::io::ErrorKind::AlreadyExists => {
                        "it must not exist yet (a token file is never overwritten)"
                    }
                    std::io::ErrorKind::NotFound => "its directory must exist",
                    _ => "name a file this user can create",
                };
                return Err(Failure::new(
                    "token_file_failed",
                    format!("cannot create {}: {error}; {hint}", path.display()),
                ));
            }
            eprintln!(
                "switchyard token: the token is in {}; paste these lines into the backend's config:",
                path.display()
            );
            write!(out, "{lines}")
        }
        None => {
            eprintln!(
                "switchyard token: the first line is the token (give it to its holder; it is shown once); paste the [[auth.token]] lines into the backend's config"
            );
            write!(out, "{token}\n\n{lines}")
        }
    };
    written.and_then(|()| out.flush()).map_err(|error| {
        Failure::new(
            "output_failed",
            format!("cannot write to standard output: {error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(role: Role, runtimes: &[&str], workers: Option<WorkerScope>) -> TokenArgs {
        TokenArgs {
            name: Some("alice".into()),
            role,
            runtimes: runtimes.iter().map(|r| (*r).to_owned()).collect(),
            workers,
            token_file: None,
        }
    }

    #[test]
    fn config_lines_carry_every_flag() {
        let hash = TokenHash::of("t");
        assert_eq!(
            config_lines(&args(Role::Admin, &[], None), &hash),
            format!(
                "[[auth.token]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\n",
                hash.to_hex()
            )
        );
        let lines = config_lines(
            &args(
                Role::Operator,
                &["local", "build-*"],
                Some(WorkerScope::All),
            ),
            &hash,
        );
        assert!(lines.ends_with(
            "role = \"operator\"\nruntimes = [\"local\", \"build-*\"]\nworkers = \"all\"\n"
        ));
    }

    #[test]
    fn without_a_name_a_token_is_named_after_its_role_and_hash() {
        let hash = TokenHash::of("t");
        let prefix = &hash.to_hex()[..8];
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            let mut unnamed = args(role, &[], None);
            unnamed.name = None;
            assert!(check(&unnamed).is_ok());
            let lines = config_lines(&unnamed, &hash);
            let name = format!("{role}-{prefix}");
            assert!(lines.contains(&format!("name = \"{name}\"\n")), "{lines}");
            assert!(valid_name(&name));
        }
        // Two tokens, two identities.
        assert_ne!(
            default_name(Role::Viewer, &TokenHash::of("a")),
            default_name(Role::Viewer, &TokenHash::of("b"))
        );
    }

    #[test]
    fn flags_are_checked_like_the_config() {
        assert!(check(&args(Role::Viewer, &["local"], Some(WorkerScope::Own))).is_ok());
        let code = |args: &TokenArgs| check(args).unwrap_err().code().to_owned();
        assert_eq!(
            code(&args(Role::Admin, &[], Some(WorkerScope::Own))),
            "invalid_workers"
        );
        assert_eq!(code(&args(Role::Viewer, &["a/b"], None)), "invalid_runtime");
        let mut bad = args(Role::Viewer, &[], None);
        bad.name = Some("al ice\"".into());
        assert_eq!(code(&bad), "invalid_name");
    }
}
