//! Settings of `switchyard runtime`: the runtime file, flags and environment.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use switchyard_protocol::RuntimeId;
use switchyard_runtime::RuntimeConfig;
use switchyard_transport::SecretToken;

use super::args::RuntimeArgs;
use super::error::{ConfigError, Origin};
use super::file::RuntimeFile;
use super::parse::{FileContext, absolute, read_file};
use super::tls::{ListenerTlsInput, ServerTlsSettings, listener_tls};
use super::{profiles, token, values};
use crate::http::DEFAULT_MAX_CONNECTIONS;

/// Where a standalone runtime listens unless told otherwise.
pub const DEFAULT_RUNTIME_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7701));

/// A standalone runtime's id unless told otherwise.
pub const DEFAULT_RUNTIME_ID: &str = "local";

/// The environment variable a runtime's token comes from when neither `--token-file`
/// nor the config file names one.
pub const RUNTIME_TOKEN_ENV: &str = "SWITCHYARD_RUNTIME_TOKEN";

/// Everything `switchyard runtime` needs to start. `Debug` never shows the token.
///
/// Each new configuration key adds a field, so build one with
/// [`RuntimeSettings::new`] (or read a file, [`load_runtime_settings`]) and set
/// fields, or use the builder's [`crate::RuntimeServerBuilder::settings_mut`]:
///
/// ```
/// use switchyard_protocol::RuntimeId;
/// use switchyard_runtime::RuntimeConfig;
/// use switchyard_server::config::RuntimeSettings;
///
/// let config = RuntimeConfig::new(RuntimeId::new("jobs").unwrap(), "Jobs");
/// let mut settings = RuntimeSettings::new(config);
/// assert!(settings.tokens.is_empty()); // loopback only
/// settings.listen = "127.0.0.1:0".parse().unwrap();
/// settings.max_connections = 64;
/// let server = switchyard_server::RuntimeServer::from_settings(settings);
/// # drop(server);
/// ```
///
/// A struct literal does not compile:
///
/// ```compile_fail
/// use switchyard_protocol::RuntimeId;
/// use switchyard_runtime::RuntimeConfig;
/// use switchyard_server::config::RuntimeSettings;
///
/// let settings = RuntimeSettings {
///     listen: "127.0.0.1:0".parse().unwrap(),
///     tokens: Vec::new(),
///     data_dir: None,
///     runtime: RuntimeConfig::new(RuntimeId::new("jobs").unwrap(), "Jobs"),
///     tls: None,
///     max_connections: 64,
/// };
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The bearer tokens clients may present, any one of them (a token file lists
    /// one per line, so that a token can be rotated without a moment when the
    /// backend's is refused); no auth when empty (loopback only).
    pub tokens: Vec<SecretToken>,
    /// Where the store lives; in memory when absent.
    pub data_dir: Option<PathBuf>,
    /// Identity, profiles and limits.
    pub runtime: RuntimeConfig,
    /// HTTPS (and WSS) only, with this certificate, when set.
    pub tls: Option<ServerTlsSettings>,
    /// Connections open at once (WebSocket sessions included); past it, new ones get
    /// `503 overloaded`.
    pub max_connections: usize,
}

impl RuntimeSettings {
    /// The runtime `runtime` configures, as `switchyard runtime` runs it without a
    /// file or flags: on [`DEFAULT_RUNTIME_LISTEN`], without tokens (so loopback
    /// only), its store in memory, plain HTTP, at most
    /// [`crate::http::DEFAULT_MAX_CONNECTIONS`] connections.
    pub fn new(runtime: RuntimeConfig) -> Self {
        Self {
            listen: DEFAULT_RUNTIME_LISTEN,
            tokens: Vec::new(),
            data_dir: None,
            runtime,
            tls: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Builds the runtime's settings from `--config` (if any), the other flags, and the
/// environment (read through `env`, e.g. `&|k| std::env::var(k).ok()`).
///
/// Flags override the file. The tokens come from `--token-file`, else the file's
/// `token_file` or `token_env`, else [`RUNTIME_TOKEN_ENV`]; a token file holds one
/// or more, one per line (blank lines ignored), a variable exactly one. Relative paths in the file
/// resolve against its directory; relative flag paths against the current directory.
/// TLS files (`[tls]`, `--tls-*`) are read and checked here.
pub fn load_runtime_settings(
    args: &RuntimeArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RuntimeSettings, ConfigError> {
    load_runtime_settings_sourced(args, env).map(|(settings, _)| settings)
}

/// Where a runtime's tokens came from, for errors about them found later (a
/// reload's checks against the address in use): the flag, key or variable, and
/// where that is. Without a token, where one would go: `token_file` in the file,
/// else `--token-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSource {
    /// The file, the command line or the environment.
    pub origin: Origin,
    /// The flag, key or variable: `--token-file`, `token_file`, `token_env`,
    /// `SWITCHYARD_RUNTIME_TOKEN`, or `tokens` for settings built in code.
    pub key: &'static str,
}

/// [`load_runtime_settings`], with where the tokens came from.
pub(crate) fn load_runtime_settings_sourced(
    args: &RuntimeArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(RuntimeSettings, TokenSource), ConfigError> {
    let (file, ctx) = match &args.config {
        Some(path) => {
            let (file, ctx) = read_file::<RuntimeFile>(path)?;
            (file, Some(ctx))
        }
        None => (RuntimeFile::default(), None),
    };
    // Values from the file exist only when there is a file, so this origin is only
    // ever reported with one.
    let fo = ctx
        .as_ref()
        .map_or(Origin::CommandLine, FileContext::origin);

    let runtime_id = match (&args.runtime_id, &file.runtime_id) {
        (Some(id), _) => id.clone(),
        (None, Some(id)) => values::runtime_id(&fo, "runtime_id", id)?,
        (None, None) => RuntimeId::new(DEFAULT_RUNTIME_ID).expect("default id is valid"),
    };
    let display_name = match &file.display_name {
        Some(name) => values::display_name(&fo, "display_name", name)?,
        None => runtime_id.to_string(),
    };
    // The file's value is checked even when the flag overrides it: a typo in the
    // file must not wait for the day the flag is left out.
    if let Some(addr) = &file.listen {
        values::listen(&fo, "listen", addr)?;
    }
    let (listen, listen_origin, listen_key) = match (args.listen, &file.listen) {
        (Some(addr), _) => (addr, Origin::CommandLine, "--listen"),
        (None, Some(addr)) => (values::listen(&fo, "listen", addr)?, fo.clone(), "listen"),
        (None, None) => (DEFAULT_RUNTIME_LISTEN, Origin::CommandLine, "--listen"),
    };

    let (tokens, token_origin, token_key) = load_tokens(args, &file, ctx.as_ref(), &fo, env)?;
    if tokens.is_empty() && !listen.ip().is_loopback() {
        return Err(ConfigError::InsecureListen {
            origin: listen_origin,
            key: listen_key.to_owned(),
            listen,
        });
    }
    weak_listen_token(&tokens, listen, token_origin.clone(), token_key)?;
    let token_source = TokenSource {
        origin: token_origin,
        key: token_key,
    };

    let data_dir = match (&args.data_dir, &file.data_dir, &ctx) {
        (Some(dir), _, _) => Some(absolute(dir)),
        (None, Some(dir), Some(ctx)) => Some(ctx.resolve(dir)),
        _ => None,
    };

    let limits = values::limits(&fo, "", &file.limits())?;
    let mut runtime = RuntimeConfig::new(runtime_id, display_name);
    runtime.limits = limits;
    if let Some(ctx) = &ctx {
        runtime.profiles = profiles::build(ctx, "profiles.", file.profiles)?;
    }

    let tls = listener_tls(ListenerTlsInput {
        table: ctx
            .as_ref()
            .and_then(|ctx| file.tls.as_ref().map(|t| (t, ctx))),
        cert_flag: args.tls_cert.as_deref(),
        key_flag: args.tls_key.as_deref(),
        client_ca_flag: args.tls_client_ca.as_deref(),
    })?;

    let max_connections = values::positive(
        &fo,
        "max_connections",
        file.max_connections,
        DEFAULT_MAX_CONNECTIONS as u32,
    )? as usize;

    Ok((
        RuntimeSettings {
            listen,
            tokens,
            data_dir,
            runtime,
            tls,
            max_connections,
        },
        token_source,
    ))
}

/// Fewest characters a runtime's token may have when the runtime listens beyond
/// loopback (`switchyard token` makes 40).
pub const MIN_LISTEN_TOKEN_CHARS: usize = 16;

/// Refuses a token shorter than [`MIN_LISTEN_TOKEN_CHARS`] on a runtime that listens
/// beyond loopback (where anyone on the network may try to guess it); the tokens
/// came from `key` of `origin`.
pub(crate) fn weak_listen_token(
    tokens: &[SecretToken],
    listen: std::net::SocketAddr,
    origin: Origin,
    key: &str,
) -> Result<(), ConfigError> {
    if listen.ip().is_loopback() {
        return Ok(());
    }
    match tokens
        .iter()
        .map(|t| t.expose().chars().count())
        .find(|&n| n < MIN_LISTEN_TOKEN_CHARS)
    {
        None => Ok(()),
        Some(chars) => Err(ConfigError::InvalidValue {
            origin,
            key: key.to_owned(),
            problem: format!(
                "a runtime listening on {listen} needs tokens of at least \
                 {MIN_LISTEN_TOKEN_CHARS} characters (one has {chars}); make one with `switchyard token`"
            ),
        }),
    }
}

/// The runtime's tokens, with where they came from (for errors about them).
fn load_tokens(
    args: &RuntimeArgs,
    file: &RuntimeFile,
    ctx: Option<&FileContext>,
    fo: &Origin,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<SecretToken>, Origin, &'static str), ConfigError> {
    if file.token_file.is_some() && file.token_env.is_some() {
        return Err(ConfigError::Conflict {
            origin: fo.clone(),
            key: "token_file".to_owned(),
            other: "token_env".to_owned(),
        });
    }
    if let Some(path) = &args.token_file {
        let key = "--token-file";
        return token::tokens_from_file(&Origin::CommandLine, key, &absolute(path))
            .map(|t| (t, Origin::CommandLine, key));
    }
    if let (Some(path), Some(ctx)) = (&file.token_file, ctx) {
        return token::tokens_from_file(fo, "token_file", &ctx.resolve(path))
            .map(|t| (t, fo.clone(), "token_file"));
    }
    if let Some(var) = &file.token_env {
        return token::from_env(fo, "token_env", var, env)
            .map(|t| (vec![t], fo.clone(), "token_env"));
    }
    if env(RUNTIME_TOKEN_ENV).is_some() {
        return token::from_env(
            &Origin::Environment,
            RUNTIME_TOKEN_ENV,
            RUNTIME_TOKEN_ENV,
            env,
        )
        .map(|t| (vec![t], Origin::Environment, RUNTIME_TOKEN_ENV));
    }
    Ok(match ctx {
        Some(_) => (Vec::new(), fo.clone(), "token_file"),
        None => (Vec::new(), Origin::CommandLine, "--token-file"),
    })
}
